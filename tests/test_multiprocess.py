"""Multi-process training over loopback: 2 processes x 2 CPU devices against 1 x 4.

Each process is a `python -m fusionjax.main` started as a user would start one per host, with
`--coordinator_address=127.0.0.1:<port> --num_processes=2 --process_id=<i>`.
"""
import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
import tensorflow as tf

from fusionjax import train
from tests.conftest import REPO, experiment_config
from tests.test_train import _final_params

SMOKE = ["--config=experiments/jwst.py:smoke", "--config.train.log_every=1"]


def _free_port() -> int:
  with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    return probe.getsockname()[1]


def _start(args, num_processes: int) -> list[subprocess.Popen]:
  """Starts one run as `num_processes` processes sharing 4 CPU devices."""
  env = dict(os.environ, JAX_NUM_CPU_DEVICES=str(4 // num_processes), TF_CPP_MIN_LOG_LEVEL="2")
  command = [sys.executable, "-m", "fusionjax.main", *args]
  if num_processes > 1:
    command += [f"--coordinator_address=127.0.0.1:{_free_port()}",
                f"--num_processes={num_processes}"]
  return [subprocess.Popen(command + ([f"--process_id={i}"] if num_processes > 1 else []),
                           cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
          for i in range(num_processes)]


def _finish(processes, expected_status: int = 0) -> list[str]:
  """Waits for every process; returns their stderr, checking their exit status."""
  logs = [process.communicate(timeout=600)[1] for process in processes]
  for index, (process, log) in enumerate(zip(processes, logs)):
    assert process.returncode == expected_status, f"process {index}:\n{log[-4000:]}"
  return logs


def _run(args, num_processes: int) -> list[str]:
  return _finish(_start(args, num_processes))


def _losses(workdir) -> dict[int, float]:
  """The training loss of every logged step, from the run's TensorBoard event files."""
  losses = {}
  for path in glob.glob(os.path.join(workdir, "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == "loss":
          losses[event.step] = float(tf.make_ndarray(value.tensor))
  return losses


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """The smoke run to step 6 in 1 x 4 and 2 x 2, then each continued to step 8 in the other
  layout."""
  root = tmp_path_factory.mktemp("multiprocess")
  shared = [*SMOKE, f"--config.data.cache_dir={root / 'data'}"]
  # 1 x 4 in this process (4 simulated devices), 2 x 2 as two commands.
  train.run(experiment_config("jwst", "smoke", **{"train.log_every": 1,
                                                  "data.cache_dir": str(root / "data")}),
            str(root / "one"))
  logs = {"two": _run([*shared, f"--workdir={root / 'two'}"], 2)}
  eval_reports = {name: json.loads((root / name / "eval.json").read_text())
                  for name in ("one", "two")}
  losses = {name: _losses(root / name) for name in ("one", "two")}
  # The continued runs are compared by their losses and parameters: their final evaluation
  # scores the validation strip only.
  longer = [*shared, "--config.train.num_steps=8", "--config.train.evaluate_test=False"]
  logs["one_then_two"] = _run([*longer, f"--workdir={root / 'one'}"], 2)
  logs["two_then_one"] = _run([*longer, f"--workdir={root / 'two'}"], 1)
  return root, logs, eval_reports, losses


def test_two_processes_follow_the_loss_trajectory_of_one(runs):
  _, _, eval_reports, losses = runs
  assert sorted(losses["one"]) == sorted(losses["two"]) == list(range(1, 7))
  np.testing.assert_allclose([losses["two"][s] for s in range(1, 7)],
                             [losses["one"][s] for s in range(1, 7)], rtol=1e-6)
  assert set(eval_reports["one"]) == set(eval_reports["two"]) == {"step", "validation", "test"}
  for split in ("validation", "test"):
    one, two = eval_reports["one"][split]["model"], eval_reports["two"][split]["model"]
    assert set(one) == set(two) >= {"psnr", "rmse", "ssim"}
    assert one.pop("model_name") == two.pop("model_name") == "fusformer"
    for name, value in one.items():
      if name == "line_flux":   # {line: {figure: value}}
        for line, figures in value.items():
          assert two[name][line] == pytest.approx(figures, rel=1e-5), (split, line)
      else:
        assert two[name] == pytest.approx(value, rel=1e-5), (split, name)


def test_only_process_zero_writes_logs_and_products(runs):
  root, logs, _, _ = runs
  assert len(glob.glob(str(root / "two" / "events.out.tfevents.*"))) == 2  # runs 'two' and
  # 'two_then_one', each by its process 0 only
  process_zero, process_one = logs["two"]
  assert "Wrote" in process_zero and (root / "two" / "products" / "fused_cube.fits").is_file()
  assert "Wrote" not in process_one and "Evaluation:" not in process_one


def test_checkpoints_restore_across_process_counts(runs):
  root, logs, _, _ = runs
  for name in ("one_then_two", "two_then_one"):
    assert all("Restoring checkpoint of step 6" in log for log in logs[name]), name
  continued = {name: _losses(root / name) for name in ("one", "two")}
  np.testing.assert_allclose([continued["one"][s] for s in (7, 8)],
                             [continued["two"][s] for s in (7, 8)], rtol=1e-6)
  for a, b in zip(jax.tree.leaves(_final_params(root / "one", 8)),
                  jax.tree.leaves(_final_params(root / "two", 8))):
    # Summation order differs between layouts; Adam moves a parameter by up to 1e-3 a step.
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_sigterm_to_one_process_stops_both_at_one_checkpoint_then_resumes(tmp_path, caplog):
  args = [*SMOKE, f"--workdir={tmp_path}", "--config.train.num_steps=5000",
          "--config.train.checkpoint_every=1000", "--config.train.eval_every=1000"]
  processes = _start(args, 2)
  lines = []
  for line in processes[1].stderr:
    lines.append(line)
    if "Training steps" in line:
      break
  time.sleep(4)   # some steps into training
  processes[1].send_signal(signal.SIGTERM)   # the notice reaches one process only
  rest = processes[1].communicate(timeout=300)[1]
  logs = [processes[0].communicate(timeout=300)[1], "".join(lines) + rest]
  steps = set()
  for process, log in zip(processes, logs):
    assert process.returncode == 128 + signal.SIGTERM, log[-4000:]
    steps.update(re.findall(r"SIGTERM: saved the checkpoint of step (\d+)", log))
  assert len(steps) == 1, steps    # both processes stopped after the same step
  step = int(steps.pop())
  assert 0 < step < 5000 and (tmp_path / "checkpoints" / str(step)).is_dir()
  # Resumed here, in 1 process x 4 devices (restoring across layouts:
  # test_checkpoints_restore_across_process_counts).
  with caplog.at_level("INFO"):
    train.run(experiment_config("jwst", "smoke", **{
        "train.log_every": 1, "train.num_steps": step + 2, "train.checkpoint_every": 1000,
        "train.eval_every": 1000}), str(tmp_path))
  assert f"Restoring checkpoint of step {step}" in caplog.text
  assert sorted(_losses(tmp_path))[-2:] == [step + 1, step + 2]
