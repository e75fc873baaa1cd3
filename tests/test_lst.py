"""LST super-resolution: dataset splits and checks, and the command line end to end."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.modis_lst import get_config
from fusionjax.data import geotiff
from fusionjax.data.modis import builder as lst_builder
from fusionjax.data.modis import reader as modis
from fusionjax.data.modis import procedural as procedural_lst
from fusionjax.physics import thermal
from fusionjax import train
from fusionjax.tasks import lst
from tests.conftest import experiment_config, shared_data_dir

METHODS = ("model", "bicubic", "tsharp")
FIELDS = ("rmse_k", "psnr_db", "ssim", "consistency_rmse_k")


def _archive(directory, locations=2, dates=4):
  procedural_lst.write_archive(str(directory), num_locations=locations, num_dates=dates,
                               tile_size=32, seed=3)
  return modis.find_samples(str(directory))[0]


def test_random_split_is_seeded_and_date_split_holds_out_the_last_dates(tmp_path):
  samples = _archive(tmp_path, locations=3, dates=8)
  train, validation = lst_builder.split_samples(samples, val_fraction=0.25, seed=1,
                                                split_by="random")
  assert len(validation) == 12 and not {s.key for s in train} & {s.key for s in validation}
  again = lst_builder.split_samples(samples, val_fraction=0.25, seed=1, split_by="random")
  assert [s.key for s in again[1]] == [s.key for s in validation]
  train, validation = lst_builder.split_samples(samples, val_fraction=0.25, seed=1,
                                                split_by="date")
  assert max(s.lst.day_of_year for s in train) < min(s.lst.day_of_year for s in validation)
  with pytest.raises(ValueError, match="data.split_by='season'"):
    lst_builder.split_samples(samples, val_fraction=0.25, seed=1, split_by="season")


def test_tiles_with_no_data_or_impossible_temperatures_are_dropped_and_counted(tmp_path):
  samples = _archive(tmp_path / "archive")
  for sample, value in ((samples[0], 0.0), (samples[3], 450.0)):
    data, georef = geotiff.read_geotiff(sample.lst.path)
    data[sample.band, 5, 5] = value
    geotiff.write_geotiff(sample.lst.path, data, georef)
  builder = lst_builder.LstTiles(source_dir=str(tmp_path / "archive"), tile_size=32,
                                 val_fraction=0.25, split_seed=1, split_by="random",
                                 num_shards=2, data_dir=str(tmp_path / "tfds"))
  builder.download_and_prepare()
  metadata = builder.info.metadata
  assert metadata["dropped_samples"] == {"no-data (0) pixels": 1,
                                         "values outside 150-400 K": 1}
  assert metadata["train_samples"] + metadata["validation_samples"] == len(samples) - 2
  for example in builder.as_dataset(split="train").as_numpy_iterator():
    assert modis.invalid_reason(example["lst"]) is None


@pytest.mark.parametrize("variant, model", [("disr", "mrunet"), ("disr,model=srcnn", "srcnn"),
                                            ("reflectances,climatology", "mrunet")])
def test_guided_smoke_run_evaluates_model_and_baselines(trained, tmp_path, variant, model):
  workdir = trained("modis_lst", f"{variant},smoke")
  report = json.loads((workdir / "eval.json").read_text())
  assert report["step"] == 4 and report["model"]["model_name"] == model
  for method in METHODS:
    assert set(FIELDS) <= set(report[method])
  # The consistency projection makes the result aggregate back to its input.
  assert report["model"]["consistency_rmse_k"] < 1e-3 < report["bicubic"]["consistency_rmse_k"]
  assert report["dataset"]["samples"] == 16 and report["validation_images"] == 4
  assert (workdir / "products" / "quicklook.png").stat().st_size > 10_000
  # A climatology-guided model reads <workdir>/climatology/ (the 1 km output grid) to predict.
  assert len(list((workdir / "climatology").glob("*.tif"))) == (2 if "climatology" in variant
                                                                else 0)

  # --mode=predict on a GeoTIFF: a 1 km tile aggregated to 4 km, guided by its 1 km composite.
  archive = next((workdir / "data").glob("lst_procedural-*"))
  lst_path = min((archive / "lst_1km").glob("*.tif"))
  truth, georef = geotiff.read_geotiff(str(lst_path))
  truth[0, :4, :4] = 0.0                                  # one no-data coarse pixel
  coarse = np.array(thermal.aggregate(np.moveaxis(truth, 0, -1), 4))
  coarse[0, 0] = 0.0
  inputs = tmp_path / "inputs"
  geotiff.write_geotiff(str(inputs / lst_path.name), np.moveaxis(coarse, -1, 0),
                        georef.coarsened(4))
  outputs = tmp_path / "outputs"
  config = experiment_config("modis_lst", f"{variant},smoke", **{
      "predict.input": str(inputs), "predict.output": str(outputs),
      "predict.guide": str(archive / "ndvi_1km"), "predict.truth": str(lst_path)})
  train.run(config, str(workdir), mode="predict")
  fine, fine_georef = geotiff.read_geotiff(str(outputs / (lst_path.stem + ".sr4.tif")))
  assert fine.shape == truth.shape and fine_georef.matches(georef)
  assert np.all(fine[:, :4, :4] == 0.0) and np.all(fine[:, 4:, 4:] > 150.0)
  reaggregated = np.asarray(thermal.aggregate(np.moveaxis(fine, 0, -1), 4))
  np.testing.assert_allclose(reaggregated[1:, 1:], coarse[1:, 1:], atol=1e-2)
  assert (outputs / (lst_path.stem + ".sr4.png")).stat().st_size > 10_000


def test_multiscale_smoke_run_reports_every_scale_step(trained):
  workdir = trained("modis_lst", "multiscale,smoke")
  study = json.loads((workdir / "eval.json").read_text())["scale_study"]
  assert sorted(study) == ["3.71km->0.927km", "7.41km->1.85km"]
  for step in study.values():
    assert np.isfinite(step["model"]["correction_rms_k"])


def test_missing_data_directory_is_named():
  config = experiment_config("modis_lst", "smoke", **{"data.dir": "/no/such/folder"})
  with pytest.raises(FileNotFoundError,
                     match="data.dir='/no/such/folder': no such file or directory"):
    train.validate_config(config, "train")


def test_real_modis_tiles_smoke_run(trained):
  workdir = trained("modis_lst", "sisr,smoke", **{"data.dir": shared_data_dir("modis_lst"),
                                                  "data.tile_size": 64})
  report = json.loads((workdir / "eval.json").read_text())
  dataset = report["dataset"]
  assert dataset["lst_files"] == 1343 and dataset["dropped_samples"] == {}
  assert dataset["validation_samples"] == round(0.25 * dataset["samples"])
  assert report["validation_images"] == dataset["validation_samples"]
  # Bicubic on the real validation split, as published (0.69 K with their interpolation).
  assert 0.4 < report["bicubic"]["rmse_k"] < 0.9


def test_self_ensemble_is_equivariant_to_flips_and_rotations_and_stays_consistent():
  config = get_config("disr,smoke")
  config.predict.self_ensemble = True
  objective = lst.LstObjective(config)
  params = objective.init_params(jax.random.key(0))
  noise = jax.tree.map(lambda x: 0.05 * jax.random.normal(jax.random.key(1), x.shape),
                       params)
  params = jax.tree.map(lambda x, n: x + n, params, noise)   # a network with no symmetry
  rng = np.random.default_rng(0)
  coarse = jnp.asarray(290.0 + 5.0 * rng.random((2, 8, 8, 1)), jnp.float32)
  guide = jnp.asarray(rng.random((2, 32, 32, 1)), jnp.float32)
  fine_km = jnp.ones((2,))
  turn = lambda x: jnp.rot90(x[:, :, ::-1], 1, axes=(1, 2))
  ensembled = objective.apply(params, coarse, guide, fine_km)
  np.testing.assert_allclose(objective.apply(params, turn(coarse), turn(guide), fine_km),
                             turn(ensembled), atol=2e-4)
  single = objective._network(params, coarse, guide, fine_km)
  assert np.abs(objective._network(params, turn(coarse), turn(guide), fine_km)
                - turn(single)).max() > 1e-2
  np.testing.assert_allclose(thermal.aggregate(ensembled, 4), coarse, atol=1e-3)


def test_validation_sums_ignore_padding_examples_with_the_self_ensemble():
  config = get_config("disr,smoke")
  config.predict.self_ensemble = True
  objective = lst.LstObjective(config)
  params = objective.init_params(jax.random.key(0))
  rng = np.random.default_rng(0)
  lst_k = np.stack([290.0 + 5.0 * rng.random((32, 32, 1)), np.zeros((32, 32, 1))])
  batch = {"lst": jnp.asarray(lst_k, jnp.float32), "ndvi": jnp.zeros((2, 32, 32, 1)),
           "weight": jnp.array([1.0, 0.0])}   # the second example pads the batch
  sums = objective.eval_fn(params, batch)
  assert np.isfinite(float(sums["rmse_k"])) and float(sums["weight"]) == 1.0
