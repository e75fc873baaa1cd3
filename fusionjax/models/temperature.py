"""The physics around an LST super-resolution network, shared by every such network.

A network for land-surface temperature (LST) super-resolution maps coarse temperatures
(B, h, w, 1), K, and a fine guide (B, H, W, G), H = f h, to fine temperatures (B, H, W, 1), K.
It does not see the temperatures themselves: they are upsampled (bicubic) to the fine grid,
offset by each image's mean and divided by `temperature_scale_k`, and the network predicts a
correction in those units (global residual). The result is the upsampled temperatures plus
the correction, optionally rescaled per coarse footprint so that it aggregates
(Stefan-Boltzmann) exactly to its input. The temperatures stay float32 whatever the network
computes in (bfloat16 resolves only about 1 K at 300 K).
"""
from __future__ import annotations

import jax.numpy as jnp

from fusionjax.physics import sampling, thermal


def upsampling_factor(coarse_k: jnp.ndarray, guide: jnp.ndarray, network: str) -> int:
  """The factor f from the coarse grid to the guide's fine grid.

  Args:
    coarse_k: (B, h, w, 1) coarse temperatures, K.
    guide: (B, H, W, G) fine guide images.
    network: the network's name, for the error message.
  Returns:
    f = H / h = W / w; a ValueError if the guide is not a whole multiple of the coarse image.
  """
  factor = guide.shape[1] // coarse_k.shape[1]
  if factor * coarse_k.shape[1] != guide.shape[1] or factor * coarse_k.shape[2] != guide.shape[2]:
    raise ValueError(f"{network}: guide {guide.shape[1:3]} is not a whole multiple of the "
                     f"coarse image {coarse_k.shape[1:3]}")
  return factor


def normalise(temperature_k: jnp.ndarray, coarse_k: jnp.ndarray,
              temperature_scale_k: float) -> jnp.ndarray:
  """Temperatures in the network's units: minus each image's mean coarse temperature, in
  units of `temperature_scale_k`.

  Args:
    temperature_k: (B, H, W, 1) temperatures, K (the upsampled ones).
    coarse_k: (B, h, w, 1) coarse temperatures, K, whose per-image mean is the offset.
    temperature_scale_k: kelvin per unit.
  Returns:
    (B, H, W, 1), dimensionless.
  """
  offset = jnp.mean(coarse_k, axis=(1, 2, 3), keepdims=True)
  return (temperature_k - offset) / temperature_scale_k


def scale_climatology(guide: jnp.ndarray, temperature_scale_k: float) -> jnp.ndarray:
  """A guide whose last two channels are a climatological pattern (K) and its weight, with
  the pattern in units of `temperature_scale_k` (the weight and the other channels unchanged).

  Args:
    guide: (B, H, W, G), G >= 2.
    temperature_scale_k: kelvin per unit.
  Returns:
    (B, H, W, G).
  """
  return jnp.concatenate([guide[..., :-2], guide[..., -2:-1] / temperature_scale_k,
                          guide[..., -1:]], axis=-1)


def network_input(coarse_k: jnp.ndarray, guide: jnp.ndarray, *, temperature_scale_k: float,
                  climatology: bool, network: str) -> tuple[jnp.ndarray, jnp.ndarray]:
  """The upsampled temperatures and what the network sees on the fine grid.

  Args:
    coarse_k: (B, h, w, 1) coarse temperatures, K.
    guide: (B, H, W, G) fine guide images (G = 0 without a guide; with `climatology`, the last
      two are its pattern, K, and weight); H = f h, W = f w.
    temperature_scale_k: kelvin per unit of the network's input and output.
    climatology: whether the guide ends with a climatology pattern and weight.
    network: the network's name, for the error message of a guide not a multiple of the
      coarse image.
  Returns:
    upsampled: (B, H, W, 1) bicubic upsampling of `coarse_k`, K.
    inputs: (B, H, W, 1 + G) the normalised upsampled temperatures, then the guide (its
      climatology pattern normalised too), dimensionless.
  """
  factor = upsampling_factor(coarse_k, guide, network)
  upsampled = sampling.upsample_bicubic(coarse_k, factor)
  if climatology:
    guide = scale_climatology(guide, temperature_scale_k)
  return upsampled, jnp.concatenate(
      [normalise(upsampled, coarse_k, temperature_scale_k), guide], -1)


def append_log_scale(inputs: jnp.ndarray, fine_km: jnp.ndarray) -> jnp.ndarray:
  """Scale conditioning: `inputs` with log2(fine pixel size in km) as one more channel.

  Args:
    inputs: (B, H', W', C) the network's input, on whatever grid it runs.
    fine_km: (B,) fine pixel size, km.
  Returns:
    (B, H', W', C + 1), the new channel constant over each image, in the dtype of `inputs`.
  """
  log_scale = jnp.log2(fine_km).astype(inputs.dtype)[:, None, None, None]
  return jnp.concatenate([inputs, jnp.broadcast_to(log_scale, (*inputs.shape[:3], 1))], -1)


def corrected(upsampled_k: jnp.ndarray, correction: jnp.ndarray, coarse_k: jnp.ndarray, *,
              temperature_scale_k: float, enforce_consistency: bool) -> jnp.ndarray:
  """The fine temperatures: the upsampled ones plus the network's correction.

  Args:
    upsampled_k: (B, H, W, 1) upsampled temperatures, K (float32).
    correction: (B, H, W, 1) the network's output in units of `temperature_scale_k`, in its
      compute dtype; cast to the temperatures' dtype before it is added.
    coarse_k: (B, h, w, 1) coarse temperatures, K.
    temperature_scale_k: kelvin per unit of the correction.
    enforce_consistency: rescale each coarse footprint of the result so that its
      Stefan-Boltzmann aggregate equals `coarse_k` exactly.
  Returns:
    (B, H, W, 1) fine temperatures, K, in the dtype of `upsampled_k`.
  """
  fine = upsampled_k + temperature_scale_k * correction.astype(upsampled_k.dtype)
  return thermal.enforce_aggregate(fine, coarse_k) if enforce_consistency else fine
