"""Products of an assimilated image series: the gap-filled and forecast series (npz) and its
quicklook (PNG)."""
from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np

from fusionjax import atomic
from fusionjax.data.series import reader as series
from fusionjax.products import save_figure


def series_on_grid(trajectory: np.ndarray, grid: series.GriddedSeries,
                   step_days: int) -> tuple[np.ndarray, np.ndarray]:
  """The (P, S', C) per-pixel `trajectory` of `grid` as images: its (S',) datetime64[s] grid
  dates (from the grid's first, extending past its last where S' is longer) and the
  (S', H, W, C) float32 values."""
  num_output = trajectory.shape[1]
  dates = series.grid_dates(grid.dates[0], grid.dates[0] + np.timedelta64(
      (num_output - 1) * step_days * 86400, "s"), step_days)
  return dates, np.moveaxis(trajectory, 1, 0).reshape(
      num_output, *grid.image_shape, -1).astype(np.float32)


def write_series_products(out_dir: str, trajectory: np.ndarray, grid: series.GriddedSeries,
                          observed: np.ndarray, step_days: int) -> list[str]:
  """Writes series.npz (values (S', H, W, C) on grid dates (S',) extending past the last
  observation, observed (S', H, W) bool, bands) and quicklook.png; returns their paths.

  trajectory: (P, S', C) per pixel of `grid`; observed: (P, S) the observations used.
  """
  num_output = trajectory.shape[1]
  dates, values = series_on_grid(trajectory, grid, step_days)
  height, width = grid.image_shape
  observed_out = np.zeros((len(observed), num_output), bool)
  observed_out[:, :observed.shape[1]] = observed
  npz_path = os.path.join(out_dir, "series.npz")
  with atomic.atomic_path(npz_path) as temporary:
    np.savez(temporary, values=values,
             observed=observed_out.T.reshape(num_output, height, width),
             dates=dates.astype(str), bands=np.array(grid.bands),
             last_observation_date=str(grid.dates[-1]))
  png_path = os.path.join(out_dir, "quicklook.png")
  save_figure(series_quicklook(trajectory, grid, observed, dates), png_path)
  return [npz_path, png_path]


def series_quicklook(trajectory: np.ndarray, grid: series.GriddedSeries, observed: np.ndarray,
                     dates: np.ndarray, count: int = 4):
  """Figure: for `count` sample pixels, the observations and the assimilated and forecast
  series of the first band against date; a map of the number of filled (unobserved) grid
  dates, with its colour bar; constrained layout (nothing overlaps)."""
  figure, axes = plt.subplots(1, count + 1, figsize=(4.2 * (count + 1), 3.6),
                              layout="constrained")
  num_steps = observed.shape[1]
  pixels = np.linspace(0, len(trajectory) - 1, count).astype(int)
  for ax, pixel in zip(axes, pixels):
    seen = observed[pixel]
    ax.plot(dates[:num_steps], trajectory[pixel, :num_steps, 0], color="tab:blue",
            label="assimilated")
    ax.plot(dates[num_steps - 1:], trajectory[pixel, num_steps - 1:, 0], color="tab:orange",
            label="forecast")
    ax.scatter(grid.dates[seen], grid.values[pixel, seen, 0], s=10, color="k",
               label="observed")
    ax.set_title(f"pixel {divmod(int(pixel), grid.image_shape[1])}", fontsize=9)
    ax.set_ylabel(grid.bands[0])
    ax.set_xlabel("date")
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
  axes[0].legend(fontsize=7)
  filled = (~observed).sum(axis=1).reshape(grid.image_shape)
  shown = axes[-1].imshow(filled, cmap="viridis")
  axes[-1].set_title("filled grid dates per pixel", fontsize=9)
  axes[-1].set_axis_off()
  figure.colorbar(shown, ax=axes[-1], label="grid dates (count)")
  return figure
