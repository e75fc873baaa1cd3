"""A per-location climatology of fine-scale land-surface temperature, a guide learnt from the
training archive.

The fine structure of a location's LST (terrain, land cover, water) recurs from date to date, so
the mean over the training dates of each image's departure from its own mean, T - mean(T) (K),
day and night apart, is a guide to the fine structure of a new date at that location. Its
reliability grows with the number of images averaged, given to the network as n / (n + 1) (0 at
a location never seen). A training image's own guide leaves that image out, as a validation
image is left out of its guide, so training sees what evaluation sees.

Files (one per location, on the location's 1 km grid): <tile>.<index>.climatology.tif with the
bands day_pattern_k, night_pattern_k, day_weight, night_weight. A location without a file (never
seen) has the guide `absent`: pattern 0 and weight 0, what `Climatology.guide` gives there.
"""
from __future__ import annotations

import dataclasses
import os
import shutil

import numpy as np
import tensorflow as tf

from fusionjax.data import geotiff, pipeline
from fusionjax.data.modis import reader as modis

CHANNELS = 2          # the pattern (K) and the weight n / (n + 1)
BAND_NAMES = ("day_pattern_k", "night_pattern_k", "day_weight", "night_weight")


def pattern(lst_k: np.ndarray) -> np.ndarray:
  """(H, W) LST, K -> (H, W) its departure from its mean, K."""
  return (lst_k - lst_k.mean()).astype(np.float32)


def location_of(lst: modis.ModisFile) -> tuple[str, int]:
  return lst.tile, lst.index


@dataclasses.dataclass
class Climatology:
  """Sums of the patterns per location and band: sums[loc] (2, H, W) K, counts[loc] (2,)."""
  sums: dict = dataclasses.field(default_factory=dict)
  counts: dict = dataclasses.field(default_factory=dict)

  def add(self, sample: modis.LstSample, lst_k: np.ndarray) -> None:
    location = location_of(sample.lst)
    if location not in self.sums:
      self.sums[location] = np.zeros((len(modis.LST_BANDS), *lst_k.shape), np.float64)
      self.counts[location] = np.zeros(len(modis.LST_BANDS), np.int64)
    grid = self.sums[location].shape[1:]
    if lst_k.shape != grid:
      raise ValueError(f"{sample.lst.path}: {lst_k.shape[0]} x {lst_k.shape[1]} pixels, expected "
                       f"{grid[0]} x {grid[1]} as the other images of its location")
    self.sums[location][sample.band] += pattern(lst_k)
    self.counts[location][sample.band] += 1

  def covers(self, sample: modis.LstSample) -> bool:
    """Whether the sample's location and band have at least one image."""
    counts = self.counts.get(location_of(sample.lst))
    return counts is not None and counts[sample.band] > 0

  @property
  def values(self) -> int:
    """How many numbers the climatology holds (its size as a model's parameters)."""
    return sum(s.size for s in self.sums.values())

  def guide(self, sample: modis.LstSample, shape: tuple[int, int],
            leave_out: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 2) guide of a sample: the mean pattern (K) of its location and band and the
    weight n / (n + 1), without the image `leave_out` (the sample's own LST, K, if it is a
    training image). Zeros at a location without other images."""
    location = location_of(sample.lst)
    total = np.zeros(shape, np.float64)
    count = 0
    if location in self.sums:
      total = self.sums[location][sample.band].copy()
      count = int(self.counts[location][sample.band])
    if leave_out is not None:
      total -= pattern(leave_out)
      count -= 1
    mean, weight = _mean_and_weight(total, np.asarray(count))
    return np.stack([mean, np.broadcast_to(weight, shape)], axis=-1).astype(np.float32)

  def write(self, folder: str, georefs: dict) -> list[str]:
    """Writes one GeoTIFF per location (`georefs[location]` its grid) as the folder `folder`,
    replacing it whole (written beside it, then renamed: never half a climatology); returns
    the paths."""
    partial = os.path.normpath(folder) + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    names = []
    for location, total in sorted(self.sums.items()):
      means, weights = _mean_and_weight(total, self.counts[location][:, None, None])
      weights = np.broadcast_to(weights, total.shape)
      names.append(file_name(location))
      geotiff.write_geotiff(os.path.join(partial, names[-1]), np.concatenate([means, weights]),
                            georefs[location], band_names=BAND_NAMES)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    return [os.path.join(folder, name) for name in names]


def _mean_and_weight(total: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """The mean pattern (0 where no image) and the weight n / (n + 1) of `count` images."""
  return total / np.maximum(count, 1), count / (count + 1.0)


def file_name(location: tuple[str, int]) -> str:
  tile, index = location
  return f"{tile}.{index:04d}.climatology.tif"


def from_samples(samples: list[modis.LstSample], tile_size: int | None
                 ) -> tuple[Climatology, dict]:
  """The climatology of `samples` (the training split, or any LST archive) and each location's
  grid. Files are tile_size x tile_size pixels (None: any size, one per location); an image
  with no-data or values outside modis.VALID_RANGE_K (`modis.invalid_reason`) is left out."""
  climatology, georefs, files = Climatology(), {}, {}
  shape = None if tile_size is None else (tile_size, tile_size)
  for sample in samples:   # day and night samples share a file: read it once
    if sample.lst.path not in files:
      files[sample.lst.path] = geotiff.read_geotiff(sample.lst.path, bands=len(modis.LST_BANDS),
                                                    shape=shape)
    lst, georef = files[sample.lst.path]
    if modis.invalid_reason(lst[sample.band]) is None:
      climatology.add(sample, lst[sample.band])
      georefs[location_of(sample.lst)] = georef
  return climatology, georefs


def absent(shape: tuple[int, int]) -> np.ndarray:
  """(H, W, 2) guide of a location without images: pattern 0 K and weight 0."""
  return np.zeros((*shape, CHANNELS), np.float32)


def drop(example: dict, index: tf.Tensor, seed: int, rate: float) -> dict:
  """A training example with, at probability `rate`, its 'climatology' (T, T, 2) set to
  `absent`'s zeros (data.climatology_dropout), drawn from `pipeline.example_seed` (a stream of
  its own): the same example index and seed, the same draw, however the run was resumed."""
  draw = tf.random.stateless_uniform(
      [], seed=pipeline.example_seed(seed, index) + tf.constant([0, 3 << 50], tf.int64))
  keep = tf.cast(draw >= rate, example["climatology"].dtype)
  return {**example, "climatology": example["climatology"] * keep}


def guide_path(folder: str, lst_path: str) -> str:
  """The climatology file in `folder` of the location of the LST file `lst_path` (a MODIS
  name), whether it exists or not."""
  return os.path.join(folder, file_name(location_of(modis.parse_name(lst_path))))


def read_guide(folder: str, lst_path: str, band: int, shape: tuple[int, int]) -> np.ndarray:
  """(H, W, 2) guide of band `band` of the LST file `lst_path` (a MODIS name) from a folder of
  climatology files on the output grid (`shape`)."""
  if band >= len(modis.LST_BANDS):
    raise ValueError(f"{lst_path}: band {band + 1}; a climatology holds the day and night bands "
                     "of MOD11A1 (bands 1 and 2) only")
  path = guide_path(folder, lst_path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"predict.climatology={folder!r}: no {os.path.basename(path)} for "
                            f"{os.path.basename(lst_path)}; the climatology covers the "
                            "locations of the training archive")
  data = geotiff.read_geotiff(path, bands=len(BAND_NAMES), shape=shape)[0]
  return np.stack([data[band], data[len(modis.LST_BANDS) + band]], axis=-1)
