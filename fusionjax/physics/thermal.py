"""Thermal radiometry: what a coarse sensor sees of a fine land-surface temperature field.

A thermal sensor pixel collects the radiant exitance of the surface it covers, M = eps sigma T^4
(Stefan-Boltzmann, W m^-2), and reports the temperature of that mean exitance. Over a footprint
of equal emissivity the coarse temperature is therefore the fourth root of the mean of T^4,
never below the arithmetic mean of T. Images are channels-last, (..., H, W, C), in kelvin.
"""
from __future__ import annotations

import jax.numpy as jnp

from fusionjax.physics import psf

STEFAN_BOLTZMANN = 5.670374419e-8  # W m^-2 K^-4
_REFERENCE_K = 300.0  # T / 300 K keeps T^4 near 1 in float32


def exitance(temperature_k: jnp.ndarray, emissivity: float = 1.0) -> jnp.ndarray:
  """Radiant exitance eps sigma T^4 in W m^-2 of a surface at `temperature_k` (any shape)."""
  return emissivity * STEFAN_BOLTZMANN * temperature_k ** 4


def _blocks(image: jnp.ndarray, factor: int) -> jnp.ndarray:
  *lead, height, width, channels = image.shape
  if height % factor or width % factor:
    raise ValueError(f"a {height} x {width} image is not a whole number of {factor} x {factor} "
                     "footprints")
  return image.reshape(*lead, height // factor, factor, width // factor, factor, channels)


def _blur(image: jnp.ndarray, sigma_pixels: float) -> jnp.ndarray:
  """Gaussian blur of every channel of (..., H, W, C), mirrored edges."""
  *lead, height, width, channels = image.shape
  planes = jnp.moveaxis(image, -1, -3).reshape(-1, height, width)
  sigmas = jnp.full((planes.shape[0],), sigma_pixels)
  blurred = psf.gaussian_blur(planes, sigmas, psf.kernel_radius(sigma_pixels))
  return jnp.moveaxis(blurred.reshape(*lead, channels, height, width), -3, -1)


def aggregate(temperature_k: jnp.ndarray, factor: int, *,
              psf_sigma_pixels: float = 0.0) -> jnp.ndarray:
  """Temperature a sensor with `factor` times coarser pixels reports (Stefan-Boltzmann).

  Args:
    temperature_k: (..., H, W, C) fine temperatures, K; H and W multiples of `factor`.
    factor: coarse pixel size in fine pixels.
    psf_sigma_pixels: standard deviation (fine pixels) of a Gaussian PSF blurring the exitance
      before it is integrated over each coarse pixel; 0 integrates the footprint only.
  Returns:
    (..., H / factor, W / factor, C) coarse temperatures, K: (mean of T^4)^(1/4) per footprint.
  """
  relative_exitance = (temperature_k / _REFERENCE_K) ** 4
  if psf_sigma_pixels > 0:
    relative_exitance = _blur(relative_exitance, psf_sigma_pixels)
  mean = jnp.mean(_blocks(relative_exitance, factor), axis=(-4, -2))
  return _REFERENCE_K * mean ** 0.25


def enforce_aggregate(temperature_k: jnp.ndarray, coarse_k: jnp.ndarray) -> jnp.ndarray:
  """Rescales each footprint of a fine field so that it aggregates exactly to `coarse_k`.

  Multiplying every temperature of a footprint by r multiplies its Stefan-Boltzmann aggregate by
  r, so r = coarse / aggregate(fine) makes the footprint consistent while keeping its relative
  structure (a correction of a fraction of a kelvin, at about 300 K, for a good estimate).

  Args:
    temperature_k: (..., H, W, C) fine temperatures, K.
    coarse_k: (..., H / f, W / f, C) coarse temperatures they must aggregate to, K.
  Returns:
    (..., H, W, C) fine temperatures whose box aggregate equals `coarse_k`.
  """
  factor = temperature_k.shape[-2] // coarse_k.shape[-2]
  ratio = coarse_k / aggregate(temperature_k, factor)
  ratio = jnp.repeat(jnp.repeat(ratio, factor, axis=-3), factor, axis=-2)
  return temperature_k * ratio
