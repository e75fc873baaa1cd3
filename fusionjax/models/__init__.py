"""Networks found by name.

`config.model.name` chooses the network; the other fields of `config.model` are its arguments
(the compute dtype included) and are passed to it whole. A network is a Flax module class:

  * built in: the `Model` of `fusionjax/models/<module>.py` (`BUILT_IN` maps names to modules);
  * registered: any module class decorated with `@fusionjax.models.register("name")`, once the
    module holding it has been imported;
  * by import path: `package.module:Class`, or `package.module` exposing `Model`, which is
    imported when the config names it (so a model outside this package needs no code here).

The task family fixes what a network takes and returns, and the arguments it derives from the
data (e.g. `out_bands` and `scale_factor` for fusion): see the task's module docstring.
"""
from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import ml_collections

from fusionjax.models import precision

# name -> module of fusionjax.models whose `Model` (or registered class) it is.
BUILT_IN = {"fusformer": "fusformer", "dsen2": "dsen2", "vdsen2": "dsen2", "mrunet": "mrunet",
            "srcnn": "srcnn", "koopman_ae": "koopman_ae"}
_REGISTERED: dict[str, type[nn.Module]] = {}
_FLAX_FIELDS = ("parent", "name")


def register(name: str):
  """Class decorator: makes a Flax module class available as `config.model.name=name`."""
  def add(cls: type[nn.Module]) -> type[nn.Module]:
    if name in _REGISTERED and _REGISTERED[name] is not cls:
      raise ValueError(f"model {name!r} is already registered as "
                       f"{_REGISTERED[name].__module__}.{_REGISTERED[name].__qualname__}")
    _REGISTERED[name] = cls
    return cls
  return add


def known_names() -> list[str]:
  """Every name `model_class` resolves without an import path."""
  return sorted(set(BUILT_IN) | set(_REGISTERED))


def model_class(name: str) -> type[nn.Module]:
  """The network class of `name`; ValueError listing the known names if there is none."""
  if name in _REGISTERED:
    return _REGISTERED[name]
  if name in BUILT_IN:
    module = importlib.import_module(f"fusionjax.models.{BUILT_IN[name]}")
    return _REGISTERED.get(name) or module.Model
  if "." in name or ":" in name:
    module_name, _, attribute = name.partition(":")
    try:
      module = importlib.import_module(module_name)
    except ImportError as error:
      raise ValueError(f"model.name={name!r}: cannot import {module_name!r} ({error})") from None
    if name in _REGISTERED:   # the module registered it under its import path
      return _REGISTERED[name]
    cls = getattr(module, attribute or "Model", None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
      raise ValueError(f"model.name={name!r}: {module_name} has no Flax module "
                       f"{attribute or 'Model'!r}")
    return cls
  raise ValueError(f"model.name={name!r}: unknown model; expected one of "
                   f"{', '.join(known_names())}, or an import path 'package.module:Class'")


def arguments(cls: type[nn.Module]) -> dict[str, Any]:
  """A network's arguments and their defaults (dataclasses.MISSING where it has none)."""
  return {field.name: (field.default if field.default is not dataclasses.MISSING
                       else field.default_factory() if field.default_factory
                       is not dataclasses.MISSING else dataclasses.MISSING)
          for field in dataclasses.fields(cls) if field.init and field.name not in _FLAX_FIELDS}


def _plain(value):
  """Config values as a module takes them: lists as tuples, nested dicts as dicts."""
  if isinstance(value, (list, tuple)):
    return tuple(_plain(v) for v in value)
  if isinstance(value, ml_collections.ConfigDict):
    return value.to_dict()
  return value


def build(model_config: Mapping, **data_arguments) -> nn.Module:
  """The network `model_config.name` with the other fields of `model_config` as arguments and
  `data_arguments` (set by the task from its data). `dtype` is a compute-dtype name
  ('float32', 'bfloat16', 'float16'). A field the network does not take, or a required argument
  nobody gives, is a ValueError naming it and the network's arguments."""
  name = model_config["name"]
  cls = model_class(name)
  settings = {key: _plain(value) for key, value in model_config.items() if key != "name"}
  accepted = arguments(cls)
  unknown = sorted(set(settings) - set(accepted))
  overlap = sorted(set(settings) & set(data_arguments))
  taken = ", ".join(f"{key}" for key in accepted if key not in data_arguments) or "none"
  if unknown:
    raise ValueError(f"model.{unknown[0]}: not an argument of model {name!r} "
                     f"({cls.__module__}.{cls.__qualname__}); its arguments: {taken}. "
                     "A config written for another model: choose the model with the "
                     f"experiment's 'model={name}' variant, which sets its arguments")
  if overlap:
    raise ValueError(f"model.{overlap[0]}: set by the task from the data, not by the config")
  missing = [key for key, default in accepted.items() if default is dataclasses.MISSING
             and key not in settings and key not in data_arguments]
  if missing:
    raise ValueError(f"model {name!r}: no value for its argument {missing[0]!r} (set "
                     f"model.{missing[0]})")
  if "dtype" in settings:
    settings["dtype"] = precision.compute_dtype(settings["dtype"])
  return cls(**data_arguments, **settings)


def default_config(name: str, *, data_arguments=()) -> ml_collections.ConfigDict:
  """`name` and every argument of its network with its default, but those in
  `data_arguments` (set by the task): the `config.model` of an experiment using it."""
  config = ml_collections.ConfigDict({"name": name})
  for key, default in arguments(model_class(name)).items():
    if key in data_arguments:
      continue
    if default is dataclasses.MISSING:
      raise ValueError(f"model {name!r}: argument {key!r} has no default; the experiment "
                       "must set it")
    if key == "dtype":
      default = precision.dtype_name(default)
    config[key] = default
  return config
