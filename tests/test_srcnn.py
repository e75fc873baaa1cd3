"""The SRCNN baseline for LST super-resolution."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
import scipy.ndimage

from fusionjax import models
from fusionjax.models import srcnn
from fusionjax.physics import sampling, thermal
from tests import mixed_precision

SMALL = {"features": (16, 8), "kernel_sizes": (9, 5, 5)}


def _inputs(guide_channels=1, batch=2, coarse=(4, 4), factor=4, seed=0):
  rng = np.random.default_rng(seed)
  coarse_k = (290.0 + 10.0 * rng.random((batch, *coarse, 1))).astype(np.float32)
  fine = (factor * coarse[0], factor * coarse[1])
  guide = rng.random((batch, *fine, guide_channels)).astype(np.float32)
  return jnp.asarray(coarse_k), jnp.asarray(guide), jnp.ones((batch,))


def _trained(params):
  """`params` with the zero-initialised output layer given weights, as training would."""
  return jax.tree_util.tree_map_with_path(
      lambda path, x: 0.01 * jnp.ones_like(x) if "output" in str(path) else x, params)


@pytest.mark.parametrize("guide_channels", [0, 1, 4])   # none, NDVI, NDVI + 3 reflectances
def test_untrained_model_is_bicubic_and_projection_makes_it_consistent(guide_channels):
  coarse_k, guide, fine_km = _inputs(guide_channels)
  free = srcnn.Srcnn(**SMALL, enforce_consistency=False, scale_conditioning=True)
  params = free.init(jax.random.key(0), coarse_k, guide, fine_km)
  fine = free.apply(params, coarse_k, guide, fine_km)
  assert fine.shape == (2, 16, 16, 1) and fine.dtype == jnp.float32
  np.testing.assert_array_equal(fine, sampling.upsample_bicubic(coarse_k, 4))
  consistent = srcnn.Srcnn(**SMALL, scale_conditioning=True)
  for p in (params, _trained(params)):
    fine = consistent.apply(p, coarse_k, guide, fine_km)
    np.testing.assert_allclose(thermal.aggregate(fine, 4), coarse_k, atol=1e-3)
  assert not np.allclose(fine, sampling.upsample_bicubic(coarse_k, 4), atol=1e-2)


def test_climatology_pattern_is_scaled_like_the_temperatures():
  coarse_k, ndvi, fine_km = _inputs(1)
  rng = np.random.default_rng(1)
  pattern_k = jnp.asarray(295.0 + 5.0 * rng.random(ndvi.shape), jnp.float32)
  weight = jnp.asarray(rng.random(ndvi.shape), jnp.float32)
  guide = jnp.concatenate([ndvi, pattern_k, weight], -1)
  model = srcnn.Srcnn(**SMALL, temperature_scale_k=4.0, climatology=True)
  plain = srcnn.Srcnn(**SMALL, temperature_scale_k=4.0)   # the same network, guide as given
  params = _trained(model.init(jax.random.key(0), coarse_k, guide, fine_km))
  fine = model.apply(params, coarse_k, guide, fine_km)
  assert fine.shape == (2, 16, 16, 1)
  # The pattern divided by temperature_scale_k, the weight and NDVI as they are.
  scaled = jnp.concatenate([ndvi, pattern_k / 4.0, weight], -1)
  np.testing.assert_array_equal(fine, plain.apply(params, coarse_k, scaled, fine_km))
  assert not np.allclose(fine, plain.apply(params, coarse_k, guide, fine_km))


@pytest.mark.parametrize("coarse,factor", [((4, 4), 4), ((3, 5), 3), ((5, 2), 2)])
def test_any_fine_size_and_whole_multiples_only(coarse, factor):
  coarse_k, guide, fine_km = _inputs(1, batch=3, coarse=coarse, factor=factor)
  model = srcnn.Srcnn(**SMALL)
  assert model.size_multiple == 1
  fine = model.apply(model.init(jax.random.key(0), coarse_k, guide, fine_km), coarse_k, guide,
                     fine_km)
  assert fine.shape == (3, factor * coarse[0], factor * coarse[1], 1)
  with pytest.raises(ValueError, match="Srcnn: guide .* is not a whole multiple"):
    model.init(jax.random.key(0), coarse_k, guide[:, :-1], fine_km)


def test_one_kernel_size_per_convolution():
  with pytest.raises(ValueError, match="2 kernel sizes for 3 convolutions"):
    srcnn.Srcnn(features=(16, 8), kernel_sizes=(9, 5)).init(jax.random.key(0), *_inputs())


@pytest.mark.parametrize("guide_channels,scale_conditioning,kernel_sizes,count", [
    (0, False, (9, 5, 5), 57_281),   # the paper's network: 57,184 weights and 97 biases
    (1, False, (9, 5, 5), 62_465),   # with NDVI, the count in the module docstring
    (1, False, (9, 1, 5), 13_313),
    (4, True, (9, 5, 5), 83_201)])
def test_parameter_count_is_the_hand_formula(guide_channels, scale_conditioning, kernel_sizes,
                                             count):
  coarse_k, guide, fine_km = _inputs(guide_channels)
  model = srcnn.Srcnn(kernel_sizes=kernel_sizes, scale_conditioning=scale_conditioning)
  params = jax.eval_shape(lambda: model.init(jax.random.key(0), coarse_k, guide, fine_km))
  channels = [1 + guide_channels + scale_conditioning, 64, 32, 1]
  expected = sum(k * k * c_in * c_out + c_out   # kernel + bias
                 for k, c_in, c_out in zip(kernel_sizes, channels, channels[1:]))
  assert sum(x.size for x in jax.tree.leaves(params)) == expected == count
  assert sorted(params["params"]) == ["conv0", "conv1", "output"]


def test_trained_correction_depends_on_guide_and_scale():
  coarse_k, guide, fine_km = _inputs()
  model = srcnn.Srcnn(**SMALL, scale_conditioning=True)
  params = _trained(model.init(jax.random.key(0), coarse_k, guide, fine_km))
  base = model.apply(params, coarse_k, guide, fine_km)
  assert not np.allclose(base, model.apply(params, coarse_k, guide + 0.5, fine_km))
  assert not np.allclose(base, model.apply(params, coarse_k, guide, 4 * fine_km))


def test_bfloat16_keeps_the_temperatures_float32():
  mixed_precision.assert_temperature_network(
      srcnn.Srcnn(**SMALL, enforce_consistency=False),
      srcnn.Srcnn(**SMALL, enforce_consistency=False, dtype=jnp.bfloat16), _inputs(), _trained)


def test_registry_builds_srcnn_from_its_config():
  config = ml_collections.ConfigDict({
      "name": "srcnn", "features": (16, 8), "kernel_sizes": (9, 5, 5),
      "temperature_scale_k": 5.0, "scale_conditioning": False, "enforce_consistency": True,
      "dtype": "float32"})
  model = models.build(config, climatology=False)
  assert isinstance(model, srcnn.Srcnn) and models.model_class("srcnn") is srcnn.Srcnn
  assert model.features == (16, 8) and model.dtype == jnp.float32 and not model.climatology
  coarse_k, guide, fine_km = _inputs()
  assert model.apply(model.init(jax.random.key(0), coarse_k, guide, fine_km), coarse_k, guide,
                     fine_km).shape == (2, 16, 16, 1)


def _guided_problem(seed, batch=4, size=32, factor=4):
  """Fine temperatures whose detail is a known function of NDVI: a smooth field (4 K rms)
  plus 3 K times the normalised high-pass of NDVI; the coarse input is their aggregate."""
  rng = np.random.default_rng(seed)
  ndvi = scipy.ndimage.gaussian_filter(rng.standard_normal((batch, size, size)), (0, 1, 1),
                                       mode="wrap")
  ndvi = 0.5 + 0.2 * ndvi / ndvi.std()
  detail = ndvi - scipy.ndimage.gaussian_filter(ndvi, (0, 2, 2), mode="wrap")
  smooth = scipy.ndimage.gaussian_filter(rng.standard_normal((batch, size, size)), (0, 8, 8),
                                         mode="wrap")
  fine_k = jnp.asarray(295.0 + 4.0 * smooth / smooth.std() + 3.0 * detail / detail.std(),
                       jnp.float32)[..., None]
  return (thermal.aggregate(fine_k, factor), jnp.asarray(ndvi, jnp.float32)[..., None],
          jnp.ones((batch,)), fine_k)


def test_training_learns_the_guided_detail():
  model = srcnn.Srcnn(**SMALL)
  coarse_k, ndvi, fine_km, truth_k = _guided_problem(0)
  optimizer = optax.adam(3e-3)

  def loss(p, coarse_k, ndvi, fine_km, truth_k):
    return jnp.mean((model.apply(p, coarse_k, ndvi, fine_km) - truth_k) ** 2)

  @jax.jit
  def train(params):
    def step(carry, _):
      p, state = carry
      updates, state = optimizer.update(
          jax.grad(loss)(p, coarse_k, ndvi, fine_km, truth_k), state, p)
      return (optax.apply_updates(p, updates), state), None
    return jax.lax.scan(step, (params, optimizer.init(params)), None, length=200)[0][0]

  params = train(model.init(jax.random.key(0), coarse_k, ndvi, fine_km))
  held_out = _guided_problem(1)
  bicubic_rmse = np.sqrt(np.mean((sampling.upsample_bicubic(held_out[0], 4) - held_out[3]) ** 2))
  trained_rmse = np.sqrt(loss(params, *held_out))
  assert trained_rmse < 0.3 * bicubic_rmse   # 0.50 K against 2.62 K (0.19) when written
