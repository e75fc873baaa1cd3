"""Supervised fusion of a low-resolution image cube with a high-resolution multispectral image,
trained on tiles of one or several prepared FusionScenes and evaluated on their held-out
strips (a validation strip, watched during training, and a test strip, reported once; see
FusionScene.split_columns) against the truth, beside bicubic upsampling and classical fusion:
each scene's figures and, with several scenes, the figures of all their held-out pixels
pooled. Sensor tasks (jwst, sentinel2) say how scenes are prepared, what products are written
and how a user's own data is read.

Models of this family (config.model.name, fusionjax.models): a Flax module built as
`Model(out_bands=d, scale_factor=s, **config.model)` and called as
`model.apply(params, lr, msi, base)` (fusionjax.models.fusion_contract) with lr (B, h, w, d)
coded low-resolution bands, msi (B, s h, s w, M) standardised high-resolution bands and base
(B, s h, s w, d) the estimate the network corrects, returning (B, s h, s w, d). The estimate is
data.base_estimate of every tile, computed on the device with the model:
  bicubic   bicubic upsampling of lr (as the published networks);
  mtf_glp   MTF-GLP detail injection (fusionjax.baselines.pansharpening) with synthetic pans
            fitted locally (Gaussian window of BASE_WINDOW low-resolution pixels), so that
            the untrained network is that classical fusion and training only adds to it.
            Evaluated as the baseline 'mtf_glp_local' beside the usual global MTF-GLP.
"""
from __future__ import annotations

import abc
import json
import logging
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fusionjax import atomic, metrics, models, tiling
from fusionjax.baselines import pansharpening
from fusionjax.data import cache, pipeline
from fusionjax.data.fusion_scene import FORMAT_VERSION, FusionScene, HeldOutStrip
from fusionjax.data.tiles_builder import FusionTiles
from fusionjax.physics import sampling
from fusionjax.tasks.base import Batch, PredictFn
from fusionjax.tasks.tfds_batches import TfdsTask, prepared_builder

# The arguments of a fusion model that come from the data, not from config.model.
MODEL_DATA_ARGUMENTS = ("out_bands", "scale_factor")
BASE_ESTIMATES = ("bicubic", "mtf_glp")
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
    if base_estimate_of(config) not in BASE_ESTIMATES:
      raise ValueError(f"data.base_estimate={base_estimate_of(config)!r}: expected one of "
                       f"{BASE_ESTIMATES}")
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
            "num_shards", "train_stride", "base_estimate", "radiometric_jitter")),
        "instrument": config.instrument.to_dict() if "instrument" in config else None})
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

  @property
  def scene(self) -> FusionScene:
    """The first scene (the only one of a task of one scene): the scale factor, code
    dimension and high-resolution bands that every scene shares."""
    return self.scenes[0]

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

  # Pure functions -------------------------------------------------------------------------

  def init_params(self, rng: jax.Array):
    t, s = self.config.data.tile_size, self.scene.scale_factor
    lr = jnp.zeros((1, t // s, t // s, self.scene.code_dim))
    msi = jnp.zeros((1, t, t, self.scene.num_msi_bands))
    return self.model.init(rng, lr, msi, self.base_estimate(lr, msi))

  def base_estimate(self, lr: jax.Array, msi: jax.Array) -> jax.Array:
    """(B, h, w, d) coded LR and (B, H, W, M) MSI -> (B, H, W, d) data.base_estimate of each
    example, the estimate the network corrects."""
    ratio = self.scene.scale_factor
    if base_estimate_of(self.config) == "mtf_glp":
      return pansharpening.mtf_glp_batch(lr, msi, ratio, self.baseline_mtf, BASE_WINDOW)
    return sampling.upsample_bicubic(lr, ratio)

  def apply(self, params, lr: jax.Array, msi: jax.Array) -> jax.Array:
    """(B, h, w, d) coded LR and (B, H, W, M) MSI -> (B, H, W, d) coded fused cube."""
    return self.model.apply(params, lr, msi, self.base_estimate(lr, msi))

  def loss_fn(self, params, batch: Batch):
    """Mean absolute error in the coded space over the valid truth pixels."""
    error, count = _masked_abs_error(self.apply(params, batch["lr"], batch["msi"]), batch)
    l1 = error / jnp.maximum(count, 1.0)
    return l1, {"l1": l1}

  def eval_fn(self, params, batch: Batch) -> dict[str, jax.Array]:
    """Sums over real (weight 1) examples of the per-example L1 (valid pixels) and of the
    bicubic L1."""
    fused = self.apply(params, batch["lr"], batch["msi"])
    bicubic = sampling.upsample_bicubic(batch["lr"], self.scene.scale_factor)
    examples = (1, 2, 3)
    fused_error, count = _masked_abs_error(fused, batch, axis=examples)
    bicubic_error, _ = _masked_abs_error(bicubic, batch, axis=examples)
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

  def network_codes(self, predict: PredictFn, batch_size: int,
                    strip: HeldOutStrip) -> np.ndarray:
    """The network's (H, w, d) codes of a held-out strip, tile by tile."""
    return tiling.predict_tiled(
        predict, strip.lr_codes, strip.msi, tile=self.config.data.tile_size,
        overlap=self.config.predict.tile_overlap, scale=self.scene.scale_factor,
        batch_size=batch_size)

  def _baseline_estimates(self, scene: FusionScene, strip: HeldOutStrip
                          ) -> dict[str, np.ndarray]:
    """(H, w, L) classical estimates of a held-out `strip` of `scene`: bicubic upsampling,
    GSA and MTF-GLP (and the local MTF-GLP the network corrects, where it does); with a
    spectral subspace, its bicubic upsampling (the low-resolution cube denoised in the
    subspace, then upsampled) and the truth projected on it (the subspace's own error)."""
    ratio = scene.scale_factor
    lr, lr_codes, msi = np.moveaxis(strip.lr, 0, -1), strip.lr_codes, strip.msi
    estimates = {
        "bicubic": np.asarray(sampling.upsample_bicubic(lr, ratio)),
        "gsa": pansharpening.gsa(lr, msi, ratio, self.baseline_mtf, lr_codes=lr_codes),
        "mtf_glp": pansharpening.mtf_glp(lr, msi, ratio, self.baseline_mtf)}
    if base_estimate_of(self.config) == "mtf_glp":   # the estimate the network corrects
      estimates["mtf_glp_local"] = pansharpening.mtf_glp(lr, msi, ratio, self.baseline_mtf,
                                                         BASE_WINDOW)
    if scene.coding.basis is not None:
      upsampled = np.asarray(sampling.upsample_bicubic(lr_codes, ratio))
      estimates["bicubic_subspace"] = np.asarray(scene.coding.decode(upsampled))
      truth = np.moveaxis(strip.truth, 0, -1)
      estimates["truth_in_subspace"] = np.asarray(
          scene.coding.decode(scene.coding.encode(truth)))
    return estimates

  def _strips(self, split: str, estimates_of) -> list["Strip"]:
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
        method: np.moveaxis(cube, 0, -1) for method, cube in _methods(fused[index]).items()})
    baselines = self._baseline_reports(split)
    report = self._with_baselines(self._report(strips), baselines["pooled"])
    if len(self.scenes) == 1:
      report["region"] = _region(self.scene, split)
      return report
    report["scenes"] = {}
    for index, (scene, strip) in enumerate(zip(self.scenes, strips)):
      name = scene.name if scene.name not in report["scenes"] else f"{scene.name} #{index}"
      report["scenes"][name] = {
          **self._with_baselines(self._report([strip]), baselines["scenes"][index]),
          "region": _region(scene, split)}
    return report

  def _with_baselines(self, model_report: dict, baseline_reports: dict) -> dict:
    """The model's report beside the baselines', then the figures comparing them."""
    model_report["model"]["model_name"] = self.config.model.name
    report = {**model_report, **baseline_reports}
    self.compare_methods(report)
    return report

  def _report(self, strips: list["Strip"]) -> dict:
    """Each method's metrics over the valid pixels of `strips` pooled."""
    ratio = self.scene.scale_factor
    report = {method: metrics.pooled_fusion_report(
        [s.truth for s in strips], [s.estimates[method] for s in strips], ratio,
        [s.valid for s in strips]) for method in strips[0].estimates}
    self.extend_report(report, strips)
    return report

  def extend_report(self, report: dict, strips: list["Strip"]) -> None:
    """Adds sensor-specific figures of each method of `strips` (their pixels pooled) to its
    entry of `report`; nothing by default."""

  def compare_methods(self, report: dict) -> None:
    """Adds figures comparing the methods of a finished `report` (the model's and the
    baselines'); nothing by default."""


class Strip(NamedTuple):
  """A scene's held-out strip: the (H, Wv, L) truth, each method's (H, Wv, L) estimate,
  the (H, Wv) bool pixels where the truth is valid and the strip with its observations."""
  truth: np.ndarray
  estimates: dict
  valid: np.ndarray
  heldout: HeldOutStrip


def _methods(prediction) -> dict:
  """{method: (L, H, w) cube} of a scene's prediction: a cube (the product, 'model') or a
  dict of cubes."""
  return prediction if isinstance(prediction, dict) else {"model": prediction}


def product_of(prediction) -> np.ndarray:
  """The (L, H, w) product of a scene's prediction (see `FusionTask.evaluate`)."""
  return _methods(prediction)["model"]


def decoded_cube(scene: FusionScene, codes: np.ndarray) -> np.ndarray:
  """(H, W, d) codes -> the (L, H, W) float32 cube in the scene's unit."""
  return np.moveaxis(np.asarray(scene.coding.decode(codes), np.float32), -1, 0)


def _region(scene: FusionScene, split: str) -> dict:
  """Where a scene's `split` strip lies and how many of its pixels are valid; the columns
  its training tiles come from."""
  start, end = scene.split_columns(split)
  valid = scene.truth_valid[:, start:end]
  return {"rows": [0, int(valid.shape[0])], "columns": [start, end],
          "training_columns": list(scene.split_columns("train")),
          "bands": scene.num_bands, "code_dim": scene.code_dim,
          "valid_pixels": int(valid.sum()), "pixels": int(valid.size)}


def base_estimate_of(config) -> str:
  """config.data.base_estimate, 'bicubic' where an experiment does not set it."""
  return config.data.get("base_estimate", "bicubic")


def _masked_abs_error(estimate: jax.Array, batch: Batch, axis=None):
  """Sum of |estimate - truth| over the valid pixels of (B, H, W, d) arrays, and the count
  of valid values summed, over `axis` (all axes if None)."""
  valid = jnp.broadcast_to(batch["valid"], estimate.shape)
  return (jnp.sum(valid * jnp.abs(estimate - batch["truth"]), axis=axis),
          jnp.sum(valid, axis=axis))
