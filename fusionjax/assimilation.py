"""Variational data assimilation with a trained Koopman prior (4D-Var-like).

For every pixel at once, find the latent states whose decoded trajectory best matches that
pixel's observed dates (the bands of the state; rates are not observed). With
segment_steps = 0 (strong constraint, as published) the unknown is the initial state z_0 and
x_t = psi(K^t z_0). With segment_steps = n (weak constraint) the period is cut into segments of
n grid steps, each with its own start state z_k, x_t = psi(K^(t - k n) z_k) in segment k, and
the model error between segments is penalised:
  J(z) = mean over observed (pixel, date, band) of rho(x_t - y_t)
         + model_error_weight * mean ||z_(k+1) - K^n z_k||^2
         + background_weight * mean ||c_k - c_b,k||^2
         + smoothness_weight * mean over 4-neighbour pairs ||c_i - c_j||^2,
c being the control (below) and c_b its background, minimised with Adam inside one jitted
loop. rho is the square, or with robust_scale = d > 0 the Huber function (r^2 within d,
2 d |r| - d^2 beyond): variational quality control, so that a few observations far from the
trajectory (haze or cloud edges the cloud mask missed) pull on it with a bounded force. The
decoder runs only at the observed dates. The control variable is either the latent states
themselves ('latent', as published) or states x_k of the data space with z_k = phi(x_k)
('state'), which keeps them on the encoder's image, where the learned dynamics hold. The
result is the whole trajectory: it fills the gaps and forecasts past the last observation
(from the last segment).
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
CONTROLS = ("latent", "state")
STARTS = ("first_state", "mean_state")


@dataclasses.dataclass(frozen=True)
class Settings:
  """iterations of Adam at learning_rate; segment_steps (0: one initial state); control
  ('latent' or 'state'); start, the starting point and background ('first_state': the
  pixel's first state carried back to step 0, the free run; 'mean_state': the mean of all
  its observed states carried back, `mean_background`); the weights of J's terms;
  robust_scale, the residual beyond which the misfit grows linearly (Huber; in the units of
  the observations, 0: quadratic everywhere); log_every iterations the misfit is logged
  (0: never)."""
  iterations: int = 200
  learning_rate: float = 0.01
  segment_steps: int = 0
  control: str = "latent"
  start: str = "first_state"
  model_error_weight: float = 1.0
  background_weight: float = 0.0
  smoothness_weight: float = 0.0
  robust_scale: float = 0.0
  log_every: int = 50

  def __post_init__(self):
    if self.control not in CONTROLS:
      raise ValueError(f"control={self.control!r}: expected one of {CONTROLS}")
    if self.start not in STARTS:
      raise ValueError(f"start={self.start!r}: expected one of {STARTS}")
    for field in ("iterations", "segment_steps", "log_every", "robust_scale"):
      if getattr(self, field) < 0:
        raise ValueError(f"{field}={getattr(self, field)}: expected >= 0")


def segment_count(num_steps: int, segment_steps: int) -> int:
  """Segments covering grid steps 0 ... num_steps - 1 (1 without segments)."""
  return 1 if segment_steps <= 0 else -(-num_steps // segment_steps)


def segment_starts(model: KoopmanAutoencoder, params, z0: jax.Array, count: int,
                   segment_steps: int) -> jax.Array:
  """(P, L) z_0 -> (P, count, L) the free run's state at each segment start, K^(k n) z_0."""
  steps = jnp.broadcast_to(jnp.arange(count) * max(segment_steps, 0), (len(z0), count))
  return latent_at(model, params, z0[:, None], steps, 0)


def latent_at(model: KoopmanAutoencoder, params, z: jax.Array, steps: jax.Array,
              segment_steps: int) -> jax.Array:
  """(P, G, L) segment start states and (P, N) int grid steps -> (P, N, L) the latent state
  at each step, carried from its segment's start (the last segment's past the end)."""
  koopman = model.apply(params, method=model.koopman)
  segment = (jnp.zeros_like(steps) if segment_steps <= 0
             else jnp.minimum(steps // segment_steps, z.shape[1] - 1))
  start = jnp.take_along_axis(z, segment[..., None], axis=1)
  return matrix_power_by_steps(koopman, steps - segment * max(segment_steps, 0), start,
                               MAX_STEPS)


def decode_at(model: KoopmanAutoencoder, params, z: jax.Array, steps: jax.Array,
              segment_steps: int) -> jax.Array:
  """(P, G, L) segment start states and (P, N) grid steps -> (P, N, D) decoded states."""
  return model.apply(params, latent_at(model, params, z, steps, segment_steps),
                     method=model.decode)


def background(model: KoopmanAutoencoder, params, state: jax.Array,
               step: jax.Array) -> jax.Array:
  """z_b = K^-step phi(state): the initial latent state from a (..., D) state seen at grid
  (...) step, (..., L)."""
  inverse = jnp.linalg.inv(model.apply(params, method=model.koopman))
  return matrix_power_by_steps(inverse, step, model.apply(params, state, method=model.encode),
                               MAX_STEPS)


def mean_background(model: KoopmanAutoencoder, params, states: jax.Array, steps: jax.Array,
                    defined: jax.Array, fallback: jax.Array) -> jax.Array:
  """The mean over a pixel's defined states of K^-step phi(state): each observed state
  carried back to step 0. With an orthogonal K it is the z_0 minimising
  sum_t ||K^t z_0 - phi(x_t)||^2, the latent linearity the prior was trained on, so it uses
  every observation where `background` uses one.

  Args:
    states: (P, N, D) states at (P, N) int grid steps, defined (P, N) 1 where usable.
    fallback: (P, L) the start of pixels without any defined state.
  Returns:
    (P, L).
  """
  carried = background(model, params, states, steps)
  count = jnp.sum(defined, axis=1)[:, None]
  mean = jnp.sum(defined[..., None] * carried, axis=1) / jnp.maximum(count, 1.0)
  return jnp.where(count > 0, mean, fallback)


def _log_progress(iteration, misfit):
  logging.info("Assimilation iteration %d: observation misfit (mean squared) %.6g",
               int(iteration), float(misfit))


def misfit_penalty(residual: jax.Array, robust_scale: float) -> jax.Array:
  """rho(residual), elementwise: the square, or the Huber function of scale robust_scale
  (equal to the square within it, growing linearly beyond it with a continuous slope)."""
  if robust_scale <= 0:
    return residual ** 2
  magnitude = jnp.abs(residual)
  return jnp.where(magnitude <= robust_scale, residual ** 2,
                   2 * robust_scale * magnitude - robust_scale ** 2)


def cost(model: KoopmanAutoencoder, params, control: jax.Array, observations: jax.Array,
         steps: jax.Array, mask: jax.Array, background: jax.Array, neighbours: jax.Array,
         settings: Settings) -> tuple[jax.Array, jax.Array]:
  """J and its observation misfit (mean squared, whatever rho J uses).

  control: (P, G, L) latent segment states, or (P, G, D) states for control='state';
  background: its background, the same shape. The background and smoothness terms are taken
  on the control; other arguments as `assimilate`'s.
  """
  z = (model.apply(params, control, method=model.encode) if settings.control == "state"
       else control)
  channels = observations.shape[-1]
  weight = mask[..., None] * jnp.ones((channels,))
  decoded = decode_at(model, params, z, steps, settings.segment_steps)[..., :channels]
  residual = decoded - observations
  count = jnp.maximum(jnp.sum(weight), 1.0)
  misfit = jnp.sum(weight * residual ** 2) / count
  squared_norm = lambda difference: jnp.mean(jnp.sum(difference ** 2, -1))
  total = jnp.sum(weight * misfit_penalty(residual, settings.robust_scale)) / count
  if z.shape[1] > 1:
    power = matrix_power_by_steps(model.apply(params, method=model.koopman),
                                  jnp.full(z.shape[:1] + (z.shape[1] - 1,),
                                           settings.segment_steps), z[:, :-1], MAX_STEPS)
    total += settings.model_error_weight * squared_norm(z[:, 1:] - power)
  if settings.background_weight:
    total += settings.background_weight * squared_norm(control - background)
  if settings.smoothness_weight:
    total += settings.smoothness_weight * squared_norm(control[:, None] - control[neighbours])
  return total, misfit


def assimilate(model: KoopmanAutoencoder, params, observations: jax.Array, steps: jax.Array,
               mask: jax.Array, z_background: jax.Array, neighbours: jax.Array,
               settings: Settings) -> tuple[jax.Array, jax.Array]:
  """Minimises J from z_b; call it under jax.jit (settings static).

  Args:
    observations: (P, N, C) observed bands at grid steps `steps` (P, N) int; mask (P, N) 1
      where observed.
    z_background: (P, G, L) the starting point and background z_b: G segment start states
      (`segment_starts`; G = 1 without segments); (P, G, D) states for control='state'.
    neighbours: (P, 4) int indices of each pixel's neighbours (itself where none).
  Returns:
    the control (shaped as z_background) and the final observation misfit (mean squared).
  """
  data = (observations, steps, mask, z_background, neighbours)
  gradient = jax.value_and_grad(lambda z: cost(model, params, z, *data, settings),
                                has_aux=True)
  optimizer = optax.adam(settings.learning_rate)

  def iterate(iteration, carry):
    z, opt_state = carry
    (_, misfit), grads = gradient(z)
    updates, opt_state = optimizer.update(grads, opt_state)
    if settings.log_every:
      jax.lax.cond((iteration + 1) % settings.log_every == 0,
                   lambda: jax.debug.callback(_log_progress, iteration + 1, misfit),
                   lambda: None)
    return optax.apply_updates(z, updates), opt_state

  z, _ = jax.lax.fori_loop(0, settings.iterations, iterate,
                           (z_background, optimizer.init(z_background)))
  return z, cost(model, params, z, *data, settings)[1]


def analysis(model: KoopmanAutoencoder, params, observations: jax.Array, steps: jax.Array,
             mask: jax.Array, z_free: jax.Array, neighbours: jax.Array,
             settings: Settings) -> jax.Array:
  """The assimilated latent segment start states (P, G, L), from the free run's z_free
  (`segment_starts`) in the settings' control space; other arguments as `assimilate`'s."""
  if settings.control == "state":
    x_free = model.apply(params, z_free, method=model.decode)
    x, _ = assimilate(model, params, observations, steps, mask, x_free, neighbours, settings)
    return model.apply(params, x, method=model.encode)
  z, _ = assimilate(model, params, observations, steps, mask, z_free, neighbours, settings)
  return z


def grid_neighbours(height: int, width: int) -> np.ndarray:
  """(H W, 4) indices of the up, down, left and right neighbours of each pixel of an H x W
  image in row-major order (the pixel itself at the edges)."""
  rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
  index = lambda r, c: np.clip(r, 0, height - 1) * width + np.clip(c, 0, width - 1)
  return np.stack([index(rows - 1, cols), index(rows + 1, cols), index(rows, cols - 1),
                   index(rows, cols + 1)], -1).reshape(-1, 4).astype(np.int32)
