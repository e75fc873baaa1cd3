"""A prepared fusion scene: coded model inputs and targets, plus the held-out region in full.

This is the contract between a sensor-specific preparation (JWST, ...) and the generic fusion
task and tile builder. Layout conventions: model arrays are channels-last (rows, columns,
channels); physical cubes are (wavelength, rows, columns) as in FITS.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from fusionjax import atomic
from fusionjax.data import splits
from fusionjax.data.coding import SpectralCoding

# Part of every prepared scene's cache key: bumped when the saved fields change.
FORMAT_VERSION = 7


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
    heldout_col_start: first high-resolution column of the held-out region (a multiple of
      scale_factor): the validation strip, then the test strip (`split_columns`).
    test_col_start: first column of the test strip (a multiple of scale_factor; W where the
      scene has none).
    split_gap: columns left out before each held-out strip (a multiple of scale_factor):
      training tiles end split_gap columns before the validation strip, which ends split_gap
      columns before the test strip.
    heldout_truth: (L, H, W - heldout_col_start) true cube of the held-out region, physical
      units.
    heldout_lr: (L, h, (W - heldout_col_start) / scale_factor) observed low-resolution cube
      there.
    wavelengths_um: (L,) wavelengths (micrometres).
    msi_bands: names of the M multispectral bands.
    units: unit of the cubes, e.g. "mJy/arcsec2".
    pixel_size: high-resolution pixel size, in `pixel_unit` ("arcsec" or "m").
    pixel_unit: unit of pixel_size.
    name: what the scene is.
    base_codes: (H, W, d) the estimate the network corrects where it is computed once with
      the scene from its observations (the JWST model-based fusion, data.base_estimate=
      'model_based'); (0, 0, 0) where the task computes it on every tile.
    base_smoothness: the relative smoothness weight base_codes were computed with, chosen on
      the validation strip's observations by the discrepancy principle (NaN without
      base_codes).
  """
  lr_codes: np.ndarray
  msi: np.ndarray
  truth_codes: np.ndarray
  truth_valid: np.ndarray
  coding: SpectralCoding
  msi_mean: np.ndarray
  msi_scale: np.ndarray
  scale_factor: int
  heldout_col_start: int
  test_col_start: int
  split_gap: int
  heldout_truth: np.ndarray
  heldout_lr: np.ndarray
  wavelengths_um: np.ndarray
  msi_bands: tuple[str, ...]
  units: str
  pixel_size: float
  pixel_unit: str
  name: str
  base_codes: np.ndarray = dataclasses.field(
      default_factory=lambda: np.zeros((0, 0, 0), np.float32))
  base_smoothness: float = float("nan")

  @property
  def code_dim(self) -> int:
    return self.coding.dim

  @property
  def num_msi_bands(self) -> int:
    return int(self.msi.shape[-1])

  @property
  def num_bands(self) -> int:
    return int(self.wavelengths_um.shape[0])

  def split_columns(self, split: str) -> tuple[int, int]:
    """[start, end) high-resolution columns of 'train', 'validation' or 'test' (end = start
    for a test split the scene does not have)."""
    width = self.msi.shape[1]
    gap_before_test = self.split_gap if self.test_col_start < width else 0
    columns = {"train": (0, self.heldout_col_start - self.split_gap),
               "validation": (self.heldout_col_start, self.test_col_start - gap_before_test),
               "test": (self.test_col_start, width)}
    if split not in columns:
      raise ValueError(f"split={split!r}: expected one of {tuple(columns)}")
    return columns[split]

  def strip(self, split: str) -> "HeldOutStrip":
    """The held-out strip of `split` ('validation' or 'test')."""
    start, end = self.split_columns(split)
    f, offset = self.scale_factor, start - self.heldout_col_start
    columns = slice(offset, end - self.heldout_col_start)
    return HeldOutStrip(
        col_start=start, truth=self.heldout_truth[:, :, columns],
        lr=self.heldout_lr[:, :, offset // f:(end - self.heldout_col_start) // f],
        valid=self.truth_valid[:, start:end], lr_codes=self.lr_codes[:, start // f:end // f],
        msi=self.msi[:, start:end])

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


class HeldOutStrip(NamedTuple):
  """Columns [col_start, col_start + w) of a scene, held out from training.

  Attributes: col_start: first high-resolution column; truth: (L, H, w) true cube, physical
  units; lr: (L, h, w / s) observed low-resolution cube; valid: (H, w) bool, where the truth
  is known; lr_codes: (h, w / s, d) coded model input; msi: (H, w, M) standardised
  high-resolution input.
  """
  col_start: int
  truth: np.ndarray
  lr: np.ndarray
  valid: np.ndarray
  lr_codes: np.ndarray
  msi: np.ndarray


def split_columns(width: int, data_config, factor: int) -> tuple[int, int, int]:
  """(heldout_col_start, test_col_start, split_gap) of a scene `width` columns wide by
  data.val_fraction and data.test_fraction (of the width, each strip at least one tile
  unless its fraction is 0) and data.split_gap (columns before each held-out strip, rounded
  up to a multiple of `factor`), every value a multiple of `factor`: training columns, a gap,
  the validation strip, a gap, the test strip (the right-hand end)."""
  tile, gap = data_config.tile_size, data_config.split_gap
  if gap < 0:
    raise ValueError(f"data.split_gap={gap}: expected a number of pixels >= 0")
  gap = -(-gap // factor) * factor
  test_fraction = data_config.get("test_fraction", 0.0)
  splits.check_fractions(data_config.val_fraction, test_fraction)

  def strip_width(fraction: float) -> int:
    return 0 if fraction == 0 else max(tile, int(round(width * fraction / factor)) * factor)
  val_width, test_width = strip_width(data_config.val_fraction), strip_width(test_fraction)
  test_start = width - test_width
  heldout_start = test_start - (gap if test_width else 0) - val_width
  if heldout_start - gap < tile:
    raise ValueError(
        f"a scene {width} pixels wide leaves no {tile}-pixel training tile beside a "
        f"{val_width}-pixel validation strip, a {test_width}-pixel test strip and gaps of "
        f"{gap} (data.val_fraction={data_config.val_fraction}, data.test_fraction="
        f"{test_fraction}, data.split_gap={gap})")
  return heldout_start, test_start, gap
