"""Quicklooks of land-surface-temperature super-resolution."""
from __future__ import annotations

import numpy as np


def quicklook(step_result: dict, method: str, count: int = 4):
  """Figure: per tile (of `count`), the coarse input, the result of `method`, the NDVI guide,
  the truth and the difference result - truth, each with its colour bar (K; NDVI unitless),
  in constrained layout (no title, colour bar or panel overlaps another). step_result:
  (N, H, W, 1) arrays 'fine' (truth), 'model' and 'fine_ndvi', and (N, h, w, 1) 'coarse'."""
  import matplotlib.pyplot as plt
  picks = np.linspace(0, len(step_result["fine"]) - 1, min(count, len(step_result["fine"])))
  figure, axes = plt.subplots(len(picks), 5, figsize=(16, 3.1 * len(picks)), squeeze=False,
                              layout="constrained")
  for row, index in zip(axes, picks.astype(int)):
    truth = step_result["fine"][index, ..., 0]
    low, high = np.percentile(truth, [1, 99])
    difference = step_result["model"][index, ..., 0] - truth
    limit = float(np.max(np.abs(difference))) or 1.0
    panels = ((step_result["coarse"][index, ..., 0], "coarse input", "inferno", low, high,
               "LST (K)"),
              (step_result["model"][index, ..., 0], method, "inferno", low, high, "LST (K)"),
              (step_result["fine_ndvi"][index, ..., 0], "NDVI guide", "YlGn", None, None,
               "NDVI (unitless)"),
              (truth, "truth", "inferno", low, high, "LST (K)"),
              (difference, f"{method} - truth", "coolwarm", -limit, limit, "error (K)"))
    for ax, (image, title, cmap, vmin, vmax, label) in zip(row, panels):
      shown = ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax)
      ax.set_title(title, fontsize=9)
      ax.set_axis_off()
      figure.colorbar(shown, ax=ax, label=label)
  return figure
