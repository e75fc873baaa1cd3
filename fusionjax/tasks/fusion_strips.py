"""Held-out strips of fusion scenes as the fusion task reports them: each method's estimate
beside the truth and the observations, a prediction's methods, and where a strip lies."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fusionjax.baselines import pansharpening
from fusionjax.data.fusion_scene import FusionScene, HeldOutStrip
from fusionjax.physics import sampling


class Strip(NamedTuple):
  """A scene's held-out strip: the (H, Wv, L) truth, each method's (H, Wv, L) estimate,
  the (H, Wv) bool pixels where the truth is valid and the strip with its observations."""
  truth: np.ndarray
  estimates: dict
  valid: np.ndarray
  heldout: HeldOutStrip


def methods_of(prediction) -> dict:
  """{method: (L, H, w) cube} of a scene's prediction: a cube (the product, 'model') or a
  dict of cubes."""
  return prediction if isinstance(prediction, dict) else {"model": prediction}


def product_of(prediction) -> np.ndarray:
  """The (L, H, w) product of a scene's prediction (see `FusionTask.evaluate`)."""
  return methods_of(prediction)["model"]


def decoded_cube(scene: FusionScene, codes: np.ndarray) -> np.ndarray:
  """(H, W, d) codes -> the (L, H, W) float32 cube in the scene's unit."""
  return np.moveaxis(np.asarray(scene.coding.decode(codes), np.float32), -1, 0)


def region(scene: FusionScene, split: str) -> dict:
  """Where a scene's `split` strip lies and how many of its pixels are valid; the columns
  its training tiles come from."""
  start, end = scene.split_columns(split)
  valid = scene.truth_valid[:, start:end]
  return {"rows": [0, int(valid.shape[0])], "columns": [start, end],
          "training_columns": list(scene.split_columns("train")),
          "bands": scene.num_bands, "code_dim": scene.code_dim,
          "valid_pixels": int(valid.sum()), "pixels": int(valid.size)}


def classical_estimates(scene: FusionScene, strip: HeldOutStrip, baseline_mtf,
                        local_window: float | None = None) -> dict[str, np.ndarray]:
  """(H, w, L) classical estimates of a held-out `strip` of `scene`: bicubic upsampling,
  GSA and MTF-GLP, each low-resolution band's PSF a Gaussian of MTF `baseline_mtf` at
  Nyquist (and MTF-GLP with pans fitted locally over `local_window` low-resolution pixels,
  'mtf_glp_local', if given); with a spectral subspace, its bicubic upsampling (the
  low-resolution cube denoised in the subspace, then upsampled) and the truth projected on
  it (the subspace's own error)."""
  ratio = scene.scale_factor
  lr, lr_codes, msi = np.moveaxis(strip.lr, 0, -1), strip.lr_codes, strip.msi
  estimates = {
      "bicubic": np.asarray(sampling.upsample_bicubic(lr, ratio)),
      "gsa": pansharpening.gsa(lr, msi, ratio, baseline_mtf, lr_codes=lr_codes),
      "mtf_glp": pansharpening.mtf_glp(lr, msi, ratio, baseline_mtf)}
  if local_window is not None:
    estimates["mtf_glp_local"] = pansharpening.mtf_glp(lr, msi, ratio, baseline_mtf,
                                                       local_window)
  if scene.coding.basis is not None:
    upsampled = np.asarray(sampling.upsample_bicubic(lr_codes, ratio))
    estimates["bicubic_subspace"] = np.asarray(scene.coding.decode(upsampled))
    truth = np.moveaxis(strip.truth, 0, -1)
    estimates["truth_in_subspace"] = np.asarray(
        scene.coding.decode(scene.coding.encode(truth)))
  return estimates
