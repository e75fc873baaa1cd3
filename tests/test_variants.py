"""Every experiment refuses an unknown variant, naming its file and the variants it has."""
import importlib

import pytest


@pytest.mark.parametrize("name", ["jwst", "modis_lst", "sentinel2", "sentinel2_koopman"])
def test_unknown_variant_is_named_with_the_experiment_file(name):
  experiment = importlib.import_module(f"experiments.{name}")
  assert experiment.get_config("smoke").train.num_steps > 0
  with pytest.raises(ValueError, match=rf"experiments/{name}.py: unknown variant\(s\) \['nope'\]"):
    experiment.get_config("smoke,nope")


@pytest.mark.parametrize("name", ["jwst", "modis_lst", "sentinel2", "sentinel2_koopman"])
def test_every_experiment_has_a_float32_compute_dtype_and_refuses_an_unknown_one(name, tmp_path):
  from fusionjax import tasks
  config = importlib.import_module(f"experiments.{name}").get_config("smoke")
  assert config.model.dtype == "float32"
  config.model.dtype = "float8"
  with pytest.raises(ValueError, match=r"model.dtype='float8': expected one of \('float32', "
                                       r"'bfloat16', 'float16'\)"):
    tasks.get_task(config, str(tmp_path))
