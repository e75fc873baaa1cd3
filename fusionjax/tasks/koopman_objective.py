"""The Koopman family's pure functions: the network, its training loss (Frion et al. 2024) and
the assimilation with it; no data.

The network is `models.build(config.model, state_dim=2 * channels)` (e.g. 'koopman_ae',
fusionjax.models.koopman_ae): a module with `encode` (..., D) -> (..., L), `decode`
(..., L) -> (..., D), `koopman()` the (L, L) operator K, and `__call__(x0, num_steps)` (for its
initialisation), D = 2 * channels being a state's bands and their rates of change.

Loss of a window of states x_t (at offsets t from its start x_0, 'mask' 1 where usable):
prediction_weight * |psi(K^t phi(x_0)) - x_t|^2 + autoencoding_weight * |psi(phi(x_t)) - x_t|^2
+ linearity_weight * |K^t phi(x_0) - phi(x_t)|^2 (means over the usable states of the batch)
+ orthogonality_weight * ||K K^T - I||_F^2.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from fusionjax import chunking, models
from fusionjax.assimilation import driver
from fusionjax.models.koopman_ae import orthogonality_error, rollout

Batch = dict[str, jax.Array]


class KoopmanObjective:
  """The network, its loss and the assimilation with it. `channels`: bands per pixel."""

  def __init__(self, config, channels: int):
    self.config = config
    self.channels = channels
    self.model = models.build(config.model, state_dim=2 * channels)
    self.plan = driver.Plan.from_config(config.assimilation)

  def init_params(self, rng: jax.Array):
    """The network's initial parameters (float32)."""
    return self.model.init(rng, jnp.zeros((1, 2 * self.channels)), 1)

  def _window_sums(self, params, batch: Batch) -> dict[str, jax.Array]:
    """Sums over the usable states of the batch's windows of each window term (its mean over
    the state's values). batch: 'state' (B, M, D) at 'offset' (B, M) steps from the window's
    start (the first), 'mask' (B, M)."""
    state, mask = batch["state"], batch["mask"]
    koopman = self.model.apply(params, method=self.model.koopman)
    encoded = self.model.apply(params, state, method=self.model.encode)       # (B, M, L)
    latent, predicted = self._predicted(params, koopman, encoded[:, 0], batch["offset"])
    reconstructed = self.model.apply(params, encoded, method=self.model.decode)
    masked_sum = lambda squares: jnp.sum(mask * jnp.mean(squares, -1))
    return {"prediction": masked_sum((predicted - state) ** 2),
            "autoencoding": masked_sum((reconstructed - state) ** 2),
            "linearity": masked_sum((latent - encoded) ** 2)}

  def _weighted(self, terms: dict[str, jax.Array]) -> jax.Array:
    """The loss: the terms weighted by their config.loss.<name>_weight."""
    return sum(self.config.loss[f"{name}_weight"] * value for name, value in terms.items())

  def _predicted(self, params, koopman: jax.Array, z0: jax.Array,
                 offset: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(B, L) z_0 and (B, M) offsets -> (B, M, L) K^offset z_0 (a rollout over the window)
    and (B, M, D) its decoded states."""
    latent = jnp.take_along_axis(rollout(koopman, z0, self.config.data.window_steps - 1),
                                 offset[..., None], axis=1)
    return latent, self.model.apply(params, latent, method=self.model.decode)

  def _window_means(self, params, batch: Batch, count: jax.Array) -> dict[str, jax.Array]:
    """The window terms of `batch` summed and divided by `count` usable states."""
    return {name: value / count for name, value in self._window_sums(params, batch).items()}

  def _orthogonality_error(self, params) -> jax.Array:
    return orthogonality_error(self.model.apply(params, method=self.model.koopman))

  def loss_fn(self, params, batch: Batch):
    """(loss, terms): the window terms are means over the batch's usable states."""
    terms = self._window_means(params, batch, jnp.maximum(jnp.sum(batch["mask"]), 1.0))
    terms["orthogonality"] = self._orthogonality_error(params)
    return self._weighted(terms), terms

  def loss_and_gradient(self, params, batch: Batch):
    """((loss, terms), d loss / d params), as jax.value_and_grad(loss_fn) gives, with the
    windows differentiated a chunk at a time (train.chunk_rows window states per device; 0:
    half of `chunking.default_rows`) and their gradients summed: each chunk's sums are
    divided by the whole batch's count of usable states, so that the chunks add up exactly."""
    count = jnp.maximum(jnp.sum(batch["mask"]), 1.0)
    # A state is encoded and decoded twice: half the rows of a chunk that only decodes.
    chunks = chunking.Chunks(len(batch["mask"]), batch["mask"].shape[1],
                             self.config.train.chunk_rows or chunking.default_rows() // 2)

    def chunk_loss(params, chunk):
      terms = self._window_means(params, chunk, count)
      return self._weighted(terms), terms

    def orthogonality_loss(params):
      error = self._orthogonality_error(params)
      return self._weighted({"orthogonality": error}), error

    chunk_gradient = jax.value_and_grad(chunk_loss, has_aux=True)
    split = jax.tree.map(chunks.split, dict(batch))
    zeros = jax.tree.map(lambda shape: jnp.zeros(shape.shape, shape.dtype), jax.eval_shape(
        chunk_gradient, params, jax.tree.map(lambda chunked: chunked[0], split)))
    ((loss, terms), grads), _ = jax.lax.scan(
        lambda total, chunk: (jax.tree.map(jnp.add, total, chunk_gradient(params, chunk)), None),
        zeros, split)
    (orthogonality, error), orthogonality_grads = jax.value_and_grad(
        orthogonality_loss, has_aux=True)(params)
    return ((loss + orthogonality, {**terms, "orthogonality": error}),
            jax.tree.map(jnp.add, grads, orthogonality_grads))

  def eval_fn(self, params, batch: Batch) -> dict[str, jax.Array]:
    """Weighted sums of the per-window prediction MSE on the validation pixels' windows."""
    state, mask = batch["state"], batch["mask"]
    koopman = self.model.apply(params, method=self.model.koopman)
    z0 = self.model.apply(params, state[:, 0], method=self.model.encode)
    _, predicted = self._predicted(params, koopman, z0, batch["offset"])
    per_window = (jnp.sum(mask * jnp.mean((predicted - state) ** 2, -1), -1)
                  / jnp.maximum(jnp.sum(mask, -1), 1.0))
    weight = batch["weight"]
    return {"prediction_mse": jnp.sum(weight * per_window), "weight": jnp.sum(weight)}

  def apply(self, params, *inputs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(P, S_out, channels) assimilated and free-run trajectories of the per-pixel inputs
    (`driver.assimilation_inputs`), with the settings of config.assimilation
    (`driver.trajectories`)."""
    return driver.trajectories(self.model, params, self.plan, self.channels, *inputs)
