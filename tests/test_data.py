"""Scene preparation, the TFDS tile builder and the tf.data pipeline."""
import dataclasses
import re
import shutil

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments import jwst as jwst_experiment
from fusionjax.data import pipeline
from fusionjax.data.jwst import scene as jwst_scene
from fusionjax.data.fusion_scene import FusionScene, split_columns
from fusionjax.data.tiles_builder import FusionTiles


@pytest.fixture(scope="module")
def smoke_config():
  return jwst_experiment.get_config("smoke")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, smoke_config):
  root = tmp_path_factory.mktemp("tiles")
  scene_path = str(root / "scene.npz")
  jwst_scene.prepare_jwst_scene(smoke_config).save(scene_path)
  builder = FusionTiles(scene_paths=[scene_path], tile_size=smoke_config.data.tile_size,
                        train_stride=smoke_config.data.train_stride, num_shards=2,
                        data_dir=str(root / "tfds"))
  builder.download_and_prepare()
  return FusionScene.load(scene_path), builder


def test_scene_is_consistent(prepared, smoke_config):
  scene, _ = prepared
  h, w, d = scene.lr_codes.shape
  assert scene.msi.shape == (3 * h, 3 * w, 11)
  assert scene.truth_codes.shape == (3 * h, 3 * w, d)
  for column in (scene.heldout_col_start, scene.test_col_start, scene.split_gap):
    assert column % 3 == 0
  assert scene.heldout_truth.shape == (smoke_config.data.num_wavelengths, 3 * h,
                                       3 * w - scene.heldout_col_start)
  assert scene.heldout_lr.shape == (smoke_config.data.num_wavelengths, h,
                                    w - scene.heldout_col_start // 3)
  # The coded truth decodes to the physical truth of the held-out region.
  decoded = scene.coding.decode(scene.truth_codes[:, scene.heldout_col_start:])
  np.testing.assert_allclose(np.moveaxis(decoded, -1, 0), scene.heldout_truth, rtol=1e-4,
                             atol=1e-3)


def test_scene_splits_its_columns_into_train_gap_validation_gap_test(prepared, smoke_config):
  """The smoke scene (96 columns, tiles of 24, val_fraction = test_fraction = 0.25,
  split_gap 3): training columns [0, 42), a gap, validation [45, 69), a gap, test [72, 96)."""
  scene, _ = prepared
  width, t, gap = scene.msi.shape[1], smoke_config.data.tile_size, smoke_config.data.split_gap
  assert width == 96 and scene.split_gap == gap == 3
  train, validation, test = (scene.split_columns(s) for s in ("train", "validation", "test"))
  assert (train, validation, test) == ((0, 42), (45, 69), (72, 96))
  assert scene.heldout_col_start == validation[0] and scene.test_col_start == test[0]
  # Each strip at least one tile wide, each held-out strip split_gap columns after the part
  # before it, the test strip at the right-hand end.
  assert train[1] + gap == validation[0] and validation[1] + gap == test[0] and test[1] == width
  assert min(end - start for start, end in (train, validation, test)) >= t
  with pytest.raises(ValueError, match="split='holdout'"):
    scene.split_columns("holdout")
  f = scene.scale_factor
  for split in ("validation", "test"):
    start, end = scene.split_columns(split)
    strip = scene.strip(split)
    assert strip.col_start == start
    assert strip.truth.shape == (smoke_config.data.num_wavelengths, scene.msi.shape[0],
                                 end - start)
    decoded = scene.coding.decode(scene.truth_codes[:, start:end])
    np.testing.assert_allclose(np.moveaxis(decoded, -1, 0), strip.truth, rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(strip.msi, scene.msi[:, start:end])
    np.testing.assert_array_equal(strip.lr_codes, scene.lr_codes[:, start // f:end // f])
    np.testing.assert_array_equal(
        strip.lr, scene.heldout_lr[:, :, (start - scene.heldout_col_start) // f:
                                   (end - scene.heldout_col_start) // f])
    np.testing.assert_array_equal(strip.valid, scene.truth_valid[:, start:end])
    assert strip.lr.shape[-1] * f == strip.truth.shape[-1] == strip.msi.shape[1]


def _data(**fields):
  """A data section of `fields` (an attribute dict with .get, as a ConfigDict)."""
  data = ml_collections.ConfigDict({"tile_size": 24, "val_fraction": 0.2, "test_fraction": 0.2,
                                    "split_gap": 24})
  data.update(fields)
  return data


def test_split_columns_gives_gaps_and_at_least_one_tile_per_strip():
  # 240 columns: validation and test strips of 48 (0.2 of the width), gaps of one tile.
  assert split_columns(240, _data(), 3) == (120, 192, 24)
  # A gap rounded up to the scale factor; a strip at least one tile wide.
  assert split_columns(240, _data(split_gap=4), 3) == (138, 192, 6)
  assert split_columns(240, _data(val_fraction=0.01, split_gap=0), 3) == (168, 192, 0)
  # No test strip: the validation strip at the right-hand end, no gap before the (empty) test.
  assert split_columns(240, _data(test_fraction=0.0), 3) == (192, 240, 24)
  scene_width = 240
  for fields in ({}, {"split_gap": 6}, {"test_fraction": 0.0}, {"val_fraction": 0.3}):
    heldout, test, gap = split_columns(scene_width, _data(**fields), 3)
    assert heldout - gap >= 24 and heldout % 3 == test % 3 == gap % 3 == 0


@pytest.mark.parametrize("fields, message", [
    ({"val_fraction": 1.0}, r"data.val_fraction=1.0: expected a fraction in \(0, 1\)"),
    ({"val_fraction": -0.1}, r"data.val_fraction=-0.1: expected a fraction"),
    ({"test_fraction": 1.5}, r"data.test_fraction=1.5: expected a fraction in \[0, 1\)"),
    ({"test_fraction": -0.2}, r"data.test_fraction=-0.2: expected a fraction"),
    ({"val_fraction": 0.0}, r"data.val_fraction=0.0: expected a fraction in \(0, 1\) \(a "
                            "validation part is required\)"),
    ({"val_fraction": 0.6, "test_fraction": 0.5}, r"data.val_fraction=0.6 \+ "
                                                  r"data.test_fraction=0.5 >= 1"),
    ({"val_fraction": 0.4, "test_fraction": 0.4},
     r"data.val_fraction=0.4, data.test_fraction=0.4, data.split_gap=24"),
    ({"split_gap": -1}, r"data.split_gap=-1: expected a number of pixels >= 0"),
])
def test_bad_split_fractions_are_named(fields, message):
  with pytest.raises(ValueError, match=message):
    split_columns(240, _data(**fields), 3)


def test_tfrecord_round_trip(prepared, smoke_config):
  scene, builder = prepared
  t, s = smoke_config.data.tile_size, scene.scale_factor
  examples = list(tfds.as_numpy(builder.as_dataset(split="train")))
  assert len(examples) == builder.info.splits["train"].num_examples > 0
  for example in examples:
    r, c = example["origin"]
    # No training tile touches the gap before the validation strip, nor anything after it.
    assert c + t <= scene.heldout_col_start - scene.split_gap
    np.testing.assert_array_equal(example["msi"], scene.msi[r:r + t, c:c + t])
    np.testing.assert_array_equal(example["truth"], scene.truth_codes[r:r + t, c:c + t])
    np.testing.assert_array_equal(example["lr"],
                                  scene.lr_codes[r // s:(r + t) // s, c // s:(c + t) // s])


def test_train_tiles_overlap_neither_held_out_strip_nor_the_gaps(prepared, smoke_config):
  """FusionTiles' train split (the tiles' 'origin' features as generated) covers training
  columns only: no column of the validation strip, the test strip or the gaps before them; the
  validation split covers the validation strip only (the test strip is not tiled)."""
  scene, builder = prepared
  t, width = smoke_config.data.tile_size, scene.msi.shape[1]
  train_end = scene.split_columns("train")[1]
  val_start, val_end = scene.split_columns("validation")
  test_start, test_end = scene.split_columns("test")
  held_out = set(range(train_end, width))     # gap, validation, gap, test
  assert {*range(train_end, val_start), *range(val_end, test_start)} and \
      held_out >= {*range(val_start, val_end), *range(test_start, test_end)}

  def columns(split):
    origins = [tuple(int(v) for v in e["origin"])
               for e in tfds.as_numpy(builder.as_dataset(split=split))]
    assert len(origins) == builder.info.splits[split].num_examples > 0
    return origins, set().union(*(range(c, c + t) for _, c in origins))

  train_origins, train_columns = columns("train")
  assert not train_columns & held_out
  assert max(c for _, c in train_origins) + t <= train_end
  # The stride of 12 reaches as far right as it can without entering the gap.
  assert max(c for _, c in train_origins) + t + smoke_config.data.train_stride > train_end
  validation_origins, validation_columns = columns("validation")
  assert validation_columns == set(range(val_start, val_end))
  assert not validation_columns & (train_columns | set(range(val_end, width)))
  # Every row of the validation strip is tiled once, without overlap.
  assert len(validation_origins) == (scene.msi.shape[0] // t) * ((val_end - val_start) // t)
  assert set(builder.info.splits) == {"train", "validation"}


def test_too_many_shards_for_the_tiles_is_named(prepared, tmp_path, smoke_config):
  scene, builder = prepared
  too_many = FusionTiles(scene_paths=builder._scene_paths, tile_size=24, train_stride=12,
                         num_shards=3, data_dir=str(tmp_path))
  with pytest.raises(ValueError, match="data.num_shards=3 needs at least that many"):
    too_many.download_and_prepare()


def test_non_finite_tile_is_reported_with_its_id(prepared, tmp_path):
  scene, _ = prepared
  msi = scene.msi.copy()
  msi[13, 14, 2] = np.nan
  broken = dataclasses.replace(scene, msi=msi)
  broken.save(str(tmp_path / "scene.npz"))
  builder = FusionTiles(scene_paths=[str(tmp_path / "scene.npz")], tile_size=24,
                        train_stride=12, num_shards=1, data_dir=str(tmp_path / "tfds"))
  with pytest.raises(ValueError, match=r"tile 000_00000_00000 \(row 0, column 0\): 'msi' holds 1 "
                                       r"non-finite values"):
    builder.download_and_prepare()


def test_streams_read_disjoint_shards_and_processes_share_them(prepared):
  _, builder = prepared
  files = [str(p) for p in builder.info.splits["train"].filepaths]
  assert len(files) == 2
  shares = pipeline.stream_shards(files, 2)
  assert shares[0] and shares[1] and not set(shares[0]) & set(shares[1])
  assert sorted(shares[0] + shares[1]) == sorted(files)
  with pytest.raises(ValueError, match="2 shard files cannot feed data.num_streams=3"):
    pipeline.stream_shards(files, 3)
  assert [list(pipeline.process_streams(4, i, 2)) for i in range(2)] == [[0, 1], [2, 3]]
  with pytest.raises(ValueError, match="data.num_streams=2 read streams cannot be shared "
                                       "evenly by 4 processes"):
    pipeline.process_streams(2, 0, 4)


def test_global_batches_do_not_depend_on_the_process_count(prepared):
  _, builder = prepared

  def batches(process_index, process_count):
    stream = pipeline.train_batches(builder, global_batch_size=4, num_streams=2, seed=3,
                                    start_step=0, process_index=process_index,
                                    process_count=process_count, shuffle_buffer=16,
                                    augment=pipeline.random_dihedral)
    return [next(stream) for _ in range(6)]

  whole = batches(0, 1)
  halves = [batches(i, 2) for i in range(2)]
  for step, batch in enumerate(whole):
    for key in ("lr", "msi", "truth", "origin"):
      joined = np.concatenate([halves[0][step][key], halves[1][step][key]])
      np.testing.assert_array_equal(batch[key], joined)


def _batches(builder, start_step, count):
  batches = pipeline.train_batches(builder, global_batch_size=2, num_streams=2, seed=3,
                                   start_step=start_step, process_index=0, process_count=1,
                                   shuffle_buffer=16, augment=pipeline.random_dihedral)
  return [next(batches) for _ in range(count)]


def test_resumed_pipeline_continues_where_it_stopped(prepared):
  _, builder = prepared
  uninterrupted = _batches(builder, 0, 12)
  resumed = _batches(builder, 7, 5)
  for a, b in zip(uninterrupted[7:], resumed):
    for key in ("lr", "msi", "truth", "origin"):
      np.testing.assert_array_equal(a[key], b[key])


def test_augmentation_transforms_all_images_alike(prepared):
  scene, builder = prepared
  t = 24
  for batch in _batches(builder, 0, 4):
    for msi, truth, (r, c) in zip(batch["msi"], batch["truth"], batch["origin"]):
      reference_msi = scene.msi[r:r + t, c:c + t]
      reference_truth = scene.truth_codes[r:r + t, c:c + t]
      matches = [k for k in range(8)
                 if np.array_equal(msi, _dihedral(reference_msi, k))]
      assert matches, "MSI tile is not a flip/rotation of its source"
      assert any(np.array_equal(truth, _dihedral(reference_truth, k)) for k in matches)


def _dihedral(image, k):
  rotated = np.rot90(image, k % 4)
  return rotated[:, ::-1] if k >= 4 else rotated


def test_eval_batches_pad_and_weight(prepared):
  _, builder = prepared
  count = builder.info.splits["validation"].num_examples
  batches = list(pipeline.eval_batches(builder, "validation", global_batch_size=4,
                                       process_index=0, process_count=1))
  assert sum(b["weight"].sum() for b in batches) == count
  assert all(len(b["weight"]) == 4 for b in batches)


def _damaged_copy(builder, tmp_path):
  """A copy of the builder's tiles with the second record of a training shard corrupted (one
  payload byte flipped) and a validation shard truncated inside its last record."""
  shutil.copytree(builder.data_dir.split("/fusion_tiles/")[0], tmp_path / "tfds")
  copy = FusionTiles(scene_paths=builder._scene_paths, tile_size=24, train_stride=12,
                     num_shards=2, data_dir=str(tmp_path / "tfds"))
  train_shard = sorted(str(p) for p in copy.info.splits["train"].filepaths)[0]
  data = bytearray(open(train_shard, "rb").read())
  record = len(data) // copy.info.splits["train"].shard_lengths[0]
  data[record + record // 2] ^= 0xFF
  open(train_shard, "wb").write(bytes(data))
  val_shard = sorted(str(p) for p in copy.info.splits["validation"].filepaths)[-1]
  data = open(val_shard, "rb").read()
  open(val_shard, "wb").write(data[:-100])
  return copy, train_shard, val_shard


def test_corrupt_shards_are_named_or_skipped_and_counted(prepared, tmp_path):
  _, builder = prepared
  copy, train_shard, val_shard = _damaged_copy(builder, tmp_path)
  pipeline.readable_records.cache_clear()
  batches = pipeline.train_batches(copy, global_batch_size=2, num_streams=1, seed=3,
                                   start_step=0, process_index=0, process_count=1,
                                   shuffle_buffer=4, augment=None)
  with pytest.raises(ValueError, match=re.escape(train_shard) + r": record 1 is unreadable "
                                       r"\(corrupted record at \d+\); set data.skip_corrupt"):
    for _ in range(50):
      next(batches)
  with pytest.raises(ValueError, match=re.escape(val_shard) + r": record \d+ is unreadable "
                                       r"\(truncated record"):
    list(pipeline.eval_batches(copy, "validation", global_batch_size=4, process_index=0,
                               process_count=1))

  train_lengths = copy.info.splits["train"].shard_lengths
  assert pipeline.skipped_records(copy, "train") == train_lengths[0] - 1
  assert pipeline.skipped_records(copy, "validation") == 1
  batches = pipeline.train_batches(copy, global_batch_size=2, num_streams=1, seed=3,
                                   start_step=0, process_index=0, process_count=1,
                                   shuffle_buffer=4, augment=None,
                                   skip_corrupt=True)
  origins = {tuple(o) for _ in range(40) for o in next(batches)["origin"]}
  assert len(origins) == sum(train_lengths) - (train_lengths[0] - 1)
  val = list(pipeline.eval_batches(copy, "validation", global_batch_size=4, process_index=0,
                                   process_count=1, skip_corrupt=True))
  assert sum(b["weight"].sum() for b in val) == copy.info.splits["validation"].num_examples - 1
