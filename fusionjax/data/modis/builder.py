"""TFDS builder writing MODIS land-surface-temperature tiles as sharded TFRecords.

One example per LST band (day and night are separate samples): the 1 km temperatures (K), the
NDVI and red, NIR and MIR reflectances of the composite guiding them, on the same grid, and the
location's climatology from the training split (see lst_climatology; a training example's own
image left out of it).
Low resolutions are made from them on the accelerator (Stefan-Boltzmann aggregation), so one
dataset serves every scale step.
Samples with any no-data (0) pixel or any value outside 150-400 K are dropped, not masked
(MODIS clear-sky tiles have none; the count and reasons are in the dataset's metadata), as are
LST files without their NDVI composite. Splits (train, validation, test): by date (the
latest dates held out), by location (whole MODIS tile locations held out) or random (seeded;
the published protocol).
"""
from __future__ import annotations

import collections
import logging
import os
from typing import NamedTuple

import numpy as np
import tensorflow_datasets as tfds

from fusionjax import progress
from fusionjax.data import geotiff, sharded_builder, splits
from fusionjax.data.modis import climatology as lst_climatology
from fusionjax.data.modis import reader as modis

SPLITS = ("date", "location", "random")


class Split(NamedTuple):
  """The samples of each part: disjoint in date ('date'), in location ('location') or
  drawn at random ('random')."""
  train: list
  validation: list
  test: list


def split_samples(samples: list[modis.LstSample], *, val_fraction: float, test_fraction: float,
                  seed: int, split_by: str) -> Split:
  """The samples split by `split_by`:
    'date'      the last test_fraction of the dates are the test part, the val_fraction
                before them the validation part (what a later season of the same places
                gives);
    'location'  a seeded test_fraction of the locations (MODIS tile and index) are the test
                part, a val_fraction the validation part (places the training never saw);
    'random'    a seeded test_fraction and val_fraction of the samples (the published
                protocol: the same places and neighbouring dates are in training).
  """
  if split_by not in SPLITS:
    raise ValueError(f"data.split_by={split_by!r}: expected one of {SPLITS}")
  splits.check_fractions(val_fraction, test_fraction)
  group_of = {"date": lambda s: (s.lst.year, s.lst.day_of_year),
              "location": lambda s: lst_climatology.location_of(s.lst),
              "random": lambda s: s.key}[split_by]
  groups = sorted({group_of(s) for s in samples})
  if split_by != "date":   # the latest dates for 'date'; a seeded draw otherwise
    groups = [groups[i] for i in np.random.default_rng(seed).permutation(len(groups))]
  num_test = int(round(test_fraction * len(groups)))
  num_validation = int(round(val_fraction * len(groups)))
  part = {group: "train" for group in groups[:len(groups) - num_test - num_validation]}
  part.update({group: "validation" for group in groups[len(part):len(groups) - num_test]})
  part.update({group: "test" for group in groups[len(groups) - num_test:]})
  return Split(*([s for s in samples if part[group_of(s)] == name]
                 for name in ("train", "validation", "test")))


def usable_samples(source_dir: str, tile_size: int
                   ) -> tuple[list[modis.LstSample], dict[str, int], dict[str, int]]:
  """The samples under `source_dir` fit for use, the counts of `modis.find_samples`, and the
  number of samples dropped per reason (no-data pixels, values outside 150-400 K). Reads the
  LST files only, each once (a file's day and night samples are neighbours in `samples`);
  the composites are read, and their grids checked, when the examples are written."""
  samples, counts = modis.find_samples(source_dir)
  usable, dropped = [], collections.Counter()
  path, lst = None, None
  for sample in samples:
    if sample.lst.path != path:
      path = sample.lst.path
      lst = geotiff.read_geotiff(path, bands=len(modis.LST_BANDS),
                                 shape=(tile_size, tile_size))[0]
    reason = modis.invalid_reason(lst[sample.band])
    if reason is None:
      usable.append(sample)
    else:
      dropped[reason.split(" ", 1)[1]] += 1
  return usable, counts, dict(dropped)


def training_samples(source_dir: str, *, tile_size: int, data_config) -> list[modis.LstSample]:
  """The training split's samples, as `LstTiles` splits them (by data_config's
  val_fraction, test_fraction, split_seed and split_by)."""
  usable = usable_samples(source_dir, tile_size)[0]
  return split_samples(usable, **split_settings(data_config)).train


def write_climatology(source_dir: str, folder: str, data_config) -> None:
  """Writes the training split's climatology of every location to `folder` (for
  --mode=predict; once, whole or not at all)."""
  if os.path.isdir(folder):
    return
  train = training_samples(source_dir, tile_size=data_config.tile_size, data_config=data_config)
  climatology, georefs = lst_climatology.from_samples(train, data_config.tile_size)
  climatology.write(folder, georefs)
  logging.info("Wrote the climatology of %d locations (%d values) to %s.",
               len(georefs), climatology.values, folder)


def split_settings(data_config) -> dict:
  """The keyword arguments of `split_samples` in a config's data section."""
  return {"val_fraction": data_config.val_fraction, "test_fraction": data_config.test_fraction,
          "seed": data_config.split_seed, "split_by": data_config.split_by}


class LstTiles(sharded_builder.ShardedBuilder):
  """MODIS LST tiles (K) with their guides: the composite's NDVI and reflectances."""

  VERSION = tfds.core.Version("1.4.0")
  RELEASE_NOTES = {"1.0.0": "1 km LST and NDVI per LST band.",
                   "1.1.0": "The composite's red, NIR and MIR reflectances.",
                   "1.2.0": ("The location's LST climatology from the training split; the tile "
                             "index."),
                   "1.3.0": "The count of validation samples the climatology covers.",
                   "1.4.0": "A test split; splits by date, location or at random."}

  def __init__(self, *, source_dir: str, tile_size: int, split: dict, num_shards: int,
               heldout_climatology: str = "training", **kwargs):
    """`split`: the keyword arguments of `split_samples` (`split_settings`);
    `heldout_climatology`: data.heldout_climatology, 'training' or 'own_archive'."""
    self._source_dir = source_dir
    self._heldout_climatology = heldout_climatology
    self._tile_size = tile_size
    self._split = dict(split)
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
    parts = split_samples(usable, **self._split)
    sizes = {name: len(samples) for name, samples in parts._asdict().items()}
    if min(sizes["train"], sizes["validation"]) < self._num_shards or not sizes["test"] and \
        self._split["test_fraction"] > 0:
      raise ValueError(
          f"{self._source_dir}: {sizes['train']} training, {sizes['validation']} validation "
          f"and {sizes['test']} test samples split by {self._split['split_by']} "
          f"(data.val_fraction={self._split['val_fraction']}, data.test_fraction="
          f"{self._split['test_fraction']}); data.num_shards={self._num_shards} needs at "
          "least that many training and validation samples, and a test fraction a sample")
    self._metadata.update({**counts, "samples": len(usable), "dropped_samples": dropped,
                           "split_by": self._split["split_by"],
                           **{f"{name}_samples": size for name, size in sizes.items()}})
    logging.info("LST samples split by %s: %d train, %d validation, %d test; dropped %s; %d "
                 "LST files without composite.", self._split["split_by"], sizes["train"],
                 sizes["validation"], sizes["test"], dropped,
                 counts["lst_files_without_composite"])
    guides = {"train": lst_climatology.from_samples(parts.train, self._tile_size)[0]}
    for name in ("validation", "test"):
      samples = getattr(parts, name)
      guides[name] = guides["train"] if self._heldout_climatology == "training" or not samples \
          else lst_climatology.from_samples(samples, self._tile_size)[0]
      self._metadata[f"{name}_samples_with_climatology"] = int(sum(
          guides[name].covers(sample) for sample in samples))
    own = {"train": True, "validation": self._heldout_climatology == "own_archive",
           "test": self._heldout_climatology == "own_archive"}
    return {name: self._generate_examples(samples, guides[name], leave_out_own=own[name])
            for name, samples in parts._asdict().items() if samples}

  def _generate_examples(self, samples, climatology: lst_climatology.Climatology, *,
                         leave_out_own: bool):
    """(key, example) of each sample; its climatology guide from `climatology`, without the
    sample's own image where `leave_out_own` (the climatology holds it)."""
    shape = (self._tile_size, self._tile_size)
    for sample in progress.counted(samples, "Writing LST examples", unit="images"):
      lst, ndvi, reflectances = modis.read_sample(sample, self._tile_size)
      yield sample.key, {"lst": lst[..., None], "ndvi": ndvi[..., None],
                         "reflectance": np.moveaxis(reflectances, 0, -1),
                         "climatology": climatology.guide(sample, shape,
                                                          leave_out=lst if leave_out_own
                                                          else None),
                         "day_of_year": sample.lst.day_of_year, "band": sample.band,
                         "tile_index": sample.lst.index}
