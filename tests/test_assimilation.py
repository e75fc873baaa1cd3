"""Variational assimilation with a Koopman prior, on 4 simulated devices."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from fusionjax import parallel
from fusionjax.assimilation import driver, variational
from fusionjax.models.koopman_ae import KoopmanAutoencoder

STEPS = np.array([0, 3, 5, 9, 14, 20])
NUM_STEPS = 21


def _assimilate(model, params, observations, steps, mask, start, neighbours, settings,
                num_steps=NUM_STEPS):
  problem = variational.Problem(observations, steps, mask, start, neighbours, num_steps)
  return variational.assimilate(model, params, problem, settings)


def _prior():
  model = KoopmanAutoencoder(state_dim=4, hidden=(32, 16), latent_dim=4, operator="cayley")
  params = model.init(jax.random.key(0), jnp.zeros((1, 4)), 1)
  params = jax.tree.map(lambda p: p + 0.3 * jax.random.normal(jax.random.key(1), p.shape),
                        params)
  return model, params


def _problem(model, params, pixels=8):
  z_true = jax.random.normal(jax.random.key(2), (pixels, 1, 4))
  steps = jnp.broadcast_to(jnp.asarray(STEPS), (pixels, len(STEPS)))
  observations = variational.decode_at(model, params, z_true, steps, 0)[..., :2]
  z_start = z_true + 0.3 * jax.random.normal(jax.random.key(3), z_true.shape)
  neighbours = driver.grid_neighbours(2, pixels // 2)
  return z_true, steps, observations, z_start, neighbours


def test_assimilation_recovers_the_trajectory_sharded_over_devices():
  assert jax.device_count() == 4
  model, params = _prior()
  z_true, steps, observations, z_start, neighbours = _problem(model, params)
  mask = jnp.ones(steps.shape)
  # One pixel per device per chunk: the pixels are decoded in two chunks.
  settings = variational.Settings(iterations=400, learning_rate=0.02, log_every=0,
                                  chunk_rows=len(STEPS))
  run = jax.jit(lambda *a: _assimilate(model, params, *a, settings))
  mesh = parallel.make_mesh()
  sharded = lambda x: jax.device_put(x, NamedSharding(mesh, PartitionSpec("data")))
  z0, misfit = run(*map(sharded, (observations, steps, mask, z_start, neighbours)))
  start_misfit = float(jnp.mean((variational.decode_at(model, params, z_start, steps, 0)[..., :2]
                                 - observations) ** 2))
  assert float(misfit) < 1e-3 * start_misfit
  # Unobserved dates, inside the window and past it, come out right.
  later = jnp.broadcast_to(jnp.array([7, 25, 40]), (len(z0), 3))
  np.testing.assert_allclose(variational.decode_at(model, params, z0, later, 0),
                             variational.decode_at(model, params, z_true, later, 0), atol=2e-2)
  # The same on one device.
  z_single, _ = run(observations, steps, mask, z_start, neighbours)
  np.testing.assert_allclose(z0, z_single, atol=1e-4)


def test_masked_dates_are_ignored_and_smoothness_pulls_unobserved_pixels_to_neighbours():
  model, params = _prior()
  z_true, steps, observations, z_start, neighbours = _problem(model, params)
  mask = jnp.ones(steps.shape).at[0].set(0.0)     # pixel 0 sees nothing
  corrupted = observations.at[1, 2].set(50.0)
  mask = mask.at[1, 2].set(0.0)                   # a masked outlier changes nothing
  plain = variational.Settings(iterations=100, learning_rate=0.02, log_every=0)
  z_plain, _ = _assimilate(model, params, corrupted, steps, mask, z_start,
                                       neighbours, plain)
  z_clean, _ = _assimilate(model, params, observations, steps, mask, z_start,
                                       neighbours, plain)
  np.testing.assert_allclose(z_plain, z_clean, atol=1e-6)
  np.testing.assert_allclose(z_plain[0], z_start[0], atol=1e-6)   # no data, no change
  smooth = variational.Settings(iterations=300, learning_rate=0.02, smoothness_weight=1.0,
                                log_every=0)
  z_smooth, _ = _assimilate(model, params, observations, steps, mask, z_start,
                                        neighbours, smooth)
  neighbour_mean = jnp.mean(z_smooth[jnp.asarray(neighbours[0])], axis=0)
  assert float(jnp.linalg.norm(z_smooth[0] - neighbour_mean)) < 0.5 * float(
      jnp.linalg.norm(z_start[0] - neighbour_mean))


def _reference_cost(model, params, control, observations, steps, mask, background, neighbours,
                    settings):
  """J written out over the whole problem at once, the powers of K by repeated squaring."""
  z = (model.apply(params, control, method=model.encode) if settings.control == "state"
       else control)
  residual = (variational.decode_at(model, params, z, steps, settings.segment_steps)[..., :2]
              - observations)
  weight = mask[..., None] * jnp.ones(2)
  total = (jnp.sum(weight * variational.misfit_penalty(residual, settings.robust_scale))
           / jnp.sum(weight))
  koopman_n = jnp.linalg.matrix_power(model.apply(params, method=model.koopman),
                                      settings.segment_steps)
  mean_square = lambda difference: jnp.mean(jnp.sum(difference ** 2, -1))
  total += settings.model_error_weight * mean_square(z[:, 1:] - z[:, :-1] @ koopman_n.T)
  total += settings.background_weight * mean_square(control - background)
  return total + settings.smoothness_weight * mean_square(control[:, None] - control[neighbours])


@pytest.mark.parametrize("chunk_rows", [1, 0])
def test_chunked_cost_and_gradient_equal_the_whole_problem_at_once(chunk_rows):
  """Six pixels on four devices: with one pixel per device per chunk, two chunks of four, the
  last two places padding; by default one chunk of eight."""
  model, params = _prior()
  settings = variational.Settings(control="state", segment_steps=7, model_error_weight=0.7,
                                  background_weight=0.3, smoothness_weight=0.2,
                                  robust_scale=0.5, chunk_rows=chunk_rows)
  steps = jnp.broadcast_to(jnp.asarray(STEPS), (6, len(STEPS)))
  observations = jax.random.normal(jax.random.key(11), (6, len(STEPS), 2))
  mask = (jax.random.uniform(jax.random.key(12), steps.shape) < 0.7).astype(jnp.float32)
  background = jax.random.normal(jax.random.key(13), (6, 3, 4))
  control = background + 0.5 * jax.random.normal(jax.random.key(14), background.shape)
  neighbours = jnp.asarray(driver.grid_neighbours(2, 3))
  problem = variational.Problem(observations, steps, mask, background, neighbours, NUM_STEPS)
  (value, misfit), gradient = jax.jit(
      variational.value_and_gradient(model, params, problem, settings))(control,
                                                                        jax.random.key(0))
  expected, expected_gradient = jax.value_and_grad(lambda c: _reference_cost(
      model, params, c, observations, steps, mask, background, neighbours, settings))(control)
  np.testing.assert_allclose(value, expected, rtol=1e-5)
  np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(variational.cost(model, params, control, problem, settings)[0],
                             expected, rtol=1e-5)
  z = model.apply(params, control, method=model.encode)
  squares = mask[..., None] * (variational.decode_at(model, params, z, steps, 7)[..., :2]
                               - observations) ** 2
  np.testing.assert_allclose(misfit, jnp.sum(squares) / (2 * jnp.sum(mask)), rtol=1e-5)


def test_dates_per_iteration_is_an_unbiased_estimate_on_observed_dates_only():
  model, params = _prior()
  z_true, steps, observations, z_start, neighbours = _problem(model, params)
  # Pixel 0 sees two dates, the others four or more of six.
  mask = jnp.ones(steps.shape).at[0, 2:].set(0.0).at[1:, 1].set(0.0).at[2:4, 4].set(0.0)
  problem = variational.Problem(observations + 0.1, steps, mask, z_start, neighbours,
                                NUM_STEPS)
  exact = variational.Settings(smoothness_weight=0.5)
  (value, misfit), gradient = variational.value_and_gradient(
      model, params, problem, exact)(z_start, jax.random.key(0))
  # Every observed date kept: the exact cost, whatever the draw.
  evaluate = variational.value_and_gradient(
      model, params, problem, dataclasses.replace(exact, dates_per_iteration=5))
  (all_value, _), all_gradient = evaluate(z_start, jax.random.key(1))
  np.testing.assert_allclose(all_value, value, rtol=1e-5)
  np.testing.assert_allclose(all_gradient, gradient, rtol=1e-4, atol=1e-7)
  # Two dates a pixel: each draw differs, their mean is the exact cost and gradient.
  evaluate = jax.jit(jax.vmap(variational.value_and_gradient(
      model, params, problem, dataclasses.replace(exact, dates_per_iteration=2)),
      in_axes=(None, 0)))
  (values, misfits), gradients = evaluate(z_start, jax.random.split(jax.random.key(2), 4000))
  assert float(jnp.std(misfits)) > 0.05 * float(misfit)
  np.testing.assert_allclose(jnp.mean(values), value, rtol=0.02)
  np.testing.assert_allclose(jnp.mean(misfits), misfit, rtol=0.02)
  np.testing.assert_allclose(jnp.mean(gradients, 0), gradient,
                             atol=0.03 * float(jnp.max(jnp.abs(gradient))))
  # Pixel 0 has exactly two observed dates: its misfit part never varies.
  pixel_zero = jax.vmap(lambda g: g[0])(gradients)
  np.testing.assert_allclose(pixel_zero, jnp.broadcast_to(gradient[0], pixel_zero.shape),
                             rtol=1e-4, atol=1e-7)


def test_background_is_the_encoded_state_carried_back_to_step_zero():
  model, params = _prior()
  state = jax.random.normal(jax.random.key(4), (5, 4))
  step = jnp.array([0, 1, 4, 9, 30])
  z_b = variational.background(model, params, state, step)
  forward = variational.latent_at(model, params, z_b[:, None], step[:, None], 0)[:, 0]
  np.testing.assert_allclose(forward, model.apply(params, state, method=model.encode),
                             atol=1e-4)


def test_mean_background_is_the_latent_least_squares_start_of_every_defined_state():
  model, params = _prior()                       # Cayley: K is exactly orthogonal
  states = jax.random.normal(jax.random.key(10), (3, 5, 4))
  steps = jnp.broadcast_to(jnp.array([0, 2, 3, 7, 12]), (3, 5))
  defined = jnp.array([[1, 1, 1, 1, 1], [0, 1, 0, 1, 0], [0, 0, 0, 0, 0]], jnp.float32)
  fallback = jnp.full((3, 4), 7.0)
  z = variational.mean_background(model, params, states, steps, defined, fallback)
  encoded = model.apply(params, states, method=model.encode)

  def linearity(z0, pixel):                      # sum_t ||K^t z_0 - phi(x_t)||^2, defined t
    carried = variational.latent_at(model, params, z0[None, None], steps[pixel][None], 0)[0]
    return jnp.sum(defined[pixel][:, None] * (carried - encoded[pixel]) ** 2)
  for pixel in (0, 1):
    gradient = jax.grad(linearity)(z[pixel], pixel)
    assert float(jnp.linalg.norm(gradient)) < 1e-4 * float(jnp.linalg.norm(z[pixel])), gradient
  # Undefined states do not count, and a pixel without any keeps the fallback.
  moved = variational.mean_background(model, params, states.at[1, 0].set(99.0), steps,
                                      defined, fallback)
  np.testing.assert_allclose(moved[1], z[1], atol=1e-6)
  np.testing.assert_array_equal(z[2], fallback[2])


def test_grid_neighbours_are_up_down_left_right_clamped_at_edges():
  neighbours = driver.grid_neighbours(2, 3)
  np.testing.assert_array_equal(neighbours[0], [0, 3, 0, 1])
  np.testing.assert_array_equal(neighbours[4], [1, 4, 3, 5])


def test_segments_follow_a_trajectory_that_changes_course_and_free_runs_link_them():
  model, params = _prior()
  z_a = jax.random.normal(jax.random.key(5), (4, 1, 4))
  z_b = jax.random.normal(jax.random.key(6), (4, 1, 4))
  steps = jnp.broadcast_to(jnp.arange(0, 20, 2), (4, 10))
  # Until step 10 the pixels follow z_a, from step 10 on the trajectory started from z_b.
  truth = jnp.where((steps < 10)[..., None],
                    variational.decode_at(model, params, z_a, steps, 0),
                    variational.decode_at(model, params, z_b, steps - 10, 0))[..., :2]
  mask = jnp.ones(steps.shape)
  neighbours = driver.grid_neighbours(2, 2)
  start = jnp.zeros((4, 1, 4))
  strong = variational.Settings(iterations=400, learning_rate=0.05, log_every=0)
  _, strong_misfit = _assimilate(model, params, truth, steps, mask, start,
                                             neighbours, strong, num_steps=20)
  weak = variational.Settings(iterations=400, learning_rate=0.05, segment_steps=10,
                              model_error_weight=0.0, log_every=0)
  two = variational.segment_count(20, 10)
  assert two == 2
  segments_start = variational.segment_starts(model, params, start[:, 0], two, 10)
  _, weak_misfit = _assimilate(model, params, truth, steps, mask, segments_start,
                                           neighbours, weak, num_steps=20)
  assert float(weak_misfit) < 0.05 * float(strong_misfit)
  # The segment starts of a free run are the free run itself.
  z0 = jax.random.normal(jax.random.key(7), (3, 4))
  starts = variational.segment_starts(model, params, z0, 3, 7)
  probe = jnp.broadcast_to(jnp.array([3, 9, 16, 30]), (3, 4))
  np.testing.assert_allclose(variational.latent_at(model, params, starts, probe, 7),
                             variational.latent_at(model, params, z0[:, None], probe, 0),
                             atol=1e-4)


def test_state_control_fits_through_the_encoder_and_bad_settings_are_named():
  model, params = _prior()
  x_true = jax.random.normal(jax.random.key(8), (6, 1, 4))
  z_true = model.apply(params, x_true, method=model.encode)
  steps = jnp.broadcast_to(jnp.asarray(STEPS), (6, len(STEPS)))
  observations = variational.decode_at(model, params, z_true, steps, 0)[..., :2]
  x_start = x_true + 0.3 * jax.random.normal(jax.random.key(9), x_true.shape)
  settings = variational.Settings(iterations=300, learning_rate=0.02, control="state",
                                  background_weight=1e-4, smoothness_weight=1e-4, log_every=0)
  problem = variational.Problem(observations, steps, jnp.ones(steps.shape), x_start,
                                driver.grid_neighbours(2, 3), NUM_STEPS)
  start = variational.cost(model, params, x_start, problem, settings)[1]
  _, misfit = _assimilate(model, params, observations, steps, jnp.ones(steps.shape),
                                      x_start, driver.grid_neighbours(2, 3), settings)
  assert float(misfit) < 1e-2 * float(start)
  with pytest.raises(ValueError, match="control='weights': expected one of"):
    variational.Settings(control="weights")
  with pytest.raises(ValueError, match="segment_steps=-1: expected >= 0"):
    variational.Settings(segment_steps=-1)
  with pytest.raises(ValueError, match="start='last': expected one of"):
    variational.Settings(start="last")
  with pytest.raises(ValueError, match="robust_scale=-0.1: expected >= 0"):
    variational.Settings(robust_scale=-0.1)
  with pytest.raises(ValueError, match="dates_per_iteration=-2: expected >= 0"):
    variational.Settings(dates_per_iteration=-2)


def test_huber_misfit_is_quadratic_within_its_scale_and_linear_beyond():
  residual = jnp.array([-3.0, -0.5, 0.0, 0.2, 0.5, 2.0])
  np.testing.assert_allclose(variational.misfit_penalty(residual, 0.0), residual ** 2)
  np.testing.assert_allclose(variational.misfit_penalty(residual, 0.5),
                             [2.75, 0.25, 0.0, 0.04, 0.25, 1.75], rtol=1e-6)
  slope = jax.vmap(jax.grad(lambda r: variational.misfit_penalty(r, 0.5)))(residual)
  np.testing.assert_allclose(slope, [-1.0, -1.0, 0.0, 0.4, 1.0, 1.0], rtol=1e-6)


def test_robust_misfit_resists_an_outlier_the_mask_missed():
  model, params = _prior()
  z_true, steps, observations, z_start, neighbours = _problem(model, params)
  mask = jnp.ones(steps.shape)
  outlier = observations.at[:, 3].add(3.0)       # one hazy date per pixel, left unmasked
  error = {}
  for scale in (0.0, 0.05):
    settings = variational.Settings(iterations=400, learning_rate=0.02, robust_scale=scale,
                                    log_every=0)
    z, misfit = _assimilate(model, params, outlier, steps, mask, z_start,
                                        neighbours, settings)
    clean = mask.at[:, 3].set(0.0)
    error[scale] = float(jnp.sqrt(jnp.sum(clean[..., None] * (variational.decode_at(
        model, params, z, steps, 0)[..., :2] - observations) ** 2) / (2 * jnp.sum(clean))))
    # The reported misfit stays the mean square, whatever the penalty.
    assert float(misfit) > 9.0 / len(STEPS) * 0.5
  assert error[0.05] < 0.3 * error[0.0], error
