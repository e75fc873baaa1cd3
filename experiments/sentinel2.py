"""Sentinel-2 band sharpening with Fusformer: the six 20 m bands (B5 B6 B7 B8A B11 B12) fused
with the four 10 m bands (B2 B3 B4 B8) into the six bands at 10 m.

Trained and evaluated under the Wald protocol at reduced resolution (40 m + 20 m -> 20 m, every
band degraded by its own MTF), applied at full resolution with --mode=predict.

Variants (comma-separated, e.g. --config=experiments/sentinel2.py:smoke):
  (none)   a procedural scene (240 x 240 pixels at 10 m), or the scene of --config.data.dir:
           a MATLAB v7.3 file such as ../shared/data/sentinel2/S2A_MSIL1C_20170527_T33UUB.mat
           (or the folder holding it), or a folder of band files (JP2 or GeoTIFF, one per band).
  60m      the two 60 m bands (B1 B9) sharpened to 10 m by the 10 m and 20 m bands (factor 6;
           trained 360 m -> 60 m; a procedural scene of 600 x 600 pixels).
  smoke    a tiny end-to-end run, for tests.
"""
import ml_collections

from fusionjax.variants import parse_variants

VARIANTS = ("60m", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variants = parse_variants(arg, VARIANTS, "experiments/sentinel2.py")

  config = ml_collections.ConfigDict()
  config.name = "sentinel2"
  config.task = "sentinel2_fusion"
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.dir = ""                # a .mat scene or a folder of band files; '' = procedural
  config.data.bands = "20m"           # the bands sharpened: '20m' or '60m' 
  config.data.cache_dir = ""          # prepared scenes and TFRecord tiles; '' = <workdir>/data
  config.data.procedural_size = 240   # pixels at 10 m (a multiple of 6)
  config.data.val_fraction = 0.25     # right-hand strip held out for evaluation
  config.data.tile_size = 32          # pixels of the target bands' grid (20 m)
  config.data.train_stride = 8
  config.data.num_shards = 4
  config.data.num_streams = 4         # read streams: the batches depend on them, not on processes
  config.data.shuffle_buffer = 1024
  config.data.skip_corrupt = False    # True: skip unreadable records (logged, counted)
  config.data.augment = True          # flips and rotations of whole tiles

  config.model = ml_collections.ConfigDict()
  config.model.name = "fusformer"
  config.model.embed_dim = 48
  config.model.num_heads = 3
  config.model.head_dim = 16
  config.model.mlp_dim = 48
  config.model.num_encoder_layers = 2
  config.model.num_decoder_layers = 2
  config.model.clip_output = False
  config.model.zero_init_residual = True  # the untrained model is bicubic upsampling
  config.model.attention = "auto"      # see experiments/jwst.py
  config.model.query_chunk = 64
  config.model.window = 16             # pixels per window side of attention='windowed'
  config.model.dtype = "float32"       # compute dtype; "bfloat16": mixed precision (GPU/TPU)

  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 16
  config.train.num_steps = 1500
  config.train.learning_rate = 1e-3
  config.train.schedule = "cosine"
  config.train.decay_every = 100000
  config.train.decay_factor = 0.1
  config.train.log_every = 50
  config.train.eval_every = 500
  config.train.checkpoint_every = 500
  config.train.keep_checkpoints = 3
  config.train.skip_nonfinite = False  # True: skip steps with a non-finite loss or gradient

  config.predict = ml_collections.ConfigDict()
  config.predict.tile_overlap = 8
  config.predict.batch_size = 16
  config.predict.input = ""      # --mode=predict: a .mat scene or a folder of band files
  config.predict.output = ""     # folder for the 10 m GeoTIFF and its quicklook
  config.predict.tile_size = 64  # output (10 m) pixels per tile

  if "60m" in variants:
    config.name = "sentinel2_60m"
    config.data.bands = "60m"
    config.data.procedural_size = 600
    config.data.tile_size = 24          # 60 m pixels: 4 x 4 of the 360 m input
    config.data.train_stride = 6
    config.predict.tile_size = 72       # 10 m pixels
    config.predict.tile_overlap = 12
  if "smoke" in variants:
    config.data.procedural_size = 96
    config.data.val_fraction = 0.34
    config.data.tile_size = 16
    config.data.num_shards = 2
    config.data.num_streams = 2
    config.data.shuffle_buffer = 32
    config.model.embed_dim = 24
    config.model.num_heads = 2
    config.model.head_dim = 12
    config.model.mlp_dim = 24
    config.train.batch_size = 4
    config.train.num_steps = 6
    config.train.log_every = 2
    config.train.eval_every = 3
    config.train.checkpoint_every = 3
    config.predict.tile_overlap = 4
    config.predict.batch_size = 4
    config.predict.tile_size = 32
    if "60m" in variants:
      config.data.procedural_size = 216   # 36 x 36 pixels at 60 m
      config.data.tile_size = 12
      config.data.train_stride = 6
      config.predict.tile_size = 36
      config.predict.tile_overlap = 6
  return config
