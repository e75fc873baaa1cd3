"""Experiment variants: the comma-separated list after a config file's path, e.g.
`experiments/sentinel2.py:60m,smoke,model=dsen2` (words name variants; `model=<name>` picks the
network, fusionjax.models), and the shared module beside the experiment files."""
from __future__ import annotations

import importlib.util
import os
import sys
import types


def parse_variants(arg: str | None, allowed: tuple[str, ...],
                   experiment: str) -> tuple[list[str], dict[str, str]]:
  """The variants of `arg` (e.g. 'orionbar,smoke,model=dsen2') and its key=value options;
  ValueError naming the experiment file for a variant not in `allowed` or an option other
  than 'model'."""
  items = [item for item in (arg or "").split(",") if item]
  options = dict(item.split("=", 1) for item in items if "=" in item)
  variants = [item for item in items if "=" not in item]
  unknown = sorted(set(variants) - set(allowed))
  if unknown:
    raise ValueError(f"{experiment}: unknown variant(s) {unknown}; expected {allowed}, and "
                     "optionally model=<name>")
  if set(options) - {"model"}:
    raise ValueError(f"{experiment}: unknown option(s) {sorted(set(options) - {'model'})}; "
                     "expected model=<name>")
  return variants, options


def sibling(config_file: str, name: str) -> types.ModuleType:
  """The module <name>.py in the folder of `config_file` (e.g. experiments/common.py beside
  an experiment file; `name` may be a relative path such as '../experiments/common'), loaded
  once per process whatever the working directory."""
  path = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(config_file)),
                                       f"{name}.py"))
  module_name = f"_fusionjax_experiments_{os.path.basename(name)}_{abs(hash(path))}"
  if module_name not in sys.modules:
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
  return sys.modules[module_name]
