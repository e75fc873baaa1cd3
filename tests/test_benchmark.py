"""scripts/benchmark.py: the memory analysis and the pipeline benchmark run and say what they
should (no timings are asserted)."""
import importlib.util
import json
import os

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
