"""Orbax checkpoints behind one small interface: save every N steps, keep K, restore latest."""
from __future__ import annotations

import logging
import os

import jax
import orbax.checkpoint as ocp


class Checkpointer:
  """Saves and restores a training-state pytree in `directory`.

  Orbax writes each checkpoint to a temporary directory and renames it when complete, so a
  run killed mid-save leaves the previous checkpoints intact and restores the latest complete
  one.
  """

  def __init__(self, directory: str, *, save_every: int, keep: int):
    self._manager = ocp.CheckpointManager(
        os.path.abspath(directory),
        options=ocp.CheckpointManagerOptions(save_interval_steps=save_every, max_to_keep=keep,
                                             create=True, cleanup_tmp_directories=True))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state, *, force: bool = False) -> bool:
    """Saves `state` at `step` if due (or `force`); returns whether it saved."""
    return self._manager.save(step, args=ocp.args.StandardSave(state), force=force)

  def restore(self, template, step: int | None = None):
    """Restores step `step` (default latest) with the structure, dtypes and shardings of
    `template`."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self._manager.directory}")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    logging.info("Restoring checkpoint of step %d from %s.", step, self._manager.directory)
    return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def wait(self) -> None:
    """Blocks until asynchronous saves are on disk."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()


def latest_step(directory: str) -> int | None:
  """The step of the latest complete checkpoint in `directory`; None where there is none (or
  no such folder, which is not created)."""
  if not os.path.isdir(directory):
    return None
  manager = ocp.CheckpointManager(os.path.abspath(directory))
  try:
    return manager.latest_step()
  finally:
    manager.close()
