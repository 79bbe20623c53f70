"""`vx.open_mfdataset` and `ds.vz.to_dataset()`: ordinary lazy Datasets reading through ManifestStore.

Every value is compared with what xarray reads from the files themselves
(``xr.open_dataset`` / ``xr.open_mfdataset``): the CF corpus of tests/cf_corpus.py
(packing, ``_FillValue`` and ``missing_value``, unallocated chunks, three calendars,
strings) and the demo year of daily files.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import netCDF4
import numpy as np
import obstore.store
import pytest
import xarray as xr
from tests.cf_corpus import CALENDARS, Corpus, assert_decodes_like, write_corpus

import vzcore as vc
import vzxarray as vx
from vzxarray.demo import make_demo_files

# What open_virtual_mfdataset does by default, spelled out for xarray.
DEFAULTS: dict[str, Any] = {
    "data_vars": "minimal",
    "coords": "minimal",
    "compat": "override",
    "join": "outer",
    "combine_attrs": "override",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return write_corpus(tmp_path_factory.mktemp("cf-corpus"))


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_demo_files(tmp_path_factory.mktemp("year"))


def _open_mf(paths: Any, **options: Any) -> xr.Dataset:
    with xr.open_mfdataset(paths, **options) as ds:
        return ds.load()


def _dask_variables(ds: xr.Dataset) -> set[str]:
    return {str(n) for n, v in ds.variables.items() if isinstance(v.data, da.Array)}


def test_open_mfdataset_equals_xarrays_on_the_demo_year(year: list[Path]) -> None:
    paths = [str(p) for p in year]
    lazy = vx.open_mfdataset(paths, parallel="threads", progress=False)
    assert _dask_variables(lazy) == {"tas"}  # coordinates stay in memory
    assert lazy["tas"].data.chunksize == (1, 90, 180)  # the source chunks
    with xr.open_mfdataset(paths, combine="by_coords", **DEFAULTS) as expected:
        assert lazy["tas"].chunks == expected["tas"].chunks
        xr.testing.assert_identical(lazy, expected)  # computes both sides


@pytest.mark.parametrize("calendar", CALENDARS)
def test_open_mfdataset_decodes_the_cf_series_like_xarray(corpus: Corpus, calendar: str) -> None:
    paths = [str(p) for p in corpus.series[calendar]]
    lazy = vx.open_mfdataset(paths, combine="nested", concat_dim="time", progress=False)
    assert "packed" in _dask_variables(lazy)
    expected = _open_mf(paths, combine="nested", concat_dim="time", **DEFAULTS)
    assert_decodes_like(lazy.load(), expected)


def test_open_mfdataset_by_coords_on_a_2d_tiling(corpus: Corpus) -> None:
    tiles = [str(p) for row in reversed(corpus.tiles) for p in reversed(row)]
    lazy = vx.open_mfdataset(tiles, progress=False)
    expected = _open_mf(tiles, combine="by_coords", **DEFAULTS)
    assert_decodes_like(lazy.load(), expected)


def test_to_dataset_of_one_file_equals_open_dataset(corpus: Corpus) -> None:
    path = corpus.series["noleap"][1]
    registry = vc.ObjectStoreRegistry.for_urls([str(path)])
    virtual = vx.open_virtual_dataset(str(path), registry=registry)
    lazy = virtual.vz.to_dataset(registry=registry)
    assert isinstance(lazy["packed"].data, da.Array)
    with xr.open_dataset(path) as expected:
        assert_decodes_like(lazy.load(), expected.load())
    # Without registry= one is built for the referenced files: the same values.
    xr.testing.assert_identical(virtual.vz.to_dataset(), lazy)


def test_to_dataset_of_a_combined_virtual_dataset(year: list[Path]) -> None:
    virtual = vx.open_virtual_mfdataset([str(p) for p in year], progress=False)
    lazy = virtual.vz.to_dataset()
    with xr.open_mfdataset(year, combine="by_coords", **DEFAULTS) as expected:
        xr.testing.assert_identical(lazy, expected)


def test_a_loaded_auxiliary_coordinate_stays_in_memory(corpus: Corpus) -> None:
    path = corpus.series["standard"][0]
    registry = vc.ObjectStoreRegistry.for_urls([str(path)])
    virtual = vx.open_virtual_dataset(
        str(path), registry=registry, loadable_variables=["time", "x", "valid_time"]
    )
    lazy = virtual.vz.to_dataset()
    assert isinstance(lazy["valid_time"].variable._data, np.ndarray)
    assert isinstance(lazy["packed"].data, da.Array)
    with xr.open_dataset(path) as expected:
        xr.testing.assert_identical(lazy["valid_time"], expected["valid_time"])


def test_chunks_and_xarray_options_are_passed_on(year: list[Path]) -> None:
    virtual = vx.open_virtual_mfdataset([str(p) for p in year[:2]], progress=False)
    lazy = virtual.vz.to_dataset(chunks={"time": 10}, mask_and_scale=False)
    assert lazy["tas"].data.chunksize == (10, 90, 180)
    with xr.open_mfdataset(year[:2], mask_and_scale=False, **DEFAULTS) as expected:
        xr.testing.assert_identical(lazy, expected)
    raw = vx.open_mfdataset([str(p) for p in year[:2]], decode_times=False, progress=False)
    with xr.open_mfdataset(year[:2], decode_times=False, **DEFAULTS) as expected:
        assert raw["time"].dtype == np.float64
        xr.testing.assert_identical(raw, expected)


def test_computing_with_dask_threads_reads_the_files(year: list[Path]) -> None:
    lazy = vx.open_mfdataset([str(p) for p in year], progress=False)
    expected = []
    for path in year:
        with netCDF4.Dataset(path) as nc:
            values = nc["tas"][:]
            expected.append(np.ma.filled(values.astype("f8"), np.nan))
    # Many threads read through one ManifestStore at once.
    pool = ThreadPoolExecutor(8)
    with dask.config.set(scheduler="threads", pool=pool):
        mean = lazy["tas"].mean("time").compute()
        daily = lazy["tas"].isel(lat=slice(10, 20)).max(["lat", "lon"]).compute()
    pool.shutdown()
    every_day = np.concatenate(expected)
    np.testing.assert_allclose(mean.values, np.nanmean(every_day, axis=0), rtol=1e-5)
    np.testing.assert_array_equal(daily.values, every_day[:, 10:20].max(axis=(1, 2)))


def test_a_file_no_store_can_be_built_for_needs_a_registry(year: list[Path]) -> None:
    memory = obstore.store.MemoryStore()
    memory.put("tas.nc", year[0].read_bytes())
    registry = vc.ObjectStoreRegistry({"memory://data/": memory})
    virtual = vx.open_virtual_dataset("memory://data/tas.nc", registry=registry)
    with pytest.raises(vc.UnregisteredURLError, match=r"memory://data/tas\.nc.*pass registry="):
        virtual.vz.to_dataset()
    with xr.open_dataset(year[0]) as expected:
        xr.testing.assert_identical(virtual.vz.to_dataset(registry=registry), expected)
    elsewhere = vc.ObjectStoreRegistry({"memory://other/": memory})
    with pytest.raises(vc.UnregisteredURLError, match=r"memory://data/tas\.nc"):
        virtual.vz.to_dataset(registry=elsewhere)


def test_open_mfdataset_skips_and_names_failing_files(year: list[Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"CDF\x01 truncated")
    paths = [str(year[0]), str(bad)]
    with pytest.raises(vx.MultiFileError, match=r"bad\.nc"):
        vx.open_mfdataset(paths, progress=False)
    lazy = vx.open_mfdataset(paths, on_error="skip", progress=False)
    assert lazy.attrs["vz_skipped_files"] == [f"file://{bad}"]
    with xr.open_dataset(year[0]) as expected:
        xr.testing.assert_equal(lazy, expected)
