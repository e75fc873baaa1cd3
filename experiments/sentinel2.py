"""Sentinel-2 band sharpening (DSen2 by default): the six 20 m bands (B5 B6 B7 B8A B11 B12)
fused with the four 10 m bands (B2 B3 B4 B8) into the six bands at 10 m. The network corrects
MTF-GLP (data.base_estimate), so that it starts from the classical fusion.

Trained and evaluated under the Wald protocol at reduced resolution (40 m + 20 m -> 20 m, every
band degraded by its own MTF), applied at full resolution with --mode=predict, or first
adapted to the user's scene (self-supervised, on its own reduced-resolution version) and then
applied, with --mode=adapt:
  python -m fusionjax.main --config=experiments/sentinel2.py --workdir=runs/s2 --mode=adapt \
      --config.predict.input=<scene> --config.predict.output=<folder>

Variants (comma-separated, e.g. --config=experiments/sentinel2.py:smoke):
  (none)   a procedural scene (480 x 480 pixels at 10 m), or the scenes of --config.data.dir:
           a MATLAB v7.3 file such as ../shared/data/sentinel2/S2A_MSIL1C_20170527_T33UUB.mat
           (or the folder holding it), a folder of band files (JP2 or GeoTIFF, one per band),
           a Sentinel-2 SAFE product (L1C or L2A, the .SAFE folder or its .zip as downloaded),
           a folder of such scenes, or a comma-separated list of these and of procedural
           scenes 'procedural:<landscape>' (mixed, water, arid, urban, snow, hazy): one model
           trained on all, evaluated per scene and pooled.
  60m      the two 60 m bands (B1 B9) sharpened to 10 m by the 10 m and 20 m bands (factor 6;
           trained 360 m -> 60 m; a procedural scene of 600 x 600 pixels).
  smoke    a tiny end-to-end run, for tests.
  model=<name>  the network (fusionjax.models): dsen2 (default) or vdsen2 (the residual CNN
           of Lanaras et al. 2018, 6 x 128 or 32 x 256), fusformer (published size).
"""
import ml_collections
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from fusionjax.variants import parse_variants, sibling

common = sibling(__file__, "common")
VARIANTS = ("60m", "smoke")


def get_config(arg: str | None = None):
  variants, options = parse_variants(arg, VARIANTS, "experiments/sentinel2.py")
  config = common.get_config("sentinel2", "sentinel2_fusion")

  config.data.dir = ""                # scene(s), see above; '' = procedural:mixed
  config.data.bands = "20m"           # the bands sharpened: '20m' or '60m'
  config.data.procedural_size = 480   # pixels at 10 m (a multiple of 6)
  # Right-hand strips: validation, then test (data.val_fraction and data.test_fraction of
  # experiments/common.py), each split_gap columns (one tile, 640 m) from the part before it.
  config.data.split_gap = 32
  config.data.tile_size = 32          # pixels of the target bands' grid (20 m)
  # What the network corrects: 'mtf_glp' (the classical fusion, fitted on each tile, so that
  # the untrained network is MTF-GLP) or 'bicubic' (as published).
  config.data.base_estimate = "mtf_glp"
  # Random per-band gain exp(N(0, s)) and offset N(0, s) of each training tile (standardised
  # units): robustness to the brightness and calibration of other scenes; 0 = none.
  config.data.radiometric_jitter = 0.0
  config.data.train_stride = 8

  # The network (see experiments/jwst.py for Fusformer's attention settings). DSen2's 1.1 s
  # a step (batch 16, this 2-core CPU) lets --mode=adapt finish a 600 x 600 scene in minutes.
  common.set_model(config, options.get("model", "dsen2"),
                   data_arguments=("out_bands", "scale_factor"))

  config.train.num_steps = 1500

  config.predict.tile_overlap = 8
  config.predict.tile_size = 64  # output (10 m) pixels per tile
  # predict.input: a .mat scene, a folder of band files or a SAFE product (L1C or L2A, the
  # .SAFE folder or its .zip); predict.output: folder for the 10 m GeoTIFF and its quicklook.
  # predict.window: the part of the scene sharpened, '' = all of it; 'row0,col0,rows,cols'
  # (pixels of the 10 m grid) or 'bounds:minx,miny,maxx,maxy' (the scene's CRS, e.g. UTM
  # metres), widened to whole 60 m pixels; the GeoTIFF is georeferenced at the window.
  config.predict.window = ""
  # Scale each band's correction of the base estimate by the weight in [0, 1] fitted on the
  # scene's own reduced-resolution version (0 where the network would only harm that scene).
  config.predict.fit_correction = True

  # --mode=adapt: fine-tune on predict.input's own reduced-resolution version, then sharpen it.
  config.adapt = ml_collections.ConfigDict()
  config.adapt.steps = 300
  config.adapt.learning_rate = 3e-4
  config.adapt.val_fraction = 0.2     # right-hand strip of the scene held out to report on
  config.adapt.from_scratch = False   # True: a new network, not the one of --workdir

  if "60m" in variants:
    config.name = "sentinel2_60m"
    config.data.bands = "60m"
    config.data.procedural_size = 600
    config.data.tile_size = 24          # 60 m pixels: 4 x 4 of the 360 m input
    config.data.train_stride = 6
    # One 360 m input pixel between the parts: a tile's gap would leave the 100 x 100 pixels
    # (60 m) of a real tile no training column.
    config.data.split_gap = 6
    config.predict.tile_size = 72       # 10 m pixels
    config.predict.tile_overlap = 12
  if "smoke" in variants:
    common.smoke(config)
    config.data.procedural_size = 132
    config.data.val_fraction = 0.25
    config.data.test_fraction = 0.25
    config.data.split_gap = 2
    config.data.tile_size = 16
    config.predict.tile_overlap = 4
    config.predict.tile_size = 32
    config.adapt.steps = 4
    if "60m" in variants:
      config.data.procedural_size = 216   # 36 x 36 pixels at 60 m
      config.data.split_gap = 0           # (a tiny scene: strips of one tile, no gap)
      config.data.tile_size = 12
      config.data.train_stride = 6
      config.predict.tile_size = 36
      config.predict.tile_overlap = 6
  return config


def get_search_space(arg: str | None = None) -> dict:
  """What `python -m fusionjax.tune` searches (selected on the validation strips' L1): the
  learning rate, DSen2's depth and width, and the weight of the radiometric augmentation."""
  del arg
  return {"train.learning_rate": FloatDistribution(1e-4, 3e-3, log=True),
          "model.num_blocks": IntDistribution(2, 8),
          "model.features": CategoricalDistribution([32, 64, 128]),
          "data.radiometric_jitter": FloatDistribution(0.0, 0.2)}
