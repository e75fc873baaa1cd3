"""The per-location LST climatology: built from the training split only, each training image
left out of its own guide, written as GeoTIFFs and read back for prediction."""
import collections

import jax
import ml_collections
import numpy as np
import pytest

from experiments.modis_lst import get_config
from fusionjax.data import geotiff
from fusionjax.data.modis import builder as lst_builder
from fusionjax.data.modis import climatology as lst_climatology
from fusionjax.data.modis import procedural as procedural_lst
from fusionjax.tasks import lst
from tests.conftest import shared_data_dir

TILE = 32
# The split of the archive: random, a quarter of the samples each for validation and test.
DATA = ml_collections.ConfigDict({"val_fraction": 0.25, "test_fraction": 0.25,
                                  "split_seed": 1, "split_by": "random"})


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  root = tmp_path_factory.mktemp("climatology")
  procedural_lst.write_archive(str(root / "archive"), num_locations=3, num_dates=6,
                               tile_size=TILE, seed=2)
  builder = lst_builder.LstTiles(source_dir=str(root / "archive"), tile_size=TILE,
                                 split=lst_builder.split_settings(DATA), num_shards=2,
                                 data_dir=str(root / "tfds"))
  builder.download_and_prepare()
  train = lst_builder.training_samples(str(root / "archive"), tile_size=TILE, data_config=DATA)
  return root, builder, train


def _patterns(samples):
  """{(tile index, band): {day of year: pattern K}} read directly from the files."""
  found = collections.defaultdict(dict)
  for sample in samples:
    lst = geotiff.read_geotiff(sample.lst.path)[0][sample.band]
    found[(sample.lst.index, sample.band)][sample.lst.day_of_year] = lst - lst.mean()
  return found


def test_guides_average_the_training_images_leaving_each_training_image_out(prepared):
  _, builder, train = prepared
  patterns = _patterns(train)
  # The training samples are those of the builder's train split, and no other split's.
  keys = {split: {(int(e["tile_index"]), int(e["day_of_year"]), int(e["band"]))
                  for e in builder.as_dataset(split=split).as_numpy_iterator()}
          for split in ("train", "validation", "test")}
  assert keys["train"] == {(s.lst.index, s.lst.day_of_year, s.band) for s in train}
  assert len(train) == builder.info.metadata["train_samples"]
  assert not keys["train"] & keys["validation"] and not keys["train"] & keys["test"]
  assert not keys["validation"] & keys["test"] and keys["validation"] and keys["test"]
  for split in ("train", "validation", "test"):
    for example in builder.as_dataset(split=split).as_numpy_iterator():
      index = int(example["tile_index"])
      others = [p for day, p in patterns[(index, int(example["band"]))].items()
                if split != "train" or day != example["day_of_year"]]
      expected = np.mean(others, axis=0) if others else np.zeros((TILE, TILE))
      np.testing.assert_allclose(example["climatology"][..., 0], expected, atol=1e-4)
      np.testing.assert_allclose(example["climatology"][..., 1], len(others) / (len(others) + 1))
  for split in ("validation", "test"):
    covered = sum(float(example["climatology"][0, 0, 1]) > 0
                  for example in builder.as_dataset(split=split).as_numpy_iterator())
    assert builder.info.metadata[f"{split}_samples_with_climatology"] == covered


def test_files_hold_the_validation_guides_and_bad_requests_are_named(prepared, tmp_path):
  _, _, train = prepared
  climatology, georefs = lst_climatology.from_samples(train, TILE)
  assert climatology.values == len(georefs) * 2 * TILE * TILE
  paths = climatology.write(str(tmp_path), georefs)
  assert len(paths) == 3
  sample = train[0]
  np.testing.assert_allclose(
      lst_climatology.read_guide(str(tmp_path), sample.lst.path, sample.band, (TILE, TILE)),
      climatology.guide(sample, (TILE, TILE)), atol=1e-5)
  with pytest.raises(ValueError, match="band 3; a climatology holds the day and night"):
    lst_climatology.read_guide(str(tmp_path), sample.lst.path, 2, (TILE, TILE))
  with pytest.raises(ValueError, match=r"32 x 32 pixels, expected 128 x 128"):
    lst_climatology.read_guide(str(tmp_path), sample.lst.path, 0, (128, 128))
  unknown = sample.lst.path.replace(f".{sample.lst.index:04d}.tif", ".0099.tif")
  with pytest.raises(FileNotFoundError, match="no h18v04.0099.climatology.tif for"):
    lst_climatology.read_guide(str(tmp_path), unknown, 0, (TILE, TILE))
  with pytest.raises(ValueError, match="not a MODIS tile name"):
    lst_climatology.read_guide(str(tmp_path), "/data/scene.tif", 0, (TILE, TILE))


def test_network_and_real_climatology_hold_at_most_five_million_numbers():
  directory = shared_data_dir("modis_lst")
  config = get_config("reflectances,climatology")
  train = lst_builder.training_samples(directory, tile_size=64, data_config=config.data)
  table = lst_climatology.from_samples(train, 64)[0].values
  params = jax.eval_shape(lambda: lst.LstObjective(config).init_params(jax.random.key(0)))
  network = sum(x.size for x in jax.tree.leaves(params))
  assert table > 1_000_000 and network + table <= 5_000_000
