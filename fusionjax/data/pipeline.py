"""The tf.data input pipeline: read streams of shards -> shuffled, augmented, batched tiles.

The training data is read as `num_streams` independent streams, stream s reading every
num_streams-th shard file from the s-th; each global batch is the concatenation of one
sub-batch of every stream, in stream order. Processes share the streams (process p reads a
contiguous range of them and feeds its slice of the global batch), so the global batches
depend on the seed, the shards and the number of streams, never on the number of processes:
1 process of 4 devices and 2 processes of 2 train on the same batches. Shards that fit in
memory (IN_MEMORY_BYTES) are read once and then served from memory.

The order is a pure function of the seed and the step, so a resumed run sees exactly the
examples an uninterrupted run would have seen from that step on. A corrupt or truncated record
stops the run with an error naming its shard file and index, or with skip_corrupt, is left
out with the rest of its shard (TFRecord readers cannot resynchronise).
"""
from __future__ import annotations

import functools
import logging
import re
from typing import Callable, Iterator

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

# TensorFlow only feeds data: keep it off any accelerator.
tf.config.set_visible_devices([], "GPU")

Batch = dict[str, np.ndarray]
# A training example's random transform: (example, its global index, seed) -> example.
Augmentation = Callable[[dict, tf.Tensor, int], dict]
# A process whose training shards hold at most this many bytes keeps their records in memory
# after the first pass.
IN_MEMORY_BYTES = 2 << 30


def stream_shards(files: list[str], num_streams: int) -> list[list[str]]:
  """The shard files of each read stream: stream s reads every num_streams-th file (sorted)
  from the s-th."""
  if len(files) < num_streams:
    raise ValueError(f"{len(files)} shard files cannot feed data.num_streams={num_streams} "
                     "read streams; raise data.num_shards to at least data.num_streams")
  files = sorted(files)
  return [files[stream::num_streams] for stream in range(num_streams)]


def stream_batch_size(global_batch_size: int, num_streams: int) -> int:
  """The examples each stream gives to every global batch."""
  if num_streams < 1 or global_batch_size % num_streams:
    raise ValueError(f"data.num_streams={num_streams}: expected a positive divisor of "
                     f"train.batch_size={global_batch_size}")
  return global_batch_size // num_streams


def process_streams(num_streams: int, process_index: int, process_count: int) -> range:
  """The streams this process reads: its contiguous share, in stream order."""
  if num_streams % process_count:
    raise ValueError(f"data.num_streams={num_streams} read streams cannot be shared evenly by "
                     f"{process_count} processes; choose a multiple of the process count")
  share = num_streams // process_count
  return range(process_index * share, (process_index + 1) * share)


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


def example_seed(seed: int, index: tf.Tensor) -> tf.Tensor:
  """The stateless random seed of the example of global index `index`: random transforms
  drawn from it do not depend on where the pipeline started, nor on the process count."""
  return tf.stack([tf.cast(seed, tf.int64), index])


def random_dihedral(example: dict, index: tf.Tensor, seed: int) -> dict:
  """One of the 8 flips/rotations, the same for every image (rank-3 entry) of the example,
  drawn from `example_seed`."""
  draw = tf.random.stateless_uniform([], seed=example_seed(seed, index), maxval=8,
                                     dtype=tf.int32)
  out = dict(example)
  for key, value in example.items():
    if value.shape.rank != 3:
      continue
    image = tf.image.rot90(value, k=draw % 4)
    out[key] = tf.cond(draw >= 4, lambda image=image: tf.image.flip_left_right(image),
                       lambda image=image: image)
  return out


def _stream_examples(builder: tfds.core.DatasetBuilder, files: list[str], *, stream: int,
                     num_streams: int, seed: int, first: int, shuffle_buffer: int,
                     augment: Augmentation | None, skip_corrupt: bool,
                     in_memory: bool) -> tf.data.Dataset:
  """One read stream: its shards interleaved (read once, then kept in memory if
  `in_memory`), repeated and shuffled, from its `first`-th example on."""
  counts = shard_records(files, skip_corrupt)
  if not any(counts):
    raise ValueError(f"read stream {stream} has no readable record left in {files}")
  records = tf.data.Dataset.from_tensor_slices(
      (files, tf.constant(counts, tf.int64))).interleave(
      lambda path, count: tf.data.TFRecordDataset(path).take(count), cycle_length=len(files),
      block_length=1, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  if in_memory:
    records = records.cache()
  records = records.repeat().shuffle(shuffle_buffer, seed=seed * num_streams + stream,
                                     reshuffle_each_iteration=True)
  features = builder.info.features
  examples = records.skip(first).enumerate(start=first).map(
      lambda index, record: (index * num_streams + stream, features.deserialize_example(record)),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  if augment is not None:
    return examples.map(lambda key, ex: augment(ex, key, seed),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return examples.map(lambda key, ex: ex)


def train_batches(builder: tfds.core.DatasetBuilder, *, global_batch_size: int,
                  num_streams: int, seed: int, start_step: int, process_index: int,
                  process_count: int, shuffle_buffer: int, augment: Augmentation | None,
                  skip_corrupt: bool = False) -> Iterator[Batch]:
  """Endless training batches: this process's slice of each global batch, from `start_step`.

  Args:
    builder: a prepared TFDS builder with a 'train' split.
    global_batch_size: examples per step over all processes; a multiple of num_streams.
    num_streams: read streams (see the module docstring); a multiple of process_count.
    seed: data-order seed.
    start_step: the number of batches an uninterrupted run has already consumed.
    process_index, process_count: this process and how many share the streams.
    shuffle_buffer: examples in the shuffle buffers of all streams together.
    augment: applied to every training example as augment(example, global index, seed)
      (e.g. `random_dihedral`), its randomness drawn from `example_seed`; None: none.
    skip_corrupt: skip unreadable records (and the rest of their shard) instead of stopping
      with an error naming the shard and record.
  Yields:
    dicts of numpy arrays with a leading batch axis of global_batch_size / process_count.
  """
  per_stream = stream_batch_size(global_batch_size, num_streams)
  shards = stream_shards([str(p) for p in builder.info.splits["train"].filepaths], num_streams)
  streams = process_streams(num_streams, process_index, process_count)
  read = [path for stream in streams for path in shards[stream]]
  in_memory = sum(tf.io.gfile.stat(path).length for path in read) <= IN_MEMORY_BYTES
  sub_batches = tuple(
      _stream_examples(builder, shards[stream], stream=stream, num_streams=num_streams,
                       seed=seed, first=start_step * per_stream,
                       shuffle_buffer=max(shuffle_buffer // num_streams, 1), augment=augment,
                       skip_corrupt=skip_corrupt, in_memory=in_memory
                       ).batch(per_stream, drop_remainder=True)
      for stream in streams)
  batches = tf.data.Dataset.zip(sub_batches).map(
      lambda *parts: {key: tf.concat([part[key] for part in parts], axis=0)
                      for key in parts[0]}).prefetch(tf.data.AUTOTUNE)
  return _named_data_loss(tfds.as_numpy(batches), read)


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


def random_band_affine(example: dict, index: tf.Tensor, seed: int, scale: float,
                       groups: tuple[tuple[str, ...], ...]) -> dict:
  """Each group of entries (images whose last axis is the same bands) changed per band by a
  random gain exp(N(0, scale)) and offset N(0, scale), drawn from `example_seed` (a stream of
  its own, apart from `random_dihedral`'s); other entries unchanged."""
  out = dict(example)
  for number, keys in enumerate(groups):
    bands = example[keys[0]].shape[-1]
    draw = tf.random.stateless_normal([2, bands], seed=example_seed(seed, index)
                                      + tf.constant([0, 1 << 40], tf.int64) * (number + 1),
                                      stddev=scale)
    for key in keys:
      out[key] = example[key] * tf.exp(draw[0]) + draw[1]
  return out
