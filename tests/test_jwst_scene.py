"""JWST instrument simulation and the Orion Bar reader."""

import json

import numpy as np
import pytest
import scipy.ndimage
from astropy.io import fits

from fusionjax.data.fusion_scene import FusionScene
from fusionjax.data.jwst import orionbar
from fusionjax.data.jwst import procedural as procedural_jwst
from fusionjax.physics import jwst
from tests.conftest import shared_data_dir
from tests.test_main import METRICS, _wavelengths


def _direct_nircam(scene, instruments):
  """Noise-free NIRCam images computed plane by plane with scipy."""
  cube = scene.cube().astype(np.float64)
  sigma = instruments.psf_sigma_pixels()
  blurred = np.stack([scipy.ndimage.gaussian_filter(plane, s, mode="reflect", truncate=4.0)
                      for plane, s in zip(cube, sigma)])
  return np.einsum("ml,lhw->mhw", instruments.nircam_responses, blurred)


def test_chunked_simulation_equals_direct_computation():
  scene = procedural_jwst.procedural_scene(height=30, width=36, num_wavelengths=40,
                                           num_components=3, seed=5)
  instruments = procedural_jwst.procedural_instruments(scene.wavelengths_um)
  nircam, nirspec = jwst.observe(scene.spectra, scene.abundances, instruments, seed=0,
                                 add_noise=False, chunk=16)
  assert nircam.shape == (11, 30, 36) and nirspec.shape == (40, 10, 12)
  np.testing.assert_allclose(nircam, _direct_nircam(scene, instruments), rtol=2e-3)
  # NIRSpec: block means of the blurred cube times the throughput; a flat scene stays flat.
  flat = procedural_jwst.procedural_scene(height=9, width=9, num_wavelengths=8,
                                          num_components=1, seed=0)
  flat = flat.__class__(abundances=np.ones_like(flat.abundances), spectra=flat.spectra,
                        wavelengths_um=flat.wavelengths_um, name="flat")
  inst = procedural_jwst.procedural_instruments(flat.wavelengths_um)
  _, spec = jwst.observe(flat.spectra, flat.abundances, inst, seed=0, add_noise=False)
  np.testing.assert_allclose(spec, (flat.spectra[0] * inst.nirspec_throughput)[:, None, None]
                             * np.ones((1, 3, 3)), rtol=1e-5)


def test_psf_grows_with_wavelength():
  instruments = procedural_jwst.procedural_instruments(procedural_jwst.wavelength_grid(10))
  sigma = instruments.psf_sigma_pixels()
  assert np.all(np.diff(sigma) > 0)


def test_orionbar_files_read():
  directory = shared_data_dir("jwst_orionbar")
  scene, instruments = orionbar.load_orionbar(directory)
  assert scene.abundances.shape == (4, 90, 900)
  assert scene.spectra.shape == (4, 4974)
  assert instruments.nircam_responses.shape == (11, 4974)
  assert instruments.nirspec_throughput.shape == (4974,)
  assert instruments.nirspec_lsf.sum() == pytest.approx(1.0)
  assert 0.99 < scene.wavelengths_um[0] < scene.wavelengths_um[-1] < 2.36
  # The truth X = M_1^T A.
  cube = scene.cube(slice(100, 102))
  np.testing.assert_allclose(cube[:, 10, 1], scene.spectra.T @ scene.abundances[:, 10, 101],
                             rtol=1e-5)


def test_orionbar_scene_prepares_in_a_pca_subspace(trained):
  """The scene the Orion Bar smoke run prepared (shared with the next test of this file)."""
  workdir = trained("jwst", "orionbar,smoke", **{"data.dir": shared_data_dir("jwst_orionbar")})
  scene = FusionScene.load(str(next((workdir / "data").glob("jwst-*/scene_00.npz"))))
  assert scene.lr_codes.shape == (16, 48, 4) and scene.msi.shape == (48, 144, 11)
  # The 144 columns of the crop: training [0, 66), validation [69, 105), test [108, 144).
  assert (scene.heldout_col_start, scene.test_col_start, scene.split_gap) == (69, 108, 3)
  assert scene.heldout_truth.shape == (4974, 48, 144 - 69)
  for split in ("validation", "test"):
    assert scene.strip(split).truth.shape == (4974, 48, 36)
  # The 4-component truth lies almost entirely in the 4-D subspace fitted on the noisy cube:
  # over the held-out columns and over the test strip (the validation strip's is 2.03%).
  test = "test"
  for truth in (scene.heldout_truth, scene.strip(test).truth):
    truth = np.moveaxis(truth, 0, -1)
    projected = scene.coding.decode(scene.coding.encode(truth))
    assert np.linalg.norm(projected - truth) < 0.02 * np.linalg.norm(truth)


def test_missing_and_malformed_orionbar_files_are_named(tmp_path):
  fits.PrimaryHDU(np.zeros((4, 9, 9))).writeto(tmp_path / "A.fits")
  with pytest.raises(FileNotFoundError, match=r"M_1.fits: missing FITS file"):
    orionbar.load_orionbar(str(tmp_path))
  fits.PrimaryHDU(np.zeros((3, 10))).writeto(tmp_path / "M_1.fits")
  with pytest.raises(ValueError, match=r"M_1.fits: component spectra has shape \(3, 10\), "
                                       r"expected \(4, any\)"):
    orionbar.load_orionbar(str(tmp_path))
  (tmp_path / "broken").mkdir()
  (tmp_path / "broken" / "A.fits").write_bytes(b"not a fits file")
  with pytest.raises(ValueError, match="A.fits: not a readable FITS file"):
    orionbar.load_orionbar(str(tmp_path / "broken"))
  with pytest.raises(FileNotFoundError, match="data.dir='/nonexistent'"):
    orionbar.load_orionbar("/nonexistent")


def test_non_finite_fits_values_are_reported(tmp_path):
  data = np.ones((4, 9, 9))
  data[1, 2, 3] = np.nan
  fits.PrimaryHDU(data).writeto(tmp_path / "A.fits")
  with pytest.raises(ValueError, match="A.fits: abundance maps holds 1 non-finite values"):
    orionbar.load_orionbar(str(tmp_path))


def test_orionbar_smoke_run_evaluates_in_the_subspace_and_writes_the_cube(trained):
  """The Orion Bar run of the command line's settings, in this process."""
  workdir = trained("jwst", "orionbar,smoke", **{"data.dir": shared_data_dir("jwst_orionbar")})
  written = json.loads((workdir / "eval.json").read_text())
  for split, columns in (("validation", [69, 105]), ("test", [108, 144])):
    report = written[split]
    assert report["region"]["bands"] == 4974 and report["region"]["code_dim"] == 4
    assert report["region"]["columns"] == columns
    assert set(METRICS) <= set(report["truth_in_subspace"])
  cube, wavelengths = _wavelengths(workdir / "products" / "fused_cube.fits")
  assert cube.shape == (4974, 48, 36)    # the test strip
  assert 0.99 < wavelengths[0] < wavelengths[-1] < 2.36
