"""Detector noise: photon (Poisson) noise on detected electrons plus Gaussian read noise."""
from __future__ import annotations

import numpy as np


def add_detector_noise(electrons: np.ndarray, *, read_noise_e: float,
                       rng: np.random.Generator) -> np.ndarray:
  """Draws a noisy detector read-out of an expected electron count.

  Args:
    electrons: expected electrons per pixel for the exposure, any shape (negative values,
      which the scene model can produce at the 1e-3 level, emit no photons).
    read_noise_e: standard deviation of the read noise in electrons.
    rng: numpy random generator.
  Returns:
    float32 array of the same shape, in electrons.
  """
  expected = np.clip(np.asarray(electrons, np.float64), 0.0, None)
  counts = rng.poisson(expected).astype(np.float64)
  counts += rng.normal(0.0, read_noise_e, size=counts.shape)
  return counts.astype(np.float32)


def detector_sigma(electrons: np.ndarray, *, read_noise_e: float) -> np.ndarray:
  """The standard deviation of a detector read-out as `add_detector_noise` draws it, from the
  recorded count itself: photon noise (negative counts emit none) and read noise,
  sqrt(max(e, 0) + read_noise^2), electrons; any shape."""
  return np.sqrt(np.clip(np.asarray(electrons, np.float64), 0.0, None)
                 + read_noise_e ** 2).astype(np.float32)
