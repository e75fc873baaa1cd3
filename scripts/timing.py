"""The timing shared by the PyTorch reference benchmarks."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(fn: Callable[[], object], warmup: int, repeats: int) -> float:
  """Median wall time of `repeats` calls of fn() after `warmup` untimed ones, in seconds."""
  times = []
  for i in range(warmup + repeats):
    start = time.perf_counter()
    fn()
    if i >= warmup:
      times.append(time.perf_counter() - start)
  return statistics.median(times)
