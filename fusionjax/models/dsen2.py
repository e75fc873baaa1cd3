"""DSen2 (Lanaras et al., ISPRS J. Photogramm. 2018): a residual CNN that sharpens
low-resolution bands to the grid of high-resolution bands.

The estimate to correct (`base`, on the high-resolution grid: the published network's bicubic
upsampling of the low-resolution bands, or a classical fusion; see fusion_contract) is
concatenated with the high-resolution bands; a conv3x3 - ReLU maps them to `features` channels;
`num_blocks` residual blocks (conv3x3 - ReLU - conv3x3, scaled by `residual_scaling` and added
to the block's input) follow, then a conv3x3 to the output bands, plus `base` (global
residual). No normalisation layers, no pooling: every layer works on the full grid.

Published sizes: DSen2, 6 blocks x 128 features, and the very deep VDSen2, 32 blocks x 256
features (registered as config.model.name="vdsen2"). For the Sentinel-2 20 m case (6 target
bands B5, B6, B7, B8A, B11, B12 guided by the 4 10 m bands B2, B3, B4, B8) they have
1,789,574 and 37,802,246 parameters.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from fusionjax.models import register
from fusionjax.models.fusion_contract import check_inputs


class ScaledResidualBlock(nn.Module):
  """x + residual_scaling * conv3(relu(conv3(x))); the convolutions compute in `dtype`."""
  features: int
  residual_scaling: float
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    """x: (B, H, W, features) -> (B, H, W, features)."""
    h = nn.relu(nn.Conv(self.features, (3, 3), dtype=self.dtype, name="conv1")(x))
    h = nn.Conv(self.features, (3, 3), dtype=self.dtype, name="conv2")(h)
    return x + self.residual_scaling * h


class DSen2(nn.Module):
  """Sharpens (B, h, w, C) low-resolution bands with (B, s*h, s*w, M) high-resolution bands
  into (B, s*h, s*w, C).

  Attributes:
    out_bands: C, the low-resolution bands (or spectral codes) to sharpen.
    scale_factor: s, the resolution ratio.
    num_blocks: residual blocks (published: 6; 32 for VDSen2).
    features: channels of every hidden layer (published: 128; 256 for VDSen2).
    residual_scaling: factor of each block's output before it is added to its input
      (published: 0.1), which keeps a deep stack stable to train.
    zero_init_residual: start the last convolution at zero, so that the untrained model
      returns `base` and training learns the correction (the published network
      initialises every convolution, the last one included, He-uniform; the architecture and
      parameter count are the same).
    dtype: the dtype the convolutions compute in: float32, or bfloat16 for mixed precision on
      GPUs and TPUs. Parameters (and so the optimizer state) stay float32; `base` and the
      output are float32 (the correction is cast back before it is added).
  """
  out_bands: int
  scale_factor: int
  num_blocks: int = 6
  features: int = 128
  residual_scaling: float = 0.1
  zero_init_residual: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, lr: jnp.ndarray, msi: jnp.ndarray, base: jnp.ndarray) -> jnp.ndarray:
    """
    Args:
      lr: (B, h, w, C) low-resolution bands.
      msi: (B, s*h, s*w, M) high-resolution bands.
      base: (B, s*h, s*w, C) the estimate to correct, in the units of `lr`.
    Returns:
      (B, s*h, s*w, C) float32, the sharpened bands, in the units of `lr`.
    """
    check_inputs(type(self).__name__, lr, msi, base, out_bands=self.out_bands,
                 scale_factor=self.scale_factor)
    base = base.astype(jnp.float32)
    h = jnp.concatenate([base, msi], axis=-1)
    h = nn.relu(nn.Conv(self.features, (3, 3), dtype=self.dtype, name="conv_in")(h))
    for i in range(self.num_blocks):
      h = ScaledResidualBlock(self.features, self.residual_scaling, self.dtype,
                              name=f"block{i}")(h)
    output_init = (nn.initializers.zeros if self.zero_init_residual
                   else nn.linear.default_kernel_init)
    residual = nn.Conv(self.out_bands, (3, 3), kernel_init=output_init, dtype=self.dtype,
                       name="conv_out")(h)
    return base + residual.astype(base.dtype)


Model = DSen2   # the network of config.model.name="dsen2"


@register("vdsen2")
class VDSen2(DSen2):
  """DSen2 at the published very deep size: 32 blocks x 256 features."""
  num_blocks: int = 32
  features: int = 256
