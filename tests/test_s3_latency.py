"""Requests per netCDF4 file on S3, counted at a latency proxy in front of moto.

Opening a file virtually reads it in three passes: format detection's first bytes,
h5py's metadata, the coordinates loaded afterwards. Each is a round trip (20 ms or
more to S3), so they share one block cache (`vzcore.byteranges.shared_reads`): a
file below 4 MiB is one GET, a bigger one whose metadata sits at its start a GET of
its first MiB and a few more. Counts only, no timings (benchmarks/s3_latency.py
times the 200 files of benchmarks/mfdataset.py serial and threaded).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import netCDF4
import numpy as np
import pytest
import xarray as xr
import zarr
from tests.latency_proxy import LatencyProxy
from tests.s3_server import MotoS3Server, S3Bucket

import vzcore as vc
import vzxarray as vx
from vzcore.byteranges import RangeFile, shared_reads, source

DELAY = 0.005  # seconds a request: enough to be a proxy in the way, not to slow the tests


@pytest.fixture
def proxy(s3_server: MotoS3Server) -> Iterator[LatencyProxy]:
    with LatencyProxy(s3_server.endpoint, delay=DELAY) as running:
        yield running


def proxied_registry(bucket: S3Bucket, proxy: LatencyProxy, url: str) -> vc.ObjectStoreRegistry:
    """``for_urls`` with the proxy as the endpoint, as a user configures a registry."""
    return vc.ObjectStoreRegistry.for_urls(
        [url],
        endpoint=proxy.endpoint,
        region=bucket.region,
        access_key_id=bucket.access_key_id,
        secret_access_key=bucket.secret_access_key,
        virtual_hosted_style_request=False,
        client_options={"allow_http": True, "timeout": "10s", "connect_timeout": "5s"},
    )


def write_netcdf4(path: Path, shape: tuple[int, int, int], *, noise: bool) -> Path:
    """``tas`` (one zlib chunk per time step) and CF time/lat/lon, as benchmarks/mfdataset.

    Every variable is defined, and the coordinates written, before the data: the
    metadata of such a file sits at its start. ``noise`` makes the data incompressible
    (a file past 4 MiB).
    """
    nt, ny, nx = shape
    rng = np.random.default_rng(0)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.title = "latency test"
        ds.createDimension("time", None)
        ds.createDimension("lat", ny)
        ds.createDimension("lon", nx)
        time = ds.createVariable("time", "f8", ("time",))
        time.units = "days since 2000-01-01"
        ds.createVariable("lat", "f8", ("lat",))[:] = np.linspace(-89.5, 89.5, ny)
        ds.createVariable("lon", "f8", ("lon",))[:] = np.linspace(0.5, 359.5, nx)
        tas = ds.createVariable(
            "tas", "f4", ("time", "lat", "lon"), zlib=True, chunksizes=(1, ny, nx)
        )
        tas.units = "K"
        time[:] = np.arange(nt)
        field = 273.15 + np.arange(nt)[:, None, None] + np.zeros((nt, ny, nx))
        if noise:
            field = rng.standard_normal((nt, ny, nx)) * 1e3
        tas[:] = field.astype("f4")
    return path


def assert_equals_h5py(dataset: xr.Dataset, registry: vc.ObjectStoreRegistry, local: Path) -> None:
    """tas and the coordinates read through vz's ManifestStore equal h5py's values."""
    store = vc.ManifestStore(vx.group_from_dataset(dataset), registry=registry)
    with h5py.File(local, "r") as expected:
        for name in ("tas", "lat", "lon", "time"):
            values = zarr.open_array(store, path=name, mode="r")[...]
            np.testing.assert_array_equal(values, expected[name][...], err_msg=name)


def test_a_small_netcdf4_file_is_opened_in_one_get(
    s3_bucket: S3Bucket, proxy: LatencyProxy, tmp_path: Path
) -> None:
    """Detection, parse and the three coordinates: the whole 0.4 MB file, once."""
    local = write_netcdf4(tmp_path / "small.nc", (24, 90, 180), noise=False)
    url = s3_bucket.put_file("small.nc", local)
    registry = proxied_registry(s3_bucket, proxy, url)
    proxy.reset()
    dataset = vx.open_virtual_dataset(url, registry=registry)
    path = f"/{s3_bucket.name}/small.nc"
    assert proxy.by_path("GET") == {path: 1}
    assert proxy.by_path("HEAD") == {path: 1}
    assert [r for m, _, r in proxy.log if m == "GET"] == [f"bytes=0-{local.stat().st_size - 1}"]
    assert_equals_h5py(dataset, registry, local)


def test_a_bigger_netcdf4_file_with_its_metadata_first_needs_at_most_3_gets(
    s3_bucket: S3Bucket, proxy: LatencyProxy, tmp_path: Path
) -> None:
    """Past 4 MiB the first read fetches the file's first MiB, which holds its metadata."""
    local = write_netcdf4(tmp_path / "bigger.nc", (24, 180, 360), noise=True)
    assert local.stat().st_size > 4 << 20
    url = s3_bucket.put_file("bigger.nc", local)
    registry = proxied_registry(s3_bucket, proxy, url)
    proxy.reset()
    dataset = vx.open_virtual_dataset(url, registry=registry)
    gets = proxy.requests("GET")
    assert 1 <= gets <= 3, proxy.log
    assert proxy.requests("HEAD") == 1
    first_get = next(r for m, _, r in proxy.log if m == "GET")
    assert first_get is not None
    assert first_get.startswith("bytes=0-")
    assert dataset["tas"].shape == (24, 180, 360)
    assert_equals_h5py(dataset, registry, local)


def test_many_files_threaded_are_one_get_each(
    s3_bucket: S3Bucket, proxy: LatencyProxy, tmp_path: Path
) -> None:
    """open_virtual_mfdataset on 8 threads: each file's passes share that file's cache."""
    urls = []
    for index in range(8):
        local = write_netcdf4(tmp_path / f"f{index}.nc", (2, 18, 36), noise=False)
        with netCDF4.Dataset(local, "a") as ds:
            ds["time"][:] = np.arange(2) + 2 * index
        urls.append(s3_bucket.put_file(f"mf/f{index}.nc", local))
    registry = proxied_registry(s3_bucket, proxy, urls[0])  # one store for the bucket
    proxy.reset()
    with ThreadPoolExecutor(max_workers=8) as pool:
        combined = vx.open_virtual_mfdataset(urls, registry=registry, parallel=pool)
    assert combined.sizes["time"] == 16
    counts = proxy.by_path("GET")
    assert sorted(counts) == sorted(f"/{s3_bucket.name}/mf/f{i}.nc" for i in range(8))
    assert set(counts.values()) == {1}


def test_shared_reads_ask_each_object_once_and_end_with_the_block(
    s3_bucket: S3Bucket, proxy: LatencyProxy
) -> None:
    data = bytes(range(256)) * 64
    url = s3_bucket.put("blob.bin", data)
    registry = proxied_registry(s3_bucket, proxy, url)
    proxy.reset()
    with shared_reads():
        first = source(registry, url)
        assert bytes(first.read_ranges([0], [4])[0]) == data[:4]
        assert first.size() == len(data)
        again = source(registry, url)
        assert bytes(again.read_ranges([100, 9000], [110, 9004])[1]) == data[9000:9004]
        view = vc.byteranges.open_file(again)
        assert isinstance(view, RangeFile)
        view.seek(16000)
        assert view.read(4) == data[16000:16004]
    assert (proxy.requests("GET"), proxy.requests("HEAD")) == (1, 1)
    assert bytes(source(registry, url).read_ranges([0], [4])[0]) == data[:4]
    assert proxy.requests("GET") == 2  # outside the block: read as usual


def test_a_range_file_fetches_its_head_block_with_the_first_read(
    s3_bucket: S3Bucket, proxy: LatencyProxy
) -> None:
    data = np.random.default_rng(0).bytes(6 << 20)
    url = s3_bucket.put("big.bin", data)
    registry = proxied_registry(s3_bucket, proxy, url)
    file = RangeFile(source(registry, url), size=len(data), head_block=1 << 20)
    proxy.reset()
    file.seek(100)
    assert file.read(10) == data[100:110]
    file.seek((1 << 20) - 5)
    assert file.read(5) == data[(1 << 20) - 5 : 1 << 20]
    assert [r for _, _, r in proxy.log] == [f"bytes=0-{(1 << 20) - 1}"]
    file.seek(5 << 20)
    assert file.read(3) == data[5 << 20 : (5 << 20) + 3]
    assert proxy.requests("GET") == 2
