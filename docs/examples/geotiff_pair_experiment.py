"""The experiment of docs/examples/geotiff_pair.py: a coarse.tif + fine.tif folder fused by any
fusion network (docs/extending.md).

  PYTHONPATH=docs/examples python -m fusionjax.main \
      --config=docs/examples/geotiff_pair_experiment.py:model=dsen2 \
      --config.data.dir=<folder with coarse.tif and fine.tif> --workdir=runs/pair
"""
from fusionjax.variants import parse_variants, sibling

common = sibling(__file__, "../../experiments/common")


def get_config(arg: str | None = None):
  variants, options = parse_variants(arg, ("smoke",), "geotiff_pair_experiment.py")
  config = common.get_config("geotiff_pair", "geotiff_pair:GeotiffPairTask")
  config.data.scale_factor = 2        # fine pixels per coarse pixel
  config.data.mtf_at_nyquist = 0.3    # the PSF of the Wald degradation
  config.data.units = ""              # of the coarse image, for the products
  config.data.val_fraction = 0.25
  config.data.split_gap = 16          # columns between training, validation and test strips
  config.data.tile_size = 32          # coarse-grid pixels
  config.data.train_stride = 8
  common.set_model(config, options.get("model", "dsen2"),
                   data_arguments=("out_bands", "scale_factor"))
  config.predict.tile_overlap = 8
  if "smoke" in variants:
    common.smoke(config)
    config.data.tile_size = 16
  return config
