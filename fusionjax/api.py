"""The Python API: a trained run as an object that predicts.

    import fusionjax
    model = fusionjax.load("runs/s2")           # the workdir of a training run
    result = model.predict(...)                 # NumPy arrays in, NumPy arrays out
    report = model.predict_files("scene.SAFE", "out/")  # the same as --mode=predict

`predict` takes each experiment's inputs as its task's `predict_arrays` documents them
(docs/api.md has an example per experiment); it tiles them exactly as the command line does.
The run's settings come from the config.json its training wrote; its parameters from its
latest checkpoint.
"""
from __future__ import annotations

import os
from typing import Any

import ml_collections

from fusionjax import config_overrides, parallel, predict_batch, run_config, tasks, train


class Model:
  """A trained run, ready to predict. Attributes: `config` (the run's settings), `workdir`,
  `step` (the checkpoint's training step) and `task` (its fusionjax.tasks.base.Task)."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    train.validate_config(config, "predict")
    self.config, self.workdir = config, workdir
    self.task = tasks.get_task(config, workdir)
    self._mesh = parallel.make_mesh()
    optimizer, _ = train.make_optimizer(config.train)
    template = train.replicated_initial_state(self.task, optimizer, self._mesh, config.seed)
    state = train.restored_state(template, config, workdir)
    self.step = int(state.step)
    self.task.checkpoint_step = self.step   # recorded in the products' provenance
    self._predict, self._batch_size = train.inference(self.task, state, config, self._mesh)

  def __repr__(self) -> str:
    return (f"Model({self.config.name!r}, model={self.config.model.name!r}, "
            f"step={self.step}, workdir={self.workdir!r})")

  def predict(self, *args, **inputs) -> Any:
    """The model applied to NumPy arrays: the arguments and result are those of the task's
    `predict_arrays` (e.g. Sentinel-2: a dict of bands by name -> the sharpened bands)."""
    return self.task.predict_arrays(self._predict, self._batch_size, *args, **inputs)

  def predict_files(self, input_path: str, output_dir: str, **settings) -> dict:
    """What `--mode=predict --config.predict.input=<input_path>
    --config.predict.output=<output_dir>` writes, with any other predict.<name>=<value>
    `settings`; returns the batch's report (fusionjax.predict_batch, also written as
    <output_dir>/predict_report.json): 'done', each input with its 'outputs', and
    'skipped', each input with its 'reason'."""
    overrides = {"predict.input": input_path, "predict.output": output_dir,
                 **{f"predict.{name}": value for name, value in settings.items()}}
    config = config_overrides.apply(self.config, overrides, source="predict_files")
    train.validate_config(config, "predict")
    os.makedirs(output_dir, exist_ok=True)
    task = tasks.get_task(config, self.workdir)   # the same network; the new settings
    task.checkpoint_step = self.step
    return predict_batch.predict_all(task, self._predict, self._batch_size, config.predict)


def load(workdir: str) -> Model:
  """The trained run in `workdir` (its config.json and latest checkpoint) as a Model."""
  return Model(run_config.read(workdir), workdir)
