"""Rectilinear chunk grids end to end: 12 monthly files of daily data, one chunk per file.

Every result is read back (Icechunk, ManifestStore, read_array, manifest parquet)
and compared with what netCDF4 reads through ``xr.open_mfdataset``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import h5py
import icechunk
import netCDF4
import numpy as np
import pytest
import xarray as xr
import zarr
from tests.cf_corpus import icechunk_repository

import vzcore as vc
import vzxarray as vx
from vzcore.parsers import HDFParser, IcechunkParser
from vzcore.read import rectilinear_chunks_enabled
from vzxarray.cli import main

DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
GRID = vc.RectilinearChunkGrid((DAYS, 2, 3))


def _month(path: Path, month: int, start: int) -> None:
    days = DAYS[month]
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("time", None)
        ds.createDimension("lat", 2)
        ds.createDimension("lon", 3)
        time = ds.createVariable("time", "f8", ("time",))
        time.units = "days since 2021-01-01"
        time.calendar = "standard"
        time[:] = np.arange(start, start + days)
        tas = ds.createVariable(
            "tas", "f4", ("time", "lat", "lon"), chunksizes=(days, 2, 3), zlib=True
        )
        tas.units = "K"
        values = np.arange(days * 6, dtype="f4").reshape(days, 2, 3) + 1000 * month
        tas[:] = values


@pytest.fixture(scope="module")
def months(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("months")
    paths = [folder / f"tas_{m + 1:02d}.nc" for m in range(12)]
    for month, path in enumerate(paths):
        _month(path, month, start=sum(DAYS[:month]))
    return paths


@pytest.fixture(scope="module")
def registry(months: list[Path]) -> vc.ObjectStoreRegistry:
    return vc.ObjectStoreRegistry.for_urls([str(months[0])])


@pytest.fixture(scope="module")
def expected(months: list[Path]) -> Iterator[xr.Dataset]:
    with xr.open_mfdataset(months, combine="nested", concat_dim="time") as ds:
        yield ds.load()


def _virtual(months: list[Path], registry: vc.ObjectStoreRegistry) -> xr.Dataset:
    return vx.open_virtual_mfdataset(
        [str(p) for p in months],
        registry=registry,
        parser=HDFParser(),
        combine="nested",
        concat_dim="time",
    )


def _repository(folder: Path) -> icechunk.Repository:
    repository: icechunk.Repository = icechunk_repository(folder)
    return repository


def _reopened(store: object) -> xr.Dataset:
    with rectilinear_chunks_enabled(), xr.open_zarr(store, consolidated=False) as ds:
        return ds.load()


def test_monthly_files_concatenate_into_a_rectilinear_time_axis(
    months: list[Path], registry: vc.ObjectStoreRegistry
) -> None:
    tas = _virtual(months, registry)["tas"].data.virtual
    assert tas.shape == (365, 2, 3)
    assert tas.metadata.chunk_grid == GRID
    assert tas.manifest.grid == (12, 1, 1)
    document = tas.metadata.to_zarr_v3()["chunk_grid"]
    assert document == {
        "name": "rectilinear",
        "configuration": {
            "kind": "inline",
            # July and August are a run: [31, 2], as zarr writes it.
            # Regular axes as runs too: Icechunk 2.3 reads no bare-integer shorthand.
            "chunk_shapes": [[31, 28, 31, 30, 31, 30, [31, 2], 30, 31, 30, 31], [2], [3]],
        },
    }
    assert vc.ArrayMetadata.from_zarr_v3(tas.metadata.to_zarr_v3()) == tas.metadata


def test_icechunk_stores_the_grid_and_reads_like_the_files(
    months: list[Path], registry: vc.ObjectStoreRegistry, expected: xr.Dataset
) -> None:
    repository = _repository(months[0].parent)
    session = repository.writable_session("main")
    _virtual(months, registry).vz.to_icechunk(session.store)
    session.commit("a year")
    store = repository.readonly_session("main").store
    with rectilinear_chunks_enabled():
        stored = zarr.open_array(store, path="tas", mode="r")
        assert stored.metadata.chunk_grid.chunk_shapes == (DAYS, (2,), (3,))  # type: ignore[union-attr]
    xr.testing.assert_identical(_reopened(store).drop_encoding(), expected.drop_encoding())


def test_icechunk_append_extends_the_edges(
    months: list[Path], registry: vc.ObjectStoreRegistry, expected: xr.Dataset
) -> None:
    repository = _repository(months[0].parent)
    session = repository.writable_session("main")
    _virtual(months[:5], registry).vz.to_icechunk(session.store)
    session.commit("January to May")
    session = repository.writable_session("main")
    _virtual(months[5:], registry).vz.to_icechunk(session.store, append_dim="time")
    session.commit("June to December")
    store = repository.readonly_session("main").store
    with rectilinear_chunks_enabled():
        stored = zarr.open_array(store, path="tas", mode="r")
        assert stored.metadata.chunk_grid.chunk_shapes == (DAYS, (2,), (3,))  # type: ignore[union-attr]
    xr.testing.assert_identical(_reopened(store).drop_encoding(), expected.drop_encoding())


def test_vz_virtualize_writes_the_year_to_icechunk(
    months: list[Path], tmp_path: Path, expected: xr.Dataset, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "year.icechunk"
    args = ["virtualize", *map(str, months), "--concat-dim", "time", "--out", str(out)]
    assert main([*args, "--format", "icechunk"]) == 0
    assert "virtualized 12 file(s)" in capsys.readouterr().out
    repository = icechunk.Repository.open(
        icechunk.local_filesystem_storage(str(out)),
        authorize_virtual_chunk_access=icechunk.containers_credentials(
            {f"file://{months[0].parent}/": icechunk.Credentials.LocalFileSystemAccess()}
        ),
    )
    got = _reopened(repository.readonly_session("main").store)
    xr.testing.assert_identical(got.drop_encoding(), expected.drop_encoding())


def test_icechunk_parser_reads_the_year_back_and_appends(
    months: list[Path],
    registry: vc.ObjectStoreRegistry,
    tmp_path: Path,
    expected: xr.Dataset,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Write half a year with `vz virtualize`, parse it, append the rest, parse again."""
    out = tmp_path / "year.icechunk"
    args = ["virtualize", *map(str, months[:5]), "--concat-dim", "time", "--out", str(out)]
    assert main([*args, "--format", "icechunk"]) == 0
    both = vc.ObjectStoreRegistry.for_urls([str(months[0]), str(out)])
    first = vx.open_virtual_dataset(str(out), registry=both, parser=IcechunkParser())
    assert first["tas"].data.virtual.metadata.chunk_grid == vc.RectilinearChunkGrid(
        (DAYS[:5], 2, 3)
    )
    whole = xr.concat(
        [first, _virtual(months[5:], registry)],
        dim="time",
        data_vars="minimal",
        coords="minimal",
        compat="override",
    )
    parsed = whole.vz.to_virtual_group()
    assert parsed["tas"].metadata.chunk_grid == GRID  # type: ignore[union-attr]
    np.testing.assert_array_equal(
        vc.read_array(parsed["tas"], both),  # type: ignore[arg-type]
        expected["tas"].values,
    )
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert "chunk lengths ((31, 28, 31, 30, 31), 2, 3)" in capsys.readouterr().out

    repository = icechunk.Repository.open(
        icechunk.local_filesystem_storage(str(out)),
        authorize_virtual_chunk_access=icechunk.containers_credentials(
            {f"file://{months[0].parent}/": icechunk.Credentials.LocalFileSystemAccess()}
        ),
    )
    session = repository.writable_session("main")
    _virtual(months[5:], registry).vz.to_icechunk(session.store, append_dim="time")
    session.commit("June to December")
    again = IcechunkParser()(str(out), both)
    assert again["tas"] == parsed["tas"]
    store = vc.ManifestStore(again, registry=both)
    xr.testing.assert_identical(_reopened(store).drop_encoding(), expected.drop_encoding())


def test_manifest_store_and_read_array_read_the_year(
    months: list[Path], registry: vc.ObjectStoreRegistry, expected: xr.Dataset
) -> None:
    group = _virtual(months, registry).vz.to_virtual_group()
    values = vc.read_array(group["tas"], registry)  # type: ignore[arg-type]
    np.testing.assert_array_equal(values, expected["tas"].values)
    store = vc.ManifestStore(group, registry=registry)
    with rectilinear_chunks_enabled():
        array = zarr.open_array(store, path="tas", mode="r")
        np.testing.assert_array_equal(array[40:70, 1], expected["tas"].values[40:70, 1])
    xr.testing.assert_identical(_reopened(store).drop_encoding(), expected.drop_encoding())


def test_manifest_parquet_records_the_edges(
    months: list[Path], registry: vc.ObjectStoreRegistry, tmp_path: Path
) -> None:
    group = _virtual(months, registry).vz.to_virtual_group()
    vc.write_manifest_parquet(group, tmp_path / "year")
    back = vc.read_manifest_parquet(tmp_path / "year")
    assert back["tas"] == group["tas"]
    assert back["tas"].metadata.chunk_grid == GRID  # type: ignore[union-attr]
    np.testing.assert_array_equal(
        vc.read_array(back["tas"], registry),  # type: ignore[arg-type]
        vc.read_array(group["tas"], registry),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("fmt", ["dict", "parquet"])
def test_kerchunk_refuses_a_rectilinear_grid(
    months: list[Path], registry: vc.ObjectStoreRegistry, tmp_path: Path, fmt: str
) -> None:
    ds = _virtual(months, registry)
    with pytest.raises(vc.RectilinearGridError) as info:
        ds.vz.to_kerchunk(None if fmt == "dict" else tmp_path / "refs", format=fmt)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith("variable 'tas' cannot be written as Kerchunk references")
    assert "rectilinear chunk grid" in message
    assert "Icechunk" in message
    assert "regularize" in message
    assert not (tmp_path / "refs").exists()


def test_regularize_explains_why_it_cannot(
    months: list[Path], registry: vc.ObjectStoreRegistry
) -> None:
    tas = _virtual(months, registry)["tas"].data.virtual
    with pytest.raises(vc.RectilinearGridError) as info:
        vc.regularize(tas)
    assert "axis 0 has chunks of lengths 31, 28, 31, 30, 31, 30, ... (12 chunks)" in str(info.value)
    assert "rewrite their bytes" in str(info.value)
    equal = vc.concat([vc.select_chunks(tas, [slice(0, 31), slice(None), slice(None)])] * 2, axis=0)
    assert vc.regularize(equal) is equal
    assert equal.metadata.chunk_grid == vc.RegularChunkGrid((31, 2, 3))


# ---- a file whose last chunk is partial, concatenated with another ----------------------


def _steps(path: Path, start: int, steps: int, **options: object) -> np.ndarray:
    values = np.arange(start * 6, (start + steps) * 6, dtype="<i4").reshape(steps, 2, 3)
    with h5py.File(path, "w") as f:
        f.create_dataset("v", data=values, chunks=(4, 2, 3), **options)  # type: ignore[arg-type]
    return values


def test_a_raw_partial_chunk_inside_becomes_a_shorter_chunk(tmp_path: Path) -> None:
    """10 steps in chunks of 4 (the last holds 2) then 8 steps: chunks 4, 4, 2, 4, 4."""
    first = _steps(tmp_path / "a.h5", 0, 10)
    second = _steps(tmp_path / "b.h5", 10, 8)
    registry = vc.ObjectStoreRegistry.for_urls([str(tmp_path / "a.h5")])
    arrays = [HDFParser()(str(tmp_path / name), registry)["v"] for name in ("a.h5", "b.h5")]
    assert arrays[0].metadata.chunk_grid == vc.RegularChunkGrid((4, 2, 3))
    joined = vc.concat(arrays, axis=0)  # type: ignore[type-var]
    assert joined.metadata.chunk_grid == vc.RectilinearChunkGrid(((4, 4, 2, 4, 4), 2, 3))
    values = np.concatenate([first, second])
    np.testing.assert_array_equal(vc.read_array(joined, registry), values)
    store = vc.ManifestStore(vc.VirtualGroup(arrays={"v": joined}), registry=registry)
    with rectilinear_chunks_enabled():
        np.testing.assert_array_equal(zarr.open_array(store, path="v", mode="r")[...], values)


def test_a_compressed_partial_chunk_inside_is_refused(tmp_path: Path) -> None:
    _steps(tmp_path / "a.h5", 0, 10, compression="gzip")
    _steps(tmp_path / "b.h5", 10, 8, compression="gzip")
    registry = vc.ObjectStoreRegistry.for_urls([str(tmp_path / "a.h5")])
    arrays = [HDFParser()(str(tmp_path / name), registry)["v"] for name in ("a.h5", "b.h5")]
    with pytest.raises(vc.PartialChunkError) as info:
        vc.concat(arrays, axis=0)  # type: ignore[type-var]
    message = str(info.value)
    assert "a.h5) has length 10 along axis 0, not a multiple of its chunk length 4" in message
    assert "stored for 4 elements and holds 2, and it is encoded (bytes, numcodecs.zlib)" in message
