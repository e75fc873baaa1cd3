"""The generic trainer on 4 simulated devices: steps, checkpoints, config checks, resume."""
import functools
import logging
import os
import re
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from experiments import jwst as jwst_experiment
from experiments import modis_lst as modis_experiment
from fusionjax import checkpoint, parallel, run_config, train
from fusionjax.models.fusformer import Fusformer
from fusionjax.physics import sampling
from tests import test_main
from tests.conftest import experiment_config


def _fixed_batch(mesh):
  rng = np.random.default_rng(0)
  msi = rng.random((4, 12, 12, 3), np.float32)
  truth = msi[..., :1] * np.linspace(0.5, 1.5, 5, dtype=np.float32)  # learnable from the MSI
  local = {"lr": np.zeros((4, 4, 4, 5), np.float32), "msi": msi, "truth": truth}
  return parallel.global_batch(local, mesh)


def _model_and_loss():
  model = Fusformer(out_bands=5, scale_factor=3, embed_dim=16, num_heads=2, head_dim=8,
                    mlp_dim=16, num_encoder_layers=1, num_decoder_layers=1)

  def loss_fn(params, batch):
    base = sampling.upsample_bicubic(batch["lr"], 3)
    l1 = jnp.mean(jnp.abs(model.apply(params, batch["lr"], batch["msi"], base) - batch["truth"]))
    return l1, {"l1": l1}
  return model, loss_fn


def _init(model, batch, seed):
  lr = batch["lr"][:1]
  return model.init(jax.random.key(seed), lr, batch["msi"][:1], sampling.upsample_bicubic(lr, 3))


def test_train_step_lowers_the_loss_on_a_fixed_batch():
  assert jax.device_count() == 4
  mesh = parallel.make_mesh()
  batch = _fixed_batch(mesh)
  assert len(batch["msi"].sharding.device_set) == 4
  model, loss_fn = _model_and_loss()
  train_config = jwst_experiment.get_config("smoke").train
  train_config.schedule, train_config.learning_rate = "constant", 1e-2
  optimizer = train.make_optimizer(train_config)[0]
  params = _init(model, batch, 0)
  state = train.TrainState(step=jnp.zeros((), jnp.int32), params=params,
                           opt_state=optimizer.init(params))
  state = jax.device_put(state, parallel.replicated(mesh))
  step = jax.jit(functools.partial(train.optimizer_step,
                                   jax.value_and_grad(loss_fn, has_aux=True), optimizer),
                 in_shardings=(parallel.replicated(mesh), parallel.batch_sharded(mesh)),
                 donate_argnums=(0,))
  first = float(loss_fn(state.params, batch)[0])
  for _ in range(20):
    state, metrics = step(state, batch)
  assert int(state.step) == 20
  assert float(metrics["loss"]) < 0.6 * first


def test_checkpoint_round_trip(tmp_path):
  mesh = parallel.make_mesh()
  model, _ = _model_and_loss()
  batch = _fixed_batch(mesh)
  params = _init(model, batch, 1)
  state = jax.device_put(train.TrainState(step=jnp.array(7, jnp.int32), params=params,
                                          opt_state={"count": jnp.arange(3.0)}),
                         parallel.replicated(mesh))
  saver = checkpoint.Checkpointer(str(tmp_path), save_every=1, keep=2)
  assert saver.save(7, state)
  saver.wait()
  template = jax.tree.map(jnp.zeros_like, state)
  restored = saver.restore(template)
  assert saver.latest_step() == 7
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert restored.params["params"]["embed"]["kernel"].sharding == parallel.replicated(mesh)
  saver.close()


def test_batch_not_divisible_by_devices_is_refused_before_compiling():
  config = jwst_experiment.get_config("smoke")
  config.train.batch_size = 6
  with pytest.raises(ValueError, match=r"train.batch_size=6 is not divisible by the 4 devices"):
    train.validate_config(config, "train")


def test_eval_without_checkpoint_is_an_error(tmp_path):
  config = jwst_experiment.get_config("smoke")
  config.data.cache_dir = str(tmp_path / "data")
  with pytest.raises(FileNotFoundError, match="no checkpoint"):
    train.run(config, str(tmp_path / "run"), mode="eval")


def _final_params(workdir, step):
  """The parameters of a checkpoint, on this process's first device (whichever devices and
  processes wrote it)."""
  path = f"{workdir}/checkpoints/{step}/default"
  checkpointer = ocp.StandardCheckpointer()
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                        checkpointer.metadata(path).item_metadata.tree)
  return checkpointer.restore(path, target)["params"]


def _hparams_logged(workdir) -> dict:
  """The hyperparameters in the TensorBoard events of `workdir`."""
  import tensorflow as tf
  from tensorboard.plugins.hparams import plugin_data_pb2
  for events in workdir.glob("events.out.tfevents.*"):
    for event in tf.compat.v1.train.summary_iterator(str(events)):
      for value in event.summary.value:
        if value.metadata.plugin_data.plugin_name == "hparams":
          data = plugin_data_pb2.HParamsPluginData.FromString(
              value.metadata.plugin_data.content)
          if data.HasField("session_start_info"):
            return {name: getattr(v, v.WhichOneof("kind"))
                    for name, v in data.session_start_info.hparams.items()}
  return {}


def test_steps_compile_once_and_a_resumed_run_ends_as_an_uninterrupted_one(tmp_path, caplog):
  def config(num_steps):
    # A constant learning rate, so that stopping at step 3 is the same schedule as step 6.
    c = jwst_experiment.get_config("smoke")
    c.data.cache_dir = str(tmp_path / "data")
    c.train.num_steps = num_steps
    c.train.schedule = "constant"
    return c

  with jax.log_compiles(), caplog.at_level(logging.WARNING):
    train.run(config(6), str(tmp_path / "whole"))   # evaluates at steps 3 and 6
  compiled = [r.getMessage().split(" with ")[0] for r in caplog.records
              if r.getMessage().startswith("Compiling jit(")]
  assert compiled.count("Compiling jit(optimizer_step)") == 1, compiled
  assert compiled.count("Compiling jit(eval_fn)") == 1, compiled
  # The run's resolved config: in config.json and in TensorBoard's hyperparameters.
  assert run_config.read(str(tmp_path / "whole")).to_dict() == config(6).to_dict()
  assert _hparams_logged(tmp_path / "whole")["train.num_steps"] == 6
  train.run(config(3), str(tmp_path / "resumed"))
  assert not (tmp_path / "resumed" / "checkpoints" / "6").exists()
  train.run(config(6), str(tmp_path / "resumed"))
  whole, resumed = _final_params(tmp_path / "whole", 6), _final_params(tmp_path / "resumed", 6)
  for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(a, b)


def test_a_nonfinite_step_changes_nothing_but_the_step_count():
  mesh = parallel.make_mesh()
  batch = dict(_fixed_batch(mesh))
  model, loss_fn = _model_and_loss()
  optimizer = train.make_optimizer(jwst_experiment.get_config("smoke").train)[0]
  params = _init(model, batch, 0)
  state = train.TrainState(step=jnp.array(4, jnp.int32), params=params,
                           opt_state=optimizer.init(params))
  step = jax.jit(functools.partial(train.optimizer_step,
                                   jax.value_and_grad(loss_fn, has_aux=True), optimizer))
  good, metrics = step(state, batch)
  assert float(metrics["nonfinite"]) == 0.0
  assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(good.params),
                                                     jax.tree.leaves(state.params)))
  batch["truth"] = batch["truth"].at[0, 0, 0, 0].set(jnp.nan)
  bad, metrics = step(state, batch)
  assert float(metrics["nonfinite"]) == 1.0 and int(bad.step) == 5
  for a, b in zip(jax.tree.leaves((state.params, state.opt_state)),
                  jax.tree.leaves((bad.params, bad.opt_state))):
    np.testing.assert_array_equal(a, b)


def test_divergence_stops_naming_the_step_or_is_skipped_and_counted(tmp_path, caplog):
  config = jwst_experiment.get_config("smoke")
  config.data.cache_dir = str(tmp_path / "data")
  config.train.schedule, config.train.learning_rate = "constant", 1e30   # diverges at once
  with pytest.raises(FloatingPointError, match=r"step 2: the loss or the gradient is not "
                                               r"finite.*last checkpoint \(step 1\) is good"):
    train.run(config, str(tmp_path / "stop"))
  assert checkpoint.Checkpointer(str(tmp_path / "stop" / "checkpoints"), save_every=3,
                                 keep=3).latest_step() == 1
  config.train.skip_nonfinite = True
  with caplog.at_level("WARNING"):
    train.run(config, str(tmp_path / "skip"))
  skipped = [step for record in caplog.records if "non-finite" in record.getMessage()
             for step in record.args[1]]
  assert skipped == [2, 3, 4, 5, 6]


def test_bad_data_settings_are_refused_before_anything_is_prepared(tmp_path):
  config = jwst_experiment.get_config("orionbar,smoke")
  config.data.dir = str(tmp_path / "nowhere")
  with pytest.raises(FileNotFoundError, match=r"data.dir='.*nowhere': no such file"):
    train.validate_config(config, "train")
  config = jwst_experiment.get_config("smoke")
  config.data.tile_size = 25
  with pytest.raises(ValueError, match=r"data.tile_size=25 is not a multiple of the scale "
                                       r"factor 3"):
    train.validate_config(config, "train")
  config = modis_experiment.get_config("smoke")
  config.data.tile_size = 30
  with pytest.raises(ValueError, match=r"data.tile_size=30 is not a multiple of "
                                       r"data.scale_factor=4"):
    train.validate_config(config, "train")
  config = jwst_experiment.get_config("smoke")   # tiles of 24 pixels
  config.model.attention = "windowed"
  with pytest.raises(ValueError, match=r"model 'fusformer' on data.tile_size=24: "
                                       r"model.window=16 does not divide"):
    train.validate_config(config, "train")
  config = jwst_experiment.get_config("smoke")   # batch 4, 2 shards
  config.data.num_streams = 3
  with pytest.raises(ValueError, match=r"data.num_streams=3: expected a positive divisor of "
                                       r"train.batch_size=4"):
    train.validate_config(config, "train")
  config.data.num_streams = 4
  with pytest.raises(ValueError, match=r"data.num_shards=2 is fewer than data.num_streams=4"):
    train.validate_config(config, "train")


def _kill_after_checkpoint(process, directory, step: int) -> None:
  """SIGKILLs `process` as soon as the checkpoint of `step` (or a later one) is complete in
  `directory`: with a checkpoint at every step, while the next one is being written."""
  while not (os.path.isdir(directory) and any(
      name.isdigit() and int(name) >= step for name in os.listdir(directory))):
    assert process.poll() is None, "the run ended before it could be killed"
    time.sleep(0.02)
  process.kill()
  process.wait()


def test_sigkill_at_any_point_then_the_same_command_ends_as_an_uninterrupted_run(tmp_path,
                                                                                caplog):
  settings = {"data.cache_dir": str(tmp_path / "data"), "train.num_steps": 10,
              "train.checkpoint_every": 1, "train.keep_checkpoints": 2}
  # The uninterrupted run in this process (the same 4 devices and compiled programs as the
  # command's), the interrupted one as a user runs it.
  train.run(experiment_config("jwst", "smoke", **settings), str(tmp_path / "whole"))
  args = ["--config=experiments/jwst.py:smoke",
          *(f"--config.{key}={value}" for key, value in settings.items())]
  env = dict(os.environ, JAX_NUM_CPU_DEVICES="4", TF_CPP_MIN_LOG_LEVEL="2")
  for step in (3, 7):
    process = subprocess.Popen(
        [sys.executable, "-m", "fusionjax.main", *args, f"--workdir={tmp_path / 'killed'}"],
        cwd=test_main.REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _kill_after_checkpoint(process, tmp_path / "killed" / "checkpoints", step)
  # The command run again, here: it resumes from the last complete checkpoint.
  with caplog.at_level("INFO"):
    train.run(experiment_config("jwst", "smoke", **settings), str(tmp_path / "killed"))
  assert re.search(r"Restoring checkpoint of step ([7-9])", caplog.text), caplog.text[-2000:]
  whole, resumed = _final_params(tmp_path / "whole", 10), _final_params(tmp_path / "killed", 10)
  for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(a, b)
