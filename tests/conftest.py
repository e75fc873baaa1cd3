"""Test set-up: four simulated CPU devices (before jax starts), one persistent compilation
cache shared by every test and every process a test starts (a program compiled once is loaded
by the next run that builds it), and the shared real data."""
import os
import tempfile

os.environ.setdefault("JAX_NUM_CPU_DEVICES", "4")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The trainer's cache (fusionjax.main reads it), here one per test session (shared by its
# pytest-xdist workers) unless given.
if "FUSIONJAX_COMPILATION_CACHE" not in os.environ:
  _RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID")   # the same in every worker of a session
  os.environ["FUSIONJAX_COMPILATION_CACHE"] = (
      tempfile.mkdtemp(prefix="fusionjax-xla-") if _RUN is None
      else os.path.join(tempfile.gettempdir(), f"fusionjax-xla-{_RUN}"))
# Every compiled program is cached, however quick its compilation: the many small programs of
# an evaluation (each eager operation is one) then load in every later process instead of
# compiling again (jax reads JAX_* variables at start, here and in the processes tests start).
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_compilation_cache_dir", os.environ["FUSIONJAX_COMPILATION_CACHE"])
jax.config.update("jax_persistent_cache_min_compile_time_secs",
                  float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))

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


def experiment_config(experiment: str, arg: str = "", **overrides):
  """experiments/<experiment>.py's config for `arg`, with dotted-key overrides
  (e.g. **{"train.num_steps": 3}) as --config.<key>=<value> would set them."""
  import importlib
  config = importlib.import_module(f"experiments.{experiment}").get_config(arg)
  for key, value in overrides.items():
    *parents, field = key.split(".")
    section = config
    for parent in parents:
      section = section[parent]
    section[field] = value
  return config


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
  """trained(experiment, arg, **overrides) -> the workdir of that smoke run, trained in this
  process once per session and shared by every test that inspects it (or evaluates and
  predicts from it: those must not retrain it)."""
  from fusionjax import train
  root, workdirs = tmp_path_factory.mktemp("trained"), {}

  def run(experiment: str, arg: str, **overrides):
    key = (experiment, arg, tuple(sorted(overrides.items())))
    if key not in workdirs:
      workdir = root / f"{experiment}-{len(workdirs)}"
      train.run(experiment_config(experiment, arg, **overrides), str(workdir))
      workdirs[key] = workdir
    return workdirs[key]
  return run


# The test files that take longest (smoke trainings, several processes), longest first. The
# pytest-xdist workers (--dist loadfile) take files in collection order, so starting with
# these lets the short files fill the end and both workers finish together.
LONGEST_FILES = ("test_lst.py", "test_sentinel2.py", "test_multiprocess.py", "test_main.py",
                 "test_koopman_task.py", "test_train.py", "test_tune.py",
                 "test_sentinel2_adapt.py", "test_jwst_scene.py",
                 "test_sentinel2_safe.py", "test_extending.py", "test_products.py",
                 "test_assimilation.py", "test_fusformer.py", "test_benchmark.py")


def pytest_collection_modifyitems(items):
  def rank(item):
    name = item.path.name
    return LONGEST_FILES.index(name) if name in LONGEST_FILES else len(LONGEST_FILES)
  items.sort(key=rank)    # stable: each file's tests keep their order
