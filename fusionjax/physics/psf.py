"""Spatial point-spread functions.

Cubes are laid out (wavelength, rows, columns), as in FITS. A diffraction-limited telescope of
aperture D has a PSF core whose full width at half maximum grows with wavelength,
FWHM = 1.025 lambda / D (the Airy core); a Gaussian of that FWHM stands in for the full PSF.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from fusionjax.physics import sampling

ARCSEC_PER_RADIAN = 180.0 * 3600.0 / math.pi
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def diffraction_fwhm_arcsec(wavelength_um, aperture_m: float):
  """FWHM of the Airy core, 1.025 lambda / D, in arcseconds; wavelength_um any shape."""
  return 1.025 * np.asarray(wavelength_um) * 1e-6 / aperture_m * ARCSEC_PER_RADIAN


def diffraction_sigma_pixels(wavelength_um, *, aperture_m: float, pixel_scale_arcsec: float):
  """Standard deviation in pixels of the Gaussian matching the diffraction FWHM, shape of input."""
  fwhm = diffraction_fwhm_arcsec(wavelength_um, aperture_m)
  return fwhm / FWHM_PER_SIGMA / pixel_scale_arcsec


def gaussian_kernels(sigma_pixels: jnp.ndarray, radius: int) -> jnp.ndarray:
  """One normalised 1-D Gaussian kernel per wavelength.

  Args:
    sigma_pixels: (L,) standard deviations in pixels, > 0.
    radius: kernel half-width in pixels; the kernels have 2 * radius + 1 taps.
  Returns:
    (L, 2 * radius + 1) kernels, each summing to 1.
  """
  offsets = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
  sigma = jnp.asarray(sigma_pixels, jnp.float32)[:, None]
  kernels = jnp.exp(-0.5 * (offsets[None, :] / sigma) ** 2)
  return kernels / kernels.sum(axis=1, keepdims=True)


def kernel_radius(sigma_pixels) -> int:
  """Half-width (pixels) holding the Gaussian out to 4 sigma for the widest PSF."""
  return max(1, int(math.ceil(4.0 * float(np.max(sigma_pixels)))))


def mtf_sigma_pixels(factor: int, mtf_at_nyquist: float) -> float:
  """Standard deviation, in fine pixels, of the Gaussian PSF whose modulation transfer at the
  coarse Nyquist frequency, 1 / (2 factor) cycles per fine pixel, equals `mtf_at_nyquist`.

  A Gaussian of standard deviation s has MTF(f) = exp(-2 pi^2 s^2 f^2).
  """
  if not 0.0 < mtf_at_nyquist < 1.0:
    raise ValueError(f"mtf_at_nyquist={mtf_at_nyquist}: expected a value in (0, 1)")
  nyquist = 1.0 / (2.0 * factor)
  return math.sqrt(-math.log(mtf_at_nyquist) / 2.0) / (math.pi * nyquist)


@functools.partial(jax.jit, static_argnames=("axis",))
def _convolve_axis(cube: jnp.ndarray, kernels: jnp.ndarray, axis: int) -> jnp.ndarray:
  """Convolves every plane of `cube` (L, H, W) with its own kernel along `axis` (1 or 2);
  compiled, so that the taps run as one fused loop."""
  radius = (kernels.shape[1] - 1) // 2
  pad = [(0, 0), (0, 0), (0, 0)]
  pad[axis] = (radius, radius)
  padded = jnp.pad(cube, pad, mode="symmetric")
  size = cube.shape[axis]
  out = jnp.zeros_like(cube)
  for tap in range(kernels.shape[1]):
    window = jax.lax.slice_in_dim(padded, tap, tap + size, axis=axis)
    out = out + kernels[:, tap, None, None] * window
  return out


def gaussian_blur(cube: jnp.ndarray, sigma_pixels: jnp.ndarray, radius: int) -> jnp.ndarray:
  """Blurs each wavelength plane with its own Gaussian PSF (separable, symmetric edges).

  The sky is assumed to continue beyond the frame as its mirror image, so the frame has no dark
  rim. Each kernel sums to one, so flux is conserved for a source away from the edges.

  Args:
    cube: (L, H, W) surface brightness (any unit; the output has the same unit).
    sigma_pixels: (L,) Gaussian standard deviation per wavelength, in pixels.
    radius: kernel half-width in pixels (see `kernel_radius`).
  Returns:
    (L, H, W) blurred cube.
  """
  kernels = gaussian_kernels(sigma_pixels, radius)
  return _convolve_axis(_convolve_axis(cube, kernels, axis=1), kernels, axis=2)


def degrade_to_mtf(image: jnp.ndarray, factor: int, mtf_at_nyquist) -> jnp.ndarray:
  """What a sensor with `factor` times coarser pixels sees: each channel blurred by the
  Gaussian whose MTF at the coarse Nyquist frequency is that channel's `mtf_at_nyquist`, then
  sampled at the coarse pixel centres (the mean of each factor x factor block).

  Args:
    image: (H, W, C), H and W multiples of `factor`.
    factor: integer resolution ratio.
    mtf_at_nyquist: (C,) values in (0, 1).
  Returns:
    (H / factor, W / factor, C), same unit.
  """
  sigmas = np.array([mtf_sigma_pixels(factor, m) for m in np.atleast_1d(mtf_at_nyquist)])
  planes = jnp.moveaxis(jnp.asarray(image, jnp.float32), -1, 0)
  blurred = gaussian_blur(planes, sigmas, kernel_radius(sigmas))
  return jnp.moveaxis(sampling.decimate(blurred, factor), 0, -1)
