"""Scene preparation, the TFDS tile builder and the tf.data pipeline."""
import dataclasses
import re
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments import jwst as jwst_experiment
from fusionjax.data import pipeline
from fusionjax.data.jwst import scene as jwst_scene
from fusionjax.data.fusion_scene import FusionScene
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
  assert scene.val_col_start % 3 == 0
  assert scene.val_truth.shape == (smoke_config.data.num_wavelengths, 3 * h,
                                   3 * w - scene.val_col_start)
  # The coded truth decodes to the physical truth of the held-out strip.
  decoded = scene.coding.decode(scene.truth_codes[:, scene.val_col_start:])
  np.testing.assert_allclose(np.moveaxis(decoded, -1, 0), scene.val_truth, rtol=1e-4, atol=1e-3)


def test_tfrecord_round_trip(prepared, smoke_config):
  scene, builder = prepared
  t, s = smoke_config.data.tile_size, scene.scale_factor
  examples = list(tfds.as_numpy(builder.as_dataset(split="train")))
  assert len(examples) == builder.info.splits["train"].num_examples > 0
  for example in examples:
    r, c = example["origin"]
    assert c + t <= scene.val_col_start  # no training tile touches the held-out strip
    np.testing.assert_array_equal(example["msi"], scene.msi[r:r + t, c:c + t])
    np.testing.assert_array_equal(example["truth"], scene.truth_codes[r:r + t, c:c + t])
    np.testing.assert_array_equal(example["lr"],
                                  scene.lr_codes[r // s:(r + t) // s, c // s:(c + t) // s])


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
