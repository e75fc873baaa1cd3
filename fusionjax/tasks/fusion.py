"""Supervised fusion of a low-resolution image cube with a high-resolution multispectral image,
trained on tiles of prepared FusionScenes and evaluated on their held-out strips (validation,
watched during training, and test, reported once; FusionScene.split_columns) against the
truth, beside bicubic upsampling and classical fusion, each scene's figures and, with several
scenes, all their held-out pixels pooled. Sensor tasks (jwst, sentinel2) say how scenes are
prepared, what products are written and how a user's own data is read.

Models (config.model.name, fusionjax.models) are built as `Model(out_bands=d, scale_factor=s,
**config.model)` and called as `model.apply(params, lr, msi, base)`
(fusionjax.models.fusion_contract): lr (B, h, w, d) coded low-resolution bands, msi (B, s h,
s w, M) standardised high-resolution bands, base (B, s h, s w, d) the estimate the network
corrects, data.base_estimate, -> (B, s h, s w, d):
  bicubic      bicubic upsampling of lr (as the published networks), on the device;
  mtf_glp      MTF-GLP (fusionjax.baselines.pansharpening) with synthetic pans fitted
               locally (BASE_WINDOW), on the device: evaluated as 'mtf_glp_local';
  model_based  (JWST) the model-based fusion of the whole scene, computed once with it and
               fed with the tiles (`scene_base`).
"""
from __future__ import annotations

import abc
import json
import logging
import os

import jax
import jax.numpy as jnp
import numpy as np

from fusionjax import atomic, metrics, models, tiling
from fusionjax.baselines import pansharpening
from fusionjax.data import cache
from fusionjax.data.fusion_scene import FORMAT_VERSION, FusionScene, HeldOutStrip
from fusionjax.data.tiles_builder import FusionTiles
from fusionjax.physics import sampling
from fusionjax.tasks.base import Batch, PredictFn
from fusionjax.tasks.fusion_strips import (Strip, classical_estimates, decoded_cube,
                                           methods_of, region)
from fusionjax.tasks.tfds_batches import TfdsTask, prepared_builder

# The arguments of a fusion model that come from the data, not from config.model.
MODEL_DATA_ARGUMENTS = ("out_bands", "scale_factor")
BASE_ESTIMATES = ("bicubic", "mtf_glp")
LOSS_SPACES = ("codes", "spectra")
# Standard deviation, in low-resolution pixels, of the window of the local synthetic-pan fit
# of data.base_estimate='mtf_glp'. With 2, eval.json's 'mtf_glp_local' has RMSE 65.04 on the
# held-out strip of the Sentinel-2 run of docs/sentinel2.md trained on rows 0-263, against
# 84.77 for 'mtf_glp' (one fit over the whole strip); wider windows fit less closely.
BASE_WINDOW = 2.0
# Part of the key of the baselines' figures kept beside a prepared scene (`_baseline_reports`):
# bumped when a baseline or a metric changes.
BASELINES_VERSION = 2


class FusionTask(TfdsTask):
  """Fusion of (lr, msi) into the coded high-resolution cube; L1 loss as published.

  Evaluated beside bicubic upsampling and the classical GSA and MTF-GLP fusion, which model
  each low-resolution band's PSF as a Gaussian with `baseline_mtf` at Nyquist (the generic
  0.3 of pansharpening toolboxes unless a sensor says otherwise).
  """

  baseline_mtf = 0.3
  # The data.base_estimate values the task knows; 'model_based' (a sensor task's own) is
  # computed with the scene from its observations and fed with the tiles as 'base'.
  base_estimates = BASE_ESTIMATES

  @classmethod
  @abc.abstractmethod
  def scale_factor(cls, config) -> int:
    """The resolution ratio of the experiment, from its config alone."""

  @classmethod
  def prepare_scene(cls, config) -> FusionScene:
    """The experiment's scene, prepared for fusion (run once, then cached): what a task of
    one scene implements."""
    raise NotImplementedError(f"{cls.__name__}: implement prepare_scene or prepare_scenes")

  @classmethod
  def prepare_scenes(cls, config) -> list[FusionScene]:
    """The experiment's scenes, prepared for fusion (run once, then cached), of one scale
    factor, code dimension and set of high-resolution bands; by default `prepare_scene`'s.
    Each has its own coding and standardisation; their tiles train one network."""
    return [cls.prepare_scene(config)]

  @classmethod
  def validate(cls, config, mode: str) -> None:
    """Also: data.tile_size is a multiple of the scale factor, and the network accepts a
    tile (traced, not compiled: e.g. Fusformer's attention windows must divide it)."""
    super().validate(config, mode)
    factor, tile = cls.scale_factor(config), config.data.tile_size
    if tile % factor:
      raise ValueError(f"data.tile_size={tile} is not a multiple of the scale factor {factor}")
    if config.data.get("loss_space", "codes") not in LOSS_SPACES:
      raise ValueError(f"data.loss_space={config.data.loss_space!r}: expected one of "
                       f"{LOSS_SPACES}")
    if base_estimate_of(config) not in cls.base_estimates:
      raise ValueError(f"data.base_estimate={base_estimate_of(config)!r}: expected one of "
                       f"{cls.base_estimates}")
    model = models.build(config.model, out_bands=1, scale_factor=factor)
    try:
      jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, tile // factor,
                                                               tile // factor, 1)),
                     jnp.zeros((1, tile, tile, 1)), jnp.zeros((1, tile, tile, 1)))
    except ValueError as error:
      raise ValueError(f"model {config.model.name!r} on data.tile_size={tile}: {error}") from None

  def __init__(self, config, workdir: str):
    self.config = config
    data = config.data
    scene_dir = cache.prepared_dir(config, workdir, {
        "format": FORMAT_VERSION, "seed": config.seed,
        "data": cache.data_settings(config, leave_out=(
            "num_shards", "train_stride", "radiometric_jitter",
            *(() if self.scene_base(config) else ("base_estimate",)))),
        "instrument": config.instrument.to_dict() if "instrument" in config else None,
        **({"model_based": config.model_based.to_dict()} if self.scene_base(config) else {})})
    self._scene_dir = scene_dir
    manifest_path = os.path.join(scene_dir, "scenes.json")
    tfds_dir = cache.tiles_dir(scene_dir, {"tile_size": data.tile_size,
                                           "train_stride": data.train_stride,
                                           "num_shards": data.num_shards})

    def prepare_scene_files():
      if not os.path.exists(manifest_path):   # written last: the scenes are complete
        logging.info("Preparing the scenes in %s.", scene_dir)
        names = []
        for index, scene in enumerate(self.prepare_scenes(config)):
          names.append(f"scene_{index:02d}.npz")
          scene.save(os.path.join(scene_dir, names[-1]))
        with atomic.atomic_path(manifest_path) as temporary:
          with open(temporary, "w") as sink:
            json.dump({"scenes": names}, sink)

    def scene_paths():
      with open(manifest_path) as source:
        return [os.path.join(scene_dir, name) for name in json.load(source)["scenes"]]
    self.builder = prepared_builder(
        lambda: FusionTiles(scene_paths=scene_paths(), tile_size=data.tile_size,
                            train_stride=data.train_stride, num_shards=data.num_shards,
                            data_dir=tfds_dir),
        prepare_scene_files, cache.lock_path(config, workdir))
    self.scenes = tuple(FusionScene.load(path) for path in scene_paths())
    self.model = models.build(config.model, out_bands=self.scene.code_dim,
                              scale_factor=self.scene.scale_factor)
    self._loss_metric = (self.scene.coding.spectral_metric()
                         if data.get("loss_space", "codes") == "spectra" else None)

  @staticmethod
  def scene_base(config) -> bool:
    """Whether the estimate the network corrects is computed with the scenes
    (FusionScene.base_codes, data.base_estimate='model_based') rather than on every tile."""
    return base_estimate_of(config) == "model_based"

  @property
  def scene(self) -> FusionScene:
    """The first scene (the only one of a task of one scene): the scale factor, code
    dimension and high-resolution bands that every scene shares."""
    return self.scenes[0]

  # Pure functions -------------------------------------------------------------------------

  def init_params(self, rng: jax.Array):
    t, s = self.config.data.tile_size, self.scene.scale_factor
    lr = jnp.zeros((1, t // s, t // s, self.scene.code_dim))
    msi = jnp.zeros((1, t, t, self.scene.num_msi_bands))
    base = jnp.zeros((1, t, t, self.scene.code_dim))
    return self.model.init(rng, lr, msi, self.base_estimate(lr, msi, base))

  def base_estimate(self, lr: jax.Array, msi: jax.Array,
                    base: jax.Array | None = None) -> jax.Array:
    """(B, h, w, d) coded LR and (B, H, W, M) MSI -> (B, H, W, d) data.base_estimate of each
    example, the estimate the network corrects: `base` itself where it comes with the tiles
    (`scene_base`)."""
    ratio = self.scene.scale_factor
    if self.scene_base(self.config):
      if base is None:
        raise ValueError(f"data.base_estimate={base_estimate_of(self.config)!r}: the tiles "
                         "come without their base estimate")
      return base
    if base_estimate_of(self.config) == "mtf_glp":
      return pansharpening.mtf_glp_batch(lr, msi, ratio, self.baseline_mtf, BASE_WINDOW)
    return sampling.upsample_bicubic(lr, ratio)

  def apply(self, params, lr: jax.Array, msi: jax.Array,
            base: jax.Array | None = None) -> jax.Array:
    """(B, h, w, d) coded LR, (B, H, W, M) MSI and, with `scene_base`, the (B, H, W, d)
    coded base estimate -> (B, H, W, d) coded fused cube."""
    return self.model.apply(params, lr, msi, self.base_estimate(lr, msi, base))

  def loss_fn(self, params, batch: Batch):
    """Mean absolute error over the valid truth pixels, of the codes (data.loss_space=
    'codes', as published) or of the codes weighed as the spectra they decode to
    ('spectra', `SpectralCoding.spectral_metric`: in a PCA subspace, each component by its
    share of the spectra's variance)."""
    error, count = _masked_abs_error(
        self.apply(params, batch["lr"], batch["msi"], batch.get("base")), batch,
        metric=self._loss_metric)
    l1 = error / jnp.maximum(count, 1.0)
    return l1, {"l1": l1}

  def eval_fn(self, params, batch: Batch) -> dict[str, jax.Array]:
    """Sums over real (weight 1) examples of the per-example L1 (valid pixels) and of the
    bicubic L1."""
    fused = self.apply(params, batch["lr"], batch["msi"], batch.get("base"))
    bicubic = sampling.upsample_bicubic(batch["lr"], self.scene.scale_factor)
    examples = (1, 2, 3)
    fused_error, count = _masked_abs_error(fused, batch, axis=examples,
                                           metric=self._loss_metric)
    bicubic_error, _ = _masked_abs_error(bicubic, batch, axis=examples,
                                         metric=self._loss_metric)
    weight = batch["weight"] * (count > 0)   # padding, or a tile without valid pixels: 0
    per_example = lambda error: error / jnp.maximum(count, 1.0)  # noqa: E731
    return {"l1": jnp.sum(weight * per_example(fused_error)),
            "bicubic_l1": jnp.sum(weight * per_example(bicubic_error)),
            "weight": jnp.sum(weight)}

  # Whole held-out strips -------------------------------------------------------------------

  def predict_heldout(self, predict: PredictFn, batch_size: int,
                      split: str) -> list[np.ndarray]:
    """The fused (L, H, w) cube of each scene's `split` strip, physical units."""
    return [decoded_cube(scene, self.network_codes(predict, batch_size, scene.strip(split)))
            for scene in self.scenes]

  def network_codes(self, predict: PredictFn, batch_size: int, strip: HeldOutStrip,
                    base: np.ndarray | None = None) -> np.ndarray:
    """The network's (H, w, d) codes of a held-out strip, tile by tile (with `scene_base`,
    correcting the strip's (H, w, d) coded `base`)."""
    return tiling.predict_tiled(
        predict, strip.lr_codes, strip.msi, tile=self.config.data.tile_size,
        overlap=self.config.predict.tile_overlap, scale=self.scene.scale_factor,
        batch_size=batch_size, extra=() if base is None else (base,))

  def _baseline_estimates(self, scene: FusionScene, strip: HeldOutStrip
                          ) -> dict[str, np.ndarray]:
    """(H, w, L) classical estimates of a held-out `strip` of `scene`
    (`fusion_strips.classical_estimates`), with the local MTF-GLP the network corrects where
    it does."""
    return classical_estimates(
        scene, strip, self.baseline_mtf,
        BASE_WINDOW if base_estimate_of(self.config) == "mtf_glp" else None)

  def _strips(self, split: str, estimates_of) -> list[Strip]:
    """Each scene's `split` strip with the estimates `estimates_of(index, scene, strip)`."""
    strips = []
    for index, scene in enumerate(self.scenes):
      strip = scene.strip(split)
      strips.append(Strip(np.moveaxis(strip.truth, 0, -1), estimates_of(index, scene, strip),
                          strip.valid, strip))
    return strips

  def baseline_settings(self) -> dict:
    """Settings of the baselines beyond the shared ones, part of the key of their kept
    figures (`_baseline_reports`); none by default."""
    return {}

  def _baseline_reports(self, split: str) -> dict:
    """The baselines' figures on the `split` strips: {"pooled": {method: report}, "scenes":
    [{method: report} of each scene]}. They depend on the prepared scenes only, so they are
    computed once and kept beside them (baselines_<split>.json, with the settings they were
    computed with: a change of these computes them again)."""
    path = os.path.join(self._scene_dir, f"baselines_{split}.json")
    key = json.loads(json.dumps({   # as read back: tuples as lists
        "version": BASELINES_VERSION, "baseline_mtf": self.baseline_mtf,
        "base_estimate": base_estimate_of(self.config), "base_window": BASE_WINDOW,
        **self.baseline_settings()}))
    if os.path.exists(path):
      with open(path) as source:
        kept = json.load(source)
      if kept.get("key") == key:
        return kept["reports"]
    strips = self._strips(split, lambda _, scene, strip: self._baseline_estimates(scene, strip))
    reports = {"pooled": self._report(strips),
               "scenes": [self._report([strip]) for strip in strips] if len(strips) > 1 else []}
    with atomic.atomic_path(path) as temporary:
      with open(temporary, "w") as sink:
        json.dump({"key": key, "reports": reports}, sink)
    return reports

  def evaluate(self, fused: list, split: str) -> dict:
    """Metrics of the fused (L, H, w) cubes of the `split` strips (`predict_heldout`),
    under 'model', and of the baselines, over every scene's valid held-out pixels pooled
    (`metrics.pooled_fusion_report`); with several scenes, also each scene's report under
    'scenes' -> its name. A scene's report says which region it covers ('region'). A
    scene's prediction may also be a dict {method: (L, H, w) cube} of the product 'model'
    and of what it was made from (e.g. the network's own output), each reported."""
    strips = self._strips(split, lambda index, *_: {
        method: np.moveaxis(cube, 0, -1) for method, cube in methods_of(fused[index]).items()})
    baselines = self._baseline_reports(split)
    report = self._with_baselines(self._report(strips), baselines["pooled"])
    if len(self.scenes) == 1:
      report["region"] = region(self.scene, split)
      return report
    report["scenes"] = {}
    for index, (scene, strip) in enumerate(zip(self.scenes, strips)):
      name = scene.name if scene.name not in report["scenes"] else f"{scene.name} #{index}"
      report["scenes"][name] = {
          **self._with_baselines(self._report([strip]), baselines["scenes"][index]),
          "region": region(scene, split)}
    return report

  def _with_baselines(self, model_report: dict, baseline_reports: dict) -> dict:
    """The model's report beside the baselines', then the figures comparing them."""
    model_report["model"]["model_name"] = self.config.model.name
    report = {**model_report, **baseline_reports}
    self.compare_methods(report)
    return report

  def _report(self, strips: list[Strip]) -> dict:
    """Each method's metrics over the valid pixels of `strips` pooled."""
    ratio = self.scene.scale_factor
    report = {method: metrics.pooled_fusion_report(
        [s.truth for s in strips], [s.estimates[method] for s in strips], ratio,
        [s.valid for s in strips]) for method in strips[0].estimates}
    self.extend_report(report, strips)
    return report

  def extend_report(self, report: dict, strips: list[Strip]) -> None:
    """Adds sensor-specific figures of each method of `strips` (their pixels pooled) to its
    entry of `report`; nothing by default."""

  def compare_methods(self, report: dict) -> None:
    """Adds figures comparing the methods of a finished `report` (the model's and the
    baselines'); nothing by default."""


def base_estimate_of(config) -> str:
  """config.data.base_estimate, 'bicubic' where an experiment does not set it."""
  return config.data.get("base_estimate", "bicubic")


def _masked_abs_error(estimate: jax.Array, batch: Batch, axis=None, metric=None):
  """Sum of |estimate - truth| (of `metric` (d, d) times the difference, if given) over the
  valid pixels of (B, H, W, d) arrays, and the count of valid values summed, over `axis`
  (all axes if None)."""
  valid = jnp.broadcast_to(batch["valid"], estimate.shape)
  difference = estimate - batch["truth"]
  if metric is not None:
    difference = difference @ jnp.asarray(metric).T
  return jnp.sum(valid * jnp.abs(difference), axis=axis), jnp.sum(valid, axis=axis)
