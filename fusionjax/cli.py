"""What the command-line entry points (fusionjax.main, fusionjax.tune) share: the flags both
take (--config, --workdir, --compilation_cache_dir, defined once here so that both modules
can be imported in one process) and the set-up of quiet library logs and the persistent
compilation cache."""
from __future__ import annotations

import logging as std_logging
import os
import sys

import jax
from absl import flags, logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment config file (path[:variant]).",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "fusionjax.main: the run's folder (data, checkpoints, "
                    "logs, eval.json, products); fusionjax.tune: the study's folder (the "
                    "trials' runs, their data, the SQLite study by default, the table, plots "
                    "and best settings).")
flags.DEFINE_string("compilation_cache_dir",
                    os.environ.get("FUSIONJAX_COMPILATION_CACHE", "~/.cache/fusionjax/xla"),
                    "Persistent XLA compilation cache, shared by runs (a rerun loads its "
                    "compiled steps instead of compiling them); '' disables it. Default: "
                    "$FUSIONJAX_COMPILATION_CACHE or ~/.cache/fusionjax/xla.")
flags.mark_flags_as_required(["config", "workdir"])
# Where `pip install` puts the experiment configs (setup.cfg's data_files).
INSTALLED_EXPERIMENTS = os.path.join(sys.prefix, "share", "fusionjax", "experiments")


def with_installed_config(argv: list[str], installed: str = INSTALLED_EXPERIMENTS) -> list[str]:
  """`argv` with a --config=experiments/<name>.py[:variant] whose file does not exist from
  the working directory pointed at the installed copy of that config, if there is one (so
  that the documented commands run from any folder after `pip install`)."""
  result = list(argv)
  for index, argument in enumerate(result):
    if argument.startswith("--config="):
      prefix, value = "--config=", argument[len("--config="):]
    elif argument == "--config" and index + 1 < len(result):
      prefix, value, index = "", result[index + 1], index + 1
    else:
      continue
    path, colon, variant = value.partition(":")
    candidate = os.path.join(installed, os.path.basename(path))
    if (not os.path.exists(path) and os.path.basename(os.path.dirname(path)) == "experiments"
        and os.path.isfile(candidate)):
      result[index] = prefix + candidate + colon + variant
  return result


class _QuietLibraries(std_logging.Filter):
  """Drops the INFO chatter of the checkpointing and dataset libraries (warnings pass)."""
  NOISY = ("/orbax/", "/tensorflow_datasets/")

  def filter(self, record: std_logging.LogRecord) -> bool:
    return record.levelno >= std_logging.WARNING or not any(
        part in record.pathname for part in self.NOISY)


def set_up() -> None:
  """Quiet library logs; the compilation cache of --compilation_cache_dir ('' = none)."""
  logging.get_absl_handler().addFilter(_QuietLibraries())
  if FLAGS.compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir",
                      os.path.expanduser(FLAGS.compilation_cache_dir))
