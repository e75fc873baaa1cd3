"""Settings given by their dotted names ({"train.learning_rate": 3e-4, ...}): checked against a
config, applied to a copy of it, and read from or written to a JSON file (what a tuning study
writes for its best trial and `python -m fusionjax.main --config_overrides=<file>` applies)."""
from __future__ import annotations

import difflib
import json
from typing import Any

import ml_collections

from fusionjax import atomic


def _leaf_names(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
  names = []
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      names += _leaf_names(value, f"{prefix}{key}.")
    else:
      names.append(f"{prefix}{key}")
  return names


def flat(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Every setting of `config` by its dotted name (as `apply` takes them)."""
  return {name: value_of(config, name) for name in _leaf_names(config)}


def check_name(config: ml_collections.ConfigDict, name: str, source: str) -> None:
  """ValueError naming `name` (from `source`) if it is not a setting of `config`."""
  names = _leaf_names(config)
  if name not in names:
    close = difflib.get_close_matches(name, names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ValueError(f"{source}: {name!r} is not a setting of config {config.get('name', '')!r}"
                     f"{hint}")


def _section_and_key(config: ml_collections.ConfigDict, name: str):
  """The ConfigDict holding the dotted setting `name` and its last key."""
  *path, key = name.split(".")
  section = config
  for part in path:
    section = section[part]
  return section, key


def value_of(config: ml_collections.ConfigDict, name: str) -> Any:
  """The value of the dotted setting `name` in `config`."""
  section, key = _section_and_key(config, name)
  return section[key]


def apply(config: ml_collections.ConfigDict, overrides: dict[str, Any],
          source: str = "overrides") -> ml_collections.ConfigDict:
  """A copy of `config` with each dotted name of `overrides` set to its value (ints given for
  float settings become floats; lists become tuples where the setting is a tuple). ValueError
  naming the setting when it is unknown or the value's type does not fit."""
  result = ml_collections.ConfigDict(config.to_dict())
  for name, value in overrides.items():
    check_name(result, name, source)
    section, key = _section_and_key(result, name)
    current = section[key]
    if isinstance(current, tuple) and isinstance(value, list):
      value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
      value = float(value)
    try:
      section[key] = value
    except TypeError as error:
      raise ValueError(f"{source}: {name}={value!r}: {error}") from None
  return result


def read(path: str) -> dict[str, Any]:
  """The overrides in a JSON file ({"dotted.name": value, ...}); ValueError naming the file
  when it is not such an object."""
  try:
    with open(path) as source:
      overrides = json.load(source)
  except json.JSONDecodeError as error:
    raise ValueError(f"{path}: not JSON ({error})") from None
  if not isinstance(overrides, dict):
    raise ValueError(f"{path}: expected a JSON object of dotted setting names and values")
  return overrides


def write(path: str, overrides: dict[str, Any]) -> None:
  """Writes `overrides` as JSON, atomically."""
  with atomic.atomic_path(path) as temporary:
    with open(temporary, "w") as sink:
      json.dump(overrides, sink, indent=1, sort_keys=True)
      sink.write("\n")


def command_line(overrides: dict[str, Any]) -> str:
  """`--config.<name>=<value>` flags that set `overrides` (ml_collections' syntax)."""
  def flag_value(value):
    if isinstance(value, (list, tuple)):
      return "'(" + ",".join(str(v) for v in value) + (",)'" if len(value) == 1 else ")'")
    return repr(value) if isinstance(value, str) else str(value)
  return " ".join(f"--config.{name}={flag_value(value)}" for name, value in sorted(
      overrides.items()))
