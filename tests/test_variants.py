"""Every experiment refuses an unknown variant, naming its file and the variants it has."""
import importlib

import pytest


@pytest.mark.parametrize("name", ["jwst", "modis_lst", "sentinel2", "sentinel2_koopman"])
def test_unknown_variant_is_named_with_the_experiment_file(name):
  experiment = importlib.import_module(f"experiments.{name}")
  assert experiment.get_config("smoke").train.num_steps > 0
  with pytest.raises(ValueError, match=rf"experiments/{name}.py: unknown variant\(s\) \['nope'\]"):
    experiment.get_config("smoke,nope")
