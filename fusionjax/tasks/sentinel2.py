"""Sentinel-2 band sharpening (20 m or 60 m -> 10 m): the fusion task with Sentinel-2's
per-band metrics and MTFs, GeoTIFF products, and whole scenes at full resolution."""
from __future__ import annotations

import functools
import json
import logging
import os

import jax
import numpy as np

from fusionjax import atomic, metrics, products, tiling
from fusionjax.data import geotiff, pipeline
from fusionjax.data.sentinel2 import reader as sentinel2
from fusionjax.data.sentinel2 import scene as sentinel2_scene
from fusionjax.data.fusion_scene import FusionScene
from fusionjax.products import sentinel2 as sentinel2_products
from fusionjax.tasks.base import PredictFn
from fusionjax.tasks.fusion import FusionTask


def band_descriptions(names: tuple[str, ...]) -> tuple[str, ...]:
  """Each band's name and central wavelength, e.g. 'B5 (704 nm)', for a product's bands."""
  return tuple(f"{name} ({sentinel2.BANDS[name].wavelength_nm:.0f} nm)" for name in names)


class Sentinel2Task(FusionTask):
  """The 20 m (or 60 m) bands sharpened by the finer ones (data.bands)."""

  @classmethod
  def scale_factor(cls, config) -> int:
    """The coarse bands' pixel over the guides' (data.bands: 2 for '20m', 6 for '60m')."""
    return sentinel2_scene.sharpening_of(config).factor

  @classmethod
  def data_paths(cls, config) -> list[str]:
    """The files and folders of data.dir's scenes (`sentinel2_scene.scene_sources`, which
    names an entry that does not exist)."""
    return [source for source in sentinel2_scene.scene_sources(config.data.dir)
            if not source.startswith(sentinel2_scene.PROCEDURAL)]

  @classmethod
  def prepare_scenes(cls, config) -> list[FusionScene]:
    return sentinel2_scene.prepare_sentinel2_scenes(config)

  @classmethod
  def adaptation_config(cls, config):
    """--mode=adapt on the scene of config.predict.input: the experiment's training on that
    scene alone (Wald's protocol: every band degraded by its MTF, the grids aligned as in
    L1C), with a right-hand strip of adapt.val_fraction held out to report on (its
    validation split; the scene has no test split), for
    adapt.steps steps at adapt.learning_rate (cosine to zero); its tiles in one shard, so
    that a small scene (a few validation tiles) adapts too."""
    settings = config.adapt   # checked by fusionjax.adaptation.validate
    adapted = config.copy_and_resolve_references()
    adapted.data.dir = config.predict.input
    adapted.data.num_shards = adapted.data.num_streams = 1   # one scene, read by one process
    adapted.data.val_fraction = settings.val_fraction
    adapted.data.test_fraction = 0.0
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

  def augmentation(self) -> pipeline.Augmentation | None:
    """Flips and rotations (data.augment), and, with data.radiometric_jitter = s > 0, a random
    change of each band's level per example (`pipeline.random_band_affine`, gain exp(N(0, s))
    and offset N(0, s) in standardised units), the same for a band's low-resolution input and
    its truth, another for each high-resolution band: the brightness, calibration and haze
    differences between scenes. The MTF-GLP base changes with them exactly (it is
    equivariant to a gain and offset of each band), so the network learns corrections that
    do not depend on them."""
    geometric = super().augmentation()
    jitter = self.config.data.get("radiometric_jitter", 0.0)
    if not jitter:
      return geometric

    def augment(example, index, seed):
      if geometric is not None:
        example = geometric(example, index, seed)
      return pipeline.random_band_affine(example, index, seed, jitter,
                                         groups=(("lr", "truth"), ("msi",)))
    return augment

  def extend_report(self, report: dict, strips) -> None:
    """Each method's RMSE (reflectance x 10000), PSNR, SSIM and ERGAS per band (valid pixels
    of the strips pooled)."""
    ratio = self.scene.scale_factor
    for method in strips[0].estimates:
      per_band = {}
      for index, band in enumerate(self.sharpening.targets):
        band_report = metrics.pooled_fusion_report(
            [s.truth[..., index:index + 1] for s in strips],
            [s.estimates[method][..., index:index + 1] for s in strips], ratio,
            [s.valid for s in strips])
        per_band[band] = {k: band_report[k] for k in ("rmse", "psnr", "ssim", "ergas")}
      report[method]["per_band"] = per_band

  def compare_methods(self, report: dict) -> None:
    """The ratio of bicubic's RMSE to the model's."""
    report["rmse_ratio_bicubic_to_model"] = report["bicubic"]["rmse"] / report["model"]["rmse"]

  def write_products(self, fused: list[np.ndarray], split: str, out_dir: str) -> list[str]:
    """Each scene's fused `split` strip (reduced resolution) as a GeoTIFF without
    georeferencing (the evaluation grid is a degraded copy), and a quicklook PNG; named
    fused_strip_<resolution>m.tif and quicklook.png, with the scene's number after them
    (_1, _2, ...) when there are several."""
    sharpening, paths = self.sharpening, []
    for index, (scene, cube) in enumerate(zip(self.scenes, fused)):
      suffix = f"_{index + 1}" if len(self.scenes) > 1 else ""
      tif_path = os.path.join(out_dir, f"fused_strip_{sharpening.resolution_m}m{suffix}.tif")
      geotiff.write_geotiff(tif_path, cube, None,
                            band_names=band_descriptions(sharpening.targets),
                            units=sentinel2.UNITS, tags=self.provenance(scene.name).as_tags())
      png_path = os.path.join(out_dir, f"quicklook{suffix}.png")
      strip = scene.strip(split)
      products.save_figure(sentinel2_products.quicklook(
          sharpening, strip.msi * scene.msi_scale + scene.msi_mean,
          np.moveaxis(strip.lr, 0, -1), np.moveaxis(cube, 0, -1),
          np.moveaxis(strip.truth, 0, -1), method=self.config.model.name), png_path)
      paths += [tif_path, png_path]
    return paths

  def predict_sources(self) -> list[str]:
    """The scenes of config.predict.input: a scene (a .mat file, a folder of band files, a
    SAFE product) or a folder of them (`sentinel2_scene.scene_sources`)."""
    return sentinel2_scene.scene_sources(self.config.predict.input, "predict.input")

  def predict_input(self, predict_batch: PredictFn, batch_size: int, source: str) -> dict:
    """Sharpens the whole scene `source` to 10 m, tile by tile (memory bounded by the tile,
    whatever the scene's size; only predict.window of it where given), its bands
    standardised by the scene's own statistics (`sentinel2_scene.standardisation`). With
    predict.fit_correction, each band's correction of the base estimate is then scaled by
    the weight in [0, 1] that fits the scene's own reduced-resolution version best
    (`correction_weights`). Writes <output>/<name>_sharpened_10m.tif (the scene's
    georeferencing if it has one; 0 = no-data where an input band has none),
    <name>_sharpened_10m.json (the weights and the reduced-resolution errors they come
    from) and a quicklook; returns {'outputs', 'fit_correction', 'weights', ...}."""
    settings, sharpening = self.config.predict, self.sharpening
    scene = sentinel2_scene.crop_to_window(
        sentinel2.read_scene(source, sharpening.guides + sharpening.targets), settings.window)
    sharpened, check, (lr, hr) = self.sharpen_scene(scene, predict_batch, batch_size)
    stem = sentinel2.product_name(source)
    tif_path = os.path.join(settings.output, f"{stem}_sharpened_10m.tif")
    geotiff.write_geotiff(tif_path, np.moveaxis(sharpened, -1, 0), scene.georef,
                          nodata=sentinel2.NODATA,
                          band_names=band_descriptions(sharpening.targets),
                          units=sentinel2.UNITS, tags=self.provenance(source).as_tags())
    json_path = os.path.join(settings.output, f"{stem}_sharpened_10m.json")
    with atomic.atomic_path(json_path) as temporary:
      with open(temporary, "w") as sink:
        json.dump(check, sink, indent=1)
    png_path = os.path.join(settings.output, f"{stem}_sharpened_10m.png")
    products.save_figure(sentinel2_products.quicklook(sharpening, hr, lr, sharpened, None,
                                                      method=self.config.model.name), png_path)
    return {"outputs": [tif_path, json_path, png_path], **check}

  def predict_arrays(self, predict_batch: PredictFn, batch_size: int,
                     bands: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The sharpened bands of a scene held in arrays, as predict_input sharpens a file.

    Args:
      bands: band name ('B2', ..., 'B8A', 'B12') -> (rows, columns) TOA reflectance x 10000
        at the band's own resolution (10, 20 or 60 m; 0 = no-data), holding at least the
        guides and targets of data.bands (e.g. B2 B3 B4 B8 and B5 B6 B7 B8A B11 B12).
    Returns:
      target band name -> (rows, columns) float32 at 10 m, in the same units (0 where an
      input band has no data).
    """
    required = self.sharpening.guides + self.sharpening.targets
    arrays = {name: np.asarray(image, np.float32) for name, image in bands.items()}
    sentinel2.check_scene(arrays, "predict_arrays", required)
    sharpened, _, _ = self.sharpen_scene(sentinel2.Scene(arrays, None, "predict_arrays"),
                                         predict_batch, batch_size)
    return dict(zip(self.sharpening.targets, np.moveaxis(sharpened, -1, 0)))

  def sharpen_scene(self, scene: sentinel2.Scene, predict_batch: PredictFn,
                    batch_size: int) -> tuple[np.ndarray, dict, tuple[np.ndarray, np.ndarray]]:
    """The (H, W, T) sharpening of a whole scene at 10 m, tile by tile, NODATA where an input
    band has none; with predict.fit_correction each band's correction weighted as
    `correction_weights` fits it. Returns it, the check ({'fit_correction', and the
    weights and reduced-resolution errors when fitted}) and the (h, w, T) targets and
    (H, W, G) guides it was made from."""
    settings, sharpening = self.config.predict, self.sharpening
    lr, hr, measured = sentinel2_scene.full_resolution_inputs(scene, sharpening)
    tile = settings.tile_size
    if min(hr.shape[:2]) < tile:
      raise ValueError(f"{scene.source}: the 10 m bands are {hr.shape[0]} x {hr.shape[1]} "
                       f"pixels, smaller than one predict.tile_size={tile} tile")
    logging.info("Sharpening %s: %d x %d pixels at 10 m, %d-pixel tiles.", scene.source,
                 *hr.shape[:2], tile)
    sharpened, base = self._sharpen(lr, hr, measured, predict_batch, batch_size,
                                    with_base=settings.fit_correction)
    check = {"fit_correction": bool(settings.fit_correction)}
    if settings.fit_correction:
      check.update(self.correction_weights(scene, lr, measured, predict_batch, batch_size))
      weights = np.array([check["weights"][band] for band in sharpening.targets], np.float32)
      sharpened = base + weights * (sharpened - base)
    sharpened[~measured] = sentinel2.NODATA
    return sharpened, check, (lr, hr)

  def _sharpen(self, lr: np.ndarray, hr: np.ndarray, measured: np.ndarray,
               predict_batch: PredictFn, batch_size: int,
               with_base: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """The network's (f h, f w, T) sharpening of (h, w, T) targets guided by (f h, f w, G)
    guides, and (with_base) the base estimate it corrects, both in the targets' units and
    both tile by tile (the base of each tile as the network sees it); inputs standardised by
    their own statistics over the (f h, f w) bool `measured` pixels."""
    factor = self.sharpening.factor
    coding, msi_mean, msi_scale = sentinel2_scene.standardisation(
        lr, sentinel2.valid_at_coarser(measured, factor), hr, measured)
    lr_codes = coding.encode(lr).astype(np.float32)
    msi = ((hr - msi_mean) / msi_scale).astype(np.float32)
    settings = self.config.predict

    def tiled(predict):
      codes = tiling.predict_tiled(predict, lr_codes, msi, tile=settings.tile_size,
                                   overlap=settings.tile_overlap, scale=factor,
                                   batch_size=batch_size)
      return np.asarray(coding.decode(codes), np.float32)
    return tiled(predict_batch), tiled(self._base_of_tiles) if with_base else None

  @functools.cached_property
  def _base_of_tiles(self):
    """`base_estimate` of a batch of tiles, compiled once."""
    return jax.jit(self.base_estimate)

  def correction_weights(self, scene: sentinel2.Scene, targets: np.ndarray,
                         measured: np.ndarray, predict_batch: PredictFn,
                         batch_size: int) -> dict:
    """Self-supervised check of the network on a scene: the scene degraded by the factor
    (Wald's protocol, `sentinel2_scene.wald_degraded`) is sharpened back, and for each target
    band the weight w in [0, 1] of the correction, base + w (network - base), that is
    closest (least squares) to the scene's own (h, w, T) `targets` is fitted, over the pixels
    measured in every band ((f h, f w) bool `measured`; both as `full_resolution_inputs`
    gives them). w = 1 where the network helps on this scene, 0 where it only harms: the
    result is never further from the truth than the base estimate at that scale. Returns
    {'weights': band -> w, 'reduced_rmse': {'network', 'base', 'weighted'} -> band -> RMSE
    (the targets' units)}; weights 1 (and a warning) when the degraded scene is smaller than
    one predict tile."""
    sharpening, factor = self.sharpening, self.sharpening.factor
    scene = sentinel2_scene.crop_to_factor(scene, sharpening)
    height, width = scene.bands[sharpening.targets[0]].shape
    truth = targets[:height, :width]
    reduced = sentinel2.Scene(sentinel2_scene.wald_degraded(scene.bands, factor), None,
                              scene.source)
    lr, hr, reduced_measured = sentinel2_scene.full_resolution_inputs(reduced, sharpening)
    valid = reduced_measured & sentinel2.valid_at_coarser(
        measured[:factor * height, :factor * width], factor)
    if min(hr.shape[:2]) < self.config.predict.tile_size or not valid.any():
      logging.warning("%s: its version degraded by %d (%d x %d pixels) is smaller than one "
                      "predict tile; the network's corrections are kept whole", scene.source,
                      factor, *hr.shape[:2])
      return {"weights": {band: 1.0 for band in sharpening.targets}}
    network, base = self._sharpen(lr, hr, reduced_measured, predict_batch, batch_size,
                                  with_base=True)
    correction, residual = (network - base)[valid], (truth - base)[valid]
    weights = np.clip(np.sum(correction * residual, axis=0)
                      / np.maximum(np.sum(correction ** 2, axis=0), 1e-12), 0.0, 1.0)
    errors = {"network": network[valid], "base": base[valid],
              "weighted": base[valid] + weights * correction}
    reduced_rmse = {name: dict(zip(sharpening.targets, np.sqrt(np.mean(
        (estimate - truth[valid]) ** 2, axis=0)).round(3).tolist()))
        for name, estimate in errors.items()}
    logging.info("Correction weights fitted on %s degraded by %d: %s", scene.source, factor,
                 ", ".join(f"{b} {w:.2f}" for b, w in zip(sharpening.targets, weights)))
    return {"weights": dict(zip(sharpening.targets, weights.round(4).tolist())),
            "reduced_rmse": reduced_rmse}
