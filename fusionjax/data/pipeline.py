"""The tf.data input pipeline: this process's shards -> shuffled, augmented, batched tiles.

The order of examples is a pure function of the seed and the step, so a resumed run sees
exactly the examples an uninterrupted run would have seen from that step on. A corrupt or
truncated record stops the run with an error naming its shard file and index, or with
skip_corrupt, is left out with the rest of its shard (TFRecord readers cannot resynchronise).
"""
from __future__ import annotations

import functools
import logging
import re
from typing import Iterator

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

# TensorFlow only feeds data: keep it off any accelerator.
tf.config.set_visible_devices([], "GPU")

Batch = dict[str, np.ndarray]


def process_shards(files: list[str], process_index: int, process_count: int) -> list[str]:
  """The shard files this process reads: every process_count-th, starting at its index."""
  if len(files) < process_count:
    raise ValueError(f"{len(files)} shard files cannot be shared by {process_count} processes; "
                     "raise data.num_shards to at least the process count")
  return sorted(files)[process_index::process_count]


@functools.lru_cache(maxsize=None)
def readable_records(path: str) -> tuple[int, str | None]:
  """(records readable from the start of a TFRecord file, the error that stopped the reading
  or None). TFRecord readers cannot resynchronise after a corrupt or truncated record, so
  what follows it is lost too."""
  count = 0
  try:
    for _ in tf.data.TFRecordDataset(path):
      count += 1
  except tf.errors.DataLossError as error:
    # The reason alone, without TensorFlow's op names around it.
    return count, re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:.*$", "", error.message)
  return count, None


def shard_records(files: list[str], skip_corrupt: bool) -> list[int]:
  """How many records to read from each file: -1 (all) unless skip_corrupt, then the records
  before the first unreadable one (each file scanned once per process; skipped records
  logged)."""
  if not skip_corrupt:
    return [-1] * len(files)
  counts = []
  for path in files:
    count, error = readable_records(path)
    if error:
      logging.warning("%s: record %d is unreadable (%s); skipping it and the rest of the "
                      "shard (data.skip_corrupt).", path, count, error)
    counts.append(count)
  return counts


def skipped_records(builder: tfds.core.DatasetBuilder, split: str) -> int:
  """Records of `split` that a skip_corrupt pipeline leaves out: those TFDS wrote minus those
  readable (scans the split's files)."""
  info = builder.info.splits[split]
  files = [str(p) for p in info.filepaths]
  return int(sum(info.shard_lengths) - sum(readable_records(p)[0] for p in files))


def _named_data_loss(batches, files: list[str]):
  """The batches of `batches`; a corrupt or truncated record becomes a ValueError naming the
  shard file and the record's index in it."""
  iterator = iter(batches)
  while True:
    try:
      batch = next(iterator)
    except StopIteration:
      return
    except tf.errors.DataLossError as error:
      for path in files:
        count, reason = readable_records(path)
        if reason:
          raise ValueError(f"{path}: record {count} is unreadable ({reason}); set "
                           "data.skip_corrupt=True to skip it and the rest of its shard"
                           ) from error
      raise
    yield batch


def _augment(example: dict, index: tf.Tensor, seed: int) -> dict:
  """One of the 8 flips/rotations, the same for every image (rank-3 entry) of the example,
  drawn from (seed, example index) so that it does not depend on where the pipeline started."""
  draw = tf.random.stateless_uniform([], seed=tf.stack([tf.cast(seed, tf.int64), index]),
                                     maxval=8, dtype=tf.int32)
  out = dict(example)
  for key, value in example.items():
    if value.shape.rank != 3:
      continue
    image = tf.image.rot90(value, k=draw % 4)
    out[key] = tf.cond(draw >= 4, lambda image=image: tf.image.flip_left_right(image),
                       lambda image=image: image)
  return out


def train_batches(builder: tfds.core.DatasetBuilder, *, batch_size: int, seed: int,
                  start_step: int, process_index: int, process_count: int,
                  shuffle_buffer: int, augment: bool,
                  skip_corrupt: bool = False) -> Iterator[Batch]:
  """Endless training batches for this process, starting at `start_step`.

  Args:
    builder: a prepared TFDS builder with a 'train' split.
    batch_size: examples per batch on this process (the global batch / process count).
    seed: data-order seed.
    start_step: the number of batches an uninterrupted run has already consumed.
    process_index, process_count: this process and how many share the shards.
    shuffle_buffer: examples in the shuffle buffer.
    augment: random flips and right-angle rotations.
    skip_corrupt: skip unreadable records (and the rest of their shard) instead of stopping
      with an error naming the shard and record.
  Yields:
    dicts of numpy arrays with a leading batch axis.
  """
  files = process_shards([str(p) for p in builder.info.splits["train"].filepaths],
                         process_index, process_count)
  features = builder.info.features
  counts = shard_records(files, skip_corrupt)
  records = tf.data.Dataset.from_tensor_slices(
      (files, tf.constant(counts, tf.int64))).repeat().interleave(
      lambda path, count: tf.data.TFRecordDataset(path).take(count), cycle_length=len(files),
      block_length=1, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  records = records.shuffle(shuffle_buffer, seed=seed + process_index,
                            reshuffle_each_iteration=True)
  first = start_step * batch_size
  examples = records.skip(first).enumerate(start=first).map(
      lambda index, record: (index, features.deserialize_example(record)),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  if augment:
    examples = examples.map(lambda index, ex: _augment(ex, index, seed),
                            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  else:
    examples = examples.map(lambda index, ex: ex)
  batches = examples.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
  return _named_data_loss(tfds.as_numpy(batches), files)


def eval_batches(builder: tfds.core.DatasetBuilder, split: str, *, global_batch_size: int,
                 process_index: int, process_count: int,
                 skip_corrupt: bool = False) -> Iterator[Batch]:
  """Every example of `split` once, in global batches padded to full size.

  Every process reads the whole split in the same order and yields its slice of each global
  batch; a 'weight' entry is 1 for real examples and 0 for padding. Unreadable records as in
  `train_batches`.
  """
  features = builder.info.features
  files = sorted(str(p) for p in builder.info.splits[split].filepaths)
  counts = shard_records(files, skip_corrupt)
  records = tf.data.Dataset.from_tensor_slices((files, tf.constant(counts, tf.int64))).flat_map(
      lambda path, count: tf.data.TFRecordDataset(path).take(count))
  examples = records.map(features.deserialize_example)
  examples = examples.map(lambda ex: {**ex, "weight": tf.constant(1.0)})
  local = global_batch_size // process_count
  for batch in _named_data_loss(tfds.as_numpy(examples.batch(global_batch_size)), files):
    count = len(batch["weight"])
    if count < global_batch_size:
      batch = {k: np.concatenate([v, np.zeros((global_batch_size - count, *v.shape[1:]),
                                              v.dtype)]) for k, v in batch.items()}
    yield {k: v[process_index * local:(process_index + 1) * local] for k, v in batch.items()}
