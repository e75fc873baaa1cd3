"""The fractions of data held out for validation and test (data.val_fraction,
data.test_fraction), checked once for every kind of split (scene strips, LST dates or
locations, series rows)."""
from __future__ import annotations


def check_fractions(val_fraction: float, test_fraction: float) -> None:
  """ValueError naming the field unless 0 < val_fraction < 1, 0 <= test_fraction < 1 and
  their sum leaves a training part (< 1)."""
  if not 0 < val_fraction < 1:
    raise ValueError(f"data.val_fraction={val_fraction}: expected a fraction in (0, 1) (a "
                     "validation part is required)")
  if not 0 <= test_fraction < 1:
    raise ValueError(f"data.test_fraction={test_fraction}: expected a fraction in [0, 1)")
  if val_fraction + test_fraction >= 1:
    raise ValueError(f"data.val_fraction={val_fraction} + data.test_fraction={test_fraction} "
                     ">= 1: no data would be left for training")
