"""Products a run writes, each atomically: eval.json, FITS cubes, quicklook PNGs."""
from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from astropy.io import fits  # noqa: E402

from fusionjax import atomic  # noqa: E402


def write_json(path: str, payload: dict) -> None:
  """Writes `payload` as indented JSON, atomically (infinities as strings)."""
  def clean(value):
    if isinstance(value, dict):
      return {k: clean(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
      return str(value)
    return value
  with atomic.atomic_path(path) as temporary:
    with open(temporary, "w") as stream:
      json.dump(clean(payload), stream, indent=2, sort_keys=True)
      stream.write("\n")


def write_fits_cube(path: str, cube: np.ndarray, wavelengths_um: np.ndarray, *, units: str,
                    pixel_scale_arcsec: float, origin_pixel: tuple[int, int] = (0, 0),
                    description: str = "") -> None:
  """Writes a (L, H, W) cube as FITS with its wavelength axis in a WCS-TAB table.

  Spatial axes are offsets in arcsec from the scene's first pixel (the scene has no sky
  position); the wavelength axis (often irregular, e.g. several gratings) is tabulated per the
  FITS -TAB convention (Greisen et al. 2006) in the 'WCS-TAB' binary table, so astropy.wcs
  recovers the exact wavelength of every plane.
  """
  num_wavelengths = cube.shape[0]
  primary = fits.PrimaryHDU(np.asarray(cube, np.float32))
  header = primary.header
  header["BUNIT"] = units
  for axis, offset in ((1, origin_pixel[1]), (2, origin_pixel[0])):
    header[f"CTYPE{axis}"] = ("XOFFSET", "") if axis == 1 else ("YOFFSET", "")
    header[f"CUNIT{axis}"] = "arcsec"
    header[f"CRPIX{axis}"] = 1.0
    header[f"CRVAL{axis}"] = offset * pixel_scale_arcsec
    header[f"CDELT{axis}"] = pixel_scale_arcsec
  header["CTYPE3"] = ("WAVE-TAB", "wavelength tabulated in WCS-TAB")
  header["CUNIT3"] = "um"
  header["CRPIX3"] = 1.0
  header["CRVAL3"] = 1.0
  header["CDELT3"] = 1.0
  header["PS3_0"] = "WCS-TAB"
  header["PS3_1"] = "WAVELENGTH"
  if description:
    header["COMMENT"] = description
  column = fits.Column(name="WAVELENGTH", format=f"{num_wavelengths}D", unit="um",
                       dim=f"(1,{num_wavelengths})",
                       array=np.asarray(wavelengths_um, np.float64).reshape(1, num_wavelengths, 1))
  table = fits.BinTableHDU.from_columns([column], name="WCS-TAB")
  with atomic.atomic_path(path) as temporary:
    fits.HDUList([primary, table]).writeto(temporary, overwrite=True)


def save_figure(figure, path: str) -> None:
  """Saves a matplotlib figure as PNG atomically and closes it."""
  with atomic.atomic_path(path) as temporary:
    figure.savefig(temporary, format="png", dpi=110, bbox_inches="tight")
  plt.close(figure)
