"""Satellite image time series: reading them, and putting them on a regular grid of dates.

A series holds the acquisitions as they came (irregular dates, clouds). The Koopman prior works
on a regular grid of `step_days` (5 days, as published): each acquisition goes to its nearest
grid date and the grid dates without a clear acquisition are masked — unobserved, never
interpolated. The per-pixel state is the bands and their rate of change (the published
'first differences' generalised to gaps: the change since the pixel's previous clear grid date
divided by the number of grid steps between them; on a complete series it is the first
difference itself).
"""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

NDVI_FILES = ("NDVI.npy", "CLM.npy", "IS_DATA.npy", "timestamps.json")


@dataclasses.dataclass(frozen=True)
class ImageSeries:
  """Acquisitions of one scene.

  values: (T, H, W, C) float32, e.g. NDVI or scaled reflectance (unitless).
  clear: (T, H, W) bool, True where the pixel holds data and no cloud.
  dates: (T,) datetime64[s], increasing.
  bands: the C band names.
  """
  values: np.ndarray
  clear: np.ndarray
  dates: np.ndarray
  bands: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class GriddedSeries:
  """A series on a regular grid of dates, pixels flattened.

  values: (P, S, C) float32, 0 where unobserved; observed: (P, S) bool; dates: (S,)
  datetime64[s] grid dates; image_shape: (H, W) with P = H W.
  """
  values: np.ndarray
  observed: np.ndarray
  dates: np.ndarray
  image_shape: tuple[int, int]
  bands: tuple[str, ...]


def _load_npy(folder: str, name: str, expected_shape: tuple | None = None) -> np.ndarray:
  path = os.path.join(folder, name)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: missing; a series folder holds {', '.join(NDVI_FILES)}")
  array = np.load(path)
  if expected_shape is not None and array.shape != expected_shape:
    raise ValueError(f"{path}: shape {array.shape}, expected {expected_shape} (the shape of "
                     "NDVI.npy)")
  return array


def read_ndvi_series(folder: str) -> ImageSeries:
  """Reads an eo-learn style NDVI series: NDVI.npy (T, H, W, 1), CLM.npy cloud mask (1 =
  cloud) and IS_DATA.npy (1 = data) of the same shape, timestamps.json (T ISO times)."""
  ndvi = _load_npy(folder, "NDVI.npy").astype(np.float32)
  if ndvi.ndim != 4 or ndvi.shape[-1] != 1:
    raise ValueError(f"{folder}/NDVI.npy: shape {ndvi.shape}, expected (dates, height, "
                     "width, 1)")
  cloud = _load_npy(folder, "CLM.npy", ndvi.shape)[..., 0] != 0
  has_data = _load_npy(folder, "IS_DATA.npy", ndvi.shape)[..., 0] != 0
  times_path = os.path.join(folder, "timestamps.json")
  if not os.path.isfile(times_path):
    raise FileNotFoundError(f"{times_path}: missing; expected a JSON list of the "
                            f"{ndvi.shape[0]} acquisition times")
  with open(times_path) as stream:
    times = json.load(stream)
  if not isinstance(times, list) or len(times) != ndvi.shape[0]:
    raise ValueError(f"{times_path}: expected a list of {ndvi.shape[0]} times (one per date of "
                     f"NDVI.npy), got {len(times) if isinstance(times, list) else type(times)}")
  dates = np.array([np.datetime64(t, "s") for t in times])
  if np.any(np.diff(dates) <= np.timedelta64(0, "s")):
    raise ValueError(f"{times_path}: the times are not strictly increasing")
  clear = has_data & ~cloud
  bad = clear & ~((np.abs(ndvi[..., 0]) <= 1.0) & np.isfinite(ndvi[..., 0]))
  if bad.any():
    date, row, col = (int(i) for i in np.argwhere(bad)[0])
    raise ValueError(f"{folder}/NDVI.npy: {int(bad.sum())} clear values outside [-1, 1] or not "
                     f"finite (first on date {times[date]}, index [{date}, {row}, {col}, 0])")
  return ImageSeries(values=np.where(clear[..., None], ndvi, 0.0), clear=clear, dates=dates,
                     bands=("NDVI",))


def grid_dates(first: np.datetime64, last: np.datetime64, step_days: int) -> np.ndarray:
  """(S,) datetime64[s]: first, first + step, ... up to the step nearest to last."""
  step = np.timedelta64(step_days * 86400, "s")
  count = int(np.round((last - first) / step)) + 1
  return first + step * np.arange(count)


def to_grid(series: ImageSeries, step_days: int) -> GriddedSeries:
  """Puts each acquisition on its nearest grid date; where several share one, the clear one
  nearest in time wins per pixel. Grid dates with no clear acquisition are unobserved."""
  dates = grid_dates(series.dates[0], series.dates[-1], step_days)
  step = np.timedelta64(step_days * 86400, "s")
  position = (series.dates - series.dates[0]) / step
  nearest = np.round(position).astype(int)
  distance = np.abs(position - nearest)
  t, h, w, c = series.values.shape
  values = np.zeros((len(dates), h * w, c), np.float32)
  observed = np.zeros((len(dates), h * w), bool)
  for index in np.argsort(distance, kind="stable")[::-1]:   # nearest acquisitions written last
    clear = series.clear[index].reshape(-1)
    cell = nearest[index]
    values[cell, clear] = series.values[index].reshape(-1, c)[clear]
    observed[cell, clear] = True
  return GriddedSeries(values=values.transpose(1, 0, 2), observed=observed.T, dates=dates,
                       image_shape=(h, w), bands=series.bands)


def states(values: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """The per-pixel state: bands and their rate of change per grid step.

  Args:
    values: (P, S, C) gridded values; observed: (P, S) bool.
  Returns:
    state (P, S, 2C) float32 (0 where undefined) and defined (P, S) bool: observed with an
    earlier observed grid date (the rate is the change since it / the steps between them).
  """
  num_steps = values.shape[1]
  steps = np.broadcast_to(np.arange(num_steps), observed.shape)
  last_seen = np.maximum.accumulate(np.where(observed, steps, -1), axis=1)
  previous = np.concatenate([np.full((len(values), 1), -1), last_seen[:, :-1]], axis=1)
  defined = observed & (previous >= 0)
  previous_values = np.take_along_axis(values, np.maximum(previous, 0)[..., None], axis=1)
  gap = np.maximum(steps - previous, 1)[..., None]
  rate = np.where(defined[..., None], (values - previous_values) / gap, 0.0)
  state = np.concatenate([np.where(defined[..., None], values, 0.0), rate], axis=-1)
  return state.astype(np.float32), defined
