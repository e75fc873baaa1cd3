"""LST super-resolution: dataset splits and checks, the command line end to end, and models
applied to new data (new places and dates, 1 km -> 250 m). One file, so that its smoke runs
are trained once (conftest.trained)."""
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rasterio
import tensorflow as tf

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


# Applied to new data: a missing composite replaced by the nearest, places never seen
# (climatology dropout in training, no climatology or the user's own at prediction), and the
# 1 km -> 250 m application with a MOD09GQ-style red/NIR guide.

TILE = 32


def _dated_archive(directory, locations=1, dates=4, seed=5):
  """A procedural archive (days 1, 82, 163, 244 for 4 dates; composites from days 1, 81, 161,
  241): {(tile index, day of year): LST path}, {(tile index, first day): composite path}."""
  procedural_lst.write_archive(str(directory), num_locations=locations, num_dates=dates,
                               tile_size=TILE, seed=seed)
  found = {}
  for folder in ("lst_1km", "ndvi_1km"):
    parsed = [modis.parse_name(str(p)) for p in (directory / folder).glob("*.tif")]
    found[folder] = {(f.index, f.day_of_year): f.path for f in parsed}
  return found["lst_1km"], found["ndvi_1km"]


def _renamed(path, folder, *, day=None, index=None):
  """`path` copied into `folder` under its MODIS name with another day of year or index."""
  parsed = modis.parse_name(path)
  name = os.path.basename(path)
  if day is not None:
    name = name.replace(f".A{parsed.year}{parsed.day_of_year:03d}.", f".A{parsed.year}{day:03d}.")
  if index is not None:
    name = name.replace(f".{parsed.index:04d}.tif", f".{index:04d}.tif")
  os.makedirs(folder, exist_ok=True)
  return shutil.copy(path, os.path.join(folder, name))


def _coarse_input(lst_path, folder, *, index=None):
  """The 1 km LST file aggregated to 4 km (Stefan-Boltzmann) in `folder`, named as the 1 km
  file (with tile index `index` if given)."""
  truth, georef = geotiff.read_geotiff(lst_path)
  coarse = np.moveaxis(np.asarray(thermal.aggregate(np.moveaxis(truth, 0, -1), 4)), -1, 0)
  path = _renamed(lst_path, folder, index=index)
  geotiff.write_geotiff(path, coarse, georef.coarsened(4))
  return path


def _predict(workdir, arg, **settings):
  config = experiment_config("modis_lst", arg, **{f"predict.{k}": str(v)
                                                   for k, v in settings.items()})
  return train.run(config, str(workdir), mode="predict")


def test_nearest_guide_across_the_year_and_beyond_the_window(tmp_path):
  guides = tmp_path / "guides"
  os.makedirs(guides)
  for name in ("MOD13A2.A2020337.h18v04.061.x.hdf.0015.tif",   # 2020-12-02 .. 12-17
               "MOD13A2.A2021017.h18v04.061.x.hdf.0015.tif",   # from 2021-01-17
               "MOD13A2.A2021001.h18v04.061.x.hdf.0016.tif"):  # another place
    (guides / name).touch()
  lst_path = str(tmp_path / "MOD11A1.A2021001.h18v04.061.x.hdf.0015.tif")
  guide = lambda name: str(guides / name)
  assert lst_predict.guide_for(lst_path, str(guides), 16) == (
      guide("MOD13A2.A2020337.h18v04.061.x.hdf.0015.tif"), 15)
  with pytest.raises(FileNotFoundError, match=r"predict.guide='.*guides': no guide for "
                     r"MOD11A1.A2021001.*0015.tif within predict.guide_max_days=14 days of its "
                     r"date \(the nearest, MOD13A2.A2020337.*, is 15 days away\)"):
    lst_predict.guide_for(lst_path, str(guides), 14)
  # The composite of late December (2020-12-18 .. 12-31) is 1 day away; a daily MOD09GQ of
  # the day itself, 0.
  (guides / "MOD13A2.A2020353.h18v04.061.x.hdf.0015.tif").touch()
  assert lst_predict.guide_for(lst_path, str(guides), 16) == (
      guide("MOD13A2.A2020353.h18v04.061.x.hdf.0015.tif"), 1)
  (guides / "MOD09GQ.A2021001.h18v04.061.x.hdf.0015.tif").touch()
  assert lst_predict.guide_for(lst_path, str(guides), 0) == (
      guide("MOD09GQ.A2021001.h18v04.061.x.hdf.0015.tif"), 0)
  with pytest.raises(FileNotFoundError, match=r"\(none of tile h18v04 index 0017\)"):
    lst_predict.guide_for(lst_path.replace("0015", "0017"), str(guides), 16)


def test_a_missing_composite_is_replaced_by_the_nearest_or_the_input_skipped(trained, tmp_path):
  workdir = trained("modis_lst", "disr,smoke")
  lst_files, composites = _dated_archive(tmp_path / "archive")
  guides = tmp_path / "guides"
  for (index, first_day), path in composites.items():
    if first_day not in (81, 161):     # the composites of days 82 and 163 are missing
      _renamed(path, guides)
  _renamed(composites[(0, 81)], guides, day=97)   # 97-112: 15 days after day 82
  inputs = tmp_path / "inputs"
  near, far = (_coarse_input(lst_files[(0, day)], inputs) for day in (82, 163))
  report = _predict(workdir, "disr,smoke", input=inputs, guide=guides,
                    output=tmp_path / "out")
  done, = report["done"]
  assert done["input"] == near and done["guide_days"] == 15
  assert os.path.basename(done["guide"]).startswith("MOD13A2.A2020097.")
  assert all(os.path.isfile(path) for path in done["outputs"])
  skipped, = report["skipped"]
  assert skipped["input"] == far
  # Day 163: the nearest is the copy of days 97-112 (51 days), the next 241-256 (78 days).
  assert "no guide for " + os.path.basename(far) in skipped["reason"]
  assert "MOD13A2.A2020097" in skipped["reason"] and "51 days away" in skipped["reason"]
  assert str(guides) in skipped["reason"]
  with pytest.raises(ValueError, match="predict.climatology_from='elsewhere': this model has no "
                                       "climatology guide"):
    train.validate_config(experiment_config("modis_lst", "disr,smoke", **{
        "predict.input": str(inputs), "predict.output": str(tmp_path / "out"),
        "predict.guide": str(guides), "predict.climatology_from": "elsewhere"}), "predict")


def test_climatology_dropout_zeroes_the_expected_fraction_deterministically():
  ones = {"climatology": tf.ones((2, 2, 2)), "lst": tf.ones((2, 2, 1))}

  def dropped(seed, rate=0.25):
    examples = tf.data.Dataset.range(4000).map(
        lambda index: lst_climatology.drop(ones, index, seed, rate))
    return np.array([(e["climatology"].max(), e["lst"].min())
                     for e in examples.as_numpy_iterator()])
  first = dropped(seed=0)
  assert set(first[:, 0]) == {0.0, 1.0} and np.all(first[:, 1] == 1.0)
  assert 0.23 < np.mean(first[:, 0] == 0.0) < 0.27
  np.testing.assert_array_equal(dropped(seed=0), first)
  assert np.mean(dropped(seed=1)[:, 0] != first[:, 0]) > 0.2
  assert np.all(dropped(seed=0, rate=0.0)[:, 0] == 1.0)


def test_dropout_in_training_batches_is_a_function_of_the_step(trained):
  arg = "reflectances,climatology,smoke"
  workdir = str(trained("modis_lst", arg))
  config = experiment_config("modis_lst", arg)
  assert config.data.climatology_dropout == 0.25
  task = lst.LstTask(config, workdir)
  plain = lst.LstTask(experiment_config("modis_lst", arg, **{"data.climatology_dropout": 0.0}),
                      workdir)

  def batches(source, start_step, count):
    iterator = source.train_batches(start_step=start_step, global_batch_size=4)
    return [next(iterator) for _ in range(count)]
  run, without = batches(task, 0, 40), batches(plain, 0, 40)
  zeroed = 0
  for batch, reference in zip(run, without):
    np.testing.assert_array_equal(batch["lst"], reference["lst"])
    for climatology, original in zip(batch["climatology"], reference["climatology"]):
      assert np.all(original[..., 1] > 0)   # every training example has a climatology
      if np.all(climatology == 0):
        zeroed += 1
      else:
        np.testing.assert_array_equal(climatology, original)
  assert 0.12 < zeroed / 160 < 0.38
  resumed = batches(task, 25, 5)   # a resumed run: the batches of steps 26-30 again
  for batch, reference in zip(resumed, run[25:30]):
    np.testing.assert_array_equal(batch["climatology"], reference["climatology"])


def test_places_never_seen_and_the_users_own_climatology(trained, tmp_path):
  arg = "reflectances,climatology,smoke"
  workdir = trained("modis_lst", arg)
  archive = next((workdir / "data").glob("lst_procedural-*"))
  lst_path = str(min((archive / "lst_1km").glob("*.tif")))
  parsed = modis.parse_name(lst_path)
  composite = lst_predict.guide_for(lst_path, str(archive / "ndvi_1km"), 0)[0]
  guides, inputs = tmp_path / "guides", tmp_path / "inputs"
  for index in (parsed.index, 99):
    _renamed(composite, guides, index=index)
  seen = _coarse_input(lst_path, inputs)
  unseen = _coarse_input(lst_path, inputs, index=99)
  # In the same folder: a later date of the seen place, whose nearest composite (that of the
  # first date) is beyond predict.guide_max_days, and a corrupt file.
  later = sorted(str(p) for p in (archive / "lst_1km").glob(f"*.{parsed.index:04d}.tif"))[1]
  no_guide = _coarse_input(later, inputs)
  corrupt = _renamed(lst_path, inputs, day=parsed.day_of_year + 4)
  with open(corrupt, "wb") as sink:
    sink.write(b"II*\x00 not a GeoTIFF")
  report = _predict(workdir, arg, input=inputs, guide=guides, output=tmp_path / "out")
  details = {entry["input"]: entry for entry in report["done"]}
  assert set(details) == {seen, unseen}
  assert details[seen]["climatology"] == "used"
  assert details[unseen]["climatology"] == "none for this location"
  assert os.path.isfile(details[unseen]["outputs"][0])
  reasons = {entry["input"]: entry["reason"] for entry in report["skipped"]}
  assert set(reasons) == {no_guide, corrupt}
  assert "no guide for " + os.path.basename(no_guide) in reasons[no_guide]
  assert os.path.basename(corrupt) in reasons[corrupt]
  written_report = (tmp_path / "out" / "predict_report.json").read_text()
  assert os.path.basename(corrupt) in written_report and os.path.basename(unseen) in \
      written_report
  for path in (no_guide, corrupt):
    os.remove(path)

  # The user's own 1 km archive of place 99: three other dates and the input's own (left out).
  own = tmp_path / "own"
  others = sorted(str(p) for p in (archive / "lst_1km").glob(f"*.{parsed.index:04d}.tif")
                  if str(p) != lst_path)
  for path in others + [lst_path]:
    _renamed(path, own, index=99)
  report = _predict(workdir, arg, input=inputs, guide=guides, output=tmp_path / "own_out",
                    climatology_from=own)
  details = {entry["input"]: entry for entry in report["done"]}
  assert details[unseen]["climatology"] == "used"
  assert details[seen]["climatology"] == "none for this location"   # not in the archive
  written, _ = geotiff.read_geotiff(str(tmp_path / "own_out" / "climatology" /
                                        "h18v04.0099.climatology.tif"))
  for band in range(2):
    patterns = [lst_climatology.pattern(geotiff.read_geotiff(p)[0][band]) for p in others]
    np.testing.assert_allclose(written[band], np.mean(patterns, axis=0), atol=1e-4)
    np.testing.assert_allclose(written[2 + band], len(others) / (len(others) + 1))


def test_1km_to_250m_with_a_mod09gq_red_nir_guide(trained, tmp_path):
  workdir = trained("modis_lst", "disr,smoke")
  lst_files, composites = _dated_archive(tmp_path / "archive", dates=2)    # days 1 and 244
  lst_path = lst_files[(0, 244)]
  truth, georef = geotiff.read_geotiff(lst_path)
  reflectance = modis.read_reflectances(composites[(0, 241)])[0][:2]
  rng = np.random.default_rng(0)
  counts = np.repeat(np.repeat(reflectance, 4, axis=1), 4, axis=2) * 1e4 + rng.normal(
      0.0, 30.0, (2, 4 * TILE, 4 * TILE))
  counts = np.round(counts).astype(np.int16)
  counts[:, 10:14, 20:30] = modis.SURFACE_REFLECTANCE_FILL
  counts[1, 50, 50] = modis.SURFACE_REFLECTANCE_FILL      # NIR alone missing
  guides = tmp_path / "guides"
  os.makedirs(guides)
  fine_georef = georef.refined(4)
  for day, data in ((244, counts), (243, counts[::-1])):   # the day itself and the day before
    name = f"MOD09GQ.A2020{day:03d}.h18v04.061.procedural.hdf.0000.tif"
    with rasterio.open(guides / name, "w", driver="GTiff", dtype="int16", count=2,
                       height=4 * TILE, width=4 * TILE, nodata=modis.SURFACE_REFLECTANCE_FILL,
                       crs=rasterio.crs.CRS.from_wkt(fine_georef.crs_wkt),
                       transform=rasterio.transform.Affine(*fine_georef.transform)) as sink:
      sink.write(data)
  ndvi = modis.read_guide(str(guides / name), shape=(4 * TILE, 4 * TILE))[0]
  assert np.all(ndvi[10:14, 20:30] == 0.0) and ndvi[50, 50] == 0.0 and np.all(np.abs(ndvi) <= 1)

  report = _predict(workdir, "disr,smoke", input=lst_path, guide=guides, output=tmp_path / "out")
  done, = report["done"]
  assert os.path.basename(done["guide"]).startswith("MOD09GQ.A2020244.")
  assert "guide_days" not in done
  product = done["outputs"][0]
  assert product.endswith(".sr4.tif")
  fine, written_georef = geotiff.read_geotiff(product)
  assert fine.shape == (2, 4 * TILE, 4 * TILE) and np.all(fine > 150.0)
  assert written_georef.matches(fine_georef)
  assert written_georef.pixel_size == pytest.approx(procedural_lst.PIXEL_M / 4)
  rmse = done["consistency_rmse_k"]
  assert set(rmse) == {"LST day", "LST night"} and max(rmse.values()) < 1e-2
  with rasterio.open(product) as written:
    assert written.descriptions == ("LST day", "LST night")
    assert [float(x) for x in written.tags()["CONSISTENCY_RMSE_K"].split()] == pytest.approx(
        list(rmse.values()), abs=1e-3)
  reaggregated = np.moveaxis(np.asarray(thermal.aggregate(np.moveaxis(fine, 0, -1), 4)), -1, 0)
  np.testing.assert_allclose(reaggregated, truth, atol=1e-2)
