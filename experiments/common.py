"""Defaults shared by every experiment, which each experiment file starts from and overrides
(as Flax's configs/default.py): the training schedule, checkpoints, data feeding, prediction,
the network chosen by name, and the `smoke` overrides for tests."""
import ml_collections

from fusionjax import models

# A smaller network of each kind for the `smoke` variant (a run of seconds, for tests).
SMOKE_MODELS = {
    "fusformer": {"embed_dim": 24, "num_heads": 2, "head_dim": 12, "mlp_dim": 24},
    "dsen2": {"num_blocks": 2, "features": 16},
    "vdsen2": {"num_blocks": 2, "features": 16},
    "mrunet": {"widths": (16, 32), "patch_size": 2},
    "srcnn": {"features": (16, 8)},
    "koopman_ae": {"hidden": (32, 16), "latent_dim": 8},
}


def get_config(name: str, task: str) -> ml_collections.ConfigDict:
  """The shared defaults of experiment `name` run by task `task` (fusionjax.tasks)."""
  config = ml_collections.ConfigDict()
  config.name = name
  config.task = task
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.dir = ""                # the user's data; '' = the experiment's procedural data
  config.data.cache_dir = ""          # prepared data and TFRecord tiles; '' = <workdir>/data
  config.data.num_shards = 4
  config.data.num_streams = 4         # read streams: the batches depend on them, not on processes
  config.data.shuffle_buffer = 1024
  config.data.skip_corrupt = False    # True: skip unreadable records (logged, counted)
  config.data.augment = True          # flips and rotations of whole tiles
  # The held-out parts (scenes: right-hand strips, see fusionjax.data.fusion_scene): the
  # validation part, watched during training and used to select models and settings, and the
  # test part, reported once at the end of a run.
  config.data.val_fraction = 0.15
  config.data.test_fraction = 0.2

  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 16
  config.train.num_steps = 1000
  config.train.learning_rate = 1e-3
  config.train.schedule = "cosine"    # 'constant', 'step' (x decay_factor every decay_every) or
  config.train.decay_every = 100000   # 'cosine' (to zero over num_steps)
  config.train.decay_factor = 0.1
  config.train.log_every = 50
  config.train.eval_every = 500
  config.train.checkpoint_every = 500
  config.train.keep_checkpoints = 3
  config.train.skip_nonfinite = False  # True: skip steps with a non-finite loss or gradient
  config.train.evaluate_test = True   # the final evaluation reports the test split too
                                      # (False in tuning trials: they see validation only)

  # Tuning (python -m fusionjax.tune): the validation metric a study selects on, one of the
  # 'val_<name>' metrics the task logs during training.
  config.tune = ml_collections.ConfigDict()
  config.tune.metric = "val_l1"
  config.tune.direction = "minimize"

  config.predict = ml_collections.ConfigDict()
  config.predict.batch_size = 16
  config.predict.input = ""           # --mode=predict: the user's data ('' = the held-out part)
  config.predict.output = ""          # folder for the results
  # An input of a batch that cannot be processed is listed in predict_report.json and the
  # batch goes on (the command exits non-zero); True stops at the first.
  config.predict.strict = False
  return config


def set_model(config: ml_collections.ConfigDict, name: str, *, data_arguments: tuple[str, ...],
              **arguments) -> None:
  """config.model: network `name` with every argument at its default but `arguments` (and
  those the task sets from the data, `data_arguments`)."""
  config.model = models.default_config(name, data_arguments=data_arguments)
  config.model.update(arguments)


def smoke(config: ml_collections.ConfigDict) -> None:
  """A tiny end-to-end run (seconds of training), for tests: few steps, small batches and
  shards, and the network shrunk (SMOKE_MODELS)."""
  config.data.num_shards = 2
  config.data.num_streams = 2
  config.data.shuffle_buffer = 32
  config.train.batch_size = 4
  config.train.num_steps = 6
  config.train.log_every = 2
  config.train.eval_every = 3
  config.train.checkpoint_every = 3
  config.predict.batch_size = 4
  config.model.update(SMOKE_MODELS.get(config.model.name, {}))
