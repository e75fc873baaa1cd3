"""Model-based fusion of a NIRSpec cube with NIRCam images (Guilloteau et al., IEEE TCI 2020;
Pineau et al. 2023): the cube that best explains both observations through the instruments'
forward models, found in the spectral subspace of the task's coding.

The unknown is the (H, W, d) code z of the fused cube, x = decode(z) = mean + B z with
B = basis * scale (fusionjax.data.coding). It minimises

  J(z) = 1/2 sum ((Y_m - L_m H(x)) / sigma_m)^2 + 1/2 sum ((Y_h - S(H(x))) / sigma_h)^2
         + mu / 2 R(z),

where H blurs each wavelength with its own PSF, L_m integrates the NIRCam filters
(electrons), S decimates by d and convolves with NIRSpec's line spread (the NIRSpec cube is
calibrated, its throughput divided out), sigma is each pixel's noise (photon and read noise,
`physics.noise.detector_sigma`), and R is either the smoothness ||D z||^2 (finite
differences along rows and columns: the baseline) or ||z - z_prior||^2 (the data-consistency
step of a network's product, its prior the network's output). J is quadratic, so its minimum
solves the normal equations, by conjugate gradient (jax.scipy.sparse.linalg.cg) on
Hessian-vector products (the gradient of J's quadratic part).

In the subspace, the operators shrink. The PSF of wavelength l is interpolated linearly
between the Gaussians of J node widths, g_l = sum_j a_lj g_j, so that H(mean + B z) needs only
the d J code images blurred by the node PSFs, b_kj = g_j (x) g_j * z_k (the mean spectrum, flat
in space, is unchanged by a blur that conserves flux):
  * NIRCam: L_m H(x) = L_m mean + E b, E_m,kj = sum_l L_ml B_lk a_lj (M, d J).
  * NIRSpec: S(H(x)) = S(mean) + C u with u = decimate(b) and C = LSF (B (x) a) (L, d J).
    The NIRSpec misfit of L wavelengths is then u^T P u - 2 q^T u + const per coarse pixel,
    with P = C^T W C and q = C^T W (Y_h - S(mean)), W the pixel's inverse variances.
The interpolation's error is below 1e-3 of the signal with 4 nodes over the 1-2.35 um band
(tests/test_model_based.py), far below the noise.
Images are channels-last, (rows, columns, channels); pixels without data (NaN) weigh 0.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from fusionjax.data.coding import SpectralCoding
from fusionjax.physics import noise, psf, sampling, spectral
from fusionjax.physics.jwst import JwstInstruments

# Part of the key of kept figures of the baseline: bumped when the solver changes.
VERSION = 2
# PSF widths between which NIRSpec's wavelength-dependent PSF is interpolated.
PSF_NODES = 4
# About how many NIRSpec values `observations` reduces at a time.
NIRSPEC_BLOCK_VALUES = 2 ** 22


@struct.dataclass
class SubspaceInstruments:
  """The forward models of NIRCam and NIRSpec acting on codes (module docstring).

  Attributes:
    psf_sigmas: (J,) node PSF widths, NIRCam pixels.
    nircam_matrix: (M, d J) NIRCam electrons per blurred code image, E (index k J + j).
    nircam_offset: (M,) electrons of the mean spectrum, L_m mean.
    nirspec_matrix: (L, d J) calibrated NIRSpec surface brightness per coarse code image, C.
    nirspec_offset: (L,) the mean spectrum seen by NIRSpec, S(mean), mJy/arcsec^2.
    nirspec_throughput: (L,) electrons per mJy/arcsec^2.
    radius: PSF kernel half-width, NIRCam pixels.
    decimation: NIRSpec pixel in NIRCam pixels.
    nircam_read_noise_e, nirspec_read_noise_e: read noise, electrons.
  """
  psf_sigmas: np.ndarray
  nircam_matrix: np.ndarray
  nircam_offset: np.ndarray
  nirspec_matrix: np.ndarray
  nirspec_offset: np.ndarray
  nirspec_throughput: np.ndarray
  radius: int = struct.field(pytree_node=False)
  decimation: int = struct.field(pytree_node=False)
  nircam_read_noise_e: float = struct.field(pytree_node=False)
  nirspec_read_noise_e: float = struct.field(pytree_node=False)

  @property
  def code_dim(self) -> int:
    return int(self.nircam_matrix.shape[1] // self.psf_sigmas.shape[0])


def subspace_instruments(instruments: JwstInstruments, coding: SpectralCoding,
                         psf_nodes: int = PSF_NODES) -> SubspaceInstruments:
  """The instruments' forward models on the codes of `coding`."""
  sigma = instruments.psf_sigma_pixels().astype(np.float64)
  nodes = np.linspace(sigma.min(), sigma.max(), psf_nodes) if sigma.max() > sigma.min() \
      else sigma[:1]
  if len(nodes) == 1:
    interpolation = np.ones((len(sigma), 1))
  else:
    interpolation = np.stack([np.interp(sigma, nodes, np.eye(len(nodes))[j])
                              for j in range(len(nodes))], axis=1)             # (L, J)
  decoding = coding.decoding_matrix()                                           # (L, d)
  mixed = (decoding[:, :, None] * interpolation[:, None, :]).reshape(len(sigma), -1)
  responses = instruments.nircam_responses.astype(np.float64)                  # (M, L)
  nircam_matrix = responses @ mixed
  mean = coding.mean.astype(np.float64)
  if instruments.nirspec_lsf is not None:
    lsf = jnp.asarray(instruments.nirspec_lsf, jnp.float32)
    mixed = np.asarray(spectral.convolve_spectral(jnp.asarray(mixed, jnp.float32)[:, :, None],
                                                  lsf))[:, :, 0]
    mean = np.asarray(spectral.convolve_spectral(jnp.asarray(mean, jnp.float32)[:, None, None],
                                                 lsf))[:, 0, 0]
  return SubspaceInstruments(
      psf_sigmas=nodes.astype(np.float32), nircam_matrix=nircam_matrix.astype(np.float32),
      nircam_offset=(responses @ coding.mean.astype(np.float64)).astype(np.float32),
      nirspec_matrix=mixed.astype(np.float32), nirspec_offset=np.asarray(mean, np.float32),
      nirspec_throughput=instruments.nirspec_throughput.astype(np.float32),
      radius=instruments.psf_radius(),
      decimation=instruments.decimation,
      nircam_read_noise_e=instruments.nircam_read_noise_e,
      nirspec_read_noise_e=instruments.nirspec_read_noise_e)


def blurred_codes(sub: SubspaceInstruments, codes: jax.Array) -> jax.Array:
  """(H, W, d) codes -> (d J, H, W) b: each code blurred by each node PSF (mirrored edges,
  as `physics.psf.gaussian_blur`)."""
  num_nodes = sub.psf_sigmas.shape[0]
  planes = jnp.repeat(jnp.moveaxis(codes, -1, 0), num_nodes, axis=0)
  return psf.gaussian_blur(planes, jnp.tile(sub.psf_sigmas, sub.code_dim), sub.radius)


def _predictions(sub, codes: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(H, W, M) NIRCam images and (h, w, d J) NIRSpec code images of codes, from one blur."""
  blurred = blurred_codes(sub, codes)
  return (jnp.einsum("ma,ahw->hwm", jnp.asarray(sub.nircam_matrix), blurred),
          jnp.moveaxis(sampling.decimate(blurred, sub.decimation), 0, -1))


def nircam_images(sub: SubspaceInstruments, codes: jax.Array) -> jax.Array:
  """(H, W, d) codes -> (H, W, M) NIRCam electrons less the mean spectrum's, E b."""
  return _predictions(sub, codes)[0]


def nirspec_images(sub: SubspaceInstruments, codes: jax.Array) -> jax.Array:
  """(H, W, d) codes -> (H / s, W / s, d J) u = decimate(b), NIRSpec's coarse code images."""
  return _predictions(sub, codes)[1]


def nirspec_cube(sub: SubspaceInstruments, codes: jax.Array) -> jax.Array:
  """(H, W, d) codes -> (L, H / s, W / s) calibrated NIRSpec cube, mJy/arcsec^2."""
  u = nirspec_images(sub, codes)
  return (jnp.einsum("la,hwa->lhw", jnp.asarray(sub.nirspec_matrix), u)
          + jnp.asarray(sub.nirspec_offset)[:, None, None])


class Observations(NamedTuple):
  """The two observations as the solver weighs them.

  nircam: (H, W, M) electrons less the mean's offset (0 where no data); nircam_weight:
  (H, W, M) inverse variances, 1 / electrons^2 (0 where no data); nirspec_normal: (h, w, dJ,
  dJ) P per coarse pixel; nirspec_rhs: (h, w, dJ) q per coarse pixel; nirspec_constant:
  (h, w) the misfit of the mean spectrum, sum over wavelengths of W (Y_h - S(mean))^2;
  nirspec_count: (h, w) wavelengths with data.
  """
  nircam: jax.Array
  nircam_weight: jax.Array
  nirspec_normal: jax.Array
  nirspec_rhs: jax.Array
  nirspec_constant: jax.Array
  nirspec_count: jax.Array


def nirspec_sigma(sub: SubspaceInstruments, nirspec: np.ndarray) -> np.ndarray:
  """(L, h, w) noise of a calibrated NIRSpec cube, mJy/arcsec^2, from its counts."""
  throughput = sub.nirspec_throughput[:, None, None]
  return noise.detector_sigma(nirspec * throughput,
                              read_noise_e=sub.nirspec_read_noise_e) / throughput


def _nirspec_terms(sub: SubspaceInstruments, nirspec: np.ndarray) -> list[np.ndarray]:
  """The NIRSpec terms of `Observations` (normal, rhs, constant, count) of a calibrated
  (L, h, w) cube."""
  num_wavelengths, height, width = nirspec.shape
  measured = np.isfinite(nirspec)
  filled = np.where(measured, nirspec, 0.0)
  inverse_variance = np.where(measured, 1.0 / nirspec_sigma(sub, filled) ** 2, 0.0)
  weights = inverse_variance.reshape(num_wavelengths, -1).astype(np.float64)    # (L, Q)
  residual = (filled - sub.nirspec_offset[:, None, None]).reshape(num_wavelengths, -1)
  matrix = sub.nirspec_matrix.astype(np.float64)                                 # (L, a)
  size = matrix.shape[1]
  outer = (matrix[:, :, None] * matrix[:, None, :]).reshape(num_wavelengths, -1)
  return [(outer.T @ weights).T.reshape(height, width, size, size),
          (matrix.T @ (weights * residual)).T.reshape(height, width, size),
          (weights * residual ** 2).sum(axis=0).reshape(height, width),
          measured.sum(axis=0)]


def observations(sub: SubspaceInstruments, nircam: np.ndarray,
                 nirspec: np.ndarray) -> Observations:
  """The solver's view of NIRCam images (M, H, W, electrons) and a calibrated NIRSpec cube
  (L, H / s, W / s, mJy/arcsec^2); NaN = no data. The NIRSpec cube is reduced a few rows at
  a time (about NIRSPEC_BLOCK_VALUES values), so its float64 terms never hold the whole
  cube."""
  nircam = np.asarray(nircam, np.float32)
  measured = np.isfinite(nircam)
  filled = np.where(measured, nircam, 0.0)
  weight = np.where(measured, 1.0 / noise.detector_sigma(
      filled, read_noise_e=sub.nircam_read_noise_e) ** 2, 0.0)
  nircam_residual = np.where(measured, filled - sub.nircam_offset[:, None, None], 0.0)
  num_wavelengths, height, width = nirspec.shape
  rows = max(1, NIRSPEC_BLOCK_VALUES // (num_wavelengths * width))
  blocks = [_nirspec_terms(sub, np.asarray(nirspec[:, start:start + rows], np.float32))
            for start in range(0, height, rows)]
  normal, rhs, constant, count = (np.concatenate(parts) for parts in zip(*blocks))
  return Observations(
      nircam=jnp.asarray(np.moveaxis(nircam_residual, 0, -1), jnp.float32),
      nircam_weight=jnp.asarray(np.moveaxis(weight, 0, -1), jnp.float32),
      nirspec_normal=jnp.asarray(normal, jnp.float32), nirspec_rhs=jnp.asarray(rhs, jnp.float32),
      nirspec_constant=jnp.asarray(constant, jnp.float32),
      nirspec_count=jnp.asarray(count, jnp.float32))


def _smoothness(codes: jax.Array) -> jax.Array:
  """||D z||^2: squared differences of neighbouring pixels along rows and columns."""
  return (jnp.sum(jnp.square(jnp.diff(codes, axis=0)))
          + jnp.sum(jnp.square(jnp.diff(codes, axis=1))))


def _data_quadratic(sub, data: Observations, codes: jax.Array) -> jax.Array:
  """The data term's quadratic part, 1/2 v^T (A^T W A) v."""
  images, u = _predictions(sub, codes)
  return 0.5 * (jnp.sum(data.nircam_weight * jnp.square(images))
                + jnp.einsum("hwa,hwab,hwb->", u, data.nirspec_normal, u))


def _data_linear(sub, data: Observations, codes: jax.Array) -> jax.Array:
  """The data term's linear part (negated), v^T A^T W (Y - offset)."""
  images, u = _predictions(sub, codes)
  return jnp.sum(data.nircam_weight * data.nircam * images) + jnp.sum(data.nirspec_rhs * u)


def data_curvature(sub: SubspaceInstruments, data: Observations) -> float:
  """The mean curvature of the data term per code value, trace(A^T W A) / (H W d),
  estimated with one Rademacher probe: the scale that makes regularisation weights
  comparable across scenes and noise levels."""
  height, width = data.nircam.shape[:2]
  probe = jax.random.rademacher(jax.random.key(0), (height, width, sub.code_dim), jnp.float32)
  return float(2.0 * jax.jit(_data_quadratic)(sub, data, probe) / probe.size)


@functools.partial(jax.jit, static_argnames=("iterations",))
def _solve(sub, data, smoothness, prior, prior_weight, initial, *, iterations):
  def quadratic(v):
    regulariser = smoothness * _smoothness(v)
    if prior is not None:
      regulariser += prior_weight * jnp.sum(jnp.square(v))
    return _data_quadratic(sub, data, v) + 0.5 * regulariser

  def linear(v):
    prior_term = 0.0 if prior is None else prior_weight * jnp.sum(prior * v)
    return _data_linear(sub, data, v) + prior_term
  rhs = jax.grad(linear)(jnp.zeros_like(initial))
  solution, _ = jax.scipy.sparse.linalg.cg(jax.grad(quadratic), rhs, x0=initial, tol=1e-6,
                                           maxiter=iterations)
  return solution


def solve(sub: SubspaceInstruments, data: Observations, *, smoothness: float = 0.0,
          prior: np.ndarray | None = None, prior_weight: float = 0.0,
          initial: np.ndarray | None = None, iterations: int = 200) -> np.ndarray:
  """The (H, W, d) codes minimising J (module docstring) with the regulariser
  smoothness ||D z||^2 + prior_weight ||z - prior||^2.

  Args:
    sub, data: the forward models and the observations.
    smoothness: the weight of ||D z||^2 (absolute: relative weights times
      `data_curvature`).
    prior, prior_weight: (H, W, d) codes z_prior and the weight of ||z - z_prior||^2
      (absolute), or None.
    initial: the conjugate gradient's start (default the prior, or zero).
    iterations: the most conjugate-gradient iterations (it stops earlier at a relative
      residual of 1e-6).
  """
  if initial is None:
    initial = prior if prior is not None else np.zeros(
        (*data.nircam.shape[:2], sub.code_dim), np.float32)
  prior = None if prior is None else jnp.asarray(prior, jnp.float32)
  return np.asarray(_solve(sub, data, jnp.float32(smoothness), prior, jnp.float32(prior_weight),
                           jnp.asarray(initial, jnp.float32), iterations=iterations))


def fuse(sub: SubspaceInstruments, data: Observations, *, relative_smoothness: float,
         iterations: int = 200) -> np.ndarray:
  """The model-based fusion's (H, W, d) codes: `solve` with the smoothness weight
  `relative_smoothness` times the data's curvature (`data_curvature`)."""
  return solve(sub, data, smoothness=relative_smoothness * data_curvature(sub, data),
               iterations=iterations)


@jax.jit
def _misfits(sub, data: Observations, codes: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(H, W) NIRCam and (h, w) NIRSpec chi^2 sums of codes, per pixel."""
  images, u = _predictions(sub, codes)
  nircam = jnp.sum(data.nircam_weight * jnp.square(data.nircam - images), axis=-1)
  nirspec = (jnp.einsum("hwa,hwab,hwb->hw", u, data.nirspec_normal, u)
             - 2.0 * jnp.sum(data.nirspec_rhs * u, axis=-1) + data.nirspec_constant)
  return nircam, nirspec


def _inner(image, margin: int):
  """An image without a border of `margin` pixels."""
  return image[margin:-margin or None, margin:-margin or None]


def _margins(sub: SubspaceInstruments) -> tuple[int, int]:
  """The border left out of chi^2: a PSF radius in NIRCam pixels and in NIRSpec pixels."""
  return sub.radius, -(-sub.radius // sub.decimation)


def chi2_counts(sub: SubspaceInstruments, data: Observations) -> tuple[int, int]:
  """How many NIRCam and NIRSpec values `reduced_chi2` averages over."""
  fine, coarse = _margins(sub)
  return (int(_inner(np.asarray(data.nircam_weight > 0).sum(axis=-1), fine).sum()),
          int(_inner(np.asarray(data.nirspec_count), coarse).sum()))


def reduced_chi2(sub: SubspaceInstruments, data: Observations,
                 codes: np.ndarray) -> tuple[float, float]:
  """The reduced chi^2 of (H, W, d) codes against the NIRCam images and the NIRSpec cube
  through the subspace forward models, without a border of a PSF radius, as
  `physics.jwst.reduced_chi2` computes it for a cube (about 1 for codes that explain the
  data to its noise)."""
  misfits = _misfits(sub, data, jnp.asarray(codes, jnp.float32))
  return tuple(float(_inner(np.asarray(misfit, np.float64), margin).sum() / max(count, 1))
               for misfit, margin, count in zip(misfits, _margins(sub), chi2_counts(sub, data)))
