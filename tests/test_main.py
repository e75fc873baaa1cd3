"""The command line, end to end, as a user runs it (4 simulated devices)."""
import dataclasses
import json
import os
import re
import signal
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from fusionjax import tasks, train
from fusionjax.data.jwst import observation as jwst_observation
from tests.conftest import REPO, experiment_config

METRICS = ("psnr", "sam_deg", "ergas", "ssim", "rmse")


def _run(*args, check=True):
  env = dict(os.environ, JAX_NUM_CPU_DEVICES="4", TF_CPP_MIN_LOG_LEVEL="2")
  result = subprocess.run([sys.executable, "-m", "fusionjax.main", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
  if check and result.returncode != 0:
    raise AssertionError(f"fusionjax.main {' '.join(args)} failed:\n{result.stderr[-4000:]}")
  return result


def _wavelengths(cube_path):
  with fits.open(cube_path) as hdul:
    wcs = WCS(hdul[0].header, fobj=hdul)
    planes = hdul[0].data.shape[0]
    return hdul[0].data, wcs.pixel_to_world_values(0, 0, np.arange(planes))[2]


def test_smoke_run_trains_evaluates_writes_products_and_reruns(tmp_path):
  workdir = tmp_path / "run"
  # The network corrects the model-based fusion (the default beyond the smoke variant).
  run = _run("--config=experiments/jwst.py:smoke", "--config.data.base_estimate=model_based",
             f"--workdir={workdir}")
  report = json.loads((workdir / "eval.json").read_text())
  assert report["step"] == 6 and set(report) == {"step", "validation", "test"}
  # The 96 columns of the smoke scene: training [0, 42), validation [45, 69), test [72, 96).
  for split, columns in (("validation", [45, 69]), ("test", [72, 96])):
    figures = report[split]
    for method in ("model", "network", "bicubic", "gsa", "mtf_glp", "model_based",
                   "model_based_chi2"):
      assert set(METRICS) | {"chi2_nircam", "chi2_nirspec", "region_flux_error",
                             "line_flux_error", "source_flux_error"} <= set(figures[method])
      assert figures[method]["line_flux"]["mean"]["map"] == figures[method]["line_flux_error"]
    # The data-consistency step brings the network's product closer to both observations,
    # and the model-based fusion explains them better than bicubic upsampling.
    for chi2 in ("chi2_nircam", "chi2_nirspec"):
      assert figures["model"][chi2] < figures["network"][chi2]
      assert figures["model_based"][chi2] < figures["bicubic"][chi2]
    # The product kept a fraction of the network's correction of the model-based fusion.
    assert figures["model"]["network_fraction"] in (1.0, 0.5, 0.25, 0.125, 0.0)
    # The smoke variant tries one smoothness weight: both model-based fusions are the same.
    assert figures["model_based_chi2"]["psnr"] == figures["model_based"]["psnr"]
    assert report[split]["region"]["columns"] == columns
    assert report[split]["region"]["training_columns"] == [0, 42]
  assert "model" in run.stdout and "bicubic" in run.stdout
  assert "validation" in run.stdout and "test" in run.stdout
  cube, wavelengths = _wavelengths(workdir / "products" / "fused_cube.fits")
  assert cube.shape == (24, 48, 24) and np.all(np.isfinite(cube))
  np.testing.assert_allclose(wavelengths, np.linspace(1.0, 2.35, 24), rtol=1e-9)
  assert (workdir / "products" / "quicklook.png").stat().st_size > 10_000
  assert list((workdir).glob("events.out.tfevents.*"))

  # The other modes, in this process (the command line is the one above): --mode=eval
  # reproduces the evaluation of the latest checkpoint.
  config = experiment_config("jwst", "smoke", **{"data.base_estimate": "model_based"})
  again = train.run(config, str(workdir), mode="eval")
  for split in ("validation", "test"):
    assert again[split]["model"]["psnr"] == report[split]["model"]["psnr"]
  # The baselines' figures are computed once per prepared scene and split, and kept beside it
  # with the settings they were computed with.
  kept_path = next((workdir / "data").glob("jwst-*/baselines_test.json"))
  kept = json.loads(kept_path.read_text())
  assert kept["reports"]["pooled"]["gsa"] == report["test"]["gsa"]
  kept["reports"]["pooled"]["gsa"]["psnr"] = -1.0   # read back, not computed again
  kept_path.write_text(json.dumps(kept))
  assert train.run(config, str(workdir), mode="eval")["test"]["gsa"]["psnr"] == -1.0
  kept["key"]["baseline_mtf"] = 0.5                  # other settings: computed again
  kept_path.write_text(json.dumps(kept))
  assert train.run(config, str(workdir), mode="eval")["test"]["gsa"] == report["test"]["gsa"]
  # A run that must not see the test split (a tuning trial) evaluates validation only.
  config.train.evaluate_test = False
  assert set(train.run(config, str(workdir), mode="eval")) == {"step", "validation"}
  config.train.evaluate_test = True
  # --mode=predict rewrites the products.
  os.remove(workdir / "products" / "fused_cube.fits")
  train.run(config, str(workdir), mode="predict")
  np.testing.assert_allclose(_wavelengths(workdir / "products" / "fused_cube.fits")[0], cube)

  # The whole 48 x 96 scene, from an observation file, as a user would fuse one.
  observation = tmp_path / "observation.fits"
  subprocess.run([sys.executable, "scripts/simulate_jwst_observation.py",
                  "--config=experiments/jwst.py:smoke", f"--output={observation}"],
                 cwd=REPO, check=True, capture_output=True)
  config.predict.input, config.predict.output = str(observation), str(tmp_path / "out")
  train.run(config, str(workdir), mode="predict")
  whole, wavelengths = _wavelengths(tmp_path / "out" / "observation_fused.fits")
  assert whole.shape == (24, 48, 96)
  np.testing.assert_allclose(wavelengths, np.linspace(1.0, 2.35, 24), rtol=1e-9)
  assert (tmp_path / "out" / "observation_fused.png").stat().st_size > 10_000
  # With the network's correction kept whole and without the data-consistency step, columns
  # 84-95 are the network's output of the same last tile as the test strip's (columns 72-95),
  # which differ only through the model-based fusions they correct: of the whole
  # observation, and of the strip alone.
  config.predict.consistency_iterations, config.predict.trust_fractions = 0, (1.0,)
  config.predict.output = str(tmp_path / "network")
  train.run(config, str(workdir), mode="predict")
  network = _wavelengths(tmp_path / "network" / "observation_fused.fits")[0]
  config.predict.input, config.predict.output = "", ""
  train.run(config, str(workdir), mode="predict")
  strip_network = _wavelengths(workdir / "products" / "fused_cube.fits")[0]
  relative = np.abs(network[:, :, 84:] - strip_network[:, :, 12:]) / np.abs(strip_network).max()
  assert np.median(relative) < 1e-3 and relative.max() < 0.05
  assert not np.allclose(network, whole)
  # The step, and the model-based fusion (predict.method), explain the whole observation
  # better than the network alone.
  defaults = experiment_config("jwst", "smoke").predict
  config.predict.consistency_iterations = defaults.consistency_iterations
  config.predict.trust_fractions = defaults.trust_fractions
  config.predict.input, config.predict.method = str(observation), "model_based"
  config.predict.output = str(tmp_path / "model_based")
  train.run(config, str(workdir), mode="predict")
  model_based = _wavelengths(tmp_path / "model_based" / "observation_fused.fits")[0]
  config.predict.method = "model_based_chi2"   # the same weight, chosen by the data
  config.predict.output = str(tmp_path / "model_based_chi2")
  train.run(config, str(workdir), mode="predict")
  np.testing.assert_allclose(
      _wavelengths(tmp_path / "model_based_chi2" / "observation_fused.fits")[0], model_based,
      rtol=1e-5, atol=1e-6 * np.abs(model_based).max())
  config.predict.method = "network"
  inversion = tasks.get_task(config, str(workdir)).inversion
  read = jwst_observation.read_observation(str(observation))
  chi2 = {name: inversion.reduced_chi2(product, read.nircam, read.nirspec)
          for name, product in (("network", network), ("product", whole),
                                ("model_based", model_based))}
  for key in ("chi2_nircam", "chi2_nirspec"):
    assert chi2["product"][key] < chi2["network"][key]
    assert chi2["model_based"][key] < chi2["network"][key]
    # The product keeps no more of the network's correction than the data allow.
    assert chi2["product"][key] <= 1.02 * max(1.0, chi2["model_based"][key])
  # A batch never stops at one bad input: a folder with that observation, one in other filters
  # than the model's and a corrupt file fuses the first, lists the others with their reasons in
  # predict_report.json, and the command exits non-zero; predict.strict stops at the first.
  batch = tmp_path / "batch"
  batch.mkdir()
  shutil.copy(observation, batch / "a_observation.fits")
  read = jwst_observation.read_observation(str(observation))
  jwst_observation.write_observation(str(batch / "b_swapped.fits"), dataclasses.replace(
      read, filters=read.filters[::-1], nircam=read.nircam[::-1]))
  (batch / "c_corrupt.fits").write_bytes(b"SIMPLE  = not a FITS file")
  result = _run("--config=experiments/jwst.py:smoke", "--config.data.base_estimate=model_based",
                f"--workdir={workdir}", "--mode=predict",
                f"--config.predict.input={batch}", f"--config.predict.output={tmp_path / 'b'}",
                check=False)
  assert result.returncode == 1, result.stderr[-3000:]
  report = json.loads((tmp_path / "b" / "predict_report.json").read_text())
  assert [entry["input"] for entry in report["done"]] == [str(batch / "a_observation.fits")]
  assert report["done"][0]["outputs"] == [str(tmp_path / "b" / "a_observation_fused.fits"),
                                          str(tmp_path / "b" / "a_observation_fused.png")]
  skipped = {os.path.basename(entry["input"]): entry["reason"] for entry in report["skipped"]}
  assert set(skipped) == {"b_swapped.fits", "c_corrupt.fits"}
  assert "b_swapped.fits: NIRCam filters" in skipped["b_swapped.fits"]
  assert "c_corrupt.fits" in skipped["c_corrupt.fits"]
  assert report["checkpoint_step"] == 6
  config.predict.input, config.predict.strict = str(batch / "b_swapped.fits"), True
  with pytest.raises(ValueError, match="b_swapped.fits: NIRCam filters"):
    train.run(config, str(workdir), mode="predict")


@pytest.mark.parametrize("experiment", ["jwst", "modis_lst", "sentinel2_koopman"])
def test_every_experiment_trains_and_evaluates_in_mixed_precision(experiment, trained):
  workdir = trained(experiment, "smoke", **{"model.dtype": "bfloat16"})
  report = json.loads((workdir / "eval.json").read_text())
  assert {"validation", "test"} <= set(report)

  def numbers(tree):
    if isinstance(tree, dict):
      return [x for value in tree.values() for x in numbers(value)]
    if isinstance(tree, list):
      return [x for value in tree for x in numbers(value)]
    return [tree] if isinstance(tree, float) else []
  figures = numbers(report)
  assert figures and np.all(np.isfinite(figures))


def test_bad_settings_stop_with_the_field_named(tmp_path):
  result = _run("--config=experiments/jwst.py:smoke", f"--workdir={tmp_path}",
                "--config.train.batch_size=6", check=False)
  assert result.returncode != 0
  assert "train.batch_size=6 is not divisible by the 4 devices" in result.stderr
  result = _run("--config=experiments/jwst.py:smoke", f"--workdir={tmp_path}",
                "--config.train.no_such_field=1", check=False)
  assert result.returncode != 0 and "no_such_field" in result.stderr


def test_sigterm_saves_a_checkpoint_and_the_rerun_resumes_from_it(tmp_path):
  args = ["--config=experiments/jwst.py:smoke", f"--workdir={tmp_path}",
          "--config.train.checkpoint_every=1000", "--config.train.log_every=1000",
          "--config.train.eval_every=1000"]
  env = dict(os.environ, JAX_NUM_CPU_DEVICES="4", TF_CPP_MIN_LOG_LEVEL="2")
  process = subprocess.Popen([sys.executable, "-m", "fusionjax.main", *args,
                              "--config.train.num_steps=5000"], cwd=REPO, env=env,
                             stderr=subprocess.PIPE, text=True)
  lines = []
  for line in process.stderr:
    lines.append(line)
    if "Training steps" in line:
      break
  time.sleep(4)   # some steps into training
  process.send_signal(signal.SIGTERM)
  rest = process.communicate(timeout=300)[1]
  assert process.returncode == 128 + signal.SIGTERM, "".join(lines) + rest
  match = re.search(r"SIGTERM: saved the checkpoint of step (\d+)", rest)
  assert match, rest
  step = int(match.group(1))
  assert 0 < step < 5000 and (tmp_path / "checkpoints" / str(step)).is_dir()
  rerun = _run(*args, f"--config.train.num_steps={step + 2}")
  assert f"Restoring checkpoint of step {step}" in rerun.stderr
  assert f"Training steps {step + 1} to {step + 2}" in rerun.stderr
