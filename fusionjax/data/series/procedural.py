"""A procedural Sentinel-2 reflectance series: fields with their own phenology, under clouds.

So that the Koopman experiment runs without downloaded data. Each pixel mixes a bare-soil and a
green-vegetation spectrum (10 Sentinel-2 bands, typical surface reflectances) with a vegetation
fraction following its field's seasonal cycle:
  f(t) = base + amplitude_y * s(day_of_year - phase) ** sharpness,  s = (1 - cos 2 pi x/365) / 2,
one phase, sharpness and base per field and one amplitude per field and year (crops change),
plus sensor noise. Acquisitions come every `revisit_days` (10 by default, one Sentinel-2
satellite) at about 10:30 UTC; clouds are smooth random blobs whose cover varies from date to
date.
"""
from __future__ import annotations

import numpy as np

from fusionjax.data.random_fields import fractal_field
from fusionjax.data.series.reader import ImageSeries

BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
SOIL = np.array([0.08, 0.10, 0.13, 0.16, 0.18, 0.19, 0.21, 0.22, 0.30, 0.25], np.float32)
VEGETATION = np.array([0.03, 0.06, 0.03, 0.10, 0.30, 0.38, 0.42, 0.43, 0.20, 0.10], np.float32)


def make_series(*, size: int = 32, num_years: int = 3, revisit_days: int = 10,
                field_pixels: int = 4, noise: float = 0.005, seed: int = 0) -> ImageSeries:
  """A (T, size, size, 10) reflectance series from 2018-01-01 over `num_years` years.

  Fields are field_pixels x field_pixels squares. Returns reflectance (unitless) with the
  cloudy pixels' values set to 0 and `clear` False there.
  """
  if size % field_pixels:
    raise ValueError(f"size={size} is not a multiple of field_pixels={field_pixels}")
  rng = np.random.default_rng(seed)
  fields = size // field_pixels
  per_field = lambda low, high, *shape: np.kron(rng.uniform(low, high, (*shape, fields, fields)),
                                                np.ones((field_pixels, field_pixels)))
  phase = per_field(60, 200)          # day of the cycle's start
  sharpness = per_field(1.0, 3.0)
  base = per_field(0.05, 0.3)
  amplitude = per_field(0.3, 0.7, num_years)
  days = np.arange(0, 365 * num_years, revisit_days)
  dates = (np.datetime64("2018-01-01T10:30:00", "s")
           + days * np.timedelta64(86400, "s") + rng.integers(-900, 900, len(days)).astype(
               "timedelta64[s]"))
  year = np.minimum(days // 365, num_years - 1)
  season = 0.5 - 0.5 * np.cos(2 * np.pi * ((days % 365)[:, None, None] - phase) / 365.0)
  cover = np.clip(base + amplitude[year] * season ** sharpness, 0.0, 1.0)[..., None]
  values = cover * VEGETATION + (1.0 - cover) * SOIL
  values = values + rng.normal(0.0, noise, values.shape)
  cloud_cover = rng.beta(0.4, 0.6, len(days))             # many clear and many overcast dates
  clear = np.empty((len(days), size, size), bool)
  for index, cover_fraction in enumerate(cloud_cover):
    cloudiness = fractal_field(rng, size, 3.0)
    clear[index] = cloudiness <= np.quantile(cloudiness, 1.0 - cover_fraction)
  values = np.where(clear[..., None], values, 0.0).astype(np.float32)
  return ImageSeries(values=values, clear=clear, dates=dates, bands=BANDS)


def to_ndvi(reflectance: ImageSeries) -> ImageSeries:
  """The NDVI series, (B8 - B4) / (B8 + B4), of a reflectance series with bands BANDS."""
  red = reflectance.values[..., BANDS.index("B4")]
  nir = reflectance.values[..., BANDS.index("B8")]
  ndvi = np.where(reflectance.clear, (nir - red) / np.maximum(nir + red, 1e-6), 0.0)
  return ImageSeries(values=ndvi[..., None].astype(np.float32), clear=reflectance.clear,
                     dates=reflectance.dates, bands=("NDVI",))
