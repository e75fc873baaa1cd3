"""The Koopman experiment's scene and what its evaluation holds back from training.

The series is the real NDVI series of data.dir or the procedural phenology
(fusionjax.data.series.procedural); on its regular grid, a seeded hidden_fraction of the
observations is held out for gap-filling and every date from the forecast cut-off on for
forecasting; the image's rows are split into blocks (train, then validation: val_fraction of
the rows, then test: test_fraction), so that no pixel of the validation or test part (nor
any of its dates) is seen in training.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from fusionjax.data import splits
from fusionjax.data.series import procedural as procedural_phenology
from fusionjax.data.series import reader as series

QUANTITIES = ("reflectance", "ndvi")


def load_series(data_config) -> series.ImageSeries:
  """The real series of data.dir (an NDVI series folder) or the procedural phenology of
  data.quantity (settings checked by fusionjax.tasks.koopman.KoopmanTask.validate)."""
  if data_config.dir:
    return series.read_ndvi_series(data_config.dir)
  procedural = procedural_phenology.make_series(
      size=data_config.procedural_size, num_years=data_config.procedural_years,
      seed=data_config.split_seed)
  if data_config.quantity == "ndvi":
    return procedural_phenology.to_ndvi(procedural)
  return procedural


@dataclasses.dataclass(frozen=True)
class Experiment:
  """The gridded scene and what evaluation holds back from training.

  hidden: (P, S) bool, observations held out for gap-filling; cutoff: the first forecast
  step; pixel_split: (P,) str, the part of each pixel: 'train', 'validation' or 'test'.
  """
  grid: series.GriddedSeries
  hidden: np.ndarray
  cutoff: int
  pixel_split: np.ndarray

  @classmethod
  def make(cls, grid: series.GriddedSeries, data_config, seed: int) -> Experiment:
    """The held-out observations and pixels of `grid`, drawn from `seed`, by data_config's
    hidden_fraction and forecast_fraction, and the pixels' parts (`row_blocks`)."""
    rng = np.random.default_rng(seed)
    observed = np.flatnonzero(grid.observed)
    hidden = np.zeros(grid.observed.size, bool)
    hidden[rng.choice(observed, int(round(data_config.hidden_fraction * len(observed))),
                      replace=False)] = True
    num_steps = grid.observed.shape[1]
    cutoff = int(round((1.0 - data_config.forecast_fraction) * num_steps))
    if not 2 <= cutoff < num_steps:
      raise ValueError(f"data.forecast_fraction={data_config.forecast_fraction}: leaves "
                       f"{cutoff} of {num_steps} grid steps before the forecast; expected at "
                       "least 2 and at least one forecast step")
    return cls(grid=grid, hidden=hidden.reshape(grid.observed.shape), cutoff=cutoff,
               pixel_split=row_blocks(grid.image_shape, data_config.val_fraction,
                                      data_config.test_fraction))

  def part(self, split: str) -> Experiment:
    """The experiment restricted to the pixels of `split` (their rows of the image)."""
    chosen = self.pixel_split == split
    width = self.grid.image_shape[1]
    grid = dataclasses.replace(self.grid, values=self.grid.values[chosen],
                               observed=self.grid.observed[chosen],
                               image_shape=(int(chosen.sum()) // width, width))
    return Experiment(grid=grid, hidden=self.hidden[chosen], cutoff=self.cutoff,
                      pixel_split=self.pixel_split[chosen])

  def usable(self, *, before_cutoff: bool) -> np.ndarray:
    """(P, S) the observations an assimilation (or training) may use."""
    usable = self.grid.observed & ~self.hidden
    if before_cutoff:
      usable[:, self.cutoff:] = False
    return usable


def row_blocks(image_shape: tuple[int, int], val_fraction: float,
               test_fraction: float) -> np.ndarray:
  """(H W,) the part of each pixel of an (H, W) image, by blocks of whole rows: the first
  rows 'train', then round(val_fraction H) rows (at least one) 'validation', then
  round(test_fraction H) rows (at least one where test_fraction > 0) 'test'."""
  splits.check_fractions(val_fraction, test_fraction)
  height, width = image_shape
  rows = lambda fraction: max(1, int(round(fraction * height))) if fraction > 0 else 0  # noqa: E731
  num_validation, num_test = rows(val_fraction), rows(test_fraction)
  if not num_validation or height - num_validation - num_test < 1:
    raise ValueError(f"data.val_fraction={val_fraction}, data.test_fraction={test_fraction}: "
                     f"an image of {height} rows needs a validation row and a training row")
  parts = np.array(["train"] * (height - num_validation - num_test) + ["validation"]
                   * num_validation + ["test"] * num_test)
  return np.repeat(parts, width)
