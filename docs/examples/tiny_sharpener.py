"""A tiny sharpening CNN: the model of docs/extending.md, "Add a model".

Use it in any fusion experiment without editing fusionjax (this folder on PYTHONPATH):

  PYTHONPATH=docs/examples python -m fusionjax.main \
      --config=experiments/sentinel2.py:model=tiny_sharpener:TinySharpener --workdir=runs/tiny
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from fusionjax import models


@models.register("tiny_sharpener")   # also known by name once this module is imported
class TinySharpener(nn.Module):
  """(B, h, w, C) low-resolution and (B, s h, s w, M) high-resolution bands -> (B, s h, s w, C),
  a correction of the (B, s h, s w, C) estimate `base` the task gives (bicubic or MTF-GLP).

  Attributes:
    out_bands, scale_factor: C and s, set by the fusion task from its data.
    features: width of the hidden convolution.
    dtype: compute dtype (the experiments' model.dtype).
  """
  out_bands: int
  scale_factor: int
  features: int = 16
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, lr: jnp.ndarray, msi: jnp.ndarray, base: jnp.ndarray) -> jnp.ndarray:
    hidden = nn.relu(nn.Conv(self.features, (3, 3), dtype=self.dtype)(
        jnp.concatenate([base, msi], axis=-1)))
    detail = nn.Conv(self.out_bands, (3, 3), kernel_init=nn.initializers.zeros,
                     dtype=self.dtype)(hidden)
    return base + detail.astype(base.dtype)
