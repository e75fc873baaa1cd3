"""Hyperparameter optimisation with Optuna: each trial is a normal training run of the
experiment with the trial's settings, selected on the validation split only.

  python -m fusionjax.tune --config=experiments/sentinel2.py --workdir=runs/s2_study --trials=20

The search space is `get_search_space(arg)` of the experiment file (or of --space=<file.py>):
{dotted setting name: optuna distribution}. Trial k trains in <workdir>/trial_<k> (the data
prepared once in <workdir>/data), reports config.tune.metric (a 'val_<name>' of the task's
validation metrics) at every train.eval_every steps so that the pruner can stop it, and its
value is that metric at the last step. The study lives in --storage (by default the SQLite
file <workdir>/study.db); workers started with the same command, on this host or others
(with a server database, e.g. postgresql://..., and a shared --workdir), share it: each trial
runs once. Rerunning the command continues the study: finished trials are kept, a trial
whose worker stopped (killed, preempted, interrupted) is re-queued with its settings once its
heartbeat is older than twice --heartbeat_seconds and resumes from its own checkpoint. When
--trials trials are finished, the study's table, plots and best settings are written
(fusionjax.study_report), and the best trial's checkpoint is evaluated once on the test split.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import time
import warnings

import ml_collections
import optuna
import sqlalchemy
from absl import app, flags, logging
from ml_collections import config_flags

from fusionjax import atomic, checkpoint, cli, config_overrides, products, study_report, train

FLAGS = flags.FLAGS   # --config, --workdir and --compilation_cache_dir: fusionjax.cli
flags.DEFINE_integer("trials", 20, "Number of trials to finish (completed or pruned), all "
                     "workers together.")
flags.DEFINE_string("space", "", "Python file whose get_search_space(arg) gives the search "
                    "space; '' = the config file's.")
flags.DEFINE_string("storage", "", "Optuna storage URL (any SQLAlchemy URL, e.g. "
                    "postgresql://user@host/db); '' = sqlite:///<workdir>/study.db.")
flags.DEFINE_string("study_name", "", "Name of the study in the storage; '' = config.name.")
flags.DEFINE_enum("pruner", "median", ["median", "hyperband", "none"],
                  "Stops unpromising trials at their validation reports.")
flags.DEFINE_integer("seed", 0, "Seed of the TPE sampler.")
flags.DEFINE_bool("include_defaults", True, "Queue the config's own values of the searched "
                  "settings as a trial (unless one has them): the reference of the study.")
flags.DEFINE_integer("heartbeat_seconds", 60, "A running trial's heartbeat period; a trial "
                     "silent for twice as long is re-queued.")

DONE = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


class SurplusTrial(Exception):
  """A trial asked for after the study already had its number of trials (several workers
  asking at once); it fails without running."""


# The search space -----------------------------------------------------------------------

def load_space(path: str, arg: str | None) -> dict[str, optuna.distributions.BaseDistribution]:
  """`get_search_space(arg)` of the Python file `path`; ValueError naming the file when it
  has none or returns something else than {name: optuna distribution}."""
  spec = importlib.util.spec_from_file_location("search_space", path)
  if spec is None or not os.path.isfile(path):
    raise FileNotFoundError(f"--space={path!r}: no such Python file")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_search_space"):
    raise ValueError(f"{path}: no get_search_space(arg) declaring the search space")
  space = module.get_search_space(arg)
  if not isinstance(space, dict) or not space or not all(
      isinstance(d, optuna.distributions.BaseDistribution) for d in space.values()):
    raise ValueError(f"{path}: get_search_space must return a non-empty dict of dotted "
                     "setting names to optuna.distributions (FloatDistribution, ...)")
  return space


def _bounds(distribution) -> list:
  if isinstance(distribution, optuna.distributions.CategoricalDistribution):
    return list(distribution.choices)
  return [distribution.low, distribution.high]


def check_space(config: ml_collections.ConfigDict,
                space: dict[str, optuna.distributions.BaseDistribution], source: str) -> None:
  """Before any trial: every name is a setting of `config`, every range holds more than one
  value, and the config with each bound of each parameter (the others at their defaults)
  passes the trainer's and the task's checks. ValueError naming the parameter otherwise."""
  for name, distribution in space.items():
    config_overrides.check_name(config, name, source)
    values = _bounds(distribution)
    if len(values) < 2 or (not isinstance(
        distribution, optuna.distributions.CategoricalDistribution) and values[0] >= values[1]):
      raise ValueError(f"{source}: {name}: the range {values} is empty; expected at least two "
                       "values (low < high, or two choices)")
    for value in values:
      try:
        train.validate_config(config_overrides.apply(config, {name: value}, source), "train")
      except (ValueError, FileNotFoundError) as error:
        raise ValueError(f"{source}: {name}={value!r} is not a valid setting: {error}") from None


def suggest(trial: optuna.Trial, name: str, distribution) -> object:
  """The trial's value of parameter `name` drawn from `distribution`."""
  if isinstance(distribution, optuna.distributions.FloatDistribution):
    return trial.suggest_float(name, distribution.low, distribution.high,
                               log=distribution.log, step=distribution.step)
  if isinstance(distribution, optuna.distributions.IntDistribution):
    return trial.suggest_int(name, distribution.low, distribution.high, log=distribution.log,
                             step=distribution.step)
  return trial.suggest_categorical(name, distribution.choices)


# The study ------------------------------------------------------------------------------

def open_study(storage_url: str, name: str, direction: str, *, pruner: str, seed: int,
               heartbeat_seconds: int) -> optuna.Study:
  """The study `name` in `storage_url`, created if new; ValueError naming the URL when the
  storage cannot be opened. Trials of stopped workers are re-queued with their settings
  (their heartbeat older than 2 heartbeat_seconds)."""
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    try:
      storage = optuna.storages.RDBStorage(
          storage_url, heartbeat_interval=heartbeat_seconds, grace_period=2 * heartbeat_seconds,
          heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
              max_retry=3))
    except Exception as error:   # SQLAlchemy's errors, for any database
      raise ValueError(f"--storage={storage_url!r} cannot be opened: {error}") from None
  if storage.engine.name == "sqlite":
    _serialise_transactions(storage.engine)
  pruners = {"median": optuna.pruners.MedianPruner(n_startup_trials=2),
             "hyperband": optuna.pruners.HyperbandPruner(),
             "none": optuna.pruners.NopPruner()}
  return optuna.create_study(storage=storage, study_name=name, direction=direction,
                             sampler=optuna.samplers.TPESampler(seed=seed),
                             pruner=pruners[pruner], load_if_exists=True)


def _serialise_transactions(engine: sqlalchemy.engine.Engine) -> None:
  """Makes every transaction on the SQLite `engine` take the database's write lock when it
  begins (BEGIN IMMEDIATE; waiting up to a minute for it). SQLite has no row locks (no
  SELECT ... FOR UPDATE), so without this two workers can both read a queued trial as
  waiting and both run it."""
  @sqlalchemy.event.listens_for(engine, "connect")
  def _on_connect(dbapi_connection, _):
    dbapi_connection.isolation_level = None   # the driver's own implicit BEGIN off
    dbapi_connection.execute("PRAGMA busy_timeout = 60000")

  @sqlalchemy.event.listens_for(engine, "begin")
  def _on_begin(connection):
    connection.exec_driver_sql("BEGIN IMMEDIATE")
  engine.dispose()   # the connections opened so far, without these settings


def enqueue_defaults(study: optuna.Study, base: ml_collections.ConfigDict,
                     space: dict[str, optuna.distributions.BaseDistribution]) -> None:
  """Queues the config's own values of the searched settings as a trial (the reference every
  other trial is compared with), unless a trial already has them or one is outside its
  range."""
  defaults = {name: config_overrides.value_of(base, name) for name in space}
  for name, distribution in space.items():
    bounds, value = _bounds(distribution), defaults[name]
    inside = value in bounds if isinstance(
        distribution, optuna.distributions.CategoricalDistribution) else (
            bounds[0] <= value <= bounds[1])
    if not inside:
      logging.info("The default %s=%r is outside the search space; not queued.", name, value)
      return
  if any(trial.params == defaults or trial.system_attrs.get("fixed_params") == defaults
         for trial in study.get_trials(deepcopy=False)):
    return
  logging.info("Queued the config's defaults as a trial: %s", defaults)
  study.enqueue_trial(defaults)


def first_trial_of(trial: optuna.Trial) -> int:
  """The number of the trial whose run `trial` continues (itself unless it is a re-queued
  one): its workdir is that trial's."""
  frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    history = optuna.storages.RetryHeartbeatStaleTrialCallback.retry_history(frozen)
  return history[0] if history else trial.number


def _trial_objective(base: ml_collections.ConfigDict, space: dict, study_dir: str,
                     num_trials: int):
  """The objective of one trial: trains the config with the trial's settings in
  <study_dir>/trial_<k>, reporting the validation metric; returns its last value."""
  metric = base.tune.metric

  def objective(trial: optuna.Trial) -> float:
    earlier = [t for t in trial.study.get_trials(deepcopy=False) if t.number < trial.number
               and (t.state in DONE or t.state == optuna.trial.TrialState.RUNNING)]
    if len(earlier) >= num_trials:
      trial.set_user_attr("surplus", True)
      raise SurplusTrial(f"trial {trial.number}: the study already has {num_trials} trials")
    params = {name: suggest(trial, name, distribution) for name, distribution in space.items()}
    config = config_overrides.apply(base, params, "trial")
    config.train.evaluate_test = False
    workdir = os.path.join(study_dir, f"trial_{first_trial_of(trial)}")
    trial.set_user_attr("workdir", workdir)
    resumed = checkpoint.latest_step(os.path.join(workdir, "checkpoints"))
    if resumed is not None:
      trial.set_user_attr("resumed_from_step", resumed)
    last = {}

    def on_validation(step: int, metrics: dict[str, float]) -> None:
      if metric not in metrics:
        raise ValueError(f"tune.metric={metric!r}: the task's validation metrics are "
                         f"{sorted(metrics)}")
      last.update(step=step, value=metrics[metric])
      trial.report(metrics[metric], step)
      trial.set_user_attr("steps", step)
      if trial.should_prune():
        raise optuna.TrialPruned(f"{metric}={metrics[metric]:.4g} at step {step}")
    logging.info("Trial %d in %s: %s", trial.number, workdir, params)
    try:
      train.run(config, workdir, "train", on_validation=on_validation)
    except KeyboardInterrupt:
      raise SystemExit(130) from None   # leaves the trial running: re-queued, then resumed
    if not last:
      raise RuntimeError(f"trial {trial.number}: training reported no validation metric")
    return last["value"]
  return objective


def run_worker(base: ml_collections.ConfigDict, space: dict, study: optuna.Study,
               study_dir: str, num_trials: int, heartbeat_seconds: int) -> None:
  """Runs trials of `study` until it has `num_trials` finished (completed or pruned) ones,
  then waits for the trials other workers are running (or for them to be re-queued)."""
  objective = _trial_objective(base, space, study_dir, num_trials)
  while True:
    trials = study.get_trials(deepcopy=False)
    done = sum(t.state in DONE for t in trials)
    running = sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)
    waiting = sum(t.state == optuna.trial.TrialState.WAITING for t in trials)
    if done >= num_trials:
      return
    logging.info("Study %s: %d of %d trials finished, %d running.", study.study_name, done,
                 num_trials, running)
    if done + running >= num_trials and not waiting:
      time.sleep(heartbeat_seconds)   # the last trials run elsewhere, or their worker stopped
      with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
      continue
    study.optimize(objective, n_trials=1, catch=(SurplusTrial,))


def _evaluate_best_on_test(base: ml_collections.ConfigDict, study: optuna.Study,
                           study_dir: str) -> dict:
  """The test report of the best trial's checkpoint, computed once (kept in
  <study_dir>/best_test.json for that trial)."""
  best = study.best_trial
  path = os.path.join(study_dir, "best_test.json")
  config = config_overrides.apply(base, best.params, "best trial")
  with atomic.exclusive(os.path.join(study_dir, ".test.lock")):   # one worker evaluates
    previous = study_report.read_json(path)
    if previous and previous.get("trial") == best.number:
      return previous
    report = train.run(config, best.user_attrs["workdir"], "eval")
    result = {"trial": best.number, "params": best.params, "step": report["step"],
              "test": report.get("test"), "validation": report["validation"]}
    products.write_json(path, result)
  return result


def tune(base: ml_collections.ConfigDict, config_arg: str, *, config_path: str, workdir: str,
         num_trials: int, space_path: str = "", storage: str = "", study_name: str = "",
         pruner: str = "median", seed: int = 0, heartbeat_seconds: int = 60,
         config_flags_given: tuple[str, ...] = (),
         include_defaults: bool = True) -> optuna.Study:
  """Runs (or continues) the study of `base` (the experiment config_path[:config_arg], with
  the --config.<field> flags `config_flags_given`) in `workdir` to `num_trials` finished
  trials, then writes its table, plots, best settings and the best trial's test figures;
  with `include_defaults`, the config's own values of the searched settings are one of the
  trials. Everything is checked before the first trial."""
  if num_trials < 1:
    raise ValueError(f"--trials={num_trials}: expected a positive number")
  space_path = space_path or config_path
  space = load_space(space_path, config_arg)
  if not base.data.cache_dir:   # the trials share their prepared data
    base = config_overrides.apply(base, {"data.cache_dir": os.path.join(workdir, "data")})
  check_space(base, space, space_path)
  if base.tune.direction not in ("minimize", "maximize"):
    raise ValueError(f"tune.direction={base.tune.direction!r}: expected 'minimize' or "
                     "'maximize'")
  os.makedirs(workdir, exist_ok=True)
  storage = storage or f"sqlite:///{os.path.abspath(os.path.join(workdir, 'study.db'))}"
  study = open_study(storage, study_name or base.name, base.tune.direction, pruner=pruner,
                     seed=seed, heartbeat_seconds=heartbeat_seconds)
  if include_defaults:
    enqueue_defaults(study, base, space)
  run_worker(base, space, study, workdir, num_trials, heartbeat_seconds)
  command = " ".join(["python -m fusionjax.main",
                      f"--config={config_path}{':' + config_arg if config_arg else ''}",
                      *config_flags_given])
  finished = any(t.state == optuna.trial.TrialState.COMPLETE for t in study.get_trials())
  test = _evaluate_best_on_test(base, study, workdir) if finished else None
  study_report.write_study(study, workdir, metric=base.tune.metric, command=command,
                           storage=storage, test=test)
  return study


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  cli.set_up()
  config_path, _, config_arg = config_flags.get_config_filename(
      FLAGS["config"]).partition(":")
  tune(FLAGS.config, config_arg or None, config_path=config_path, workdir=FLAGS.workdir,
       num_trials=FLAGS.trials, space_path=FLAGS.space, storage=FLAGS.storage,
       study_name=FLAGS.study_name, pruner=FLAGS.pruner, seed=FLAGS.seed,
       heartbeat_seconds=FLAGS.heartbeat_seconds,
       config_flags_given=tuple(a for a in sys.argv[1:] if a.startswith("--config.")),
       include_defaults=FLAGS.include_defaults)


if __name__ == "__main__":
  app.run(main, argv=cli.with_installed_config(sys.argv))
