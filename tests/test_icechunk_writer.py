"""`write_icechunk` and ``.vz.to_icechunk``: virtual references in an Icechunk repository.

The corpus files (tests/writer_corpus.py) are parsed with vz and written into
in-memory and local-filesystem repositories whose virtual chunk container covers
the corpus folder; after a commit, ``xr.open_zarr`` of a read-only session must
equal ``xr.open_dataset`` of each file. Appends along ``time`` must equal one
concatenation written at once, and a mismatched append must fail before anything
is written. Checksums make a read fail when a source changed after writing.
"""

from __future__ import annotations

import datetime
import functools
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import icechunk
import numpy as np
import pytest
import xarray as xr
import zarr
import zarr.storage
from tests.writer_corpus import (
    GROUPS,
    NETCDF3_FILES,
    NETCDF4_FILES,
    STRINGS,
    assert_same_values,
    expected_dataset,
    local_registry,
    write_corpus,
)

import vzcore as vc
import vzxarray as vx
from vzcore.parsers import HDFParser, NetCDF3Parser
from vzcore.writers import write_icechunk

type StorageKind = Literal["memory", "local"]
STORAGES: tuple[StorageKind, ...] = ("memory", "local")
FILES = (*NETCDF4_FILES, *NETCDF3_FILES)


class Corpus:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.paths = write_corpus(folder)
        self.registry = local_registry(folder)

    def url(self, name: str) -> str:
        return f"file://{self.paths[name]}"

    def parser(self, name: str) -> HDFParser | NetCDF3Parser:
        return NetCDF3Parser() if name in NETCDF3_FILES else HDFParser(loadable_variables=STRINGS)

    def group(self, name: str) -> vc.VirtualGroup:
        return self.parser(name)(self.url(name), self.registry)

    def dataset(self, name: str) -> xr.Dataset:
        return vx.open_virtual_dataset(
            self.url(name), registry=self.registry, parser=self.parser(name)
        )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return Corpus(tmp_path_factory.mktemp("icechunk-corpus"))


def make_repository(folder: Path, kind: StorageKind, where: Path) -> icechunk.Repository:
    """A new repository allowed to read virtual chunks under ``file://<folder>/``."""
    prefix = f"file://{folder}/"
    config = icechunk.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        icechunk.VirtualChunkContainer(prefix, icechunk.local_filesystem_store(str(folder)))
    )
    storage = (
        icechunk.in_memory_storage()
        if kind == "memory"
        else icechunk.local_filesystem_storage(str(where / "repository"))
    )
    # Local files need no credentials: the explicit sentinel (None is deprecated and warns).
    credentials = icechunk.containers_credentials(
        {prefix: icechunk.Credentials.LocalFileSystemAccess()}
    )
    return icechunk.Repository.create(storage, config, authorize_virtual_chunk_access=credentials)


@pytest.fixture(params=STORAGES)
def repository(
    request: pytest.FixtureRequest, corpus: Corpus, tmp_path: Path
) -> icechunk.Repository:
    return make_repository(corpus.folder, request.param, tmp_path)


def committed(
    repository: icechunk.Repository, write: Callable[[Any], None], message: str = "write"
) -> None:
    session = repository.writable_session("main")
    write(session.store)
    assert session.has_uncommitted_changes
    session.commit(message)


def read_group(repository: icechunk.Repository, group: str = "") -> xr.Dataset:
    store = repository.readonly_session("main").store
    with xr.open_zarr(store, group=group or None, consolidated=False) as ds:
        return ds.load()


# ---- writing --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_parsed_group_reads_like_the_file(
    corpus: Corpus, repository: icechunk.Repository, name: str
) -> None:
    group = corpus.group(name)
    committed(repository, lambda store: write_icechunk(group, store))
    for path in GROUPS[name]:
        assert_same_values(read_group(repository, path), expected_dataset(corpus.paths[name], path))


@pytest.mark.parametrize("name", ["nc4_basic.nc", "nc3_records.nc"])
def test_virtual_dataset_reads_like_the_file(
    corpus: Corpus, repository: icechunk.Repository, name: str
) -> None:
    dataset = corpus.dataset(name)
    committed(repository, lambda store: dataset.vz.to_icechunk(store))
    assert_same_values(read_group(repository), expected_dataset(corpus.paths[name]))


def test_loaded_variables_are_real_chunks(corpus: Corpus, repository: icechunk.Repository) -> None:
    dataset = corpus.dataset("nc4_basic.nc")
    session = repository.writable_session("main")
    dataset.vz.to_icechunk(session.store)
    real = (icechunk.ChunkType.inline, icechunk.ChunkType.native)
    for name in ("time", "lat", "lon", "names"):
        assert not isinstance(dataset[name].variable._data, vx.ManifestArray)
        assert session.chunk_type(f"/{name}", [0]) in real, name
    assert session.chunk_type("/tas", [0, 0, 0]) == icechunk.ChunkType.virtual
    assert session.chunk_type("/scalar", []) == icechunk.ChunkType.virtual
    # a chunk netCDF never wrote has no reference at all
    assert session.chunk_type("/sparse", [1, 0]) == icechunk.ChunkType.uninitialized
    locations = set(session.all_virtual_chunk_locations())
    assert locations == {corpus.url("nc4_basic.nc")}
    session.commit("loaded and virtual")
    assert_same_values(read_group(repository), expected_dataset(corpus.paths["nc4_basic.nc"]))


def test_datatree_writes_every_group(corpus: Corpus, repository: icechunk.Repository) -> None:
    tree = vx.open_virtual_datatree(
        corpus.url("nc4_groups.nc"), registry=corpus.registry, parser=HDFParser()
    )
    committed(repository, lambda store: tree.vz.to_icechunk(store))
    store = repository.readonly_session("main").store
    with xr.open_datatree(store, engine="zarr", consolidated=False) as written:
        assert sorted(written.groups) == ["/", "/obs", "/obs/deep"]
        for path in GROUPS["nc4_groups.nc"]:
            got = written[f"/{path}"].to_dataset(inherit=False).load()
            assert_same_values(got, expected_dataset(corpus.paths["nc4_groups.nc"], path))
        assert written["/obs"].attrs["purpose"] == "first level"


def test_group_path(corpus: Corpus, repository: icechunk.Repository) -> None:
    def write(store: Any) -> None:
        write_icechunk(corpus.group("nc4_basic.nc"), store)
        write_icechunk(corpus.group("nc3_records.nc"), store, group_path="runs/records")
        corpus.dataset("nc4_groups.nc").vz.to_icechunk(store, group="/runs/groups/")

    committed(repository, write)
    assert_same_values(read_group(repository), expected_dataset(corpus.paths["nc4_basic.nc"]))
    assert_same_values(
        read_group(repository, "runs/records"), expected_dataset(corpus.paths["nc3_records.nc"])
    )
    assert_same_values(
        read_group(repository, "runs/groups"), expected_dataset(corpus.paths["nc4_groups.nc"])
    )


def test_the_groups_above_a_group_path_are_written(
    corpus: Corpus, repository: icechunk.Repository
) -> None:
    """Into an empty repository, ``group_path="a/b"`` makes ``/`` and ``/a`` groups too."""
    committed(
        repository,
        lambda store: write_icechunk(corpus.group("nc3_records.nc"), store, group_path="a/b"),
    )
    store = repository.readonly_session("main").store
    root = zarr.open_group(store, mode="r")
    assert [name for name, _ in root.groups()] == ["a"]
    assert zarr.open_group(store, path="a", mode="r").attrs.asdict() == {}
    tree = xr.open_datatree(store, engine="zarr", consolidated=False)
    assert_same_values(
        tree["/a/b"].to_dataset().load(), expected_dataset(corpus.paths["nc3_records.nc"])
    )


def test_attributes_are_written(corpus: Corpus, repository: icechunk.Repository) -> None:
    committed(repository, lambda store: write_icechunk(corpus.group("nc4_basic.nc"), store))
    root = zarr.open_group(repository.readonly_session("main").store, mode="r")
    assert root.attrs["title"] == "writer corpus"
    assert root["tas"].attrs["units"] == "K"
    assert root["tas"].metadata.dimension_names == ("time", "lat", "lon")


def test_unauthorised_references_are_refused(corpus: Corpus, tmp_path: Path) -> None:
    """A repository whose container does not cover the files refuses their references."""
    other = tmp_path / "other"
    other.mkdir()
    repository = make_repository(other, "memory", tmp_path)
    session = repository.writable_session("main")
    with pytest.raises(vc.VirtualizationError, match="no virtual chunk container covers") as info:
        write_icechunk(corpus.group("nc3_records.nc"), session.store)
    assert corpus.url("nc3_records.nc") in str(info.value)
    assert not session.has_uncommitted_changes  # checked before anything is written
    # Without the check, Icechunk takes them (and refuses to read them).
    write_icechunk(corpus.group("nc3_records.nc"), session.store, validate_containers=False)
    assert session.has_uncommitted_changes


@pytest.mark.parametrize("kind", STORAGES)
def test_stacked_and_indexed_shards_of_a_zarr_store(tmp_path: Path, kind: StorageKind) -> None:
    """Axes inserted into or dropped from sharded zarr arrays keep their shards readable."""
    from obstore.store import LocalStore

    from vzcore.parsers import ZarrParser

    folder = tmp_path / "source"
    values = np.arange(48, dtype="f4").reshape(6, 8)
    root = zarr.open_group(zarr.storage.LocalStore(folder / "s.zarr"), mode="w", zarr_format=3)
    for name, data in (("a", values), ("b", -values)):
        root.create_array(name, shape=data.shape, dtype="f4", chunks=(2, 2), shards=(2, 4))
        root[name][...] = data  # type: ignore[index]
    registry = vc.ObjectStoreRegistry({f"file://{folder}/": LocalStore(folder)})
    parsed = ZarrParser()(f"file://{folder}/s.zarr", registry)
    a, b = parsed["a"], parsed["b"]
    assert isinstance(a, vc.VirtualArray)
    assert isinstance(b, vc.VirtualArray)
    stacked = vc.stack([a, b], axis=1)
    group = vc.VirtualGroup(
        arrays={
            "stacked": stacked,
            "broadcast": vc.broadcast_to(a, (2, 6, 8)),
            "second": vc.squeeze(
                vc.select_chunks(stacked, [slice(None), slice(1, 2), slice(None)]), axis=1
            ),
        }
    )
    repository = make_repository(folder, kind, tmp_path)
    committed(repository, lambda store: write_icechunk(group, store))
    written = zarr.open_group(repository.readonly_session("main").store, mode="r")
    np.testing.assert_array_equal(written["stacked"][...], np.stack([values, -values], axis=1))  # type: ignore[index]
    np.testing.assert_array_equal(written["broadcast"][...], np.broadcast_to(values, (2, 6, 8)))  # type: ignore[index]
    np.testing.assert_array_equal(written["second"][...], -values)  # type: ignore[index]


# ---- appending ------------------------------------------------------------------------------

PARTS = ("part0.nc", "part1.nc", "part2.nc")


def _expected_series(corpus: Corpus) -> xr.Dataset:
    return xr.concat([expected_dataset(corpus.paths[p]) for p in PARTS], dim="time")


@pytest.mark.parametrize("source", ["parser", "dataset"])
def test_two_appends_equal_one_concatenation(corpus: Corpus, source: str, tmp_path: Path) -> None:
    appended = make_repository(corpus.folder, "local", tmp_path / "appended")
    for index, name in enumerate(PARTS):
        append_dim = None if index == 0 else "time"
        if source == "parser":
            group = corpus.group(name)
            committed(appended, lambda s, g=group, a=append_dim: write_icechunk(g, s, append_dim=a))
        else:
            ds = corpus.dataset(name)
            committed(appended, lambda s, d=ds, a=append_dim: d.vz.to_icechunk(s, append_dim=a))
        assert read_group(appended).sizes["time"] == 4 * (index + 1)

    at_once = make_repository(corpus.folder, "memory", tmp_path)
    combined = xr.concat(
        [corpus.dataset(p) for p in PARTS],
        dim="time",
        data_vars="minimal",
        coords="minimal",
        compat="override",
        join="exact",
    )
    committed(at_once, lambda store: combined.vz.to_icechunk(store))

    xr.testing.assert_identical(read_group(appended), read_group(at_once))
    assert_same_values(read_group(appended), _expected_series(corpus))


def test_append_keeps_arrays_without_the_dimension(corpus: Corpus, tmp_path: Path) -> None:
    repository = make_repository(corpus.folder, "memory", tmp_path)
    committed(repository, lambda store: write_icechunk(corpus.group("part0.nc"), store))
    committed(
        repository,
        lambda store: write_icechunk(corpus.group("part1.nc"), store, append_dim="time"),
    )
    root = zarr.open_group(repository.readonly_session("main").store, mode="r")
    assert root["lon"].shape == (3,)
    assert root["tas"].shape == (8, 3)
    assert root["time"].shape == (8,)


MISMATCHES: dict[str, str] = {
    "bad_chunks.nc": (
        r"'tas': the new array \(file://\S+/bad_chunks.nc\) has chunk shape \(2, 1\), "
        r"the stored array has \(2, 3\)"
    ),
    "bad_dtype.nc": (
        r"'tas': the new array \(file://\S+/bad_dtype.nc\) has dtype float64, "
        "the stored array has float32"
    ),
    "bad_codecs.nc": r"'tas': the new array \(file://\S+/bad_codecs.nc\) has codecs",
    "bad_lon.nc": (
        r"'tas': the new array \(file://\S+/bad_lon.nc\) has shape along axes other than 0 \(5,\)"
    ),
}
"""Files that cannot be appended to part0.nc, and what the error must say."""


def _start_series(corpus: Corpus, tmp_path: Path, first: str = "part0.nc") -> icechunk.Repository:
    repository = make_repository(corpus.folder, "memory", tmp_path)
    committed(repository, lambda store: write_icechunk(corpus.group(first), store))
    return repository


@pytest.mark.parametrize("bad", MISMATCHES)
@pytest.mark.parametrize("source", ["parser", "dataset"])
def test_a_mismatched_append_writes_nothing(
    corpus: Corpus, bad: str, source: str, tmp_path: Path
) -> None:
    repository = _start_series(corpus, tmp_path)
    before = read_group(repository)
    session = repository.writable_session("main")

    def append() -> None:
        if source == "parser":
            write_icechunk(corpus.group(bad), session.store, append_dim="time")
        else:
            corpus.dataset(bad).vz.to_icechunk(session.store, append_dim="time")

    with pytest.raises(vc.VirtualizationError, match=MISMATCHES[bad]) as caught:
        append()
    assert all(problem.startswith("'tas'") for problem in caught.value.problems)
    assert not session.has_uncommitted_changes
    root = zarr.open_group(session.store, mode="r")
    assert root["tas"].shape == (4, 3)
    assert root["time"].shape == (4,)
    xr.testing.assert_identical(read_group(repository), before)


def test_appending_after_a_partial_last_chunk_writes_nothing(
    corpus: Corpus, tmp_path: Path
) -> None:
    """``short.nc`` has 3 steps in chunks of 2: its last chunk is partial."""
    repository = _start_series(corpus, tmp_path, first="short.nc")
    session = repository.writable_session("main")
    with pytest.raises(vc.VirtualizationError, match="partial chunk") as caught:
        write_icechunk(corpus.group("part1.nc"), session.store, append_dim="time")
    # every array's problem is reported at once
    assert sorted(p.split(":")[0] for p in caught.value.problems) == ["'tas'", "'time'"]
    assert not session.has_uncommitted_changes


def test_appending_an_array_the_repository_lacks_writes_nothing(
    corpus: Corpus, tmp_path: Path
) -> None:
    repository = _start_series(corpus, tmp_path)
    extra = corpus.group("part1.nc")
    tas = extra["tas"]
    assert isinstance(tas, vc.VirtualArray)
    group = extra.evolve(arrays={**extra.arrays, "tas_copy": tas})
    session = repository.writable_session("main")
    with pytest.raises(vc.VirtualizationError, match="'tas_copy' is not in the repository"):
        write_icechunk(group, session.store, append_dim="time")
    assert not session.has_uncommitted_changes


def test_appending_loaded_values_of_another_dtype_writes_nothing(
    corpus: Corpus, tmp_path: Path
) -> None:
    repository = _start_series(corpus, tmp_path)
    time_values = vc.LoadedArray.from_numpy(np.arange(4, 8, dtype="f8"), dimension_names=("time",))
    session = repository.writable_session("main")
    with pytest.raises(vc.VirtualizationError, match="'time'"):
        write_icechunk(
            vc.VirtualGroup(arrays={"time": time_values}), session.store, append_dim="time"
        )
    assert not session.has_uncommitted_changes


def test_appending_a_dataset_with_fewer_steps(corpus: Corpus, tmp_path: Path) -> None:
    repository = make_repository(corpus.folder, "memory", tmp_path)
    committed(repository, lambda store: corpus.dataset("part0.nc").vz.to_icechunk(store))
    tail = corpus.dataset("tail.nc")
    committed(repository, lambda store: tail.vz.to_icechunk(store, append_dim="time"))
    expected = xr.concat(
        [expected_dataset(corpus.paths["part0.nc"]), expected_dataset(corpus.paths["tail.nc"])],
        dim="time",
    )
    assert_same_values(read_group(repository), expected)


def test_appending_loaded_values_of_another_width_is_refused(tmp_path: Path) -> None:
    repository = icechunk.Repository.create(icechunk.in_memory_storage())
    stored = vc.LoadedArray.from_numpy(np.arange(6.0).reshape(2, 3), dimension_names=("t", "x"))
    committed(repository, lambda s: write_icechunk(vc.VirtualGroup(arrays={"v": stored}), s))
    wider = vc.LoadedArray.from_numpy(np.ones((2, 5)), dimension_names=("t", "x"))
    session = repository.writable_session("main")
    with pytest.raises(vc.VirtualizationError, match="'v'"):
        write_icechunk(vc.VirtualGroup(arrays={"v": wider}), session.store, append_dim="t")
    assert not session.has_uncommitted_changes


# ---- checksums ------------------------------------------------------------------------------


def _own_copy(corpus: Corpus, folder: Path) -> tuple[vc.VirtualGroup, icechunk.Repository]:
    """part0.nc copied into ``folder``, parsed, and a repository allowed to read it."""
    folder.mkdir()
    shutil.copy(corpus.paths["part0.nc"], folder / "part0.nc")
    group = HDFParser()(f"file://{folder}/part0.nc", local_registry(folder))
    return group, make_repository(folder, "memory", folder)


def _read_tas(repository: icechunk.Repository) -> Any:
    store = repository.readonly_session("main").store
    return zarr.open_array(store, path="tas", mode="r")[...]


def _touch(path: Path, when: float) -> None:
    os.utime(path, (when, when))


def test_a_source_modified_after_writing_fails_the_read(corpus: Corpus, tmp_path: Path) -> None:
    group, repository = _own_copy(corpus, tmp_path / "data")
    committed(repository, lambda store: write_icechunk(group, store))
    expected = expected_dataset(corpus.paths["part0.nc"])["tas"].values
    np.testing.assert_array_equal(_read_tas(repository), expected)
    _touch(tmp_path / "data" / "part0.nc", time.time() + 3600)
    with pytest.raises(icechunk.IcechunkError, match=r"modified|changed"):
        _read_tas(repository)


def test_last_updated_at_is_the_checksum(corpus: Corpus, tmp_path: Path) -> None:
    group, repository = _own_copy(corpus, tmp_path / "data")
    source = tmp_path / "data" / "part0.nc"
    now = datetime.datetime.now(datetime.UTC)
    committed(
        repository,
        lambda store: write_icechunk(
            group, store, last_updated_at=now + datetime.timedelta(hours=2)
        ),
    )
    _touch(source, (now + datetime.timedelta(hours=1)).timestamp())
    expected = expected_dataset(corpus.paths["part0.nc"])["tas"].values
    np.testing.assert_array_equal(_read_tas(repository), expected)
    _touch(source, (now + datetime.timedelta(hours=3)).timestamp())
    with pytest.raises(icechunk.IcechunkError):
        _read_tas(repository)


def test_last_updated_at_before_the_source_fails_at_once(corpus: Corpus, tmp_path: Path) -> None:
    _, repository = _own_copy(corpus, tmp_path / "data")
    earlier = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    dataset = vx.open_virtual_dataset(
        f"file://{tmp_path}/data/part0.nc",
        registry=local_registry(tmp_path / "data"),
        parser=HDFParser(),
    )
    committed(repository, lambda store: dataset.vz.to_icechunk(store, last_updated_at=earlier))
    with pytest.raises(icechunk.IcechunkError):
        _read_tas(repository)


# ---- modes and arguments: every refusal writes nothing ------------------------------------


def test_mode_w_minus_refuses_existing_arrays(corpus: Corpus, tmp_path: Path) -> None:
    repository = make_repository(corpus.folder, "memory", tmp_path)
    committed(repository, lambda store: write_icechunk(corpus.group("part0.nc"), store))
    before = read_group(repository)
    session = repository.writable_session("main")
    with pytest.raises(vc.VirtualizationError, match=r"mode='w-'.*'tas'.*mode='w'"):
        write_icechunk(corpus.group("part1.nc"), session.store)
    with pytest.raises(vc.VirtualizationError, match="mode='w-'"):
        corpus.dataset("part1.nc").vz.to_icechunk(session.store, mode="w-")
    assert not session.has_uncommitted_changes
    xr.testing.assert_identical(read_group(repository), before)


def test_mode_w_replaces_what_was_there(corpus: Corpus, tmp_path: Path) -> None:
    repository = make_repository(corpus.folder, "memory", tmp_path)
    committed(repository, lambda store: write_icechunk(corpus.group("nc4_basic.nc"), store))
    committed(repository, lambda store: write_icechunk(corpus.group("part1.nc"), store, mode="w"))
    got = read_group(repository)
    assert_same_values(got, expected_dataset(corpus.paths["part1.nc"]))
    assert set(got.variables) == set(expected_dataset(corpus.paths["part1.nc"]).variables)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"append_dim": "depth"}, r"cannot append along 'depth': no array has that dimension"),
        ({"append_dim": 3}, "append_dim= must be a dimension name"),
        ({"group_path": 3}, "group= must be a path string"),
        ({"mode": "x"}, r"mode= must be one of \['w-', 'w', 'a'\]"),
        ({"mode": "a"}, "mode='a' appends along a dimension: pass append_dim="),
        ({"mode": "w", "append_dim": "time"}, "it needs mode='a'"),
        ({"last_updated_at": "2026-01-01"}, "last_updated_at= must be a timezone-aware datetime"),
        (
            {"last_updated_at": datetime.datetime(2026, 1, 1)},
            "last_updated_at= must be a timezone-aware datetime",
        ),
    ],
)
def test_wrong_arguments_write_nothing(
    corpus: Corpus, tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    repository = make_repository(corpus.folder, "memory", tmp_path)
    committed(repository, lambda store: write_icechunk(corpus.group("part0.nc"), store))
    session = repository.writable_session("main")
    with pytest.raises(vc.VirtualizationError, match=message):
        write_icechunk(corpus.group("part1.nc"), session.store, **options)
    assert not session.has_uncommitted_changes


def _packed_file(path: Path, scale_factor: float, start: int) -> Path:
    import netCDF4

    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", None)
        nc.createDimension("x", 3)
        time_var = nc.createVariable("time", "f8", ("time",))
        time_var.units = "days since 2000-01-01"
        packed = nc.createVariable("v", "i2", ("time", "x"), fill_value=-999, chunksizes=(1, 3))
        packed.scale_factor = scale_factor
        packed.add_offset = 10.0
        packed.set_auto_maskandscale(False)
        time_var[:] = np.arange(2) + start
        packed[:] = np.arange(6).reshape(2, 3)
    return path


def test_appending_another_packing_is_refused(tmp_path: Path) -> None:
    """An append of a file packed with scale_factor 0.02 onto one with 0.01 would halve values."""
    first = _packed_file(tmp_path / "a.nc", 0.01, 0)
    second = _packed_file(tmp_path / "b.nc", 0.02, 2)
    registry = local_registry(tmp_path)
    repository = make_repository(tmp_path, "memory", tmp_path)
    open_one = functools.partial(vx.open_virtual_dataset, registry=registry, parser=HDFParser())
    committed(repository, lambda store: open_one(f"file://{first}").vz.to_icechunk(store))
    session = repository.writable_session("main")
    with pytest.raises(vc.EncodingMismatch) as info:
        open_one(f"file://{second}").vz.to_icechunk(session.store, append_dim="time")
    message = str(info.value)
    assert "'v': the new array (file://" in message
    assert str(second) in message
    assert "'scale_factor': 0.02" in message
    assert "'scale_factor': 0.01" in message
    assert not session.has_uncommitted_changes
    # After dropping the attributes, the encoding still travels with the array.
    with pytest.raises(vc.EncodingMismatch):
        open_one(f"file://{second}").drop_attrs().vz.to_icechunk(session.store, append_dim="time")
    assert not session.has_uncommitted_changes


# ---- each source's own checksum ------------------------------------------------------------


def test_each_source_file_is_its_own_checksum(corpus: Corpus, tmp_path: Path) -> None:
    """Fingerprints the parser recorded survive the adapter and guard each file's chunks."""
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("part0.nc", "part1.nc"):
        shutil.copy(corpus.paths[name], folder / name)
    registry = local_registry(folder)
    datasets = [
        vx.open_virtual_dataset(f"file://{folder}/{name}", registry=registry, parser=HDFParser())
        for name in ("part0.nc", "part1.nc")
    ]
    combined = xr.concat(datasets, dim="time", coords="minimal", compat="override")
    assert set(combined.vz.to_virtual_group().sources) == {
        f"file://{folder}/part0.nc",
        f"file://{folder}/part1.nc",
    }
    repository = make_repository(folder, "memory", folder)
    committed(repository, lambda store: combined.vz.to_icechunk(store))
    expected = xr.open_mfdataset(
        [folder / "part0.nc", folder / "part1.nc"], combine="nested", concat_dim="time"
    )["tas"].values
    np.testing.assert_array_equal(_read_tas(repository), expected)
    # Touching part1.nc fails its chunks only: part0.nc's still read.
    _touch(folder / "part1.nc", time.time() + 3600)
    store = repository.readonly_session("main").store
    tas = zarr.open_array(store, path="tas", mode="r")
    n0 = datasets[0].sizes["time"]
    np.testing.assert_array_equal(tas[:n0], expected[:n0])
    with pytest.raises(icechunk.IcechunkError, match=r"modified|changed"):
        tas[n0:]


# ---- references in slabs ------------------------------------------------------------------


@pytest.mark.parametrize("slab_rows", [1, 3])
def test_references_written_in_small_slabs_read_like_the_files(
    corpus: Corpus, tmp_path: Path, slab_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bulk calls over runs of slabs (appends included) place every reference where it was."""
    import vzcore.writers.icechunk as icechunk_module

    monkeypatch.setattr(icechunk_module, "_SLAB_ROWS", slab_rows)
    for name in FILES:
        repository = make_repository(corpus.folder, "memory", tmp_path)
        group = corpus.group(name)
        committed(repository, lambda store, g=group: write_icechunk(g, store))
        for path in GROUPS[name]:
            expected = expected_dataset(corpus.paths[name], path)
            assert_same_values(read_group(repository, path), expected)
    appended = make_repository(corpus.folder, "memory", tmp_path)
    for index, name in enumerate(PARTS):
        append_dim = None if index == 0 else "time"
        group = corpus.group(name)
        committed(appended, lambda s, g=group, a=append_dim: write_icechunk(g, s, append_dim=a))
    assert_same_values(read_group(appended), _expected_series(corpus))
