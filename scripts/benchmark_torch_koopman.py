"""Reference figures for the Koopman benchmarks: the published Koopman autoencoder in PyTorch.

  pip install torch                                   # a CPU build is enough
  python scripts/benchmark_torch_koopman.py           # training step and assimilation iteration
  python scripts/benchmark_torch_koopman.py --pixels=0   # the training step alone

A straightforward PyTorch implementation of Frion et al. (IEEE TSP 2024): per-pixel state of
10 bands and their first differences (20 values), encoder 20 -> 512 -> 256 -> 32 (ReLU), the
mirrored decoder, K (32 x 32) from the identity; training loss of prediction over t = 0 ... 100,
auto-encoding, latent linearity and 100 ||K K^T - I||^2 on batches of 512 windows, Adam 1e-3;
assimilation of the initial latent states of 100 x 100 pixels over 243 dates with Adam,
decoding the whole trajectory (one assimilation: the published 201 iterations). The training
step's median is also printed as `median_step_s=<seconds>`, which
`python scripts/benchmark.py --config=experiments/sentinel2_koopman.py
--reference=scripts/benchmark_torch_koopman.py --reference_args=--pixels=0` reads, timing the
two training steps in turns.
"""
from __future__ import annotations

import argparse
import sys

from timing import add_timing_arguments, optimizer_step_seconds, print_median

PUBLISHED_ITERATIONS = 201   # Adam iterations of one assimilation in the published setting

try:
  import torch
  from torch import nn
except ImportError:  # pragma: no cover - depends on the environment
  sys.exit("benchmark_torch_koopman.py needs PyTorch: pip install torch (a CPU build is enough)")


class KoopmanAutoencoder(nn.Module):
  def __init__(self, state_dim: int = 20, latent_dim: int = 32):
    super().__init__()
    self.encoder = nn.Sequential(nn.Linear(state_dim, 512), nn.ReLU(), nn.Linear(512, 256),
                                 nn.ReLU(), nn.Linear(256, latent_dim))
    self.decoder = nn.Sequential(nn.Linear(latent_dim, 256), nn.ReLU(), nn.Linear(256, 512),
                                 nn.ReLU(), nn.Linear(512, state_dim))
    self.K = nn.Parameter(torch.eye(latent_dim))

  def rollout(self, z0: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, L) -> (B, steps + 1, L)."""
    states = [z0]
    for _ in range(steps):
      states.append(states[-1] @ self.K.T)
    return torch.stack(states, 1)


def training_loss(model, windows: torch.Tensor) -> torch.Tensor:
  """The published loss on (B, T, D) windows: prediction, auto-encoding, linearity and
  100 ||K K^T - I||^2."""
  encoded = model.encoder(windows)
  latent = model.rollout(encoded[:, 0], windows.shape[1] - 1)
  return (torch.mean((model.decoder(latent) - windows) ** 2)
          + torch.mean((model.decoder(encoded) - windows) ** 2)
          + torch.mean((latent - encoded) ** 2)
          + 100.0 * torch.sum((model.K @ model.K.T - torch.eye(len(model.K))) ** 2))


def assimilation_misfit(model, z0, observations, mask) -> torch.Tensor:
  """Mean squared misfit of the trajectories decoded from (P, L) z0 at every date."""
  decoded = model.decoder(model.rollout(z0, observations.shape[1] - 1))
  return torch.sum(mask[..., None] * (decoded - observations) ** 2) / torch.sum(mask)


def assimilation_iteration_seconds(model, args) -> float:
  """Median seconds of an assimilation iteration: Adam on args.pixels initial latent states,
  the trajectories decoded at args.dates dates, `model` frozen."""
  for parameter in model.parameters():
    parameter.requires_grad_(False)
  z0 = torch.randn(args.pixels, 32, requires_grad=True)
  z_optimizer = torch.optim.Adam([z0], lr=1e-2)
  observations = 0.1 * torch.randn(args.pixels, args.dates, args.state_dim)
  mask = torch.ones(args.pixels, args.dates)
  return optimizer_step_seconds(
      z_optimizer, lambda: assimilation_misfit(model, z0, observations, mask), args.warmup,
      args.steps)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=512)
  parser.add_argument("--window_steps", type=int, default=101)
  parser.add_argument("--pixels", type=int, default=100 * 100,
                      help="assimilated pixels (0: the training step alone)")
  parser.add_argument("--dates", type=int, default=243)
  parser.add_argument("--state_dim", type=int, default=20,
                      help="values per state: 20 (10 bands, published) or 2 (NDVI)")
  add_timing_arguments(parser, warmup=1, steps=3)
  args = parser.parse_args(argv)
  torch.manual_seed(0)
  model = KoopmanAutoencoder(state_dim=args.state_dim)
  optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
  windows = 0.1 * torch.randn(args.batch, args.window_steps, args.state_dim)
  step_s = optimizer_step_seconds(optimizer, lambda: training_loss(model, windows),
                                  args.warmup, args.steps)
  print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
  print(f"  train step ({args.batch} windows x {args.window_steps} steps), median (s)  "
        f"{step_s:.3f}")
  if args.pixels:
    iteration_s = assimilation_iteration_seconds(model, args)
    print(f"  assimilation iteration ({args.pixels} pixels x {args.dates} dates), median (s)  "
          f"{iteration_s:.3f}")
    print(f"  one assimilation, the published {PUBLISHED_ITERATIONS} iterations (s)  "
          f"{PUBLISHED_ITERATIONS * iteration_s:.1f}")
  print_median(step_s)
  return 0


if __name__ == "__main__":
  sys.exit(main())
