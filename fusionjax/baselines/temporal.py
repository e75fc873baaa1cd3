"""Classical baselines for gap-filling and forecasting gridded per-pixel series.

All take values (P, S, C) on a regular grid with observed (P, S) bool and return (P, S, C)
estimates at every grid step:
  linear_interpolation  straight lines between a pixel's observations, constant beyond them;
  persistence           the last observation before `cutoff`, held for every later step;
  linear_dynamics       a linear model x_{t+1} = A x_t + b of the raw state (bands and their
                        first differences; DMD with an offset) fitted by least squares on the
                        interpolated series before `cutoff`, rolled out from the state there.
"""
from __future__ import annotations

import numpy as np


def linear_interpolation(values: np.ndarray, observed: np.ndarray) -> np.ndarray:
  """Per pixel and band, linear in time between observations (nearest value outside them);
  a pixel with no observation gets 0."""
  steps = np.arange(values.shape[1])
  filled = np.zeros_like(values)
  for pixel in range(len(values)):
    seen = np.flatnonzero(observed[pixel])
    if len(seen) == 0:
      continue
    for band in range(values.shape[2]):
      filled[pixel, :, band] = np.interp(steps, seen, values[pixel, seen, band])
  return filled


def persistence(values: np.ndarray, observed: np.ndarray, cutoff: int) -> np.ndarray:
  """The last observation before step `cutoff`, at every step (0 where none)."""
  before = observed[:, :cutoff]
  last = before.shape[1] - 1 - np.argmax(before[:, ::-1], axis=1)
  held = values[np.arange(len(values)), last] * before.any(axis=1)[:, None]
  return np.broadcast_to(held[:, None], values.shape).copy()


def _raw_state(series: np.ndarray) -> np.ndarray:
  """(P, S, C) complete series -> (P, S, 2C) bands and first differences (0 at step 0)."""
  difference = np.diff(series, axis=1, prepend=series[:, :1])
  return np.concatenate([series, difference], axis=-1)


def linear_dynamics(values: np.ndarray, observed: np.ndarray, cutoff: int) -> np.ndarray:
  """Fits x_{t+1} = A x_t + b on the interpolated raw states of steps < cutoff (all pixels
  together), then rolls out from each pixel's state at cutoff - 1. Steps before cutoff hold
  the interpolated series."""
  masked = observed.copy()
  masked[:, cutoff:] = False
  filled = linear_interpolation(values, masked)
  state = _raw_state(filled[:, :cutoff])
  now = state[:, 1:-1].reshape(-1, state.shape[-1])            # differences defined from step 1
  following = state[:, 2:].reshape(-1, state.shape[-1])
  design = np.concatenate([now, np.ones((len(now), 1))], axis=1)
  solution, *_ = np.linalg.lstsq(design, following, rcond=None)
  estimate = filled.copy()
  current = state[:, -1]
  channels = values.shape[2]
  for step in range(cutoff, values.shape[1]):
    current = np.concatenate([current, np.ones((len(current), 1))], axis=1) @ solution
    estimate[:, step] = current[:, :channels]
  return estimate
