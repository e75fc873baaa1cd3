"""Variational assimilation with a Koopman prior, on 4 simulated devices."""
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from fusionjax import assimilation, parallel
from fusionjax.models.koopman_ae import KoopmanAutoencoder

STEPS = np.array([0, 3, 5, 9, 14, 20])


def _prior():
  model = KoopmanAutoencoder(state_dim=4, hidden=(32, 16), latent_dim=4, operator="cayley")
  params = model.init(jax.random.key(0), jnp.zeros((1, 4)), 1)
  params = jax.tree.map(lambda p: p + 0.3 * jax.random.normal(jax.random.key(1), p.shape),
                        params)
  return model, params


def _problem(model, params, pixels=8):
  z_true = jax.random.normal(jax.random.key(2), (pixels, 4))
  steps = jnp.broadcast_to(jnp.asarray(STEPS), (pixels, len(STEPS)))
  observations = assimilation.decode_at(model, params, z_true, steps)[..., :2]
  z_start = z_true + 0.3 * jax.random.normal(jax.random.key(3), z_true.shape)
  neighbours = assimilation.grid_neighbours(2, pixels // 2)
  return z_true, steps, observations, z_start, neighbours


def test_assimilation_recovers_the_trajectory_sharded_over_devices():
  assert jax.device_count() == 4
  model, params = _prior()
  z_true, steps, observations, z_start, neighbours = _problem(model, params)
  mask = jnp.ones(steps.shape)
  settings = assimilation.Settings(iterations=400, learning_rate=0.02, log_every=0)
  run = jax.jit(lambda *a: assimilation.assimilate(model, params, *a, settings))
  mesh = parallel.make_mesh()
  sharded = lambda x: jax.device_put(x, NamedSharding(mesh, PartitionSpec("data")))
  z0, misfit = run(*map(sharded, (observations, steps, mask, z_start, neighbours)))
  start_misfit = float(jnp.mean((assimilation.decode_at(model, params, z_start, steps)[..., :2]
                                 - observations) ** 2))
  assert float(misfit) < 1e-3 * start_misfit
  # Unobserved dates, inside the window and past it, come out right.
  later = jnp.broadcast_to(jnp.array([7, 25, 40]), (len(z0), 3))
  np.testing.assert_allclose(assimilation.decode_at(model, params, z0, later),
                             assimilation.decode_at(model, params, z_true, later), atol=2e-2)
  # The same on one device.
  z_single, _ = run(observations, steps, mask, z_start, neighbours)
  np.testing.assert_allclose(z0, z_single, atol=1e-4)


def test_masked_dates_are_ignored_and_smoothness_pulls_unobserved_pixels_to_neighbours():
  model, params = _prior()
  z_true, steps, observations, z_start, neighbours = _problem(model, params)
  mask = jnp.ones(steps.shape).at[0].set(0.0)     # pixel 0 sees nothing
  corrupted = observations.at[1, 2].set(50.0)
  mask = mask.at[1, 2].set(0.0)                   # a masked outlier changes nothing
  plain = assimilation.Settings(iterations=100, learning_rate=0.02, log_every=0)
  z_plain, _ = assimilation.assimilate(model, params, corrupted, steps, mask, z_start,
                                       neighbours, plain)
  z_clean, _ = assimilation.assimilate(model, params, observations, steps, mask, z_start,
                                       neighbours, plain)
  np.testing.assert_allclose(z_plain, z_clean, atol=1e-6)
  np.testing.assert_allclose(z_plain[0], z_start[0], atol=1e-6)   # no data, no change
  smooth = assimilation.Settings(iterations=300, learning_rate=0.02, smoothness_weight=1.0,
                                 log_every=0)
  z_smooth, _ = assimilation.assimilate(model, params, observations, steps, mask, z_start,
                                        neighbours, smooth)
  neighbour_mean = jnp.mean(z_smooth[jnp.asarray(neighbours[0])], axis=0)
  assert float(jnp.linalg.norm(z_smooth[0] - neighbour_mean)) < 0.5 * float(
      jnp.linalg.norm(z_start[0] - neighbour_mean))


def test_background_is_the_encoded_state_carried_back_to_step_zero():
  model, params = _prior()
  state = jax.random.normal(jax.random.key(4), (5, 4))
  step = jnp.array([0, 1, 4, 9, 30])
  z_b = assimilation.background(model, params, state, step)
  forward = assimilation.latent_at(model, params, z_b, step[:, None])[:, 0]
  np.testing.assert_allclose(forward, model.apply(params, state, method=model.encode),
                             atol=1e-4)


def test_grid_neighbours_are_up_down_left_right_clamped_at_edges():
  neighbours = assimilation.grid_neighbours(2, 3)
  np.testing.assert_array_equal(neighbours[0], [0, 3, 0, 1])
  np.testing.assert_array_equal(neighbours[4], [1, 4, 3, 5])
