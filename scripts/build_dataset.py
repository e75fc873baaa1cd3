"""Prepares an experiment's scene and writes its TFRecord tiles, without training.

  python scripts/build_dataset.py --config=experiments/jwst.py --workdir=runs/jwst
  python scripts/build_dataset.py --config=experiments/jwst.py:orionbar \
      --config.data.dir=../shared/data/jwst_orionbar --workdir=runs/orionbar
"""
from absl import app, flags, logging
from ml_collections import config_flags

from fusionjax import tasks

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment config file (path[:variant]).")
flags.DEFINE_string("workdir", None, "Work directory; data go to <workdir>/data unless "
                    "--config.data.cache_dir is set.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  task = tasks.get_task(FLAGS.config, FLAGS.workdir)
  for split, info in task.builder.info.splits.items():
    logging.info("%s: %d tiles in %d shards", split, info.num_examples, info.num_shards)
    print(f"{split}: {info.num_examples} tiles in {info.num_shards} shards")
  print(f"data in {task.builder.data_dir}")


if __name__ == "__main__":
  app.run(main)
