"""Progress of long host-side loops (tiled prediction, data preparation, evaluation), logged
as "<what>: done/total (percent), elapsed, ETA" at most every few seconds, so that a loop of
a few seconds stays silent and a loop of an hour says where it is."""
from __future__ import annotations

import logging
import time


def _duration(seconds: float) -> str:
  """'1 h 02 min', '3 min 05 s' or '12 s'."""
  seconds = int(round(seconds))
  hours, rest = divmod(seconds, 3600)
  minutes, seconds = divmod(rest, 60)
  if hours:
    return f"{hours} h {minutes:02d} min"
  if minutes:
    return f"{minutes} min {seconds:02d} s"
  return f"{seconds} s"


class Progress:
  """Counts the items of a loop and logs its progress.

  Usage: `progress = Progress("Sharpening scene.tif", total=len(tiles), unit="tiles")`, then
  `progress.advance(n)` after each n items and `progress.finish()` at the end. Lines are
  logged at most every `every_seconds`, the first one after `every_seconds`; finish logs the
  total time when any progress line was logged. `total=None` (an iterator of unknown length)
  logs the count and rate without an ETA.
  """

  def __init__(self, what: str, total: int | None, *, unit: str = "items",
               every_seconds: float = 10.0, clock=time.monotonic):
    self.what, self.total, self.unit = what, total, unit
    self.every_seconds, self._clock = every_seconds, clock
    self.done = 0
    self._start = self._last = clock()
    self._logged = False

  def line(self) -> str:
    """'<what>: 40/100 tiles (40%), 12 s elapsed, ETA 18 s' (or without the total)."""
    elapsed = self._clock() - self._start
    if not self.total:
      rate = self.done / elapsed if elapsed > 0 else 0.0
      return f"{self.what}: {self.done} {self.unit}, {_duration(elapsed)} elapsed, " \
             f"{rate:.3g} {self.unit}/s"
    remaining = elapsed * (self.total - self.done) / self.done if self.done else float("nan")
    eta = _duration(remaining) if self.done else "unknown"
    return (f"{self.what}: {self.done}/{self.total} {self.unit} "
            f"({100 * self.done / self.total:.0f}%), {_duration(elapsed)} elapsed, ETA {eta}")

  def advance(self, count: int = 1) -> None:
    self.done += count
    now = self._clock()
    if now - self._last >= self.every_seconds:
      self._last = now
      self._logged = True
      logging.info(self.line())

  def finish(self) -> None:
    if self._logged:
      logging.info("%s: %d %s in %s.", self.what, self.done, self.unit,
                   _duration(self._clock() - self._start))


def counted(items, what: str, *, total: int | None = None, unit: str = "items",
            every_seconds: float = 10.0):
  """Yields the elements of `items`, logging the progress of the loop over them (a
  `Progress` of `total` elements, len(items) when it has a length)."""
  if total is None and hasattr(items, "__len__"):
    total = len(items)
  progress = Progress(what, total, unit=unit, every_seconds=every_seconds)
  for item in items:
    yield item
    progress.advance()
  progress.finish()


class CompiledLoopLog:
  """Progress of a loop that runs inside compiled code, logged by a host callback
  (jax.debug.callback) every few iterations: `log(iteration, value, total=...)` logs
  "<what>: 50/200 <unit> (25%), ..., ETA ...; <value_name> <value>". An iteration below the
  last one logged (or another total) starts a new loop."""

  def __init__(self, what: str, unit: str, value_name: str):
    self.what, self.unit, self.value_name = what, unit, value_name
    self._current: Progress | None = None

  def log(self, iteration, value, *, total: int) -> None:
    iteration = int(iteration)
    current = self._current
    if current is None or iteration < current.done or current.total != total:
      current = self._current = Progress(self.what, total, unit=self.unit)
    current.done = iteration
    logging.info("%s; %s %.6g", current.line(), self.value_name, float(value))
