"""Ensembles of independently trained models: their parameters stacked on a leading member
axis (so that one vmapped program runs every member), and the continuous ranked probability
score of the ensemble's spread of predictions."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def stacked(members: list):
  """Parameter pytrees of the same structure stacked on a new leading axis (members, ...)."""
  return jax.tree.map(lambda *leaves: jnp.stack(leaves), *members)


def crps(members: np.ndarray, truth: np.ndarray) -> np.ndarray:
  """The continuous ranked probability score of the empirical distribution of the (M, ...)
  member values at each (...) cell against truth (...): E|X - y| - E|X - X'| / 2, in the
  units of the values (the absolute error for one member; lower is better).

  E|X - X'| over the M^2 ordered pairs is 2 / M^2 sum_i (2 i - M - 1) x_(i), with x_(i) the
  sorted member values (i = 1 ... M).
  """
  count = len(members)
  ordered = np.sort(members, axis=0)
  rank_weight = (2 * np.arange(1, count + 1) - count - 1).reshape((count,) + (1,) * truth.ndim)
  pair_difference = 2.0 / count ** 2 * np.sum(rank_weight * ordered, axis=0)
  return np.mean(np.abs(members - truth), axis=0) - 0.5 * pair_difference


def report(members: np.ndarray, truth: np.ndarray, where: np.ndarray) -> dict:
  """Scores of (M, P, S, C) member predictions against (P, S, C) truth over the (P, S) cells
  `where`: the RMSE of each member and of the ensemble mean, the mean spread (standard
  deviation over members), and the CRPS of the ensemble beside the mean absolute error of its
  mean (the CRPS of the mean taken as a single forecast)."""
  selected, observed = members[:, where], truth[where]
  mean = selected.mean(axis=0)
  rmse = lambda estimate: float(np.sqrt(np.mean((estimate - observed) ** 2)))
  return {"members": len(members),
          "member_rmse": [rmse(member) for member in selected],
          "mean_rmse": rmse(mean), "spread": float(np.mean(selected.std(axis=0))),
          "crps": float(np.mean(crps(selected, observed))),
          "mean_absolute_error_of_mean": float(np.mean(np.abs(mean - observed)))}
