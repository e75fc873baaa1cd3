"""Koopman autoencoder: K's parametrisations, powers and rollouts."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fusionjax.models.koopman_ae import (KoopmanAutoencoder, matrix_power_by_steps,
                                         orthogonality_error, rollout)
from tests import mixed_precision


def _model(operator, rng=0):
  model = KoopmanAutoencoder(state_dim=4, hidden=(16, 8), latent_dim=6, operator=operator)
  params = model.init(jax.random.key(rng), jnp.zeros((1, 4)), 1)
  return model, params


def test_operator_starts_at_identity_and_cayley_stays_orthogonal():
  for operator in ("penalty", "cayley"):
    model, params = _model(operator)
    np.testing.assert_allclose(model.apply(params, method=model.koopman), np.eye(6), atol=1e-6)
  model, params = _model("cayley")
  params = jax.tree.map(lambda p: p + jax.random.normal(jax.random.key(1), p.shape), params)
  koopman = model.apply(params, method=model.koopman)
  assert float(orthogonality_error(koopman)) < 1e-9
  assert float(jnp.max(jnp.abs(koopman - jnp.eye(6)))) > 0.1
  with pytest.raises(ValueError, match="model.operator='unitary'"):
    _model("unitary")


def test_powers_by_repeated_squaring_equal_matrix_powers():
  koopman = np.asarray(jax.random.normal(jax.random.key(2), (5, 5))) / 3
  z = np.asarray(jax.random.normal(jax.random.key(3), (7, 5)))
  steps = np.array([0, 1, 2, 3, 7, 12, 31])
  got = matrix_power_by_steps(jnp.asarray(koopman), jnp.asarray(steps), jnp.asarray(z), 31)
  expected = np.stack([np.linalg.matrix_power(koopman, int(s)) @ z[i] for i, s in
                       enumerate(steps)])
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_rollout_applies_k_step_by_step_and_the_model_decodes_it():
  model, params = _model("cayley")
  params = jax.tree.map(lambda p: p + 0.3 * jax.random.normal(jax.random.key(4), p.shape),
                        params)
  koopman = model.apply(params, method=model.koopman)
  x0 = jax.random.normal(jax.random.key(5), (3, 4))
  z0 = model.apply(params, x0, method=model.encode)
  z = rollout(koopman, z0, 5)
  assert z.shape == (3, 6, 6)
  np.testing.assert_allclose(z[:, 4], z0 @ np.linalg.matrix_power(np.asarray(koopman), 4).T,
                             rtol=1e-4, atol=1e-6)
  predicted = model.apply(params, x0, 5)
  np.testing.assert_allclose(predicted, model.apply(params, z, method=model.decode), rtol=1e-5)


def test_bfloat16_encoder_and_decoder_keep_latents_and_operator_float32():
  full, params = _model("penalty")
  params = jax.tree.map(lambda p: p + 0.3 * jax.random.normal(jax.random.key(6), p.shape),
                        params)
  mixed = KoopmanAutoencoder(state_dim=4, hidden=(16, 8), latent_dim=6, dtype=jnp.bfloat16)
  mixed_precision.assert_float32_parameters(mixed.init(jax.random.key(0), jnp.zeros((1, 4)), 1))
  x0 = jax.random.normal(jax.random.key(7), (3, 4))
  assert mixed.apply(params, x0, method=mixed.encode).dtype == jnp.float32
  np.testing.assert_array_equal(mixed.apply(params, method=mixed.koopman),
                                full.apply(params, method=full.koopman))
  reference = full.apply(params, x0, 5)
  mixed_precision.assert_rounding_only(reference, mixed.apply(params, x0, 5), reference)

  def loss(p, model):
    return jnp.mean((model.apply(p, x0, 5) - 0.2) ** 2)
  mixed_precision.assert_gradients_agree(jax.grad(loss)(params, full),
                                         jax.grad(loss)(params, mixed))
