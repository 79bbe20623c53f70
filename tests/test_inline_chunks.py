"""Inline chunks: manifest rows that hold a chunk's bytes instead of a reference.

Kerchunk references mixing inline (``base64:`` and raw text) and referenced chunks
of one array, made by hand and by the real kerchunk, parse into one virtual array,
combine with other arrays, and read back equal to netCDF4 / h5py through every
writer: Kerchunk JSON and parquet (fsspec), Icechunk, manifest parquet.
"""

from __future__ import annotations

import base64
import json
import pickle
import runpy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import h5py
import icechunk
import netCDF4
import numpy as np
import obstore
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xarray as xr
import zarr
from obstore.store import LocalStore
from tests.writer_corpus import PyarrowReferenceMapper, reference_dataset

import vzcore as vc
import vzxarray as vx
from vzcore.manifest import INLINE_MANIFEST_SCHEMA, MANIFEST_SCHEMA
from vzcore.parsers import (
    HDFParser,
    IcechunkParser,
    KerchunkJSONParser,
    KerchunkParquetParser,
    ManifestParquetParser,
)
from vzcore.read import read_array
from vzcore.writers import (
    kerchunk_refs,
    write_icechunk,
    write_kerchunk_json,
    write_kerchunk_parquet,
)
from vzxarray.cli import describe_group

DATA = Path(__file__).parent / "data"
PEERS_PYTHON = Path("/tmp/vz-peers/bin/python")

# int16 values whose little-endian bytes are ASCII text: a raw (not base64) inline chunk.
U_VALUES = {"a": [16961, 17475, 17989, 18503], "b": [18761, 19275, 19789, 20303]}


def _write_file(path: Path, offset: int) -> None:
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("t", 4)
        ds.createDimension("y", 10)
        x = ds.createVariable("x", "f4", ("t", "y"), zlib=True, chunksizes=(2, 5))
        x[:] = np.arange(40, dtype="f4").reshape(4, 10) * 1.5 + offset
        u = ds.createVariable("u", "i2", ("t",), chunksizes=(2,), contiguous=False)
        u[:] = U_VALUES["a" if offset == 0 else "b"]


def _expected(path: Path) -> dict[str, np.ndarray]:
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(False)
        return {name: np.asarray(ds[name][...]) for name in ("x", "u")}


def _chunk_bytes(path: Path, name: str, index: int) -> bytes:
    with h5py.File(path) as f:
        info = f[name].id.get_chunk_info(index)
    with path.open("rb") as handle:
        handle.seek(info.byte_offset)
        return handle.read(info.size)


class Files:
    """Two netCDF4 files and hand-made references to them mixing inline and referenced chunks."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.registry = vc.ObjectStoreRegistry(
            {f"file://{folder}/": obstore.store.LocalStore(folder)}
        )
        self.paths = {name: folder / f"{name}.nc" for name in ("a", "b")}
        for k, (name, path) in enumerate(self.paths.items()):
            _write_file(path, offset=100 * k)
            assert name
        self.expected = {name: _expected(p) for name, p in self.paths.items()}

    def refs(self, name: str) -> dict[str, Any]:
        """References to file ``name``: x/0.1 inline base64, u/1 inline raw text."""
        path = self.paths[name]
        group = HDFParser()(f"file://{path}", self.registry)
        refs = kerchunk_refs(group)
        refs["refs"]["x/0.1"] = "base64:" + base64.b64encode(_chunk_bytes(path, "x", 1)).decode()
        raw = _chunk_bytes(path, "u", 1)
        refs["refs"]["u/1"] = raw.decode("ascii")
        return refs

    def json_url(self, name: str) -> str:
        target = self.folder / f"{name}.json"
        target.write_text(json.dumps(self.refs(name)))
        return f"file://{target}"

    def parquet_url(self, name: str) -> str:
        """The same references in fsspec's parquet layout, written by hand with pyarrow."""
        refs = self.refs(name)["refs"]
        root = self.folder / f"{name}.parq"
        shutil.rmtree(root, ignore_errors=True)
        metadata = {k: json.loads(v) for k, v in refs.items() if k.rsplit("/", 1)[-1][0] == "."}
        for array, n_chunks in (("x", 4), ("u", 2)):
            keys = [f"{i}.{j}" for i in range(2) for j in range(2)] if array == "x" else ["0", "1"]
            values = [refs[f"{array}/{k}"] for k in keys]
            paths = [v[0] if isinstance(v, list) else None for v in values]
            raws = [None if isinstance(v, list) else _inline(v) for v in values]
            (root / array).mkdir(parents=True)
            table = pa.table(
                {
                    "path": pa.array(paths, pa.string()),
                    "offset": [v[1] if isinstance(v, list) else 0 for v in values],
                    "size": [v[2] if isinstance(v, list) else 0 for v in values],
                    "raw": pa.array(raws, pa.binary()),
                }
            )
            assert table.num_rows == n_chunks
            pq.write_table(table, root / array / "refs.0.parq")
        (root / ".zmetadata").write_text(json.dumps({"metadata": metadata, "record_size": 4}))
        return f"file://{root}"

    def out(self, name: str) -> Path:
        """A new folder for outputs, under the registered folder (so vz reads them back)."""
        folder = self.folder / name
        folder.mkdir()
        return folder

    def concatenated(self) -> dict[str, np.ndarray]:
        a, b = self.expected["a"], self.expected["b"]
        return {name: np.concatenate([a[name], b[name]]) for name in ("x", "u")}


def _inline(text: str) -> bytes:
    return base64.b64decode(text[7:]) if text.startswith("base64:") else text.encode()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    return Files(tmp_path_factory.mktemp("inline"))


def _assert_values(group: vc.VirtualGroup, expected: dict[str, np.ndarray], registry: Any) -> None:
    for name, values in expected.items():
        np.testing.assert_array_equal(read_array(group.arrays[name], registry), values)
        store = vc.ManifestStore(group, registry=registry)
        np.testing.assert_array_equal(zarr.open_array(store, path=name, mode="r")[...], values)


# ---- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["json", "parquet"])
def test_mixed_references_parse_into_one_virtual_array(files: Files, kind: str) -> None:
    url = files.json_url("a") if kind == "json" else files.parquet_url("a")
    parser = KerchunkJSONParser() if kind == "json" else KerchunkParquetParser()
    group = parser(url, files.registry)
    for name in ("x", "u"):
        array = group.arrays[name]
        assert isinstance(array, vc.VirtualArray)
        assert array.manifest.n_inline == 1
        assert array.manifest.n_missing == 0
    assert group.arrays["x"].manifest.inline_mask().tolist() == [False, True, False, False]
    assert group.arrays["u"].manifest.inline_chunks(np.array([1])) == [
        _chunk_bytes(files.paths["a"], "u", 1)
    ]
    _assert_values(group, files.expected["a"], files.registry)


def test_vz_fill_chunks_still_read_as_missing_chunks(files: Files) -> None:
    """vz's own stand-ins for missing chunks (one constant inline chunk) stay missing chunks."""
    meta = vc.ArrayMetadata(shape=(4,), chunk_grid=(2,), dtype="<i2", fill_value=7)
    offset = 13014  # any bytes: the referenced chunk is not read here
    manifest = vc.ChunkManifest.from_entries(
        {"0": {"path": f"file://{files.paths['a']}", "offset": offset, "length": 4}}, grid=(2,)
    )
    group = vc.VirtualGroup(arrays={"v": vc.VirtualArray(meta, manifest)})
    refs = kerchunk_refs(group)
    assert refs["refs"]["v/1"].startswith("base64:")
    target = files.folder / "fill.json"
    target.write_text(json.dumps(refs))
    parsed = KerchunkJSONParser()(f"file://{target}", files.registry).arrays["v"]
    assert isinstance(parsed, vc.VirtualArray)
    assert parsed.manifest.n_inline == 0
    assert parsed.manifest.n_missing == 1
    assert parsed.metadata.fill_value == 7


def test_a_constant_inline_chunk_beside_missing_chunks_is_kept_inline(files: Files) -> None:
    """Only a reference set without absent chunks can be vz's fill stand-ins: here chunk 2
    is absent and reads as zarr's default 0, while the constant inline chunk reads 5."""
    zarray = {
        "zarr_format": 2,
        "shape": [6],
        "chunks": [2],
        "dtype": "<i2",
        "compressor": None,
        "filters": None,
        "fill_value": None,
        "order": "C",
    }
    path = files.paths["a"]
    refs = kerchunk_refs(HDFParser()(f"file://{path}", files.registry))["refs"]
    document = {
        "version": 1,
        "refs": {
            ".zgroup": json.dumps({"zarr_format": 2}),
            "v/.zarray": json.dumps(zarray),
            "v/.zattrs": json.dumps({"_ARRAY_DIMENSIONS": ["t"]}),
            "v/0": refs["u/0"],
            "v/1": "base64:" + base64.b64encode(np.array([5, 5], "<i2").tobytes()).decode(),
        },
    }
    target = files.folder / "constant.json"
    target.write_text(json.dumps(document))
    array = KerchunkJSONParser()(f"file://{target}", files.registry).arrays["v"]
    assert isinstance(array, vc.VirtualArray)
    assert array.manifest.n_inline == 1
    assert array.manifest.n_missing == 1
    expected = [*files.expected["a"]["u"][:2], 5, 5, 0, 0]
    np.testing.assert_array_equal(read_array(array, files.registry), expected)
    with xr.open_dataset(
        "reference://",
        engine="zarr",
        mask_and_scale=False,
        backend_kwargs={
            "consolidated": False,
            "storage_options": {"fo": str(target), "remote_protocol": "file"},
        },
    ) as ds:
        np.testing.assert_array_equal(ds["v"].values, expected)


# ---- combining and writing -------------------------------------------------------------------


@pytest.fixture(scope="module")
def combined(files: Files) -> vc.VirtualGroup:
    """``a`` (mixed references, JSON) concatenated with ``b`` (mixed references, parquet)."""
    a = KerchunkJSONParser()(files.json_url("a"), files.registry)
    b = KerchunkParquetParser()(files.parquet_url("b"), files.registry)
    arrays = {name: vc.concat([a.arrays[name], b.arrays[name]], axis=0) for name in ("x", "u")}
    return vc.VirtualGroup(arrays=arrays)


def test_concat_keeps_the_inline_chunks(files: Files, combined: vc.VirtualGroup) -> None:
    assert combined.arrays["x"].manifest.n_inline == 2
    assert combined.arrays["x"].manifest.inline_mask().tolist() == [
        *[False, True, False, False],
        *[False, True, False, False],
    ]
    assert combined.arrays["u"].manifest.n_inline == 2
    _assert_values(combined, files.concatenated(), files.registry)


def test_concat_along_an_inner_axis_gathers_the_inline_chunks(files: Files) -> None:
    a = KerchunkJSONParser()(files.json_url("a"), files.registry).arrays["x"]
    b = HDFParser()(f"file://{files.paths['b']}", files.registry).arrays["x"]
    b = vc.VirtualArray(a.metadata, b.manifest)  # same codecs, read the HDF5 way
    joined = vc.concat([a, b], axis=1)
    assert joined.manifest.grid == (2, 4)
    assert joined.manifest.inline_mask().reshape(2, 4).tolist() == [
        [False, True, False, False],
        [False, False, False, False],
    ]
    expected = np.concatenate([files.expected["a"]["x"], files.expected["b"]["x"]], axis=1)
    np.testing.assert_array_equal(read_array(joined, files.registry), expected)


def test_kerchunk_json_round_trip(files: Files, combined: vc.VirtualGroup, tmp_path: Path) -> None:
    out = write_kerchunk_json(combined, files.out("json") / "refs.json")
    refs = json.loads(out.read_text())["refs"]
    assert refs["x/0.1"].startswith("base64:")
    assert refs["x/2.1"].startswith("base64:")
    expected = files.concatenated()
    with reference_dataset(str(out)) as ds:
        for name, values in expected.items():
            np.testing.assert_array_equal(ds[name].values, values)
    again = KerchunkJSONParser()(f"file://{out}", files.registry)
    assert again.arrays["x"].manifest == combined.arrays["x"].manifest
    assert kerchunk_refs(combined)["refs"]["u/1"] == refs["u/1"]


def test_kerchunk_parquet_round_trip(
    files: Files, combined: vc.VirtualGroup, tmp_path: Path
) -> None:
    out = write_kerchunk_parquet(combined, files.out("parquet") / "refs.parq", record_size=3)
    expected = files.concatenated()
    with reference_dataset(PyarrowReferenceMapper(out)) as ds:
        for name, values in expected.items():
            np.testing.assert_array_equal(ds[name].values, values)
    again = KerchunkParquetParser()(f"file://{out}", files.registry)
    for name in ("x", "u"):
        assert again.arrays[name].manifest == combined.arrays[name].manifest


def _icechunk_store(group: vc.VirtualGroup, folder: Path, where: Path) -> Any:
    """``group`` written to a new Icechunk repository at ``where``: its read-only store."""
    prefix = f"file://{folder}/"
    config = icechunk.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        icechunk.VirtualChunkContainer(prefix, icechunk.local_filesystem_store(str(folder)))
    )
    repository = icechunk.Repository.create(
        icechunk.local_filesystem_storage(str(where)),
        config,
        authorize_virtual_chunk_access=icechunk.containers_credentials(
            {prefix: icechunk.Credentials.LocalFileSystemAccess()}
        ),
    )
    session = repository.writable_session("main")
    write_icechunk(group, session.store)
    session.commit("inline")
    return repository.readonly_session("main").store


def test_icechunk_stores_inline_chunks_as_real_chunks(
    files: Files, combined: vc.VirtualGroup
) -> None:
    where = files.out("icechunk") / "repo"
    store = _icechunk_store(combined, files.folder, where)
    expected = files.concatenated()
    for name, values in expected.items():
        np.testing.assert_array_equal(zarr.open_array(store, path=name, mode="r")[...], values)
    with xr.open_zarr(store, consolidated=False, mask_and_scale=False) as ds:
        np.testing.assert_array_equal(ds["x"].values, expected["x"])
    # Read back by vz: the inline chunks come back as chunks (native or inline) of the repository.
    parsed = IcechunkParser()(str(where), files.registry)
    for name, values in expected.items():
        np.testing.assert_array_equal(read_array(parsed.arrays[name], files.registry), values)


def test_manifest_parquet_round_trip(
    files: Files, combined: vc.VirtualGroup, tmp_path: Path
) -> None:
    out = vc.write_manifest_parquet(combined, files.out("manifest") / "store")
    again = ManifestParquetParser()(f"file://{out}", files.registry)
    assert again == combined
    _assert_values(again, files.concatenated(), files.registry)
    footer = pq.read_metadata(out / "x.parquet")
    assert footer.metadata[b"vz:version"] == b"2"


def test_xarray_adapter_and_info(files: Files, tmp_path: Path) -> None:
    ds = vx.open_virtual_dataset(
        files.json_url("a"), registry=files.registry, parser=KerchunkJSONParser()
    )
    assert ds["x"].data.manifest.n_inline == 1
    joined = xr.concat([ds, ds], dim="t", coords="minimal", compat="override")
    assert joined["x"].data.manifest.n_inline == 2
    refs = joined.vz.to_kerchunk(format="dict")
    assert refs["refs"]["x/2.1"] == refs["refs"]["x/0.1"]
    text = describe_group(ds.vz.to_virtual_group(), "a.json")
    assert "4 chunks (0 missing, 1 inline (" in text
    assert "total: 4 references, 0 missing chunks, 2 inline chunks" in text


# ---- references made by the real kerchunk ---------------------------------------------------


def _check_real_kerchunk(folder: Path) -> None:
    registry = vc.ObjectStoreRegistry({f"file://{folder}/": obstore.store.LocalStore(folder)})
    refs = json.loads((folder / "kerchunk_inline.json").read_text())["refs"]
    inline = [
        k for k, v in refs.items() if k.startswith("x/") and k[2] != "." and isinstance(v, str)
    ]
    referenced = [k for k, v in refs.items() if isinstance(v, list)]
    assert inline
    assert referenced
    source = folder / "kerchunk_inline.json"
    group = KerchunkJSONParser()(f"file://{source}", registry)
    array = group.arrays["x"]
    assert isinstance(array, vc.VirtualArray)
    assert array.manifest.n_inline == len(inline)
    with h5py.File(folder / "kerchunk_inline.h5") as f:
        expected = f["x"][...]
    np.testing.assert_array_equal(read_array(array, registry), expected)
    doubled = vc.VirtualGroup(arrays={"x": vc.concat([array, array], axis=0)})
    twice = np.concatenate([expected, expected])
    json_out = write_kerchunk_json(doubled, folder / "doubled.json")
    parquet_out = write_kerchunk_parquet(doubled, folder / "doubled.parq", record_size=5)
    # kerchunk's fill_value 0.0 is a CF _FillValue to xarray: compare the stored values.
    for fo in (str(json_out), PyarrowReferenceMapper(parquet_out)):
        with xr.open_dataset(
            "reference://",
            engine="zarr",
            mask_and_scale=False,
            backend_kwargs={
                "consolidated": False,
                "storage_options": {"fo": fo, "remote_protocol": "file"},
            },
        ) as ds:
            np.testing.assert_array_equal(ds["x"].values, twice)
    stored = vc.write_manifest_parquet(doubled, folder / "doubled.vz")
    reread = vc.read_manifest_parquet(stored).arrays["x"]
    np.testing.assert_array_equal(read_array(reread, registry), twice)
    store = _icechunk_store(doubled, folder, folder / "doubled.icechunk")
    np.testing.assert_array_equal(zarr.open_array(store, path="x", mode="r")[...], twice)


def test_committed_real_kerchunk_references(tmp_path: Path) -> None:
    for name in ("kerchunk_inline.json", "kerchunk_inline.h5"):
        shutil.copy(DATA / name, tmp_path / name)
    _check_real_kerchunk(tmp_path)
    # The committed data file holds the values its script makes.
    script = runpy.run_path(str(DATA / "make_kerchunk_inline.py"))
    with h5py.File(tmp_path / "kerchunk_inline.h5") as f:
        np.testing.assert_array_equal(f["x"][...], script["values"]())


@pytest.mark.skipif(
    not PEERS_PYTHON.exists(), reason="no peers' venv with kerchunk at /tmp/vz-peers"
)
def test_references_made_now_by_the_real_kerchunk(tmp_path: Path) -> None:
    subprocess.run(
        [str(PEERS_PYTHON), str(DATA / "make_kerchunk_inline.py"), str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    _check_real_kerchunk(tmp_path)


# ---- the manifest's column ------------------------------------------------------------------

A = "file:///data/a.nc"


def _mixed() -> vc.ChunkManifest:
    return vc.ChunkManifest.from_entries(
        {"0": {"path": A, "offset": 8, "length": 4}, "1": {"data": b"\x01\x02"}}, grid=(3,)
    )


def test_no_inline_chunks_no_column() -> None:
    plain = vc.ChunkManifest.from_entries({"0": {"path": A, "offset": 8, "length": 4}}, grid=(3,))
    assert plain.table.schema.equals(MANIFEST_SCHEMA)
    assert plain.inline_data is None
    assert plain.n_inline == 0
    nulls = plain.table.append_column("data", pa.nulls(3, pa.large_binary()))
    rebuilt = vc.ChunkManifest(plain.grid, nulls)
    assert rebuilt.table.schema.equals(MANIFEST_SCHEMA)
    assert rebuilt.nbytes == plain.nbytes
    from_arrays = vc.ChunkManifest.from_arrays(
        paths=np.array([A, "", ""]),
        offsets=np.array([8, 0, 0]),
        lengths=np.array([4, 0, 0]),
        data=np.array([None, None, None], dtype=object),
    )
    assert from_arrays == plain
    assert from_arrays.nbytes == plain.nbytes
    mixed = _mixed()
    assert mixed.table.schema.equals(INLINE_MANIFEST_SCHEMA)
    # Selecting away the inline rows drops the column again.
    meta = vc.ArrayMetadata(shape=(3,), chunk_grid=(1,), dtype="i2")
    first = vc.select_chunks(vc.VirtualArray(meta, mixed), [slice(0, 1)])
    assert first.manifest.table.schema.equals(MANIFEST_SCHEMA)


def test_inline_rows_are_neither_missing_nor_references() -> None:
    m = _mixed()
    assert (m.n_chunks, m.n_inline, m.n_missing) == (3, 1, 1)
    assert m.missing_mask().tolist() == [False, False, True]
    assert m.inline_mask().tolist() == [False, True, False]
    assert m.inline_nbytes == 2
    assert m.referenced_nbytes == 4
    assert m.to_entries() == {
        "0": {"path": A, "offset": 8, "length": 4},
        "1": {"data": b"\x01\x02"},
    }
    assert vc.ChunkManifest.from_entries(m.to_entries(), grid=(3,)) == m
    assert pickle.loads(pickle.dumps(m)) == m
    assert "n_inline=1" in repr(m)


def test_equality_compares_inline_bytes() -> None:
    other = vc.ChunkManifest.from_entries(
        {"0": {"path": A, "offset": 8, "length": 4}, "1": {"data": b"\x01\x03"}}, grid=(3,)
    )
    missing = vc.ChunkManifest.from_entries({"0": {"path": A, "offset": 8, "length": 4}}, grid=(3,))
    assert _mixed() == _mixed()
    assert _mixed() != other
    assert _mixed() != missing


def test_rename_paths_leaves_inline_rows() -> None:
    renamed = vc.rename_paths(_mixed(), {A: "s3://bucket/a.nc"})
    assert renamed.to_entries() == {
        "0": {"path": "s3://bucket/a.nc", "offset": 8, "length": 4},
        "1": {"data": b"\x01\x02"},
    }


def test_algebra_carries_the_column() -> None:
    meta = vc.ArrayMetadata(shape=(3,), chunk_grid=(1,), dtype="i2", dimension_names=("t",))
    array = vc.VirtualArray(meta, _mixed())
    plain = vc.VirtualArray(
        meta, vc.ChunkManifest.from_entries({"2": {"path": A, "offset": 0, "length": 2}})
    )
    both = vc.concat([plain, array, plain], axis=0)
    assert both.manifest.inline_mask().tolist() == [False] * 3 + [False, True, False] + [False] * 3
    assert both.manifest.inline_chunks(np.array([4])) == [b"\x01\x02"]
    stacked = vc.stack([array, plain], axis=1)
    assert stacked.manifest.inline_mask().reshape(3, 2).tolist() == [
        [False, False],
        [True, False],
        [False, False],
    ]
    expanded = vc.expand_dims(array, axis=0)
    assert expanded.manifest.n_inline == 1
    broadcast = vc.broadcast_to(expanded, (4, 3))
    assert broadcast.manifest.n_inline == 4
    assert vc.squeeze(expanded, axis=0).manifest == array.manifest
    middle = vc.select_chunks(array, [slice(1, 2)])
    assert middle.manifest.to_entries() == {"0": {"data": b"\x01\x02"}}


def test_a_partial_inline_chunk_is_trimmed_on_concat(tmp_path: Path) -> None:
    """A raw inline last chunk holding fewer elements than its chunk is cut to its prefix."""
    meta = vc.ArrayMetadata(shape=(3,), chunk_grid=(2,), dtype="<i2")
    data = np.array([1, 2, 3, 99], dtype="<i2").tobytes()
    path = tmp_path / "x.bin"
    path.write_bytes(data)
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": obstore.store.LocalStore(tmp_path)})
    first = vc.VirtualArray(
        meta,
        vc.ChunkManifest.from_entries(
            {"0": {"path": f"file://{path}", "offset": 0, "length": 4}, "1": {"data": data[4:]}}
        ),
    )
    joined = vc.concat([first, first], axis=0)
    assert joined.manifest.inline_chunks(np.array([1, 3])) == [data[4:6], data[4:]]
    np.testing.assert_array_equal(read_array(joined, registry), [1, 2, 3, 1, 2, 3])


# ---- typed errors ---------------------------------------------------------------------------


def test_a_row_with_a_path_and_inline_bytes_is_refused() -> None:
    with pytest.raises(vc.InvalidManifestError, match="both a path and inline bytes"):
        vc.ChunkManifest.from_arrays(
            paths=np.array([A]),
            offsets=np.array([0]),
            lengths=np.array([0]),
            data=np.array([b"x"], dtype=object),
        )
    with pytest.raises(vc.InvalidManifestError, match="both a path and inline bytes"):
        vc.ChunkManifest.from_entries({"0": {"path": A, "offset": 0, "length": 1, "data": b"x"}})
    table = pa.table(
        {
            "path": pa.array([A], pa.string()).dictionary_encode(),
            "offset": pa.array([0], pa.uint64()),
            "length": pa.array([0], pa.uint64()),
            "data": pa.array([b"x"], pa.large_binary()),
        },
        schema=INLINE_MANIFEST_SCHEMA,
    )
    with pytest.raises(vc.InvalidManifestError, match="both a path and inline bytes"):
        vc.ChunkManifest((1,), table)
    with pytest.raises(vc.InvalidManifestError, match="must hold bytes"):
        vc.ChunkManifest.from_arrow(table.set_column(3, "data", pa.array([1])), grid=(1,))


def test_inline_bytes_over_the_limit_are_refused(files: Files) -> None:
    with vc.limits(max_inline_bytes=3), pytest.raises(vc.LimitExceededError) as info:
        vc.ChunkManifest.from_entries({"0": {"data": b"ab"}, "1": {"data": b"cd"}})
    assert info.value.limit == "max_inline_bytes"
    assert info.value.needed == 4
    url = files.json_url("a")
    size = len(_chunk_bytes(files.paths["a"], "x", 1))
    with vc.limits(max_inline_bytes=size - 1), pytest.raises(vc.LimitExceededError) as parsed:
        KerchunkJSONParser()(url, files.registry)
    assert url in str(parsed.value)
    assert "'x'" in str(parsed.value)
    with vc.limits(max_inline_bytes=3), pytest.raises(vc.LimitExceededError):
        vc.concat(
            [
                vc.VirtualArray(
                    vc.ArrayMetadata(shape=(1,), chunk_grid=(1,), dtype="i2"),
                    vc.ChunkManifest.from_entries({"0": {"data": b"ab"}}),
                )
            ]
            * 2,
            axis=0,
        )


@pytest.mark.parametrize(
    ("chunk", "fill"),
    [(bytes(8), 0), (b"\x01\x00" * 4, 1), (bytes(9), None), (bytes(7), None)],
    ids=["zeros", "ones", "a-raw-chunk-one-byte-long", "one-byte-short"],
)
def test_kerchunk_reads_an_inline_chunk_as_missing_only_if_it_is_the_writers_stand_in(
    tmp_path: Path, chunk: bytes, fill: int | None
) -> None:
    """Every chunk present and one inline constant chunk: the writer's form of missing
    chunks exactly (the encoding of a chunk of one value, which becomes the fill value:
    the same values), or an inline chunk kept as it is."""
    from vzcore.parsers import KerchunkJSONParser
    from vzcore.writers import write_kerchunk_json

    paths = np.array([["file:///data/f0.nc"] * 2, ["file:///data/f0.nc", ""]], dtype=object)
    data = np.full((2, 2), None, dtype=object)
    data[1, 1] = chunk
    manifest = vc.ChunkManifest.from_arrays(
        paths=paths,
        offsets=np.array([[0, 8], [16, 0]]),
        lengths=np.array([[8, 8], [8, 0]]),
        data=data,
    )
    meta = vc.ArrayMetadata(
        shape=(4, 4), chunk_grid=(2, 2), dtype="<u2", dimension_names=("y", "x")
    )
    written = write_kerchunk_json(
        vc.VirtualGroup(arrays={"v": vc.VirtualArray(meta, manifest)}), tmp_path / "refs.json"
    )
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    parsed = KerchunkJSONParser()(f"file://{written}", registry).arrays["v"]
    assert isinstance(parsed, vc.VirtualArray)
    if fill is not None:
        assert parsed.manifest.missing_mask().tolist() == [False, False, False, True]
        assert parsed.metadata.fill_value == fill
    else:
        assert parsed.manifest == manifest
