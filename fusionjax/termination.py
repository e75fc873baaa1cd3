"""SIGTERM (the usual preemption notice) as a training step at which to save and exit."""
from __future__ import annotations

import logging
import signal
import threading

import jax
from jax.experimental import multihost_utils


class TerminationNotice:
  """SIGTERM (the usual preemption notice) as a step at which to save and exit.

  In one process a Python handler notes the signal, and `reached(step)` is true from the next
  step on. With several processes, the notice may reach them at different steps (or only
  some of them): JAX's preemption service (started by jax.distributed.initialize) catches
  SIGTERM and agrees on a step, the same in every process, at which `reached` is true.
  """

  def __init__(self):
    self._received = False
    self._previous = None

  def __enter__(self):
    if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._notice)
    return self

  def _notice(self, signum, frame):
    del signum, frame
    logging.warning("SIGTERM received: saving a checkpoint after this step.")
    self._received = True

  def reached(self, step: int) -> bool:
    """Whether to save and exit after `step`; called once for every step, in order."""
    if jax.process_count() > 1:
      return multihost_utils.reached_preemption_sync_point(step)
    return self._received

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
    return False
