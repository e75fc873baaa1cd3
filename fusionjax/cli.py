"""What the command-line entry points (fusionjax.main, fusionjax.tune) share: the persistent
compilation cache flag's default and quiet library logs."""
from __future__ import annotations

import logging as std_logging
import os

import jax
from absl import logging

# The persistent XLA compilation cache shared by runs (a rerun loads its compiled steps
# instead of compiling them).
DEFAULT_COMPILATION_CACHE = os.environ.get("FUSIONJAX_COMPILATION_CACHE",
                                           "~/.cache/fusionjax/xla")


class _QuietLibraries(std_logging.Filter):
  """Drops the INFO chatter of the checkpointing and dataset libraries (warnings pass)."""
  NOISY = ("/orbax/", "/tensorflow_datasets/")

  def filter(self, record: std_logging.LogRecord) -> bool:
    return record.levelno >= std_logging.WARNING or not any(
        part in record.pathname for part in self.NOISY)


def set_up(compilation_cache_dir: str) -> None:
  """Quiet library logs; the compilation cache in `compilation_cache_dir` ('' = none)."""
  logging.get_absl_handler().addFilter(_QuietLibraries())
  if compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir", os.path.expanduser(compilation_cache_dir))
