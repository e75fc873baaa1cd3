"""Reference figure for the Fusformer benchmark: the published Fusformer in PyTorch.

  pip install torch                                  # a CPU build is enough
  python scripts/benchmark_torch_fusformer.py        # batch 3, 64x64, 31 + 3 bands, x4

A straightforward PyTorch implementation of Fusformer (Hu et al., IEEE GRSL 2022) at its
published size: the low-resolution cube upsampled (bicubic) and concatenated with the
multispectral image, one token per pixel, a linear embedding to 48 features, 2 encoder layers
(pre-LayerNorm multi-head self-attention, 3 heads of 16, then a 48 -> 48 LeakyReLU
feed-forward) and 2 decoder layers (two attention blocks, then the feed-forward), tokens back
to an image, conv3x3 - LeakyReLU - conv3x3, plus the upsampled input; dense attention over all
4096 pixels, L1 loss, Adam 1e-3. Its median step is also printed as `median_step_s=<seconds>`,
which scripts/benchmark.py reads to time it in turns with a config's step, e.g. Sentinel-2's:

  python scripts/benchmark.py --config=experiments/sentinel2.py \
      --reference=scripts/benchmark_torch_fusformer.py \
      --reference_args="--batch=16 --size=32 --bands=6 --msi_bands=4 --scale=2"
"""
from __future__ import annotations

import argparse
import sys

from timing import add_timing_arguments, optimizer_step_seconds, print_train_step

try:
  import torch
  from torch import nn
  from torch.nn import functional
except ImportError:  # pragma: no cover - depends on the environment
  sys.exit("benchmark_torch_fusformer.py needs PyTorch: pip install torch (a CPU build is "
           "enough)")


class SelfAttention(nn.Module):
  """x + MultiHeadSelfAttention(LayerNorm(x)), queries, keys and values without bias."""

  def __init__(self, features: int, heads: int, head_dim: int):
    super().__init__()
    self.heads, self.head_dim = heads, head_dim
    self.norm = nn.LayerNorm(features)
    self.qkv = nn.Linear(features, 3 * heads * head_dim, bias=False)
    self.out = nn.Linear(heads * head_dim, features)

  def forward(self, x):
    batch, length, _ = x.shape
    qkv = self.qkv(self.norm(x)).reshape(batch, length, 3, self.heads, self.head_dim)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)                      # (B, H, N, D) each
    weights = torch.softmax(q @ k.transpose(-1, -2) / self.head_dim ** 0.5, dim=-1)
    attended = (weights @ v).transpose(1, 2).reshape(batch, length, -1)
    return x + self.out(attended)


class FeedForward(nn.Module):
  def __init__(self, features: int, hidden: int):
    super().__init__()
    self.norm = nn.LayerNorm(features)
    self.fc1, self.fc2 = nn.Linear(features, hidden), nn.Linear(hidden, features)

  def forward(self, x):
    return x + self.fc2(functional.leaky_relu(self.fc1(self.norm(x))))


class Fusformer(nn.Module):
  """(B, C, h, w) low-resolution and (B, M, s*h, s*w) multispectral -> (B, C, s*h, s*w)."""

  def __init__(self, bands: int = 31, msi_bands: int = 3, scale: int = 4, features: int = 48,
               heads: int = 3, head_dim: int = 16, hidden: int = 48, layers: int = 2):
    super().__init__()
    self.scale = scale
    self.embed = nn.Linear(bands + msi_bands, features)
    self.blocks = nn.ModuleList()
    for _ in range(layers):                                     # encoder
      self.blocks.extend([SelfAttention(features, heads, head_dim),
                          FeedForward(features, hidden)])
    for _ in range(layers):                                     # decoder
      self.blocks.extend([SelfAttention(features, heads, head_dim),
                          SelfAttention(features, heads, head_dim),
                          FeedForward(features, hidden)])
    self.conv1 = nn.Conv2d(features, features, 3, padding=1)
    self.conv2 = nn.Conv2d(features, bands, 3, padding=1)

  def forward(self, lr, msi):
    upsampled = functional.interpolate(lr, scale_factor=self.scale, mode="bicubic",
                                       align_corners=False)
    batch, _, height, width = msi.shape
    tokens = torch.cat([upsampled, msi], dim=1).flatten(2).transpose(1, 2)   # (B, N, C+M)
    tokens = self.embed(tokens)
    for block in self.blocks:
      tokens = block(tokens)
    features = tokens.transpose(1, 2).reshape(batch, -1, height, width)
    return upsampled + self.conv2(functional.leaky_relu(self.conv1(features)))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=3)
  parser.add_argument("--size", type=int, default=64)
  parser.add_argument("--bands", type=int, default=31)
  parser.add_argument("--msi_bands", type=int, default=3)
  parser.add_argument("--scale", type=int, default=4)
  add_timing_arguments(parser, warmup=2, steps=5)
  args = parser.parse_args(argv)
  torch.manual_seed(0)
  model = Fusformer(args.bands, args.msi_bands, args.scale)
  optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
  low = args.size // args.scale
  lr = torch.rand(args.batch, args.bands, low, low)
  msi = torch.rand(args.batch, args.msi_bands, args.size, args.size)
  truth = torch.rand(args.batch, args.bands, args.size, args.size)
  step_s = optimizer_step_seconds(
      optimizer, lambda: torch.mean(torch.abs(model(lr, msi) - truth)), args.warmup, args.steps)
  print_train_step(f"PyTorch {torch.__version__} reference Fusformer, batch {args.batch} of "
                   f"{args.size}x{args.size}, {args.bands} + {args.msi_bands} bands, "
                   f"x{args.scale}, {torch.get_num_threads()} threads", model, args.batch,
                   step_s)
  return 0


if __name__ == "__main__":
  sys.exit(main())
