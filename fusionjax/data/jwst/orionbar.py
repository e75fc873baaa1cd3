"""The published simulated JWST Orion Bar scene (Guilloteau et al. 2020), read from FITS.

Files (see the data's README): A.fits (4, H, W) abundances, M_1.fits (4, L) spectra in
mJy/arcsec^2, tabwave.fits (L, 1) wavelengths in um, Lm.fits (11, L) NIRCam filter operators
and Lh.fits (L,) NIRSpec throughput (flux to electrons), PSF_spec.fits (K,) NIRSpec
line-spread kernel.
"""
from __future__ import annotations

import os

import numpy as np

from fusionjax.data import fits
from fusionjax.data.jwst.mixture import MixtureScene
from fusionjax.physics import jwst

NIRCAM_FILTERS = ("F115W", "F140M", "F150W", "F150W2", "F162M", "F164N", "F182M", "F187N",
                  "F200W", "F210M", "F212N")


def load_orionbar(directory: str, **instrument_settings):
  """Reads the Orion Bar scene and its instrument operators.

  Args:
    directory: folder holding the FITS files.
    instrument_settings: further JwstInstruments fields (decimation, read noise, ...).
  Returns:
    (MixtureScene, JwstInstruments).
  """
  def path(name):
    return os.path.join(directory, name)

  if not os.path.isdir(directory):
    raise FileNotFoundError(f"data.dir={directory!r}: no such directory (expected the Orion Bar "
                            "FITS files A.fits, M_1.fits, tabwave.fits, Lm.fits, Lh.fits)")
  abundances = fits.read_array(path("A.fits"), (None, None, None), what="abundance maps")
  num_components = abundances.shape[0]
  spectra = fits.read_array(path("M_1.fits"), (num_components, None), what="component spectra")
  num_wavelengths = spectra.shape[1]
  wavelengths = fits.read_array(path("tabwave.fits"), (num_wavelengths, 1),
                                what="wavelengths (um)")[:, 0]
  nircam = fits.read_array(path("Lm.fits"), (len(NIRCAM_FILTERS), num_wavelengths),
                           what="NIRCam filter operators")
  throughput = fits.read_array(path("Lh.fits"), (num_wavelengths,), what="NIRSpec throughput")
  lsf = fits.read_array(path("PSF_spec.fits"), (None,), what="NIRSpec line-spread kernel")
  if lsf.shape[0] % 2 == 0:
    raise ValueError(f"{path('PSF_spec.fits')}: line-spread kernel has {lsf.shape[0]} taps, "
                     "expected an odd number")
  scene = MixtureScene(abundances=abundances.astype(np.float32),
                       spectra=spectra.astype(np.float32), wavelengths_um=wavelengths,
                       name="JWST Orion Bar simulation (Guilloteau et al. 2020)")
  instruments = jwst.JwstInstruments(
      wavelengths_um=wavelengths, nircam_filters=NIRCAM_FILTERS,
      nircam_responses=nircam.astype(np.float32), nirspec_throughput=throughput.astype(np.float32),
      nirspec_lsf=(lsf / lsf.sum()).astype(np.float32), **instrument_settings)
  return scene, instruments
