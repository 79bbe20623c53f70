"""Codec specs: zarr v3 codecs as frozen, normalised values, and their zarr v2 forms."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from vzcore._frozen import JSON, canonical_json
from vzcore.errors import InvalidMetadataError, UnsupportedCodecError

AxisMap = Sequence[int | None]
"""For each axis of a result, the input axis it is (``None``: a new axis of length 1)."""

__all__ = [
    "CodecSpec",
    "codecs_with_axes",
    "normalize_codec",
    "v2_codec_to_v3",
    "v3_codec_to_v2",
]

_BLOSC_SHUFFLE_V2 = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}
_BLOSC_SHUFFLE_V3 = {v: k for k, v in _BLOSC_SHUFFLE_V2.items()}
# v2 compressor ids that zarr 3 implements natively under the same name.
_NATIVE_V3 = frozenset({"gzip", "zstd", "blosc"})


@attrs.frozen
class CodecSpec:
    """One zarr v3 codec: a name and its configuration (kept as canonical JSON text).

    >>> CodecSpec.from_dict({"name": "gzip", "configuration": {"level": 4}}).configuration
    {'level': 4}
    """

    name: str
    configuration_json: str = "{}"

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any] | str) -> CodecSpec:
        """Build from ``{"name": ..., "configuration": {...}}`` or a bare name."""
        if isinstance(spec, str):
            return cls(spec)
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
            raise InvalidMetadataError(f"a codec must be a mapping with a 'name', got {spec!r}")
        config = spec.get("configuration") or {}
        if not isinstance(config, Mapping):
            raise InvalidMetadataError(f"codec {spec['name']!r}: configuration must be a mapping")
        return cls(spec["name"], canonical_json(config))

    @property
    def configuration(self) -> dict[str, JSON]:
        """A fresh copy of the configuration."""
        config: dict[str, JSON] = json.loads(self.configuration_json)
        return config

    def to_dict(self) -> dict[str, JSON]:
        # Always with "configuration": zarr's numcodecs wrappers require the key.
        return {"name": self.name, "configuration": self.configuration}

    def __str__(self) -> str:
        return (
            self.name
            if self.configuration_json == "{}"
            else f"{self.name}{self.configuration_json}"
        )


def normalize_codec(spec: CodecSpec | Mapping[str, Any] | str) -> CodecSpec:
    """Fill in defaults so that equal pipelines compare equal (cached per distinct codec)."""
    codec = spec if isinstance(spec, CodecSpec) else CodecSpec.from_dict(spec)
    return _normalize_cached(codec)


@functools.lru_cache(maxsize=1024)
def _normalize_cached(codec: CodecSpec) -> CodecSpec:
    # Codecs zarr knows are round-tripped through zarr's own classes; numcodecs.* codecs
    # through numcodecs (which knows their defaults); unknown codecs are kept as given,
    # with their configuration in canonical order.
    if codec.name.startswith("numcodecs."):
        return _normalize_numcodecs(codec)
    from zarr.errors import UnknownCodecError
    from zarr.registry import get_codec_class

    try:
        cls = get_codec_class(codec.name)
    except (UnknownCodecError, KeyError):
        return codec
    try:
        parsed = cls.from_dict({"name": codec.name, "configuration": codec.configuration})
        return CodecSpec.from_dict(parsed.to_dict())
    except (TypeError, ValueError) as err:
        raise InvalidMetadataError(f"invalid configuration for codec {codec}: {err}") from err


def _normalize_numcodecs(codec: CodecSpec) -> CodecSpec:
    import numcodecs

    codec_id = codec.name.removeprefix("numcodecs.")
    try:
        config = numcodecs.get_codec({"id": codec_id, **codec.configuration}).get_config()
    except (KeyError, ValueError, TypeError):
        return codec
    config.pop("id", None)
    return CodecSpec(codec.name, canonical_json(config))


def v3_codec_to_v2(codec: CodecSpec) -> dict[str, JSON]:
    """The numcodecs config (``{"id": ...}``) of a bytes-to-bytes or array-to-array codec.

    Raises
    ------
    UnsupportedCodecError
        When zarr v2 has no codec for it (e.g. ``crc32c``, ``sharding_indexed``).
    """
    config = codec.configuration
    if codec.name in ("gzip", "zstd"):
        return {"id": codec.name, **config}
    if codec.name == "blosc":
        shuffle = config.get("shuffle", "noshuffle")
        return {
            "id": "blosc",
            "cname": config.get("cname", "zstd"),
            "clevel": config.get("clevel", 5),
            "shuffle": _BLOSC_SHUFFLE_V2.get(shuffle, shuffle),
            "blocksize": config.get("blocksize", 0),
        }
    if codec.name.startswith("numcodecs."):
        return {"id": codec.name.removeprefix("numcodecs."), **config}
    if codec.name in _TIFF_CODECS_V2 and not (
        codec.name == "vz.lerc" and config.get("compression", "none") != "none"
    ):
        codec_id = _TIFF_CODECS_V2[codec.name]
        if codec.name == "vz.jpeg":
            return {"id": codec_id, **{k: v for k, v in config.items() if v is not None}}
        return {"id": codec_id}
    raise UnsupportedCodecError(f"codec {codec} has no zarr v2 (numcodecs) equivalent")


# ---- TIFF segment codecs (vzcore.tiff_codecs) ----
# imagecodecs' numcodecs codecs that decode the same segments to the same bytes (their
# configuration keys match; JPEG's tables are base64 in both).
_TIFF_CODECS_V2 = {
    "vz.lzw": "imagecodecs_lzw",
    "vz.packbits": "imagecodecs_packbits",
    "vz.bitorder": "imagecodecs_bitorder",
    "vz.jpeg": "imagecodecs_jpeg",
    "vz.webp": "imagecodecs_webp",
    "vz.jpegxl": "imagecodecs_jpegxl",
    "vz.jpeg2k": "imagecodecs_jpeg2k",
    "vz.jpegxr": "imagecodecs_jpegxr",
    "vz.png": "imagecodecs_png",
    "vz.lerc": "imagecodecs_lerc",
}
# ---- end TIFF ----


# Array-to-bytes codecs of vz's formats with a numcodecs twin (vzcore.numcodecs_codecs,
# found through the ``numcodecs.codecs`` entry points): in zarr v2 the codec is the
# compressor, and the twin is told the dtype to give the decoded values as.
_SERIALIZERS_V2 = frozenset({"vz.grib"})


def v3_serializer_to_v2(codec: CodecSpec, dtype: np.dtype[Any]) -> dict[str, JSON] | None:
    """The numcodecs config standing for a whole-chunk array-to-bytes codec, if it has one.

    >>> v3_serializer_to_v2(CodecSpec.from_dict({"name": "vz.grib"}), np.dtype("<f4"))
    {'id': 'vz.grib', 'field': 0, 'dtype': '<f4'}
    """
    if codec.name not in _SERIALIZERS_V2:
        return None
    config: dict[str, JSON] = {
        "id": codec.name,
        "field": codec.configuration.get("field", 0),
        "dtype": dtype.str,
    }
    if codec.configuration.get("order", "rows") != "rows":
        config["order"] = codec.configuration["order"]
    return config


def v2_serializer_to_v3(config: object) -> CodecSpec | None:
    """The zarr v3 codec of a numcodecs config made by `v3_serializer_to_v2`, else None."""
    if not isinstance(config, Mapping) or config.get("id") not in _SERIALIZERS_V2:
        return None
    params = {k: v for k, v in config.items() if k not in ("id", "dtype")}
    return normalize_codec(CodecSpec(str(config["id"]), canonical_json(params)))


def v2_codec_to_v3(config: Mapping[str, Any], *, itemsize: int) -> CodecSpec:
    """The zarr v3 codec for a numcodecs config (``{"id": ..., ...}``)."""
    if not isinstance(config, Mapping) or not isinstance(config.get("id"), str):
        raise InvalidMetadataError(
            f"a zarr v2 codec must be a mapping with an 'id', got {config!r}"
        )
    params = {k: v for k, v in config.items() if k != "id"}
    codec_id: str = config["id"]
    if codec_id == "blosc":
        shuffle = params.get("shuffle", 1)
        if shuffle == -1:  # AUTOSHUFFLE: bit shuffle for 1-byte items, byte shuffle otherwise
            shuffle = 2 if itemsize == 1 else 1
        params = {
            "cname": params.get("cname", "lz4"),
            "clevel": params.get("clevel", 5),
            "shuffle": _BLOSC_SHUFFLE_V3.get(shuffle, "shuffle"),
            "typesize": itemsize,
            "blocksize": params.get("blocksize", 0),
        }
    name = codec_id if codec_id in _NATIVE_V3 else f"numcodecs.{codec_id}"
    return normalize_codec(CodecSpec(name, canonical_json(params)))


def codec_names(codecs: Sequence[CodecSpec]) -> str:
    """A short human description of a pipeline, for error messages."""
    return "[" + ", ".join(str(c) for c in codecs) + "]"


# ---- codecs of an array with axes inserted or dropped ---------------------------------------

# Array-to-array and array-to-bytes codecs that act on a chunk's elements in C order and
# whose configuration says nothing about its axes: an axis of length 1 changes nothing.
_AXIS_FREE = frozenset(
    {
        "bytes",
        "endian",
        "vlen-utf8",
        "vlen-bytes",
        "cast_value",
        "scale_offset",
        "numcodecs.astype",
        "numcodecs.bitround",
        "numcodecs.delta",
        "numcodecs.fixedscaleoffset",
        "numcodecs.packbits",
        "numcodecs.pcodec",
        "numcodecs.quantize",
        "numcodecs.zfpy",
        "vz.simple_packing",
        "vz.grib",
    }
)


def codecs_with_axes(
    codecs: Sequence[CodecSpec], axes: AxisMap, *, ndim: int, operation: str
) -> tuple[CodecSpec, ...]:
    """The codec pipeline of an array after axes of length 1 are inserted or dropped.

    Inserting or dropping an axis of chunk length 1 leaves every chunk's bytes as
    they are, but codecs that name the axes must follow: a ``sharding_indexed``
    codec's inner ``chunk_shape`` gets a 1 for each new axis and loses the entry of
    each dropped one (its ``codecs`` and ``index_codecs`` are rewritten the same
    way), and a ``transpose`` codec's ``order`` is renumbered. Where a new axis goes
    in that order does not change the bytes; it goes where an ascending order stays
    ascending, and a full reversal (Fortran order) stays one. Bytes-to-bytes codecs
    and the array codecs known to work on a chunk's elements in C order are kept, and
    so are codecs zarr does not know here (they are taken to work on bytes).

    Parameters
    ----------
    codecs
        The pipeline of the input array.
    axes
        For each axis of the result, the input axis it is, or ``None`` for a new axis
        of length 1. Input axes missing from it are dropped (their chunk length must
        be 1); the kept ones keep their order.
    ndim
        The number of axes of the input.
    operation
        Named in error messages (``"expand_dims"``, ``"squeeze axis 0"``).

    Raises
    ------
    UnsupportedCodecError
        For an array codec vz cannot tell is free of axes, a codec configuration of
        the wrong number of axes, or a dropped axis a shard splits into inner chunks.

    >>> sharding = CodecSpec.from_dict({"name": "sharding_indexed", "configuration": {
    ...     "chunk_shape": [2, 3], "codecs": [{"name": "bytes"}], "index_codecs": [{"name": "bytes"}]}})
    >>> codecs_with_axes([sharding], [None, 0, 1], ndim=2, operation="expand_dims")[0].configuration[
    ...     "chunk_shape"]
    [1, 2, 3]
    """
    kept = [a for a in axes if a is not None]
    if any(not 0 <= a < ndim for a in kept) or kept != sorted(set(kept)):
        raise ValueError(f"axes {list(axes)} do not keep the order of {ndim} axes")
    if len(kept) == ndim == len(axes):
        return tuple(codecs)
    return tuple(_codec_with_axes(c, tuple(axes), ndim, operation) for c in codecs)


@functools.lru_cache(maxsize=1024)
def _codec_with_axes(
    codec: CodecSpec, axes: tuple[int | None, ...], ndim: int, operation: str
) -> CodecSpec:
    if codec.name == "transpose":
        order = codec.configuration.get("order")
        if not isinstance(order, list) or sorted(map(int, order)) != list(range(ndim)):
            raise UnsupportedCodecError(
                f"cannot {operation}: codec {codec} is not a permutation of the {ndim} axes "
                "of the array"
            )
        new_order = _transpose_order([int(a) for a in order], axes)
        return CodecSpec.from_dict({"name": "transpose", "configuration": {"order": new_order}})
    if codec.name == "sharding_indexed":
        return _sharding_with_axes(codec, axes, ndim, operation)
    if codec.name == "vz.delta":
        return _delta_with_axes(codec, axes, ndim, operation)
    if codec.name not in _AXIS_FREE and _is_array_codec(codec.name):
        raise UnsupportedCodecError(
            f"cannot {operation}: codec {codec} works on the chunk as an array, and vz does not "
            "know whether it depends on the array's axes; load the variable instead"
        )
    return codec


def _transpose_order(order: list[int], axes: tuple[int | None, ...]) -> list[int]:
    if len(order) > 1 and order == sorted(order, reverse=True):
        return list(range(len(axes)))[::-1]  # a full reversal (Fortran order) stays one
    new_position = {a: i for i, a in enumerate(axes) if a is not None}
    result = [new_position[a] for a in order if a in new_position]
    for position in (i for i, a in enumerate(axes) if a is None):
        later = [j for j, a in enumerate(result) if a > position]
        result.insert(later[0] if later else len(result), position)
    return result


def _delta_with_axes(
    codec: CodecSpec, axes: tuple[int | None, ...], ndim: int, operation: str
) -> CodecSpec:
    """``vz.delta`` follows its axis to where the axis goes."""
    axis = codec.configuration.get("axis", -1)
    if not isinstance(axis, int) or not -ndim <= axis < ndim:
        raise UnsupportedCodecError(
            f"cannot {operation}: codec {codec} names no axis of the {ndim}-d array"
        )
    if axis % ndim not in axes:
        raise UnsupportedCodecError(
            f"cannot {operation}: codec {codec} works along axis {axis % ndim}, which is dropped"
        )
    return CodecSpec.from_dict(
        {"name": "vz.delta", "configuration": {"axis": axes.index(axis % ndim)}}
    )


def _sharding_with_axes(
    codec: CodecSpec, axes: tuple[int | None, ...], ndim: int, operation: str
) -> CodecSpec:
    config = codec.configuration
    inner = config.get("chunk_shape")
    if not isinstance(inner, list) or len(inner) != ndim:
        raise UnsupportedCodecError(
            f"cannot {operation}: codec {codec} has an inner chunk_shape that does not have "
            f"the array's {ndim} axes"
        )
    dropped = sorted(set(range(ndim)) - {a for a in axes if a is not None})
    split = [a for a in dropped if inner[a] != 1]
    if split:
        raise UnsupportedCodecError(
            f"cannot {operation}: codec {codec} splits axis {split[0]} into inner chunks of "
            f"length {inner[split[0]]}, and only an axis of inner chunk length 1 can be dropped"
        )
    config["chunk_shape"] = [1 if a is None else inner[a] for a in axes]
    # The shard index has one more, trailing axis (offset and length of each inner chunk).
    index_axes = (*axes, ndim)
    for key, key_axes, key_ndim in (
        ("codecs", axes, ndim),
        ("index_codecs", index_axes, ndim + 1),
    ):
        specs = config.get(key)
        if isinstance(specs, list):
            config[key] = [
                _codec_with_axes(CodecSpec.from_dict(s), key_axes, key_ndim, operation).to_dict()
                for s in specs
            ]
    return CodecSpec.from_dict({"name": codec.name, "configuration": config})


@functools.lru_cache(maxsize=256)
def _is_array_codec(name: str) -> bool:
    from zarr.abc.codec import ArrayArrayCodec, ArrayBytesCodec
    from zarr.errors import UnknownCodecError
    from zarr.registry import get_codec_class

    try:
        return issubclass(get_codec_class(name), ArrayArrayCodec | ArrayBytesCodec)
    except (UnknownCodecError, KeyError):
        return False
