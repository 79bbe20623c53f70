"""`KerchunkJSONParser` and `KerchunkParquetParser`.

Three kinds of input: references vz wrote itself (write -> parse -> write must give
the same references, and the values read through a `ManifestStore` must equal the
original file's), references written by hand to exercise the format (version 0,
templates, ``gen``, whole-file and relative URLs, inline data), and references
made by the real ``kerchunk`` package (in the peers' environment, by subprocess).
Malformed input must raise a `KerchunkFormatError` naming the file and the array.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xarray as xr
import zarr
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
from vzcore.parsers import (
    HDFParser,
    KerchunkFormatError,
    KerchunkJSONParser,
    KerchunkParquetParser,
    NetCDF3Parser,
)
from vzcore.writers import kerchunk_refs, write_kerchunk_json, write_kerchunk_parquet

FILES = (*NETCDF4_FILES, *NETCDF3_FILES)
RECORD_SIZES = {"parquet-1": 1, "parquet-3": 3, "parquet-1000000": 1_000_000}
FORMATS = ("json", *RECORD_SIZES)
PEERS_PYTHON = Path("/tmp/vz-peers/bin/python")

type Parser = Callable[[str, vc.ObjectStoreRegistry], vc.VirtualGroup]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("kerchunk-parser-corpus")
    write_corpus(folder)
    return folder


@pytest.fixture(scope="module")
def registry(folder: Path) -> vc.ObjectStoreRegistry:
    return local_registry(folder)


def _source_parser(name: str) -> Parser:
    return NetCDF3Parser() if name in NETCDF3_FILES else HDFParser(loadable_variables=STRINGS)


def write_and_parse(
    group: vc.VirtualGroup, fmt: str, where: Path, registry: vc.ObjectStoreRegistry
) -> vc.VirtualGroup:
    """``group`` written in format ``fmt`` under ``where`` and parsed back with vz."""
    if fmt == "json":
        path = write_kerchunk_json(group, where / "refs.json")
        return KerchunkJSONParser()(f"file://{path}", registry)
    path = write_kerchunk_parquet(group, where / "refs.parq", record_size=RECORD_SIZES[fmt])
    return KerchunkParquetParser()(f"file://{path}", registry)


def read_back(
    group: vc.VirtualGroup, registry: vc.ObjectStoreRegistry, path: str = ""
) -> xr.Dataset:
    """One group of ``group`` read by xarray through a `ManifestStore`."""
    store = vc.ManifestStore(group, registry=registry)
    return xr.open_zarr(store, group=path or None, consolidated=False).load()


# ---- what vz wrote --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", FILES)
def test_write_parse_write_gives_the_same_references(
    folder: Path, registry: vc.ObjectStoreRegistry, name: str, fmt: str
) -> None:
    original = _source_parser(name)(f"file://{folder / name}", registry)
    where = folder / f"out-{name}-{fmt}"
    parsed = write_and_parse(original, fmt, where, registry)
    assert kerchunk_refs(parsed) == kerchunk_refs(original)
    for group in GROUPS[name]:
        assert_same_values(
            read_back(parsed, registry, group), expected_dataset(folder / name, group)
        )


@pytest.mark.parametrize("fmt", FORMATS)
def test_loaded_coordinates_come_back_as_loaded_arrays(
    folder: Path, registry: vc.ObjectStoreRegistry, fmt: str
) -> None:
    dataset = vx.open_virtual_dataset(
        f"file://{folder / 'nc4_basic.nc'}",
        registry=registry,
        parser=HDFParser(loadable_variables=STRINGS),
    )
    original = dataset.vz.to_virtual_group()
    parsed = write_and_parse(original, fmt, folder / f"out-loaded-{fmt}", registry)
    assert kerchunk_refs(parsed) == kerchunk_refs(original)
    for name in ("time", "lat", "lon", "names"):
        loaded = parsed[name]
        assert isinstance(loaded, vc.LoadedArray)
        source = original[name]
        assert isinstance(source, vc.LoadedArray)
        np.testing.assert_array_equal(loaded.data, source.data)
    assert isinstance(parsed["tas"], vc.VirtualArray)
    assert_same_values(read_back(parsed, registry), expected_dataset(folder / "nc4_basic.nc"))


def test_group_attributes_and_nesting_survive(
    folder: Path, registry: vc.ObjectStoreRegistry
) -> None:
    original = HDFParser()(f"file://{folder / 'nc4_groups.nc'}", registry)
    parsed = write_and_parse(original, "parquet-3", folder / "out-nesting", registry)
    assert [p for p, _ in parsed.walk_groups()] == [p for p, _ in original.walk_groups()]
    for path, node in original.walk_groups():
        other = parsed[path] if path else parsed
        assert isinstance(other, vc.VirtualGroup)
        assert other.attributes == node.attributes
    for path, array in original.walk_arrays():
        got = parsed[path]
        assert isinstance(got, vc.VirtualArray)
        assert isinstance(array, vc.VirtualArray)
        assert got.manifest == array.manifest
        assert got.metadata.dimension_names == array.metadata.dimension_names


# ---- references written by hand ---------------------------------------------------------------

VALUES = np.arange(20, dtype="<i4") * 3 - 7
"""The array every hand-written reference set describes: 20 int32 in chunks of 5."""
HEADER = b"HEAD0123"  # the data file starts with 8 bytes that are not data
ZARRAY = {
    "zarr_format": 2,
    "shape": [20],
    "chunks": [5],
    "dtype": "<i4",
    "compressor": None,
    "filters": None,
    "fill_value": None,
    "order": "C",
}
METADATA: dict[str, Any] = {
    ".zgroup": json.dumps({"zarr_format": 2}),
    ".zattrs": json.dumps({"title": "by hand"}),
    "x/.zarray": json.dumps(ZARRAY),
    "x/.zattrs": json.dumps({"_ARRAY_DIMENSIONS": ["x"], "units": "m"}),
}


@pytest.fixture
def hand(tmp_path: Path) -> HandMade:
    return HandMade(tmp_path)


class HandMade:
    """A folder with ``data.bin`` (header + VALUES) and a registry for it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / "data.bin").write_bytes(HEADER + VALUES.tobytes())
        for index in range(4):
            (folder / f"part{index}.bin").write_bytes(VALUES[5 * index : 5 * index + 5].tobytes())
        self.registry = local_registry(folder)
        self.data_url = f"file://{folder}/data.bin"

    def chunk(self, index: int) -> list[Any]:
        return [self.data_url, len(HEADER) + 20 * index, 20]

    def refs_json(self, document: Any, name: str = "refs.json") -> str:
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document))
        return f"file://{path}"

    def parse_json(self, document: Any, name: str = "refs.json") -> vc.VirtualGroup:
        return KerchunkJSONParser()(self.refs_json(document, name), self.registry)

    def parquet(
        self, table: pa.Table | bytes | None, *, zmetadata: Any = None, name: str = "refs.parq"
    ) -> str:
        root = self.folder / name
        shutil.rmtree(root, ignore_errors=True)
        (root / "x").mkdir(parents=True)
        if zmetadata is None:
            zmetadata = {
                "metadata": {k: json.loads(v) for k, v in METADATA.items()},
                "record_size": 4,
            }
        if zmetadata is not False:
            text = zmetadata if isinstance(zmetadata, str) else json.dumps(zmetadata)
            (root / ".zmetadata").write_text(text)
        if isinstance(table, bytes):
            (root / "x" / "refs.0.parq").write_bytes(table)
        elif table is not None:
            pq.write_table(table, root / "x" / "refs.0.parq")
        return f"file://{root}"

    def parse_parquet(self, table: pa.Table | bytes | None, **options: Any) -> vc.VirtualGroup:
        return KerchunkParquetParser()(self.parquet(table, **options), self.registry)


def assert_values(group: vc.VirtualGroup, registry: vc.ObjectStoreRegistry) -> None:
    """``x`` holds VALUES, read by vz and by zarr through a `ManifestStore`."""
    np.testing.assert_array_equal(vc.read_array(group["x"], registry), VALUES)  # type: ignore[arg-type]
    store = vc.ManifestStore(group, registry=registry)
    np.testing.assert_array_equal(zarr.open_array(store, path="x", mode="r")[...], VALUES)
    assert group.attributes["title"] == "by hand"
    assert group["x"].metadata.dimension_names == ("x",)  # type: ignore[union-attr]


def test_version_1(hand: HandMade) -> None:
    refs = {**METADATA, **{f"x/{i}": hand.chunk(i) for i in range(4)}}
    assert_values(hand.parse_json({"version": 1, "refs": refs}), hand.registry)


def test_version_0_has_no_version_key(hand: HandMade) -> None:
    refs = {**METADATA, **{f"x/{i}": hand.chunk(i) for i in range(4)}}
    assert_values(hand.parse_json(refs), hand.registry)


def test_metadata_as_objects(hand: HandMade) -> None:
    refs = {k: json.loads(v) for k, v in METADATA.items()}
    refs |= {f"x/{i}": hand.chunk(i) for i in range(4)}
    assert_values(hand.parse_json({"version": 1, "refs": refs}), hand.registry)


def test_templates(hand: HandMade) -> None:
    folder = f"file://{hand.folder}"
    refs = {
        **METADATA,
        "x/0": ["{{u}}", 8, 20],
        "x/1": ["{{u}}", 28, 20],
        "x/2": ["{{ root }}/part{{n}}.bin", 0, 20],
        "x/3": [f"{folder}/part3.bin", 0, 20],
    }
    document = {
        "version": 1,
        "templates": {"u": hand.data_url, "root": folder, "n": "2"},
        "refs": refs,
    }
    group = hand.parse_json(document)
    assert_values(group, hand.registry)
    x = group["x"]
    assert isinstance(x, vc.VirtualArray)
    assert x.manifest.to_entries()["2"]["path"] == f"{folder}/part2.bin"


def test_gen_with_a_range_and_arithmetic(hand: HandMade) -> None:
    generator = {
        "key": "x/{{i}}",
        "url": hand.data_url,
        "offset": "{{(i + 1) * 20 - 12}}",
        "length": "20",
        "dimensions": {"i": {"start": 0, "stop": 4, "step": 1}},
    }
    group = hand.parse_json({"version": 1, "gen": [generator], "refs": METADATA})
    assert_values(group, hand.registry)


def test_gen_with_an_explicit_list_and_a_step(hand: HandMade) -> None:
    generators = [
        {
            "key": "x/{{i}}",
            "url": f"file://{hand.folder}/part{{{{i}}}}.bin",
            "offset": "0",
            "length": "20",
            "dimensions": {"i": [0, 3]},
        },
        {
            "key": "x/{{j}}",
            "url": hand.data_url,
            "offset": "{{8 + j * 20}}",
            "length": "{{4 * 5}}",
            "dimensions": {"j": {"start": 1, "stop": 3}},
        },
    ]
    group = hand.parse_json({"version": 1, "gen": generators, "refs": METADATA})
    assert_values(group, hand.registry)
    x = group["x"]
    assert isinstance(x, vc.VirtualArray)
    assert x.manifest.to_entries()["3"]["path"] == f"file://{hand.folder}/part3.bin"


def test_gen_can_use_templates(hand: HandMade) -> None:
    generator = {
        "key": "x/{{i}}",
        "url": "{{u}}",
        "offset": "{{i * 20 + 8}}",
        "length": "20",
        "dimensions": {"i": {"stop": 4}},
    }
    document = {"version": 1, "templates": {"u": hand.data_url}, "gen": [generator]}
    assert_values(hand.parse_json({**document, "refs": METADATA}), hand.registry)


def test_whole_file_references_take_the_file_size(hand: HandMade) -> None:
    refs = {**METADATA, **{f"x/{i}": [f"file://{hand.folder}/part{i}.bin"] for i in range(4)}}
    group = hand.parse_json({"version": 1, "refs": refs})
    x = group["x"]
    assert isinstance(x, vc.VirtualArray)
    assert {e["length"] for e in x.manifest.to_entries().values()} == {20}
    assert {e["offset"] for e in x.manifest.to_entries().values()} == {0}
    assert_values(group, hand.registry)


def test_whole_file_references_in_parquet(hand: HandMade) -> None:
    urls = [f"file://{hand.folder}/part{i}.bin" for i in range(4)]
    table = pa.table({"path": urls, "offset": [0] * 4, "size": [0] * 4})
    assert_values(hand.parse_parquet(table), hand.registry)


def test_relative_urls_are_relative_to_the_references_file(hand: HandMade) -> None:
    refs = {
        **METADATA,
        "x/0": ["data.bin", 8, 20],
        "x/1": ["./data.bin", 28, 20],
        "x/2": ["sub/../part2.bin", 0, 20],
        "x/3": ["part3.bin"],
    }
    group = hand.parse_json({"version": 1, "refs": refs})
    x = group["x"]
    assert isinstance(x, vc.VirtualArray)
    assert x.manifest.to_entries()["0"]["path"] == hand.data_url
    assert_values(group, hand.registry)
    nested = hand.parse_json(
        {"version": 1, "refs": {**METADATA, **{f"x/{i}": [f"../part{i}.bin"] for i in range(4)}}},
        name="refs/nested.json",
    )
    assert_values(nested, hand.registry)


@pytest.mark.parametrize("form", ["url/", "url", "path"])
def test_fs_root_resolves_relative_paths(hand: HandMade, form: str) -> None:
    """References written relative to a root elsewhere than the references file."""
    fs_root = {
        "url/": f"file://{hand.folder}/",
        "url": f"file://{hand.folder}",
        "path": str(hand.folder),
    }[form]
    refs = {
        **METADATA,
        "x/0": ["data.bin", 8, 20],
        "x/1": ["./data.bin", 28, 20],
        "x/2": ["sub/../part2.bin", 0, 20],
        "x/3": ["part3.bin"],  # whole file: sized at the resolved URL
    }
    url = hand.refs_json({"version": 1, "refs": refs}, name="refs/elsewhere.json")
    with pytest.raises(vc.SourceNotFoundError, match=r"refs/part3\.bin"):
        KerchunkJSONParser()(url, hand.registry)  # relative to refs/: not there
    group = KerchunkJSONParser(fs_root=fs_root)(url, hand.registry)
    x = group["x"]
    assert isinstance(x, vc.VirtualArray)
    assert vc.algebra.referenced_paths(x) == [
        hand.data_url,
        *(f"file://{hand.folder}/part{i}.bin" for i in (2, 3)),
    ]
    assert_values(group, hand.registry)
    table = pa.table(
        {"path": ["data.bin"] * 4, "offset": [8 + 20 * i for i in range(4)], "size": [20] * 4}
    )
    parsed = KerchunkParquetParser(fs_root=fs_root)(hand.parquet(table), hand.registry)
    assert vc.algebra.referenced_paths(parsed) == [hand.data_url]
    assert_values(parsed, hand.registry)


def test_fs_root_of_an_object_store(hand: HandMade) -> None:
    refs = {
        **METADATA,
        "x/0": ["data.bin", 8, 20],
        "x/1": ["./deep/../data.bin", 28, 20],
        "x/2": ["sub/part2.bin", 0, 20],
        "x/3": [f"file://{hand.folder}/part3.bin", 0, 20],  # absolute: kept
    }
    parser = KerchunkJSONParser(fs_root="s3://bucket/root")
    x = parser(hand.refs_json({"version": 1, "refs": refs}), hand.registry)["x"]
    assert isinstance(x, vc.VirtualArray)
    assert [e["path"] for e in x.manifest.to_entries().values()] == [
        "s3://bucket/root/data.bin",
        "s3://bucket/root/data.bin",
        "s3://bucket/root/sub/part2.bin",
        f"file://{hand.folder}/part3.bin",
    ]


@pytest.mark.parametrize("fs_root", ["data/", "bucket/refs", ""])
def test_fs_root_must_be_absolute(fs_root: str) -> None:
    for parser in (KerchunkJSONParser, KerchunkParquetParser):
        with pytest.raises(vc.VirtualizationError, match="must be an absolute URL or path"):
            parser(fs_root=fs_root)


def test_skip_variables_are_not_parsed(hand: HandMade) -> None:
    bad = {**ZARRAY, "shape": [4], "chunks": [2]}
    refs = {
        **METADATA,
        **{f"x/{i}": hand.chunk(i) for i in range(4)},
        # a reference whose offset is no integer: unreadable unless skipped
        "bad/.zarray": json.dumps(bad),
        "bad/0": "base64:AAECAwQFBgc=",
        "bad/1": [hand.data_url, "eight", 20],
        "sub/.zgroup": json.dumps({"zarr_format": 2}),
        "sub/x/.zarray": json.dumps(ZARRAY),
        **{f"sub/x/{i}": hand.chunk(i) for i in range(4)},
    }
    url = hand.refs_json({"version": 1, "refs": refs})
    with pytest.raises(KerchunkFormatError, match="'bad'"):
        KerchunkJSONParser()(url, hand.registry)
    by_name = KerchunkJSONParser(skip_variables=["bad", "x"])(url, hand.registry)
    assert set(by_name.arrays) == set()
    assert set(by_name.groups["sub"].arrays) == set()
    by_path = KerchunkJSONParser(skip_variables=("bad", "sub/x"))(url, hand.registry)
    assert set(by_path.arrays) == {"x"}
    assert set(by_path.groups["sub"].arrays) == set()
    assert_values(by_path, hand.registry)
    with pytest.raises(vc.VirtualizationError, match="not one string"):
        KerchunkJSONParser(skip_variables="bad")


def test_skip_variables_in_parquet_reads_no_records(hand: HandMade) -> None:
    metadata = {k: json.loads(v) for k, v in METADATA.items()}
    metadata["bad/.zarray"] = ZARRAY  # no records written for it
    metadata["bad/.zattrs"] = {"_ARRAY_DIMENSIONS": ["x"]}
    table = pa.table(
        {"path": [hand.data_url] * 4, "offset": [8 + 20 * i for i in range(4)], "size": [20] * 4}
    )
    root = hand.parquet(table, zmetadata={"metadata": metadata, "record_size": 4})
    with pytest.raises(vc.SourceNotFoundError, match="'bad'"):
        KerchunkParquetParser()(root, hand.registry)
    group = KerchunkParquetParser(skip_variables=["bad"])(root, hand.registry)
    assert set(group.arrays) == {"x"}
    assert_values(group, hand.registry)


def test_inline_base64_makes_a_loaded_array(hand: HandMade) -> None:
    refs = {
        **METADATA,
        **{
            f"x/{i}": "base64:" + base64.b64encode(VALUES[5 * i : 5 * i + 5].tobytes()).decode()
            for i in range(4)
        },
    }
    group = hand.parse_json({"version": 1, "refs": refs})
    assert isinstance(group["x"], vc.LoadedArray)
    assert_values(group, hand.registry)


def test_inline_raw_text_makes_a_loaded_array(hand: HandMade) -> None:
    text = "hello, vz!\x00\x01"
    zarray = {**ZARRAY, "shape": [len(text)], "chunks": [4], "dtype": "|u1"}
    refs = {
        ".zgroup": '{"zarr_format": 2}',
        "t/.zarray": json.dumps(zarray),
        **{f"t/{i}": text[4 * i : 4 * i + 4] for i in range(3)},
    }
    group = hand.parse_json({"version": 1, "refs": refs})
    array = group["t"]
    assert isinstance(array, vc.LoadedArray)
    assert array.data.tobytes() == text.encode()


def test_inline_0d_array(hand: HandMade) -> None:
    zarray = {**ZARRAY, "shape": [], "chunks": [], "dtype": "<f8"}
    refs = {
        ".zgroup": '{"zarr_format": 2}',
        "s/.zarray": json.dumps(zarray),
        "s/0": "base64:" + base64.b64encode(np.float64(2.5).tobytes()).decode(),
    }
    array = hand.parse_json({"version": 1, "refs": refs})["s"]
    assert isinstance(array, vc.LoadedArray)
    assert array.data[()] == 2.5


def test_inline_parquet_raw_makes_a_loaded_array(hand: HandMade) -> None:
    raws = [VALUES[5 * i : 5 * i + 5].tobytes() for i in range(4)]
    table = pa.table(
        {
            "path": pa.nulls(4, pa.string()),
            "offset": [0] * 4,
            "size": [0] * 4,
            "raw": pa.array(raws, pa.binary()),
        }
    )
    group = hand.parse_parquet(table)
    assert isinstance(group["x"], vc.LoadedArray)
    assert_values(group, hand.registry)


def test_missing_chunks_read_as_fill(hand: HandMade) -> None:
    zarray = {**ZARRAY, "fill_value": -1}
    refs = {**METADATA, "x/.zarray": json.dumps(zarray), "x/0": hand.chunk(0), "x/3": hand.chunk(3)}
    group = hand.parse_json({"version": 1, "refs": refs})
    expected = VALUES.copy()
    expected[5:15] = -1
    np.testing.assert_array_equal(vc.read_array(group["x"], hand.registry), expected)  # type: ignore[arg-type]
    x = group["x"]
    assert isinstance(x, vc.VirtualArray)
    assert x.manifest.n_missing == 2
    # xarray reads the zarr v2 fill value as the CF _FillValue: it is kept as one
    assert x.metadata.encoding["_FillValue"] == -1


def test_parquet_by_hand(hand: HandMade) -> None:
    table = pa.table(
        {
            "path": pa.array([hand.data_url] * 4).dictionary_encode(),
            "offset": pa.array([8 + 20 * i for i in range(4)], pa.int64()),
            "size": pa.array([20] * 4, pa.int64()),
            "raw": pa.nulls(4, pa.binary()),
        }
    )
    assert_values(hand.parse_parquet(table), hand.registry)


# ---- references made by the kerchunk package ---------------------------------------------------

_MAKE_WITH_KERCHUNK = """
import json, sys
import fsspec
from kerchunk.df import refs_to_dataframe
from kerchunk.hdf import SingleHdf5ToZarr
source, out = sys.argv[1], sys.argv[2]
for threshold in (0, 64):
    with fsspec.open(source, "rb") as f:
        refs = SingleHdf5ToZarr(f, "file://" + source, inline_threshold=threshold).translate()
    with open(f"{out}/kerchunk-{threshold}.json", "w") as f:
        json.dump(refs, f)
    refs_to_dataframe(refs, f"{out}/kerchunk-{threshold}.parq", record_size=3)
"""


def _kerchunk_source(path: Path) -> None:
    """A netCDF4 file kerchunk can translate (no strings) with small and large variables."""
    rng = np.random.default_rng(3)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.title = "for kerchunk"
        ds.createDimension("time", None)
        ds.createDimension("lat", 5)
        ds.createDimension("lon", 7)
        time = ds.createVariable("time", "i4", ("time",))
        time.units = "days since 1990-01-01"
        time[:] = np.arange(6)
        lat = ds.createVariable("lat", "f8", ("lat",), contiguous=True)
        lat[:] = np.linspace(-40, 40, 5)
        lon = ds.createVariable("lon", np.dtype(">f8"), ("lon",), contiguous=True, endian="big")
        lon[:] = np.arange(7) * 30.0
        tas = ds.createVariable(
            "tas",
            "f4",
            ("time", "lat", "lon"),
            zlib=True,
            shuffle=True,
            chunksizes=(4, 5, 4),
            fill_value=np.float32(-999.0),
        )
        values = rng.standard_normal((6, 5, 7)).astype("f4")
        values[0, 0, 0] = -999.0
        tas[:] = values
        packed = ds.createVariable("packed", "i2", ("lat", "lon"), contiguous=True)
        packed.scale_factor = 0.5
        packed.add_offset = 100.0
        packed.set_auto_maskandscale(False)
        packed[:] = np.arange(35, dtype="i2").reshape(5, 7)
        scalar = ds.createVariable("scalar", "f8", ())
        scalar[...] = 1.25
        sub = ds.createGroup("sub")
        sub.createDimension("n", 3)
        flags = sub.createVariable("flags", "u1", ("n",))
        flags[:] = [1, 0, 1]


@pytest.fixture(scope="module")
def kerchunk_made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not PEERS_PYTHON.exists():
        pytest.skip(f"no {PEERS_PYTHON} with kerchunk to make reference files")
    folder = tmp_path_factory.mktemp("kerchunk-made")
    _kerchunk_source(folder / "source.nc")
    result = subprocess.run(
        [str(PEERS_PYTHON), "-c", _MAKE_WITH_KERCHUNK, str(folder / "source.nc"), str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if "No module named" in result.stderr:
        pytest.skip(f"{PEERS_PYTHON} cannot import kerchunk: {result.stderr[-300:]}")
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


@pytest.mark.parametrize("threshold", [0, 64])
@pytest.mark.parametrize("fmt", ["json", "parq"])
def test_references_made_by_kerchunk(kerchunk_made: Path, fmt: str, threshold: int) -> None:
    registry = local_registry(kerchunk_made)
    parser: Parser = KerchunkJSONParser() if fmt == "json" else KerchunkParquetParser()
    group = parser(f"file://{kerchunk_made}/kerchunk-{threshold}.{fmt}", registry)
    kinds = {path: type(array) for path, array in group.walk_arrays()}
    assert kinds["tas"] is vc.VirtualArray
    if threshold:
        # kerchunk inlined the small variables whole: they come back in memory
        assert kinds["scalar"] is kinds["lat"] is kinds["sub/flags"] is vc.LoadedArray
    else:
        assert set(kinds.values()) == {vc.VirtualArray}
    for path in ("", "sub"):
        got = read_back(group, registry, path)
        # kerchunk names a subgroup's dimensions by their full path ("sub/n")
        got = got.rename_dims({d: str(d).rsplit("/", 1)[-1] for d in got.dims if "/" in str(d)})
        assert_same_values(got, expected_dataset(kerchunk_made / "source.nc", path))


def test_kerchunk_json_and_parquet_give_the_same_group(kerchunk_made: Path) -> None:
    registry = local_registry(kerchunk_made)
    from_json = KerchunkJSONParser()(f"file://{kerchunk_made}/kerchunk-0.json", registry)
    from_parquet = KerchunkParquetParser()(f"file://{kerchunk_made}/kerchunk-0.parq", registry)
    assert kerchunk_refs(from_json) == kerchunk_refs(from_parquet)
    direct = HDFParser()(f"file://{kerchunk_made}/source.nc", registry)
    for path, array in direct.walk_arrays():
        parsed = from_json[path]
        assert isinstance(parsed, vc.VirtualArray)
        assert isinstance(array, vc.VirtualArray)
        if parsed.metadata.chunk_shape == array.metadata.chunk_shape:
            assert parsed.manifest == array.manifest, path
            continue
        # HDFParser trims an unfiltered chunk longer than the array to its prefix
        # (kerchunk keeps the whole chunk): same chunk, same start, fewer bytes.
        paths, offsets, lengths = parsed.manifest.to_arrays()
        np.testing.assert_array_equal(paths, array.manifest.to_arrays()[0])
        np.testing.assert_array_equal(offsets, array.manifest.to_arrays()[1])
        assert (array.manifest.to_arrays()[2] <= lengths).all(), path


# ---- malformed input -------------------------------------------------------------------------


def _json_case(document: Any) -> Callable[[HandMade], Any]:
    return lambda hand: hand.parse_json(document)


MALFORMED_JSON: dict[str, tuple[Any, str]] = {
    "refs not an object": ({"version": 1, "refs": [1, 2]}, "'refs' must be a JSON object"),
    "document not an object": ([1, 2], "must be a JSON object"),
    "version 2": ({"version": 2, "refs": METADATA}, "version 2"),
    "url not a string": (
        {"version": 1, "refs": {**METADATA, "x/0": [5, 0, 20]}},
        "array 'x': chunk '0' has a malformed reference",
    ),
    "two-element reference": (
        {"version": 1, "refs": {**METADATA, "x/0": ["file:///a", 8]}},
        "array 'x': chunk '0'",
    ),
    "number instead of a reference": (
        {"version": 1, "refs": {**METADATA, "x/0": 5}},
        "array 'x': chunk '0'",
    ),
    "offset not a number": (
        {"version": 1, "refs": {**METADATA, "x/0": ["file:///a", "abc", 20]}},
        "array 'x'",
    ),
    "offset null": (
        {"version": 1, "refs": {**METADATA, "x/0": ["file:///a", None, 20]}},
        "array 'x'",
    ),
    "negative offset": (
        {"version": 1, "refs": {**METADATA, "x/0": ["file:///a", -8, 20]}},
        "array 'x': negative offset",
    ),
    "negative length": (
        {"version": 1, "refs": {**METADATA, "x/0": ["file:///a", 8, -20]}},
        "array 'x': negative",
    ),
    "offset beyond int64": (
        {"version": 1, "refs": {**METADATA, "x/0": ["file:///a", 2**64, 20]}},
        "array 'x'",
    ),
    "chunk of no array": (
        {"version": 1, "refs": {**METADATA, "y/0": ["file:///a", 8, 20]}},
        "'y/0' belongs to no array",
    ),
    ".zarray not JSON": (
        {"version": 1, "refs": {**METADATA, "x/.zarray": "{oops"}},
        "x/.zarray is not valid JSON",
    ),
    ".zarray not an object": (
        {"version": 1, "refs": {**METADATA, "x/.zarray": "[1]"}},
        "x/.zarray must be a JSON object",
    ),
    ".zarray incomplete": (
        {"version": 1, "refs": {**METADATA, "x/.zarray": '{"shape": [20]}'}},
        "array 'x': invalid .zarray: missing 'chunks'; missing 'dtype'",
    ),
    ".zarray with a bad dtype": (
        {"version": 1, "refs": {**METADATA, "x/.zarray": json.dumps({**ZARRAY, "dtype": "<q9"})}},
        "array 'x'",
    ),
    "chunk key outside the grid": (
        {"version": 1, "refs": {**METADATA, "x/9": ["file:///a", 8, 20]}},
        "array 'x'",
    ),
    "chunk key not numbers": (
        {"version": 1, "refs": {**METADATA, "x/a.b": ["file:///a", 8, 20]}},
        "array 'x'",
    ),
    "gen without dimensions": (
        {"version": 1, "gen": [{"key": "x/{{i}}", "url": "file:///a"}], "refs": METADATA},
        "'gen' entry needs",
    ),
    ".zattrs not an object": (
        {"version": 1, "refs": {**METADATA, "x/.zattrs": "[]"}},
        "x/.zattrs must be a JSON object",
    ),
}


@pytest.mark.parametrize("case", MALFORMED_JSON)
def test_malformed_json_names_the_file_and_array(hand: HandMade, case: str) -> None:
    document, message = MALFORMED_JSON[case]
    url = hand.refs_json(document)
    with pytest.raises(KerchunkFormatError, match=message) as caught:
        KerchunkJSONParser()(url, hand.registry)
    assert url in str(caught.value)
    assert isinstance(caught.value, vc.VirtualizationError)


def test_invalid_json_text_names_the_file(hand: HandMade) -> None:
    path = hand.folder / "broken.json"
    path.write_text('{"version": 1, "refs": {')
    with pytest.raises(KerchunkFormatError, match="not valid JSON") as caught:
        KerchunkJSONParser()(f"file://{path}", hand.registry)
    assert f"file://{path}" in str(caught.value)


def test_a_missing_references_file_names_it(hand: HandMade) -> None:
    url = f"file://{hand.folder}/absent.json"
    with pytest.raises(vc.SourceNotFoundError, match=r"absent\.json"):
        KerchunkJSONParser()(url, hand.registry)


def test_a_missing_references_file_is_not_called_invalid_json(hand: HandMade) -> None:
    with pytest.raises(vc.SourceNotFoundError) as caught:
        KerchunkJSONParser()(f"file://{hand.folder}/absent.json", hand.registry)
    assert "not valid JSON" not in str(caught.value)


@pytest.mark.parametrize("offset", [8.5, True], ids=["float", "bool"])
def test_non_integer_offsets_are_refused(hand: HandMade, offset: Any) -> None:
    url = hand.refs_json({"version": 1, "refs": {**METADATA, "x/0": [hand.data_url, offset, 20]}})
    with pytest.raises(KerchunkFormatError, match="array 'x'"):
        KerchunkJSONParser()(url, hand.registry)


def test_a_refused_gen_expression_names_the_file(hand: HandMade) -> None:
    generator = {
        "key": "x/{{i}}",
        "url": hand.data_url,
        "offset": "{{i ** 2}}",
        "length": "20",
        "dimensions": {"i": [0]},
    }
    url = hand.refs_json({"version": 1, "gen": [generator], "refs": METADATA})
    with pytest.raises(KerchunkFormatError, match="unsupported template expression") as caught:
        KerchunkJSONParser()(url, hand.registry)
    assert url in str(caught.value)


def test_inline_data_of_the_wrong_size_names_the_array(hand: HandMade) -> None:
    url = hand.refs_json({"version": 1, "refs": {**METADATA, "x/0": "base64:AAAA"}})
    with pytest.raises(KerchunkFormatError, match="array 'x'"):
        KerchunkJSONParser()(url, hand.registry)


def _table(paths: list[str | None], offsets: list[Any], sizes: list[Any], **extra: Any) -> pa.Table:
    return pa.table(
        {"path": pa.array(paths, pa.string()), "offset": offsets, "size": sizes, **extra}
    )


def test_malformed_parquet_names_the_folder_and_array(hand: HandMade) -> None:
    url = hand.data_url
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "negative offset": (
            {"table": _table([url] * 4, [-8, 28, 48, 68], [20] * 4)},
            "array 'x': negative offset",
        ),
        "missing columns": ({"table": pa.table({"path": [url] * 4})}, "array 'x': .* lacks"),
        "not parquet": ({"table": b"not a parquet file"}, "array 'x': cannot read"),
        "missing records": ({"table": None}, "array 'x': cannot read .*refs.0.parq"),
        "too few records": (
            {
                "table": _table([url] * 2, [8, 28], [20] * 2),
                "zmetadata": {
                    "metadata": {k: json.loads(v) for k, v in METADATA.items()},
                    "record_size": 2,
                },
            },
            "array 'x'",
        ),
        "missing .zmetadata": ({"table": None, "zmetadata": False}, r"\.zmetadata"),
        ".zmetadata not JSON": ({"table": None, "zmetadata": "{oops"}, r"malformed \.zmetadata"),
        ".zmetadata without record_size": (
            {"table": None, "zmetadata": {"metadata": {}}},
            r"malformed \.zmetadata",
        ),
        "record_size 0": (
            {"table": None, "zmetadata": {"metadata": {}, "record_size": 0}},
            r"malformed \.zmetadata",
        ),
        "bad .zarray": (
            {
                "table": None,
                "zmetadata": {"metadata": {".zgroup": {}, "x/.zarray": "{oops"}, "record_size": 4},
            },
            r"x/\.zarray is not valid JSON",
        ),
        "inline and referenced chunks in one row": (
            {
                "table": _table(
                    [url, url, url, url],
                    [0, 28, 48, 68],
                    [0, 20, 20, 20],
                    raw=pa.array([bytes(range(20)), None, None, None], pa.binary()),
                )
            },
            "array 'x': a chunk has both a path and inline bytes",
        ),
    }
    for case, (options, message) in cases.items():
        table = options.pop("table")
        root = hand.parquet(table, name=f"{case}.parq", **options)
        absent = case in ("missing records", "missing .zmetadata", "too few records")
        kind = vc.SourceNotFoundError if absent else KerchunkFormatError
        with pytest.raises(kind, match=message) as caught:
            KerchunkParquetParser()(root, hand.registry)
        assert root in str(caught.value), case


def test_float_offsets_in_parquet_are_a_format_error(hand: HandMade) -> None:
    table = _table([hand.data_url] * 4, [8.5, 28.0, 48.0, 68.0], [20.0] * 4)
    with pytest.raises(KerchunkFormatError, match="array 'x'"):
        hand.parse_parquet(table)


# ---- URLs outside the registry -----------------------------------------------------------------


def test_a_references_file_outside_the_registry(hand: HandMade, tmp_path_factory: Any) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "refs.json").write_text(json.dumps({"version": 1, "refs": METADATA}))
    with pytest.raises(vc.UnregisteredURLError):
        KerchunkJSONParser()(f"file://{elsewhere}/refs.json", hand.registry)
    with pytest.raises(vc.UnregisteredURLError):
        KerchunkParquetParser()(f"file://{elsewhere}/refs.parq", hand.registry)


def test_chunks_outside_the_registry_are_refused(hand: HandMade) -> None:
    refs = {**METADATA, **{f"x/{i}": ["file:///etc/passwd", 0, 20] for i in range(4)}}
    group = hand.parse_json({"version": 1, "refs": refs})
    with pytest.raises(vc.UnregisteredURLError, match="/etc/passwd"):
        vc.ManifestStore(group, registry=hand.registry)
    with pytest.raises(vc.UnregisteredURLError):
        vc.read_array(group["x"], hand.registry)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "reference",
    [["file:///etc/passwd"], ["../../../../../../etc/passwd"]],
    ids=["absolute", "dots"],
)
def test_whole_file_references_outside_the_registry(hand: HandMade, reference: list[str]) -> None:
    """Sizing a whole-file reference would read outside the registry: refused."""
    refs = {**METADATA, "x/0": reference}
    with pytest.raises(vc.UnregisteredURLError):
        hand.parse_json({"version": 1, "refs": refs})


def test_constant_inline_chunks_among_references_are_missing_chunks(tmp_path: Path) -> None:
    """vz writes missing chunks of an array without a CF _FillValue as one inline chunk of the
    fill value; read back, they are missing chunks with that fill value again."""
    fill = base64.b64encode(np.full(5, -7.5, "<f4").tobytes()).decode()
    refs = {
        "version": 1,
        "refs": {
            ".zgroup": '{"zarr_format": 2}',
            "x/.zarray": json.dumps(
                {
                    "shape": [10],
                    "chunks": [5],
                    "dtype": "<f4",
                    "compressor": None,
                    "filters": None,
                    "fill_value": None,
                    "order": "C",
                    "zarr_format": 2,
                }
            ),
            "x/.zattrs": '{"_ARRAY_DIMENSIONS": ["x"]}',
            "x/0": ["file:///a", 8, 20],
            "x/1": f"base64:{fill}",
        },
    }
    path = tmp_path / "refs.json"
    path.write_text(json.dumps(refs))
    registry = vc.ObjectStoreRegistry.for_urls([f"file://{path}", "file:///a"])
    array = KerchunkJSONParser()(f"file://{path}", registry)["x"]
    assert isinstance(array, vc.VirtualArray)
    assert array.manifest.n_missing == 1
    assert array.metadata.fill_value == np.float32(-7.5)
