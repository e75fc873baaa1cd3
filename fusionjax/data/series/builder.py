"""TFDS builder writing training windows of per-pixel state series as sharded TFRecords.

Source: an .npz with 'state' (P, S, D) float32, 'target' (P, S) bool (the states training may
use: observed, with a rate, not held out) and 'pixel_split' (P,) str. A window is
window_steps consecutive grid steps of one pixel starting at a usable state, with at least one
more usable state after it. Up to windows_per_pixel starts are drawn per pixel (seeded). The
windows of 'train' pixels form the 'train' split, those of 'validation' pixels the
'validation' split; 'test' pixels give none.

A window keeps only its usable states (the first is its start): 'state' (M, D), 'offset' (M,)
grid steps from the start and 'mask' (M,), padded to M = the most usable states any window
holds. On cloudy series M is a fraction of window_steps, and so is the cost of training;
`sample_states` cuts it further on dense ones.
"""
from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from fusionjax.data import pipeline, sharded_builder

WINDOW_KEYS = ("state", "offset", "mask")   # the per-state entries of a window


def window_counts(target: np.ndarray, window_steps: int) -> np.ndarray:
  """(P, S) bool usable states -> (P, S) the number of usable states in each window
  s .. s + window_steps - 1."""
  cumulative = np.concatenate([np.zeros((len(target), 1), int), np.cumsum(target, 1)], 1)
  ends = np.minimum(np.arange(target.shape[1]) + window_steps, target.shape[1])
  return cumulative[:, ends] - cumulative[:, :-1]


def window_starts(target: np.ndarray, window_steps: int, count: int,
                  rng: np.random.Generator) -> np.ndarray:
  """Sorted starts (at most `count`) of windows of one pixel: (S,) bool usable states ->
  steps s with target[s] and another usable state in s+1 .. s+window_steps-1."""
  usable = np.flatnonzero(target)
  later = np.searchsorted(usable, usable + window_steps, side="left") - np.arange(len(usable))
  candidates = usable[later >= 2]
  if len(candidates) > count:
    candidates = np.sort(rng.choice(candidates, count, replace=False))
  return candidates


def sample_states(example: dict, index: tf.Tensor, seed: int, count: int) -> dict:
  """A window's first state (the start) and `count` - 1 of its other states, drawn without
  replacement among the usable ones (masked ones only where too few are usable), kept in
  step order: a `pipeline.Augmentation` (bind `count`). The window's loss terms, means over
  its states, become estimates at count/M of the cost: unbiased over the other states, the
  start (always kept, z_0 is its encoding) weighing 1/count instead of 1/M. Windows of at
  most `count` states are unchanged."""
  size = example["mask"].shape[0]
  if size <= count:
    return example
  keys = tf.random.stateless_uniform([size - 1], seed=pipeline.example_seed(seed, index))
  keys += 2.0 * (1.0 - tf.cast(example["mask"][1:], tf.float32))   # usable states first
  others = tf.sort(tf.math.top_k(-keys, k=count - 1).indices) + 1
  chosen = tf.concat([tf.zeros([1], others.dtype), others], axis=0)
  return {**example, **{key: tf.gather(example[key], chosen) for key in WINDOW_KEYS}}


class SeriesWindows(sharded_builder.ShardedBuilder):
  """Windows of per-pixel state series at their usable steps: 'state' (M, D), 'offset' (M,),
  'mask' (M,)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Per-pixel windows of gridded state series with their masks."}

  def __init__(self, *, source_path: str, state_dim: int, window_steps: int,
               windows_per_pixel: int, seed: int, num_shards: int, **kwargs):
    self._source_path = source_path
    self._state_dim = state_dim
    self._window_steps = window_steps
    self._windows_per_pixel = windows_per_pixel
    self._seed = seed
    self._num_shards = num_shards
    self._metadata = tfds.core.MetadataDict()
    with np.load(source_path) as source:
      self._max_states = int(window_counts(source["target"], window_steps).max())
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    tensor = lambda *shape: tfds.features.Tensor(shape=shape, dtype=np.float32,
                                                 encoding=tfds.features.Encoding.BYTES)
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "state": tensor(self._max_states, self._state_dim),
            "offset": tfds.features.Tensor(shape=(self._max_states,), dtype=np.int32),
            "mask": tensor(self._max_states), "pixel": np.int32, "start": np.int32}),
        metadata=self._metadata,
        description="Windows of per-pixel state series (bands and their rates of change per "
                    "grid step) on a regular grid of dates, at their usable steps.")

  def _split_generators(self, dl_manager):
    del dl_manager
    with np.load(self._source_path) as source:
      state, target = source["state"], source["target"]
      pixel_split = source["pixel_split"]
    if state.shape[-1] != self._state_dim:
      raise ValueError(f"{self._source_path}: states of {state.shape[-1]} values, expected "
                       f"{self._state_dim}")
    rng = np.random.default_rng(self._seed)
    windows = {"train": [], "validation": []}
    for pixel in range(len(state)):
      split = str(pixel_split[pixel])
      if split not in windows:   # a test pixel: never read before the end of a run
        continue
      for start in window_starts(target[pixel], self._window_steps, self._windows_per_pixel,
                                 rng):
        windows[split].append((pixel, int(start)))
    counts = {split: len(found) for split, found in windows.items()}
    if min(counts.values()) < self._num_shards:
      raise ValueError(f"{self._source_path}: {counts['train']} training and "
                       f"{counts['validation']} validation windows; data.num_shards="
                       f"{self._num_shards} needs at least that many of each (more observed "
                       "dates, a shorter data.window_steps or fewer shards)")
    self._metadata.update({f"{split}_windows": count for split, count in counts.items()})
    logging.info("Series windows: %s", counts)
    return {split: self._generate_examples(state, target, found)
            for split, found in windows.items()}

  def _generate_examples(self, state: np.ndarray, target: np.ndarray, windows: list):
    size = self._max_states
    for pixel, start in windows:
      steps = start + np.flatnonzero(target[pixel, start:start + self._window_steps])
      count = len(steps)
      padded = lambda values: np.concatenate([values, np.zeros((size - count, *values.shape[1:]),
                                                               values.dtype)])
      yield f"{pixel}-{start}", {
          "state": padded(state[pixel, steps]), "offset": padded(steps - start).astype(np.int32),
          "mask": padded(np.ones(count, np.float32)), "pixel": pixel, "start": start}
