"""Spectral coding: the (optionally reduced) standardised spectral representation models see.

Models never see thousands of raw wavelengths. A spectrum x (L,) is coded as
z = ((x - mean) @ basis) / scale, where basis (L, d) spans the leading principal components of
the observed low-resolution hyperspectral cube (model-based JWST fusion works in such a
subspace of dimension 4-10) or is the identity (basis None, d = L: per-band standardisation).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import scipy.linalg


@dataclasses.dataclass(frozen=True)
class SpectralCoding:
  """Affine map between spectra (..., L) and codes (..., d).

  Attributes:
    mean: (L,) mean spectrum.
    scale: (d,) standard deviation of each code component before scaling.
    basis: (L, d) orthonormal subspace basis, or None for per-band standardisation.
  """
  mean: np.ndarray
  scale: np.ndarray
  basis: np.ndarray | None

  @property
  def dim(self) -> int:
    return int(self.scale.shape[0])

  def encode(self, spectra):
    """(..., L) spectra -> (..., d) codes; numpy or jax arrays."""
    centred = spectra - self.mean
    if self.basis is not None:
      centred = centred @ self.basis
    return centred / self.scale

  def decode(self, codes):
    """(..., d) codes -> (..., L) spectra; numpy or jax arrays."""
    spectra = codes * self.scale
    if self.basis is not None:
      spectra = spectra @ self.basis.T
    return spectra + self.mean

  def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
    arrays = {f"{prefix}mean": self.mean, f"{prefix}scale": self.scale}
    if self.basis is not None:
      arrays[f"{prefix}basis"] = self.basis
    return arrays

  @classmethod
  def from_arrays(cls, arrays, prefix: str) -> "SpectralCoding":
    basis = arrays[f"{prefix}basis"] if f"{prefix}basis" in arrays else None
    return cls(mean=np.asarray(arrays[f"{prefix}mean"]), scale=np.asarray(arrays[f"{prefix}scale"]),
               basis=None if basis is None else np.asarray(basis))


def fit_coding(pixels: np.ndarray, subspace_dim: int = 0) -> SpectralCoding:
  """Fits the coding on observed spectra.

  Args:
    pixels: (N, L) spectra, one per pixel.
    subspace_dim: 0 for per-band standardisation (d = L), else the number of principal
      components kept (d = subspace_dim < L).
  Returns:
    The fitted SpectralCoding (float32).
  """
  pixels = np.asarray(pixels, np.float64)
  num_pixels, num_bands = pixels.shape
  mean = pixels.mean(axis=0)
  centred = pixels - mean
  if subspace_dim == 0:
    scale = centred.std(axis=0)
    basis = None
  else:
    if not 0 < subspace_dim < num_bands:
      raise ValueError(f"model.subspace_dim={subspace_dim}: expected 0 (all {num_bands} bands) "
                       f"or a number of components between 1 and {num_bands - 1}")
    covariance = centred.T @ centred / num_pixels
    _, vectors = scipy.linalg.eigh(covariance, subset_by_index=[num_bands - subspace_dim,
                                                                num_bands - 1])
    basis = vectors[:, ::-1]
    basis *= np.sign(basis.sum(axis=0, keepdims=True) + 1e-30)
    scale = (centred @ basis).std(axis=0)
  scale = np.where(scale > 0, scale, 1.0)
  return SpectralCoding(mean=mean.astype(np.float32), scale=scale.astype(np.float32),
                        basis=None if basis is None else basis.astype(np.float32))
