"""JWST NIRSpec IFU + NIRCam fusion with Fusformer.

Variants (comma-separated, e.g. --config=experiments/jwst.py:orionbar,smoke):
  (none)       procedural JWST-like scene, about 10 minutes on a 2-core CPU.
  orionbar     the published Orion Bar simulation; needs --config.data.dir=<folder of FITS>;
               4974 wavelengths coded in an 8-dimensional PCA subspace of the NIRSpec cube.
  accelerator  longer training, bigger batches and bfloat16 compute (mixed precision), for
               GPUs/TPUs.
  smoke        a tiny end-to-end run (well under two minutes on a CPU), for tests.
  model=<name> the network (fusionjax.models): fusformer (default, published size), dsen2 or
               vdsen2 (the residual CNN of Lanaras et al. 2018, 6 x 128 or 32 x 256).
"""
import ml_collections
from optuna.distributions import CategoricalDistribution, FloatDistribution

from fusionjax.variants import parse_variants, sibling

common = sibling(__file__, "common")
VARIANTS = ("orionbar", "accelerator", "smoke")


def get_config(arg: str | None = None):
  variants, options = parse_variants(arg, VARIANTS, "experiments/jwst.py")
  config = common.get_config("jwst", "jwst_fusion")

  config.data.source = "procedural"   # 'procedural' or 'orionbar'
  config.data.dir = ""                # Orion Bar FITS folder (source 'orionbar')
  config.data.scene_height = 192      # procedural scene, NIRCam pixels
  config.data.scene_width = 240
  config.data.num_wavelengths = 96    # procedural wavelength samples over 1.0-2.35 um
  config.data.num_components = 4
  config.data.crop_height = 0         # 0 keeps the whole scene
  config.data.crop_width = 0
  config.data.val_fraction = 0.2      # right-hand strips: validation, then test, each a gap
  config.data.test_fraction = 0.2     # of split_gap columns (one tile) from the part before it
  config.data.split_gap = 24
  config.data.subspace_dim = 8        # k PCA components of the NIRSpec cube; 0: every band
  config.data.deconvolution_eps = 1e-4  # Tikhonov weight, NIRSpec line-spread deconvolution
  config.data.tile_size = 24          # NIRCam pixels (8 NIRSpec pixels), 576 tokens
  # What the network corrects: 'bicubic', 'mtf_glp' or 'model_based' (the model-based fusion
  # of the whole scene, fusionjax.baselines.model_based, computed once with it).
  config.data.base_estimate = "model_based"
  # The loss: L1 of the codes ('codes', as published) or of the codes weighed as the spectra
  # they decode to ('spectra'; fusionjax.tasks.fusion).
  config.data.loss_space = "spectra"
  config.data.train_stride = 6
  config.data.shuffle_buffer = 512

  config.instrument = ml_collections.ConfigDict()
  config.instrument.decimation = 3            # NIRSpec 0.1"/pixel vs NIRCam 0.031"/pixel
  config.instrument.pixel_scale_arcsec = 0.031
  config.instrument.aperture_m = 6.5
  config.instrument.nircam_read_noise_e = 15.0
  config.instrument.nirspec_read_noise_e = 15.0
  config.instrument.noise = True

  # Fusformer's attention: 'auto' (cudnn on NVIDIA GPUs in bfloat16, else chunked), 'chunked'
  # (fast on CPU), 'xla', 'cudnn' (NVIDIA) or 'windowed' (local, window x window pixels).
  # dtype: the compute dtype, "bfloat16" for mixed precision (GPU/TPU).
  common.set_model(config, options.get("model", "fusformer"),
                   data_arguments=("out_bands", "scale_factor"))
  if config.model.name == "fusformer":
    config.model.zero_init_residual = True   # the untrained network returns its base

  config.train.num_steps = 300
  config.train.log_every = 20
  config.train.eval_every = 100
  config.train.checkpoint_every = 100

  # The model-based fusion (fusionjax.baselines.model_based): PSF widths interpolated, the
  # smoothness weights tried (relative to the data's curvature), the reduced chi^2 the
  # discrepancy principle aims at (model_based_chi2, the network's base) and the most
  # conjugate-gradient iterations. The 'model_based' baseline takes the weight that fits the
  # validation strip's truth best.
  config.model_based = ml_collections.ConfigDict()
  config.model_based.psf_nodes = 4
  config.model_based.weights = tuple(10.0 ** (e / 2) for e in range(-8, 3))
  config.model_based.chi2_target = 1.0
  config.model_based.iterations = 200

  # The product: 'network', 'model_based' or 'model_based_chi2'.
  config.predict.method = "network"
  # The fractions of the network's correction of the model-based fusion tried, largest
  # first: the product keeps the largest whose reduced chi^2 stays within the model-based
  # fusion's (fusionjax.baselines.model_based_weights.trusted_correction); (1.0,) keeps it
  # whole.
  config.predict.trust_fractions = (1.0, 0.5, 0.25, 0.125, 0.0)
  # The data-consistency step of the network's product (fusionjax.tasks.jwst_inversion):
  # conjugate-gradient iterations on the misfit to both observations plus weight (relative
  # to the data's curvature) x the squared distance to the network's output, and smoothness
  # x the observation's own smoothness term (model_based_chi2's weight); 0 iterations turns
  # it off. Chosen on the
  # validation strip (scripts/jwst_consistency_sweep.py, docs/jwst.md).
  config.predict.consistency_weight = 1.0
  config.predict.consistency_smoothness = 1.0
  config.predict.consistency_iterations = 30
  config.predict.tile_overlap = 6
  config.predict.quicklook_um = 2.1218  # H2 1-0 S(1)
  # predict.input: an observation FITS file (NIRSpec cube and NIRCam images,
  # data/jwst/observation.py); predict.output: folder for <input name>_fused.fits and its
  # quicklook.

  if "orionbar" in variants:
    config.data.source = "orionbar"
    # The tuning study's best (docs/tuning.md; 150 steps, selected on the validation strip):
    # test PSNR 42.18 dB against 21.61 with the learning rate 1e-3 and Fusformer's published
    # 48 / 16, which had not converged in 150 steps.
    config.train.learning_rate = 3.7e-4
    if config.model.name == "fusformer":
      config.model.mlp_dim = 24
      config.model.head_dim = 8
  if "accelerator" in variants:
    config.model.dtype = "bfloat16"
    config.train.batch_size = 32
    config.train.num_steps = 20000
    config.train.eval_every = 1000
    config.train.checkpoint_every = 1000
  if "smoke" in variants:
    common.smoke(config)
    config.data.subspace_dim = 0
    config.data.scene_height = 48
    config.data.scene_width = 72
    config.data.num_wavelengths = 24
    config.data.scene_width = 96
    config.data.train_stride = 12
    config.data.val_fraction = 0.25
    config.data.test_fraction = 0.25
    config.data.split_gap = 3
    # The network corrects bicubic upsampling (the model-based base costs a solve of the
    # whole scene when it is prepared; tests that need it set it).
    config.data.base_estimate = "bicubic"
    config.model_based.psf_nodes = 2
    config.model_based.weights = (0.1,)
    config.model_based.iterations = 40
    config.predict.consistency_iterations = 5
    if "orionbar" in variants:
      config.data.crop_height = 48
      config.data.crop_width = 144
      config.data.subspace_dim = 4
  return config


def get_search_space(arg: str | None = None) -> dict:
  """What `python -m fusionjax.tune` searches (selected on the validation strip's L1): the
  learning rate, Fusformer's width and feed-forward size, and the tile (attention span)."""
  del arg
  return {"train.learning_rate": FloatDistribution(1e-4, 3e-3, log=True),
          "model.mlp_dim": CategoricalDistribution([24, 48, 96]),
          "model.head_dim": CategoricalDistribution([8, 16, 24]),
          "data.tile_size": CategoricalDistribution([18, 24])}
