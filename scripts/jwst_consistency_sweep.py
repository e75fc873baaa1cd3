"""The JWST data-consistency step's settings, scored on the validation strip of a trained run.

  python scripts/jwst_consistency_sweep.py --workdir=runs/jwst \
      --weights=0.1,0.3,1,3 --smoothness=0,1 --iterations=10,30,100

prints, for every (predict.consistency_weight, consistency_smoothness,
consistency_iterations), the PSNR, SAM, ERGAS and SSIM of the product on the validation strip
beside the network's own output and the model-based fusion it corrects (its smoothness chosen
by the discrepancy principle); the defaults of experiments/jwst.py were chosen so. The test
strip is never read.
"""
from __future__ import annotations

import argparse
import itertools

import numpy as np

import fusionjax
from fusionjax import metrics
from fusionjax.tasks.fusion_strips import decoded_cube

FIGURES = ("psnr", "sam_deg", "ergas", "ssim")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True, help="a trained JWST run")
  parser.add_argument("--weights", default="0.1,0.3,1,3",
                      help="comma-separated predict.consistency_weight values")
  parser.add_argument("--smoothness", default="0,1",
                      help="comma-separated predict.consistency_smoothness values")
  parser.add_argument("--iterations", default="10,30,100",
                      help="comma-separated predict.consistency_iterations values")
  args = parser.parse_args()
  model = fusionjax.load(args.workdir)
  task, scene = model.task, model.task.scene
  strip = scene.strip("validation")
  truth = np.moveaxis(strip.truth, 0, -1)

  def figures(codes: np.ndarray) -> str:
    report = metrics.pooled_fusion_report(
        [truth], [np.moveaxis(decoded_cube(scene, codes), 0, -1)], scene.scale_factor,
        [strip.valid])
    return "".join(f"{report[name]:>10.4g}" for name in FIGURES)

  network = task.network_codes(model._predict, model._batch_size, strip)  # noqa: SLF001
  data = task.inversion.observations(*task.inversion.strip_observations(strip))
  discrepancy = task.inversion.discrepancy(data)
  print(f"{'weight':>8}{'smooth':>8}{'iters':>7}" + "".join(f"{name:>10}" for name in FIGURES))
  print(f"{'network':>23}" + figures(network), flush=True)
  print(f"{'model-based (chi^2)':>23}" + figures(discrepancy.codes), flush=True)
  settings = task.config.predict
  numbers = lambda text, kind: [kind(value) for value in text.split(",")]  # noqa: E731
  for weight, smoothness, iterations in itertools.product(
      numbers(args.weights, float), numbers(args.smoothness, float),
      numbers(args.iterations, int)):
    settings.consistency_weight, settings.consistency_smoothness = weight, smoothness
    settings.consistency_iterations = iterations
    print(f"{weight:>8g}{smoothness:>8g}{iterations:>7d}"
          + figures(task.inversion.consistent_codes(data, network, discrepancy.weight)),
          flush=True)


if __name__ == "__main__":
  main()
