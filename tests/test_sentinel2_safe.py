"""Sentinel-2 SAFE products (L1C and L2A, folders and zips) read as scenes, predict.window, and
one scene sharpened alike whatever its format. The products are made from a 120 x 120 pixel
(10 m) crop of the shared real L1C scene, written as JPEG 2000 as ESA's are (GDAL's
JP2OpenJPEG driver, lossless), with the real layout and metadata fields."""
import os
import zipfile

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

import fusionjax
from fusionjax.data import geotiff
from fusionjax.data.sentinel2 import reader as sentinel2
from fusionjax.data.sentinel2 import safe
from fusionjax.data.sentinel2.scene import crop_to_window
from tests.conftest import shared_data_dir
from tests.test_sentinel2 import _predict

ALL_BANDS = sentinel2.BANDS_10M + sentinel2.BANDS_20M + sentinel2.BANDS_60M
SIZE = 120                          # 10 m pixels of the crop (a multiple of 6)
ORIGIN = (399960.0, 5800020.0)      # its upper-left corner, EPSG:32633 (UTM 33N) metres
CRS = rasterio.crs.CRS.from_epsg(32633)
# A distinct offset per band_id (products have -1000 for all), so that a band given another
# band's offset shows.
OFFSETS = {name: -1000.0 - band_id for band_id, name in enumerate(safe.BAND_IDS)}
L1C_NAME = "S2A_MSIL1C_20170527T100031_N{baseline}_R122_T33UUB_20170527T100030.SAFE"
L2A_NAME = "S2A_MSIL2A_20170527T100031_N{baseline}_R122_T33UUB_20170527T130209.SAFE"
GRANULE = "GRANULE/{level}_T33UUB_A010101_20170527T100030/IMG_DATA"
NAMESPACE = "https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-{level}.xsd"


@pytest.fixture(scope="module")
def source() -> sentinel2.Scene:
  """A 120 x 120 pixel (10 m) crop of the shared real scene, all twelve bands."""
  path = os.path.join(shared_data_dir("sentinel2"), "S2A_MSIL1C_20170527_T33UUB.mat")
  scene = sentinel2.read_mat(path, ALL_BANDS)
  return crop_to_window(scene, f"240,240,{SIZE},{SIZE}")


def _file_band(name: str) -> str:
  """A band's name in product file names: B1 -> B01, B8A -> B8A."""
  return name if name == "B8A" else f"B{int(name[1:]):02d}"


def _write_jp2(path: str, data: np.ndarray, resolution: int) -> None:
  """(rows, columns) digital numbers as a lossless uint16 JPEG 2000 on the crop's grid."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  transform = Affine(resolution, 0.0, ORIGIN[0], 0.0, -resolution, ORIGIN[1])
  with rasterio.open(path, "w", driver="JP2OpenJPEG", width=data.shape[1],
                     height=data.shape[0], count=1, dtype="uint16", crs=CRS,
                     transform=transform, QUALITY=100, REVERSIBLE="YES") as sink:
    sink.write(data.astype(np.uint16), 1)


def _metadata(level: str, baseline: str, offsets: bool = True) -> str:
  """MTD_MSIL1C.xml or MTD_MSIL2A.xml as ESA writes them (the fields read), with OFFSETS;
  the Spectral_Information_List in reverse order (it, not its order, gives band ids)."""
  if level == "L1C":
    quantification = '<QUANTIFICATION_VALUE unit="none">10000</QUANTIFICATION_VALUE>'
    tag, offset_list = "RADIO_ADD_OFFSET", "Radiometric_Offset_List"
  else:
    quantification = ('<QUANTIFICATION_VALUES_LIST><BOA_QUANTIFICATION_VALUE unit="none">10000'
                      '</BOA_QUANTIFICATION_VALUE><AOT_QUANTIFICATION_VALUE unit="none">1000.0'
                      '</AOT_QUANTIFICATION_VALUE></QUANTIFICATION_VALUES_LIST>')
    tag, offset_list = "BOA_ADD_OFFSET", "BOA_ADD_OFFSET_VALUES_LIST"
  band_ids = list(enumerate(safe.BAND_IDS))
  offset_xml = "".join(f'<{tag} band_id="{i}">{OFFSETS[name]:g}</{tag}>' for i, name in band_ids)
  spectral = "".join(f'<Spectral_Information bandId="{i}" physicalBand="{name}"/>'
                     for i, name in reversed(band_ids))
  return (f'<?xml version="1.0" encoding="UTF-8"?>\n<n1:Level-{level[1:]}_User_Product '
          f'xmlns:n1="{NAMESPACE.format(level=level[1:])}"><n1:General_Info><Product_Info>'
          f"<PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE></Product_Info>"
          f"<Product_Image_Characteristics>{quantification}"
          f"<{offset_list}>{offset_xml if offsets else ''}</{offset_list}>"
          f"<Spectral_Information_List>{spectral}</Spectral_Information_List>"
          "</Product_Image_Characteristics></n1:General_Info>"
          f"</n1:Level-{level[1:]}_User_Product>")


def write_product(folder, scene: sentinel2.Scene, level: str, baseline: str = "04.00") -> str:
  """`scene` (reflectance x 10000) as a SAFE product of `level` in `folder`: digital numbers
  reflectance - offset (from baseline 04.00 on), each band at its native resolution; an L2A
  product also holds bands resampled to the other resolutions (constant, to be left out),
  and the rasters that are no bands (TCI, AOT, SCL). Returns its path."""
  name = (L1C_NAME if level == "L1C" else L2A_NAME).format(baseline=baseline.replace(".", ""))
  root = os.path.join(str(folder), name)
  images = os.path.join(root, GRANULE.format(level=level))
  tile = "T33UUB_20170527T100031"
  with_offset = float(baseline) >= 4.0
  for band, image in scene.bands.items():
    resolution = sentinel2.BANDS[band].resolution_m
    measured = sentinel2.measured(image)   # no-data and saturated pixels keep their flags
    dn = np.where(measured, image - OFFSETS[band] * with_offset, image)
    suffix = "" if level == "L1C" else f"_{resolution}m"
    where = images if level == "L1C" else os.path.join(images, f"R{resolution}m")
    _write_jp2(os.path.join(where, f"{tile}_{_file_band(band)}{suffix}.jp2"), dn, resolution)
  extras = [("TCI", 10)] if level == "L1C" else [
      ("TCI_10m", 10), ("AOT_10m", 10), ("B02_20m", 20), ("B05_60m", 60), ("SCL_20m", 20)]
  for extra, resolution in extras:
    where = images if level == "L1C" else os.path.join(images, f"R{resolution}m")
    _write_jp2(os.path.join(where, f"{tile}_{extra}.jp2"),
               np.full((SIZE * 10 // resolution,) * 2, 7), resolution)
  with open(os.path.join(root, f"MTD_MSI{level}.xml"), "w") as sink:
    sink.write(_metadata(level, baseline))
  return root


def zip_product(root: str) -> str:
  """The product folder `root` zipped as downloaded (<name>.SAFE/... inside)."""
  path = root + ".zip"
  with zipfile.ZipFile(path, "w") as archive:
    for folder, _, names in os.walk(root):
      for name in names:
        file = os.path.join(folder, name)
        archive.write(file, os.path.relpath(file, os.path.dirname(root)))
  return path


def assert_same_bands(scene: sentinel2.Scene, expected: sentinel2.Scene) -> None:
  assert sorted(scene.bands) == sorted(expected.bands)
  for name, image in expected.bands.items():
    np.testing.assert_array_equal(scene.bands[name], image, err_msg=name)


def test_l1c_products_before_and_after_baseline_4_give_the_reflectances(source, tmp_path):
  # A pixel of no-data, one saturated and a very dark one, in the 60 m water-vapour band.
  b9 = source.bands["B9"].copy()
  b9[0, :3] = 0.0, sentinel2.SATURATED, 10.0
  scene = sentinel2.Scene(dict(source.bands, B9=b9), None, "crop")
  for baseline in ("02.04", "04.00"):
    product = write_product(tmp_path, scene, "L1C", baseline)
    read = sentinel2.read_scene(product, ALL_BANDS)
    assert read.source == product
    assert_same_bands(read, scene)
    assert read.georef.transform == (10.0, 0.0, ORIGIN[0], 0.0, -10.0, ORIGIN[1])
    assert rasterio.crs.CRS.from_wkt(read.georef.crs_wkt) == CRS
  # A DN below the offset (dark water under the noise) is clipped to a measured reflectance.
  assert safe.reflectance(np.array([500.0, 0.0, 65535.0]), -1000.0, 10000.0).tolist() == [
      safe.MIN_REFLECTANCE, sentinel2.NODATA, sentinel2.SATURATED]


def test_l2a_products_are_read_at_each_bands_native_resolution_folder_or_zip(source, tmp_path):
  product = write_product(tmp_path, source, "L2A")
  read = sentinel2.read_scene(product, ALL_BANDS)
  assert_same_bands(read, source)
  assert read.georef.transform == (10.0, 0.0, ORIGIN[0], 0.0, -10.0, ORIGIN[1])
  zipped = sentinel2.read_scene(zip_product(product), ALL_BANDS)
  assert_same_bands(zipped, source)
  assert zipped.georef == read.georef
  assert zipped.source == os.path.join(product + ".zip", os.path.basename(product))


def test_bad_products_are_named(source, tmp_path):
  product = write_product(tmp_path, source, "L1C")
  granule = os.path.join(product, GRANULE.format(level="L1C"))
  os.remove(os.path.join(granule, "T33UUB_20170527T100031_B11.jp2"))
  with pytest.raises(ValueError, match=r"N0400.*\.SAFE: missing band\(s\) \['B11'\]"):
    sentinel2.read_scene(product)
  metadata = os.path.join(product, "MTD_MSIL1C.xml")
  with open(metadata, "w") as sink:
    sink.write(_metadata("L1C", "04.00", offsets=False))
  with pytest.raises(ValueError, match=r"MTD_MSIL1C.xml: processing baseline 04.00 but no "
                     r"RADIO_ADD_OFFSET for band\(s\) \['B1', 'B2', 'B3'"):
    sentinel2.read_scene(product)
  with open(metadata, "w") as sink:
    sink.write("<n1:Level-1C_User_Product")
  with pytest.raises(ValueError, match="MTD_MSIL1C.xml: not parseable XML"):
    sentinel2.read_scene(product)
  os.remove(metadata)
  with pytest.raises(FileNotFoundError, match=r"\.SAFE: 0 product metadata files; expected one "
                     r"of \['MTD_MSIL1C.xml', 'MTD_MSIL2A.xml'\]"):
    sentinel2.read_scene(product)
  with zipfile.ZipFile(tmp_path / "bands.zip", "w") as archive:
    archive.write(os.path.join(granule, "T33UUB_20170527T100031_B02.jp2"), "B02.jp2")
  with pytest.raises(ValueError, match=r"bands.zip: holds 0 .SAFE folders \[\]; expected the "
                     "zip of one Sentinel-2 SAFE product"):
    sentinel2.read_scene(str(tmp_path / "bands.zip"))


def test_predict_window_crops_on_the_60m_grid_and_moves_the_origin(source, tmp_path):
  scene = sentinel2.read_scene(write_product(tmp_path, source, "L1C"), ALL_BANDS)
  by_pixels = crop_to_window(scene, "10,10,50,70")   # rows [10, 60), columns [10, 80)
  # The same pixels by bounds: inside pixel column 6 to inside column 79, rows 6 to 54.
  x0, y0 = ORIGIN
  by_bounds = crop_to_window(scene, f"bounds:{x0 + 65},{y0 - 550},{x0 + 797},{y0 - 61}")
  for cropped in (by_pixels, by_bounds):
    # Widened to whole 60 m pixels: rows [6, 60), columns [6, 84).
    assert cropped.georef.transform == (10.0, 0.0, x0 + 60, 0.0, -10.0, y0 - 60)
    np.testing.assert_array_equal(cropped.bands["B2"], scene.bands["B2"][6:60, 6:84])
    np.testing.assert_array_equal(cropped.bands["B11"], scene.bands["B11"][3:30, 3:42])
    np.testing.assert_array_equal(cropped.bands["B1"], scene.bands["B1"][1:10, 1:14])
  assert_same_bands(by_bounds, by_pixels)
  assert crop_to_window(scene, "") is scene
  assert crop_to_window(scene, "100,100,20,20").bands["B2"].shape == (24, 24)   # rows 96-
  for window, message in (
      ("1,2,3", r"predict.window='1,2,3': expected 'row0,col0,rows,cols'"),
      ("box:1,2,3,4", r"'box:1,2,3,4': expected 'row0,col0,rows,cols'"),
      ("0,0,0,10", "expected whole numbers, row0 and col0 at least 0, rows and cols at least 1"),
      ("100,100,30,30", r"rows \[100, 130\) and columns \[100, 130\) of the 10 m grid are not "
       r"inside .*\.SAFE \(120 x 120 pixels, bounds:399960,5798820,401160,5800020\)"),
      (f"bounds:{x0 - 100},{y0 - 100},{x0 + 100},{y0}", "not inside"),
      (f"bounds:{x0 + 100},{y0},{x0},{y0 - 100}", "expected minx < maxx and miny < maxy")):
    with pytest.raises(ValueError, match=message):
      crop_to_window(scene, window)
  with pytest.raises(ValueError, match=r"'bounds:0,0,1,1': .*T33UUB.mat has no georef"):
    crop_to_window(source, "bounds:0,0,1,1")


def test_a_safe_product_window_is_sharpened_where_it_lies(trained, source, tmp_path):
  workdir = trained("sentinel2", "smoke")
  product = write_product(tmp_path, source, "L2A")
  outputs = tmp_path / "out"
  _predict(workdir, "smoke", product, outputs,
           **{"predict.window": "10,10,50,70", "predict.fit_correction": False})
  stem = os.path.splitext(os.path.basename(product))[0]
  with rasterio.open(outputs / f"{stem}_sharpened_10m.tif") as result:
    assert result.count == len(sentinel2.BANDS_20M) and result.shape == (54, 78)
    assert result.crs == CRS
    assert tuple(result.transform)[:6] == (10.0, 0.0, ORIGIN[0] + 60, 0.0, -10.0,
                                           ORIGIN[1] - 60)
    assert np.all(np.isfinite(result.read()))


def test_the_same_scene_as_mat_and_band_files_is_sharpened_alike(trained, source, tmp_path):
  # A model trained on one input format and applied to another sees the same band in the same
  # channel: the same real scene as a MATLAB file and as GeoTIFF band files.
  workdir = trained("sentinel2", "smoke")
  sentinel2.write_mat(str(tmp_path / "scene.mat"), source.bands)
  (tmp_path / "bands").mkdir()
  for name, image in source.bands.items():
    resolution = sentinel2.BANDS[name].resolution_m
    georef = geotiff.GeoReference(CRS.to_wkt(), (resolution, 0.0, ORIGIN[0], 0.0, -resolution,
                                                 ORIGIN[1]))
    geotiff.write_geotiff(str(tmp_path / "bands" / f"T33UUB_20170527_{name}.tif"), image[None],
                          georef)
  sharpened = {}
  for name, scene in (("scene", tmp_path / "scene.mat"), ("bands", tmp_path / "bands")):
    _predict(workdir, "smoke", scene, tmp_path / name)
    with rasterio.open(tmp_path / name / f"{name}_sharpened_10m.tif") as result:
      sharpened[name] = result.read()
  assert sharpened["scene"].shape == (6, SIZE, SIZE)
  np.testing.assert_allclose(sharpened["bands"], sharpened["scene"], rtol=1e-6)
  # The Python API sharpens the same scene held in arrays alike, with the product's band order.
  model = fusionjax.load(str(workdir))
  assert model.step > 0 and model.config.name == "sentinel2"
  arrays = model.predict(bands=source.bands)
  assert list(arrays) == list(sentinel2.BANDS_20M)
  np.testing.assert_allclose(np.stack(list(arrays.values())), sharpened["scene"], rtol=1e-6)
  with pytest.raises(ValueError, match="predict_arrays: missing band"):
    model.predict(bands={n: b for n, b in source.bands.items() if n != "B5"})


@pytest.mark.parametrize("path", ["in/S2A_MSIL2A_X.SAFE.zip", "in/S2A_MSIL2A_X.SAFE/",
                                  "in/S2A_MSIL2A_X.zip", "S2A_MSIL2A_X.mat", "in/S2A_MSIL2A_X"])
def test_products_are_named_after_the_scene_without_its_extensions(path):
  assert sentinel2.product_name(path) == "S2A_MSIL2A_X"
