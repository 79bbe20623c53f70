"""`ZarrParser`: Zarr v2 and v3 stores as references to their chunk objects.

Stores are written here with zarr-python (every codec numcodecs and zarr v2 can
write, ``.`` and ``/`` chunk keys, consolidated or not; v3 with default and v2
chunk key encodings, sharding, 0-d arrays, nested groups) on disk and in an obstore
MemoryStore; every array read through a `ManifestStore` over the parsed group must
equal zarr's own read of the store, and xarray-written stores must open equal too.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import obstore
import pandas as pd
import pytest
import xarray as xr
import zarr
import zarr.storage
from obstore.store import LocalStore, MemoryStore
from zarr.abc.store import Store
from zarr.codecs import BytesCodec, GzipCodec

import vzcore as vc
from vzcore.parsers import ZarrFormatError, ZarrParser

DATA = (np.arange(60, dtype="f4").reshape(6, 10) - 20) / 4
"""The values of every 2-d test array: (6, 10) in (4, 3) chunks, partial edge chunks."""

V2_CODECS: dict[str, dict[str, Any]] = {
    "zlib": {"compressors": numcodecs.Zlib(level=3)},
    "gzip": {"compressors": numcodecs.GZip(level=5)},
    "zstd": {"compressors": numcodecs.Zstd(level=2)},
    "blosc_lz4_shuffle": {
        "compressors": numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)
    },
    "blosc_zstd_bitshuffle": {
        "compressors": numcodecs.Blosc(cname="zstd", clevel=3, shuffle=numcodecs.Blosc.BITSHUFFLE)
    },
    "blosc_lz4hc_noshuffle": {
        "compressors": numcodecs.Blosc(cname="lz4hc", clevel=1, shuffle=numcodecs.Blosc.NOSHUFFLE)
    },
    "blosc_zlib_autoshuffle": {
        "compressors": numcodecs.Blosc(cname="zlib", shuffle=numcodecs.Blosc.AUTOSHUFFLE)
    },
    "lz4": {"compressors": numcodecs.LZ4(acceleration=2)},
    "bz2": {"compressors": numcodecs.BZ2(level=9)},
    "shuffle_zlib": {
        "filters": [numcodecs.Shuffle(elementsize=4)],
        "compressors": numcodecs.Zlib(),
    },
    "delta": {"filters": [numcodecs.Delta(dtype="<f4")], "compressors": None},
    "delta_blosc": {
        "filters": [numcodecs.Delta(dtype="<f4")],
        "compressors": numcodecs.Blosc(cname="zstd"),
    },
    "fletcher32": {"filters": [numcodecs.Fletcher32()], "compressors": None},
    "uncompressed": {"compressors": None},
    "order_f": {"order": "F", "compressors": numcodecs.Zlib()},
}
"""Codec pipelines of the 2-d float32 arrays of the v2 stores, by array name."""


def _fill_v2(root: zarr.Group, separator: str) -> None:
    """Arrays of every v2 codec, fill values, dtypes and never-written chunks."""
    encoding = {"name": "v2", "separator": separator}
    root.attrs.update({"title": "zarr v2", "n": 3})

    def create(name: str, group: zarr.Group | None = None, **options: Any) -> zarr.Array[Any]:
        options.setdefault("chunks", (4, 3))
        options.setdefault("fill_value", 0)
        parent = root if group is None else group  # an empty zarr.Group is falsy
        return parent.create_array(name, chunk_key_encoding=encoding, **options)

    for name, options in V2_CODECS.items():
        create(name, shape=DATA.shape, dtype="f4", **options)[...] = DATA
    nan_filled = DATA.copy()
    nan_filled[:4, 3:6] = np.nan  # a whole chunk of fill: never written
    nan_filled[5, 9] = np.nan
    create("nan_fill", shape=DATA.shape, dtype="f4", fill_value=np.nan)[...] = nan_filled
    sparse = create("sparse", shape=(6, 10), dtype="<i8", fill_value=-1, compressors=None)
    sparse[0, 0] = 5
    sparse[5, 9] = 7  # 2 of 8 chunks written
    big = create("big_endian", shape=(6, 10), dtype=">i2", fill_value=-9)
    big[...] = (DATA * 4).astype(">i2")
    flags = create("flags", shape=(7,), chunks=(3,), dtype="bool", fill_value=False)
    flags[...] = [True, False, True, True, False, False, True]
    create("scalar", shape=(), chunks=(), dtype="f8", fill_value=0.0)[...] = 2.5
    create("never_written", shape=(5, 5), dtype="f4", fill_value=1.5)
    sub = root.create_group("sub", attributes={"level": 1})
    inner = create("inner", sub, shape=(5,), chunks=(2,), dtype="u2", fill_value=9)
    inner[:] = [1, 2, 3, 4, 9]
    inner.attrs["units"] = "m"
    deeper = sub.create_group("deeper")
    create("deep", deeper, shape=(2, 3), chunks=(1, 3), dtype="i4")[...] = [[1, 2, 3], [4, 5, 6]]


def _fill_v3(root: zarr.Group) -> None:
    """Default and v2 chunk key encodings, sharding, 0-d arrays, nested groups, attributes."""
    root.attrs.update({"title": "zarr v3", "list": [1, 2]})
    root.create_array(
        "default", shape=DATA.shape, chunks=(4, 3), dtype="f4", dimension_names=("y", "x")
    )[...] = DATA
    root.create_array(
        "dotted",
        shape=DATA.shape,
        chunks=(4, 3),
        dtype="f4",
        chunk_key_encoding={"name": "default", "separator": "."},
    )[...] = DATA
    root.create_array(
        "v2_keys",
        shape=DATA.shape,
        chunks=(4, 3),
        dtype="f4",
        chunk_key_encoding={"name": "v2", "separator": "."},
    )[...] = DATA
    root.create_array(
        "v2_slash_keys",
        shape=DATA.shape,
        chunks=(4, 3),
        dtype="f4",
        chunk_key_encoding={"name": "v2", "separator": "/"},
    )[...] = DATA
    sharded = root.create_array(
        "sharded", shape=(9, 10), chunks=(2, 2), shards=(4, 4), dtype="i4", fill_value=-1
    )
    sharded[:5, :6] = np.arange(30).reshape(5, 6)  # shards of rows 8- and cols 8- never written
    nan_filled = root.create_array(
        "nan_fill", shape=DATA.shape, chunks=(4, 3), dtype="f8", fill_value=np.nan
    )
    values = DATA.astype("f8")
    values[:4, :3] = np.nan
    nan_filled[...] = values
    root.create_array(
        "big_endian",
        shape=(6, 10),
        chunks=(3, 5),
        dtype=">u4",
        serializer=BytesCodec(endian="big"),
        compressors=GzipCodec(level=2),
        fill_value=3,
    )[...] = np.arange(60, dtype=">u4").reshape(6, 10) * 1000
    root.create_array("scalar", shape=(), dtype="f8", fill_value=0.0)[...] = 9.5
    root.create_array("scalar_unwritten", shape=(), dtype="i2", fill_value=-3)
    group = root.create_group("g", attributes={"k": 1})
    inner = group.create_group("h", attributes={"deep": True})
    q = inner.create_array("q", shape=(3,), dtype="u1", fill_value=0, attributes={"units": "m"})
    q[:] = [1, 2, 3]
    crc = group.create_array("crc", shape=(8,), chunks=(3,), dtype="i2", compressors=None)
    crc[...] = np.array([1, -2, 3, -4, 5, -6, 7, -8], dtype="i2")


class Stores:
    """The test stores on disk under one folder, and a registry for it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.registry = vc.ObjectStoreRegistry({f"file://{folder}/": LocalStore(folder)})
        for name, separator, consolidated in (
            ("v2_dot.zarr", ".", False),
            ("v2_slash.zarr", "/", False),
            ("v2_consolidated.zarr", ".", True),
        ):
            store = self.zarr_store(name)
            _fill_v2(zarr.open_group(store, mode="w", zarr_format=2), separator)
            if consolidated:
                zarr.consolidate_metadata(store)
        _fill_v3(zarr.open_group(self.zarr_store("v3.zarr"), mode="w", zarr_format=3))
        self._parsed: dict[str, vc.VirtualGroup] = {}

    def zarr_store(self, name: str) -> Store:
        return zarr.storage.LocalStore(self.folder / name)

    def url(self, name: str) -> str:
        return f"file://{self.folder}/{name}"

    def parsed(self, name: str) -> vc.VirtualGroup:
        if name not in self._parsed:
            self._parsed[name] = ZarrParser()(self.url(name), self.registry)
        return self._parsed[name]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Stores:
    return Stores(tmp_path_factory.mktemp("zarr-stores"))


def walk(group: zarr.Group, prefix: str = "") -> Iterator[tuple[str, zarr.Array[Any]]]:
    for name, member in sorted(group.members()):
        if isinstance(member, zarr.Array):
            yield prefix + name, member
        else:
            yield from walk(member, f"{prefix}{name}/")


def walk_groups(group: zarr.Group, prefix: str = "") -> Iterator[str]:
    for name, member in group.groups():
        yield prefix + name
        yield from walk_groups(member, f"{prefix}{name}/")


def assert_array_matches(served: zarr.Array[Any], source: zarr.Array[Any], path: str) -> None:
    got, expected = served[...], source[...]
    # vz serves the decoded dtype in native order (the stored order is in the bytes codec)
    assert got.dtype == expected.dtype.newbyteorder("="), path
    assert got.shape == expected.shape, path
    np.testing.assert_array_equal(got, expected, err_msg=path)
    attributes = {k: v for k, v in served.attrs.items() if k != "_FillValue"}
    expected_attributes = {k: v for k, v in source.attrs.items() if k != "_ARRAY_DIMENSIONS"}
    assert attributes == expected_attributes, path


def _array_params(names: tuple[str, ...], arrays: tuple[str, ...]) -> list[Any]:
    return [pytest.param(n, a, id=f"{n}-{a}") for n in names for a in arrays]


V2_STORES = ("v2_dot.zarr", "v2_slash.zarr", "v2_consolidated.zarr")
V2_ARRAYS = (
    *V2_CODECS,
    "nan_fill",
    "sparse",
    "big_endian",
    "flags",
    "scalar",
    "never_written",
    "sub/inner",
    "sub/deeper/deep",
)
V3_ARRAYS = (
    "default",
    "dotted",
    "v2_keys",
    "v2_slash_keys",
    "sharded",
    "nan_fill",
    "big_endian",
    "scalar",
    "scalar_unwritten",
    "g/h/q",
    "g/crc",
)


@pytest.mark.parametrize(
    ("name", "path"),
    [*_array_params(V2_STORES, V2_ARRAYS), *_array_params(("v3.zarr",), V3_ARRAYS)],
)
def test_every_array_reads_like_zarr(stores: Stores, name: str, path: str) -> None:
    served = vc.ManifestStore(stores.parsed(name), registry=stores.registry)
    source = zarr.open_group(stores.zarr_store(name), mode="r")
    assert_array_matches(zarr.open_array(served, path=path, mode="r"), source[path], path)


@pytest.mark.parametrize("name", [*V2_STORES, "v3.zarr"])
def test_the_tree_is_the_stores(stores: Stores, name: str) -> None:
    group = stores.parsed(name)
    source = zarr.open_group(stores.zarr_store(name), mode="r")
    served = zarr.open_group(vc.ManifestStore(group, registry=stores.registry), mode="r")
    assert sorted(path for path, _ in group.walk_arrays()) == [p for p, _ in walk(source)]
    assert [p for p, _ in group.walk_groups()] == ["", *sorted(walk_groups(source))]
    for path, _ in group.walk_groups():
        served_group, source_group = (served[path], source[path]) if path else (served, source)
        assert dict(served_group.attrs) == dict(source_group.attrs), path


@pytest.mark.parametrize("name", [*V2_STORES, "v3.zarr"])
def test_references_are_whole_chunk_objects(stores: Stores, name: str) -> None:
    """Each chunk object is referenced whole; chunks zarr never wrote are missing."""
    folder = stores.folder / name
    for path, array in stores.parsed(name).walk_arrays():
        assert isinstance(array, vc.VirtualArray)
        entries = array.manifest.to_entries()
        for entry in entries.values():
            file = Path(entry["path"].removeprefix("file://"))
            assert file.is_relative_to(folder)
            assert entry["offset"] == 0
            assert entry["length"] == file.stat().st_size
        n_objects = len(
            [
                f
                for f in (folder / path).rglob("*")
                if f.is_file() and f.name not in (".zarray", ".zattrs", "zarr.json")
            ]
        )
        assert len(entries) == n_objects, path
        assert array.manifest.n_missing == math.prod(array.manifest.grid) - n_objects, path


def test_missing_chunks(stores: Stores) -> None:
    v2 = stores.parsed("v2_dot.zarr")
    v3 = stores.parsed("v3.zarr")
    counts = {
        "v2 sparse": v2["sparse"],
        "v2 nan_fill": v2["nan_fill"],
        "v2 never_written": v2["never_written"],
        "v3 sharded": v3["sharded"],
        "v3 scalar_unwritten": v3["scalar_unwritten"],
    }
    missing = {k: a.manifest.n_missing for k, a in counts.items() if isinstance(a, vc.VirtualArray)}
    assert missing == {
        "v2 sparse": 6,
        "v2 nan_fill": 1,
        "v2 never_written": 4,
        "v3 sharded": 5,
        "v3 scalar_unwritten": 1,
    }


def test_codecs_are_parsed(stores: Stores) -> None:
    group = stores.parsed("v2_consolidated.zarr")

    def names(path: str) -> list[str]:
        array = group[path]
        assert isinstance(array, vc.VirtualArray)
        return [c.name for c in array.metadata.codecs]

    assert names("zlib") == ["bytes", "numcodecs.zlib"]
    assert names("blosc_lz4_shuffle") == ["bytes", "blosc"]
    assert names("delta") == ["numcodecs.delta", "bytes"]
    assert names("order_f") == ["transpose", "bytes", "numcodecs.zlib"]
    big = group["big_endian"]
    assert isinstance(big, vc.VirtualArray)
    assert big.metadata.endian == "big"
    sharded = stores.parsed("v3.zarr")["sharded"]
    assert isinstance(sharded, vc.VirtualArray)
    assert [c.name for c in sharded.metadata.codecs] == ["sharding_indexed"]
    assert sharded.metadata.chunk_shape == (4, 4)


def test_consolidated_metadata_is_used(stores: Stores, tmp_path: Path) -> None:
    """With .zmetadata, the per-array documents are not read (here: they are gone)."""
    copy = tmp_path / "copy.zarr"
    shutil.copytree(stores.folder / "v2_consolidated.zarr", copy)
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    for document in copy.rglob(".zattrs"):
        document.write_text("not JSON at all")
    group = ZarrParser()(f"file://{copy}", registry)
    assert sorted(p for p, _ in group.walk_arrays()) == sorted(
        p for p, _ in stores.parsed("v2_consolidated.zarr").walk_arrays()
    )
    assert group["sub/inner"].metadata.attributes["units"] == "m"  # type: ignore[union-attr]


def test_drop_variables(stores: Stores) -> None:
    group = ZarrParser(drop_variables=["zlib", "inner"])(stores.url("v2_dot.zarr"), stores.registry)
    paths = {p for p, _ in group.walk_arrays()}
    assert "zlib" not in paths
    assert "sub/inner" not in paths
    assert "gzip" in paths


# ---- a store in memory ----------------------------------------------------------------------


def test_memory_store() -> None:
    memory = MemoryStore()
    zarr_store = zarr.storage.ObjectStore(memory)
    _fill_v3(zarr.open_group(zarr_store, path="data/v3.zarr", mode="w"))
    _fill_v2(zarr.open_group(zarr_store, path="data/v2.zarr", mode="w", zarr_format=2), "/")
    registry = vc.ObjectStoreRegistry({"memory://bucket/": memory})
    for name in ("v3.zarr", "v2.zarr"):
        group = ZarrParser()(f"memory://bucket/data/{name}", registry)
        source = zarr.open_group(zarr_store, path=f"data/{name}", mode="r")
        served = vc.ManifestStore(group, registry=registry)
        paths = [p for p, _ in walk(source)]
        assert sorted(p for p, _ in group.walk_arrays()) == paths
        for path in paths:
            assert_array_matches(zarr.open_array(served, path=path, mode="r"), source[path], path)
        tas = group["sub/inner" if name == "v2.zarr" else "default"]
        assert isinstance(tas, vc.VirtualArray)
        assert all(
            e["path"].startswith(f"memory://bucket/data/{name}/")
            for e in tas.manifest.to_entries().values()
        )


# ---- stores written by xarray ---------------------------------------------------------------


def _xarray_dataset() -> xr.Dataset:
    rng = np.random.default_rng(1)
    values = rng.standard_normal((6, 4, 5)).astype("f4")
    values[0, 0, 0] = np.nan
    ds = xr.Dataset(
        {
            "tas": (("time", "lat", "lon"), values, {"units": "K"}),
            "count": (("time",), np.arange(6, dtype="i2")),
            "label": (("lat",), np.array(["a", "bb", "c", "dd"])),
        },
        coords={
            "time": pd.date_range("2001-01-01", periods=6, freq="6h"),
            "lat": [-30.0, -10.0, 10.0, 30.0],
            "lon": np.arange(5) * 72.0,
        },
        attrs={"title": "written by xarray"},
    )
    ds["packed"] = (("lat", "lon"), np.linspace(270, 280, 20).reshape(4, 5))
    ds["packed"].encoding = {
        "dtype": "i2",
        "scale_factor": 0.01,
        "add_offset": 275.0,
        "_FillValue": -32767,
    }
    ds["tas"].encoding = {"chunks": (4, 2, 3), "_FillValue": -999.0}
    return ds


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_stores_written_by_xarray(zarr_format: int, tmp_path: Path) -> None:
    store_path = tmp_path / "xarray.zarr"
    _xarray_dataset().to_zarr(store_path, zarr_format=zarr_format, consolidated=zarr_format == 2)
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    group = ZarrParser()(f"file://{store_path}", registry)
    served = vc.ManifestStore(group, registry=registry)
    with (
        xr.open_zarr(served, consolidated=False) as got,
        xr.open_zarr(store_path, consolidated=zarr_format == 2) as expected,
    ):
        xr.testing.assert_identical(got.load(), expected.load())


def test_xarray_base64_fill_values_are_decoded(tmp_path: Path) -> None:
    """xarray writes a float ``_FillValue`` of zarr v3 as base64 text: vz reads the number,
    so the Kerchunk (zarr v2) form masks with it too."""
    import fsspec

    from vzcore.writers import kerchunk_refs

    store_path = tmp_path / "xarray.zarr"
    _xarray_dataset().to_zarr(store_path, zarr_format=3, consolidated=False)
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    group = ZarrParser()(f"file://{store_path}", registry)
    assert group.arrays["tas"].metadata.encoding["_FillValue"] == -999.0
    refs = kerchunk_refs(group)
    assert json.loads(refs["refs"]["tas/.zarray"])["fill_value"] == -999.0
    mapper = fsspec.filesystem("reference", fo=refs, remote_protocol="file").get_mapper("")
    with (
        xr.open_zarr(mapper, consolidated=False, zarr_format=2) as got,
        xr.open_zarr(store_path, consolidated=False) as expected,
    ):
        xr.testing.assert_equal(got.load(), expected.load())


# ---- errors -----------------------------------------------------------------------------------


def test_a_store_with_only_a_group_is_an_empty_group(tmp_path: Path) -> None:
    zarr.open_group(zarr.storage.LocalStore(tmp_path / "g.zarr"), mode="w", attributes={"a": 1})
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    group = ZarrParser()(f"file://{tmp_path}/g.zarr", registry)
    assert not group.arrays
    assert not group.groups
    assert dict(group.attributes) == {"a": 1}


@pytest.mark.parametrize("content", ["empty", "absent", "other files"])
def test_a_path_without_metadata_is_refused(tmp_path: Path, content: str) -> None:
    folder = tmp_path / "not.zarr"
    if content != "absent":
        folder.mkdir()
    if content == "other files":
        (folder / "README").write_text("no zarr here")
        (folder / "0.0").write_bytes(b"\0" * 8)
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    with pytest.raises(ZarrFormatError, match=r"not\.zarr"):
        ZarrParser()(f"file://{folder}", registry)


BROKEN: dict[str, tuple[str, Callable[[dict[str, Any]], Any], str]] = {
    "not JSON": ("zlib/.zarray", lambda d: "{oops", r"zlib/\.zarray"),
    "not an object": ("zlib/.zarray", lambda d: [1, 2], r"zlib/\.zarray: not a JSON object"),
    "no dtype": ("zlib/.zarray", lambda d: {k: v for k, v in d.items() if k != "dtype"}, "'zlib'"),
    "bad dtype": ("zlib/.zarray", lambda d: {**d, "dtype": "<q7"}, "'zlib'"),
    "bad compressor": ("zlib/.zarray", lambda d: {**d, "compressor": {"level": 1}}, "'zlib'"),
    "bad v3 data type": ("default/zarr.json", lambda d: {**d, "data_type": "float99"}, "'default'"),
    "v3 grid": (
        "default/zarr.json",
        lambda d: {**d, "chunk_grid": {"name": "irregular"}},
        "'default'",
    ),
    "bad fill value": ("zlib/.zarray", lambda d: {**d, "fill_value": "abc"}, "'zlib'"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_broken_metadata_names_the_array(stores: Stores, tmp_path: Path, case: str) -> None:
    key, change, message = BROKEN[case]
    source = "v3.zarr" if key.endswith("zarr.json") else "v2_dot.zarr"
    copy = tmp_path / "broken.zarr"
    shutil.copytree(stores.folder / source, copy)
    document = json.loads((copy / key).read_text())
    changed = change(document)
    (copy / key).write_text(changed if isinstance(changed, str) else json.dumps(changed))
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    with pytest.raises(ZarrFormatError, match=message) as caught:
        ZarrParser()(f"file://{copy}", registry)
    assert f"file://{copy}" in str(caught.value)
    assert isinstance(caught.value, vc.VirtualizationError)


def test_a_single_array_store_is_refused(stores: Stores) -> None:
    with pytest.raises(ZarrFormatError, match="single array"):
        ZarrParser()(f"{stores.url('v3.zarr')}/default", stores.registry)


def test_an_unregistered_store_is_refused(stores: Stores) -> None:
    with pytest.raises(vc.UnregisteredURLError):
        ZarrParser()("file:///nowhere/store.zarr", stores.registry)


def test_a_store_that_cannot_list_is_refused(stores: Stores) -> None:
    class NoListing:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        async def get_ranges_async(self, path: str, *, starts: Any, ends: Any) -> Any:
            return await obstore.get_ranges_async(self._inner, path, starts=starts, ends=ends)

        async def get_async(self, path: str) -> Any:
            return await (await obstore.get_async(self._inner, path)).bytes_async()

        def get_ranges(self, path: str, *, starts: Any, ends: Any) -> Any:
            return obstore.get_ranges(self._inner, path, starts=starts, ends=ends)

        def get(self, path: str) -> Any:
            return obstore.get(self._inner, path).bytes()

    registry = vc.ObjectStoreRegistry(
        {f"file://{stores.folder}/": NoListing(LocalStore(stores.folder))}
    )
    with pytest.raises(vc.SourceReadError, match="cannot list"):
        ZarrParser()(stores.url("v3.zarr"), registry)


# ---- fidelity: what zarr-python reads, vz reads the same way -------------------------------


def _edited_store(
    folder: Path,
    zarr_format: int,
    dtype: Any,
    values: Any,
    fill_value: Any,
    changes: dict[str, Any] | None = None,
    **options: Any,
) -> Path:
    """A store with one array ``a`` of ``values`` and one missing chunk; its metadata
    document then edited (``changes``: keys set, or removed where the value is ``...``)."""
    path = folder / "store.zarr"
    root = zarr.open_group(path, mode="w", zarr_format=zarr_format)
    array = root.create_array(
        "a",
        shape=(len(values) + 2,),
        chunks=(2,),
        dtype=dtype,
        fill_value=fill_value,
        compressors=None,
        **options,
    )
    array[: len(values)] = values
    document_path = path / "a" / (".zarray" if zarr_format == 2 else "zarr.json")
    document = json.loads(document_path.read_text())
    for key, value in (changes or {}).items():
        if value is ...:
            del document[key]
        else:
            document[key] = value
    document_path.write_text(json.dumps(document))  # NaN, Infinity allowed, as zarr writes
    return path


def _assert_reads_like_zarr(path: Path) -> vc.VirtualArray:
    theirs = zarr.open_array(path, path="a", mode="r")
    registry = vc.ObjectStoreRegistry({f"file://{path.parent}/": LocalStore(path.parent)})
    group = ZarrParser()(f"file://{path}", registry)
    ours = zarr.open_array(vc.ManifestStore(group, registry=registry), path="a", mode="r")
    expected, got = theirs[...], ours[...]
    # vz keeps the native byte order in the dtype and the stored one in the bytes codec.
    native = expected.dtype.newbyteorder("=") if expected.dtype.kind in "iufcmM" else None
    assert got.dtype == (native or expected.dtype)
    if expected.dtype.kind in "fc":
        # NaN payloads aside (zarr writes every NaN as "NaN"), the values are bitwise equal.
        assert np.array_equal(np.isnan(got), np.isnan(expected))
        assert (
            got[~np.isnan(got)].tobytes()
            == expected[~np.isnan(expected)].astype(got.dtype).tobytes()
        )
    else:
        assert got.tolist() == expected.tolist()
    array = group["a"]
    assert isinstance(array, vc.VirtualArray)
    fill, zarr_fill = array.metadata.fill_value, theirs.fill_value
    if zarr_fill is None:  # zarr v2's "no fill value": missing chunks read as the default
        assert fill == np.zeros((), dtype=got.dtype)[()]
    elif got.dtype.kind in "fc":
        for ours_part, zarr_part in ((fill.real, zarr_fill.real), (fill.imag, zarr_fill.imag)):
            assert np.isnan(ours_part) == np.isnan(zarr_part)
            assert np.isnan(ours_part) or ours_part == zarr_part
    elif isinstance(fill, str):
        assert fill == zarr_fill
    else:
        assert fill.tobytes() == np.asarray(zarr_fill, dtype=fill.dtype).tobytes()
    return array


WORDS = ["ab", "", "héllo", "c"]
ACCEPTED: dict[str, tuple[int, Any, Any, Any, dict[str, Any], dict[str, Any]]] = {
    # name: (zarr_format, dtype, values, fill_value, document changes, create_array options)
    "v2-vlen-utf8-fill-0": (2, str, WORDS, None, {"fill_value": 0}, {}),
    "v2-vlen-utf8-fill-null": (2, str, WORDS, None, {"fill_value": None}, {}),
    "v2-vlen-utf8-fill-text": (2, str, WORDS, "zz", {}, {}),
    "v2-bytes-base64-fill": (2, "|S5", [b"ab", b"hello"], b"xy", {}, {}),
    "v2-float-nan": (2, "<f4", [1.5, -2], np.nan, {}, {}),
    "v2-float-minus-infinity": (2, ">f8", [1.5, -2], -np.inf, {}, {}),
    "v2-complex-nan-real": (2, "<c8", [1 + 2j, 3], complex(np.nan, 1), {}, {}),
    "v3-nan": (3, "f4", [1.5, -2], np.nan, {}, {}),
    "v3-infinity": (3, "f8", [1.5, -2], 0.0, {"fill_value": "Infinity"}, {}),
    "v3-minus-infinity": (3, "f8", [1.5, -2], 0.0, {"fill_value": "-Infinity"}, {}),
    "v3-hex-nan-payload": (3, "f4", [1.5, -2], 0.0, {"fill_value": "0x7fc00001"}, {}),
    "v3-hex": (3, "f8", [1.5, -2], 0.0, {"fill_value": "0x3ff8000000000000"}, {}),
    "v3-hex-float16": (3, "f2", [1.5, -2], 0.0, {"fill_value": "0x7e00"}, {}),
    "v3-complex-nan-real": (3, "c16", [1 + 2j, 3], 0, {"fill_value": ["NaN", 1.5]}, {}),
    "v3-complex-infinity-hex": (
        3,
        "c8",
        [1 + 2j, 3],
        0,
        {"fill_value": ["-Infinity", "0x7fc00000"]},
        {},
    ),
    "v3-bool": (3, "bool", [True, False], True, {}, {}),
    "v3-bool-from-1": (3, "bool", [True, False], False, {"fill_value": 1}, {}),
    "v3-datetime-nat": (
        3,
        "<M8[s]",
        np.array(["2001-01-01", "2002-01-01"], "M8[s]"),
        np.datetime64("NaT", "s"),
        {},
        {},
    ),
    "v3-datetime": (
        3,
        "<M8[ms]",
        np.array(["2001-01-01", "2002-01-01"], "M8[ms]"),
        np.datetime64("2000-01-01", "ms"),
        {},
        {},
    ),
    "v3-timedelta": (3, "<m8[s]", np.array([1, 2], "m8[s]"), np.timedelta64(5, "s"), {}, {}),
    "v3-string": (3, str, WORDS, "zz", {}, {}),
    "v3-fixed-bytes": (3, "|S5", [b"ab", b"hello"], b"xy", {}, {}),
    "v3-integer-fill-as-float": (3, "i4", [1, 2], 0, {"fill_value": 3.0}, {}),
    "v3-uint64-max": (3, "u8", [1, 2], 2**64 - 1, {}, {}),
    "v3-extra-field-not-understood": (
        3,
        "i4",
        [1, 2],
        7,
        {"vz_note": {"must_understand": False, "x": [1]}},
        {},
    ),
    "v3-empty-storage-transformers": (3, "i4", [1, 2], 7, {"storage_transformers": []}, {}),
    "v3-null-dimension-name": (3, "i4", [1, 2], 7, {"dimension_names": [None]}, {}),
    "v3-no-attributes": (3, "i4", [1, 2], 7, {"attributes": ...}, {}),
    "v3-attributes-nan": (
        3,
        "f4",
        [1, 2],
        0.0,
        {"attributes": {"a": math.nan, "b": [1, -math.inf]}},
        {},
    ),
    "v3-v2-chunk-keys-dot": (
        3,
        "i4",
        [1, 2, 3],
        7,
        {},
        {"chunk_key_encoding": {"name": "v2", "separator": "."}},
    ),
    "v3-v2-chunk-keys-slash": (
        3,
        "i4",
        [1, 2, 3],
        7,
        {},
        {"chunk_key_encoding": {"name": "v2", "separator": "/"}},
    ),
    "v3-default-chunk-keys-dot": (
        3,
        "i4",
        [1, 2, 3],
        7,
        {},
        {"chunk_key_encoding": {"name": "default", "separator": "."}},
    ),
}


@pytest.mark.parametrize("case", ACCEPTED)
def test_documents_zarr_accepts_read_like_zarr(tmp_path: Path, case: str) -> None:
    zarr_format, dtype, values, fill, changes, options = ACCEPTED[case]
    path = _edited_store(tmp_path, zarr_format, dtype, values, fill, changes, **options)
    array = _assert_reads_like_zarr(path)
    if case == "v3-attributes-nan":
        assert math.isnan(array.metadata.attributes["a"])  # type: ignore[arg-type]
    if case == "v2-vlen-utf8-fill-0":
        assert array.metadata.fill_value == "0"  # zarr-python reads the number as text
        assert [c.name for c in array.metadata.codecs] == ["vlen-utf8"]


REFUSED: dict[str, tuple[int, Any, Any, Any, dict[str, Any], str]] = {
    # name: (zarr_format, dtype, values, fill_value, document changes, vz's reason)
    "v2-fixed-bytes-fill-0": (2, "|S5", [b"ab"], b"", {"fill_value": 0}, "fill_value 0"),
    "v2-unicode-fill-0": (2, "<U5", ["ab"], "", {"fill_value": 0}, "fill_value 0"),
    "v3-nan-for-integers": (3, "i4", [1], 0, {"fill_value": "NaN"}, "fill_value 'NaN'"),
    "v3-fraction-for-integers": (3, "i4", [1], 0, {"fill_value": 2.5}, "fill_value 2.5"),
    "v3-extra-field-understood": (
        3,
        "i4",
        [1],
        0,
        {"vz_note": {"must_understand": True}},
        "extra field 'vz_note'",
    ),
    "v3-extra-field-plain": (3, "i4", [1], 0, {"vz_note": 1}, "extra field 'vz_note'"),
    "v3-storage-transformer": (
        3,
        "i4",
        [1],
        0,
        {"storage_transformers": [{"name": "x"}]},
        "storage transformers",
    ),
    "v3-no-fill-value": (3, "i4", [1], 0, {"fill_value": ...}, "missing 'fill_value'"),
    "v3-no-chunk-key-encoding": (
        3,
        "i4",
        [1],
        0,
        {"chunk_key_encoding": ...},
        "missing 'chunk_key_encoding'",
    ),
    "v3-zarr-format-4": (3, "i4", [1], 0, {"zarr_format": 4}, "zarr_format is 4"),
    "v3-dimension-names-too-many": (
        3,
        "i4",
        [1],
        0,
        {"dimension_names": ["a", "b"]},
        "dimension names",
    ),
}


@pytest.mark.parametrize("case", REFUSED)
def test_documents_zarr_refuses_are_refused(tmp_path: Path, case: str) -> None:
    zarr_format, dtype, values, fill, changes, reason = REFUSED[case]
    path = _edited_store(tmp_path, zarr_format, dtype, values, fill, changes)
    with pytest.raises(Exception):  # noqa: B017 - zarr's errors vary: TypeError, KeyError, ...
        zarr.open_array(path, path="a", mode="r")[...]
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    with pytest.raises(ZarrFormatError, match=rf"store\.zarr: array 'a': .*{re.escape(reason)}"):
        ZarrParser()(f"file://{path}", registry)
