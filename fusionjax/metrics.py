"""Image-quality metrics of fused and super-resolved cubes, in jax.numpy.

Images are channels-last, (H, W, C). Conventions (stated because the literature varies):
  * PSNR: per band, peak = that band's maximum in the truth (or a given data range), averaged
    over bands, in dB.
  * SAM: mean over pixels of the angle between true and estimated spectra, in degrees.
  * ERGAS = 100 / ratio * sqrt(mean_b (RMSE_b / mean(truth_b))^2), ratio = the resolution
    ratio (3 for NIRSpec -> NIRCam).
  * SSIM: Gaussian window 11 x 11, sigma 1.5, K1 0.01, K2 0.03, sample covariances, valid
    windows only, data range = max - min of each truth band, averaged over bands (as skimage's
    structural_similarity with gaussian_weights=True).
  * A validity mask (H, W), where given, restricts every metric to the valid pixels (SSIM: to
    the windows that hold only valid pixels).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


def rmse_per_band(truth: jnp.ndarray, estimate: jnp.ndarray) -> jnp.ndarray:
  """(C,) root-mean-square error of each band, in the cube's unit."""
  return jnp.sqrt(jnp.mean((estimate - truth) ** 2, axis=(0, 1)))


def rmse(truth: jnp.ndarray, estimate: jnp.ndarray) -> jnp.ndarray:
  """Root-mean-square error over all pixels and bands."""
  return jnp.sqrt(jnp.mean((estimate - truth) ** 2))


def psnr(truth: jnp.ndarray, estimate: jnp.ndarray, data_range=None) -> jnp.ndarray:
  """Mean over bands of 10 log10(peak^2 / MSE), dB (inf for a perfect estimate)."""
  mse = jnp.mean((estimate - truth) ** 2, axis=(0, 1))
  peak = jnp.max(truth, axis=(0, 1)) if data_range is None else jnp.asarray(data_range)
  return jnp.mean(10.0 * jnp.log10(peak ** 2 / mse))


def sam_degrees(truth: jnp.ndarray, estimate: jnp.ndarray) -> jnp.ndarray:
  """Mean spectral angle between true and estimated spectra, degrees (0 where either spectrum
  is zero). The angle between unit spectra u and v as 2 atan2(|u - v|, |u + v|), exact to
  rounding at small angles too (unlike the arc cosine of their dot product)."""
  norm = lambda x: jnp.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
  t_norm, e_norm = norm(truth), norm(estimate)
  defined = (t_norm > 0) & (e_norm > 0)
  u = truth / jnp.where(defined, t_norm, 1.0)
  v = estimate / jnp.where(defined, e_norm, 1.0)
  angle = 2.0 * jnp.arctan2(norm(u - v), norm(u + v))
  return jnp.degrees(jnp.mean(jnp.where(defined, angle, 0.0)))


def ergas(truth: jnp.ndarray, estimate: jnp.ndarray, ratio: float) -> jnp.ndarray:
  """Relative dimensionless global error in synthesis (lower is better)."""
  relative = rmse_per_band(truth, estimate) / jnp.mean(truth, axis=(0, 1))
  return 100.0 / ratio * jnp.sqrt(jnp.mean(relative ** 2))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> jnp.ndarray:
  offsets = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2
  kernel = jnp.exp(-0.5 * (offsets / sigma) ** 2)
  return kernel / kernel.sum()


def _band_matrix(length: int, kernel: jnp.ndarray) -> jnp.ndarray:
  """(length - size + 1, length) matrix whose row i holds `kernel` at columns i ... i + size - 1:
  'valid' filtering along an axis as one matrix product."""
  size = kernel.shape[0]
  offsets = jnp.arange(length)[None, :] - jnp.arange(length - size + 1)[:, None]
  return jnp.where((offsets >= 0) & (offsets < size), kernel[jnp.clip(offsets, 0, size - 1)],
                   0.0)


def _filter_valid(image: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
  """Separable 'valid' filtering of every channel of (H, W, C), as two matrix products (fast
  on many channels)."""
  height, width = image.shape[:2]
  return jnp.einsum("ih,hwc,jw->ijc", _band_matrix(height, kernel), image,
                    _band_matrix(width, kernel), precision=jax.lax.Precision.HIGHEST)


def ssim(truth: jnp.ndarray, estimate: jnp.ndarray, valid=None) -> jnp.ndarray:
  """Mean structural similarity over bands (1 for a perfect estimate); with an (H, W) bool
  `valid`, over the windows holding only valid pixels, the range from valid pixels."""
  if valid is None:
    valid = jnp.ones(truth.shape[:2], bool)
  return _ssim(truth, estimate, jnp.asarray(valid, bool))


@jax.jit
def _ssim(truth: jnp.ndarray, estimate: jnp.ndarray, valid: jnp.ndarray) -> jnp.ndarray:
  truth = truth.astype(jnp.float32)
  estimate = estimate.astype(jnp.float32)
  inside = valid[..., None]
  data_range = (jnp.max(jnp.where(inside, truth, -jnp.inf), axis=(0, 1))
                - jnp.min(jnp.where(inside, truth, jnp.inf), axis=(0, 1)))
  kernel = _gaussian_window()
  count = kernel.shape[0] ** 2
  cov_norm = count / (count - 1.0)
  mu_t, mu_e = _filter_valid(truth, kernel), _filter_valid(estimate, kernel)
  var_t = cov_norm * (_filter_valid(truth * truth, kernel) - mu_t ** 2)
  var_e = cov_norm * (_filter_valid(estimate * estimate, kernel) - mu_e ** 2)
  cov = cov_norm * (_filter_valid(truth * estimate, kernel) - mu_t * mu_e)
  c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
  index = ((2 * mu_t * mu_e + c1) * (2 * cov + c2)) / (
      (mu_t ** 2 + mu_e ** 2 + c1) * (var_t + var_e + c2))
  # Windows with only valid pixels: the (positive) window weights of the mask sum to 1.
  full = _filter_valid(inside.astype(jnp.float32), kernel) > 1.0 - 1e-4
  full = jnp.broadcast_to(full, index.shape)
  return jnp.sum(jnp.where(full, index, 0.0)) / jnp.sum(full)


def valid_pixels(image: jnp.ndarray, valid) -> np.ndarray:
  """(N, 1, C): the N valid pixels of an (H, W, C) image as a one-column image (every image
  where `valid` is None)."""
  image = np.asarray(image)
  if valid is None:
    return image.reshape(-1, 1, image.shape[-1])
  return image[np.asarray(valid, bool)][:, None, :]


def fusion_report(truth: jnp.ndarray, estimate: jnp.ndarray, ratio: float,
                  valid=None) -> dict[str, float]:
  """PSNR (dB), SAM (degrees), ERGAS, SSIM and RMSE of an estimate (H, W, C) of `truth`, over
  the pixels where the (H, W) bool `valid` is True (all if None)."""
  return pooled_fusion_report([truth], [estimate], ratio, [valid])


def pooled_fusion_report(truths, estimates, ratio: float, valids) -> dict[str, float]:
  """`fusion_report` of several images (lists of (H_i, W_i, C) truths and estimates and of
  (H_i, W_i) bool validities or None) as one: PSNR, SAM, ERGAS and RMSE over all their valid
  pixels together; SSIM the mean of the images' SSIM weighted by their valid pixels."""
  truth_pixels = np.concatenate([valid_pixels(t, v) for t, v in zip(truths, valids)])
  estimate_pixels = np.concatenate([valid_pixels(e, v) for e, v in zip(estimates, valids)])
  counts = [t.shape[0] * t.shape[1] if v is None else int(np.sum(v))
            for t, v in zip(truths, valids)]
  ssims = [float(ssim(t, e, v)) for t, e, v in zip(truths, estimates, valids)]
  report = {name: float(value) for name, value in
            _pixel_metrics(truth_pixels, estimate_pixels, float(ratio)).items()}
  return {**report, "ssim": float(sum(c * v for c, v in zip(counts, ssims)) / sum(counts))}


@functools.partial(jax.jit, static_argnums=2)
def _pixel_metrics(truth: jnp.ndarray, estimate: jnp.ndarray, ratio: float) -> dict:
  return {"psnr": psnr(truth, estimate), "sam_deg": sam_degrees(truth, estimate),
          "ergas": ergas(truth, estimate, ratio), "rmse": rmse(truth, estimate)}


def per_image_report(truth: jnp.ndarray, estimate: jnp.ndarray) -> dict[str, float]:
  """Means over images (N, H, W, C) of RMSE, PSNR and SSIM, each with the image's own range.

  As in the LST super-resolution literature: PSNR with peak = max - min of the true image, SSIM
  with that data range, RMSE in the images' unit.
  """
  truth, estimate = jnp.asarray(truth, jnp.float32), jnp.asarray(estimate, jnp.float32)
  value_range = jnp.max(truth, axis=(1, 2)) - jnp.min(truth, axis=(1, 2))
  rmses = jax.vmap(rmse)(truth, estimate)
  psnrs = jax.vmap(psnr)(truth, estimate, value_range)
  ssims = jax.vmap(ssim)(truth, estimate)
  return {"rmse": float(jnp.mean(rmses)), "psnr": float(jnp.mean(psnrs)),
          "ssim": float(jnp.mean(ssims))}
