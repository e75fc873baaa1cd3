"""Training-step benchmark of an experiment config, through the trainer's own step builders.

  python scripts/benchmark.py --config=experiments/<exp>.py[:variants] \
      [--config.<field>=<value> ...]     # default: experiments/sentinel2.py
  python scripts/benchmark.py --model=<name>    # the network <name> (fusionjax.models: built in,
                                                # registered or package.module:Class) in the
                                                # first of EXPERIMENTS whose task takes it; with
                                                # --config, model=<name> added to its variants
  python scripts/benchmark.py --model=all       # every config of ALL (each built-in model at its
                                                # experiment's published size), one table
  python scripts/benchmark.py --config=experiments/modis_lst.py \
      --reference=scripts/benchmark_torch_reference.py --rounds=3
                                                # ours and the PyTorch reference in turns

Each config is benchmarked as `fusionjax.main` trains it: its task (`tasks.get_task`, data
prepared under --workdir or a temporary folder), the optimizer, the initial state and the
compiled step of `fusionjax.train`, fed the task's own training batches placed on the mesh.
--variants (e.g. smoke) and --config.<field>=<value> overrides apply to every config benchmarked.

Figures: the step's compile time (cold, then again from a persistent compilation cache, a new
empty one), its median over --steps timed steps after --warmup, samples/s, the step's
arithmetic by XLA's cost analysis (all devices; a task computing its gradient its own way, e.g.
in chunks, is counted on the default autodiff of its loss, as XLA counts a loop's body once:
a network's own loops, such as Fusformer's chunked attention, are undercounted unless set off,
e.g. --config.model.attention=xla) and GFLOP/s, their fraction of a matrix-multiply peak
measured in the same run (one device times the device count, in the model's compute dtype), the
peak memory of a device by XLA's memory analysis, and the task's input pipeline alone
(`train_batches`, examples/s of this process) against the step's consumption. --predict also
times one `task.predict_heldout` of the validation split (its compilation included): the
held-out prediction the trainer evaluates, e.g. the Koopman experiment's assimilation.

--reference=<script> runs our timed steps and then the script (scripts/benchmark_torch_*.py,
under --reference_python, with --warmup, --steps and --reference_args), --rounds times in
turns, since this host's speed drifts within minutes, and prints both medians and their ratio.
The reference's sizes are its own arguments: match them to the config with --reference_args.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile

import jax
import jax.numpy as jnp
from jax.experimental.compilation_cache import compilation_cache

import timing
from benchmark_configs import DEFAULT_CONFIG, config_specs, load_config
from fusionjax import atomic, parallel, tasks, train
from fusionjax.tasks.base import Task


# Measurements ----------------------------------------------------------------------------------

@functools.cache
def matmul_peak_gflops(dtype: str, size: int = 2048, repeats: int = 5) -> float:
  """Best-of-`repeats` rate of a matrix multiply of `dtype` matrices on one device, GFLOP/s."""
  a = jax.random.normal(jax.random.key(0), (size, size), dtype)
  b = jax.random.normal(jax.random.key(1), (size, size), dtype)
  matmul = jax.jit(jnp.matmul)
  times = timing.time_calls(lambda: matmul(a, b), 1, repeats, block=jax.block_until_ready)
  return 2 * size ** 3 / min(times.times_s) / 1e9


def _device() -> str:
  return f"{jax.devices()[0].device_kind} x{jax.device_count()} ({platform.machine()})"


@contextlib.contextmanager
def empty_compilation_cache():
  """A persistent compilation cache in a new empty folder, caching every program (so that a
  first compilation is cold and a second reads the cache); the settings are restored after."""
  settings = {"jax_persistent_cache_min_compile_time_secs": 0.0}
  previous = {name: getattr(jax.config, name)
              for name in ("jax_compilation_cache_dir", *settings)}
  with tempfile.TemporaryDirectory(prefix="fusionjax-benchmark-cache-") as directory:
    compilation_cache.reset_cache()
    try:
      for name, value in {**settings, "jax_compilation_cache_dir": directory}.items():
        jax.config.update(name, value)
      yield
    finally:
      for name, value in previous.items():
        jax.config.update(name, value)
      compilation_cache.reset_cache()   # forget the (soon deleted) folder


def _compile(jitted, *args) -> tuple[object, float, float]:
  """(compiled, seconds to compile cold, seconds to compile again from the persistent
  compilation cache, with JAX's in-memory caches cleared)."""
  compiled = []
  cold = timing.time_calls(lambda: compiled.append(jitted.lower(*args).compile()), 0, 1)
  jax.clear_caches()
  cached = timing.time_calls(lambda: jitted.lower(*args).compile(), 0, 1)
  return compiled[0], cold.median_s, cached.median_s


def _memory_mb(compiled) -> float:
  """Device memory a compiled program needs at its peak, by XLA's memory analysis: its
  arguments, outputs (less those written in place of donated arguments) and temporaries, MB."""
  m = compiled.memory_analysis()
  return (m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
          + m.temp_size_in_bytes) / 1e6


def _step_gflop(task: Task, optimizer, compiled, state, batch) -> float:
  """A step's arithmetic on all devices by XLA's cost analysis (of one device's program), of
  `compiled` or, where the task computes its gradient its own way, of the same step with the
  default autodiff of its loss (the same arithmetic without the loop)."""
  if type(task).loss_and_gradient is not Task.loss_and_gradient:
    gradient = functools.partial(Task.loss_and_gradient, task)
    compiled = jax.jit(functools.partial(train.optimizer_step, gradient, optimizer)).lower(
        state, batch).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost["flops"]) * jax.device_count() / 1e9


class Stepper:
  """The compiled training step on the next of `batches`, carrying the (donated) state."""

  def __init__(self, compiled, state, batches):
    self.compiled, self.state, self.batches = compiled, state, batches

  def __call__(self):
    self.state, metrics = self.compiled(self.state, next(self.batches))
    return metrics


def _pipeline_batches(task: Task, global_batch: int, warmup: int, steps: int):
  """`warmup + steps` of the task's training batches (this process's slices), and the Timing
  of their fetching (the input pipeline alone)."""
  source = task.train_batches(start_step=0, global_batch_size=global_batch)
  fetched = []
  return fetched, timing.time_calls(lambda: fetched.append(next(source)), warmup, steps)


def reference_seconds(args) -> float:
  """The median step time the reference script prints, run under --reference_python."""
  command = [args.reference_python, args.reference, f"--warmup={args.warmup}",
             f"--steps={args.steps}", *shlex.split(args.reference_args)]
  result = subprocess.run(command, capture_output=True, text=True, check=False)
  if result.returncode:
    raise RuntimeError(f"{shlex.join(command)} failed:\n{result.stdout}{result.stderr}")
  return timing.parse_median(result.stdout)


def torch_missing(python: str) -> str:
  """Why the reference cannot run under `python` ('' if it has PyTorch)."""
  found = subprocess.run([python, "-c", "import torch"], capture_output=True, check=False)
  return "" if found.returncode == 0 else (
      f"PyTorch is not installed for {python}: the reference is skipped (pip install torch, "
      "a CPU build is enough, or --reference_python=<a Python with it>)")


def interleaved(ours, reference, rounds: int) -> tuple[list[float], list[float]]:
  """The medians of `rounds` rounds of ours() then reference() (None: ours alone)."""
  our_medians, reference_medians = [], []
  for _ in range(rounds):
    our_medians.append(ours())
    if reference:
      reference_medians.append(reference())
  return our_medians, reference_medians


def _reference_figures(args, our_median: float, medians: list[float], skipped: str) -> dict:
  described = {"script": args.reference, "args": args.reference_args}
  if skipped:
    return {**described, "skipped": skipped}
  median = statistics.median(medians)
  return {**described, "step_s_rounds": medians, "step_s_median": median,
          "ratio": median / our_median}


def _predict_seconds(task: Task, params, mesh, config) -> float:
  """Seconds of one task.predict_heldout (validation) at config.predict.batch_size (rounded to the
  devices, as the trainer does), its compilation included."""
  batch_size = max(config.predict.batch_size // jax.device_count(), 1) * jax.device_count()
  predict = train.make_predict_fn(task, params, mesh)
  return timing.time_calls(lambda: task.predict_heldout(predict, batch_size, "validation"),
                           0, 1).median_s


def benchmark_config(config, workdir: str, args, skipped: str) -> dict:
  """The figures of `config`'s training step (and of the reference and the prediction, as
  args asks), its data prepared under `workdir`."""
  train.validate_config(config, "train")
  task = tasks.get_task(config, workdir)
  mesh = parallel.make_mesh()
  optimizer, _ = train.make_optimizer(config.train)
  state = train.replicated_initial_state(task, optimizer, mesh, config.seed)
  fetched, pipeline = _pipeline_batches(task, config.train.batch_size, args.warmup, args.steps)
  batches = [parallel.global_batch(local, mesh) for local in fetched]
  compiled, compile_s, cached_s = _compile(train.make_train_step(task, optimizer, mesh), state,
                                           batches[0])
  dtype = config.model.get("dtype", "float32")
  figures = {
      "task": config.task, "model": config.model.name, "dtype": dtype,
      "batch_size": config.train.batch_size,
      "parameters": int(sum(x.size for x in jax.tree.leaves(state.params))),
      "compile_s": compile_s, "compile_cached_s": cached_s, "memory_mb": _memory_mb(compiled),
      "gflop_per_step": _step_gflop(task, optimizer, compiled, state, batches[0]),
      "matmul_peak_gflops": matmul_peak_gflops(dtype) * jax.device_count(),
      "pipeline_examples_per_s": len(next(iter(fetched[0].values()))) / pipeline.median_s}
  stepper = Stepper(compiled, state, itertools.cycle(batches))
  figures.update(_step_figures(stepper, figures, args, skipped))
  if args.predict:
    figures["predict_s"] = _predict_seconds(task, stepper.state.params, mesh, config)
  return figures


def _step_figures(stepper: Stepper, figures: dict, args, skipped: str) -> dict:
  """The step's median (of the medians of args.rounds rounds, in turns with the reference's
  if there is one), and the rates that follow from it and `figures`."""
  def ours() -> float:
    return timing.time_calls(stepper, args.warmup, args.steps,
                             block=jax.block_until_ready).median_s
  runs_reference = args.reference and not skipped
  our_medians, reference_medians = interleaved(
      ours, functools.partial(reference_seconds, args) if runs_reference else None, args.rounds)
  step_s = statistics.median(our_medians)
  achieved = figures["gflop_per_step"] / step_s
  samples_per_s = figures["batch_size"] / step_s
  timed = {"step_s_rounds": our_medians, "step_s_median": step_s,
           "samples_per_s": samples_per_s, "achieved_gflops": achieved,
           "fraction_of_peak": achieved / figures["matmul_peak_gflops"],
           "pipeline_ratio": figures["pipeline_examples_per_s"] / samples_per_s}
  if args.reference:
    timed["reference"] = _reference_figures(args, step_s, reference_medians, skipped)
  return timed


# Report ----------------------------------------------------------------------------------------

def _rows(figures: dict) -> list[tuple[str, str]]:
  """(figure, value) rows of one config's figures."""
  rows = [("model", figures["model"]), ("batch", str(figures["batch_size"])),
          ("parameters", f"{figures['parameters']:,}"),
          ("compile, cold (s)", f"{figures['compile_s']:.2f}"),
          ("compile, from the cache (s)", f"{figures['compile_cached_s']:.2f}"),
          ("train step, median (s)", f"{figures['step_s_median']:.4f}"),
          ("samples/s", f"{figures['samples_per_s']:.2f}"),
          ("peak memory per device, XLA (MB)", f"{figures['memory_mb']:.1f}"),
          ("GFLOP per step (XLA)", f"{figures['gflop_per_step']:.3f}"),
          ("achieved GFLOP/s", f"{figures['achieved_gflops']:.2f}"),
          (f"fraction of the {figures['dtype']} matmul peak",
           f"{figures['fraction_of_peak']:.3f}"),
          ("pipeline alone, examples/s (this process)",
           f"{figures['pipeline_examples_per_s']:.1f}"),
          ("pipeline / trainer", f"{figures['pipeline_ratio']:.1f}")]
  reference = figures.get("reference")
  if reference and "skipped" in reference:
    rows.append(("PyTorch reference", "skipped: not installed"))
  elif reference:
    rows += [("rounds, ours then the reference", str(len(reference["step_s_rounds"]))),
             ("reference step, median (s)", f"{reference['step_s_median']:.4f}"),
             ("reference / ours (step time)", f"{reference['ratio']:.2f}")]
  if "predict_s" in figures:
    rows.append(("predict_heldout, once (s)", f"{figures['predict_s']:.2f}"))
  return rows


def print_table(title: str, columns: dict[str, list[tuple[str, str]]]) -> None:
  """Prints the rows of figures, one column of values per key of `columns` ('-' where a
  column lacks a row)."""
  names = list(dict.fromkeys(name for rows in columns.values() for name, _ in rows))
  values = {column: dict(rows) for column, rows in columns.items()}
  width = max(map(len, names)) + 2
  column_width = 2 + max(*(len(v) for rows in columns.values() for _, v in rows),
                         *(len(column) for column in columns))
  print(title)
  print(" " * (width + 2) + "".join(column.rjust(column_width) for column in columns))
  for name in names:
    print(f"  {name:<{width}}" + "".join(values[column].get(name, "-").rjust(column_width)
                                          for column in columns))


# Command line ----------------------------------------------------------------------------------

def parse_args(argv) -> tuple[argparse.Namespace, list[str]]:
  """The benchmark's arguments and the --config.<field>=<value> overrides."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="",
                      help=f"experiment file[:variants] (default {DEFAULT_CONFIG})")
  parser.add_argument("--model", default="",
                      help="a network name or import path, or 'all' (the configs of ALL)")
  parser.add_argument("--variants", default="",
                      help="variants added to every config benchmarked, e.g. smoke")
  parser.add_argument("--workdir", default="",
                      help="where the experiments' data is prepared (default: a temporary "
                           "folder)")
  parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
  parser.add_argument("--steps", type=int, default=5, help="timed steps")
  parser.add_argument("--predict", action="store_true",
                      help="also time one task.predict_heldout (validation)")
  parser.add_argument("--reference", default="",
                      help="a PyTorch reference script, timed in turns with ours")
  parser.add_argument("--reference_args", default="",
                      help="the reference's own arguments, e.g. '--batch=16 --size=32'")
  parser.add_argument("--reference_python", default=sys.executable,
                      help="the Python the reference runs under")
  parser.add_argument("--rounds", type=int, default=None,
                      help="rounds of ours then the reference (default 3; 1 without one)")
  parser.add_argument("--json", default="", help="also write the figures to this JSON file")
  args, overrides = parser.parse_known_args(argv)
  unknown = [arg for arg in overrides if not arg.startswith("--config.")]
  if unknown:
    parser.error(f"unrecognized arguments: {' '.join(unknown)}")
  if args.model == "all" and (args.config or args.reference):
    parser.error("--model=all benchmarks the configs of ALL: no --config or --reference")
  if args.warmup < 0 or args.steps < 1:
    parser.error("--warmup: expected 0 or more; --steps: 1 or more")
  args.rounds = args.rounds or (3 if args.reference else 1)
  return args, overrides


def main(argv=None) -> int:
  args, overrides = parse_args(argv)
  skipped = torch_missing(args.reference_python) if args.reference else ""
  if skipped:
    print(skipped, file=sys.stderr, flush=True)
  runs = {}
  with tempfile.TemporaryDirectory(prefix="fusionjax-benchmark-data-") as scratch, \
      empty_compilation_cache():
    for spec in config_specs(args, overrides):
      print(f"Benchmarking {spec} ...", file=sys.stderr, flush=True)
      config = load_config(spec, overrides, "" if args.model == "all" else args.model)
      runs[f"{config.name}/{config.model.name}"] = {
          "config": spec, **benchmark_config(config, args.workdir or scratch, args, skipped)}
  result = {"device": _device(), "overrides": overrides, "runs": runs}
  print_table(f"Training step on {result['device']}:",
              {label: _rows(figures) for label, figures in runs.items()})
  if args.json:
    with atomic.atomic_path(args.json) as temporary, open(temporary, "w") as stream:
      json.dump(result, stream, indent=2)
  return 0


if __name__ == "__main__":
  sys.exit(main())
