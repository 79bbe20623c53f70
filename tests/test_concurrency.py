"""One `ManifestStore` read from many threads and from worker processes gives the serial result.

Four HDF5 files of noise, 16 gzip chunks each, are virtualized into one group (local
files, and the same files on moto's S3). The serial reference is every chunk's
bytes (a SHA-256 each) and the decoded array, checked against the source files.
Then:

- 32 threads started together each read every chunk through the *same* store, in
  an order of their own and in concurrent batches (each thread its own event
  loop), and a share of the array through zarr: every thread gets the serial
  digests and values.
- The store is pickled to the worker processes of a `distributed.LocalCluster`,
  each task reading a share of the chunks; and xarray's lazy dataset over the
  store is computed on the cluster: both equal the serial result.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zarr
from tests.s3_server import S3Bucket
from zarr.core.buffer import default_buffer_prototype

import vzcore as vc
from vzcore.parsers import HDFParser
from vzxarray.dataset import lazy_dataset_from_group

FILES = 4
STEPS = 16  # chunks per file
THREADS = 32


def write_files(folder: Path) -> tuple[list[Path], np.ndarray]:
    """``x`` (16, 16, 16) per file, one gzip chunk per step; the values, concatenated."""
    paths, values = [], []
    for index in range(FILES):
        path = folder / f"part{index}.h5"
        data = np.random.default_rng(index).standard_normal((STEPS, 16, 16)).astype("<f4")
        with h5py.File(path, "w") as f:
            f.create_dataset("x", data=data, chunks=(1, 16, 16), compression="gzip")
        paths.append(path)
        values.append(data)
    return paths, np.concatenate(values)


def combined_group(urls: Sequence[str], registry: vc.ObjectStoreRegistry) -> vc.VirtualGroup:
    groups = [HDFParser()(url, registry) for url in urls]
    x = vc.concat([g["x"] for g in groups], axis=0)  # type: ignore[arg-type]
    sources = {u: f for g in groups for u, f in g.sources.items()}
    return vc.VirtualGroup(arrays={"x": x}, sources=sources)


def chunk_keys() -> list[str]:
    return [f"x/c/{step}/0/0" for step in range(FILES * STEPS)]


def read_digests(store: vc.ManifestStore, keys: Sequence[str], batch: int = 8) -> dict[str, str]:
    """The SHA-256 of each chunk ``store`` serves, ``batch`` requests awaited together."""

    async def every() -> dict[str, str]:
        prototype = default_buffer_prototype()
        found: dict[str, str] = {}
        for first in range(0, len(keys), batch):
            some = keys[first : first + batch]
            buffers = await asyncio.gather(*(store.get(key, prototype) for key in some))
            for key, buffer in zip(some, buffers, strict=True):
                assert buffer is not None, key
                found[key] = hashlib.sha256(buffer.to_bytes()).hexdigest()
        return found

    return asyncio.run(every())


def source_digests(group: vc.VirtualGroup, paths: Sequence[Path]) -> dict[str, str]:
    """The SHA-256 of each chunk's bytes, cut from the source files by the manifest."""
    x = group["x"]
    assert isinstance(x, vc.VirtualArray)
    locations, offsets, lengths = x.manifest.to_arrays()
    by_name = {p.name: p.read_bytes() for p in paths}
    found = {}
    for key, url, offset, length in zip(
        chunk_keys(), locations.ravel(), offsets.ravel(), lengths.ravel(), strict=True
    ):
        data = by_name[str(url).rsplit("/", 1)[-1]]
        found[key] = hashlib.sha256(data[int(offset) : int(offset) + int(length)]).hexdigest()
    return found


@pytest.fixture(params=["local", "s3"])
def served(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[vc.ManifestStore, dict[str, str], np.ndarray]:
    """(one store over the four files, the chunks' source digests, the values)."""
    paths, values = write_files(tmp_path)
    if request.param == "local":
        urls = [f"file://{p}" for p in paths]
        registry = vc.ObjectStoreRegistry.for_urls(urls)
    else:
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        urls = [bucket.put_file(f"parts/{p.name}", p) for p in paths]
        registry = bucket.registry()
    group = combined_group(urls, registry)
    expected = source_digests(group, paths)
    store = vc.ManifestStore(group, registry=registry)
    assert read_digests(store, chunk_keys()) == expected  # the serial read
    np.testing.assert_array_equal(zarr.open_array(store, path="x", mode="r")[...], values)
    return store, expected, values


def test_one_store_read_from_32_threads_gives_the_serial_result(
    served: tuple[vc.ManifestStore, dict[str, str], np.ndarray],
) -> None:
    store, expected, values = served
    start = threading.Barrier(THREADS)

    share = FILES * STEPS // THREADS

    def one(seed: int) -> tuple[dict[str, str], np.ndarray]:
        keys = list(np.random.default_rng(seed).permutation(chunk_keys()))
        start.wait()  # every thread reads at once
        digests = read_digests(store, keys, batch=4 << seed % 3)  # 4, 8 or 16 at once
        array = zarr.open_array(store, path="x", mode="r")
        return digests, array[seed * share : (seed + 1) * share]

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(pool.map(one, range(THREADS)))
    for seed, (digests, part) in enumerate(results):
        assert digests == expected
        np.testing.assert_array_equal(part, values[seed * share : (seed + 1) * share])


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A client of a `LocalCluster` of two worker processes (shared by the module's tests)."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as connected,
    ):
        yield connected


def test_one_store_read_from_cluster_worker_processes_gives_the_serial_result(
    served: tuple[vc.ManifestStore, dict[str, str], np.ndarray], client: Any
) -> None:
    store, expected, values = served
    keys = chunk_keys()
    shares = [keys[k::8] for k in range(8)]
    [remote] = client.scatter([store], broadcast=True)  # pickled to each worker
    digests = client.gather(client.map(read_digests, [remote] * len(shares), shares))
    pids = client.run(os.getpid)
    assert len(set(pids.values()) - {os.getpid()}) == 2  # two worker processes, not this one
    lazy = lazy_dataset_from_group(store.group, registry=store.registry, chunks={})
    computed = lazy["x"].compute()  # the store in dask's graph, read on the workers
    merged = {k: v for share in digests for k, v in share.items()}
    assert merged == expected
    np.testing.assert_array_equal(computed.values, values)


# ---- a worker that dies ---------------------------------------------------------------------


def write_days(folder: Path, count: int = 4) -> list[str]:
    """``count`` netCDF4 files of two time steps each (time 2i, 2i+1); their URLs."""
    import netCDF4

    urls = []
    for index in range(count):
        path = folder / f"day{index}.nc"
        with netCDF4.Dataset(path, "w") as ds:
            ds.createDimension("time", 2)
            ds.createVariable("time", "i4", ("time",))[:] = [2 * index, 2 * index + 1]
            ds.createVariable("tas", "f4", ("time",))[:] = [index, index + 0.5]
        urls.append(f"file://{path}")
    return urls


def die_on_day_3(dataset: Any) -> Any:
    """A preprocess step killing the worker process that opens day3.nc (time 6, 7)."""
    if int(dataset["time"][0]) == 6:
        os._exit(13)
    return dataset


def die_on_day_1(dataset: Any) -> Any:
    """A preprocess step killing the worker process that opens day1.nc (time 2, 3)."""
    if int(dataset["time"][0]) == 2:
        os._exit(13)
    return dataset


def test_a_worker_process_that_dies_is_reported_by_its_file_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    import vzxarray as vx

    data = tmp_path / "data"
    data.mkdir()
    urls = write_days(data)
    out = tmp_path / "refs.parquet"
    options: dict[str, Any] = {
        "parallel": "processes",
        "preprocess": die_on_day_3,
        "combine": "nested",
        "concat_dim": "time",
        "progress": False,
    }
    with pytest.raises(vx.MultiFileError) as info:
        vx.open_virtual_mfdataset(urls, **options).vz.to_manifest_parquet(out)
    (failure,) = info.value.failures
    assert failure.url == urls[3]
    assert isinstance(failure.error, vx.WorkerDiedError)
    assert f"{urls[3]}: a worker process died opening it" in str(failure.error)
    assert sorted(os.listdir(tmp_path)) == ["data"]  # no output, not even a temporary one


def test_after_a_worker_dies_the_other_files_open_and_combine(tmp_path: Path) -> None:
    import vzxarray as vx

    urls = write_days(tmp_path)
    skipped = vx.open_virtual_mfdataset(
        urls,
        parallel="processes",
        preprocess=die_on_day_1,
        combine="nested",
        concat_dim="time",
        on_error="skip",
        progress=False,
    )
    assert skipped.attrs["vz_skipped_files"] == [urls[1]]  # day2 and day3: a new pool
    np.testing.assert_array_equal(skipped["time"].values, [0, 1, 4, 5, 6, 7])


def test_after_too_many_worker_deaths_the_rest_are_failures_unopened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vzxarray as vx
    from vzxarray import mfdataset

    monkeypatch.setattr(mfdataset, "_MAX_DEATHS", 1)
    urls = write_days(tmp_path)
    skipped = vx.open_virtual_mfdataset(
        urls,
        parallel="processes",
        preprocess=die_on_day_1,
        combine="nested",
        concat_dim="time",
        on_error="skip",
        progress=False,
    )
    assert skipped.attrs["vz_skipped_files"] == urls[1:]
    np.testing.assert_array_equal(skipped["time"].values, [0, 1])


def test_a_task_whose_cluster_workers_die_is_reported_by_its_file(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    import dask

    import vzxarray as vx

    urls = write_days(tmp_path)
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),  # no retry elsewhere
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        options: dict[str, Any] = {
            "parallel": client,
            "preprocess": die_on_day_3,
            "combine": "nested",
            "concat_dim": "time",
        }
        with pytest.raises(vx.MultiFileError) as info:
            vx.open_virtual_mfdataset(urls, **options)
        skipped = vx.open_virtual_mfdataset(urls, on_error="skip", **options)
    (failure,) = info.value.failures
    assert failure.url == urls[3]
    assert isinstance(failure.error, vx.WorkerDiedError)
    assert "KilledWorker" in str(failure.error)
    assert skipped.attrs["vz_skipped_files"] == [urls[3]]  # the others are combined
    np.testing.assert_array_equal(skipped["time"].values, [0, 1, 2, 3, 4, 5])
