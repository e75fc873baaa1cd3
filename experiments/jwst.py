"""JWST NIRSpec IFU + NIRCam fusion with Fusformer.

Variants (comma-separated, e.g. --config=experiments/jwst.py:orionbar,smoke):
  (none)       procedural JWST-like scene, about 10 minutes on a 2-core CPU.
  orionbar     the published Orion Bar simulation; needs --config.data.dir=<folder of FITS>;
               4974 wavelengths coded in an 8-dimensional PCA subspace of the NIRSpec cube.
  accelerator  longer training, bigger batches and bfloat16 compute (mixed precision), for
               GPUs/TPUs.
  smoke        a tiny end-to-end run (well under two minutes on a CPU), for tests.
"""
import ml_collections

from fusionjax.variants import parse_variants

VARIANTS = ("orionbar", "accelerator", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variants = parse_variants(arg, VARIANTS, "experiments/jwst.py")

  config = ml_collections.ConfigDict()
  config.name = "jwst"
  config.task = "jwst_fusion"
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.source = "procedural"   # 'procedural' or 'orionbar'
  config.data.dir = ""                # Orion Bar FITS folder (source 'orionbar')
  config.data.cache_dir = ""          # prepared scenes and TFRecord tiles; '' = <workdir>/data
  config.data.scene_height = 192      # procedural scene, NIRCam pixels
  config.data.scene_width = 240
  config.data.num_wavelengths = 96    # procedural wavelength samples over 1.0-2.35 um
  config.data.num_components = 4
  config.data.crop_height = 0         # 0 keeps the whole scene
  config.data.crop_width = 0
  config.data.val_fraction = 0.2      # right-hand strip held out for evaluation
  config.data.deconvolution_eps = 1e-4  # Tikhonov weight, NIRSpec line-spread deconvolution
  config.data.tile_size = 24          # NIRCam pixels (8 NIRSpec pixels), 576 tokens
  config.data.train_stride = 6
  config.data.num_shards = 4
  config.data.num_streams = 4         # read streams: the batches depend on them, not on processes
  config.data.shuffle_buffer = 512
  config.data.skip_corrupt = False    # True: skip unreadable records (logged, counted)
  config.data.augment = True

  config.instrument = ml_collections.ConfigDict()
  config.instrument.decimation = 3            # NIRSpec 0.1"/pixel vs NIRCam 0.031"/pixel
  config.instrument.pixel_scale_arcsec = 0.031
  config.instrument.aperture_m = 6.5
  config.instrument.nircam_read_noise_e = 15.0
  config.instrument.nirspec_read_noise_e = 15.0
  config.instrument.noise = True

  config.model = ml_collections.ConfigDict()
  config.model.name = "fusformer"
  config.model.embed_dim = 48
  config.model.num_heads = 3
  config.model.head_dim = 16
  config.model.mlp_dim = 48
  config.model.num_encoder_layers = 2
  config.model.num_decoder_layers = 2
  config.model.subspace_dim = 8        # k PCA components of the NIRSpec cube; 0: every band
  config.model.clip_output = False
  config.model.zero_init_residual = True  # the untrained model is bicubic upsampling
  config.model.attention = "auto"      # 'auto' (cudnn on NVIDIA GPUs in bfloat16, else chunked),
                                      # 'chunked' (fast on CPU), 'xla', 'cudnn' (NVIDIA) or
                                      # 'windowed' (local, for very large scenes)
  config.model.query_chunk = 64
  config.model.window = 16             # pixels per window side of attention='windowed'
  config.model.dtype = "float32"       # compute dtype; "bfloat16": mixed precision (GPU/TPU)

  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 16
  config.train.num_steps = 300
  config.train.learning_rate = 1e-3
  config.train.schedule = "cosine"     # 'constant', 'step' (published) or 'cosine'
  config.train.decay_every = 100000
  config.train.decay_factor = 0.1
  config.train.log_every = 20
  config.train.eval_every = 100
  config.train.checkpoint_every = 100
  config.train.keep_checkpoints = 3
  config.train.skip_nonfinite = False  # True: skip steps with a non-finite loss or gradient

  config.predict = ml_collections.ConfigDict()
  config.predict.tile_overlap = 6
  config.predict.batch_size = 16
  config.predict.quicklook_um = 2.1218  # H2 1-0 S(1)
  config.predict.input = ""    # --mode=predict: an observation FITS file (NIRSpec cube and
                               # NIRCam images, data/jwst_observation.py); '' = held-out strip
  config.predict.output = ""   # folder for <input name>_fused.fits and its quicklook

  if "orionbar" in variants:
    config.data.source = "orionbar"
    config.model.subspace_dim = 8
  if "accelerator" in variants:
    config.model.dtype = "bfloat16"
    config.train.batch_size = 32
    config.train.num_steps = 20000
    config.train.eval_every = 1000
    config.train.checkpoint_every = 1000
  if "smoke" in variants:
    config.model.subspace_dim = 0
    config.data.scene_height = 48
    config.data.scene_width = 72
    config.data.num_wavelengths = 24
    config.data.tile_size = 24
    config.data.train_stride = 12
    config.data.val_fraction = 0.34
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
    config.predict.tile_overlap = 6
    config.predict.batch_size = 4
    if "orionbar" in variants:
      config.data.crop_height = 48
      config.data.crop_width = 144
      config.model.subspace_dim = 4
  return config
