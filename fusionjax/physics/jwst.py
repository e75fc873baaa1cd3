"""JWST NIRCam imaging and NIRSpec IFU observation of a spectral-mixture scene.

The scene is a linear mixture, truth[l, y, x] = sum_k spectra[k, l] * abundances[k, y, x]
(surface brightness, mJy/arcsec^2), so it is simulated one wavelength chunk at a time and the
full high-resolution cube is never held in memory.

Forward models (Guilloteau et al. 2020):
  NIRCam  (M, H, W) electrons   = Lm . PSF_lambda(truth) + noise
  NIRSpec (L, H/d, W/d) electrons = Lh * LSF(decimate_d(PSF_lambda(truth))) + noise
"""
from __future__ import annotations

import dataclasses
import functools
import logging

import jax
import jax.numpy as jnp
import numpy as np

from fusionjax.physics import noise, psf, sampling, spectral


@dataclasses.dataclass(frozen=True)
class JwstInstruments:
  """What the two instruments do to a scene.

  Attributes:
    wavelengths_um: (L,) wavelength samples, micrometres.
    nircam_filters: names of the M NIRCam filters.
    nircam_responses: (M, L) electrons per (mJy/arcsec^2) at each wavelength sample.
    nirspec_throughput: (L,) NIRSpec electrons per (mJy/arcsec^2).
    nirspec_lsf: (K,) normalised NIRSpec line-spread kernel in wavelength samples, or None.
    decimation: NIRSpec pixel size in NIRCam pixels (0.1"/0.031" ~ 3).
    pixel_scale_arcsec: NIRCam pixel scale.
    aperture_m: telescope aperture diameter for the diffraction PSF.
    nircam_read_noise_e, nirspec_read_noise_e: read noise per pixel, electrons.
  """
  wavelengths_um: np.ndarray
  nircam_filters: tuple[str, ...]
  nircam_responses: np.ndarray
  nirspec_throughput: np.ndarray
  nirspec_lsf: np.ndarray | None
  decimation: int = 3
  pixel_scale_arcsec: float = 0.031
  aperture_m: float = 6.5
  nircam_read_noise_e: float = 15.0
  nirspec_read_noise_e: float = 15.0

  def psf_sigma_pixels(self) -> np.ndarray:
    """(L,) Gaussian PSF standard deviation at each wavelength, in NIRCam pixels."""
    return psf.diffraction_sigma_pixels(
        self.wavelengths_um, aperture_m=self.aperture_m,
        pixel_scale_arcsec=self.pixel_scale_arcsec).astype(np.float32)

  def psf_radius(self) -> int:
    """Half-width, NIRCam pixels, of the PSF kernels of every wavelength
    (`psf.kernel_radius` of the widest)."""
    return psf.kernel_radius(self.psf_sigma_pixels())


@functools.partial(jax.jit, static_argnames=("radius", "decimation"))
def _forward_planes(cube, sigma_pixels, nircam_responses, *, radius, decimation):
  """Blurs one wavelength chunk (l, H, W) of a cube; returns its NIRCam (M, H, W) and
  NIRSpec (l, H / d, W / d, before the line spread and the throughput) contributions."""
  blurred = psf.gaussian_blur(cube, sigma_pixels, radius)
  return (spectral.integrate_filters(blurred, nircam_responses),
          sampling.decimate(blurred, decimation))


def _forward_chunks(planes, num_wavelengths: int, height: int, width: int,
                    instruments: JwstInstruments, chunk: int):
  """The noise-free NIRCam (M, H, W) electrons and NIRSpec (L, H / d, W / d) electrons of a
  cube given chunk by chunk: `planes(start, stop)` -> (stop - start, H, W) surface brightness,
  mJy/arcsec^2 (zero-padded past L)."""
  sigma = instruments.psf_sigma_pixels()
  radius = instruments.psf_radius()
  pad = (-num_wavelengths) % chunk
  sigma_p = np.pad(sigma, (0, pad), constant_values=1.0)
  responses_p = np.pad(instruments.nircam_responses.astype(np.float32), [(0, 0), (0, pad)])
  nircam = jnp.zeros((len(instruments.nircam_filters), height, width), jnp.float32)
  nirspec_chunks = []
  for start in range(0, num_wavelengths + pad, chunk):
    part = slice(start, start + chunk)
    image, coarse = _forward_planes(planes(start, start + chunk), sigma_p[part],
                                    responses_p[:, part], radius=radius,
                                    decimation=instruments.decimation)
    nircam = nircam + image
    nirspec_chunks.append(np.asarray(coarse))
  nirspec = np.concatenate(nirspec_chunks)[:num_wavelengths]
  if instruments.nirspec_lsf is not None:
    nirspec = np.asarray(spectral.convolve_spectral(
        jnp.asarray(nirspec), jnp.asarray(instruments.nirspec_lsf, jnp.float32)))
  nirspec = nirspec * instruments.nirspec_throughput[:, None, None].astype(np.float32)
  return np.asarray(nircam, np.float32), nirspec.astype(np.float32)


def forward(cube: np.ndarray, instruments: JwstInstruments, *, chunk: int | None = None):
  """What the two instruments would record of a cube, without noise.

  Args:
    cube: (L, H, W) surface brightness, mJy/arcsec^2, on the instruments' wavelengths; H and
      W multiples of the decimation.
    instruments: the instrument model.
    chunk: wavelengths blurred at once (default: about 2^24 values at a time).
  Returns:
    nircam: (M, H, W) electrons; nirspec: (L, H / d, W / d) electrons.
  """
  num_wavelengths, height, width = cube.shape
  chunk = chunk or min(num_wavelengths, max(64, 2 ** 24 // (height * width)))
  cube = np.asarray(cube, np.float32)

  def planes(start, stop):
    part = cube[start:stop]
    return np.pad(part, [(0, stop - start - part.shape[0]), (0, 0), (0, 0)])
  return _forward_chunks(planes, num_wavelengths, height, width, instruments, chunk)


def reduced_chi2(cube: np.ndarray, instruments: JwstInstruments, nircam: np.ndarray,
                 nirspec: np.ndarray) -> dict[str, float]:
  """How well a cube explains the observations: the reduced chi^2 of its noise-free
  observations (`forward`) against the NIRCam images and the calibrated NIRSpec cube, each
  pixel weighed by its noise (`noise.detector_sigma` of its count): the mean of
  ((Y - F(x)) / sigma)^2 over the pixels with data, without a border of a PSF radius (NIRCam
  pixels; the NIRSpec pixels holding them) where the cube's edge stands in for the sky
  beyond. About 1 for a cube that explains the data to its noise.

  Args:
    cube: (L, H, W) surface brightness, mJy/arcsec^2.
    instruments: the instrument model.
    nircam: (M, H, W) electrons; nirspec: (L, H / d, W / d) calibrated, mJy/arcsec^2 (NaN =
      no data).
  Returns:
    {'chi2_nircam': ..., 'chi2_nirspec': ...}.
  """
  predicted_nircam, predicted_nirspec = forward(cube, instruments)
  border = instruments.psf_radius()
  throughput = instruments.nirspec_throughput[:, None, None]

  def chi2(observed, predicted, read_noise, margin):
    inner = (slice(None), slice(margin, -margin or None), slice(margin, -margin or None))
    observed, predicted = observed[inner], predicted[inner]
    sigma = noise.detector_sigma(np.nan_to_num(observed), read_noise_e=read_noise)
    with np.errstate(over="ignore", invalid="ignore"):   # e.g. a diverged network's cube
      values = ((observed - predicted) / sigma) ** 2
    finite = values[np.isfinite(values)]
    return float(np.mean(finite)) if finite.size else float("nan")
  return {"chi2_nircam": chi2(nircam, predicted_nircam, instruments.nircam_read_noise_e,
                              border),
          "chi2_nirspec": chi2(nirspec * throughput, predicted_nirspec,
                               instruments.nirspec_read_noise_e,
                               -(-border // instruments.decimation))}


def observe(spectra: np.ndarray, abundances: np.ndarray, instruments: JwstInstruments, *,
            seed: int, add_noise: bool = True, chunk: int = 128):
  """Simulates NIRCam and NIRSpec observations of a mixture scene.

  Args:
    spectra: (K, L) component spectra, mJy/arcsec^2.
    abundances: (K, H, W) abundance maps; H and W multiples of the decimation.
    instruments: the instrument model.
    seed: seed of the detector noise.
    add_noise: whether to add photon and read noise.
    chunk: wavelengths simulated at once (bounds memory to about chunk * H * W floats).
  Returns:
    nircam: (M, H, W) electrons; nirspec: (L, H / d, W / d) electrons.
  """
  num_components, num_wavelengths = spectra.shape
  _, height, width = abundances.shape
  d = instruments.decimation
  if height % d or width % d:
    raise ValueError(f"scene of {height} x {width} pixels is not a multiple of the NIRSpec "
                     f"decimation {d}")
  spectra_p = np.pad(spectra.astype(np.float32), [(0, 0), (0, (-num_wavelengths) % chunk)])
  abundances = jnp.asarray(abundances, jnp.float32)
  nircam, nirspec = _forward_chunks(
      lambda start, stop: jnp.einsum("kl,khw->lhw", spectra_p[:, start:stop], abundances),
      num_wavelengths, height, width, instruments, chunk)
  if add_noise:
    rng = np.random.default_rng(seed)
    nircam = noise.add_detector_noise(nircam, read_noise_e=instruments.nircam_read_noise_e,
                                      rng=rng)
    nirspec = noise.add_detector_noise(nirspec, read_noise_e=instruments.nirspec_read_noise_e,
                                       rng=rng)
  logging.info("Simulated NIRCam %s and NIRSpec %s observations (%d wavelengths).",
               nircam.shape, nirspec.shape, num_wavelengths)
  return nircam.astype(np.float32), nirspec.astype(np.float32)
