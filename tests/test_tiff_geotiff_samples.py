"""TIFFParser on public GeoTIFFs nobody here wrote: the ``geotiff`` package's test inputs.

The sdist of ``geotiff`` 0.2.10 (PyPI) ships five GeoTIFFs from different sources
(a DEM, Landsat-like uint16 bands, float grids in EPSG:4326, GDA94 and GDA2020).
Each is read through `ManifestStore` and compared with rasterio (GDAL): the values,
the affine transform, the CRS, the nodata value, and the pixel-centre ``x``/``y``
coordinates `open_virtual_dataset` gives.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import tifffile
from tests.sample_packages import sdist_members
from tests.test_tiff import parse, read, registry_for

import vzcore as vc
import vzxarray as vx

NAMES = ["dem.tif", "gda_94_sand.tif", "red.tif", "san_test.tif", "sand_test.tif"]


@pytest.fixture(scope="module")
def geotiffs() -> dict[str, Path]:
    return {p.name: p for p in sdist_members("geotiff", "0.2.10", "tests/inputs/*.tif")}


def _rasterio(path: Path) -> tuple[np.ndarray, list[float], str, float | None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rasterio warns of files without a georeference
        with rasterio.open(path) as src:
            values = src.read()
            return values, list(src.transform)[:6], str(src.crs), src.nodata


def test_every_sample_is_listed(geotiffs: dict[str, Path]) -> None:
    assert sorted(geotiffs) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_public_geotiffs_read_like_rasterio(name: str, geotiffs: dict[str, Path]) -> None:
    path = geotiffs[name]
    group = parse(path)
    values, transform, crs, nodata = _rasterio(path)
    got = read(group, registry_for(path), "0")
    expected = values[0] if values.shape[0] == 1 else np.moveaxis(values, 0, -1)
    np.testing.assert_array_equal(got, expected)
    with tifffile.TiffFile(path) as tif:
        np.testing.assert_array_equal(got, tif.asarray())
    array = group["0"]
    assert isinstance(array, vc.VirtualArray)
    np.testing.assert_allclose(array.metadata.attributes["transform"], transform)
    assert array.metadata.attributes["crs"] == crs
    if nodata is not None:
        assert array.metadata.fill_value == nodata


@pytest.mark.parametrize("name", NAMES)
def test_public_geotiffs_open_with_pixel_centre_coordinates(
    name: str, geotiffs: dict[str, Path]
) -> None:
    path = geotiffs[name]
    values, transform, _, _ = _rasterio(path)
    a, _, c, _, e, f = transform
    height, width = values.shape[1:]
    with vx.open_virtual_dataset(f"file://{path}", registry=registry_for(path)) as dataset:
        np.testing.assert_allclose(dataset["x"].values, c + (np.arange(width) + 0.5) * a)
        np.testing.assert_allclose(dataset["y"].values, f + (np.arange(height) + 0.5) * e)
        assert dataset["0"].dims == ("y", "x")
