"""The timing and reporting shared by the PyTorch reference benchmarks."""
from __future__ import annotations

import statistics
import time
import argparse
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


def add_timing_arguments(parser: argparse.ArgumentParser, warmup: int, steps: int) -> None:
  """--warmup (untimed calls) and --steps (timed calls) with these defaults."""
  parser.add_argument("--warmup", type=int, default=warmup)
  parser.add_argument("--steps", type=int, default=steps)


def optimizer_step_seconds(optimizer, loss_fn: Callable[[], object], warmup: int,
                           repeats: int) -> float:
  """Median seconds of an optimizer step: gradients zeroed, loss_fn() (a scalar tensor)
  differentiated, the optimizer's update applied."""
  def step():
    optimizer.zero_grad(set_to_none=True)
    loss_fn().backward()
    optimizer.step()
  return median_seconds(step, warmup, repeats)


def print_train_step(title: str, model, batch: int, step_s: float) -> None:
  """The title, then the model's parameter count, the step time and samples/s."""
  parameters = sum(p.numel() for p in model.parameters())
  print(title)
  print(f"  {'parameters':<26}{parameters:,}")
  print(f"  {'train step, median (s)':<26}{step_s:.3f}")
  print(f"  {'samples/s':<26}{batch / step_s:.3f}")
