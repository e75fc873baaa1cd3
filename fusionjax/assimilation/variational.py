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
loop (each iteration on every observed date, or on a random subset of each pixel's dates:
Settings.dates_per_iteration). rho is the square, or with robust_scale = d > 0 the Huber
function (r^2 within d, 2 d |r| - d^2 beyond): variational quality control, so that a few
observations far from the trajectory (haze or cloud edges the cloud mask missed) pull on it
with a bounded force. The decoder runs only at the observed dates, a cache-sized chunk of
pixels at a time (Settings.chunk_rows). The control variable is either the latent states
themselves ('latent', as published) or states x_k of the data space with z_k = phi(x_k)
('state'), which keeps them on the encoder's image, where the learned dynamics hold. The
result is the whole trajectory: it fills the gaps and forecasts past the last observation
(from the last segment).
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fusionjax import chunking, progress
from fusionjax.models.koopman_ae import KoopmanAutoencoder, matrix_power_by_steps, rollout

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
  (0: never); chunk_rows, the pixel-dates each device decodes at once in the iterations (0:
  `chunking.default_rows`), which changes the speed, not the result; dates_per_iteration k > 0,
  each iteration fits a random k of each pixel's observed dates (an unbiased estimate of J,
  for k times less decoding per iteration than N dates; 0: every observed date)."""
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
  chunk_rows: int = 0
  dates_per_iteration: int = 0

  def __post_init__(self):
    if self.control not in CONTROLS:
      raise ValueError(f"control={self.control!r}: expected one of {CONTROLS}")
    if self.start not in STARTS:
      raise ValueError(f"start={self.start!r}: expected one of {STARTS}")
    for field in ("iterations", "segment_steps", "log_every", "robust_scale", "chunk_rows",
                  "dates_per_iteration"):
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
  """(P, G, L) segment start states and (P, N) grid steps -> (P, N, D) decoded states, a
  chunk of `chunking.default_rows` pixel-dates per device at a time."""
  def block(z, steps):
    return model.apply(params, latent_at(model, params, z, steps, segment_steps),
                       method=model.decode)
  return chunking.Chunks(len(z), steps.shape[1]).map(block, z, steps)


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
  every observation where `background` uses one. The states are encoded a chunk of
  `chunking.default_rows` per device at a time.

  Args:
    states: (P, N, D) states at (P, N) int grid steps, defined (P, N) 1 where usable.
    fallback: (P, L) the start of pixels without any defined state.
  Returns:
    (P, L).
  """
  def block(states, steps, defined, fallback):
    carried = background(model, params, states, steps)
    count = jnp.sum(defined, axis=1)[:, None]
    mean = jnp.sum(defined[..., None] * carried, axis=1) / jnp.maximum(count, 1.0)
    return jnp.where(count > 0, mean, fallback)
  return chunking.Chunks(len(states), states.shape[1]).map(block, states, steps, defined,
                                                           fallback)


# Progress of the iterations, logged from inside the compiled loop (jax.debug.callback).
_ITERATIONS = progress.CompiledLoopLog("Assimilation", "iterations",
                                       "observation misfit (mean squared)")


def misfit_penalty(residual: jax.Array, robust_scale: float) -> jax.Array:
  """rho(residual), elementwise: the square, or the Huber function of scale robust_scale
  (equal to the square within it, growing linearly beyond it with a continuous slope)."""
  if robust_scale <= 0:
    return residual ** 2
  magnitude = jnp.abs(residual)
  return jnp.where(magnitude <= robust_scale, residual ** 2,
                   2 * robust_scale * magnitude - robust_scale ** 2)


@dataclasses.dataclass(frozen=True)
class Problem:
  """What J is taken on, per pixel (P, ...), and the static facts of its layout.

  observations: (P, N, C) observed bands at grid steps `steps` (P, N) int, each below
  num_steps; mask (P, N) 1 where observed. background: the control's background, shaped as
  the control. neighbours: (P, 4) int indices of each pixel's neighbours (itself where none;
  fusionjax.assimilation.driver.grid_neighbours of an image).
  """
  observations: jax.Array
  steps: jax.Array
  mask: jax.Array
  background: jax.Array
  neighbours: jax.Array
  num_steps: int

  @property
  def observation_count(self) -> jax.Array:
    """Observed (pixel, date, band) values, at least 1."""
    return jnp.maximum(jnp.sum(self.mask) * self.observations.shape[-1], 1.0)


def _grid_latents(transposed_powers: jax.Array, z: jax.Array, num_steps: int,
                  segment_steps: int) -> jax.Array:
  """(S', L, L) (K^s)^T for s < S' and (c, G, L) segment start states -> (c, num_steps, L)
  the latent state at every grid step, carried from its segment's start."""
  grid = np.arange(num_steps)
  segment = (np.zeros_like(grid) if segment_steps <= 0
             else np.minimum(grid // segment_steps, z.shape[1] - 1))
  offset = grid - segment * max(segment_steps, 0)
  return jnp.einsum("psi,sij->psj", z[:, segment], transposed_powers[offset])


def _pixel_terms(model: KoopmanAutoencoder, params, transposed_powers: jax.Array,
                 settings: Settings, num_steps: int, normalisers: tuple, control: jax.Array,
                 observations: jax.Array, steps: jax.Array, mask: jax.Array,
                 background: jax.Array, valid: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The terms of J that each pixel holds alone (misfit, model error, background), for a
  block of c pixels: their share of J and their sum of squared residuals.

  normalisers: (observed values, P (G - 1), P G) of the whole problem, by which the sums over
  the block are divided; valid: (c,) 1 for real pixels, 0 for padding. Other arguments as
  `Problem`'s, for the block.
  """
  observed_values, segment_pairs, segment_starts_count = normalisers
  z = (model.apply(params, control, method=model.encode) if settings.control == "state"
       else control)
  latent = jnp.take_along_axis(
      _grid_latents(transposed_powers, z, num_steps, settings.segment_steps),
      steps[..., None], axis=1)
  residual = (model.apply(params, latent, method=model.decode)[..., :observations.shape[-1]]
              - observations)
  weight = mask[..., None]
  total = jnp.sum(weight * misfit_penalty(residual, settings.robust_scale)) / observed_values
  if z.shape[1] > 1:
    jump = z[:, 1:] - z[:, :-1] @ transposed_powers[settings.segment_steps]
    total += (settings.model_error_weight * jnp.sum(valid[:, None, None] * jump ** 2)
              / segment_pairs)
  if settings.background_weight:
    total += (settings.background_weight
              * jnp.sum(valid[:, None, None] * (control - background) ** 2)
              / segment_starts_count)
  return total, jnp.sum(weight * residual ** 2)


def _smoothness(control: jax.Array, neighbours: jax.Array, weight: float) -> jax.Array:
  """weight * the mean over 4-neighbour pairs of ||c_i - c_j||^2."""
  return weight * jnp.mean(jnp.sum((control[:, None] - control[neighbours]) ** 2, -1))


def _decomposition(model: KoopmanAutoencoder, params, problem: Problem, settings: Settings,
                   dates_per_pixel: int):
  """(chunks, the chunked per-pixel data, terms): `_pixel_terms` over chunks of pixels sized
  for dates_per_pixel decoded dates each, the control being shaped as the background."""
  pixels, segments = problem.background.shape[:2]
  koopman = model.apply(params, method=model.koopman)
  power_count = max(problem.num_steps, settings.segment_steps + 1)
  transposed_powers = jnp.moveaxis(
      rollout(koopman, jnp.eye(koopman.shape[0], dtype=koopman.dtype), power_count - 1), 1, 0)
  normalisers = (problem.observation_count, max(pixels * (segments - 1), 1),
                 pixels * segments)
  terms = functools.partial(_pixel_terms, model, params, transposed_powers, settings,
                            problem.num_steps, normalisers)
  chunks = chunking.Chunks(pixels, dates_per_pixel, settings.chunk_rows)
  data = tuple(map(chunks.split, (problem.observations, problem.steps, problem.mask,
                                  problem.background, jnp.ones((pixels,)))))
  return chunks, data, terms


def cost(model: KoopmanAutoencoder, params, control: jax.Array, problem: Problem,
         settings: Settings) -> tuple[jax.Array, jax.Array]:
  """J and its observation misfit (mean squared, whatever rho J uses), at the control:
  (P, G, L) latent segment states, or (P, G, D) states for control='state'."""
  chunks, data, terms = _decomposition(model, params, problem, settings,
                                       problem.steps.shape[1])
  totals, squares = jax.lax.map(lambda block: terms(*block), (chunks.split(control), *data))
  total = jnp.sum(totals)
  if settings.smoothness_weight:
    total += _smoothness(control, problem.neighbours, settings.smoothness_weight)
  return total, jnp.sum(squares) / problem.observation_count


def _sampled_dates(key: jax.Array, count: int, observations: jax.Array, steps: jax.Array,
                   mask: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """A random `count` of each pixel's observed dates, (c, count, ...) observations, steps and
  mask, the mask weighted by observed / kept dates so that the misfit's sum is unbiased."""
  draw = jax.random.uniform(key, mask.shape)
  order = jnp.argsort(jnp.where(mask > 0, draw, 1.0 + draw), axis=1)[:, :count]
  observed = jnp.sum(mask, axis=1, keepdims=True)
  weight = observed / jnp.maximum(jnp.minimum(observed, count), 1.0)
  take = lambda array: jnp.take_along_axis(
      array, order.reshape(order.shape + (1,) * (array.ndim - 2)), axis=1)
  return take(observations), take(steps), take(mask) * weight


def value_and_gradient(model: KoopmanAutoencoder, params, problem: Problem,
                       settings: Settings):
  """(control, key) -> ((J, observation misfit), dJ/dcontrol), as `cost`. Each chunk of pixels
  is decoded and differentiated at once (`Settings.chunk_rows` pixel-dates per device), so its
  activations are reused while still in cache rather than stored for the whole problem.
  With Settings.dates_per_iteration = k > 0, the misfit of each pixel is taken on k of its
  observed dates drawn from `key` (an unbiased estimate of J and its gradient). What does not
  depend on the control is prepared once, outside the returned function."""
  sampled = min(settings.dates_per_iteration, problem.steps.shape[1])
  chunks, data, terms = _decomposition(model, params, problem, settings,
                                       sampled or problem.steps.shape[1])
  gradient_of_terms = jax.value_and_grad(terms, has_aux=True)

  def block_gradient(key, control, observations, steps, mask, background, valid):
    if sampled:
      observations, steps, mask = _sampled_dates(key, sampled, observations, steps, mask)
    return gradient_of_terms(control, observations, steps, mask, background, valid)

  def evaluate(control, key):
    keys = jax.random.split(key, chunks.count)
    (totals, squares), gradients = jax.lax.map(lambda block: block_gradient(*block),
                                               (keys, chunks.split(control), *data))
    total, gradient = jnp.sum(totals), chunks.join(gradients)
    if settings.smoothness_weight:
      smooth, smooth_gradient = jax.value_and_grad(_smoothness)(
          control, problem.neighbours, settings.smoothness_weight)
      total, gradient = total + smooth, gradient + smooth_gradient
    return (total, jnp.sum(squares) / problem.observation_count), gradient
  return evaluate


def assimilate(model: KoopmanAutoencoder, params, problem: Problem,
               settings: Settings) -> tuple[jax.Array, jax.Array]:
  """Minimises J from the background; call it under jax.jit (settings static).

  The background, problem.background, is the starting point: (P, G, L) G segment start states
  (`segment_starts`; G = 1 without segments), or (P, G, D) states for control='state'.
  Returns the control (shaped as the background) and the final observation misfit (mean
  squared).
  """
  gradient = value_and_gradient(model, params, problem, settings)
  optimizer = optax.adam(settings.learning_rate)

  def iterate(iteration, carry):
    z, opt_state = carry
    (_, misfit), grads = gradient(z, jax.random.fold_in(jax.random.key(0), iteration))
    updates, opt_state = optimizer.update(grads, opt_state)
    if settings.log_every:
      jax.lax.cond((iteration + 1) % settings.log_every == 0,
                   lambda: jax.debug.callback(
                       functools.partial(_ITERATIONS.log, total=settings.iterations),
                       iteration + 1, misfit),
                   lambda: None)
    return optax.apply_updates(z, updates), opt_state

  start = problem.background
  z, _ = jax.lax.fori_loop(0, settings.iterations, iterate, (start, optimizer.init(start)))
  return z, cost(model, params, z, problem, settings)[1]


def analysis(model: KoopmanAutoencoder, params, observations: jax.Array, steps: jax.Array,
             mask: jax.Array, z_free: jax.Array, neighbours: jax.Array, num_steps: int,
             settings: Settings) -> jax.Array:
  """The assimilated latent segment start states (P, G, L), from the free run's z_free
  (`segment_starts`) in the settings' control space; other arguments as `Problem`'s."""
  state_control = settings.control == "state"
  start = model.apply(params, z_free, method=model.decode) if state_control else z_free
  control, _ = assimilate(model, params, Problem(observations, steps, mask, start, neighbours,
                                                 num_steps), settings)
  return model.apply(params, control, method=model.encode) if state_control else control

