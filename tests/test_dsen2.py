"""DSen2 and VDSen2 band sharpening."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from fusionjax import models
from fusionjax.models.dsen2 import DSen2, VDSen2
from fusionjax.physics import sampling
from tests import mixed_precision

# Sentinel-2 20 m case: 6 bands at 20 m guided by the 4 bands at 10 m.
TARGET_BANDS, GUIDE_BANDS = 6, 4
SMALL = {"num_blocks": 2, "features": 8}   # one size for the quick tests: their ops compile once


def _inputs(scale=2, seed=0, height=4, width=5):
  """(2, height, width, 6) low-resolution and (2, scale height, scale width, 4) guide bands,
  and their bicubic upsampling as the estimate to correct."""
  rng = np.random.default_rng(seed)
  lr = jnp.asarray(rng.random((2, height, width, TARGET_BANDS)), jnp.float32)
  msi = jnp.asarray(rng.random((2, scale * height, scale * width, GUIDE_BANDS)), jnp.float32)
  return lr, msi, sampling.upsample_bicubic(lr, scale)


def _count(params):
  return sum(x.size for x in jax.tree.leaves(params))


def _expected_count(blocks, features, target=TARGET_BANDS, guide=GUIDE_BANDS):
  def conv3x3(inputs, outputs):   # kernel + bias
    return 9 * inputs * outputs + outputs
  return (conv3x3(target + guide, features) + blocks * 2 * conv3x3(features, features)
          + conv3x3(features, target))


def test_published_parameter_counts():
  inputs = _inputs()
  for model, blocks, features, published in [
      (DSen2(out_bands=TARGET_BANDS, scale_factor=2), 6, 128, 1_789_574),
      (VDSen2(out_bands=TARGET_BANDS, scale_factor=2), 32, 256, 37_802_246)]:
    params = jax.eval_shape(model.init, jax.random.key(0), *inputs)
    assert _count(params) == _expected_count(blocks, features) == published
    assert len(params["params"]) == blocks + 2   # conv_in, the blocks, conv_out


@pytest.mark.parametrize("scale", [2, 6])
def test_untrained_model_is_the_estimate_it_corrects(scale):
  lr, msi, _ = _inputs(scale)
  base = jnp.asarray(np.random.default_rng(7).random((2, 4 * scale, 5 * scale, TARGET_BANDS)),
                     jnp.float32)   # any estimate: the network adds to it
  model = DSen2(out_bands=TARGET_BANDS, scale_factor=scale, **SMALL)
  params = model.init(jax.random.key(1), lr, msi, base)
  fused = model.apply(params, lr, msi, base)
  assert fused.shape == (2, 4 * scale, 5 * scale, TARGET_BANDS) and fused.dtype == jnp.float32
  np.testing.assert_array_equal(fused, base)
  default_init = DSen2(out_bands=TARGET_BANDS, scale_factor=scale, **SMALL,
                       zero_init_residual=False)
  params = default_init.init(jax.random.key(1), lr, msi, base)
  assert not np.allclose(default_init.apply(params, lr, msi, base), base, atol=1e-3)


def test_blocks_add_their_scaled_output_to_their_input():
  inputs = _inputs()
  kwargs = {"out_bands": TARGET_BANDS, "scale_factor": 2, "features": SMALL["features"],
            "zero_init_residual": False}
  deep = DSen2(num_blocks=SMALL["num_blocks"], **kwargs)
  params = deep.init(jax.random.key(4), *inputs)
  ends = {"params": {key: params["params"][key] for key in ("conv_in", "conv_out")}}
  shallow = DSen2(num_blocks=0, **kwargs).apply(ends, *inputs)
  # Scaled to nothing, the blocks are the identity; at the published 0.1 they are not.
  np.testing.assert_array_equal(DSen2(num_blocks=SMALL["num_blocks"], residual_scaling=0.0,
                                      **kwargs).apply(params, *inputs), shallow)
  assert not np.allclose(deep.apply(params, *inputs), shallow, atol=1e-4)


def test_mismatched_inputs_are_named():
  lr, msi, base = _inputs(3)
  model = DSen2(out_bands=TARGET_BANDS, scale_factor=3, **SMALL)
  with pytest.raises(ValueError, match=r"DSen2: low-resolution input has 5 bands, expected "
                                       r"out_bands=6"):
    model.init(jax.random.key(0), lr[..., :5], msi, base)
  with pytest.raises(ValueError, match=r"input \(4, 5\) x 3 does not match the "
                                       r"high-resolution image \(12, 14\)"):
    model.init(jax.random.key(0), lr, msi[:, :, :14], base)
  with pytest.raises(ValueError, match=r"the estimate to correct is \(12, 15, 5\); expected "
                                       r"\(12, 15, 6\)"):
    model.init(jax.random.key(0), lr, msi, base[..., :5])
  with pytest.raises(ValueError, match=r"^VDSen2: .* does not match"):
    VDSen2(out_bands=TARGET_BANDS, scale_factor=2, **SMALL).init(jax.random.key(0), lr, msi,
                                                                   base)


def test_bfloat16_compute_keeps_float32_parameters_gradients_and_output():
  inputs = _inputs(seed=2)
  kwargs = {"out_bands": TARGET_BANDS, "scale_factor": 2, **SMALL, "zero_init_residual": False}
  full, mixed = DSen2(**kwargs), DSen2(**kwargs, dtype=jnp.bfloat16)
  params = full.init(jax.random.key(3), *inputs)
  mixed_precision.assert_float32_parameters(mixed.init(jax.random.key(3), *inputs))
  reference = full.apply(params, *inputs)
  mixed_precision.assert_rounding_only(reference, mixed.apply(params, *inputs),
                                       reference - inputs[2])

  def loss(p, model):
    return jnp.mean(jnp.abs(model.apply(p, *inputs) - 0.5))
  mixed_precision.assert_gradients_agree(jax.grad(loss)(params, full),
                                         jax.grad(loss)(params, mixed))


def test_registry_builds_dsen2_and_vdsen2():
  model = models.build(ml_collections.ConfigDict(
      {"name": "dsen2", "num_blocks": 2, "features": 8, "dtype": "float32"}),
      out_bands=6, scale_factor=2)
  assert type(model) is DSen2
  assert (model.out_bands, model.scale_factor, model.num_blocks, model.features,
          model.dtype) == (6, 2, 2, 8, jnp.float32)
  assert models.model_class("dsen2") is DSen2
  assert models.model_class("vdsen2") is VDSen2
  assert (VDSen2.num_blocks, VDSen2.features) == (32, 256)
  config = models.default_config("dsen2", data_arguments=("out_bands", "scale_factor"))
  assert config.to_dict() == {"name": "dsen2", "num_blocks": 6, "features": 128,
                              "residual_scaling": 0.1, "zero_init_residual": True,
                              "dtype": "float32"}
  deep = models.default_config("vdsen2", data_arguments=("out_bands", "scale_factor"))
  assert (deep.num_blocks, deep.features) == (32, 256)


def _detail(msi, scale):
  """The part of `msi` that its block means, upsampled bicubic, do not hold."""
  batch, height, width, bands = msi.shape
  means = msi.reshape(batch, height // scale, scale, width // scale, scale, bands).mean((2, 4))
  return msi - sampling.upsample_bicubic(means, scale)


def test_training_learns_the_detail_the_guide_bands_hold():
  scale, coarse, batch = 2, 8, 4
  mix = jnp.asarray(np.random.default_rng(5).normal(size=(GUIDE_BANDS, TARGET_BANDS)),
                    jnp.float32)

  def problem(key):
    """lr and msi random; the truth is bicubic(lr) plus a fixed mix of the msi's detail (a
    linear function of an 8 x 8 neighbourhood, inside the 13 x 13 the network sees)."""
    lr_key, msi_key = jax.random.split(key)
    lr = jax.random.uniform(lr_key, (batch, coarse, coarse, TARGET_BANDS))
    msi = jax.random.uniform(msi_key, (batch, scale * coarse, scale * coarse, GUIDE_BANDS))
    return lr, msi, sampling.upsample_bicubic(lr, scale) + _detail(msi, scale) @ mix

  model = DSen2(out_bands=TARGET_BANDS, scale_factor=scale, **SMALL)
  lr, msi, _ = problem(jax.random.key(0))
  params = model.init(jax.random.key(1), lr, msi, sampling.upsample_bicubic(lr, scale))
  optimizer = optax.adam(1e-2)

  def loss(p, lr, msi, truth):
    return jnp.mean(jnp.abs(model.apply(p, lr, msi, sampling.upsample_bicubic(lr, scale))
                            - truth))

  @jax.jit
  def train(params):
    def step(carry, key):
      p, state = carry
      grads = jax.grad(loss)(p, *problem(key))
      updates, state = optimizer.update(grads, state, p)
      return (optax.apply_updates(p, updates), state), None
    keys = jax.random.split(jax.random.key(2), 150)
    return jax.lax.scan(step, (params, optimizer.init(params)), keys)[0][0]

  held_out = problem(jax.random.key(3))
  bicubic_error = loss(params, *held_out)   # the untrained model is bicubic upsampling
  trained_error = loss(train(params), *held_out)
  assert trained_error < 0.5 * bicubic_error   # 0.27 when written
