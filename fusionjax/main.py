"""Command-line entry point.

  python -m fusionjax.main --config=experiments/jwst.py --workdir=runs/jwst [--mode=eval]
  python -m fusionjax.main --config=experiments/sentinel2.py --workdir=runs/s2 --mode=adapt \
      --config.predict.input=<scene> --config.predict.output=<folder>

Settings are overridden with --config.<field>=<value>, e.g. --config.train.num_steps=100.
"""
import logging as std_logging
import os

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from fusionjax import adaptation, parallel, train

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment config file (path[:variant]).",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for data, checkpoints, logs and products.")
flags.DEFINE_enum("mode", "train", train.MODES + ("adapt",),
                  "train: train (resuming), evaluate and write products; eval: evaluate the "
                  "latest checkpoint; predict: write the products of the latest checkpoint; "
                  "adapt: fine-tune it on predict.input alone (self-supervised), then "
                  "predict that input.")
flags.DEFINE_string("coordinator_address", "", "host:port of process 0 for multi-process runs.")
flags.DEFINE_integer("num_processes", 1, "Number of processes in a multi-process run.")
flags.DEFINE_integer("process_id", 0, "Index of this process in a multi-process run.")
flags.DEFINE_string("compilation_cache_dir",
                    os.environ.get("FUSIONJAX_COMPILATION_CACHE", "~/.cache/fusionjax/xla"),
                    "Persistent XLA compilation cache, shared by runs (a rerun loads its "
                    "compiled steps instead of compiling them); '' disables it. Default: "
                    "$FUSIONJAX_COMPILATION_CACHE or ~/.cache/fusionjax/xla.")
flags.mark_flags_as_required(["config", "workdir"])


class _QuietLibraries(std_logging.Filter):
  """Drops the INFO chatter of the checkpointing and dataset libraries (warnings pass)."""
  NOISY = ("/orbax/", "/tensorflow_datasets/")

  def filter(self, record: std_logging.LogRecord) -> bool:
    return record.levelno >= std_logging.WARNING or not any(
        part in record.pathname for part in self.NOISY)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  logging.get_absl_handler().addFilter(_QuietLibraries())
  if FLAGS.compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir",
                      os.path.expanduser(FLAGS.compilation_cache_dir))
  parallel.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  logging.info("Config:\n%s", FLAGS.config)
  if FLAGS.mode == "adapt":
    adaptation.adapt(FLAGS.config, FLAGS.workdir)
  else:
    train.run(FLAGS.config, FLAGS.workdir, FLAGS.mode)


if __name__ == "__main__":
  app.run(main)
