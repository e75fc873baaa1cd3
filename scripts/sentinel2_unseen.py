"""Sentinel-2 sharpening on a region or a land cover no model saw: a leave-one-region-out
(or leave-one-landscape-out) check under Wald's protocol, with the experiment's own commands
in between.

  python scripts/sentinel2_unseen.py make --scene=../shared/data/sentinel2 --out=runs/unseen
      train.mat  the scene's rows above --train_rows, to train on as any scene;
      user.mat   the rows from --train_rows + --gap on, every band degraded by 2 through its
                 MTF (grids aligned as in L1C): a user's scene one scale down;
      truth.npz  the real 20 m bands of those rows, what sharpening user.mat should give.
  python scripts/sentinel2_unseen.py make --landscape=snow --out=runs/unseen/snow
      user.mat and truth.npz of a whole procedural scene of that landscape
      (fusionjax.data.sentinel2.procedural.LANDSCAPES; --size pixels at 10 m, --seed).
  python -m fusionjax.main --config=experiments/sentinel2.py --workdir=runs/unseen/trained \\
      --config.data.dir=runs/unseen/train.mat
  python -m fusionjax.main ... --mode=predict (or --mode=adapt) \\
      --config.predict.input=runs/unseen/user.mat --config.predict.output=runs/unseen/out
  python scripts/sentinel2_unseen.py score --out=runs/unseen \\
      --product=runs/unseen/out/user_sharpened_10m.tif
      RMSE per band of the product against truth.npz beside bicubic, GSA and MTF-GLP of
      user.mat, and bicubic's RMSE over each method's.
"""
from __future__ import annotations

import argparse
import json
import os

import jax.numpy as jnp
import numpy as np
import rasterio

from fusionjax.baselines import pansharpening
from fusionjax.data.sentinel2 import procedural as procedural_sentinel2
from fusionjax.data.sentinel2 import reader as sentinel2
from fusionjax.data.sentinel2 import scene as sentinel2_scene
from fusionjax.physics import sampling
from fusionjax.tasks.fusion import BASE_WINDOW

BANDS = sentinel2.BANDS_10M + sentinel2.BANDS_20M + sentinel2.BANDS_60M


def _rows(scene: sentinel2.Scene, first: int, last: int) -> dict:
  """The bands of 10 m rows [first, last) (multiples of 6, so every band's grid is cut on a
  pixel edge)."""
  return {name: image[first * 10 // sentinel2.BANDS[name].resolution_m:
                      last * 10 // sentinel2.BANDS[name].resolution_m]
          for name, image in scene.bands.items()}


def make(args) -> None:
  if bool(args.scene) == bool(args.landscape):
    raise ValueError("make: give either --scene (a real scene, split by rows) or --landscape "
                     "(a procedural scene, all of it unseen)")
  os.makedirs(args.out, exist_ok=True)
  if args.landscape:
    unseen = procedural_sentinel2.make_scene(args.size, args.seed, args.landscape).bands
    described = f"the procedural {args.landscape} scene (seed {args.seed})"
  else:
    scene = sentinel2.read_scene(args.scene, BANDS)
    height = scene.bands["B2"].shape[0]
    first = args.train_rows + args.gap
    if args.train_rows % 12 or first % 12 or (height - first) % 12:
      raise ValueError(f"--train_rows={args.train_rows} and --gap={args.gap}: expected "
                       "multiples of 12 (10 m rows) that leave a multiple of 12 below")
    sentinel2.write_mat(os.path.join(args.out, "train.mat"), _rows(scene, 0, args.train_rows))
    unseen = _rows(scene, first, height)
    described = f"rows {first}-{height} (train.mat: rows 0-{args.train_rows})"
  degraded = sentinel2_scene.wald_degraded(unseen, 2)
  sentinel2.write_mat(os.path.join(args.out, "user.mat"), degraded)
  np.savez(os.path.join(args.out, "truth.npz"),
           truth=np.stack([unseen[n] for n in sentinel2.BANDS_20M], axis=-1))
  print(f"user.mat: {described} degraded by 2 ({degraded['B2'].shape[0]} x "
        f"{degraded['B2'].shape[1]} at 10 m)")


def score(args) -> dict:
  truth = np.load(os.path.join(args.out, "truth.npz"))["truth"]
  user = sentinel2.read_scene(os.path.join(args.out, "user.mat"), BANDS)
  sharpening = sentinel2_scene.SHARPENINGS["20m"]
  lr, hr, valid = sentinel2_scene.full_resolution_inputs(user, sharpening)
  mtf = [sentinel2.BANDS[n].mtf_at_nyquist for n in sharpening.targets]
  with rasterio.open(args.product) as source:
    product = np.moveaxis(source.read(), 0, -1)
  # The local MTF-GLP the network corrects, on the inputs standardised as the network's.
  coding, hr_mean, hr_scale = sentinel2_scene.standardisation(
      lr, sentinel2.valid_at_coarser(valid, 2), hr, valid)
  local = pansharpening.mtf_glp(coding.encode(lr), (hr - hr_mean) / hr_scale, 2, mtf,
                                BASE_WINDOW)
  estimates = {"model": product,
               "bicubic": np.asarray(sampling.upsample_bicubic(jnp.asarray(lr), 2)),
               "gsa": pansharpening.gsa(lr, hr, 2, mtf),
               "mtf_glp": pansharpening.mtf_glp(lr, hr, 2, mtf),
               "mtf_glp_local": np.asarray(coding.decode(local))}
  report = {}
  for method, estimate in estimates.items():
    per_band = np.sqrt(np.mean((estimate - truth)[valid] ** 2, axis=0))
    report[method] = {"rmse": float(np.sqrt(np.mean(per_band ** 2))),
                      "per_band": dict(zip(sharpening.targets, per_band.round(2).tolist()))}
  for method in estimates:
    report[method]["bicubic_over_this"] = report["bicubic"]["rmse"] / report[method]["rmse"]
  print(f"{'method':<14}{'RMSE':>9}{'bicubic/':>10}" + "".join(f"{b:>8}"
                                                          for b in sharpening.targets))
  for method, values in report.items():
    print(f"{method:<14}{values['rmse']:>9.2f}{values['bicubic_over_this']:>9.2f}x"
          + "".join(f"{v:>8.1f}" for v in values["per_band"].values()))
  if args.json:
    with open(args.json, "w") as sink:
      json.dump(report, sink, indent=1)
  return report


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  commands = parser.add_subparsers(dest="command", required=True)
  made = commands.add_parser("make", help="write train.mat, user.mat and truth.npz")
  made.add_argument("--scene", default="", help="a Sentinel-2 scene (.mat or band files)")
  made.add_argument("--landscape", default="", help="or a procedural scene of this landscape")
  made.add_argument("--out", required=True)
  made.add_argument("--train_rows", type=int, default=264, help="10 m rows to train on")
  made.add_argument("--gap", type=int, default=48, help="10 m rows left out between them")
  made.add_argument("--size", type=int, default=600, help="procedural: 10 m pixels a side")
  made.add_argument("--seed", type=int, default=101, help="procedural: its seed")
  scored = commands.add_parser("score", help="score a sharpened user.mat against truth.npz")
  scored.add_argument("--out", required=True)
  scored.add_argument("--product", required=True, help="the sharpened GeoTIFF of user.mat")
  scored.add_argument("--json", default="", help="also write the figures here")
  args = parser.parse_args()
  {"make": make, "score": score}[args.command](args)


if __name__ == "__main__":
  main()
