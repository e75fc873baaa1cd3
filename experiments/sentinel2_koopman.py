"""Koopman prior of Sentinel-2 reflectance dynamics, evaluated by data assimilation
(gap-filling and forecasting).

Variants (comma-separated, e.g. --config=experiments/sentinel2_koopman.py:ndvi,smoke):
  (none)    10 procedural Sentinel-2 bands (B2 B3 B4 B5 B6 B7 B8 B8A B11 B12), as published.
  ndvi      the NDVI series: the procedural one, or with --config.data.dir a real series folder
            (NDVI.npy, CLM.npy, IS_DATA.npy, timestamps.json; e.g.
            ../shared/data/sentinel2_ndvi_ts).
  cayley    K exactly orthogonal (Cayley transform of a skew-symmetric matrix) instead of the
            published penalty.
  smoke     a tiny end-to-end run, for tests.
"""
import ml_collections

from fusionjax.variants import parse_variants

VARIANTS = ("ndvi", "cayley", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variants = parse_variants(arg, VARIANTS, "experiments/sentinel2_koopman.py")

  config = ml_collections.ConfigDict()
  config.name = "sentinel2_koopman"
  config.task = "sentinel2_koopman"
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.dir = ""                  # NDVI series folder (':ndvi'); '' = procedural
  config.data.cache_dir = ""            # where the windows are written; '' = <workdir>/data
  config.data.quantity = "reflectance"  # 'reflectance' (10 bands) or 'ndvi'
  config.data.step_days = 5             # published grid
  config.data.hidden_fraction = 0.2     # observations held out for gap-filling
  config.data.forecast_fraction = 0.2   # the last part of the period, held out for forecasting
  config.data.validation_pixel_fraction = 0.1   # pixels whose windows are the validation split
  config.data.split_seed = 0            # the held-out observations and pixels, and the
                                        # procedural scene (config.seed: the model's)
  config.data.window_steps = 101        # published: prediction over t = 0 ... 100
  config.data.windows_per_pixel = 8
  config.data.sampled_steps = 0         # > 0: the loss at a window's start and sampled_steps - 1
                                        # random other states (0: all, as published)
  config.data.num_shards = 4
  config.data.num_streams = 4         # read streams: the batches depend on them, not on processes
  config.data.shuffle_buffer = 8192
  config.data.skip_corrupt = False    # True: skip unreadable records (logged, counted)
  config.data.augment = False           # (no augmentation of series)
  config.data.procedural_size = 32      # pixels per side of the procedural scene
  config.data.procedural_years = 3

  config.model = ml_collections.ConfigDict()
  config.model.name = "koopman_ae"
  config.model.hidden = (512, 256)      # published 20 -> 512 -> 256 -> 32
  config.model.latent_dim = 32
  config.model.operator = "penalty"     # 'penalty' (published) or 'cayley' (exactly orthogonal)
  config.model.dtype = "float32"       # compute dtype; "bfloat16": mixed precision (GPU/TPU)

  config.loss = ml_collections.ConfigDict()
  config.loss.prediction_weight = 1.0
  config.loss.autoencoding_weight = 1.0
  config.loss.linearity_weight = 1.0
  config.loss.orthogonality_weight = 100.0   # published lambda

  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 512         # published
  config.train.num_steps = 3000
  config.train.learning_rate = 1e-3     # published (Adam)
  config.train.schedule = "cosine"
  config.train.decay_every = 100000
  config.train.decay_factor = 0.1
  config.train.log_every = 50
  config.train.eval_every = 500
  config.train.checkpoint_every = 500
  config.train.keep_checkpoints = 3
  config.train.chunk_rows = 0           # window states each device differentiates at once
                                        # (speed only; 0: cache-sized on CPUs, large on GPUs)
  config.train.skip_nonfinite = False  # True: skip steps with a non-finite loss or gradient

  # Assimilation: Adam on every pixel at once. The observed period is filled with the
  # gap_filling settings, the dates after a pixel's last observation with the forecast ones.
  #   control 'latent': optimise z_0 itself (as published); 'state': optimise the initial
  #     state x_0, z_0 = phi(x_0), which keeps z_0 on the encoder's image.
  #   start 'first_state': start from (and take as background) the free run, the first
  #     state carried back to step 0; 'mean_state': the mean of every observed state carried
  #     back to step 0.
  #   segment_steps 0: one initial state (strong constraint); n: one per n grid steps, with
  #     model_error_weight on the jumps between segments (weak constraint).
  #   robust_scale d > 0: Huber misfit, linear beyond residuals of d (observation units), so
  #     that dates with haze the cloud mask missed pull less (0: least squares).
  #   dates_per_iteration k > 0: each iteration fits a random k of each pixel's observed
  #     dates (a stochastic estimate of the misfit; 0: all of them).
  #   chunk_rows: pixel-dates each device decodes at once (speed only; 0: cache-sized on
  #     CPUs, large on accelerators).
  def assimilation_settings(control, learning_rate, smoothness_weight, robust_scale):
    return ml_collections.ConfigDict({
        "iterations": 50, "learning_rate": learning_rate, "control": control,
        "start": "mean_state", "segment_steps": 0, "model_error_weight": 1.0,
        "background_weight": 0.0, "smoothness_weight": smoothness_weight,
        "robust_scale": robust_scale, "dates_per_iteration": 0, "chunk_rows": 0,
        "log_every": 25})
  config.assimilation = ml_collections.ConfigDict()
  config.assimilation.gap_filling = assimilation_settings("latent", 0.02, 1.0, 0.0)
  config.assimilation.forecast = assimilation_settings("state", 0.01, 0.0, 0.05)

  # An ensemble: with --mode=eval, this run and the workdirs listed here (comma-separated;
  # the same experiment trained with other seeds, --config.seed) are assimilated as one
  # ensemble, the members vmapped; eval.json then scores the ensemble mean and, under
  # 'ensemble', each member, the spread and the CRPS.
  config.ensemble = ml_collections.ConfigDict()
  config.ensemble.members = ""

  config.predict = ml_collections.ConfigDict()
  config.predict.batch_size = 512
  config.predict.input = ""             # --mode=predict: an NDVI series folder
  config.predict.output = ""            # folder for series.npz and quicklook.png
  config.predict.forecast_steps = 36    # grid steps forecast past the last date (180 days)

  if "ndvi" in variants:
    config.name = "sentinel2_koopman_ndvi"
    config.data.quantity = "ndvi"
  if "cayley" in variants:
    config.model.operator = "cayley"
    config.loss.orthogonality_weight = 0.0
  if "smoke" in variants:
    config.data.procedural_size = 8
    config.data.procedural_years = 2
    config.data.window_steps = 21
    config.data.windows_per_pixel = 4
    config.data.shuffle_buffer = 256
    config.model.hidden = (32, 16)
    config.model.latent_dim = 8
    config.train.batch_size = 16
    config.train.num_steps = 6
    config.train.log_every = 2
    config.train.eval_every = 6
    config.train.checkpoint_every = 3
    for settings in (config.assimilation.gap_filling, config.assimilation.forecast):
      settings.iterations = 10
      settings.log_every = 5
    config.predict.batch_size = 16
    config.predict.forecast_steps = 6
  return config
