"""The one generic trainer: mesh, sharded init, jitted step, loop, eval, checkpoints, products.

It knows no task and no model: a task (the contract of fusionjax.tasks.base) gives it pure
functions, data and reports, and checks its own settings; the trainer reads only config.train,
config.predict's batch size, input and output, and config.seed.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import signal
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from clu import metric_writers, periodic_actions

from fusionjax import (checkpoint, parallel, predict_batch, products, progress, report_table,
                       run_config, tasks, termination)
from fusionjax.tasks.base import PredictFn, Task

MODES = ("train", "eval", "predict")
# Called with (step, {'val_<metric>': value}) after each evaluation of the validation split.
ValidationCallback = Callable[[int, dict[str, float]], None]


@flax.struct.dataclass
class TrainState:
  """Everything a step changes: the step count, parameters and optimizer state."""
  step: jax.Array
  params: Any
  opt_state: Any


def make_optimizer(train_config) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """Adam with the configured learning-rate schedule: 'constant', 'step' (x decay_factor
  every decay_every steps, as published) or 'cosine' (to zero over num_steps)."""
  lr = train_config.learning_rate
  if train_config.schedule == "constant":
    schedule = optax.constant_schedule(lr)
  elif train_config.schedule == "step":
    schedule = optax.exponential_decay(lr, transition_steps=train_config.decay_every,
                                       decay_rate=train_config.decay_factor, staircase=True)
  elif train_config.schedule == "cosine":
    schedule = optax.cosine_decay_schedule(lr, decay_steps=max(train_config.num_steps, 1))
  else:
    raise ValueError(f"train.schedule={train_config.schedule!r}: expected 'constant', 'step' "
                     "or 'cosine'")
  return optax.adam(schedule), schedule


def initial_state(task: Task, optimizer: optax.GradientTransformation,
                  rng: jax.Array) -> TrainState:
  """Step 0: the task's initial parameters and the optimizer's state for them."""
  params = task.init_params(rng)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    opt_state=optimizer.init(params))


def optimizer_step(gradient_fn, optimizer, state: TrainState, batch):
  """One optimizer step with gradient_fn (`loss_and_gradient`). A step whose loss or gradient
  is not finite changes nothing but the step count, and says so in its metrics ('nonfinite'
  = 1), so that the host can stop or go on (train.skip_nonfinite) with every saved state
  good."""
  (loss, step_metrics), grads = gradient_fn(state.params, batch)
  grad_norm = optax.global_norm(grads)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  params, opt_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old),
                                   (params, opt_state), (state.params, state.opt_state))
  step_metrics = {**step_metrics, "loss": loss, "grad_norm": grad_norm,
                  "nonfinite": 1.0 - finite.astype(jnp.float32)}
  return TrainState(step=state.step + 1, params=params, opt_state=opt_state), step_metrics


def validate_config(config, mode: str) -> None:
  """Checks the trainer's settings, then the task's (its `validate`), before anything is
  prepared or compiled; an error names the field and the value."""
  if mode not in MODES:
    raise ValueError(f"--mode={mode!r}: expected one of {', '.join(MODES)}")
  parallel.check_global_batch(config.train.batch_size)
  for field in ("num_steps", "log_every", "eval_every", "checkpoint_every", "keep_checkpoints"):
    value = config.train[field]
    if value < (0 if field == "num_steps" else 1):
      raise ValueError(f"train.{field}={value}: expected a positive integer")
  if mode == "predict" and config.predict.get("input"):
    if not config.predict.get("output"):
      raise ValueError("predict.output is empty: expected the folder for the results")
    if not os.path.exists(config.predict.input):
      raise FileNotFoundError(f"predict.input={config.predict.input!r}: no such file or folder")
  tasks.task_class(config.task).validate(config, mode)


def _evaluate_split(task: Task, eval_step, params, mesh, global_batch_size) -> dict[str, float]:
  totals = {}
  for local in progress.counted(task.eval_batches(global_batch_size=global_batch_size),
                                "Validation", unit="batches"):
    sums = eval_step(params, parallel.global_batch(local, mesh))
    for key, value in jax.device_get(sums).items():
      totals[key] = totals.get(key, 0.0) + float(value)
  weight = totals.pop("weight")
  return {f"val_{key}": value / weight for key, value in totals.items()}


def make_train_step(task: Task, optimizer: optax.GradientTransformation, mesh):
  """The compiled training step, (state, batch) -> (state, metrics): the state replicated on
  `mesh` and donated, the batch sharded over it."""
  replicated, sharded = parallel.replicated(mesh), parallel.batch_sharded(mesh)
  return jax.jit(functools.partial(optimizer_step, task.loss_and_gradient, optimizer),
                 in_shardings=(replicated, sharded), out_shardings=(replicated, replicated),
                 donate_argnums=(0,))


def replicated_initial_state(task: Task, optimizer: optax.GradientTransformation, mesh,
                             seed: int) -> TrainState:
  """`initial_state` from `seed`, computed and replicated on every device of `mesh`."""
  return jax.jit(functools.partial(initial_state, task, optimizer),
                 out_shardings=parallel.replicated(mesh))(jax.random.key(seed))


def train_loop(task: Task, state: TrainState, *, config, workdir: str, mesh, optimizer, schedule,
               checkpointer: checkpoint.Checkpointer,
               on_validation: ValidationCallback | None = None) -> TrainState:
  """Trains from state.step to config.train.num_steps, saving checkpoints on the way; calls
  `on_validation(step, metrics)` after each evaluation of the validation split (every
  train.eval_every steps and at the last), once that step's checkpoint is saved."""
  train_config = config.train
  replicated, sharded = parallel.replicated(mesh), parallel.batch_sharded(mesh)
  train_step = make_train_step(task, optimizer, mesh)
  eval_step = jax.jit(task.eval_fn, in_shardings=(replicated, sharded), out_shardings=replicated)
  writer = metric_writers.create_default_writer(workdir, just_logging=jax.process_index() > 0)
  first_step = int(jax.device_get(state.step))
  if first_step == 0:
    writer.write_hparams(run_config.hparams(config))
  num_steps = train_config.num_steps
  report_progress = periodic_actions.ReportProgress(num_train_steps=num_steps, writer=writer,
                                                    every_steps=train_config.log_every)
  batches = parallel.prefetch_to_devices(
      task.train_batches(start_step=first_step, global_batch_size=train_config.batch_size),
      mesh)
  if first_step < num_steps:
    logging.info("Training steps %d to %d on %d device(s).", first_step + 1, num_steps,
                 jax.device_count())
  pending = []
  skipped = 0
  with termination.TerminationNotice() as notice:
    for step in range(first_step + 1, num_steps + 1):
      # Step -------------------------------------------------------------------------------
      with jax.profiler.StepTraceAnnotation("train", step_num=step):
        state, step_metrics = train_step(state, next(batches))
      pending.append(step_metrics)
      report_progress(step)
      # Logging and checks (the only host-device synchronisations) ---------------------------
      terminating = notice.reached(step)
      last = step == num_steps or terminating
      checkpoint_due = step % train_config.checkpoint_every == 0 or last
      if step % train_config.log_every == 0 or checkpoint_due:
        summary = jax.tree.map(lambda *xs: float(np.mean(xs)), *jax.device_get(pending))
        skipped += _check_finite(summary.pop("nonfinite"), step - len(pending) + 1, pending,
                                 skip=train_config.skip_nonfinite, checkpointer=checkpointer)
        summary["nonfinite_steps"] = float(skipped)
        summary["learning_rate"] = float(schedule(step - 1))
        writer.write_scalars(step, summary)
        pending = []
      # Evaluation and checkpoints ---------------------------------------------------------
      validation = None
      if step % train_config.eval_every == 0 or step == num_steps:
        validation = _evaluate_split(task, eval_step, state.params, mesh,
                                     train_config.batch_size)
        writer.write_scalars(step, validation)
      checkpointer.save(step, state, force=last)
      if validation is not None and on_validation is not None:
        writer.flush()
        on_validation(step, validation)
      if terminating:
        checkpointer.wait()
        writer.flush()
        logging.warning("SIGTERM: saved the checkpoint of step %d; rerun the same command to "
                        "resume.", step)
        raise SystemExit(128 + signal.SIGTERM)
  writer.flush()
  checkpointer.wait()
  return state


def _check_finite(nonfinite_fraction: float, first_step: int, pending: list, *, skip: bool,
                  checkpointer: checkpoint.Checkpointer) -> int:
  """The number of non-finite steps among `pending` (the metrics of steps first_step, ...);
  with skip False, a FloatingPointError naming the first of them instead."""
  if not nonfinite_fraction:
    return 0
  flags = [float(m["nonfinite"]) for m in jax.device_get(pending)]
  bad = [first_step + i for i, flag in enumerate(flags) if flag]
  if skip:
    logging.warning("Skipped %d step(s) with a non-finite loss or gradient: %s.", len(bad), bad)
    return len(bad)
  raise FloatingPointError(
      f"step {bad[0]}: the loss or the gradient is not finite; the step was not applied and "
      f"the last checkpoint (step {checkpointer.latest_step()}) is good. Lower "
      "train.learning_rate, or set train.skip_nonfinite=True to skip such steps.")


def make_predict_fn(task: Task, params, mesh):
  """A host function (B, ...) numpy inputs -> numpy output(s) of `task.apply`, B split over
  all devices."""
  sharded = parallel.batch_sharded(mesh)
  apply = jax.jit(task.apply, out_shardings=parallel.replicated(mesh))

  def predict(*inputs):
    arrays = [jax.device_put(jnp.asarray(x), sharded) for x in inputs]
    return jax.tree.map(np.asarray, jax.device_get(apply(params, *arrays)))
  return predict


def restored_state(template: TrainState, config, workdir: str) -> TrainState:
  """The latest checkpoint of the run in `workdir`, restored with the structure of
  `template`; FileNotFoundError naming the folder if it has none."""
  directory = os.path.join(workdir, "checkpoints")
  missing = FileNotFoundError(f"no checkpoint in {directory}; train that run first")
  if not os.path.isdir(directory):   # checked first: the checkpointer would create it
    raise missing
  checkpointer = checkpoint.Checkpointer(directory, save_every=1,
                                         keep=config.train.keep_checkpoints)
  try:
    if checkpointer.latest_step() is None:
      raise missing
    return checkpointer.restore(template)
  finally:
    checkpointer.close()


def _restored_params(template: TrainState, config, workdir: str):
  """The params of `restored_state`."""
  return restored_state(template, config, workdir).params


def inference(task: Task, state: TrainState, config, mesh) -> tuple[PredictFn, int]:
  """The host prediction function of a trained `state` (with the task's inference
  parameters) and the batch size it is called with: config.predict.batch_size rounded to a
  multiple of the device count."""
  params = task.inference_params(
      state.params, restore=functools.partial(_restored_params, state, config))
  batch_size = max(config.predict.batch_size // jax.device_count(), 1) * jax.device_count()
  return make_predict_fn(task, params, mesh), batch_size


def heldout_splits(task: Task, config) -> tuple[str, ...]:
  """The held-out splits a run predicts at its end: the task's, without 'test' where
  train.evaluate_test is False (tuning trials, which must not see it)."""
  return tuple(split for split in task.heldout_splits()
               if split != "test" or config.train.get("evaluate_test", True))


def run(config, workdir: str, mode: str = "train", *,
        initial_params_from: str | None = None,
        on_validation: ValidationCallback | None = None) -> dict | None:
  """Trains (mode 'train'), evaluates ('train', 'eval') and writes products ('train',
  'predict'), resuming from the latest checkpoint in `workdir` (--mode=adapt is
  fusionjax.adaptation). A training run without a checkpoint of its own starts from the
  parameters of `initial_params_from` (another run's workdir) if given; `on_validation`
  sees every evaluation of the validation split during training (train_loop). Returns the
  evaluation report: {'step', 'validation': ..., 'test': ...}, the test split evaluated
  once, here, and its products written (the validation split's where there is no test);
  process 0 scores and writes them, the other processes return the step alone. With
  predict.input, --mode=predict returns the batch's report (fusionjax.predict_batch)."""
  validate_config(config, mode)
  os.makedirs(workdir, exist_ok=True)
  if jax.process_index() == 0:
    run_config.write(config, workdir, mode)
  task = tasks.get_task(config, workdir)
  mesh = parallel.make_mesh()
  optimizer, schedule = make_optimizer(config.train)

  state = replicated_initial_state(task, optimizer, mesh, config.seed)
  checkpointer = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"),
                                         save_every=config.train.checkpoint_every,
                                         keep=config.train.keep_checkpoints)
  if checkpointer.latest_step() is not None:
    state = checkpointer.restore(state)
  elif mode == "train" and initial_params_from:
    logging.info("Starting from the parameters of %s.", initial_params_from)
    state = state.replace(params=_restored_params(state, config, initial_params_from))
  elif mode != "train":
    raise FileNotFoundError(f"--mode={mode}: no checkpoint in {workdir}/checkpoints; train first")
  try:
    if mode == "train":
      state = train_loop(task, state, config=config, workdir=workdir, mesh=mesh,
                         optimizer=optimizer, schedule=schedule, checkpointer=checkpointer,
                         on_validation=on_validation)
  finally:
    checkpointer.close()   # waits for saves in flight, also when training stops on an error
  predict, batch_size = inference(task, state, config, mesh)
  task.checkpoint_step = int(jax.device_get(state.step))   # recorded in the products
  if mode == "predict" and config.predict.get("input"):  # the user's own scenes
    if jax.process_count() > 1:
      raise ValueError("--mode=predict with predict.input runs in one process; start it "
                       "without --num_processes")
    return predict_batch.predict_all(task, predict, batch_size, config.predict)
  splits = heldout_splits(task, config)
  report = None
  if mode in ("train", "eval"):
    report = {"step": task.checkpoint_step}
  lead = jax.process_index() == 0   # scores, reports and writes; every process predicts
  for split in splits:
    prediction = task.predict_heldout(predict, batch_size, split)  # once, for both uses
    if report is not None and lead:
      report[split] = task.evaluate(prediction, split)
    if mode in ("train", "predict") and split == splits[-1] and lead:
      for path in task.write_products(prediction, split, os.path.join(workdir, "products")):
        logging.info("Wrote %s", path)
  if report is not None and lead:
    skipped = task.skipped_records()
    if skipped:
      report["skipped_records"] = skipped
    products.write_json(os.path.join(workdir, "eval.json"), report)
    report_table.print_report(report)
    logging.info("Evaluation: %s", json.dumps(report))
  return report
