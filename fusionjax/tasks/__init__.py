"""Tasks: what the generic trainer trains.

A task owns its data and model and gives the trainer pure functions:
  init_params(rng) -> params
  loss_fn(params, batch) -> (loss, metrics)           batch: dict of global jax.Arrays
  eval_fn(params, batch) -> dict of weighted sums      (with 'weight', the example count)
  apply(params, *inputs) -> outputs                    for whole-scene prediction
and host-side methods: train_batches, eval_batches, predict_validation (the held-out
prediction), evaluate(prediction) and write_products(prediction, out_dir).
"""
from __future__ import annotations


def get_task(config, workdir: str):
  """The task named by config.task, with its data prepared."""
  if config.task == "jwst_fusion":
    from fusionjax.data.jwst import scene as jwst_scene
    from fusionjax.tasks import fusion
    return fusion.FusionTask(config, workdir, prepare_scene=jwst_scene.prepare_jwst_scene)
  if config.task == "sentinel2_fusion":
    from fusionjax.tasks import sentinel2
    return sentinel2.Sentinel2Task(config, workdir)
  if config.task == "modis_lst":
    from fusionjax.tasks import lst
    return lst.LstTask(config, workdir)
  if config.task == "sentinel2_koopman":
    from fusionjax.tasks import koopman
    return koopman.KoopmanTask(config, workdir)
  raise ValueError(f"task={config.task!r}: expected one of 'jwst_fusion', "
                   "'sentinel2_fusion', 'modis_lst', 'sentinel2_koopman'")
