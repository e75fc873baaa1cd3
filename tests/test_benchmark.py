"""scripts/benchmark.py: the memory analysis and the pipeline benchmark run and say what they
should (no timings are asserted)."""
import importlib.util
import json
import os

import pytest

from tests.conftest import REPO


def _benchmark_module():
  spec = importlib.util.spec_from_file_location(
      "benchmark", os.path.join(REPO, "scripts", "benchmark.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_chunked_attention_memory_grows_linearly_and_dense_does_not(tmp_path):
  benchmark = _benchmark_module()
  per_pixel = {}
  for attention in ("chunked", "xla"):
    path = tmp_path / f"{attention}.json"
    assert benchmark.main(["--model=fusformer_memory", "--memory_sizes=32,64,128",
                           f"--attention={attention}", "--batch=1", f"--json={path}"]) == 0
    sizes = json.loads(path.read_text())["sizes"]
    assert [row["size"] for row in sizes] == [32, 64, 128]
    per_pixel[attention] = [row["train_mb"] / row["pixels"] for row in sizes]
  chunked, dense = per_pixel["chunked"], per_pixel["xla"]
  assert max(chunked) < 1.3 * min(chunked)      # linear in the pixel count
  assert dense[2] > 8 * dense[0]                # quadratic: 16x the pixels, 16x per pixel


def test_pipeline_benchmark_reports_both_rates(tmp_path, capsys):
  benchmark = _benchmark_module()
  path = tmp_path / "pipeline.json"
  assert benchmark.main(["--model=pipeline", "--config=experiments/jwst.py:smoke",
                         f"--workdir={tmp_path / 'run'}", "--pipeline_batches=4", "--steps=2",
                         "--warmup=1", f"--json={path}"]) == 0
  result = json.loads(path.read_text())
  assert result["pipeline_examples_per_s"] > 0 and result["trainer_examples_per_s"] > 0
  assert result["ratio"] == (result["pipeline_examples_per_s"]
                             / result["trainer_examples_per_s"])
  assert "pipeline / trainer" in capsys.readouterr().out


def test_all_models_share_one_table_and_one_peak(tmp_path, capsys):
  benchmark = _benchmark_module()
  path = tmp_path / "all.json"
  assert benchmark.main(["--model=all", "--variant=smoke", "--size=16", "--batch=2",
                         "--steps=1", "--warmup=1", "--pipeline_batches=2",
                         f"--workdir={tmp_path / 'data'}", f"--json={path}"]) == 0
  result = json.loads(path.read_text())
  models = result["models"]
  assert list(models) == ["fusformer", "mrunet", "koopman", "assimilation"]
  for name, figures in models.items():
    assert figures["config"]["model"] == name and figures["config"]["dtype"] == "float32"
    assert figures["matmul_peak_gflops"] == result["matmul_peak_gflops"]
    assert figures["fraction_of_peak"] == (figures["gflop_per_step"] / figures["step_s_median"]
                                           / result["matmul_peak_gflops"])
    assert figures["compile_s"] > 0 and figures["memory_mb"] > 0
    # The model's own experiment's pipeline, on its procedural data prepared under --workdir.
    assert ("pipeline" in figures) == (name != "assimilation")
  for name in ("fusformer", "mrunet", "koopman"):
    pipeline = models[name]["pipeline"]
    assert pipeline["config"]["experiment"].endswith(":smoke")
    assert (tmp_path / "data" / name).is_dir() and pipeline["ratio"] > 0
  table = capsys.readouterr().out
  assert "fusformer" in table and "assimilation" in table and "pipeline / trainer" in table


def test_all_models_refuse_one_data_dir():
  benchmark = _benchmark_module()
  with pytest.raises(SystemExit):
    benchmark.main(["--model=all", "--data_dir=../shared/data/modis_lst"])
