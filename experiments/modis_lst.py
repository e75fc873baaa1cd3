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
                trained on flipped and rotated tiles, a quarter of them without their
                climatology (places never seen); inference averaged over the 8 of them.
  multiscale    trains the scale steps 16->4, 8->2 and 4->1 tile pixels jointly, the network
                told the fine pixel size (scale conditioning).
  smoke         a tiny end-to-end run, for tests.
  model=<name>  the network (fusionjax.models): mrunet (default) or srcnn (the plain
                three-layer baseline of Dong et al. 2016).
"""
import ml_collections
from optuna.distributions import CategoricalDistribution, FloatDistribution

from fusionjax.variants import parse_variants, sibling

common = sibling(__file__, "common")
VARIANTS = ("sisr", "disr", "reflectances", "climatology", "multiscale", "smoke")


def get_config(arg: str | None = None):
  variants, options = parse_variants(arg, VARIANTS, "experiments/modis_lst.py")
  if "sisr" in variants and {"disr", "reflectances"} & set(variants):
    raise ValueError("experiments/modis_lst.py: 'sisr' (no guide) excludes the guided variants "
                     "'disr' and 'reflectances'")
  config = common.get_config("modis_lst", "modis_lst")

  config.data.dir = ""                 # folder with lst_1km/ and ndvi_1km/; '' = procedural
  config.data.tile_size = 64           # pixels of the 1 km tiles
  config.data.pixel_km = 0.926625      # MODIS "1 km" grid spacing
  config.data.scale_factor = 4         # 4 km -> 1 km, as published
  # Held out: 'date' (the default): the last test_fraction of the dates for the test, the
  # val_fraction before them for validation (a later season); 'location': whole locations
  # (places never seen); 'random': random samples (the published 75/25 protocol, seed 1: the
  # same places on neighbouring dates are in training).
  config.data.split_by = "date"
  config.data.val_fraction = 0.2
  config.data.test_fraction = 0.2
  config.data.split_seed = 1
  config.data.guide = "none"           # 'none', 'ndvi' or 'reflectances' (NDVI, red, NIR, MIR)
  config.data.climatology = False      # the location's climatology as a further guide
  # The fraction of training examples whose climatology guide is zeroed (pattern and weight,
  # what a place without a climatology gets), drawn per example and step: the network learns
  # to serve places never seen as well (0.25 for :climatology).
  config.data.climatology_dropout = 0.0
  # The climatology guide of the validation and test images: 'training' (that of the training
  # part: a place the training part never saw has none) or 'own_archive' (that of the other
  # images of the image's own place in its part: what predict.climatology_from gives a user
  # with an archive of the place).
  config.data.heldout_climatology = "training"
  # No flips or rotations: the fine structure of LST depends on the sun's direction (sunlit
  # slopes) and each location's own pattern, which augmented copies would contradict.
  config.data.augment = False
  config.data.procedural_locations = 16
  config.data.procedural_dates = 24

  config.physics = ml_collections.ConfigDict()
  config.physics.mtf_at_nyquist = 0.0  # Gaussian PSF before aggregation; 0 = footprint only

  # The U-Net's widths (96, 192, 316) keep it under 5M parameters with every guide;
  # enforce_consistency: exact Stefan-Boltzmann consistency with the input; dtype: the compute
  # dtype, "bfloat16" for mixed precision (GPU/TPU).
  common.set_model(config, options.get("model", "mrunet"), data_arguments=("climatology",))

  config.loss = ml_collections.ConfigDict()
  config.loss.consistency_weight = 1.0
  config.loss.guide_weight = 0.0       # Sobel-gradient tie to NDVI (guided variants)
  config.loss.guide_gamma_k = -10.0    # expected K per unit of NDVI in the gradients

  config.train.scale_steps = ((4, 1),)  # (coarse, fine) pixel sizes in tile pixels
  config.train.batch_size = 24         # published
  config.train.num_steps = 400
  config.train.log_every = 20
  config.train.eval_every = 200
  config.train.checkpoint_every = 200

  config.tune.metric = "val_rmse_k"   # tuning selects on the validation RMSE (K)

  config.eval = ml_collections.ConfigDict()
  config.eval.scale_steps = ((16, 4), (8, 2), (4, 1))   # the scale study

  config.predict.batch_size = 24
  config.predict.self_ensemble = False  # inference: mean over the 8 flips and rotations
  # predict.input: a GeoTIFF of LST (K) or a folder of them; predict.output: folder for the
  # super-resolved GeoTIFFs and quicklooks.
  config.predict.guide = ""            # guided models: the composite (or NDVI), output grid
  config.predict.truth = ""            # optional: the true fine LST, for the difference panel
  # Where the composite of an LST date is missing from a predict.guide folder, the nearest of
  # its place within this many days of the date serves (recorded in predict_report.json).
  config.predict.guide_max_days = 16
  config.predict.climatology = ""      # data.climatology: folder of climatology files on the
                                       # output grid; '' = <workdir>/climatology (1 km, training)
  # data.climatology: a folder of your own LST GeoTIFFs (MODIS names, on the output grid) whose
  # climatology, written to <predict.output>/climatology/, serves instead; a place with no
  # climatology file is predicted without one.
  config.predict.climatology_from = ""
  config.predict.tile_size = 256       # output pixels per tile
  config.predict.tile_overlap = 32

  if {"disr", "reflectances"} & set(variants):
    config.name = "modis_lst_disr"
    config.data.guide = "reflectances" if "reflectances" in variants else "ndvi"
    # The tuning study's best (docs/tuning.md; 600 steps on the real archive, selected on the
    # validation dates), rounded: test RMSE 0.595 K against 0.604 K with the earlier weights,
    # consistency 1.0 and guide 1e-3.
    config.loss.consistency_weight = 0.26
    config.loss.guide_weight = 1.8e-4
  if "climatology" in variants:
    config.name += "_climatology"
    config.data.climatology = True
    config.data.climatology_dropout = 0.25
    if config.model.name == "mrunet":   # it and the real archive's climatology in 5M numbers
      config.model.widths = (80, 160, 264)
    # The climatology turns with its tile, so flipped and rotated copies stay self-consistent
    # (sunlit slopes included); inference averages the 8 of them.
    config.data.augment = True
    config.predict.self_ensemble = True
  if "multiscale" in variants:
    config.model.scale_conditioning = True
    config.train.scale_steps = ((16, 4), (8, 2), (4, 1))
  if "smoke" in variants:
    common.smoke(config)
    config.data.tile_size = 32
    config.data.procedural_locations = 2
    config.data.procedural_dates = 4
    config.data.shuffle_buffer = 64
    config.train.num_steps = 4
    config.train.eval_every = 4
    config.train.checkpoint_every = 2
    config.eval.scale_steps = ((4, 1),) if "multiscale" not in variants else ((8, 2), (4, 1))
  return config


def get_search_space(arg: str | None = None) -> dict:
  """What `python -m fusionjax.tune` searches (selected on the validation dates' RMSE, K):
  the learning rate, the batch size and the weight of the Stefan-Boltzmann consistency
  loss (and, guided, of the NDVI-gradient tie)."""
  variants, _ = parse_variants(arg, VARIANTS, "experiments/modis_lst.py")
  space = {"train.learning_rate": FloatDistribution(1e-4, 3e-3, log=True),
           "train.batch_size": CategoricalDistribution([8, 16, 24]),
           "loss.consistency_weight": FloatDistribution(0.1, 10.0, log=True)}
  if {"disr", "reflectances"} & set(variants):
    space["loss.guide_weight"] = FloatDistribution(1e-4, 1e-2, log=True)
  return space
