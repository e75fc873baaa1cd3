"""The JWST observation file: round trip, and bad files named with what was expected."""
import numpy as np
import pytest
from astropy.io import fits

from fusionjax import products
from fusionjax.data.jwst import observation as jwst_observation


def _observation(planes=5, filters=("F150W", "F212N")):
  rng = np.random.default_rng(0)
  return jwst_observation.Observation(
      nirspec=rng.uniform(0, 1, (planes, 4, 6)).astype(np.float32),
      nircam=rng.uniform(0, 100, (len(filters), 12, 18)).astype(np.float32),
      wavelengths_um=np.linspace(1.0, 2.0, planes), filters=filters, units="mJy/arcsec2",
      pixel_scale_arcsec=0.031)


def test_round_trip(tmp_path):
  written = _observation()
  jwst_observation.write_observation(str(tmp_path / "obs.fits"), written)
  read = jwst_observation.read_observation(str(tmp_path / "obs.fits"))
  np.testing.assert_array_equal(read.nirspec, written.nirspec)
  np.testing.assert_array_equal(read.nircam, written.nircam)
  np.testing.assert_array_equal(read.wavelengths_um, written.wavelengths_um)
  assert read.filters == written.filters and read.units == "mJy/arcsec2"
  assert read.pixel_scale_arcsec == pytest.approx(0.031)


def test_bad_files_are_named(tmp_path):
  path = str(tmp_path / "obs.fits")
  jwst_observation.write_observation(path, _observation())
  with fits.open(path) as hdul:
    del hdul["NIRCAM"].header["FILT2"]
    hdul.writeto(tmp_path / "nofilter.fits")
    del hdul["WAVELENGTH"]
    hdul.writeto(tmp_path / "nowave.fits")
  with pytest.raises(ValueError, match="nofilter.fits: extension NIRCAM has 2 planes but no "
                                       "header key FILT2"):
    jwst_observation.read_observation(str(tmp_path / "nofilter.fits"))
  with pytest.raises(ValueError, match=r"nowave.fits: missing extension\(s\) \['WAVELENGTH'\]"):
    jwst_observation.read_observation(str(tmp_path / "nowave.fits"))
  bad = _observation()
  bad = jwst_observation.Observation(**{**bad.__dict__, "wavelengths_um": np.arange(4.0)})
  jwst_observation.write_observation(str(tmp_path / "short.fits"), bad)
  with pytest.raises(ValueError, match="short.fits: WAVELENGTH has 4 values, expected one per "
                                       r"NIRSPEC plane \(5\)"):
    jwst_observation.read_observation(str(tmp_path / "short.fits"))
  with pytest.raises(FileNotFoundError, match="missing.fits"):
    jwst_observation.read_observation(str(tmp_path / "missing.fits"))


def test_cube_written_plane_by_plane_equals_the_array(tmp_path):
  cube = np.random.default_rng(1).normal(size=(7, 5, 6)).astype(np.float32)
  wavelengths = np.linspace(1.0, 1.6, 7)
  settings = dict(units="mJy/arcsec2", pixel_scale_arcsec=0.031)
  products.write_fits_cube(str(tmp_path / "whole.fits"), cube, wavelengths, **settings)
  calls = []

  def planes(start, stop):
    calls.append((start, stop))
    return cube[start:stop]
  products.write_fits_cube(str(tmp_path / "planes.fits"), products.PlaneSource(cube.shape, planes),
                           wavelengths, planes_per_write=3, **settings)
  assert calls == [(0, 3), (3, 6), (6, 7)]
  with fits.open(tmp_path / "whole.fits") as whole, fits.open(tmp_path / "planes.fits") as parts:
    np.testing.assert_array_equal(parts[0].data, cube)
    assert whole[0].header == parts[0].header
    np.testing.assert_array_equal(parts["WCS-TAB"].data["WAVELENGTH"],
                                  whole["WCS-TAB"].data["WAVELENGTH"])
