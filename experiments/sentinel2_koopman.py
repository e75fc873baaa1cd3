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
from optuna.distributions import CategoricalDistribution, FloatDistribution

from fusionjax.variants import parse_variants, sibling

common = sibling(__file__, "common")
VARIANTS = ("ndvi", "cayley", "smoke")


def get_config(arg: str | None = None):
  variants, _ = parse_variants(arg, VARIANTS, "experiments/sentinel2_koopman.py")
  config = common.get_config("sentinel2_koopman", "sentinel2_koopman")

  config.data.dir = ""                  # NDVI series folder (':ndvi'); '' = procedural
  config.data.quantity = "reflectance"  # 'reflectance' (10 bands) or 'ndvi'
  config.data.step_days = 5             # published grid
  config.data.hidden_fraction = 0.2     # observations held out for gap-filling
  config.data.forecast_fraction = 0.2   # the last part of the period, held out for forecasting
  # Held out: blocks of whole rows of the image, the last data.test_fraction of the rows the
  # test part and the data.val_fraction before them the validation part (their windows: the
  # validation split; fractions of experiments/common.py).
  config.data.split_seed = 0            # the held-out observations, and the
                                        # procedural scene (config.seed: the model's)
  config.data.window_steps = 101        # published: prediction over t = 0 ... 100
  config.data.windows_per_pixel = 8
  config.data.sampled_steps = 0         # > 0: the loss at a window's start and sampled_steps - 1
                                        # random other states (0: all, as published)
  config.data.shuffle_buffer = 8192
  config.data.augment = False           # (no augmentation of series)
  config.data.procedural_size = 32      # pixels per side of the procedural scene
  config.data.procedural_years = 3

  # Published 20 -> 512 -> 256 -> 32; operator 'penalty' (published) or 'cayley' (exactly
  # orthogonal); dtype: the compute dtype, "bfloat16" for mixed precision (GPU/TPU).
  common.set_model(config, "koopman_ae", data_arguments=("state_dim",))

  config.loss = ml_collections.ConfigDict()
  config.loss.prediction_weight = 1.0
  config.loss.autoencoding_weight = 1.0
  config.loss.linearity_weight = 1.0
  config.loss.orthogonality_weight = 100.0   # published lambda

  config.tune.metric = "val_prediction_mse"   # tuning selects on the validation windows' MSE

  config.train.batch_size = 512         # published (Adam, learning rate 1e-3)
  config.train.num_steps = 3000
  config.train.chunk_rows = 0           # window states each device differentiates at once
                                        # (speed only; 0: cache-sized on CPUs, large on GPUs)

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

  config.predict.batch_size = 512
  config.predict.forecast_steps = 36    # grid steps forecast past the last date (180 days)
  # predict.input: an NDVI series folder; predict.output: folder for series.npz and
  # quicklook.png.

  if "ndvi" in variants:
    config.name = "sentinel2_koopman_ndvi"
    config.data.quantity = "ndvi"
  if "cayley" in variants:
    config.model.operator = "cayley"
    config.loss.orthogonality_weight = 0.0
  if "smoke" in variants:
    common.smoke(config)
    config.data.procedural_size = 8
    config.data.procedural_years = 2
    config.data.window_steps = 21
    config.data.windows_per_pixel = 4
    config.data.shuffle_buffer = 256
    config.train.batch_size = 16
    config.train.eval_every = 6
    for settings in (config.assimilation.gap_filling, config.assimilation.forecast):
      settings.iterations = 10
      settings.log_every = 5
    config.predict.batch_size = 16
    config.predict.forecast_steps = 6
  return config


def get_search_space(arg: str | None = None) -> dict:
  """What `python -m fusionjax.tune` searches (selected on the validation rows' prediction
  MSE): the learning rate, the latent size and the weights of the losses."""
  del arg
  return {"train.learning_rate": FloatDistribution(1e-4, 3e-3, log=True),
          "model.latent_dim": CategoricalDistribution([16, 32, 64]),
          "loss.orthogonality_weight": FloatDistribution(1.0, 1000.0, log=True),
          "loss.linearity_weight": FloatDistribution(0.1, 10.0, log=True)}
