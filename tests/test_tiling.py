import numpy as np
import pytest

from fusionjax import tiling
from fusionjax.physics import sampling


def test_tile_starts_cover_the_image_on_the_grid():
  starts = tiling.tile_starts(100, 24, 6, multiple=4)
  assert starts[0] == 0 and starts[-1] + 24 == 100
  assert all(s % 4 == 0 for s in starts)
  assert all(b - a <= 24 for a, b in zip(starts, starts[1:]))


def test_image_smaller_than_tile_is_refused():
  with pytest.raises(ValueError, match="smaller than one 24-pixel tile"):
    tiling.tile_starts(20, 24, 6)


def test_blended_prediction_of_a_local_operator_has_no_seams():
  # A pixel-wise operator must come out identical whatever the tiling.
  rng = np.random.default_rng(0)
  hr = rng.random((60, 84, 2)).astype(np.float32)
  lr = np.asarray(sampling.decimate(np.moveaxis(hr, -1, 0), 3)).transpose(1, 2, 0)
  calls = []

  def predict(lr_batch, hr_batch):
    calls.append(len(hr_batch))
    return 2.0 * hr_batch

  out = tiling.predict_tiled(predict, lr, hr, tile=24, overlap=6, scale=3, batch_size=4)
  np.testing.assert_allclose(out, 2.0 * hr, rtol=1e-6)
  assert set(calls) == {4}


def test_tiles_that_disagree_are_blended_without_steps():
  # Every tile's prediction carries its own offset (as a model's output may differ from tile to
  # tile); the tapered weights spread each change over the overlap instead of a visible step.
  rng = np.random.default_rng(1)
  hr = np.zeros((48, 96, 1), np.float32)
  lr = np.zeros((24, 48, 1), np.float32)
  offsets = []

  def predict(lr_batch, hr_batch):
    offsets.append(rng.normal(size=(len(hr_batch), 1, 1, 1)).astype(np.float32))
    return hr_batch + offsets[-1]

  out = tiling.predict_tiled(predict, lr, hr, tile=32, overlap=12, scale=2, batch_size=1)
  largest_step = max(np.abs(np.diff(out[..., 0], axis=axis)).max() for axis in (0, 1))
  # Averaging the overlaps with flat weights steps by half an offset difference at an overlap's
  # edge (1.10 for these offsets); the tapered weights keep every step below a quarter of it.
  assert largest_step < 0.25 * np.ptp(np.concatenate(offsets))
