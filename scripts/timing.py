"""The one timing helper of the benchmarks (scripts/benchmark.py and the PyTorch references
scripts/benchmark_torch_*.py, which run without JAX), and the line a reference prints its
median step time on, for scripts/benchmark.py to read."""
from __future__ import annotations

import argparse
import dataclasses
import re
import statistics
import time
from collections.abc import Callable

# The line a reference benchmark prints its median training-step time on.
MEDIAN_LINE = "median_step_s="


@dataclasses.dataclass(frozen=True)
class Timing:
  """Wall seconds of each warm-up call and of each timed call."""
  warmup_s: tuple[float, ...]
  times_s: tuple[float, ...]

  @property
  def median_s(self) -> float:
    return statistics.median(self.times_s)


def time_calls(fn: Callable[[], object], warmup: int, repeats: int,
               block: Callable[[object], object] = lambda result: result) -> Timing:
  """Times `warmup` then `repeats` calls of fn(), each until block(fn()) returns (e.g.
  jax.block_until_ready; PyTorch on a CPU computes eagerly)."""
  times = []
  for _ in range(warmup + repeats):
    start = time.perf_counter()
    block(fn())
    times.append(time.perf_counter() - start)
  return Timing(tuple(times[:warmup]), tuple(times[warmup:]))


def add_timing_arguments(parser: argparse.ArgumentParser, warmup: int, steps: int) -> None:
  """--warmup (untimed calls) and --steps (timed calls) with these defaults."""
  parser.add_argument("--warmup", type=int, default=warmup, help="untimed calls first")
  parser.add_argument("--steps", type=int, default=steps, help="timed calls (the repeat count)")


def optimizer_step_seconds(optimizer, loss_fn: Callable[[], object], warmup: int,
                           repeats: int) -> float:
  """Median seconds of an optimizer step: gradients zeroed, loss_fn() (a scalar tensor)
  differentiated, the optimizer's update applied."""
  def step():
    optimizer.zero_grad(set_to_none=True)
    loss_fn().backward()
    optimizer.step()
  return time_calls(step, warmup, repeats).median_s


def print_train_step(title: str, model, batch: int, step_s: float) -> None:
  """The title, then the model's parameter count, the step time and samples/s, and the
  median step time on its MEDIAN_LINE."""
  parameters = sum(p.numel() for p in model.parameters())
  print(title)
  print(f"  {'parameters':<26}{parameters:,}")
  print(f"  {'train step, median (s)':<26}{step_s:.3f}")
  print(f"  {'samples/s':<26}{batch / step_s:.3f}")
  print_median(step_s)


def print_median(step_s: float) -> None:
  """The MEDIAN_LINE of a reference's median training-step time."""
  print(f"{MEDIAN_LINE}{step_s!r}", flush=True)


def parse_median(output: str) -> float:
  """The median step time printed on a reference's MEDIAN_LINE; ValueError if none."""
  found = re.findall(rf"^{re.escape(MEDIAN_LINE)}(\S+)$", output, re.MULTILINE)
  if not found:
    raise ValueError(f"no line '{MEDIAN_LINE}<seconds>' in the reference's output:\n{output}")
  return float(found[-1])
