"""Series on a regular grid of dates: nothing invented, rates over gaps, real NDVI read."""
import json

import numpy as np
import pytest

from fusionjax.data.series import procedural as procedural_phenology
from fusionjax.data.series import reader as series
from tests.conftest import shared_data_dir

DAY = np.timedelta64(86400, "s")


def _series(days, values, clear):
  dates = np.datetime64("2020-01-01T10:00:00", "s") + np.asarray(days) * DAY
  values = np.asarray(values, np.float32).reshape(len(days), 1, 1, 1)
  return series.ImageSeries(values=values, clear=np.asarray(clear, bool).reshape(len(days), 1, 1),
                            dates=dates, bands=("NDVI",))


def test_grid_puts_acquisitions_on_nearest_dates_and_never_invents_values():
  # Days 0, 4 (-> step 1), 11 (-> step 2), 12 (cloudy, same step), 30 (-> step 6).
  grid = series.to_grid(_series([0, 4, 11, 12, 30], [0.1, 0.2, 0.3, 0.9, 0.5],
                                [True, True, True, False, True]), step_days=5)
  assert len(grid.dates) == 7 and grid.dates[1] - grid.dates[0] == 5 * DAY
  np.testing.assert_array_equal(grid.observed[0], [1, 1, 1, 0, 0, 0, 1])
  np.testing.assert_allclose(grid.values[0, :, 0], [0.1, 0.2, 0.3, 0, 0, 0, 0.5])


def test_the_clear_acquisition_nearest_in_time_wins_a_shared_grid_date():
  # Day 10 is cloudy: of the clear days 8 and 11 (grid date 2 is day 10), day 11 is nearer.
  grid = series.to_grid(_series([0, 8, 10, 11], [0.1, 0.2, 0.3, 0.4], [1, 1, 0, 1]), 5)
  assert grid.values[0, 2, 0] == pytest.approx(0.4)
  grid = series.to_grid(_series([0, 9, 10], [0.1, 0.2, 0.3], [1, 1, 1]), 5)
  assert grid.values[0, 2, 0] == pytest.approx(0.3)


def test_states_are_first_differences_on_complete_series_and_rates_over_gaps():
  values = np.array([[1.0, 2.0, 4.0, 7.0, 11.0]])[..., None]
  state, defined = series.states(values, np.ones((1, 5), bool))
  np.testing.assert_array_equal(defined[0], [0, 1, 1, 1, 1])
  np.testing.assert_allclose(state[0, 1:, 1], np.diff(values[0, :, 0]))
  observed = np.array([[True, False, False, True, True]])
  state, defined = series.states(values, observed)
  np.testing.assert_array_equal(defined[0], [0, 0, 0, 1, 1])
  assert state[0, 3, 1] == pytest.approx((7.0 - 1.0) / 3)   # over the 3-step gap
  assert state[0, 4, 1] == pytest.approx(4.0)
  assert np.all(state[0, :3] == 0)


def test_procedural_phenology_has_clouds_and_seasons():
  reflectance = procedural_phenology.make_series(size=8, num_years=2, seed=1)
  assert reflectance.values.shape[1:] == (8, 8, 10)
  assert 0.2 < reflectance.clear.mean() < 0.9
  ndvi = procedural_phenology.to_ndvi(reflectance)
  clear_ndvi = ndvi.values[..., 0][ndvi.clear]
  assert clear_ndvi.min() > -0.5 and clear_ndvi.max() < 1.0 and clear_ndvi.std() > 0.1
  assert np.all(ndvi.values[~ndvi.clear] == 0)


def test_real_ndvi_series_reads_and_grids():
  folder = shared_data_dir("sentinel2_ndvi_ts")
  ndvi = series.read_ndvi_series(folder)
  assert ndvi.values.shape == (68, 101, 100, 1)
  grid = series.to_grid(ndvi, step_days=5)
  assert grid.values.shape == (101 * 100, 180, 1)
  assert grid.dates[0] == np.datetime64("2015-07-11T10:00:08")
  # Every clear acquisition lands on its own grid date: none is lost.
  assert grid.observed.sum() == ndvi.clear.sum()


def _write_folder(folder, ndvi, cloud, times):
  folder.mkdir()
  np.save(folder / "NDVI.npy", ndvi)
  np.save(folder / "CLM.npy", cloud)
  np.save(folder / "IS_DATA.npy", np.ones_like(cloud))
  (folder / "timestamps.json").write_text(json.dumps(times))


def test_bad_series_folders_are_refused_by_name(tmp_path):
  ndvi = np.full((3, 2, 2, 1), 0.5, np.float32)
  cloud = np.zeros((3, 2, 2, 1), np.uint8)
  times = ["2020-01-01T10:00:00", "2020-01-06T10:00:00", "2020-01-11T10:00:00"]
  _write_folder(tmp_path / "shape", ndvi, cloud[:2], times)
  with pytest.raises(ValueError, match=r"CLM.npy: shape \(2, 2, 2, 1\), expected"):
    series.read_ndvi_series(str(tmp_path / "shape"))
  _write_folder(tmp_path / "order", ndvi, cloud, times[::-1])
  with pytest.raises(ValueError, match="not strictly increasing"):
    series.read_ndvi_series(str(tmp_path / "order"))
  bad = ndvi.copy()
  bad[1, 0, 0, 0] = 3.0
  _write_folder(tmp_path / "range", bad, cloud, times)
  with pytest.raises(ValueError,
                     match=r"outside \[-1, 1\].*2020-01-06T10:00:00, index \[1, 0, 0, 0\]"):
    series.read_ndvi_series(str(tmp_path / "range"))
  _write_folder(tmp_path / "times", ndvi, cloud, times[:2])
  with pytest.raises(ValueError, match="expected a list of 3 times"):
    series.read_ndvi_series(str(tmp_path / "times"))
  with pytest.raises(FileNotFoundError, match="NDVI.npy: missing"):
    series.read_ndvi_series(str(tmp_path))


def test_sampled_window_states_keep_the_start_and_usable_states_in_step_order():
  import tensorflow as tf
  from fusionjax.data.series import builder as series_builder
  size, count = 12, 4
  mask = np.ones(size, np.float32)
  mask[[3, 5, 6, 7, 8, 9, 10, 11]] = 0                 # usable: 0, 1, 2, 4
  window = {"state": np.arange(size * 2, dtype=np.float32).reshape(size, 2),
            "offset": np.arange(size, dtype=np.int64) * 3, "mask": mask,
            "pixel": np.int64(7)}
  tensors = {key: tf.constant(value) for key, value in window.items()}
  sample = lambda index, seed=0, count=count: {
      key: value.numpy() for key, value in series_builder.sample_states(
          tensors, tf.constant(index, tf.int64), seed, count).items()}
  few = sample(0)
  np.testing.assert_array_equal(few["offset"], [0, 3, 6, 12])     # the usable ones
  np.testing.assert_array_equal(few["mask"], np.ones(count))
  assert few["pixel"] == 7
  dense = {**tensors, "mask": tf.ones(size)}
  drawn = []
  for index in range(20):
    got = {key: value.numpy() for key, value in series_builder.sample_states(
        dense, tf.constant(index, tf.int64), 3, count).items()}
    rows = got["offset"] // 3
    assert rows[0] == 0 and np.all(np.diff(rows) > 0) and len(rows) == count
    np.testing.assert_array_equal(got["state"], window["state"][rows])
    drawn.append(tuple(rows))
  assert len(set(drawn)) > 10                           # drawn per example
  again = series_builder.sample_states(dense, tf.constant(4, tf.int64), 3, count)
  np.testing.assert_array_equal(again["offset"].numpy() // 3, drawn[4])   # and reproducible
  unchanged = sample(0, count=size)
  np.testing.assert_array_equal(unchanged["offset"], window["offset"])
