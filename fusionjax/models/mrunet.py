"""Multi-residual U-Net for land-surface-temperature super-resolution (after Nguyen et al.,
EUSIPCO 2022), with an optional high-resolution guide (NDVI) and scale conditioning.

The network sees the coarse temperatures upsampled (bicubic) to the fine grid and predicts a
correction to them (global residual). Each level has a residual double convolution; strided
convolutions go down, transposed convolutions go up, with skips. The published network has
64 -> 1024 channels (about 45M parameters); `widths` sets ours. A final step can rescale each
coarse footprint so that the result aggregates (Stefan-Boltzmann) exactly to its input. The
steps around the network (upsampling, normalisation, consistency) are those of
`fusionjax.models.temperature`, shared with the other LST networks.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from fusionjax.models import temperature


class ResidualDoubleConv(nn.Module):
  """relu(x' + conv3(relu(conv3(x)))), x' = x or its 1x1 projection to `features`; the
  convolutions compute in `dtype`."""
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    """x: (B, H, W, C) -> (B, H, W, features)."""
    shortcut = x if x.shape[-1] == self.features else nn.Conv(
        self.features, (1, 1), dtype=self.dtype, name="project")(x)
    h = nn.relu(nn.Conv(self.features, (3, 3), dtype=self.dtype, name="conv1")(x))
    h = nn.Conv(self.features, (3, 3), dtype=self.dtype, name="conv2")(h)
    return nn.relu(shortcut + h)


class MultiResidualUNet(nn.Module):
  """(B, H, W, C) -> (B, H, W, out_channels); H and W multiples of 2^(len(widths) - 1).

  The output convolution starts at zero, so the untrained network outputs zeros. Every layer
  computes in `dtype` (the output too).
  """
  widths: Sequence[int] = (32, 64, 128, 256)
  out_channels: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    depth = len(self.widths) - 1
    if x.shape[1] % 2 ** depth or x.shape[2] % 2 ** depth:
      raise ValueError(f"MultiResidualUNet: a {x.shape[1]} x {x.shape[2]} input is not a "
                       f"multiple of {2 ** depth} (2 ^ the {depth} downsamplings)")
    skips = []
    h = x
    for level, features in enumerate(self.widths[:-1]):
      h = ResidualDoubleConv(features, self.dtype, name=f"down{level}")(h)
      skips.append(h)
      h = nn.Conv(self.widths[level + 1], (3, 3), strides=(2, 2), dtype=self.dtype,
                  name=f"downsample{level}")(h)
    h = ResidualDoubleConv(self.widths[-1], self.dtype, name="bottleneck")(h)
    for level in reversed(range(depth)):
      features = self.widths[level]
      h = nn.ConvTranspose(features, (2, 2), strides=(2, 2), dtype=self.dtype,
                           name=f"upsample{level}")(h)
      h = ResidualDoubleConv(features, self.dtype, name=f"up{level}")(
          jnp.concatenate([h, skips[level]], -1))
    return nn.Conv(self.out_channels, (1, 1), kernel_init=nn.initializers.zeros,
                   dtype=self.dtype, name="output")(h)


def space_to_depth(x: jnp.ndarray, size: int) -> jnp.ndarray:
  """(B, H, W, C) -> (B, H / size, W / size, size * size * C): each size x size patch in depth."""
  batch, height, width, channels = x.shape
  x = x.reshape(batch, height // size, size, width // size, size, channels)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(batch, height // size, width // size, -1)


def depth_to_space(x: jnp.ndarray, size: int) -> jnp.ndarray:
  """Inverse of `space_to_depth`: (B, h, w, size * size * C) -> (B, size h, size w, C)."""
  batch, height, width, depth = x.shape
  x = x.reshape(batch, height, width, size, size, depth // (size * size))
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(batch, height * size, width * size, -1)


class LstSuperResolution(nn.Module):
  """Coarse land-surface temperature (+ fine guide) -> fine land-surface temperature.

  Attributes:
    widths: channels per U-Net level.
    patch_size: the U-Net runs on patch_size x patch_size patches of the fine grid stacked in
      depth (space to depth), and its output is unstacked back to the fine grid; 1 runs it on
      the fine grid itself.
    temperature_scale_k: kelvin per unit of the network's input and output.
    scale_conditioning: adds log2(fine pixel size in km) as an input channel, so one network
      can learn how the fine structure changes with scale.
    enforce_consistency: rescales each coarse footprint of the result so that its
      Stefan-Boltzmann aggregate equals the input exactly.
    climatology: the guide's last two channels are the location's climatological pattern (K)
      and its weight (see fusionjax.data.modis.climatology); the pattern is scaled like the
      temperatures.
    dtype: the U-Net's compute dtype: float32, or bfloat16 for mixed precision on GPUs and
      TPUs. Its parameters stay float32, and so do the temperatures (bfloat16 resolves only
      about 1 K at 300 K): the network's input is cast to `dtype` and its correction back to
      float32 before it is added to the upsampled temperatures.
  """
  widths: Sequence[int] = (96, 192, 316)
  patch_size: int = 4
  temperature_scale_k: float = 5.0
  scale_conditioning: bool = False
  enforce_consistency: bool = True
  climatology: bool = False
  dtype: Any = jnp.float32

  @property
  def size_multiple(self) -> int:
    """The fine grid's height and width must be multiples of this (fine pixels): the patch
    size times 2 ^ the U-Net's downsamplings."""
    return self.patch_size * 2 ** (len(self.widths) - 1)

  @nn.compact
  def __call__(self, coarse_k: jnp.ndarray, guide: jnp.ndarray,
               fine_km: jnp.ndarray) -> jnp.ndarray:
    """
    Args:
      coarse_k: (B, h, w, 1) coarse temperatures, K.
      guide: (B, H, W, G) fine guide images (e.g. NDVI; G = 0 without a guide; with
        `climatology`, the last two are its pattern, K, and weight); H = f h.
      fine_km: (B,) fine pixel size, km (used with scale_conditioning).
    Returns:
      (B, H, W, 1) fine temperatures, K.
    """
    upsampled, images = temperature.network_input(
        coarse_k, guide, temperature_scale_k=self.temperature_scale_k,
        climatology=self.climatology, network="LstSuperResolution")
    patches = space_to_depth(images, self.patch_size)
    if self.scale_conditioning:   # one channel on the patch grid
      patches = temperature.append_log_scale(patches, fine_km)
    unet = MultiResidualUNet(self.widths, out_channels=self.patch_size ** 2, dtype=self.dtype,
                             name="unet")
    correction = depth_to_space(unet(patches).astype(upsampled.dtype), self.patch_size)
    return temperature.corrected(upsampled, correction, coarse_k,
                                 temperature_scale_k=self.temperature_scale_k,
                                 enforce_consistency=self.enforce_consistency)


Model = LstSuperResolution   # the network of config.model.name="mrunet"
