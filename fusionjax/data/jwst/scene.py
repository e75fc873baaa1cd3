"""Prepares a JWST fusion scene: simulate NIRCam + NIRSpec, calibrate, code, split, cache."""
from __future__ import annotations

import dataclasses
import logging

import numpy as np

from fusionjax.baselines import model_based, model_based_weights
from fusionjax.data import coding as coding_lib
from fusionjax.data.jwst import orionbar
from fusionjax.data.jwst import procedural as procedural_jwst
from fusionjax.data.fusion_scene import FusionScene, split_columns
from fusionjax.data.jwst.observation import Observation
from fusionjax.physics import jwst

UNITS = "mJy/arcsec2"


def _instrument_settings(config) -> dict:
  inst = config.instrument
  return dict(decimation=inst.decimation, pixel_scale_arcsec=inst.pixel_scale_arcsec,
              aperture_m=inst.aperture_m, nircam_read_noise_e=inst.nircam_read_noise_e,
              nirspec_read_noise_e=inst.nirspec_read_noise_e)


def load_mixture(config):
  """The configured scene and instruments: the procedural default or the Orion Bar files."""
  data = config.data
  if data.source == "procedural":
    scene = procedural_jwst.procedural_scene(
        height=data.scene_height, width=data.scene_width,
        num_wavelengths=data.num_wavelengths, num_components=data.num_components,
        seed=config.seed)
    return scene, procedural_jwst.procedural_instruments(scene.wavelengths_um,
                                                         **_instrument_settings(config))
  if data.source == "orionbar":
    if not data.dir:
      raise ValueError("data.dir is empty: the orionbar source needs the folder of the Orion Bar "
                       "FITS files, e.g. --config.data.dir=../shared/data/jwst_orionbar")
    return orionbar.load_orionbar(data.dir, **_instrument_settings(config))
  raise ValueError(f"data.source={data.source!r}: expected 'procedural' or 'orionbar'")


def load_instruments(config) -> jwst.JwstInstruments:
  """The configured instruments alone (what `load_mixture` returns beside the scene)."""
  if config.data.source == "procedural":
    return procedural_jwst.procedural_instruments(
        procedural_jwst.wavelength_grid(config.data.num_wavelengths),
        **_instrument_settings(config))
  return load_mixture(config)[1]


def _crop_to_multiple(scene, factor: int, height: int, width: int):
  _, full_height, full_width = scene.shape
  height = min(height or full_height, full_height)
  width = min(width or full_width, full_width)
  return scene.cropped(height - height % factor, width - width % factor)


def simulate_observation(config):
  """The configured scene (cropped to the decimation) and what JWST observes of it.

  Returns:
    (scene, instruments, observation): the MixtureScene, the JwstInstruments and the
    jwst_observation.Observation (NIRSpec calibrated to surface brightness with the known
    throughput, NIRCam in electrons).
  """
  scene, instruments = load_mixture(config)
  factor = instruments.decimation
  scene = _crop_to_multiple(scene, factor, config.data.crop_height, config.data.crop_width)
  num_wavelengths, height, width = scene.shape
  logging.info("Scene: %s, %d wavelengths x %d x %d pixels.", scene.name, num_wavelengths,
               height, width)
  nircam_e, nirspec_e = jwst.observe(scene.spectra, scene.abundances, instruments,
                                     seed=config.seed + 1, add_noise=config.instrument.noise)
  observation = Observation(
      nirspec=(nirspec_e / instruments.nirspec_throughput[:, None, None]).astype(np.float32),
      nircam=np.asarray(nircam_e, np.float32),
      wavelengths_um=np.asarray(scene.wavelengths_um, np.float64),
      filters=tuple(instruments.nircam_filters), units=UNITS,
      pixel_scale_arcsec=instruments.pixel_scale_arcsec)
  return scene, instruments, observation


def prepare_jwst_scene(config) -> FusionScene:
  """Builds the FusionScene of a JWST experiment config (see experiments/jwst.py)."""
  scene, instruments, observation = simulate_observation(config)
  factor = instruments.decimation
  num_wavelengths, height, width = scene.shape
  nirspec, nircam_e = observation.nirspec, observation.nircam
  lr_pixels = nirspec.reshape(num_wavelengths, -1).T
  coding = coding_lib.fit_coding(lr_pixels, config.data.subspace_dim,
                                 line_spread=instruments.nirspec_lsf,
                                 deconvolution_eps=config.data.deconvolution_eps)
  lr_codes = coding.encode_observed(np.moveaxis(nirspec, 0, -1)).astype(np.float32)
  msi = np.moveaxis(nircam_e, 0, -1)
  msi_mean, msi_scale = msi.mean(axis=(0, 1)), msi.std(axis=(0, 1))
  truth_codes = np.concatenate(
      [coding.encode(np.moveaxis(scene.cube(slice(c, c + 64)), 0, -1)).astype(np.float32)
       for c in range(0, width, 64)], axis=1)
  heldout_start, test_start, gap = split_columns(width, config.data, factor)
  scene = FusionScene(
      lr_codes=lr_codes, msi=((msi - msi_mean) / msi_scale).astype(np.float32),
      truth_codes=truth_codes, truth_valid=np.ones((height, width), bool), coding=coding,
      msi_mean=msi_mean, msi_scale=msi_scale,
      scale_factor=factor, heldout_col_start=heldout_start, test_col_start=test_start,
      split_gap=gap, heldout_truth=scene.cube(slice(heldout_start, None)),
      heldout_lr=nirspec[:, :, heldout_start // factor:].astype(np.float32),
      wavelengths_um=np.asarray(scene.wavelengths_um, np.float64),
      msi_bands=instruments.nircam_filters, units=UNITS,
      pixel_size=instruments.pixel_scale_arcsec, pixel_unit="arcsec", name=scene.name)
  if config.data.base_estimate != "model_based":
    return scene
  smoothness, base_codes = model_based_estimate(config, instruments, scene, nircam_e, nirspec)
  return dataclasses.replace(scene, base_codes=base_codes, base_smoothness=smoothness)


def model_based_estimate(config, instruments: jwst.JwstInstruments, scene: FusionScene,
                         nircam: np.ndarray, nirspec: np.ndarray) -> tuple[float, np.ndarray]:
  """The model-based fusion (fusionjax.baselines.model_based, settings config.model_based)
  of a whole prepared scene from its (M, H, W) NIRCam electrons and (L, h, w) calibrated
  NIRSpec cube, at the smoothness weight the discrepancy principle
  (`model_based_weights.discrepancy_weight`) chooses on the validation strip's observations
  (no truth; a strip, to keep the search cheap): (the relative weight, the (H, W, d) codes)."""
  settings = config.model_based
  subspace = model_based.subspace_instruments(instruments, scene.coding, settings.psf_nodes)
  start, end = scene.split_columns("validation")
  s = scene.scale_factor
  strip = model_based.observations(subspace, nircam[:, :, start:end],
                                   nirspec[:, :, start // s:end // s])
  weight = model_based_weights.discrepancy_weight(
      subspace, strip, settings.weights, target=settings.chi2_target,
      iterations=settings.iterations).weight
  logging.info("Model-based fusion of the whole scene (smoothness %.3g).", weight)
  codes = model_based.fuse(subspace, model_based.observations(subspace, nircam, nirspec),
                           relative_smoothness=weight, iterations=settings.iterations)
  return weight, codes.astype(np.float32)
