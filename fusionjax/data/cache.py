"""Where prepared data lives: one folder per prepared scene (or series, or archive) and one
per tile set inside it, each named by a hash of every setting that changes its contents, so a
changed setting prepares new data and an unchanged one reuses what is there."""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping

# How data is fed, not what is prepared: left out of the keys.
FEEDING = ("cache_dir", "shuffle_buffer", "augment", "num_streams", "skip_corrupt",
           "sampled_steps")


def settings_key(settings: Mapping) -> str:
  """12 hex digits of the SHA-256 of `settings` (JSON, sorted keys)."""
  text = json.dumps(settings, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:12]


def data_settings(config, *, leave_out=()) -> dict:
  """config.data without the feeding settings and `leave_out`, data.dir made absolute."""
  settings = {key: value for key, value in config.data.to_dict().items()
              if key not in FEEDING and key not in leave_out}
  if settings.get("dir"):
    settings["dir"] = os.path.abspath(settings["dir"])
  return settings


def prepared_dir(config, workdir: str, settings: Mapping, *, kind: str = "") -> str:
  """<data.cache_dir, or <workdir>/data>/<kind or config.name>-<settings_key(settings)>."""
  root = config.data.cache_dir or os.path.join(workdir, "data")
  return os.path.join(root, f"{kind or config.name}-{settings_key(settings)}")


def lock_path(config, workdir: str) -> str:
  """The lock file held while data is prepared under the cache folder of `prepared_dir`."""
  root = config.data.cache_dir or os.path.join(workdir, "data")
  return os.path.join(root, ".prepare.lock")


def tiles_dir(prepared: str, settings: Mapping) -> str:
  """The folder of one tile set (TFRecord shards) of the prepared data in `prepared`."""
  return os.path.join(prepared, f"tfds-{settings_key(settings)}")
