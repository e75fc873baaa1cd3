"""The products users open: Cloud-Optimised GeoTIFFs (layout, band names, units, no-data,
provenance tags), FITS cubes on the sky (celestial WCS carried from the NIRCam images, no-data
from ERR/DQ/NaN), and quicklooks whose titles, colour bars and panels do not overlap."""
import dataclasses
import os

import numpy as np
import pytest
import rasterio
from astropy import wcs
from astropy.io import fits

import fusionjax
from fusionjax import products, train
from fusionjax.data import geotiff
from fusionjax.data.jwst import observation as jwst_observation
from fusionjax.data.jwst import scene as jwst_scene
from fusionjax.products import fusion as fusion_products
from fusionjax.products import lst as lst_products
from fusionjax.tasks import lst_predict
from fusionjax.tasks import sentinel2 as sentinel2_task
from tests.conftest import experiment_config
from tests.test_jwst_observation import _observation

UTM = geotiff.GeoReference(rasterio.crs.CRS.from_epsg(32633).to_wkt(),
                           (10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0))
PROVENANCE = products.Provenance(experiment="sentinel2", model="dsen2", checkpoint_step=120,
                                 inputs=("procedural scene",))


def _sky(pixel_scale_arcsec=0.031):
  """A celestial (RA/Dec, gnomonic) WCS near the Orion Bar, north up, east left."""
  sky = wcs.WCS(naxis=2)
  sky.wcs.ctype = ["RA---TAN", "DEC--TAN"]
  sky.wcs.crval = [83.8375, -5.4167]
  sky.wcs.crpix = [10.0, 20.0]
  sky.wcs.cd = np.diag([-1.0, 1.0]) * pixel_scale_arcsec / 3600
  return sky


# Cloud-Optimised GeoTIFFs -------------------------------------------------------------------

def test_geotiff_is_a_cog_with_band_names_units_nodata_and_tags(tmp_path):
  data = np.random.default_rng(0).uniform(1, 5000, (2, 600, 520)).astype(np.float32)
  data[:, :3, :7] = 0.0
  path = str(tmp_path / "sharpened.tif")
  names = sentinel2_task.band_descriptions(("B5", "B11"))
  assert names == ("B5 (704 nm)", "B11 (1614 nm)")
  geotiff.write_geotiff(path, data, UTM, nodata=0.0, band_names=names,
                        units=("reflectance x 10000", "K"), tags=PROVENANCE.as_tags())
  with rasterio.open(path) as product:
    structure = product.tags(ns="IMAGE_STRUCTURE")
    assert structure["LAYOUT"] == "COG" and structure["COMPRESSION"] == "DEFLATE"
    assert structure["PREDICTOR"] == "3"   # floating point
    assert product.profile["tiled"] and product.block_shapes == [(256, 256)] * 2
    assert product.overviews(1) == product.overviews(2) == [2, 4]
    assert product.descriptions == names and product.units == ("reflectance x 10000", "K")
    assert product.nodata == 0.0 and product.crs == rasterio.crs.CRS.from_epsg(32633)
    tags = product.tags()
    np.testing.assert_array_equal(product.read(), data)   # lossless
  assert tags["FUSIONJAX_VERSION"] == fusionjax.__version__
  assert (tags["EXPERIMENT"], tags["MODEL"], tags["CHECKPOINT_STEP"]) == (
      "sentinel2", "dsen2", "120")
  assert tags["INPUTS"] == "procedural scene" and tags["CREATED_UTC"].endswith("+00:00")
  assert not [name for name in os.listdir(tmp_path) if name.startswith(".tmp-")]


def test_geotiff_band_names_must_match_the_bands(tmp_path):
  with pytest.raises(ValueError, match=r"x.tif: 1 band_names \['LST'\] for 2 band\(s\)"):
    geotiff.write_geotiff(str(tmp_path / "x.tif"), np.ones((2, 8, 8)), None,
                          band_names=("LST",))


def test_lst_band_names_and_provenance_inputs():
  assert lst_predict.band_descriptions(2) == ("LST day", "LST night")
  assert lst_predict.band_descriptions(1) == ("LST",)
  tags = dataclasses.replace(PROVENANCE, checkpoint_step=None,
                             inputs=(__file__, "procedural")).as_tags()
  assert tags["CHECKPOINT_STEP"] == "unknown"
  assert tags["INPUTS"] == f"{os.path.abspath(__file__)}; procedural"


# FITS cubes ------------------------------------------------------------------------------------

def test_fits_cube_carries_the_celestial_wcs_of_its_grid(tmp_path):
  cube = np.random.default_rng(1).normal(size=(5, 12, 18)).astype(np.float32)
  wavelengths = np.array([1.0, 1.1, 1.5, 2.0, 2.2])
  sky = _sky()
  path = str(tmp_path / "cube.fits")
  products.write_fits_cube(path, cube, wavelengths, units="mJy/arcsec2",
                           pixel_scale_arcsec=0.031, origin_pixel=(2, 5), celestial=sky,
                           tags=PROVENANCE.as_tags())
  with fits.open(path) as hdul:
    header = hdul[0].header
    written = wcs.WCS(header, fobj=hdul)
    assert header["CTYPE1"] == "RA---TAN" and header["CTYPE2"] == "DEC--TAN"
    assert header["CHECKPOINT_STEP"] == "120" and header["MODEL"] == "dsen2"
  columns, rows = np.meshgrid(np.arange(18), np.arange(12))
  ra, dec, wavelength = written.pixel_to_world_values(columns, rows, np.zeros_like(rows))
  expected_ra, expected_dec = sky.pixel_to_world_values(columns + 5, rows + 2)
  np.testing.assert_allclose(ra, expected_ra, rtol=0, atol=1e-10)
  np.testing.assert_allclose(dec, expected_dec, rtol=0, atol=1e-10)
  np.testing.assert_allclose(written.pixel_to_world_values(0, 0, np.arange(5))[2], wavelengths)
  # Without a sky position: arcsec offsets from the scene's first pixel, as before.
  products.write_fits_cube(str(tmp_path / "offsets.fits"), cube, wavelengths,
                           units="mJy/arcsec2", pixel_scale_arcsec=0.031, origin_pixel=(2, 5))
  with fits.open(tmp_path / "offsets.fits") as hdul:
    header = hdul[0].header
    assert (header["CTYPE1"], header["CRVAL1"]) == ("XOFFSET", pytest.approx(5 * 0.031))


def _with_extensions(path, **extensions):
  """Appends image extensions name -> array to the FITS file `path`."""
  with fits.open(path, mode="append") as hdul:
    for name, array in extensions.items():
      hdul.append(fits.ImageHDU(array, name=name))


def test_observation_err_dq_and_nan_pixels_are_no_data(tmp_path):
  written = _observation()
  nirspec = written.nirspec.copy()
  nirspec[0, 1, 1] = np.nan
  path = str(tmp_path / "obs.fits")
  jwst_observation.write_observation(path, dataclasses.replace(written, nirspec=nirspec,
                                                               celestial=_sky()))
  nirspec_dq = np.zeros(nirspec.shape, np.uint32)
  nirspec_dq[2, 3, 4] = 1                     # DO_NOT_USE
  nircam_err = np.ones(written.nircam.shape, np.float32)
  nircam_err[1, 7, 8] = np.nan
  _with_extensions(path, NIRSPEC_DQ=nirspec_dq, NIRCAM_ERR=nircam_err,
                   NIRCAM_DQ=np.zeros(written.nircam.shape, np.int16))
  read = jwst_observation.read_observation(path)
  assert np.array_equal(np.argwhere(np.isnan(read.nirspec)), [[0, 1, 1], [2, 3, 4]])
  assert np.array_equal(np.argwhere(np.isnan(read.nircam)), [[1, 7, 8]])
  np.testing.assert_allclose(read.celestial.pixel_to_world_values(3, 4),
                             _sky().pixel_to_world_values(3, 4), rtol=0, atol=1e-12)
  # Without a WCS in the NIRCam header the observation has no sky position.
  jwst_observation.write_observation(str(tmp_path / "plain.fits"), written)
  assert jwst_observation.read_observation(str(tmp_path / "plain.fits")).celestial is None


def test_observation_without_usable_data_is_named(tmp_path):
  path = str(tmp_path / "obs.fits")
  jwst_observation.write_observation(path, _observation())
  _with_extensions(path, NIRSPEC_DQ=np.zeros((5, 2, 2), np.uint32))
  with pytest.raises(ValueError, match=r"obs.fits: extension NIRSPEC_DQ holds shape \(5, 2, 2\), "
                                       r"expected NIRSPEC's shape \(5, 4, 6\)"):
    jwst_observation.read_observation(path)
  flagged = str(tmp_path / "flagged.fits")
  jwst_observation.write_observation(flagged, _observation())
  dq = np.zeros((2, 12, 18), np.uint32)
  dq[1] = 4
  _with_extensions(flagged, NIRCAM_DQ=dq)
  with pytest.raises(ValueError, match="flagged.fits: extension NIRCAM has no pixel with data "
                                       "in filter F212N"):
    jwst_observation.read_observation(flagged)


def test_fused_observation_is_on_the_sky_with_no_data_as_nan(trained, tmp_path):
  workdir = trained("jwst", "smoke")
  config = experiment_config("jwst", "smoke")
  _, _, observation = jwst_scene.simulate_observation(config)
  s = config.instrument.decimation
  nircam = observation.nircam.copy()
  nircam[:, 30, 70] = np.nan
  path = str(tmp_path / "observation.fits")
  jwst_observation.write_observation(path, dataclasses.replace(
      observation, nircam=nircam, celestial=_sky(observation.pixel_scale_arcsec)))
  nirspec_dq = np.zeros(observation.nirspec.shape, np.uint32)
  nirspec_dq[3, 2, 5] = 1
  nircam_err = np.ones(nircam.shape, np.float32)
  nircam_err[4, 10, 40] = np.nan
  _with_extensions(path, NIRSPEC_DQ=nirspec_dq, NIRCAM_ERR=nircam_err)
  config.predict.input, config.predict.output = path, str(tmp_path / "out")
  train.run(config, str(workdir), mode="predict")
  with fits.open(tmp_path / "out" / "observation_fused.fits") as hdul:
    cube, header = hdul[0].data, hdul[0].header
    written = wcs.WCS(header, fobj=hdul)
  expected = np.zeros(cube.shape, bool)
  expected[:, 30, 70] = expected[:, 10, 40] = True
  expected[3, 2 * s:3 * s, 5 * s:6 * s] = True
  np.testing.assert_array_equal(np.isnan(cube), expected)
  ra, dec, _ = written.pixel_to_world_values(np.arange(96), np.full(96, 7), np.zeros(96))
  np.testing.assert_allclose(np.stack([ra, dec]), np.stack(_sky(
      observation.pixel_scale_arcsec).pixel_to_world_values(np.arange(96), np.full(96, 7))),
      rtol=0, atol=1e-10)
  assert header["CHECKPOINT_STEP"] == "6" and header["EXPERIMENT"] == "jwst"
  assert header["INPUTS"] == path
  assert (tmp_path / "out" / "observation_fused.png").stat().st_size > 10_000
  # The Python API fuses the same observation held in arrays alike (no-data as NaN).
  model = fusionjax.load(str(workdir))
  masked = np.where(nircam_err > 0, nircam, np.nan)
  fused = model.predict(nirspec=np.where(nirspec_dq == 0, observation.nirspec, np.nan),
                        nircam=masked)
  np.testing.assert_allclose(fused, cube, rtol=1e-5, atol=1e-6)


# Quicklooks ----------------------------------------------------------------------------------

def _assert_nothing_overlaps(figure):
  """No title, colour bar (with its ticks and label) or panel of one axes overlaps those of
  another once drawn, and every colour bar is labelled (its units)."""
  figure.canvas.draw()
  renderer = figure.canvas.get_renderer()
  colour_bars = [image.colorbar for ax in figure.axes for image in ax.images if image.colorbar]
  assert colour_bars and all(bar.ax.get_ylabel() for bar in colour_bars)
  bar_axes = {bar.ax for bar in colour_bars}
  boxes = [(bar.ax, "colour bar", bar.ax.get_tightbbox(renderer)) for bar in colour_bars]
  for ax in figure.axes:
    if ax in bar_axes:
      continue
    boxes.append((ax, "panel", ax.get_window_extent(renderer)))
    if ax.get_title():
      boxes.append((ax, f"title {ax.get_title()!r}", ax.title.get_window_extent(renderer)))
    if ax.axison:
      boxes += [(ax, "axis", axis.get_tightbbox(renderer)) for axis in (ax.xaxis, ax.yaxis)]
  for index, (owner, name, box) in enumerate(boxes):
    for other_owner, other_name, other in boxes[index + 1:]:
      assert owner is other_owner or not box.overlaps(other), (name, other_name)


@pytest.mark.parametrize("width", [24, 120])  # side by side; a wide scene, one image per row
def test_jwst_quicklook_titles_and_colour_bars_do_not_overlap(width):
  import matplotlib.pyplot as plt
  rng = np.random.default_rng(2)
  wavelengths = np.linspace(1.0, 2.35, 24)
  truth = rng.uniform(1, 20, (48, width))
  fused = truth + rng.normal(0, 0.5, truth.shape)
  lr = truth[::3, ::3]
  spectra = {"truth": rng.uniform(1, 20, 24), "fusformer": rng.uniform(1, 20, 24)}
  composites = [(rng.uniform(0, 1, (48, width, 3)), "NIRCam F212N F150W F115W")]
  figure = fusion_products.quicklook(wavelengths, 8, lr, fused, truth, spectra, (4, 5),
                                     "mJy/arcsec2", composites=composites, method="fusformer")
  _assert_nothing_overlaps(figure)
  spectrum_axes = figure.axes[len(composites) + 4]
  assert (spectrum_axes.get_xlabel(), spectrum_axes.get_ylabel()) == ("wavelength (um)",
                                                                      "mJy/arcsec2")
  plt.close(figure)


def test_lst_quicklooks_titles_and_colour_bars_do_not_overlap():
  import matplotlib.pyplot as plt
  rng = np.random.default_rng(3)
  fine = rng.uniform(270, 310, (6, 32, 32, 1))
  step_result = {"fine": fine, "model": fine + rng.normal(0, 0.3, fine.shape),
                 "fine_ndvi": rng.uniform(0, 1, fine.shape), "coarse": fine[:, ::4, ::4]}
  figure = lst_products.quicklook(step_result, "mrunet")
  _assert_nothing_overlaps(figure)
  assert {image.colorbar.ax.get_ylabel() for ax in figure.axes for image in ax.images
          if image.colorbar} == {"LST (K)", "NDVI (unitless)", "error (K)"}
  plt.close(figure)
  figure = lst_predict._quicklook(fine[0, ::4, ::4, 0], fine[0, ..., 0], fine[0] / 300,
                                  np.moveaxis(fine[1], -1, 0), "MOD11A1.A2020001.0015")
  _assert_nothing_overlaps(figure)
  plt.close(figure)
