"""fusionjax: multi-sensor data fusion and super-resolution of space data in JAX/Flax.

`fusionjax.load(workdir)` gives a trained run as a Model with `predict` (fusionjax.api).
"""

__version__ = "0.1.0"


def load(workdir: str):
  """The trained run in `workdir` as a fusionjax.api.Model (imported here on first use, so
  that `import fusionjax` stays light)."""
  from fusionjax import api
  return api.load(workdir)
