"""Stefan-Boltzmann aggregation, the consistency projection and TsHARP."""
import jax
import numpy as np
import pytest

from fusionjax.baselines import tsharp
from fusionjax.physics import psf, thermal


def _field(seed=0, shape=(2, 16, 24, 1)):
  return 290.0 + 15.0 * np.random.default_rng(seed).random(shape).astype(np.float32)


def test_constant_field_aggregates_to_itself():
  field = np.full((1, 8, 8, 1), 287.3, np.float32)
  np.testing.assert_allclose(thermal.aggregate(field, 4), 287.3, rtol=1e-6)
  np.testing.assert_allclose(thermal.aggregate(field, 4, psf_sigma_pixels=2.7), 287.3, rtol=1e-6)


def test_aggregate_equals_direct_computation_and_is_at_least_the_mean():
  field = _field()
  blocks = field.astype(np.float64).reshape(2, 4, 4, 6, 4, 1)
  direct = np.mean(blocks ** 4, axis=(2, 4)) ** 0.25
  aggregated = np.asarray(thermal.aggregate(field, 4))
  np.testing.assert_allclose(aggregated, direct, rtol=1e-6)
  assert np.all(aggregated >= blocks.mean(axis=(2, 4)) - 1e-4)
  assert np.any(aggregated > blocks.mean(axis=(2, 4)) + 1e-3)


def test_aggregate_conserves_exitance():
  field = _field(1)
  coarse = thermal.aggregate(field, 2)
  np.testing.assert_allclose(np.mean(thermal.exitance(coarse)),
                             np.mean(thermal.exitance(field)), rtol=1e-5)


def test_psf_matches_requested_mtf_and_smooths():
  sigma = psf.mtf_sigma_pixels(4, 0.1)
  nyquist = 1 / 8
  assert np.exp(-2 * np.pi ** 2 * sigma ** 2 * nyquist ** 2) == pytest.approx(0.1)
  field = _field(2, (1, 32, 32, 1))
  blurred = thermal.aggregate(field, 4, psf_sigma_pixels=sigma)
  assert np.std(blurred) < np.std(thermal.aggregate(field, 4))
  with pytest.raises(ValueError, match="mtf_at_nyquist"):
    psf.mtf_sigma_pixels(4, 1.5)


def test_aggregate_rejects_partial_footprints():
  with pytest.raises(ValueError, match="4 x 4 footprints"):
    thermal.aggregate(np.ones((1, 10, 8, 1)), 4)


def test_enforce_aggregate_makes_any_field_consistent():
  coarse = thermal.aggregate(_field(3), 4)
  guess = _field(4)
  consistent = thermal.enforce_aggregate(guess, coarse)
  np.testing.assert_allclose(thermal.aggregate(consistent, 4), coarse, atol=2e-4)
  # Inside each footprint only the level changes: relative structure is kept.
  ratio = np.asarray(consistent / guess).reshape(2, 4, 4, 6, 4)
  np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:, :, :1, :, :1], ratio.shape),
                             atol=1e-6)


def test_tsharp_recovers_a_linear_temperature_ndvi_relation():
  rng = np.random.default_rng(5)
  fine_ndvi = rng.uniform(0.1, 0.9, (2, 16, 16, 1)).astype(np.float32)
  truth = 310.0 - 20.0 * fine_ndvi
  coarse_ndvi = fine_ndvi.reshape(2, 4, 4, 4, 4, 1).mean(axis=(2, 4))
  coarse = truth.reshape(2, 4, 4, 4, 4, 1).mean(axis=(2, 4))
  sharpened = jax.jit(tsharp.tsharp)(coarse, coarse_ndvi, fine_ndvi)
  np.testing.assert_allclose(sharpened, truth, atol=1e-3)
