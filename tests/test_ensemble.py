"""Ensemble scores: the CRPS of an ensemble's empirical distribution."""
import numpy as np

from fusionjax import ensemble


def test_crps_is_the_absolute_error_for_one_member_and_the_pairwise_formula_for_many():
  rng = np.random.default_rng(0)
  truth = rng.normal(size=(5, 3))
  single = rng.normal(size=(1, 5, 3))
  np.testing.assert_allclose(ensemble.crps(single, truth), np.abs(single[0] - truth))
  np.testing.assert_allclose(ensemble.crps(np.array([[0.0], [2.0]]), np.array([1.0])), [0.5])
  members = rng.normal(size=(7, 5, 3))
  pairs = np.abs(members[:, None] - members[None]).mean(axis=(0, 1))
  np.testing.assert_allclose(ensemble.crps(members, truth),
                             np.abs(members - truth).mean(axis=0) - 0.5 * pairs, atol=1e-12)


def test_report_scores_members_spread_and_crps_on_the_chosen_cells():
  rng = np.random.default_rng(1)
  truth = rng.normal(size=(4, 6, 2))
  members = truth + rng.normal(scale=0.3, size=(3, 4, 6, 2))
  where = rng.uniform(size=(4, 6)) < 0.5
  members[:, ~where] = 1e6                        # unscored cells never count
  scores = ensemble.report(members, truth, where)
  assert scores["members"] == 3 and len(scores["member_rmse"]) == 3
  np.testing.assert_allclose(scores["member_rmse"][1],
                             np.sqrt(np.mean((members[1][where] - truth[where]) ** 2)))
  assert 0.1 < scores["spread"] < 0.5
  # The spread rewards: the CRPS is below the members' mean absolute error.
  assert scores["crps"] < np.mean(np.abs(members[:, where] - truth[where]))
  identical = ensemble.report(np.repeat(members[:1], 3, axis=0), truth, where)
  assert identical["spread"] < 1e-12
  np.testing.assert_allclose(identical["crps"], identical["mean_absolute_error_of_mean"])
