"""MODIS land-surface-temperature tiles and their NDVI guides, as GeoTIFF files.

Files are named as the MODIS products they are cut from, e.g.
  MOD11A1.A2020001.h18v04.061.2021003092415.hdf.0015.tif   (LST: day, night; kelvin)
  MOD13A2.A2020001.h18v04.061.2020326033640.hdf.0015.tif   (16-day composite: red, NIR, MIR)
with the acquisition year and day of year after 'A' and the tile index (position inside the
MODIS tile) before '.tif'. The guide of an LST day is the composite of the same tile index whose
16-day period contains it. Day and night LST are separate samples. A guide may also be a daily
surface reflectance such as MOD09GQ's (red, NIR at 250 m; its period is its day).
"""
from __future__ import annotations

import dataclasses
import datetime
import glob
import os
import re

import numpy as np

from fusionjax.data import geotiff

LST_PRODUCTS = ("MOD11A1", "MYD11A1")
NDVI_PRODUCTS = ("MOD13A2", "MYD13A2")
LST_BANDS = ("day", "night")
COMPOSITE_BANDS = ("red", "nir", "mir")
COMPOSITE_DAYS = 16
# Guide products whose files cover COMPOSITE_DAYS from their date; any other covers its day.
COMPOSITE_PRODUCTS = NDVI_PRODUCTS + ("MOD13Q1", "MYD13Q1")
# MOD09GQ / MYD09GQ surface reflectance (int16, reflectance x 10^4): the fill value.
SURFACE_REFLECTANCE_FILL = -28672
# The composites store MOD13A2 reflectance counts (reflectance x 10^4) x 0.02; the products'
# fill count, -1000, is stored as -20.
REFLECTANCE_PER_STORED_VALUE = 0.005
STORED_FILL_VALUE = -20.0
VALID_RANGE_K = (150.0, 400.0)
# The guide images of each data.guide setting, stacked on the channel axis in this order:
# 'ndvi' (1 channel) and 'reflectance' (red, NIR, MIR reflectance, 3 channels).
GUIDES = {"none": (), "ndvi": ("ndvi",), "reflectances": ("ndvi", "reflectance")}
_NAME = re.compile(r"^(?P<product>M[OY]D\d\d[A-Z][A-Z\d])\.A(?P<year>\d{4})(?P<doy>\d{3})\."
                   r"(?P<tile>h\d\dv\d\d)\..*\.(?P<index>\d+)\.tif$")


@dataclasses.dataclass(frozen=True)
class ModisFile:
  """One MODIS GeoTIFF and what its name says."""
  path: str
  product: str
  year: int
  day_of_year: int
  tile: str
  index: int

  @property
  def date(self) -> datetime.date:
    """The acquisition date (the first day of a composite's period)."""
    return datetime.date(self.year, 1, 1) + datetime.timedelta(days=self.day_of_year - 1)


@dataclasses.dataclass(frozen=True)
class LstSample:
  """One training sample: one LST band of one file and the NDVI composite guiding it."""
  lst: ModisFile
  band: int            # 0 day, 1 night
  ndvi_path: str

  @property
  def key(self) -> str:
    f = self.lst
    return f"{f.tile}_{f.index:04d}_{f.year}{f.day_of_year:03d}_{LST_BANDS[self.band]}"


def parse_name(path: str) -> ModisFile:
  """The product, date, MODIS tile and tile index in a file name; ValueError if it has none."""
  match = _NAME.match(os.path.basename(path))
  if not match:
    raise ValueError(f"{path}: not a MODIS tile name such as "
                     "MOD11A1.A2020001.h18v04.061.2021003092415.hdf.0015.tif")
  return ModisFile(path=path, product=match["product"], year=int(match["year"]),
                   day_of_year=int(match["doy"]), tile=match["tile"], index=int(match["index"]))


def find_samples(directory: str) -> tuple[list[LstSample], dict[str, int]]:
  """Pairs every LST file under `directory` (lst_1km/) with its NDVI composite (ndvi_1km/).

  Returns:
    The samples (day and night of every paired file), sorted by key, and counts: LST files,
    composites, and LST files dropped for want of their composite.
  """
  lst_files = sorted(glob.glob(os.path.join(directory, "lst_1km", "*.tif")))
  ndvi_files = sorted(glob.glob(os.path.join(directory, "ndvi_1km", "*.tif")))
  if not lst_files:
    raise FileNotFoundError(f"{directory}: no LST GeoTIFFs in lst_1km/ (expected MOD11A1.*.tif)")
  composites = {}
  for path in ndvi_files:
    parsed = parse_name(path)
    if parsed.product not in NDVI_PRODUCTS:
      raise ValueError(f"{path}: product {parsed.product}, expected one of {NDVI_PRODUCTS}")
    composites[(parsed.tile, parsed.index, parsed.year, parsed.day_of_year)] = path
  samples, unpaired = [], 0
  for path in lst_files:
    parsed = parse_name(path)
    if parsed.product not in LST_PRODUCTS:
      raise ValueError(f"{path}: product {parsed.product}, expected one of {LST_PRODUCTS}")
    ndvi_path = composite_for(composites, parsed)
    if ndvi_path is None:
      unpaired += 1
      continue
    samples.extend(LstSample(parsed, band, ndvi_path) for band in range(len(LST_BANDS)))
  counts = {"lst_files": len(lst_files), "ndvi_files": len(ndvi_files),
            "lst_files_without_composite": unpaired}
  return sorted(samples, key=lambda s: s.key), counts


def composite_for(composites: dict, lst: ModisFile) -> str | None:
  """The composite (keyed by tile, index, year, first day) whose 16 days contain `lst`'s date."""
  for first_day in range(lst.day_of_year, lst.day_of_year - COMPOSITE_DAYS, -1):
    path = composites.get((lst.tile, lst.index, lst.year, first_day))
    if path is not None:
      return path
  return None


def days_apart(guide: ModisFile, lst: ModisFile) -> int:
  """Days between `lst`'s date and the period `guide` covers (COMPOSITE_DAYS from its date for
  COMPOSITE_PRODUCTS, which end with their year; its day otherwise); 0 inside it. Real dates:
  a composite of late December is 1 day from January 1st."""
  days = COMPOSITE_DAYS if guide.product in COMPOSITE_PRODUCTS else 1
  last = min(guide.date + datetime.timedelta(days=days - 1), datetime.date(guide.year, 12, 31))
  return max((guide.date - lst.date).days, (lst.date - last).days, 0)


def nearest_guide(guides: list[ModisFile], lst: ModisFile) -> tuple[ModisFile, int] | None:
  """The guide of `lst`'s tile and tile index nearest in time (`days_apart`; the earlier of
  two as near) and its distance in days, or None if `guides` has none of that place."""
  same_place = [(days_apart(g, lst), g.date, g) for g in guides
                if (g.tile, g.index) == (lst.tile, lst.index)]
  if not same_place:
    return None
  days, _, guide = min(same_place, key=lambda found: found[:2])
  return guide, days


def ndvi_from_reflectances(reflectances: np.ndarray) -> np.ndarray:
  """NDVI = (NIR - red) / (NIR + red) of a (bands >= 2, H, W) red, NIR[, MIR] stack; 0 where
  NIR + red is not positive (fill)."""
  red, nir = reflectances[0], reflectances[1]
  with np.errstate(divide="ignore", invalid="ignore"):
    return np.where(nir + red > 0, (nir - red) / (nir + red), 0.0).astype(np.float32)


def read_reflectances(path: str, *, shape: tuple[int, int] | None = None
                      ) -> tuple[np.ndarray, geotiff.GeoReference]:
  """(3, H, W) red, NIR and MIR reflectance (0-1) of a 16-day composite stored as MOD13A2's
  excerpt is (see REFLECTANCE_PER_STORED_VALUE); fill pixels read as 0."""
  data, georef = geotiff.read_geotiff(path, bands=len(COMPOSITE_BANDS), shape=shape)
  if not np.all(np.isfinite(data)):
    raise ValueError(f"{path}: non-finite reflectances; expected the red, NIR, MIR composite")
  reflectance = np.where(data == STORED_FILL_VALUE, 0.0, data * REFLECTANCE_PER_STORED_VALUE)
  if np.any(reflectance > 1.0):
    raise ValueError(f"{path}: stored values above {1.0 / REFLECTANCE_PER_STORED_VALUE:g} "
                     "(reflectance above 1); expected MOD13A2 counts x 0.02")
  return reflectance.astype(np.float32), georef


def read_guide(path: str, *, shape: tuple[int, int] | None = None
               ) -> tuple[np.ndarray, geotiff.GeoReference]:
  """(H, W) NDVI from a 1-band NDVI GeoTIFF, or from red, NIR[, MIR] reflectances in any
  common scale (a ratio): a composite like MOD13A2's or MOD09GQ's surface reflectance (int16
  x 10^4). Reflectance pixels with a band at SURFACE_REFLECTANCE_FILL or red + NIR not
  positive (fill) read as NDVI 0; NDVI is clipped to [-1, 1] (small negative reflectances)."""
  data, georef = geotiff.read_geotiff(path, bands=(1, 2, 3), shape=shape)
  if data.shape[0] == 1:
    ndvi = data[0]
  else:
    fill = np.any(data[:2] == SURFACE_REFLECTANCE_FILL, axis=0)
    ndvi = np.where(fill, 0.0, np.clip(ndvi_from_reflectances(data), -1.0, 1.0)
                    ).astype(np.float32)
  if not np.all(np.isfinite(ndvi)) or np.any(np.abs(ndvi) > 1.0):
    raise ValueError(f"{path}: NDVI outside [-1, 1] or not finite; expected NDVI or red, NIR "
                     "reflectances")
  return ndvi, georef


def guide_channels(guide: str) -> int:
  """The channel count G of the (H, W, G) guide images of `guide` (a key of GUIDES)."""
  return sum(1 if key == "ndvi" else len(COMPOSITE_BANDS) for key in GUIDES[guide])


def read_guide_images(path: str, guide: str, *, shape: tuple[int, int]) -> np.ndarray:
  """(H, W, G) guide images of `guide` (a key of GUIDES), stacked in GUIDES' order, from one
  file: for 'ndvi' an NDVI or red, NIR[, MIR] file; for 'reflectances' the three-band
  composite."""
  if guide == "ndvi":
    images = {"ndvi": read_guide(path, shape=shape)[0][..., None]}
  else:
    reflectances = read_reflectances(path, shape=shape)[0]
    images = {"ndvi": ndvi_from_reflectances(reflectances)[..., None],
              "reflectance": np.moveaxis(reflectances, 0, -1)}
  return np.concatenate([images[key] for key in GUIDES[guide]], axis=-1)


def invalid_reason(lst_k: np.ndarray) -> str | None:
  """Why an LST image (K) cannot be used, or None: no-data (0) pixels or values outside
  150-400 K."""
  nodata = int(np.sum(lst_k == 0))
  if nodata:
    return f"{nodata} no-data (0) pixels"
  low, high = VALID_RANGE_K
  outside = int(np.sum((lst_k < low) | (lst_k > high) | ~np.isfinite(lst_k)))
  if outside:
    return f"{outside} values outside {low:g}-{high:g} K"
  return None


def read_sample(sample: LstSample, tile_size: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """LST (K) and NDVI, both (tile_size, tile_size), and (3, tile_size, tile_size) red, NIR and
  MIR reflectances of a sample, the guides on the LST's grid.

  Raises ValueError naming the file for a wrong shape, band count or CRS, or an NDVI composite
  that is not on the LST's grid.
  """
  shape = (tile_size, tile_size)
  lst, lst_georef = geotiff.read_geotiff(sample.lst.path, bands=len(LST_BANDS), shape=shape)
  reflectances, composite_georef = read_reflectances(sample.ndvi_path, shape=shape)
  if not lst_georef.matches(composite_georef):
    raise ValueError(f"{sample.ndvi_path}: CRS or grid differs from that of {sample.lst.path}; "
                     "expected the composite of the same tile index on the same grid")
  return lst[sample.band], ndvi_from_reflectances(reflectances), reflectances
