"""docs/extending.md's worked examples, run as a user would: a model, and a data source with
its task, each from a module outside the package, through the unchanged trainer."""
import json
import os

import numpy as np
import pytest
import rasterio

from fusionjax import train, variants
from fusionjax.data import geotiff, random_fields
from tests.conftest import REPO

EXAMPLES = os.path.join(REPO, "docs", "examples")


@pytest.fixture(autouse=True)
def examples_on_path(monkeypatch):
  monkeypatch.syspath_prepend(EXAMPLES)


def _experiment(path: str, arg: str):
  return variants.sibling(os.path.join(REPO, path), os.path.splitext(os.path.basename(path))[0]
                          ).get_config(arg)


def test_a_model_from_outside_the_package_trains_and_evaluates_in_the_sentinel2_experiment(
    tmp_path):
  config = _experiment("experiments/sentinel2.py", "smoke,model=tiny_sharpener:TinySharpener")
  assert config.model.to_dict() == {"name": "tiny_sharpener:TinySharpener", "features": 16,
                                    "dtype": "float32"}
  report = train.run(config, str(tmp_path))
  assert set(report) == {"step", "validation", "test"} and report["step"] == 6
  written = json.loads((tmp_path / "eval.json").read_text())
  for split in ("validation", "test"):
    assert report[split]["model"]["model_name"] == "tiny_sharpener:TinySharpener"
    assert np.isfinite(report[split]["model"]["rmse"])
    assert written[split]["model"]["rmse"] == report[split]["model"]["rmse"]
  assert (tmp_path / "products" / "fused_strip_20m.tif").exists()
  # Registered by name once imported, as the decorator says.
  from fusionjax import models
  assert models.model_class("tiny_sharpener").__name__ == "TinySharpener"


def _write_pair(folder, size=96, factor=2, seed=0):
  """A coarse 3-band image that is a known mix of a fine 4-band image, both georeferenced."""
  rng = np.random.default_rng(seed)
  fine = np.stack([random_fields.fractal_field(rng, size, 2.5) for _ in range(4)])
  mix = rng.random((3, 4))
  coarse_fine = np.einsum("cm,mhw->chw", mix, fine)
  coarse = coarse_fine.reshape(3, size // factor, factor, size // factor, factor).mean((2, 4))
  crs = rasterio.crs.CRS.from_epsg(32633).to_wkt()
  os.makedirs(folder)
  geotiff.write_geotiff(os.path.join(folder, "fine.tif"), fine,
                        geotiff.GeoReference(crs, (10.0, 0.0, 5e5, 0.0, -10.0, 6e6)))
  geotiff.write_geotiff(os.path.join(folder, "coarse.tif"), coarse,
                        geotiff.GeoReference(crs, (20.0, 0.0, 5e5, 0.0, -20.0, 6e6)))


def test_a_data_source_and_its_task_from_outside_the_package_train_and_predict(tmp_path):
  # 96 coarse columns: room for the training part, a validation and a test strip, and the
  # one-tile gaps before them (data.split_gap=-1) at the smoke config's 16-pixel tiles.
  _write_pair(tmp_path / "pair", size=192)
  config = _experiment("docs/examples/geotiff_pair_experiment.py", "smoke,model=dsen2")
  config.data.dir = str(tmp_path / "pair")
  report = train.run(config, str(tmp_path / "run"))
  assert set(report) == {"step", "validation", "test"}
  for split in ("validation", "test"):
    model = report[split]["model"]
    assert model["model_name"] == "dsen2" and np.isfinite(model["rmse"])
    assert {"bicubic", "gsa", "mtf_glp"} <= set(report[split])
  # 96 columns, tiles of 16: training [0, 20), a gap, validation [36, 60) (0.25), a gap,
  # test [76, 96) (0.2).
  for split, columns in (("validation", [36, 60]), ("test", [76, 96])):
    assert report[split]["region"]["columns"] == columns
    assert report[split]["region"]["training_columns"] == [0, 20]
  # The products are the test strip's.
  with rasterio.open(tmp_path / "run" / "products" / "fused_test_strip.tif") as product:
    strip = product.read()     # on a bare pixel grid
  assert strip.shape == (3, 96, 20) and np.all(np.isfinite(strip))
  config.predict.input, config.predict.output = str(tmp_path / "pair"), str(tmp_path / "out")
  train.run(config, str(tmp_path / "run"), mode="predict")
  fused, georef = geotiff.read_geotiff(str(tmp_path / "out" / "fused.tif"))
  assert fused.shape == (3, 192, 192) and np.all(np.isfinite(fused))
  assert georef.transform[:3] == (10.0, 0.0, 5e5)
  # A bad pair is refused naming the file: listed as skipped with its reason, or (strict) raised.
  os.remove(tmp_path / "pair" / "fine.tif")
  geotiff.write_geotiff(str(tmp_path / "pair" / "fine.tif"), np.zeros((4, 90, 90)), georef)
  report = train.run(config, str(tmp_path / "run"), mode="predict")
  assert not report["done"] and "fine.tif is 90 x 90 pixels" in report["skipped"][0]["reason"]
  config.predict.strict = True
  with pytest.raises(ValueError, match="fine.tif is 90 x 90 pixels, expected 2 x the 96 x 96"):
    train.run(config, str(tmp_path / "run"), mode="predict")
