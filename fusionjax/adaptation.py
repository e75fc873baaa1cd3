"""--mode=adapt: a trained model fine-tuned on the user's own data alone, then applied to it.

The task says how (its `adaptation_config`: e.g. Sentinel-2 trains on the scene's own
reduced-resolution version, no truth needed); this module runs it with the generic trainer
in <workdir>/adapt/<input's name>, so that an interrupted adaptation resumes and a finished
one is not repeated.
"""
from __future__ import annotations

import logging
import os

from fusionjax import tasks, train


def adaptation_dir(config, workdir: str) -> str:
  """Where --mode=adapt fine-tunes on config.predict.input: <workdir>/adapt/<input's name>."""
  name = os.path.splitext(os.path.basename(os.path.normpath(config.predict.input)))[0]
  return os.path.join(workdir, "adapt", name)


def validate(config):
  """The adaptation's config (the task's `adaptation_config`), checked as a training config;
  ValueError naming the field when predict.input or predict.output is empty or a setting of
  config.adapt (steps, learning_rate, val_fraction, from_scratch: the section every task
  with an adapt mode reads) is out of range, before anything is prepared."""
  for field in ("input", "output"):
    if not config.predict.get(field):
      raise ValueError(f"--mode=adapt: predict.{field} is empty; expected the scene to adapt "
                       "to and sharpen, and the folder for the results")
  settings = config.adapt
  if not isinstance(settings.steps, int) or settings.steps < 1:
    raise ValueError(f"adapt.steps={settings.steps!r}: expected a positive number of steps")
  if not settings.learning_rate > 0:
    raise ValueError(f"adapt.learning_rate={settings.learning_rate!r}: expected a positive "
                     "value")
  if not 0 < settings.val_fraction < 1:
    raise ValueError(f"adapt.val_fraction={settings.val_fraction!r}: expected a fraction in "
                     "(0, 1)")
  adapted = tasks.task_class(config.task).adaptation_config(config)
  train.validate_config(adapted, "train")
  return adapted


def adapt(config, workdir: str) -> dict:
  """Fine-tunes the model of `workdir` (its latest checkpoint, or a new one where it has
  none or config.adapt.from_scratch is set) on config.predict.input alone, in
  `adaptation_dir`; then predicts the input with the adapted model. Returns the report of the
  adapted model on the held-out part of the input's own training data."""
  adapted = validate(config)
  directory = adaptation_dir(config, workdir)
  start = None if config.adapt.from_scratch else workdir
  if start and not os.path.isdir(os.path.join(workdir, "checkpoints")):
    logging.warning("--mode=adapt: no trained model in %s; adapting a new one from scratch.",
                    workdir)
    start = None
  report = train.run(adapted, directory, "train", initial_params_from=start)
  adapted.predict.strict = True    # one scene: an error stops the command
  train.run(adapted, directory, "predict")
  return report
