import numpy as np
import pytest

from fusionjax.data import coding


def test_subspace_coding_recovers_low_rank_spectra():
  rng = np.random.default_rng(0)
  spectra = rng.random((4, 300))
  pixels = rng.random((500, 4)) @ spectra
  code = coding.fit_coding(pixels, subspace_dim=4)
  assert code.dim == 4 and code.basis.shape == (300, 4)
  codes = code.encode(pixels.astype(np.float32))
  np.testing.assert_allclose(codes.std(axis=0), 1.0, rtol=1e-3)
  np.testing.assert_allclose(code.decode(codes), pixels, rtol=1e-3, atol=1e-3)


def test_full_band_coding_standardises_each_band():
  pixels = np.random.default_rng(1).normal(5.0, [1.0, 3.0, 0.5], (1000, 3))
  code = coding.fit_coding(pixels, subspace_dim=0)
  assert code.basis is None and code.dim == 3
  np.testing.assert_allclose(code.encode(pixels).mean(axis=0), 0.0, atol=1e-5)
  np.testing.assert_allclose(code.decode(code.encode(pixels)), pixels, rtol=1e-5)


def test_line_spread_is_deconvolved_from_the_subspace():
  rng = np.random.default_rng(3)
  spectra = rng.random((3, 200))
  spectra[:, 50] += 20.0  # narrow lines
  spectra[:, 120] += 10.0
  scene = rng.random((400, 3)) @ spectra
  kernel = np.array([0.03, 0.235, 0.47, 0.235, 0.03])
  blur = coding.line_spread_matrix(kernel, 200)
  observed = scene @ blur.T
  plain = coding.fit_coding(observed, subspace_dim=3)
  aware = coding.fit_coding(observed, subspace_dim=3, line_spread=kernel)
  error = lambda c: np.linalg.norm(c.decode(c.encode(scene)) - scene) / np.linalg.norm(scene)
  assert error(plain) > 0.05
  assert error(aware) < 0.01
  # One code describes both the observed and the scene spectrum.
  codes = aware.encode(scene)
  assert np.linalg.norm(aware.encode_observed(observed) - codes) < 0.03 * np.linalg.norm(codes)


def test_arrays_round_trip():
  code = coding.fit_coding(np.random.default_rng(2).random((50, 10)), subspace_dim=3)
  again = coding.SpectralCoding.from_arrays(code.to_arrays("c_"), "c_")
  np.testing.assert_array_equal(again.basis, code.basis)


def test_bad_subspace_dim_is_named():
  with pytest.raises(ValueError, match="data.subspace_dim=12"):
    coding.fit_coding(np.ones((20, 10)), subspace_dim=12)


def test_spectral_metric_weighs_code_differences_as_the_spectra_they_decode_to():
  """||R (z1 - z2)||^2 is the same multiple of ||decode(z1) - decode(z2)||^2 for any codes,
  in a deconvolved subspace (a basis that is not orthonormal) as per band."""
  rng = np.random.default_rng(0)
  pixels = rng.normal(size=(200, 30)) @ rng.normal(size=(30, 30)) + 5.0
  for fitted in (coding.fit_coding(pixels, 4, line_spread=np.array([0.25, 0.5, 0.25])),
                 coding.fit_coding(pixels, 0)):
    metric = fitted.spectral_metric()
    z1, z2 = rng.normal(size=(2, 50, fitted.dim))
    code_norm = np.sum(((z1 - z2) @ metric.T) ** 2, axis=-1)
    spectral_norm = np.sum((fitted.decode(z1) - fitted.decode(z2)) ** 2, axis=-1)
    ratio = code_norm / spectral_norm
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)
