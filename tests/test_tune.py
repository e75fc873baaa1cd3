"""Hyperparameter optimisation (fusionjax.tune): a study of smoke trials completes, prunes a
trial whose validation metric is bad, keeps the test split to the best trial (once), is
resumed by rerunning it, shares one SQLite study between two workers and re-queues a trial
whose worker was killed, which then resumes from its own checkpoint; bad search spaces and
storages are refused before any trial."""
import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time

import optuna
import pytest

from experiments import sentinel2
from fusionjax import config_overrides, tune

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Learning rates of the enqueued trials: two that train, one that wrecks the network (its
# validation L1 at step 3 is ~1e5 times the others'), which the median pruner stops.
GOOD, BAD = (1e-3, 2e-3), 1.0
SPACE = '''
from optuna.distributions import FloatDistribution

def get_search_space(arg=None):
  return {"train.learning_rate": FloatDistribution(1e-4, 1.0, log=True)}
'''


def _space_file(directory) -> str:
  path = os.path.join(directory, "space.py")
  with open(path, "w") as sink:
    sink.write(SPACE)
  return path


def _storage(workdir) -> str:
  return f"sqlite:///{os.path.join(workdir, 'study.db')}"


def _enqueue(workdir, learning_rates) -> None:
  os.makedirs(workdir, exist_ok=True)
  study = optuna.create_study(storage=_storage(workdir), study_name="sentinel2",
                              direction="minimize")
  for rate in learning_rates:
    study.enqueue_trial({"train.learning_rate": rate})


def _run_study(workdir, space):
  return tune.tune(sentinel2.get_config("smoke"), "smoke", config_path="experiments/sentinel2.py",
                   workdir=str(workdir), num_trials=3, space_path=space, heartbeat_seconds=1)


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
  """A finished study of 3 trials (two good learning rates, then a bad one), in-process."""
  workdir = tmp_path_factory.mktemp("study")
  _enqueue(workdir, GOOD + (BAD,))
  _run_study(workdir, _space_file(workdir))
  return workdir


def _rows(workdir) -> list[dict]:
  with open(os.path.join(workdir, "trials.csv")) as source:
    return list(csv.DictReader(source))


def test_study_completes_and_prunes_the_bad_trial(study_dir):
  rows = _rows(study_dir)
  assert [(r["trial"], r["state"]) for r in rows] == [
      ("0", "COMPLETE"), ("1", "COMPLETE"), ("2", "PRUNED")]
  assert float(rows[2]["train.learning_rate"]) == BAD and rows[2]["steps"] == "3"
  assert float(rows[2]["value"]) > 100 * max(float(r["value"]) for r in rows[:2])
  for name in ("history", "intermediate_values", "importances", "slice"):
    assert os.path.getsize(study_dir / f"{name}.png") > 10_000


def test_best_trial_settings_and_test_figures_once(study_dir):
  rows = _rows(study_dir)
  best = min(rows[:2], key=lambda r: float(r["value"]))
  summary = json.loads((study_dir / "study.json").read_text())
  assert summary["best"]["trial"] == int(best["trial"])
  assert summary["trials"] == {"complete": 2, "pruned": 1, "fail": 0, "running": 0}
  overrides = config_overrides.read(summary["best"]["overrides"])
  assert overrides == {"train.learning_rate": pytest.approx(float(best["train.learning_rate"]))}
  assert "--config_overrides=" in summary["best"]["command"]
  config = config_overrides.apply(sentinel2.get_config("smoke"), overrides)
  assert config.train.learning_rate == overrides["train.learning_rate"]
  # Trials see the validation split only; the best one's test figures are computed once.
  for row in rows[:2]:
    report = json.loads((study_dir / f"trial_{row['trial']}" / "eval.json").read_text())
    assert ("test" in report) == (row is best)
    assert report["validation"]["model"]["rmse"] > 0
  test = json.loads((study_dir / "best_test.json").read_text())
  assert test["trial"] == int(best["trial"]) and test["test"]["model"]["rmse"] > 0
  assert summary["test"] == test


def test_rerun_continues_without_new_trials(study_dir):
  before = (study_dir / "best_test.json").stat().st_mtime_ns
  study = _run_study(study_dir, str(study_dir / "space.py"))
  assert len(study.trials) == 3
  assert (study_dir / "best_test.json").stat().st_mtime_ns == before   # not recomputed


@pytest.mark.parametrize("space, message", [
    ('{"train.learning_rat": FloatDistribution(1e-4, 1e-2)}', "'train.learning_rat' is not a "
     "setting.*did you mean train.learning_rate"),
    ('{"train.learning_rate": FloatDistribution(1e-3, 1e-3)}', "train.learning_rate: the range "
     r"\[0.001, 0.001\] is empty"),
    ('{"model.features": CategoricalDistribution([32])}', r"model.features: the range \[32\] "
     "is empty"),
    ('{"data.tile_size": CategoricalDistribution([16, 17])}', "data.tile_size=17 is not a "
     "valid setting: data.tile_size=17 is not a multiple of the scale factor 2"),
])
def test_bad_search_space_is_refused_before_any_trial(tmp_path, space, message):
  path = tmp_path / "space.py"
  path.write_text("from optuna.distributions import CategoricalDistribution, FloatDistribution\n"
                  f"def get_search_space(arg=None):\n  return {space}\n")
  with pytest.raises(ValueError, match=message):
    _run_study(tmp_path / "study", str(path))
  assert not os.path.exists(tmp_path / "study")


def test_unopenable_storage_is_refused(tmp_path):
  url = "sqlite:////nonexistent-folder/study.db"
  with pytest.raises(ValueError, match="--storage='sqlite:////nonexistent-folder/study.db' "
                                       "cannot be opened"):
    tune.tune(sentinel2.get_config("smoke"), "smoke", config_path="experiments/sentinel2.py",
              workdir=str(tmp_path / "study"), num_trials=3, space_path=_space_file(tmp_path),
              storage=url)
  assert not os.path.exists(tmp_path / "study" / "trial_0")


def _worker(workdir, space, log) -> subprocess.Popen:
  return subprocess.Popen(
      [sys.executable, "-m", "fusionjax.tune", "--config=experiments/sentinel2.py:smoke",
       f"--workdir={workdir}", "--trials=3", f"--space={space}", "--heartbeat_seconds=1"],
      cwd=REPO, stdout=log, stderr=subprocess.STDOUT)


def test_two_workers_share_a_study_and_a_killed_trial_resumes(tmp_path):
  workdir, space = tmp_path / "study", _space_file(tmp_path)
  _enqueue(workdir, GOOD)
  with open(tmp_path / "first.log", "w") as log:
    first = _worker(workdir, space, log)
    checkpoint = workdir / "trial_0" / "checkpoints" / "3"
    deadline = time.time() + 300
    while not checkpoint.exists() and first.poll() is None and time.time() < deadline:
      time.sleep(0.2)
    assert checkpoint.exists(), (tmp_path / "first.log").read_text()[-3000:]
    first.send_signal(signal.SIGKILL)   # mid-trial: trial 0 stays 'running', then goes stale
    first.wait()
  logs = [open(tmp_path / f"worker_{k}.log", "w") for k in range(2)]
  workers = [_worker(workdir, space, log) for log in logs]
  for worker, log in zip(workers, logs):
    assert worker.wait(timeout=600) == 0, open(log.name).read()[-3000:]
    log.close()
  study = optuna.load_study(study_name="sentinel2", storage=_storage(workdir))
  finished = [t for t in study.trials if t.state in tune.DONE]
  assert len(finished) == 3
  workdirs = [t.user_attrs["workdir"] for t in finished]
  assert len(set(workdirs)) == 3                       # no trial ran twice
  killed = study.trials[0]
  assert killed.state == optuna.trial.TrialState.FAIL   # its worker stopped
  resumed = [t for t in finished if t.user_attrs["workdir"] == str(workdir / "trial_0")]
  assert len(resumed) == 1 and resumed[0].number > 0
  assert resumed[0].params == killed.params
  assert resumed[0].user_attrs["resumed_from_step"] == 3   # from its own checkpoint
  rows = _rows(workdir)
  assert {int(r["trial"]) for r in rows if r["state"] in ("COMPLETE", "PRUNED")} == {
      t.number for t in finished}


def test_config_overrides_apply_read_and_command_line(tmp_path):
  config = sentinel2.get_config("smoke")
  changed = config_overrides.apply(config, {"train.learning_rate": 1, "model.num_blocks": 3,
                                            "data.bands": "60m"})
  assert changed.train.learning_rate == 1.0 and isinstance(changed.train.learning_rate, float)
  assert (changed.model.num_blocks, changed.data.bands) == (3, "60m")
  assert config.model.num_blocks == 2   # the original is unchanged
  with pytest.raises(ValueError, match="'model.num_block' is not a setting"):
    config_overrides.apply(config, {"model.num_block": 3})
  with pytest.raises(ValueError, match="model.num_blocks='three'"):
    config_overrides.apply(config, {"model.num_blocks": "three"})
  path = tmp_path / "overrides.json"
  config_overrides.write(str(path), {"train.learning_rate": 3e-4})
  assert config_overrides.read(str(path)) == {"train.learning_rate": 3e-4}
  path.write_text("[1, 2]")
  with pytest.raises(ValueError, match="expected a JSON object"):
    config_overrides.read(str(path))
  assert config_overrides.command_line({"data.bands": "60m", "train.learning_rate": 0.001}) == (
      "--config.data.bands='60m' --config.train.learning_rate=0.001")


def test_the_configs_defaults_are_queued_once(tmp_path):
  study = optuna.create_study(storage=_storage(tmp_path), study_name="s", direction="minimize")
  config = sentinel2.get_config("smoke")
  space = tune.load_space(_space_file(tmp_path), None)
  tune.enqueue_defaults(study, config, space)
  tune.enqueue_defaults(study, config, space)   # already queued: not again
  assert [t.system_attrs["fixed_params"] for t in study.trials] == [
      {"train.learning_rate": config.train.learning_rate}]
  outside = config_overrides.apply(config, {"train.learning_rate": 5.0})
  tune.enqueue_defaults(study, outside, space)   # outside [1e-4, 1]: not queued
  assert len(study.trials) == 1


def test_workers_asking_at_once_never_share_a_queued_trial(tmp_path):
  """Eight workers (each its own connection to one SQLite study, as separate processes
  have) ask for a trial at the same instant, five times over: the queued trial goes to
  exactly one of them and every trial number to one worker."""
  url = f"sqlite:///{tmp_path / 'study.db'}"
  studies = [tune.open_study(url, "race", "minimize", pruner="none", seed=0,
                             heartbeat_seconds=60) for _ in range(8)]
  for _ in range(5):
    studies[0].enqueue_trial({"x": 1.0})
    barrier, asked = threading.Barrier(len(studies)), []

    def ask(study):
      barrier.wait()
      asked.append(study.ask().number)
    threads = [threading.Thread(target=ask, args=(study,)) for study in studies]
    for thread in threads:
      thread.start()
    for thread in threads:
      thread.join()
    assert len(set(asked)) == len(studies), sorted(asked)
  trials = studies[0].get_trials()
  assert len(trials) == 40
  assert sum("fixed_params" in trial.system_attrs for trial in trials) == 5
