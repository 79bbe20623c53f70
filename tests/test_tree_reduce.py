"""``open_virtual_mfdataset(..., parallel=client, reduce="tree")`` on a LocalCluster of processes.

The per-file datasets stay on the workers and are combined there in a tree; the
result must be the very group the serial combine gives, in the same order, and
its values those of ``xr.open_mfdataset`` of the files.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import pytest
import xarray as xr
from tests.cf_corpus import Corpus, assert_decodes_like, write_corpus

import vzcore as vc
import vzxarray as vx
import vzxarray._tree_reduce
from vzxarray.demo import make_demo_files

distributed = pytest.importorskip("distributed")

DEFAULTS: dict[str, Any] = {
    "data_vars": "minimal",
    "coords": "minimal",
    "compat": "override",
    "join": "outer",
    "combine_attrs": "override",
}


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_demo_files(tmp_path_factory.mktemp("year"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return write_corpus(tmp_path_factory.mktemp("cf-corpus"))


@pytest.fixture(params=[2, 8], ids=["fan-in-2", "fan-in-8"])
def fan_in(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """A fan-in of 2 makes a deep tree of the 12 files (4 levels), 8 a shallow one."""
    monkeypatch.setattr(vzxarray._tree_reduce, "FAN_IN", request.param)
    value: int = request.param
    return value


def _assert_same(tree: xr.Dataset, serial: xr.Dataset) -> None:
    assert list(tree.variables) == list(serial.variables)
    assert list(tree.coords) == list(serial.coords)
    assert tree.vz.to_virtual_group() == serial.vz.to_virtual_group()


def test_by_coords_on_the_workers_equals_serial_and_xarray(
    client: Any, year: list[Path], fan_in: int
) -> None:
    shuffled = [str(p) for p in random.Random(7).sample(year, len(year))]
    with distributed.get_task_stream(client) as stream:
        tree = vx.open_virtual_mfdataset(shuffled, parallel=client, reduce="tree")
    combines = [t for t in stream.data if str(t["key"]).startswith("_combine_part-")]
    # The 12 files joined on the workers: 6 + 3 + 2 + 1 combines by twos, 2 + 1 by eights.
    assert len(combines) == {2: 12, 8: 3}[fan_in]
    assert {t["worker"] for t in combines} <= set(client.scheduler_info()["workers"])
    serial = vx.open_virtual_mfdataset(shuffled, progress=False)
    _assert_same(tree, serial)
    assert isinstance(tree["tas"].data, vx.ManifestArray)
    assert tree["tas"].shape == (365, 90, 180)
    # The values, on five of the files (reading all twelve twice takes long).
    some = shuffled[:5]
    tree = vx.open_virtual_mfdataset(some, parallel=client, reduce="tree")
    with xr.open_mfdataset(some, combine="by_coords", **DEFAULTS) as expected:
        xr.testing.assert_identical(tree.vz.to_dataset(), expected)


def test_a_2d_tiling_by_coords(client: Any, corpus: Corpus) -> None:
    tiles = [str(p) for row in corpus.tiles for p in row]
    shuffled = random.Random(1).sample(tiles, len(tiles))
    options = {**DEFAULTS, "combine_attrs": "drop_conflicts"}
    tree = vx.open_virtual_mfdataset(shuffled, parallel=client, reduce="tree", **options)
    serial = vx.open_virtual_mfdataset(shuffled, progress=False, **options)
    _assert_same(tree, serial)
    with xr.open_mfdataset(shuffled, combine="by_coords", **options) as expected:
        assert_decodes_like(tree.vz.to_dataset().load(), expected.load())


def test_nested_along_time_and_along_a_new_dimension(
    client: Any, year: list[Path], fan_in: int
) -> None:
    paths = [str(p) for p in year]
    nested: dict[str, Any] = {"combine": "nested", "concat_dim": "time"}
    tree = vx.open_virtual_mfdataset(paths, parallel=client, reduce="tree", **nested)
    _assert_same(tree, vx.open_virtual_mfdataset(paths, progress=False, **nested))
    members = [paths[0]] * 5
    # A new dimension needs data_vars="all" (xarray refuses "minimal" with "minimal" coords).
    new_dim: dict[str, Any] = {"combine": "nested", "concat_dim": ["member"], "data_vars": "all"}
    tree = vx.open_virtual_mfdataset(members, parallel=client, reduce="tree", **new_dim)
    assert tree["tas"].dims == ("member", "time", "lat", "lon")
    _assert_same(tree, vx.open_virtual_mfdataset(members, progress=False, **new_dim))


def _write_variable(path: Path, name: str, first_day: int) -> str:
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("time", 3)
        ds.createDimension("x", 4)
        time = ds.createVariable("time", "f8", ("time",))
        time.units = "days since 2000-01-01"
        time[:] = first_day + np.arange(3)
        ds.createVariable("x", "f8", ("x",))[:] = np.arange(4.0)
        ds.createVariable(name, "f4", ("time", "x"), chunksizes=(1, 4))[:] = (
            np.arange(12, dtype="f4").reshape(3, 4) + first_day * 100 + len(name)
        )
    return str(path)


def test_files_of_different_variables_are_combined_then_merged(client: Any, tmp_path: Path) -> None:
    paths = [
        _write_variable(tmp_path / f"{name}_{day}.nc", name, day)
        for day in (3, 0)
        for name in ("pr", "tas")
    ]
    tree = vx.open_virtual_mfdataset(paths, parallel=client, reduce="tree")
    serial = vx.open_virtual_mfdataset(paths, progress=False)
    _assert_same(tree, serial)
    with xr.open_mfdataset(paths, combine="by_coords", **DEFAULTS) as expected:
        xr.testing.assert_identical(tree.vz.to_dataset(), expected)


def test_failing_files_are_reported_or_skipped(
    client: Any, year: list[Path], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"CDF\x01 not a netCDF file")
    paths = [str(year[0]), str(bad), str(year[1])]
    with pytest.raises(vx.MultiFileError, match=r"bad\.nc") as raised:
        vx.open_virtual_mfdataset(paths, parallel=client, reduce="tree")
    assert [f.url for f in raised.value.failures] == [f"file://{bad}"]
    skipped = vx.open_virtual_mfdataset(paths, parallel=client, reduce="tree", on_error="skip")
    assert skipped.attrs["vz_skipped_files"] == [f"file://{bad}"]
    serial = vx.open_virtual_mfdataset(paths, on_error="skip", progress=False)
    _assert_same(skipped, serial)
    with pytest.raises(vx.MultiFileError):
        vx.open_virtual_mfdataset([str(bad)], parallel=client, reduce="tree", on_error="skip")


def test_files_that_cannot_be_ordered_get_a_typed_error(
    client: Any, year: list[Path], tmp_path: Path
) -> None:
    same = [str(year[0]), str(year[0])]
    with pytest.raises(vc.VirtualizationError, match="could not find any dimension coordinates"):
        vx.open_virtual_mfdataset(same, parallel=client, reduce="tree")
    overlapping = [_write_variable(tmp_path / f"tas_{day}.nc", "tas", day) for day in (0, 1)]
    with pytest.raises(vc.VirtualizationError, match="'time' coordinate is not monotonic"):
        vx.open_virtual_mfdataset(overlapping, parallel=client, reduce="tree")
    with pytest.raises(vc.VirtualizationError, match="one dimension"):
        vx.open_virtual_mfdataset(
            same, parallel=client, reduce="tree", combine="nested", concat_dim=["a", "b"]
        )


def test_a_client_without_tree_gathers_and_combines_here(client: Any, year: list[Path]) -> None:
    paths = [str(p) for p in year[:4]]
    gathered = vx.open_virtual_mfdataset(paths, parallel=client, progress=False)
    _assert_same(gathered, vx.open_virtual_mfdataset(paths, progress=False))


def test_tree_needs_a_client(year: list[Path]) -> None:
    for parallel in (None, "threads", "dask"):
        with pytest.raises(vc.VirtualizationError, match=r"distributed\.Client"):
            vx.open_virtual_mfdataset([str(year[0])], parallel=parallel, reduce="tree")
    with pytest.raises(vc.VirtualizationError, match="reduce="):
        vx.open_virtual_mfdataset([str(year[0])], reduce="workers", progress=False)  # type: ignore[arg-type]
