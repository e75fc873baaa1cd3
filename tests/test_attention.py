import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fusionjax.models import attention


@pytest.mark.parametrize("length,chunk", [(96, 32), (100, 32), (64, 128)])
def test_chunked_equals_dense_values_and_gradients(length, chunk):
  q, k, v = (jax.random.normal(jax.random.key(i), (2, length, 3, 16)) for i in range(3))
  dense = jax.nn.dot_product_attention(q, k, v)
  chunked = attention.chunked_attention(q, k, v, query_chunk=chunk)
  np.testing.assert_allclose(chunked, dense, rtol=1e-5, atol=1e-5)

  def loss(fn):
    return lambda q, k, v: jnp.sum(jnp.sin(fn(q, k, v)))
  grads_dense = jax.grad(loss(jax.nn.dot_product_attention), argnums=(0, 1, 2))(q, k, v)
  grads_chunked = jax.grad(loss(lambda q, k, v: attention.chunked_attention(
      q, k, v, query_chunk=chunk)), argnums=(0, 1, 2))(q, k, v)
  for a, b in zip(grads_chunked, grads_dense):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_unknown_implementation_is_named():
  x = jnp.ones((1, 4, 1, 2))
  with pytest.raises(ValueError, match="model.attention='flash'"):
    attention.dot_product_attention(x, x, x, implementation="flash")


def test_windowed_attention_is_dense_attention_within_each_window():
  height, width, window = 8, 12, 4
  q, k, v = (jax.random.normal(jax.random.key(i), (2, height * width, 2, 8)) for i in range(3))
  out = attention.dot_product_attention(q, k, v, implementation="windowed",
                                        image_shape=(height, width), window=window)
  grid = lambda x: x.reshape(2, height, width, 2, 8)  # noqa: E731
  for r in range(0, height, window):
    for c in range(0, width, window):
      local = [grid(x)[:, r:r + window, c:c + window].reshape(2, window * window, 2, 8)
               for x in (q, k, v)]
      np.testing.assert_allclose(grid(out)[:, r:r + window, c:c + window].reshape(
          2, window * window, 2, 8), jax.nn.dot_product_attention(*local), rtol=1e-5,
          atol=1e-6)
  assert not np.allclose(out, jax.nn.dot_product_attention(q, k, v), atol=1e-3)
  with pytest.raises(ValueError, match=r"model.window=5 does not divide the 8 x 12 image"):
    attention.dot_product_attention(q, k, v, implementation="windowed",
                                    image_shape=(height, width), window=5)


@pytest.mark.parametrize("dtype,head_dim,device_kind,expected", [
    (jnp.bfloat16, 16, "NVIDIA H100 80GB HBM3", "cudnn"),
    (jnp.float16, 128, "NVIDIA A100-SXM4-40GB", "cudnn"),
    (jnp.float32, 16, "NVIDIA H100 80GB HBM3", "chunked"),   # cuDNN's kernel is 16-bit only
    (jnp.bfloat16, 12, "NVIDIA H100 80GB HBM3", "chunked"),  # nor other head widths
    (jnp.bfloat16, 256, "NVIDIA H100 80GB HBM3", "chunked"),
    (jnp.bfloat16, 16, "TPU v5 lite", "chunked"),
    (jnp.float32, 16, "cpu", "chunked")])
def test_auto_takes_the_fused_kernel_only_where_it_applies(dtype, head_dim, device_kind, expected):
  assert attention.resolve("auto", dtype, head_dim, device_kind) == expected
  assert attention.resolve("xla", dtype, head_dim, device_kind) == "xla"


def test_auto_is_chunked_attention_on_this_cpu():
  q, k, v = (jax.random.normal(jax.random.key(i), (1, 40, 2, 8)) for i in range(3))
  np.testing.assert_array_equal(
      attention.dot_product_attention(q, k, v, implementation="auto", query_chunk=16),
      attention.chunked_attention(q, k, v, query_chunk=16))
