"""MODIS LST tiles: names, guide pairing, GeoTIFF reading/writing and bad input."""
import os

import numpy as np
import pytest
import rasterio

from fusionjax.data import geotiff
from fusionjax.data.modis import reader as modis
from fusionjax.data.modis import procedural as procedural_lst
from tests.conftest import shared_data_dir


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("lst"))
  procedural_lst.write_archive(directory, num_locations=2, num_dates=3, tile_size=32, seed=1)
  return directory


def test_procedural_archive_is_read_like_the_real_one(archive):
  samples, counts = modis.find_samples(archive)
  assert counts == {"lst_files": 6, "ndvi_files": 6, "lst_files_without_composite": 0}
  assert len(samples) == 12 and {s.band for s in samples} == {0, 1}
  for sample in samples:
    lst, ndvi, reflectances = modis.read_sample(sample, tile_size=32)
    assert lst.shape == ndvi.shape == (32, 32) and reflectances.shape == (3, 32, 32)
    assert modis.invalid_reason(lst) is None
    assert 0.0 < ndvi.min() and ndvi.max() < 1.0
    assert 0.0 < reflectances.min() and reflectances.max() < 0.6
  day = [modis.read_sample(s, 32)[0] for s in samples if s.band == 0]
  night = [modis.read_sample(s, 32)[0] for s in samples if s.band == 1]
  assert np.mean(day) > np.mean(night)


def test_composite_is_the_one_whose_period_contains_the_date():
  composites = {("h18v04", 7, 2020, first): f"c{first}" for first in (1, 17, 33)}
  lst = lambda day: modis.ModisFile("x", "MOD11A1", 2020, day, "h18v04", 7)
  assert modis.composite_for(composites, lst(1)) == "c1"
  assert modis.composite_for(composites, lst(16)) == "c1"
  assert modis.composite_for(composites, lst(17)) == "c17"
  assert modis.composite_for(composites, lst(48)) == "c33"
  assert modis.composite_for(composites, lst(49)) is None


def test_refined_georeference_keeps_origin_and_divides_pixel_size(tmp_path):
  georef = geotiff.GeoReference(procedural_lst._SINUSOIDAL, (1000.0, 0.0, 5e5, 0.0, -1000.0, 6e6))
  path = str(tmp_path / "fine.tif")
  geotiff.write_geotiff(path, np.ones((1, 8, 8)), georef.refined(4), units="K")
  _, read_back = geotiff.read_geotiff(path, bands=1, shape=(8, 8))
  assert read_back.transform == (250.0, 0.0, 5e5, 0.0, -250.0, 6e6)
  assert read_back.matches(georef.refined(4)) and not read_back.matches(georef)
  assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def test_bad_tiles_are_named(archive, tmp_path):
  sample = modis.find_samples(archive)[0][0]
  with pytest.raises(ValueError, match=r"MOD11A1.*32 x 32 pixels, expected 64 x 64"):
    modis.read_sample(sample, tile_size=64)
  one_band = str(tmp_path / "MOD11A1.A2020001.h18v04.061.x.hdf.0001.tif")
  _, georef = geotiff.read_geotiff(sample.lst.path)
  geotiff.write_geotiff(one_band, np.full((1, 32, 32), 290.0), georef)
  with pytest.raises(ValueError, match=r"0001.tif: 1 band\(s\), expected 2"):
    geotiff.read_geotiff(one_band, bands=2)
  no_crs = str(tmp_path / "no_crs.tif")
  with rasterio.open(no_crs, "w", driver="GTiff", width=4, height=4, count=1,
                     dtype="float32") as sink:
    sink.write(np.ones((1, 4, 4), np.float32))
  with pytest.raises(ValueError, match="no_crs.tif: no coordinate reference system"):
    geotiff.read_geotiff(no_crs)
  with pytest.raises(ValueError, match="not a MODIS tile name"):
    modis.parse_name("/data/lst_2020_001.tif")
  with pytest.raises(FileNotFoundError, match="no LST GeoTIFFs"):
    modis.find_samples(str(tmp_path))


def test_composite_counts_become_reflectances_and_fill_reads_as_zero(archive, tmp_path):
  path = modis.find_samples(archive)[0][0].ndvi_path
  stored, georef = geotiff.read_geotiff(path)
  stored[:, 0, 0] = modis.STORED_FILL_VALUE
  stored[:, 1, 1] = [20.0, 100.0, 40.0]             # red 0.1, NIR 0.5, MIR 0.2
  copy = str(tmp_path / os.path.basename(path))
  geotiff.write_geotiff(copy, stored, georef)
  reflectances, _ = modis.read_reflectances(copy)
  np.testing.assert_allclose(reflectances[:, 1, 1], [0.1, 0.5, 0.2], rtol=1e-6)
  assert np.all(reflectances[:, 0, 0] == 0.0)
  guide = modis.read_guide_images(copy, "reflectances", shape=(32, 32))
  assert guide.shape == (32, 32, 4)
  np.testing.assert_allclose(guide[1, 1], [0.4 / 0.6, 0.1, 0.5, 0.2], rtol=1e-6)
  assert guide[0, 0, 0] == 0.0
  assert modis.read_guide_images(copy, "ndvi", shape=(32, 32)).shape == (32, 32, 1)
  stored[0, 2, 2] = 250.0                           # a reflectance of 1.25
  geotiff.write_geotiff(copy, stored, georef)
  with pytest.raises(ValueError, match="reflectance above 1"):
    modis.read_reflectances(copy)
  ndvi_only = str(tmp_path / "ndvi_only.tif")
  geotiff.write_geotiff(ndvi_only, np.full((1, 32, 32), 0.5), georef)
  with pytest.raises(ValueError, match=r"ndvi_only.tif: 1 band\(s\), expected 3"):
    modis.read_guide_images(ndvi_only, "reflectances", shape=(32, 32))


def test_invalid_temperatures_are_reported():
  field = np.full((4, 4), 290.0, np.float32)
  assert modis.invalid_reason(field) is None
  field[0, 0] = 0.0
  assert modis.invalid_reason(field) == "1 no-data (0) pixels"
  field[0, 0], field[1, 1] = 290.0, 420.0
  assert modis.invalid_reason(field) == "1 values outside 150-400 K"


def test_real_modis_tiles_pair_with_their_composites():
  directory = shared_data_dir("modis_lst")
  samples, counts = modis.find_samples(directory)
  assert counts["lst_files"] == 1343 and counts["ndvi_files"] == 884
  assert len(samples) == 2 * (counts["lst_files"] - counts["lst_files_without_composite"])
  for sample in samples[::500]:
    composite = modis.parse_name(sample.ndvi_path)
    assert composite.index == sample.lst.index
    assert 0 <= sample.lst.day_of_year - composite.day_of_year < modis.COMPOSITE_DAYS
    lst, ndvi, reflectances = modis.read_sample(sample, tile_size=64)
    assert modis.invalid_reason(lst) is None
    assert -1.0 <= ndvi.min() and ndvi.max() <= 1.0
    assert -0.1 < reflectances.min() and reflectances.max() <= 1.0
