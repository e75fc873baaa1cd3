"""Sentinel-2 band sharpening: readers, the MTF degradation, the classical baselines, and the
command line end to end (training, whole-scene prediction without seams)."""
import functools
import json

import numpy as np
import pytest
import rasterio
import tensorflow_datasets as tfds

from fusionjax import tiling, train
from fusionjax.baselines import pansharpening
from fusionjax.data import geotiff, random_fields
from fusionjax.data.sentinel2 import procedural as procedural_sentinel2
from fusionjax.data.sentinel2 import reader as sentinel2
from fusionjax.data.sentinel2.scene import prepare_sentinel2_scenes, scene_sources
from fusionjax.data.tiles_builder import FusionTiles
from fusionjax.tasks import sentinel2 as sentinel2_task
from experiments import sentinel2 as sentinel2_experiment
from fusionjax.physics import psf, sampling
from tests.conftest import experiment_config, shared_data_dir

ALL_BANDS = sentinel2.BANDS_10M + sentinel2.BANDS_20M + sentinel2.BANDS_60M


def write_mat(path, scene: sentinel2.Scene, datasets=sentinel2.MAT_DATASETS):
  sentinel2.write_mat(path, scene.bands, datasets)


def _scene(size=48, seed=0):
  return procedural_sentinel2.make_scene(size, seed)


def test_mat_reader_undoes_matlab_column_major_order(tmp_path):
  scene = _scene()
  write_mat(tmp_path / "scene.mat", scene)
  read = sentinel2.read_mat(str(tmp_path / "scene.mat"), ALL_BANDS)
  for name in ALL_BANDS:
    np.testing.assert_array_equal(read.bands[name], scene.bands[name])
  assert read.bands["B5"].shape == (24, 24) and read.bands["B1"].shape == (8, 8)
  # A folder holding one MATLAB scene (as ../shared/data/sentinel2) reads as that scene.
  np.testing.assert_array_equal(sentinel2.read_scene(str(tmp_path)).bands["B8A"],
                                scene.bands["B8A"])
  write_mat(tmp_path / "other.mat", scene)
  with pytest.raises(ValueError, match=r"holds 2 MATLAB scenes \['other.mat', 'scene.mat'\]"):
    sentinel2.read_scene(str(tmp_path))


def test_bad_scenes_are_named(tmp_path):
  scene = _scene()
  write_mat(tmp_path / "no20.mat", scene, {"im10": sentinel2.BANDS_10M})
  with pytest.raises(ValueError, match=r"no20.mat: missing band\(s\) \['B5', 'B6'"):
    sentinel2.read_mat(str(tmp_path / "no20.mat"))
  bands = dict(scene.bands, B11=scene.bands["B11"][:-2])
  with pytest.raises(ValueError, match=r"band B11 \(20 m\) is 22 x 24 pixels; expected 24 x 24"):
    sentinel2.check_scene(bands, "scene", sentinel2.BANDS_10M + sentinel2.BANDS_20M)
  (tmp_path / "text.mat").write_text("not HDF5")
  with pytest.raises(ValueError, match="text.mat: not a MATLAB v7.3"):
    sentinel2.read_mat(str(tmp_path / "text.mat"))


def test_band_files_keep_their_georeferencing_and_must_share_a_grid(tmp_path):
  scene = _scene()
  crs = rasterio.crs.CRS.from_epsg(32633).to_wkt()
  origin = (300000.0, 5800020.0)
  for name in sentinel2.BANDS_10M + sentinel2.BANDS_20M:
    size = sentinel2.BANDS[name].resolution_m
    georef = geotiff.GeoReference(crs, (size, 0.0, origin[0], 0.0, -size, origin[1]))
    geotiff.write_geotiff(str(tmp_path / f"T33UUB_20170527_{name}.tif"),
                          scene.bands[name][None], georef)
  read = sentinel2.read_band_files(str(tmp_path))
  np.testing.assert_array_equal(read.bands["B8A"], scene.bands["B8A"])
  assert read.georef.pixel_size == 10.0
  shifted = geotiff.GeoReference(crs, (20.0, 0.0, origin[0] + 40, 0.0, -20.0, origin[1]))
  geotiff.write_geotiff(str(tmp_path / "T33UUB_20170527_B12.tif"), scene.bands["B12"][None],
                        shifted)
  with pytest.raises(ValueError, match="band B12's grid"):
    sentinel2.read_band_files(str(tmp_path))
  assert sentinel2.band_of_file("T33UUB_20170527T100031_B8A.jp2") == "B8A"
  assert sentinel2.band_of_file("x_B05_20m.jp2") == "B5"
  assert sentinel2.band_of_file("TCI.jp2") is None


def _with_nodata(scene: sentinel2.Scene, rows: int, cols: int) -> sentinel2.Scene:
  """The scene with no-data (0) in the top-left rows x cols 10 m pixels of every band, as at
  the edge of an L1C granule, and one saturated 20 m pixel of B11."""
  bands = {}
  for name, band in scene.bands.items():
    k = sentinel2.BANDS[name].resolution_m // 10
    band = band.copy()
    band[:rows // k, :cols // k] = sentinel2.NODATA
    bands[name] = band
  bands["B11"][-1, -1] = sentinel2.SATURATED
  return sentinel2.Scene(bands, scene.georef, scene.source)


def test_nodata_and_saturated_pixels_are_no_truth_and_no_tiles(tmp_path):
  # The smoke config's size (132 pixels at 10 m): its training part, gaps and strips.
  write_mat(tmp_path / "scene.mat", _with_nodata(_scene(132), rows=40, cols=132))
  config = sentinel2_experiment.get_config("smoke")
  config.data.dir = str(tmp_path / "scene.mat")
  (scene,) = prepare_sentinel2_scenes(config)
  expected = np.ones((66, 66), bool)
  expected[:20] = False          # 40 rows at 10 m
  expected[-1, -1] = False       # saturated
  np.testing.assert_array_equal(scene.truth_valid, expected)
  assert np.all(np.isfinite(scene.msi)) and np.abs(scene.msi[20:].mean(axis=(0, 1))).max() < 0.2
  scene.save(str(tmp_path / "scene.npz"))
  builder = FusionTiles(scene_paths=[str(tmp_path / "scene.npz")], tile_size=16,
                        train_stride=4, num_shards=1, data_dir=str(tmp_path / "tfds"))
  examples = dict(builder._generate_examples([(0, 0, 0), (0, 4, 0), (0, 16, 0), (0, 32, 0)]))
  assert sorted(examples) == ["000_00016_00000", "000_00032_00000"]   # tiles 0, 4: no-data
  np.testing.assert_array_equal(examples["000_00016_00000"]["valid"][:, :, 0],
                                expected[16:32, :16].astype(np.float32))


def test_degradation_has_the_bands_mtf_at_the_coarse_nyquist_frequency():
  size, factor, mtf = 64, 2, 0.33
  constant = np.full((size, size, 1), 1234.0, np.float32)
  np.testing.assert_allclose(psf.degrade_to_mtf(constant, factor, [mtf]), 1234.0, rtol=1e-5)
  # A cosine at the coarse Nyquist frequency, 1 / (2 factor) cycles per fine pixel, keeps the
  # fraction `mtf` of its amplitude through the blur.
  columns = np.arange(size)
  wave = np.cos(2 * np.pi * columns / (2 * factor))[None, :].repeat(size, 0)
  sigma = psf.mtf_sigma_pixels(factor, mtf)
  blurred = np.asarray(psf.gaussian_blur(wave[None], np.array([sigma]), psf.kernel_radius(sigma)))
  amplitude = np.abs(blurred[0, size // 2, 16:48]).max()
  assert amplitude == pytest.approx(mtf, rel=0.02)


def test_baselines_recover_bands_that_are_combinations_of_the_guides():
  rng = np.random.default_rng(0)
  hr = np.stack([random_fields.fractal_field(rng, 64, 2.0) for _ in range(4)], -1)
  mixing = rng.uniform(0.2, 1.0, (4, 3))
  truth = (hr @ mixing + 5.0).astype(np.float32)
  lr = np.asarray(psf.degrade_to_mtf(truth, 2, [0.3] * 3))
  bicubic = np.asarray(sampling.upsample_bicubic(lr, 2))
  error = lambda estimate: np.sqrt(np.mean((estimate - truth)[8:-8, 8:-8] ** 2))
  local_mtf_glp = functools.partial(pansharpening.mtf_glp, window=2.0)
  for name, method in (("gsa", pansharpening.gsa), ("mtf_glp", pansharpening.mtf_glp),
                       ("local mtf_glp", local_mtf_glp)):
    estimate = method(lr, hr.astype(np.float32), 2, 0.3)
    assert estimate.shape == truth.shape
    assert error(estimate) < 0.25 * error(bicubic), name


def test_synthetic_pans_solve_each_pixels_least_squares():
  rng = np.random.default_rng(1)
  hr = rng.normal(size=(2, 16, 16, 3)).astype(np.float32)
  weights = rng.normal(size=(3, 2)).astype(np.float32)
  # lr is exactly a combination of the degraded guides (plus an offset): the fit recovers it,
  # on the whole example and in local windows alike.
  degraded = np.stack([np.asarray(psf.degrade_to_mtf(image, 2, [pansharpening.GENERIC_MTF] * 3))
                       for image in hr])
  lr = degraded @ weights + 3.0
  for window in (None, 2.0):
    pans = np.asarray(pansharpening.synthetic_pans(lr, hr, 2, window))
    np.testing.assert_allclose(pans, hr @ weights + 3.0, atol=0.02)


def _predict(workdir, arg, scene, outputs, **overrides):
  """--mode=predict of the trained smoke run in `workdir` on a whole scene file."""
  config = experiment_config("sentinel2", arg, **overrides)
  config.predict.input, config.predict.output = str(scene), str(outputs)
  train.run(config, str(workdir), mode="predict")


@pytest.mark.parametrize("arg, model", [("smoke", "dsen2"), ("smoke,model=fusformer", "fusformer")])
def test_smoke_run_evaluates_baselines_and_predicts_a_seamless_whole_scene(trained, tmp_path,
                                                                           arg, model):
  workdir = trained("sentinel2", arg)
  written = json.loads((workdir / "eval.json").read_text())
  assert set(written) == {"step", "validation", "test"} and written["step"] == 6
  # The smoke scene is 66 pixels wide at 20 m (reduced resolution): training columns
  # [0, 30), a gap of 2, validation [32, 48), a gap of 2, test [50, 66).
  for split, columns in (("validation", [32, 48]), ("test", [50, 66])):
    report = written[split]
    assert report["model"]["model_name"] == model
    for method in ("model", "bicubic", "gsa", "mtf_glp"):
      assert {"rmse", "psnr", "ssim", "sam_deg", "ergas"} <= set(report[method])
      assert set(report[method]["per_band"]) == set(sentinel2.BANDS_20M)
      assert set(report[method]["per_band"]["B11"]) == {"rmse", "psnr", "ssim", "ergas"}
    assert report["rmse_ratio_bicubic_to_model"] > 0
    assert report["region"]["columns"] == columns
    assert report["region"]["training_columns"] == [0, 30]
    assert report["region"]["pixels"] == 66 * 16
  assert written["test"]["model"]["rmse"] != written["validation"]["model"]["rmse"]
  # The products are the test strip's: 16 columns wide.
  with rasterio.open(workdir / "products" / "fused_strip_20m.tif") as product:
    assert product.shape == (66, 16)
  assert (workdir / "products" / "quicklook.png").stat().st_size > 10_000

  # A whole 96 x 96 (10 m) scene, larger than one 32-pixel tile, at full resolution, with
  # no-data in its top-left corner.
  write_mat(tmp_path / "scene.mat", _with_nodata(_scene(96, seed=5), rows=10, cols=30))
  outputs = tmp_path / "outputs"   # the network's own sharpening (weighed: test_sentinel2_adapt)
  _predict(workdir, arg, tmp_path / "scene.mat", outputs, **{"predict.fit_correction": False})
  with rasterio.open(outputs / "scene_sharpened_10m.tif") as result:
    sharpened = result.read()
    assert result.descriptions[0] == "B5 (704 nm)" and result.nodata == sentinel2.NODATA
    assert result.descriptions == sentinel2_task.band_descriptions(sentinel2.BANDS_20M)
    assert result.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
    assert result.tags()["CHECKPOINT_STEP"] == "6" and result.tags()["MODEL"] == model
  assert sharpened.shape == (6, 96, 96) and np.all(np.isfinite(sharpened))
  nodata = np.zeros((96, 96), bool)
  nodata[:10, :30] = True
  nodata[-2:, -2:] = True     # the saturated 20 m pixel of B11
  np.testing.assert_array_equal(np.all(sharpened == sentinel2.NODATA, axis=0), nodata)
  # No seams: across the tile borders, the image jumps as much as the same model's prediction
  # in one piece does (the scene has sharp field edges of its own).
  _predict(workdir, arg, tmp_path / "scene.mat", tmp_path / "whole",
           **{"predict.tile_size": 96, "predict.tile_overlap": 0,
              "predict.fit_correction": False})
  with rasterio.open(tmp_path / "whole" / "scene_sharpened_10m.tif") as result:
    whole = result.read()
  jumps, whole_jumps = (np.abs(np.diff(image[:, 10:], axis=2)).mean(axis=(0, 1))
                        for image in (sharpened, whole))   # rows below the no-data
  starts = tiling.tile_starts(96, 32, 4, 2)[1:]   # predict.tile_size, .tile_overlap of :smoke
  borders = [c - 1 for c in starts] + [c + 31 for c in starts[:-1]]
  assert np.all(jumps[borders] <= 1.1 * whole_jumps[borders] + 0.1 * np.median(whole_jumps))
  assert (outputs / "scene_sharpened_10m.png").stat().st_size > 10_000


def test_real_scene_bands_are_read_aligned():
  path = shared_data_dir("sentinel2") + "/S2A_MSIL1C_20170527_T33UUB.mat"
  scene = sentinel2.read_mat(path, ALL_BANDS)
  assert scene.bands["B2"].shape == (600, 600) and scene.bands["B12"].shape == (300, 300)
  assert scene.bands["B9"].shape == (100, 100)
  # The 10 m red band averaged to 20 m lines up with the 20 m red-edge band.
  red = scene.bands["B4"].reshape(300, 2, 300, 2).mean(axis=(1, 3))
  assert np.corrcoef(red.ravel(), scene.bands["B5"].ravel())[0, 1] > 0.7
  assert abs(np.corrcoef(red.T.ravel(), scene.bands["B5"].ravel())[0, 1]) < 0.2
  # The MATLAB file's im10 holds red first: over this vegetated L1C scene, blue is brighter
  # than red at the top of the atmosphere and follows the coastal band B1; red follows B5.
  mean = lambda name: float(scene.bands[name].mean())  # noqa: E731
  assert mean("B2") > mean("B4") and mean("B8") > 2 * mean("B3")
  def corr(name, other):   # `name` averaged to the grid of `other`
    rows, columns = scene.bands[other].shape
    coarse = scene.bands[name].reshape(rows, -1, columns, scene.bands[name].shape[1] // columns)
    return np.corrcoef(coarse.mean(axis=(1, 3)).ravel(), scene.bands[other].ravel())[0, 1]
  assert corr("B2", "B1") > corr("B4", "B1") and corr("B4", "B5") > corr("B2", "B5")


def test_the_same_scene_as_mat_and_as_band_files_gives_every_band_its_channel(tmp_path):
  scene = _scene(96, seed=4)
  write_mat(tmp_path / "scene.mat", scene)
  crs = rasterio.crs.CRS.from_epsg(32633).to_wkt()
  (tmp_path / "bands").mkdir()
  for name, image in scene.bands.items():
    resolution = sentinel2.BANDS[name].resolution_m
    georef = geotiff.GeoReference(crs, (resolution, 0.0, 300000.0, 0.0, -resolution, 5e6))
    geotiff.write_geotiff(str(tmp_path / "bands" / f"T33UUB_20170527_{name}.tif"),
                          image[None], georef)
  from_mat = sentinel2.read_mat(str(tmp_path / "scene.mat"), ALL_BANDS)
  from_files = sentinel2.read_band_files(str(tmp_path / "bands"), ALL_BANDS)
  for names in (sentinel2.BANDS_10M, sentinel2.BANDS_20M, sentinel2.BANDS_60M):
    np.testing.assert_array_equal(from_mat.stack(names), from_files.stack(names))
    np.testing.assert_array_equal(from_mat.stack(names), scene.stack(names))


def test_60m_variant_sharpens_b1_and_b9_to_10m(trained, tmp_path):
  workdir = trained("sentinel2", "60m,smoke")
  written = json.loads((workdir / "eval.json").read_text())
  # 36 pixels at 60 m (reduced resolution), no gaps: training [0, 12), validation
  # [12, 24), test [24, 36).
  for split, columns in (("validation", [12, 24]), ("test", [24, 36])):
    report = written[split]
    for method in ("model", "bicubic", "gsa", "mtf_glp"):
      assert set(report[method]["per_band"]) == set(sentinel2.BANDS_60M)
    assert report["region"]["bands"] == 2
    assert report["region"]["columns"] == columns
    assert report["region"]["training_columns"] == [0, 12]
  write_mat(tmp_path / "scene.mat", _scene(216, seed=3))
  _predict(workdir, "60m,smoke", tmp_path / "scene.mat", tmp_path / "out")
  with rasterio.open(tmp_path / "out" / "scene_sharpened_10m.tif") as result:
    assert result.descriptions == ("B1 (443 nm)", "B9 (945 nm)")
    sharpened = result.read()
  assert sharpened.shape == (2, 216, 216) and np.all(np.isfinite(sharpened))


def test_procedural_landscapes_have_their_land_covers_physics():
  mean = lambda scene, band: float(scene.bands[band].mean())  # noqa: E731
  mixed, snow, water, hazy = (procedural_sentinel2.make_scene(96, 3, landscape)
                              for landscape in ("mixed", "snow", "water", "hazy"))
  # Snow: bright in the visible, dark in the short-wave infrared (NDSI above 0.4 on 20 m
  # pixels, the snow test of the Sentinel-2 scene classification).
  def snowy(scene):
    green = scene.bands["B3"].reshape(48, 2, 48, 2).mean(axis=(1, 3))
    return np.mean((green - scene.bands["B11"]) / (green + scene.bands["B11"]) > 0.4)
  assert snowy(snow) > 0.3 > 10 * snowy(mixed)
  assert mean(snow, "B3") > 2 * mean(mixed, "B3")
  # Water: more pixels with a positive NDWI (green above near infrared).
  wet = lambda s: np.mean(s.bands["B3"] > s.bands["B8"])  # noqa: E731
  assert wet(water) > 0.2 > 2 * wet(mixed)
  # Haze: the same ground (same seed) brighter in blue, hardly changed in the SWIR.
  assert mean(hazy, "B2") > 1.2 * mean(mixed, "B2")
  assert abs(mean(hazy, "B12") / mean(mixed, "B12") - 1.0) < 0.05
  with pytest.raises(ValueError, match=r"procedural landscape 'desert': expected one of"):
    procedural_sentinel2.make_scene(96, 3, "desert")


def test_data_dir_lists_scenes_files_folders_and_procedural_ones(tmp_path):
  (tmp_path / "scenes").mkdir()
  for name in ("a", "b"):
    write_mat(tmp_path / "scenes" / f"{name}.mat", _scene(48))
  folder = tmp_path / "scenes" / "tile"
  folder.mkdir()
  georef = geotiff.GeoReference(rasterio.crs.CRS.from_epsg(32633).to_wkt(),
                                (10.0, 0.0, 0.0, 0.0, -10.0, 0.0))
  geotiff.write_geotiff(str(folder / "T_B02.tif"), _scene(48).bands["B2"][None], georef)
  sources = scene_sources(f"{tmp_path / 'scenes'}, procedural:snow")
  assert sources == [str(tmp_path / "scenes" / "a.mat"), str(tmp_path / "scenes" / "b.mat"),
                     str(folder), "procedural:snow"]
  assert scene_sources("") == ["procedural:mixed"]
  with pytest.raises(FileNotFoundError, match=r"data.dir entry '.*nowhere': no such file"):
    scene_sources(f"procedural:snow,{tmp_path / 'nowhere'}")
  with pytest.raises(ValueError, match="procedural landscape 'forest'"):
    scene_sources("procedural:forest")
  with pytest.raises(FileNotFoundError, match="no .mat scene, band files"):
    scene_sources(str(folder.parent.parent))


def test_several_scenes_train_one_model_reported_per_scene_and_pooled(trained):
  workdir = trained("sentinel2", "smoke", **{"data.dir": "procedural:mixed,procedural:snow"})
  written = json.loads((workdir / "eval.json").read_text())
  for split, columns in (("validation", [32, 48]), ("test", [50, 66])):
    report = written[split]
    scenes = report["scenes"]
    assert len(scenes) == 2 and any("snow" in name for name in scenes)
    assert all(s["region"]["columns"] == columns for s in scenes.values())
    # Pooled: the RMSE of all valid held-out pixels, each scene's weighted by its pixels.
    for method in ("model", "bicubic", "mtf_glp"):
      counts = [s["region"]["valid_pixels"] for s in scenes.values()]
      squares = [s[method]["rmse"] ** 2 for s in scenes.values()]
      pooled = np.sqrt(np.dot(counts, squares) / sum(counts))
      assert report[method]["rmse"] == pytest.approx(pooled, rel=1e-4)
      assert set(report[method]["per_band"]) == set(sentinel2.BANDS_20M)
  # The training tiles come from both scenes, and only from their training columns.
  tiles = next((workdir / "data").glob("sentinel2-*/tfds-*/fusion_tiles/*"))
  builder = tfds.builder_from_directory(str(tiles))
  examples = list(tfds.as_numpy(builder.as_dataset(split="train")))
  assert {int(e["scene"]) for e in examples} == {0, 1}
  assert max(int(e["origin"][1]) for e in examples) + 16 <= 30
  assert {p.name for p in (workdir / "products").iterdir()} >= {
      "fused_strip_20m_1.tif", "fused_strip_20m_2.tif", "quicklook_1.png", "quicklook_2.png"}
