"""A procedural Sentinel-2 L1C scene, so that the main job runs without downloaded data.

The ground is a mixture of four surfaces (vegetation, bare soil, water, built-up) whose
abundances come from fractal fields cut into sharp-edged parcels; each surface has a
top-of-atmosphere reflectance spectrum sampled at the twelve bands' central wavelengths (B9
low: water-vapour absorption), varied by moisture, chlorophyll and water vapour fields. Every band is observed as the instrument does: the 10 m ground
truth blurred by the band's Gaussian MTF model and sampled at its own resolution (10, 20 or
60 m), as reflectance x 10000.
"""
from __future__ import annotations

import numpy as np

from fusionjax.data.sentinel2 import reader as sentinel2
from fusionjax.data.random_fields import fractal_field
from fusionjax.physics import psf

# TOA reflectance of each surface at B1 B2 B3 B4 B5 B6 B7 B8 B8A B9 B11 B12.
_BAND_ORDER = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12")
_SPECTRA = np.array([
    [0.12, 0.09, 0.09, 0.05, 0.12, 0.28, 0.34, 0.36, 0.37, 0.20, 0.18, 0.08],   # vegetation
    [0.14, 0.12, 0.15, 0.20, 0.22, 0.24, 0.25, 0.27, 0.28, 0.14, 0.33, 0.28],   # bare soil
    [0.12, 0.09, 0.07, 0.04, 0.035, 0.03, 0.028, 0.025, 0.022, 0.01, 0.01, 0.008],  # water
    [0.16, 0.15, 0.16, 0.18, 0.19, 0.20, 0.21, 0.22, 0.22, 0.12, 0.25, 0.22]])  # built-up


def _band_weights(values: dict) -> np.ndarray:
  """(12,) weights on _BAND_ORDER from {band: weight}, 0 elsewhere."""
  return np.array([values.get(name, 0.0) for name in _BAND_ORDER])


def ground_reflectance(size: int, seed: int) -> np.ndarray:
  """(size, size, 12) TOA reflectance x 10000 on the 10 m grid, bands in _BAND_ORDER.

  Besides the mixture, smooth fields vary what the 10 m bands barely see: soil and leaf water
  (lower SWIR, B11 and B12, of soil and vegetation), leaf chlorophyll (the red edge, B5 and
  B6, of vegetation) and atmospheric water vapour (B9), so the 20 m bands are not a linear
  function of the 10 m ones.
  """
  rng = np.random.default_rng(seed)
  parcels = max(size // 12, 1)
  logits = []
  for sharpness in (3.0, 2.0, 2.5, 2.0):
    smooth = fractal_field(rng, size, 2.8)
    blocks = rng.normal(size=(parcels, parcels))
    parcel = np.kron(blocks, np.ones((-(-size // parcels),) * 2))[:size, :size]
    logits.append(sharpness * (smooth + parcel))
  logits = np.stack(logits, axis=-1)
  logits[..., 2] -= 2.0                        # water is rarer
  abundances = np.exp(logits - logits.max(axis=-1, keepdims=True))
  abundances /= abundances.sum(axis=-1, keepdims=True)
  moisture, chlorophyll, vapour = (np.tanh(fractal_field(rng, size, slope))[..., None]
                                   for slope in (2.2, 2.0, 3.5))
  swir = 1.0 - 0.25 * moisture * _band_weights({"B11": 1.0, "B12": 1.3})
  red_edge = 1.0 - 0.2 * chlorophyll * _band_weights({"B5": 1.0, "B6": 0.5})
  spectra = {0: swir * red_edge, 1: swir}      # vegetation, bare soil
  reflectance = sum(abundances[..., k:k + 1] * _SPECTRA[k] * spectra.get(k, 1.0)
                    for k in range(len(_SPECTRA)))
  reflectance = reflectance * (1.0 - 0.3 * vapour * _band_weights({"B9": 1.0}))
  texture = 1.0 + 0.05 * fractal_field(rng, size, 1.5)[..., None]
  return (10000.0 * texture * reflectance).astype(np.float32)


def make_scene(size: int = 240, seed: int = 0) -> sentinel2.Scene:
  """A (size x size at 10 m) scene with every band at its own resolution; size a multiple
  of 6 (the 60 m bands)."""
  if size % 6:
    raise ValueError(f"data.procedural_size={size}: expected a multiple of 6 (60 m / 10 m)")
  ground = ground_reflectance(size, seed)
  bands = {}
  for index, name in enumerate(_BAND_ORDER):
    band = sentinel2.BANDS[name]
    factor = band.resolution_m // 10
    image = ground[..., index:index + 1]
    if factor == 1:    # the band's own PSF at its own Nyquist frequency
      sigma = psf.mtf_sigma_pixels(1, band.mtf_at_nyquist)
      observed = psf.gaussian_blur(np.moveaxis(image, -1, 0), np.array([sigma]),
                                   psf.kernel_radius(sigma))[0]
    else:
      observed = psf.degrade_to_mtf(image, factor, [band.mtf_at_nyquist])[..., 0]
    bands[name] = np.round(np.asarray(observed)).astype(np.float32)   # L1C integer counts
  return sentinel2.Scene(bands=bands, georef=None, source=f"procedural (seed {seed})")
