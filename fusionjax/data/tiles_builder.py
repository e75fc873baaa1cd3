"""TFDS builder writing a prepared FusionScene as sharded TFRecord tiles.

Each example is one co-registered tile: the coded low-resolution cube, the multispectral
image, the coded truth and where it is valid (float32 bytes + shape), and its origin in the
scene. Tiles without a single valid truth pixel are left out. The train split
tiles the training columns with `train_stride` (overlapping tiles); the validation split tiles
the held-out columns without overlap, so no validation pixel is seen in training.
"""
from __future__ import annotations

import logging

import numpy as np
import tensorflow_datasets as tfds

from fusionjax.data import sharded_builder
from fusionjax.data.fusion_scene import FusionScene


def tile_origins(height: int, width: int, tile_size: int, stride: int,
                 col_start: int = 0) -> list[tuple[int, int]]:
  """(row, column) of every tile_size tile laid with `stride` over columns [col_start, width)."""
  rows = range(0, height - tile_size + 1, stride)
  cols = range(col_start, width - tile_size + 1, stride)
  return [(r, c) for r in rows for c in cols]


class FusionTiles(sharded_builder.ShardedBuilder):
  """Co-registered low-/high-resolution tiles of one prepared fusion scene."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.0.0": "Coded LR cube, standardised MSI and coded truth per tile.",
                   "1.1.0": "'valid': 1 where the truth is known, 0 at no-data pixels."}

  def __init__(self, *, scene_path: str, tile_size: int, train_stride: int, num_shards: int,
               **kwargs):
    self._scene_path = scene_path
    self._tile_size = tile_size
    self._train_stride = train_stride
    self._num_shards = num_shards
    with np.load(scene_path) as arrays:
      self._code_dim = int(arrays["lr_codes"].shape[-1])
      self._num_msi_bands = int(arrays["msi"].shape[-1])
      self._scale_factor = int(arrays["scale_factor"])
    if tile_size % self._scale_factor or train_stride % self._scale_factor:
      raise ValueError(f"data.tile_size={tile_size} and data.train_stride={train_stride} must be "
                       f"multiples of the scale factor {self._scale_factor}")
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    t, lr_t = self._tile_size, self._tile_size // self._scale_factor
    bytes_encoding = tfds.features.Encoding.BYTES
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "lr": tfds.features.Tensor(shape=(lr_t, lr_t, self._code_dim), dtype=np.float32,
                                       encoding=bytes_encoding),
            "msi": tfds.features.Tensor(shape=(t, t, self._num_msi_bands), dtype=np.float32,
                                        encoding=bytes_encoding),
            "truth": tfds.features.Tensor(shape=(t, t, self._code_dim), dtype=np.float32,
                                          encoding=bytes_encoding),
            "valid": tfds.features.Tensor(shape=(t, t, 1), dtype=np.float32,
                                          encoding=bytes_encoding),
            "origin": tfds.features.Tensor(shape=(2,), dtype=np.int32),
        }),
        description="Co-registered fusion tiles of one prepared scene.")

  def _split_generators(self, dl_manager):
    del dl_manager
    scene = FusionScene.load(self._scene_path)
    height, width = scene.msi.shape[:2]
    t = self._tile_size
    train = tile_origins(height, scene.val_col_start, t, self._train_stride)
    validation = tile_origins(height, width, t, t, col_start=scene.val_col_start)
    if min(len(train), len(validation)) < self._num_shards:
      raise ValueError(f"{self._scene_path}: a {height} x {width} scene with validation from "
                       f"column {scene.val_col_start} gives {len(train)} training and "
                       f"{len(validation)} validation tiles of {t} pixels; data.num_shards="
                       f"{self._num_shards} needs at least that many of each")
    logging.info("Writing %d training and %d validation tiles of %d pixels.", len(train),
                 len(validation), t)
    return {"train": self._generate_examples(scene, train),
            "validation": self._generate_examples(scene, validation)}

  def _generate_examples(self, scene: FusionScene, origins):
    t, s = self._tile_size, self._scale_factor
    for row, col in origins:
      key = f"{row:05d}_{col:05d}"
      valid = scene.truth_valid[row:row + t, col:col + t]
      if not valid.any():
        continue
      tile = {"lr": scene.lr_codes[row // s:(row + t) // s, col // s:(col + t) // s],
              "msi": scene.msi[row:row + t, col:col + t],
              "truth": scene.truth_codes[row:row + t, col:col + t]}
      for name, values in tile.items():
        if not np.all(np.isfinite(values)):
          raise ValueError(f"{self._scene_path}: tile {key} (row {row}, column {col}): '{name}' "
                           f"holds {int(np.sum(~np.isfinite(values)))} non-finite values")
      yield key, {**tile, "valid": valid[..., None].astype(np.float32),
                  "origin": np.array([row, col], np.int32)}
