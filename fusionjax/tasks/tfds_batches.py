"""Tasks whose data is a TFDS builder: prepared once by process 0, then read as training and
validation batches by every process (fusionjax.data.pipeline)."""
from __future__ import annotations

import os
from collections.abc import Callable

import jax
import tensorflow_datasets as tfds
from jax.experimental import multihost_utils

from fusionjax import atomic
from fusionjax.data import pipeline
from fusionjax.tasks.base import Task


def prepared_builder(make_builder: Callable[[], tfds.core.DatasetBuilder],
                     prepare_source: Callable[[], None],
                     lock_path: str) -> tfds.core.DatasetBuilder:
  """Process 0 prepares the source (if needed) and writes the TFRecords, holding the lock
  file `lock_path` (runs that share a data.cache_dir, e.g. the trials of a tuning study,
  prepare one at a time and reuse each other's data); every process then opens the same
  builder. `prepare_source` runs on process 0 only."""
  if jax.process_index() == 0:
    with atomic.exclusive(lock_path):
      prepare_source()
      builder = make_builder()
      builder.download_and_prepare()
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices("task data prepared")
  return builder if jax.process_index() == 0 else make_builder()


class TfdsTask(Task):
  """A task with `self.builder` (train and validation splits) and `self.config` (seed,
  data.num_streams, data.num_shards, data.shuffle_buffer, data.augment, data.skip_corrupt):
  its `train_batches`, `eval_batches` and `skipped_records`."""

  @classmethod
  def validate(cls, config, mode: str) -> None:
    """Also: data.dir exists; data.num_streams splits the global batch, is shared evenly by
    the processes and has a shard to read each (see fusionjax.data.pipeline)."""
    super().validate(config, mode)
    for path in cls.data_paths(config):
      if not os.path.exists(path):
        raise FileNotFoundError(f"data.dir={path!r}: no such file or directory")
    streams = config.data.num_streams
    pipeline.stream_batch_size(config.train.batch_size, streams)
    pipeline.process_streams(streams, jax.process_index(), jax.process_count())
    if config.data.num_shards < streams:
      raise ValueError(f"data.num_shards={config.data.num_shards} is fewer than "
                       f"data.num_streams={streams}: every read stream needs a shard")

  @classmethod
  def data_paths(cls, config) -> list[str]:
    """The files or folders the data is read from: data.dir, where set."""
    data_dir = config.data.get("dir", "")
    return [data_dir] if data_dir else []

  def train_batches(self, *, start_step: int, global_batch_size: int):
    """This process's slices of the global training batches from `start_step` on."""
    data = self.config.data
    return pipeline.train_batches(
        self.builder, global_batch_size=global_batch_size, num_streams=data.num_streams,
        seed=self.config.seed, start_step=start_step,
        process_index=jax.process_index(), process_count=jax.process_count(),
        shuffle_buffer=data.shuffle_buffer, augment=self.augmentation(),
        skip_corrupt=data.skip_corrupt)

  def augmentation(self) -> pipeline.Augmentation | None:
    """The training examples' random transform: flips and rotations with data.augment."""
    return pipeline.random_dihedral if self.config.data.augment else None

  def heldout_splits(self) -> tuple[str, ...]:
    """'validation', and 'test' where data.test_fraction holds data out for it."""
    return ("validation", "test") if self.config.data.get("test_fraction", 0) > 0 \
        else ("validation",)

  def eval_batches(self, *, global_batch_size: int):
    """This process's slices of the validation split in global batches."""
    return self.heldout_batches("validation", global_batch_size=global_batch_size)

  def heldout_batches(self, split: str, *, global_batch_size: int,
                      process_index: int | None = None, process_count: int | None = None):
    """The held-out `split` ('validation' or 'test') in global batches; this process's
    slice of each unless process_index and process_count say otherwise (0 and 1: all)."""
    return pipeline.eval_batches(
        self.builder, split, global_batch_size=global_batch_size,
        process_index=jax.process_index() if process_index is None else process_index,
        process_count=jax.process_count() if process_count is None else process_count,
        skip_corrupt=self.config.data.skip_corrupt)

  def skipped_records(self) -> dict[str, int]:
    """Records left out as unreadable, per split (data.skip_corrupt; empty otherwise)."""
    if not self.config.data.skip_corrupt:
      return {}
    return {split: pipeline.skipped_records(self.builder, split)
            for split in self.builder.info.splits}
