"""What the package declares: its dependencies are the ones it imports, its command and its
licence."""
import configparser
import importlib.metadata
import importlib.util
import os
import re

from tests.conftest import REPO

# Distribution name -> the module it installs, where they differ.
MODULE_OF = {"tensorflow-cpu": "tensorflow", "tensorflow-datasets": "tensorflow_datasets",
             "ml-collections": "ml_collections", "orbax-checkpoint": "orbax",
             "absl-py": "absl"}

# Declared because a library imports them without declaring them: name -> that library.
NEEDED_BY = {"tensorboard": "clu", "importlib_resources": "tensorflow_datasets"}


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


def _library_imports(library: str, module: str) -> bool:
  """Whether the installed `library`'s source imports `module`."""
  folder = os.path.dirname(importlib.util.find_spec(library).origin)
  pattern = re.compile(rf"^\s*(?:import|from)\s+{module}\b", re.MULTILINE)
  for root, _, files in os.walk(folder):
    for name in files:
      if name.endswith(".py"):
        with open(os.path.join(root, name), errors="replace") as source:
          if pattern.search(source.read()):
            return True
  return False


def test_every_declared_dependency_is_imported():
  required = [re.split(r"[<>=!~\[ ]", line.strip())[0]
              for line in _setup()["options"]["install_requires"].strip().splitlines()]
  imported = _imported_modules()
  unused = [name for name in required
            if MODULE_OF.get(name, name) not in imported and name not in NEEDED_BY]
  assert not unused, f"declared in setup.cfg but never imported: {unused}"
  for name, library in NEEDED_BY.items():
    assert name in required, f"{name} (imported by {library}) is not declared in setup.cfg"
    assert _library_imports(library, name), f"{library} no longer imports {name}"


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


def test_every_experiment_config_is_installed_with_the_package():
  installed = [line.strip() for line in
               _setup()["options.data_files"]["share/fusionjax/experiments"].strip().splitlines()]
  present = sorted(f"experiments/{name}" for name in os.listdir(os.path.join(REPO, "experiments"))
                   if name.endswith(".py"))
  assert sorted(installed) == present


def test_a_config_path_missing_from_the_working_directory_is_found_installed(tmp_path,
                                                                             monkeypatch):
  from fusionjax import cli
  installed = tmp_path / "share" / "experiments"
  installed.mkdir(parents=True)
  (installed / "jwst.py").write_text("")
  monkeypatch.chdir(tmp_path)     # no experiments/ folder here
  argv = ["fusionjax", "--config=experiments/jwst.py:smoke", "--workdir=w"]
  assert cli.with_installed_config(argv, str(installed)) == [
      "fusionjax", f"--config={installed}/jwst.py:smoke", "--workdir=w"]
  assert cli.with_installed_config(["t", "--config", "experiments/jwst.py"], str(installed)) \
      == ["t", "--config", f"{installed}/jwst.py"]
  # A config that exists from the working directory, or that is not installed, stays.
  (tmp_path / "experiments").mkdir()
  (tmp_path / "experiments" / "jwst.py").write_text("")
  assert cli.with_installed_config(argv, str(installed)) == argv
  assert cli.with_installed_config(["t", "--config=experiments/other.py"], str(installed)) \
      == ["t", "--config=experiments/other.py"]
