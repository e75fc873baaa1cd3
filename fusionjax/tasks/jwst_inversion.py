"""The JWST task's use of the instruments' forward models beyond simulation: the model-based
fusion baseline (fusionjax.baselines.model_based), the data-consistency step that makes a
network's product agree with both observations, and how well any fused cube agrees with
them (reduced chi^2).

The model-based fusion comes in two forms, by how its smoothness weight is chosen
(fusionjax.baselines.model_based_weights): 'model_based', the weight that fits the validation
strip's truth best (the published protocol), and 'model_based_chi2', the weight chosen on each
observation itself by the discrepancy principle (reduced chi^2 at most
config.model_based.chi2_target). The second needs no truth, so it is what the network
corrects (data.base_estimate='model_based') and what the consistency step's smoothness
follows.

Before the consistency step, a network that corrects the model-based fusion keeps only as
much of its correction as the observations allow (`trusted_codes`): on a scene unlike its
training data, a correction that degrades the agreement with the observations is scaled
down, to nothing if need be.

Settings: config.model_based (psf_nodes, the relative smoothness weights tried, chi2_target,
iterations) and config.predict.trust_fractions, consistency_weight / consistency_smoothness /
consistency_iterations (the step; 0 iterations turns it off).
"""
from __future__ import annotations

import json
import logging
import os
from typing import NamedTuple

import numpy as np

from fusionjax import atomic
from fusionjax.baselines import model_based, model_based_weights
from fusionjax.data.fusion_scene import FusionScene, HeldOutStrip
from fusionjax.data.jwst import scene as jwst_scene
from fusionjax.physics import jwst


class StripSolutions(NamedTuple):
  """A held-out strip's observations as the solver weighs them, the model-based fusion's
  (H, w, d) codes at the validation strip's weight and its fusion at the discrepancy
  principle's weight."""
  data: model_based.Observations
  model_based: np.ndarray
  discrepancy: model_based_weights.Discrepancy


class JwstInversion:
  """The forward models of one prepared scene's instruments, on its coding's subspace."""

  def __init__(self, config, scene: FusionScene, scene_dir: str):
    self.config, self.scene, self._scene_dir = config, scene, scene_dir
    self.instruments = jwst_scene.load_instruments(config)
    self.subspace = model_based.subspace_instruments(self.instruments, scene.coding,
                                                     config.model_based.psf_nodes)
    self._strips = {}   # strip.col_start -> StripSolutions
    self.trust = {}     # strip.col_start -> the fraction of the network's correction kept

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

  def strip_solutions(self, strip: HeldOutStrip) -> StripSolutions:
    """A held-out strip's observations and both model-based fusions, from its observations
    alone (computed once per strip)."""
    if strip.col_start not in self._strips:
      data = self.observations(*self.strip_observations(strip))
      self._strips[strip.col_start] = StripSolutions(data, self.model_based_codes(data),
                                                     self.discrepancy(data))
    return self._strips[strip.col_start]

  # The baseline ---------------------------------------------------------------------------

  def smoothness_weight(self) -> float:
    """The relative smoothness weight of config.model_based.weights that fits the
    validation strip's truth best, chosen once and kept beside the prepared scene
    (model_based.json, with the settings it was chosen with)."""
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
    best, errors = model_based_weights.select_weight(
        self.subspace, self.observations(*self.strip_observations(strip)), self.scene.coding,
        self.scene.truth_codes[:, start:end], self.config.model_based.weights,
        iterations=self.config.model_based.iterations)
    with atomic.atomic_path(path) as temporary:
      with open(temporary, "w") as sink:
        json.dump({"key": key, "weight": best,
                   "validation_squared_error": {str(w): e for w, e in errors.items()}}, sink)
    return best

  def model_based_codes(self, data: model_based.Observations) -> np.ndarray:
    """The baseline's (H, W, d) codes of observations, at the validation strip's weight."""
    return model_based.fuse(self.subspace, data, relative_smoothness=self.smoothness_weight(),
                            iterations=self.config.model_based.iterations)

  def discrepancy(self, data: model_based.Observations) -> model_based_weights.Discrepancy:
    """The model-based fusion of observations at the weight the discrepancy principle
    chooses on them ('model_based_chi2')."""
    settings = self.config.model_based
    return model_based_weights.discrepancy_weight(
        self.subspace, data, settings.weights, target=settings.chi2_target,
        iterations=settings.iterations)

  # The network's product ------------------------------------------------------------------

  def trusted_codes(self, data: model_based.Observations, base_codes: np.ndarray,
                    network_codes: np.ndarray) -> tuple[float, np.ndarray]:
    """`model_based_weights.trusted_correction` with config.predict.trust_fractions and
    config.model_based.chi2_target."""
    return model_based_weights.trusted_correction(
        self.subspace, data, base_codes, network_codes, self.config.predict.trust_fractions,
        target=self.config.model_based.chi2_target)

  def strip_product(self, strip: HeldOutStrip, network_codes: np.ndarray,
                    corrects_model_based: bool) -> np.ndarray:
    """The product's (H, w, d) codes of a held-out strip from the network's: where the
    network corrects the model-based fusion, the part of its correction the observations
    allow (`trusted_codes`, the fraction kept in `trust`), then the consistency step."""
    solutions = self.strip_solutions(strip)
    if corrects_model_based:
      self.trust[strip.col_start], network_codes = self.trusted_codes(
          solutions.data, solutions.discrepancy.codes, network_codes)
    return self.consistent_codes(solutions.data, network_codes, solutions.discrepancy.weight)

  def consistent_codes(self, data: model_based.Observations, network_codes: np.ndarray,
                       smoothness_weight: float) -> np.ndarray:
    """The network's (H, W, d) codes moved towards agreement with the observations:
    config.predict.consistency_iterations of conjugate gradient on the data misfit plus
    consistency_weight (relative to the data's curvature) times the squared distance to the
    network's codes plus consistency_smoothness times the relative `smoothness_weight` (the
    observations' own, `discrepancy`) times ||D z||^2, starting from the network's codes;
    those codes where the step is off."""
    settings = self.config.predict
    if settings.consistency_iterations <= 0:
      return network_codes
    curvature = model_based.data_curvature(self.subspace, data)
    smoothness = settings.consistency_smoothness * smoothness_weight * curvature
    return model_based.solve(self.subspace, data, smoothness=smoothness, prior=network_codes,
                             prior_weight=settings.consistency_weight * curvature,
                             iterations=settings.consistency_iterations)

  # Agreement with the observations --------------------------------------------------------

  def reduced_chi2(self, cube: np.ndarray, nircam: np.ndarray,
                   nirspec: np.ndarray) -> dict[str, float]:
    """`physics.jwst.reduced_chi2` of a (L, H, w) cube against the observations."""
    return jwst.reduced_chi2(cube, self.instruments, nircam, nirspec)
