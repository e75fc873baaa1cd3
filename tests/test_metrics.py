import numpy as np
import pytest

from fusionjax import metrics


def _cube(seed=0, shape=(32, 32, 5)):
  return np.random.default_rng(seed).uniform(0.5, 2.0, shape).astype(np.float32)


def test_identical_cubes():
  cube = _cube()
  report = metrics.fusion_report(cube, cube, ratio=3)
  assert report["sam_deg"] == 0.0
  assert report["psnr"] == float("inf")
  assert report["ergas"] == 0.0
  assert report["ssim"] == pytest.approx(1.0, abs=1e-6)


def test_uniform_error_gives_known_rmse_and_psnr():
  cube = _cube()
  estimate = cube + 0.1
  assert float(metrics.rmse(cube, estimate)) == pytest.approx(0.1, rel=1e-4)
  peaks = cube.max(axis=(0, 1))
  assert float(metrics.psnr(cube, estimate)) == pytest.approx(
      np.mean(20 * np.log10(peaks / 0.1)), rel=1e-4)
  means = cube.mean(axis=(0, 1))
  assert float(metrics.ergas(cube, estimate, ratio=4)) == pytest.approx(
      100 / 4 * np.sqrt(np.mean((0.1 / means) ** 2)), rel=1e-4)


def test_sam_of_known_angle():
  truth = np.zeros((2, 2, 2), np.float32)
  truth[..., 0] = 1.0
  estimate = np.zeros_like(truth)
  estimate[..., 0] = 1.0
  estimate[..., 1] = 1.0  # 45 degrees away
  assert float(metrics.sam_degrees(truth, estimate)) == pytest.approx(45.0, rel=1e-5)
  # Scaling a spectrum does not change its angle.
  assert float(metrics.sam_degrees(truth, 3.0 * truth)) == pytest.approx(0.0, abs=1e-6)


def test_ssim_matches_skimage():
  skimage_metrics = pytest.importorskip("skimage.metrics")
  truth = _cube(1)
  estimate = truth + np.random.default_rng(2).normal(0, 0.2, truth.shape).astype(np.float32)
  expected = np.mean([skimage_metrics.structural_similarity(
      truth[..., b], estimate[..., b], gaussian_weights=True, sigma=1.5,
      use_sample_covariance=True, data_range=float(truth[..., b].max() - truth[..., b].min()))
      for b in range(truth.shape[-1])])
  assert float(metrics.ssim(truth, estimate)) == pytest.approx(expected, abs=2e-3)
  assert float(metrics.ssim(truth, estimate)) < 0.99


def test_masked_report_ignores_invalid_pixels_and_equals_the_valid_crop():
  truth = _cube(3)
  estimate = truth + np.random.default_rng(4).normal(0, 0.1, truth.shape).astype(np.float32)
  estimate[:, :12] = 1e4     # wild values where the truth is no-data
  valid = np.zeros(truth.shape[:2], bool)
  valid[:, 12:] = True
  masked = metrics.fusion_report(truth, estimate, 2, valid)
  crop = metrics.fusion_report(truth[:, 12:], estimate[:, 12:], 2)
  for name in ("psnr", "sam_deg", "ergas", "rmse", "ssim"):
    assert masked[name] == pytest.approx(crop[name], rel=1e-5), name
  assert metrics.fusion_report(truth, estimate, 2)["rmse"] > 100 * masked["rmse"]


def test_pooled_report_counts_every_valid_pixel_of_every_image_once():
  rng = np.random.default_rng(5)
  truths = [_cube(3), _cube(3)[:20] * 2.0]
  estimates = [t + rng.normal(0, s, t.shape).astype(np.float32)
               for t, s in zip(truths, (0.1, 0.4))]
  valids = [np.ones(truths[0].shape[:2], bool), np.ones(truths[1].shape[:2], bool)]
  valids[1][:, :12] = False
  pooled = metrics.pooled_fusion_report(truths, estimates, 2, valids)
  # The images side by side (the second padded with invalid rows) are one image of the
  # same pixels: every pixel metric is that image's.
  height = truths[0].shape[0]
  pad = lambda image: np.concatenate(  # noqa: E731
      [image, np.zeros((height - image.shape[0], *image.shape[1:]), image.dtype)])
  side_by_side = [np.concatenate([a, pad(b)], axis=1)
                  for a, b in ((truths[0], truths[1]), (estimates[0], estimates[1]),
                               (valids[0], valids[1]))]
  together = metrics.fusion_report(*side_by_side[:2], 2, side_by_side[2])
  for name in ("psnr", "sam_deg", "ergas", "rmse"):
    assert pooled[name] == pytest.approx(together[name], rel=1e-5), name
  alone = [metrics.fusion_report(t, e, 2, v) for t, e, v in zip(truths, estimates, valids)]
  counts = [v.sum() for v in valids]
  assert pooled["ssim"] == pytest.approx(
      (counts[0] * alone[0]["ssim"] + counts[1] * alone[1]["ssim"]) / sum(counts), rel=1e-6)
  assert alone[0]["rmse"] < pooled["rmse"] < alone[1]["rmse"]
