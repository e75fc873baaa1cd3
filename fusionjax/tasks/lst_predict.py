"""Super-resolution of user GeoTIFFs of land-surface temperature with a trained model.

Every band of an input (e.g. MODIS day and night) is super-resolved by the configured factor,
tile by tile so that any size fits in memory, and written as a GeoTIFF on a grid with the same
origin and CRS and a pixel size divided by the factor (a Cloud-Optimised GeoTIFF, in K, its
bands named 'LST day' and 'LST night' for a 2-band MODIS input, its provenance and its
consistency with the input in its tags), with a quicklook PNG. Pixels without a usable
temperature (0, non-finite, or outside 150-400 K) are filled for the network with the band's
mean and written as no-data (0) over their whole footprint. Each input is processed on its own
(`super_resolve_file`); one that cannot be raises an error naming it and the reason.
"""
from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable

import numpy as np

from fusionjax import products, tiling
from fusionjax.data import geotiff
from fusionjax.data.modis import climatology as lst_climatology
from fusionjax.data.modis import reader as modis
from fusionjax.physics import thermal


def _files(path: str, field: str) -> list[str]:
  if os.path.isdir(path):
    files = sorted(glob.glob(os.path.join(path, "*.tif")) + glob.glob(os.path.join(path, "*.tiff")))
    if not files:
      raise FileNotFoundError(f"{field}={path!r}: no GeoTIFF (.tif) files in the folder")
    return files
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{field}={path!r}: no such file or folder")
  return [path]


def input_files(config) -> list[str]:
  """The GeoTIFFs of predict.input: the file, or the .tif / .tiff files of the folder, sorted."""
  return _files(config.predict.input, "predict.input")


def validate(config) -> None:
  """ValueError naming the setting, for predict settings the model cannot use: a guided model
  without predict.guide, a negative predict.guide_max_days, predict.climatology_from for a
  model without data.climatology or together with predict.climatology."""
  settings, data = config.predict, config.data
  if data.guide != "none" and not settings.guide:
    expected = ("a red, NIR, MIR composite GeoTIFF" if data.guide == "reflectances"
                else "an NDVI (or red, NIR) GeoTIFF")
    raise ValueError(f"predict.guide is empty: this model is guided; expected {expected}, or a "
                     "folder of them, on the output grid")
  if _max_days(settings) < 0:
    raise ValueError(f"predict.guide_max_days={_max_days(settings)}: expected a number of "
                     "days >= 0")
  archive = settings.get("climatology_from", "")
  if archive and not data.climatology:
    raise ValueError(f"predict.climatology_from={archive!r}: this model has no climatology "
                     "guide (data.climatology=False); expected ''")
  if archive and settings.climatology:
    raise ValueError(f"predict.climatology={settings.climatology!r} and predict.climatology_from="
                     f"{archive!r}: expected one of them, not both")


def _max_days(settings) -> int:
  """predict.guide_max_days; 0 (the composite containing the date only) in the config of a
  run trained before the setting existed."""
  return settings.get("guide_max_days", 0)


def _named_as(path: str, files: list[str]) -> str | None:
  """The file of `files` with the name of `path`, or None."""
  return {os.path.basename(f): f for f in files}.get(os.path.basename(path))


def _same_name(path: str, source: str, field: str) -> str:
  """`source` if it is a file, else the file of the folder `source` named as input `path`."""
  if os.path.isfile(source):
    return source
  found = _named_as(path, _files(source, field))
  if found is None:
    raise FileNotFoundError(f"{field}={source!r}: no file for {os.path.basename(path)} "
                            "(expected the same name)")
  return found


def guide_for(path: str, source: str, max_days: int) -> tuple[str, int]:
  """The guide of input `path` from `source` (predict.guide: a file, or a folder searched by
  name, then by MODIS tile, index and date) and its distance in days from the input's date
  (`modis.days_apart`: 0 for the composite whose period contains it). Where that composite is
  missing, the nearest of the place within `max_days` serves.

  Raises:
    FileNotFoundError naming the input, the folder and the nearest guide's distance, where
    none is within `max_days`; ValueError for a file whose name is not a MODIS name.
  """
  if os.path.isfile(source):
    return source, 0
  candidates = _files(source, "predict.guide")
  same_name = _named_as(path, candidates)
  if same_name is not None:
    return same_name, 0
  lst = modis.parse_name(path)
  nearest = modis.nearest_guide([modis.parse_name(c) for c in candidates], lst)
  if nearest is not None and nearest[1] <= max_days:
    return nearest[0].path, nearest[1]
  found = (f"the nearest, {os.path.basename(nearest[0].path)}, is {nearest[1]} days away"
           if nearest else f"none of tile {lst.tile} index {lst.index:04d}")
  raise FileNotFoundError(f"predict.guide={source!r}: no guide for {os.path.basename(path)} "
                          f"within predict.guide_max_days={max_days} days of its date ({found})")


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


def _usable(lst_k: np.ndarray) -> np.ndarray:
  """Where LST (K, any shape) is usable: finite and within modis.VALID_RANGE_K."""
  low, high = modis.VALID_RANGE_K
  return np.isfinite(lst_k) & (lst_k >= low) & (lst_k <= high)


def super_resolve(config, predict_batch: Callable, batch_size: int, network_multiple: int,
                  coarse: np.ndarray, guide: np.ndarray, fine_km: float, *,
                  climatology: np.ndarray | None = None, source: str = "") -> np.ndarray:
  """The (bands, f h, f w) super-resolution, in K, of (bands, h, w) LST in K (f =
  data.scale_factor), band by band and tile by tile (predict.tile_size); 0 (no-data) over
  the footprint of every coarse pixel without a usable temperature (0, non-finite, or
  outside modis.VALID_RANGE_K), which is filled with the band's mean for the network.

  Args:
    predict_batch, batch_size, network_multiple: as super_resolve_file.
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
    valid = _usable(band)
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


def consistency_rmse_k(coarse: np.ndarray, fine: np.ndarray) -> list[float]:
  """Per band, the RMSE (K) between the (bands, f h, f w) result aggregated over f x f
  footprints (Stefan-Boltzmann, thermal.aggregate) and its (bands, h, w) input, over the input
  pixels with a usable temperature (each band has some: `super_resolve` checks it)."""
  factor = fine.shape[1] // coarse.shape[1]
  aggregated = np.moveaxis(np.asarray(thermal.aggregate(np.moveaxis(fine, 0, -1), factor)),
                           -1, 0)
  return [float(np.sqrt(np.mean((a[usable] - c[usable]) ** 2)))
          for a, c, usable in zip(aggregated, coarse, _usable(coarse))]


def _climatology(folder: str, path: str, bands: int,
                 shape: tuple[int, int]) -> tuple[np.ndarray, bool]:
  """(bands, H, W, 2) climatology guides of input `path` from `folder` and whether its
  location has a file there; without one, `lst_climatology.absent` (a place never seen, as
  training with data.climatology_dropout shows the network)."""
  if os.path.isfile(lst_climatology.guide_path(folder, path)):
    return np.stack([lst_climatology.read_guide(folder, path, band, shape)
                     for band in range(bands)]), True
  logging.warning("%s: no %s in the climatology %s (a place the model has not seen); "
                  "predicting without it (weight 0).", path,
                  os.path.basename(lst_climatology.guide_path(folder, path)), folder)
  return np.stack([lst_climatology.absent(shape)] * bands), False


def super_resolve_file(config, predict_batch: Callable, batch_size: int,
                       network_multiple: int, provenance: Callable[..., products.Provenance],
                       path: str, climatology_dir: str = "") -> dict:
  """Writes <output>/<name>.sr<f>.tif and .png of the LST GeoTIFF `path` (f =
  data.scale_factor), its consistency with the input in the tags (CONSISTENCY_RMSE_K, per
  band).

  Args:
    config: the experiment config (predict.output, predict.guide and guide_max_days for
      guided models, predict.truth optional, predict.climatology, predict.tile_size;
      data.scale_factor, data.guide, data.climatology).
    predict_batch: (B, h, w, 1) K, (B, H, W, G) guide, (B,) fine km -> (B, H, W, 1) K.
    batch_size: tiles per call.
    network_multiple: fine-grid sizes the network accepts are multiples of this.
    provenance: (*input paths) -> the Provenance a product made from them records in its
      tags (the task's `provenance`).
    path: the input GeoTIFF, (bands, h, w) LST in K.
    climatology_dir: for a model with data.climatology, the folder of climatology files on
      the output grid used when predict.climatology is empty.
  Returns:
    {'outputs': [the GeoTIFF, the PNG], 'consistency_rmse_k': {band name: RMSE (K) of the
    result aggregated back against the input}}; a guided model adds 'guide' (the file used)
    and, where it is not the composite containing the input's date, 'guide_days' (its
    distance, days); a model with data.climatology adds 'climatology': 'used' or 'none for
    this location'.
  Raises:
    ValueError or FileNotFoundError naming the file and the reason: unreadable, no usable
    temperature, no guide within predict.guide_max_days, a guide or climatology of another
    size than the output grid.
  """
  settings, factor = config.predict, config.data.scale_factor
  coarse, georef = geotiff.read_geotiff(path)
  fine_km = georef.pixel_size * georef.crs_unit_factor() / 1000.0 / factor
  fine_shape = (coarse.shape[1] * factor, coarse.shape[2] * factor)
  guide, inputs, details = np.zeros((*fine_shape, 0), np.float32), [path], {}
  if config.data.guide != "none":
    guide_path, days = guide_for(path, settings.guide, _max_days(settings))
    guide = modis.read_guide_images(guide_path, config.data.guide, shape=fine_shape)
    inputs.append(guide_path)
    details["guide"] = guide_path
    if days:
      logging.warning("%s: no guide of its date in %s; using %s, %d day(s) away.", path,
                      settings.guide, guide_path, days)
      details["guide_days"] = days
  climatology = None
  if config.data.climatology:
    climatology, found = _climatology(settings.climatology or climatology_dir, path,
                                      len(coarse), fine_shape)
    details["climatology"] = "used" if found else "none for this location"
  fine = super_resolve(config, predict_batch, batch_size, network_multiple, coarse, guide,
                       fine_km, climatology=climatology, source=path)
  rmse = consistency_rmse_k(coarse, fine)
  stem = os.path.splitext(os.path.basename(path))[0]
  tif_path = os.path.join(settings.output, f"{stem}.sr{factor}.tif")
  geotiff.write_geotiff(tif_path, fine, georef.refined(factor), nodata=0.0,
                        band_names=band_descriptions(len(fine)), units="K",
                        tags={**provenance(*inputs).as_tags(),
                              "CONSISTENCY_RMSE_K": " ".join(f"{x:.3g}" for x in rmse)})
  truth = None
  if settings.truth:
    truth = geotiff.read_geotiff(_same_name(path, settings.truth, "predict.truth"),
                                 shape=fine_shape)[0]
  png_path = os.path.join(settings.output, f"{stem}.sr{factor}.png")
  products.save_figure(_quicklook(coarse[0], fine[0], guide, truth, stem), png_path)
  logging.info("Super-resolved %s (%d x %d -> %d x %d pixels; consistency RMSE %s K)%s.",
               path, *coarse.shape[1:], *fine_shape, ", ".join(f"{x:.3g}" for x in rmse),
               "" if truth is None else
               f": RMSE {np.sqrt(np.mean((fine[0] - truth[0]) ** 2)):.3f} K (band 1)")
  return {"outputs": [tif_path, png_path], **details,
          "consistency_rmse_k": dict(zip(band_descriptions(len(fine)), rmse))}


def build_climatology(config, inputs: list[str]) -> str:
  """Writes the climatology of the user's LST archive, predict.climatology_from (GeoTIFFs with
  MODIS names, day and night in K, on the output grid), to <predict.output>/climatology/ as
  training writes its own (`lst_climatology.from_samples`: one file per location, images with
  no-data left out) and returns the folder. Files named as one of `inputs` are left out: an
  input's own date never guides it, as a validation image's never does."""
  settings = config.predict
  own = {os.path.basename(path) for path in inputs}
  samples = [modis.LstSample(modis.parse_name(path), band, ndvi_path="")
             for path in _files(settings.climatology_from, "predict.climatology_from")
             if os.path.basename(path) not in own for band in range(len(modis.LST_BANDS))]
  climatology, georefs = lst_climatology.from_samples(samples, tile_size=None)
  folder = os.path.join(settings.output, "climatology")
  climatology.write(folder, georefs)
  logging.info("Wrote the climatology of %d location(s) of %s (%d images) to %s.",
               len(georefs), settings.climatology_from, len(samples), folder)
  return folder


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
