"""Sentinel-2 MSI bands: what they are, and readers for a scene as a MATLAB file, band files
or a SAFE product.

A scene is a dict band name -> (rows, columns) float32 top-of-atmosphere reflectance x 10000
(L1C digital numbers; bottom of the atmosphere from an L2A product), each band at its native
resolution (10, 20 or 60 m); 0 is no-data.
Readers (and `write_mat`, the inverse of read_mat):
  read_mat      a MATLAB v7.3 file (HDF5) with datasets im10 (B4 B3 B2 B8), im20 (B5 B6 B7 B8A
                B11 B12) and im60 (B1 B9), as distributed with the DSen2 paper's test scenes;
                MATLAB writes column-major, so each band is transposed back. No georeferencing.
  read_band_files  one file per band (JP2 or GeoTIFF, rasterio), found by its band name in the
                file name (..._B05.jp2, B8A.tif); georeferencing kept (that of the 10 m bands).
  read_safe     (fusionjax.data.sentinel2.safe) a Level-1C or Level-2A SAFE product as
                downloaded, a .SAFE folder or its .zip: its band files, digital numbers turned
                into reflectance x 10000 by the product's offsets; georeferencing kept.
  read_scene    any of these, by what the path is.
"""
from __future__ import annotations

import dataclasses
import glob
import os
import re

import h5py
import numpy as np

from fusionjax.data import geotiff


@dataclasses.dataclass(frozen=True)
class Band:
  name: str
  resolution_m: int
  wavelength_nm: float
  mtf_at_nyquist: float   # in-flight MTF at the band's Nyquist frequency (Gaussian model)


# Central wavelengths (Sentinel-2A) and the MTF values at Nyquist used by S2Sharp (Ulfarsson et
# al., IEEE TGRS 2019) and SupReME to model each band's PSF as a Gaussian.
BANDS = {b.name: b for b in (
    Band("B1", 60, 442.7, 0.32), Band("B2", 10, 492.4, 0.26), Band("B3", 10, 559.8, 0.28),
    Band("B4", 10, 664.6, 0.24), Band("B5", 20, 704.1, 0.38), Band("B6", 20, 740.5, 0.34),
    Band("B7", 20, 782.8, 0.34), Band("B8", 10, 832.8, 0.26), Band("B8A", 20, 864.7, 0.33),
    Band("B9", 60, 945.1, 0.26), Band("B11", 20, 1613.7, 0.22), Band("B12", 20, 2202.4, 0.23))}
BANDS_10M = ("B2", "B3", "B4", "B8")
BANDS_20M = ("B5", "B6", "B7", "B8A", "B11", "B12")
BANDS_60M = ("B1", "B9")
# The bands of each dataset of a DSen2 MATLAB scene, in its order: im10 holds red first (as
# DSen2's own reader has it; on the shared L1C scene the channel named B2 here is the
# brighter of the two, as blue is at the top of the atmosphere over vegetation, and follows
# B1, while the one named B4 follows the red edge B5). Scenes keep bands by name, so every
# reader gives a model the same band in the same channel.
MAT_DATASETS = {"im10": ("B4", "B3", "B2", "B8"), "im20": BANDS_20M, "im60": BANDS_60M}
NODATA = 0.0
SATURATED = 65535.0   # L1C's flag for saturated pixels
UNITS = "TOA reflectance x 10000"


@dataclasses.dataclass(frozen=True)
class Scene:
  """bands: name -> (rows, columns) float32 at the band's resolution; georef: that of the 10 m
  grid, or None (a MATLAB file carries none); source: where it was read from."""
  bands: dict
  georef: geotiff.GeoReference | None
  source: str

  def stack(self, names) -> np.ndarray:
    """(rows, columns, len(names)) of bands of one resolution."""
    return np.stack([self.bands[n] for n in names], axis=-1)


def measured(band: np.ndarray) -> np.ndarray:
  """(rows, columns) bool of a (rows, columns) L1C band: True where it holds a measurement
  (neither NODATA nor SATURATED)."""
  return (band != NODATA) & (band < SATURATED)


def filled(band: np.ndarray) -> np.ndarray:
  """The (rows, columns) band with its pixels that hold no measurement set to the mean of
  those that do: neutral input for filters and models, unlike 0."""
  valid = measured(band)
  if valid.all():
    return band
  if not valid.any():
    raise ValueError("no measured pixel to fill the no-data ones from")
  return np.where(valid, band, band[valid].mean()).astype(band.dtype)


def valid_at_coarser(valid: np.ndarray, factor: int) -> np.ndarray:
  """(rows / factor, columns / factor) bool: True where all factor x factor pixels are."""
  rows, cols = valid.shape
  return valid.reshape(rows // factor, factor, cols // factor, factor).all(axis=(1, 3))


def check_scene(bands: dict, source: str, required) -> None:
  """ValueError naming the band and the expected shape when a required band is missing or not
  on its resolution's grid: each band's size times its resolution equals the 10 m extent."""
  missing = [name for name in required if name not in bands]
  if missing:
    raise ValueError(f"{source}: missing band(s) {missing}; expected {list(required)}")
  if not any(BANDS[name].resolution_m == 10 for name in bands):
    raise ValueError(f"{source}: no 10 m band; expected {list(BANDS_10M)}")
  reference = next(n for n in bands if BANDS[n].resolution_m == 10)
  extent = np.array(bands[reference].shape) * 10
  for name, image in bands.items():
    resolution = BANDS[name].resolution_m
    if image.ndim != 2:
      raise ValueError(f"{source}: band {name} has shape {image.shape}; expected a 2-D image")
    expected = tuple(int(e) for e in extent // resolution)
    if tuple(image.shape) != expected or np.any(extent % resolution):
      raise ValueError(f"{source}: band {name} ({resolution} m) is {image.shape[0]} x "
                       f"{image.shape[1]} pixels; expected {expected[0]} x {expected[1]} to "
                       f"cover the {extent[0]} x {extent[1]} m of {reference}")


def write_mat(path: str, bands: dict, datasets=MAT_DATASETS) -> None:
  """Writes bands (name -> (rows, columns)) as `read_mat` reads them, as MATLAB v7.3 does:
  HDF5, one dataset of each of `datasets` (name -> its bands), each band stored transposed."""
  with h5py.File(path, "w") as sink:
    for dataset, names in datasets.items():
      stack = np.stack([bands[n].T for n in names]).astype(np.float32)
      sink.create_dataset(dataset, data=stack).attrs["MATLAB_class"] = np.bytes_(b"single")


def read_mat(path: str, required=BANDS_10M + BANDS_20M) -> Scene:
  """A scene from a MATLAB v7.3 file with datasets im10, im20 and im60 (see the module)."""
  try:
    source = h5py.File(path, "r")
  except OSError as error:
    raise ValueError(f"{path}: not a MATLAB v7.3 (HDF5) file ({error}); save it with "
                     "save(..., '-v7.3')") from error
  bands = {}
  with source:
    for dataset, names in MAT_DATASETS.items():
      if dataset not in source:
        continue
      data = np.asarray(source[dataset], np.float32)
      if data.ndim != 3 or data.shape[0] != len(names):
        raise ValueError(f"{path}: dataset {dataset} has shape {data.shape}; expected "
                         f"({len(names)}, columns, rows) for bands {list(names)}")
      for name, image in zip(names, data):
        bands[name] = np.ascontiguousarray(image.T)   # column-major -> (rows, columns)
  check_scene(bands, path, required)
  return Scene(bands=bands, georef=None, source=path)


_BAND_IN_NAME = re.compile(r"(?:^|[_.\-])(B(?:0?[1-9]|1[0-2]|8A))(?:[_.\-]|$)", re.IGNORECASE)


def band_of_file(path: str) -> str | None:
  """The band a file name names (T33UUB_20170527_B05.jp2 -> 'B5'), or None."""
  match = _BAND_IN_NAME.search(os.path.splitext(os.path.basename(path))[0])
  if not match:
    return None
  name = match.group(1).upper()
  return name if name == "B8A" else f"B{int(name[1:])}"


def band_files(folder: str) -> list[tuple[str, str]]:
  """(path, band name) of the JP2 and GeoTIFF files in `folder` whose names name a band."""
  files = sorted(p for pattern in ("*.jp2", "*.tif", "*.tiff")
                 for p in glob.glob(os.path.join(folder, pattern)))
  return [(path, band_of_file(path)) for path in files if band_of_file(path) in BANDS]


def read_band_files(folder: str, required=BANDS_10M + BANDS_20M) -> Scene:
  """A scene from one JP2 or GeoTIFF per band in `folder` (see the module)."""
  files = band_files(folder)
  if not files:
    raise FileNotFoundError(f"{folder}: no .jp2 or .tif band files (named by band, e.g. "
                            "..._B05.jp2)")
  return scene_of_files(files, folder, required)


def scene_of_files(files, source: str, required=BANDS_10M + BANDS_20M) -> Scene:
  """A scene from (path, band name) pairs, one raster (rasterio: JP2, GeoTIFF, /vsizip/...)
  per band, read as stored; ValueError naming `source` when a band has a second file, a
  required one none, or a band's grid is not that of the 10 m bands coarsened."""
  bands, georefs = {}, {}
  for path, name in files:
    if name in bands:
      raise ValueError(f"{path}: a second file for band {name}; expected one file per band")
    data, georef = geotiff.read_geotiff(path, bands=1)
    bands[name], georefs[name] = data[0], georef
  check_scene(bands, source, required)
  reference = next(n for n in BANDS_10M if n in bands)
  for name, georef in georefs.items():
    factor = BANDS[name].resolution_m // 10
    if not georef.matches(georefs[reference].coarsened(factor)):
      raise ValueError(f"{source}: band {name}'s grid (CRS or origin) differs from that of "
                       f"{reference}; expected the bands of one Sentinel-2 tile")
  return Scene(bands=bands, georef=georefs[reference], source=source)


def product_name(path: str) -> str:
  """The name of a scene's file or folder without its extensions (.mat, .SAFE, .SAFE.zip,
  .zip), for the names of the products made from it."""
  name = os.path.basename(os.path.normpath(path))
  for extension in (".zip", ".SAFE", ".mat"):
    if name.endswith(extension):
      name = name[:-len(extension)]
  return name


def read_scene(path: str, required=BANDS_10M + BANDS_20M) -> Scene:
  """A .mat file (read_mat), a folder holding one .mat file and no band files (such as
  ../shared/data/sentinel2), a folder of band files (read_band_files), or a SAFE product (a
  .SAFE folder or a .zip, fusionjax.data.sentinel2.safe.read_safe)."""
  from fusionjax.data.sentinel2 import safe   # (here: safe reads its bands through this module)
  if safe.is_product(path):
    return safe.read_safe(path, required)
  if os.path.isdir(path):
    mat_files = sorted(glob.glob(os.path.join(path, "*.mat")))
    if mat_files and not band_files(path):
      if len(mat_files) > 1:
        raise ValueError(f"{path}: holds {len(mat_files)} MATLAB scenes "
                         f"{[os.path.basename(p) for p in mat_files]}; name one of them")
      return read_mat(mat_files[0], required)
    return read_band_files(path, required)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such file or folder; expected a MATLAB v7.3 scene, a "
                            "folder of Sentinel-2 band files or a SAFE product")
  return read_mat(path, required)
