"""Command-line entry point.

  python -m fusionjax.main --config=experiments/jwst.py --workdir=runs/jwst [--mode=eval]
  python -m fusionjax.main --config=experiments/sentinel2.py --workdir=runs/s2 --mode=adapt \
      --config.predict.input=<scene> --config.predict.output=<folder>

Settings are overridden with --config.<field>=<value>, e.g. --config.train.num_steps=100, or
all at once with --config_overrides=<file.json> ({"train.learning_rate": 3e-4, ...}; e.g. the
best_overrides.json of a tuning study, fusionjax.tune), applied after the --config flags.
"""
import sys

from absl import app, flags, logging

from fusionjax import adaptation, cli, config_overrides, parallel, predict_batch, train

FLAGS = flags.FLAGS   # --config, --workdir and --compilation_cache_dir: fusionjax.cli
flags.DEFINE_string("config_overrides", "",
                    "JSON file of settings by dotted name ({\"train.learning_rate\": 3e-4}), "
                    "applied after the --config.<field> flags (e.g. a tuning study's "
                    "best_overrides.json).")
flags.DEFINE_enum("mode", "train", train.MODES + ("adapt",),
                  "train: train (resuming), evaluate and write products; eval: evaluate the "
                  "latest checkpoint; predict: write the products of the latest checkpoint; "
                  "adapt: fine-tune it on predict.input alone (self-supervised), then "
                  "predict that input.")
flags.DEFINE_string("coordinator_address", "", "host:port of process 0 for multi-process runs.")
flags.DEFINE_integer("num_processes", 1, "Number of processes in a multi-process run.")
flags.DEFINE_integer("process_id", 0, "Index of this process in a multi-process run.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  cli.set_up()
  config = FLAGS.config
  if FLAGS.config_overrides:
    config = config_overrides.apply(config, config_overrides.read(FLAGS.config_overrides),
                                    source=FLAGS.config_overrides)
  parallel.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  logging.info("Config:\n%s", config)
  if FLAGS.mode == "adapt":
    adaptation.adapt(config, FLAGS.workdir)
    return 0
  report = train.run(config, FLAGS.workdir, FLAGS.mode)
  if FLAGS.mode == "predict" and report and report.get("skipped"):
    logging.error("%d input(s) could not be processed; their reasons are in %s/%s.",
                  len(report["skipped"]), config.predict.output, predict_batch.REPORT_NAME)
    return 1
  return 0


def run() -> None:
  """The `fusionjax` command: the same as `python -m fusionjax.main`."""
  app.run(main, argv=cli.with_installed_config(sys.argv))


if __name__ == "__main__":
  run()
