"""Inputs the fuzz harness (``properties/fuzz.py``) found mishandled, each built here by hand.

Each was a crash (an exception that is no `VirtualizationError`), an error not
naming the file, or values that differ from what the format's library reads. Now
each is a typed error naming the file, or reads like the library.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
import zarr
from tests.dmrpp_maker import make_dmrpp
from tests.hdf4_maker import make_sample as make_hdf4
from tests.parser_contract import local_registry

import vzcore as vc
from vzcore.parsers import (
    DMRPPFormatError,
    GRIBFormatError,
    GRIBParser,
    HDF4FormatError,
    HDF4Parser,
    KerchunkJSONParser,
    TIFFParser,
    ZarrParser,
)


def url_of(path: Path) -> str:
    return f"file://{path}"


def read_all(group: vc.VirtualGroup, folder: Path) -> dict[str, np.ndarray]:
    return vc.read_arrays(dict(group.walk_arrays()), local_registry(folder))


def parse_and_read(url: str, folder: Path) -> dict[str, np.ndarray]:
    return read_all(KerchunkJSONParser()(url, local_registry(folder)), folder)


# ---- reading: codec errors escaping, codecs numcodecs lacks, short blosc frames -------------


def _two_page_tiff(path: Path) -> np.ndarray:
    values = np.arange(30 * 45, dtype="u2").reshape(30, 45)
    with tifffile.TiffWriter(path) as tif:
        tif.write(values, tile=(16, 16), compression="zlib", predictor=True)
        tif.write(values, rowsperstrip=10, compression="lzw")
    return values


def test_read_arrays_reads_lzw_tiles_numcodecs_has_no_codec_for(tmp_path: Path) -> None:
    values = _two_page_tiff(tmp_path / "lzw.tif")
    group = TIFFParser()(url_of(tmp_path / "lzw.tif"), local_registry(tmp_path))
    got = read_all(group, tmp_path)
    np.testing.assert_array_equal(got["0"], values)
    np.testing.assert_array_equal(got["1"], values)


def test_a_corrupt_deflate_tile_read_through_zarr_names_file_and_chunk(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.tif"
    _two_page_tiff(path)
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        first = tif.pages[0].dataoffsets[0]
    data[first + 5] ^= 0x10  # inside the first tile's deflate stream
    path.write_bytes(bytes(data))
    group = TIFFParser()(url_of(path), local_registry(tmp_path))
    with pytest.raises(vc.ChunkDecodeError) as info:
        read_all(group, tmp_path)
    assert url_of(path) in str(info.value)
    assert "chunk (0, 0)" in str(info.value)
    assert "array '0'" in str(info.value)


def test_a_corrupt_shard_of_zarr_v3_names_file_and_chunk(tmp_path: Path) -> None:
    """Shards are read through zarr, whose codecs raised RuntimeError and ValueError."""
    store = tmp_path / "s.zarr"
    root = zarr.create_group(store)
    array = root.create_array("a", shape=(8,), chunks=(2,), shards=(4,), dtype="i4")
    array[:] = np.arange(8)
    chunk = store / "a" / "c" / "1"
    chunk.write_bytes(chunk.read_bytes()[:-3])
    group = ZarrParser()(url_of(store), local_registry(tmp_path))
    with pytest.raises(vc.ChunkDecodeError) as info:
        read_all(group, tmp_path)
    assert url_of(chunk) in str(info.value)
    assert "chunk (1,)" in str(info.value)


def test_a_truncated_blosc_chunk_is_refused_not_read_past_its_end(tmp_path: Path) -> None:
    """c-blosc trusts the frame's header: a short frame decoded to memory after it."""
    store = tmp_path / "b.zarr"
    root = zarr.create_group(store, zarr_format=2)
    root.create_array("a", shape=(16,), chunks=(16,), dtype="f8")[:] = np.arange(16.0)
    chunk = store / "a" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-8])
    group = ZarrParser()(url_of(store), local_registry(tmp_path))
    with pytest.raises(vc.ChunkDecodeError, match="blosc header declares") as info:
        read_all(group, tmp_path)
    assert url_of(chunk) in str(info.value)


def test_an_inline_chunk_that_does_not_decode_is_a_typed_error(tmp_path: Path) -> None:
    zarray = {
        "zarr_format": 2,
        "shape": [4],
        "chunks": [2],
        "dtype": "<i4",
        "compressor": {"id": "zlib", "level": 1},
        "filters": None,
        "fill_value": 0,
        "order": "C",
    }
    refs = {".zgroup": '{"zarr_format": 2}', "a/.zarray": json.dumps(zarray), "a/0": "not zlib"}
    (tmp_path / "refs.json").write_text(json.dumps({"version": 1, "refs": refs}))
    url = url_of(tmp_path / "refs.json")
    with pytest.raises(vc.VirtualizationError) as info:
        parse_and_read(url, tmp_path)
    assert "does not decode" in str(info.value)
    assert url in str(info.value)


def test_an_undecodable_inline_chunk_with_missing_chunks_names_the_document(
    tmp_path: Path,
) -> None:
    """The parser decodes an inline chunk to tell the fill value: zlib.error escaped."""
    zarray = {
        "zarr_format": 2,
        "shape": [6],
        "chunks": [2],
        "dtype": "<i4",
        "compressor": {"id": "zlib", "level": 1},
        "filters": None,
        "fill_value": 0,
        "order": "C",
    }
    good = base64.b64encode(__import__("zlib").compress(np.zeros(2, "<i4").tobytes())).decode()
    refs = {
        ".zgroup": '{"zarr_format": 2}',
        "a/.zarray": json.dumps(zarray),
        "a/0": "base64:" + good,
        "a/1": "file:///etc/passwd",  # a string is inline data
    }
    (tmp_path / "refs.json").write_text(json.dumps({"version": 1, "refs": refs}))
    url = url_of(tmp_path / "refs.json")
    with pytest.raises(vc.VirtualizationError, match="does not decode") as info:
        parse_and_read(url, tmp_path)
    assert url in str(info.value) or "array 'a': inline chunk (1,)" in str(info.value)


# ---- GRIB ----------------------------------------------------------------------------------


def test_a_grib_date_that_is_no_date_names_the_file(tmp_path: Path) -> None:
    import eccodes

    handle = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib2")
    message = bytearray(eccodes.codes_get_message(handle))
    eccodes.codes_release(handle)
    message[16 + 14] = 0  # section 1's month
    (tmp_path / "bad.grib2").write_bytes(bytes(message))
    with pytest.raises(GRIBFormatError, match="is no date") as info:
        GRIBParser()(url_of(tmp_path / "bad.grib2"), local_registry(tmp_path))
    assert url_of(tmp_path / "bad.grib2") in str(info.value)


def test_a_grib_grid_whose_increment_leaves_the_globe_is_refused(tmp_path: Path) -> None:
    """31 rows from 60° by 69.1°: ecCodes' points and cfgrib's distinct latitudes
    disagree, and neither is the data's grid."""
    import eccodes

    handle = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib2")
    good = eccodes.codes_get_message(handle)
    eccodes.codes_set(handle, "jDirectionIncrementInDegrees", 69.1)
    message = eccodes.codes_get_message(handle)
    eccodes.codes_release(handle)
    (tmp_path / "good.grib2").write_bytes(good)
    assert GRIBParser()(url_of(tmp_path / "good.grib2"), local_registry(tmp_path)).arrays
    (tmp_path / "bad.grib2").write_bytes(message)
    with pytest.raises(GRIBFormatError, match="beyond the poles") as info:
        GRIBParser()(url_of(tmp_path / "bad.grib2"), local_registry(tmp_path))
    assert url_of(tmp_path / "bad.grib2") in str(info.value)


def _grib_messages(changes: dict[str, object]) -> tuple[bytes, bytes]:
    """Two messages of one 2 m temperature, 6 hours apart; the second with ``changes``."""
    import eccodes

    messages = []
    for step, keys in ((0, {}), (6, changes)):
        handle = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib2")
        eccodes.codes_set(handle, "step", step)
        eccodes.codes_set_values(handle, np.linspace(250, 300, 16 * 31))
        for key, value in keys.items():
            eccodes.codes_set(handle, key, value)
        messages.append(bytes(eccodes.codes_get_message(handle)))
        eccodes.codes_release(handle)
    return messages[0], messages[1]


def test_a_grib_variable_whose_messages_order_their_points_otherwise_is_refused(
    tmp_path: Path,
) -> None:
    """cfgrib reads every message with the first one's coordinates; vz decodes each by
    its own scanning mode. Neither is right for the second message, so it is refused."""
    first, second = _grib_messages({"jPointsAreConsecutive": 1})
    (tmp_path / "good.grib2").write_bytes(first + _grib_messages({})[1])
    assert GRIBParser()(url_of(tmp_path / "good.grib2"), local_registry(tmp_path)).arrays
    (tmp_path / "bad.grib2").write_bytes(first + second)
    with pytest.raises(GRIBFormatError, match="orders or spaces its points otherwise") as info:
        GRIBParser()(url_of(tmp_path / "bad.grib2"), local_registry(tmp_path))
    assert url_of(tmp_path / "bad.grib2") in str(info.value)
    assert f"message at byte {len(first)}" in str(info.value)


def test_a_grib_reference_time_that_is_no_time_of_day_is_refused(tmp_path: Path) -> None:
    """Hour 255: ecCodes' ``dataTime`` says 12:00 while the octets vz reads say 255:00."""
    first, second = _grib_messages({})
    data = bytearray(second)
    assert data[16 + 16] == 12  # section 1, octet 17: the hour
    data[16 + 16] = 255
    (tmp_path / "bad.grib2").write_bytes(first + bytes(data))
    with pytest.raises(GRIBFormatError, match="is no time of day") as info:
        GRIBParser()(url_of(tmp_path / "bad.grib2"), local_registry(tmp_path))
    assert url_of(tmp_path / "bad.grib2") in str(info.value)


# ---- DMR++ ---------------------------------------------------------------------------------


@pytest.fixture
def dmrpp(tmp_path: Path) -> bytes:
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f.create_dataset("x", data=np.arange(8, dtype="<i4"), chunks=(4,))
        f["x"].attrs["_FillValue"] = np.int32(-1)
    return make_dmrpp(tmp_path / "d.h5")


@pytest.mark.parametrize(
    ("pattern", "replacement"),
    [
        (rb'encoding="[^"]*"', b'encoding="IRO-8859-1"'),  # an encoding Python lacks
        (rb'size="8"', b'size="99999999999999999999999"'),  # a dimension numpy cannot hold
        (rb'name="x"', b'name="../../outside.h5"'),  # an array name that is a path
    ],
    ids=["encoding", "huge-dimension", "path-name"],
)
def test_a_dmrpp_value_numpy_or_the_model_refuses_names_the_document(
    tmp_path: Path, dmrpp: bytes, pattern: bytes, replacement: bytes
) -> None:
    document = dmrpp if re.search(pattern, dmrpp) else b'<?xml version="1.0" encoding="x"?>' + dmrpp
    assert re.search(pattern, document), pattern
    (tmp_path / "d.h5.dmrpp").write_bytes(re.sub(pattern, replacement, document, count=1))
    url = url_of(tmp_path / "d.h5.dmrpp")
    with pytest.raises(DMRPPFormatError) as info:
        vc.parsers.DMRPPParser()(url, local_registry(tmp_path))
    assert url in str(info.value)


# ---- HDF4 ----------------------------------------------------------------------------------


def _elements(data: bytes) -> list[tuple[int, int, int, int]]:
    """Every (tag, ref, offset, length) of the file's DD blocks."""
    found, block = [], 4
    while block:
        count, following = struct.unpack(">HI", data[block : block + 6])
        entries = (data[block + 6 + 12 * i : block + 18 + 12 * i] for i in range(count))
        found.extend(struct.unpack(">HHII", entry) for entry in entries)
        block = following
    return found


def _hdf4_refused(tmp_path: Path, data: bytes, match: str) -> None:
    (tmp_path / "bad.hdf").write_bytes(data)
    url = url_of(tmp_path / "bad.hdf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(HDF4FormatError, match=match) as info:
            HDF4Parser()(url, local_registry(tmp_path))
    assert url in str(info.value)


@pytest.fixture
def hdf4(tmp_path: Path) -> bytes:
    make_hdf4(tmp_path / "sample.hdf")
    return (tmp_path / "sample.hdf").read_bytes()


def test_a_vgroup_of_an_unknown_version_is_refused(tmp_path: Path, hdf4: bytes) -> None:
    """The HDF4 library does not load it: a data set lost a dimension, and its shape."""
    data = bytearray(hdf4)
    _, _, offset, _ = next(
        e for e in _elements(hdf4) if e[0] == 1965 and b"Dim0.0" in hdf4[e[2] : e[2] + e[3]]
    )
    version = hdf4.index(b"Dim0.0", offset) + len(b"Dim0.0") + 4  # after extag, exref
    data[version] ^= 1
    _hdf4_refused(tmp_path, bytes(data), "dimension records for rank")


def test_a_vdata_interlace_the_reader_does_not_know_is_refused(tmp_path: Path, hdf4: bytes) -> None:
    data = bytearray(hdf4)
    for tag, _, offset, _ in _elements(hdf4):
        if tag == 1962:  # every Vdata header: the library reads none of them then
            data[offset : offset + 2] = b"\x00\xfe"
    _hdf4_refused(tmp_path, bytes(data), "interlace")


def test_a_dimension_record_disagreeing_with_the_sdd_is_refused(
    tmp_path: Path, hdf4: bytes
) -> None:
    """The library takes a dimension's length from its record; vz took the SDD's."""
    data = bytearray(hdf4)
    elements = _elements(hdf4)
    headers = {ref: (o, n) for tag, ref, o, n in elements if tag == 1962}
    values = {ref: o for tag, ref, o, _ in elements if tag == 1963}
    ref = next(
        r for r, (o, n) in headers.items() if b"DimVal0.1" in hdf4[o : o + n] and r in values
    )
    (size,) = struct.unpack(">i", hdf4[values[ref] : values[ref] + 4])
    data[values[ref] : values[ref] + 4] = struct.pack(">i", size + 3)
    _hdf4_refused(tmp_path, bytes(data), "the SDD says")


def test_a_grib_key_ecCodes_cannot_compute_names_the_file(tmp_path: Path) -> None:
    """``stepUnits`` raised gribapi's InternalError out of the parser."""
    import eccodes

    messages = []
    for step in (0, 6, 12):  # the parser contract's sample
        handle = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib2")
        eccodes.codes_set(handle, "step", step)
        eccodes.codes_set_values(handle, np.linspace(250, 300 + step, 16 * 31))
        messages.append(bytes(eccodes.codes_get_message(handle)))
        eccodes.codes_release(handle)
    data = bytearray(b"".join(messages))
    data[2066:2070] = b"\xff" * 4
    data[117:120] = bytes([158]) * 3  # the first message's product definition
    (tmp_path / "bad.grib2").write_bytes(bytes(data))
    url = url_of(tmp_path / "bad.grib2")
    with pytest.raises(GRIBFormatError) as info:
        GRIBParser()(url, local_registry(tmp_path))
    assert url in str(info.value)


def _name_not_utf8(path: Path) -> None:
    """Break the UTF-8 of the ``offset`` column's name in a parquet footer."""
    data = path.read_bytes()
    (footer,) = struct.unpack("<i", data[-8:-4])
    start = len(data) - 8 - footer
    path.write_bytes(data[:start] + data[start:].replace(b"offset", b"\x80ffset"))


def test_parquet_column_names_that_are_not_utf8_are_typed_errors(tmp_path: Path) -> None:
    from tests.test_parser_contract import netcdf4_group

    from vzcore.parsers import KerchunkParquetParser, ManifestParquetParser
    from vzcore.writers import write_kerchunk_parquet

    group = netcdf4_group(tmp_path)
    vc.write_manifest_parquet(group, tmp_path / "group.vz")
    write_kerchunk_parquet(group, tmp_path / "refs.parq")
    _name_not_utf8(tmp_path / "group.vz" / "lat.parquet")
    _name_not_utf8(tmp_path / "refs.parq" / "lat" / "refs.0.parq")
    for parser, name in (
        (ManifestParquetParser(), "group.vz"),
        (KerchunkParquetParser(), "refs.parq"),
    ):
        url = url_of(tmp_path / name)
        with pytest.raises(vc.VirtualizationError, match="utf-8") as info:
            parser(url, local_registry(tmp_path))
        assert url in str(info.value)


def _seed_with(tmp_path: Path, fmt: str, ops: list[tuple[object, ...]]) -> str:
    """The fuzz seed of ``fmt`` in ``tmp_path``, with the mutations ``ops`` the fuzzer found."""
    from properties import fuzz

    seed = fuzz.make_seeds(tmp_path, [fmt])[fmt]
    originals = {name: (seed.folder / name).read_bytes() for name, *_ in seed.files}
    for name, data in fuzz.apply_ops(originals, seed, ops).items():
        (seed.folder / name).write_bytes(data)
    return f"file://{seed.folder}/{seed.source_name}"


@pytest.mark.parametrize(
    ("fmt", "ops"),
    [
        # A flipped bit in a dictionary-encoded path column: an index past the dictionary.
        ("kerchunk_parquet", [("flip", 2, 90, 4)]),
    ],
    ids=["kerchunk-dictionary-index"],
)
def test_parquet_paths_arrow_would_not_validate_are_typed_errors(
    tmp_path: Path, fmt: str, ops: list[tuple[object, ...]]
) -> None:
    from properties import fuzz

    url = _seed_with(tmp_path, fmt, ops)
    folder = tmp_path / fmt
    parser = fuzz._contract(fmt).parser
    with pytest.raises(vc.VirtualizationError, match="Invalid") as info:
        read_all(parser(url, local_registry(folder)), folder)
    assert str(folder) in str(info.value)


def test_a_manifest_source_path_with_a_nul_names_the_manifest_file(tmp_path: Path) -> None:
    """A relative path with a NUL: refused when the manifest was built, without the file."""
    from properties import fuzz

    url = _seed_with(tmp_path, "manifest_parquet", [("cell", 1, 711, 253871, 8)])
    parser = fuzz._contract("manifest_parquet").parser
    with pytest.raises(vc.UnregisteredURLError, match="control character") as info:
        parser(url, local_registry(tmp_path / "manifest_parquet"))
    assert f"{tmp_path}/manifest_parquet/group.vz/lat.parquet: " in str(info.value)


# ---- HDF4: metadata the HDF4 library reads otherwise (session 11) -------------------------


def _var_members(data: bytes, name: str) -> list[tuple[int, int]]:
    """The (tag, ref) members of the ``Var0.0`` Vgroup of data set ``name``."""
    for tag, _, offset, length in _elements(data):
        raw = data[offset : offset + length]
        named = struct.pack(">H", len(name)) + f"{name}\x00\x06Var0.0".encode()
        if tag == 1965 and named in raw:
            (count,) = struct.unpack(">H", raw[:2])
            tags = struct.unpack(f">{count}H", raw[2 : 2 + 2 * count])
            refs = struct.unpack(f">{count}H", raw[2 + 2 * count : 2 + 4 * count])
            return list(zip(tags, refs, strict=True))
    raise AssertionError(f"no data set {name!r}")


def _element_of(data: bytes, tag: int, ref: int) -> tuple[int, int, int]:
    """(DD entry offset, element offset, element length) of (tag, ref), special or not."""
    block = 4
    while block:
        count, following = struct.unpack(">HI", data[block : block + 6])
        for i in range(count):
            at = block + 6 + 12 * i
            t, r, offset, length = struct.unpack(">HHII", data[at : at + 12])
            if t & ~0x4000 == tag and r == ref:
                return at, offset, length
        block = following
    raise AssertionError(f"no element ({tag}, {ref})")


def _hdf4_reads_like_pyhdf(tmp_path: Path, data: bytes, name: str) -> None:
    from tests.hdf4_maker import read_all as read_hdf4

    (tmp_path / "bad.hdf").write_bytes(data)
    group = HDF4Parser()(url_of(tmp_path / "bad.hdf"), local_registry(tmp_path))
    values = read_all(group, tmp_path)
    reference = read_hdf4(tmp_path / "bad.hdf")[name]
    assert values[name].dtype == reference.dtype
    np.testing.assert_array_equal(values[name], reference)


def test_absent_chunks_take_the_chunked_headers_fill_value(tmp_path: Path, hdf4: bytes) -> None:
    """With its ``_FillValue`` attribute gone, vz filled absent chunks with the default
    fill; the library fills them with the value the chunked header keeps (7)."""
    data = bytearray(hdf4)
    for tag, ref in _var_members(hdf4, "chunked_u8"):
        _, offset, length = _element_of(hdf4, tag, ref)
        header = hdf4[offset : offset + length]
        if tag == 1962 and b"_FillValue" in header:
            at = offset + header.index(b"Attr0.0") + len("Attr0.")
            data[at] = ord("1")  # no longer an attribute, for the library nor vz
    assert data != hdf4
    _hdf4_reads_like_pyhdf(tmp_path, bytes(data), "chunked_u8")


def _partial_chunked_header(data: bytes) -> int:
    """The offset of data set "partial"'s chunked header."""
    ref = next(r for t, r in _var_members(data, "partial") if t == 702)
    return _element_of(data, 702, ref)[1]


@pytest.mark.parametrize(
    ("at", "value", "match"),
    [
        (19, b"\x00\x00\x00\x06", "6-byte values"),  # nt_size
        (11, b"\x00\x00\x00\x00", r"\(0 values\)"),  # elem_tot_length
        (15, b"\x00\x00\x7f\x06", "values a chunk"),  # chunk_size
        (10, b"\x70", "flag"),  # the low byte of the flags
        (6, b"\x01", "version 1"),
    ],
)
def test_a_chunked_header_the_library_reads_otherwise_is_refused(
    tmp_path: Path, hdf4: bytes, at: int, value: bytes, match: str
) -> None:
    """The library sizes and numbers chunks by these fields (or opens no such header,
    and reads the data set as all fill); vz ignored them."""
    data = bytearray(hdf4)
    header = _partial_chunked_header(hdf4)
    data[header + at : header + at + len(value)] = value
    _hdf4_refused(tmp_path, bytes(data), match)


def test_a_chunk_table_field_size_the_library_reads_otherwise_is_refused(
    tmp_path: Path, hdf4: bytes
) -> None:
    data = bytearray(hdf4)
    header = _partial_chunked_header(hdf4)
    (table_ref,) = struct.unpack(">H", hdf4[header + 25 : header + 27])
    _, offset, _ = _element_of(hdf4, 1962, table_ref)
    data[offset + 16] ^= 4  # the origin field's size: 12 + 1024 bytes
    _hdf4_refused(tmp_path, bytes(data), "not origin, chk_tag and chk_ref")


def test_a_data_set_without_a_number_type_member_is_refused(tmp_path: Path, hdf4: bytes) -> None:
    """The library takes the type from the Var0.0 Vgroup's NT member (without one, the
    previous data set's type); vz took the SDD's."""
    data = bytearray(hdf4)
    index = [t for t, _ in _var_members(hdf4, "i32")].index(106)
    for tag, _, offset, length in _elements(hdf4):
        if tag == 1965 and b"i32\x00\x06Var0.0" in hdf4[offset : offset + length]:
            at = offset + 2 + 2 * index  # the NT member's tag becomes an unknown one
            data[at : at + 2] = b"\xa9\xa9"
    _hdf4_refused(tmp_path, bytes(data), "no number type")


def _dimension_value_header(data: bytes, name: str) -> tuple[int, int, int]:
    """(VH offset, VH length, VS offset) of dimension ``name``'s DimVal0.1 Vdata."""
    for tag, _, offset, length in _elements(data):
        raw = data[offset : offset + length]
        if tag == 1965 and f"{name}\x00\x06Dim0.0".encode() in raw:
            (vdata_ref,) = struct.unpack(">H", raw[4:6])  # its one member
            _, header, header_length = _element_of(data, 1962, vdata_ref)
            _, values, _ = _element_of(data, 1963, vdata_ref)
            return header, header_length, values
    raise AssertionError(f"no dimension {name!r}")


def test_a_dimension_without_its_length_record_is_refused(tmp_path: Path, hdf4: bytes) -> None:
    """The library takes the length the previous dimension left (lat's 3 for lon)."""
    data = bytearray(hdf4)
    header, length, _ = _dimension_value_header(hdf4, "lon")
    at = hdf4.index(b"DimVal0.1", header, header + length)
    data[at + 6] = ord("x")
    _hdf4_refused(tmp_path, bytes(data), "no length record")


def test_a_vdata_header_of_a_later_version_is_not_read(tmp_path: Path, hdf4: bytes) -> None:
    """The library reads a Vdata header's version from its end and nothing more of a
    header past version 4: the dimension's length record is no longer one."""
    data = bytearray(hdf4)
    header, length, _ = _dimension_value_header(hdf4, "lon")
    data[header + length - 5 : header + length - 3] = b"\x00\x80"
    _hdf4_refused(tmp_path, bytes(data), "no length record")


def test_a_length_record_of_several_records_is_read_by_its_first(
    tmp_path: Path, hdf4: bytes
) -> None:
    """The library reads the first record whatever the count; vz checked none then."""
    data = bytearray(hdf4)
    header, _, values = _dimension_value_header(hdf4, "lon")
    data[header + 2 : header + 6] = struct.pack(">I", 2)  # two records ...
    data[values : values + 4] = struct.pack(">i", 9)  # ... the first: 9, not 4
    _hdf4_refused(tmp_path, bytes(data), "has length 9, the SDD says 4")


def test_a_dimension_of_length_zero_is_refused(tmp_path: Path, hdf4: bytes) -> None:
    """Length 0 is NC_UNLIMITED to the library, which then reads one record."""
    data = bytearray(hdf4)
    _, _, values = _dimension_value_header(hdf4, "lat")
    data[values : values + 4] = b"\x00\x00\x00\x00"
    _hdf4_refused(tmp_path, bytes(data), "unlimited at axis 0")


def test_an_unlimited_data_sets_records_are_counted_from_its_data(
    tmp_path: Path, hdf4: bytes
) -> None:
    """The library counts records as the data element's length over a record's bytes
    (255 // 24 = 10 here, the linked block holding zeros past the 4 written); vz took
    the SDD's 4."""
    data = bytearray(hdf4)
    ref = next(r for t, r in _var_members(hdf4, "unlimited") if t == 702)
    _, offset, _ = _element_of(hdf4, 702, ref)
    assert hdf4[offset : offset + 2] == b"\x00\x01"  # linked blocks
    data[offset + 2 : offset + 6] = struct.pack(">I", 255)
    _hdf4_reads_like_pyhdf(tmp_path, bytes(data), "unlimited")


def test_an_unlimited_data_length_past_int32_is_refused(tmp_path: Path, hdf4: bytes) -> None:
    """The library's length is an int32: past 2**31 it counts negative records."""
    data = bytearray(hdf4)
    ref = next(r for t, r in _var_members(hdf4, "unlimited") if t == 702)
    _, offset, _ = _element_of(hdf4, 702, ref)
    data[offset + 2 : offset + 6] = struct.pack(">I", 1 << 31)
    _hdf4_refused(tmp_path, bytes(data), r"past 2\*\*31")


# ---- HDF4: compressed-element headers (session 12) -----------------------------------------


def _compression_header(data: bytes, name: str) -> tuple[int, int, int]:
    """(DD entry offset, header offset, header length) of data set ``name``'s data element."""
    for tag, ref in _var_members(data, name):
        if tag in (702, 721):
            return _element_of(data, tag, ref)
    raise AssertionError(f"{name!r} has no data element")


@pytest.mark.parametrize("length", [0xFFFFFFFF, 1 << 31, 0], ids=["minus-one", "int32-min", "zero"])
def test_a_compressed_length_of_zero_or_less_reads_as_fill(
    tmp_path: Path, hdf4: bytes, length: int
) -> None:
    """The header's length is an int32; the library reads <= 0 as a template: all fill.
    vz read the compressed bytes (the fuzz's ``huge`` case on ``deflate``)."""
    data = bytearray(hdf4)
    _, header, _ = _compression_header(hdf4, "deflate")
    assert data[header : header + 2] == b"\x00\x03"  # SPECIAL_COMP
    data[header + 4 : header + 8] = struct.pack(">I", length)
    _hdf4_reads_like_pyhdf(tmp_path, bytes(data), "deflate")
    from tests.hdf4_maker import read_all as read_hdf4

    reference = read_hdf4(tmp_path / "bad.hdf")["deflate"]
    assert (reference == reference.flat[0]).all()  # the fill value, not the data


def test_a_compressed_length_shorter_than_the_data_set_is_refused(
    tmp_path: Path, hdf4: bytes
) -> None:
    """HCPread refuses to read past the header's length, so SDreaddata fails."""
    from tests.hdf4_maker import read_all as read_hdf4

    data = bytearray(hdf4)
    _, header, _ = _compression_header(hdf4, "deflate")
    data[header + 4 : header + 8] = struct.pack(">I", 4)
    (tmp_path / "short.hdf").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SDreaddata failure"):
        read_hdf4(tmp_path / "short.hdf")
    _hdf4_refused(tmp_path, bytes(data), "holds 4 bytes, the data set needs 140")


def test_a_special_element_with_an_empty_header_is_refused(tmp_path: Path, hdf4: bytes) -> None:
    """A descriptor length of 0: the library decodes the header from memory past its
    buffer (a different value on each run); vz had read the data set as fill."""
    data = bytearray(hdf4)
    entry, _, _ = _compression_header(hdf4, "deflate")
    data[entry + 8 : entry + 12] = b"\0\0\0\0"
    _hdf4_refused(tmp_path, bytes(data), "header has 0 bytes")


def test_a_compressed_chunk_shorter_than_a_chunk_is_refused(tmp_path: Path, hdf4: bytes) -> None:
    """A chunk's header length under the chunk's bytes: HCPread fails on that chunk."""
    data = bytearray(hdf4)
    # The sample's only compressed chunks (DFTAG_CHUNK made special) are chunked_deflate's.
    offset = next(o for tag, _, o, _ in _elements(hdf4) if tag == 61 | 0x4000)
    assert data[offset : offset + 2] == b"\x00\x03"  # SPECIAL_COMP
    data[offset + 4 : offset + 8] = struct.pack(">I", 8)
    _hdf4_refused(tmp_path, bytes(data), "fewer than the chunk's")


# ---- HDF5: corrupt global heaps (libhdf5 loops) and chunk B-tree keys its lookup misses ----


def _netcdf_like(path: Path, *, compression: str | None = "gzip") -> np.ndarray:
    """A 2-d dataset of 3 x 2 chunks with a dimension scale on each axis (DIMENSION_LIST)."""
    values = np.arange(6 * 4, dtype="f4").reshape(6, 4)
    with h5py.File(path, "w") as f:
        for name, length in (("y", 6), ("x", 4)):
            f[name] = np.arange(length, dtype="f8")
            f[name].make_scale(name)
        v = f.create_dataset("v", data=values, chunks=(2, 2), compression=compression)
        v.dims[0].attach_scale(f["y"])
        v.dims[1].attach_scale(f["x"])
    return values


def _raw_tree_node(data: bytes) -> int:
    """Where the only chunk B-tree node (a TREE of type 1, raw data) of a file starts."""
    (node,) = [m.start() for m in re.finditer(b"TREE\x01", data)]
    return node


def _leaf_key(node: int, entry: int, ndim: int) -> int:
    """Where key ``entry`` of a version 1 B-tree leaf of raw data chunks starts (8-byte addresses)."""
    return node + 24 + entry * (8 + 8 * (ndim + 1) + 8)


def test_a_global_heap_object_of_no_size_is_refused_before_hdf5_loops_on_it(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    path = tmp_path / "heap.nc"
    _netcdf_like(path)
    data = bytearray(path.read_bytes())
    (collection,) = [m.start() for m in re.finditer(b"GCOL", data)]
    first = collection + 16  # the collection's first object: index 0 (free space), size 0
    data[first : first + 2] = b"\0\0"
    data[first + 8 : first + 16] = b"\0" * 8
    path.write_bytes(bytes(data))
    # Without the check libhdf5 never returns (C code no signal reaches): in a child.
    script = (
        "import sys, vzcore as vc\n"
        "from vzcore.parsers import HDFParser, HDF5FormatError\n"
        "try:\n"
        "    HDFParser()(sys.argv[1], vc.ObjectStoreRegistry.for_urls([sys.argv[1]]))\n"
        "except HDF5FormatError as err:\n"
        "    print(err)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, url_of(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "global heap collection" in done.stdout
    assert url_of(path) in done.stdout
    assert "'/v'" in done.stdout


def test_a_chunk_key_with_an_element_offset_hdf5_does_not_find_is_refused(
    tmp_path: Path,
) -> None:
    from vzcore.parsers import HDFParser
    from vzcore.parsers.hdf5 import HDF5IndexError

    path = tmp_path / "key.nc"
    values = _netcdf_like(path)
    data = bytearray(path.read_bytes())
    key = _leaf_key(_raw_tree_node(data), 2, 2)  # the chunk at (2, 0)
    data[key + 8 + 16 : key + 8 + 24] = struct.pack("<Q", 1 << 17)  # its element offset
    path.write_bytes(bytes(data))
    with h5py.File(path, "r") as f:  # HDF5 lists the chunk but does not find it
        read = f["v"][...]
    assert (read[2:4, :2] == 0).all()
    assert (read[:2] == values[:2]).all()
    url = url_of(path)
    with pytest.raises(HDF5IndexError, match="element offset") as info:
        HDFParser()(url, local_registry(tmp_path))
    assert url in str(info.value)
    assert "'/v'" in str(info.value)


def test_chunk_keys_out_of_order_are_refused(tmp_path: Path) -> None:
    from vzcore.parsers import HDFParser
    from vzcore.parsers.hdf5 import HDF5IndexError

    path = tmp_path / "order.nc"
    _netcdf_like(path)
    data = bytearray(path.read_bytes())
    node = _raw_tree_node(data)
    first, second = _leaf_key(node, 1, 2) + 8, _leaf_key(node, 2, 2) + 8
    offsets = data[first : first + 24], data[second : second + 24]
    data[first : first + 24], data[second : second + 24] = offsets[1], offsets[0]
    path.write_bytes(bytes(data))
    url = url_of(path)
    with pytest.raises(HDF5IndexError, match="out of order") as info:
        HDFParser()(url, local_registry(tmp_path))
    assert url in str(info.value)


def test_an_unfiltered_chunk_whose_key_says_no_bytes_is_refused(tmp_path: Path) -> None:
    from vzcore.parsers import HDFParser
    from vzcore.parsers.hdf5 import HDF5IndexError

    path = tmp_path / "size.nc"
    _netcdf_like(path, compression=None)
    data = bytearray(path.read_bytes())
    key = _leaf_key(_raw_tree_node(data), 0, 2)
    data[key : key + 8] = struct.pack("<II", 0, 0x0000DD0F)  # size 0, a filter mask
    path.write_bytes(bytes(data))
    # HDF5 reads such a chunk into a buffer it leaves unfilled: no value to agree with.
    url = url_of(path)
    with pytest.raises(HDF5IndexError, match="unfiltered chunk") as info:
        HDFParser()(url, local_registry(tmp_path))
    assert url in str(info.value)
    assert "'/v'" in str(info.value)


# ---- found by reading through zarr on a ManifestStore (session 11) ------------------------


def test_a_zarr_v3_bytes_codec_without_endian_for_a_multibyte_type_is_refused(
    tmp_path: Path,
) -> None:
    """zarr refuses such a zarr.json; vz served it, and no reader could open the store."""
    url = _seed_with(tmp_path, "zarr_v3", [("json", 11, 937834, 17)])
    document = json.loads((tmp_path / "zarr_v3" / "v3.zarr" / "b" / "zarr.json").read_text())
    assert document["codecs"][0] == {"name": "bytes"}
    with pytest.raises(ValueError, match="endian"):
        zarr.open_array(tmp_path / "zarr_v3" / "v3.zarr" / "b", mode="r")
    from vzcore.parsers import ZarrParser

    with pytest.raises(vc.VirtualizationError, match="states no endian") as info:
        ZarrParser()(url, local_registry(tmp_path / "zarr_v3"))
    assert "'b'" in str(info.value)


def test_metadata_built_with_a_bare_bytes_codec_states_an_endian() -> None:
    """As before, such items are read little-endian; zarr now opens the metadata served."""
    numbers = vc.ArrayMetadata(shape=(4,), chunk_grid=(4,), dtype="<i2", codecs=["bytes"])
    strings = vc.ArrayMetadata(shape=(4,), chunk_grid=(4,), dtype="S5", codecs=["bytes"])
    assert (numbers.endian, strings.endian) == ("little", None)
    from zarr.core.metadata.v3 import ArrayV3Metadata

    assert ArrayV3Metadata.from_dict(numbers.to_zarr_v3()).codecs  # zarr opens it


def test_a_chunk_longer_than_its_shape_is_a_decode_error(tmp_path: Path) -> None:
    """A DMR++ variable whose <Dim> was lost became a scalar with a 3-item chunk: zarr
    refused the chunk, read_arrays took its first item."""
    url = _seed_with(tmp_path, "dmrpp", [("flip", 0, 303, 2)])
    from vzcore.parsers import DMRPPParser

    group = DMRPPParser()(url, local_registry(tmp_path / "dmrpp"))
    assert group["flag"].shape == ()
    with pytest.raises(vc.ChunkDecodeError, match="decodes to 6 bytes; a chunk of shape"):
        vc.read_arrays({"flag": group["flag"]}, local_registry(tmp_path / "dmrpp"))


def test_a_v2_codec_configuration_the_codec_does_not_take_is_refused(tmp_path: Path) -> None:
    """``le~el`` for ``level``: numcodecs raised TypeError when the first chunk was read."""
    url = _seed_with(tmp_path, "kerchunk_json", [("flip", 0, 1722, 3)])
    from vzcore.parsers import KerchunkJSONParser

    with pytest.raises(vc.VirtualizationError, match="is not the codec's") as info:
        KerchunkJSONParser()(url, local_registry(tmp_path / "kerchunk_json"))
    assert url in str(info.value)
    assert "le~el" in str(info.value)


def test_a_vgroup_whose_last_bytes_give_a_version_past_4_is_read_empty(tmp_path: Path) -> None:
    """The DD of the ``lon`` dimension's Vgroup given a length of 3059: the library reads the
    version from the element's end, finds none it knows and unpacks nothing, so the data
    sets lose a dimension; vz read them (3, 4)."""
    ops: list[tuple[object, ...]] = [
        ("flip", 0, 4197, 1),
        ("huge", 0, 14560, 8, 2, 0),
        ("pointer", 0, 810, 3059, 4, 1),
    ]
    url = _seed_with(tmp_path, "hdf4", ops)
    with pytest.raises(HDF4FormatError, match="1 dimension records for rank 2") as info:
        HDF4Parser()(url, local_registry(tmp_path / "hdf4"))
    assert url in str(info.value)
