"""A run's resolved config as a file in its workdir (config.json: what `fusionjax.load`
rebuilds the model from) and as TensorBoard hyperparameters."""
from __future__ import annotations

import json
import os

import ml_collections

from fusionjax import atomic, config_overrides


def write(config: ml_collections.ConfigDict, workdir: str, mode: str) -> str:
  """Writes `config` as JSON into `workdir`, atomically: config.json for training,
  config_<mode>.json for the other modes (so that an evaluation or prediction keeps the
  training's file). Returns its path."""
  path = os.path.join(workdir, "config.json" if mode == "train" else f"config_{mode}.json")
  with atomic.atomic_path(path) as temporary:
    with open(temporary, "w") as sink:
      sink.write(config.to_json_best_effort(indent=1, sort_keys=True))
      sink.write("\n")
  return path


def _tuples(value):
  """JSON lists back to the tuples config files hold."""
  if isinstance(value, dict):
    return {key: _tuples(item) for key, item in value.items()}
  if isinstance(value, list):
    return tuple(_tuples(item) for item in value)
  return value


def read(workdir: str) -> ml_collections.ConfigDict:
  """The config a training run in `workdir` wrote (config.json); FileNotFoundError naming it
  when there is none (a run trained before config.json was written: rerun its training
  command, which resumes at its last step and writes it)."""
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such file; expected the workdir of a training run "
                            "(python -m fusionjax.main --config=... --workdir=...)")
  with open(path) as source:
    try:
      settings = json.load(source)
    except json.JSONDecodeError as error:
      raise ValueError(f"{path}: not JSON ({error})") from None
  return ml_collections.ConfigDict(_tuples(settings))


def hparams(config: ml_collections.ConfigDict) -> dict[str, bool | int | float | str]:
  """The config's settings by dotted name, as TensorBoard's hyperparameters take them
  (tuples and None as text)."""
  return {name: value if isinstance(value, (bool, int, float, str)) else str(value)
          for name, value in config_overrides.flat(config).items()}
