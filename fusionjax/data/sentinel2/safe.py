"""Sentinel-2 SAFE products as downloaded (Copernicus Data Space): Level-1C and Level-2A, a
.SAFE folder or a .zip holding one (read in place through GDAL's /vsizip/, not extracted).

A product holds one granule (tile) and its metadata at the root:
  S2*_MSIL1C_*.SAFE  MTD_MSIL1C.xml; GRANULE/<granule>/IMG_DATA/<tile>_<time>_B05.jp2, one
                     JPEG 2000 file per band at its native resolution.
  S2*_MSIL2A_*.SAFE  MTD_MSIL2A.xml; GRANULE/<granule>/IMG_DATA/R10m|R20m|R60m/
                     <tile>_<time>_B05_20m.jp2: each band at several resolutions, of which the
                     native one is read (B2 B3 B4 B8 from R10m, B5 B6 B7 B8A B11 B12 from
                     R20m, B1 B9 from R60m); TCI, AOT, WVP and SCL are left out.
The files hold digital numbers (DN). From processing baseline 04.00 (products since 25
January 2022) they carry an offset per band, so that the noise of dark surfaces is not cut
at zero: reflectance = (DN + offset) / quantification, with the metadata's
PROCESSING_BASELINE, RADIO_ADD_OFFSET (L1C) or BOA_ADD_OFFSET (L2A) per band_id (-1000), and
QUANTIFICATION_VALUE (L1C) or BOA_QUANTIFICATION_VALUE (L2A) (10000); the offset is 0 before
04.00. A scene holds reflectance x 10000 as every scene does (top of the atmosphere for L1C,
bottom for L2A): DN 0 stays no-data and DN 65535 saturated; a measured pixel that the offset
makes zero or negative (dark water or shadow, under the noise) is clipped to MIN_REFLECTANCE,
so that it stays measured (0 is no-data) and physical.
"""
from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ElementTree
import zipfile
from collections.abc import Callable

import numpy as np

from fusionjax.data.sentinel2 import reader as sentinel2

METADATA = {"MTD_MSIL1C.xml": "L1C", "MTD_MSIL2A.xml": "L2A"}
# Per level: the metadata's tag of the quantification value, and that of the offsets.
QUANTIFICATION_TAG = {"L1C": "QUANTIFICATION_VALUE", "L2A": "BOA_QUANTIFICATION_VALUE"}
OFFSET_TAG = {"L1C": "RADIO_ADD_OFFSET", "L2A": "BOA_ADD_OFFSET"}
OFFSETS_FROM_BASELINE = 4.0
# The bands by band_id (0 to 12), where the metadata has no Spectral_Information_List.
BAND_IDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
MIN_REFLECTANCE = 1.0   # reflectance x 10000 of a measured pixel at or below zero (0.0001)
_L1C_BAND = re.compile(r"GRANULE/([^/]+)/IMG_DATA/([^/]+\.jp2)", re.IGNORECASE)
_L2A_BAND = re.compile(r"GRANULE/([^/]+)/IMG_DATA/R(10|20|60)m/([^/]+\.jp2)", re.IGNORECASE)


def is_product(path: str) -> bool:
  """Whether `path` is read as a SAFE product: a folder named *.SAFE or a .zip file."""
  name = os.path.basename(os.path.normpath(path))
  return (os.path.isdir(path) and name.upper().endswith(".SAFE")) or (
      os.path.isfile(path) and name.lower().endswith(".zip"))


def _contents(path: str) -> tuple[str, str, list[str], Callable[[str], bytes]]:
  """(source, root, files, read) of a .SAFE folder or a .zip holding one: the product's name
  for messages, the root its files' paths are relative to as rasterio opens them (the
  folder, or /vsizip/<zip>/<name>.SAFE), those paths ('/'-separated) and a function reading
  one file's bytes."""
  if os.path.isdir(path):
    root = os.path.normpath(path)
    files = [os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
             for folder, _, names in os.walk(root) for name in names]

    def read_file(relative: str) -> bytes:
      with open(os.path.join(root, relative), "rb") as source:
        return source.read()
    return root, root, files, read_file
  try:
    with zipfile.ZipFile(path) as archive:
      names = archive.namelist()
  except (zipfile.BadZipFile, OSError) as error:
    raise ValueError(f"{path}: not a readable zip archive ({error}); expected a Sentinel-2 "
                     "SAFE product (a .SAFE folder or its .zip)") from error
  products = sorted({m.group(1) for m in map(re.compile(r"(.*?\.SAFE)/").match, names) if m})
  if len(products) != 1:
    raise ValueError(f"{path}: holds {len(products)} .SAFE folders {products}; expected the zip "
                     "of one Sentinel-2 SAFE product (S2*_MSIL1C_*.SAFE or S2*_MSIL2A_*.SAFE)")
  prefix = products[0] + "/"
  files = [n[len(prefix):] for n in names if n.startswith(prefix) and not n.endswith("/")]

  def read_member(relative: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
      return archive.read(prefix + relative)
  return (os.path.join(path, products[0]), f"/vsizip/{os.path.abspath(path)}/{products[0]}",
          files, read_member)


def _local_name(tag: str) -> str:
  """An XML tag without its namespace ('{https://psd-14...}General_Info' -> 'General_Info')."""
  return tag.rsplit("}", 1)[-1]


def read_metadata(xml: bytes, source: str, level: str, bands) -> tuple[float, dict]:
  """(quantification value, band name -> offset) of `bands` from a product's metadata XML
  (`source` names it in errors; `level` 'L1C' or 'L2A'): offsets 0 before processing
  baseline 04.00. ValueError naming the file and the field when it is not XML, lacks a field
  (an offset of one of `bands` from 04.00 on) or holds a value that is no number."""
  try:
    root = ElementTree.fromstring(xml)
  except ElementTree.ParseError as error:
    raise ValueError(f"{source}: not parseable XML ({error}); expected the product metadata "
                     "of a Sentinel-2 SAFE product") from error
  elements = {}
  for element in root.iter():
    elements.setdefault(_local_name(element.tag), []).append(element)

  def number(element, field: str) -> float:
    try:
      return float(element.text)
    except (TypeError, ValueError):
      raise ValueError(f"{source}: {field} is {element.text!r}; expected a number") from None

  def first(field: str, example: str) -> float:
    if field not in elements:
      raise ValueError(f"{source}: no {field}; expected one (such as {example}) in the "
                       f"metadata of a {level} product")
    return number(elements[field][0], field)

  baseline = first("PROCESSING_BASELINE", "04.00")
  quantification = first(QUANTIFICATION_TAG[level], "10000")
  if quantification <= 0:
    raise ValueError(f"{source}: {QUANTIFICATION_TAG[level]} is {quantification:g}; expected a "
                     "positive number (10000)")
  if baseline < OFFSETS_FROM_BASELINE:
    return quantification, {name: 0.0 for name in bands}
  # band_id -> band: the product's Spectral_Information_List (bandId, physicalBand 'B8A').
  names = {e.get("bandId"): sentinel2.band_of_file(e.get("physicalBand") or "")
           for e in elements.get("Spectral_Information", ())}
  names = names or {str(band_id): name for band_id, name in enumerate(BAND_IDS)}
  tag = OFFSET_TAG[level]
  offsets = {names.get(e.get("band_id")): number(e, f"{tag} band_id={e.get('band_id')}")
             for e in elements.get(tag, ())}
  missing = sorted((name for name in bands if name not in offsets), key=BAND_IDS.index)
  if missing:
    raise ValueError(f"{source}: processing baseline {baseline:05.2f} but no {tag} for "
                     f"band(s) {missing}; expected one per band_id from baseline 04.00 on")
  return quantification, {name: offsets[name] for name in bands}


def reflectance(dn: np.ndarray, offset: float, quantification: float) -> np.ndarray:
  """(rows, columns) float32 reflectance x 10000 of a band's (rows, columns) digital
  numbers: (DN + offset) * 10000 / quantification, at least MIN_REFLECTANCE; DN 0 (no-data)
  and 65535 (saturated) kept as they are."""
  value = np.maximum((dn + offset) * (10000.0 / quantification), MIN_REFLECTANCE)
  flagged = (dn == sentinel2.NODATA) | (dn >= sentinel2.SATURATED)
  return np.where(flagged, dn, value).astype(np.float32)


def _band_files(files: list[str], level: str, source: str) -> list[tuple[str, str]]:
  """(relative path, band name) of the product's band files, each band at its native
  resolution; ValueError naming the product when it holds several granules."""
  chosen, granules = [], set()
  for relative in files:
    match = (_L1C_BAND if level == "L1C" else _L2A_BAND).fullmatch(relative)
    if not match:
      continue
    name = sentinel2.band_of_file(os.path.basename(relative))
    native = name in sentinel2.BANDS and (
        level == "L1C" or int(match.group(2)) == sentinel2.BANDS[name].resolution_m)
    if native:
      chosen.append((relative, name))
      granules.add(match.group(1))
  if len(granules) > 1:
    raise ValueError(f"{source}: holds {len(granules)} granules {sorted(granules)}; expected "
                     "one (a single-tile product)")
  return sorted(chosen)


def read_safe(path: str, required=sentinel2.BANDS_10M + sentinel2.BANDS_20M) -> sentinel2.Scene:
  """The scene of a Level-1C or Level-2A SAFE product, a .SAFE folder or its .zip (see the
  module): every band it holds at its native resolution, in reflectance x 10000, with the
  10 m grid's georeferencing; its source names the product. FileNotFoundError naming the
  product when it has no metadata XML, ValueError when that is unreadable or a required band
  is missing."""
  source, root, files, read = _contents(path)
  levels = [(name, level) for name, level in METADATA.items() if name in files]
  if len(levels) != 1:
    raise FileNotFoundError(f"{source}: {len(levels)} product metadata files; expected one of "
                            f"{list(METADATA)} at the root of a Sentinel-2 SAFE product")
  metadata, level = levels[0]
  band_files = _band_files(files, level, source)
  if not band_files:
    folders = "IMG_DATA" if level == "L1C" else "IMG_DATA/R10m, R20m and R60m"
    raise ValueError(f"{source}: no band files; expected GRANULE/<granule>/{folders} holding "
                     f"one .jp2 per band (..._B02{'' if level == 'L1C' else '_10m'}.jp2)")
  quantification, offsets = read_metadata(read(metadata), f"{source}/{metadata}", level,
                                          [name for _, name in band_files])
  scene = sentinel2.scene_of_files([(f"{root}/{relative}", name)
                                    for relative, name in band_files], source, required)
  bands = {name: reflectance(image, offsets[name], quantification)
           for name, image in scene.bands.items()}
  return sentinel2.Scene(bands, scene.georef, source)
