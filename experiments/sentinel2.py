"""Sentinel-2 band sharpening (Fusformer by default): the six 20 m bands (B5 B6 B7 B8A B11
B12) fused with the four 10 m bands (B2 B3 B4 B8) into the six bands at 10 m.

Trained and evaluated under the Wald protocol at reduced resolution (40 m + 20 m -> 20 m, every
band degraded by its own MTF), applied at full resolution with --mode=predict.

Variants (comma-separated, e.g. --config=experiments/sentinel2.py:smoke):
  (none)   a procedural scene (264 x 264 pixels at 10 m), or the scene of --config.data.dir:
           a MATLAB v7.3 file such as ../shared/data/sentinel2/S2A_MSIL1C_20170527_T33UUB.mat
           (or the folder holding it), or a folder of band files (JP2 or GeoTIFF, one per band).
  60m      the two 60 m bands (B1 B9) sharpened to 10 m by the 10 m and 20 m bands (factor 6;
           trained 360 m -> 60 m; a procedural scene of 600 x 600 pixels).
  smoke    a tiny end-to-end run, for tests.
  model=<name>  the network (fusionjax.models): fusformer (default, published size), dsen2 or
           vdsen2 (the residual CNN of Lanaras et al. 2018, 6 x 128 or 32 x 256).
"""
from fusionjax.variants import parse_variants, sibling

common = sibling(__file__, "common")
VARIANTS = ("60m", "smoke")


def get_config(arg: str | None = None):
  variants, options = parse_variants(arg, VARIANTS, "experiments/sentinel2.py")
  config = common.get_config("sentinel2", "sentinel2_fusion")

  config.data.dir = ""                # a .mat scene or a folder of band files; '' = procedural
  config.data.bands = "20m"           # the bands sharpened: '20m' or '60m'
  config.data.procedural_size = 264   # pixels at 10 m (a multiple of 6)
  config.data.val_fraction = 0.25     # right-hand strip held out for evaluation
  config.data.tile_size = 32          # pixels of the target bands' grid (20 m)
  config.data.train_stride = 8

  # The network (see experiments/jwst.py for Fusformer's attention settings).
  common.set_model(config, options.get("model", "fusformer"),
                   data_arguments=("out_bands", "scale_factor"))

  config.train.num_steps = 1500

  config.predict.tile_overlap = 8
  config.predict.tile_size = 64  # output (10 m) pixels per tile
  # predict.input: a .mat scene or a folder of band files; predict.output: folder for the 10 m
  # GeoTIFF and its quicklook.

  if "60m" in variants:
    config.name = "sentinel2_60m"
    config.data.bands = "60m"
    config.data.procedural_size = 600
    config.data.tile_size = 24          # 60 m pixels: 4 x 4 of the 360 m input
    config.data.train_stride = 6
    config.predict.tile_size = 72       # 10 m pixels
    config.predict.tile_overlap = 12
  if "smoke" in variants:
    common.smoke(config)
    config.data.procedural_size = 96
    config.data.val_fraction = 0.34
    config.data.tile_size = 16
    config.predict.tile_overlap = 4
    config.predict.tile_size = 32
    if "60m" in variants:
      config.data.procedural_size = 216   # 36 x 36 pixels at 60 m
      config.data.tile_size = 12
      config.data.train_stride = 6
      config.predict.tile_size = 36
      config.predict.tile_overlap = 6
  return config
