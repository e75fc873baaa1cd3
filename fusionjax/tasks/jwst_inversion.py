"""The JWST task's use of the instruments' forward models beyond simulation: the model-based
fusion baseline (fusionjax.baselines.model_based), the data-consistency step that makes a
network's product agree with both observations, and how well any fused cube agrees with
them (reduced chi^2).

Settings: config.model_based (the baseline: psf_nodes, the relative smoothness weights tried
on the validation strip, iterations) and config.predict.consistency_weight /
consistency_iterations (the step; 0 iterations turns it off).
"""
from __future__ import annotations

import json
import logging
import os

import numpy as np

from fusionjax import atomic
from fusionjax.baselines import model_based
from fusionjax.data.fusion_scene import FusionScene, HeldOutStrip
from fusionjax.data.jwst import scene as jwst_scene
from fusionjax.physics import jwst


class JwstInversion:
  """The forward models of one prepared scene's instruments, on its coding's subspace."""

  def __init__(self, config, scene: FusionScene, scene_dir: str):
    self.config, self.scene, self._scene_dir = config, scene, scene_dir
    self.instruments = jwst_scene.load_instruments(config)
    self.subspace = model_based.subspace_instruments(self.instruments, scene.coding,
                                                     config.model_based.psf_nodes)

  def settings(self) -> dict:
    """What the baseline's figures depend on beyond the prepared scene."""
    return {"model_based": self.config.model_based.to_dict(),
            "solver_version": model_based.VERSION}

  # Observations -------------------------------------------------------------------------

  def strip_observations(self, strip: HeldOutStrip) -> tuple[np.ndarray, np.ndarray]:
    """The (M, H, w) NIRCam electrons and (L, h, w / s) calibrated NIRSpec cube of a
    held-out strip."""
    scene = self.scene
    nircam = np.moveaxis(strip.msi * scene.msi_scale + scene.msi_mean, -1, 0)
    return nircam.astype(np.float32), strip.lr

  def observations(self, nircam: np.ndarray, nirspec: np.ndarray) -> model_based.Observations:
    return model_based.observations(self.subspace, nircam, nirspec)

  # The baseline ---------------------------------------------------------------------------

  def smoothness_weight(self) -> float:
    """The relative smoothness weight of config.model_based.weights that fits the
    validation strip's truth best, chosen once and kept beside the prepared scene
    (model_based.json, with the settings it was chosen with), or with it where the
    scene's base estimate is the model-based fusion (`jwst_scene.model_based_estimate`)."""
    if np.isfinite(self.scene.base_smoothness):   # chosen so when the scene was prepared
      return self.scene.base_smoothness
    path = os.path.join(self._scene_dir, "model_based.json")
    key = json.loads(json.dumps(self.settings()))
    if os.path.exists(path):
      with open(path) as source:
        kept = json.load(source)
      if kept.get("key") == key:
        return kept["weight"]
    strip = self.scene.strip("validation")
    start, end = self.scene.split_columns("validation")
    logging.info("Model-based fusion: choosing the smoothness weight on the validation strip "
                 "(%d weights).", len(self.config.model_based.weights))
    best, errors = model_based.select_weight(
        self.subspace, self.observations(*self.strip_observations(strip)), self.scene.coding,
        self.scene.truth_codes[:, start:end], self.config.model_based.weights,
        iterations=self.config.model_based.iterations)
    with atomic.atomic_path(path) as temporary:
      with open(temporary, "w") as sink:
        json.dump({"key": key, "weight": best,
                   "validation_squared_error": {str(w): e for w, e in errors.items()}}, sink)
    return best

  def model_based_codes(self, data: model_based.Observations) -> np.ndarray:
    """The baseline's (H, W, d) codes of observations."""
    return model_based.fuse(self.subspace, data, relative_smoothness=self.smoothness_weight(),
                            iterations=self.config.model_based.iterations)

  # The data-consistency step --------------------------------------------------------------

  def consistent_codes(self, data: model_based.Observations,
                       network_codes: np.ndarray) -> np.ndarray:
    """The network's (H, W, d) codes moved towards agreement with the observations:
    config.predict.consistency_iterations of conjugate gradient on the data misfit plus
    consistency_weight (relative to the data's curvature) times the squared distance to the
    network's codes, starting from them; the network's codes where the step is off."""
    settings = self.config.predict
    if settings.consistency_iterations <= 0:
      return network_codes
    curvature = model_based.data_curvature(self.subspace, data)
    smoothness = settings.consistency_smoothness * self.smoothness_weight() * curvature
    return model_based.solve(self.subspace, data, smoothness=smoothness, prior=network_codes,
                             prior_weight=settings.consistency_weight * curvature,
                             iterations=settings.consistency_iterations)

  # Agreement with the observations --------------------------------------------------------

  def reduced_chi2(self, cube: np.ndarray, nircam: np.ndarray,
                   nirspec: np.ndarray) -> dict[str, float]:
    """`physics.jwst.reduced_chi2` of a (L, H, w) cube against the observations."""
    return jwst.reduced_chi2(cube, self.instruments, nircam, nirspec)
