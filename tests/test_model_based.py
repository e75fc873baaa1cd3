"""Model-based JWST fusion: the subspace forward models against the instrument simulation,
and the conjugate-gradient solve against a dense least-squares solve."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fusionjax.baselines import model_based
from fusionjax.data import coding as coding_lib
from fusionjax.data.jwst import procedural
from fusionjax.physics import jwst, noise


@pytest.fixture(scope="module")
def problem():
  """A tiny noisy procedural observation (24 x 30 NIRCam pixels, 40 wavelengths, 3
  components) coded in a 3-dimensional subspace, and its truth."""
  scene = procedural.procedural_scene(height=12, width=15, num_wavelengths=40,
                                      num_components=3, seed=1)
  instruments = procedural.procedural_instruments(scene.wavelengths_um, decimation=3)
  truth = scene.cube(slice(None))
  nircam, nirspec_e = jwst.observe(scene.spectra, scene.abundances, instruments, seed=2)
  nirspec = nirspec_e / instruments.nirspec_throughput[:, None, None]
  coding = coding_lib.fit_coding(nirspec.reshape(40, -1).T, 3)
  sub = model_based.subspace_instruments(instruments, coding)
  return dict(instruments=instruments, coding=coding, sub=sub, truth=truth, nircam=nircam,
              nirspec=nirspec)


def test_subspace_forward_models_reproduce_the_instrument_simulation(problem):
  """With the PSF interpolated between 4 node widths, both observations of a cube in the
  subspace are within 1e-3 of the simulation's (noise-free)."""
  sub, coding = problem["sub"], problem["coding"]
  codes = coding.encode(np.moveaxis(problem["truth"], 0, -1)).astype(np.float32)
  cube = np.moveaxis(np.asarray(coding.decode(codes)), -1, 0)
  nircam, nirspec = jwst.forward(cube, problem["instruments"])
  nircam_sub = np.moveaxis(np.asarray(model_based.nircam_images(sub, codes)), -1, 0) \
      + sub.nircam_offset[:, None, None]
  nirspec_sub = np.asarray(model_based.nirspec_cube(sub, codes)) \
      * sub.nirspec_throughput[:, None, None]
  assert np.abs(nircam_sub - nircam).max() < 1e-3 * np.abs(nircam).max()
  assert np.abs(nirspec_sub - nirspec).max() < 1e-3 * np.abs(nirspec).max()


def _dense(function, shape):
  """The matrix of a linear map of (H, W, d) codes, columns one per code value."""
  flat = lambda v: function(v.reshape(shape)).ravel()  # noqa: E731
  return np.asarray(jax.jacfwd(flat)(jnp.zeros(int(np.prod(shape)))), np.float64)


@pytest.mark.parametrize("regulariser", ["smoothness", "prior"])
def test_solve_matches_dense_least_squares(problem, regulariser):
  """The conjugate-gradient minimum of the reduced objective is the least-squares solution
  of the whole whitened system: every NIRCam pixel and every NIRSpec wavelength and pixel
  with its own noise, and the regulariser's rows."""
  sub = problem["sub"]
  nircam, nirspec = problem["nircam"], problem["nirspec"]
  data = model_based.observations(sub, nircam, nirspec)
  shape = (*nircam.shape[1:], sub.code_dim)
  weight = 3.0 * model_based.data_curvature(sub, data)
  a_m = _dense(lambda v: model_based.nircam_images(sub, v), shape)
  a_h = _dense(lambda v: model_based.nirspec_cube(sub, v)
               - jnp.asarray(sub.nirspec_offset)[:, None, None], shape)
  w_m = 1.0 / noise.detector_sigma(nircam, read_noise_e=sub.nircam_read_noise_e) ** 2
  w_h = 1.0 / model_based.nirspec_sigma(sub, nirspec) ** 2
  y_m = np.moveaxis(nircam - sub.nircam_offset[:, None, None], 0, -1).ravel()
  y_h = (nirspec - sub.nirspec_offset[:, None, None]).ravel()
  rng = np.random.default_rng(0)
  prior = rng.normal(size=shape).astype(np.float32) if regulariser == "prior" else None
  if prior is None:
    regulariser_rows = np.concatenate([
        _dense(lambda v: jnp.diff(v, axis=0), shape), _dense(lambda v: jnp.diff(v, axis=1), shape)])
    regulariser_target = np.zeros(len(regulariser_rows))
  else:
    regulariser_rows, regulariser_target = np.eye(a_m.shape[1]), prior.ravel()
  system = np.concatenate([np.sqrt(np.moveaxis(w_m, 0, -1).ravel())[:, None] * a_m,
                           np.sqrt(w_h.ravel())[:, None] * a_h,
                           np.sqrt(weight) * regulariser_rows])
  target = np.concatenate([np.sqrt(np.moveaxis(w_m, 0, -1).ravel()) * y_m,
                           np.sqrt(w_h.ravel()) * y_h, np.sqrt(weight) * regulariser_target])
  expected = np.linalg.lstsq(system, target, rcond=None)[0].reshape(shape)
  solved = model_based.solve(sub, data, weight=weight, prior=prior, iterations=2000)
  np.testing.assert_allclose(solved, expected, atol=2e-3 * np.abs(expected).max())


def test_the_selected_smoothness_fits_the_truth_better_than_the_extremes(problem):
  """On a noisy observation, the weight chosen against the truth is an interior one and its
  solution is closer to the truth than bicubic upsampling of the NIRSpec cube."""
  sub, coding = problem["sub"], problem["coding"]
  data = model_based.observations(sub, problem["nircam"], problem["nirspec"])
  truth_codes = coding.encode(np.moveaxis(problem["truth"], 0, -1))
  best, errors = model_based.select_weight(sub, data, coding, truth_codes)
  assert errors[best] < errors[max(errors)] and errors[best] < errors[min(errors)]
  from fusionjax.physics import sampling
  lr_codes = coding.encode_observed(np.moveaxis(problem["nirspec"], 0, -1))
  bicubic = np.asarray(sampling.upsample_bicubic(lr_codes, 3))
  assert errors[best] < model_based.subspace_squared_error(coding, bicubic, truth_codes)
