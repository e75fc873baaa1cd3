"""Spatial point-spread functions.

Cubes are laid out (wavelength, rows, columns), as in FITS. A diffraction-limited telescope of
aperture D has a PSF core whose full width at half maximum grows with wavelength,
FWHM = 1.025 lambda / D (the Airy core); a Gaussian of that FWHM stands in for the full PSF.
"""
from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

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


def _convolve_axis(cube: jnp.ndarray, kernels: jnp.ndarray, axis: int) -> jnp.ndarray:
  """Convolves every plane of `cube` (L, H, W) with its own kernel along `axis` (1 or 2)."""
  radius = (kernels.shape[1] - 1) // 2
  pad = [(0, 0), (0, 0), (0, 0)]
  pad[axis] = (radius, radius)
  padded = jnp.pad(cube, pad, mode="symmetric")
  size = cube.shape[axis]
  out = jnp.zeros_like(cube)
  for tap in range(kernels.shape[1]):
    window = jnp.take(padded, jnp.arange(tap, tap + size), axis=axis)
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
