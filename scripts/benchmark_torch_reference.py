"""Reference figure for the LST benchmark: the published multi-residual U-Net in PyTorch.

  pip install torch                                  # a CPU build is enough
  python scripts/benchmark_torch_reference.py        # batch 24 of 64x64, MSE, Adam 1e-3

A straightforward PyTorch implementation of the network Nguyen et al. (EUSIPCO 2022) train for
MODIS LST super-resolution: 64 -> 128 -> 256 -> 512 -> 1024 channels, residual double
convolutions with batch normalisation, strided-convolution downsampling, one residual block at
the bottleneck, transposed-convolution upsampling with skips, and a global residual over the
bicubic-upsampled input. Its median step is also printed as `median_step_s=<seconds>`, which
`python scripts/benchmark.py --config=experiments/modis_lst.py
--reference=scripts/benchmark_torch_reference.py` reads, timing it in turns with the LST
experiment's step (batch 24 of 64x64, as here).
"""
from __future__ import annotations

import argparse
import sys

from timing import add_timing_arguments, optimizer_step_seconds, print_train_step

try:
  import torch
  from torch import nn
except ImportError:  # pragma: no cover - depends on the environment
  sys.exit("benchmark_torch_reference.py needs PyTorch: pip install torch (a CPU build is enough)")

WIDTHS = (64, 128, 256, 512, 1024)


class ResidualDoubleConv(nn.Module):
  """relu(x' + BN(conv3(relu(BN(conv3(x)))))), x' = x or its 1x1 projection."""

  def __init__(self, in_channels: int, out_channels: int):
    super().__init__()
    self.body = nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels))
    self.shortcut = (nn.Identity() if in_channels == out_channels
                     else nn.Conv2d(in_channels, out_channels, 1))

  def forward(self, x):
    return torch.relu(self.shortcut(x) + self.body(x))


class PublishedUNet(nn.Module):
  """(B, 1, H, W) upsampled coarse LST -> (B, 1, H, W) fine LST (global residual)."""

  def __init__(self, widths=WIDTHS):
    super().__init__()
    self.down = nn.ModuleList()
    self.downsample = nn.ModuleList()
    channels = 1
    for level, width in enumerate(widths[:-1]):
      self.down.append(ResidualDoubleConv(channels, width))
      self.downsample.append(nn.Conv2d(width, widths[level + 1], 3, stride=2, padding=1))
      channels = widths[level + 1]
    self.bottleneck = ResidualDoubleConv(channels, channels)
    self.upsample = nn.ModuleList()
    self.up = nn.ModuleList()
    for width in reversed(widths[:-1]):
      self.upsample.append(nn.ConvTranspose2d(channels, width, 2, stride=2))
      self.up.append(ResidualDoubleConv(2 * width, width))
      channels = width
    self.output = nn.Conv2d(channels, 1, 1)

  def forward(self, x):
    skips, h = [], x
    for block, downsample in zip(self.down, self.downsample):
      h = block(h)
      skips.append(h)
      h = downsample(h)
    h = self.bottleneck(h)
    for upsample, block, skip in zip(self.upsample, self.up, reversed(skips)):
      h = block(torch.cat([upsample(h), skip], dim=1))
    return x + self.output(h)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=24)
  parser.add_argument("--size", type=int, default=64)
  add_timing_arguments(parser, warmup=2, steps=5)
  args = parser.parse_args(argv)
  torch.manual_seed(0)
  model = PublishedUNet()
  optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
  inputs = 290.0 + 10.0 * torch.rand(args.batch, 1, args.size, args.size)
  truth = inputs + torch.randn_like(inputs)
  step_s = optimizer_step_seconds(optimizer, lambda: torch.mean((model(inputs) - truth) ** 2),
                                  args.warmup, args.steps)
  print_train_step(f"PyTorch {torch.__version__} reference U-Net, batch {args.batch} of "
                   f"{args.size}x{args.size}, {torch.get_num_threads()} threads", model,
                   args.batch, step_s)
  return 0


if __name__ == "__main__":
  sys.exit(main())
