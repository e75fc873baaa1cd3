"""Fusformer training-step benchmark: compile time, step time, samples/s, GFLOP/s, peak ratio.

  python scripts/benchmark.py                       # published size: batch 3, 64x64, 31 bands, x4
  python scripts/benchmark.py --json=bench.json     # also save the figures

FLOPs come from XLA's cost analysis of the same step with dense ('xla') attention, which has
no loops (the cost analysis counts a loop body once); chunked attention does the same
arithmetic plus a recomputation that is not counted, so the GFLOP/s figure is conservative.
The matrix-multiply peak is measured in the same run on the same device.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import optax

from fusionjax.models.fusformer import Fusformer


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


def benchmark(args) -> dict:
  s = args.scale
  model_kwargs = dict(out_bands=args.bands, scale_factor=s)
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
  cost = dense_step.lower(params, opt_state, lr, msi, truth).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float(cost["flops"])

  times = []
  for i in range(args.warmup + args.steps):
    start = time.perf_counter()
    params, opt_state, loss = compiled(params, opt_state, lr, msi, truth)
    loss.block_until_ready()
    if i >= args.warmup:
      times.append(time.perf_counter() - start)
  step_s = statistics.median(times)
  peak = matmul_peak_gflops()
  achieved = flops / step_s / 1e9
  return {
      "device": f"{jax.devices()[0].device_kind} x{jax.device_count()} ({platform.machine()})",
      "config": {k: getattr(args, k) for k in ("batch", "size", "bands", "msi_bands", "scale",
                                               "attention", "query_chunk")},
      "parameters": int(sum(x.size for x in jax.tree.leaves(params))),
      "compile_s": compile_s, "step_s_median": step_s, "step_s_all": times,
      "samples_per_s": args.batch / step_s, "gflop_per_step": flops / 1e9,
      "achieved_gflops": achieved, "matmul_peak_gflops": peak,
      "fraction_of_peak": achieved / peak,
  }


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=3)
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
  result = benchmark(args)
  rows = [("device", result["device"]), ("parameters", f"{result['parameters']:,}"),
          ("compile (s)", f"{result['compile_s']:.2f}"),
          ("train step, median (s)", f"{result['step_s_median']:.3f}"),
          ("samples/s", f"{result['samples_per_s']:.3f}"),
          ("GFLOP per step (XLA)", f"{result['gflop_per_step']:.1f}"),
          ("achieved GFLOP/s", f"{result['achieved_gflops']:.1f}"),
          ("matmul peak GFLOP/s", f"{result['matmul_peak_gflops']:.1f}"),
          ("fraction of peak", f"{result['fraction_of_peak']:.3f}")]
  print(f"Fusformer train step, batch {args.batch}, {args.size}x{args.size}, {args.bands} bands, "
        f"x{args.scale}, attention={args.attention}")
  for name, value in rows:
    print(f"  {name:<26}{value}")
  if args.json:
    with open(args.json, "w") as stream:
      json.dump(result, stream, indent=2)
  return 0


if __name__ == "__main__":
  sys.exit(main())
