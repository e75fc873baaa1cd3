"""LST super-resolution: dataset splits and checks, and the command line end to end."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rasterio

from experiments.modis_lst import get_config
from fusionjax.data import geotiff
from fusionjax.data.modis import builder as lst_builder
from fusionjax.data.modis import climatology as lst_climatology
from fusionjax.data.modis import reader as modis
from fusionjax.data.modis import procedural as procedural_lst
from fusionjax.physics import thermal
import fusionjax
from fusionjax import train
from fusionjax.tasks import lst, lst_predict
from tests.conftest import experiment_config, shared_data_dir

METHODS = ("model", "bicubic", "tsharp")
FIELDS = ("rmse_k", "psnr_db", "ssim", "consistency_rmse_k")


def _archive(directory, locations=2, dates=4):
  procedural_lst.write_archive(str(directory), num_locations=locations, num_dates=dates,
                               tile_size=32, seed=3)
  return modis.find_samples(str(directory))[0]


def _date(sample):
  return sample.lst.year, sample.lst.day_of_year


def _location(sample):
  return lst_climatology.location_of(sample.lst)


def _key(sample):
  return sample.key


GROUP_OF = {"date": _date, "location": _location, "random": _key}


def _split(samples, split_by, val_fraction=0.25, test_fraction=0.25, seed=1):
  return lst_builder.split_samples(samples, val_fraction=val_fraction,
                                   test_fraction=test_fraction, seed=seed, split_by=split_by)


@pytest.mark.parametrize("split_by, groups", [
    ("date", (6, 2, 2)),         # of the 10 dates: the last 2 test, the 2 before validation
    ("location", (2, 1, 1)),     # of the 4 locations (rounded 1.0 each)
    ("random", (40, 20, 20))])   # of the 80 samples
def test_three_way_split_is_disjoint_in_its_groups_and_seeded(tmp_path, split_by, groups):
  samples = _archive(tmp_path, locations=4, dates=10)
  assert len(samples) == 80      # 4 locations x 10 dates x day and night
  group_of = GROUP_OF[split_by]
  parts = _split(samples, split_by)
  assert isinstance(parts, lst_builder.Split)
  assert parts._fields == ("train", "validation", "test")
  # A partition of the samples: each sample in exactly one part.
  keys = [s.key for part in parts for s in part]
  assert sorted(keys) == sorted(s.key for s in samples) and len(set(keys)) == len(keys)
  # No group (date, location or sample) in two parts, and each part its share of the groups.
  part_groups = [{group_of(s) for s in part} for part in parts]
  for i in range(3):
    for j in range(i + 1, 3):
      assert not part_groups[i] & part_groups[j], (parts._fields[i], parts._fields[j])
  assert tuple(len(g) for g in part_groups) == groups
  # The same seed, the same parts.
  again = _split(samples, split_by)
  assert [[s.key for s in part] for part in again] == [[s.key for s in part] for part in parts]
  if split_by == "date":
    # The last dates held out: training, then validation, then test, in time.
    assert max(part_groups[0]) < min(part_groups[1]) <= max(part_groups[1]) \
        < min(part_groups[2])
    assert _split(samples, split_by, seed=7) == parts    # no draw: the seed plays no part
  else:
    other = _split(samples, split_by, seed=7)
    assert [{group_of(s) for s in part} for part in other] != part_groups
  if split_by == "location":
    # Locations never seen: neither held-out part shares a MODIS tile location with training.
    assert not {_location(s) for s in parts.train} & {
        _location(s) for s in parts.validation + parts.test}


def test_no_test_fraction_leaves_the_test_part_empty_and_the_default_is_by_date(tmp_path):
  samples = _archive(tmp_path, locations=3, dates=8)
  parts = _split(samples, "random", test_fraction=0.0)
  assert parts.test == [] and len(parts.validation) == 12   # 0.25 of the 48 samples
  assert not {s.key for s in parts.train} & {s.key for s in parts.validation}
  config = get_config()
  assert lst_builder.split_settings(config.data) == {
      "val_fraction": 0.2, "test_fraction": 0.2, "seed": 1, "split_by": "date"}
  with pytest.raises(ValueError, match="data.split_by='season'"):
    _split(samples, "season")


@pytest.mark.parametrize("fractions, field", [
    ({"val_fraction": 1.5}, r"data.val_fraction=1.5"),
    ({"val_fraction": -0.2}, r"data.val_fraction=-0.2"),
    ({"val_fraction": 0.0}, r"data.val_fraction=0"),
    ({"test_fraction": 1.0}, r"data.test_fraction=1.0"),
    ({"test_fraction": -0.1}, r"data.test_fraction=-0.1"),
    ({"val_fraction": 0.6, "test_fraction": 0.6},
     r"data.val_fraction=0.6.*data.test_fraction=0.6")])
def test_bad_split_fractions_are_named(tmp_path, fractions, field):
  samples = _archive(tmp_path)
  for split_by in lst_builder.SPLITS:
    with pytest.raises(ValueError, match=field):
      _split(samples, split_by, **fractions)


def test_tiles_with_no_data_or_impossible_temperatures_are_dropped_and_counted(tmp_path):
  samples = _archive(tmp_path / "archive")
  for sample, value in ((samples[0], 0.0), (samples[3], 450.0)):
    data, georef = geotiff.read_geotiff(sample.lst.path)
    data[sample.band, 5, 5] = value
    geotiff.write_geotiff(sample.lst.path, data, georef)
  builder = lst_builder.LstTiles(source_dir=str(tmp_path / "archive"), tile_size=32,
                                 split={"val_fraction": 0.25, "test_fraction": 0.25, "seed": 1,
                                        "split_by": "random"},
                                 num_shards=2, data_dir=str(tmp_path / "tfds"))
  builder.download_and_prepare()
  metadata = builder.info.metadata
  assert metadata["dropped_samples"] == {"no-data (0) pixels": 1,
                                         "values outside 150-400 K": 1}
  assert metadata["train_samples"] + metadata["validation_samples"] + metadata[
      "test_samples"] == len(samples) - 2
  assert metadata["validation_samples"] == metadata["test_samples"] == 4   # 0.25 of 14
  for split in ("train", "validation", "test"):
    for example in builder.as_dataset(split=split).as_numpy_iterator():
      assert modis.invalid_reason(example["lst"]) is None


def _examples(builder, split):
  """(tile index, day of year, band) of each example of a split: the sample it is."""
  return [(int(e["tile_index"]), int(e["day_of_year"]), int(e["band"]))
          for e in builder.as_dataset(split=split).as_numpy_iterator()]


@pytest.mark.parametrize("split_by", ["date", "location", "random"])
def test_lst_tiles_write_three_disjoint_splits(tmp_path, split_by):
  _archive(tmp_path / "archive", locations=4, dates=6)   # 48 samples
  builder = lst_builder.LstTiles(
      source_dir=str(tmp_path / "archive"), tile_size=32, num_shards=2,
      split={"val_fraction": 0.25, "test_fraction": 0.25, "seed": 1, "split_by": split_by},
      data_dir=str(tmp_path / "tfds"))
  builder.download_and_prepare()
  metadata = builder.info.metadata
  assert metadata["split_by"] == split_by
  examples = {split: _examples(builder, split) for split in ("train", "validation", "test")}
  for split, found in examples.items():
    assert len(found) == len(set(found)) == metadata[f"{split}_samples"] > 0, split
  assert sum(metadata[f"{split}_samples"] for split in examples) == metadata["samples"] == 48
  # No sample in two splits, nor, by date or by location, a date or a location.
  group = {"date": lambda e: e[1], "location": lambda e: e[0], "random": lambda e: e}[split_by]
  groups = {split: {group(e) for e in found} for split, found in examples.items()}
  for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
    assert not set(examples[a]) & set(examples[b]), (a, b)
    assert not groups[a] & groups[b], (a, b)
  if split_by == "date":
    assert max(groups["train"]) < min(groups["validation"]) <= max(groups["validation"]) \
        < min(groups["test"])
  # The climatology (of the training split) covers a held-out sample only where its location
  # is in training: every one by date, none by location.
  for split in ("validation", "test"):
    covered = sum(float(e["climatology"][0, 0, 1]) > 0
                  for e in builder.as_dataset(split=split).as_numpy_iterator())
    assert metadata[f"{split}_samples_with_climatology"] == covered
    if split_by == "date":
      assert covered == metadata[f"{split}_samples"]
    if split_by == "location":
      assert covered == 0


def test_too_few_samples_for_a_split_are_named(tmp_path):
  _archive(tmp_path / "archive")   # 16 samples of 4 dates
  builder = lst_builder.LstTiles(
      source_dir=str(tmp_path / "archive"), tile_size=32, num_shards=2,
      split={"val_fraction": 0.1, "test_fraction": 0.25, "seed": 1, "split_by": "date"},
      data_dir=str(tmp_path / "tfds"))
  with pytest.raises(ValueError, match=r"12 training, 0 validation and 4 test samples split by "
                                       r"date \(data.val_fraction=0.1, data.test_fraction=0.25\)"):
    builder.download_and_prepare()


@pytest.mark.parametrize("variant, model", [("disr", "mrunet"), ("disr,model=srcnn", "srcnn"),
                                            ("reflectances,climatology", "mrunet")])
def test_guided_smoke_run_evaluates_model_and_baselines(trained, tmp_path, variant, model):
  workdir = trained("modis_lst", f"{variant},smoke")
  written = json.loads((workdir / "eval.json").read_text())
  assert written["step"] == 4 and set(written) == {"step", "validation", "test"}
  # By date (the default): of the 4 dates, the last for the test, the one before it for
  # validation; 2 locations x day and night on each.
  for split in ("validation", "test"):
    report = written[split]
    assert report["model"]["model_name"] == model
    for method in METHODS:
      assert set(FIELDS) <= set(report[method])
    # The consistency projection makes the result aggregate back to its input.
    assert report["model"]["consistency_rmse_k"] < 1e-3 < report["bicubic"][
        "consistency_rmse_k"]
    dataset = report["dataset"]
    assert dataset["samples"] == 16 and dataset["split_by"] == "date"
    assert (dataset["train_samples"], dataset["validation_samples"],
            dataset["test_samples"]) == (8, 4, 4)
    assert report["images"] == dataset[f"{split}_samples"] == 4
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
  with rasterio.open(outputs / (lst_path.stem + ".sr4.tif")) as product:
    assert product.descriptions == ("LST day", "LST night") and product.units == ("K", "K")
    assert product.nodata == 0.0 and product.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
    assert product.tags()["INPUTS"].startswith(str(inputs / lst_path.name))
  assert fine.shape == truth.shape and fine_georef.matches(georef)
  assert np.all(fine[:, :4, :4] == 0.0) and np.all(fine[:, 4:, 4:] > 150.0)
  reaggregated = np.asarray(thermal.aggregate(np.moveaxis(fine, 0, -1), 4))
  np.testing.assert_allclose(reaggregated[1:, 1:], coarse[1:, 1:], atol=1e-2)
  assert (outputs / (lst_path.stem + ".sr4.png")).stat().st_size > 10_000
  # The Python API super-resolves the same tile held in arrays alike.
  model = fusionjax.load(str(workdir))
  composite = lst_predict.guide_for(str(lst_path), str(archive / "ndvi_1km"), max_days=0)[0]
  guide = modis.read_guide_images(composite, config.data.guide, shape=truth.shape[1:])
  climatology = None
  if config.data.climatology:
    climatology = np.stack([lst_climatology.read_guide(str(workdir / "climatology"),
                                                       str(lst_path), band, truth.shape[1:])
                            for band in range(2)])
  pixel_km = georef.coarsened(4).pixel_size * georef.crs_unit_factor() / 1000.0
  arrays = model.predict(np.moveaxis(coarse, -1, 0), pixel_km=pixel_km, guide=guide,
                         climatology=climatology)
  np.testing.assert_allclose(arrays, fine, rtol=1e-5, atol=1e-4)
  with pytest.raises(ValueError, match="predict_arrays: guide has shape"):
    model.predict(np.moveaxis(coarse, -1, 0), pixel_km=pixel_km, guide=guide[..., :0],
                  climatology=climatology)


def test_multiscale_smoke_run_reports_every_scale_step(trained):
  workdir = trained("modis_lst", "multiscale,smoke")
  report = json.loads((workdir / "eval.json").read_text())
  for split in ("validation", "test"):
    study = report[split]["scale_study"]
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
  written = json.loads((workdir / "eval.json").read_text())
  dataset = written["test"]["dataset"]
  assert dataset["lst_files"] == 1343 and dataset["dropped_samples"] == {}
  assert dataset["split_by"] == "date"
  assert dataset["train_samples"] + dataset["validation_samples"] + dataset[
      "test_samples"] == dataset["samples"]
  # By date: the samples of the last dates, round(0.2 x the dates) of them for each part.
  samples = lst_builder.usable_samples(shared_data_dir("modis_lst"), 64)[0]
  parts = lst_builder.split_samples(samples, **lst_builder.split_settings(
      experiment_config("modis_lst", "sisr,smoke").data))
  num_dates = len({_date(s) for s in samples})
  for split in ("validation", "test"):
    assert len({_date(s) for s in getattr(parts, split)}) == round(0.2 * num_dates)
    assert written[split]["images"] == dataset[f"{split}_samples"] == len(getattr(parts, split))
  assert max(map(_date, parts.train)) < min(map(_date, parts.validation))
  assert max(map(_date, parts.validation)) < min(map(_date, parts.test))
  # Bicubic on the real held-out dates, near the published 0.69 K (random split, their
  # interpolation).
  for split in ("validation", "test"):
    assert 0.4 < written[split]["bicubic"]["rmse_k"] < 0.9


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


def test_heldout_places_get_the_climatology_of_their_own_archive(tmp_path):
  # data.heldout_climatology='own_archive': by location, each held-out image's guide is the
  # mean pattern of the other images of its place in its part (its own left out), as
  # predict.climatology_from builds it from a user's archive.
  _archive(tmp_path / "archive", locations=4, dates=6)
  builder = lst_builder.LstTiles(
      source_dir=str(tmp_path / "archive"), tile_size=32, num_shards=2,
      split={"val_fraction": 0.25, "test_fraction": 0.25, "seed": 1, "split_by": "location"},
      data_dir=str(tmp_path / "tfds"), heldout_climatology="own_archive")
  builder.download_and_prepare()
  examples = list(builder.as_dataset(split="test").as_numpy_iterator())
  assert builder.info.metadata["test_samples_with_climatology"] == len(examples) > 0
  for example in examples:
    place = [e for e in examples if e["tile_index"] == example["tile_index"]
             and e["band"] == example["band"]]
    others = [lst_climatology.pattern(e["lst"][..., 0]) for e in place
              if e["day_of_year"] != example["day_of_year"]]
    np.testing.assert_allclose(example["climatology"][..., 0], np.mean(others, axis=0),
                               atol=1e-4)
    np.testing.assert_allclose(example["climatology"][..., 1], len(others) / (len(others) + 1))
