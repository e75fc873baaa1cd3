"""Spatial sampling: detector-pixel decimation and bicubic upsampling."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def decimate(cube: jnp.ndarray, factor: int) -> jnp.ndarray:
  """Integrates `factor` x `factor` blocks of fine pixels into one coarse pixel (their mean).

  A coarse detector pixel collects the light of the fine pixels it covers; with surface
  brightness units the value is their mean. Coarse pixel i is centred on fine coordinate
  factor * (i + 1/2), the convention of `upsample_bicubic`.

  Args:
    cube: (..., H, W) with H and W multiples of `factor`.
    factor: integer decimation factor.
  Returns:
    (..., H // factor, W // factor).
  """
  *lead, height, width = cube.shape
  if height % factor or width % factor:
    raise ValueError(
        f"decimate: image of {height} x {width} pixels is not a multiple of the factor {factor}")
  blocks = cube.reshape(*lead, height // factor, factor, width // factor, factor)
  return blocks.mean(axis=(-3, -1))


@functools.partial(jax.jit, static_argnums=1)
def upsample_bicubic(image: jnp.ndarray, factor: int) -> jnp.ndarray:
  """Bicubic (Keys, a = -0.5) upsampling of channels-last images by an integer factor.

  Args:
    image: (..., h, w, C).
    factor: integer scale factor.
  Returns:
    (..., h * factor, w * factor, C), pixel centres aligned with `decimate`.
  """
  *lead, height, width, channels = image.shape
  shape = (*lead, height * factor, width * factor, channels)
  return jax.image.resize(image, shape, method="cubic", antialias=False)
