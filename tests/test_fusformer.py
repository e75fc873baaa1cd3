import jax
import jax.numpy as jnp
import numpy as np

from fusionjax.models.fusformer import Fusformer
from fusionjax.physics import sampling
from tests import mixed_precision


def _bicubic(lr, msi):
  """The three inputs of a fusion network, bicubic upsampling the estimate to correct."""
  return lr, msi, sampling.upsample_bicubic(lr, msi.shape[1] // lr.shape[1])


def _count(params):
  return sum(x.size for x in jax.tree.leaves(params))


def test_published_configuration_shapes_and_parameter_count():
  model = Fusformer(out_bands=31, scale_factor=4)
  inputs = _bicubic(jnp.ones((2, 16, 16, 31)), jnp.ones((2, 64, 64, 3)))
  params = model.init(jax.random.key(0), *inputs)
  assert model.apply(params, *inputs).shape == (2, 64, 64, 31)
  # Embedding 34x48+48, 2 encoder and 2 decoder layers, conv 48->48 and 48->31.
  assert _count(params) == 111_247


def test_configurable_dims_and_scale():
  model = Fusformer(out_bands=8, scale_factor=3, embed_dim=24, num_heads=2, head_dim=12,
                    mlp_dim=32, num_encoder_layers=1, num_decoder_layers=1)
  inputs = _bicubic(jnp.ones((1, 5, 6, 8)), jnp.ones((1, 15, 18, 11)))
  params = model.init(jax.random.key(0), *inputs)
  assert model.apply(params, *inputs).shape == (1, 15, 18, 8)


def test_untrained_model_is_the_estimate_it_corrects():
  rng = np.random.default_rng(0)
  lr = jnp.asarray(rng.random((1, 8, 8, 5)), jnp.float32)
  msi = jnp.asarray(rng.random((1, 24, 24, 3)), jnp.float32)
  base = jnp.asarray(rng.random((1, 24, 24, 5)), jnp.float32)   # any estimate
  model = Fusformer(out_bands=5, scale_factor=3)
  params = model.init(jax.random.key(1), lr, msi, base)
  np.testing.assert_array_equal(model.apply(params, lr, msi, base), base)
  default_init = Fusformer(out_bands=5, scale_factor=3, zero_init_residual=False)
  params = default_init.init(jax.random.key(1), lr, msi, base)
  assert not np.allclose(default_init.apply(params, lr, msi, base), base)


def test_mismatched_inputs_are_named():
  model = Fusformer(out_bands=5, scale_factor=3)
  try:
    model.init(jax.random.key(0), jnp.ones((1, 8, 8, 5)), jnp.ones((1, 20, 20, 3)),
               jnp.ones((1, 24, 24, 5)))
  except ValueError as error:
    assert "does not match the high-resolution image (20, 20)" in str(error)
  else:
    raise AssertionError("expected a ValueError")


def test_bfloat16_compute_keeps_float32_parameters_gradients_and_output():
  rng = np.random.default_rng(2)
  inputs = _bicubic(jnp.asarray(rng.random((2, 8, 8, 5)), jnp.float32),
                    jnp.asarray(rng.random((2, 24, 24, 3)), jnp.float32))
  full = Fusformer(out_bands=5, scale_factor=3, zero_init_residual=False)
  mixed = Fusformer(out_bands=5, scale_factor=3, zero_init_residual=False, dtype=jnp.bfloat16)
  params = full.init(jax.random.key(3), *inputs)
  mixed_precision.assert_float32_parameters(mixed.init(jax.random.key(3), *inputs))
  reference = full.apply(params, *inputs)
  mixed_precision.assert_rounding_only(reference, mixed.apply(params, *inputs),
                                       reference - inputs[2])

  def loss(p, model):
    return jnp.mean(jnp.abs(model.apply(p, *inputs) - 0.5))
  mixed_precision.assert_gradients_agree(jax.grad(loss)(params, full),
                                         jax.grad(loss)(params, mixed))


def test_windowed_attention_keeps_pixels_of_other_windows_out():
  rng = np.random.default_rng(4)
  lr = jnp.asarray(rng.random((1, 8, 8, 5)), jnp.float32)
  msi = jnp.asarray(rng.random((1, 24, 24, 3)), jnp.float32)
  model = Fusformer(out_bands=5, scale_factor=3, attention="windowed", window=12,
                    zero_init_residual=False, num_encoder_layers=1, num_decoder_layers=0)
  base = sampling.upsample_bicubic(lr, 3)
  params = model.init(jax.random.key(5), lr, msi, base)
  changed = msi.at[:, 20, 20].add(1.0)   # a pixel of the bottom-right window
  difference = np.abs(np.asarray(model.apply(params, lr, changed, base)
                                 - model.apply(params, lr, msi, base)))
  # Only the attention reaches past a pixel's 3x3 convolution neighbourhood, and only within
  # its window: the top-left window (away from the convolution's reach) is unchanged.
  assert difference[0, :10, :10].max() == 0 and difference[0, 12:, 12:].max() > 0
  assert np.abs(np.asarray(Fusformer(out_bands=5, scale_factor=3, zero_init_residual=False,
                                     num_encoder_layers=1, num_decoder_layers=0).apply(
      params, lr, changed, base) - model.apply(params, lr, changed, base)))[0, :10, :10].max() > 0
