"""Gaussian random fields for the procedural scenes (zero mean, unit standard deviation)."""
from __future__ import annotations

import numpy as np


def fractal_field(rng: np.random.Generator, size: int, slope: float) -> np.ndarray:
  """(size, size) Gaussian random field with power spectrum ~ k^-slope, zero mean, unit std."""
  frequencies = np.fft.fftfreq(size)
  k = np.sqrt(frequencies[:, None] ** 2 + frequencies[None, :] ** 2)
  amplitude = np.where(k > 0, np.maximum(k, 1.0 / size) ** (-slope / 2.0), 0.0)
  noise = rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))
  field = np.real(np.fft.ifft2(noise * amplitude))
  return (field - field.mean()) / field.std()


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> np.ndarray:
  """A zero-mean, unit-variance Gaussian random field correlated over `scale_px` pixels."""
  noise = rng.standard_normal(shape)
  fy = np.fft.fftfreq(shape[0])[:, None]
  fx = np.fft.fftfreq(shape[1])[None, :]
  transfer = np.exp(-2.0 * (np.pi * scale_px) ** 2 * (fx ** 2 + fy ** 2))
  field = np.real(np.fft.ifft2(np.fft.fft2(noise) * transfer))
  return (field - field.mean()) / (field.std() + 1e-12)
