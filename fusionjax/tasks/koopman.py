"""Koopman prior for Sentinel-2 reflectance (or NDVI) dynamics, and data assimilation with it.

Training (Frion et al. 2024): windows of per-pixel state series (bands and their rates of
change on a 5-day grid); loss = prediction_weight * |psi(K^t phi(x_0)) - x_t|^2
+ autoencoding_weight * |psi(phi(x_t)) - x_t|^2 + linearity_weight * |K^t phi(x_0) - phi(x_t)|^2
(means over the usable steps t of the window, or over a random sample of them with
data.sampled_steps) + orthogonality_weight * ||K K^T - I||_F^2.

Evaluation on the whole scene, with what training never saw held back: a seeded
hidden_fraction of the observations (gap-filling) and every date from the forecast cut-off on
(forecasting). Both are filled by assimilating the remaining observations
(fusionjax.assimilation) and compared with linear interpolation, persistence and a linear
model of the raw state; the free run from each pixel's first state shows what assimilation adds.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from fusionjax import assimilation, atomic, chunking, ensemble, products
from fusionjax.baselines import temporal
from fusionjax.data import pipeline
from fusionjax.data.series import procedural as procedural_phenology
from fusionjax.data.series import reader as series
from fusionjax.data.series import builder as series_builder
from fusionjax.models.koopman_ae import KoopmanAutoencoder, orthogonality_error, rollout
from fusionjax.models.precision import compute_dtype
from fusionjax.tasks.tfds_batches import TfdsBatches, prepared_builder

Batch = dict[str, jax.Array]
QUANTITIES = ("reflectance", "ndvi")


def load_series(config) -> series.ImageSeries:
  """The real series of data.dir (an NDVI series folder) or the procedural phenology."""
  data = config.data
  if data.quantity not in QUANTITIES:
    raise ValueError(f"data.quantity={data.quantity!r}: expected one of {QUANTITIES}")
  if data.dir:
    if not os.path.isdir(data.dir):
      raise FileNotFoundError(f"data.dir={data.dir!r} is not a directory; expected a series "
                              f"folder with {', '.join(series.NDVI_FILES)}")
    if data.quantity != "ndvi":
      raise ValueError(f"data.dir={data.dir!r} holds an NDVI series: use the ':ndvi' variant "
                       "(data.quantity='ndvi')")
    return series.read_ndvi_series(data.dir)
  procedural = procedural_phenology.make_series(
      size=data.procedural_size, num_years=data.procedural_years, seed=data.split_seed)
  return procedural_phenology.to_ndvi(procedural) if data.quantity == "ndvi" else procedural


@dataclasses.dataclass(frozen=True)
class Experiment:
  """The gridded scene and what evaluation holds back from training.

  hidden: (P, S) bool, observations held out for gap-filling; cutoff: the first forecast
  step; validation_pixel: (P,) bool, pixels whose windows form the validation split.
  """
  grid: series.GriddedSeries
  hidden: np.ndarray
  cutoff: int
  validation_pixel: np.ndarray

  @classmethod
  def make(cls, grid: series.GriddedSeries, data_config, seed: int) -> "Experiment":
    rng = np.random.default_rng(seed)
    observed = np.flatnonzero(grid.observed)
    hidden = np.zeros(grid.observed.size, bool)
    hidden[rng.choice(observed, int(round(data_config.hidden_fraction * len(observed))),
                      replace=False)] = True
    num_steps = grid.observed.shape[1]
    cutoff = int(round((1.0 - data_config.forecast_fraction) * num_steps))
    if not 2 <= cutoff < num_steps:
      raise ValueError(f"data.forecast_fraction={data_config.forecast_fraction}: leaves "
                       f"{cutoff} of {num_steps} grid steps before the forecast; expected at "
                       "least 2 and at least one forecast step")
    validation_pixel = rng.random(len(grid.values)) < data_config.validation_pixel_fraction
    return cls(grid=grid, hidden=hidden.reshape(grid.observed.shape), cutoff=cutoff,
               validation_pixel=validation_pixel)

  def usable(self, *, before_cutoff: bool) -> np.ndarray:
    """(P, S) the observations an assimilation (or training) may use."""
    usable = self.grid.observed & ~self.hidden
    if before_cutoff:
      usable[:, self.cutoff:] = False
    return usable


def pad_pixels(arrays: dict[str, np.ndarray], multiple: int) -> dict[str, np.ndarray]:
  """Pads every (P, ...) array with zeros to a multiple of `multiple` pixels."""
  count = len(next(iter(arrays.values())))
  extra = -count % multiple
  return {k: np.concatenate([v, np.zeros((extra, *v.shape[1:]), v.dtype)]) if extra else v
          for k, v in arrays.items()}


def assimilation_inputs(values: np.ndarray, usable: np.ndarray, image_shape: tuple[int, int],
                        num_output_steps: int) -> dict[str, np.ndarray]:
  """The arrays `KoopmanTask.apply` takes, per pixel (P, ...), for one assimilation.

  Observations, and the states (bands and rates, `series.states`) where defined, are kept
  at the grid steps where any pixel is usable (N of them). The initial state is each
  pixel's first state with a rate (else its first observation with rate 0, else zeros at
  step 0).
  """
  if num_output_steps > assimilation.MAX_STEPS + 1:
    raise ValueError(f"{num_output_steps} grid steps to assimilate and forecast: at most "
                     f"{assimilation.MAX_STEPS + 1} (a shorter series or predict.forecast_steps)")
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
      "neighbours": assimilation.grid_neighbours(*image_shape),
      "output_steps": np.broadcast_to(np.arange(num_output_steps, dtype=np.int32),
                                      (len(values), num_output_steps))}


def rmse_report(estimate: np.ndarray, truth: np.ndarray, where: np.ndarray) -> dict:
  """RMSE and MSE of (P, S, C) estimate against truth over the (P, S) cells `where`."""
  error = (estimate - truth)[where]
  mse = float(np.mean(error ** 2)) if error.size else float("nan")
  return {"rmse": float(np.sqrt(mse)), "mse": mse}


def _settings(config, name: str) -> assimilation.Settings:
  """config.assimilation.<name> as Settings; a bad value is named by its field."""
  try:
    return assimilation.Settings(**config.assimilation[name].to_dict())
  except ValueError as error:
    raise ValueError(f"assimilation.{name}.{error}") from None


class KoopmanObjective:
  """The model, its loss and the assimilation: everything pure (no data). `channels`: bands
  per pixel; the state holds them and their rates of change."""

  def __init__(self, config, channels: int):
    self.config = config
    self.channels = channels
    model = config.model
    self.model = KoopmanAutoencoder(state_dim=2 * channels, hidden=tuple(model.hidden),
                                    latent_dim=model.latent_dim, operator=model.operator,
                                    dtype=compute_dtype(model.dtype))
    self.gap_filling = _settings(config, "gap_filling")
    self.forecast = _settings(config, "forecast")

  # Pure functions -------------------------------------------------------------------------

  def init_params(self, rng: jax.Array):
    return self.model.init(rng, jnp.zeros((1, self.model.state_dim)), 1)

  def _window_sums(self, params, batch: Batch) -> dict[str, jax.Array]:
    """Sums over the usable states of the batch's windows of each window term (its mean over
    the state's values). batch: 'state' (B, M, D) at 'offset' (B, M) steps from the window's
    start (the first), 'mask' (B, M)."""
    state, mask = batch["state"], batch["mask"]
    koopman = self.model.apply(params, method=self.model.koopman)
    encoded = self.model.apply(params, state, method=self.model.encode)       # (B, M, L)
    latent, predicted = self._predicted(params, koopman, encoded[:, 0], batch["offset"])
    reconstructed = self.model.apply(params, encoded, method=self.model.decode)
    masked_sum = lambda squares: jnp.sum(mask * jnp.mean(squares, -1))
    return {"prediction": masked_sum((predicted - state) ** 2),
            "autoencoding": masked_sum((reconstructed - state) ** 2),
            "linearity": masked_sum((latent - encoded) ** 2)}

  def _weighted(self, terms: dict[str, jax.Array]) -> jax.Array:
    """The loss: the terms weighted by their config.loss.<name>_weight."""
    return sum(self.config.loss[f"{name}_weight"] * value for name, value in terms.items())

  def _predicted(self, params, koopman: jax.Array, z0: jax.Array,
                 offset: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(B, L) z_0 and (B, M) offsets -> (B, M, L) K^offset z_0 (a rollout over the window)
    and (B, M, D) its decoded states."""
    latent = jnp.take_along_axis(rollout(koopman, z0, self.config.data.window_steps - 1),
                                 offset[..., None], axis=1)
    return latent, self.model.apply(params, latent, method=self.model.decode)

  def _window_means(self, params, batch: Batch, count: jax.Array) -> dict[str, jax.Array]:
    """The window terms of `batch` summed and divided by `count` usable states."""
    return {name: value / count for name, value in self._window_sums(params, batch).items()}

  def _orthogonality_error(self, params) -> jax.Array:
    return orthogonality_error(self.model.apply(params, method=self.model.koopman))

  def loss_fn(self, params, batch: Batch):
    """(loss, terms): the window terms are means over the batch's usable states."""
    terms = self._window_means(params, batch, jnp.maximum(jnp.sum(batch["mask"]), 1.0))
    terms["orthogonality"] = self._orthogonality_error(params)
    return self._weighted(terms), terms

  def loss_and_gradient(self, params, batch: Batch):
    """((loss, terms), d loss / d params), as jax.value_and_grad(loss_fn) gives, with the
    windows differentiated a chunk at a time (train.chunk_rows window states per device; 0:
    half of `chunking.default_rows`) and their gradients summed: each chunk's sums are
    divided by the whole batch's count of usable states, so that the chunks add up exactly."""
    count = jnp.maximum(jnp.sum(batch["mask"]), 1.0)
    # A state is encoded and decoded twice: half the rows of a chunk that only decodes.
    chunks = chunking.Chunks(len(batch["mask"]), batch["mask"].shape[1],
                             self.config.train.chunk_rows or chunking.default_rows() // 2)

    def chunk_loss(params, chunk):
      terms = self._window_means(params, chunk, count)
      return self._weighted(terms), terms

    def orthogonality_loss(params):
      error = self._orthogonality_error(params)
      return self._weighted({"orthogonality": error}), error

    chunk_gradient = jax.value_and_grad(chunk_loss, has_aux=True)
    split = jax.tree.map(chunks.split, dict(batch))
    zeros = jax.tree.map(lambda shape: jnp.zeros(shape.shape, shape.dtype), jax.eval_shape(
        chunk_gradient, params, jax.tree.map(lambda chunked: chunked[0], split)))
    ((loss, terms), grads), _ = jax.lax.scan(
        lambda total, chunk: (jax.tree.map(jnp.add, total, chunk_gradient(params, chunk)), None),
        zeros, split)
    (orthogonality, error), orthogonality_grads = jax.value_and_grad(
        orthogonality_loss, has_aux=True)(params)
    return ((loss + orthogonality, {**terms, "orthogonality": error}),
            jax.tree.map(jnp.add, grads, orthogonality_grads))

  def eval_fn(self, params, batch: Batch) -> dict[str, jax.Array]:
    """Weighted sums of the per-window prediction MSE on the validation pixels' windows."""
    state, mask = batch["state"], batch["mask"]
    koopman = self.model.apply(params, method=self.model.koopman)
    z0 = self.model.apply(params, state[:, 0], method=self.model.encode)
    _, predicted = self._predicted(params, koopman, z0, batch["offset"])
    per_window = (jnp.sum(mask * jnp.mean((predicted - state) ** 2, -1), -1)
                  / jnp.maximum(jnp.sum(mask, -1), 1.0))
    weight = batch["weight"]
    return {"prediction_mse": jnp.sum(weight * per_window), "weight": jnp.sum(weight)}

  def apply(self, params, observations, steps, mask, states, defined, initial_state,
            initial_step, neighbours, output_steps):
    """Assimilates every pixel's observations twice: with the gap_filling settings for the
    observed period and with the forecast settings for the dates after a pixel's last
    observation. See `assimilation_inputs` for the arrays.

    Returns (P, S_out, C) at output_steps: the assimilated trajectory (gap-filled, then
    forecast) and the free run from each pixel's first state.
    """
    z_initial = assimilation.background(self.model, params, initial_state, initial_step)
    if "mean_state" in (self.gap_filling.start, self.forecast.start):
      z_mean = assimilation.mean_background(self.model, params, states, steps, defined,
                                            z_initial)
    data = (observations, steps, mask)

    num_steps = output_steps.shape[1]

    def trajectory(settings, analysed: bool):
      count = assimilation.segment_count(num_steps, settings.segment_steps)
      start = z_mean if analysed and settings.start == "mean_state" else z_initial
      z = assimilation.segment_starts(self.model, params, start, count,
                                      settings.segment_steps)
      if analysed:
        z = assimilation.analysis(self.model, params, *data, z, neighbours, num_steps,
                                  settings)
      return assimilation.decode_at(self.model, params, z, output_steps,
                                    settings.segment_steps)[..., :self.channels]

    last_observed = jnp.max(jnp.where(mask > 0, steps, -1), axis=1)
    observed_period = (output_steps <= last_observed[:, None])[..., None]
    assimilated = jnp.where(observed_period, trajectory(self.gap_filling, True),
                            trajectory(self.forecast, True))
    return assimilated, trajectory(self.forecast, False)


class KoopmanTask(TfdsBatches, KoopmanObjective):
  """Koopman autoencoder trained on windows of a scene's pixel series; assimilation as eval."""

  def __init__(self, config, workdir: str):
    data = config.data
    if data.sampled_steps == 1 or data.sampled_steps < 0:
      raise ValueError(f"data.sampled_steps={data.sampled_steps}: expected 0 (every state of "
                       "a window) or at least 2 (its start and another)")
    self.experiment = Experiment.make(series.to_grid(load_series(config), data.step_days),
                                      data, data.split_seed)
    grid = self.experiment.grid
    super().__init__(config, grid.values.shape[-1])
    data_root = data.cache_dir or os.path.join(workdir, "data")
    key = hashlib.sha1(json.dumps([
        os.path.abspath(data.dir) if data.dir else "procedural", data.quantity, data.step_days,
        data.hidden_fraction, data.forecast_fraction, data.validation_pixel_fraction,
        data.split_seed, data.procedural_size, data.procedural_years]).encode()
    ).hexdigest()[:10]
    source_path = os.path.join(data_root, f"{config.name}-{key}", "states.npz")
    tfds_dir = os.path.join(data_root, f"{config.name}-{key}",
                            f"tfds-window{data.window_steps}-per{data.windows_per_pixel}-"
                            f"shards{data.num_shards}")

    def write_states():
      if not os.path.exists(source_path):
        state, target = series.states(grid.values, self.experiment.usable(before_cutoff=True))
        with atomic.atomic_path(source_path) as temporary:
          np.savez(temporary, state=state, target=target,
                   validation_pixel=self.experiment.validation_pixel)
    self.builder = prepared_builder(lambda: series_builder.SeriesWindows(
        source_path=source_path, state_dim=2 * self.channels, window_steps=data.window_steps,
        windows_per_pixel=data.windows_per_pixel, seed=data.split_seed,
        num_shards=data.num_shards, data_dir=tfds_dir), write_states)

  def augmentation(self) -> pipeline.Augmentation | None:
    """data.sampled_steps > 0: each training window's loss is taken at its start and
    sampled_steps - 1 of its other states (`series_builder.sample_states`)."""
    count = self.config.data.sampled_steps
    if not count:
      return None
    return functools.partial(series_builder.sample_states, count=count)

  # Host side ------------------------------------------------------------------------------

  def _assimilate(self, predict: Callable, grid: series.GriddedSeries, usable: np.ndarray,
                  num_output_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(P, num_output_steps, C) assimilated and free trajectories of the `usable` (P, S)
    observations of `grid` ((M, P, ...) from an ensemble's M members), the pixels padded for
    the devices and trimmed back. Pixels without any usable observation are reported and left
    out: NaN, never made-up values."""
    inputs = assimilation_inputs(grid.values, usable, grid.image_shape, num_output_steps)
    count = len(grid.values)
    unobserved = ~usable.any(axis=1)
    if unobserved.any():
      rows, cols = np.unravel_index(np.flatnonzero(unobserved), grid.image_shape)
      logging.warning("%d pixel(s) without any usable observation are left out (NaN), e.g. "
                      "row %d, column %d.", int(unobserved.sum()), rows[0], cols[0])
    inputs = pad_pixels(inputs, jax.device_count())
    logging.info("Assimilating %d pixels x %d observed grid steps (%d + %d iterations).", count,
                 inputs["steps"].shape[1], self.gap_filling.iterations,
                 self.forecast.iterations)
    assimilated, free = predict(*inputs.values())
    left_out = lambda trajectory: np.where(unobserved[:, None, None], np.nan,
                                           trajectory[..., :count, :, :])
    return left_out(assimilated), left_out(free)

  def predict_validation(self, predict: Callable, batch_size: int) -> dict:
    """Trajectories (P, S, C) assimilating every non-hidden observation ('gap_filled') and
    those before the cut-off ('forecast'), and the free run."""
    grid = self.experiment.grid
    num_steps = grid.values.shape[1]
    gap_filled, _ = self._assimilate(predict, grid, self.experiment.usable(before_cutoff=False),
                                     num_steps + self.config.predict.forecast_steps)
    forecast, free_run = self._assimilate(predict, grid,
                                          self.experiment.usable(before_cutoff=True), num_steps)
    return {"gap_filled": gap_filled, "forecast": forecast, "free_run": free_run}

  def _scored_cells(self) -> tuple[np.ndarray, np.ndarray]:
    """(P, S) the hidden observations scored for gap-filling and the observations after the
    cut-off scored for the forecast; cells of pixels left out of an assimilation (no usable
    observation) are not scored."""
    experiment = self.experiment
    after_cutoff = experiment.grid.observed & (np.arange(experiment.grid.values.shape[1])
                                               >= experiment.cutoff)
    return (experiment.hidden & experiment.usable(before_cutoff=False).any(axis=1)[:, None],
            after_cutoff & experiment.usable(before_cutoff=True).any(axis=1)[:, None])

  def evaluate(self, prediction: dict) -> dict:
    """Gap-filling, forecast and assimilation-versus-free-run figures, with the baselines.
    From an ensemble's (M, P, S, C) predictions, the figures of the ensemble mean and an
    'ensemble' section (each member's RMSE, the spread, the CRPS; `ensemble.report`)."""
    if prediction["gap_filled"].ndim == 4:
      report = self.evaluate({name: np.mean(members, axis=0)
                              for name, members in prediction.items()})
      truth, num_steps = self.experiment.grid.values, self.experiment.grid.values.shape[1]
      hidden_scored, after_cutoff = self._scored_cells()
      report["ensemble"] = {
          "gap_filling": ensemble.report(prediction["gap_filled"][:, :, :num_steps], truth,
                                         hidden_scored),
          "forecast": ensemble.report(prediction["forecast"], truth, after_cutoff),
          "forecast_free_run": ensemble.report(prediction["free_run"], truth, after_cutoff)}
      return report
    grid, experiment = self.experiment.grid, self.experiment
    truth, cutoff = grid.values, experiment.cutoff
    num_steps = truth.shape[1]
    hidden = experiment.hidden
    before = experiment.usable(before_cutoff=True)
    usable = experiment.usable(before_cutoff=False)
    hidden_scored, after_cutoff = self._scored_cells()
    interpolated = temporal.linear_interpolation(truth, usable)
    gap = {"koopman": rmse_report(prediction["gap_filled"][:, :num_steps], truth, hidden_scored),
           "linear_interpolation": rmse_report(interpolated, truth, hidden_scored)}
    gap["rmse_ratio_to_linear_interpolation"] = (gap["koopman"]["rmse"]
                                                 / gap["linear_interpolation"]["rmse"])
    forecast = {
        "koopman": rmse_report(prediction["forecast"], truth, after_cutoff),
        "koopman_free_run": rmse_report(prediction["free_run"], truth, after_cutoff),
        "persistence": rmse_report(temporal.persistence(truth, before, cutoff), truth,
                                   after_cutoff),
        "linear_dynamics": rmse_report(temporal.linear_dynamics(truth, before, cutoff), truth,
                                       after_cutoff)}
    free_mse, assimilated_mse = forecast["koopman_free_run"]["mse"], forecast["koopman"]["mse"]
    return {
        "gap_filling": {**gap, "hidden_observations": int(hidden.sum()),
                        "scored_observations": int(hidden_scored.sum())},
        "forecast": {**forecast, "forecast_steps": num_steps - cutoff,
                     "first_forecast_date": str(grid.dates[cutoff]),
                     "observations": int(after_cutoff.sum())},
        "assimilation_vs_free_run": {"free_run_mse": free_mse, "assimilated_mse": assimilated_mse,
                                     "mse_reduction": 1.0 - assimilated_mse / free_mse},
        "dataset": {"pixels": int(truth.shape[0]), "grid_steps": int(num_steps),
                    "pixels_left_out": int((~usable.any(axis=1)).sum()),
                    "step_days": self.config.data.step_days, "bands": list(grid.bands),
                    "observations": int(grid.observed.sum()), **dict(self.builder.info.metadata)}}

  def write_products(self, prediction: dict, out_dir: str) -> list[str]:
    """The gap-filled and forecast series (npz) and its quicklook."""
    grid = self.experiment.grid
    return write_series_products(out_dir, prediction["gap_filled"], grid,
                                 self.experiment.usable(before_cutoff=False),
                                 self.config.data.step_days)

  def predict_inputs(self, predict: Callable, batch_size: int) -> list[str]:
    """Assimilates the series of config.predict.input (an NDVI series folder) and writes its
    gap-filled and forecast series to config.predict.output."""
    path, out_dir = self.config.predict.input, self.config.predict.output
    if not os.path.isdir(path):
      raise FileNotFoundError(f"predict.input={path!r}: expected a series folder with "
                              f"{', '.join(series.NDVI_FILES)}")
    grid = series.to_grid(series.read_ndvi_series(path), self.config.data.step_days)
    if grid.values.shape[-1] != self.channels:
      raise ValueError(f"predict.input={path!r}: {grid.values.shape[-1]} band(s) "
                       f"{grid.bands}, the model was trained on {self.channels}")
    trajectory, _ = self._assimilate(predict, grid, grid.observed, grid.values.shape[1]
                                     + self.config.predict.forecast_steps)
    return write_series_products(out_dir, trajectory, grid, grid.observed,
                                 self.config.data.step_days)


def write_series_products(out_dir: str, trajectory: np.ndarray, grid: series.GriddedSeries,
                          observed: np.ndarray, step_days: int) -> list[str]:
  """Writes series.npz (values (S', H, W, C) on grid dates (S',) extending past the last
  observation, observed (S', H, W) bool, bands) and quicklook.png; returns their paths."""
  num_output = trajectory.shape[1]
  dates = series.grid_dates(grid.dates[0], grid.dates[0] + np.timedelta64(
      (num_output - 1) * step_days * 86400, "s"), step_days)
  height, width = grid.image_shape
  observed_out = np.zeros((len(observed), num_output), bool)
  observed_out[:, :observed.shape[1]] = observed
  npz_path = os.path.join(out_dir, "series.npz")
  with atomic.atomic_path(npz_path) as temporary:
    np.savez(temporary, values=np.moveaxis(trajectory, 1, 0).reshape(num_output, height, width,
                                                                     -1),
             observed=observed_out.T.reshape(num_output, height, width),
             dates=dates.astype(str), bands=np.array(grid.bands),
             last_observation_date=str(grid.dates[-1]))
  png_path = os.path.join(out_dir, "quicklook.png")
  products.save_figure(series_quicklook(trajectory, grid, observed, dates), png_path)
  return [npz_path, png_path]


def series_quicklook(trajectory: np.ndarray, grid: series.GriddedSeries, observed: np.ndarray,
                     dates: np.ndarray, count: int = 4):
  """Figure: for `count` sample pixels, the observations and the assimilated and forecast
  series of the first band; a map of the number of filled (unobserved) grid dates."""
  import matplotlib.pyplot as plt
  figure, axes = plt.subplots(1, count + 1, figsize=(4.2 * (count + 1), 3.4))
  num_steps = observed.shape[1]
  pixels = np.linspace(0, len(trajectory) - 1, count).astype(int)
  for ax, pixel in zip(axes, pixels):
    seen = observed[pixel]
    ax.plot(dates[:num_steps], trajectory[pixel, :num_steps, 0], color="tab:blue",
            label="assimilated")
    ax.plot(dates[num_steps - 1:], trajectory[pixel, num_steps - 1:, 0], color="tab:orange",
            label="forecast")
    ax.scatter(grid.dates[seen], grid.values[pixel, seen, 0], s=10, color="k",
               label="observed")
    ax.set_title(f"pixel {divmod(int(pixel), grid.image_shape[1])}", fontsize=9)
    ax.set_ylabel(grid.bands[0])
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
  axes[0].legend(fontsize=7)
  filled = (~observed).sum(axis=1).reshape(grid.image_shape)
  shown = axes[-1].imshow(filled, cmap="viridis")
  axes[-1].set_title("filled grid dates per pixel", fontsize=9)
  figure.colorbar(shown, ax=axes[-1], fraction=0.046)
  figure.tight_layout()
  return figure
