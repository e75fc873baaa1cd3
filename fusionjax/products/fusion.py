"""Quicklooks of spectral fusion: images at one wavelength, colour composites and spectra."""
from __future__ import annotations

import numpy as np

from fusionjax import products


def quicklook(wavelengths_um: np.ndarray, band: int, lr: np.ndarray, fused: np.ndarray,
              truth: np.ndarray | None, spectra: dict, pixel: tuple[int, int], units: str,
              composites=(), method: str = "fused"):
  """Figure: the (H, W, 3) colour `composites` ((image, title) pairs) if any; the (h, w) input,
  (H, W) fused and, when known, the truth and the error at the wavelength `band`, in `units`;
  and the (L,) `spectra` (label -> spectrum) at `pixel`. `method` names the fused image (the
  model)."""
  import matplotlib.pyplot as plt
  wavelength = wavelengths_um[band]
  reference = fused if truth is None else truth
  low, high = np.percentile(reference, [1, 99])
  # The input has its own stretch: its line-spread function can lower narrow-line peaks.
  panels = [(lr, "low-resolution input", tuple(np.percentile(lr, [1, 99]))),
            (fused, method, (low, high))]
  if truth is not None:
    panels.insert(0, (truth, f"truth {wavelength:.4f} um", (low, high)))
  else:
    panels[1] = (fused, f"{method} {wavelength:.4f} um", (low, high))
  panels = [(products.stretch(image), title, (None, None)) for image, title in composites] \
      + panels
  images = len(panels) + (truth is not None)
  aspect = fused.shape[1] / fused.shape[0]
  if aspect <= 2:   # side by side
    figure, axes = plt.subplots(1, images + 1, figsize=(4 * (images * aspect + 2.2), 4.6),
                                gridspec_kw={"width_ratios": [aspect] * images + [2.2],
                                             "wspace": 0.3})
  else:             # a wide scene: one image per row, the spectra below
    width = 12.0
    figure, axes = plt.subplots(images + 1, 1, figsize=(width, images * (width / aspect + 0.5)
                                                        + 3.5),
                                gridspec_kw={"height_ratios": [width / aspect + 0.5] * images
                                             + [3.5]})
  for ax, (image, title, (vmin, vmax)) in zip(axes, panels):
    ax.imshow(image, vmin=vmin, vmax=vmax, cmap="inferno")
    ax.set_title(title, fontsize=9)
  if truth is not None:
    difference = fused - truth
    limit = float(np.percentile(np.abs(difference), 99.5)) or 1.0
    error = axes[images - 1].imshow(difference, cmap="coolwarm", vmin=-limit, vmax=limit)
    axes[images - 1].set_title(f"{method} - truth ({units})", fontsize=9)
    figure.colorbar(error, ax=axes[images - 1], fraction=0.08)
  for label, spectrum in spectra.items():
    axes[-1].plot(wavelengths_um, spectrum, label=label, lw=1)
  axes[-1].set_xlabel("wavelength (um)")
  axes[-1].set_ylabel(units)
  axes[-1].set_title(f"spectrum at pixel {tuple(int(p) for p in pixel)}")
  axes[-1].legend(fontsize=8)
  for ax in axes[:-1]:
    ax.set_axis_off()
  return figure
