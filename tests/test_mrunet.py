"""The multi-residual U-Net for LST super-resolution."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fusionjax.models import mrunet
from fusionjax.physics import sampling, thermal
from tests import mixed_precision


def _inputs(guide_channels=1, batch=2, coarse=4):
  rng = np.random.default_rng(0)
  coarse_k = (290.0 + 10.0 * rng.random((batch, coarse, coarse, 1))).astype(np.float32)
  guide = rng.random((batch, 4 * coarse, 4 * coarse, guide_channels)).astype(np.float32)
  return jnp.asarray(coarse_k), jnp.asarray(guide), jnp.ones((batch,))


@pytest.mark.parametrize("guide_channels", [0, 1, 4])   # none, NDVI, NDVI + 3 reflectances
def test_default_model_is_under_five_million_parameters(guide_channels):
  params = jax.eval_shape(lambda: mrunet.LstSuperResolution().init(
      jax.random.key(0), *_inputs(guide_channels, coarse=16)))
  count = sum(x.size for x in jax.tree.leaves(params))
  assert 4_800_000 < count <= 5_000_000


@pytest.mark.parametrize("guide_channels", [0, 1])
def test_untrained_model_is_bicubic_and_projection_makes_it_consistent(guide_channels):
  coarse_k, guide, fine_km = _inputs(guide_channels)
  free = mrunet.LstSuperResolution(widths=(8, 16), patch_size=2, enforce_consistency=False,
                                   scale_conditioning=True)
  params = free.init(jax.random.key(0), coarse_k, guide, fine_km)
  fine = free.apply(params, coarse_k, guide, fine_km)
  assert fine.shape == (2, 16, 16, 1)
  np.testing.assert_allclose(fine, sampling.upsample_bicubic(coarse_k, 4), atol=1e-4)
  consistent = mrunet.LstSuperResolution(widths=(8, 16), patch_size=2, scale_conditioning=True)
  fine = consistent.apply(params, coarse_k, guide, fine_km)
  np.testing.assert_allclose(thermal.aggregate(fine, 4), coarse_k, atol=1e-3)


def test_trained_correction_depends_on_guide_and_scale():
  coarse_k, guide, fine_km = _inputs()
  model = mrunet.LstSuperResolution(widths=(8, 16), patch_size=2, scale_conditioning=True)
  params = model.init(jax.random.key(0), coarse_k, guide, fine_km)
  # Give the zero-initialised output layer weights, as training would.
  params = jax.tree_util.tree_map_with_path(
      lambda path, x: 0.1 * jnp.ones_like(x) if "output" in str(path) else x, params)
  base = model.apply(params, coarse_k, guide, fine_km)
  assert not np.allclose(base, model.apply(params, coarse_k, guide + 0.5, fine_km))
  assert not np.allclose(base, model.apply(params, coarse_k, guide, 4 * fine_km))


def test_space_to_depth_round_trip_and_bad_shapes():
  x = jnp.arange(2 * 8 * 8 * 3, dtype=jnp.float32).reshape(2, 8, 8, 3)
  patches = mrunet.space_to_depth(x, 4)
  assert patches.shape == (2, 2, 2, 48)
  np.testing.assert_array_equal(patches[0, 0, 0, :3], x[0, 0, 0])
  np.testing.assert_array_equal(mrunet.depth_to_space(patches, 4), x)
  with pytest.raises(ValueError, match="not a multiple of 4"):
    mrunet.MultiResidualUNet(widths=(4, 8, 16)).init(jax.random.key(0), jnp.zeros((1, 6, 8, 1)))


def test_bfloat16_unet_keeps_the_temperatures_float32():
  kwargs = dict(widths=(8, 16), patch_size=2, enforce_consistency=False)
  mixed_precision.assert_temperature_network(
      mrunet.LstSuperResolution(**kwargs),
      mrunet.LstSuperResolution(**kwargs, dtype=jnp.bfloat16), _inputs(),
      lambda untrained: jax.tree_util.tree_map_with_path(
          lambda path, x: 0.1 * jnp.ones_like(x) if "output" in str(path) else x, untrained))


def test_size_multiple_is_what_the_unet_needs():
  assert mrunet.LstSuperResolution().size_multiple == 16   # 4 x 4 patches, 2 downsamplings
  model = mrunet.LstSuperResolution(widths=(4, 8, 16), patch_size=2)
  assert model.size_multiple == 8

  def output_shape(coarse_k, guide, fine_km):
    return jax.eval_shape(lambda: model.init_with_output(jax.random.key(0), coarse_k, guide,
                                                         fine_km))[0].shape
  assert output_shape(*_inputs(coarse=2)) == (2, 8, 8, 1)   # 8 x 8 fine pixels
  coarse_k, guide, fine_km = _inputs(coarse=3)   # 12 x 12: a multiple of 4, not of 8
  with pytest.raises(ValueError, match="not a multiple of 4"):   # the patch grid, 6 x 6
    output_shape(coarse_k, guide, fine_km)
  with pytest.raises(ValueError, match="LstSuperResolution: guide .* is not a whole multiple"):
    output_shape(coarse_k, guide[:, 1:], fine_km)
