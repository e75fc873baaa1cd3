"""A procedural JWST-like scene: emission-line component spectra times structured abundances.

It stands in for real data so that every experiment runs on a fresh machine. The spectra are
continua plus the near-infrared lines of photo-dissociation regions (H I recombination, He I,
[Fe II], H2 ro-vibrational); the abundance maps mix smooth fields of several scales, sharp
curved fronts and compact knots, so that the NIRCam images carry detail the NIRSpec cube lacks.
"""
from __future__ import annotations

import numpy as np

from fusionjax.data.jwst.mixture import MixtureScene
from fusionjax.data.random_fields import smooth_field
from fusionjax.physics import jwst, spectral

# Rest wavelengths (um) of bright near-infrared lines of H II regions and PDRs.
EMISSION_LINES_UM = (1.0833, 1.0941, 1.2570, 1.2822, 1.6440, 1.8756, 1.9451, 1.9576, 2.1218,
                     2.1661, 2.2235)
WAVELENGTH_RANGE_UM = (1.0, 2.35)
# NIRSpec IFU electrons per (mJy/arcsec^2) per micrometre of spectrum, about what the Orion
# Bar throughput Lh (~50 e- per 0.27 nm sample) gives; NIRCam likewise from its filters Lm.
NIRSPEC_ELECTRONS_PER_UNIT_UM = 1.8e5
NIRCAM_ELECTRONS_PER_UNIT_UM = 1.4e4


def wavelength_grid(num_wavelengths: int) -> np.ndarray:
  """(L,) evenly spaced wavelengths over 1.0-2.35 um."""
  return np.linspace(*WAVELENGTH_RANGE_UM, num_wavelengths)


def component_spectra(wavelengths_um: np.ndarray, num_components: int,
                      rng: np.random.Generator) -> np.ndarray:
  """(K, L) spectra in mJy/arcsec^2: power-law continuum plus Gaussian emission lines.

  Lines are given a width of 1.5 wavelength samples so that they are resolved on the grid.
  """
  step = float(np.median(np.diff(wavelengths_um)))
  line_sigma = 1.5 * step / 2.355
  spectra = []
  for _ in range(num_components):
    level = rng.uniform(2.0, 12.0)
    slope = rng.uniform(-2.5, 1.5)
    continuum = level * (wavelengths_um / 1.6) ** slope
    lines = np.zeros_like(wavelengths_um)
    for centre in EMISSION_LINES_UM:
      if rng.random() < 0.6:
        peak = level * rng.lognormal(mean=1.0, sigma=1.0)
        lines += peak * np.exp(-0.5 * ((wavelengths_um - centre) / line_sigma) ** 2)
    spectra.append(continuum + lines)
  return np.stack(spectra).astype(np.float32)



def abundance_maps(shape: tuple[int, int], num_components: int,
                   rng: np.random.Generator) -> np.ndarray:
  """(K, H, W) non-negative abundances summing to one at every pixel."""
  height, width = shape
  yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
  logits = []
  for _ in range(num_components):
    field = sum(weight * smooth_field(rng, shape, scale)
                for scale, weight in ((height / 6, 1.0), (6.0, 0.6), (2.0, 0.3)))
    # A sinuous front (an ionisation front seen edge-on), one to two pixels wide.
    angle = rng.uniform(0.0, np.pi)
    across = (xx - width / 2) * np.cos(angle) + (yy - height / 2) * np.sin(angle)
    wiggle = 4.0 * smooth_field(rng, shape, 10.0)
    front = 1.0 / (1.0 + np.exp(-(across - rng.uniform(-0.3, 0.3) * width + wiggle) / 1.5))
    # Compact knots (globules, young stars) about a pixel across.
    knots = np.zeros(shape)
    for _ in range(int(height * width / 1500)):
      cy, cx = rng.uniform(0, height), rng.uniform(0, width)
      knots += np.exp(-0.5 * ((yy - cy) ** 2 + (xx - cx) ** 2) / rng.uniform(0.6, 1.5) ** 2)
    logits.append(field + 2.5 * front + 3.0 * knots)
  logits = np.stack(logits)
  weights = np.exp(logits - logits.max(axis=0, keepdims=True))
  return (weights / weights.sum(axis=0, keepdims=True)).astype(np.float32)


def procedural_scene(*, height: int, width: int, num_wavelengths: int, num_components: int,
                     seed: int) -> MixtureScene:
  """A JWST-like mixture scene of `height` x `width` NIRCam pixels."""
  rng = np.random.default_rng(seed)
  wavelengths = wavelength_grid(num_wavelengths)
  return MixtureScene(abundances=abundance_maps((height, width), num_components, rng),
                      spectra=component_spectra(wavelengths, num_components, rng),
                      wavelengths_um=wavelengths, name=f"procedural JWST-like scene (seed {seed})")


def procedural_instruments(wavelengths_um: np.ndarray, **settings) -> jwst.JwstInstruments:
  """NIRCam (11 short-wavelength filters) and NIRSpec IFU models on a procedural grid.

  NIRSpec throughput follows a smooth bell between 55% and 100% of its peak over the band;
  there is no separate line-spread kernel (the grid is coarser than NIRSpec's resolution).
  `settings` are further JwstInstruments fields (decimation, noise, PSF).
  """
  step_um = np.gradient(wavelengths_um)
  shape = 0.55 + 0.45 * np.exp(-0.5 * ((wavelengths_um - 1.7) / 0.45) ** 2)
  return jwst.JwstInstruments(
      wavelengths_um=wavelengths_um,
      nircam_filters=tuple(name for name, _, _ in spectral.NIRCAM_SW_FILTERS),
      nircam_responses=spectral.bandpass_responses(
          wavelengths_um, electrons_per_unit=NIRCAM_ELECTRONS_PER_UNIT_UM),
      nirspec_throughput=(shape * step_um * NIRSPEC_ELECTRONS_PER_UNIT_UM).astype(np.float32),
      nirspec_lsf=None, **settings)
