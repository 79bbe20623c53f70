"""`IcechunkParser`: what `write_icechunk` wrote comes back as the same `VirtualGroup`.

The writer corpus (tests/writer_corpus.py) is parsed, written into Icechunk
repositories and parsed back: virtual references equal the written ones exactly,
values read through `ManifestStore` and through Icechunk's own store equal the
files' (netCDF4 via xarray, h5py). The proof of the issue: write, parse, append,
parse again. Native chunks become references into the repository's chunk objects
or loaded arrays; inline chunks are loaded or kept as inline rows; versions, groups, S3 and
refusals are covered too.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import icechunk
import numpy as np
import obstore
import pytest
import xarray as xr
import zarr
from obstore.store import MemoryStore
from tests.s3_server import S3Bucket
from tests.writer_corpus import (
    GROUPS,
    NETCDF3_FILES,
    STRINGS,
    assert_same_values,
    expected_dataset,
    local_registry,
    write_corpus,
)

import vzcore as vc
import vzxarray as vx
from vzcore.parsers import (
    HDFParser,
    IcechunkFormatError,
    IcechunkParser,
    NetCDF3Parser,
    Probe,
    detect_parser,
)
from vzcore.writers import write_icechunk
from vzxarray.cli import main as vz_main

FILES = ("nc4_basic.nc", "nc4_groups.nc", "nc3_records.nc")
PARTS = ("part0.nc", "part1.nc", "part2.nc")


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
    return Corpus(tmp_path_factory.mktemp("icechunk-parser-corpus"))


def make_repository(folder: Path, where: Path, *, inline: bool = True) -> icechunk.Repository:
    """A local repository at ``where`` allowed to read virtual chunks under ``folder``.

    ``inline=False`` makes Icechunk store every chunk it writes as an object of its own.
    """
    prefix = f"file://{folder}/"
    config = icechunk.RepositoryConfig.default()
    if not inline:
        config.inline_chunk_threshold_bytes = 0
    config.set_virtual_chunk_container(
        icechunk.VirtualChunkContainer(prefix, icechunk.local_filesystem_store(str(folder)))
    )
    credentials = icechunk.containers_credentials(
        {prefix: icechunk.Credentials.LocalFileSystemAccess()}
    )
    return icechunk.Repository.create(
        icechunk.local_filesystem_storage(str(where)),
        config,
        authorize_virtual_chunk_access=credentials,
    )


def commit(repository: icechunk.Repository, write: Any, message: str = "write") -> str:
    session = repository.writable_session("main")
    write(session.store)
    snapshot: str = session.commit(message)
    return snapshot


def repository_registry(corpus: Corpus, where: Path) -> vc.ObjectStoreRegistry:
    """The corpus folder and the repository's folder (for its native chunks)."""
    return corpus.registry.register(
        f"file://{where.parent}/", obstore.store.LocalStore(where.parent)
    )


def read_back(group: vc.VirtualGroup, registry: vc.ObjectStoreRegistry, path: str) -> Any:
    return zarr.open_array(vc.ManifestStore(group, registry=registry), path=path, mode="r")[...]


def icechunk_values(repository: icechunk.Repository, path: str) -> Any:
    """An array as Icechunk's own store reads it (virtual chunks through the container)."""
    store = repository.readonly_session("main").store
    return zarr.open_array(store, path=path, mode="r")[...]


def equal_values(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


# ---- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_the_written_group_comes_back(corpus: Corpus, name: str, tmp_path: Path) -> None:
    group = corpus.group(name)
    where = tmp_path / "repository"
    repository = make_repository(corpus.folder, where)
    commit(repository, lambda store: write_icechunk(group, store))
    registry = repository_registry(corpus, where)

    parsed = IcechunkParser()(f"file://{where}", registry)

    assert parsed == group.evolve(sources={})
    for path, _array in group.walk_arrays():
        expected = read_back(group, corpus.registry, path)
        assert equal_values(read_back(parsed, registry, path), expected), path
        assert equal_values(icechunk_values(repository, path), expected), path
    for group_path in GROUPS[name]:
        opened = xr.open_zarr(
            vc.ManifestStore(parsed, registry=registry),
            group=group_path or None,
            consolidated=False,
        )
        assert_same_values(opened.load(), expected_dataset(corpus.paths[name], group_path))


def test_values_equal_h5py(corpus: Corpus, tmp_path: Path) -> None:
    import h5py

    where = tmp_path / "repository"
    commit(
        make_repository(corpus.folder, where),
        lambda store: write_icechunk(corpus.group("nc4_basic.nc"), store),
    )
    registry = repository_registry(corpus, where)
    parsed = IcechunkParser()(str(where), registry)
    with h5py.File(corpus.paths["nc4_basic.nc"], "r") as file:
        for name in ("tas", "packed", "big_endian", "sparse", "scalar", "lat", "lon"):
            np.testing.assert_array_equal(read_back(parsed, registry, name), file[name][()], name)


def test_a_virtual_dataset_round_trips_with_loaded_coordinates(
    corpus: Corpus, tmp_path: Path
) -> None:
    dataset = corpus.dataset("nc4_basic.nc")
    where = tmp_path / "repository"
    commit(make_repository(corpus.folder, where), lambda store: dataset.vz.to_icechunk(store))
    registry = repository_registry(corpus, where)

    reopened = vx.open_virtual_dataset(str(where), registry=registry, parser=IcechunkParser())

    written = dataset.vz.to_virtual_group()
    parsed = reopened.vz.to_virtual_group()
    for path, array in written.walk_arrays():
        again = parsed[path]
        assert type(again) is type(array), path  # loaded stays loaded, virtual virtual
        if isinstance(array, vc.VirtualArray):
            assert again == array, path
        else:
            assert isinstance(again, vc.LoadedArray)
            np.testing.assert_array_equal(again.data, array.data)
    assert isinstance(reopened["tas"].variable._data, vx.ManifestArray)
    assert not isinstance(reopened["time"].variable._data, vx.ManifestArray)
    opened = xr.open_zarr(vc.ManifestStore(parsed, registry=registry), consolidated=False)
    assert_same_values(opened.load(), expected_dataset(corpus.paths["nc4_basic.nc"]))


def test_write_parse_append_parse_again(corpus: Corpus, tmp_path: Path) -> None:
    """The issue's proof: each step's parse equals the concatenation written at once."""
    where = tmp_path / "appended"
    repository = make_repository(corpus.folder, where)
    registry = repository_registry(corpus, where)
    commit(repository, lambda store: corpus.dataset(PARTS[0]).vz.to_icechunk(store))
    for count, name in enumerate(PARTS[1:], start=2):
        reopened = vx.open_virtual_dataset(str(where), registry=registry, parser=IcechunkParser())
        # Reopened and combined in memory: the same as the files combined.
        combined = xr.concat(
            [reopened, corpus.dataset(name)],
            dim="time",
            data_vars="minimal",
            coords="minimal",
            compat="override",
            join="exact",
        )
        expected = xr.concat([expected_dataset(corpus.paths[p]) for p in PARTS[:count]], "time")
        group = combined.vz.to_virtual_group()
        opened = xr.open_zarr(vc.ManifestStore(group, registry=registry), consolidated=False)
        assert_same_values(opened.load(), expected)
        # Appended to the repository and parsed again: the same once more.
        new = corpus.dataset(name)
        commit(repository, lambda store, d=new: d.vz.to_icechunk(store, append_dim="time"))
        parsed = IcechunkParser()(str(where), registry)
        assert parsed["tas"] == group["tas"]
        np.testing.assert_array_equal(parsed["time"].data, group["time"].data)  # type: ignore[union-attr]
        again = xr.open_zarr(vc.ManifestStore(parsed, registry=registry), consolidated=False)
        assert_same_values(again.load(), expected)
        with xr.open_zarr(repository.readonly_session("main").store, consolidated=False) as ds:
            assert_same_values(ds.load(), expected)


# ---- native and inline chunks ---------------------------------------------------------------


def native_repository(corpus: Corpus, where: Path) -> tuple[icechunk.Repository, np.ndarray]:
    """A repository with a zstd array written by zarr (native chunks) beside virtual ones."""
    values = np.arange(40_000, dtype="f8").reshape(200, 200) / 7
    repository = make_repository(corpus.folder, where)

    def write(store: Any) -> None:
        write_icechunk(corpus.group("nc4_basic.nc"), store)
        root = zarr.open_group(store, mode="r+")
        array = root.create_array("native", shape=values.shape, chunks=(64, 50), dtype="f8")
        array[...] = values
        array.attrs["units"] = "m"

    commit(repository, write)
    return repository, values


def test_small_native_arrays_are_loaded(corpus: Corpus, tmp_path: Path) -> None:
    where = tmp_path / "repository"
    _, values = native_repository(corpus, where)
    parsed = IcechunkParser()(str(where), repository_registry(corpus, where))
    native = parsed["native"]
    assert isinstance(native, vc.LoadedArray)
    np.testing.assert_array_equal(native.data, values)
    assert native.metadata.chunk_shape == (64, 50)
    assert native.metadata.attributes["units"] == "m"


def test_big_native_arrays_reference_the_repository_chunks(corpus: Corpus, tmp_path: Path) -> None:
    where = tmp_path / "repository"
    repository, values = native_repository(corpus, where)
    registry = repository_registry(corpus, where)
    parsed = IcechunkParser(max_loaded_bytes=1000)(str(where), registry)
    native = parsed["native"]
    assert isinstance(native, vc.VirtualArray)
    assert native.manifest.n_chunks == 4 * 4
    assert native.manifest.n_missing == 0
    paths = native.manifest.dictionary.to_pylist()
    assert all(p.startswith(f"file://{where}/chunks/") for p in paths)
    assert all((where / "chunks" / p.rsplit("/", 1)[1]).is_file() for p in paths)
    assert [c.name for c in native.metadata.codecs] == ["bytes", "zstd"]
    np.testing.assert_array_equal(read_back(parsed, registry, "native"), values)
    np.testing.assert_array_equal(icechunk_values(repository, "native"), values)
    # The virtual arrays are as written, whatever the limit.
    assert parsed["tas"] == corpus.group("nc4_basic.nc")["tas"]


def test_inline_chunks_are_loaded_or_kept_inline(corpus: Corpus, tmp_path: Path) -> None:
    where = tmp_path / "repository"
    repository = make_repository(corpus.folder, where)

    def write(store: Any) -> None:
        root = zarr.open_group(store, mode="w")
        small = root.create_array("small", shape=(6,), chunks=(2,), dtype="i4", compressors=None)
        small[...] = [1, 2, 3, 4, 5, 6]  # 8-byte chunks: Icechunk keeps them inline

    commit(repository, write)
    session = repository.readonly_session("main")
    assert session.chunk_type("/small", [0]) == icechunk.ChunkType.inline
    registry = repository_registry(corpus, where)
    loaded = IcechunkParser()(str(where), registry)["small"]
    assert isinstance(loaded, vc.LoadedArray)
    np.testing.assert_array_equal(loaded.data, [1, 2, 3, 4, 5, 6])
    # Too big to load: a virtual array of inline rows, the bytes Icechunk holds.
    kept = IcechunkParser(max_loaded_bytes=8)(str(where), registry)["small"]
    assert isinstance(kept, vc.VirtualArray)
    assert kept.manifest.n_inline == 3
    np.testing.assert_array_equal(vc.read.read_array(kept, registry), [1, 2, 3, 4, 5, 6])
    with vc.limits(max_inline_bytes=23), pytest.raises(vc.LimitExceededError) as info:
        IcechunkParser(max_loaded_bytes=8)(str(where), registry)
    assert f"file://{where}" in str(info.value)
    assert "'small'" in str(info.value)


def test_inline_chunks_beside_virtual_ones_are_inline_rows(corpus: Corpus, tmp_path: Path) -> None:
    where = tmp_path / "repository"
    repository = make_repository(corpus.folder, where)

    def write(store: Any) -> None:
        write_icechunk(corpus.group("nc4_basic.nc"), store)
        zarr.open_array(store, path="sparse", mode="r+")[2:4, 0:2] = 7.0  # one small native chunk

    commit(repository, write)
    assert repository.readonly_session("main").chunk_type("/sparse", [1, 0]) == (
        icechunk.ChunkType.inline
    )
    registry = repository_registry(corpus, where)
    sparse = IcechunkParser()(str(where), registry)["sparse"]
    assert isinstance(sparse, vc.VirtualArray)
    assert sparse.manifest.n_inline == 1
    np.testing.assert_array_equal(
        vc.read.read_array(sparse, registry), icechunk_values(repository, "sparse")
    )


def test_native_chunks_beside_virtual_ones_are_references(corpus: Corpus, tmp_path: Path) -> None:
    where = tmp_path / "repository"
    repository = make_repository(corpus.folder, where, inline=False)

    def write(store: Any) -> None:
        write_icechunk(corpus.group("nc4_basic.nc"), store)
        zarr.open_array(store, path="sparse", mode="r+")[2:4, 0:2] = 7.0

    commit(repository, write)
    assert repository.readonly_session("main").chunk_type("/sparse", [1, 0]) == (
        icechunk.ChunkType.native
    )
    registry = repository_registry(corpus, where)
    sparse = IcechunkParser()(str(where), registry)["sparse"]
    assert isinstance(sparse, vc.VirtualArray)
    paths = sorted(sparse.manifest.dictionary.to_pylist())
    assert paths[0] == corpus.url("nc4_basic.nc")
    assert len(paths) == 2
    assert paths[1].startswith(f"file://{where}/chunks/")
    expected = icechunk_values(repository, "sparse")
    assert (expected[2:4, 0:2] == 7.0).all()
    assert equal_values(
        read_back(IcechunkParser()(str(where), registry), registry, "sparse"), expected
    )


def test_dropped_variables(corpus: Corpus, tmp_path: Path) -> None:
    where = tmp_path / "repository"
    commit(
        make_repository(corpus.folder, where),
        lambda store: write_icechunk(corpus.group("nc4_groups.nc"), store),
    )
    parsed = IcechunkParser(drop_variables=["y", "top"])(
        str(where), repository_registry(corpus, where)
    )
    assert sorted(path for path, _ in parsed.walk_arrays()) == ["obs/deep/counts", "obs/grid", "x"]


def test_an_array_without_chunks_is_virtual_and_empty(corpus: Corpus, tmp_path: Path) -> None:
    where = tmp_path / "repository"
    repository = make_repository(corpus.folder, where)
    commit(
        repository,
        lambda store: zarr.open_group(store, mode="w").create_array(
            "empty", shape=(4, 4), chunks=(2, 2), dtype="f4", fill_value=-1.0
        ),
    )
    registry = repository_registry(corpus, where)
    empty = IcechunkParser()(str(where), registry)["empty"]
    assert isinstance(empty, vc.VirtualArray)
    assert empty.manifest.n_missing == 4
    np.testing.assert_array_equal(
        read_back(IcechunkParser()(str(where), registry), registry, "empty"), np.full((4, 4), -1.0)
    )


# ---- versions and groups --------------------------------------------------------------------


def test_branches_tags_and_snapshots(corpus: Corpus, tmp_path: Path) -> None:
    where = tmp_path / "repository"
    repository = make_repository(corpus.folder, where)
    registry = repository_registry(corpus, where)
    first = commit(repository, lambda store: write_icechunk(corpus.group(PARTS[0]), store))
    repository.create_tag("v1", first)
    repository.create_branch("frozen", first)
    commit(
        repository,
        lambda store: write_icechunk(corpus.group(PARTS[1]), store, append_dim="time"),
    )
    url = str(where)
    tip = IcechunkParser()(url, registry)
    assert tip["tas"].shape == (8, 3)
    assert tip == IcechunkParser(branch="main")(url, registry)
    for old in (
        IcechunkParser(snapshot_id=first),
        IcechunkParser(tag="v1"),
        IcechunkParser(branch="frozen"),
    ):
        assert old(url, registry) == corpus.group(PARTS[0]).evolve(sources={}), old.version

    with pytest.raises(IcechunkFormatError, match=r"cannot read branch 'nope'") as info:
        IcechunkParser(branch="nope")(url, registry)
    assert f"file://{where}" in str(info.value)
    with pytest.raises(IcechunkFormatError, match="cannot read snapshot 'AAAA'"):
        IcechunkParser(snapshot_id="AAAA")(url, registry)
    with pytest.raises(vc.VirtualizationError, match="pass one of branch=, tag=, snapshot_id="):
        IcechunkParser(branch="main", tag="v1")
    with pytest.raises(vc.VirtualizationError, match="max_loaded_bytes="):
        IcechunkParser(max_loaded_bytes=-1)


def test_a_group_of_the_repository(corpus: Corpus, tmp_path: Path) -> None:
    where = tmp_path / "repository"
    repository = make_repository(corpus.folder, where)
    registry = repository_registry(corpus, where)
    groups = corpus.group("nc4_groups.nc")
    commit(
        repository,
        lambda store: (
            write_icechunk(corpus.group("nc4_basic.nc"), store),
            write_icechunk(groups, store, group_path="runs/groups"),
        ),
    )
    assert IcechunkParser(group="runs/groups")(str(where), registry) == groups.evolve(sources={})
    assert IcechunkParser(group="/runs/groups/obs")(str(where), registry) == groups["obs"]
    with pytest.raises(IcechunkFormatError, match=r"no group 'runs/nothing'"):
        IcechunkParser(group="runs/nothing")(str(where), registry)
    with pytest.raises(IcechunkFormatError, match=r"no group 'tas'"):
        IcechunkParser(group="tas")(str(where), registry)


# ---- where the repository lives -------------------------------------------------------------


def test_a_repository_on_s3(corpus: Corpus, s3_bucket: S3Bucket) -> None:
    """Repository and referenced files on S3; native chunks read through the registry too."""
    urls = {name: s3_bucket.put_file(f"data/{name}", corpus.paths[name]) for name in PARTS[:1]}
    registry = s3_bucket.registry()
    group = HDFParser()(urls[PARTS[0]], registry)
    repository = icechunk.Repository.create(
        s3_bucket.icechunk_storage("repos/one"),
        s3_bucket.icechunk_config(),
        authorize_virtual_chunk_access=s3_bucket.icechunk_credentials(),
    )
    values = np.arange(3000, dtype="i8")

    def write(store: Any) -> None:
        write_icechunk(group, store)
        native = zarr.open_group(store, mode="r+").create_array(
            "native", shape=values.shape, chunks=(1000,), dtype="i8"
        )
        native[...] = values

    commit(repository, write)
    url = s3_bucket.key_url("repos/one")
    parsed = IcechunkParser(max_loaded_bytes=0)(url, registry)
    assert parsed["tas"] == group["tas"]
    native = parsed["native"]
    assert isinstance(native, vc.VirtualArray)
    assert all(p.startswith(f"{url}/chunks/") for p in native.manifest.dictionary.to_pylist())
    np.testing.assert_array_equal(read_back(parsed, registry, "native"), values)
    expected = expected_dataset(corpus.paths[PARTS[0]])
    without_native = parsed.evolve(arrays={k: v for k, v in parsed.arrays.items() if k != "native"})
    opened = xr.open_zarr(vc.ManifestStore(without_native, registry=registry), consolidated=False)
    assert_same_values(opened.load(), expected)
    assert IcechunkParser()(url + "/", registry) == IcechunkParser()(url, registry)


def test_an_unregistered_url_is_refused_before_opening(corpus: Corpus, tmp_path: Path) -> None:
    where = tmp_path / "repository"
    commit(
        make_repository(corpus.folder, where),
        lambda store: write_icechunk(corpus.group(PARTS[0]), store),
    )
    registry = vc.ObjectStoreRegistry({"memory://other/": MemoryStore()})
    for url in (f"file://{where}", "s3://bucket/repo", "memory://elsewhere/repo"):
        with pytest.raises(vc.UnregisteredURLError, match="under no registered prefix"):
            IcechunkParser()(url, registry)
        with pytest.raises(vc.UnregisteredURLError):
            IcechunkParser(storage=icechunk.local_filesystem_storage(str(where)))(url, registry)


def test_a_store_icechunk_cannot_open_needs_storage(corpus: Corpus, tmp_path: Path) -> None:
    storage = icechunk.in_memory_storage()
    repository = icechunk.Repository.create(storage)
    values = np.arange(10, dtype="u2")
    commit(
        repository,
        lambda store: zarr.open_group(store, mode="w").create_array(
            "x", shape=(10,), chunks=(5,), dtype="u2"
        ),
    )
    session = repository.writable_session("main")
    zarr.open_array(session.store, path="x", mode="r+")[...] = values
    session.commit("values")
    registry = vc.ObjectStoreRegistry({"memory://repos/": MemoryStore()})
    with pytest.raises(IcechunkFormatError, match=r"memory://repos/one: .* not from a MemoryStore"):
        IcechunkParser()("memory://repos/one", registry)
    parsed = IcechunkParser(storage=storage)("memory://repos/one", registry)
    assert isinstance(parsed["x"], vc.LoadedArray)
    np.testing.assert_array_equal(parsed["x"].data, values)


def test_what_is_not_a_repository(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.nc").write_bytes(b"CDF\x01" + b"\0" * 60)
    registry = local_registry(tmp_path)
    for name in ("empty", "file.nc", "absent"):
        url = f"file://{tmp_path}/{name}"
        with pytest.raises(IcechunkFormatError, match="not an Icechunk repository") as info:
            IcechunkParser()(url, registry)
        assert url in str(info.value)


def test_fingerprints_of_the_referenced_files(corpus: Corpus, tmp_path: Path) -> None:
    where = tmp_path / "repository"
    native_repository(corpus, where)
    registry = repository_registry(corpus, where)
    assert not IcechunkParser()(str(where), registry).sources
    parsed = IcechunkParser(fingerprint_sources=True, max_loaded_bytes=1000)(str(where), registry)
    referenced = vc.algebra.referenced_paths(parsed)
    assert corpus.url("nc4_basic.nc") in referenced
    assert sorted(parsed.sources) == referenced
    for url, fingerprint in parsed.sources.items():
        path = Path(url.removeprefix("file://"))
        assert fingerprint.size == path.stat().st_size, url
        assert fingerprint.last_modified is not None, url


# ---- detection, the command line, scale -----------------------------------------------------


def test_detection(corpus: Corpus, tmp_path: Path) -> None:
    where = tmp_path / "repository"
    commit(
        make_repository(corpus.folder, where),
        lambda store: write_icechunk(corpus.group(PARTS[0]), store),
    )
    registry = repository_registry(corpus, where)
    for url in (str(where), f"file://{where}", f"file://{where}/"):
        assert isinstance(detect_parser(url, registry), IcechunkParser), url
    assert not IcechunkParser.can_open(Probe(corpus.url(PARTS[0]), registry))
    zarr.create_group(tmp_path / "store.zarr").create_array("a", shape=(2,), dtype="i1")
    assert not IcechunkParser.can_open(Probe(str(tmp_path / "store.zarr"), registry))
    fake = Probe.from_bytes(None, members={"repo": b"not icechunk"})
    assert not IcechunkParser.can_open(fake)
    real = Probe.from_bytes(None, members={"repo": (where / "repo").read_bytes()})
    assert IcechunkParser.can_open(real)


def test_vz_info_reads_what_vz_virtualize_wrote(
    corpus: Corpus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "series.icechunk"
    paths = [str(corpus.paths[p]) for p in PARTS]
    assert vz_main(["virtualize", *paths, "--concat-dim", "time", "--out", str(out)]) == 0
    capsys.readouterr()
    assert vz_main(["info", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"file://{out}" in printed
    assert "tas: float32 (12, 3) dims (time, lon) chunk shape (2, 3)" in printed
    assert "in 3 file(s)" in printed
    assert "time: int32 (12,)" in printed
    assert "in memory" in printed


def test_100k_chunk_references_are_listed_in_bulk(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(10):
        (data / f"f{i}.bin").write_bytes(bytes(16 * 1000))
    repository = make_repository(data, tmp_path / "repository")
    grid = (400, 250)
    n_chunks = grid[0] * grid[1]
    files = np.array([f"file://{data}/f{i}.bin" for i in range(10)], dtype=object)
    locations = files[np.arange(n_chunks) % 10]
    locations[7::97] = ""  # some missing chunks
    offsets = (np.arange(n_chunks, dtype=np.uint64) % 1000) * 16
    lengths = np.full(n_chunks, 16, dtype=np.uint64)

    def write(store: Any) -> None:
        zarr.open_group(store, mode="w").create_array(
            "big", shape=(400 * 2, 250 * 2), chunks=(2, 2), dtype="u4", compressors=None
        )
        store.set_virtual_refs_arr("big", list(grid), locations.tolist(), offsets, lengths)

    commit(repository, write)
    registry = local_registry(tmp_path)
    start = time.perf_counter()
    parsed = IcechunkParser()(str(tmp_path / "repository"), registry)
    elapsed = time.perf_counter() - start
    manifest = parsed["big"].manifest  # type: ignore[union-attr]
    indices, got_offsets, got_lengths = manifest.to_numpy_columns()
    present = locations != ""
    assert manifest.n_missing == int((~present).sum())
    np.testing.assert_array_equal(indices < 0, ~present)
    np.testing.assert_array_equal(got_offsets[present], offsets[present])
    np.testing.assert_array_equal(got_lengths[present], lengths[present])
    urls = np.array(manifest.dictionary.to_pylist(), dtype=object)
    np.testing.assert_array_equal(urls[indices[present]], locations[present])
    assert elapsed < 30, f"parsing 100k references took {elapsed:.1f} s"


def test_vz_info_reads_a_version(
    corpus: Corpus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = tmp_path / "repository"
    repository = make_repository(corpus.folder, where)
    first = commit(repository, lambda store: write_icechunk(corpus.group(PARTS[0]), store))
    repository.create_tag("v1", first)
    commit(
        repository,
        lambda store: write_icechunk(corpus.group(PARTS[1]), store, append_dim="time"),
    )
    for flags, version, length in (
        ([], "branch 'main'", 8),
        (["--tag", "v1"], "tag 'v1'", 4),
        (["--snapshot", first], f"snapshot {first!r}", 4),
    ):
        assert vz_main(["info", str(where), *flags]) == 0
        printed = capsys.readouterr().out
        assert printed.startswith(f"file://{where} (Icechunk repository, {version})\n"), flags
        assert f"tas: float32 ({length}, 3)" in printed, flags
    assert vz_main(["info", str(where), "--branch", "nope"]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"vz: error: file://{where}: cannot read branch 'nope'")
    assert vz_main(["info", str(corpus.paths[PARTS[0]]), "--tag", "v1"]) == 1
    assert "choose a version of an Icechunk repository" in capsys.readouterr().err


def test_a_shrunk_array_keeps_only_its_chunks(corpus: Corpus, tmp_path: Path) -> None:
    where = tmp_path / "repository"
    repository = make_repository(corpus.folder, where)
    commit(repository, lambda store: write_icechunk(corpus.group(PARTS[0]), store))
    commit(repository, lambda store: zarr.open_array(store, path="tas", mode="r+").resize((2, 3)))
    registry = repository_registry(corpus, where)
    tas = IcechunkParser()(str(where), registry)["tas"]
    assert isinstance(tas, vc.VirtualArray)
    assert tas.shape == (2, 3)
    assert (
        tas.manifest
        == vc.select_chunks(
            corpus.group(PARTS[0])["tas"],  # type: ignore[arg-type]
            [slice(0, 2), slice(None)],
        ).manifest
    )
    np.testing.assert_array_equal(
        read_back(IcechunkParser()(str(where), registry), registry, "tas"),
        icechunk_values(repository, "tas"),
    )


def test_a_native_chunk_id_that_is_a_path_is_refused() -> None:
    from vzcore.parsers.icechunk import _Chunks

    batch = (
        np.array([[0], [1]], dtype=np.uint32),
        np.array([1, 1], dtype=np.uint8),
        ["ABCDEF0123", "../../../etc/passwd"],
        np.zeros(2, np.uint64),
        np.full(2, 8, np.uint64),
        {},
    )
    chunks = _Chunks.concatenate([batch], 1)
    with pytest.raises(IcechunkFormatError, match=r"x: native chunk id '../../../etc/passwd'"):
        chunks.manifest((2,), "file:///repo", "x")
    good = _Chunks.concatenate([(*batch[:2], ["ABCDEF0123", "XYZ"], *batch[3:])], 1)
    assert good.manifest((2,), "file:///repo", "x").dictionary.to_pylist() == [
        "file:///repo/chunks/ABCDEF0123",
        "file:///repo/chunks/XYZ",
    ]


def test_chunks_outside_the_grid_are_not_the_arrays() -> None:
    from vzcore.parsers.icechunk import _Chunks

    batch = (
        np.array([[0], [5]], dtype=np.uint32),
        np.array([2, 2], dtype=np.uint8),
        ["file:///a.nc", "file:///b.nc"],
        np.array([10, 20], np.uint64),
        np.full(2, 8, np.uint64),
        {},
    )
    manifest = _Chunks.concatenate([batch], 1).manifest((2,), "file:///repo", "x")
    assert manifest.to_entries() == {"0": {"path": "file:///a.nc", "offset": 10, "length": 8}}
