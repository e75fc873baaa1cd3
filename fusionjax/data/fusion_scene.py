"""A prepared fusion scene: coded model inputs and targets, plus the held-out region in full.

This is the contract between a sensor-specific preparation (JWST, ...) and the generic fusion
task and tile builder. Layout conventions: model arrays are channels-last (rows, columns,
channels); physical cubes are (wavelength, rows, columns) as in FITS.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from fusionjax import atomic
from fusionjax.data.coding import SpectralCoding

# Part of every prepared scene's cache key: bumped when the saved fields change.
FORMAT_VERSION = 4


@dataclasses.dataclass(frozen=True)
class FusionScene:
  """One scene ready for fusion.

  Attributes:
    lr_codes: (h, w, d) coded low-resolution hyperspectral image.
    msi: (H, W, M) standardised high-resolution multispectral image (H = scale_factor * h).
    truth_codes: (H, W, d) coded high-resolution truth.
    truth_valid: (H, W) bool, False where the truth is unknown (no-data or saturated pixels):
      such pixels count in neither the loss nor the metrics.
    coding: the spectral coding of lr_codes and truth_codes.
    msi_mean, msi_scale: (M,) standardisation of the multispectral bands (their units).
    scale_factor: resolution ratio between the two images.
    val_col_start: first high-resolution column of the held-out region (a multiple of
      scale_factor); columns before it are for training.
    val_truth: (L, H, W - val_col_start) true cube of the held-out region, physical units.
    val_lr: (L, h, (W - val_col_start) / scale_factor) observed low-resolution cube there.
    wavelengths_um: (L,) wavelengths (micrometres).
    msi_bands: names of the M multispectral bands.
    units: unit of the cubes, e.g. "mJy/arcsec2".
    pixel_size: high-resolution pixel size, in `pixel_unit` ("arcsec" or "m").
    pixel_unit: unit of pixel_size.
    name: what the scene is.
  """
  lr_codes: np.ndarray
  msi: np.ndarray
  truth_codes: np.ndarray
  truth_valid: np.ndarray
  coding: SpectralCoding
  msi_mean: np.ndarray
  msi_scale: np.ndarray
  scale_factor: int
  val_col_start: int
  val_truth: np.ndarray
  val_lr: np.ndarray
  wavelengths_um: np.ndarray
  msi_bands: tuple[str, ...]
  units: str
  pixel_size: float
  pixel_unit: str
  name: str

  @property
  def code_dim(self) -> int:
    return self.coding.dim

  @property
  def num_msi_bands(self) -> int:
    return int(self.msi.shape[-1])

  @property
  def num_bands(self) -> int:
    return int(self.wavelengths_um.shape[0])

  @property
  def val_valid(self) -> np.ndarray:
    """(H, W - val_col_start) bool validity of the held-out region's truth."""
    return self.truth_valid[:, self.val_col_start:]

  def val_inputs(self) -> tuple[np.ndarray, np.ndarray]:
    """Coded LR (h, wv, d) and standardised MSI (H, Wv, M) of the held-out region."""
    lr_start = self.val_col_start // self.scale_factor
    return self.lr_codes[:, lr_start:], self.msi[:, self.val_col_start:]

  def save(self, path: str) -> None:
    """Writes the scene as one .npz, atomically."""
    arrays = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
              if field.name != "coding"}
    arrays.update(self.coding.to_arrays("coding_"))
    arrays["msi_bands"] = np.array(self.msi_bands)
    with atomic.atomic_path(path) as temporary:
      with open(temporary, "wb") as stream:
        np.savez(stream, **arrays)

  @classmethod
  def load(cls, path: str) -> "FusionScene":
    with np.load(path) as arrays:
      values = {}
      for field in dataclasses.fields(cls):
        if field.name == "coding":
          values["coding"] = SpectralCoding.from_arrays(arrays, "coding_")
        elif field.name == "msi_bands":
          values["msi_bands"] = tuple(str(b) for b in arrays["msi_bands"])
        elif field.type in ("int", "float", "str"):
          values[field.name] = {"int": int, "float": float, "str": str}[field.type](
              arrays[field.name])
        else:
          values[field.name] = arrays[field.name]
    return cls(**values)


def validation_start(width: int, fraction: float, tile_size: int, factor: int) -> int:
  """First column of the held-out strip: about `fraction` of the width, at least one tile."""
  val_width = max(tile_size, int(round(width * fraction / factor)) * factor)
  if width - val_width < tile_size:
    raise ValueError(f"scene width {width} leaves no room for a {tile_size}-pixel training tile "
                     f"beside a {val_width}-pixel validation strip (data.val_fraction={fraction})")
  return width - val_width
