"""Supervised fusion of a low-resolution hyperspectral and a high-resolution multispectral
image (Fusformer), trained on tiles of a prepared FusionScene and evaluated on its held-out
strip against the truth, beside bicubic upsampling and classical fusion; whole JWST
observations of any size fused with --mode=predict."""
from __future__ import annotations

import logging
import os
import re
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from fusionjax import metrics, products, tiling
from fusionjax.baselines import pansharpening
from fusionjax.data.jwst import observation as jwst_observation
from fusionjax.data.fusion_scene import FusionScene, scene_key
from fusionjax.data.tiles_builder import FusionTiles
from fusionjax.models.fusformer import Fusformer
from fusionjax.models.precision import compute_dtype
from fusionjax.physics import sampling
from fusionjax.tasks.tfds_batches import TfdsBatches, prepared_builder

Batch = dict[str, jax.Array]


class FusionTask(TfdsBatches):
  """Fusion of (lr, msi) into the coded high-resolution cube; L1 loss as published.

  Evaluated beside bicubic upsampling and the classical GSA and MTF-GLP fusion, which model
  each low-resolution band's PSF as a Gaussian with `baseline_mtf` at Nyquist (the generic
  0.3 of pansharpening toolboxes unless a sensor says otherwise).
  """

  baseline_mtf = 0.3

  def __init__(self, config, workdir: str, *, prepare_scene: Callable[..., FusionScene]):
    self.config = config
    data_root = config.data.cache_dir or os.path.join(workdir, "data")
    scene_dir = os.path.join(data_root, f"{config.name}-{scene_key(config)}")
    scene_path = os.path.join(scene_dir, "scene.npz")
    # Tiles depend on the tiling settings as well as on the scene.
    data = config.data
    tfds_dir = os.path.join(
        scene_dir, f"tfds-tile{data.tile_size}-stride{data.train_stride}-shards{data.num_shards}")

    def prepare_scene_file():
      if not os.path.exists(scene_path):
        logging.info("Preparing the scene in %s.", scene_dir)
        prepare_scene(config).save(scene_path)
    self.builder = prepared_builder(lambda: self._builder(scene_path, tfds_dir),
                                    prepare_scene_file)
    self.scene = FusionScene.load(scene_path)
    model = config.model
    self.model = Fusformer(
        out_bands=self.scene.code_dim, scale_factor=self.scene.scale_factor,
        embed_dim=model.embed_dim, num_heads=model.num_heads, head_dim=model.head_dim,
        mlp_dim=model.mlp_dim, num_encoder_layers=model.num_encoder_layers,
        num_decoder_layers=model.num_decoder_layers, clip_output=model.clip_output,
        zero_init_residual=model.zero_init_residual, attention=model.attention,
        query_chunk=model.query_chunk, dtype=compute_dtype(model.dtype), window=model.window)

  def _builder(self, scene_path: str, tfds_dir: str) -> FusionTiles:
    return FusionTiles(scene_path=scene_path, tile_size=self.config.data.tile_size,
                       train_stride=self.config.data.train_stride,
                       num_shards=self.config.data.num_shards, data_dir=tfds_dir)

  # Pure functions -------------------------------------------------------------------------

  def init_params(self, rng: jax.Array):
    t, s = self.config.data.tile_size, self.scene.scale_factor
    lr = jnp.zeros((1, t // s, t // s, self.scene.code_dim))
    msi = jnp.zeros((1, t, t, self.scene.num_msi_bands))
    return self.model.init(rng, lr, msi)

  def apply(self, params, lr: jax.Array, msi: jax.Array) -> jax.Array:
    """(B, h, w, d) coded LR and (B, H, W, M) MSI -> (B, H, W, d) coded fused cube."""
    return self.model.apply(params, lr, msi)

  def loss_fn(self, params, batch: Batch):
    """Mean absolute error in the coded space over the valid truth pixels."""
    error, count = _masked_abs_error(self.apply(params, batch["lr"], batch["msi"]), batch)
    l1 = error / jnp.maximum(count, 1.0)
    return l1, {"l1": l1}

  def eval_fn(self, params, batch: Batch) -> dict[str, jax.Array]:
    """Sums over real (weight 1) examples of the per-example L1 (valid pixels) and of the
    bicubic L1."""
    fused = self.apply(params, batch["lr"], batch["msi"])
    bicubic = sampling.upsample_bicubic(batch["lr"], self.scene.scale_factor)
    examples = (1, 2, 3)
    fused_error, count = _masked_abs_error(fused, batch, axis=examples)
    bicubic_error, _ = _masked_abs_error(bicubic, batch, axis=examples)
    weight = batch["weight"] * (count > 0)   # padding, or a tile without valid pixels: 0
    per_example = lambda error: error / jnp.maximum(count, 1.0)  # noqa: E731
    return {"l1": jnp.sum(weight * per_example(fused_error)),
            "bicubic_l1": jnp.sum(weight * per_example(bicubic_error)),
            "weight": jnp.sum(weight)}

  # Whole held-out strip -------------------------------------------------------------------

  def predict_validation(self, predict_batch: Callable, batch_size: int) -> np.ndarray:
    """The fused (L, H, Wv) cube of the held-out strip, physical units."""
    lr, msi = self.scene.val_inputs()
    codes = tiling.predict_tiled(
        predict_batch, lr, msi, tile=self.config.data.tile_size,
        overlap=self.config.predict.tile_overlap, scale=self.scene.scale_factor,
        batch_size=batch_size)
    return np.moveaxis(np.asarray(self.scene.coding.decode(codes), np.float32), -1, 0)

  def _baselines(self) -> dict[str, np.ndarray]:
    """(H, Wv, L) estimates of the held-out strip by bicubic upsampling, GSA and MTF-GLP."""
    scene = self.scene
    ratio = scene.scale_factor
    lr = np.moveaxis(scene.val_lr, 0, -1)
    lr_codes, msi = scene.val_inputs()
    return {"bicubic": np.asarray(sampling.upsample_bicubic(lr, ratio)),
            "gsa": pansharpening.gsa(lr, msi, ratio, self.baseline_mtf, lr_codes=lr_codes),
            "mtf_glp": pansharpening.mtf_glp(lr, msi, ratio, self.baseline_mtf)}

  def evaluate(self, fused: np.ndarray) -> dict:
    """Metrics of the fused (L, H, Wv) cube of the held-out strip (`predict_validation`) and
    of the baselines."""
    scene = self.scene
    truth = np.moveaxis(scene.val_truth, 0, -1)
    ratio = scene.scale_factor
    valid = scene.val_valid
    estimates = {"fusformer": np.moveaxis(fused, 0, -1), **self._baselines()}
    report = {name: metrics.fusion_report(truth, estimate, ratio, valid)
              for name, estimate in estimates.items()}
    if scene.coding.basis is not None:
      # The same spectral subspace without the multispectral image: the NIRSpec cube denoised
      # (and deconvolved) in the subspace, then upsampled.
      lr_codes, _ = scene.val_inputs()
      upsampled = np.asarray(sampling.upsample_bicubic(lr_codes, ratio))
      report["bicubic_subspace"] = metrics.fusion_report(
          truth, np.asarray(scene.coding.decode(upsampled)), ratio, valid)
      projected = scene.coding.decode(scene.coding.encode(truth))
      report["truth_in_subspace"] = metrics.fusion_report(truth, projected, ratio, valid)
    report["region"] = {"rows": [0, int(truth.shape[0])],
                        "columns": [scene.val_col_start, scene.val_col_start + truth.shape[1]],
                        "bands": int(truth.shape[2]), "code_dim": scene.code_dim,
                        "valid_pixels": int(valid.sum()), "pixels": int(valid.size)}
    self.extend_report(report, truth, estimates)
    return report

  def extend_report(self, report: dict, truth: np.ndarray, estimates: dict) -> None:
    """Adds sensor-specific figures to `report`, given the (H, Wv, L) truth and each
    method's estimate; nothing by default."""

  def write_products(self, fused: np.ndarray, out_dir: str) -> list[str]:
    """Writes the fused (L, H, Wv) cube of the held-out strip (FITS) and a quicklook PNG."""
    scene = self.scene
    cube_path = os.path.join(out_dir, "fused_cube.fits")
    products.write_fits_cube(
        cube_path, fused, scene.wavelengths_um, units=scene.units,
        pixel_scale_arcsec=scene.pixel_size, origin_pixel=(0, scene.val_col_start),
        description=f"Fusformer fusion of {scene.name}, held-out columns from "
                    f"{scene.val_col_start}")
    png_path = os.path.join(out_dir, "quicklook.png")
    products.save_figure(self.quicklook(fused), png_path)
    return [cube_path, png_path]

  def quicklook(self, fused: np.ndarray):
    """Figure of the held-out strip: truth, NIRSpec input, fused and error at one wavelength;
    the spectra at the pixel where the truth varies most."""
    scene = self.scene
    band = self._quicklook_band()
    row, col = np.unravel_index(np.argmax(np.std(scene.val_truth, axis=0)), fused.shape[1:])
    s = scene.scale_factor
    spectra = {"truth": scene.val_truth[:, row, col],
               "low-resolution input": scene.val_lr[:, row // s, col // s],
               "fused": fused[:, row, col]}
    return fusion_quicklook(scene.wavelengths_um, band, scene.val_lr[band], fused[band],
                            scene.val_truth[band], spectra, (row, col), scene.units)

  def _quicklook_band(self) -> int:
    return int(np.argmin(np.abs(self.scene.wavelengths_um - self.config.predict.quicklook_um)))

  # A user's observation -------------------------------------------------------------------

  def predict_inputs(self, predict_batch: Callable, batch_size: int) -> list[str]:
    """Fuses the whole observation in config.predict.input (a FITS file as
    data/jwst_observation.py describes) tile by tile, memory bounded by the tile and by
    `planes_per_write` output planes whatever its size; writes <output>/<name>_fused.fits
    (L, H, W) and a quicklook PNG."""
    settings = self.config.predict
    observation = jwst_observation.read_observation(settings.input)
    lr, msi = self._observation_inputs(observation, settings.input)
    scene = self.scene
    logging.info("Fusing %s: %d wavelengths, %d x %d NIRCam pixels.", settings.input,
                 scene.num_bands, *msi.shape[:2])
    codes = tiling.predict_tiled(
        predict_batch, lr, msi, tile=self.config.data.tile_size,
        overlap=settings.tile_overlap, scale=scene.scale_factor, batch_size=batch_size)
    fused = products.PlaneSource(
        (scene.num_bands, *codes.shape[:2]),
        lambda start, stop: np.moveaxis(scene.coding.decode(codes, slice(start, stop)), -1, 0))
    stem = os.path.splitext(os.path.basename(settings.input))[0]
    cube_path = os.path.join(settings.output, f"{stem}_fused.fits")
    products.write_fits_cube(cube_path, fused, scene.wavelengths_um, units=scene.units,
                             pixel_scale_arcsec=observation.pixel_scale_arcsec,
                             description=f"Fusformer fusion of {settings.input}")
    band = self._quicklook_band()
    fused_plane = fused.planes(band, band + 1)[0]
    row, col = np.unravel_index(np.argmax(fused_plane), fused_plane.shape)
    s = scene.scale_factor
    spectra = {"low-resolution input": observation.nirspec[:, row // s, col // s],
               "fused": scene.coding.decode(codes[row, col])}
    # Colour composites: three NIRCam filters (longest wavelength red) and the fused cube at
    # their pivot wavelengths.
    filters = sorted(scene.msi_bands, key=_filter_um)
    filters = [filters[-1], filters[len(filters) // 2], filters[0]]
    nircam_rgb = np.stack([observation.nircam[scene.msi_bands.index(f)] for f in filters], -1)
    planes = [int(np.argmin(np.abs(scene.wavelengths_um - _filter_um(f)))) for f in filters]
    fused_rgb = np.stack([fused.planes(p, p + 1)[0] for p in planes], -1)
    composites = [(nircam_rgb, "NIRCam " + " ".join(filters)),
                  (fused_rgb, "fused at " + " ".join(f"{scene.wavelengths_um[p]:.2f}"
                                                     for p in planes) + " um")]
    png_path = os.path.join(settings.output, f"{stem}_fused.png")
    products.save_figure(fusion_quicklook(scene.wavelengths_um, band, observation.nirspec[band],
                                          fused_plane, None, spectra, (row, col), scene.units,
                                          composites=composites), png_path)
    return [cube_path, png_path]

  def _observation_inputs(self, observation, path: str) -> tuple[np.ndarray, np.ndarray]:
    """The coded (h, w, d) NIRSpec cube and standardised (H, W, M) NIRCam images of an
    observation, after checking that it matches what the model was trained on."""
    scene = self.scene
    if observation.filters != scene.msi_bands:
      raise ValueError(f"{path}: NIRCam filters {list(observation.filters)}, expected "
                       f"{list(scene.msi_bands)} (the model's, in that order)")
    if (observation.wavelengths_um.shape != scene.wavelengths_um.shape
        or not np.allclose(observation.wavelengths_um, scene.wavelengths_um, rtol=1e-6)):
      raise ValueError(f"{path}: WAVELENGTH holds {observation.wavelengths_um.shape[0]} "
                       f"wavelengths, expected the model's {scene.num_bands} "
                       f"({scene.wavelengths_um[0]:.4f}-{scene.wavelengths_um[-1]:.4f} um)")
    if observation.units != scene.units:
      raise ValueError(f"{path}: NIRSPEC BUNIT is {observation.units!r}, expected "
                       f"{scene.units!r}")
    _, h, w = observation.nirspec.shape
    s, tile = scene.scale_factor, self.config.data.tile_size
    if observation.nircam.shape[1:] != (s * h, s * w):
      raise ValueError(f"{path}: NIRCAM is {observation.nircam.shape[1]} x "
                       f"{observation.nircam.shape[2]} pixels, expected {s * h} x {s * w} "
                       f"({s} x the NIRSPEC grid of {h} x {w})")
    if min(s * h, s * w) < tile:
      raise ValueError(f"{path}: the scene is {s * h} x {s * w} NIRCam pixels, smaller than "
                       f"one data.tile_size={tile} tile")
    lr = scene.coding.encode_observed(np.moveaxis(observation.nirspec, 0, -1))
    msi = (np.moveaxis(observation.nircam, 0, -1) - scene.msi_mean) / scene.msi_scale
    return lr.astype(np.float32), msi.astype(np.float32)


def _masked_abs_error(estimate: jax.Array, batch: Batch, axis=None):
  """Sum of |estimate - truth| over the valid pixels of (B, H, W, d) arrays, and the count
  of valid values summed, over `axis` (all axes if None)."""
  valid = jnp.broadcast_to(batch["valid"], estimate.shape)
  return (jnp.sum(valid * jnp.abs(estimate - batch["truth"]), axis=axis),
          jnp.sum(valid, axis=axis))


def _filter_um(name: str) -> float:
  """A NIRCam filter's nominal wavelength from its name (F150W -> 1.50 um)."""
  match = re.match(r"F(\d{3})", name)
  if not match:
    raise ValueError(f"NIRCam filter {name!r}: expected a name like F150W")
  return int(match.group(1)) / 100.0


def fusion_quicklook(wavelengths_um: np.ndarray, band: int, lr: np.ndarray, fused: np.ndarray,
                     truth: np.ndarray | None, spectra: dict, pixel: tuple[int, int],
                     units: str, composites=()):
  """Figure: the (H, W, 3) colour `composites` ((image, title) pairs) if any; the (h, w) input,
  (H, W) fused and, when known, the truth and the error at the wavelength `band`; and the
  (L,) `spectra` (label -> spectrum) at `pixel`."""
  import matplotlib.pyplot as plt
  wavelength = wavelengths_um[band]
  reference = fused if truth is None else truth
  low, high = np.percentile(reference, [1, 99])
  # The input has its own stretch: its line-spread function can lower narrow-line peaks.
  panels = [(lr, "low-resolution input", tuple(np.percentile(lr, [1, 99]))),
            (fused, "fused", (low, high))]
  if truth is not None:
    panels.insert(0, (truth, f"truth {wavelength:.4f} um", (low, high)))
  else:
    panels[1] = (fused, f"fused {wavelength:.4f} um", (low, high))
  panels = [(products.stretch(image), title, (None, None)) for image, title in composites] \
      + panels
  images = len(panels) + (truth is not None)
  aspect = fused.shape[1] / fused.shape[0]
  if aspect <= 2:   # side by side
    figure, axes = plt.subplots(1, images + 1, figsize=(4 * (images * aspect + 2.2), 4.6),
                                gridspec_kw={"width_ratios": [aspect] * images + [2.2],
                                             "wspace": 0.3})
  else:             # a wide scene: one image per row, the spectra below
    width = 12.0
    figure, axes = plt.subplots(images + 1, 1, figsize=(width, images * (width / aspect + 0.5)
                                                        + 3.5),
                                gridspec_kw={"height_ratios": [width / aspect + 0.5] * images
                                             + [3.5]})
  for ax, (image, title, (vmin, vmax)) in zip(axes, panels):
    ax.imshow(image, vmin=vmin, vmax=vmax, cmap="inferno")
    ax.set_title(title, fontsize=9)
  if truth is not None:
    difference = fused - truth
    limit = float(np.percentile(np.abs(difference), 99.5)) or 1.0
    error = axes[images - 1].imshow(difference, cmap="coolwarm", vmin=-limit, vmax=limit)
    axes[images - 1].set_title(f"fused - truth ({units})", fontsize=9)
    figure.colorbar(error, ax=axes[images - 1], fraction=0.08)
  for label, spectrum in spectra.items():
    axes[-1].plot(wavelengths_um, spectrum, label=label, lw=1)
  axes[-1].set_xlabel("wavelength (um)")
  axes[-1].set_ylabel(units)
  axes[-1].set_title(f"spectrum at pixel {tuple(int(p) for p in pixel)}")
  axes[-1].legend(fontsize=8)
  for ax in axes[:-1]:
    ax.set_axis_off()
  return figure
