"""The compute dtype of a model's layers (`config.model.dtype`).

Every model keeps its parameters, and so the optimizer state, in float32. With a compute dtype
of bfloat16 (or float16) its dense and convolution layers cast their inputs and parameters to
it, which is how GPUs and TPUs reach their matrix-unit peak; the physical quantities around the
network (temperatures in K, reflectances, the upsampled cube, the Koopman operator) stay
float32.
"""
from __future__ import annotations

import jax.numpy as jnp

COMPUTE_DTYPES = ("float32", "bfloat16", "float16")


def compute_dtype(name: str) -> jnp.dtype:
  """'float32' | 'bfloat16' | 'float16' -> the jnp dtype; anything else is a ValueError."""
  if name not in COMPUTE_DTYPES:
    raise ValueError(f"model.dtype={name!r}: expected one of {COMPUTE_DTYPES}")
  return jnp.dtype(name)


def dtype_name(dtype) -> str:
  """The name `compute_dtype` takes for `dtype` (e.g. jnp.float32 -> 'float32')."""
  return jnp.dtype(dtype).name
