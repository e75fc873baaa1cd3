"""Variational data assimilation with a trained Koopman prior (4D-Var-like, strong constraint).

For every pixel at once, find the initial latent state z_0 whose decoded trajectory
x_t = psi(K^t z_0) best matches that pixel's observed dates (the bands of the state; rates are
not observed), optionally near a background z_b and near its neighbours' z_0:
  J(z_0) = mean over observed (pixel, date, band) of (psi(K^t z_0) - y_t)^2
           + background_weight * mean ||z_0 - z_b||^2
           + smoothness_weight * mean over 4-neighbour pairs ||z_0,i - z_0,j||^2,
minimised with Adam inside one jitted loop. The decoder runs only at the observed dates. The
result is the whole trajectory: it fills the gaps and forecasts past the last observation.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from fusionjax.models.koopman_ae import KoopmanAutoencoder, matrix_power_by_steps

MAX_STEPS = 2 ** 12 - 1   # the furthest grid step a trajectory reaches (56 years of 5 days)


@dataclasses.dataclass(frozen=True)
class Settings:
  """iterations of Adam at learning_rate; the weights of J's optional terms; log_every
  iterations the misfit is logged (0: never)."""
  iterations: int = 200
  learning_rate: float = 0.01
  background_weight: float = 0.0
  smoothness_weight: float = 0.0
  log_every: int = 50


def latent_at(model: KoopmanAutoencoder, params, z0: jax.Array, steps: jax.Array) -> jax.Array:
  """(P, L) z_0 and (P, N) int steps -> (P, N, L) K^step z_0."""
  koopman = model.apply(params, method=model.koopman)
  z = jnp.broadcast_to(z0[:, None], (*steps.shape, z0.shape[-1]))
  return matrix_power_by_steps(koopman, steps, z, MAX_STEPS)


def decode_at(model: KoopmanAutoencoder, params, z0: jax.Array, steps: jax.Array) -> jax.Array:
  """(P, L) z_0 and (P, N) int steps -> (P, N, D) decoded states psi(K^step z_0)."""
  return model.apply(params, latent_at(model, params, z0, steps), method=model.decode)


def background(model: KoopmanAutoencoder, params, state: jax.Array,
               step: jax.Array) -> jax.Array:
  """z_b = K^-step phi(state): the initial latent state from a (P, D) state seen at grid
  (P,) step, (P, L)."""
  inverse = jnp.linalg.inv(model.apply(params, method=model.koopman))
  z = model.apply(params, state, method=model.encode)
  return matrix_power_by_steps(inverse, step, z, MAX_STEPS)


def _log_progress(iteration, misfit):
  logging.info("Assimilation iteration %d: observation misfit (mean squared) %.6g",
               int(iteration), float(misfit))


def assimilate(model: KoopmanAutoencoder, params, observations: jax.Array, steps: jax.Array,
               mask: jax.Array, z_background: jax.Array, neighbours: jax.Array,
               settings: Settings) -> tuple[jax.Array, jax.Array]:
  """Minimises J from z_b; call it under jax.jit (settings static).

  Args:
    observations: (P, N, C) observed bands at grid steps `steps` (P, N) int; mask (P, N) 1
      where observed.
    z_background: (P, L) the starting point and background z_b.
    neighbours: (P, 4) int indices of each pixel's neighbours (itself where none).
  Returns:
    z_0 (P, L) and the final observation misfit (mean squared).
  """
  channels = observations.shape[-1]
  weight = mask[..., None] * jnp.ones((channels,))
  count = jnp.maximum(jnp.sum(weight), 1.0)

  def cost(z0):
    decoded = decode_at(model, params, z0, steps)[..., :channels]
    misfit = jnp.sum(weight * (decoded - observations) ** 2) / count
    total = misfit
    if settings.background_weight:
      total += settings.background_weight * jnp.mean(jnp.sum((z0 - z_background) ** 2, -1))
    if settings.smoothness_weight:
      total += settings.smoothness_weight * jnp.mean(
          jnp.sum((z0[:, None] - z0[neighbours]) ** 2, -1))
    return total, misfit

  optimizer = optax.adam(settings.learning_rate)

  def iterate(iteration, carry):
    z0, opt_state, _ = carry
    (_, misfit), grads = jax.value_and_grad(cost, has_aux=True)(z0)
    updates, opt_state = optimizer.update(grads, opt_state)
    if settings.log_every:
      jax.lax.cond((iteration + 1) % settings.log_every == 0,
                   lambda: jax.debug.callback(_log_progress, iteration + 1, misfit),
                   lambda: None)
    return optax.apply_updates(z0, updates), opt_state, misfit

  z0, _, _ = jax.lax.fori_loop(0, settings.iterations, iterate,
                               (z_background, optimizer.init(z_background), jnp.zeros(())))
  return z0, cost(z0)[1]


def grid_neighbours(height: int, width: int) -> np.ndarray:
  """(H W, 4) indices of the up, down, left and right neighbours of each pixel of an H x W
  image in row-major order (the pixel itself at the edges)."""
  rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
  index = lambda r, c: np.clip(r, 0, height - 1) * width + np.clip(c, 0, width - 1)
  return np.stack([index(rows - 1, cols), index(rows + 1, cols), index(rows, cols - 1),
                   index(rows, cols + 1)], -1).reshape(-1, 4).astype(np.int32)
