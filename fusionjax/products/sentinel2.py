"""Quicklooks of Sentinel-2 band sharpening: true-colour guides, false-colour composites of the
sharpened bands and the error of one band."""
from __future__ import annotations

import numpy as np

from fusionjax import products
from fusionjax.data.sentinel2 import reader as sentinel2
from fusionjax.data.sentinel2 import scene as sentinel2_scene

RGB_GUIDES = ("B4", "B3", "B2")            # true colour from the 10 m bands


def quicklook(sharpening: sentinel2_scene.Sharpening, guides: np.ndarray, lr: np.ndarray,
              fused: np.ndarray, truth: np.ndarray | None, method: str = "sharpened"):
  """Figure: the (H, W, G) guide bands in true colour, the (h, w, T) input and the (H, W, T)
  result (named `method`) as a false-colour composite of the targets, and where the (H, W, T)
  truth is known, the truth and the error of one band, its colour bar in reflectance x 10000;
  constrained layout (no title, colour bar or panel overlaps another)."""
  import matplotlib.pyplot as plt
  targets = sharpening.targets
  pick = lambda image, names, order: image[..., [order.index(n) for n in names]]  # noqa: E731
  composite = " ".join(sharpening.composite)
  false_colour = lambda image: products.stretch(  # noqa: E731
      pick(image, sharpening.composite, targets))
  panels = [(products.stretch(pick(guides, RGB_GUIDES, sharpening.guides)), "guide (B4 B3 B2)"),
            (false_colour(lr), f"input ({composite})"),
            (false_colour(fused), f"{method} ({composite})")]
  if truth is not None:
    panels.append((false_colour(truth), f"truth ({composite})"))
  figure, axes = plt.subplots(1, len(panels) + (truth is not None),
                              figsize=(4.2 * (len(panels) + (truth is not None)), 4.4),
                              layout="constrained")
  for ax, (image, title) in zip(axes, panels):
    ax.imshow(image, interpolation="nearest")
    ax.set_title(title, fontsize=9)
  if truth is not None:
    band = targets.index(sharpening.error_band)
    error = fused[..., band] - truth[..., band]
    limit = float(np.percentile(np.abs(error), 99.5)) or 1.0
    shown = axes[-1].imshow(error, cmap="coolwarm", vmin=-limit, vmax=limit)
    axes[-1].set_title(f"{sharpening.error_band} error", fontsize=9)
    figure.colorbar(shown, ax=axes[-1], label=f"error ({sentinel2.UNITS})")
  for ax in axes:
    ax.set_axis_off()
  return figure
