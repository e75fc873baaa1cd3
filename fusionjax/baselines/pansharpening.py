"""Classical fusion of a low-resolution multi-band image with several high-resolution bands.

Both methods inject high-resolution detail into the upsampled low-resolution bands. With
several high-resolution bands, each low-resolution band l gets its own synthetic panchromatic
image P_l: the linear combination of the high-resolution bands that best predicts band l at the
low resolution (least squares on the degraded high-resolution bands; "hypersharpening", Selva
et al. 2015), so P_l is in band l's units.

- GSA (component substitution, Aiazzi, Baronti & Selva, IEEE TGRS 2007): the intensity I_l is
  the regression of P_l, degraded, on the low-resolution bands (their codes, so that a
  hyperspectral cube enters through its principal components), applied to the upsampled ones;
  result = upsampled_l + g_l (P_l - I_l) with g_l = cov(upsampled_l, I_l) / var(I_l).
- MTF-GLP (multiresolution analysis, Aiazzi et al. 2006): the detail of P_l is what a sensor
  with band l's MTF would miss, P_l - upsample(degrade_to_mtf(P_l)); result = upsampled_l +
  that detail (unit gain: P_l is already in band l's units).

Images are channels-last (H, W, C); the high-resolution grid is `ratio` times finer.
`synthetic_pans` and `mtf_glp_batch` are jittable JAX on batches (B, ...), each example fitted
on its own pixels: the fusion networks correct `mtf_glp_batch` of every tile they see
(fusionjax.tasks.fusion), and `mtf_glp` is the same computation on one whole image.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from fusionjax.physics import psf, sampling

# The MTF at Nyquist of the generic sensor whose degradation fits the synthetic pans.
GENERIC_MTF = 0.3
# Ridge of the synthetic-pan regression, relative to the mean variance of the degraded
# high-resolution bands over the whole example: negligible where the bands vary, it keeps a
# window of few or flat pixels (a gap-filled no-data area) from an ill-conditioned fit.
RIDGE = 1e-3


def _static(mtf_at_nyquist) -> float | tuple[float, ...]:
  """A scalar or per-band MTF setting as a value jax.jit can take as a static argument."""
  values = np.asarray(mtf_at_nyquist, np.float64)
  return float(values) if values.ndim == 0 else tuple(values.tolist())


def _degrade_batch(images: jax.Array, ratio: int, mtf_at_nyquist) -> jax.Array:
  """(B, H, W, C) -> (B, H / ratio, W / ratio, C), each channel through its own MTF."""
  return _degrade_batch_static(images, ratio, _static(mtf_at_nyquist))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _degrade_batch_static(images: jax.Array, ratio: int, mtf_at_nyquist) -> jax.Array:
  mtfs = np.broadcast_to(np.asarray(mtf_at_nyquist, np.float64), (images.shape[-1],))
  return jax.vmap(lambda image: psf.degrade_to_mtf(image, ratio, mtfs))(images)


def _solve_positive_definite(matrix: jax.Array, rhs: jax.Array) -> jax.Array:
  """x with matrix x = rhs, for (..., M, M) symmetric positive-definite matrices and
  (..., M, K) right-hand sides: Gauss-Jordan elimination without pivoting (stable for such
  matrices), unrolled over the M rows in elementwise operations. A pixel's system is tiny;
  batched LAPACK solves of one per pixel can stall a computation sharded over several CPU
  devices."""
  for k in range(matrix.shape[-1]):
    pivot = matrix[..., k:k + 1, k:k + 1]
    row, rhs_row = matrix[..., k:k + 1, :] / pivot, rhs[..., k:k + 1, :] / pivot
    column = matrix[..., :, k:k + 1]
    matrix = (matrix - column * row).at[..., k:k + 1, :].set(row)
    rhs = (rhs - column * rhs_row).at[..., k:k + 1, :].set(rhs_row)
  return rhs


def _moments_filter(images: jax.Array, window: float | None) -> jax.Array:
  """(B, h, w, C) -> the mean of each channel over each example (B, 1, 1, C) if window is
  None, else its Gaussian-weighted local mean of standard deviation `window` pixels
  (B, h, w, C; mirrored at the edges)."""
  if window is None:
    return images.mean(axis=(1, 2), keepdims=True)
  sigmas = np.full(images.shape[-1], float(window))
  blur = lambda image: jnp.moveaxis(psf.gaussian_blur(  # noqa: E731
      jnp.moveaxis(image, -1, 0), sigmas, psf.kernel_radius(sigmas)), 0, -1)
  return jax.vmap(blur)(images)


@functools.partial(jax.jit, static_argnames=("ratio", "window"))
def synthetic_pans(lr: jax.Array, hr: jax.Array, ratio: int,
                   window: float | None = None) -> jax.Array:
  """(B, H, W, L) P_l: for each example and low-resolution band l, the combination (with an
  offset) of the (B, H, W, M) high-resolution bands that best predicts band l of the
  (B, h, w, L) `lr`, fitted (ridge least squares) on the high-resolution bands degraded by
  the generic MTF: over the whole example (window None), or around each pixel with Gaussian
  weights of standard deviation `window` low-resolution pixels (the coefficients vary
  smoothly over the image, upsampled bicubic to its grid)."""
  bands = hr.shape[-1]
  hr = hr.astype(jnp.float32)
  x = _degrade_batch(hr, ratio, GENERIC_MTF)                    # (B, h, w, M)
  y = lr.astype(jnp.float32)                                    # (B, h, w, L)
  outer = lambda a, b: (a[..., :, None] * b[..., None, :]).reshape(  # noqa: E731
      *a.shape[:-1], a.shape[-1] * b.shape[-1])
  num_lr = y.shape[-1]
  moments = _moments_filter(jnp.concatenate([x, y, outer(x, x), outer(x, y)], axis=-1),
                            window)
  x_mean, y_mean = moments[..., :bands], moments[..., bands:bands + num_lr]
  second = moments[..., bands + num_lr:]
  gram = (second[..., :bands * bands].reshape(*second.shape[:-1], bands, bands)
          - x_mean[..., :, None] * x_mean[..., None, :])
  cross = (second[..., bands * bands:].reshape(*second.shape[:-1], bands, num_lr)
           - x_mean[..., :, None] * y_mean[..., None, :])
  variance = jnp.var(x, axis=(1, 2)).mean(axis=-1)            # (B,)
  ridge = (RIDGE * variance + 1e-12).reshape(-1, *([1] * (gram.ndim - 3)))
  weights = _solve_positive_definite(gram + ridge[..., None, None] * jnp.eye(bands), cross)
  offsets = y_mean - jnp.einsum("...m,...ml->...l", x_mean, weights)   # (..., L)
  coefficients = jnp.concatenate([weights.reshape(*weights.shape[:-2], bands * num_lr),
                                  offsets], axis=-1)
  if window is not None:   # (B, h, w, K) -> (B, H, W, K)
    coefficients = sampling.upsample_bicubic(coefficients, ratio)
  weights = coefficients[..., :bands * num_lr].reshape(*coefficients.shape[:-1], bands, num_lr)
  # (B, H, W, M) with (B, H, W, M, L) local or (B, 1, 1, M, L) whole-example weights.
  return jnp.einsum("...m,...ml->...l", hr, weights) + coefficients[..., bands * num_lr:]


def mtf_glp_batch(lr: jax.Array, hr: jax.Array, ratio: int, mtf_at_nyquist,
                  window: float | None = None) -> jax.Array:
  """MTF-GLP of every example: (B, h, w, L) and (B, H, W, M) -> (B, H, W, L) float32.

  mtf_at_nyquist: (L,) or a scalar, each low-resolution band's MTF at its Nyquist frequency.
  window: the synthetic pans fitted over each whole example (None) or locally (see
  `synthetic_pans`).
  """
  return _mtf_glp_batch(lr, hr, ratio, _static(mtf_at_nyquist), window)


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _mtf_glp_batch(lr: jax.Array, hr: jax.Array, ratio: int, mtf_at_nyquist,
                   window: float | None) -> jax.Array:
  pans = synthetic_pans(lr, hr, ratio, window)
  pans_low = _degrade_batch(pans, ratio, mtf_at_nyquist)
  detail = pans - sampling.upsample_bicubic(pans_low, ratio)
  return sampling.upsample_bicubic(lr.astype(jnp.float32), ratio) + detail


def mtf_glp(lr: np.ndarray, hr: np.ndarray, ratio: int, mtf_at_nyquist,
            window: float | None = None) -> np.ndarray:
  """MTF-GLP of one image: (h, w, L) and (H, W, M) -> (H, W, L); see `mtf_glp_batch`."""
  return np.asarray(mtf_glp_batch(jnp.asarray(lr)[None], jnp.asarray(hr)[None], ratio,
                                  mtf_at_nyquist, window)[0])


def _with_offset(pixels: np.ndarray) -> np.ndarray:
  return np.concatenate([pixels, np.ones((len(pixels), 1))], axis=1)


def _regress(regressors: np.ndarray, targets: np.ndarray) -> np.ndarray:
  """(N, K) and (N, T) -> (K + 1, T) least-squares coefficients, the last row the offset."""
  return np.linalg.lstsq(_with_offset(regressors), targets, rcond=None)[0]


def gsa(lr: np.ndarray, hr: np.ndarray, ratio: int, mtf_at_nyquist,
        lr_codes: np.ndarray | None = None) -> np.ndarray:
  """GSA: (h, w, L) low-resolution bands and (H, W, M) high-resolution bands -> (H, W, L).

  mtf_at_nyquist: (L,) or a scalar, each low-resolution band's MTF at its Nyquist frequency.
  lr_codes: (h, w, d) a reduced representation of `lr` (e.g. its principal components) for the
  intensity regression; None uses `lr` itself.
  """
  codes = lr if lr_codes is None else lr_codes
  upsampled = np.asarray(sampling.upsample_bicubic(jnp.asarray(lr), ratio))
  codes_up = np.asarray(sampling.upsample_bicubic(jnp.asarray(codes), ratio), np.float64)
  pans = np.asarray(synthetic_pans(jnp.asarray(lr)[None], jnp.asarray(hr)[None], ratio)[0])
  pans_low = np.asarray(_degrade_batch(jnp.asarray(pans)[None], ratio, mtf_at_nyquist)[0])
  coefficients = _regress(codes.reshape(-1, codes.shape[-1]).astype(np.float64),
                          pans_low.reshape(-1, pans.shape[-1]).astype(np.float64))
  intensity = (codes_up @ coefficients[:-1] + coefficients[-1]).astype(np.float32)
  centred_i = intensity - intensity.mean(axis=(0, 1))
  centred_u = upsampled - upsampled.mean(axis=(0, 1))
  gains = (np.mean(centred_u * centred_i, axis=(0, 1))
           / np.maximum(np.mean(centred_i ** 2, axis=(0, 1)), 1e-12))
  return (upsampled + gains * (pans - intensity)).astype(np.float32)
