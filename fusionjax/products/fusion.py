"""Quicklooks of spectral fusion: images at one wavelength, colour composites and spectra."""
from __future__ import annotations

import numpy as np

from fusionjax import products


def quicklook(wavelengths_um: np.ndarray, band: int, lr: np.ndarray, fused: np.ndarray,
              truth: np.ndarray | None, spectra: dict, pixel: tuple[int, int], units: str,
              composites=(), method: str = "fused"):
  """Figure: the (H, W, 3) colour `composites` ((image, title) pairs) if any; the (h, w) input,
  (H, W) fused and, when known, the truth and the error at the wavelength `band`, each with a
  colour bar in `units` (the scene's, e.g. mJy/arcsec2; NaN is no-data); and the (L,)
  `spectra` (label -> spectrum, in `units`) at `pixel` against wavelength in um. `method`
  names the fused image (the model). Constrained layout: no title, colour bar or panel
  overlaps another."""
  import matplotlib.pyplot as plt
  wavelength = wavelengths_um[band]
  reference = fused if truth is None else truth
  low, high = np.nanpercentile(reference, [1, 99])
  # The input has its own stretch: its line-spread function can lower narrow-line peaks.
  # Panels: (image, title, (vmin, vmax), colour map, colour-bar label or '' for none).
  panels = [(lr, "low-resolution input", tuple(np.nanpercentile(lr, [1, 99])), "inferno", units),
            (fused, method, (low, high), "inferno", units)]
  if truth is not None:
    panels.insert(0, (truth, f"truth {wavelength:.4f} um", (low, high), "inferno", units))
    difference = fused - truth
    limit = float(np.nanpercentile(np.abs(difference), 99.5)) or 1.0
    panels.append((difference, f"{method} - truth", (-limit, limit), "coolwarm", units))
  else:
    panels[1] = (fused, f"{method} {wavelength:.4f} um", (low, high), "inferno", units)
  panels = [(products.stretch(image), title, (None, None), None, "")
            for image, title in composites] + panels
  images = len(panels)
  aspect = fused.shape[1] / fused.shape[0]
  if aspect <= 2:   # side by side, each image with its colour bar
    figure, axes = plt.subplots(1, images + 1, figsize=(4 * (images * aspect + 2.2) + images,
                                                        4.6),
                                layout="constrained",
                                gridspec_kw={"width_ratios": [aspect] * images + [2.2]})
  else:             # a wide scene: one image per row, the spectra below
    width = 12.0
    figure, axes = plt.subplots(images + 1, 1, figsize=(width, images * (width / aspect + 0.6)
                                                        + 3.5),
                                layout="constrained",
                                gridspec_kw={"height_ratios": [width / aspect + 0.6] * images
                                             + [3.5]})
  for ax, (image, title, (vmin, vmax), cmap, label) in zip(axes, panels):
    shown = ax.imshow(image, vmin=vmin, vmax=vmax, cmap=cmap)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    if label:
      figure.colorbar(shown, ax=ax, label=label)
  for label, spectrum in spectra.items():
    axes[-1].plot(wavelengths_um, spectrum, label=label, lw=1)
  axes[-1].set_xlabel("wavelength (um)")
  axes[-1].set_ylabel(units)
  axes[-1].set_title(f"spectrum at pixel {tuple(int(p) for p in pixel)}", fontsize=9)
  axes[-1].legend(fontsize=8)
  return figure
