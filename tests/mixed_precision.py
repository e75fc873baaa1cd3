"""Checks shared by the models' mixed-precision tests: a bfloat16-compute model against the
same parameters computed in float32."""
import jax
import jax.numpy as jnp
import numpy as np

from fusionjax.physics import sampling


def assert_float32_parameters(params) -> None:
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))


def assert_rounding_only(reference, result, computed) -> None:
  """`result` is float32 and differs from `reference` by bfloat16 rounding: more than nothing,
  less than 5 % of the largest value the layers computed (`computed`)."""
  assert result.dtype == jnp.float32
  error = np.abs(np.asarray(result - reference))
  assert 0 < error.max() < 0.05 * np.abs(np.asarray(computed)).max()


def assert_gradients_agree(grads_full, grads_mixed) -> None:
  """Float32, finite, and pointing the same way (cosine above 0.99)."""
  for leaf in jax.tree.leaves(grads_mixed):
    assert leaf.dtype == jnp.float32 and np.all(np.isfinite(leaf))
  flat_full, flat_mixed = (jnp.concatenate([x.ravel() for x in jax.tree.leaves(g)])
                           for g in (grads_full, grads_mixed))
  cosine = jnp.vdot(flat_full, flat_mixed) / (jnp.linalg.norm(flat_full)
                                              * jnp.linalg.norm(flat_mixed))
  assert cosine > 0.99


def assert_temperature_network(full, mixed, inputs, trained) -> None:
  """An LST network computing in bfloat16 (`mixed`) against the same network in float32
  (`full`), both without the consistency step, on inputs (coarse_k, guide, fine_km) with a
  x4 guide: float32 parameters; untrained, exactly the float32 bicubic upsampling (bfloat16
  temperatures near 300 K would be off by up to 1 K); with the parameters `trained(untrained)`,
  rounding only and agreeing gradients."""
  coarse_k = inputs[0]
  untrained = full.init(jax.random.key(0), *inputs)
  assert_float32_parameters(mixed.init(jax.random.key(0), *inputs))
  bicubic = sampling.upsample_bicubic(coarse_k, 4)
  np.testing.assert_array_equal(mixed.apply(untrained, *inputs), bicubic)
  params = trained(untrained)
  reference = full.apply(params, *inputs)
  assert_rounding_only(reference, mixed.apply(params, *inputs), reference - bicubic)

  def loss(p, model):
    return jnp.mean((model.apply(p, *inputs) - 295.0) ** 2)
  assert_gradients_agree(jax.grad(loss)(params, full), jax.grad(loss)(params, mixed))
