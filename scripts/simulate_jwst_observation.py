"""Simulates what NIRSpec and NIRCam observe of an experiment's whole scene and writes it as an
observation file, the input of --mode=predict (format: fusionjax/data/jwst/observation.py).

  python scripts/simulate_jwst_observation.py --config=experiments/jwst.py:orionbar \
      --config.data.dir=../shared/data/jwst_orionbar --output=runs/orionbar_observation.fits
  python -m fusionjax.main --config=experiments/jwst.py:orionbar \
      --config.data.dir=../shared/data/jwst_orionbar --workdir=runs/orionbar --mode=predict \
      --config.predict.input=runs/orionbar_observation.fits --config.predict.output=runs/fused

Same seed and instrument settings as training, so the noise of the observation is the one the
training scene saw; change --config.seed for another noise draw.
"""
from absl import app, flags
from ml_collections import config_flags

from fusionjax.data.jwst import observation as jwst_observation
from fusionjax.data.jwst import scene as jwst_scene

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "JWST experiment config (path[:variant]).")
flags.DEFINE_string("output", None, "FITS file to write.")
flags.mark_flags_as_required(["config", "output"])


def main(argv):
  del argv
  scene, _, observation = jwst_scene.simulate_observation(FLAGS.config)
  jwst_observation.write_observation(FLAGS.output, observation,
                                     description=f"Simulated observation of {scene.name}")
  _, height, width = observation.nircam.shape
  print(f"wrote {FLAGS.output}: NIRSpec {observation.nirspec.shape}, NIRCam {height} x {width} "
        f"in {len(observation.filters)} filters")


if __name__ == "__main__":
  app.run(main)
