"""Super-resolution of user GeoTIFFs of land-surface temperature with a trained model.

Every band of an input (e.g. MODIS day and night) is super-resolved by the configured factor,
tile by tile so that any size fits in memory, and written as a GeoTIFF on a grid with the same
origin and CRS and a pixel size divided by the factor (a Cloud-Optimised GeoTIFF, in K, its
bands named 'LST day' and 'LST night' for a 2-band MODIS input, its provenance in its tags),
with a quicklook PNG. Pixels without a usable temperature (0, non-finite, or outside 150-400 K)
are filled for the network with the band's mean and written as no-data (0) over their whole
footprint.
"""
from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable

import numpy as np

from fusionjax import products, progress, tiling
from fusionjax.data import geotiff
from fusionjax.data.modis import climatology as lst_climatology
from fusionjax.data.modis import reader as modis


def _files(path: str, field: str) -> list[str]:
  if os.path.isdir(path):
    files = sorted(glob.glob(os.path.join(path, "*.tif")) + glob.glob(os.path.join(path, "*.tiff")))
    if not files:
      raise FileNotFoundError(f"{field}={path!r}: no GeoTIFF (.tif) files in the folder")
    return files
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{field}={path!r}: no such file or folder")
  return [path]


def _companion(path: str, source: str, field: str, *, composite: bool) -> str:
  """The file of `source` (a file, or a folder searched by name) that goes with input `path`:
  the same name, or for `composite` the MODIS 16-day composite containing its date."""
  if os.path.isfile(source):
    return source
  candidates = _files(source, field)
  by_name = {os.path.basename(c): c for c in candidates}
  if os.path.basename(path) in by_name:
    return by_name[os.path.basename(path)]
  if composite:
    parsed = modis.parse_name(path)
    composites = {}
    for candidate in candidates:
      c = modis.parse_name(candidate)
      composites[(c.tile, c.index, c.year, c.day_of_year)] = candidate
    found = modis.composite_for(composites, parsed)
    if found:
      return found
  raise FileNotFoundError(f"{field}={source!r}: no file for {os.path.basename(path)} (expected "
                          "the same name" + (" or its MODIS 16-day composite)" if composite
                                             else ")"))


def _pad_to(image: np.ndarray, multiple: int) -> np.ndarray:
  """Edge-pads the first two axes of (h, w, ...) up to multiples of `multiple`."""
  pad = [(0, -size % multiple) for size in image.shape[:2]] + [(0, 0)] * (image.ndim - 2)
  return np.pad(image, pad, mode="edge")


def _at_scale(predict_batch: Callable, fine_km: float) -> Callable:
  """(lr tiles, hr tiles) -> predict_batch(lr tiles, hr tiles, fine_km for every tile)."""
  return lambda lr, hr: predict_batch(lr, hr, np.full((len(lr),), fine_km, np.float32))


def band_descriptions(count: int) -> tuple[str, ...]:
  """The names of an LST product's `count` bands: 'LST day' and 'LST night' for MODIS's two
  (modis.LST_BANDS), otherwise 'LST' or 'LST band 1', 'LST band 2', ..."""
  if count == len(modis.LST_BANDS):
    return tuple(f"LST {name}" for name in modis.LST_BANDS)
  return ("LST",) if count == 1 else tuple(f"LST band {i}" for i in range(1, count + 1))


def super_resolve(config, predict_batch: Callable, batch_size: int, network_multiple: int,
                  coarse: np.ndarray, guide: np.ndarray, fine_km: float, *,
                  climatology: np.ndarray | None = None, source: str = "") -> np.ndarray:
  """The (bands, f h, f w) super-resolution, in K, of (bands, h, w) LST in K (f =
  data.scale_factor), band by band and tile by tile (predict.tile_size); 0 (no-data) over
  the footprint of every coarse pixel without a usable temperature (0, non-finite, or
  outside modis.VALID_RANGE_K), which is filled with the band's mean for the network.

  Args:
    predict_batch, batch_size, network_multiple: as super_resolve_files.
    guide: (f h, f w, G) guide images (G = 0 for an unguided model).
    fine_km: the output's pixel size, km.
    climatology: (bands, f h, f w, 2) each band's climatology guide
      (lst_climatology.read_guide), for a model with data.climatology.
    source: what errors and warnings name.
  """
  settings, factor = config.predict, config.data.scale_factor
  fine_shape = (coarse.shape[1] * factor, coarse.shape[2] * factor)
  fine_bands = []
  for band_index, band in enumerate(coarse):
    valid = np.isfinite(band) & (band >= modis.VALID_RANGE_K[0]) & (
        band <= modis.VALID_RANGE_K[1])
    if not valid.any():
      raise ValueError(f"{source}: a band has no temperature within "
                       f"{modis.VALID_RANGE_K[0]:g}-{modis.VALID_RANGE_K[1]:g} K")
    if not valid.all():
      logging.warning("%s: %d pixel(s) without a usable temperature written as no-data.",
                      source, int(np.sum(~valid)))
    filled = np.where(valid, band, band[valid].mean())
    lr = _pad_to(filled[..., None], max(1, network_multiple // factor))
    band_guide = guide if climatology is None else np.concatenate(
        [guide, climatology[band_index]], axis=-1)
    hr = _pad_to(band_guide, max(1, network_multiple // factor) * factor)
    tile = min(settings.tile_size, hr.shape[0], hr.shape[1])
    tile -= tile % max(network_multiple, factor)
    fine = tiling.predict_tiled(
        _at_scale(predict_batch, fine_km), lr, hr, tile=tile,
        overlap=min(settings.tile_overlap, tile // 2) // factor * factor,
        scale=factor, batch_size=batch_size)[:fine_shape[0], :fine_shape[1], 0]
    mask = np.repeat(np.repeat(valid, factor, axis=0), factor, axis=1)
    fine_bands.append(np.where(mask, fine, 0.0).astype(np.float32))
  return np.stack(fine_bands)


def super_resolve_files(config, predict_batch: Callable, batch_size: int,
                        network_multiple: int, provenance: Callable[..., products.Provenance],
                        climatology_dir: str = "") -> list[str]:
  """Writes <output>/<name>.sr<f>.tif and .png for every GeoTIFF of config.predict.input.

  Args:
    config: the experiment config (predict.input, predict.output, predict.guide for guided
      models, predict.truth optional, predict.tile_size; data.scale_factor; data.guide).
    predict_batch: (B, h, w, 1) K, (B, H, W, G) guide, (B,) fine km -> (B, H, W, 1) K.
    batch_size: tiles per call.
    network_multiple: fine-grid sizes the network accepts are multiples of this.
    provenance: (*input paths) -> the Provenance a product made from them records in its
      tags (the task's `provenance`).
    climatology_dir: for a model with data.climatology, the folder of climatology files on
      the output grid used when predict.climatology is empty (training writes the 1 km ones).
  Returns:
    The paths written.
  """
  settings = config.predict
  factor = config.data.scale_factor
  guided = config.data.guide != "none"
  if guided and not settings.guide:
    expected = ("a red, NIR, MIR composite GeoTIFF" if config.data.guide == "reflectances"
                else "an NDVI (or red, NIR) GeoTIFF")
    raise ValueError(f"predict.guide is empty: this model is guided; expected {expected}, or a "
                     "folder of them, on the output grid")
  climatology = config.data.climatology and (settings.climatology or climatology_dir)
  written = []
  for path in progress.counted(_files(settings.input, "predict.input"), "Super-resolving",
                               unit="files"):
    coarse, georef = geotiff.read_geotiff(path)
    unit = georef.crs_unit_factor()
    fine_km = georef.pixel_size * unit / 1000.0 / factor
    height, width = coarse.shape[1:]
    fine_shape = (height * factor, width * factor)
    guide, inputs = np.zeros((*fine_shape, 0), np.float32), [path]
    if guided:
      guide_path = _companion(path, settings.guide, "predict.guide", composite=True)
      guide = modis.read_guide_images(guide_path, config.data.guide, shape=fine_shape)
      inputs.append(guide_path)
    climatology_bands = None
    if climatology:
      climatology_bands = np.stack([lst_climatology.read_guide(climatology, path, band,
                                                               fine_shape)
                                    for band in range(len(coarse))])
    fine_bands = super_resolve(config, predict_batch, batch_size, network_multiple, coarse,
                               guide, fine_km, climatology=climatology_bands, source=path)
    stem = os.path.splitext(os.path.basename(path))[0]
    tif_path = os.path.join(settings.output, f"{stem}.sr{factor}.tif")
    geotiff.write_geotiff(tif_path, fine_bands, georef.refined(factor), nodata=0.0,
                          band_names=band_descriptions(len(fine_bands)), units="K",
                          tags=provenance(*inputs).as_tags())
    truth = None
    if settings.truth:
      truth_path = _companion(path, settings.truth, "predict.truth", composite=False)
      truth = geotiff.read_geotiff(truth_path, shape=fine_shape)[0]
    png_path = os.path.join(settings.output, f"{stem}.sr{factor}.png")
    products.save_figure(_quicklook(coarse[0], fine_bands[0], guide, truth, stem), png_path)
    logging.info("Super-resolved %s (%d x %d -> %d x %d pixels)%s.", path, height, width,
                 *fine_shape, "" if truth is None else
                 f": RMSE {np.sqrt(np.mean((fine_bands[0] - truth[0]) ** 2)):.3f} K (band 1)")
    written += [tif_path, png_path]
  return written


def _quicklook(coarse: np.ndarray, fine: np.ndarray, guide: np.ndarray,
               truth: np.ndarray | None, title: str):
  """Figure: input, result, NDVI guide (if any) and result - truth (if known), first band,
  each with its colour bar (K; NDVI unitless), in constrained layout (nothing overlaps)."""
  import matplotlib.pyplot as plt
  valid = fine[fine > 0]
  low, high = np.percentile(valid, [1, 99]) if valid.size else (None, None)
  panels = [(np.where(coarse > 0, coarse, np.nan), "input", "inferno", low, high, "LST (K)"),
            (np.where(fine > 0, fine, np.nan), "super-resolved", "inferno", low, high,
             "LST (K)")]
  if guide.shape[-1]:
    panels.append((guide[..., 0], "NDVI guide", "YlGn", None, None, "NDVI (unitless)"))
  if truth is not None:
    difference = np.where(fine > 0, fine - truth[0], np.nan)
    limit = float(np.nanmax(np.abs(difference))) or 1.0
    panels.append((difference, "super-resolved - truth", "coolwarm", -limit, limit,
                   "error (K)"))
  figure, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 4), squeeze=False,
                              layout="constrained")
  for ax, (image, name, cmap, vmin, vmax, label) in zip(axes[0], panels):
    shown = ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_title(name, fontsize=9)
    ax.set_axis_off()
    figure.colorbar(shown, ax=ax, label=label)
  figure.suptitle(title, fontsize=9)
  return figure
