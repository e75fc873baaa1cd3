"""Model-based JWST fusion: the subspace forward models against the instrument simulation,
and the conjugate-gradient solve against a dense least-squares solve."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fusionjax.baselines import model_based, model_based_weights
from fusionjax.data import coding as coding_lib
from fusionjax.data.jwst import procedural
from fusionjax.physics import jwst, noise


@functools.lru_cache(maxsize=None)
def _problem(height: int, width: int) -> dict:
  """A noisy procedural observation (height x width NIRCam pixels, 40 wavelengths, 3
  components) coded in a 3-dimensional subspace, and its truth."""
  scene = procedural.procedural_scene(height=height, width=width, num_wavelengths=40,
                                      num_components=3, seed=1)
  instruments = procedural.procedural_instruments(scene.wavelengths_um, decimation=3)
  truth = scene.cube(slice(None))
  nircam, nirspec_e = jwst.observe(scene.spectra, scene.abundances, instruments, seed=2)
  nirspec = nirspec_e / instruments.nirspec_throughput[:, None, None]
  coding = coding_lib.fit_coding(nirspec.reshape(40, -1).T, 3)
  sub = model_based.subspace_instruments(instruments, coding)
  return dict(instruments=instruments, coding=coding, sub=sub, truth=truth, nircam=nircam,
              nirspec=nirspec)


@pytest.fixture
def problem():
  """24 x 27 pixels: a NIRSpec grid of 8 x 9, 4 x 5 of them away from the edges."""
  return _problem(24, 27)


@pytest.fixture
def tiny_problem():
  """12 x 15 pixels, for dense matrices."""
  return _problem(12, 15)


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


@pytest.mark.parametrize("regulariser", ["smoothness", "prior", "both"])
def test_solve_matches_dense_least_squares(tiny_problem, regulariser):
  """The conjugate-gradient minimum of the reduced objective is the least-squares solution
  of the whole whitened system: every NIRCam pixel and every NIRSpec wavelength and pixel
  with its own noise, and the regulariser's rows."""
  sub = tiny_problem["sub"]
  nircam, nirspec = tiny_problem["nircam"], tiny_problem["nirspec"]
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
  smoothness = weight if regulariser in ("smoothness", "both") else 0.0
  prior_weight = weight / 2 if regulariser in ("prior", "both") else 0.0
  prior = rng.normal(size=shape).astype(np.float32) if prior_weight else None
  differences = np.concatenate([_dense(lambda v: jnp.diff(v, axis=0), shape),
                                _dense(lambda v: jnp.diff(v, axis=1), shape)])
  system = np.concatenate([np.sqrt(np.moveaxis(w_m, 0, -1).ravel())[:, None] * a_m,
                           np.sqrt(w_h.ravel())[:, None] * a_h,
                           np.sqrt(smoothness) * differences,
                           np.sqrt(prior_weight) * np.eye(a_m.shape[1])])
  target = np.concatenate([np.sqrt(np.moveaxis(w_m, 0, -1).ravel()) * y_m,
                           np.sqrt(w_h.ravel()) * y_h, np.zeros(len(differences)),
                           np.sqrt(prior_weight) * (prior.ravel() if prior is not None else
                                                    np.zeros(a_m.shape[1]))])
  expected = np.linalg.lstsq(system, target, rcond=None)[0].reshape(shape)
  solved = model_based.solve(sub, data, smoothness=smoothness, prior=prior,
                             prior_weight=prior_weight, iterations=2000)
  np.testing.assert_allclose(solved, expected, atol=2e-3 * np.abs(expected).max())


def test_the_selected_smoothness_fits_the_truth_better_than_the_extremes(problem):
  """On a noisy observation, the weight chosen against the truth is an interior one and its
  solution is closer to the truth than bicubic upsampling of the NIRSpec cube."""
  sub, coding = problem["sub"], problem["coding"]
  data = model_based.observations(sub, problem["nircam"], problem["nirspec"])
  truth_codes = coding.encode(np.moveaxis(problem["truth"], 0, -1))
  best, errors = model_based_weights.select_weight(sub, data, coding, truth_codes)
  assert errors[best] < errors[max(errors)] and errors[best] < errors[min(errors)]
  from fusionjax.physics import sampling
  lr_codes = coding.encode_observed(np.moveaxis(problem["nirspec"], 0, -1))
  bicubic = np.asarray(sampling.upsample_bicubic(lr_codes, 3))
  assert errors[best] < model_based_weights.subspace_squared_error(coding, bicubic, truth_codes)


def test_reduced_chi2_is_one_for_the_truth_and_larger_for_a_blurred_cube(problem):
  """The truth explains the noisy observations to their noise (reduced chi^2 near 1 against
  each); the NIRSpec cube upsampled (bicubic) misses NIRCam's detail (far above 1)."""
  from fusionjax.physics import sampling
  truth, nircam, nirspec = problem["truth"], problem["nircam"], problem["nirspec"]
  instruments = problem["instruments"]
  chi2 = jwst.reduced_chi2(truth, instruments, nircam, nirspec)
  assert 0.8 < chi2["chi2_nircam"] < 1.2 and 0.8 < chi2["chi2_nirspec"] < 1.2
  upsampled = np.moveaxis(np.asarray(sampling.upsample_bicubic(
      np.moveaxis(nirspec, 0, -1), 3)), -1, 0)
  assert jwst.reduced_chi2(upsampled, instruments, nircam, nirspec)["chi2_nircam"] > 3


def test_subspace_chi2_matches_the_cubes_and_the_discrepancy_principle_fits_to_the_noise(problem):
  """The solver's reduced chi^2 of codes equals `physics.jwst.reduced_chi2` of the cube they
  decode to; the discrepancy principle's weight explains both observations to their noise
  (or, where the weakest smoothing cannot, within 1 % of its fit) while the next stronger
  one tried does not, and its solution is closer to the truth than the strongest
  smoothing's."""
  sub, coding, instruments = problem["sub"], problem["coding"], problem["instruments"]
  nircam, nirspec = problem["nircam"], problem["nirspec"]
  data = model_based.observations(sub, nircam, nirspec)
  codes = coding.encode(np.moveaxis(problem["truth"], 0, -1)).astype(np.float32)
  cube = np.moveaxis(np.asarray(coding.decode(codes)), -1, 0)
  exact = jwst.reduced_chi2(cube, instruments, nircam, nirspec)
  np.testing.assert_allclose(model_based.reduced_chi2(sub, data, codes),
                             (exact["chi2_nircam"], exact["chi2_nirspec"]), rtol=2e-2)
  grid = tuple(10.0 ** e for e in np.arange(-3.0, 2.01, 0.5))
  chosen = model_based_weights.discrepancy_weight(sub, data, grid)
  bars = [max(1.0, 1.01 * floor) for floor in chosen.chi2[min(grid)]]
  fits = lambda weight: all(v <= bar for v, bar in zip(chosen.chi2[weight], bars))  # noqa: E731
  stronger = min(w for w in chosen.chi2 if w > chosen.weight)
  assert fits(chosen.weight) and not fits(stronger)
  assert len(chosen.chi2) <= 5    # the weakest weight, then bisection over 11
  np.testing.assert_allclose(model_based.reduced_chi2(sub, data, chosen.codes),
                             chosen.chi2[chosen.weight], rtol=1e-3)
  truth_codes = coding.encode(np.moveaxis(problem["truth"], 0, -1))
  strongest = model_based.fuse(sub, data, relative_smoothness=max(grid))
  assert (model_based_weights.subspace_squared_error(coding, chosen.codes, truth_codes)
          < model_based_weights.subspace_squared_error(coding, strongest, truth_codes))


def test_a_correction_is_kept_as_far_as_the_observations_allow(problem):
  """A correction towards the truth is kept whole; one that adds noise (or a bias) to the
  fusion is scaled down until it explains both observations as well as the base, to nothing
  if need be."""
  sub, coding = problem["sub"], problem["coding"]
  data = model_based.observations(sub, problem["nircam"], problem["nirspec"])
  base = model_based.fuse(sub, data, relative_smoothness=1.0)
  truth_codes = coding.encode(np.moveaxis(problem["truth"], 0, -1)).astype(np.float32)
  fraction, codes = model_based_weights.trusted_correction(sub, data, base, truth_codes)
  assert fraction == 1.0
  np.testing.assert_allclose(codes, truth_codes, atol=1e-5 * np.abs(truth_codes).max())
  rng = np.random.default_rng(3)
  scale = np.abs(base).std(axis=(0, 1))
  base_chi2 = model_based.reduced_chi2(sub, data, base)
  for size in (0.3, 30.0):
    noisy = base + size * scale * rng.normal(size=base.shape).astype(np.float32)
    fraction, codes = model_based_weights.trusted_correction(sub, data, base, noisy)
    assert fraction < 1.0
    assert all(c <= max(1.0, b) for c, b in zip(model_based.reduced_chi2(sub, data, codes),
                                                base_chi2))
    np.testing.assert_allclose(codes, base + np.float32(fraction) * (noisy - base), rtol=1e-6)
  assert fraction == 0.0 and np.array_equal(codes, base)


def test_observations_reduced_row_block_by_row_block_equal_the_whole_cube_at_once(problem,
                                                                                 monkeypatch):
  """A NIRSpec cube reduced a row at a time, with pixels without data, gives the same
  solver terms as at once."""
  sub = problem["sub"]
  nirspec = problem["nirspec"].copy()
  nirspec[3, 2, 4] = np.nan
  whole = model_based.observations(sub, problem["nircam"], nirspec)
  monkeypatch.setattr(model_based, "NIRSPEC_BLOCK_VALUES", 1)
  blocked = model_based.observations(sub, problem["nircam"], nirspec)
  for name, value in whole._asdict().items():
    np.testing.assert_allclose(getattr(blocked, name), value, rtol=1e-6, err_msg=name)
  assert float(whole.nirspec_count[2, 4]) == nirspec.shape[0] - 1
