"""TFDS builder writing MODIS land-surface-temperature tiles as sharded TFRecords.

One example per LST band (day and night are separate samples): the 1 km temperatures (K), the
NDVI and red, NIR and MIR reflectances of the composite guiding them, on the same grid, and the
location's climatology from the training split (see lst_climatology; a training example's own
image left out of it).
Low resolutions are made from them on the accelerator (Stefan-Boltzmann aggregation), so one
dataset serves every scale step.
Samples with any no-data (0) pixel or any value outside 150-400 K are dropped, not masked
(MODIS clear-sky tiles have none; the count and reasons are in the dataset's metadata), as are
LST files without their NDVI composite. Split: random (seeded) or by date.
"""
from __future__ import annotations

import collections
import logging

import numpy as np
import tensorflow_datasets as tfds

from fusionjax.data import sharded_builder
from fusionjax.data.modis import climatology as lst_climatology
from fusionjax.data.modis import reader as modis

SPLITS = ("random", "date")


def split_samples(samples: list[modis.LstSample], *, val_fraction: float, seed: int,
                  split_by: str) -> tuple[list, list]:
  """(train, validation): a seeded random `val_fraction` of the samples ('random', the
  published protocol), or the samples of the last `val_fraction` of the dates ('date')."""
  if split_by == "random":
    order = np.random.default_rng(seed).permutation(len(samples))
    count = int(round(val_fraction * len(samples)))
    chosen = set(order[:count].tolist())
    return ([s for i, s in enumerate(samples) if i not in chosen],
            [s for i, s in enumerate(samples) if i in chosen])
  if split_by == "date":
    dates = sorted({(s.lst.year, s.lst.day_of_year) for s in samples})
    first_validation = dates[int(round((1.0 - val_fraction) * len(dates)))]
    late = lambda s: (s.lst.year, s.lst.day_of_year) >= first_validation
    return [s for s in samples if not late(s)], [s for s in samples if late(s)]
  raise ValueError(f"data.split_by={split_by!r}: expected one of {SPLITS}")


def usable_samples(source_dir: str, tile_size: int
                   ) -> tuple[list[modis.LstSample], dict[str, int], dict[str, int]]:
  """The samples under `source_dir` fit for use, the counts of `modis.find_samples`, and the
  number of samples dropped per reason (no-data pixels, values outside 150-400 K)."""
  samples, counts = modis.find_samples(source_dir)
  usable, dropped = [], collections.Counter()
  for sample in samples:
    reason = modis.invalid_reason(modis.read_sample(sample, tile_size)[0])
    if reason is None:
      usable.append(sample)
    else:
      dropped[reason.split(" ", 1)[1]] += 1
  return usable, counts, dict(dropped)


def training_samples(source_dir: str, *, tile_size: int, val_fraction: float, seed: int,
                     split_by: str) -> list[modis.LstSample]:
  """The training split's samples, as `LstTiles` splits them."""
  usable = usable_samples(source_dir, tile_size)[0]
  return split_samples(usable, val_fraction=val_fraction, seed=seed, split_by=split_by)[0]


class LstTiles(sharded_builder.ShardedBuilder):
  """MODIS LST tiles (K) with their guides: the composite's NDVI and reflectances."""

  VERSION = tfds.core.Version("1.3.0")
  RELEASE_NOTES = {"1.0.0": "1 km LST and NDVI per LST band.",
                   "1.1.0": "The composite's red, NIR and MIR reflectances.",
                   "1.2.0": "The location's LST climatology from the training split; the tile index.",
                   "1.3.0": "The count of validation samples the climatology covers."}

  def __init__(self, *, source_dir: str, tile_size: int, val_fraction: float, split_seed: int,
               split_by: str, num_shards: int, **kwargs):
    self._source_dir = source_dir
    self._tile_size = tile_size
    self._val_fraction = val_fraction
    self._split_seed = split_seed
    self._split_by = split_by
    self._num_shards = num_shards
    self._metadata = tfds.core.MetadataDict()
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    t = self._tile_size
    image = lambda channels: tfds.features.Tensor(shape=(t, t, channels), dtype=np.float32,
                                                  encoding=tfds.features.Encoding.BYTES)
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "lst": image(1), "ndvi": image(1),
            "reflectance": image(len(modis.COMPOSITE_BANDS)),
            "climatology": image(lst_climatology.CHANNELS),
            "day_of_year": np.int32, "band": np.int32, "tile_index": np.int32}),
        metadata=self._metadata,
        description="MODIS LST (K) tiles with the NDVI and red, NIR, MIR reflectances of their "
                    "16-day composite, and their location's climatology (training split).")

  def _split_generators(self, dl_manager):
    del dl_manager
    usable, counts, dropped = usable_samples(self._source_dir, self._tile_size)
    train, validation = split_samples(usable, val_fraction=self._val_fraction,
                                      seed=self._split_seed, split_by=self._split_by)
    if min(len(train), len(validation)) < self._num_shards:
      raise ValueError(f"{self._source_dir}: {len(train)} training and {len(validation)} "
                       f"validation samples; data.num_shards={self._num_shards} needs at least "
                       "that many of each")
    self._metadata.update({**counts, "samples": len(usable), "dropped_samples": dropped,
                           "train_samples": len(train), "validation_samples": len(validation)})
    logging.info("LST samples: %d train, %d validation; dropped %s; %d LST files without "
                 "composite.", len(train), len(validation), dropped,
                 counts["lst_files_without_composite"])
    climatology = lst_climatology.from_samples(train, self._tile_size)[0]
    self._metadata["validation_samples_with_climatology"] = int(sum(
        climatology.covers(sample) for sample in validation))
    return {"train": self._generate_examples(train, climatology, training=True),
            "validation": self._generate_examples(validation, climatology, training=False)}

  def _generate_examples(self, samples, climatology: lst_climatology.Climatology, *,
                         training: bool):
    shape = (self._tile_size, self._tile_size)
    for sample in samples:
      lst, ndvi, reflectances = modis.read_sample(sample, self._tile_size)
      yield sample.key, {"lst": lst[..., None], "ndvi": ndvi[..., None],
                         "reflectance": np.moveaxis(reflectances, 0, -1),
                         "climatology": climatology.guide(sample, shape,
                                                          leave_out=lst if training else None),
                         "day_of_year": sample.lst.day_of_year, "band": sample.band,
                         "tile_index": sample.lst.index}
