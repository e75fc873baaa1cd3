"""MODIS land-surface-temperature super-resolution (x4) with the physics-regularised U-Net.

Variants (comma-separated, e.g. --config=experiments/modis_lst.py:disr,smoke):
  (none), sisr  single-image: the LST alone; procedural archive unless --config.data.dir is set
                (e.g. ../shared/data/modis_lst, folders lst_1km/ and ndvi_1km/).
  disr          dual-image: the LST guided by the NDVI of its 16-day composite.
  reflectances  dual-image guided by the composite's NDVI and its red, NIR and MIR reflectances
                (implies disr).
  climatology   adds the location's climatology (mean fine pattern over the training dates,
                day or night) to the guide; the network narrowed so that it and the
                climatology of the real archive's 173 locations hold under 5M numbers;
                trained on flipped and rotated tiles, inference averaged over the 8 of them.
  multiscale    trains the scale steps 16->4, 8->2 and 4->1 tile pixels jointly, the network
                told the fine pixel size (scale conditioning).
  smoke         a tiny end-to-end run, for tests.
"""
import ml_collections

from fusionjax.variants import parse_variants

VARIANTS = ("sisr", "disr", "reflectances", "climatology", "multiscale", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variants = parse_variants(arg, VARIANTS, "experiments/modis_lst.py")
  if "sisr" in variants and {"disr", "reflectances"} & set(variants):
    raise ValueError("experiments/modis_lst.py: 'sisr' (no guide) excludes the guided variants "
                     "'disr' and 'reflectances'")

  config = ml_collections.ConfigDict()
  config.name = "modis_lst"
  config.task = "modis_lst"
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.dir = ""                 # folder with lst_1km/ and ndvi_1km/; '' = procedural
  config.data.cache_dir = ""           # TFRecord tiles (and the procedural archive); '' = <workdir>/data
  config.data.tile_size = 64           # pixels of the 1 km tiles
  config.data.pixel_km = 0.926625      # MODIS "1 km" grid spacing
  config.data.scale_factor = 4         # 4 km -> 1 km, as published
  config.data.val_fraction = 0.25      # published: random 75/25 split with seed 1
  config.data.split_seed = 1
  config.data.split_by = "random"      # 'random' or 'date' (the last dates held out)
  config.data.num_shards = 4
  config.data.num_streams = 4         # read streams: the batches depend on them, not on processes
  config.data.shuffle_buffer = 1024
  config.data.skip_corrupt = False    # True: skip unreadable records (logged, counted)
  # No flips or rotations: the fine structure of LST depends on the sun's direction (sunlit
  # slopes) and each location's own pattern, which augmented copies would contradict.
  config.data.augment = False
  config.data.procedural_locations = 16
  config.data.procedural_dates = 24

  config.physics = ml_collections.ConfigDict()
  config.physics.mtf_at_nyquist = 0.0  # Gaussian PSF before aggregation; 0 = footprint only

  config.model = ml_collections.ConfigDict()
  config.model.name = "mrunet"
  config.model.guide = "none"          # 'none', 'ndvi' or 'reflectances' (NDVI, red, NIR, MIR)
  config.model.widths = (96, 192, 316)   # at most 5M parameters with every guide
  config.model.patch_size = 4
  config.model.temperature_scale_k = 5.0
  config.model.scale_conditioning = False
  config.model.enforce_consistency = True   # exact Stefan-Boltzmann consistency with the input
  config.model.climatology = False     # the location's climatology as a further guide
  config.model.self_ensemble = False   # inference: mean over the 8 flips and rotations
  config.model.dtype = "float32"       # compute dtype; "bfloat16": mixed precision (GPU/TPU)

  config.loss = ml_collections.ConfigDict()
  config.loss.consistency_weight = 1.0
  config.loss.guide_weight = 0.0       # Sobel-gradient tie to NDVI (guided variants)
  config.loss.guide_gamma_k = -10.0    # expected K per unit of NDVI in the gradients

  config.train = ml_collections.ConfigDict()
  config.train.scale_steps = ((4, 1),)  # (coarse, fine) pixel sizes in tile pixels
  config.train.batch_size = 24         # published
  config.train.num_steps = 400
  config.train.learning_rate = 1e-3    # published (Adam)
  config.train.schedule = "cosine"
  config.train.decay_every = 100000
  config.train.decay_factor = 0.1
  config.train.log_every = 20
  config.train.eval_every = 200
  config.train.checkpoint_every = 200
  config.train.keep_checkpoints = 3
  config.train.skip_nonfinite = False  # True: skip steps with a non-finite loss or gradient

  config.eval = ml_collections.ConfigDict()
  config.eval.scale_steps = ((16, 4), (8, 2), (4, 1))   # the scale study

  config.predict = ml_collections.ConfigDict()
  config.predict.batch_size = 24
  config.predict.input = ""            # --mode=predict: a GeoTIFF of LST (K) or a folder of them
  config.predict.output = ""           # folder for the super-resolved GeoTIFFs and quicklooks
  config.predict.guide = ""            # guided models: the composite (or NDVI), output grid
  config.predict.truth = ""            # optional: the true fine LST, for the difference panel
  config.predict.climatology = ""      # model.climatology: folder of climatology files on the
                                       # output grid; '' = <workdir>/climatology (1 km, training)
  config.predict.tile_size = 256       # output pixels per tile
  config.predict.tile_overlap = 32

  if {"disr", "reflectances"} & set(variants):
    config.name = "modis_lst_disr"
    config.model.guide = "reflectances" if "reflectances" in variants else "ndvi"
    config.loss.guide_weight = 1e-3
  if "climatology" in variants:
    config.name += "_climatology"
    config.model.climatology = True
    config.model.widths = (80, 160, 264)
    # The climatology turns with its tile, so flipped and rotated copies stay self-consistent
    # (sunlit slopes included); inference averages the 8 of them.
    config.data.augment = True
    config.model.self_ensemble = True
  if "multiscale" in variants:
    config.model.scale_conditioning = True
    config.train.scale_steps = ((16, 4), (8, 2), (4, 1))
  if "smoke" in variants:
    config.data.tile_size = 32
    config.data.procedural_locations = 2
    config.data.procedural_dates = 4
    config.data.shuffle_buffer = 64
    config.model.widths = (16, 32)
    config.model.patch_size = 2
    config.train.batch_size = 4
    config.train.num_steps = 4
    config.train.log_every = 2
    config.train.eval_every = 4
    config.train.checkpoint_every = 2
    config.eval.scale_steps = ((4, 1),) if "multiscale" not in variants else ((8, 2), (4, 1))
    config.predict.batch_size = 4
  return config
