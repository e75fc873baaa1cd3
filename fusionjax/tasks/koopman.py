"""Koopman prior for Sentinel-2 reflectance (or NDVI) dynamics, evaluated by data assimilation.

Training (Frion et al. 2024): windows of per-pixel state series (bands and their rates of
change on a 5-day grid; fusionjax.data.series.builder), with the loss of
fusionjax.tasks.koopman_objective (at every usable step of a window, or at a random sample of
them with data.sampled_steps).

Evaluation on the pixels of the validation rows and, once, of the test rows (blocks of whole
rows that training never saw; fusionjax.data.series.experiment), with a seeded
hidden_fraction of their observations (gap-filling) and every date from the forecast cut-off
on (forecasting) held back from the assimilation. Both are filled by
assimilating the remaining observations (fusionjax.assimilation.driver) and compared with
linear interpolation, persistence and a linear model of the raw state; the free run from each
pixel's first state shows what assimilation adds. With config.ensemble.members (--mode=eval),
this run and those runs are assimilated as one ensemble, the members vmapped.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Callable

import jax
import numpy as np
from absl import logging

from fusionjax import atomic, ensemble
from fusionjax.assimilation import driver
from fusionjax.baselines import temporal
from fusionjax.data import cache, pipeline
from fusionjax.data.series import builder as series_builder
from fusionjax.data.series import experiment as series_experiment
from fusionjax.data.series import reader as series
from fusionjax.products import series as series_products
from fusionjax.tasks.base import Params
from fusionjax.tasks.koopman_objective import KoopmanObjective
from fusionjax.tasks.tfds_batches import TfdsTask, prepared_builder

# The data settings of the windows' TFRecords (the rest of config.data keys the states).
TILE_SETTINGS = ("window_steps", "windows_per_pixel", "num_shards")


def ensemble_members(config) -> list[str]:
  """The workdirs of config.ensemble.members (comma-separated)."""
  return [workdir.strip() for workdir in config.ensemble.members.split(",") if workdir.strip()]


def rmse_report(estimate: np.ndarray, truth: np.ndarray, where: np.ndarray) -> dict:
  """RMSE and MSE of (P, S, C) estimate against truth over the (P, S) cells `where`."""
  error = (estimate - truth)[where]
  mse = float(np.mean(error ** 2)) if error.size else float("nan")
  return {"rmse": float(np.sqrt(mse)), "mse": mse}


class KoopmanTask(TfdsTask):
  """Koopman autoencoder trained on windows of a scene's pixel series; assimilation as eval.
  Its pure functions are those of `objective` (KoopmanObjective); with an ensemble, `apply`
  runs every member's."""

  @classmethod
  def validate(cls, config, mode: str) -> None:
    """Also: data.quantity, data.dir (an NDVI series folder, for data.quantity 'ndvi'),
    data.sampled_steps, config.assimilation, predict.input (--mode=predict) and
    ensemble.members (--mode=eval only)."""
    super().validate(config, mode)
    data = config.data
    if data.quantity not in series_experiment.QUANTITIES:
      raise ValueError(f"data.quantity={data.quantity!r}: expected one of "
                       f"{series_experiment.QUANTITIES}")
    if data.dir:
      if not os.path.isdir(data.dir):
        raise FileNotFoundError(f"data.dir={data.dir!r} is not a directory; expected a series "
                                f"folder with {', '.join(series.NDVI_FILES)}")
      if data.quantity != "ndvi":
        raise ValueError(f"data.dir={data.dir!r} holds an NDVI series: use the ':ndvi' "
                         "variant (data.quantity='ndvi')")
    if data.sampled_steps == 1 or data.sampled_steps < 0:
      raise ValueError(f"data.sampled_steps={data.sampled_steps}: expected 0 (every state of "
                       "a window) or at least 2 (its start and another)")
    driver.Plan.from_config(config.assimilation)
    if mode == "predict" and config.predict.input and not os.path.isdir(config.predict.input):
      raise FileNotFoundError(f"predict.input={config.predict.input!r}: expected a series "
                              f"folder with {', '.join(series.NDVI_FILES)}")
    if ensemble_members(config) and mode != "eval":
      raise ValueError(f"ensemble.members={config.ensemble.members!r} with --mode={mode}: an "
                       "ensemble is evaluated with --mode=eval")

  def __init__(self, config, workdir: str):
    self.config, self.workdir = config, workdir
    self.members = ensemble_members(config)
    data = config.data
    self.experiment = series_experiment.Experiment.make(
        series.to_grid(series_experiment.load_series(data), data.step_days), data,
        data.split_seed)
    self.channels = self.experiment.grid.values.shape[-1]
    self.objective = KoopmanObjective(config, self.channels)
    prepared = cache.prepared_dir(config, workdir,
                                  cache.data_settings(config, leave_out=TILE_SETTINGS))
    states_path = os.path.join(prepared, "states.npz")
    windows_dir = cache.tiles_dir(prepared, {key: data[key] for key in TILE_SETTINGS})
    self.builder = prepared_builder(lambda: series_builder.SeriesWindows(
        source_path=states_path, state_dim=2 * self.channels, window_steps=data.window_steps,
        windows_per_pixel=data.windows_per_pixel, seed=data.split_seed,
        num_shards=data.num_shards, data_dir=windows_dir),
        functools.partial(self._write_states, states_path), cache.lock_path(config, workdir))

  def _write_states(self, path: str) -> None:
    """Writes (once) the states and training targets of the observations before the cut-off
    that are not hidden, and the part of each pixel, for the windows' builder."""
    if os.path.exists(path):
      return
    state, target = series.states(self.experiment.grid.values,
                                  self.experiment.usable(before_cutoff=True))
    with atomic.atomic_path(path) as temporary:
      np.savez(temporary, state=state, target=target,
               pixel_split=self.experiment.pixel_split)

  def augmentation(self) -> pipeline.Augmentation | None:
    """data.sampled_steps > 0: each training window's loss is taken at its start and
    sampled_steps - 1 of its other states (`series_builder.sample_states`)."""
    count = self.config.data.sampled_steps
    if not count:
      return None
    return functools.partial(series_builder.sample_states, count=count)

  # Pure functions ---------------------------------------------------------------------------

  def init_params(self, rng: jax.Array):
    return self.objective.init_params(rng)

  def loss_fn(self, params, batch):
    return self.objective.loss_fn(params, batch)

  def loss_and_gradient(self, params, batch):
    """The objective's: the windows differentiated a chunk at a time."""
    return self.objective.loss_and_gradient(params, batch)

  def eval_fn(self, params, batch):
    return self.objective.eval_fn(params, batch)

  def apply(self, params, *inputs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The objective's assimilated and free trajectories (P, S_out, C); of an ensemble
    (params stacked by `inference_params`), every member's at once, (M, P, S_out, C)."""
    if self.members:
      return jax.vmap(lambda member: self.objective.apply(member, *inputs))(params)
    return self.objective.apply(params, *inputs)

  # Inference and reports --------------------------------------------------------------------

  def inference_params(self, params, *, restore: Callable[[str], Params]) -> Params:
    """This run's params; with config.ensemble.members, this run's and each member's latest
    (`restore`) stacked on a leading member axis. A member without a checkpoint is named."""
    if not self.members:
      return params
    stacked = [params]
    for workdir in self.members:
      try:
        stacked.append(restore(workdir))
      except FileNotFoundError as error:
        raise FileNotFoundError(f"ensemble.members: {error}") from None
    logging.info("Evaluating an ensemble of %d members: %s", len(stacked),
                 ", ".join([self.workdir] + self.members))
    return ensemble.stacked(stacked)

  def _assimilate(self, predict: Callable, grid: series.GriddedSeries, usable: np.ndarray,
                  num_output_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """`driver.assimilate_series` with config.assimilation's settings."""
    return driver.assimilate_series(predict, grid, usable, num_output_steps,
                                    self.objective.plan)

  def predict_heldout(self, predict: Callable, batch_size: int, split: str) -> dict:
    """Trajectories (P, S, C) of the P pixels of `split` assimilating every non-hidden
    observation ('gap_filled') and those before the cut-off ('forecast'), and the free
    run."""
    experiment = self.experiment.part(split)
    grid = experiment.grid
    num_steps = grid.values.shape[1]
    gap_filled, _ = self._assimilate(predict, grid, experiment.usable(before_cutoff=False),
                                     num_steps + self.config.predict.forecast_steps)
    forecast, free_run = self._assimilate(predict, grid,
                                          experiment.usable(before_cutoff=True), num_steps)
    return {"gap_filled": gap_filled, "forecast": forecast, "free_run": free_run}

  @staticmethod
  def _scored_cells(experiment: series_experiment.Experiment) -> tuple[np.ndarray, np.ndarray]:
    """(P, S) the hidden observations scored for gap-filling and the observations after the
    cut-off scored for the forecast; cells of pixels left out of an assimilation (no usable
    observation) are not scored."""
    after_cutoff = experiment.grid.observed & (np.arange(experiment.grid.values.shape[1])
                                               >= experiment.cutoff)
    return (experiment.hidden & experiment.usable(before_cutoff=False).any(axis=1)[:, None],
            after_cutoff & experiment.usable(before_cutoff=True).any(axis=1)[:, None])

  def evaluate(self, prediction: dict, split: str) -> dict:
    """Gap-filling, forecast and assimilation-versus-free-run figures of the model ('model',
    'model_free_run') on the pixels of `split`, with the baselines. From an ensemble's
    (M, P, S, C) predictions, the figures of the ensemble mean and an 'ensemble' section (each
    member's RMSE, the spread, the CRPS; `ensemble.report`)."""
    experiment = self.experiment.part(split)
    if prediction["gap_filled"].ndim == 4:
      report = self.evaluate({name: np.mean(members, axis=0)
                              for name, members in prediction.items()}, split)
      truth, num_steps = experiment.grid.values, experiment.grid.values.shape[1]
      hidden_scored, after_cutoff = self._scored_cells(experiment)
      report["ensemble"] = {
          "gap_filling": ensemble.report(prediction["gap_filled"][:, :, :num_steps], truth,
                                         hidden_scored),
          "forecast": ensemble.report(prediction["forecast"], truth, after_cutoff),
          "forecast_free_run": ensemble.report(prediction["free_run"], truth, after_cutoff)}
      return report
    grid = experiment.grid
    truth, cutoff = grid.values, experiment.cutoff
    num_steps = truth.shape[1]
    hidden = experiment.hidden
    before = experiment.usable(before_cutoff=True)
    usable = experiment.usable(before_cutoff=False)
    hidden_scored, after_cutoff = self._scored_cells(experiment)
    interpolated = temporal.linear_interpolation(truth, usable)
    gap = {"model": rmse_report(prediction["gap_filled"][:, :num_steps], truth, hidden_scored),
           "linear_interpolation": rmse_report(interpolated, truth, hidden_scored)}
    gap["rmse_ratio_to_linear_interpolation"] = (gap["model"]["rmse"]
                                                 / gap["linear_interpolation"]["rmse"])
    forecast = {
        "model": rmse_report(prediction["forecast"], truth, after_cutoff),
        "model_free_run": rmse_report(prediction["free_run"], truth, after_cutoff),
        "persistence": rmse_report(temporal.persistence(truth, before, cutoff), truth,
                                   after_cutoff),
        "linear_dynamics": rmse_report(temporal.linear_dynamics(truth, before, cutoff), truth,
                                       after_cutoff)}
    free_mse, assimilated_mse = forecast["model_free_run"]["mse"], forecast["model"]["mse"]
    return {
        "model_name": self.config.model.name,
        "gap_filling": {**gap, "hidden_observations": int(hidden.sum()),
                        "scored_observations": int(hidden_scored.sum())},
        "forecast": {**forecast, "forecast_steps": num_steps - cutoff,
                     "first_forecast_date": str(grid.dates[cutoff]),
                     "observations": int(after_cutoff.sum())},
        "assimilation_vs_free_run": {"free_run_mse": free_mse, "assimilated_mse": assimilated_mse,
                                     "mse_reduction": 1.0 - assimilated_mse / free_mse},
        "dataset": {"pixels": int(truth.shape[0]), "image_rows": int(grid.image_shape[0]),
                    "grid_steps": int(num_steps),
                    "pixels_left_out": int((~usable.any(axis=1)).sum()),
                    "step_days": self.config.data.step_days, "bands": list(grid.bands),
                    "observations": int(grid.observed.sum()), **dict(self.builder.info.metadata)}}

  def write_products(self, prediction: dict, split: str, out_dir: str) -> list[str]:
    """The gap-filled and forecast series (npz) of `split`'s pixels and its quicklook."""
    experiment = self.experiment.part(split)
    return series_products.write_series_products(
        out_dir, prediction["gap_filled"], experiment.grid,
        experiment.usable(before_cutoff=False), self.config.data.step_days)

  def predict_input(self, predict: Callable, batch_size: int, source: str) -> dict:
    """Assimilates the series of `source` (an NDVI series folder) and writes its gap-filled
    and forecast series to config.predict.output."""
    grid, trajectory = self._assimilate_user_series(
        predict, series.read_ndvi_series(source), f"predict.input={source!r}")
    return {"outputs": series_products.write_series_products(
        self.config.predict.output, trajectory, grid, grid.observed,
        self.config.data.step_days)}

  def predict_arrays(self, predict: Callable, batch_size: int, values: np.ndarray,
                     clear: np.ndarray, dates: np.ndarray) -> dict[str, np.ndarray]:
    """The model on a series held in arrays, as predict_input on a series folder.

    Args:
      values: (T, H, W, C) float, the bands the model was trained on (NDVI: C = 1), any value
        where not clear.
      clear: (T, H, W) bool, True where a pixel holds a cloud-free observation.
      dates: (T,) increasing acquisition times (datetime64 or ISO strings).
    Returns:
      {'dates': (S,) datetime64[s] grid dates (every data.step_days from the first date, the
      last predict.forecast_steps after the series), 'values': (S, H, W, C) float32 the
      gap-filled series on those dates, then its forecast}.
    """
    values = np.asarray(values, np.float32)
    clear = np.asarray(clear, bool)
    dates = np.asarray(dates, "datetime64[s]")
    if values.ndim != 4 or clear.shape != values.shape[:3] or dates.shape != values.shape[:1]:
      raise ValueError(f"predict_arrays: values {values.shape}, clear {clear.shape} and dates "
                       f"{dates.shape}; expected (T, H, W, C), (T, H, W) and (T,)")
    if np.any(np.diff(dates) <= np.timedelta64(0, "s")):
      raise ValueError("predict_arrays: the dates are not strictly increasing")
    image_series = series.ImageSeries(values=np.where(clear[..., None], values, 0.0),
                                      clear=clear, dates=dates, bands=self.experiment.grid.bands)
    grid, trajectory = self._assimilate_user_series(predict, image_series, "predict_arrays")
    dates, values = series_products.series_on_grid(trajectory, grid,
                                                   self.config.data.step_days)
    return {"dates": dates, "values": values}

  def _assimilate_user_series(self, predict: Callable, image_series: series.ImageSeries,
                              source: str) -> tuple[series.GriddedSeries, np.ndarray]:
    """The gridded `image_series` and its (P, S + predict.forecast_steps, C) trajectory
    assimilating every clear observation; ValueError naming `source` when its bands are not
    the model's."""
    grid = series.to_grid(image_series, self.config.data.step_days)
    if grid.values.shape[-1] != self.channels:
      raise ValueError(f"{source}: {grid.values.shape[-1]} band(s) {grid.bands}, the model "
                       f"was trained on {self.channels}")
    trajectory, _ = self._assimilate(predict, grid, grid.observed, grid.values.shape[1]
                                     + self.config.predict.forecast_steps)
    return grid, trajectory
