"""Assimilating a gridded series (fusionjax.data.series.reader.GriddedSeries) pixel by pixel.

Every pixel's observations are assimilated twice (fusionjax.assimilation.variational): with
the gap_filling settings for the observed period, and with the forecast settings for the
dates after the pixel's last observation; the free run from each pixel's first state shows
what assimilation adds. `assimilation_inputs` lays a series out as per-pixel (P, ...) arrays,
`trajectories` is the pure function of them (compiled once for every pixel) and
`assimilate_series` the host side: pixels padded for the devices and trimmed back, pixels
without any usable observation left out as NaN.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from fusionjax.assimilation import variational
from fusionjax.data.series import reader as series
from fusionjax.models.koopman_ae import KoopmanAutoencoder

PHASES = ("gap_filling", "forecast")


@dataclasses.dataclass(frozen=True)
class Plan:
  """The settings of the two assimilations: gap_filling for the observed period, forecast for
  the dates after a pixel's last observation."""
  gap_filling: variational.Settings
  forecast: variational.Settings

  @classmethod
  def from_config(cls, assimilation_config) -> Plan:
    """config.assimilation's gap_filling and forecast; a bad value is a ValueError naming
    its field, 'assimilation.<phase>.<field>=<value>: ...'."""
    settings = {}
    for phase in PHASES:
      try:
        settings[phase] = variational.Settings(**assimilation_config[phase].to_dict())
      except ValueError as error:
        raise ValueError(f"assimilation.{phase}.{error}") from None
    return cls(**settings)


def grid_neighbours(height: int, width: int) -> np.ndarray:
  """(H W, 4) indices of the up, down, left and right neighbours of each pixel of an H x W
  image in row-major order (the pixel itself at the edges)."""
  rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
  index = lambda r, c: np.clip(r, 0, height - 1) * width + np.clip(c, 0, width - 1)
  return np.stack([index(rows - 1, cols), index(rows + 1, cols), index(rows, cols - 1),
                   index(rows, cols + 1)], -1).reshape(-1, 4).astype(np.int32)


def assimilation_inputs(values: np.ndarray, usable: np.ndarray, image_shape: tuple[int, int],
                        num_output_steps: int) -> dict[str, np.ndarray]:
  """The arrays `trajectories` takes, per pixel (P, ...), for one assimilation of the (P, S, C)
  values where `usable` (P, S).

  Observations, and the states (bands and rates, `series.states`) where defined, are kept
  at the grid steps where any pixel is usable (N of them). The initial state is each
  pixel's first state with a rate (else its first observation with rate 0, else zeros at
  step 0).
  """
  if num_output_steps > variational.MAX_STEPS + 1:
    raise ValueError(f"{num_output_steps} grid steps to assimilate and forecast: at most "
                     f"{variational.MAX_STEPS + 1} (a shorter series or predict.forecast_steps)")
  steps = np.flatnonzero(usable.any(axis=0))
  state, defined = series.states(values, usable)
  first_defined = np.argmax(defined, axis=1)
  first_observed = np.argmax(usable, axis=1)
  has_state = defined.any(axis=1)
  initial_step = np.where(has_state, first_defined, first_observed)
  pixels = np.arange(len(values))
  initial_state = np.where(has_state[:, None], state[pixels, first_defined], np.concatenate(
      [values[pixels, first_observed] * usable.any(axis=1)[:, None],
       np.zeros_like(values[:, 0])], axis=-1))
  return {
      "observations": values[:, steps], "steps": np.broadcast_to(
          steps, (len(values), len(steps))).astype(np.int32),
      "mask": usable[:, steps].astype(np.float32), "states": state[:, steps],
      "defined": defined[:, steps].astype(np.float32), "initial_state": initial_state,
      "initial_step": initial_step.astype(np.int32),
      "neighbours": grid_neighbours(*image_shape),
      "output_steps": np.broadcast_to(np.arange(num_output_steps, dtype=np.int32),
                                      (len(values), num_output_steps))}


def pad_pixels(arrays: dict[str, np.ndarray], multiple: int) -> dict[str, np.ndarray]:
  """Pads every (P, ...) array with zeros to a multiple of `multiple` pixels."""
  count = len(next(iter(arrays.values())))
  extra = -count % multiple
  return {k: np.concatenate([v, np.zeros((extra, *v.shape[1:]), v.dtype)]) if extra else v
          for k, v in arrays.items()}


def trajectories(model: KoopmanAutoencoder, params, plan: Plan, channels: int,
                 observations: jax.Array, steps: jax.Array, mask: jax.Array, states: jax.Array,
                 defined: jax.Array, initial_state: jax.Array, initial_step: jax.Array,
                 neighbours: jax.Array, output_steps: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Assimilates every pixel's observations twice: with plan.gap_filling for the observed
  period and with plan.forecast for the dates after a pixel's last observation. The arrays
  are `assimilation_inputs`'s; call it under jax.jit (model, plan and channels static).

  Returns (P, S_out, channels) at output_steps (P, S_out): the assimilated trajectory
  (gap-filled, then forecast) and the free run from each pixel's first state.
  """
  z_initial = variational.background(model, params, initial_state, initial_step)
  if "mean_state" in (plan.gap_filling.start, plan.forecast.start):
    z_mean = variational.mean_background(model, params, states, steps, defined, z_initial)
  num_steps = output_steps.shape[1]

  def trajectory(settings: variational.Settings, analysed: bool) -> jax.Array:
    count = variational.segment_count(num_steps, settings.segment_steps)
    start = z_mean if analysed and settings.start == "mean_state" else z_initial
    z = variational.segment_starts(model, params, start, count, settings.segment_steps)
    if analysed:
      z = variational.analysis(model, params, observations, steps, mask, z, neighbours,
                               num_steps, settings)
    return variational.decode_at(model, params, z, output_steps,
                                 settings.segment_steps)[..., :channels]

  last_observed = jnp.max(jnp.where(mask > 0, steps, -1), axis=1)
  observed_period = (output_steps <= last_observed[:, None])[..., None]
  assimilated = jnp.where(observed_period, trajectory(plan.gap_filling, True),
                          trajectory(plan.forecast, True))
  return assimilated, trajectory(plan.forecast, False)


def assimilate_series(predict: Callable, grid: series.GriddedSeries, usable: np.ndarray,
                      num_output_steps: int, plan: Plan) -> tuple[np.ndarray, np.ndarray]:
  """(P, num_output_steps, C) assimilated and free trajectories of the `usable` (P, S)
  observations of `grid` ((M, P, ...) from an ensemble's M members). `predict` is the host
  function of the compiled `trajectories` (the inputs' pixels split over the devices): the
  pixels are padded for them and trimmed back. Pixels without any usable observation are
  reported and left out: NaN, never made-up values."""
  inputs = assimilation_inputs(grid.values, usable, grid.image_shape, num_output_steps)
  count = len(grid.values)
  unobserved = ~usable.any(axis=1)
  if unobserved.any():
    rows, cols = np.unravel_index(np.flatnonzero(unobserved), grid.image_shape)
    logging.warning("%d pixel(s) without any usable observation are left out (NaN), e.g. "
                    "row %d, column %d.", int(unobserved.sum()), rows[0], cols[0])
  inputs = pad_pixels(inputs, jax.device_count())
  logging.info("Assimilating %d pixels x %d observed grid steps (%d + %d iterations).", count,
               inputs["steps"].shape[1], plan.gap_filling.iterations, plan.forecast.iterations)
  assimilated, free = predict(*inputs.values())
  left_out = lambda trajectory: np.where(unobserved[:, None, None], np.nan,
                                         trajectory[..., :count, :, :])
  return left_out(assimilated), left_out(free)
