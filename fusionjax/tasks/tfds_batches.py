"""Training and validation batches of a task whose data is a prepared TFDS builder."""
from __future__ import annotations

import jax

from fusionjax.data import pipeline


class TfdsBatches:
  """Gives a task with `self.builder` (train and validation splits) and `self.config` (seed,
  data.shuffle_buffer, data.augment) the trainer's `train_batches` and `eval_batches`."""

  def train_batches(self, *, start_step: int, batch_size: int):
    data = self.config.data
    return pipeline.train_batches(
        self.builder, batch_size=batch_size, seed=self.config.seed, start_step=start_step,
        process_index=jax.process_index(), process_count=jax.process_count(),
        shuffle_buffer=data.shuffle_buffer, augment=data.augment)

  def eval_batches(self, *, global_batch_size: int):
    return pipeline.eval_batches(self.builder, "validation", global_batch_size=global_batch_size,
                                 process_index=jax.process_index(),
                                 process_count=jax.process_count())
