"""Reading FITS arrays with errors that name the file and what was expected."""
from __future__ import annotations

import os

import numpy as np
from astropy.io import fits


def read_array(path: str, expected_shape: tuple[int | None, ...], *,
               what: str = "array") -> np.ndarray:
  """Reads the primary array of a FITS file and checks its shape.

  Args:
    path: FITS file.
    expected_shape: expected shape; None matches any length on that axis.
    what: what the array holds, for error messages.
  Returns:
    The array (native byte order, float64 for floating-point data).
  Raises:
    FileNotFoundError: the file is missing.
    ValueError: the file cannot be read as FITS, holds no array, has the wrong shape or
      non-finite values.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: missing FITS file ({what}, expected shape "
                            f"{_shape_text(expected_shape)})")
  try:
    with fits.open(path, memmap=False) as hdul:
      data = hdul[0].data
  except (OSError, ValueError, TypeError) as error:
    raise ValueError(f"{path}: not a readable FITS file ({what}): {error}") from error
  if data is None:
    raise ValueError(f"{path}: the primary HDU holds no array; expected {what} of shape "
                     f"{_shape_text(expected_shape)}")
  data = np.asarray(data)
  if data.ndim != len(expected_shape) or any(
      want is not None and got != want for got, want in zip(data.shape, expected_shape)):
    raise ValueError(f"{path}: {what} has shape {data.shape}, expected "
                     f"{_shape_text(expected_shape)}")
  data = data.astype(data.dtype.newbyteorder("="))
  if not np.all(np.isfinite(data)):
    raise ValueError(f"{path}: {what} holds {int(np.sum(~np.isfinite(data)))} non-finite values")
  return data


def _shape_text(shape: tuple[int | None, ...]) -> str:
  return "(" + ", ".join("any" if n is None else str(n) for n in shape) + ")"
