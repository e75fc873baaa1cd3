"""TsHARP (Agam et al., Remote Sens. Environ. 107, 2007): thermal sharpening with NDVI.

Per image, regress the coarse temperatures on the coarse NDVI, T = a + b NDVI (least squares
over the coarse pixels); apply the line to the fine NDVI; add back each coarse pixel's residual
to every fine pixel inside it.
"""
from __future__ import annotations

import jax.numpy as jnp


def tsharp(coarse_k: jnp.ndarray, coarse_ndvi: jnp.ndarray, fine_ndvi: jnp.ndarray) -> jnp.ndarray:
  """
  Args:
    coarse_k: (B, h, w, 1) coarse temperatures, K.
    coarse_ndvi: (B, h, w, 1) NDVI on the coarse grid.
    fine_ndvi: (B, H, W, 1) NDVI on the fine grid, H = f h.
  Returns:
    (B, H, W, 1) sharpened temperatures, K.
  """
  factor = fine_ndvi.shape[1] // coarse_k.shape[1]
  axes = (1, 2, 3)
  mean_t = jnp.mean(coarse_k, axis=axes, keepdims=True)
  mean_n = jnp.mean(coarse_ndvi, axis=axes, keepdims=True)
  covariance = jnp.mean((coarse_k - mean_t) * (coarse_ndvi - mean_n), axis=axes, keepdims=True)
  variance = jnp.mean((coarse_ndvi - mean_n) ** 2, axis=axes, keepdims=True)
  slope = jnp.where(variance > 0, covariance / jnp.where(variance > 0, variance, 1.0), 0.0)
  intercept = mean_t - slope * mean_n
  residual = coarse_k - (intercept + slope * coarse_ndvi)
  residual = jnp.repeat(jnp.repeat(residual, factor, axis=1), factor, axis=2)
  return intercept + slope * fine_ndvi + residual
