"""The Koopman experiment end to end, through the trainer (4 simulated devices); the smoke
runs are trained once per session and shared (conftest.trained)."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds
from jax.sharding import NamedSharding, PartitionSpec

import fusionjax
from experiments import sentinel2_koopman
from fusionjax import parallel, tasks, train
from fusionjax.assimilation import driver
from fusionjax.data.series import experiment as series_experiment
from fusionjax.data.series import procedural as procedural_phenology
from fusionjax.data.series import reader as series
from fusionjax.tasks.koopman import KoopmanTask
from fusionjax.tasks.koopman_objective import KoopmanObjective
from tests.conftest import experiment_config, shared_data_dir

SECTIONS = ("gap_filling", "forecast", "assimilation_vs_free_run")


def _write_ndvi_folder(folder, ndvi, clear, dates):
  """An eo-learn style series folder, as `series.read_ndvi_series` reads."""
  folder.mkdir()
  np.save(folder / "NDVI.npy", ndvi[..., None].astype(np.float32))
  np.save(folder / "CLM.npy", (~clear)[..., None].astype(np.uint8))
  np.save(folder / "IS_DATA.npy", np.ones(clear.shape + (1,), np.uint8))
  (folder / "timestamps.json").write_text(json.dumps([str(d) for d in dates]))


SAMPLED = {"data.sampled_steps": 5}   # training windows sampled to 5 states: runs all the same


def _predict(trained_workdir, arg, folder, out, **overrides):
  """--mode=predict of a trained smoke run on the series folder `folder`, into `out`."""
  config = experiment_config("sentinel2_koopman", arg, **overrides)
  config.predict.input, config.predict.output = str(folder), str(out)
  train.run(config, str(trained_workdir), mode="predict")
  return np.load(out / "series.npz")


def test_smoke_run_evaluates_assimilation_and_baselines_and_writes_the_series(trained):
  workdir = trained("sentinel2_koopman", "smoke", **SAMPLED)
  written = json.loads((workdir / "eval.json").read_text())
  assert written["step"] == 6 and set(written) == {"step", "validation", "test"}
  # The 8 rows of the smoke scene: 5 training rows, 1 validation row (0.15), 2 test rows
  # (0.2); each split's report covers its own rows only.
  for split, rows in (("validation", 1), ("test", 2)):
    report = written[split]
    assert report["model_name"] == "koopman_ae"
    assert set(report["gap_filling"]) >= {"model", "linear_interpolation"}
    assert set(report["forecast"]) >= {"model", "model_free_run", "persistence",
                                       "linear_dynamics"}
    for section in SECTIONS:
      assert section in report
    assert report["dataset"]["bands"] == list(procedural_phenology.BANDS)
    assert report["dataset"]["image_rows"] == rows and report["dataset"]["pixels"] == 8 * rows
  # The products are the test rows' series.
  products = np.load(workdir / "products" / "series.npz")
  steps = written["test"]["dataset"]["grid_steps"] + 6      # + predict.forecast_steps
  assert products["values"].shape == (steps, 2, 8, 10)
  assert products["observed"].shape == (steps, 2, 8) and not products["observed"][-6:].any()
  dates = products["dates"].astype("datetime64[s]")
  assert np.all(np.diff(dates) == np.timedelta64(5 * 86400, "s"))
  assert (workdir / "products" / "quicklook.png").stat().st_size > 10_000


def test_predict_assimilates_a_series_folder(trained, tmp_path):
  workdir = trained("sentinel2_koopman", "ndvi,smoke")
  ndvi = procedural_phenology.to_ndvi(procedural_phenology.make_series(size=8, num_years=1,
                                                                      seed=3))
  folder = tmp_path / "series"
  _write_ndvi_folder(folder, ndvi.values[..., 0], ndvi.clear, ndvi.dates)
  products = _predict(workdir, "ndvi,smoke", folder, tmp_path / "out")
  grid = series.to_grid(ndvi, 5)
  assert products["values"].shape == (len(grid.dates) + 6, 8, 8, 1)
  assert str(products["dates"][0]) == str(grid.dates[0])
  assert np.all(np.isfinite(products["values"]))
  np.testing.assert_array_equal(products["observed"][:len(grid.dates)].reshape(
      len(grid.dates), -1).T, grid.observed)
  # The Python API on the same series, as arrays and as a folder: what the command wrote.
  model = fusionjax.load(str(workdir))
  assert model.step == 6 and model.config.model.name == "koopman_ae"
  result = model.predict(values=ndvi.values, clear=ndvi.clear, dates=ndvi.dates)
  np.testing.assert_allclose(result["values"], products["values"], rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(result["dates"].astype(str), products["dates"])
  report = model.predict_files(str(folder), str(tmp_path / "api"))
  assert [entry["input"] for entry in report["done"]] == [str(folder)] and not report["skipped"]
  np.testing.assert_allclose(np.load(report["done"][0]["outputs"][0])["values"],
                             products["values"], rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="expected \\(T, H, W, C\\)"):
    model.predict(values=ndvi.values[0], clear=ndvi.clear, dates=ndvi.dates)
  # A missing input folder is named, before anything runs.
  config = experiment_config("sentinel2_koopman", "ndvi,smoke")
  config.predict.input, config.predict.output = str(tmp_path / "missing"), str(tmp_path)
  with pytest.raises(FileNotFoundError, match="predict.input="):
    train.validate_config(config, "predict")


def test_a_reflectance_run_refuses_an_ndvi_folder_by_field(tmp_path):
  config = experiment_config("sentinel2_koopman", "smoke", **{"data.dir": str(tmp_path)})
  with pytest.raises(ValueError, match="use the ':ndvi' variant"):
    train.validate_config(config, "train")


def test_real_ndvi_series_smoke_run(trained, tmp_path_factory):
  """A 12 x 12 pixel crop of the real series, end to end."""
  full = series.read_ndvi_series(shared_data_dir("sentinel2_ndvi_ts"))
  folder = tmp_path_factory.mktemp("real") / "crop"
  _write_ndvi_folder(folder, full.values[:, :12, :12, 0], full.clear[:, :12, :12], full.dates)
  workdir = trained("sentinel2_koopman", "ndvi,smoke", **{"data.dir": str(folder)})
  written = json.loads((workdir / "eval.json").read_text())
  # The 12 rows: 8 training rows, then 2 validation rows (0.15) and 2 test rows (0.2).
  config = experiment_config("sentinel2_koopman", "ndvi,smoke", **{"data.dir": str(folder)})
  experiment = series_experiment.Experiment.make(
      series.to_grid(series_experiment.load_series(config.data), config.data.step_days),
      config.data, config.data.split_seed)
  assert experiment.hidden.sum() == round(0.2 * experiment.grid.observed.sum())
  for split in ("validation", "test"):
    report = written[split]
    assert report["dataset"]["grid_steps"] == 180 and report["dataset"]["pixels"] == 24
    assert report["dataset"]["image_rows"] == 2
    assert report["forecast"]["first_forecast_date"].startswith("2017-06-30")
    part = experiment.part(split)
    assert report["gap_filling"]["hidden_observations"] == part.hidden.sum()
    assert report["dataset"]["observations"] == part.grid.observed.sum()
    for method in ("model", "linear_interpolation"):
      assert np.isfinite(report["gap_filling"][method]["rmse"])


def test_training_never_sees_hidden_or_forecast_observations():
  grid = series.to_grid(procedural_phenology.to_ndvi(procedural_phenology.make_series(
      size=8, num_years=2, seed=0)), 5)

  class Data:
    hidden_fraction, forecast_fraction, val_fraction, test_fraction = 0.2, 0.25, 0.15, 0.2
  experiment = series_experiment.Experiment.make(grid, Data, seed=0)
  usable = experiment.usable(before_cutoff=True)
  assert not (usable & experiment.hidden).any() and not usable[:, experiment.cutoff:].any()
  assert experiment.hidden.sum() == round(0.2 * grid.observed.sum())
  assert (experiment.hidden & ~grid.observed).sum() == 0
  # Blocks of whole rows: 5 training rows, then 1 validation row, then 2 test rows.
  rows = experiment.pixel_split.reshape(8, 8)
  assert np.all(rows == rows[:, :1])
  assert list(rows[:, 0]) == ["train"] * 5 + ["validation"] + ["test"] * 2
  for split, count in (("train", 5), ("validation", 1), ("test", 2)):
    part = experiment.part(split)
    assert part.grid.image_shape == (count, 8) and len(part.grid.values) == 8 * count
    assert np.all(part.pixel_split == split) and part.cutoff == experiment.cutoff
    chosen = experiment.pixel_split == split
    np.testing.assert_array_equal(part.grid.values, grid.values[chosen])
    np.testing.assert_array_equal(part.hidden, experiment.hidden[chosen])


@pytest.mark.parametrize("shape, val_fraction, test_fraction, counts", [
    ((8, 8), 0.15, 0.2, (5, 1, 2)),
    ((12, 3), 0.15, 0.2, (8, 2, 2)),
    ((10, 4), 0.2, 0.0, (8, 2, 0)),       # no test part
    ((6, 5), 0.01, 0.01, (4, 1, 1)),      # at least one row of each held-out part
    ((32, 32), 0.15, 0.2, (21, 5, 6))])
def test_row_blocks_are_train_then_validation_then_test_rows(shape, val_fraction,
                                                            test_fraction, counts):
  parts = series_experiment.row_blocks(shape, val_fraction, test_fraction)
  assert parts.shape == (shape[0] * shape[1],)
  rows = parts.reshape(shape)
  assert np.all(rows == rows[:, :1])        # whole rows
  expected = ["train"] * counts[0] + ["validation"] * counts[1] + ["test"] * counts[2]
  assert list(rows[:, 0]) == expected


@pytest.mark.parametrize("val_fraction, test_fraction", [(0.3, 0.3), (0.1, 0.6)])
def test_row_blocks_without_a_training_row_are_named(val_fraction, test_fraction):
  # Two rows: a validation row and a test row (each at least one) leave none for training.
  with pytest.raises(ValueError, match=rf"data.val_fraction={val_fraction}, "
                                       rf"data.test_fraction={test_fraction}: an image of 2 "
                                       "rows needs a validation row and a training row"):
    series_experiment.row_blocks((2, 8), val_fraction, test_fraction)


@pytest.mark.parametrize("val_fraction, test_fraction, field", [
    (0.15, -0.2, r"data.test_fraction=-0.2"), (0.15, 1.5, r"data.test_fraction=1.5"),
    (1.5, 0.0, r"data.val_fraction=1.5"), (0.0, 0.2, r"data.val_fraction=0.0"),
    (-0.1, 0.2, r"data.val_fraction=-0.1"), (1.0, 0.0, r"data.val_fraction=1.0"),
    (0.2, 1.0, r"data.test_fraction=1.0"),
    (0.5, 0.5, r"data.val_fraction=0.5 \+ data.test_fraction=0.5 >= 1")])
def test_fractions_outside_0_1_are_named(val_fraction, test_fraction, field):
  with pytest.raises(ValueError, match=field):
    series_experiment.row_blocks((100, 8), val_fraction, test_fraction)


def test_no_test_pixel_is_in_a_training_or_validation_window(trained):
  """The windows the smoke run trained and validated on (their 'pixel' features, as written
  to TFRecords): training windows of training rows only, validation windows of the validation
  row only, no window of a test row."""
  workdir = trained("sentinel2_koopman", "smoke", **SAMPLED)
  task = tasks.get_task(experiment_config("sentinel2_koopman", "smoke", **SAMPLED),
                        str(workdir))      # the prepared data, not rebuilt
  width = task.experiment.grid.image_shape[1]
  pixel_split = task.experiment.pixel_split
  test_pixels = set(np.flatnonzero(pixel_split == "test").tolist())
  assert len(test_pixels) == 2 * width
  builder = task.builder
  assert set(builder.info.splits) == {"train", "validation"}
  for split in ("train", "validation"):
    pixels = [int(e["pixel"]) for e in tfds.as_numpy(builder.as_dataset(split=split))]
    assert len(pixels) == builder.info.splits[split].num_examples > 0
    assert not set(pixels) & test_pixels
    assert {str(pixel_split[p]) for p in pixels} == {split}
    rows = {p // width for p in pixels}
    assert rows <= ({0, 1, 2, 3, 4} if split == "train" else {5})


def test_the_assimilated_series_is_gap_filled_while_observed_then_forecast():
  import jax
  from experiments.sentinel2_koopman import get_config
  config = get_config("ndvi,smoke")
  config.assimilation.forecast.iterations = 0      # the forecast part is then the free run
  config.assimilation.forecast.control = "latent"
  config.assimilation.forecast.start = "first_state"
  objective = KoopmanObjective(config, channels=1)
  params = objective.init_params(jax.random.key(0))
  grid = series.to_grid(procedural_phenology.to_ndvi(procedural_phenology.make_series(
      size=4, num_years=1, field_pixels=2, seed=0)), 5)
  usable = grid.observed.copy()
  usable[:, 40:] = False
  inputs = driver.assimilation_inputs(grid.values, usable, grid.image_shape,
                                      len(grid.dates) + 5)
  assimilated, free = jax.jit(objective.apply)(params, *inputs.values())
  last = np.array([np.flatnonzero(row).max() for row in usable])
  steps = np.arange(assimilated.shape[1])
  after = steps[None] > last[:, None]
  np.testing.assert_allclose(assimilated[after], free[after], atol=1e-6)
  assert np.abs(assimilated[~after] - free[~after]).max() > 1e-4


def test_bad_assimilation_settings_are_named_by_field(tmp_path):
  config = experiment_config("sentinel2_koopman", "smoke",
                             **{"assimilation.forecast.control": "weights"})
  with pytest.raises(ValueError, match="assimilation.forecast.control='weights': expected one "
                                       "of"):
    train.validate_config(config, "train")
  config = experiment_config("sentinel2_koopman", "smoke", **{"data.sampled_steps": 1,
                                                              "data.cache_dir": str(tmp_path)})
  with pytest.raises(ValueError, match="data.sampled_steps=1: expected 0"):
    train.run(config, str(tmp_path / "run"))
  assert not list(tmp_path.iterdir())              # refused before any data was prepared


def test_validate_refuses_an_ensemble_outside_eval_and_bad_settings_without_the_task():
  """The checks of settings run on the class, before the task is built (and its data
  prepared)."""
  assert tasks.task_class("sentinel2_koopman") is KoopmanTask
  config = sentinel2_koopman.get_config("smoke")
  config.ensemble.members = "runs/seed1, runs/seed2"
  KoopmanTask.validate(config, "eval")
  for mode in ("train", "predict"):
    with pytest.raises(ValueError, match=f"ensemble.members='runs/seed1, runs/seed2' with "
                                         f"--mode={mode}: an ensemble is evaluated with "
                                         "--mode=eval"):
      KoopmanTask.validate(config, mode)
  config = sentinel2_koopman.get_config("smoke")
  for steps in (1, -2):
    config.data.sampled_steps = steps
    with pytest.raises(ValueError, match=f"data.sampled_steps={steps}: expected 0"):
      KoopmanTask.validate(config, "train")
  config = sentinel2_koopman.get_config("smoke")
  config.assimilation.gap_filling.segment_steps = -1
  with pytest.raises(ValueError, match="assimilation.gap_filling.segment_steps=-1: expected"):
    KoopmanTask.validate(config, "train")
  config = sentinel2_koopman.get_config("smoke")
  config.data.quantity = "radiance"
  with pytest.raises(ValueError, match="data.quantity='radiance': expected one of"):
    KoopmanTask.validate(config, "train")


def test_a_pixel_without_observations_is_reported_and_left_out(trained, tmp_path, caplog):
  workdir = trained("sentinel2_koopman", "ndvi,smoke")
  ndvi = procedural_phenology.to_ndvi(procedural_phenology.make_series(size=8, num_years=1,
                                                                      seed=3))
  clear = ndvi.clear.copy()
  clear[:, 2, 5] = False                          # never seen
  folder = tmp_path / "series"
  _write_ndvi_folder(folder, ndvi.values[..., 0], clear, ndvi.dates)
  with caplog.at_level("WARNING"):
    values = _predict(workdir, "ndvi,smoke", folder, tmp_path / "out")["values"]
  assert "1 pixel(s) without any usable observation are left out" in caplog.text
  assert "row 2, column 5" in caplog.text
  assert np.all(np.isnan(values[:, 2, 5])) and np.isfinite(np.delete(
      values.reshape(len(values), -1), 2 * 8 + 5, axis=1)).all()


def test_two_seeds_are_evaluated_as_one_ensemble(trained, tmp_path):
  first = trained("sentinel2_koopman", "smoke", **SAMPLED)
  second = trained("sentinel2_koopman", "smoke", **SAMPLED, seed=1)
  alone = [json.loads((workdir / "eval.json").read_text()) for workdir in (first, second)]
  shared_report = (first / "eval.json").read_bytes()
  config = experiment_config("sentinel2_koopman", "smoke", **SAMPLED,
                             **{"ensemble.members": str(second)})
  written = train.run(config, str(first), mode="eval")
  assert set(written) == {"step", "validation", "test"}
  saved = json.loads((first / "eval.json").read_text())
  for split in ("validation", "test"):
    report = written[split]
    for section in ("gap_filling", "forecast"):
      scores = report["ensemble"][section]
      assert scores["members"] == 2
      # Each member of the vmapped ensemble scores as its own run did.
      np.testing.assert_allclose(scores["member_rmse"],
                                 [run[split][section]["model"]["rmse"] for run in alone],
                                 rtol=1e-4)
      assert scores["spread"] > 0 and scores["crps"] > 0
      # The split's figures are the ensemble mean's.
      np.testing.assert_allclose(report[section]["model"]["rmse"], scores["mean_rmse"])
    assert saved[split]["ensemble"] == report["ensemble"]
  # An ensemble is evaluated only, and every member must have been trained.
  with pytest.raises(ValueError, match="an ensemble is evaluated with --mode=eval"):
    train.validate_config(config, "train")
  config.ensemble.members = str(tmp_path / "untrained")
  with pytest.raises(FileNotFoundError, match="ensemble.members: no checkpoint in "
                                              f"{tmp_path / 'untrained' / 'checkpoints'}"):
    train.run(config, str(first), mode="eval")
  assert not (tmp_path / "untrained").exists()    # refused before a checkpoint folder is made
  (first / "eval.json").write_bytes(shared_report)  # the shared run as other tests expect it


@pytest.mark.parametrize("windows, sharded", [(12, True), (10, False)])
def test_training_gradient_by_chunks_of_windows_equals_the_whole_batch(windows, sharded):
  """One window per device per chunk: three chunks of four windows on four devices (the
  second case padded with two empty windows), windows with different counts of usable
  states."""
  config = sentinel2_koopman.get_config("smoke")
  config.train.chunk_rows = 7
  objective = KoopmanObjective(config, channels=10)
  params = objective.init_params(jax.random.key(0))
  rng = np.random.default_rng(0)
  batch = {"state": rng.normal(size=(windows, 7, 20)).astype(np.float32),
           "offset": np.sort(rng.choice(np.arange(1, 21), (windows, 7)), axis=1).astype(np.int32),
           "mask": (rng.uniform(size=(windows, 7)) < 0.7).astype(np.float32)}
  batch["offset"][:, 0] = 0
  if sharded:
    batch = jax.device_put(batch, NamedSharding(parallel.make_mesh(), PartitionSpec("data")))
  (loss, terms), grads = jax.jit(objective.loss_and_gradient)(params, batch)
  (expected, expected_terms), expected_grads = jax.value_and_grad(
      objective.loss_fn, has_aux=True)(params, batch)
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  for name in expected_terms:
    np.testing.assert_allclose(terms[name], expected_terms[name], rtol=1e-5)
  for leaf, expected_leaf in zip(jax.tree.leaves(grads), jax.tree.leaves(expected_grads)):
    np.testing.assert_allclose(leaf, expected_leaf, rtol=1e-4,
                               atol=1e-6 * float(jnp.max(jnp.abs(expected_leaf))))
