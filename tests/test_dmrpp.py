"""DMRPPParser: DMR++ sidecars read back equal to h5py, real documents from pydap, hostile XML.

Documents for files made here come from the files' own chunk index
(`tests.dmrpp_maker`); every array is read through `ManifestStore` (or loaded) and
compared with h5py. pydap's wheel carries real DMR++ documents made by Hyrax's
build_dmrpp; their structure is checked against what the XML itself declares.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import h5py
import numpy as np
import pytest
import xarray as xr
import zarr
from tests.cf_corpus import icechunk_repository
from tests.dmrpp_maker import make_dmrpp
from tests.s3_server import S3Bucket
from tests.sample_packages import sdist_members, wheel_members

import vzcore as vc
import vzxarray as vx
from vzcore.parsers import (
    DMRPPFormatError,
    DMRPPParser,
    DMRPPUnsupportedError,
    HDFParser,
    detect_parser,
)
from vzcore.writers import write_icechunk, write_kerchunk_json

RNG = np.random.default_rng(7)


def _values() -> dict[str, np.ndarray]:
    return {
        "deflate_shuffle": RNG.integers(0, 1000, (40, 30)).astype("<i4"),
        "fletcher_last": RNG.normal(size=(17, 9)).astype("<f8"),
        "big_endian": np.arange(60, dtype=">i2").reshape(6, 10),
        "contiguous": RNG.normal(size=(5, 7)).astype("<f4"),
        "compact": np.arange(6, dtype="<u2"),
        "scalar": np.array(3.5),
        "partial": np.zeros((12, 12), dtype="<f4"),
    }


def _write(path: Path) -> dict[str, np.ndarray]:
    values = _values()
    with h5py.File(path, "w") as f:
        f.attrs["title"] = "dmrpp test"
        f.attrs["version"] = np.int32(3)
        f.create_dataset(
            "deflate_shuffle", data=values["deflate_shuffle"], chunks=(16, 8), compression="gzip",
            compression_opts=6, shuffle=True,
        )  # fmt: skip
        f.create_dataset(
            "fletcher_last", data=values["fletcher_last"], chunks=(5, 9), compression="gzip",
            fletcher32=True, shuffle=True,
        )  # fmt: skip
        f.create_dataset("big_endian", data=values["big_endian"], chunks=(4, 4))
        f["big_endian"].attrs["units"] = "m"
        f["big_endian"].attrs["scale"] = np.float32(0.5)
        f.create_dataset("contiguous", data=values["contiguous"])
        space = h5py.h5s.create_simple((6,))
        plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        plist.set_layout(h5py.h5d.COMPACT)
        compact = h5py.h5d.create(f.id, b"compact", h5py.h5t.STD_U16LE, space, plist)
        compact.write(h5py.h5s.ALL, h5py.h5s.ALL, values["compact"])
        f.create_dataset("scalar", data=values["scalar"])
        partial = f.create_dataset("partial", shape=(12, 12), dtype="<f4", chunks=(5, 5),
                                   fillvalue=-9.0)  # fmt: skip
        partial[0:5, 0:5] = 1.0  # one chunk written, the others missing (fill value)
        group = f.create_group("inner/deeper")
        group.attrs["purpose"] = "nesting"
        group.create_dataset("x", data=np.arange(10.0), chunks=(3,), compression="gzip")
    with h5py.File(path, "r") as f:
        values["partial"] = f["partial"][()]
        values["inner/deeper/x"] = f["inner/deeper/x"][()]
    return values


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    folder = tmp_path_factory.mktemp("dmrpp")
    path = folder / "data.h5"
    values = _write(path)
    (folder / "data.h5.dmrpp").write_bytes(
        make_dmrpp(path, dimensions={"/deflate_shuffle": ["/y", "/x"]})
    )
    return path, values


def _read(group: vc.VirtualGroup, registry: vc.ObjectStoreRegistry, name: str) -> np.ndarray:
    array = group[name]
    if isinstance(array, vc.LoadedArray):
        return array.data
    store = vc.ManifestStore(group, registry=registry)
    return np.asarray(zarr.open_array(store, path=name, mode="r")[...])


def test_every_variable_reads_back_equal_to_h5py(
    sample: tuple[Path, dict[str, np.ndarray]],
) -> None:
    path, values = sample
    registry = vc.ObjectStoreRegistry.for_urls([str(path)])
    group = DMRPPParser()(f"{path}.dmrpp", registry)
    assert sorted(p for p, _ in group.walk_arrays()) == sorted(values)
    for name, expected in values.items():
        got = _read(group, registry, name)
        assert got.dtype.newbyteorder("=") == expected.dtype.newbyteorder("="), name
        np.testing.assert_array_equal(got, expected, name)
    assert isinstance(group["compact"], vc.LoadedArray)
    assert group["partial"].manifest.n_missing == 8  # type: ignore[union-attr]
    assert group.attributes["title"] == "dmrpp test"
    assert group.attributes["version"] == 3
    assert group["inner/deeper"].attributes["purpose"] == "nesting"  # type: ignore[union-attr]
    assert group["big_endian"].metadata.attributes["units"] == "m"  # type: ignore[union-attr]


def test_references_equal_what_the_hdf5_parser_finds(
    sample: tuple[Path, dict[str, np.ndarray]],
) -> None:
    """The same file through its sidecar and through h5py: the same chunks, codecs, fill."""
    path, _ = sample
    registry = vc.ObjectStoreRegistry.for_urls([str(path)])
    sidecar = DMRPPParser()(f"{path}.dmrpp", registry)
    direct = HDFParser()(str(path), registry)
    for name in ("deflate_shuffle", "fletcher_last", "big_endian", "partial", "inner/deeper/x"):
        ours, theirs = sidecar[name], direct[name]
        assert isinstance(ours, vc.VirtualArray)
        assert isinstance(theirs, vc.VirtualArray)
        assert ours.manifest == theirs.manifest, name
        assert ours.metadata.codecs == theirs.metadata.codecs, name
        assert ours.metadata.chunk_grid == theirs.metadata.chunk_grid, name


def test_named_and_anonymous_dimensions_open_in_xarray(
    sample: tuple[Path, dict[str, np.ndarray]],
) -> None:
    path, values = sample
    registry = vc.ObjectStoreRegistry.for_urls([str(path)])
    ds = vx.open_virtual_dataset(f"{path}.dmrpp", registry=registry, parser=DMRPPParser())
    assert ds["deflate_shuffle"].dims == ("y", "x")
    assert all(d.startswith("phony_dim_") for d in ds["fletcher_last"].dims)
    assert len(set(ds["partial"].dims)) == 2  # a square array has two dimensions
    loaded = xr.open_zarr(vc.ManifestStore(ds.vz.to_virtual_group(), registry=registry),
                          consolidated=False, mask_and_scale=False)  # fmt: skip
    np.testing.assert_array_equal(loaded["deflate_shuffle"].values, values["deflate_shuffle"])


def test_the_placeholder_href_a_relative_href_and_a_data_url_override(tmp_path: Path) -> None:
    moved = tmp_path / "archive"
    moved.mkdir()
    values = _write(moved / "renamed.h5")
    (tmp_path / "old.dmrpp").write_bytes(make_dmrpp(moved / "renamed.h5", href="gone/old.h5"))
    registry = vc.ObjectStoreRegistry.for_urls([str(tmp_path)])
    with pytest.raises(vc.ChunkFetchError):
        _read(DMRPPParser()(str(tmp_path / "old.dmrpp"), registry), registry, "big_endian")
    for parser in (
        DMRPPParser(data_url=str(moved / "renamed.h5")),
        DMRPPParser(data_url="archive/renamed.h5"),  # relative to the document
    ):
        group = parser(str(tmp_path / "old.dmrpp"), registry)
        np.testing.assert_array_equal(_read(group, registry, "big_endian"), values["big_endian"])
    (tmp_path / "rel.dmrpp").write_bytes(
        make_dmrpp(moved / "renamed.h5", href="archive/renamed.h5")
    )
    group = DMRPPParser()(str(tmp_path / "rel.dmrpp"), registry)
    np.testing.assert_array_equal(_read(group, registry, "partial"), values["partial"])


def test_chunks_in_other_files(tmp_path: Path) -> None:
    """Per-chunk ``href`` (as Hyrax writes for HDF4 data moved into side files)."""
    values = _write(tmp_path / "main.h5")
    other = tmp_path / "copy.h5"
    other.write_bytes((tmp_path / "main.h5").read_bytes())
    doc = make_dmrpp(tmp_path / "main.h5", href="main.h5", chunk_hrefs={"/big_endian": "copy.h5"})
    (tmp_path / "main.h5.dmrpp").write_bytes(doc)
    registry = vc.ObjectStoreRegistry.for_urls([str(tmp_path)])
    group = DMRPPParser()(str(tmp_path / "main.h5.dmrpp"), registry)
    assert set(group["big_endian"].manifest.paths.to_pylist()) == {f"file://{other}"}  # type: ignore[union-attr]
    np.testing.assert_array_equal(_read(group, registry, "big_endian"), values["big_endian"])
    assert set(group.sources) == {f"file://{tmp_path}/main.h5", f"file://{other}"}


def test_detected_and_read_from_s3(
    s3_bucket: S3Bucket, sample: tuple[Path, dict[str, np.ndarray]]
) -> None:
    path, values = sample
    s3_bucket.put_file("d/data.h5", path)
    url = s3_bucket.put("d/data.h5.dmrpp", Path(f"{path}.dmrpp").read_bytes())
    registry = s3_bucket.registry()
    parser = detect_parser(url, registry)
    assert isinstance(parser, DMRPPParser)
    group = parser(url, registry)
    for name in ("deflate_shuffle", "partial", "inner/deeper/x"):
        np.testing.assert_array_equal(_read(group, registry, name), values[name])


def test_kerchunk_and_icechunk_round_trips(
    sample: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:

    path, values = sample
    registry = vc.ObjectStoreRegistry.for_urls([str(path)])
    group = DMRPPParser(drop_variables=["scalar"])(f"{path}.dmrpp", registry)
    refs = write_kerchunk_json(group, tmp_path / "refs.json")
    code = (
        "import json, sys, fsspec, zarr, numpy as np\n"
        "fs = fsspec.filesystem('reference', fo=sys.argv[1], remote_protocol='file')\n"
        "root = zarr.open_group(zarr.storage.FsspecStore.from_mapper(fs.get_mapper('')), mode='r')\n"
        "print(json.dumps({k: np.asarray(root[k][...]).tolist() for k in sys.argv[2:]}))\n"
    )
    names = ["deflate_shuffle", "fletcher_last", "big_endian", "partial"]
    out = subprocess.run(
        [sys.executable, "-c", code, str(refs), *names], capture_output=True, text=True, check=True
    )
    for name, got in json.loads(out.stdout).items():
        np.testing.assert_array_equal(np.asarray(got, dtype=values[name].dtype), values[name])
    repository = icechunk_repository(path.parent)
    session = repository.writable_session("main")
    write_icechunk(group, session.store)
    session.commit("from a DMR++")
    root = zarr.open_group(repository.readonly_session("main").store, mode="r")
    for name in [*names, "compact", "inner/deeper/x"]:
        np.testing.assert_array_equal(root[name][...], values[name], name)


# ---- real documents (pydap's wheel) ---------------------------------------------------------


@pytest.fixture(scope="module")
def pydap_documents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pydap's DMR++ documents, side by side in one folder (the tests look for them there)."""
    folder = tmp_path_factory.mktemp("pydap")
    for member in wheel_members("pydap", "3.5.11", "*.dmrpp"):
        (folder / member.name).write_bytes(member.read_bytes())
    return folder


DAP = "{http://xml.opendap.org/ns/DAP/4.0#}"
PP = "{http://xml.opendap.org/dap/dmrpp/1.0.0#}"


# DAP4 atomic types -> numpy, by the DAP4 specification (independent of the parser's table).
_DAP_TYPES = {"Byte": "u1", "UInt8": "u1", "Int8": "i1", "Int16": "i2", "UInt16": "u2",
              "Int32": "i4", "UInt32": "u4", "Int64": "i8", "UInt64": "u8", "Float32": "f4",
              "Float64": "f8"}  # fmt: skip


@attrs.frozen
class _Declared:
    """What the XML declares for one variable."""

    kind: str
    shape: tuple[int, ...]
    dims: tuple[str, ...]
    attributes: dict[str, Any]  # name -> the <Value> texts, or a container's dict
    chunks: int


def _attribute_texts(node: ET.Element) -> dict[str, Any]:
    return {
        str(a.get("name")): _attribute_texts(a)
        if a.get("type") == "Container"
        else [v.text or "" for v in a.findall(f"{DAP}Value")]
        for a in node.findall(f"{DAP}Attribute")
    }


def _declared(path: Path) -> dict[str, _Declared]:
    """Per variable (by path): DAP type, shape, named dimensions, attributes, chunk count."""
    found: dict[str, _Declared] = {}
    sizes: dict[str, int] = {}

    def walk(node: ET.Element, prefix: str) -> None:
        for child in node.findall(f"{DAP}Dimension"):
            sizes[f"/{prefix}{child.get('name')}"] = int(child.get("size", "-1"))
        for child in node:
            kind = child.tag.removeprefix(DAP)
            name = f"{prefix}{child.get('name')}"
            if kind == "Group":
                walk(child, f"{name}/")
            elif kind not in ("Dimension", "Attribute") and child.tag.startswith(DAP):
                shape, dims = [], []
                for dim in child.findall(f"{DAP}Dim"):
                    named = dim.get("name")
                    if named is None:
                        shape.append(int(dim.get("size", "-1")))
                        continue
                    full = named if named.startswith("/") else f"/{prefix}{named}"
                    shape.append(sizes[full])
                    dims.append(named.rsplit("/", 1)[-1])
                attributes = _attribute_texts(child)
                chunks = child.find(f"{PP}chunks")
                count = 0 if chunks is None else len(chunks.findall(f"{PP}chunk"))
                found[name] = _Declared(kind, tuple(shape), tuple(dims), attributes, count)

    walk(ET.parse(path).getroot(), "")
    return found


def _same_attribute(ours: object, texts: list[str] | dict[str, Any], where: object) -> None:
    """A parsed attribute against its <Value> texts (numbers compared as numbers)."""
    if isinstance(texts, dict):
        assert isinstance(ours, Mapping), where
        assert sorted(ours) == sorted(texts), where
        for key, inner in texts.items():
            _same_attribute(ours[key], inner, (where, key))
        return
    values = ours if isinstance(ours, list | tuple) else [ours]
    assert len(values) == len(texts), where
    for value, text in zip(values, texts, strict=True):
        if isinstance(value, str):
            assert value == text, where
        else:
            assert isinstance(value, int | float), where
            np.testing.assert_equal(value, float(text), err_msg=str(where))


def test_real_documents_from_pydap(pydap_documents: Path) -> None:
    from obstore.store import LocalStore, MemoryStore

    documents = sorted(pydap_documents.glob("*.dmrpp"))
    assert len(documents) >= 5
    # MOD13Q1's chunks name absolute side files under /sidecar/: register that prefix too.
    registry = vc.ObjectStoreRegistry(
        {
            f"file://{pydap_documents}/": LocalStore(str(pydap_documents)),
            "file:///sidecar/": MemoryStore(),
        }
    )
    for document in documents:
        group = DMRPPParser()(str(document), registry)
        declared = _declared(document)
        arrays = dict(group.walk_arrays())
        assert sorted(arrays) == sorted(declared), document.name
        root = ET.parse(document).getroot()
        _same_attribute(dict(group.attributes), _attribute_texts(root), document.name)
        for name, facts in declared.items():
            where = (document.name, name)
            array = arrays[name]
            metadata = array.metadata
            assert metadata.shape == facts.shape, where
            assert metadata.dtype.newbyteorder("=") == np.dtype(_DAP_TYPES[facts.kind]), where
            if facts.dims:  # every axis named in these documents, or none
                assert metadata.dimension_names == facts.dims, where
            # CF keys (_FillValue, scale_factor, time units) live in the encoding
            stored = {**metadata.attributes, **metadata.encoding}
            assert sorted(stored) == sorted(facts.attributes), where
            for key, texts in facts.attributes.items():
                _same_attribute(stored[key], texts, (*where, key))
            if isinstance(array, vc.VirtualArray):
                assert array.manifest.n_chunks - array.manifest.n_missing == facts.chunks, where
    air = DMRPPParser()(str(pydap_documents / "air.nc.dmrpp"), registry)
    assert air["air"].metadata.dtype == np.dtype("<i2")  # type: ignore[union-attr]
    assert air["air"].metadata.encoding["scale_factor"] == 0.01  # type: ignore[union-attr]
    assert air["time"].metadata.encoding["calendar"] == "standard"  # type: ignore[union-attr]


# ---- hostile and malformed documents -----------------------------------------------------------

HEAD = (
    '<Dataset xmlns="http://xml.opendap.org/ns/DAP/4.0#" '
    'xmlns:dmrpp="http://xml.opendap.org/dap/dmrpp/1.0.0#" name="f" dmrpp:href="f.h5">'
)
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i else "&lol;" * 10}">'
              for i in range(10))
    + "]>" + HEAD + '<Attribute name="a" type="String"><Value>&lol9;</Value></Attribute></Dataset>'
)  # fmt: skip


def _variable(body: str, kind: str = "Int32", dims: str = '<Dim size="4"/>') -> str:
    return f'{HEAD}<{kind} name="v">{dims}{body}</{kind}></Dataset>'


def _chunk(offset: str = "0", size: str = "16", position: str | None = None) -> str:
    at = f' chunkPositionInArray="{position}"' if position is not None else ""
    return f'<dmrpp:chunk offset="{offset}" nBytes="{size}"{at}/>'


SIZES = "<dmrpp:chunkDimensionSizes>2</dmrpp:chunkDimensionSizes>"
# fmt: off
HOSTILE: dict[str, tuple[str, type[Exception], str]] = {
    "billion laughs": (LAUGHS, DMRPPFormatError, "entities"),
    "external entity": (
        '<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + HEAD + "</Dataset>",
        DMRPPFormatError, "entities",
    ),
    "not XML": ("<Dataset", DMRPPFormatError, "not well-formed"),
    "another root": ("<Other/>", DMRPPFormatError, "not a DAP4 Dataset"),
    "undeclared dimension": (
        _variable("", dims='<Dim name="/nope"/>'), DMRPPFormatError, "'/nope' is not declared"
    ),
    "negative offset": (
        _variable(f"<dmrpp:chunks>{_chunk('-5')}</dmrpp:chunks>"), DMRPPFormatError, "negative"
    ),
    "offset not a number": (
        _variable(f"<dmrpp:chunks>{_chunk('x')}</dmrpp:chunks>"), DMRPPFormatError,
        "not an integer",
    ),
    "position outside the grid": (
        _variable(f"<dmrpp:chunks>{SIZES}{_chunk(position='[6]')}</dmrpp:chunks>"),
        DMRPPFormatError, "not the start of a chunk",
    ),
    "position inside a chunk": (
        _variable(f"<dmrpp:chunks>{SIZES}{_chunk(position='[1]')}</dmrpp:chunks>"),
        DMRPPFormatError, "not the start of a chunk",
    ),
    "two chunks at one place": (
        _variable(f"<dmrpp:chunks>{SIZES}{_chunk(position='[2]') * 2}</dmrpp:chunks>"),
        DMRPPFormatError, "same chunkPositionInArray",
    ),
    "chunk axes differ": (
        _variable("<dmrpp:chunks><dmrpp:chunkDimensionSizes>2 2</dmrpp:chunkDimensionSizes>"
                  "</dmrpp:chunks>"),
        DMRPPFormatError, "has 2 axes",
    ),
    "a string variable": (_variable("", kind="String"), DMRPPUnsupportedError, "DAP4 type String"),
    "an unknown filter": (
        _variable('<dmrpp:chunks compressionType="szip"/>'), DMRPPUnsupportedError, "'szip'"
    ),
    "compact data of the wrong size": (
        _variable("<dmrpp:compact>AAAA</dmrpp:compact>"), DMRPPFormatError, "needs 16"
    ),
}
# fmt: on


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_documents_are_typed_errors(tmp_path: Path, case: str) -> None:
    text, error, needle = HOSTILE[case]
    path = tmp_path / "f.h5.dmrpp"
    path.write_text(text)
    (tmp_path / "f.h5").write_bytes(b"\0" * 64)
    registry = vc.ObjectStoreRegistry.for_urls([str(tmp_path)])
    with pytest.raises(error) as info:
        DMRPPParser()(str(path), registry)
    assert f"file://{path}" in str(info.value)
    assert needle in str(info.value)
    if "variable" in str(info.value) and case != "not XML":
        assert "'/v'" in str(info.value)


def test_a_dropped_variable_is_not_read_and_a_huge_grid_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "f.h5.dmrpp"
    path.write_text(_variable("", kind="String").replace("</Dataset>", "") + (
        '<Int8 name="huge"><Dim size="1099511627776"/><dmrpp:chunks>'
        "<dmrpp:chunkDimensionSizes>1</dmrpp:chunkDimensionSizes></dmrpp:chunks></Int8></Dataset>"
    ))  # fmt: skip
    (tmp_path / "f.h5").write_bytes(b"")
    registry = vc.ObjectStoreRegistry.for_urls([str(tmp_path)])
    with pytest.raises(vc.LimitExceededError, match="max_chunks"):
        DMRPPParser(drop_variables=["v"])(str(path), registry)
    group = DMRPPParser(drop_variables=["v", "huge"])(str(path), registry)
    assert dict(group.walk_arrays()) == {}


def test_a_data_file_outside_the_registry_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f.dmrpp"
    path.write_text(_variable(f"<dmrpp:chunks>{_chunk()}</dmrpp:chunks>").replace(
        'dmrpp:href="f.h5"', 'dmrpp:href="s3://elsewhere/f.h5"'
    ))  # fmt: skip
    registry = vc.ObjectStoreRegistry.for_urls([str(tmp_path)])
    with pytest.raises(vc.UnregisteredURLError) as info:
        DMRPPParser()(str(path), registry)
    assert str(info.value).startswith(f"file://{path}: data file")
    assert "s3://elsewhere/f.h5" in str(info.value)


def test_data_held_in_the_document_is_loaded(tmp_path: Path) -> None:
    """``<dmrpp:compact>`` is base64 of the values; ``<dmrpp:missingdata>`` is zlib'd first."""
    import base64
    import zlib

    values = (np.arange(12).reshape(3, 4) / 7).astype(">f8")
    compact = base64.b64encode(values.tobytes()).decode()
    missing = base64.b64encode(zlib.compress(values.tobytes())).decode()
    dims = '<Dim size="3"/><Dim size="4"/>'
    body = (
        f'<Float64 name="a">{dims}<dmrpp:chunks byteOrder="BE"/>'
        f"<dmrpp:compact>{compact}</dmrpp:compact></Float64>"
        f'<Float64 name="b">{dims}<dmrpp:chunks byteOrder="BE"/>'
        f"<dmrpp:missingdata>{missing}</dmrpp:missingdata></Float64>"
    )
    (tmp_path / "f.h5.dmrpp").write_text(f"{HEAD}{body}</Dataset>")
    registry = vc.ObjectStoreRegistry.for_urls([str(tmp_path)])
    group = DMRPPParser()(str(tmp_path / "f.h5.dmrpp"), registry)
    for name in ("a", "b"):
        array = group[name]
        assert isinstance(array, vc.LoadedArray)
        np.testing.assert_array_equal(array.data, values)
        assert array.metadata.dimension_names == ("phony_dim_0", "phony_dim_1")


def test_plain_dmr_documents_from_pydaps_sdist_are_refused(tmp_path: Path) -> None:
    """A DMR without chunk locations must not read as fill values."""
    documents = sdist_members("pydap", "3.5.11", "src/pydap/tests/data/dmrs/MOD05_L2*.dmr")
    assert documents
    registry = vc.ObjectStoreRegistry.for_urls([str(documents[0].parent)])
    parser = DMRPPParser(data_url=str(tmp_path / "MOD05.hdf"))
    with pytest.raises(DMRPPUnsupportedError, match=r"MOD05_L2.*variable .*no <dmrpp:chunks>"):
        parser(str(documents[0]), registry)
