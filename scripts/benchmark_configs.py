"""Which configs scripts/benchmark.py runs: a config file with its variants and overrides
parsed as fusionjax.main parses them, the experiment that takes a model named by
--model=<name>, and the list --model=all runs."""
from __future__ import annotations

import os

from absl import flags
from ml_collections import config_flags

from fusionjax import tasks

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = "experiments/sentinel2.py"
# Where --model=<name> without --config looks, in order, for a task that takes the network.
EXPERIMENTS = ("experiments/sentinel2.py", "experiments/jwst.py", "experiments/modis_lst.py",
               "experiments/sentinel2_koopman.py")
# --model=all: every built-in model at its experiment's published size.
ALL = ("experiments/jwst.py", "experiments/sentinel2.py:model=fusformer",
       "experiments/sentinel2.py", "experiments/modis_lst.py",
       "experiments/modis_lst.py:model=srcnn", "experiments/sentinel2_koopman.py")


# Configs ---------------------------------------------------------------------------------------

def with_variants(spec: str, *variants: str) -> str:
  """`spec` ('path[:variants]') with `variants` (empty ones left out) added to its own."""
  path, _, own = spec.partition(":")
  joined = ",".join(variant for variant in (own, *variants) if variant)
  return f"{path}:{joined}" if joined else path


def _found(spec: str) -> str:
  """`spec` with its path taken from the current folder, else from the repository's root (so
  that the built-in configs are found from any folder)."""
  path, colon, variants = spec.partition(":")
  if not os.path.exists(path) and os.path.exists(os.path.join(REPO, path)):
    path = os.path.join(REPO, path)
  return path + colon + variants


def load_config(spec: str, overrides: list[str], model: str = ""):
  """The config of `spec` with the --config.<field>=<value> `overrides`, parsed by
  ml_collections' config_flags as fusionjax.main parses its command line; ValueError if it
  does not run network `model` (if given)."""
  argv = ["benchmark", f"--config={_found(spec)}", *overrides]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "experiment config", flag_values=values,
                                  sys_argv=argv)
  values(argv)
  if model and values.config.model.name != model:
    raise ValueError(f"{spec}: its model is {values.config.model.name!r}, not {model!r} (the "
                     "experiment has no model=<name> variant)")
  return values.config


def experiment_of(model: str, variants: str, overrides: list[str]) -> str:
  """The spec of the first of EXPERIMENTS whose task takes network `model`; ValueError with
  each experiment's reason if none does."""
  reasons = []
  for path in EXPERIMENTS:
    spec = with_variants(path, variants, f"model={model}")
    try:
      config = load_config(spec, overrides, model)
      tasks.task_class(config.task).validate(config, "train")
      return spec
    except (ValueError, TypeError, flags.Error) as error:   # flags.Error: get_config's
      reasons.append(f"{path}: {str(error).strip().splitlines()[-1]}")
  raise ValueError(f"no experiment takes model {model!r}:\n  " + "\n  ".join(reasons))


def config_specs(args, overrides: list[str]) -> list[str]:
  """The specs benchmarked: ALL, or one config (--model's experiment, or --config)."""
  if args.model == "all":
    return [with_variants(spec, args.variants) for spec in ALL]
  if args.model and not args.config:
    return [experiment_of(args.model, args.variants, overrides)]
  model = f"model={args.model}" if args.model else ""
  return [with_variants(args.config or DEFAULT_CONFIG, args.variants, model)]
