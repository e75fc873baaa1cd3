"""The tf.data input pipeline: this process's shards -> shuffled, augmented, batched tiles.

The order of examples is a pure function of the seed and the step, so a resumed run sees
exactly the examples an uninterrupted run would have seen from that step on.
"""
from __future__ import annotations

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
                  shuffle_buffer: int, augment: bool) -> Iterator[Batch]:
  """Endless training batches for this process, starting at `start_step`.

  Args:
    builder: a prepared TFDS builder with a 'train' split.
    batch_size: examples per batch on this process (the global batch / process count).
    seed: data-order seed.
    start_step: the number of batches an uninterrupted run has already consumed.
    process_index, process_count: this process and how many share the shards.
    shuffle_buffer: examples in the shuffle buffer.
    augment: random flips and right-angle rotations.
  Yields:
    dicts of numpy arrays with a leading batch axis.
  """
  files = process_shards([str(p) for p in builder.info.splits["train"].filepaths],
                         process_index, process_count)
  features = builder.info.features
  records = tf.data.Dataset.from_tensor_slices(files).repeat().interleave(
      tf.data.TFRecordDataset, cycle_length=len(files), block_length=1,
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
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
  return iter(tfds.as_numpy(batches))


def eval_batches(builder: tfds.core.DatasetBuilder, split: str, *, global_batch_size: int,
                 process_index: int, process_count: int) -> Iterator[Batch]:
  """Every example of `split` once, in global batches padded to full size.

  Every process reads the whole split in the same order and yields its slice of each global
  batch; a 'weight' entry is 1 for real examples and 0 for padding.
  """
  features = builder.info.features
  files = sorted(str(p) for p in builder.info.splits[split].filepaths)
  examples = tf.data.TFRecordDataset(files).map(features.deserialize_example)
  examples = examples.map(lambda ex: {**ex, "weight": tf.constant(1.0)})
  local = global_batch_size // process_count
  for batch in tfds.as_numpy(examples.batch(global_batch_size)):
    count = len(batch["weight"])
    if count < global_batch_size:
      batch = {k: np.concatenate([v, np.zeros((global_batch_size - count, *v.shape[1:]),
                                              v.dtype)]) for k, v in batch.items()}
    yield {k: v[process_index * local:(process_index + 1) * local] for k, v in batch.items()}
