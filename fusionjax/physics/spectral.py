"""Spectral responses: filter integration, line-spread convolution, NIRCam bandpasses."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

# NIRCam short-wavelength filters used for fusion: (name, pivot wavelength um, bandwidth um).
# Approximate published values; only the procedural scene uses them (the Orion Bar data
# ships the real filter operators).
NIRCAM_SW_FILTERS = (
    ("F115W", 1.154, 0.225),
    ("F140M", 1.404, 0.142),
    ("F150W", 1.501, 0.318),
    ("F150W2", 1.659, 1.177),
    ("F162M", 1.626, 0.168),
    ("F164N", 1.644, 0.020),
    ("F182M", 1.845, 0.238),
    ("F187N", 1.874, 0.024),
    ("F200W", 1.990, 0.461),
    ("F210M", 2.093, 0.205),
    ("F212N", 2.120, 0.027),
)


def integrate_filters(cube: jnp.ndarray, responses: jnp.ndarray) -> jnp.ndarray:
  """Integrates a cube through filters: image_m = sum_l responses[m, l] * cube[l].

  Args:
    cube: (L, H, W) surface brightness per wavelength sample.
    responses: (M, L) response of each filter at each wavelength sample, including the
      wavelength step and the conversion to detected electrons.
  Returns:
    (M, H, W) filter images (electrons when `responses` converts to electrons).
  """
  return jnp.einsum("ml,lhw->mhw", responses, cube)


def convolve_spectral(cube: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
  """Convolves every spectrum of a (L, H, W) cube with a normalised line-spread kernel (K,).

  Edges are padded with the edge value, so a flat spectrum stays flat.
  """
  radius = (kernel.shape[0] - 1) // 2
  padded = jnp.pad(cube, [(radius, radius), (0, 0), (0, 0)], mode="edge")
  length = cube.shape[0]
  out = jnp.zeros_like(cube)
  for tap in range(kernel.shape[0]):
    out = out + kernel[tap] * padded[tap:tap + length]
  return out


def bandpass_responses(wavelengths_um: np.ndarray, filters=NIRCAM_SW_FILTERS, *,
                       electrons_per_unit: float = 1.0, edge_order: int = 4) -> np.ndarray:
  """Flat-topped (super-Gaussian) filter transmissions integrated over each wavelength step.

  Args:
    wavelengths_um: (L,) increasing wavelength samples in micrometres.
    filters: (name, pivot_um, bandwidth_um) triples.
    electrons_per_unit: detected electrons per (surface-brightness unit x micrometre) at unit
      transmission, for the whole exposure.
    edge_order: steepness of the filter edges (2 gives a Gaussian).
  Returns:
    (M, L) responses such that `integrate_filters` gives electrons.
  """
  wavelengths_um = np.asarray(wavelengths_um, np.float64)
  step_um = np.gradient(wavelengths_um)
  rows = []
  for _, pivot, width in filters:
    transmission = np.exp(-0.5 * np.abs((wavelengths_um - pivot) / (width / 2.355)) ** edge_order)
    rows.append(transmission * step_um * electrons_per_unit)
  return np.stack(rows).astype(np.float32)
