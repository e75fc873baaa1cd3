"""Products a run writes, each atomically: eval.json, FITS cubes, quicklook PNGs; and the
provenance recorded in each product's metadata."""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from astropy import wcs  # noqa: E402
from astropy.io import fits  # noqa: E402

import fusionjax  # noqa: E402
from fusionjax import atomic  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Provenance:
  """Where a product comes from: the experiment (config.name), the model (config.model.name),
  the training step of the checkpoint that made it (None where unknown) and its input files
  or scenes."""
  experiment: str
  model: str
  checkpoint_step: int | None
  inputs: tuple[str, ...]

  def as_tags(self) -> dict[str, str]:
    """The metadata a product carries (GeoTIFF tags, FITS HIERARCH keywords): FUSIONJAX_VERSION,
    EXPERIMENT, MODEL, CHECKPOINT_STEP ('unknown' where None), INPUTS (absolute paths where
    they exist, separated by '; ') and CREATED_UTC (now, ISO 8601)."""
    inputs = [os.path.abspath(p) if os.path.exists(p) else p for p in self.inputs]
    step = "unknown" if self.checkpoint_step is None else str(self.checkpoint_step)
    return {"FUSIONJAX_VERSION": fusionjax.__version__, "EXPERIMENT": self.experiment,
            "MODEL": self.model, "CHECKPOINT_STEP": step, "INPUTS": "; ".join(inputs),
            "CREATED_UTC": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds")}


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


@dataclasses.dataclass(frozen=True)
class PlaneSource:
  """A (L, H, W) cube made plane by plane: `planes(start, stop)` gives planes [start, stop) as
  (stop - start, H, W), so a cube too large for memory can be written in pieces."""
  shape: tuple[int, int, int]
  planes: Callable[[int, int], np.ndarray]


def write_fits_cube(path: str, cube: np.ndarray | PlaneSource, wavelengths_um: np.ndarray, *,
                    units: str, pixel_scale_arcsec: float, origin_pixel: tuple[int, int] = (0, 0),
                    celestial: wcs.WCS | None = None, description: str = "",
                    tags: dict[str, str] | None = None, planes_per_write: int = 64) -> None:
  """Writes a (L, H, W) cube (an array or a PlaneSource) as float32 FITS, `planes_per_write`
  wavelengths at a time, with its wavelength axis in a WCS-TAB table; NaN is no-data.

  Spatial axes: with `celestial` (the 2-axis sky WCS of the full (H', W') grid the cube's
  pixels are on, e.g. NIRCam's), RA/Dec of the cube's pixels, `origin_pixel` (row, column)
  of the grid being the cube's first; without it, offsets in arcsec (`pixel_scale_arcsec`
  per pixel) from the scene's first pixel. The wavelength axis (often irregular, e.g. several
  gratings) is tabulated per the FITS -TAB convention (Greisen et al. 2006) in the 'WCS-TAB'
  binary table, so astropy.wcs recovers the exact wavelength of every plane. `tags` (e.g.
  Provenance.as_tags()) become HIERARCH keywords.
  """
  if isinstance(cube, np.ndarray):
    cube = PlaneSource(cube.shape, lambda start, stop, array=cube: array[start:stop])
  num_wavelengths = cube.shape[0]
  header = fits.PrimaryHDU(np.zeros((1, 1, 1), np.float32)).header
  header["NAXIS1"], header["NAXIS2"], header["NAXIS3"] = cube.shape[2], cube.shape[1], \
      num_wavelengths
  header["BUNIT"] = units
  header["WCSAXES"] = 3
  if celestial is not None:
    sky = celestial.slice((slice(origin_pixel[0], None), slice(origin_pixel[1], None)))
    header.extend(card for card in sky.to_header().cards if card.keyword != "WCSAXES")
  else:
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
  for key, value in (tags or {}).items():
    header[f"HIERARCH {key}"] = value
  if description:
    header["COMMENT"] = description
  column = fits.Column(name="WAVELENGTH", format=f"{num_wavelengths}D", unit="um",
                       dim=f"(1,{num_wavelengths})",
                       array=np.asarray(wavelengths_um, np.float64).reshape(1, num_wavelengths, 1))
  table = fits.BinTableHDU.from_columns([column], name="WCS-TAB")
  with atomic.atomic_path(path) as temporary:
    stream = fits.StreamingHDU(temporary, header)
    try:
      for start in range(0, num_wavelengths, planes_per_write):
        stop = min(start + planes_per_write, num_wavelengths)
        planes = np.asarray(cube.planes(start, stop), np.float32)
        if planes.shape != (stop - start, *cube.shape[1:]):
          raise ValueError(f"{path}: planes {start}-{stop} have shape {planes.shape}, expected "
                           f"{(stop - start, *cube.shape[1:])}")
        stream.write(planes)
    finally:
      stream.close()
    fits.append(temporary, table.data, table.header)


def stretch(image: np.ndarray) -> np.ndarray:
  """(H, W, 3) -> 0-1 with a 2-98 % stretch per channel (of its finite values), for display;
  NaN (no-data) stays NaN."""
  low, high = np.nanpercentile(image, [2, 98], axis=(0, 1))
  return np.clip((image - low) / np.maximum(high - low, 1e-6), 0.0, 1.0)


def save_figure(figure, path: str) -> None:
  """Saves a matplotlib figure as PNG atomically and closes it."""
  with atomic.atomic_path(path) as temporary:
    figure.savefig(temporary, format="png", dpi=110, bbox_inches="tight")
  plt.close(figure)
