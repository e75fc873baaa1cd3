"""TFDS builder writing prepared FusionScenes as sharded TFRecord tiles.

Each example is one co-registered tile of one scene: the coded low-resolution cube, the
multispectral image, the coded truth and where it is valid (float32 bytes + shape), the index
of its scene and its origin there, and, where the scenes hold one (FusionScene.base_codes),
the coded estimate the network corrects ('base'). Tiles without a single valid truth pixel are left out. The
train split tiles each scene's training columns with `train_stride` (overlapping tiles); the
validation split tiles its validation strip without overlap, a gap of data.split_gap columns
away (FusionScene.split_columns), so that no validation pixel is seen in training. The test
strip is not tiled: it is predicted whole, once, at the end of a run.
"""
from __future__ import annotations

import logging

import numpy as np
import tensorflow_datasets as tfds

from fusionjax import progress
from fusionjax.data import sharded_builder
from fusionjax.data.fusion_scene import FusionScene


def tile_origins(height: int, width: int, tile_size: int, stride: int,
                 col_start: int = 0) -> list[tuple[int, int]]:
  """(row, column) of every tile_size tile laid with `stride` over columns [col_start, width)."""
  rows = range(0, height - tile_size + 1, stride)
  cols = range(col_start, width - tile_size + 1, stride)
  return [(r, c) for r in rows for c in cols]


class FusionTiles(sharded_builder.ShardedBuilder):
  """Co-registered low-/high-resolution tiles of prepared fusion scenes (`scene_paths`, .npz
  files of FusionScene.save, of one scale factor and band count)."""

  VERSION = tfds.core.Version("1.3.0")
  RELEASE_NOTES = {"1.0.0": "Coded LR cube, standardised MSI and coded truth per tile.",
                   "1.1.0": "'valid': 1 where the truth is known, 0 at no-data pixels.",
                   "1.2.0": "Tiles of several scenes; 'scene': the index of a tile's scene.",
                   "1.3.0": "'base': the scenes' estimate the network corrects, if any."}

  def __init__(self, *, scene_paths: list[str], tile_size: int, train_stride: int,
               num_shards: int, **kwargs):
    self._scene_paths = list(scene_paths)
    self._tile_size = tile_size
    self._train_stride = train_stride
    self._num_shards = num_shards
    shapes = []
    for path in self._scene_paths:
      with np.load(path) as arrays:
        shapes.append((int(arrays["lr_codes"].shape[-1]), int(arrays["msi"].shape[-1]),
                       int(arrays["scale_factor"]), bool(arrays["base_codes"].size)))
      if shapes[-1] != shapes[0]:
        raise ValueError(f"{path}: {shapes[-1][0]} coded bands, {shapes[-1][1]} "
                         f"high-resolution bands, scale factor {shapes[-1][2]} and base "
                         f"estimate {shapes[-1][3]}; expected those of "
                         f"{self._scene_paths[0]}: {shapes[0]}")
    self._code_dim, self._num_msi_bands, self._scale_factor, self._with_base = shapes[0]
    if tile_size % self._scale_factor or train_stride % self._scale_factor:
      raise ValueError(f"data.tile_size={tile_size} and data.train_stride={train_stride} must be "
                       f"multiples of the scale factor {self._scale_factor}")
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    t, lr_t = self._tile_size, self._tile_size // self._scale_factor
    bytes_encoding = tfds.features.Encoding.BYTES
    base = {"base": tfds.features.Tensor(shape=(t, t, self._code_dim), dtype=np.float32,
                                         encoding=bytes_encoding)} if self._with_base else {}
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            **base,
            "lr": tfds.features.Tensor(shape=(lr_t, lr_t, self._code_dim), dtype=np.float32,
                                       encoding=bytes_encoding),
            "msi": tfds.features.Tensor(shape=(t, t, self._num_msi_bands), dtype=np.float32,
                                        encoding=bytes_encoding),
            "truth": tfds.features.Tensor(shape=(t, t, self._code_dim), dtype=np.float32,
                                          encoding=bytes_encoding),
            "valid": tfds.features.Tensor(shape=(t, t, 1), dtype=np.float32,
                                          encoding=bytes_encoding),
            "scene": tfds.features.Scalar(dtype=np.int32),
            "origin": tfds.features.Tensor(shape=(2,), dtype=np.int32),
        }),
        description="Co-registered fusion tiles of prepared scenes.")

  def _split_generators(self, dl_manager):
    del dl_manager
    t = self._tile_size
    train, validation = [], []
    for index, path in enumerate(self._scene_paths):
      scene = FusionScene.load(path)
      height = scene.msi.shape[0]
      train += [(index, row, col) for row, col in
                tile_origins(height, scene.split_columns("train")[1], t, self._train_stride)]
      start, end = scene.split_columns("validation")
      validation += [(index, row, col) for row, col in
                     tile_origins(height, end, t, t, col_start=start)]
    if min(len(train), len(validation)) < self._num_shards:
      raise ValueError(f"{', '.join(self._scene_paths)}: the scenes give {len(train)} training "
                       f"and {len(validation)} validation tiles of {t} pixels; "
                       f"data.num_shards={self._num_shards} needs at least that many of each")
    logging.info("Writing %d training and %d validation tiles of %d pixels from %d scene(s).",
                 len(train), len(validation), t, len(self._scene_paths))
    return {"train": self._generate_examples(train),
            "validation": self._generate_examples(validation)}

  def _generate_examples(self, origins):
    """(key, example) of each (scene index, row, column) tile that holds a valid pixel; one
    scene in memory at a time (the origins are grouped by scene)."""
    t, s = self._tile_size, self._scale_factor
    loaded = (None, None)
    for index, row, col in progress.counted(origins, "Writing tiles", unit="tiles"):
      if loaded[0] != index:
        loaded = (index, FusionScene.load(self._scene_paths[index]))
      scene, path = loaded[1], self._scene_paths[index]
      key = f"{index:03d}_{row:05d}_{col:05d}"
      valid = scene.truth_valid[row:row + t, col:col + t]
      if not valid.any():
        continue
      tile = {"lr": scene.lr_codes[row // s:(row + t) // s, col // s:(col + t) // s],
              "msi": scene.msi[row:row + t, col:col + t],
              "truth": scene.truth_codes[row:row + t, col:col + t]}
      if self._with_base:
        tile["base"] = scene.base_codes[row:row + t, col:col + t]
      for name, values in tile.items():
        if not np.all(np.isfinite(values)):
          raise ValueError(f"{path}: tile {key} (row {row}, column {col}): '{name}' holds "
                           f"{int(np.sum(~np.isfinite(values)))} non-finite values")
      yield key, {**tile, "valid": valid[..., None].astype(np.float32),
                  "scene": np.int32(index), "origin": np.array([row, col], np.int32)}
