"""GeoTIFF reading and writing (rasterio), with the georeferencing carried alongside the data."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import rasterio
from rasterio.transform import Affine

from fusionjax import atomic


@dataclasses.dataclass(frozen=True)
class GeoReference:
  """Where a raster lies: its CRS (WKT) and affine pixel -> map transform (a, b, c, d, e, f)."""
  crs_wkt: str
  transform: tuple[float, ...]

  @property
  def pixel_size(self) -> float:
    """Pixel width in the CRS's unit (metres for projected CRSs)."""
    return abs(self.transform[0])

  def crs_unit_factor(self) -> float:
    """Metres per unit of the CRS's axes (1 for metres); ValueError for an angular CRS."""
    crs = rasterio.crs.CRS.from_wkt(self.crs_wkt)
    if not crs.is_projected:
      raise ValueError("a geographic (degree) CRS has no pixel size in metres; expected a "
                       "projected CRS such as MODIS sinusoidal")
    return float(crs.linear_units_factor[1])

  def refined(self, factor: int) -> GeoReference:
    """The same area on a grid `factor` times finer: same origin, pixel size / factor."""
    a, b, c, d, e, f = self.transform
    return GeoReference(self.crs_wkt, (a / factor, b / factor, c, d / factor, e / factor, f))

  def coarsened(self, factor: int) -> GeoReference:
    """The same area on a grid `factor` times coarser: same origin, pixel size * factor."""
    a, b, c, d, e, f = self.transform
    return GeoReference(self.crs_wkt, (a * factor, b * factor, c, d * factor, e * factor, f))

  def matches(self, other: GeoReference, *, pixel_tolerance: float = 1e-3) -> bool:
    """Same CRS and a transform equal to within `pixel_tolerance` of a pixel."""
    if rasterio.crs.CRS.from_wkt(self.crs_wkt) != rasterio.crs.CRS.from_wkt(other.crs_wkt):
      return False
    scale = self.pixel_size
    return all(math.isclose(x, y, abs_tol=pixel_tolerance * scale)
               for x, y in zip(self.transform, other.transform))


def read_geotiff(path: str, *, bands: int | tuple[int, ...] | None = None,
                 shape: tuple[int, int] | None = None) -> tuple[np.ndarray, GeoReference]:
  """Reads a raster as float32 (bands, rows, columns) with its georeferencing.

  Args:
    path: a GeoTIFF (or any raster rasterio reads).
    bands: the band count expected (or a tuple of accepted counts); None accepts any.
    shape: the (rows, columns) expected; None accepts any.
  Raises:
    ValueError naming the file and what was expected, for an unreadable file, a band count or
    shape other than expected, or a raster without a CRS.
  """
  try:
    with rasterio.open(path) as source:
      data = source.read().astype(np.float32)
      crs, transform = source.crs, source.transform
  except rasterio.errors.RasterioError as error:
    raise ValueError(f"{path}: not a readable raster ({error})") from error
  accepted = (bands,) if isinstance(bands, int) else bands
  if accepted is not None and data.shape[0] not in accepted:
    raise ValueError(f"{path}: {data.shape[0]} band(s), expected "
                     f"{' or '.join(str(b) for b in accepted)}")
  if shape is not None and tuple(data.shape[1:]) != tuple(shape):
    raise ValueError(f"{path}: {data.shape[1]} x {data.shape[2]} pixels, expected "
                     f"{shape[0]} x {shape[1]}")
  if crs is None:
    raise ValueError(f"{path}: no coordinate reference system; expected a georeferenced raster")
  return data, GeoReference(crs.to_wkt(), tuple(transform)[:6])


# Cloud-Optimised GeoTIFF layout (GDAL's COG driver): 256 x 256 tiles, internal overviews
# (averages, halving until one tile holds the image), DEFLATE with the floating-point predictor.
COG_OPTIONS = {"blocksize": 256, "compress": "DEFLATE", "predictor": "FLOATING_POINT",
               "overview_resampling": "AVERAGE"}


def write_geotiff(path: str, data: np.ndarray, georef: GeoReference | None, *,
                  nodata: float | None = None, band_names: tuple[str, ...] = (),
                  units: str | tuple[str, ...] = "", tags: dict[str, str] | None = None) -> None:
  """Writes (bands, rows, columns) float32 data as a Cloud-Optimised GeoTIFF (COG_OPTIONS),
  atomically.

  Args:
    path: the file to write.
    data: (bands, rows, columns), converted to float32.
    georef: the grid's georeferencing, or None for a bare pixel grid (a source without it).
    nodata: the value of pixels without data, None where every pixel has data.
    band_names: each band's description (e.g. 'B5 (704 nm)'), or () for none.
    units: every band's unit (e.g. 'K'), or one per band.
    tags: dataset-level metadata (e.g. products.Provenance.as_tags()).
  Raises:
    ValueError naming the file when band_names or units has another length than the bands.
  """
  data = np.asarray(data, np.float32)
  count = data.shape[0]
  units = (units,) * count if isinstance(units, str) else tuple(units)
  for field, values in (("band_names", band_names), ("units", units)):
    if values and len(values) != count:
      raise ValueError(f"{path}: {len(values)} {field} {list(values)} for {count} band(s); "
                       "expected one per band")
  profile = {"driver": "COG", "dtype": "float32", "count": count, "height": data.shape[1],
             "width": data.shape[2], "nodata": nodata, **COG_OPTIONS}
  if georef is not None:
    profile.update(crs=rasterio.crs.CRS.from_wkt(georef.crs_wkt),
                   transform=Affine(*georef.transform))
  with atomic.atomic_path(path) as temporary:
    with rasterio.open(temporary, "w", **profile) as sink:
      sink.write(data)
      for index, name in enumerate(band_names, start=1):
        sink.set_band_description(index, name)
      for index, unit in enumerate(units, start=1):
        if unit:
          sink.set_band_unit(index, unit)
      if tags:
        sink.update_tags(**tags)
