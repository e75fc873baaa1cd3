"""Emission-line fluxes of spectral cubes: the near-infrared lines of H II regions and
photo-dissociation regions, measured as a spectroscopist does (continuum-subtracted flux in
a window around the line), and how well an estimate recovers them.

Cubes are (L, H, W) surface brightness I_nu in mJy/arcsec^2 on wavelengths in micrometres. A
line's flux per pixel is the integral over frequency of I_nu less the continuum,
F = sum_l (I_l - C_l) c / lambda_l^2 dlambda_l over |lambda - lambda_0| <= w, in W m^-2 sr^-1
(astropy.units); the continuum C is the straight line through the medians of the two
side-bands w < |lambda - lambda_0| <= 3 w (medians, so that a neighbouring line does not
raise it). w = max(2 samples, lambda_0 / LINE_RESOLUTION): the line and NIRSpec's spread of
it (resolving power ~2700) on a fine grid, two samples on a coarse one.
"""
from __future__ import annotations

import astropy.constants as const
import astropy.units as u
import numpy as np
import scipy.ndimage

# (name, rest wavelength um): H I recombination (Paschen, Brackett), He I, [Fe II] and the
# H2 1-0 ro-vibrational lines.
EMISSION_LINES = (
    ("He I 1.083", 1.0833), ("Pa gamma", 1.0941), ("[Fe II] 1.257", 1.2570),
    ("Pa beta", 1.2822), ("[Fe II] 1.644", 1.6440), ("Pa alpha", 1.8756),
    ("Br delta", 1.9451), ("H2 1-0 S(3)", 1.9576), ("H2 1-0 S(1)", 2.1218),
    ("Br gamma", 2.1661), ("H2 1-0 S(0)", 2.2235))
LINE_RESOLUTION = 1000.0
# The compact sources of a line: the brightest local maxima of its flux map less the map
# smoothed over SOURCE_SMOOTHING pixels, at least SOURCE_SEPARATION pixels apart, measured in
# apertures of SOURCE_APERTURE x SOURCE_APERTURE pixels.
NUM_SOURCES = 5
SOURCE_SMOOTHING = 3.0
SOURCE_SEPARATION = 7
SOURCE_APERTURE = 3


def _windows(wavelengths_um: np.ndarray, centre_um: float):
  """(line, blue side-band, red side-band) bool masks of a line, or None where the line or
  its side-bands fall off the grid."""
  step = float(np.median(np.diff(wavelengths_um)))
  half = max(2.0 * step, centre_um / LINE_RESOLUTION)
  offset = wavelengths_um - centre_um
  line = np.abs(offset) <= half
  blue = (offset < -half) & (offset >= -3 * half)
  red = (offset > half) & (offset <= 3 * half)
  if not (line.any() and blue.any() and red.any()):
    return None
  return line, blue, red


def measurable_lines(wavelengths_um: np.ndarray) -> tuple[tuple[str, float], ...]:
  """The EMISSION_LINES whose window and side-bands lie on the wavelength grid."""
  return tuple((name, centre) for name, centre in EMISSION_LINES
               if _windows(wavelengths_um, centre) is not None)


def line_flux_maps(cube: np.ndarray, wavelengths_um: np.ndarray) -> dict[str, np.ndarray]:
  """{line name: (H, W) continuum-subtracted line flux, W m^-2 sr^-1} of a (L, H, W) cube
  in mJy/arcsec^2, for every measurable line."""
  wavelengths_um = np.asarray(wavelengths_um, np.float64)
  per_sample = ((1.0 * u.mJy / u.arcsec ** 2) * const.c / (wavelengths_um * u.um) ** 2
                * np.gradient(wavelengths_um) * u.um).to_value(u.W / u.m ** 2 / u.sr)
  maps = {}
  for name, centre in measurable_lines(wavelengths_um):
    line, blue, red = _windows(wavelengths_um, centre)
    cube_blue = np.median(cube[blue], axis=0)
    cube_red = np.median(cube[red], axis=0)
    blue_um, red_um = np.median(wavelengths_um[blue]), np.median(wavelengths_um[red])
    fraction = ((wavelengths_um[line] - blue_um) / (red_um - blue_um))[:, None, None]
    continuum = cube_blue + fraction * (cube_red - cube_blue)
    maps[name] = np.tensordot(per_sample[line], cube[line] - continuum, axes=1)
  return maps


def compact_sources(flux_map: np.ndarray, num_sources: int = NUM_SOURCES) -> list[tuple]:
  """(row, column) of the `num_sources` brightest compact sources of a (H, W) line-flux map
  (module constants), away from the edges by the aperture's half-width."""
  detail = flux_map - scipy.ndimage.gaussian_filter(flux_map, SOURCE_SMOOTHING)
  peaks = detail == scipy.ndimage.maximum_filter(detail, size=SOURCE_SEPARATION)
  margin = SOURCE_APERTURE // 2
  peaks[:margin], peaks[-margin:], peaks[:, :margin], peaks[:, -margin:] = (False,) * 4
  rows, cols = np.nonzero(peaks & (detail > 0))
  order = np.argsort(detail[rows, cols])[::-1][:num_sources]
  return [(int(rows[i]), int(cols[i])) for i in order]


def _aperture(flux_map: np.ndarray, row: int, col: int) -> float:
  half = SOURCE_APERTURE // 2
  return float(flux_map[row - half:row + half + 1, col - half:col + half + 1].sum())


# A line is scored where the truth emits it: its total flux over the region at least this
# fraction of the brightest line's.
MIN_RELATIVE_FLUX = 0.1


def line_flux_errors(truth_maps: dict[str, np.ndarray],
                     estimate_maps: dict[str, np.ndarray]) -> dict:
  """How well `estimate_maps` recover `truth_maps` (both `line_flux_maps`), per line that
  the truth emits (MIN_RELATIVE_FLUX) and on average over those lines:
    region: |sum F_est - sum F_true| / |sum F_true|, the line flux of the whole region;
    map: ||F_est - F_true|| / ||F_true||, pixel by pixel;
    sources: the mean of |A_est - A_true| / |A_true| over the truth's compact sources,
      A the flux in an aperture about each (`compact_sources`).
  """
  totals = {name: float(truth.sum()) for name, truth in truth_maps.items()}
  brightest = max(totals.values(), default=0.0)
  emitted = [name for name, total in totals.items()
             if brightest > 0 and total >= MIN_RELATIVE_FLUX * brightest]
  report = {}
  for name in emitted:
    truth = truth_maps[name]
    estimate = estimate_maps[name]
    sources = compact_sources(truth)
    report[name] = {
        "region": float(abs(estimate.sum() - truth.sum()) / abs(truth.sum())),
        "map": float(np.linalg.norm(estimate - truth) / np.linalg.norm(truth)),
        "sources": float(np.mean([abs(_aperture(estimate, *p) - _aperture(truth, *p))
                                  / abs(_aperture(truth, *p)) for p in sources]))
        if sources else float("nan")}
  report["mean"] = {key: float(np.nanmean([report[name][key] for name in emitted]))
                    for key in ("region", "map", "sources")}
  return report
