"""SRCNN baseline for land-surface-temperature super-resolution (after Dong et al., "Image
super-resolution using deep convolutional networks", TPAMI 2016).

Three convolutions on the fine grid: patch extraction (9 x 9 -> 64 channels), non-linear
mapping (5 x 5 -> 32; the paper's cheaper setting is 1 x 1) and reconstruction (5 x 5 -> 1),
ReLU between them, 'SAME' padding. As in the paper the input is the bicubic upsampling of the
coarse image; here it is joined by the fine guide (NDVI, reflectances, climatology) and the
network predicts a correction to the upsampled temperatures (global residual), and a final
step can rescale each coarse footprint so that the result aggregates (Stefan-Boltzmann)
exactly to its input: the steps of `fusionjax.models.temperature`, shared with the
multi-residual U-Net (`fusionjax.models.mrunet`). With the NDVI guide the default 9-5-5
network has 62,465 parameters (9-1-5: 13,313).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from fusionjax.models import temperature


class Srcnn(nn.Module):
  """Coarse land-surface temperature (+ fine guide) -> fine land-surface temperature.

  Attributes:
    features: channels of the hidden convolutions (the paper's 64, 32).
    kernel_sizes: kernel size of every convolution, one more than `features` (the last is the
      reconstruction layer): (9, 5, 5), the paper's best setting, or (9, 1, 5), its basic one.
    temperature_scale_k: kelvin per unit of the network's input and output.
    scale_conditioning: adds log2(fine pixel size in km) as an input channel.
    enforce_consistency: rescales each coarse footprint of the result so that its
      Stefan-Boltzmann aggregate equals the input exactly.
    climatology: the guide's last two channels are the location's climatological pattern (K)
      and its weight (set by the task from the data); the pattern is scaled like the
      temperatures.
    dtype: the convolutions' compute dtype: float32, or bfloat16 for mixed precision. The
      parameters stay float32, and so do the temperatures: the network's input is cast to
      `dtype` and its correction back to float32 before it is added to the upsampled
      temperatures.
  """
  features: Sequence[int] = (64, 32)
  kernel_sizes: Sequence[int] = (9, 5, 5)
  temperature_scale_k: float = 5.0
  scale_conditioning: bool = False
  enforce_consistency: bool = True
  climatology: bool = False
  dtype: Any = jnp.float32

  @property
  def size_multiple(self) -> int:
    """The fine grid's height and width must be multiples of this: any size will do."""
    return 1

  @nn.compact
  def __call__(self, coarse_k: jnp.ndarray, guide: jnp.ndarray,
               fine_km: jnp.ndarray) -> jnp.ndarray:
    """The LST networks' call, as `mrunet.LstSuperResolution`: (B, h, w, 1) coarse K,
    (B, H, W, G) fine guide and (B,) fine pixel km -> (B, H, W, 1) fine K."""
    if len(self.kernel_sizes) != len(self.features) + 1:
      raise ValueError(f"Srcnn: {len(self.kernel_sizes)} kernel sizes for "
                       f"{len(self.features) + 1} convolutions (features {self.features} and "
                       "the reconstruction layer)")
    upsampled, h = temperature.network_input(
        coarse_k, guide, temperature_scale_k=self.temperature_scale_k,
        climatology=self.climatology, network="Srcnn")
    if self.scale_conditioning:
      h = temperature.append_log_scale(h, fine_km)
    for layer, (features, size) in enumerate(zip(self.features, self.kernel_sizes)):
      h = nn.relu(nn.Conv(features, (size, size), padding="SAME", dtype=self.dtype,
                          name=f"conv{layer}")(h))
    size = self.kernel_sizes[-1]
    correction = nn.Conv(1, (size, size), padding="SAME", kernel_init=nn.initializers.zeros,
                         dtype=self.dtype, name="output")(h)
    return temperature.corrected(upsampled, correction, coarse_k,
                                 temperature_scale_k=self.temperature_scale_k,
                                 enforce_consistency=self.enforce_consistency)


Model = Srcnn   # the network of config.model.name="srcnn"
