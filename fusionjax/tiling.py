"""Whole-image prediction from tiles: overlapping windows blended with a tapered weight."""
from __future__ import annotations

from typing import Callable

import numpy as np

from fusionjax import progress


def tile_starts(size: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
  """Start offsets of windows covering [0, size): stride tile - overlap, last flush with the end.

  Starts are multiples of `multiple` (the scale factor, so low-resolution tiles align).
  """
  if size < tile:
    raise ValueError(f"image of {size} pixels is smaller than one {tile}-pixel tile")
  stride = max(multiple, (tile - overlap) // multiple * multiple)
  starts = list(range(0, size - tile + 1, stride))
  last = (size - tile) // multiple * multiple
  if starts[-1] != last:
    starts.append(last)
  if last + tile != size:
    raise ValueError(f"image of {size} pixels cannot be tiled by {tile}-pixel tiles on a grid of "
                     f"{multiple}: crop it to a multiple of {multiple}")
  return starts


def blend_weights(tile: int, overlap: int) -> np.ndarray:
  """(tile, tile) weights rising linearly over `overlap` pixels from each edge, flat inside."""
  ramp = np.minimum(np.arange(1, tile + 1), np.arange(tile, 0, -1)).astype(np.float64)
  ramp = np.minimum(ramp / (overlap + 1), 1.0)
  return np.outer(ramp, ramp)


def predict_tiled(predict: Callable[[np.ndarray, np.ndarray], np.ndarray], lr: np.ndarray,
                  hr: np.ndarray, *, tile: int, overlap: int, scale: int,
                  batch_size: int, what: str = "Tiled prediction",
                  extra: tuple[np.ndarray, ...] = ()) -> np.ndarray:
  """Applies a fusion model to an image of any size, tile by tile (progress logged as
  `what`).

  Args:
    predict: maps a batch (B, tile/scale, tile/scale, C) of LR tiles and (B, tile, tile, M) of
      HR tiles (then a batch of tiles of each `extra` image) to (B, tile, tile, D) outputs; B
      is always `batch_size`.
    lr: (h, w, C) low-resolution image; hr: (scale*h, scale*w, M) high-resolution image.
    extra: further (scale*h, scale*w, .) images, tiled as `hr`.
    tile, overlap: tile size and overlap in high-resolution pixels (multiples of `scale`).
    batch_size: tiles per call (the last call is padded).
  Returns:
    (scale*h, scale*w, D) blended prediction.
  """
  height, width = hr.shape[:2]
  origins = [(r, c) for r in tile_starts(height, tile, overlap, scale)
             for c in tile_starts(width, tile, overlap, scale)]
  weights = blend_weights(tile, overlap)[:, :, None]
  total = None
  norm = np.zeros((height, width, 1))
  lr_tile = tile // scale
  tiles = progress.Progress(what, len(origins), unit="tiles")
  for first in range(0, len(origins), batch_size):
    chunk = origins[first:first + batch_size]
    lr_batch = np.stack([lr[r // scale:r // scale + lr_tile, c // scale:c // scale + lr_tile]
                         for r, c in chunk])
    hr_batches = [np.stack([image[r:r + tile, c:c + tile] for r, c in chunk])
                  for image in (hr, *extra)]
    pad = batch_size - len(chunk)
    if pad:
      lr_batch = np.concatenate([lr_batch, np.repeat(lr_batch[-1:], pad, axis=0)])
      hr_batches = [np.concatenate([batch, np.repeat(batch[-1:], pad, axis=0)])
                    for batch in hr_batches]
    outputs = np.asarray(predict(lr_batch, *hr_batches))[:len(chunk)]
    if total is None:
      total = np.zeros((height, width, outputs.shape[-1]))
    for (r, c), output in zip(chunk, outputs):
      total[r:r + tile, c:c + tile] += weights * output
      norm[r:r + tile, c:c + tile] += weights
    tiles.advance(len(chunk))
  tiles.finish()
  return (total / norm).astype(np.float32)
