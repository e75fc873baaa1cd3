"""Fusformer (Hu et al., IEEE GRSL 2022): transformer fusion of a low-resolution hyperspectral
image with a high-resolution multispectral image.

The defaults are the published architecture: the LR cube upsampled to the MSI grid (`base`:
bicubic as published, or a classical fusion; see fusion_contract) is concatenated with the
MSI; one token per pixel, no position embedding; a linear embedding to 48 features; 2 encoder
layers (pre-LayerNorm attention with 3 heads x 16, then a 48 -> 48 LeakyReLU -> 48
feed-forward) and 2 decoder layers (two attention blocks, then the feed-forward); tokens back
to an image, conv3x3 - LeakyReLU - conv3x3, plus `base`. About 111k parameters for 31 HS and
3 MS bands.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from fusionjax.models import attention
from fusionjax.models.fusion_contract import check_inputs


class SelfAttentionBlock(nn.Module):
  """x + MultiHeadSelfAttention(LayerNorm(x)); queries, keys, values without bias."""
  num_heads: int
  head_dim: int
  implementation: str = "auto"
  query_chunk: int = 64
  dtype: Any = jnp.float32
  window: int = 16

  @nn.compact
  def __call__(self, tokens: jnp.ndarray, image_shape: tuple[int, int]) -> jnp.ndarray:
    """tokens: (B, N, D), the pixels of a (height, width) = image_shape image -> (B, N, D)."""
    batch, length, features = tokens.shape
    normed = nn.LayerNorm(dtype=self.dtype, name="norm")(tokens)
    qkv = nn.DenseGeneral((3, self.num_heads, self.head_dim), use_bias=False, dtype=self.dtype,
                          name="qkv")(normed)
    query, key, value = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    attended = attention.dot_product_attention(query, key, value,
                                               implementation=self.implementation,
                                               query_chunk=self.query_chunk,
                                               image_shape=image_shape, window=self.window)
    attended = attended.reshape(batch, length, self.num_heads * self.head_dim)
    return tokens + nn.Dense(features, dtype=self.dtype, name="out")(attended)


class FeedForwardBlock(nn.Module):
  """x + Dense(LeakyReLU(Dense(LayerNorm(x))))."""
  hidden_dim: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, tokens: jnp.ndarray) -> jnp.ndarray:
    normed = nn.LayerNorm(dtype=self.dtype, name="norm")(tokens)
    hidden = nn.Dense(self.hidden_dim, dtype=self.dtype, name="fc1")(normed)
    return tokens + nn.Dense(tokens.shape[-1], dtype=self.dtype,
                             name="fc2")(nn.leaky_relu(hidden))


class Fusformer(nn.Module):
  """Fuses (B, h, w, C) low-resolution and (B, s*h, s*w, M) high-resolution images into
  (B, s*h, s*w, C), a correction of the (B, s*h, s*w, C) estimate `base`.

  Attributes:
    out_bands: C, the hyperspectral bands (or spectral codes) to produce.
    scale_factor: s, the resolution ratio.
    embed_dim, num_heads, head_dim, mlp_dim: token width, attention heads and their width,
      feed-forward hidden width.
    num_encoder_layers, num_decoder_layers: depth.
    clip_output: clip the result to [0, 1] as the published code does for [0, 1] data; off
      for standardised inputs.
    attention, query_chunk, window: attention kernel (see fusionjax.models.attention); window
      is the side in pixels of the windows of 'windowed' (local) attention.
    zero_init_residual: start the last convolution at zero, so that the untrained model
      returns `base` and training learns the correction (the published code uses the
      default initialisation; the architecture and parameter count are the same).
    dtype: the dtype the layers compute in: float32, or bfloat16 for mixed precision on GPUs
      and TPUs. Parameters (and so the optimizer state) stay float32; `base`, the softmax of
      the chunked attention and the output are float32.
  """
  out_bands: int
  scale_factor: int
  embed_dim: int = 48
  num_heads: int = 3
  head_dim: int = 16
  mlp_dim: int = 48
  num_encoder_layers: int = 2
  num_decoder_layers: int = 2
  clip_output: bool = False
  zero_init_residual: bool = True
  attention: str = "auto"
  query_chunk: int = 64
  dtype: Any = jnp.float32
  window: int = 16

  @nn.compact
  def __call__(self, lr: jnp.ndarray, msi: jnp.ndarray, base: jnp.ndarray) -> jnp.ndarray:
    """lr (B, h, w, C), msi (B, s*h, s*w, M), base (B, s*h, s*w, C) -> (B, s*h, s*w, C)."""
    check_inputs("Fusformer", lr, msi, base, out_bands=self.out_bands,
                 scale_factor=self.scale_factor)
    base = base.astype(jnp.float32)
    if self.clip_output:
      base = jnp.clip(base, 0.0, 1.0)
    batch, height, width, _ = msi.shape
    tokens = jnp.concatenate([base, msi], axis=-1).reshape(batch, height * width, -1)
    tokens = nn.Dense(self.embed_dim, dtype=self.dtype, name="embed")(tokens)
    attn = (self.num_heads, self.head_dim, self.attention, self.query_chunk, self.dtype,
            self.window)
    image = (height, width)
    for i in range(self.num_encoder_layers):
      tokens = SelfAttentionBlock(*attn, name=f"encoder{i}_attn")(tokens, image)
      tokens = FeedForwardBlock(self.mlp_dim, self.dtype, name=f"encoder{i}_ff")(tokens)
    for i in range(self.num_decoder_layers):
      tokens = SelfAttentionBlock(*attn, name=f"decoder{i}_attn1")(tokens, image)
      tokens = SelfAttentionBlock(*attn, name=f"decoder{i}_attn2")(tokens, image)
      tokens = FeedForwardBlock(self.mlp_dim, self.dtype, name=f"decoder{i}_ff")(tokens)
    features = tokens.reshape(batch, height, width, self.embed_dim)
    features = nn.leaky_relu(nn.Conv(self.embed_dim, (3, 3), dtype=self.dtype,
                                     name="conv1")(features))
    output_init = (nn.initializers.zeros if self.zero_init_residual
                   else nn.linear.default_kernel_init)
    residual = nn.Conv(self.out_bands, (3, 3), kernel_init=output_init, dtype=self.dtype,
                       name="conv2")(features)
    fused = base + residual.astype(base.dtype)
    return jnp.clip(fused, 0.0, 1.0) if self.clip_output else fused


Model = Fusformer   # the network of config.model.name="fusformer"
