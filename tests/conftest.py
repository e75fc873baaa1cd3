"""Test set-up: four simulated CPU devices (before jax starts), one persistent compilation
cache shared by every test and every process a test starts (a step compiled once is loaded
by the next run that builds it), and the shared real data."""
import os
import tempfile

os.environ.setdefault("JAX_NUM_CPU_DEVICES", "4")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The trainer's cache (fusionjax.main reads it), here one per test session unless given.
os.environ.setdefault("FUSIONJAX_COMPILATION_CACHE", tempfile.mkdtemp(prefix="fusionjax-xla-"))

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_compilation_cache_dir", os.environ["FUSIONJAX_COMPILATION_CACHE"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

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
