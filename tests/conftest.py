"""Test set-up: four simulated CPU devices (before jax starts) and the shared real data."""
import os

os.environ.setdefault("JAX_NUM_CPU_DEVICES", "4")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.environ.get("FUSIONJAX_SHARED_DATA",
                             os.path.join(os.path.dirname(REPO), "shared", "data"))


def shared_data_dir(name: str) -> str:
  """Path of a real data set in ../shared/data, or skip the test with the reason."""
  path = os.path.join(SHARED_DATA, name)
  if not os.path.isdir(path):
    pytest.skip(f"real data {path} is absent (set FUSIONJAX_SHARED_DATA to the shared data "
                "folder to run this test)")
  return path
