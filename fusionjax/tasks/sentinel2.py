"""Sentinel-2 band sharpening (20 m or 60 m -> 10 m): the fusion task with Sentinel-2's
per-band metrics and MTFs, GeoTIFF products, and whole scenes at full resolution."""
from __future__ import annotations

import logging
import os
import numpy as np

from fusionjax import metrics, products, tiling
from fusionjax.data import geotiff
from fusionjax.data.sentinel2 import reader as sentinel2
from fusionjax.data.sentinel2 import scene as sentinel2_scene
from fusionjax.data.fusion_scene import FusionScene
from fusionjax.products import sentinel2 as sentinel2_products
from fusionjax.tasks.base import PredictFn
from fusionjax.tasks.fusion import FusionTask

class Sentinel2Task(FusionTask):
  """The 20 m (or 60 m) bands sharpened by the finer ones (data.bands)."""

  @classmethod
  def scale_factor(cls, config) -> int:
    """The coarse bands' pixel over the guides' (data.bands: 2 for '20m', 6 for '60m')."""
    return sentinel2_scene.sharpening_of(config).factor

  @classmethod
  def prepare_scene(cls, config) -> FusionScene:
    return sentinel2_scene.prepare_sentinel2_scene(config)

  @classmethod
  def adaptation_config(cls, config):
    """--mode=adapt on the scene of config.predict.input: the experiment's training on that
    scene alone (Wald's protocol: every band degraded by its MTF, the grids aligned as in
    L1C), with a right-hand strip of adapt.val_fraction held out to report on, for
    adapt.steps steps at adapt.learning_rate (cosine to zero); its tiles in one shard, so
    that a small scene (a few validation tiles) adapts too."""
    settings = config.adapt   # checked by fusionjax.adaptation.validate
    adapted = config.copy_and_resolve_references()
    adapted.data.dir = config.predict.input
    adapted.data.num_shards = adapted.data.num_streams = 1   # one scene, read by one process
    adapted.data.val_fraction = settings.val_fraction
    adapted.train.num_steps = settings.steps
    adapted.train.learning_rate = settings.learning_rate
    adapted.train.eval_every = settings.steps
    adapted.train.checkpoint_every = min(config.train.checkpoint_every, settings.steps)
    return adapted

  def __init__(self, config, workdir: str):
    self.sharpening = sentinel2_scene.sharpening_of(config)
    self.baseline_mtf = tuple(sentinel2.BANDS[n].mtf_at_nyquist
                              for n in self.sharpening.targets)
    super().__init__(config, workdir)

  def extend_report(self, report: dict, truth: np.ndarray, estimates: dict) -> None:
    """Each method's RMSE (reflectance x 10000), PSNR, SSIM and ERGAS per band (valid pixels),
    and the ratio of bicubic's RMSE to the model's."""
    valid, ratio = self.scene.val_valid, self.scene.scale_factor
    for method, estimate in estimates.items():
      per_band = {}
      for index, band in enumerate(self.sharpening.targets):
        band_report = metrics.fusion_report(truth[..., index:index + 1],
                                            estimate[..., index:index + 1], ratio, valid)
        per_band[band] = {k: band_report[k] for k in ("rmse", "psnr", "ssim", "ergas")}
      report[method]["per_band"] = per_band
    report["rmse_ratio_bicubic_to_model"] = report["bicubic"]["rmse"] / report["model"]["rmse"]

  def write_products(self, fused: np.ndarray, out_dir: str) -> list[str]:
    """The fused held-out strip (reduced resolution) as a GeoTIFF without georeferencing (the
    evaluation grid is a degraded copy), and a quicklook PNG."""
    sharpening, scene = self.sharpening, self.scene
    tif_path = os.path.join(out_dir, f"fused_strip_{sharpening.resolution_m}m.tif")
    geotiff.write_geotiff(tif_path, fused, None, band_names=sharpening.targets,
                          units=sentinel2.UNITS)
    png_path = os.path.join(out_dir, "quicklook.png")
    msi = scene.msi[:, scene.val_col_start:] * scene.msi_scale + scene.msi_mean
    products.save_figure(sentinel2_products.quicklook(
        sharpening, msi, np.moveaxis(scene.val_lr, 0, -1), np.moveaxis(fused, 0, -1),
        np.moveaxis(scene.val_truth, 0, -1), method=self.config.model.name), png_path)
    return [tif_path, png_path]

  def predict_inputs(self, predict_batch: PredictFn, batch_size: int) -> list[str]:
    """Sharpens the whole scene of config.predict.input to 10 m, tile by tile (memory bounded
    by the tile, whatever the scene's size), its bands standardised by the scene's own
    statistics (`sentinel2_scene.standardisation`); writes <output>/<name>_sharpened_10m.tif (the
    scene's georeferencing if it has one; 0 = no-data where an input band has none) and a
    quicklook."""
    settings, sharpening = self.config.predict, self.sharpening
    scene = sentinel2.read_scene(settings.input, sharpening.guides + sharpening.targets)
    lr, hr, measured = sentinel2_scene.full_resolution_inputs(scene, sharpening)
    tile = settings.tile_size
    if min(hr.shape[:2]) < tile:
      raise ValueError(f"{settings.input}: the 10 m bands are {hr.shape[0]} x {hr.shape[1]} "
                       f"pixels, smaller than one predict.tile_size={tile} tile")
    logging.info("Sharpening %s: %d x %d pixels at 10 m, %d-pixel tiles.", settings.input,
                 *hr.shape[:2], tile)
    coding, msi_mean, msi_scale = sentinel2_scene.standardisation(
        lr, sentinel2.valid_at_coarser(measured, sharpening.factor), hr, measured)
    codes = tiling.predict_tiled(
        predict_batch, coding.encode(lr).astype(np.float32),
        ((hr - msi_mean) / msi_scale).astype(np.float32), tile=tile,
        overlap=settings.tile_overlap, scale=sharpening.factor, batch_size=batch_size)
    sharpened = np.asarray(coding.decode(codes), np.float32)
    sharpened[~measured] = sentinel2.NODATA
    stem = os.path.splitext(os.path.basename(os.path.normpath(settings.input)))[0]
    tif_path = os.path.join(settings.output, f"{stem}_sharpened_10m.tif")
    geotiff.write_geotiff(tif_path, np.moveaxis(sharpened, -1, 0), scene.georef,
                          nodata=sentinel2.NODATA, band_names=sharpening.targets,
                          units=sentinel2.UNITS)
    png_path = os.path.join(settings.output, f"{stem}_sharpened_10m.png")
    products.save_figure(sentinel2_products.quicklook(sharpening, hr, lr, sharpened, None,
                                                      method=self.config.model.name), png_path)
    return [tif_path, png_path]
