"""Choosing the model-based fusion's smoothness weight (fusionjax.baselines.model_based):

  * on a validation strip's truth (`select_weight`): the weight whose solution is closest to
    it, the published baselines' protocol;
  * by the discrepancy principle (`discrepancy_weight`, Morozov): from the observations
    alone, the strongest smoothing whose solution still explains both observations to their
    noise (reduced chi^2 at most a target, 1, or nearly the lowest the model reaches where
    it cannot reach 1). It needs no truth, so it is chosen again on every observation: a
    scene with sharper structure than the validation strip gets less smoothing.

The same principle weighs a learned correction of the fusion (`trusted_correction`): it is
kept as far as it does not degrade the agreement with the observations.

Weights are relative: multiples of the data term's mean curvature per code value
(`model_based.data_curvature`), comparable across scenes and noise levels.
"""
from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np

from fusionjax.baselines.model_based import (Observations, SubspaceInstruments, data_curvature,
                                             reduced_chi2, solve)
from fusionjax.data.coding import SpectralCoding

# The relative smoothness weights tried.
SMOOTHNESS_GRID = tuple(10.0 ** e for e in np.arange(-4.0, 1.01, 0.5))
# How far above its lowest reduced chi^2 (at the weakest smoothing) an observation the model
# cannot explain to its noise may be fitted (`discrepancy_weight`).
FLOOR_TOLERANCE = 0.01


def subspace_squared_error(coding: SpectralCoding, codes: np.ndarray,
                           truth_codes: np.ndarray) -> float:
  """The mean over pixels of ||decode(codes) - decode(truth_codes)||^2 (summed over the L
  wavelengths), computed in the subspace with the Gram matrix B^T B."""
  decoding = coding.decoding_matrix()
  error = (np.asarray(codes, np.float64) - truth_codes).reshape(-1, decoding.shape[1])
  return float(np.mean(np.einsum("pk,kj,pj->p", error, decoding.T @ decoding, error)))


def select_weight(sub: SubspaceInstruments, data: Observations, coding: SpectralCoding,
                  truth_codes: np.ndarray, grid=SMOOTHNESS_GRID, *,
                  iterations: int = 200) -> tuple[float, dict[float, float]]:
  """The relative smoothness weight of `grid` whose solution is closest to `truth_codes`
  (a validation strip's), and the squared error (`subspace_squared_error`) of every weight
  tried. The solves run from the strongest weight down, each starting from the last
  solution, and stop once the error has grown at two weights in a row."""
  curvature = data_curvature(sub, data)
  errors, codes, rising = {}, None, 0
  for relative in sorted(grid, reverse=True):
    codes = solve(sub, data, smoothness=relative * curvature, initial=codes,
                  iterations=iterations)
    errors[relative] = subspace_squared_error(coding, codes, truth_codes)
    logging.info("Model-based fusion, smoothness %.3g: squared error %.4g per pixel.",
                 relative, errors[relative])
    rising = rising + 1 if errors[relative] > min(errors.values()) else 0
    if rising == 2:
      break
  return min(errors, key=errors.get), errors


class Discrepancy(NamedTuple):
  """The discrepancy principle's choice: the relative weight, its (H, W, d) codes and the
  (NIRCam, NIRSpec) reduced chi^2 of every weight tried."""
  weight: float
  codes: np.ndarray
  chi2: dict


def discrepancy_weight(sub: SubspaceInstruments, data: Observations, grid=SMOOTHNESS_GRID, *,
                       target: float = 1.0, floor_tolerance: float = FLOOR_TOLERANCE,
                       iterations: int = 200) -> Discrepancy:
  """The strongest relative smoothness weight of `grid` whose solution's reduced chi^2
  (`model_based.reduced_chi2`) against each observation is at most max(target, (1 +
  floor_tolerance) x that observation's chi^2 at the weakest weight): explains it to its
  noise, or, where even the weakest smoothing cannot (what the subspace or the instrument
  model cannot explain), nearly as well as it can. Found by bisection over the grid (chi^2
  grows with the weight), each solve starting from the nearest weight's solution."""
  weights = sorted(grid)
  curvature = data_curvature(sub, data)
  chi2, solutions = {}, {}

  def solved(index: int) -> tuple[float, float]:
    nearest = min(solutions, key=lambda i: abs(i - index), default=None)
    solutions[index] = solve(sub, data, smoothness=weights[index] * curvature,
                             initial=None if nearest is None else solutions[nearest],
                             iterations=iterations)
    chi2[weights[index]] = reduced_chi2(sub, data, solutions[index])
    logging.info("Model-based fusion, smoothness %.3g: reduced chi^2 %.3f (NIRCam), %.3f "
                 "(NIRSpec).", weights[index], *chi2[weights[index]])
    return chi2[weights[index]]

  bars = [max(target, (1.0 + floor_tolerance) * floor) for floor in solved(0)]
  fits, fails = 0, len(weights)      # the strongest known to fit, the weakest known not to
  while fails - fits > 1:
    middle = (fits + fails) // 2
    if all(value <= bar for value, bar in zip(solved(middle), bars)):
      fits = middle
    else:
      fails = middle
  return Discrepancy(weights[fits], solutions[fits], chi2)


TRUST_FRACTIONS = (1.0, 0.5, 0.25, 0.125, 0.0)


def trusted_correction(sub: SubspaceInstruments, data: Observations, base_codes: np.ndarray,
                       corrected_codes: np.ndarray, fractions=TRUST_FRACTIONS, *,
                       target: float = 1.0) -> tuple[float, np.ndarray]:
  """The (H, W, d) base codes plus the largest of `fractions` of a correction,
  corrected_codes - base_codes, whose reduced chi^2 against each observation stays within
  max(target, the base's) (the smallest fraction where none does): (the fraction, the
  codes). A correction learned on other scenes is so scaled down, to nothing if need be,
  where it would explain the observations worse than the base it corrects."""
  base_chi2 = reduced_chi2(sub, data, base_codes)
  bars = [max(target, chi2) for chi2 in base_chi2]
  for fraction in sorted(fractions, reverse=True):
    codes = base_codes + np.float32(fraction) * (corrected_codes - base_codes)
    chi2 = reduced_chi2(sub, data, codes)
    if all(value <= bar for value, bar in zip(chi2, bars)):
      break
  logging.info("The correction, kept at %.3g: reduced chi^2 %.3f (NIRCam), %.3f (NIRSpec); "
               "the base's %.3f, %.3f.", fraction, *chi2, *base_chi2)
  return float(fraction), codes
