"""A JWST observation to fuse, as one FITS file: the NIRSpec IFU cube and the NIRCam images.

Extensions (names as written here; any order):
  NIRSPEC     (L, h, w) float, calibrated surface brightness (BUNIT, e.g. mJy/arcsec2).
  WAVELENGTH  (L,) float, the NIRSpec wavelengths in micrometres.
  NIRCAM      (M, H, W) float, NIRCam images in electrons per pixel of the exposure the model
              was trained for (the simulator's), with H = d h and W = d w; header keys FILT1 ..
              FILTM name the filters in plane order.
The primary header holds PIXSCALE, the NIRCam pixel scale in arcsec.

`write_observation` writes one (e.g. a simulated scene, scripts/simulate_jwst_observation.py);
`read_observation` reads one and names the file, extension and shape on bad input.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
from astropy.io import fits

from fusionjax import atomic


@dataclasses.dataclass(frozen=True)
class Observation:
  """nirspec: (L, h, w) in `units`; nircam: (M, H, W) electrons; wavelengths_um: (L,);
  filters: the M NIRCam filter names; pixel_scale_arcsec: NIRCam pixel scale."""
  nirspec: np.ndarray
  nircam: np.ndarray
  wavelengths_um: np.ndarray
  filters: tuple[str, ...]
  units: str
  pixel_scale_arcsec: float


def write_observation(path: str, observation: Observation, *, description: str = "") -> None:
  """Writes `observation` as FITS (layout in the module docstring), atomically."""
  primary = fits.PrimaryHDU()
  primary.header["PIXSCALE"] = (observation.pixel_scale_arcsec, "NIRCam pixel scale, arcsec")
  if description:
    primary.header["COMMENT"] = description
  nirspec = fits.ImageHDU(np.asarray(observation.nirspec, np.float32), name="NIRSPEC")
  nirspec.header["BUNIT"] = observation.units
  wavelengths = fits.ImageHDU(np.asarray(observation.wavelengths_um, np.float64),
                              name="WAVELENGTH")
  wavelengths.header["BUNIT"] = "um"
  nircam = fits.ImageHDU(np.asarray(observation.nircam, np.float32), name="NIRCAM")
  nircam.header["BUNIT"] = "electron"
  for index, name in enumerate(observation.filters, start=1):
    nircam.header[f"FILT{index}"] = name
  with atomic.atomic_path(path) as temporary:
    fits.HDUList([primary, nirspec, wavelengths, nircam]).writeto(temporary)


def read_observation(path: str) -> Observation:
  """Reads an observation file.

  Raises:
    FileNotFoundError: no such file.
    ValueError: not FITS, a missing extension or filter name, a shape that does not match
      (naming the file, extension and expected shape), non-finite values.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such observation file (expected FITS with extensions "
                            "NIRSPEC, WAVELENGTH and NIRCAM)")
  try:
    with fits.open(path, memmap=False) as hdul:
      names = {hdu.name for hdu in hdul}
      missing = [n for n in ("NIRSPEC", "WAVELENGTH", "NIRCAM") if n not in names]
      if missing:
        raise ValueError(f"{path}: missing extension(s) {missing}; expected NIRSPEC (L, h, w), "
                         "WAVELENGTH (L,) and NIRCAM (M, H, W)")
      nirspec = _array(hdul, "NIRSPEC", 3, path)
      wavelengths = _array(hdul, "WAVELENGTH", 1, path)
      nircam = _array(hdul, "NIRCAM", 3, path)
      units = str(hdul["NIRSPEC"].header.get("BUNIT", ""))
      header = hdul["NIRCAM"].header
      filters = []
      for index in range(1, nircam.shape[0] + 1):
        if f"FILT{index}" not in header:
          raise ValueError(f"{path}: extension NIRCAM has {nircam.shape[0]} planes but no "
                           f"header key FILT{index} naming the filter of plane {index}")
        filters.append(str(header[f"FILT{index}"]))
      pixel_scale = float(hdul[0].header.get("PIXSCALE", np.nan))
  except OSError as error:
    raise ValueError(f"{path}: not a readable FITS file: {error}") from error
  if wavelengths.shape[0] != nirspec.shape[0]:
    raise ValueError(f"{path}: WAVELENGTH has {wavelengths.shape[0]} values, expected one per "
                     f"NIRSPEC plane ({nirspec.shape[0]})")
  return Observation(nirspec=nirspec, nircam=nircam, wavelengths_um=wavelengths,
                     filters=tuple(filters), units=units, pixel_scale_arcsec=pixel_scale)


def _array(hdul, name: str, ndim: int, path: str) -> np.ndarray:
  data = hdul[name].data
  if data is None or data.ndim != ndim:
    got = "no array" if data is None else f"shape {data.shape}"
    raise ValueError(f"{path}: extension {name} holds {got}, expected {ndim} axes")
  data = np.asarray(data, np.float64 if name == "WAVELENGTH" else np.float32)
  if not np.all(np.isfinite(data)):
    raise ValueError(f"{path}: extension {name} holds {int(np.sum(~np.isfinite(data)))} "
                     "non-finite values")
  return data
