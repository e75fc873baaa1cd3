import jax
import jax.numpy as jnp
import numpy as np

from fusionjax.models.fusformer import Fusformer
from fusionjax.physics import sampling


def _count(params):
  return sum(x.size for x in jax.tree.leaves(params))


def test_published_configuration_shapes_and_parameter_count():
  model = Fusformer(out_bands=31, scale_factor=4)
  lr, msi = jnp.ones((2, 16, 16, 31)), jnp.ones((2, 64, 64, 3))
  params = model.init(jax.random.key(0), lr, msi)
  assert model.apply(params, lr, msi).shape == (2, 64, 64, 31)
  # Embedding 34x48+48, 2 encoder and 2 decoder layers, conv 48->48 and 48->31.
  assert _count(params) == 111_247


def test_configurable_dims_and_scale():
  model = Fusformer(out_bands=8, scale_factor=3, embed_dim=24, num_heads=2, head_dim=12,
                    mlp_dim=32, num_encoder_layers=1, num_decoder_layers=1)
  lr, msi = jnp.ones((1, 5, 6, 8)), jnp.ones((1, 15, 18, 11))
  params = model.init(jax.random.key(0), lr, msi)
  assert model.apply(params, lr, msi).shape == (1, 15, 18, 8)


def test_untrained_model_is_bicubic_upsampling():
  rng = np.random.default_rng(0)
  lr = jnp.asarray(rng.random((1, 8, 8, 5)), jnp.float32)
  msi = jnp.asarray(rng.random((1, 24, 24, 3)), jnp.float32)
  model = Fusformer(out_bands=5, scale_factor=3)
  params = model.init(jax.random.key(1), lr, msi)
  np.testing.assert_allclose(model.apply(params, lr, msi), sampling.upsample_bicubic(lr, 3),
                             atol=1e-6)
  default_init = Fusformer(out_bands=5, scale_factor=3, zero_init_residual=False)
  params = default_init.init(jax.random.key(1), lr, msi)
  assert not np.allclose(default_init.apply(params, lr, msi), sampling.upsample_bicubic(lr, 3))


def test_mismatched_inputs_are_named():
  model = Fusformer(out_bands=5, scale_factor=3)
  try:
    model.init(jax.random.key(0), jnp.ones((1, 8, 8, 5)), jnp.ones((1, 20, 20, 3)))
  except ValueError as error:
    assert "does not match the multispectral image" in str(error)
  else:
    raise AssertionError("expected a ValueError")
