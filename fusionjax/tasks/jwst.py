"""JWST NIRSpec IFU + NIRCam fusion: the fusion task on a JWST scene (procedural or the Orion
Bar simulation), FITS products with the wavelength axis tabulated, and whole observations of
any size fused with --mode=predict."""
from __future__ import annotations

import glob
import logging
import os
import re

import numpy as np

from fusionjax import products, tiling
from fusionjax.data.fusion_scene import FusionScene
from fusionjax.data.jwst import observation as jwst_observation
from fusionjax.data.jwst import scene as jwst_scene
from fusionjax.products import fusion as fusion_products
from fusionjax.physics import lines
from fusionjax.tasks.base import PredictFn
from fusionjax.tasks.fusion import FusionTask
from fusionjax.tasks.fusion_strips import decoded_cube, product_of
from fusionjax.tasks.jwst_inversion import JwstInversion

PREDICT_METHODS = ("network", "model_based", "model_based_chi2")


class JwstTask(FusionTask):
  """Fusion of the NIRSpec cube (coded) with the NIRCam images of a JWST scene.

  The product is the network's, moved into agreement with both observations by the
  data-consistency step (fusionjax.tasks.jwst_inversion; config.predict.consistency_*), or,
  with config.predict.method='model_based' or 'model_based_chi2', the model-based fusion's
  (its smoothness weight chosen on the validation strip, or on each observation by the
  discrepancy principle). Evaluated beside the classical baselines and both model-based
  fusions (fusionjax.baselines.model_based), every method with its reduced chi^2 against
  each observation and its errors on the emission lines' fluxes (fusionjax.physics.lines).
  """

  @classmethod
  def scale_factor(cls, config) -> int:
    """NIRSpec's pixel over NIRCam's (instrument.decimation)."""
    return config.instrument.decimation

  @classmethod
  def prepare_scene(cls, config) -> FusionScene:
    return jwst_scene.prepare_jwst_scene(config)

  @classmethod
  def validate(cls, config, mode: str) -> None:
    """Also: predict.method is known and the consistency step's and the discrepancy
    principle's settings are usable."""
    super().validate(config, mode)
    settings = config.predict
    if settings.method not in PREDICT_METHODS:
      raise ValueError(f"predict.method={settings.method!r}: expected one of {PREDICT_METHODS}")
    if (settings.consistency_iterations < 0 or settings.consistency_weight <= 0
        or settings.consistency_smoothness < 0):
      raise ValueError(f"predict.consistency_iterations={settings.consistency_iterations}, "
                       f"consistency_weight={settings.consistency_weight} and "
                       f"consistency_smoothness={settings.consistency_smoothness}: expected "
                       "iterations >= 0 (0 turns the step off), a weight > 0 and a smoothness "
                       ">= 0")
    fractions = tuple(settings.trust_fractions)
    if not fractions or not all(0.0 <= f <= 1.0 for f in fractions):
      raise ValueError(f"predict.trust_fractions={fractions}: expected fractions of the "
                       "network's correction in [0, 1], e.g. (1.0, 0.5, 0.25, 0.125, 0.0)")
    if not config.model_based.chi2_target > 0:
      raise ValueError(f"model_based.chi2_target={config.model_based.chi2_target}: expected "
                       "a reduced chi^2 > 0 (1: explain the data to its noise)")

  base_estimates = (*FusionTask.base_estimates, "model_based")

  def __init__(self, config, workdir: str):
    super().__init__(config, workdir)
    self.inversion = JwstInversion(config, self.scene, self._scene_dir)

  def baseline_settings(self) -> dict:
    return self.inversion.settings()

  def _baseline_estimates(self, scene, strip) -> dict[str, np.ndarray]:
    """Also both model-based fusions (fusionjax.baselines.model_based)."""
    estimates = super()._baseline_estimates(scene, strip)
    solutions = self.inversion.strip_solutions(strip)
    for name, codes in (("model_based", solutions.model_based),
                        ("model_based_chi2", solutions.discrepancy.codes)):
      estimates[name] = np.moveaxis(decoded_cube(scene, codes), 0, -1)
    return estimates

  def network_codes(self, predict: PredictFn, batch_size: int, strip,
                    base: np.ndarray | None = None) -> np.ndarray:
    """With data.base_estimate='model_based', the network corrects the strip's own
    model-based fusion at the discrepancy principle's weight (unless `base` is given)."""
    if base is None and self.scene_base(self.config):
      base = self.inversion.strip_solutions(strip).discrepancy.codes
    return super().network_codes(predict, batch_size, strip, base)

  def predict_heldout(self, predict: PredictFn, batch_size: int, split: str) -> list[dict]:
    """{'model': the product, 'network': the network's own output} of the `split` strip,
    (L, H, w) in physical units (the two the same where the consistency step is off). With
    data.base_estimate='model_based', the network corrects the strip's model-based fusion
    (at the discrepancy principle's weight), and keeps as much of its correction as the
    strip's observations allow (`JwstInversion.trusted_codes`)."""
    strip = self.scene.strip(split)
    network = self.network_codes(predict, batch_size, strip)
    product = self.inversion.strip_product(strip, network, self.scene_base(self.config))
    return [{"model": decoded_cube(self.scene, product),
             "network": decoded_cube(self.scene, network)}]

  def extend_report(self, report: dict, strips) -> None:
    """Each method's reduced chi^2 against the NIRCam images and the NIRSpec cube
    (`JwstInversion.reduced_chi2`) and its errors on the emission lines' fluxes
    (`physics.lines.line_flux_errors`: per line under 'line_flux', their mean over the
    strip as 'region_flux_error', pixel by pixel as 'line_flux_error' and at the truth's
    compact sources as 'source_flux_error'), the strips' figures averaged; for the product,
    the fraction of the network's correction it kept ('network_fraction',
    `JwstInversion.trusted_codes`)."""
    wavelengths = self.scene.wavelengths_um
    truth_maps = [lines.line_flux_maps(np.moveaxis(s.truth, -1, 0), wavelengths)
                  for s in strips]
    for method in strips[0].estimates:
      chi2, flux = [], []
      for strip, truth in zip(strips, truth_maps):
        cube = np.moveaxis(strip.estimates[method], -1, 0)
        chi2.append(self.inversion.reduced_chi2(
            cube, *self.inversion.strip_observations(strip.heldout)))
        flux.append(lines.line_flux_errors(truth, lines.line_flux_maps(cube, wavelengths)))
      entry = report[method]
      for key in chi2[0]:
        entry[key] = float(np.mean([c[key] for c in chi2]))
      for key, name in (("region", "region_flux_error"), ("map", "line_flux_error"),
                        ("sources", "source_flux_error")):
        entry[name] = float(np.mean([f["mean"][key] for f in flux]))
      entry["line_flux"] = flux[0] if len(flux) == 1 else flux
    kept = [self.inversion.trust[s.heldout.col_start] for s in strips
            if s.heldout.col_start in self.inversion.trust]
    if kept and "model" in report:
      report["model"]["network_fraction"] = float(np.mean(kept))

  def write_products(self, fused: list, split: str, out_dir: str) -> list[str]:
    """Writes the fused (L, H, w) cube of the `split` strip (FITS) and a quicklook PNG."""
    scene, fused = self.scene, product_of(fused[0])
    strip = scene.strip(split)
    cube_path = os.path.join(out_dir, "fused_cube.fits")
    products.write_fits_cube(
        cube_path, fused, scene.wavelengths_um, units=scene.units,
        pixel_scale_arcsec=scene.pixel_size, origin_pixel=(0, strip.col_start),
        description=f"{self.config.model.name} fusion of {scene.name}, {split} strip, columns "
                    f"from {strip.col_start}", tags=self.provenance(scene.name).as_tags())
    png_path = os.path.join(out_dir, "quicklook.png")
    products.save_figure(self.quicklook(fused, split), png_path)
    return {"outputs": [cube_path, png_path]}

  def quicklook(self, fused: np.ndarray, split: str):
    """Figure of the `split` strip: truth, NIRSpec input, fused and error at one wavelength;
    the spectra at the pixel where the truth varies most."""
    scene, strip = self.scene, self.scene.strip(split)
    band = self._quicklook_band()
    row, col = np.unravel_index(np.argmax(np.std(strip.truth, axis=0)), fused.shape[1:])
    s = scene.scale_factor
    spectra = {"truth": strip.truth[:, row, col],
               "low-resolution input": strip.lr[:, row // s, col // s],
               "model-based (chi^2)": scene.coding.decode(
                   self.inversion.strip_solutions(strip).discrepancy.codes[row, col]),
               self.config.model.name: fused[:, row, col]}
    return fusion_products.quicklook(scene.wavelengths_um, band, strip.lr[band], fused[band],
                                     strip.truth[band], spectra, (row, col), scene.units,
                                     method=self.config.model.name)

  def _quicklook_band(self) -> int:
    return int(np.argmin(np.abs(self.scene.wavelengths_um - self.config.predict.quicklook_um)))

  # A user's observation -------------------------------------------------------------------

  def predict_sources(self) -> list[str]:
    """The observations of config.predict.input: a FITS file, or the .fits files of a
    folder."""
    path = self.config.predict.input
    if not os.path.isdir(path):
      return [path]
    files = sorted(glob.glob(os.path.join(path, "*.fits")))
    if not files:
      raise FileNotFoundError(f"predict.input={path!r}: no .fits observation in the folder")
    return files

  def predict_input(self, predict_batch: PredictFn, batch_size: int, source: str) -> dict:
    """Fuses the whole observation in `source` (a FITS file as
    fusionjax/data/jwst/observation.py describes) tile by tile, memory bounded by the tile and by
    `planes_per_write` output planes whatever its size; writes <output>/<name>_fused.fits
    (L, H, W; on the sky where the NIRCam images have a celestial WCS) and a quicklook PNG.
    Input pixels without data (NaN, flagged in DQ, or without a finite ERR) are filled for the
    network (`_observation_inputs`) and NaN in the cube: a NIRCam pixel in every plane, a
    NIRSpec pixel at its wavelength over its s x s NIRCam pixels."""
    settings = self.config.predict
    observation = jwst_observation.read_observation(source)
    codes, fused = self._fuse(observation, source, predict_batch, batch_size)
    scene, s = self.scene, self.scene.scale_factor
    stem = os.path.splitext(os.path.basename(source))[0]
    cube_path = os.path.join(settings.output, f"{stem}_fused.fits")
    products.write_fits_cube(cube_path, fused, scene.wavelengths_um, units=scene.units,
                             pixel_scale_arcsec=observation.pixel_scale_arcsec,
                             celestial=observation.celestial,
                             description=f"{self.config.model.name} fusion of {source}",
                             tags=self.provenance(source).as_tags())
    band = self._quicklook_band()
    fused_plane = fused.planes(band, band + 1)[0]
    row, col = np.unravel_index(np.argmax(np.nan_to_num(fused_plane, nan=-np.inf)),
                                fused_plane.shape)
    spectra = {"low-resolution input": observation.nirspec[:, row // s, col // s],
               self.config.model.name: scene.coding.decode(codes[row, col])}
    # Colour composites: three NIRCam filters (longest wavelength red) and the fused cube at
    # their pivot wavelengths.
    filters = sorted(scene.msi_bands, key=_filter_um)
    filters = [filters[-1], filters[len(filters) // 2], filters[0]]
    nircam_rgb = np.stack([observation.nircam[scene.msi_bands.index(f)] for f in filters], -1)
    planes = [int(np.argmin(np.abs(scene.wavelengths_um - _filter_um(f)))) for f in filters]
    fused_rgb = np.stack([fused.planes(p, p + 1)[0] for p in planes], -1)
    composites = [(nircam_rgb, "NIRCam " + " ".join(filters)),
                  (fused_rgb, "fused at " + " ".join(f"{scene.wavelengths_um[p]:.2f}"
                                                     for p in planes) + " um")]
    png_path = os.path.join(settings.output, f"{stem}_fused.png")
    products.save_figure(fusion_products.quicklook(
        scene.wavelengths_um, band, observation.nirspec[band], fused_plane, None, spectra,
        (row, col), scene.units, composites=composites, method=self.config.model.name), png_path)
    return {"outputs": [cube_path, png_path]}

  def predict_arrays(self, predict_batch: PredictFn, batch_size: int, nirspec: np.ndarray,
                     nircam: np.ndarray) -> np.ndarray:
    """The fused cube of an observation held in arrays, as predict_input fuses a file.

    Args:
      nirspec: (L, h, w) calibrated NIRSpec cube in the model's unit (`task.scene.units`) on
        its L wavelengths (`task.scene.wavelengths_um`, um); NaN = no data.
      nircam: (M, H, W) NIRCam images in electrons of the exposure the model was trained
        for, its M filters in its order (`task.scene.msi_bands`), H = s h and W = s w for the
        model's scale factor s; NaN = no data.
    Returns:
      (L, H, W) float32 fused cube in the NIRSpec unit, NaN where an input had no data.
    """
    scene = self.scene
    nirspec, nircam = np.asarray(nirspec, np.float32), np.asarray(nircam, np.float32)
    if nirspec.ndim != 3 or nircam.ndim != 3:
      raise ValueError(f"predict_arrays: nirspec {nirspec.shape} and nircam {nircam.shape}; "
                       "expected (L, h, w) and (M, H, W)")
    observation = jwst_observation.Observation(
        nirspec=nirspec, nircam=nircam, wavelengths_um=scene.wavelengths_um,
        filters=scene.msi_bands, units=scene.units, pixel_scale_arcsec=0.0)
    _, fused = self._fuse(observation, "predict_arrays", predict_batch, batch_size)
    return fused.planes(0, scene.num_bands)

  def _fuse(self, observation: jwst_observation.Observation, source: str,
            predict_batch: PredictFn,
            batch_size: int) -> tuple[np.ndarray, products.PlaneSource]:
    """The (H, W, d) codes of an observation's fused cube, tile by tile, and the (L, H, W)
    cube they decode to, plane by plane, NaN where an input had no data (see
    predict_input); errors name `source`."""
    lr, msi = self._observation_inputs(observation, source)
    scene = self.scene
    logging.info("Fusing %s: %d wavelengths, %d x %d NIRCam pixels.", source,
                 scene.num_bands, *msi.shape[:2])
    data = self.inversion.observations(observation.nircam, observation.nirspec)
    method = self.config.predict.method
    if method == "model_based":
      codes = self.inversion.model_based_codes(data)
    else:
      discrepancy = self.inversion.discrepancy(data)
      if method == "model_based_chi2":
        codes = discrepancy.codes
      else:
        base = (discrepancy.codes,) if self.scene_base(self.config) else ()
        codes = tiling.predict_tiled(
            predict_batch, lr, msi, tile=self.config.data.tile_size,
            overlap=self.config.predict.tile_overlap, scale=scene.scale_factor,
            batch_size=batch_size, extra=base)
        if base:
          codes = self.inversion.trusted_codes(data, discrepancy.codes, codes)[1]
        codes = self.inversion.consistent_codes(data, codes, discrepancy.weight)
    s = scene.scale_factor
    nircam_missing = ~np.all(np.isfinite(observation.nircam), axis=0)    # (H, W)
    nirspec_missing = ~np.isfinite(observation.nirspec)                  # (L, h, w)

    def fused_planes(start: int, stop: int) -> np.ndarray:
      decoded = np.moveaxis(scene.coding.decode(codes, slice(start, stop)), -1, 0)
      missing = nircam_missing | np.repeat(np.repeat(nirspec_missing[start:stop], s, 1), s, 2)
      return np.where(missing, np.float32(np.nan), decoded)
    return codes, products.PlaneSource((scene.num_bands, *codes.shape[:2]), fused_planes)

  def _observation_inputs(self, observation, path: str) -> tuple[np.ndarray, np.ndarray]:
    """The coded (h, w, d) NIRSpec cube and standardised (H, W, M) NIRCam images of an
    observation, after checking that it matches what the model was trained on. No-data (NaN)
    is filled: in NIRSpec with the mean spectrum of the pixels with data (interpolated in
    wavelength over planes without any), in NIRCam with the training scene's filter means."""
    scene = self.scene
    if observation.filters != scene.msi_bands:
      raise ValueError(f"{path}: NIRCam filters {list(observation.filters)}, expected "
                       f"{list(scene.msi_bands)} (the model's, in that order)")
    if (observation.wavelengths_um.shape != scene.wavelengths_um.shape
        or not np.allclose(observation.wavelengths_um, scene.wavelengths_um, rtol=1e-6)):
      raise ValueError(f"{path}: WAVELENGTH holds {observation.wavelengths_um.shape[0]} "
                       f"wavelengths, expected the model's {scene.num_bands} "
                       f"({scene.wavelengths_um[0]:.4f}-{scene.wavelengths_um[-1]:.4f} um)")
    if observation.units != scene.units:
      raise ValueError(f"{path}: NIRSPEC BUNIT is {observation.units!r}, expected "
                       f"{scene.units!r}")
    _, h, w = observation.nirspec.shape
    s, tile = scene.scale_factor, self.config.data.tile_size
    if observation.nircam.shape[1:] != (s * h, s * w):
      raise ValueError(f"{path}: NIRCAM is {observation.nircam.shape[1]} x "
                       f"{observation.nircam.shape[2]} pixels, expected {s * h} x {s * w} "
                       f"({s} x the NIRSPEC grid of {h} x {w})")
    if min(s * h, s * w) < tile:
      raise ValueError(f"{path}: the scene is {s * h} x {s * w} NIRCam pixels, smaller than "
                       f"one data.tile_size={tile} tile")
    nirspec = np.moveaxis(observation.nirspec, 0, -1)
    measured = np.isfinite(nirspec)
    counts = measured.sum(axis=(0, 1))
    known = counts > 0      # the planes with data (the reader checked that there are some)
    mean = np.interp(scene.wavelengths_um, scene.wavelengths_um[known],
                     np.where(measured, nirspec, 0.0).sum(axis=(0, 1))[known] / counts[known])
    lr = scene.coding.encode_observed(np.where(measured, nirspec, mean))
    nircam = np.moveaxis(observation.nircam, 0, -1)
    msi = (np.where(np.isfinite(nircam), nircam, scene.msi_mean) - scene.msi_mean) \
        / scene.msi_scale
    return lr.astype(np.float32), msi.astype(np.float32)



def _filter_um(name: str) -> float:
  """A NIRCam filter's nominal wavelength from its name (F150W -> 1.50 um)."""
  match = re.match(r"F(\d{3})", name)
  if not match:
    raise ValueError(f"NIRCam filter {name!r}: expected a name like F150W")
  return int(match.group(1)) / 100.0
