"""The call contract of the fusion networks (config.model.name of the jwst and sentinel2
experiments): `model.apply(params, lr, msi, base)` with

  lr    (B, h, w, C)      the low-resolution bands (or spectral codes), C = out_bands;
  msi   (B, s h, s w, M)  the high-resolution bands, s = scale_factor;
  base  (B, s h, s w, C)  the estimate the network corrects (bicubic upsampling of lr, or a
                          classical fusion such as MTF-GLP; chosen by the task);

returning (B, s h, s w, C) = base + a learned correction. Every network of the family starts
its correction at zero, so an untrained network returns `base` exactly.
"""
from __future__ import annotations

import jax.numpy as jnp


def check_inputs(model_name: str, lr: jnp.ndarray, msi: jnp.ndarray, base: jnp.ndarray, *,
                 out_bands: int, scale_factor: int) -> None:
  """ValueError naming the network and the shapes when the three inputs disagree."""
  if lr.shape[-1] != out_bands:
    raise ValueError(f"{model_name}: low-resolution input has {lr.shape[-1]} bands, expected "
                     f"out_bands={out_bands}")
  fine = (lr.shape[1] * scale_factor, lr.shape[2] * scale_factor)
  if tuple(msi.shape[1:3]) != fine:
    raise ValueError(f"{model_name}: low-resolution input {lr.shape[1:3]} x {scale_factor} "
                     f"does not match the high-resolution image {msi.shape[1:3]}")
  if tuple(base.shape[1:]) != (*fine, out_bands):
    raise ValueError(f"{model_name}: the estimate to correct is {base.shape[1:]}; expected "
                     f"{(*fine, out_bands)}")
