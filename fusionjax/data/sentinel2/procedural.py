"""Procedural Sentinel-2 L1C scenes of several landscapes, so that the main job runs without
downloaded data and a model can be trained and tested on land covers the real scenes lack.

The ground is a mixture of five surfaces (vegetation, bare soil, water, built-up, snow) whose
abundances come from fractal fields cut into sharp-edged parcels; each surface has a
top-of-atmosphere reflectance spectrum sampled at the twelve bands' central wavelengths (B9
low: water-vapour absorption), varied by moisture, chlorophyll and water vapour fields. A
landscape (`LANDSCAPES`) sets how common each surface is and how thick the haze is: a smooth
layer that adds path reflectance and dims the ground, most at short wavelengths. Every band
is observed as the instrument does: the 10 m ground blurred by the band's Gaussian MTF model
and sampled at its own resolution (10, 20 or 60 m), as reflectance x 10000.
"""
from __future__ import annotations

import dataclasses

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
    [0.16, 0.15, 0.16, 0.18, 0.19, 0.20, 0.21, 0.22, 0.22, 0.12, 0.25, 0.22],   # built-up
    [0.86, 0.85, 0.84, 0.82, 0.80, 0.78, 0.76, 0.74, 0.72, 0.36, 0.08, 0.05]])  # snow
# Haze of unit thickness at 490 nm: path reflectance and optical depth, both falling with
# wavelength as an Angstrom law (exponents of a continental aerosol).
_HAZE_REFLECTANCE_490, _HAZE_REFLECTANCE_EXPONENT = 0.10, 1.5
_HAZE_DEPTH_490, _HAZE_DEPTH_EXPONENT = 0.4, 1.3


@dataclasses.dataclass(frozen=True)
class Landscape:
  """How common each surface is (a logit added to its abundance field, in _SPECTRA's order;
  -inf: absent) and the mean haze thickness (0: clear; 1: thick haze at 490 nm)."""
  name: str
  prevalence: tuple[float, float, float, float, float]
  haze: float = 0.0


_ABSENT = -np.inf
LANDSCAPES = {s.name: s for s in (
    Landscape("mixed", (0.0, 0.0, -2.0, 0.0, _ABSENT)),           # farmland, towns, ponds
    Landscape("water", (0.0, -1.0, 2.0, -1.0, _ABSENT)),          # coast, lakes and rivers
    Landscape("arid", (-3.0, 2.5, -4.0, -0.5, _ABSENT)),          # bare soil, sparse fields
    Landscape("urban", (-0.5, -1.0, -2.0, 2.5, _ABSENT)),         # a city and its outskirts
    Landscape("snow", (0.5, -1.5, -1.5, -1.0, 1.5)),              # snow between forests
    Landscape("hazy", (0.0, 0.0, -2.0, 0.0, _ABSENT), haze=0.6))}  # farmland under haze


def _band_weights(values: dict) -> np.ndarray:
  """(12,) weights on _BAND_ORDER from {band: weight}, 0 elsewhere."""
  return np.array([values.get(name, 0.0) for name in _BAND_ORDER])


def landscape_of(name: str) -> Landscape:
  if name not in LANDSCAPES:
    raise ValueError(f"procedural landscape {name!r}: expected one of {tuple(LANDSCAPES)}")
  return LANDSCAPES[name]


def _wavelengths_nm() -> np.ndarray:
  return np.array([sentinel2.BANDS[name].wavelength_nm for name in _BAND_ORDER])


def haze_layer(thickness: np.ndarray, reflectance: np.ndarray) -> np.ndarray:
  """TOA reflectance (..., 12) seen through haze of (..., 1) thickness (0: clear): the ground's
  `reflectance` dimmed by exp(-tau(lambda) thickness) plus the haze's own path reflectance
  rho(lambda) thickness, with tau and rho Angstrom laws in wavelength (lambda / 490 nm)."""
  relative = _wavelengths_nm() / 490.0
  depth = _HAZE_DEPTH_490 * relative ** -_HAZE_DEPTH_EXPONENT
  path = _HAZE_REFLECTANCE_490 * relative ** -_HAZE_REFLECTANCE_EXPONENT
  return reflectance * np.exp(-depth * thickness) + path * thickness


def ground_reflectance(size: int, seed: int, landscape: str = "mixed") -> np.ndarray:
  """(size, size, 12) TOA reflectance x 10000 on the 10 m grid, bands in _BAND_ORDER, of a
  `landscape` (LANDSCAPES).

  Besides the mixture, smooth fields vary what the 10 m bands barely see: soil and leaf water
  (lower SWIR, B11 and B12, of soil and vegetation), leaf chlorophyll (the red edge, B5 and
  B6, of vegetation) and atmospheric water vapour (B9), so the 20 m bands are not a linear
  function of the 10 m ones.
  """
  settings = landscape_of(landscape)
  rng = np.random.default_rng(seed)
  # Snow's and the haze's fields come from a stream of their own, so that the other fields
  # of a seed are the same in every landscape.
  rng_extra = np.random.default_rng([seed, 1])
  parcels = max(size // 12, 1)

  def parcel_field(generator, sharpness):
    smooth = fractal_field(generator, size, 2.8)
    blocks = generator.normal(size=(parcels, parcels))
    parcel = np.kron(blocks, np.ones((-(-size // parcels),) * 2))[:size, :size]
    return sharpness * (smooth + parcel)
  logits = [parcel_field(rng, sharpness) for sharpness in (3.0, 2.0, 2.5, 2.0)]
  logits.append(parcel_field(rng_extra, 2.0))
  logits = np.stack(logits, axis=-1) + np.array(settings.prevalence)
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
  reflectance = texture * reflectance
  if settings.haze:
    thickness = settings.haze * np.exp(0.5 * fractal_field(rng_extra, size, 3.5))[..., None]
    reflectance = haze_layer(thickness, reflectance)
  return (10000.0 * reflectance).astype(np.float32)


def make_scene(size: int = 240, seed: int = 0, landscape: str = "mixed") -> sentinel2.Scene:
  """A (size x size at 10 m) scene of a `landscape` (LANDSCAPES) with every band at its own
  resolution; size a multiple of 6 (the 60 m bands)."""
  if size % 6:
    raise ValueError(f"data.procedural_size={size}: expected a multiple of 6 (60 m / 10 m)")
  ground = ground_reflectance(size, seed, landscape)
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
  return sentinel2.Scene(bands=bands, georef=None, source=f"procedural {landscape} (seed {seed})")
