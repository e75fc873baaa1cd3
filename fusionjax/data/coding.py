"""Spectral coding: the (optionally reduced) standardised spectral representation models see.

Models never see thousands of raw wavelengths. A spectrum x (L,) is coded as
z = ((x - mean) @ analysis) / scale and decoded as x = (z * scale) @ basis.T + mean, where
basis (L, d) spans the leading principal components of the observed low-resolution cube
(model-based JWST fusion works in such a subspace of dimension 4-10), or is the identity
(basis None, d = L: per-band standardisation).

When the observing spectrograph blurs spectra with a known line-spread function S (an L x L
convolution), the principal components of the observations span S times the scene's subspace.
The scene-side mean and basis are then recovered by Tikhonov-regularised deconvolution,
basis = (S^T S + eps I)^-1 S^T basis_observed, so that one code z describes both the observed
spectrum (observed_mean + observed_basis z) and the scene spectrum (mean + basis z).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import scipy.linalg

from fusionjax.physics import spectral

_FIELDS = ("mean", "scale", "basis", "analysis", "observed_mean", "observed_analysis")


@dataclasses.dataclass(frozen=True)
class SpectralCoding:
  """Affine maps between spectra (..., L) and codes (..., d).

  Attributes:
    mean: (L,) mean scene spectrum.
    scale: (d,) standard deviation of each code component before scaling.
    basis: (L, d) scene-spectrum basis, or None for per-band standardisation.
    analysis: (L, d) least-squares analysis matrix of `basis` (its pseudo-inverse,
      transposed; equal to `basis` when orthonormal), or None.
    observed_mean, observed_analysis: the same for observed (spectrally blurred) spectra,
      or None when observations and scene share the coding.
  """
  mean: np.ndarray
  scale: np.ndarray
  basis: np.ndarray | None = None
  analysis: np.ndarray | None = None
  observed_mean: np.ndarray | None = None
  observed_analysis: np.ndarray | None = None

  @property
  def dim(self) -> int:
    return int(self.scale.shape[0])

  def encode(self, spectra):
    """(..., L) scene spectra -> (..., d) codes; numpy or jax arrays."""
    return self._encode(spectra, self.mean, self.analysis)

  def encode_observed(self, spectra):
    """(..., L) observed spectra -> (..., d) codes."""
    if self.observed_mean is None:
      return self.encode(spectra)
    return self._encode(spectra, self.observed_mean, self.observed_analysis)

  def _encode(self, spectra, mean, analysis):
    centred = spectra - mean
    if analysis is not None:
      centred = centred @ analysis
    return centred / self.scale

  def decode(self, codes, bands: slice = slice(None)):
    """(..., d) codes -> (..., L) scene spectra (or the wavelengths `bands` of them); numpy or
    jax arrays."""
    spectra = codes * self.scale
    if self.basis is not None:
      return spectra @ self.basis[bands].T + self.mean[bands]
    return spectra[..., bands] + self.mean[bands]

  def decoding_matrix(self) -> np.ndarray:
    """(L, d) float64 B with decode(z) = mean + B z."""
    if self.basis is None:
      return np.diag(self.scale).astype(np.float64)
    return self.basis.astype(np.float64) * self.scale[None, :]

  def spectral_metric(self) -> np.ndarray:
    """(d, d) R with ||R (z1 - z2)||^2 = c ||decode(z1) - decode(z2)||^2: code differences
    weighed as the spectra they decode to (R the Cholesky factor of B^T B, scaled by the
    constant c that makes the mean of R's squared singular values 1)."""
    decoding = self.decoding_matrix()
    gram = decoding.T @ decoding
    return (np.linalg.cholesky(gram).T / np.sqrt(np.trace(gram) / len(gram))).astype(np.float32)

  def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
    return {prefix + name: getattr(self, name) for name in _FIELDS
            if getattr(self, name) is not None}

  @classmethod
  def from_arrays(cls, arrays, prefix: str) -> "SpectralCoding":
    return cls(**{name: np.asarray(arrays[prefix + name]) for name in _FIELDS
                  if prefix + name in arrays})


def line_spread_matrix(kernel: np.ndarray, num_wavelengths: int) -> np.ndarray:
  """(L, L) matrix S of `spectral.convolve_spectral` with `kernel` (edge-padded)."""
  identity = np.eye(num_wavelengths, dtype=np.float32)[:, :, None]
  return np.asarray(spectral.convolve_spectral(identity, np.asarray(kernel, np.float32)))[..., 0]


def fit_coding(pixels: np.ndarray, subspace_dim: int = 0, *,
               line_spread: np.ndarray | None = None,
               deconvolution_eps: float = 1e-4) -> SpectralCoding:
  """Fits the coding on observed spectra.

  Args:
    pixels: (N, L) observed spectra, one per pixel.
    subspace_dim: 0 for per-band standardisation (d = L), else the number of principal
      components kept (d = subspace_dim < L).
    line_spread: (K,) line-spread kernel that blurred the observations, or None.
    deconvolution_eps: Tikhonov weight of the line-spread deconvolution (the kernel sums to 1).
  Returns:
    The fitted SpectralCoding (float32).
  """
  pixels = np.asarray(pixels, np.float64)
  num_bands = pixels.shape[1]
  mean = pixels.mean(axis=0)
  centred = pixels - mean
  if subspace_dim == 0:
    scale = centred.std(axis=0)
    return SpectralCoding(mean=mean.astype(np.float32),
                          scale=np.where(scale > 0, scale, 1.0).astype(np.float32))
  if not 0 < subspace_dim < num_bands:
    raise ValueError(f"data.subspace_dim={subspace_dim}: expected 0 (all {num_bands} bands) "
                     f"or a number of components between 1 and {num_bands - 1}")
  # The leading right singular vectors of the centred pixels: the principal axes, in
  # O(min(N, L)^2 max(N, L)) (an eigendecomposition of the L x L covariance costs L^3: 19 s
  # for the 4974 Orion Bar wavelengths, where the thin SVD of a smoke crop's 768 pixels
  # takes under a second).
  basis = scipy.linalg.svd(centred, full_matrices=False)[2][:subspace_dim].T
  basis *= np.sign(basis.sum(axis=0, keepdims=True) + 1e-30)
  scale = (centred @ basis).std(axis=0)
  scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
  if line_spread is None:
    return SpectralCoding(mean=mean.astype(np.float32), scale=scale,
                          basis=basis.astype(np.float32), analysis=basis.astype(np.float32))
  blur = line_spread_matrix(line_spread, num_bands).astype(np.float64)
  normal = blur.T @ blur + deconvolution_eps * np.eye(num_bands)
  scene_mean, scene_basis = np.split(
      scipy.linalg.solve(normal, blur.T @ np.column_stack([mean, basis]), assume_a="pos"),
      [1], axis=1)
  return SpectralCoding(
      mean=scene_mean[:, 0].astype(np.float32), scale=scale,
      basis=scene_basis.astype(np.float32),
      analysis=np.linalg.pinv(scene_basis).T.astype(np.float32),
      observed_mean=mean.astype(np.float32), observed_analysis=basis.astype(np.float32))
