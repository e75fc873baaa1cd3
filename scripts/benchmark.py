"""Training-step benchmark: compile time (cold and from the persistent cache), step time,
samples/s, GFLOP/s, peak ratio.

  python scripts/benchmark.py                       # Fusformer, published size: batch 3, 64x64,
                                                    # 31 bands, x4
  python scripts/benchmark.py --model=mrunet        # LST U-Net, batch 24 of 64x64, x4 (sisr)
  python scripts/benchmark.py --model=mrunet --variant=disr
  python scripts/benchmark.py --model=koopman       # Koopman autoencoder, 512 windows x 101
                                                    # steps of 10 bands, every step observed
                                                    # (--sampled_steps=26: 26 of them)
  python scripts/benchmark.py --model=assimilation  # one assimilation iteration, 100x100
                                                    # pixels x 243 dates (--observed_fraction,
                                                    # --dates_per_iteration)
  python scripts/benchmark.py --model=pipeline --config=experiments/sentinel2.py \
      --workdir=runs/s2 [--data_dir=...]            # an experiment's input pipeline against
                                                    # its trainer's consumption
  python scripts/benchmark.py --model=fusformer_memory [--attention=xla]
                                                    # peak memory at 32, 64, 128 pixels a side
  python scripts/benchmark.py --model=all           # the four models above in one table, each
                                                    # beside the input pipeline of the
                                                    # experiment that trains it
  python scripts/benchmark.py --json=bench.json     # also save the figures
  python scripts/benchmark.py --dtype=bfloat16      # mixed precision (GPU/TPU); the peak is
                                                    # then measured in bfloat16 too

FLOPs come from XLA's cost analysis (for Fusformer, of the same step with dense ('xla')
attention, which has no loops (the cost analysis counts a loop body once); chunked attention does the same
arithmetic plus a recomputation that is not counted, so the GFLOP/s figure is conservative.
The matrix-multiply peak is measured in the same run on the same device, in the compute dtype:
on an accelerator its fraction is the model FLOP utilisation (MFU) against the measured peak.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import optax
from jax.experimental.compilation_cache import compilation_cache

from fusionjax import assimilation, atomic, parallel, tasks, train
from fusionjax.models.fusformer import Fusformer
from fusionjax.models.precision import compute_dtype
from fusionjax.data.series import procedural as procedural_phenology
from fusionjax.tasks.koopman import KoopmanObjective
from fusionjax.tasks.lst import LstObjective

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def experiment_config(path: str, variant: str, dtype: str = "float32"):
  """get_config(variant) of an experiment file, e.g. experiments/modis_lst.py, its model
  computing in `dtype`."""
  spec = importlib.util.spec_from_file_location("experiment", os.path.join(REPO, path))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(variant)
  config.model.dtype = dtype
  return config


def matmul_peak_gflops(dtype: str = "float32", size: int = 2048, repeats: int = 5) -> float:
  """Best-of-`repeats` matrix-multiply rate of `dtype` matrices, GFLOP/s."""
  a = jax.random.normal(jax.random.key(0), (size, size), dtype)
  b = jax.random.normal(jax.random.key(1), (size, size), dtype)
  matmul = jax.jit(jnp.matmul)
  matmul(a, b).block_until_ready()
  best = min(_timed(lambda: matmul(a, b).block_until_ready()) for _ in range(repeats))
  return 2 * size ** 3 / best / 1e9


def _device() -> str:
  return f"{jax.devices()[0].device_kind} x{jax.device_count()} ({platform.machine()})"


def _timed(fn) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def make_step(gradient_fn, optimizer):
  """The jitted training step (params, opt_state, *inputs) -> (params, opt_state, loss), its
  state donated; gradient_fn(params, *inputs) -> ((loss, aux), gradient)."""
  def step(params, opt_state, *inputs):
    (loss, _), grads = gradient_fn(params, *inputs)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss
  return jax.jit(step, donate_argnums=(0, 1))


def fusformer_gradient(model: Fusformer):
  """(params, lr, msi, truth) -> ((L1 loss, None), gradient)."""
  def loss_fn(params, lr, msi, truth):
    return jnp.mean(jnp.abs(model.apply(params, lr, msi) - truth)), None
  return jax.value_and_grad(loss_fn, has_aux=True)


def _compile(jitted, *args) -> tuple[object, float, float]:
  """(compiled, seconds to compile cold, seconds to compile again from the persistent
  compilation cache, with JAX's in-memory caches cleared)."""
  start = time.perf_counter()
  compiled = jitted.lower(*args).compile()
  cold_s = time.perf_counter() - start
  jax.clear_caches()
  start = time.perf_counter()
  jitted.lower(*args).compile()
  return compiled, cold_s, time.perf_counter() - start


def _memory_mb(compiled) -> float:
  """Device memory a compiled program needs at its peak, by XLA's memory analysis: its
  arguments, outputs (less those written in place of donated arguments) and temporaries, MB."""
  m = compiled.memory_analysis()
  return (m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
          + m.temp_size_in_bytes) / 1e6


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


def _objective_figures(objective, batch: dict, learning_rate: float, args) -> dict:
  """Compiles and times a task objective's training step (its loss and gradient, as the
  trainer takes them, and Adam) on `batch`."""
  optimizer = optax.adam(learning_rate)
  params = objective.init_params(jax.random.key(2))
  opt_state = optimizer.init(params)

  compiled, compile_s, cached_s = _compile(
      make_step(train.loss_and_gradient(objective), optimizer), params, opt_state, batch)
  # XLA's cost analysis counts a loop's body once: a gradient taken a chunk at a time in a
  # scan is counted on the same step without chunks (the same arithmetic).
  counted = compiled if not hasattr(objective, "loss_and_gradient") else make_step(
      jax.value_and_grad(objective.loss_fn, has_aux=True), optimizer).lower(
          params, opt_state, batch).compile()
  parameters = int(sum(x.size for x in jax.tree.leaves(params)))
  return {"parameters": parameters, "compile_s": compile_s, "compile_cached_s": cached_s,
          "memory_mb": _memory_mb(compiled),
          "step_s_all": _time_steps(compiled, params, opt_state, (batch,), args),
          "gflop_per_step": _cost_gflop(counted)}


def benchmark_mrunet(args) -> tuple[dict, dict]:
  """The LST experiment's training step (its loss, model and optimizer) on random tiles."""
  config = experiment_config("experiments/modis_lst.py", args.variant, args.dtype)
  objective = LstObjective(config)
  t = config.data.tile_size
  tiles = {"lst": 290.0 + 10.0 * jax.random.uniform(jax.random.key(0), (args.batch, t, t, 1)),
           "ndvi": jax.random.uniform(jax.random.key(1), (args.batch, t, t, 1)),
           "reflectance": jax.random.uniform(jax.random.key(3), (args.batch, t, t, 3)),
           "climatology": jax.random.uniform(jax.random.key(4), (args.batch, t, t, 2))}
  described = {"model": "mrunet", "variant": args.variant or "sisr", "batch": args.batch,
               "size": t, "scale": config.data.scale_factor,
               "widths": list(config.model.widths)}
  return described, _objective_figures(objective, tiles, config.train.learning_rate, args)


def _koopman_objective(variant: str, dtype: str) -> tuple:
  """(config, bands, objective) of experiments/sentinel2_koopman.py:variant computing in
  `dtype`."""
  config = experiment_config("experiments/sentinel2_koopman.py", variant, dtype)
  channels = 1 if config.data.quantity == "ndvi" else len(procedural_phenology.BANDS)
  return config, channels, KoopmanObjective(config, channels)


def benchmark_koopman(args) -> tuple[dict, dict]:
  """The Koopman experiment's training step (its loss, model and optimizer) on random windows
  of which every step is observed (the published, gap-filled setting); with
  args.sampled_steps, on their start and sampled_steps - 1 random other steps, as
  data.sampled_steps gives."""
  config, channels, objective = _koopman_objective(args.variant, args.dtype)
  steps = config.data.window_steps
  kept = args.sampled_steps or steps
  later = jnp.sort(jax.vmap(lambda key: jax.random.choice(key, jnp.arange(1, steps), (kept - 1,),
                                                          replace=False))(
      jax.random.split(jax.random.key(1), args.batch)), axis=1)
  windows = {"state": 0.1 * jax.random.normal(jax.random.key(0), (args.batch, kept,
                                                                   2 * channels)),
             "offset": jnp.concatenate([jnp.zeros((args.batch, 1), later.dtype), later], 1),
             "mask": jnp.ones((args.batch, kept))}
  described = {"model": "koopman", "variant": args.variant or "reflectance",
               "batch": args.batch, "window_steps": steps, "states_per_window": kept,
               "bands": channels}
  return described, _objective_figures(objective, windows, config.train.learning_rate, args)


def benchmark_assimilation(args) -> tuple[dict, dict]:
  """Assimilation iterations (Adam on every pixel's initial latent state) with the Koopman
  experiment's model (untrained weights: the cost does not depend on them): args.size^2
  pixels, args.dates dates of which a seeded args.observed_fraction is observed."""
  config, channels, objective = _koopman_objective(args.variant, args.dtype)
  params = objective.init_params(jax.random.key(0))
  pixels = args.size * args.size
  settings = assimilation.Settings(**{**config.assimilation[args.settings].to_dict(),
                                      "iterations": args.steps, "log_every": 0,
                                      "dates_per_iteration": args.dates_per_iteration})
  segments = assimilation.segment_count(args.dates, settings.segment_steps)
  observed = jax.random.uniform(jax.random.key(1), (pixels, args.dates)) < args.observed_fraction
  inputs = (0.1 * jax.random.normal(jax.random.key(2), (pixels, args.dates, channels)),
            jnp.broadcast_to(jnp.arange(args.dates), (pixels, args.dates)),
            observed.astype(jnp.float32),
            jax.random.normal(jax.random.key(3), (pixels, segments, config.model.latent_dim
                                                  if settings.control == "latent"
                                                  else 2 * channels)),
            jnp.asarray(assimilation.grid_neighbours(args.size, args.size)))
  problem = lambda observations, steps, mask, start, neighbours: assimilation.Problem(
      observations, steps, mask, start, neighbours, args.dates)
  # The control is the result (the task does not compute the final misfit).
  run = jax.jit(lambda *a: assimilation.assimilate(objective.model, params, problem(*a),
                                                   settings)[0])
  compiled, compile_s, cached_s = _compile(run, *inputs)
  # An iteration's arithmetic: the cost's gradient (the loop body; Adam's update is negligible),
  # counted with every pixel in one chunk, as XLA's cost analysis counts a loop's body once.
  whole = dataclasses.replace(settings, chunk_rows=pixels * args.dates)
  gradient = jax.jit(lambda control, *a: assimilation.value_and_gradient(
      objective.model, params, problem(*a), whole)(control, jax.random.key(0)))
  one = gradient.lower(inputs[3], *inputs).compile()
  times = []
  for i in range(args.warmup + 3):
    start = time.perf_counter()
    compiled(*inputs).block_until_ready()
    if i >= args.warmup:
      times.append((time.perf_counter() - start) / args.steps)
  start_s = 0.0
  if settings.start == "mean_state":    # every observed state encoded and carried back
    states = 0.1 * jax.random.normal(jax.random.key(4), (pixels, args.dates, 2 * channels))
    start = jax.jit(lambda *a: assimilation.mean_background(objective.model, params, *a))
    start_inputs = (states, inputs[1], inputs[2],
                    jnp.zeros((pixels, config.model.latent_dim)))
    start(*start_inputs).block_until_ready()
    start_s = statistics.median(_timed(lambda: start(*start_inputs).block_until_ready())
                                for _ in range(3))
  described = {"model": "assimilation", "variant": args.variant or "reflectance",
               "pixels": pixels, "dates": args.dates, "bands": channels,
               "observed_fraction": args.observed_fraction, "iterations_timed": args.steps,
               "settings": args.settings, "control": settings.control,
               "dates_per_iteration": settings.dates_per_iteration}
  return described, {"parameters": int(sum(x.size for x in jax.tree.leaves(params))),
                     "compile_s": compile_s, "compile_cached_s": cached_s,
                     "memory_mb": _memory_mb(compiled), "step_s_all": times,
                     "gflop_per_step": _cost_gflop(one), "start_s": start_s,
                     "iterations_per_assimilation": config.assimilation[args.settings].iterations}


def _fusformer_shapes(args, size: int) -> tuple[tuple[int, ...], ...]:
  """Shapes of the low-resolution cube, the MSI and the truth of a batch of size x size tiles."""
  low = size // args.scale
  return ((args.batch, low, low, args.bands), (args.batch, size, size, args.msi_bands),
          (args.batch, size, size, args.bands))


def benchmark_fusformer(args) -> tuple[dict, dict]:
  """Fusformer's training step (L1 loss, Adam) on random tiles."""
  model_kwargs = {"out_bands": args.bands, "scale_factor": args.scale}
  lr, msi, truth = (jax.random.uniform(jax.random.key(i), shape)
                    for i, shape in enumerate(_fusformer_shapes(args, args.size)))
  optimizer = optax.adam(1e-3)
  model = Fusformer(**model_kwargs, attention=args.attention, query_chunk=args.query_chunk,
                    dtype=compute_dtype(args.dtype))
  params = model.init(jax.random.key(3), lr, msi)
  opt_state = optimizer.init(params)
  step = make_step(fusformer_gradient(model), optimizer)

  compiled, compile_s, cached_s = _compile(step, params, opt_state, lr, msi, truth)
  dense_step = make_step(fusformer_gradient(Fusformer(**model_kwargs, attention="xla",
                                                      dtype=compute_dtype(args.dtype))),
                         optimizer)
  gflop = _cost_gflop(dense_step.lower(params, opt_state, lr, msi, truth).compile())
  parameters = int(sum(x.size for x in jax.tree.leaves(params)))
  times = _time_steps(compiled, params, opt_state, (lr, msi, truth), args)
  described = {"model": "fusformer",
               **{k: getattr(args, k) for k in ("batch", "size", "bands", "msi_bands", "scale",
                                                "attention", "query_chunk")}}
  return described, {"parameters": parameters, "compile_s": compile_s,
                     "compile_cached_s": cached_s, "memory_mb": _memory_mb(compiled),
                     "step_s_all": times, "gflop_per_step": gflop}


def benchmark_pipeline(args) -> dict:
  """An experiment's input pipeline alone against its trainer's consumption: the examples/s
  that `task.train_batches` delivers on this process, and those the experiment's own
  training step (the trainer's `optimizer_step`, on every local device) consumes."""
  path, _, variant = args.config.partition(":")
  config = experiment_config(path, variant, args.dtype)
  with config.unlocked():
    config.data.dir = args.data_dir or config.data.dir
  task = tasks.get_task(config, args.workdir)   # prepares the data once, under args.workdir
  global_batch = config.train.batch_size
  batches = task.train_batches(start_step=0, global_batch_size=global_batch)
  for _ in range(args.warmup):
    next(batches)
  start = time.perf_counter()
  held = [next(batches) for _ in range(args.pipeline_batches)]
  pipeline_s = (time.perf_counter() - start) / args.pipeline_batches

  mesh = parallel.make_mesh()
  optimizer, _ = train.make_optimizer(config.train)
  state = train.replicated_initial_state(task, optimizer, mesh, config.seed)
  step = train.make_train_step(task, optimizer, mesh)
  times = []
  for i in range(args.warmup + args.steps):
    batch = parallel.global_batch(held[i % len(held)], mesh)
    start = time.perf_counter()
    state, metrics = step(state, batch)
    metrics["loss"].block_until_ready()
    if i >= args.warmup:
      times.append(time.perf_counter() - start)
  step_s = statistics.median(times)
  local_batch = len(next(iter(held[0].values())))
  return {"device": _device(),
          "config": {"experiment": args.config, "data_dir": config.data.dir or "procedural",
                     "global_batch": global_batch},
          "pipeline_examples_per_s": local_batch / pipeline_s,
          "trainer_examples_per_s": global_batch / step_s, "step_s_median": step_s,
          "ratio": (local_batch / pipeline_s) / (global_batch / step_s)}


def fusformer_memory(args) -> dict:
  """Peak temporary memory (XLA's memory analysis of the compiled programs, nothing run) of
  Fusformer's training step and inference at each tile size of args.memory_sizes."""
  rows = []
  for size in (int(x) for x in args.memory_sizes.split(",")):
    lr, msi, truth = (jax.ShapeDtypeStruct(shape, jnp.float32)
                      for shape in _fusformer_shapes(args, size))
    model = Fusformer(out_bands=args.bands, scale_factor=args.scale, attention=args.attention,
                      query_chunk=args.query_chunk)
    optimizer = optax.adam(1e-3)
    params = jax.eval_shape(model.init, jax.random.key(0), lr, msi)
    opt_state = jax.eval_shape(optimizer.init, params)
    train_mb = make_step(fusformer_gradient(model), optimizer).lower(
        params, opt_state, lr, msi, truth).compile().memory_analysis().temp_size_in_bytes / 1e6
    predict_mb = jax.jit(model.apply).lower(
        params, lr, msi).compile().memory_analysis().temp_size_in_bytes / 1e6
    rows.append({"size": size, "pixels": args.batch * size * size, "train_mb": train_mb,
                 "predict_mb": predict_mb})
  return {"device": _device(),
          "config": {"model": "fusformer", "attention": args.attention, "batch": args.batch,
                     "bands": args.bands, "msi_bands": args.msi_bands, "scale": args.scale},
          "sizes": rows}


BENCHMARKS = {"fusformer": benchmark_fusformer, "mrunet": benchmark_mrunet,
              "koopman": benchmark_koopman, "assimilation": benchmark_assimilation}
BATCH = {"fusformer": 3, "fusformer_memory": 3, "mrunet": 24, "koopman": 512,
         "assimilation": 1}
# The experiment that trains each model, whose input pipeline --model=all measures.
TRAINING_EXPERIMENTS = {"fusformer": "experiments/jwst.py", "mrunet": "experiments/modis_lst.py",
                        "koopman": "experiments/sentinel2_koopman.py"}


def _for_model(args, model: str) -> argparse.Namespace:
  """args for one model: its published batch and size unless --batch and --size are given."""
  return argparse.Namespace(**{
      **vars(args), "model": model,
      "batch": BATCH.get(model) if args.batch is None else args.batch,
      "size": (100 if model == "assimilation" else 64) if args.size is None else args.size})


def benchmark(args, peak_gflops: float | None = None) -> dict:
  """Figures of the chosen model's training step (or assimilation iteration) against the
  device's matrix-multiply peak (measured here unless given)."""
  described, figures = BENCHMARKS[args.model](args)
  step_s = statistics.median(figures["step_s_all"])
  peak = peak_gflops or matmul_peak_gflops(args.dtype)
  achieved = figures["gflop_per_step"] / step_s
  return {
      "device": _device(), "config": {**described, "dtype": args.dtype}, **figures,
      "step_s_median": step_s, "samples_per_s": args.batch / step_s,
      "achieved_gflops": achieved, "matmul_peak_gflops": peak,
      "fraction_of_peak": achieved / peak,
      **({"assimilation_s": figures["start_s"]
          + figures["iterations_per_assimilation"] * step_s}
         if args.model == "assimilation" else {}),
  }


def benchmark_all(args) -> dict:
  """Every model of BENCHMARKS at its published size against one matrix-multiply peak, each
  trained model beside the input pipeline of the experiment that trains it (its data prepared
  under args.workdir, or in a temporary folder)."""
  peak = matmul_peak_gflops(args.dtype)
  models = {}
  with tempfile.TemporaryDirectory(prefix="fusionjax-benchmark-data-") as scratch:
    for model in BENCHMARKS:
      print(f"Benchmarking {model} ...", file=sys.stderr, flush=True)
      model_args = _for_model(args, model)
      models[model] = benchmark(model_args, peak)
      if model in TRAINING_EXPERIMENTS:
        experiment = TRAINING_EXPERIMENTS[model] + (f":{args.variant}" if args.variant else "")
        models[model]["pipeline"] = benchmark_pipeline(argparse.Namespace(**{
            **vars(model_args), "config": experiment,
            "workdir": os.path.join(args.workdir or scratch, model)}))
  return {"device": _device(), "dtype": args.dtype, "matmul_peak_gflops": peak,
          "models": models}


def _with_empty_compilation_cache(directory: str, benchmark_fn, args) -> dict:
  """benchmark_fn(args) with the persistent compilation cache in the empty `directory` (so
  that the first compilation is cold) and caching every program; the settings are restored
  afterwards."""
  settings = {"jax_compilation_cache_dir": directory,
              "jax_persistent_cache_min_compile_time_secs": 0.0}
  previous = {name: getattr(jax.config, name) for name in settings}
  try:
    for name, value in settings.items():
      jax.config.update(name, value)
    return benchmark_fn(args)
  finally:
    for name, value in previous.items():
      jax.config.update(name, value)
    compilation_cache.reset_cache()   # forget the (soon deleted) directory


def _model_rows(result: dict) -> list[tuple[str, str]]:
  """(figure, value) rows of a `benchmark` result, and of its pipeline where it has one."""
  rows = [("parameters", f"{result['parameters']:,}"),
          ("compile, cold (s)", f"{result['compile_s']:.2f}"),
          ("compile, from the cache (s)", f"{result['compile_cached_s']:.2f}"),
          ("train step or iteration, median (s)", f"{result['step_s_median']:.3f}"),
          ("samples/s (assimilation: iterations/s)", f"{result['samples_per_s']:.3f}"),
          ("peak memory, XLA analysis (MB)", f"{result['memory_mb']:.1f}"),
          ("GFLOP per step (XLA)", f"{result['gflop_per_step']:.1f}"),
          ("achieved GFLOP/s", f"{result['achieved_gflops']:.1f}"),
          ("fraction of the matmul peak", f"{result['fraction_of_peak']:.3f}")]
  if "pipeline" in result:
    rows += _pipeline_rows(result["pipeline"])
  if "assimilation_s" in result:
    rows += [("iterations per assimilation (config)",
              str(result["iterations_per_assimilation"])),
             ("start, mean of the observed states (s)", f"{result['start_s']:.3f}"),
             ("one assimilation: start + iterations (s)", f"{result['assimilation_s']:.2f}")]
  return rows


def _pipeline_rows(result: dict) -> list[tuple[str, str]]:
  return [("pipeline, examples/s (this process)", f"{result['pipeline_examples_per_s']:.1f}"),
          ("its experiment's trainer, examples/s", f"{result['trainer_examples_per_s']:.1f}"),
          ("pipeline / trainer", f"{result['ratio']:.1f}")]


def _print_table(title: str, columns: dict[str, list[tuple[str, str]]]) -> None:
  """Prints rows of figures, one column of values per key of `columns` ('-' where a column
  lacks a row)."""
  names = list(dict.fromkeys(name for rows in columns.values() for name, _ in rows))
  values = {column: dict(rows) for column, rows in columns.items()}
  width = max(map(len, names)) + 2
  column_width = max(len(v) for rows in columns.values() for _, v in rows) + 2
  column_width = max(column_width, *(len(column) + 2 for column in columns))
  print(title)
  if len(columns) > 1:
    print(" " * (width + 2) + "".join(column.rjust(column_width) for column in columns))
  for name in names:
    print(f"  {name:<{width}}" + "".join(values[column].get(name, "-").rjust(column_width)
                                          for column in columns))


def _report(args, result: dict) -> None:
  """Prints `result` of args.model as a table."""
  if args.model == "all":
    _print_table(f"All models on {result['device']}, {result['dtype']}, matmul peak "
                 f"{result['matmul_peak_gflops']:.1f} GFLOP/s:",
                 {model: _model_rows(figures) for model, figures in result["models"].items()})
    return
  if args.model == "fusformer_memory":
    title = "Peak temporary memory (XLA memory analysis), MB: "
    rows = [(f"{row['size']} x {row['size']} ({row['pixels']:,} pixels): train, predict",
             f"{row['train_mb']:.1f}, {row['predict_mb']:.1f}  "
             f"({1e3 * row['train_mb'] / row['pixels']:.2f}, "
             f"{1e3 * row['predict_mb'] / row['pixels']:.2f} per 1000 pixels)")
            for row in result["sizes"]]
  elif args.model == "pipeline":
    title = "Input pipeline against the trainer: "
    rows = _pipeline_rows(result) + [("train step, median (s)", f"{result['step_s_median']:.3f}")]
  else:
    title = "Assimilation: " if args.model == "assimilation" else "Train step: "
    rows = [("matmul peak GFLOP/s", f"{result['matmul_peak_gflops']:.1f}"), *_model_rows(result)]
  title += ", ".join(f"{k}={v}" for k, v in result["config"].items())
  _print_table(title, {"": [("device", result["device"]), *rows]})


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", choices=(*BENCHMARKS, "all", "pipeline", "fusformer_memory"),
                      default="fusformer",
                      help="all: every model and its experiment's input pipeline (procedural "
                           "data, prepared under --workdir or a temporary folder); pipeline: an "
                           "experiment's input pipeline against its trainer (--config, "
                           "--workdir, --data_dir); fusformer_memory: peak memory at each of "
                           "--memory_sizes")
  parser.add_argument("--memory_sizes", default="32,64,128",
                      help="fusformer_memory: MSI tile sizes")
  parser.add_argument("--config", default="experiments/jwst.py",
                      help="pipeline: experiment file[:variants]")
  parser.add_argument("--workdir", default="",
                      help="pipeline: where the experiment's data is (or will be) prepared")
  parser.add_argument("--data_dir", default="", help="pipeline: the experiment's data.dir")
  parser.add_argument("--pipeline_batches", type=int, default=20,
                      help="pipeline: batches timed")
  parser.add_argument("--variant", default="",
                      help="experiment variant (modis_lst.py for mrunet, sentinel2_koopman.py "
                           "for koopman and assimilation; with --model=all, of every "
                           "experiment, e.g. smoke)")
  parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32",
                      help="the models' compute dtype (model.dtype); the matmul peak is "
                           "measured in it")
  parser.add_argument("--batch", type=int, default=None,
                      help="default: 3 (fusformer), 24 (mrunet), 512 windows (koopman): "
                           "as published")
  parser.add_argument("--size", type=int, default=None,
                      help="MSI tile size (fusformer, default 64) or image side in pixels "
                           "(assimilation, default 100)")
  parser.add_argument("--sampled_steps", type=int, default=0,
                      help="koopman: states per window (data.sampled_steps; 0: all)")
  parser.add_argument("--dates", type=int, default=243, help="assimilation: grid dates")
  parser.add_argument("--dates_per_iteration", type=int, default=0,
                      help="assimilation: observed dates fitted per pixel and iteration "
                           "(Settings.dates_per_iteration; 0: all)")
  parser.add_argument("--observed_fraction", type=float, default=1.0,
                      help="assimilation: fraction of (pixel, date) observed")
  parser.add_argument("--settings", choices=("gap_filling", "forecast"), default="gap_filling",
                      help="assimilation: which of the experiment's assimilation settings")
  parser.add_argument("--bands", type=int, default=31)
  parser.add_argument("--msi_bands", type=int, default=3)
  parser.add_argument("--scale", type=int, default=4)
  parser.add_argument("--attention", default="auto")
  parser.add_argument("--query_chunk", type=int, default=64)
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--json", default="", help="also write the figures to this JSON file")
  args = parser.parse_args(argv)
  if args.model == "pipeline" and not args.workdir:
    parser.error("--model=pipeline needs --workdir (where the experiment's data is prepared)")
  if args.model == "all" and args.data_dir:
    parser.error("--model=all prepares each experiment's procedural data: --data_dir names one "
                 "experiment's (use --model=pipeline for it)")
  if args.model != "all":
    args = _for_model(args, args.model)
  benchmark_fn = {"all": benchmark_all, "pipeline": benchmark_pipeline,
                  "fusformer_memory": fusformer_memory}.get(args.model, benchmark)
  with tempfile.TemporaryDirectory(prefix="fusionjax-benchmark-cache-") as cache:
    result = _with_empty_compilation_cache(cache, benchmark_fn, args)
  _report(args, result)
  if args.json:
    with atomic.atomic_path(args.json) as temporary, open(temporary, "w") as stream:
      json.dump(result, stream, indent=2)
  return 0


if __name__ == "__main__":
  sys.exit(main())
