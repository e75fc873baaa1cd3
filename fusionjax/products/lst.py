"""Quicklooks of land-surface-temperature super-resolution."""
from __future__ import annotations

import numpy as np


def quicklook(step_result: dict, method: str, count: int = 4):
  """Figure: per tile (of `count`), the coarse input, the result of `method`, the NDVI guide,
  the truth and the difference result - truth, in K. step_result: (N, H, W, 1) arrays 'fine'
  (truth), 'model' and 'fine_ndvi', and (N, h, w, 1) 'coarse'."""
  import matplotlib.pyplot as plt
  picks = np.linspace(0, len(step_result["fine"]) - 1, min(count, len(step_result["fine"])))
  figure, axes = plt.subplots(len(picks), 5, figsize=(15, 3.1 * len(picks)), squeeze=False)
  for row, index in zip(axes, picks.astype(int)):
    truth = step_result["fine"][index, ..., 0]
    low, high = np.percentile(truth, [1, 99])
    panels = ((step_result["coarse"][index, ..., 0], "coarse input (K)", "inferno", low, high),
              (step_result["model"][index, ..., 0], f"{method} (K)", "inferno", low, high),
              (step_result["fine_ndvi"][index, ..., 0], "NDVI", "YlGn", None, None),
              (truth, "truth (K)", "inferno", low, high))
    for ax, (image, title, cmap, vmin, vmax) in zip(row, panels):
      shown = ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax)
      ax.set_title(title, fontsize=9)
      figure.colorbar(shown, ax=ax, fraction=0.046)
    difference = step_result["model"][index, ..., 0] - truth
    limit = float(np.max(np.abs(difference))) or 1.0
    shown = row[4].imshow(difference, cmap="coolwarm", vmin=-limit, vmax=limit)
    row[4].set_title(f"{method} - truth (K)", fontsize=9)
    figure.colorbar(shown, ax=row[4], fraction=0.046)
    for ax in row:
      ax.set_axis_off()
  return figure
