"""A leading axis (pixels, windows) cut into chunks for a scan, so that each chunk's
activations stay in cache while they are used, and each device keeps its own rows."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def default_rows() -> int:
  """Rows (pixel-dates, window-states) one device works on at once when none is configured: a
  block whose MLP activations stay in a CPU core's cache, or a large one on accelerators."""
  return 4096 if jax.default_backend() == "cpu" else 2 ** 20


class Chunks:
  """`items` (P) regrouped into `count` chunks of `size` for a scan, padded at the end.

  Item p = i count + j goes to chunk j, place i: a chunk holds items of every device (the size
  is a multiple of the device count), so each device works through its own items, chunk by
  chunk, without moving them. Each item holds `rows_per_item` rows (its dates or states), and
  a chunk about `rows` rows per device (0: `default_rows`).
  """

  def __init__(self, items: int, rows_per_item: int, rows: int = 0):
    devices = jax.device_count()
    per_device = max((rows or default_rows()) // max(rows_per_item, 1), 1)
    self.size = min(per_device, -(-items // devices)) * devices
    self.count = -(-items // self.size)
    self.items = items

  def split(self, array: jax.Array) -> jax.Array:
    """(P, ...) -> (count, size, ...), zeros where padded."""
    padding = self.count * self.size - self.items
    padded = jnp.pad(array, [(0, padding)] + [(0, 0)] * (array.ndim - 1))
    return jnp.moveaxis(padded.reshape(self.size, self.count, *array.shape[1:]), 1, 0)

  def map(self, fn, *arrays: jax.Array):
    """fn(*chunk) over the chunks of `arrays` (each (P, ...)), one chunk after the other; its
    (size, ...) outputs joined back to (P, ...)."""
    return jax.tree.map(self.join, jax.lax.map(lambda chunk: fn(*chunk),
                                               tuple(map(self.split, arrays))))

  def join(self, chunked: jax.Array) -> jax.Array:
    """(count, size, ...) -> (P, ...)."""
    flat = jnp.moveaxis(chunked, 0, 1).reshape(-1, *chunked.shape[2:])
    return flat[:self.items]
