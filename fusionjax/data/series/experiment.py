"""The Koopman experiment's scene and what its evaluation holds back from training.

The series is the real NDVI series of data.dir or the procedural phenology
(fusionjax.data.series.procedural); on its regular grid, a seeded hidden_fraction of the
observations is held out for gap-filling, every date from the forecast cut-off on for
forecasting, and a validation_pixel_fraction of the pixels gives the validation windows.
"""
from __future__ import annotations

import dataclasses

import numpy as np

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
  step; validation_pixel: (P,) bool, pixels whose windows form the validation split.
  """
  grid: series.GriddedSeries
  hidden: np.ndarray
  cutoff: int
  validation_pixel: np.ndarray

  @classmethod
  def make(cls, grid: series.GriddedSeries, data_config, seed: int) -> Experiment:
    """The held-out observations and pixels of `grid`, drawn from `seed`, by data_config's
    hidden_fraction, forecast_fraction and validation_pixel_fraction."""
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
    validation_pixel = rng.random(len(grid.values)) < data_config.validation_pixel_fraction
    return cls(grid=grid, hidden=hidden.reshape(grid.observed.shape), cutoff=cutoff,
               validation_pixel=validation_pixel)

  def usable(self, *, before_cutoff: bool) -> np.ndarray:
    """(P, S) the observations an assimilation (or training) may use."""
    usable = self.grid.observed & ~self.hidden
    if before_cutoff:
      usable[:, self.cutoff:] = False
    return usable
