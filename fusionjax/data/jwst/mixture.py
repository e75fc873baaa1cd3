"""Spectral-mixture scenes: truth[l, y, x] = sum_k spectra[k, l] * abundances[k, y, x]."""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class MixtureScene:
  """A high-resolution hyperspectral scene stored as its linear-mixture factors.

  Attributes:
    abundances: (K, H, W) abundance maps (dimensionless).
    spectra: (K, L) component spectra, mJy/arcsec^2.
    wavelengths_um: (L,) wavelengths in micrometres.
    name: what the scene is, for logs and FITS headers.
  """
  abundances: np.ndarray
  spectra: np.ndarray
  wavelengths_um: np.ndarray
  name: str

  @property
  def shape(self) -> tuple[int, int, int]:
    """(L, H, W) of the full cube."""
    return (self.spectra.shape[1], *self.abundances.shape[1:])

  def cube(self, columns: slice = slice(None)) -> np.ndarray:
    """The (L, H, w) float32 cube over a range of columns, mJy/arcsec^2."""
    return np.einsum("kl,khw->lhw", self.spectra, self.abundances[:, :, columns],
                     dtype=np.float32, optimize=True)

  def cropped(self, height: int, width: int) -> "MixtureScene":
    """The top-left `height` x `width` pixels of the scene."""
    return dataclasses.replace(self, abundances=self.abundances[:, :height, :width])
