"""Land-surface-temperature super-resolution with a physics-regularised multiscale CNN.

Training follows the published protocol: 1 km tiles are aggregated (Stefan-Boltzmann) to the
coarse resolution of each scale step, the network learns coarse -> fine, and is applied one
scale finer (1 km -> 250 m) assuming scale invariance. Loss per step: mean squared error (K^2)
+ consistency_weight * mean squared error between the result aggregated back and its input
(K^2) + guide_weight * Huber distance between the result's and gamma x NDVI's Sobel gradients.
"""
from __future__ import annotations

import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np

from fusionjax import metrics, models, products
from fusionjax.baselines import tsharp
from fusionjax.data.modis import builder as lst_builder
from fusionjax.data.modis import climatology as lst_climatology
from fusionjax.data.modis import reader as modis
from fusionjax.data.modis import procedural as procedural_lst
from fusionjax.data import cache, pipeline
from fusionjax.physics import psf, sampling, thermal
from fusionjax.products import lst as lst_products
from fusionjax.tasks import lst_predict
from fusionjax.tasks.base import PredictFn
from fusionjax.tasks.tfds_batches import TfdsTask, prepared_builder

Batch = dict[str, jax.Array]
ScaleStep = tuple[int, int]   # (coarse, fine) pixel sizes in tile pixels, e.g. (4, 1)


def block_mean(image: jnp.ndarray, factor: int) -> jnp.ndarray:
  """(B, H, W, C) -> (B, H / factor, W / factor, C) arithmetic block means (for NDVI)."""
  if factor == 1:
    return image
  b, h, w, c = image.shape
  return image.reshape(b, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def sobel(image: jnp.ndarray) -> jnp.ndarray:
  """(B, H, W, 1) -> (B, H - 2, W - 2, 2) horizontal and vertical Sobel gradients."""
  smooth = image[:, :-2] + 2.0 * image[:, 1:-1] + image[:, 2:]
  gx = smooth[:, :, 2:] - smooth[:, :, :-2]
  smooth = image[:, :, :-2] + 2.0 * image[:, :, 1:-1] + image[:, :, 2:]
  gy = smooth[:, 2:] - smooth[:, :-2]
  return jnp.concatenate([gx, gy], axis=-1)


class LstObjective:
  """The model, the physics of the scale steps and the loss: everything pure (no data)."""

  def __init__(self, config):
    self.config = config
    data = config.data
    if data.guide not in modis.GUIDES:
      raise ValueError(f"data.guide={data.guide!r}: expected one of {tuple(modis.GUIDES)}")
    self.model = models.build(config.model, climatology=data.climatology)
    self.train_steps = [tuple(step) for step in config.train.scale_steps]
    self.main_step = (data.scale_factor, 1)
    self.guide_keys = modis.GUIDES[data.guide] + (("climatology",) if data.climatology else ())

  # Physics of the scale steps -------------------------------------------------------------

  def _psf_sigma(self, factor: int) -> float:
    mtf = self.config.physics.mtf_at_nyquist
    return psf.mtf_sigma_pixels(factor, mtf) if mtf > 0 else 0.0

  def degrade(self, batch: Batch, step: ScaleStep) -> dict:
    """Inputs and truth of one scale step from a batch of tiles: 'lst' (B, T, T, 1) K,
    'ndvi' (B, T, T, 1), for data.guide='reflectances' 'reflectance' (B, T, T, 3), and for
    data.climatology 'climatology' (B, T, T, 2) (pattern K, weight).

    Returns a dict: 'fine' (B, T/f, T/f, 1) truth K, 'coarse' (B, T/c, T/c, 1) input K,
    'fine_ndvi', 'coarse_ndvi', 'guide' (B, T/f, T/f, G) the guide images (data.guide, then
    the climatology) at the fine resolution (G = 0 without guidance), 'fine_km' (B,).
    """
    coarse_px, fine_px = step
    factor = coarse_px // fine_px
    lst, ndvi = batch["lst"], batch["ndvi"]
    fine = thermal.aggregate(lst, fine_px) if fine_px > 1 else lst
    coarse = thermal.aggregate(fine, factor, psf_sigma_pixels=self._psf_sigma(factor))
    fine_ndvi = block_mean(ndvi, fine_px)
    guide = jnp.concatenate([fine_ndvi[..., :0]] + [block_mean(batch[key], fine_px)
                                                   for key in self.guide_keys], axis=-1)
    fine_km = jnp.full((lst.shape[0],), self.config.data.pixel_km * fine_px)
    return {"fine": fine, "coarse": coarse, "fine_ndvi": fine_ndvi,
            "coarse_ndvi": block_mean(ndvi, coarse_px), "guide": guide, "fine_km": fine_km}

  def consistency_error(self, fine_k: jnp.ndarray, coarse_k: jnp.ndarray) -> jnp.ndarray:
    """(B, H, W, 1) result and its (B, h, w, 1) input -> (B, h, w, 1) aggregate - input, K."""
    factor = fine_k.shape[1] // coarse_k.shape[1]
    return thermal.aggregate(fine_k, factor, psf_sigma_pixels=self._psf_sigma(factor)) - coarse_k

  # Pure functions -------------------------------------------------------------------------

  def init_params(self, rng: jax.Array):
    t = self.config.data.tile_size
    tile = {"lst": jnp.full((1, t, t, 1), 290.0), "ndvi": jnp.zeros((1, t, t, 1)),
            "reflectance": jnp.zeros((1, t, t, len(modis.COMPOSITE_BANDS))),
            "climatology": jnp.zeros((1, t, t, lst_climatology.CHANNELS))}
    step = self.degrade(tile, self.main_step)
    return self.model.init(rng, step["coarse"], step["guide"], step["fine_km"])

  def _network(self, params, coarse_k: jax.Array, guide: jax.Array, fine_km: jax.Array):
    """(B, h, w, 1) K, (B, H, W, G) guide, (B,) km -> (B, H, W, 1) fine LST, K."""
    return self.model.apply(params, coarse_k, guide, fine_km)

  def apply(self, params, coarse_k: jax.Array, guide: jax.Array, fine_km: jax.Array):
    """The network at inference, as `_network`; with predict.self_ensemble, the mean of its
    results on the 8 flips and rotations of the inputs (each turned back), made consistent
    with the input again (`thermal.enforce_aggregate`, when the network enforces it)."""
    if not self.config.predict.self_ensemble:
      return self._network(params, coarse_k, guide, fine_km)
    results = []
    for flip in (False, True):
      for turns in range(4):
        forward = lambda x: jnp.rot90(x[:, :, ::-1] if flip else x, turns, axes=(1, 2))
        result = jnp.rot90(self._network(params, forward(coarse_k), forward(guide), fine_km),
                           -turns, axes=(1, 2))
        results.append(result[:, :, ::-1] if flip else result)
    mean = jnp.mean(jnp.stack(results), axis=0)
    return thermal.enforce_aggregate(mean, coarse_k) if self.model.enforce_consistency else mean

  def loss_fn(self, params, batch: Batch):
    """Mean over the training scale steps of the physics-regularised loss (K^2)."""
    weights = self.config.loss
    totals = {"mse_k2": 0.0, "consistency_mse_k2": 0.0, "guide": 0.0}
    for step in self.train_steps:
      s = self.degrade(batch, step)
      fine = self._network(params, s["coarse"], s["guide"], s["fine_km"])
      totals["mse_k2"] += jnp.mean((fine - s["fine"]) ** 2)
      totals["consistency_mse_k2"] += jnp.mean(self.consistency_error(fine, s["coarse"]) ** 2)
      if weights.guide_weight > 0:
        residual = sobel(fine) - weights.guide_gamma_k * sobel(s["fine_ndvi"])
        totals["guide"] += jnp.mean(jnp.where(jnp.abs(residual) < 1.0, 0.5 * residual ** 2,
                                              jnp.abs(residual) - 0.5))
    totals = {k: v / len(self.train_steps) for k, v in totals.items()}
    loss = (totals["mse_k2"] + weights.consistency_weight * totals["consistency_mse_k2"]
            + weights.guide_weight * totals["guide"])
    return loss, totals

  def eval_fn(self, params, batch: Batch) -> dict[str, jax.Array]:
    """Weighted sums of the per-example RMSE (K) of the model and of bicubic, main step.
    Padding examples (weight 0, all-zero temperatures) count for nothing, NaN included."""
    s = self.degrade(batch, self.main_step)
    fine = self.apply(params, s["coarse"], s["guide"], s["fine_km"])
    bicubic = sampling.upsample_bicubic(s["coarse"], self.config.data.scale_factor)
    weight = batch["weight"]
    total = lambda x: jnp.sum(jnp.where(weight > 0, weight * jnp.sqrt(
        jnp.mean((x - s["fine"]) ** 2, axis=(1, 2, 3))), 0.0))
    return {"rmse_k": total(fine), "bicubic_rmse_k": total(bicubic), "weight": jnp.sum(weight)}


class LstTask(LstObjective, TfdsTask):
  """MODIS LST super-resolution, single-image or guided (NDVI, reflectances), on its tiles.

  Models of this task (config.model.name, fusionjax.models): a Flax module built as
  `Model(climatology=data.climatology, **config.model)` with an integer `size_multiple` (the
  fine-grid sizes it accepts are its multiples) and a bool `enforce_consistency` (its result
  aggregates exactly to its input), called as `model.apply(params, coarse_k,
  guide, fine_km)` with coarse_k (B, h, w, 1) K, guide (B, H, W, G) and fine_km (B,),
  returning (B, H, W, 1) K.
  """

  @classmethod
  def validate(cls, config, mode: str) -> None:
    """Also: data.dir is a folder; data.guide is known; tiles hold whole coarse pixels;
    data.climatology_dropout is a fraction; the predict settings (`lst_predict.validate`)."""
    super().validate(config, mode)
    data = config.data
    if data.tile_size % data.scale_factor:
      raise ValueError(f"data.tile_size={data.tile_size} is not a multiple of "
                       f"data.scale_factor={data.scale_factor}")
    if config.data.dir and not os.path.isdir(config.data.dir):
      raise FileNotFoundError(f"data.dir={config.data.dir!r} is not a directory; expected a "
                              "folder with lst_1km/ and ndvi_1km/ GeoTIFFs")
    if config.data.guide not in modis.GUIDES:
      raise ValueError(f"data.guide={config.data.guide!r}: expected one of "
                       f"{tuple(modis.GUIDES)}")
    if not 0 <= data.get("climatology_dropout", 0.0) < 1:
      raise ValueError(f"data.climatology_dropout={data.climatology_dropout}: expected a "
                       "fraction in [0, 1)")
    if data.heldout_climatology not in ("training", "own_archive"):
      raise ValueError(f"data.heldout_climatology={data.heldout_climatology!r}: expected "
                       "'training' or 'own_archive'")
    if mode == "predict" and config.predict.get("input"):
      lst_predict.validate(config)

  def __init__(self, config, workdir: str):
    super().__init__(config)
    data = config.data
    source_dir = data.dir or cache.prepared_dir(config, workdir, {
        "locations": data.procedural_locations, "dates": data.procedural_dates,
        "tile_size": data.tile_size, "seed": config.seed}, kind="lst_procedural")
    tfds_dir = cache.prepared_dir(config, workdir, {
        "source": os.path.abspath(source_dir), "tile_size": data.tile_size,
        **lst_builder.split_settings(data), "num_shards": data.num_shards,
        "heldout_climatology": data.heldout_climatology})

    def write_procedural_archive():
      if not data.dir and not os.path.isdir(source_dir):
        partial = source_dir + ".partial"   # renamed when complete: never half an archive
        shutil.rmtree(partial, ignore_errors=True)
        procedural_lst.write_archive(partial, num_locations=data.procedural_locations,
                                     num_dates=data.procedural_dates, tile_size=data.tile_size,
                                     seed=config.seed)
        os.replace(partial, source_dir)
    self.builder = prepared_builder(lambda: self._builder(source_dir, tfds_dir),
                                    write_procedural_archive, cache.lock_path(config, workdir))
    self.climatology_dir = os.path.join(workdir, "climatology")
    self.predict_climatology_dir = self.climatology_dir   # predict_sources may change it
    if data.climatology and jax.process_index() == 0:
      lst_builder.write_climatology(source_dir, self.climatology_dir, data)

  def augmentation(self) -> pipeline.Augmentation | None:
    """Flips and rotations (data.augment), then, with data.climatology_dropout = p > 0, the
    climatology guide of a fraction p of the training examples made that of a place never
    seen (`lst_climatology.drop`)."""
    geometric = super().augmentation()
    rate = self.config.data.get("climatology_dropout", 0.0)
    if not (self.config.data.climatology and rate):
      return geometric

    def augment(example, index, seed):
      if geometric is not None:
        example = geometric(example, index, seed)
      return lst_climatology.drop(example, index, seed, rate)
    return augment

  def _builder(self, source_dir: str, tfds_dir: str) -> lst_builder.LstTiles:
    data = self.config.data
    return lst_builder.LstTiles(source_dir=source_dir, tile_size=data.tile_size,
                                split=lst_builder.split_settings(data),
                                num_shards=data.num_shards, data_dir=tfds_dir,
                                heldout_climatology=data.heldout_climatology)

  # Held-out splits ------------------------------------------------------------------------

  def _steps_to_evaluate(self) -> list[ScaleStep]:
    steps = [self.main_step] + [tuple(s) for s in self.config.eval.scale_steps]
    return list(dict.fromkeys(steps))

  def predict_heldout(self, predict_batch: PredictFn, batch_size: int, split: str) -> dict:
    """Every tile of `split` at every evaluated scale step: {step: dict of (N, ...) arrays
    'fine', 'coarse', 'coarse_ndvi', 'fine_ndvi', 'model'}."""
    results = {step: {} for step in self._steps_to_evaluate()}
    for batch in self.heldout_batches(split, global_batch_size=batch_size, process_index=0,
                                      process_count=1):
      real = batch["weight"] > 0
      for step, collected in results.items():
        s = jax.tree.map(np.asarray, self.degrade(batch, step))
        s["model"] = predict_batch(s["coarse"], s["guide"], s["fine_km"])
        for key in ("fine", "coarse", "coarse_ndvi", "fine_ndvi", "model"):
          collected.setdefault(key, []).append(s[key][real])
    return {step: {k: np.concatenate(v) for k, v in collected.items()}
            for step, collected in results.items()}

  def _report(self, step_result: dict) -> dict:
    truth, coarse = step_result["fine"], step_result["coarse"]
    factor = truth.shape[1] // coarse.shape[1]
    estimates = {
        "model": step_result["model"],
        "bicubic": np.asarray(sampling.upsample_bicubic(coarse, factor)),
        "tsharp": np.asarray(tsharp.tsharp(coarse, step_result["coarse_ndvi"],
                                           step_result["fine_ndvi"]))}
    report = {}
    for name, estimate in estimates.items():
      quality = metrics.per_image_report(truth, estimate)
      report[name] = {
          "rmse_k": quality["rmse"], "psnr_db": quality["psnr"], "ssim": quality["ssim"],
          "consistency_rmse_k": float(np.sqrt(np.mean(
              np.asarray(self.consistency_error(jnp.asarray(estimate), coarse)) ** 2)))}
    report["model"]["model_name"] = self.config.model.name
    report["model"]["correction_rms_k"] = float(np.sqrt(np.mean(
        (estimates["model"] - estimates["bicubic"]) ** 2)))
    return report

  def evaluate(self, prediction: dict, split: str) -> dict:
    """Metrics of the model, bicubic and TsHARP on `split`'s tiles at the main step (top
    level) and at every scale step of config.eval.scale_steps ('scale_study'); the dataset's
    counts."""
    km = self.config.data.pixel_km
    report = self._report(prediction[self.main_step])
    report["scale_study"] = {f"{c * km:.3g}km->{f * km:.3g}km": self._report(prediction[(c, f)])
                             for c, f in prediction}
    report["dataset"] = dict(self.builder.info.metadata)
    report["images"] = len(prediction[self.main_step]["fine"])
    return report

  def predict_sources(self) -> list[str]:
    """The GeoTIFFs of config.predict.input. With predict.climatology_from, first writes the
    climatology of that archive to <predict.output>/climatology/, which predict_input reads
    instead of the training one (`lst_predict.build_climatology`)."""
    sources = lst_predict.input_files(self.config)
    if self.config.predict.get("climatology_from", ""):
      self.predict_climatology_dir = lst_predict.build_climatology(self.config, sources)
    return sources

  def predict_input(self, predict_batch: PredictFn, batch_size: int, source: str) -> dict:
    """Super-resolves the GeoTIFF `source` into config.predict.output; returns its outputs
    and details (`lst_predict.super_resolve_file`)."""
    return lst_predict.super_resolve_file(self.config, predict_batch, batch_size,
                                          self.model.size_multiple, self.provenance, source,
                                          climatology_dir=self.predict_climatology_dir)

  def predict_arrays(self, predict_batch: PredictFn, batch_size: int, lst: np.ndarray, *,
                     pixel_km: float, guide: np.ndarray | None = None,
                     climatology: np.ndarray | None = None) -> np.ndarray:
    """The super-resolution of LST held in arrays, as predict_input super-resolves files.

    Args:
      lst: (bands, h, w) land-surface temperature in K (e.g. MOD11A1 day and night); 0 or
        non-finite = no data.
      pixel_km: the input's pixel size, km (MODIS: 0.926625).
      guide: for a guided model, (f h, f w, G) on the output grid as
        fusionjax.data.modis.reader.read_guide_images gives it: NDVI (G = 1, data.guide
        'ndvi'), or NDVI then red, NIR and MIR reflectance (G = 4, 'reflectances').
      climatology: for a model with data.climatology, (bands, f h, f w, 2) each band's
        climatology guide (fusionjax.data.modis.climatology.read_guide).
    Returns:
      (bands, f h, f w) float32 LST in K, f = data.scale_factor; 0 over no-data pixels.
    """
    lst = np.asarray(lst, np.float32)
    if lst.ndim != 3:
      raise ValueError(f"predict_arrays: lst has shape {lst.shape}; expected (bands, h, w)")
    factor = self.config.data.scale_factor
    fine_shape = (lst.shape[1] * factor, lst.shape[2] * factor)
    channels = modis.guide_channels(self.config.data.guide)
    given = np.zeros((*fine_shape, 0), np.float32) if guide is None else np.asarray(
        guide, np.float32)
    if given.shape != (*fine_shape, channels):
      raise ValueError(f"predict_arrays: guide has shape {given.shape}; this model (data.guide="
                       f"{self.config.data.guide!r}) expects {(*fine_shape, channels)}")
    if self.config.data.climatology and climatology is None:
      raise ValueError("predict_arrays: this model uses a climatology (data.climatology); "
                       f"expected climatology of shape {(len(lst), *fine_shape, 2)}")
    return lst_predict.super_resolve(self.config, predict_batch, batch_size,
                                     self.model.size_multiple, lst, given,
                                     pixel_km / factor, climatology=climatology,
                                     source="predict_arrays")

  def write_products(self, prediction: dict, split: str, out_dir: str) -> list[str]:
    """A quicklook PNG of `split`'s tiles at the main scale step."""
    path = os.path.join(out_dir, "quicklook.png")
    products.save_figure(lst_products.quicklook(prediction[self.main_step],
                                                self.config.model.name), path)
    return [path]
