"""Emission-line fluxes: the measured flux of a known line, and the errors of estimates."""
import astropy.constants as const
import astropy.units as u
import numpy as np

from fusionjax.physics import lines


def _cube_with_line(wavelengths, amplitude_map, centre=2.1218, sigma_um=0.0006):
  """(L, H, W) mJy/arcsec^2: a sloped continuum plus a Gaussian line of the given peak map."""
  continuum = 3.0 + 2.0 * (wavelengths - 2.0)
  profile = np.exp(-0.5 * ((wavelengths - centre) / sigma_um) ** 2)
  return (continuum[:, None, None] + profile[:, None, None] * amplitude_map[None]).astype(
      np.float64)


def test_line_flux_is_the_integral_over_frequency_above_the_continuum():
  """On a fine grid (the Orion Bar's 0.27 nm), a Gaussian line of peak A (mJy/arcsec^2)
  and width sigma has the flux A sqrt(2 pi) sigma c / lambda^2 in W m^-2 sr^-1; the
  sloped continuum is removed."""
  wavelengths = np.arange(2.08, 2.18, 0.00027)
  amplitude = np.array([[10.0, 0.0], [40.0, 5.0]])
  sigma_um = 0.0006
  maps = lines.line_flux_maps(_cube_with_line(wavelengths, amplitude, sigma_um=sigma_um),
                              wavelengths)
  assert set(maps) == {"H2 1-0 S(1)", "Br gamma"}
  expected = (amplitude * u.mJy / u.arcsec ** 2 * np.sqrt(2 * np.pi) * sigma_um * u.um
              * const.c / (2.1218 * u.um) ** 2).to_value(u.W / u.m ** 2 / u.sr)
  np.testing.assert_allclose(maps["H2 1-0 S(1)"], expected, rtol=0.01, atol=1e-3 * expected.max())
  np.testing.assert_allclose(maps["Br gamma"], 0.0, atol=1e-3 * expected.max())


def test_line_flux_errors_find_the_compact_source_and_score_estimates():
  """A compact knot on a smooth line-emitting field: it is the brightest compact source; an
  estimate with the knot's flux halved errs by about half there, much less over the region,
  and the truth itself errs by nothing."""
  wavelengths = np.arange(2.08, 2.18, 0.00027)
  rows, cols = np.mgrid[0:30, 0:40]
  field = 5.0 + 0.1 * cols
  knot = 60.0 * np.exp(-0.5 * ((rows - 12) ** 2 + (cols - 25) ** 2) / 0.8 ** 2)
  truth = lines.line_flux_maps(_cube_with_line(wavelengths, field + knot), wavelengths)
  assert lines.compact_sources(truth["H2 1-0 S(1)"])[0] == (12, 25)
  halved = lines.line_flux_maps(_cube_with_line(wavelengths, field + knot / 2), wavelengths)
  errors = lines.line_flux_errors(truth, halved)["H2 1-0 S(1)"]
  assert 0.35 < errors["sources"] < 0.5
  assert errors["region"] < 0.1 and errors["map"] < errors["sources"]
  perfect = lines.line_flux_errors(truth, truth)
  assert perfect["mean"] == {"region": 0.0, "map": 0.0, "sources": 0.0}
