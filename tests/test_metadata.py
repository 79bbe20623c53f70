"""Examples for `vzcore.metadata.ArrayMetadata`: normalisation, zarr v3 and v2 documents."""

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np
import pytest
from zarr.core.metadata.v2 import ArrayV2Metadata
from zarr.core.metadata.v3 import ArrayV3Metadata

from vzcore import (
    ArrayMetadata,
    CodecSpec,
    InvalidMetadataError,
    RegularChunkGrid,
    UnsupportedCodecError,
)
from vzcore._frozen import FrozenDict

LITTLE = {"name": "bytes", "configuration": {"endian": "little"}}
BIG = {"name": "bytes", "configuration": {"endian": "big"}}


def _meta(dtype: str = "f4", **fields: Any) -> ArrayMetadata:
    return ArrayMetadata(shape=(4, 6), chunk_grid=(2, 3), dtype=dtype, **fields)


def _codec_dicts(meta: ArrayMetadata) -> list[dict[str, Any]]:
    return [c.to_dict() for c in meta.codecs]


# ---- construction and normalisation -----------------------------------------------------


def test_fields_are_normalised() -> None:
    meta = ArrayMetadata(shape=[10, 4], chunk_grid=[5, 4], dtype=">f4")
    assert meta.shape == (10, 4)
    assert meta.chunk_grid == RegularChunkGrid((5, 4))
    assert meta.dtype == np.dtype("float32")
    assert meta.dtype.byteorder == "="  # in memory: native; on disk: the bytes codec
    assert (meta.ndim, meta.chunk_shape, meta.grid_shape) == (2, (5, 4), (2, 1))
    assert meta.dimension_names is None
    assert meta.attributes == {}


def test_default_codecs_are_little_endian_bytes() -> None:
    assert _codec_dicts(_meta("f8")) == [LITTLE]
    assert _meta("f8").endian == "little"


@pytest.mark.parametrize(
    ("terse", "explicit"),
    [
        ({"name": "numcodecs.zlib"}, {"name": "numcodecs.zlib", "configuration": {"level": 1}}),
        ({"name": "gzip"}, {"name": "gzip", "configuration": {"level": 5}}),
        ({"name": "zstd"}, {"name": "zstd", "configuration": {"level": 0, "checksum": False}}),
        ("crc32c", {"name": "crc32c", "configuration": {}}),
    ],
)
def test_codecs_with_and_without_defaults_compare_equal(
    terse: Mapping[str, Any] | str, explicit: Mapping[str, Any]
) -> None:
    left = _meta(codecs=[LITTLE, terse])
    right = _meta(codecs=[LITTLE, explicit])
    assert left == right
    assert hash(left) == hash(right)


def test_codec_configuration_key_order_does_not_matter() -> None:
    blosc = {"cname": "lz4", "clevel": 5, "shuffle": "shuffle", "typesize": 4, "blocksize": 0}
    reordered = dict(reversed(list(blosc.items())))
    assert _meta(codecs=[LITTLE, {"name": "blosc", "configuration": blosc}]) == _meta(
        codecs=[LITTLE, {"name": "blosc", "configuration": reordered}]
    )


def test_unknown_codecs_are_kept_as_given() -> None:
    meta = _meta(codecs=[{"name": "vz.custom", "configuration": {"b": 1, "a": [2]}}])
    assert meta.codecs == (CodecSpec("vz.custom", '{"a":[2],"b":1}'),)


@pytest.mark.parametrize("dtype", ["u1", "i1", "bool"])
def test_bytes_endian_is_dropped_for_one_byte_dtypes(dtype: str) -> None:
    big, little, bare = (_meta(dtype, codecs=[c]) for c in (BIG, LITTLE, "bytes"))
    assert big == little == bare == _meta(dtype)
    assert _codec_dicts(big) == [{"name": "bytes", "configuration": {}}]
    assert big.endian is None


def test_bytes_endian_is_kept_for_wider_dtypes() -> None:
    assert _meta("i2", codecs=[BIG]) != _meta("i2", codecs=[LITTLE])


@pytest.mark.parametrize(
    ("codec", "message"),
    [
        (
            {"name": "gzip", "configuration": {"level": "x"}},
            "invalid configuration for codec gzip",
        ),
        ({"configuration": {}}, "a codec must be a mapping with a 'name'"),
        (42, "a codec must be a mapping with a 'name', got 42"),
        ({"name": "gzip", "configuration": [1]}, "codec 'gzip': configuration must be a mapping"),
    ],
)
def test_invalid_codecs_are_refused(codec: Any, message: str) -> None:
    with pytest.raises(InvalidMetadataError) as info:
        _meta(codecs=[LITTLE, codec])
    assert str(info.value).startswith(message)


def test_constructor_reports_every_problem() -> None:
    with pytest.raises(InvalidMetadataError) as info:
        ArrayMetadata(shape=(4, -6), chunk_grid=(2,), dtype="f4", dimension_names=["x"])
    assert info.value.problems == (
        "shape (4, -6) has a negative length",
        "chunk shape (2,) has 1 axes, shape (4, -6) has 2",
        "dimension names ('x',) do not match shape (4, -6)",
    )


def test_dimension_names_must_match_the_shape() -> None:
    with pytest.raises(InvalidMetadataError) as info:
        _meta(dimension_names=["x"])
    assert str(info.value) == "dimension names ('x',) do not match shape (4, 6)"


def test_chunk_lengths_must_be_positive() -> None:
    with pytest.raises(
        InvalidMetadataError, match=r"^chunk lengths must be positive, got \(2, 0\)"
    ):
        ArrayMetadata(shape=(4, 6), chunk_grid=(2, 0), dtype="f4")


def test_repr_summarises() -> None:
    meta = _meta(codecs=[LITTLE, "numcodecs.zlib"], dimension_names=["y", "x"])
    assert repr(meta) == (
        "ArrayMetadata(shape=(4, 6), chunk_shape=(2, 3), dtype=float32, "
        "fill_value=np.float32(0.0), "
        'codecs=[bytes{"endian":"little"}, numcodecs.zlib{"level":1}], '
        "dimension_names=('y', 'x'))"
    )


# ---- create -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "bytes_codec"),
    [
        (">i2", BIG),
        ("<i2", LITTLE),
        ("i2", LITTLE),
        (">u1", {"name": "bytes", "configuration": {}}),
    ],
)
def test_create_derives_the_bytes_codec_from_the_dtype(
    dtype: str, bytes_codec: dict[str, Any]
) -> None:
    meta = ArrayMetadata.create(shape=(4,), chunk_shape=(2,), dtype=dtype)
    assert meta.dtype == np.dtype(dtype).newbyteorder("=")
    assert _codec_dicts(meta) == [bytes_codec]


def test_create_puts_the_given_codecs_after_bytes() -> None:
    meta = ArrayMetadata.create(
        shape=(4,), chunk_shape=(2,), dtype=">f8", codecs=[{"name": "gzip"}, "crc32c"]
    )
    assert _codec_dicts(meta) == [
        BIG,
        {"name": "gzip", "configuration": {"level": 5}},
        {"name": "crc32c", "configuration": {}},
    ]


def test_create_keeps_a_pipeline_that_names_its_own_bytes_codec() -> None:
    meta = ArrayMetadata.create(shape=(4,), chunk_shape=(2,), dtype=">i2", codecs=[LITTLE])
    assert _codec_dicts(meta) == [LITTLE]


# ---- fill values ------------------------------------------------------------------------


@pytest.mark.parametrize("nan", [np.nan, float("nan"), "NaN", np.float32("nan")])
def test_nan_fill_values_are_equal(nan: object) -> None:
    meta = _meta("f8", fill_value=nan)
    assert np.isnan(meta.fill_value)
    assert meta == _meta("f8", fill_value=np.nan)


@pytest.mark.parametrize(
    ("dtype", "default"),
    [("f4", 0.0), ("i4", 0), ("u2", 0), ("bool", False), ("U3", ""), ("c8", 0j)],
)
def test_none_fill_value_is_the_dtypes_zero(dtype: str, default: object) -> None:
    meta = _meta(dtype, fill_value=None)
    assert isinstance(meta.fill_value, np.generic)
    assert meta.fill_value.dtype.kind == np.dtype(dtype).kind  # np.str_ scalars are '<U'
    assert meta.fill_value == default
    assert meta == _meta(dtype)


def test_fill_value_is_cast_to_the_dtype() -> None:
    meta = _meta("i2", fill_value=-9999)
    assert meta.fill_value == -9999
    assert meta.fill_value.dtype == np.dtype("i2")


def test_different_fill_values_are_unequal() -> None:
    assert _meta(fill_value=1) != _meta(fill_value=2)
    assert _meta(fill_value=np.nan) != _meta(fill_value=0)


@pytest.mark.parametrize(
    ("dtype", "fill", "message"),
    [
        ("i4", "abc", "fill value 'abc' is not a int32"),
        ("u1", 300, "fill value 300 is not a uint8"),
        ("u1", -1, "fill value -1 is not a uint8"),
        ("f4", "bogus", "fill value 'bogus' is not a float32"),
        ("i4", [1, 2], "fill value [1, 2] is not a int32"),
    ],
)
def test_invalid_fill_values_are_refused(dtype: str, fill: object, message: str) -> None:
    with pytest.raises(InvalidMetadataError) as info:
        _meta(dtype, fill_value=fill)
    assert str(info.value).startswith(message)


# ---- frozen attributes ------------------------------------------------------------------


def test_attributes_are_deeply_frozen_with_python_scalars() -> None:
    meta = _meta(
        attributes={
            "nested": [1, {"b": np.float32(2.5)}],
            "count": np.int64(3),
            "values": np.array([1, 2]),
            "raw": b"bytes",
        }
    )
    attributes = meta.attributes
    assert isinstance(attributes, FrozenDict)
    assert attributes == {"nested": (1, {"b": 2.5}), "count": 3, "values": (1, 2), "raw": "bytes"}
    assert isinstance(attributes["nested"], tuple)
    assert isinstance(attributes["nested"][1], FrozenDict)
    assert type(attributes["nested"][1]["b"]) is float
    assert type(attributes["count"]) is int
    assert hash(attributes) == hash(_meta(attributes=dict(attributes)).attributes)
    with pytest.raises(TypeError):
        attributes["count"] = 4  # type: ignore[index]


def test_attributes_must_be_json_like() -> None:
    with pytest.raises(TypeError, match="not a JSON-like value"):
        _meta(attributes={"when": object()})


@pytest.mark.parametrize("name", ["shape", "dtype", "codecs", "attributes", "fill_value"])
def test_metadata_is_frozen(name: str) -> None:
    meta = _meta()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(meta, name, getattr(meta, name))


def test_evolve_returns_a_new_value() -> None:
    meta = _meta()
    longer = meta.evolve(shape=(8, 6))
    assert longer.shape == (8, 6)
    assert meta.shape == (4, 6)


# ---- zarr v3 ----------------------------------------------------------------------------


def test_to_zarr_v3_document() -> None:
    meta = ArrayMetadata.create(
        shape=(4, 6),
        chunk_shape=(2, 3),
        dtype=">f4",
        fill_value=np.nan,
        codecs=[{"name": "numcodecs.zlib"}],
        dimension_names=["y", "x"],
        attributes={"units": "K", "valid_range": [0, 400]},
    )
    assert meta.to_zarr_v3() == {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [4, 6],
        "data_type": "float32",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2, 3]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": "NaN",
        "codecs": [BIG, {"name": "numcodecs.zlib", "configuration": {"level": 1}}],
        "attributes": {"units": "K", "valid_range": [0, 400]},
        "storage_transformers": [],
        "dimension_names": ["y", "x"],
    }


def test_to_zarr_v3_returns_a_fresh_mutable_document() -> None:
    meta = _meta(attributes={"a": [1]})
    document = meta.to_zarr_v3()
    document["attributes"]["a"].append(2)
    document["shape"][0] = 99
    assert meta.to_zarr_v3()["attributes"] == {"a": [1]}
    assert meta.shape == (4, 6)


V3_CASES = [
    pytest.param({"dtype": "f4", "codecs": [{"name": "numcodecs.zlib"}]}, id="zlib"),
    pytest.param({"dtype": "<U4"}, id="unicode"),
    pytest.param({"dtype": "bool", "fill_value": True}, id="bool"),
    pytest.param({"dtype": "datetime64[ns]"}, id="datetime64"),
    pytest.param({"dtype": "c16", "fill_value": 1 + 2j}, id="complex"),
    pytest.param(
        {
            "dtype": ">i8",
            "codecs": [
                {"name": "numcodecs.shuffle", "configuration": {"elementsize": 8}},
                {
                    "name": "blosc",
                    "configuration": {
                        "cname": "zstd",
                        "clevel": 3,
                        "shuffle": "bitshuffle",
                        "typesize": 8,
                    },
                },
            ],
        },
        id="shuffle-blosc",
    ),
    pytest.param(
        {
            "dtype": "f8",
            "fill_value": np.nan,
            "codecs": [
                {"name": "transpose", "configuration": {"order": [1, 0]}},
                BIG,
                {"name": "crc32c"},
            ],
        },
        id="transpose-crc32c",
    ),
]


@pytest.mark.parametrize("fields", V3_CASES)
def test_zarr_accepts_to_zarr_v3_and_it_round_trips(fields: dict[str, Any]) -> None:
    meta = ArrayMetadata.create(
        shape=(4, 6),
        chunk_shape=(2, 3),
        dimension_names=["y", "x"],
        attributes={"a": [1, 2]},
        **fields,
    )
    parsed = ArrayV3Metadata.from_dict(meta.to_zarr_v3())
    assert parsed.shape == (4, 6)
    assert parsed.dimension_names == ("y", "x")
    assert ArrayMetadata.from_zarr_v3(parsed) == meta
    assert ArrayMetadata.from_zarr_v3(meta.to_zarr_v3()) == meta


def test_from_zarr_v3_of_a_dict() -> None:
    document = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [100],
        "data_type": "int16",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [10]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": -1,
        "codecs": [BIG, {"name": "gzip", "configuration": {"level": 1}}],
        "attributes": {"long_name": "depth"},
        "dimension_names": ["z"],
    }
    meta = ArrayMetadata.from_zarr_v3(document)
    assert meta == ArrayMetadata.create(
        shape=(100,),
        chunk_shape=(10,),
        dtype=">i2",
        fill_value=-1,
        codecs=[{"name": "gzip", "configuration": {"level": 1}}],
        dimension_names=["z"],
        attributes={"long_name": "depth"},
    )
    assert meta.endian == "big"


def test_from_zarr_v3_of_an_array_v3_metadata_object() -> None:
    meta = _meta("u2", fill_value=7, dimension_names=["a", "b"])
    parsed = ArrayV3Metadata.from_dict(meta.to_zarr_v3())
    assert isinstance(parsed, ArrayV3Metadata)
    assert ArrayMetadata.from_zarr_v3(parsed) == meta


def test_from_zarr_v3_reports_every_missing_key() -> None:
    with pytest.raises(InvalidMetadataError) as info:
        ArrayMetadata.from_zarr_v3({"zarr_format": 3, "node_type": "array"})
    assert info.value.problems == (
        "missing 'shape'",
        "missing 'data_type'",
        "missing 'chunk_grid'",
        "missing 'codecs'",
    )
    assert str(info.value) == (
        "invalid zarr v3 metadata: missing 'shape'; missing 'data_type'; "
        "missing 'chunk_grid'; missing 'codecs'"
    )


def test_from_zarr_v3_reports_bad_data_type_and_chunk_grid_together() -> None:
    document = {
        "shape": [4],
        "data_type": "bogus",
        "chunk_grid": {"name": "hexagonal"},
        "codecs": [LITTLE],
    }
    with pytest.raises(InvalidMetadataError) as info:
        ArrayMetadata.from_zarr_v3(document)
    assert len(info.value.problems) == 2
    assert info.value.problems[0].startswith("unknown data_type 'bogus'")
    assert info.value.problems[1] == (
        "unsupported chunk_grid {'name': 'hexagonal'} "
        "(only 'regular' and 'rectilinear' are supported)"
    )


def test_from_zarr_v3_refuses_a_chunk_grid_without_chunk_shape() -> None:
    document = {**_meta().to_zarr_v3(), "chunk_grid": {"name": "regular", "configuration": {}}}
    with pytest.raises(InvalidMetadataError, match="chunk_grid has no chunk_shape"):
        ArrayMetadata.from_zarr_v3(document)


def test_from_zarr_v3_refuses_a_bad_fill_value_with_invalid_metadata_error() -> None:
    document = {**_meta().to_zarr_v3(), "fill_value": "bogus"}
    with pytest.raises(InvalidMetadataError):
        ArrayMetadata.from_zarr_v3(document)


def test_numcodecs_shuffle_without_elementsize_keeps_zarrs_meaning() -> None:
    meta = _meta("i8", codecs=[LITTLE, {"name": "numcodecs.shuffle"}])
    assert meta.codecs[1].configuration.get("elementsize", 8) == 8


def test_datetime64_round_trips_through_zarr_v3_and_v2() -> None:
    meta = ArrayMetadata.create(
        shape=(3,), chunk_shape=(3,), dtype="datetime64[s]", fill_value=np.datetime64("NaT", "s")
    )
    assert meta.dtype == np.dtype("datetime64[s]")
    assert np.isnat(meta.fill_value)
    assert ArrayMetadata.from_zarr_v3(meta.to_zarr_v3()) == meta
    assert ArrayMetadata.from_zarr_v2(*meta.to_zarr_v2()) == meta


# ---- zarr v2 ----------------------------------------------------------------------------


def _zarray(dtype: str, codecs: list[Any] | None = None, **fields: Any) -> dict[str, Any]:
    meta = ArrayMetadata.create(
        shape=(4, 6), chunk_shape=(2, 3), dtype=dtype, codecs=codecs, **fields
    )
    zarray, _ = meta.to_zarr_v2()
    return zarray


@pytest.mark.parametrize(
    ("dtype", "expected"), [(">i2", ">i2"), ("<i2", "<i2"), ("u1", "|u1"), ("<U5", "<U5")]
)
def test_to_zarr_v2_puts_the_bytes_codecs_endianness_in_the_dtype(
    dtype: str, expected: str
) -> None:
    zarray = _zarray(dtype)
    assert zarray["dtype"] == expected
    assert (zarray["compressor"], zarray["filters"], zarray["order"]) == (None, None, "C")


@pytest.mark.parametrize(
    ("codecs", "filters", "compressor"),
    [
        pytest.param(
            [{"name": "gzip", "configuration": {"level": 4}}],
            None,
            {"id": "gzip", "level": 4},
            id="gzip",
        ),
        pytest.param(
            [{"name": "zstd", "configuration": {"level": 3}}],
            None,
            {"id": "zstd", "level": 3, "checksum": False},
            id="zstd",
        ),
        pytest.param(
            [{"name": "numcodecs.shuffle", "configuration": {"elementsize": 4}}, "numcodecs.zlib"],
            [{"id": "shuffle", "elementsize": 4}],
            {"id": "zlib", "level": 1},
            id="shuffle-zlib",
        ),
        pytest.param(["numcodecs.fletcher32"], None, {"id": "fletcher32"}, id="fletcher32"),
        pytest.param(
            ["numcodecs.zlib", "numcodecs.fletcher32"],
            [{"id": "zlib", "level": 1}],
            {"id": "fletcher32"},
            id="zlib-fletcher32",
        ),
    ],
)
def test_to_zarr_v2_maps_compressors_and_filters(
    codecs: list[Any], filters: list[dict[str, Any]] | None, compressor: dict[str, Any]
) -> None:
    zarray = _zarray("f4", codecs)
    assert zarray["filters"] == filters
    assert zarray["compressor"] == compressor


@pytest.mark.parametrize(
    ("shuffle", "number"), [("noshuffle", 0), ("shuffle", 1), ("bitshuffle", 2)]
)
def test_to_zarr_v2_maps_blosc_shuffle_names_to_numbers(shuffle: str, number: int) -> None:
    blosc = {
        "name": "blosc",
        "configuration": {"cname": "lz4", "clevel": 5, "shuffle": shuffle, "typesize": 4},
    }
    assert _zarray("f4", [blosc])["compressor"] == {
        "id": "blosc",
        "cname": "lz4",
        "clevel": 5,
        "shuffle": number,
        "blocksize": 0,
    }


def test_to_zarr_v2_maps_a_full_transpose_to_order_f() -> None:
    codecs = [{"name": "transpose", "configuration": {"order": [1, 0]}}, LITTLE]
    assert _zarray("f4", codecs)["order"] == "F"


def test_to_zarr_v2_documents() -> None:
    meta = ArrayMetadata.create(
        shape=(4, 6),
        chunk_shape=(2, 3),
        dtype=">f4",
        fill_value=np.nan,
        codecs=["numcodecs.zlib"],
        dimension_names=["y", "x"],
        attributes={"units": "K"},
    )
    zarray, zattrs = meta.to_zarr_v2()
    assert zarray == {
        "zarr_format": 2,
        "shape": [4, 6],
        "chunks": [2, 3],
        "dtype": ">f4",
        "compressor": {"id": "zlib", "level": 1},
        "filters": None,
        "fill_value": "NaN",
        "order": "C",
        "dimension_separator": ".",
    }
    assert zattrs == {"units": "K", "_ARRAY_DIMENSIONS": ["y", "x"]}
    parsed = ArrayV2Metadata.from_dict({**zarray, "attributes": zattrs})
    assert parsed.shape == (4, 6)
    assert isinstance(parsed.fill_value, np.floating)
    assert np.isnan(parsed.fill_value)


@pytest.mark.parametrize(
    ("codecs", "message"),
    [
        pytest.param(["crc32c"], "codec crc32c has no zarr v2 (numcodecs) equivalent", id="crc32c"),
        pytest.param(
            [{"name": "vlen-utf8"}],
            "codecs ['vlen-utf8'] have no 'bytes' codec: zarr v2 cannot express this pipeline",
            id="no-bytes",
        ),
        pytest.param(
            [{"name": "transpose", "configuration": {"order": [0, 1]}}, LITTLE],
            """codec transpose{"order":[0,1]} before 'bytes' has no zarr v2 form""",
            id="identity-transpose",
        ),
    ],
)
def test_to_zarr_v2_refuses_what_zarr_v2_cannot_express(codecs: list[Any], message: str) -> None:
    meta = ArrayMetadata.create(shape=(4, 6), chunk_shape=(2, 3), dtype="f4", codecs=codecs)
    with pytest.raises(UnsupportedCodecError) as info:
        meta.to_zarr_v2()
    assert str(info.value) == message


def test_to_zarr_v2_refuses_a_sharded_pipeline() -> None:
    sharding = {
        "name": "sharding_indexed",
        "configuration": {
            "chunk_shape": [1, 1],
            "codecs": [LITTLE],
            "index_codecs": [LITTLE, {"name": "crc32c"}],
        },
    }
    meta = ArrayMetadata.create(shape=(4, 6), chunk_shape=(2, 3), dtype="f4", codecs=[sharding])
    with pytest.raises(UnsupportedCodecError, match="have no 'bytes' codec"):
        meta.to_zarr_v2()


KERCHUNK_ZARRAY = {
    "chunks": [10, 20],
    "compressor": {"id": "zlib", "level": 4},
    "dtype": ">f4",
    "fill_value": "NaN",
    "filters": [{"id": "shuffle", "elementsize": 4}],
    "order": "F",
    "shape": [100, 200],
    "zarr_format": 2,
}


def test_from_zarr_v2_of_a_typical_kerchunk_zarray() -> None:
    meta = ArrayMetadata.from_zarr_v2(
        KERCHUNK_ZARRAY, {"_ARRAY_DIMENSIONS": ["lat", "lon"], "units": "K"}
    )
    assert meta.shape == (100, 200)
    assert meta.chunk_shape == (10, 20)
    assert meta.dtype == np.dtype("float32")
    assert meta.endian == "big"
    assert np.isnan(meta.fill_value)
    assert _codec_dicts(meta) == [
        {"name": "transpose", "configuration": {"order": [1, 0]}},
        BIG,
        {"name": "numcodecs.shuffle", "configuration": {"elementsize": 4}},
        {"name": "numcodecs.zlib", "configuration": {"level": 4}},
    ]
    assert meta.dimension_names == ("lat", "lon")
    assert meta.attributes == {"units": "K"}
    zarray, zattrs = meta.to_zarr_v2()
    assert zarray == {**KERCHUNK_ZARRAY, "dimension_separator": "."}
    assert zattrs == {"units": "K", "_ARRAY_DIMENSIONS": ["lat", "lon"]}
    assert ArrayV3Metadata.from_dict(meta.to_zarr_v3()).dimension_names == ("lat", "lon")


def test_from_zarr_v2_ignores_order_f_for_1d_arrays() -> None:
    meta = ArrayMetadata.from_zarr_v2({"shape": [4], "chunks": [2], "dtype": "<f4", "order": "F"})
    assert _codec_dicts(meta) == [LITTLE]


def test_from_zarr_v2_takes_a_null_fill_value_as_the_default() -> None:
    zarray = {"shape": [100], "chunks": [10], "dtype": "<i8", "fill_value": None}
    assert ArrayMetadata.from_zarr_v2(zarray).fill_value == 0


@pytest.mark.parametrize(("dtype", "shuffle"), [("<i8", "shuffle"), ("|u1", "bitshuffle")])
def test_from_zarr_v2_resolves_blosc_autoshuffle(dtype: str, shuffle: str) -> None:
    blosc = {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": -1, "blocksize": 0}
    meta = ArrayMetadata.from_zarr_v2(
        {"shape": [8], "chunks": [4], "dtype": dtype, "compressor": blosc}
    )
    assert meta.codecs[-1].name == "blosc"
    assert meta.codecs[-1].configuration["shuffle"] == shuffle
    assert meta.codecs[-1].configuration["typesize"] == np.dtype(dtype).itemsize


def test_from_zarr_v2_reports_every_missing_key() -> None:
    with pytest.raises(InvalidMetadataError) as info:
        ArrayMetadata.from_zarr_v2({})
    assert info.value.problems == ("missing 'shape'", "missing 'chunks'", "missing 'dtype'")


@pytest.mark.parametrize(
    ("zarray", "message"),
    [
        ({"shape": [1], "chunks": [1], "dtype": "bogus"}, "invalid .zarray dtype 'bogus'"),
        (
            {"shape": [1], "chunks": [1], "dtype": "<f4", "compressor": {"level": 1}},
            "a zarr v2 codec must be a mapping with an 'id'",
        ),
    ],
)
def test_from_zarr_v2_refuses_bad_documents(zarray: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidMetadataError) as info:
        ArrayMetadata.from_zarr_v2(zarray)
    assert str(info.value).startswith(message)


def test_from_zarr_v2_with_a_delta_filter_round_trips() -> None:
    zarray = {
        "shape": [4],
        "chunks": [2],
        "dtype": "<i4",
        "fill_value": 0,
        "filters": [{"id": "delta", "dtype": "<i4"}],
        "compressor": {"id": "zlib", "level": 1},
        "order": "C",
    }
    meta = ArrayMetadata.from_zarr_v2(zarray)
    assert meta.codecs[0].name == "numcodecs.delta"
    back, _ = meta.to_zarr_v2()
    assert back["filters"] == [{"id": "delta", "dtype": "<i4", "astype": "<i4"}]
    assert back["compressor"] == {"id": "zlib", "level": 1}


# ---- structured dtypes -----------------------------------------------------------------

STRUCT = np.dtype([("a", ">i4"), ("b", [("c", ">f8"), ("s", "S3")])])


def test_a_struct_is_held_native_with_its_stored_order_in_the_bytes_codec() -> None:
    fill = np.array((7, (1.5, b"xy")), dtype=STRUCT)[()]
    meta = ArrayMetadata.create(shape=(4,), chunk_shape=(2,), dtype=STRUCT, fill_value=fill)
    assert meta.dtype == STRUCT.newbyteorder("=")
    assert meta.endian == "big"
    v3 = meta.to_zarr_v3()
    assert v3["fill_value"] == {"a": 7, "b": {"c": 1.5, "s": "eHk="}}
    assert ArrayMetadata.from_zarr_v3(v3) == meta
    zarray, zattrs = meta.to_zarr_v2()
    assert zarray["dtype"] == [["a", ">i4"], ["b", [["c", ">f8"], ["s", "|S3"]]]]
    back = ArrayMetadata.from_zarr_v2(zarray, zattrs)
    assert back == meta
    assert back.fill_value.tobytes() == fill.astype(meta.dtype).tobytes()


def test_a_struct_of_single_bytes_has_no_endian_but_strings_make_one() -> None:
    single = ArrayMetadata.create(shape=(2,), chunk_shape=(2,), dtype=[("a", "u1"), ("b", "i1")])
    assert single.endian is None
    with_string = ArrayMetadata.create(
        shape=(2,), chunk_shape=(2,), dtype=[("a", "u1"), ("s", "S3")]
    )
    assert with_string.endian == "little"  # zarr asks for one when a field is wider than a byte


@pytest.mark.parametrize(
    ("dtype", "reason"),
    [
        (np.dtype([("a", ">i4"), ("b", "<f8")]), "mixes big- and little-endian"),
        (
            np.dtype({"names": ["a"], "formats": ["<u4"], "offsets": [0], "itemsize": 8}),
            "padding or fields out of offset order",
        ),
        (np.dtype([("a", "<i4", (2,))]), "subarray"),
        (np.dtype(np.longdouble), "zarr has no data type for float128"),
    ],
)
def test_dtypes_zarr_cannot_store_are_invalid_metadata(dtype: np.dtype[Any], reason: str) -> None:
    with pytest.raises(InvalidMetadataError, match=reason):
        ArrayMetadata.create(shape=(2,), chunk_shape=(2,), dtype=dtype)
