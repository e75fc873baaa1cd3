"""Training-step benchmark: compile time, step time, samples/s, GFLOP/s, peak ratio.

  python scripts/benchmark.py                       # Fusformer, published size: batch 3, 64x64,
                                                    # 31 bands, x4
  python scripts/benchmark.py --model=mrunet        # LST U-Net, batch 24 of 64x64, x4 (sisr)
  python scripts/benchmark.py --model=mrunet --variant=disr
  python scripts/benchmark.py --json=bench.json     # also save the figures

FLOPs come from XLA's cost analysis (for Fusformer, of the same step with dense ('xla')
attention, which has no loops (the cost analysis counts a loop body once); chunked attention does the same
arithmetic plus a recomputation that is not counted, so the GFLOP/s figure is conservative.
The matrix-multiply peak is measured in the same run on the same device.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import optax

from fusionjax.models.fusformer import Fusformer
from fusionjax.tasks.lst import LstObjective

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def experiment_config(path: str, variant: str):
  """get_config(variant) of an experiment file, e.g. experiments/modis_lst.py."""
  spec = importlib.util.spec_from_file_location("experiment", os.path.join(REPO, path))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


def matmul_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
  """Best-of-`repeats` float32 matrix-multiply rate, GFLOP/s."""
  a = jax.random.normal(jax.random.key(0), (size, size))
  b = jax.random.normal(jax.random.key(1), (size, size))
  matmul = jax.jit(jnp.matmul)
  matmul(a, b).block_until_ready()
  best = min(_timed(lambda: matmul(a, b).block_until_ready()) for _ in range(repeats))
  return 2 * size ** 3 / best / 1e9


def _timed(fn) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def make_step(model: Fusformer, optimizer):
  def loss_fn(params, lr, msi, truth):
    return jnp.mean(jnp.abs(model.apply(params, lr, msi) - truth))

  def step(params, opt_state, lr, msi, truth):
    loss, grads = jax.value_and_grad(loss_fn)(params, lr, msi, truth)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss
  return jax.jit(step, donate_argnums=(0, 1))


def _cost_gflop(compiled) -> float:
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost["flops"]) / 1e9


def _time_steps(compiled, params, opt_state, inputs, args) -> list[float]:
  times = []
  for i in range(args.warmup + args.steps):
    start = time.perf_counter()
    params, opt_state, loss = compiled(params, opt_state, *inputs)
    loss.block_until_ready()
    if i >= args.warmup:
      times.append(time.perf_counter() - start)
  return times


def benchmark_mrunet(args) -> tuple[dict, dict]:
  """The LST experiment's training step (its loss, model and optimizer) on random tiles."""
  config = experiment_config("experiments/modis_lst.py", args.variant)
  objective = LstObjective(config)
  t = config.data.tile_size
  tiles = {"lst": 290.0 + 10.0 * jax.random.uniform(jax.random.key(0), (args.batch, t, t, 1)),
           "ndvi": jax.random.uniform(jax.random.key(1), (args.batch, t, t, 1)),
           "reflectance": jax.random.uniform(jax.random.key(3), (args.batch, t, t, 3))}
  optimizer = optax.adam(config.train.learning_rate)
  params = objective.init_params(jax.random.key(2))
  opt_state = optimizer.init(params)

  def step(params, opt_state, tiles):
    (loss, _), grads = jax.value_and_grad(objective.loss_fn, has_aux=True)(params, tiles)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  start = time.perf_counter()
  compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, opt_state, tiles).compile()
  compile_s = time.perf_counter() - start
  parameters = int(sum(x.size for x in jax.tree.leaves(params)))
  times = _time_steps(compiled, params, opt_state, (tiles,), args)
  described = {"model": "mrunet", "variant": args.variant or "sisr", "batch": args.batch,
               "size": t, "scale": config.data.scale_factor,
               "widths": list(config.model.widths)}
  return described, {"parameters": parameters, "compile_s": compile_s, "step_s_all": times,
                     "gflop_per_step": _cost_gflop(compiled)}


def benchmark_fusformer(args) -> tuple[dict, dict]:
  """Fusformer's training step (L1 loss, Adam) on random tiles."""
  s = args.scale
  model_kwargs = {"out_bands": args.bands, "scale_factor": s}
  lr = jax.random.uniform(jax.random.key(0), (args.batch, args.size // s, args.size // s,
                                              args.bands))
  msi = jax.random.uniform(jax.random.key(1), (args.batch, args.size, args.size, args.msi_bands))
  truth = jax.random.uniform(jax.random.key(2), (args.batch, args.size, args.size, args.bands))
  optimizer = optax.adam(1e-3)
  model = Fusformer(**model_kwargs, attention=args.attention, query_chunk=args.query_chunk)
  params = model.init(jax.random.key(3), lr, msi)
  opt_state = optimizer.init(params)
  step = make_step(model, optimizer)

  start = time.perf_counter()
  compiled = step.lower(params, opt_state, lr, msi, truth).compile()
  compile_s = time.perf_counter() - start
  dense_step = make_step(Fusformer(**model_kwargs, attention="xla"), optimizer)
  gflop = _cost_gflop(dense_step.lower(params, opt_state, lr, msi, truth).compile())
  parameters = int(sum(x.size for x in jax.tree.leaves(params)))
  times = _time_steps(compiled, params, opt_state, (lr, msi, truth), args)
  described = {"model": "fusformer",
               **{k: getattr(args, k) for k in ("batch", "size", "bands", "msi_bands", "scale",
                                                "attention", "query_chunk")}}
  return described, {"parameters": parameters, "compile_s": compile_s, "step_s_all": times,
                     "gflop_per_step": gflop}


def benchmark(args) -> dict:
  """Figures of the chosen model's training step and the device's matmul peak."""
  described, figures = (benchmark_mrunet if args.model == "mrunet" else benchmark_fusformer)(args)
  step_s = statistics.median(figures["step_s_all"])
  peak = matmul_peak_gflops()
  achieved = figures["gflop_per_step"] / step_s
  return {
      "device": f"{jax.devices()[0].device_kind} x{jax.device_count()} ({platform.machine()})",
      "config": described, **figures, "step_s_median": step_s,
      "samples_per_s": args.batch / step_s, "achieved_gflops": achieved,
      "matmul_peak_gflops": peak, "fraction_of_peak": achieved / peak,
  }


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", choices=("fusformer", "mrunet"), default="fusformer")
  parser.add_argument("--variant", default="", help="experiments/modis_lst.py variant (mrunet)")
  parser.add_argument("--batch", type=int, default=None,
                      help="default: 3 (fusformer, published), 24 (mrunet, published)")
  parser.add_argument("--size", type=int, default=64, help="MSI tile size (pixels)")
  parser.add_argument("--bands", type=int, default=31)
  parser.add_argument("--msi_bands", type=int, default=3)
  parser.add_argument("--scale", type=int, default=4)
  parser.add_argument("--attention", default="chunked")
  parser.add_argument("--query_chunk", type=int, default=256)
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--json", default="", help="also write the figures to this JSON file")
  args = parser.parse_args(argv)
  if args.batch is None:
    args.batch = 24 if args.model == "mrunet" else 3
  result = benchmark(args)
  rows = [("device", result["device"]), ("parameters", f"{result['parameters']:,}"),
          ("compile (s)", f"{result['compile_s']:.2f}"),
          ("train step, median (s)", f"{result['step_s_median']:.3f}"),
          ("samples/s", f"{result['samples_per_s']:.3f}"),
          ("GFLOP per step (XLA)", f"{result['gflop_per_step']:.1f}"),
          ("achieved GFLOP/s", f"{result['achieved_gflops']:.1f}"),
          ("matmul peak GFLOP/s", f"{result['matmul_peak_gflops']:.1f}"),
          ("fraction of peak", f"{result['fraction_of_peak']:.3f}")]
  print("Train step: " + ", ".join(f"{k}={v}" for k, v in result["config"].items()))
  for name, value in rows:
    print(f"  {name:<26}{value}")
  if args.json:
    with open(args.json, "w") as stream:
      json.dump(result, stream, indent=2)
  return 0


if __name__ == "__main__":
  sys.exit(main())
