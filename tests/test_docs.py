"""The user docs match the code: relative links resolve, and the Python API's examples call
each experiment's `predict_arrays` with arguments it takes."""
import ast
import inspect
import os
import re

import pytest

from fusionjax import tasks
from tests.conftest import REPO

DOCS = ["README.md"] + [os.path.join("docs", name)
                        for name in sorted(os.listdir(os.path.join(REPO, "docs")))
                        if name.endswith(".md")]


@pytest.mark.parametrize("page", DOCS)
def test_relative_links_resolve(page):
  with open(os.path.join(REPO, page)) as source:
    text = source.read()
  folder = os.path.dirname(os.path.join(REPO, page))
  broken = [target for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
            if "://" not in target and not os.path.exists(os.path.join(folder, target))]
  assert not broken, f"{page}: links to missing files {broken}"


# docs/api.md section -> the task it shows.
API_SECTIONS = {"Sentinel-2": "sentinel2_fusion", "JWST": "jwst_fusion",
                "MODIS land-surface temperature": "modis_lst", "Koopman prior": "sentinel2_koopman"}


def _predict_keywords(code: str) -> set[str]:
  """The keyword names of the model.predict(...) calls in the Python `code`."""
  return {keyword.arg for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Call)
          and isinstance(node.func, ast.Attribute) and node.func.attr == "predict"
          for keyword in node.keywords}


def test_the_api_examples_call_predict_arrays_with_its_arguments():
  with open(os.path.join(REPO, "docs", "api.md")) as source:
    sections = re.split(r"^## ", source.read(), flags=re.MULTILINE)[1:]
  shown = {section.splitlines()[0].strip(): section for section in sections}
  assert set(API_SECTIONS) <= set(shown)
  for title, task in API_SECTIONS.items():
    code = "\n".join(re.findall(r"```python\n(.*?)```", shown[title], re.DOTALL))
    keywords = _predict_keywords(code)
    assert keywords, f"docs/api.md, {title}: no model.predict(...) example"
    parameters = inspect.signature(tasks.task_class(task).predict_arrays).parameters
    unknown = keywords - set(parameters)
    assert not unknown, f"docs/api.md, {title}: predict takes no {sorted(unknown)}"
