"""LST models applied to new data: a missing composite replaced by the nearest, places never
seen (climatology dropout in training, no climatology or the user's own at prediction), and
the 1 km -> 250 m application with a MOD09GQ-style red/NIR guide."""
import os
import shutil

import numpy as np
import pytest
import rasterio
import tensorflow as tf

from fusionjax import train
from fusionjax.data import geotiff
from fusionjax.data.modis import climatology as lst_climatology
from fusionjax.data.modis import procedural as procedural_lst
from fusionjax.data.modis import reader as modis
from fusionjax.physics import thermal
from fusionjax.tasks import lst, lst_predict
from tests.conftest import experiment_config

TILE = 32


def _archive(directory, locations=1, dates=4, seed=5):
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
  lst_files, composites = _archive(tmp_path / "archive")
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
  lst_files, composites = _archive(tmp_path / "archive", dates=2)    # days 1 and 244
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
