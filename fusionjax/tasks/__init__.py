"""Tasks: what the generic trainer trains, found by `config.task`.

Each is a fusionjax.tasks.base.Task (the contract every method the trainer calls is in);
`TASKS` maps the built-in names to their classes, and an import path 'package.module:Class'
names a task outside this package.
"""
from __future__ import annotations

import importlib

from fusionjax.tasks.base import Task

TASKS = {"jwst_fusion": "fusionjax.tasks.jwst:JwstTask",
         "sentinel2_fusion": "fusionjax.tasks.sentinel2:Sentinel2Task",
         "modis_lst": "fusionjax.tasks.lst:LstTask",
         "sentinel2_koopman": "fusionjax.tasks.koopman:KoopmanTask"}


def task_class(name: str) -> type[Task]:
  """The task class of `name` (a key of TASKS or 'package.module:Class'); ValueError listing
  the known names if there is none."""
  path = TASKS.get(name, name if ":" in name else None)
  if path is None:
    raise ValueError(f"task={name!r}: expected one of {', '.join(TASKS)}, or an import path "
                     "'package.module:Class'")
  module_name, _, class_name = path.partition(":")
  cls = getattr(importlib.import_module(module_name), class_name, None)
  if not (isinstance(cls, type) and issubclass(cls, Task)):
    raise ValueError(f"task={name!r}: {path} is not a fusionjax.tasks.base.Task")
  return cls


def get_task(config, workdir: str) -> Task:
  """The task named by config.task, with its data prepared."""
  return task_class(config.task)(config, workdir)
