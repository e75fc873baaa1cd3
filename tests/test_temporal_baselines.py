"""Gap-filling and forecasting baselines."""
import numpy as np

from fusionjax.baselines import temporal


def test_linear_interpolation_is_exact_on_lines_and_flat_outside():
  steps = np.arange(10, dtype=np.float32)
  values = np.stack([2.0 * steps + 1.0, -steps], -1)[None]
  observed = np.zeros((1, 10), bool)
  observed[0, [2, 5, 7]] = True
  filled = temporal.linear_interpolation(values, observed)
  np.testing.assert_allclose(filled[0, 2:8], values[0, 2:8])
  np.testing.assert_allclose(filled[0, :2], np.repeat(values[0, 2:3], 2, 0))
  np.testing.assert_allclose(filled[0, 8:], np.repeat(values[0, 7:8], 2, 0))


def test_persistence_holds_the_last_observation_before_the_cutoff():
  values = np.arange(12, dtype=np.float32).reshape(2, 6, 1)
  observed = np.array([[1, 1, 0, 1, 0, 1], [0, 0, 0, 0, 0, 1]], bool)
  held = temporal.persistence(values, observed, cutoff=5)
  np.testing.assert_allclose(held[0, :, 0], 3.0)
  np.testing.assert_allclose(held[1, :, 0], 0.0)   # nothing before the cut-off


def test_linear_dynamics_forecasts_a_damped_oscillation_exactly():
  # x_t = r^t cos(w t + phase) obeys x_{t+1} = 2 r cos(w) x_t - r^2 x_{t-1}: linear in the raw
  # state (x_t, x_t - x_{t-1}).
  t = np.arange(60)
  phases = np.linspace(0, 3, 5)[:, None]
  values = (0.97 ** t * np.cos(0.3 * t + phases) + 0.5)[..., None]
  observed = np.ones(values.shape[:2], bool)
  forecast = temporal.linear_dynamics(values, observed, cutoff=40)
  np.testing.assert_allclose(forecast[:, 40:], values[:, 40:], atol=1e-6)
