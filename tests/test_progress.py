"""Progress of long loops: logged with the count, the total and an ETA, never for short ones."""
import logging

import pytest

from fusionjax import progress


class _Clock:
  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now


def test_progress_logs_done_total_and_eta_every_few_seconds(caplog):
  clock = _Clock()
  tiles = progress.Progress("Sharpening scene.tif", 100, unit="tiles", every_seconds=10,
                            clock=clock)
  with caplog.at_level(logging.INFO):
    clock.now = 5.0
    tiles.advance(10)           # 5 s: too soon to log
    assert not caplog.records
    clock.now = 20.0
    tiles.advance(30)           # 40 of 100 in 20 s: 30 s to go
    clock.now = 25.0
    tiles.advance(10)           # 5 s after the last line: silent
    clock.now = 3700.0
    tiles.advance(50)
    tiles.finish()
  lines = [r.getMessage() for r in caplog.records]
  assert lines == ["Sharpening scene.tif: 40/100 tiles (40%), 20 s elapsed, ETA 30 s",
                   "Sharpening scene.tif: 100/100 tiles (100%), 1 h 01 min elapsed, ETA 0 s",
                   "Sharpening scene.tif: 100 tiles in 1 h 01 min."]


def test_a_short_loop_is_silent_and_an_unknown_total_logs_the_rate(caplog):
  clock = _Clock()
  with caplog.at_level(logging.INFO):
    quick = progress.Progress("Quick", 3, clock=clock)
    quick.advance(3)
    quick.finish()
    assert not caplog.records
    stream = progress.Progress("Validation", None, unit="batches", every_seconds=1, clock=clock)
    clock.now = 4.0
    stream.advance(8)
  assert caplog.records[0].getMessage() == "Validation: 8 batches, 4 s elapsed, 2 batches/s"


@pytest.mark.parametrize("items", [[1, 2, 3], iter([1, 2, 3])])
def test_counted_yields_every_item(items):
  assert list(progress.counted(items, "Loop")) == [1, 2, 3]


def test_a_compiled_loop_logs_each_report_with_the_total_and_restarts(caplog):
  loop = progress.CompiledLoopLog("Assimilation", "iterations", "misfit")
  with caplog.at_level(logging.INFO):
    loop.log(50, 0.5, total=200)
    loop.log(100, 0.25, total=200)
    loop.log(50, 0.4, total=200)      # a new assimilation
  lines = [r.getMessage() for r in caplog.records]
  assert [line.split(":")[1].split("(")[0].strip() for line in lines] == [
      "50/200 iterations", "100/200 iterations", "50/200 iterations"]
  assert lines[1].endswith("; misfit 0.25") and "ETA" in lines[1]
