"""Prepares a Sentinel-2 band-sharpening scene under the Wald protocol.

Two sharpenings (`SHARPENINGS`, chosen by data.bands):
  20m  the six 20 m bands (B5 B6 B7 B8A B11 B12), guided by the four 10 m bands; factor 2.
  60m  the two 60 m bands (B1 B9), guided by the 10 m and the 20 m bands; factor 6.
As DSen2 (Lanaras et al. 2018): every band is degraded by the factor with the Gaussian PSF of
its own MTF (`psf.degrade_to_mtf`); the model learns to recover the target bands at their own
resolution from the degraded ones, and is applied one scale finer (`full_resolution_inputs`).
Guides coarser than the finest guide grid (the 20 m bands for 60m) are upsampled to it
(bicubic). A right-hand strip of the scene is held out for evaluation (no training tile
overlaps it). No-data (0) and saturated (65535) pixels are marked invalid, left out of the
loss and metrics, and gap-filled before any filtering so that they do not bleed into inputs.
"""
from __future__ import annotations

import dataclasses
import glob
import logging
import math
import os

import jax.numpy as jnp
import numpy as np

from fusionjax.data import coding as coding_lib
from fusionjax.data.sentinel2 import procedural as procedural_sentinel2
from fusionjax.data import geotiff
from fusionjax.data.sentinel2 import reader as sentinel2
from fusionjax.data.sentinel2 import safe
from fusionjax.data.fusion_scene import FusionScene, split_columns
from fusionjax.physics import psf, sampling


@dataclasses.dataclass(frozen=True)
class Sharpening:
  """Which bands are sharpened by which, and by how much.

  targets: the bands sharpened (one resolution, `resolution_m`); guides: the finer bands that
  guide them; factor: resolution_m / the finest guide's resolution; composite: three targets
  shown as a false-colour image (a band may repeat); error_band: the target whose error the
  quicklook maps."""
  name: str
  targets: tuple[str, ...]
  guides: tuple[str, ...]
  factor: int
  composite: tuple[str, str, str]
  error_band: str

  @property
  def resolution_m(self) -> int:
    return sentinel2.BANDS[self.targets[0]].resolution_m


SHARPENINGS = {s.name: s for s in (
    Sharpening("20m", sentinel2.BANDS_20M, sentinel2.BANDS_10M, 2, ("B12", "B8A", "B5"), "B8A"),
    Sharpening("60m", sentinel2.BANDS_60M, sentinel2.BANDS_10M + sentinel2.BANDS_20M, 6,
               ("B9", "B1", "B1"), "B1"))}


def sharpening_of(config) -> Sharpening:
  if config.data.bands not in SHARPENINGS:
    raise ValueError(f"data.bands={config.data.bands!r}: expected one of {tuple(SHARPENINGS)}")
  return SHARPENINGS[config.data.bands]


PROCEDURAL = "procedural:"


def scene_sources(data_dir: str, field: str = "data.dir") -> list[str]:
  """The scenes of data.dir: '' -> one procedural scene of the 'mixed' landscape; otherwise
  a comma-separated list of entries, each a .mat file, a folder of band files, a SAFE product
  (a .SAFE folder or its .zip), a folder of such scenes (its .mat files, SAFE products and
  sub-folders of band files, each one scene), or
  'procedural:<landscape>' (fusionjax.data.sentinel2.procedural.LANDSCAPES). FileNotFoundError
  or ValueError naming an entry that is none of these (and the setting, `field`)."""
  if not data_dir.strip():
    return [PROCEDURAL + "mixed"]
  sources = []
  for entry in (e.strip() for e in data_dir.split(",")):
    if entry.startswith(PROCEDURAL):
      procedural_sentinel2.landscape_of(entry[len(PROCEDURAL):])
      sources.append(entry)
    elif not entry:
      raise ValueError(f"{field}={data_dir!r}: an empty entry in the list")
    elif not os.path.exists(entry):
      raise FileNotFoundError(f"{field} entry {entry!r}: no such file or folder")
    elif os.path.isfile(entry) or safe.is_product(entry) or sentinel2.band_files(entry):
      sources.append(entry)
    else:
      mat_files = sorted(glob.glob(os.path.join(entry, "*.mat")))
      folders = sorted(p for p in glob.glob(os.path.join(entry, "*")) if safe.is_product(p)
                       or (os.path.isdir(p) and sentinel2.band_files(p)))
      if not mat_files and not folders:
        raise FileNotFoundError(f"{field} entry {entry!r}: no .mat scene, band files (named "
                                "by band, e.g. ..._B05.jp2), folders of band files or SAFE "
                                "products")
      sources += mat_files + folders
  return sources


def load_scene(source: str, config, position: int = 0) -> sentinel2.Scene:
  """The scene of one of `scene_sources`: read, or procedural (data.procedural_size pixels,
  seed config.seed + `position`, the source's place in the list, so that entries differ)."""
  if source.startswith(PROCEDURAL):
    return procedural_sentinel2.make_scene(config.data.procedural_size, config.seed + position,
                                           source[len(PROCEDURAL):])
  sharpening = sharpening_of(config)
  return sentinel2.read_scene(source, sharpening.guides + sharpening.targets)


def _on_grid(bands: dict, names, resolutions: dict, grid_m: int) -> np.ndarray:
  """(rows, columns, len(names)) of `bands` (name -> image at resolutions[name] metres) on a
  grid of grid_m metres, coarser bands upsampled (bicubic)."""
  images = []
  for name in names:
    ratio = resolutions[name] // grid_m
    image = bands[name][..., None]
    if ratio > 1:
      image = np.asarray(sampling.upsample_bicubic(jnp.asarray(image), ratio))
    images.append(image[..., 0])
  return np.stack(images, axis=-1).astype(np.float32)


def _valid_on_grid(bands: dict, names, grid_m: int) -> np.ndarray:
  """(rows, columns) bool on a grid of grid_m metres: every band of `names` (native
  resolution) measured in the pixel; a grid finer than a band repeats its validity, a coarser
  grid needs all of the band's pixels inside."""
  valid = None
  for name in names:
    band_valid = sentinel2.measured(bands[name])
    resolution = sentinel2.BANDS[name].resolution_m
    if resolution > grid_m:
      k = resolution // grid_m
      band_valid = np.repeat(np.repeat(band_valid, k, axis=0), k, axis=1)
    elif resolution < grid_m:
      band_valid = sentinel2.valid_at_coarser(band_valid, grid_m // resolution)
    valid = band_valid if valid is None else valid & band_valid
  return valid


def full_resolution_inputs(scene: sentinel2.Scene, sharpening: Sharpening):
  """What a trained model sharpens: (h, w, T) targets at their resolution, (f h, f w, G)
  guides on the finest guide grid, and the (f h, f w) bool pixels measured in every band (the
  rest is gap-filled here and no-data in a product)."""
  grid = sharpening.resolution_m // sharpening.factor
  names = sharpening.guides + sharpening.targets
  filled = {name: sentinel2.filled(scene.bands[name]) for name in names}
  resolutions = {name: sentinel2.BANDS[name].resolution_m for name in names}
  targets = np.stack([filled[n] for n in sharpening.targets], axis=-1)
  guides = _on_grid(filled, sharpening.guides, resolutions, grid)
  return targets, guides, _valid_on_grid(scene.bands, names, grid)


def wald_degraded(bands: dict, factor: int) -> dict:
  """Wald's protocol: each band (name -> (rows, columns) at its resolution) gap-filled, then
  degraded by `factor` through its own MTF (rows / factor, columns / factor)."""
  return {name: np.asarray(psf.degrade_to_mtf(
      sentinel2.filled(image)[..., None], factor,
      [sentinel2.BANDS[name].mtf_at_nyquist]))[..., 0] for name, image in bands.items()}


def standardisation(lr: np.ndarray, lr_valid: np.ndarray, msi: np.ndarray,
                    msi_valid: np.ndarray):
  """What the network's inputs are standardised by, from the scene itself (so that a scene
  of other brightness or gains reaches the network as the training scenes did): the coding of
  the (h, w, T) target bands and the (M,) mean and standard deviation of the (H, W, M) guides,
  over their measured pixels (lr_valid (h, w), msi_valid (H, W) bool)."""
  coding = coding_lib.fit_coding(lr[lr_valid], 0)
  return coding, msi[msi_valid].mean(axis=0), msi[msi_valid].std(axis=0)


def crop_to_factor(scene: sentinel2.Scene, sharpening: Sharpening) -> sentinel2.Scene:
  """The scene's targets and guides, cropped so that the targets' grid is a multiple of the
  factor."""
  f, resolution = sharpening.factor, sharpening.resolution_m
  height, width = scene.bands[sharpening.targets[0]].shape
  height, width = height - height % f, width - width % f
  bands = {}
  for name in sharpening.guides + sharpening.targets:
    k = resolution // sentinel2.BANDS[name].resolution_m
    bands[name] = scene.bands[name][:height * k, :width * k]
  return sentinel2.Scene(bands, scene.georef, scene.source)


WINDOW_ALIGNMENT = 6   # 10 m pixels of a 60 m one: a window starts and ends on every grid


def _window_pixels(scene: sentinel2.Scene, window: str) -> tuple[int, int, int, int]:
  """(first row, first column, end row, end column) of the 10 m grid that a predict.window
  (see `crop_to_window`) covers, before alignment."""
  kind, _, values = window.strip().rpartition(":")
  expected = ("expected 'row0,col0,rows,cols' (pixels of the 10 m grid) or "
              "'bounds:minx,miny,maxx,maxy' (in the scene's CRS)")
  try:
    numbers = [float(value) for value in values.split(",")]
  except ValueError:
    numbers = []
  if kind not in ("", "bounds") or len(numbers) != 4 or not all(map(math.isfinite, numbers)):
    raise ValueError(f"predict.window={window!r}: {expected}")
  if not kind:
    row0, col0, rows, cols = numbers
    if any(n != int(n) for n in numbers) or min(row0, col0) < 0 or min(rows, cols) <= 0:
      raise ValueError(f"predict.window={window!r}: expected whole numbers, row0 and col0 at "
                       "least 0, rows and cols at least 1")
    return int(row0), int(col0), int(row0 + rows), int(col0 + cols)
  if scene.georef is None:
    raise ValueError(f"predict.window={window!r}: {scene.source} has no georeferencing (a "
                     "MATLAB scene); expected a pixel window 'row0,col0,rows,cols'")
  minx, miny, maxx, maxy = numbers
  a, b, c, d, e, f = scene.georef.transform
  if b or d or minx >= maxx or miny >= maxy:
    raise ValueError(f"predict.window={window!r}: expected minx < maxx and miny < maxy on a "
                     "north-up grid")
  # Pixels that the bounds touch (rounded to a millionth of a pixel against float error).
  columns = sorted(round((x - c) / a, 6) for x in (minx, maxx))
  rows = sorted(round((y - f) / e, 6) for y in (miny, maxy))
  return (math.floor(rows[0]), math.floor(columns[0]), math.ceil(rows[1]),
          math.ceil(columns[1]))


def crop_to_window(scene: sentinel2.Scene, window: str) -> sentinel2.Scene:
  """The scene cropped to a predict.window ('' = the whole scene): 'row0,col0,rows,cols', a
  window of the 10 m grid (pixels), or 'bounds:minx,miny,maxx,maxy' in the scene's CRS
  (metres for UTM; a georeferenced scene). The window widens outward to multiples of
  WINDOW_ALIGNMENT pixels (60 m; at the scene's edge, to the edge) so that the 20 m and 60 m
  bands are cropped on their own grids; the georeferencing's origin moves to the window's
  corner. ValueError naming predict.window for a malformed window, one not inside the scene,
  or bounds on a scene without georeferencing."""
  if not window.strip():
    return scene
  height, width = scene.bands[next(n for n in sentinel2.BANDS_10M if n in scene.bands)].shape
  row0, col0, row1, col1 = _window_pixels(scene, window)
  if min(row0, col0) < 0 or row1 > height or col1 > width:
    bounds = ""
    if scene.georef is not None:
      a, _, c, _, e, f = scene.georef.transform
      corners = (c, f + height * e, c + width * a, f)
      bounds = ", bounds:" + ",".join(f"{v:.15g}" for v in corners)
    raise ValueError(f"predict.window={window!r}: rows [{row0}, {row1}) and columns [{col0}, "
                     f"{col1}) of the 10 m grid are not inside {scene.source} ({height} x "
                     f"{width} pixels{bounds})")
  k = WINDOW_ALIGNMENT
  row0, col0 = row0 - row0 % k, col0 - col0 % k
  row1, col1 = min(-(-row1 // k) * k, height), min(-(-col1 // k) * k, width)
  bands = {}
  for name, image in scene.bands.items():
    factor = sentinel2.BANDS[name].resolution_m // 10
    bands[name] = image[row0 // factor:row1 // factor, col0 // factor:col1 // factor]
  georef = scene.georef
  if georef is not None:
    a, b, c, d, e, f = georef.transform
    georef = geotiff.GeoReference(georef.crs_wkt, (a, b, c + col0 * a + row0 * b, d, e,
                                                   f + col0 * d + row0 * e))
  return sentinel2.Scene(bands, georef, scene.source)


def prepare_sentinel2_scenes(config) -> list[FusionScene]:
  """The reduced-resolution FusionScenes of a Sentinel-2 config (experiments/sentinel2.py),
  one per scene of data.dir (`scene_sources`)."""
  return [prepare_sentinel2_scene(load_scene(source, config, position), config)
          for position, source in enumerate(scene_sources(config.data.dir))]


def prepare_sentinel2_scene(scene: sentinel2.Scene, config) -> FusionScene:
  """The reduced-resolution FusionScene of a Sentinel-2 scene (data.bands, data.tile_size,
  data.val_fraction, data.test_fraction and data.split_gap of `config`)."""
  sharpening = sharpening_of(config)
  f = sharpening.factor
  scene = crop_to_factor(scene, sharpening)
  names = sharpening.guides + sharpening.targets
  target = scene.stack(sharpening.targets)  # the truth
  height, width = target.shape[:2]
  if min(height, width) < config.data.tile_size:
    raise ValueError(f"{scene.source}: the {sharpening.resolution_m} m bands are {height} x "
                     f"{width} pixels, smaller than one data.tile_size={config.data.tile_size} "
                     "tile")
  logging.info("Sentinel-2 scene %s: %d x %d pixels at %d m.", scene.source, height, width,
               sharpening.resolution_m)
  # No-data or saturated pixels are no truth (nor may a guide be missing there).
  truth_valid = _valid_on_grid(scene.bands, names, sharpening.resolution_m)
  if not truth_valid.any():
    raise ValueError(f"{scene.source}: every pixel is no-data ({sentinel2.NODATA:g}) or "
                     f"saturated ({sentinel2.SATURATED:g}) in some band")
  degraded = wald_degraded({n: scene.bands[n] for n in names}, f)
  resolutions = {n: sentinel2.BANDS[n].resolution_m * f for n in names}
  msi = _on_grid(degraded, sharpening.guides, resolutions, sharpening.resolution_m)
  lr = np.stack([degraded[n] for n in sharpening.targets], axis=-1).astype(np.float32)
  coding, msi_mean, msi_scale = standardisation(
      lr, sentinel2.valid_at_coarser(truth_valid, f), msi, truth_valid)
  heldout_start, test_start, gap = split_columns(width, config.data, f)
  return FusionScene(
      lr_codes=coding.encode(lr).astype(np.float32),
      msi=((msi - msi_mean) / msi_scale).astype(np.float32),
      truth_codes=coding.encode(target).astype(np.float32), truth_valid=truth_valid,
      coding=coding, msi_mean=msi_mean, msi_scale=msi_scale, scale_factor=f,
      heldout_col_start=heldout_start, test_col_start=test_start, split_gap=gap,
      heldout_truth=np.moveaxis(target[:, heldout_start:], -1, 0),
      heldout_lr=np.moveaxis(lr[:, heldout_start // f:], -1, 0),
      wavelengths_um=np.array([sentinel2.BANDS[n].wavelength_nm / 1000.0
                               for n in sharpening.targets]),
      msi_bands=sharpening.guides, units=sentinel2.UNITS,
      pixel_size=float(sharpening.resolution_m), pixel_unit="m",
      name=f"Sentinel-2 {scene.source}")
