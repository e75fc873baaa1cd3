"""What the package declares: its dependencies are the ones it imports, its command and its
licence."""
import configparser
import importlib.metadata
import os
import re

from tests.conftest import REPO

# Distribution name -> the module it installs, where they differ.
MODULE_OF = {"tensorflow-cpu": "tensorflow", "tensorflow-datasets": "tensorflow_datasets",
             "ml-collections": "ml_collections", "orbax-checkpoint": "orbax",
             "absl-py": "absl"}


def _setup():
  setup = configparser.ConfigParser()
  setup.read(os.path.join(REPO, "setup.cfg"))
  return setup


def _imported_modules() -> set[str]:
  modules = set()
  for folder in ("fusionjax", "experiments"):
    for root, _, files in os.walk(os.path.join(REPO, folder)):
      for name in files:
        if name.endswith(".py"):
          with open(os.path.join(root, name)) as source:
            modules.update(re.findall(r"^\s*(?:import|from)\s+([A-Za-z_][A-Za-z0-9_]*)",
                                      source.read(), re.MULTILINE))
  return modules


def test_every_declared_dependency_is_imported():
  required = [re.split(r"[<>=!~\[ ]", line.strip())[0]
              for line in _setup()["options"]["install_requires"].strip().splitlines()]
  imported = _imported_modules()
  unused = [name for name in required if MODULE_OF.get(name, name) not in imported]
  assert not unused, f"declared in setup.cfg but never imported: {unused}"


def test_the_fusionjax_command_is_the_main_module():
  scripts = {entry.name: entry.value
             for entry in importlib.metadata.entry_points(group="console_scripts")}
  assert scripts.get("fusionjax") == "fusionjax.main:run"
  from fusionjax import main
  assert callable(main.run)


def test_the_licence_file_is_the_declared_licence():
  assert _setup()["metadata"]["license"] == "Apache-2.0"
  with open(os.path.join(REPO, "LICENSE")) as licence:
    text = licence.read()
  assert "Apache License" in text and "Version 2.0, January 2004" in text
