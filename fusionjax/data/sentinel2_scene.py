"""Prepares a Sentinel-2 band-sharpening scene (20 m -> 10 m) under the Wald protocol.

As DSen2 (Lanaras et al. 2018): every band is degraded by 2 with the Gaussian PSF of its own
MTF (`psf.degrade_to_mtf`): the six 20 m bands to 40 m (the model's low-resolution input), the
four 10 m bands to 20 m (its high-resolution guide); the 20 m bands themselves are the truth.
The model learns 40 m -> 20 m and is applied one scale finer (20 m -> 10 m, `full_resolution`).
A right-hand strip of the scene is held out for evaluation (no training tile overlaps it).
No-data (0) and saturated (65535) pixels are marked invalid: left out of the loss and metrics.
"""
from __future__ import annotations

import logging

import numpy as np

from fusionjax.data import coding as coding_lib
from fusionjax.data import procedural_sentinel2, sentinel2
from fusionjax.data.fusion_scene import FusionScene, validation_start
from fusionjax.physics import psf

FACTOR = 2   # 20 m / 10 m


def load_scene(config) -> sentinel2.Scene:
  """The configured scene: data.dir (a .mat file or a folder of band files) or procedural."""
  data = config.data
  if not data.dir:
    return procedural_sentinel2.make_scene(data.procedural_size, config.seed)
  return sentinel2.read_scene(data.dir, sentinel2.BANDS_10M + sentinel2.BANDS_20M)


def degrade(image: np.ndarray, names) -> np.ndarray:
  """(H, W, C) bands `names` -> (H / 2, W / 2, C), each through its own MTF."""
  mtfs = [sentinel2.BANDS[n].mtf_at_nyquist for n in names]
  return np.asarray(psf.degrade_to_mtf(image, FACTOR, mtfs), np.float32)


def prepare_sentinel2_scene(config) -> FusionScene:
  """Builds the reduced-resolution FusionScene of a Sentinel-2 config (experiments/sentinel2.py)."""
  scene = load_scene(config)
  guides, targets = sentinel2.BANDS_10M, sentinel2.BANDS_20M
  hr_guide = scene.stack(guides)            # 10 m
  target = scene.stack(targets)             # 20 m: the truth of the reduced problem
  height, width = target.shape[:2]
  if height % FACTOR or width % FACTOR:
    target = target[:height - height % FACTOR, :width - width % FACTOR]
    hr_guide = hr_guide[:2 * target.shape[0], :2 * target.shape[1]]
    height, width = target.shape[:2]
  if min(height, width) < config.data.tile_size:
    raise ValueError(f"{scene.source}: the 20 m bands are {height} x {width} pixels, smaller "
                     f"than one data.tile_size={config.data.tile_size} tile")
  logging.info("Sentinel-2 scene %s: %d x %d pixels at 20 m.", scene.source, height, width)
  # No-data or saturated pixels are no truth (nor may the 10 m guide be missing there).
  truth_valid = (sentinel2.valid_pixels(target)
                 & sentinel2.valid_at_coarser(sentinel2.valid_pixels(hr_guide), FACTOR))
  if not truth_valid.any():
    raise ValueError(f"{scene.source}: every pixel is no-data ({sentinel2.NODATA:g}) or "
                     f"saturated ({sentinel2.SATURATED:g}) in some band")
  # Degraded from gap-filled bands, so that no-data does not bleed into the inputs as zeros.
  msi = degrade(sentinel2.fill_invalid(hr_guide, sentinel2.valid_pixels(hr_guide)), guides)
  lr = degrade(sentinel2.fill_invalid(target, sentinel2.valid_pixels(target)), targets)
  # Standardisations from measured pixels only.
  coding = coding_lib.fit_coding(lr[sentinel2.valid_at_coarser(truth_valid, FACTOR)], 0)
  msi_mean, msi_scale = msi[truth_valid].mean(axis=0), msi[truth_valid].std(axis=0)
  val_start = validation_start(width, config.data.val_fraction, config.data.tile_size, FACTOR)
  return FusionScene(
      lr_codes=coding.encode(lr).astype(np.float32),
      msi=((msi - msi_mean) / msi_scale).astype(np.float32),
      truth_codes=coding.encode(target).astype(np.float32), truth_valid=truth_valid,
      coding=coding,
      msi_mean=msi_mean, msi_scale=msi_scale, scale_factor=FACTOR, val_col_start=val_start,
      val_truth=np.moveaxis(target[:, val_start:], -1, 0),
      val_lr=np.moveaxis(lr[:, val_start // FACTOR:], -1, 0),
      wavelengths_um=np.array([sentinel2.BANDS[n].wavelength_nm / 1000.0 for n in targets]),
      msi_bands=guides, units=sentinel2.UNITS, pixel_size=20.0, pixel_unit="m",
      name=f"Sentinel-2 {scene.source}")
