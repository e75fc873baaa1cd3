"""A new data source and the task that trains on it: docs/extending.md, "Add a data source"
and "Add a task".

The source is a pair of co-registered GeoTIFFs, `coarse.tif` (C bands) and `fine.tif`
(M bands, `scale_factor` times finer, covering the same area), e.g. a hyperspectral or
thermal image and a multispectral one. As for Sentinel-2 (Wald's protocol), the model learns
the pair degraded by the scale factor (both images through a Gaussian PSF with
`data.mtf_at_nyquist`) to predict the coarse image itself, and is applied to the pair at full
resolution with --mode=predict. The task is the generic fusion task (fusionjax.tasks.fusion)
with the three things a source must say: its scale factor, how its scene is prepared, and
which products it writes.
"""
from __future__ import annotations

import os

import numpy as np

from fusionjax import tiling
from fusionjax.data import coding, geotiff
from fusionjax.data.fusion_scene import FusionScene, split_columns
from fusionjax.physics import psf
from fusionjax.tasks.base import PredictFn
from fusionjax.tasks.fusion import FusionTask


# The data source -------------------------------------------------------------------------

def read_pair(folder: str, scale_factor: int):
  """(h, w, C) coarse and (H, W, M) fine float32 images of `folder` (H = scale_factor h), and
  the fine image's georeferencing; ValueError naming the file if the grids do not match."""
  coarse, _ = geotiff.read_geotiff(os.path.join(folder, "coarse.tif"))
  fine, georef = geotiff.read_geotiff(os.path.join(folder, "fine.tif"))
  if fine.shape[1:] != (coarse.shape[1] * scale_factor, coarse.shape[2] * scale_factor):
    raise ValueError(f"{folder}/fine.tif is {fine.shape[1]} x {fine.shape[2]} pixels, "
                     f"expected {scale_factor} x the {coarse.shape[1]} x {coarse.shape[2]} "
                     "of coarse.tif")
  return np.moveaxis(coarse, 0, -1), np.moveaxis(fine, 0, -1), georef


def prepare_scene(config) -> FusionScene:
  """The reduced-resolution scene of data.dir: inputs degraded by data.scale_factor, the
  coarse image itself as the truth, the right-hand data.val_fraction (validation) and
  data.test_fraction (test) held out."""
  f, data = config.data.scale_factor, config.data
  truth, fine, _ = read_pair(data.dir, f)
  height, width = (truth.shape[0] // f) * f, (truth.shape[1] // f) * f
  truth, fine = truth[:height, :width], fine[:height * f, :width * f]
  degrade = lambda image: np.asarray(psf.degrade_to_mtf(  # noqa: E731
      image, f, [data.mtf_at_nyquist] * image.shape[-1]))
  lr, msi = degrade(truth), degrade(fine)
  code = coding.fit_coding(lr.reshape(-1, lr.shape[-1]), 0)
  msi_mean, msi_scale = msi.mean(axis=(0, 1)), msi.std(axis=(0, 1))
  heldout_start, test_start, gap = split_columns(width, data, f)
  return FusionScene(
      lr_codes=code.encode(lr).astype(np.float32),
      msi=((msi - msi_mean) / msi_scale).astype(np.float32),
      truth_codes=code.encode(truth).astype(np.float32),
      truth_valid=np.ones((height, width), bool), coding=code, msi_mean=msi_mean,
      msi_scale=msi_scale, scale_factor=f, heldout_col_start=heldout_start,
      test_col_start=test_start, split_gap=gap,
      heldout_truth=np.moveaxis(truth[:, heldout_start:], -1, 0),
      heldout_lr=np.moveaxis(lr[:, heldout_start // f:], -1, 0),
      wavelengths_um=np.arange(truth.shape[-1], dtype=np.float64),   # band indices
      msi_bands=tuple(f"fine{i}" for i in range(fine.shape[-1])), units=data.units,
      pixel_size=1.0, pixel_unit="pixel", name=f"GeoTIFF pair {data.dir}")


# The task --------------------------------------------------------------------------------

class GeotiffPairTask(FusionTask):
  """Fusion of a coarse and a fine GeoTIFF (config.task = 'geotiff_pair:GeotiffPairTask')."""

  @classmethod
  def scale_factor(cls, config) -> int:
    return config.data.scale_factor

  @classmethod
  def prepare_scene(cls, config) -> FusionScene:
    return prepare_scene(config)

  def write_products(self, fused: list[np.ndarray], split: str, out_dir: str) -> list[str]:
    """The fused (C, H, w) `split` strip (of the one scene), as a GeoTIFF on a bare pixel
    grid."""
    path = os.path.join(out_dir, f"fused_{split}_strip.tif")
    geotiff.write_geotiff(path, fused[0], None, units=self.config.data.units)
    return [path]

  def predict_input(self, predict: PredictFn, batch_size: int, source: str) -> dict:
    """The pair in `source` (predict.input) fused at full resolution: <output>/fused.tif (C
    bands on the fine image's grid and georeferencing)."""
    settings, scene = self.config.predict, self.scene
    coarse, fine, georef = read_pair(source, scene.scale_factor)
    codes = tiling.predict_tiled(
        predict, scene.coding.encode(coarse).astype(np.float32),
        ((fine - scene.msi_mean) / scene.msi_scale).astype(np.float32),
        tile=self.config.data.tile_size, overlap=settings.tile_overlap,
        scale=scene.scale_factor, batch_size=batch_size)
    path = os.path.join(settings.output, "fused.tif")
    geotiff.write_geotiff(path, np.moveaxis(np.asarray(scene.coding.decode(codes)), -1, 0),
                          georef, units=self.config.data.units)
    return {"outputs": [path]}
