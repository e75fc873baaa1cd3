import jax.numpy as jnp
import numpy as np
import pytest

from fusionjax.physics import noise, psf, sampling, spectral


def test_diffraction_fwhm_matches_jwst_figures():
  # About 0.04" at 1.15 um and 0.07" at 2.1 um for D = 6.5 m.
  fwhm = psf.diffraction_fwhm_arcsec(np.array([1.15, 2.1]), 6.5)
  np.testing.assert_allclose(fwhm, [0.0374, 0.0683], rtol=0.02)


def test_gaussian_blur_conserves_flux_and_widens_with_sigma():
  cube = np.zeros((2, 41, 41), np.float32)
  cube[:, 20, 20] = 100.0
  sigma = jnp.array([0.8, 2.0])
  blurred = np.asarray(psf.gaussian_blur(jnp.asarray(cube), sigma, psf.kernel_radius(sigma)))
  np.testing.assert_allclose(blurred.sum(axis=(1, 2)), 100.0, rtol=1e-5)
  assert blurred[0, 20, 20] > blurred[1, 20, 20]
  # Second moment of the blurred point source equals sigma^2 along each axis.
  rows = np.arange(41) - 20
  variance = (blurred.sum(axis=2) * rows[None] ** 2).sum(axis=1) / 100.0
  np.testing.assert_allclose(variance, np.asarray(sigma) ** 2, rtol=0.02)


def test_decimate_shape_and_block_mean():
  cube = np.arange(2 * 6 * 9, dtype=np.float32).reshape(2, 6, 9)
  coarse = np.asarray(sampling.decimate(jnp.asarray(cube), 3))
  assert coarse.shape == (2, 2, 3)
  assert coarse[1, 1, 2] == pytest.approx(cube[1, 3:6, 6:9].mean())


def test_decimate_rejects_non_multiple():
  with pytest.raises(ValueError, match="not a multiple of the factor 3"):
    sampling.decimate(jnp.zeros((1, 7, 9)), 3)


def test_bicubic_is_aligned_with_decimation():
  # A linear ramp decimated by block means and upsampled again is the same ramp inside.
  ramp = np.tile(np.arange(30, dtype=np.float32), (30, 1))[None]
  coarse = sampling.decimate(jnp.asarray(ramp), 3)
  up = np.asarray(sampling.upsample_bicubic(jnp.moveaxis(coarse, 0, -1), 3))[..., 0]
  np.testing.assert_allclose(up[5:-5, 5:-5], ramp[0, 5:-5, 5:-5], atol=1e-4)


def test_filter_integration_equals_direct_sum():
  rng = np.random.default_rng(0)
  cube = rng.random((7, 4, 5)).astype(np.float32)
  responses = rng.random((3, 7)).astype(np.float32)
  images = np.asarray(spectral.integrate_filters(jnp.asarray(cube), jnp.asarray(responses)))
  direct = np.zeros((3, 4, 5))
  for m in range(3):
    for l in range(7):
      direct[m] += responses[m, l] * cube[l]
  np.testing.assert_allclose(images, direct, rtol=1e-5)


def test_bandpass_integrates_flat_spectrum_to_bandwidth():
  wavelengths = np.linspace(1.0, 2.35, 4000)
  responses = spectral.bandpass_responses(wavelengths)
  # A flat 1 unit spectrum gives electrons ~ bandwidth (um) at unit conversion.
  widths = np.array([w for _, _, w in spectral.NIRCAM_SW_FILTERS])
  inside = widths < 0.9  # F150W2 is wider than its flat top
  np.testing.assert_allclose(responses.sum(axis=1)[inside], widths[inside], rtol=0.12)


def test_line_spread_keeps_flat_spectrum_and_flux():
  kernel = jnp.array([0.25, 0.5, 0.25])
  flat = jnp.full((20, 2, 2), 3.0)
  np.testing.assert_allclose(spectral.convolve_spectral(flat, kernel), 3.0, rtol=1e-6)
  line = jnp.zeros((20, 1, 1)).at[10].set(1.0)
  assert float(spectral.convolve_spectral(line, kernel).sum()) == pytest.approx(1.0)


def test_detector_noise_statistics():
  rng = np.random.default_rng(1)
  expected = np.full(200_000, 400.0)
  noisy = noise.add_detector_noise(expected, read_noise_e=15.0, rng=rng)
  assert noisy.mean() == pytest.approx(400.0, rel=0.005)
  assert noisy.var() == pytest.approx(400.0 + 15.0 ** 2, rel=0.02)
