"""Multi-head dot-product attention kernels (pure functions).

'xla' is jax.nn.dot_product_attention (XLA's implementation; 'cudnn' asks for cuDNN's fused
kernel on NVIDIA GPUs). 'chunked' is exact softmax attention computed `query_chunk` queries at a
time against all keys, with a hand-written backward pass that recomputes each chunk's
probabilities from the saved log-sum-exp (as FlashAttention does): memory holds one chunk's
logits instead of all N^2, they stay in cache, and on CPUs it is several times faster than
'xla'. 'windowed' is local attention: each token attends to the tokens of its own
non-overlapping window of `window` x `window` pixels only, so that memory and arithmetic grow
linearly with the image however large it is (for very large scenes; not the published model).
'auto' is 'cudnn' where cuDNN's fused kernel applies (an NVIDIA GPU, 16-bit compute, head width
a multiple of 8 up to 128) and 'chunked' everywhere else.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

IMPLEMENTATIONS = ("auto", "chunked", "xla", "cudnn", "windowed")


def resolve(implementation: str, dtype, head_dim: int, device_kind: str) -> str:
  """The kernel that `implementation` names on a device of kind `device_kind` (e.g. 'NVIDIA
  H100 80GB HBM3', 'cpu') for `dtype` inputs with heads `head_dim` wide: 'auto' becomes
  'cudnn' where cuDNN's fused attention takes such inputs, 'chunked' elsewhere; the others are
  themselves."""
  if implementation != "auto":
    return implementation
  fused = (device_kind.startswith("NVIDIA") and jnp.dtype(dtype) in (jnp.bfloat16, jnp.float16)
           and head_dim % 8 == 0 and head_dim <= 128)
  return "cudnn" if fused else "chunked"


def _split(x, chunk):
  """(G, N, ...) -> (N / chunk, G, chunk, ...)."""
  return x.reshape(x.shape[0], -1, chunk, *x.shape[2:]).swapaxes(0, 1)


def _merge(x):
  """(N / chunk, G, chunk, ...) -> (G, N, ...)."""
  x = x.swapaxes(0, 1)
  return x.reshape(x.shape[0], -1, *x.shape[3:])


def _forward(query, key, value, chunk):
  scale = query.shape[-1] ** -0.5

  def attend(q):
    logits = jnp.einsum("gqd,gkd->gqk", q, key) * scale
    top = jnp.max(logits, axis=-1, keepdims=True)
    weights = jnp.exp(logits - top)
    total = jnp.sum(weights, axis=-1, keepdims=True)
    out = jnp.einsum("gqk,gkd->gqd", weights, value) / total
    return out, (top + jnp.log(total))[..., 0]

  out, logsumexp = jax.lax.map(attend, _split(query, chunk))
  return _merge(out), _merge(logsumexp)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _flash(query, key, value, chunk):
  return _forward(query, key, value, chunk)[0]


def _flash_forward(query, key, value, chunk):
  out, logsumexp = _forward(query, key, value, chunk)
  return out, (query, key, value, out, logsumexp)


def _flash_backward(chunk, residuals, d_out):
  query, key, value, out, logsumexp = residuals
  scale = query.shape[-1] ** -0.5
  delta = jnp.sum(d_out * out, axis=-1)

  def accumulate(carry, chunk_inputs):
    d_key, d_value = carry
    q, d_o, lse, dlt = chunk_inputs
    weights = jnp.exp(jnp.einsum("gqd,gkd->gqk", q, key) * scale - lse[..., None])
    d_value = d_value + jnp.einsum("gqk,gqd->gkd", weights, d_o)
    d_logits = weights * (jnp.einsum("gqd,gkd->gqk", d_o, value) - dlt[..., None]) * scale
    d_key = d_key + jnp.einsum("gqk,gqd->gkd", d_logits, q)
    return (d_key, d_value), jnp.einsum("gqk,gkd->gqd", d_logits, key)

  (d_key, d_value), d_query = jax.lax.scan(
      accumulate, (jnp.zeros_like(key), jnp.zeros_like(value)),
      (_split(query, chunk), _split(d_out, chunk), _split(logsumexp, chunk),
       _split(delta, chunk)))
  return _merge(d_query), d_key, d_value


_flash.defvjp(_flash_forward, _flash_backward)


def chunked_attention(query, key, value, *, query_chunk: int = 64):
  """Exact softmax attention, `query_chunk` queries at a time.

  Args:
    query, key, value: (B, N, H, D).
    query_chunk: queries per chunk; N is padded up to a multiple (padding is discarded).
  Returns:
    (B, N, H, D) in the inputs' dtype, equal to dense attention up to float rounding. The
    softmax and its running sums are computed in float32 whatever the inputs' dtype.
  """
  dtype = query.dtype
  query, key, value = (x.astype(jnp.float32) for x in (query, key, value))
  batch, length, heads, dim = query.shape
  fold = lambda x: x.transpose(0, 2, 1, 3).reshape(batch * heads, length, dim)  # noqa: E731
  chunk = min(query_chunk, length)
  padded = -(-length // chunk) * chunk
  q = jnp.pad(fold(query), ((0, 0), (0, padded - length), (0, 0)))
  out = _flash(q, fold(key), fold(value), chunk)[:, :length]
  return out.reshape(batch, heads, length, dim).transpose(0, 2, 1, 3).astype(dtype)


def windowed_attention(query, key, value, *, image_shape: tuple[int, int], window: int):
  """Softmax attention within non-overlapping square windows of the image.

  Args:
    query, key, value: (B, N, H, D), the N = height * width tokens of an image in row-major
      order.
    image_shape: (height, width), each a multiple of `window`.
    window: window side in pixels.
  Returns:
    (B, N, H, D): each token's attention over the window x window tokens of its window.
  """
  height, width = image_shape
  if height % window or width % window:
    raise ValueError(f"model.window={window} does not divide the {height} x {width} image "
                     "(windowed attention needs whole windows)")
  batch, length, heads, dim = query.shape
  rows, cols = height // window, width // window

  def to_windows(x):   # (B, N, H, D) -> (B * rows * cols, window^2, H, D)
    x = x.reshape(batch, rows, window, cols, window, heads, dim).transpose(0, 1, 3, 2, 4, 5, 6)
    return x.reshape(batch * rows * cols, window * window, heads, dim)
  out = jax.nn.dot_product_attention(to_windows(query), to_windows(key), to_windows(value))
  out = out.reshape(batch, rows, cols, window, window, heads, dim).transpose(0, 1, 3, 2, 4, 5, 6)
  return out.reshape(batch, length, heads, dim)


def dot_product_attention(query, key, value, *, implementation: str = "chunked",
                          query_chunk: int = 64, image_shape: tuple[int, int] | None = None,
                          window: int = 16):
  """Multi-head attention of (B, N, H, D) queries, keys and values -> (B, N, H, D).
  image_shape (height, width of the N tokens) and window are for 'windowed' only."""
  implementation = resolve(implementation, query.dtype, query.shape[-1],
                           jax.devices()[0].device_kind)
  if implementation == "chunked":
    return chunked_attention(query, key, value, query_chunk=query_chunk)
  if implementation == "windowed":
    return windowed_attention(query, key, value, image_shape=image_shape, window=window)
  if implementation in ("xla", "cudnn"):
    return jax.nn.dot_product_attention(query, key, value, implementation=implementation)
  raise ValueError(f"model.attention={implementation!r}: expected one of {IMPLEMENTATIONS}")
