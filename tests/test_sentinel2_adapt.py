"""Sentinel-2 sharpening that starts from the classical estimate and adapts to the user's own
scene: the network's base (MTF-GLP), and --mode=adapt end to end on a procedural scene the
model never saw."""
import json
import shutil

import jax
import numpy as np
import pytest
import rasterio

from fusionjax import adaptation, tasks, train
from fusionjax.baselines import pansharpening
from fusionjax.data.sentinel2 import procedural as procedural_sentinel2
from fusionjax.data.sentinel2 import reader as sentinel2
from fusionjax.tasks import fusion
from fusionjax.tasks.sentinel2 import Sentinel2Task, band_descriptions
from tests.conftest import experiment_config
from tests.test_sentinel2 import write_mat


@pytest.mark.parametrize("arg", ["smoke", "smoke,model=fusformer"])
def test_untrained_network_is_the_classical_estimate(trained, arg):
  workdir = trained("sentinel2", arg)
  task = tasks.get_task(experiment_config("sentinel2", arg), str(workdir))   # data prepared
  split = "validation"
  strip = task.scene.strip(split)
  lr, msi = strip.lr_codes[None, :8, :8], strip.msi[None, :16, :16]   # one 16-pixel tile of
                                                                      # the smoke config
  untrained = task.init_params(jax.random.key(3))
  classical = pansharpening.mtf_glp_batch(lr, msi, 2, task.baseline_mtf, fusion.BASE_WINDOW)
  np.testing.assert_array_equal(task.apply(untrained, lr, msi), classical)
  assert task.baseline_mtf == tuple(sentinel2.BANDS[b].mtf_at_nyquist
                                    for b in sentinel2.BANDS_20M)
  # and it is better than bicubic upsampling there: the detail injection is not a no-op.
  truth = task.scene.truth_codes[None, :16, strip.col_start:][:, :, :16]
  bicubic = jax.image.resize(lr, truth.shape, "cubic")
  assert np.abs(classical - truth).mean() < 0.6 * np.abs(bicubic - truth).mean()


def _adapt_config(scene, output, **overrides):
  return experiment_config("sentinel2", "smoke", **{
      "predict.input": str(scene), "predict.output": str(output), **overrides})


def test_adapt_fine_tunes_on_an_unseen_scene_and_sharpens_it(trained, tmp_path):
  trained_dir = trained("sentinel2", "smoke")
  scene = tmp_path / "unseen.mat"   # another procedural scene: another seed, another size
  write_mat(scene, procedural_sentinel2.make_scene(120, seed=11))
  config = _adapt_config(scene, tmp_path / "out", **{"adapt.steps": 30,
                                                    "adapt.learning_rate": 1e-3})
  # The trained model on the unseen scene's reduced-resolution strip, before adaptation.
  before_dir, run_dir = tmp_path / "before", tmp_path / "run"
  for directory in (before_dir, run_dir):
    shutil.copytree(trained_dir / "checkpoints", directory / "checkpoints")
  before = train.run(Sentinel2Task.adaptation_config(config), str(before_dir), "eval")

  after = adaptation.adapt(config, str(run_dir))
  # The user's scene has a validation strip to report on and no test strip.
  assert set(before) == set(after) == {"step", "validation"}
  assert after["step"] == 30
  before, after_report = before["validation"], after["validation"]
  assert after_report["model"]["rmse"] < before["model"]["rmse"]
  assert after_report["model"]["rmse"] < after_report["mtf_glp"]["rmse"] < after_report[
      "bicubic"]["rmse"]
  assert after_report["region"]["columns"][1] == 60   # the right-hand end (60 pixels at 20 m)
  adapted = adaptation.adaptation_dir(config, str(run_dir))
  assert adapted == str(run_dir / "adapt" / "unseen")
  with rasterio.open(tmp_path / "out" / "unseen_sharpened_10m.tif") as product:
    sharpened = product.read()
    assert product.descriptions == band_descriptions(sentinel2.BANDS_20M)
  assert sharpened.shape == (6, 120, 120) and np.all(np.isfinite(sharpened))
  check = json.loads((tmp_path / "out" / "unseen_sharpened_10m.json").read_text())
  assert check["fit_correction"] and all(0.0 <= w <= 1.0 for w in check["weights"].values())
  # Rerun: the adaptation is done (its checkpoint is the last step), only the prediction runs.
  assert adaptation.adapt(config, str(run_dir))["validation"]["model"] == after_report["model"]


@pytest.mark.parametrize("field, value, message", [
    ("adapt.steps", 0, r"adapt.steps=0: expected a positive number of steps"),
    ("adapt.val_fraction", 1.0, r"adapt.val_fraction=1.0: expected a fraction in \(0, 1\)"),
    ("predict.output", "", r"--mode=adapt: predict.output is empty")])
def test_bad_adapt_settings_are_named(tmp_path, field, value, message):
  config = _adapt_config(tmp_path / "scene.mat", tmp_path / "out")
  with config.unlocked():
    section, name = field.split(".")
    config[section][name] = value
  with pytest.raises(ValueError, match=message):
    adaptation.validate(config)


def test_a_scene_too_small_for_one_tile_is_named(tmp_path):
  scene = tmp_path / "small.mat"
  write_mat(scene, procedural_sentinel2.make_scene(24, seed=2))   # 12 x 12 pixels at 20 m
  with pytest.raises(ValueError, match=r"small.mat: the 20 m bands are 12 x 12 pixels, smaller "
                                       r"than one data.tile_size=16 tile"):
    adaptation.adapt(_adapt_config(scene, tmp_path / "out"), str(tmp_path / "run"))


def test_the_60m_variant_adapts_and_sharpens_b1_and_b9(trained, tmp_path):
  run_dir = tmp_path / "run"
  shutil.copytree(trained("sentinel2", "60m,smoke") / "checkpoints", run_dir / "checkpoints")
  scene = tmp_path / "unseen60.mat"
  write_mat(scene, procedural_sentinel2.make_scene(216, seed=12))
  config = experiment_config("sentinel2", "60m,smoke", **{
      "predict.input": str(scene), "predict.output": str(tmp_path / "out")})
  report = adaptation.adapt(config, str(run_dir))
  assert report["step"] == config.adapt.steps and set(report) == {"step", "validation"}
  assert set(report["validation"]["model"]["per_band"]) == {"B1", "B9"}
  with rasterio.open(tmp_path / "out" / "unseen60_sharpened_10m.tif") as product:
    assert product.descriptions == band_descriptions(sentinel2.BANDS_60M)
    assert product.shape == (216, 216)


def test_radiometric_jitter_changes_band_levels_and_the_base_follows(trained):
  import tensorflow as tf
  workdir = trained("sentinel2", "smoke")
  config = experiment_config("sentinel2", "smoke", **{"data.radiometric_jitter": 0.3,
                                                      "data.augment": False})
  task = tasks.get_task(config, str(workdir))
  # The first tile of the training columns (the jitter augments training tiles).
  scene = task.scene
  start, end = scene.split_columns("train")
  assert end - start >= 16
  example = {"lr": scene.lr_codes[:8, start // 2:start // 2 + 8],
             "msi": scene.msi[:16, start:start + 16],
             "truth": scene.truth_codes[:16, start:start + 16]}
  augmented = {key: np.asarray(value) for key, value in task.augmentation()(
      {key: tf.constant(value) for key, value in example.items()},
      tf.constant(5, tf.int64), 0).items()}

  def gains_and_offsets(before, after):   # per band, exact for an affine change
    flat_before, flat_after = before.reshape(-1, before.shape[-1]), after.reshape(
        -1, after.shape[-1])
    gains = np.std(flat_after, axis=0) / np.std(flat_before, axis=0)
    return gains, flat_after.mean(axis=0) - gains * flat_before.mean(axis=0)
  lr_gains, lr_offsets = gains_and_offsets(example["lr"], augmented["lr"])
  truth_gains, truth_offsets = gains_and_offsets(example["truth"], augmented["truth"])
  msi_gains, _ = gains_and_offsets(example["msi"], augmented["msi"])
  np.testing.assert_allclose(lr_gains, truth_gains, rtol=1e-4)   # one change per band
  np.testing.assert_allclose(lr_offsets, truth_offsets, atol=1e-4)
  assert np.all(np.abs(np.log(lr_gains)) > 1e-3) and len(set(np.round(msi_gains, 4))) == 4
  # The MTF-GLP base moves with the target bands (up to its small ridge, whose weights the
  # guide bands' gains change): the network sees the same correction.
  base = task.base_estimate(example["lr"][None], example["msi"][None])[0]
  moved = task.base_estimate(augmented["lr"][None], augmented["msi"][None])[0]
  np.testing.assert_allclose(moved, lr_gains * base + lr_offsets, atol=1e-2)
  assert np.abs(moved - lr_gains * base - lr_offsets).max() < 0.01 * np.abs(moved).max()


def test_a_harmful_correction_is_weighed_out_on_the_scenes_reduced_resolution(trained,
                                                                              tmp_path):
  task = tasks.get_task(experiment_config("sentinel2", "smoke"), str(trained("sentinel2",
                                                                              "smoke")))
  rng = np.random.default_rng(0)
  scene = tmp_path / "scene.mat"
  write_mat(scene, procedural_sentinel2.make_scene(96, seed=21, landscape="snow"))
  task.config.predict.input, task.config.predict.output = str(scene), str(tmp_path / "out")

  def harmful(lr, msi):   # the base plus noise: a correction that only harms
    base = np.asarray(task.base_estimate(lr, msi))
    return base + rng.normal(0.0, 0.5, base.shape).astype(np.float32)

  result = task.predict_input(harmful, 4, str(scene))
  check = json.loads((tmp_path / "out" / "scene_sharpened_10m.json").read_text())
  assert result["weights"] == check["weights"]
  assert set(check["weights"]) == set(sentinel2.BANDS_20M)
  assert max(check["weights"].values()) < 0.05
  for band in sentinel2.BANDS_20M:   # the weighted correction is never worse than the base
    rmse = {name: check["reduced_rmse"][name][band] for name in ("network", "base", "weighted")}
    assert rmse["weighted"] <= rmse["base"] < 0.5 * rmse["network"]
  with rasterio.open(tmp_path / "out" / "scene_sharpened_10m.tif") as source:
    weighted = np.moveaxis(source.read(), 0, -1)
  task.config.predict.fit_correction, task.config.predict.output = False, str(tmp_path / "raw")
  task.predict_input(lambda lr, msi: np.asarray(task.base_estimate(lr, msi)), 4, str(scene))
  with rasterio.open(tmp_path / "raw" / "scene_sharpened_10m.tif") as source:
    base = np.moveaxis(source.read(), 0, -1)   # the base estimate tile by tile
  # The harm (noise of half a band's standard deviation) is weighed out of the product.
  difference = np.sqrt(np.mean((weighted - base) ** 2, axis=(0, 1)))
  assert np.all(difference < 0.05 * np.std(base, axis=(0, 1))), difference
