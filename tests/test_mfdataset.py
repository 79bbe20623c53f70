"""open_virtual_mfdataset: every parallel mode gives the same dataset, failures are collected."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import xarray as xr

import vzcore as vc
import vzxarray as vx
from vzxarray.demo import make_demo_files


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_demo_files(tmp_path_factory.mktemp("year"))


def _originals(files: list[Path]) -> xr.Dataset:
    combined = xr.combine_by_coords([xr.open_dataset(p) for p in files])
    assert isinstance(combined, xr.Dataset)
    return combined.load()


def _read_back(dataset: xr.Dataset, files: list[Path]) -> xr.Dataset:
    registry = vc.ObjectStoreRegistry.for_urls([str(files[0])])
    store = vc.ManifestStore(dataset.vz.to_virtual_group(), registry=registry)
    return xr.open_zarr(store, consolidated=False).load()


@pytest.mark.parametrize(
    "parallel", [None, False, "threads", "processes", "executor", ThreadPoolExecutor]
)
def test_every_parallel_mode_gives_the_originals(year: list[Path], parallel: str | None) -> None:
    mode = ThreadPoolExecutor(2) if parallel == "executor" else parallel
    combined = vx.open_virtual_mfdataset(
        str(year[0].parent / "tas_*.nc"),
        parallel=mode,
        progress=False,  # type: ignore[arg-type]
    )
    assert combined["tas"].shape == (365, 90, 180)
    assert isinstance(combined["tas"].data, vx.ManifestArray)
    xr.testing.assert_equal(_read_back(combined, year), _originals(year))


class _RecordingExecutor(ThreadPoolExecutor):
    """A thread pool that records being created and shut down."""

    made: ClassVar[list[_RecordingExecutor]] = []

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.is_shut_down = False
        self.made.append(self)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.is_shut_down = True
        super().shutdown(wait, cancel_futures=cancel_futures)


def test_an_executor_class_is_created_used_and_shut_down(year: list[Path]) -> None:
    paths = [str(p) for p in year[:3]]
    serial = vx.open_virtual_mfdataset(paths, parallel=False, progress=False)
    pooled = vx.open_virtual_mfdataset(paths, parallel=_RecordingExecutor, progress=False)
    assert pooled.vz.to_virtual_group() == serial.vz.to_virtual_group()
    assert len(_RecordingExecutor.made) == 1
    assert _RecordingExecutor.made[0].is_shut_down


def test_nested_combine_and_the_file_list(year: list[Path]) -> None:
    combined = vx.open_virtual_mfdataset(
        [str(p) for p in year], combine="nested", concat_dim="time", progress=False
    )
    np.testing.assert_array_equal(combined["time"].values, _originals(year)["time"].values)


def test_all_failures_are_reported_together(year: list[Path], tmp_path: Path) -> None:
    bad = [tmp_path / "bad_a.nc", tmp_path / "bad_b.nc"]
    bad[0].write_bytes(b"CDF\x01 truncated")
    bad[1].write_bytes(b"\x89HDF\r\n\x1a\n then nothing")
    paths = [str(p) for p in [*year[:2], *bad]]
    with pytest.raises(vx.MultiFileError) as info:
        vx.open_virtual_mfdataset(paths, progress=False)
    assert {f.url.rsplit("/", 1)[-1] for f in info.value.failures} == {"bad_a.nc", "bad_b.nc"}
    assert "bad_a.nc" in str(info.value)
    assert "bad_b.nc" in str(info.value)
    skipped = vx.open_virtual_mfdataset(paths, on_error="skip", progress=False)
    assert skipped["tas"].shape[0] == 31 + 28
    assert sorted(u.rsplit("/", 1)[-1] for u in skipped.attrs["vz_skipped_files"]) == [
        "bad_a.nc",
        "bad_b.nc",
    ]


def test_bad_arguments(year: list[Path]) -> None:
    with pytest.raises(vc.VirtualizationError, match="no files match"):
        vx.open_virtual_mfdataset(str(year[0].parent / "none_*.nc"))
    with pytest.raises(vc.VirtualizationError, match="needs concat_dim"):
        vx.open_virtual_mfdataset([str(year[0])], combine="nested", progress=False)
    with pytest.raises(vc.VirtualizationError, match="parallel="):
        vx.open_virtual_mfdataset([str(year[0])], parallel="gpus", progress=False)  # type: ignore[arg-type]


def test_dask_scheduler_and_a_distributed_cluster_give_the_same(year: list[Path]) -> None:
    distributed = pytest.importorskip("distributed")
    serial = vx.open_virtual_mfdataset([str(p) for p in year], progress=False)
    with_dask = vx.open_virtual_mfdataset([str(p) for p in year], parallel="dask", progress=False)
    # xarray cannot compare virtual float variables (that needs isnan): compare the groups.
    assert with_dask.vz.to_virtual_group() == serial.vz.to_virtual_group()
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster),
    ):
        on_cluster = vx.open_virtual_mfdataset(
            [str(p) for p in year], parallel="dask", progress=False
        )
    assert on_cluster.vz.to_virtual_group() == serial.vz.to_virtual_group()


def test_progress_bar_can_be_shown_or_not(
    year: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    vx.open_virtual_mfdataset([str(p) for p in year[:2]], progress=True)
    assert "virtualizing" in capsys.readouterr().err
    vx.open_virtual_mfdataset([str(p) for p in year[:2]], progress=False)
    assert "virtualizing" not in capsys.readouterr().err


@pytest.mark.parametrize("parallel", [None, "threads", "processes", ThreadPoolExecutor])
def test_the_callers_limits_hold_in_every_worker(year: list[Path], parallel: str | None) -> None:
    """Limits are a context variable; pool threads and dask tasks get the caller's."""
    pattern = str(year[0].parent / "tas_*.nc")
    with vc.limits(max_chunks=1), pytest.raises(vx.MultiFileError) as info:
        vx.open_virtual_mfdataset(pattern, parallel=parallel, progress=False)  # type: ignore[arg-type]
    assert len(info.value.failures) == len(year)
    assert all(isinstance(f.error, vc.LimitExceededError) for f in info.value.failures)
    assert "max_chunks" in str(info.value.failures[0].error)


def _die(dataset: xr.Dataset) -> xr.Dataset:
    """A preprocess step that kills the worker process running it."""
    import os

    os._exit(13)


def test_the_process_pool_is_kept_and_replaced_when_a_worker_dies(year: list[Path]) -> None:
    from vzxarray import mfdataset

    paths = [str(p) for p in year[:4]]
    serial = vx.open_virtual_mfdataset(paths, progress=False)
    first = vx.open_virtual_mfdataset(paths, parallel="processes", progress=False)
    (pool,) = mfdataset._POOL
    again = vx.open_virtual_mfdataset(paths, parallel="processes", progress=False)
    assert len(mfdataset._POOL) == 1  # the workers started once serve the next call
    assert mfdataset._POOL[0] is pool
    assert first.vz.to_virtual_group() == serial.vz.to_virtual_group()
    assert again.vz.to_virtual_group() == serial.vz.to_virtual_group()
    with pytest.raises(vc.VirtualizationError, match="worker process died"):
        vx.open_virtual_mfdataset(paths, parallel="processes", preprocess=_die, progress=False)
    assert not mfdataset._POOL
    after = vx.open_virtual_mfdataset(paths, parallel="processes", progress=False)
    assert after.vz.to_virtual_group() == serial.vz.to_virtual_group()


def test_threads_are_many_for_remote_files_and_one_per_core_for_local_ones() -> None:
    import os

    from vzxarray.mfdataset import _thread_count

    cores = max(os.cpu_count() or 1, 2)
    assert _thread_count(["/data/a.nc", "file:///data/b.nc"]) == cores
    assert _thread_count(["/data/a.nc", "s3://bucket/b.nc"]) == max(cores, 16)
