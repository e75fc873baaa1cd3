"""A procedural land-surface-temperature archive, written as MODIS-named GeoTIFF tiles.

So that the main job runs without downloaded data, this writes what `fusionjax.data.modis.reader`
reads: daily LST (day, night; kelvin) and 16-day red/NIR/MIR composites on a sinusoidal 926.6 m
grid. Each tile location has a fractal terrain (km) and vegetation cover; temperatures follow
a surface energy balance in caricature:
  day   T = T_air(date) + heating(date) * (1 - vegetation) - 6.5 K/km * elevation + texture
  night T = T_air(date) - 8 K - 5 K/km * elevation + 1.5 K * vegetation + texture
so the fine structure is partly explained by NDVI (the vegetation), partly by terrain, and
partly by neither.
"""
from __future__ import annotations

import logging
import os

import numpy as np
import rasterio

from fusionjax.data import geotiff
from fusionjax.data.modis import reader as modis
from fusionjax.data.random_fields import fractal_field

PIXEL_M = 926.625433
_SINUSOIDAL = rasterio.crs.CRS.from_proj4(
    "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs").to_wkt()
_ORIGIN_M = (889560.42, 5559752.60)   # upper-left corner of MODIS tile h18v04
_LAPSE_K_PER_KM = 6.5



def _location(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
  """Elevation (km, >= 0) and vegetation cover (0-1, with sharp-edged fields) of one tile."""
  elevation = np.maximum(0.4 + 0.35 * fractal_field(rng, size, 3.5), 0.0)
  smooth = fractal_field(rng, size, 2.5)
  fields = np.repeat(np.repeat(rng.uniform(-1, 1, (size // 4, size // 4)), 4, 0), 4, 1)
  cover = 1.0 / (1.0 + np.exp(-(1.2 * smooth + 1.0 * fields - 0.8 * elevation)))
  return elevation, cover


def _season(day_of_year: np.ndarray | int) -> np.ndarray:
  """0 in mid-January to 1 in mid-July."""
  return 0.5 - 0.5 * np.cos(2 * np.pi * (np.asarray(day_of_year) - 15) / 365.0)


def write_archive(directory: str, *, num_locations: int, num_dates: int, tile_size: int = 64,
                  seed: int = 0) -> None:
  """Writes lst_1km/ and ndvi_1km/ GeoTIFFs for `num_locations` tiles x `num_dates` dates."""
  rng = np.random.default_rng(seed)
  os.makedirs(os.path.join(directory, "lst_1km"), exist_ok=True)
  os.makedirs(os.path.join(directory, "ndvi_1km"), exist_ok=True)
  days = np.linspace(1, 244, num_dates).astype(int)
  grid = int(np.ceil(np.sqrt(num_locations)))
  for index in range(num_locations):
    elevation, cover = _location(rng, tile_size)
    row, col = divmod(index, grid)
    georef = geotiff.GeoReference(_SINUSOIDAL, (
        PIXEL_M, 0.0, _ORIGIN_M[0] + col * tile_size * PIXEL_M,
        0.0, -PIXEL_M, _ORIGIN_M[1] - row * tile_size * PIXEL_M))
    for first_day in sorted({1 + (d - 1) // modis.COMPOSITE_DAYS * modis.COMPOSITE_DAYS
                             for d in days}):
      vegetation = np.clip(cover * (0.35 + 0.65 * _season(first_day + 8)), 0.0, 1.0)
      red = 0.09 - 0.06 * vegetation
      nir = 0.22 + 0.30 * vegetation
      mir = 0.20 - 0.08 * vegetation
      reflectances = np.stack([red, nir, mir]) / modis.REFLECTANCE_PER_STORED_VALUE
      geotiff.write_geotiff(os.path.join(
          directory, "ndvi_1km", f"MOD13A2.A2020{first_day:03d}.h18v04.061.procedural.hdf."
          f"{index:04d}.tif"), reflectances, georef)
    for day in days:
      first_day = 1 + (day - 1) // modis.COMPOSITE_DAYS * modis.COMPOSITE_DAYS
      vegetation = np.clip(cover * (0.35 + 0.65 * _season(first_day + 8)), 0.0, 1.0)
      air = 272.0 + 20.0 * _season(day) + rng.normal(0.0, 2.0)
      heating = (6.0 + 14.0 * _season(day)) * rng.uniform(0.6, 1.0)
      texture = fractal_field(rng, tile_size, 2.0)
      lst_day = (air + heating * (1.0 - vegetation) - _LAPSE_K_PER_KM * elevation
                 + 0.4 * texture)
      lst_night = (air - 8.0 - 5.0 * elevation + 1.5 * vegetation + 0.3 * texture)
      geotiff.write_geotiff(os.path.join(
          directory, "lst_1km", f"MOD11A1.A2020{day:03d}.h18v04.061.procedural.hdf."
          f"{index:04d}.tif"), np.stack([lst_day, lst_night]), georef, units="K",
          band_names=modis.LST_BANDS)
  logging.info("Wrote a procedural LST archive of %d locations x %d dates in %s.",
               num_locations, num_dates, directory)
