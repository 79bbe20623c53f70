"""Kerchunk writers: `kerchunk_refs`, `write_kerchunk_json`, `write_kerchunk_parquet`, and
``.vz.to_kerchunk``.

netCDF4 and netCDF3 files (tests/writer_corpus.py) are parsed with vz, written in
every Kerchunk format, read back by fsspec's reference filesystem through xarray,
and compared with ``xr.open_dataset`` of the file itself. The layout of what is
written (parquet records, inline data, missing chunks) and the all-or-nothing
writes are checked directly.
"""

from __future__ import annotations

import base64
import json
import math
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xarray as xr
from tests.writer_corpus import (
    GROUPS,
    NETCDF3_FILES,
    NETCDF4_FILES,
    STRINGS,
    PyarrowReferenceMapper,
    assert_same_values,
    expected_dataset,
    local_registry,
    reference_dataset,
    write_corpus,
)

import vzcore as vc
import vzxarray as vx
from vzcore.parsers import HDFParser, NetCDF3Parser
from vzcore.urls import fsspec_url
from vzcore.writers import kerchunk as kerchunk_module
from vzcore.writers import kerchunk_refs, write_kerchunk_json, write_kerchunk_parquet

FILES = (*NETCDF4_FILES, *NETCDF3_FILES)
FORMATS: dict[str, int | None] = {
    "dict": None,
    "json": None,
    "parquet-1": 1,
    "parquet-3": 3,
    "parquet-1000000": 1_000_000,
}
"""Output formats, with the parquet record size (1, a few chunks, more than any array has)."""

type Refs = dict[str, Any] | Path


class Corpus:
    """The corpus files in one folder, with a registry for it and their parsed groups."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.paths = write_corpus(folder)
        self.registry = local_registry(folder)
        self._groups: dict[str, vc.VirtualGroup] = {}

    def url(self, name: str) -> str:
        return f"file://{self.paths[name]}"

    def parser(self, name: str) -> HDFParser | NetCDF3Parser:
        return NetCDF3Parser() if name in NETCDF3_FILES else HDFParser(loadable_variables=STRINGS)

    def group(self, name: str) -> vc.VirtualGroup:
        if name not in self._groups:
            self._groups[name] = self.parser(name)(self.url(name), self.registry)
        return self._groups[name]

    def tree(self, name: str) -> xr.DataTree:
        return vx.open_virtual_datatree(
            self.url(name), registry=self.registry, parser=self.parser(name)
        )

    def dataset(self, name: str) -> xr.Dataset:
        return vx.open_virtual_dataset(
            self.url(name), registry=self.registry, parser=self.parser(name)
        )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return Corpus(tmp_path_factory.mktemp("kerchunk-writer-corpus"))


def write_refs(group: vc.VirtualGroup, fmt: str, folder: Path, **options: Any) -> Refs:
    """``group`` in Kerchunk format ``fmt`` with the core writers."""
    if fmt == "dict":
        return kerchunk_refs(group, **options)
    if fmt == "json":
        return write_kerchunk_json(group, folder / "refs.json", **options)
    record_size = FORMATS[fmt]
    assert record_size is not None
    return write_kerchunk_parquet(group, folder / "refs.parq", record_size=record_size, **options)


def write_refs_with_accessor(obj: xr.Dataset | xr.DataTree, fmt: str, folder: Path) -> Refs:
    """The same through ``.vz.to_kerchunk`` of a Dataset or DataTree."""
    if fmt == "dict":
        refs = obj.vz.to_kerchunk()
    elif fmt == "json":
        refs = obj.vz.to_kerchunk(folder / "refs.json", format="json")
    else:
        record_size = FORMATS[fmt]
        assert record_size is not None
        refs = obj.vz.to_kerchunk(folder / "refs.parq", format="parquet", record_size=record_size)
    assert isinstance(refs, dict | Path)
    return refs


def fo(refs: Refs) -> Any:
    """What fsspec's reference filesystem takes as ``fo`` for these references."""
    if isinstance(refs, dict):
        return refs
    if refs.suffix == ".json":
        return str(refs)
    return PyarrowReferenceMapper(refs)


def assert_refs_read_like_the_file(refs: Refs, source: Path, groups: tuple[str, ...]) -> None:
    for group in groups:
        with reference_dataset(fo(refs), group) as got:
            assert_same_values(got, expected_dataset(source, group))


# ---- values through every format ----------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", FILES)
def test_parsed_group_round_trips(corpus: Corpus, name: str, fmt: str, tmp_path: Path) -> None:
    refs = write_refs(corpus.group(name), fmt, tmp_path)
    assert_refs_read_like_the_file(refs, corpus.paths[name], GROUPS[name])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", ["nc4_basic.nc", "nc3_records.nc"])
def test_virtual_dataset_round_trips(corpus: Corpus, name: str, fmt: str, tmp_path: Path) -> None:
    """``ds.vz.to_kerchunk``: dimension coordinates are loaded, so they are written inline."""
    dataset = corpus.dataset(name)
    assert not isinstance(dataset["time"].variable._data, vx.ManifestArray)
    refs = write_refs_with_accessor(dataset, fmt, tmp_path)
    assert_refs_read_like_the_file(refs, corpus.paths[name], ("",))


@pytest.mark.parametrize("fmt", FORMATS)
def test_virtual_datatree_round_trips(corpus: Corpus, fmt: str, tmp_path: Path) -> None:
    refs = write_refs_with_accessor(corpus.tree("nc4_groups.nc"), fmt, tmp_path)
    assert_refs_read_like_the_file(refs, corpus.paths["nc4_groups.nc"], GROUPS["nc4_groups.nc"])


PEERS_PYTHON = Path("/tmp/vz-peers/bin/python")
_FASTPARQUET_READ = """
import sys
try:
    import fastparquet  # noqa: F401
except ImportError:
    sys.exit(3)
import xarray as xr
root, source, groups = sys.argv[1], sys.argv[2], sys.argv[3:]
for group in groups:
    got = xr.open_dataset("reference://", engine="zarr", group=group or None, backend_kwargs={
        "consolidated": False, "storage_options": {"fo": root, "remote_protocol": "file"}})
    expected = xr.open_dataset(source, group=group or None)
    assert sorted(got.variables) == sorted(expected.variables)
    for name in expected.variables:
        xr.testing.assert_equal(got[name].load(), expected[name].load())
print("same values")
"""


def test_parquet_records_have_offset_and_size_statistics(corpus: Corpus, tmp_path: Path) -> None:
    """Without a null count fastparquet (fsspec's default engine) reads int64 as float64."""
    root = write_kerchunk_parquet(corpus.group("nc3_records.nc"), tmp_path / "r", record_size=2)
    metadata = pq.ParquetFile(root / "temp" / "refs.0.parq").metadata.row_group(0)
    columns = {metadata.column(i).path_in_schema: metadata.column(i) for i in range(4)}
    assert columns["offset"].statistics is not None
    assert columns["size"].statistics is not None


@pytest.mark.skipif(not PEERS_PYTHON.exists(), reason=f"no {PEERS_PYTHON} with fastparquet")
def test_fastparquet_reads_the_parquet_refs(corpus: Corpus, tmp_path: Path) -> None:
    """fsspec's default parquet engine reads vz's records, missing chunks included."""
    sources = ("nc4_basic.nc", "nc4_groups.nc")
    commands = []
    for name in sources:
        root = write_kerchunk_parquet(corpus.group(name), tmp_path / name, record_size=3)
        commands.append([str(root), str(corpus.paths[name]), *GROUPS[name]])
    for arguments in commands:
        result = subprocess.run(
            [str(PEERS_PYTHON), "-c", _FASTPARQUET_READ, *arguments],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode == 3:
            pytest.skip(f"{PEERS_PYTHON} has no fastparquet")
        assert result.returncode == 0, result.stderr[-3000:]
        assert "same values" in result.stdout


def test_the_dict_is_what_the_json_file_holds(corpus: Corpus, tmp_path: Path) -> None:
    group = corpus.group("nc4_basic.nc")
    written = json.loads(write_kerchunk_json(group, tmp_path / "refs.json").read_text())
    assert written == kerchunk_refs(group)


def test_accessor_dict_equals_core_dict(corpus: Corpus) -> None:
    dataset = corpus.dataset("nc3_records.nc")
    assert dataset.vz.to_kerchunk() == kerchunk_refs(dataset.vz.to_virtual_group())


# ---- layout ---------------------------------------------------------------------------------


def _present_rows(manifest: vc.ChunkManifest) -> np.ndarray[Any, np.dtype[np.bool_]]:
    indices, _, _ = manifest.to_numpy_columns()
    return np.asarray(indices >= 0)


def _chunk_key(row: int, grid: tuple[int, ...]) -> str:
    if not grid:
        return "0"
    return ".".join(str(int(c)) for c in np.unravel_index(row, grid))


def test_json_layout(corpus: Corpus, tmp_path: Path) -> None:
    dataset = corpus.dataset("nc4_basic.nc")  # coordinates loaded, strings loaded
    group = dataset.vz.to_virtual_group()
    path = dataset.vz.to_kerchunk(tmp_path / "refs.json", format="json")
    assert isinstance(path, Path)
    document = json.loads(path.read_text())
    assert document["version"] == 1
    refs = document["refs"]
    assert json.loads(refs[".zgroup"]) == {"zarr_format": 2}
    assert json.loads(refs[".zattrs"])["title"] == "writer corpus"
    n_loaded = 0
    for array_path, array in group.walk_arrays():
        zarray = json.loads(refs[f"{array_path}/.zarray"])
        assert zarray["shape"] == list(array.shape)
        assert zarray["chunks"] == list(array.metadata.chunk_shape)
        zattrs = json.loads(refs[f"{array_path}/.zattrs"])
        assert zattrs["_ARRAY_DIMENSIONS"] == list(array.metadata.dimension_names or ())
        chunk_keys = {k for k in refs if k.startswith(f"{array_path}/") and "/." not in k}
        grid = array.metadata.grid_shape
        if isinstance(array, vc.LoadedArray):
            n_loaded += 1
            assert chunk_keys == {
                f"{array_path}/{_chunk_key(r, grid)}" for r in range(math.prod(grid))
            }
            assert all(refs[k].startswith("base64:") for k in chunk_keys)
            continue
        entries = array.manifest.to_entries()
        assert chunk_keys == {f"{array_path}/{k}" for k in entries}
        for key, entry in entries.items():
            assert refs[f"{array_path}/{key}"] == [entry["path"], entry["offset"], entry["length"]]
    assert n_loaded >= 4  # time, lat, lon and the strings
    assert group["sparse"].manifest.n_missing > 0  # so the missing chunks were left out


def test_loaded_values_are_inlined_little_endian(corpus: Corpus) -> None:
    dataset = corpus.dataset("nc4_basic.nc")
    refs = dataset.vz.to_kerchunk()
    assert isinstance(refs, dict)
    lon = dataset["lon"].values
    assert json.loads(refs["refs"]["lon/.zarray"])["dtype"] == "<f8"
    raw = base64.b64decode(refs["refs"]["lon/0"].removeprefix("base64:"))
    np.testing.assert_array_equal(np.frombuffer(raw, "<f8"), lon)


@pytest.mark.parametrize("record_size", [1, 3, 1_000_000])
def test_parquet_layout(corpus: Corpus, record_size: int, tmp_path: Path) -> None:
    dataset = corpus.dataset("nc4_basic.nc")
    group = dataset.vz.to_virtual_group()
    root = write_kerchunk_parquet(group, tmp_path / "refs.parq", record_size=record_size)
    zmetadata = json.loads((root / ".zmetadata").read_text())
    assert zmetadata["record_size"] == record_size
    metadata = zmetadata["metadata"]
    assert metadata[".zgroup"] == {"zarr_format": 2}
    assert isinstance(metadata["tas/.zarray"], dict)
    assert {p for p, _ in group.walk_arrays()} == {
        k.removesuffix("/.zarray") for k in metadata if k.endswith("/.zarray")
    }
    for array_path, array in group.walk_arrays():
        n_chunks = math.prod(array.metadata.grid_shape)
        files = sorted(
            (root / array_path).glob("refs.*.parq"), key=lambda f: int(f.name.split(".")[1])
        )
        assert [f.name for f in files] == [
            f"refs.{k}.parq" for k in range(max(math.ceil(n_chunks / record_size), 1))
        ]
        tables = [pq.read_table(f) for f in files]
        assert all(t.num_rows == record_size for t in tables)
        table = pa.concat_tables(tables)
        assert {"path", "offset", "size", "raw"} <= set(table.column_names)
        rows, padding = table.slice(0, n_chunks), table.slice(n_chunks)
        assert padding.column("path").null_count == padding.num_rows
        assert padding.column("raw").null_count == padding.num_rows
        paths = rows.column("path").cast(pa.string()).to_pylist()
        raws = rows.column("raw").to_pylist()
        if isinstance(array, vc.LoadedArray):
            assert paths == [None] * n_chunks
            assert all(raw is not None for raw in raws)
            continue
        present = _present_rows(array.manifest)
        expected_paths = array.manifest.paths.cast(pa.string()).to_pylist()
        assert paths == expected_paths
        assert raws == [None] * n_chunks
        _, offsets, lengths = array.manifest.to_numpy_columns()
        np.testing.assert_array_equal(rows.column("offset").to_numpy()[present], offsets[present])
        np.testing.assert_array_equal(rows.column("size").to_numpy()[present], lengths[present])
    sparse = group["sparse"]
    assert isinstance(sparse, vc.VirtualArray)
    assert sparse.manifest.n_missing > 0


def test_fsspec_finds_each_chunk_in_its_record(corpus: Corpus, tmp_path: Path) -> None:
    """Chunk n is row n % record_size of refs.{n // record_size}.parq, as fsspec reads it."""
    group = corpus.group("nc4_basic.nc")
    root = write_kerchunk_parquet(group, tmp_path / "refs.parq", record_size=2)
    mapper = PyarrowReferenceMapper(root)
    tas = group["tas"]
    assert isinstance(tas, vc.VirtualArray)
    for key, entry in tas.manifest.to_entries().items():
        assert mapper[f"tas/{key}"] == [entry["path"], entry["offset"], entry["length"]]


# ---- all or nothing ---------------------------------------------------------------------------


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("boom")


def _fail_on_second_call(real: Callable[..., Any]) -> Callable[..., Any]:
    calls = {"n": 0}

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("boom")
        return real(*args, **kwargs)

    return wrapper


def _failing_json_entries(real: Callable[..., Iterator[bytes]]) -> Callable[..., Iterator[bytes]]:
    def entries(*args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield from real(*args, **kwargs)
        raise RuntimeError("boom")

    return entries


@pytest.mark.parametrize("fmt", ["json", "parquet-3"])
def test_a_failed_write_leaves_nothing(
    corpus: Corpus, fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if fmt == "json":
        real_entries = kerchunk_module._json_entries
        monkeypatch.setattr(kerchunk_module, "_json_entries", _failing_json_entries(real_entries))
    else:
        real_records = kerchunk_module._write_records
        monkeypatch.setattr(kerchunk_module, "_write_records", _fail_on_second_call(real_records))
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom"):
        write_refs(corpus.group("nc4_basic.nc"), fmt, out)
    assert not out.exists()  # nor the folder made for it


@pytest.mark.parametrize("fmt", ["json", "parquet-3"])
def test_a_failed_overwrite_keeps_the_previous_output(
    corpus: Corpus, fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = write_refs(corpus.group("nc3_records.nc"), fmt, tmp_path)
    assert isinstance(first, Path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    monkeypatch.setattr(kerchunk_module, "_write_records", _boom)
    monkeypatch.setattr(kerchunk_module, "_json_entries", _boom)
    with pytest.raises(RuntimeError, match="boom"):
        write_refs(corpus.group("nc4_basic.nc"), fmt, tmp_path)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert_refs_read_like_the_file(first, corpus.paths["nc3_records.nc"], ("",))


@pytest.mark.parametrize("fmt", ["json", "parquet-1"])
def test_overwriting_replaces_the_output(corpus: Corpus, fmt: str, tmp_path: Path) -> None:
    write_refs(corpus.group("nc4_basic.nc"), fmt, tmp_path)
    refs = write_refs(corpus.group("nc3_records.nc"), fmt, tmp_path)
    assert isinstance(refs, Path)
    # The fingerprints' sidecar: beside a JSON file, inside a parquet folder.
    sidecar = [] if refs.is_dir() else [f"{refs.name}.vz-sources.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([refs.name, *sidecar])
    if refs.is_dir():
        # nothing of the first output (its arrays, its 1-row records) survives
        assert sorted(p.name for p in refs.iterdir()) == sorted(
            [
                ".zmetadata",
                "vz-sources.json",
                *(p for p, _ in corpus.group("nc3_records.nc").walk_arrays()),
            ]
        )
    assert_refs_read_like_the_file(refs, corpus.paths["nc3_records.nc"], ("",))


def test_overwriting_parquet_with_a_smaller_record_count(corpus: Corpus, tmp_path: Path) -> None:
    group = corpus.group("nc4_basic.nc")
    write_kerchunk_parquet(group, tmp_path / "refs.parq", record_size=1)
    root = write_kerchunk_parquet(group, tmp_path / "refs.parq", record_size=1_000_000)
    assert [p.name for p in (root / "tas").iterdir()] == ["refs.0.parq"]
    assert json.loads((root / ".zmetadata").read_text())["record_size"] == 1_000_000
    assert_refs_read_like_the_file(root, corpus.paths["nc4_basic.nc"], ("",))


def test_writes_create_missing_parent_folders(corpus: Corpus, tmp_path: Path) -> None:
    group = corpus.group("nc3_records.nc")
    assert write_kerchunk_json(group, tmp_path / "a" / "b" / "refs.json").is_file()
    assert write_kerchunk_parquet(group, tmp_path / "c" / "d" / "refs.parq").is_dir()


def test_record_size_must_be_positive(corpus: Corpus, tmp_path: Path) -> None:
    with pytest.raises(vc.VirtualizationError, match="record_size"):
        write_kerchunk_parquet(corpus.group("nc3_records.nc"), tmp_path / "r", record_size=0)
    assert list(tmp_path.iterdir()) == []


def test_accessor_refuses_a_format_without_a_path_or_unknown(corpus: Corpus) -> None:
    dataset = corpus.dataset("nc3_records.nc")
    with pytest.raises(vc.VirtualizationError, match="needs a path"):
        dataset.vz.to_kerchunk(format="json")
    with pytest.raises(vc.VirtualizationError, match="unknown Kerchunk format"):
        dataset.vz.to_kerchunk("x", format="yaml")


# ---- inline_threshold -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["dict", "json", "parquet-3"])
def test_inlining_needs_a_registry(corpus: Corpus, fmt: str, tmp_path: Path) -> None:
    with pytest.raises(vc.VirtualizationError, match="registry"):
        write_refs(corpus.group("nc4_basic.nc"), fmt, tmp_path, inline_threshold=100)
    with pytest.raises(vc.VirtualizationError, match="registry"):
        corpus.dataset("nc4_basic.nc").vz.to_kerchunk(
            None if fmt == "dict" else tmp_path / "x", format=fmt.split("-")[0], inline_threshold=1
        )
    assert list(tmp_path.iterdir()) == []


def _threshold(group: vc.VirtualGroup) -> int:
    """A threshold that inlines some chunks of ``tas`` and references the others."""
    tas = group["tas"]
    assert isinstance(tas, vc.VirtualArray)
    indices, _, lengths = tas.manifest.to_numpy_columns()
    sizes = np.sort(lengths[indices >= 0])
    assert sizes[0] < sizes[-1]
    return int(sizes[len(sizes) // 2 - 1])


def _file_bytes(url: str, offset: int, length: int) -> bytes:
    with open(url.removeprefix("file://"), "rb") as f:
        f.seek(offset)
        return f.read(length)


@pytest.mark.parametrize("fmt", ["dict", "json", "parquet-3"])
def test_small_chunks_are_inlined(corpus: Corpus, fmt: str, tmp_path: Path) -> None:
    group = corpus.group("nc4_basic.nc")
    threshold = _threshold(group)
    refs = write_refs(group, fmt, tmp_path, inline_threshold=threshold, registry=corpus.registry)
    assert_refs_read_like_the_file(refs, corpus.paths["nc4_basic.nc"], ("",))
    mapper = (
        refs["refs"]
        if isinstance(refs, dict)
        else json.loads(refs.read_text())["refs"]
        if refs.suffix == ".json"
        else PyarrowReferenceMapper(refs)
    )
    n_inlined = n_referenced = 0
    for array_path, array in group.walk_arrays():
        if not isinstance(array, vc.VirtualArray):
            continue
        for key, entry in array.manifest.to_entries().items():
            value = mapper[f"{array_path}/{key}"]
            if entry["length"] <= threshold:
                n_inlined += 1
                data = _file_bytes(entry["path"], entry["offset"], entry["length"])
                if isinstance(value, str):
                    assert value == "base64:" + base64.b64encode(data).decode()
                else:
                    assert bytes(value) == data
            else:
                n_referenced += 1
                assert list(value) == [entry["path"], entry["offset"], entry["length"]]
    assert n_inlined
    assert n_referenced


def test_inlined_parquet_rows_have_raw_and_no_path(corpus: Corpus, tmp_path: Path) -> None:
    group = corpus.group("nc4_basic.nc")
    threshold = _threshold(group)
    root = write_kerchunk_parquet(
        group,
        tmp_path / "refs.parq",
        record_size=1_000_000,
        inline_threshold=threshold,
        registry=corpus.registry,
    )
    tas = group["tas"]
    assert isinstance(tas, vc.VirtualArray)
    table = pq.read_table(root / "tas" / "refs.0.parq").slice(0, tas.manifest.n_chunks)
    indices, _, lengths = tas.manifest.to_numpy_columns()
    inlined = (indices >= 0) & (lengths <= threshold)
    raw_present = np.array([v is not None for v in table.column("raw").to_pylist()])
    path_present = np.array([v is not None for v in table.column("path").to_pylist()])
    np.testing.assert_array_equal(raw_present, inlined)
    np.testing.assert_array_equal(path_present, (indices >= 0) & ~inlined)


def test_inlining_through_the_accessor(corpus: Corpus, tmp_path: Path) -> None:
    dataset = corpus.dataset("nc3_records.nc")
    path = dataset.vz.to_kerchunk(
        tmp_path / "refs.json", format="json", inline_threshold=10**6, registry=corpus.registry
    )
    assert isinstance(path, Path)
    refs = json.loads(path.read_text())["refs"]
    assert not [k for k, v in refs.items() if isinstance(v, list)]  # everything inline
    assert_refs_read_like_the_file(path, corpus.paths["nc3_records.nc"], ("",))


# ---- fill values of unwritten chunks -------------------------------------------------------


def _unwritten_chunks_file(path: Path) -> Path:
    """HDF5 fill values and no ``_FillValue`` attribute, with chunks never written."""
    import h5py

    with h5py.File(path, "w") as f:
        a = f.create_dataset("a", shape=(4, 3), chunks=(1, 3), dtype="f4", fillvalue=-999.0)
        a[0] = [1, 2, 3]
        b = f.create_dataset("b", shape=(4, 3), chunks=(1, 3), dtype="i2", fillvalue=-7)
        b[2] = [4, 5, 6]
        c = f.create_dataset(
            "c", shape=(4, 3), chunks=(2, 3), dtype="f8", fillvalue=2.5, compression="gzip"
        )
        c[0:2] = 1.0
    return path


@pytest.mark.parametrize("fmt", FORMATS)
def test_unwritten_chunks_read_as_the_fill_value(fmt: str, tmp_path: Path) -> None:
    import h5py
    import zarr

    source = _unwritten_chunks_file(tmp_path / "unwritten.h5")
    registry = local_registry(tmp_path)
    group = HDFParser()(f"file://{source}", registry)
    refs = write_refs(group, fmt, tmp_path)
    mapper = fsspec.filesystem("reference", fo=fo(refs), remote_protocol="file").get_mapper("")
    root = zarr.open_group(zarr.storage.FsspecStore.from_mapper(mapper), mode="r")
    with (
        h5py.File(source) as f,
        xr.open_dataset(source, engine="h5netcdf", phony_dims="access") as e,
        reference_dataset(fo(refs), "") as got,
    ):
        for name in ("a", "b", "c"):
            np.testing.assert_array_equal(root[name][...], f[name][...])  # zarr: no masking
            # xarray: no _FillValue, so nothing is masked, as h5netcdf reads the file
            assert got[name].dtype == e[name].dtype
            np.testing.assert_array_equal(got[name].values, e[name].values)
    # Read back by vz, the inline fill chunks are missing chunks again.
    if fmt != "dict":
        parser = (
            vc.parsers.KerchunkJSONParser() if fmt == "json" else vc.parsers.KerchunkParquetParser()
        )
        reread = parser(f"file://{refs}", registry)
        for name in ("a", "b", "c"):
            assert reread.arrays[name] == group.arrays[name]


@pytest.mark.parametrize("fmt", ["json", "parquet-3"])
def test_an_array_without_references_reads_as_its_fill(fmt: str, tmp_path: Path) -> None:
    metadata = vc.ArrayMetadata(
        shape=(3, 2), chunk_grid=(2, 2), dtype=">f8", fill_value=-999.0, dimension_names=("y", "x")
    )
    array = vc.VirtualArray(metadata, vc.ChunkManifest.empty(metadata.grid_shape))
    group = vc.VirtualGroup(arrays={"never_written": array})
    refs = write_refs(group, fmt, tmp_path)
    with reference_dataset(fo(refs), "") as got:
        np.testing.assert_array_equal(got["never_written"].values, np.full((3, 2), -999.0))
    parser = (
        vc.parsers.KerchunkJSONParser() if fmt == "json" else vc.parsers.KerchunkParquetParser()
    )
    reread = parser(f"file://{refs}", local_registry(tmp_path))["never_written"]
    assert isinstance(reread, vc.LoadedArray)
    np.testing.assert_array_equal(reread.data, np.full((3, 2), -999.0))


@pytest.mark.parametrize("fmt", ["json", "parquet-3"])
def test_a_complex_nan_fill_is_read_back_and_written_again(fmt: str, tmp_path: Path) -> None:
    """zarr v2 writes a complex fill as [real, imaginary]: ``["NaN", 0.0]`` for NaN+0j.
    Read back it is the CF ``_FillValue`` in that JSON form, which the writer took for
    no complex64 (found by properties/test_writer_roundtrips.py)."""
    import zarr

    values = np.array([1 + 2j, -3.5 + 0.25j], dtype="<c8")
    (tmp_path / "data.bin").write_bytes(values.tobytes())
    manifest = vc.ChunkManifest.from_entries(
        {"0": {"path": f"file://{tmp_path}/data.bin", "offset": 0, "length": 16}}, grid=(2,)
    )
    metadata = vc.ArrayMetadata(
        shape=(4,),
        chunk_grid=(2,),
        dtype="<c8",
        fill_value=complex(np.nan, 0),
        dimension_names=("x",),
    )
    group = vc.VirtualGroup(arrays={"z": vc.VirtualArray(metadata, manifest)})
    registry = local_registry(tmp_path)
    parser = (
        vc.parsers.KerchunkJSONParser() if fmt == "json" else vc.parsers.KerchunkParquetParser()
    )
    (tmp_path / "first").mkdir()
    first = parser(f"file://{write_refs(group, fmt, tmp_path / 'first')}", registry)
    reread = first["z"]
    assert isinstance(reread, vc.VirtualArray)
    assert reread.manifest == manifest
    assert reread.metadata.encoding["_FillValue"] == ("NaN", 0.0)
    (tmp_path / "second").mkdir()
    second_refs = write_refs(first, fmt, tmp_path / "second")
    second = parser(f"file://{second_refs}", registry)
    assert second == first

    expected = np.array([1 + 2j, -3.5 + 0.25j, complex(np.nan, 0), complex(np.nan, 0)], "<c8")
    served = zarr.open_array(vc.ManifestStore(second, registry=registry), path="z", mode="r")[...]
    assert served.tobytes() == expected.tobytes()  # NaN+0j bit for bit
    mapper = fsspec.filesystem("reference", fo=fo(second_refs), remote_protocol="file")
    by_zarr = zarr.open_group(zarr.storage.FsspecStore.from_mapper(mapper.get_mapper("")), mode="r")
    assert by_zarr["z"][...].tobytes() == expected.tobytes()


@pytest.mark.parametrize("fmt", ["dict", "json", "parquet-3"])
def test_a_fill_chunk_the_codecs_cannot_encode_is_refused_before_output(
    fmt: str, tmp_path: Path
) -> None:
    """Shuffle after zlib cannot encode a fill chunk whose compressed length is odd."""
    codecs = [
        {"name": "bytes", "configuration": {"endian": "little"}},
        {"name": "numcodecs.zlib", "configuration": {"level": 1}},
        {"name": "numcodecs.shuffle", "configuration": {"elementsize": 4}},
    ]
    metadata = vc.ArrayMetadata.create(
        shape=(8,), chunk_shape=(4,), dtype="<i4", fill_value=5, codecs=codecs
    )
    manifest = vc.ChunkManifest.from_arrays(
        paths=np.array([f"file://{tmp_path}/a.bin", ""]),
        offsets=np.array([0, 0]),
        lengths=np.array([12, 0]),
    )
    group = vc.VirtualGroup(arrays={"odd": vc.VirtualArray(metadata, manifest)})
    with pytest.raises(vc.UnsupportedCodecError) as info:
        write_refs(group, fmt, tmp_path)
    message = str(info.value)
    assert message.startswith("variable 'odd' cannot be written as Kerchunk references")
    assert "Shuffle" in message
    assert "fill value 5" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# ---- the JSON writer's batches ------------------------------------------------------------


def _sparse_group(grid: tuple[int, ...]) -> vc.VirtualGroup:
    """One virtual array of ``grid`` over three files, every third chunk missing."""
    n_chunks = math.prod(grid)
    urls = np.array(
        ["s3://bucket/a.nc", "file:///data/b c.nc", "s3://bucket/dir/c%3F.nc"],
        dtype=np.dtypes.StringDType(),
    )
    paths = urls[np.arange(n_chunks) % 3]
    paths[np.arange(n_chunks) % 3 == 2] = ""
    offsets = np.arange(n_chunks, dtype=np.uint64) * 1000 + 2**40
    lengths = np.arange(n_chunks, dtype=np.uint64) + 7
    manifest = vc.ChunkManifest.from_arrays(
        paths=paths.reshape(grid), offsets=offsets.reshape(grid), lengths=lengths.reshape(grid)
    )
    shape = tuple(2 * g for g in grid)
    metadata = vc.ArrayMetadata(shape=shape, chunk_grid=(2,) * len(grid), dtype="<i4", fill_value=0)
    return vc.VirtualGroup(arrays={"v": vc.VirtualArray(metadata, manifest)})


@pytest.mark.parametrize("batch_rows", [1, 4, 1 << 20])
@pytest.mark.parametrize("grid", [(), (7,), (3, 5), (2, 3, 7)])
def test_json_batches_write_exactly_the_references(
    grid: tuple[int, ...], batch_rows: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batched in any size (axes longer or shorter than a batch), JSON holds the dict's refs."""
    monkeypatch.setattr(kerchunk_module, "_BATCH_ROWS", batch_rows)
    group = _sparse_group(grid)
    target = write_kerchunk_json(group, tmp_path / "refs.json")
    written = json.loads(target.read_text())
    expected = kerchunk_refs(group)
    assert written == {"version": 1, "refs": expected["refs"]}
    paths, offsets, lengths = group["v"].manifest.to_arrays()  # type: ignore[union-attr]
    chunks = {
        "v/" + (".".join(map(str, index)) or "0"): [
            fsspec_url(str(paths[index])),
            int(offsets[index]),
            int(lengths[index]),
        ]
        for index in np.ndindex(*grid)
        if paths[index]
    }
    assert {
        k: v for k, v in written["refs"].items() if k.startswith("v/") and k[2] != "."
    } == chunks
