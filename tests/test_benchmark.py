"""scripts/benchmark.py: any config, and any network (one defined here included), benchmarked
through the trainer's step builders with finite, positive figures (no timing is asserted), and
a reference timed in turns with ours."""
import importlib.util
import json
import math
import os
import sys
import textwrap

import flax.linen as nn
import jax.numpy as jnp
import pytest

from tests.conftest import REPO

FIGURES = ("parameters", "compile_s", "compile_cached_s", "memory_mb", "step_s_median",
           "samples_per_s", "gflop_per_step", "achieved_gflops", "matmul_peak_gflops",
           "fraction_of_peak", "pipeline_examples_per_s", "pipeline_ratio")


class TinyFusion(nn.Module):
  """A fusion network outside fusionjax: the estimate to correct plus a 1 x 1 convolution of
  it and the multispectral image."""
  out_bands: int
  scale_factor: int
  features: int = 4

  @nn.compact
  def __call__(self, lr, msi, base):
    hidden = nn.relu(nn.Dense(self.features)(jnp.concatenate([base, msi], axis=-1)))
    return base + nn.Dense(self.out_bands)(hidden)


@pytest.fixture(scope="module")
def benchmark():
  """scripts/benchmark.py as a module, its folder first on sys.path as when it runs."""
  with pytest.MonkeyPatch.context() as patch:
    patch.syspath_prepend(os.path.join(REPO, "scripts"))
    spec = importlib.util.spec_from_file_location(
        "benchmark", os.path.join(REPO, "scripts", "benchmark.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  """One workdir for every benchmark here: each experiment's data is prepared once."""
  return tmp_path_factory.mktemp("benchmark-data")


def _run(benchmark, tmp_path, data_dir, *argv) -> dict:
  """The figures of the one config benchmarked with `argv`, 2 timed steps after 1."""
  path = tmp_path / "figures.json"
  assert benchmark.main([*argv, "--warmup=1", "--steps=2", f"--workdir={data_dir}",
                         f"--json={path}"]) == 0
  (figures,) = json.loads(path.read_text())["runs"].values()
  for name in FIGURES:
    assert math.isfinite(figures[name]) and figures[name] > 0, name
  return figures


def test_sentinel2_smoke_with_prediction_and_a_reference_in_turns(benchmark, tmp_path,
                                                                  data_dir, capsys,
                                                                  monkeypatch):
  reference = tmp_path / "reference.py"
  reference.write_text(textwrap.dedent(f"""\
      import argparse, sys
      sys.path.insert(0, {os.path.join(REPO, "scripts")!r})
      import timing
      parser = argparse.ArgumentParser()
      timing.add_timing_arguments(parser, warmup=1, steps=1)
      parser.add_argument("--seconds", type=float)
      timing.print_median(parser.parse_args().seconds)
      """))
  monkeypatch.setattr(benchmark, "torch_missing", lambda python: "")
  figures = _run(benchmark, tmp_path, data_dir, "--config=experiments/sentinel2.py:smoke",
                 "--config.train.batch_size=8", "--predict", f"--reference={reference}",
                 "--reference_args=--seconds=0.5", "--rounds=2")
  assert (figures["task"], figures["model"], figures["batch_size"]) == (
      "sentinel2_fusion", "dsen2", 8)
  assert len(figures["step_s_rounds"]) == 2 and figures["predict_s"] > 0
  assert figures["reference"]["step_s_rounds"] == [0.5, 0.5]
  assert figures["reference"]["ratio"] == 0.5 / figures["step_s_median"]
  table = capsys.readouterr().out
  assert "sentinel2/dsen2" in table and "reference / ours (step time)" in table


def test_a_model_alone_is_benchmarked_in_its_experiment(benchmark, tmp_path, data_dir):
  figures = _run(benchmark, tmp_path, data_dir, "--model=koopman_ae", "--variants=smoke")
  assert figures["config"] == "experiments/sentinel2_koopman.py:smoke,model=koopman_ae"
  assert (figures["task"], figures["model"]) == ("sentinel2_koopman", "koopman_ae")


def test_a_model_outside_the_package_needs_no_benchmark_code(benchmark, tmp_path, data_dir):
  figures = _run(benchmark, tmp_path, data_dir, "--config=experiments/sentinel2.py:smoke",
                 "--model=tests.test_benchmark:TinyFusion")
  assert figures["model"] == "tests.test_benchmark:TinyFusion"
  assert figures["parameters"] == 4 * (6 + 4) + 4 + 6 * 4 + 6   # two Dense layers


def test_experiment_of_a_model_is_the_first_whose_task_takes_it(benchmark):
  import benchmark_configs   # beside benchmark.py, on the path the fixture set
  assert benchmark_configs.experiment_of("srcnn", "smoke", []) == (
      "experiments/modis_lst.py:smoke,model=srcnn")
  assert benchmark_configs.experiment_of("dsen2", "", []) == "experiments/sentinel2.py:model=dsen2"
  with pytest.raises(ValueError, match="no experiment takes model 'nonexistent'"):
    benchmark_configs.experiment_of("nonexistent", "", [])


def test_a_reference_without_pytorch_is_skipped_with_the_reason(benchmark):
  if importlib.util.find_spec("torch"):
    pytest.skip("PyTorch is installed here")
  assert "PyTorch is not installed" in benchmark.torch_missing(sys.executable)
