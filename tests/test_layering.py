"""The layers of the package: models, physics, data and metrics know neither the trainer nor
the tasks; the trainer knows no model; no module grows past 350 lines."""
import ast
import glob
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

LOWER_LAYERS = ("fusionjax/models", "fusionjax/physics", "fusionjax/data", "fusionjax/metrics.py")


def _imports(path: str) -> set[str]:
  """The fusionjax modules `path` imports (from X import Y counted as X.Y and X)."""
  tree = ast.parse(open(path).read(), path)
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.add(node.module)
      names.update(f"{node.module}.{alias.name}" for alias in node.names)
  return {name for name in names if name.startswith("fusionjax")}


def _modules(*roots: str) -> list[str]:
  paths = []
  for root in roots:
    full = os.path.join(REPO, root)
    paths += [full] if full.endswith(".py") else glob.glob(f"{full}/**/*.py", recursive=True)
  return sorted(paths)


@pytest.mark.parametrize("path", _modules(*LOWER_LAYERS), ids=lambda p: os.path.relpath(p, REPO))
def test_lower_layers_import_neither_the_trainer_nor_the_tasks(path):
  bad = {name for name in _imports(path)
         if name.startswith(("fusionjax.train", "fusionjax.tasks", "fusionjax.main"))}
  assert not bad, f"{os.path.relpath(path, REPO)} imports {sorted(bad)}"


def test_the_trainer_imports_no_model():
  direct = {name for name in _imports(os.path.join(REPO, "fusionjax", "train.py"))
            if name.startswith("fusionjax.models")}
  assert not direct
  # Nor indirectly: importing the trainer loads the model registry, never a network's module.
  loaded = subprocess.run(
      [sys.executable, "-c", "import sys, fusionjax.train; print(' '.join(sorted(m for m in "
       "sys.modules if m.startswith('fusionjax.models.'))))"],
      cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
  assert set(loaded) <= {"fusionjax.models.precision"}, loaded


def test_no_module_is_longer_than_350_lines():
  long = {os.path.relpath(path, REPO): sum(1 for _ in open(path))
          for path in _modules("fusionjax", "scripts", "experiments")}
  assert {path: lines for path, lines in long.items() if lines > 350} == {}
