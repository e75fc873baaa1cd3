"""--mode=predict over the user's inputs: a batch that never stops at one bad file.

Every input the task lists (`Task.predict_sources`, e.g. the GeoTIFFs of a folder) is
processed on its own (`Task.predict_input`). One that cannot be (unreadable, wrong shape, a
missing companion file) is logged with its reason and listed as skipped, and the batch goes
on; predict.strict=True stops at the first instead. <predict.output>/predict_report.json,
rewritten after every input, lists what was done (with each input's outputs and details)
and what was skipped and why; the command exits non-zero when anything was skipped.
"""
from __future__ import annotations

import logging
import os

from fusionjax import products, progress
from fusionjax.tasks.base import PredictFn, Task

REPORT_NAME = "predict_report.json"


def predict_all(task: Task, predict: PredictFn, batch_size: int, settings) -> dict:
  """Predicts every input of `task.predict_sources()` with `task.predict_input`; returns the
  report it writes to <settings.output>/predict_report.json: {'checkpoint_step', 'done':
  [{'input', 'outputs', ...details}], 'skipped': [{'input', 'reason'}]}. With
  settings.strict, the first input that cannot be processed raises its error."""
  sources = task.predict_sources()
  report = {"checkpoint_step": task.checkpoint_step, "done": [], "skipped": []}
  report_path = os.path.join(settings.output, REPORT_NAME)
  for source in progress.counted(sources, "Predicting", unit="inputs"):
    try:
      result = task.predict_input(predict, batch_size, source)
    except (ValueError, OSError) as error:
      if settings.get("strict", False):
        raise
      logging.error("Skipped %s: %s", source, error)
      report["skipped"].append({"input": source, "reason": str(error)})
    else:
      for path in result["outputs"]:
        logging.info("Wrote %s", path)
      report["done"].append({"input": source, **result})
    products.write_json(report_path, report)
  logging.info("Predicted %d of %d input(s)%s; the list: %s", len(report["done"]),
               len(sources), f", skipped {len(report['skipped'])}" if report["skipped"] else "",
               report_path)
  return report
