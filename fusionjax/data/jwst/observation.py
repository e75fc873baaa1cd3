"""A JWST observation to fuse, as one FITS file: the NIRSpec IFU cube and the NIRCam images.

Extensions (names as written here; any order):
  NIRSPEC     (L, h, w) float, calibrated surface brightness (BUNIT, e.g. mJy/arcsec2).
  WAVELENGTH  (L,) float, the NIRSpec wavelengths in micrometres.
  NIRCAM      (M, H, W) float, NIRCam images in electrons per pixel of the exposure the model
              was trained for (the simulator's), with H = d h and W = d w; header keys FILT1 ..
              FILTM name the filters in plane order. A celestial WCS in its header (RA/Dec
              CTYPE1/CTYPE2 of the columns and rows) places the images, and the fused cube, on
              the sky.
Optional, following the JWST pipeline's ERR and DQ arrays, each the shape of its data:
  NIRSPEC_ERR, NIRCAM_ERR  uncertainties; a non-finite one marks its pixel as no-data.
  NIRSPEC_DQ, NIRCAM_DQ    data-quality flags; a pixel whose flags are not 0 is no-data.
NaN (any non-finite value) in NIRSPEC or NIRCAM is no-data too.
The primary header holds PIXSCALE, the NIRCam pixel scale in arcsec.

`write_observation` writes one (e.g. a simulated scene, scripts/simulate_jwst_observation.py);
`read_observation` reads one and names the file, extension and shape on bad input.
"""
from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np
from astropy import wcs
from astropy.io import fits

from fusionjax import atomic


@dataclasses.dataclass(frozen=True)
class Observation:
  """nirspec: (L, h, w) in `units`; nircam: (M, H, W) electrons; both NaN where no-data;
  wavelengths_um: (L,); filters: the M NIRCam filter names; pixel_scale_arcsec: NIRCam pixel
  scale; celestial: the 2-axis sky WCS of the (H, W) NIRCam grid, None where unknown."""
  nirspec: np.ndarray
  nircam: np.ndarray
  wavelengths_um: np.ndarray
  filters: tuple[str, ...]
  units: str
  pixel_scale_arcsec: float
  celestial: wcs.WCS | None = None


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
  if observation.celestial is not None:
    nircam.header.extend(observation.celestial.to_header().cards)
  with atomic.atomic_path(path) as temporary:
    fits.HDUList([primary, nirspec, wavelengths, nircam]).writeto(temporary)


def read_observation(path: str) -> Observation:
  """Reads an observation file.

  Raises:
    FileNotFoundError: no such file.
    ValueError: not FITS, a missing extension or filter name, a shape that does not match
      (naming the file, extension and expected shape), non-finite wavelengths, a NIRCam
      filter or the whole NIRSpec cube without data, a NIRCam celestial WCS on other axes
      than the images' columns and rows.
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
      nirspec = _without_no_data(hdul, "NIRSPEC", path)
      wavelengths = _array(hdul, "WAVELENGTH", 1, path)
      if not np.all(np.isfinite(wavelengths)):
        raise ValueError(f"{path}: extension WAVELENGTH holds "
                         f"{int(np.sum(~np.isfinite(wavelengths)))} non-finite values")
      nircam = _without_no_data(hdul, "NIRCAM", path)
      units = str(hdul["NIRSPEC"].header.get("BUNIT", ""))
      header = hdul["NIRCAM"].header
      filters = []
      for index in range(1, nircam.shape[0] + 1):
        if f"FILT{index}" not in header:
          raise ValueError(f"{path}: extension NIRCAM has {nircam.shape[0]} planes but no "
                           f"header key FILT{index} naming the filter of plane {index}")
        filters.append(str(header[f"FILT{index}"]))
      pixel_scale = float(hdul[0].header.get("PIXSCALE", np.nan))
      celestial = _celestial(header, path)
  except OSError as error:
    raise ValueError(f"{path}: not a readable FITS file: {error}") from error
  if wavelengths.shape[0] != nirspec.shape[0]:
    raise ValueError(f"{path}: WAVELENGTH has {wavelengths.shape[0]} values, expected one per "
                     f"NIRSPEC plane ({nirspec.shape[0]})")
  if not np.isfinite(nirspec).any():
    raise ValueError(f"{path}: extension NIRSPEC has no pixel with data (all NaN, flagged in "
                     "NIRSPEC_DQ or without a finite NIRSPEC_ERR)")
  for plane, name in zip(nircam, filters):
    if not np.isfinite(plane).any():
      raise ValueError(f"{path}: extension NIRCAM has no pixel with data in filter {name} "
                       "(all NaN, flagged in NIRCAM_DQ or without a finite NIRCAM_ERR)")
  return Observation(nirspec=nirspec, nircam=nircam, wavelengths_um=wavelengths,
                     filters=tuple(filters), units=units, pixel_scale_arcsec=pixel_scale,
                     celestial=celestial)


def _array(hdul, name: str, ndim: int, path: str) -> np.ndarray:
  data = hdul[name].data
  if data is None or data.ndim != ndim:
    got = "no array" if data is None else f"shape {data.shape}"
    raise ValueError(f"{path}: extension {name} holds {got}, expected {ndim} axes")
  return np.asarray(data, np.float64 if name == "WAVELENGTH" else np.float32)


def _without_no_data(hdul, name: str, path: str) -> np.ndarray:
  """The (planes, rows, columns) float32 data of extension `name`, NaN where it has no data:
  non-finite values, pixels whose <name>_DQ flags are not 0 and pixels whose <name>_ERR is not
  finite (where the file has those extensions)."""
  data = _array(hdul, name, 3, path)
  no_data = ~np.isfinite(data)
  names = {hdu.name for hdu in hdul}
  for suffix, flags in (("_DQ", lambda dq: dq != 0), ("_ERR", lambda err: ~np.isfinite(err))):
    if name + suffix not in names:
      continue
    companion = hdul[name + suffix].data
    if companion is None or companion.shape != data.shape:
      got = "no array" if companion is None else f"shape {companion.shape}"
      raise ValueError(f"{path}: extension {name}{suffix} holds {got}, expected {name}'s "
                       f"shape {data.shape}")
    no_data |= flags(companion)
  if no_data.any():
    logging.warning("%s: %d of %d %s values without data (NaN or flagged): no-data.",
                    path, int(no_data.sum()), no_data.size, name)
  return np.where(no_data, np.float32(np.nan), data)


def _celestial(header: fits.Header, path: str) -> wcs.WCS | None:
  """The 2-axis celestial WCS of a NIRCAM header whose CTYPE1/CTYPE2 are RA/Dec (None when
  the header has no celestial axes)."""
  full = wcs.WCS(header)
  if not full.has_celestial:
    return None
  if {full.wcs.lng, full.wcs.lat} != {0, 1}:
    raise ValueError(f"{path}: extension NIRCAM has celestial axes {full.wcs.lng + 1} and "
                     f"{full.wcs.lat + 1} (CTYPE{full.wcs.lng + 1}, CTYPE{full.wcs.lat + 1}), "
                     "expected 1 and 2 (the images' columns and rows)")
  return full.celestial
