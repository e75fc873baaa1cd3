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
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from fusionjax.physics import psf, sampling


def _with_offset(pixels: np.ndarray) -> np.ndarray:
  return np.concatenate([pixels, np.ones((len(pixels), 1))], axis=1)


def _regress(regressors: np.ndarray, targets: np.ndarray) -> np.ndarray:
  """(N, K) and (N, T) -> (K + 1, T) least-squares coefficients, the last row the offset."""
  return np.linalg.lstsq(_with_offset(regressors), targets, rcond=None)[0]


def _apply(coefficients: np.ndarray, image: np.ndarray) -> np.ndarray:
  """(K + 1, T) coefficients on an (H, W, K) image -> (H, W, T)."""
  return (image @ coefficients[:-1] + coefficients[-1]).astype(np.float32)


def synthetic_pans(lr: np.ndarray, hr: np.ndarray, ratio: int) -> np.ndarray:
  """(H, W, L) P_l: for each low-resolution band l, the combination of the (H, W, M)
  high-resolution bands that best predicts band l of (h, w, L) `lr`, fitted on the
  high-resolution bands degraded with a generic MTF of 0.3 at Nyquist (one fit for all bands,
  so that a hyperspectral cube costs one least-squares solve)."""
  hr_low = np.asarray(psf.degrade_to_mtf(hr, ratio, [0.3] * hr.shape[-1]))
  coefficients = _regress(hr_low.reshape(-1, hr.shape[-1]).astype(np.float64),
                          lr.reshape(-1, lr.shape[-1]).astype(np.float64))
  return _apply(coefficients, hr.astype(np.float64))


def _degrade_per_band(image: np.ndarray, ratio: int, mtf_at_nyquist) -> np.ndarray:
  mtfs = np.broadcast_to(np.asarray(mtf_at_nyquist, np.float64), (image.shape[-1],))
  return np.asarray(psf.degrade_to_mtf(image, ratio, mtfs))


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
  pans = synthetic_pans(lr, hr, ratio)
  pans_low = _degrade_per_band(pans, ratio, mtf_at_nyquist)
  coefficients = _regress(codes.reshape(-1, codes.shape[-1]).astype(np.float64),
                          pans_low.reshape(-1, pans.shape[-1]).astype(np.float64))
  intensity = _apply(coefficients, codes_up)
  centred_i = intensity - intensity.mean(axis=(0, 1))
  centred_u = upsampled - upsampled.mean(axis=(0, 1))
  gains = (np.mean(centred_u * centred_i, axis=(0, 1))
           / np.maximum(np.mean(centred_i ** 2, axis=(0, 1)), 1e-12))
  return (upsampled + gains * (pans - intensity)).astype(np.float32)


def mtf_glp(lr: np.ndarray, hr: np.ndarray, ratio: int, mtf_at_nyquist) -> np.ndarray:
  """MTF-GLP: (h, w, L) and (H, W, M) -> (H, W, L); mtf_at_nyquist as in `gsa`."""
  upsampled = np.asarray(sampling.upsample_bicubic(jnp.asarray(lr), ratio))
  pans = synthetic_pans(lr, hr, ratio)
  pans_low = _degrade_per_band(pans, ratio, mtf_at_nyquist)
  detail = pans - np.asarray(sampling.upsample_bicubic(jnp.asarray(pans_low), ratio))
  return (upsampled + detail).astype(np.float32)
