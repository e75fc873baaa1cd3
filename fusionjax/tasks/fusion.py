"""Supervised fusion of a low-resolution hyperspectral and a high-resolution multispectral
image (Fusformer), trained on tiles of a prepared FusionScene and evaluated on its held-out
strip against the truth, beside bicubic upsampling."""
from __future__ import annotations

import logging
import os
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from fusionjax import metrics, products, tiling
from fusionjax.baselines import pansharpening
from fusionjax.data.fusion_scene import FusionScene, scene_key
from fusionjax.data.tiles_builder import FusionTiles
from fusionjax.models.fusformer import Fusformer
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
        query_chunk=model.query_chunk)

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
    error = jnp.abs(self.apply(params, batch["lr"], batch["msi"]) - batch["truth"])
    valid = jnp.broadcast_to(batch["valid"], error.shape)
    l1 = jnp.sum(valid * error) / jnp.maximum(jnp.sum(valid), 1.0)
    return l1, {"l1": l1}

  def eval_fn(self, params, batch: Batch) -> dict[str, jax.Array]:
    """Sums over real (weight 1) examples of the per-example L1 (valid pixels) and of the
    bicubic L1."""
    fused = self.apply(params, batch["lr"], batch["msi"])
    bicubic = sampling.upsample_bicubic(batch["lr"], self.scene.scale_factor)
    valid = jnp.broadcast_to(batch["valid"], fused.shape)
    count = jnp.sum(valid, axis=(1, 2, 3))
    weight = batch["weight"] * (count > 0)
    per_example = lambda x: (jnp.sum(valid * jnp.abs(x - batch["truth"]), axis=(1, 2, 3))  # noqa: E731
                             / jnp.maximum(count, 1.0))
    return {"l1": jnp.sum(weight * per_example(fused)),
            "bicubic_l1": jnp.sum(weight * per_example(bicubic)), "weight": jnp.sum(weight)}

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
    """Figure: truth, NIRSpec input, fused and error at one wavelength; one spectrum."""
    import matplotlib.pyplot as plt
    scene = self.scene
    band = int(np.argmin(np.abs(scene.wavelengths_um - self.config.predict.quicklook_um)))
    truth, lr = scene.val_truth[band], scene.val_lr[band]
    low, high = np.percentile(truth, [1, 99])
    aspect = truth.shape[1] / truth.shape[0]
    figure, axes = plt.subplots(1, 5, figsize=(4 * (4 * aspect + 2.2), 4.6),
                                gridspec_kw={"width_ratios": [aspect] * 4 + [2.2]})
    wavelength = scene.wavelengths_um[band]
    # The input has its own stretch: its line-spread function can lower narrow-line peaks.
    panels = ((truth, f"truth {wavelength:.4f} um", (low, high)),
              (lr, "low-resolution input", tuple(np.percentile(lr, [1, 99]))),
              (fused[band], "fused", (low, high)))
    for ax, (image, title, (vmin, vmax)) in zip(axes, panels):
      ax.imshow(image, vmin=vmin, vmax=vmax, cmap="inferno")
      ax.set_title(title, fontsize=9)
    difference = fused[band] - truth
    limit = float(np.percentile(np.abs(difference), 99.5)) or 1.0
    error = axes[3].imshow(difference, cmap="coolwarm", vmin=-limit, vmax=limit)
    axes[3].set_title(f"fused - truth ({scene.units})", fontsize=9)
    figure.colorbar(error, ax=axes[3], fraction=0.08)
    row, col = np.unravel_index(np.argmax(np.std(scene.val_truth, axis=0)), truth.shape)
    s = scene.scale_factor
    axes[4].plot(scene.wavelengths_um, scene.val_truth[:, row, col], label="truth", lw=1)
    axes[4].plot(scene.wavelengths_um, scene.val_lr[:, row // s, col // s],
                 label="low-resolution input", lw=0.8, alpha=0.7)
    axes[4].plot(scene.wavelengths_um, fused[:, row, col], label="fused", lw=1)
    axes[4].set_xlabel("wavelength (um)")
    axes[4].set_ylabel(scene.units)
    axes[4].set_title(f"spectrum at pixel ({row}, {col})")
    axes[4].legend(fontsize=8)
    for ax in axes[:4]:
      ax.set_axis_off()
    return figure
