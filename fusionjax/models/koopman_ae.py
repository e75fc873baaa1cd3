"""Koopman autoencoder (after Frion et al., IEEE TSP 2024): a per-pixel state x is encoded to
z = phi(x), evolves linearly, z_{t+1} = K z_t, and is decoded back, x_t ~ psi(K^t phi(x_0)).

The encoder is an MLP (ReLU, linear last layer), the decoder its mirror; K starts at the
identity. K is kept near-unitary either by a penalty in the loss ('penalty': K is free) or
exactly ('cayley': K = (I - A)^-1 (I + A) with A skew-symmetric, orthogonal by construction).
Powers K^t for any integer t come from repeated squaring, so a rollout to arbitrary dates costs
log2(t) small matrix products per state, never a loop over time.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

OPERATORS = ("penalty", "cayley")


class Mlp(nn.Module):
  """Dense layers with ReLU between them, computing in `dtype`; the last layer is linear."""
  features: Sequence[int]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    for index, width in enumerate(self.features):
      x = nn.Dense(width, dtype=self.dtype, name=f"dense{index}")(x)
      if index < len(self.features) - 1:
        x = nn.relu(x)
    return x


class KoopmanAutoencoder(nn.Module):
  """Attributes:
    state_dim: D, values per pixel state (bands and their rates of change).
    hidden: widths of the encoder's hidden layers (the decoder's, reversed).
    latent_dim: L, the Koopman state size.
    operator: 'penalty' or 'cayley' (see the module docstring).
    dtype: the encoder's and decoder's compute dtype: float32, or bfloat16 for mixed precision
      on GPUs and TPUs. Parameters stay float32, and so do the latent states, K and its
      powers (a rollout multiplies K's rounding errors), the states and the losses: the
      encoder's and decoder's outputs are cast back to float32.
  """
  state_dim: int
  hidden: Sequence[int] = (512, 256)
  latent_dim: int = 32
  operator: str = "penalty"
  dtype: Any = jnp.float32

  def setup(self):
    if self.operator not in OPERATORS:
      raise ValueError(f"model.operator={self.operator!r}: expected one of {OPERATORS}")
    self.encoder = Mlp((*self.hidden, self.latent_dim), self.dtype)
    self.decoder = Mlp((*reversed(self.hidden), self.state_dim), self.dtype)
    shape = (self.latent_dim, self.latent_dim)
    if self.operator == "penalty":
      self.operator_matrix = self.param("K", lambda _, s: jnp.eye(s[0]), shape)
    else:
      self.generator = self.param("generator", nn.initializers.zeros, shape)

  def encode(self, x: jnp.ndarray) -> jnp.ndarray:
    """(..., D) -> (..., L), float32."""
    return self.encoder(x).astype(jnp.float32)

  def decode(self, z: jnp.ndarray) -> jnp.ndarray:
    """(..., L) -> (..., D), float32."""
    return self.decoder(z).astype(jnp.float32)

  def koopman(self) -> jnp.ndarray:
    """K, (L, L)."""
    if self.operator == "penalty":
      return self.operator_matrix
    skew = self.generator - self.generator.T
    identity = jnp.eye(self.latent_dim)
    return jnp.linalg.solve(identity - skew, identity + skew)

  def __call__(self, x0: jnp.ndarray, num_steps: int) -> jnp.ndarray:
    """(B, D) initial states -> (B, num_steps + 1, D) predicted states x_0 ... x_num_steps."""
    z = rollout(self.koopman(), self.encode(x0), num_steps)
    return self.decode(z)


def rollout(koopman: jnp.ndarray, z0: jnp.ndarray, num_steps: int) -> jnp.ndarray:
  """(L, L) K and (B, L) z_0 -> (B, num_steps + 1, L) z_t = K^t z_0 (a lax.scan)."""
  def step(z, _):
    following = z @ koopman.T
    return following, following
  _, later = jax.lax.scan(step, z0, None, length=num_steps)
  return jnp.concatenate([z0[:, None], jnp.moveaxis(later, 0, 1)], axis=1)


def matrix_power_by_steps(koopman: jnp.ndarray, steps: jnp.ndarray, z: jnp.ndarray,
                          max_steps: int) -> jnp.ndarray:
  """K^steps z for integer steps in [0, max_steps], by repeated squaring.

  Args:
    koopman: (L, L). steps: (...) int. z: (..., L). max_steps: a static bound on steps.
  Returns:
    (..., L).
  """
  squares = [koopman]
  for _ in range(max(int(max_steps), 1).bit_length() - 1):
    squares.append(squares[-1] @ squares[-1])
  for bit, power in enumerate(squares):
    use = ((steps >> bit) & 1).astype(bool)[..., None]
    z = jnp.where(use, z @ power.T, z)
  return z


def orthogonality_error(koopman: jnp.ndarray) -> jnp.ndarray:
  """||K K^T - I||_F^2."""
  gram = koopman @ koopman.T
  return jnp.sum((gram - jnp.eye(koopman.shape[0])) ** 2)


Model = KoopmanAutoencoder   # the network of config.model.name="koopman_ae"
