"""`ArrayMetadata`: everything about an array but its chunk locations.

The dtype is the decoded, in-memory type in native byte order; the byte order
on disk lives where zarr v3 puts it, in the ``bytes`` codec.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, Self

import attrs
import numpy as np
import numpy.typing as npt
from numpy.lib.recfunctions import repack_fields

from vzcore._frozen import JSON, FrozenDict, freeze_json, thaw_json
from vzcore.cf import encoding_conflicts, normalize_encoding, split_attributes, stored_attributes
from vzcore.codecs import (
    CodecSpec,
    normalize_codec,
    v2_codec_to_v3,
    v2_serializer_to_v3,
    v3_codec_to_v2,
    v3_serializer_to_v2,
)
from vzcore.errors import InvalidMetadataError, RectilinearGridError, UnsupportedCodecError
from vzcore.grid import (
    ChunkGrid,
    GridShape,
    RegularChunkGrid,
    as_chunk_grid,
    canonical_grid,
    describe_grid,
    expand_run_lengths,
    integer_tuple,
)
from vzcore.limits import check_count

if TYPE_CHECKING:
    from zarr.core.dtype.wrapper import ZDType
    from zarr.core.metadata.v3 import ArrayV3Metadata

__all__ = ["ArrayMetadata", "byte_order", "check_in_memory_size", "checked_grid"]

DimensionNames = tuple[str | None, ...] | None


@functools.lru_cache(maxsize=256)
def _zdtype(dtype: np.dtype[Any]) -> ZDType[Any, Any]:
    from zarr.core.dtype import parse_data_type

    return parse_data_type(dtype, zarr_format=3)


_INT64_MAX = 2**63 - 1


def _to_shape(value: Sequence[int]) -> tuple[int, ...]:
    return integer_tuple(value, "shape")


def _to_grid(value: ChunkGrid | Sequence[int | Sequence[int]]) -> ChunkGrid:
    try:
        return as_chunk_grid(value)
    except InvalidMetadataError:
        raise
    except (TypeError, ValueError) as err:
        raise InvalidMetadataError(f"invalid chunk grid {value!r}: {err}") from err


def _to_dtype(value: npt.DTypeLike) -> np.dtype[Any]:
    dtype = np.dtype(value)
    if dtype.names is not None:
        # Every field in native order (numpy applies the order to each field, recursively).
        dtype = dtype.newbyteorder("=")
        packed = repack_fields(dtype, recurse=True)
        if packed != dtype:
            raise InvalidMetadataError(
                f"structured dtype {dtype} has padding or fields out of offset order; "
                f"zarr stores the fields packed in order ({packed})"
            )
    elif dtype.byteorder in "<>":
        dtype = dtype.newbyteorder("=")
    try:
        _zdtype(dtype)
    except (TypeError, ValueError) as err:
        reason = f" ({err})" if dtype.names is not None else ""
        raise InvalidMetadataError(f"zarr has no data type for {dtype}{reason}") from err
    return dtype


def byte_order(dtype: np.dtype[Any]) -> Literal["big", "little"] | None:
    """The byte order of a dtype's multi-byte items (None when it has none).

    A structured dtype has one when all its multi-byte fields share it (zarr's
    ``bytes`` codec stores every field in one order).

    >>> byte_order(np.dtype(">i4")), byte_order(np.dtype([("a", "u1"), ("b", "S3")]))
    ('big', None)

    Raises
    ------
    InvalidMetadataError
        If the fields of a structured dtype mix byte orders.
    """
    orders = set(_leaf_byte_orders(dtype))
    if len(orders) > 1:
        raise InvalidMetadataError(
            f"structured dtype {dtype} mixes big- and little-endian fields; "
            "zarr stores every field of a struct in one byte order"
        )
    return orders.pop() if orders else None


def _leaf_byte_orders(dtype: np.dtype[Any]) -> Iterator[Literal["big", "little"]]:
    if dtype.fields is not None:
        for field_dtype, *_ in dtype.fields.values():
            yield from _leaf_byte_orders(field_dtype)
    elif dtype.subdtype is not None:
        yield from _leaf_byte_orders(dtype.subdtype[0])
    elif dtype.byteorder != "|":
        native = "big" if sys.byteorder == "big" else "little"
        yield {">": "big", "<": "little"}.get(dtype.byteorder, native)  # type: ignore[misc]


def _to_fill_value(value: object, self_: Any) -> np.generic:
    zdtype = _zdtype(self_.dtype)
    try:
        if value is None:
            scalar = zdtype.default_scalar()
        elif isinstance(value, str) and self_.dtype.kind in "fc":
            scalar = zdtype.from_json_scalar(value, zarr_format=3)
        elif isinstance(value, list | tuple) and self_.dtype.kind == "c":
            # zarr's JSON form [real, imaginary], each a number or "NaN", "Infinity"...
            scalar = zdtype.from_json_scalar(list(value), zarr_format=3)
        else:
            scalar = zdtype.cast_scalar(value)
    except (TypeError, ValueError, OverflowError) as err:
        raise InvalidMetadataError(f"fill value {value!r} is not a {self_.dtype}: {err}") from err
    result: np.generic = np.asarray(scalar, dtype=self_.dtype)[()]  # type: ignore[assignment]
    return _standard_nan(result)


def _standard_nan(value: np.generic) -> np.generic:
    """``value`` with each NaN part made the standard NaN (zarr writes every NaN "NaN").

    The parts of a complex value are separate: ``nan+1j`` keeps its imaginary part.
    """
    kind = getattr(value, "dtype", np.dtype(object)).kind  # variable-length strings are str
    if kind not in "fc" or not np.isnan(value):
        return value
    parts = (value.real, value.imag) if kind == "c" else (value,)
    standard = [np.nan if np.isnan(p) else p for p in parts]
    standard_value = complex(*standard) if kind == "c" else standard[0]
    result: np.generic = np.asarray(standard_value, dtype=value.dtype)[()]  # type: ignore[assignment]
    return result


def _same_scalar(a: np.generic, b: np.generic) -> bool:
    # Bitwise, so that NaN fill values compare equal to themselves.
    return bool(a.dtype == b.dtype and a.tobytes() == b.tobytes())


def _default_codecs(self_: Any) -> tuple[CodecSpec, ...]:
    return (_bytes_codec(self_.dtype, "little"),)


def _has_endian(dtype: np.dtype[Any]) -> bool:
    """Whether zarr's ``bytes`` codec states an endian for ``dtype`` (as zarr decides it)."""
    if dtype.names is None:
        return dtype.itemsize > 1
    return any(dtype[name].itemsize > 1 for name in dtype.names)


def _bytes_codec(dtype: np.dtype[Any], endian: str | None) -> CodecSpec:
    if not _has_endian(dtype):
        return CodecSpec("bytes")
    return CodecSpec.from_dict({"name": "bytes", "configuration": {"endian": endian}})


def _to_codecs(
    value: Sequence[CodecSpec | Mapping[str, Any] | str], self_: ArrayMetadata
) -> tuple[CodecSpec, ...]:
    codecs = tuple(_with_itemsize(normalize_codec_spec(c), self_.dtype) for c in value)
    # The byte order of 1-byte items is meaningless: drop it so pipelines compare equal.
    if not _has_endian(self_.dtype):
        codecs = tuple(CodecSpec("bytes") if c.name == "bytes" else c for c in codecs)
        return codecs
    if _needs_endian(self_.dtype) and any(
        c.name == "bytes" and "endian" not in c.configuration for c in codecs
    ):
        # zarr opens no multi-byte array whose bytes codec states no endian: state the
        # dtype's own (a zarr.json without one is refused where it is parsed).
        endian = "big" if _byteorder(self_.dtype) == ">" else "little"
        codecs = tuple(
            _bytes_codec(self_.dtype, endian) if c.name == "bytes" else c for c in codecs
        )
    return codecs


def _needs_endian(dtype: np.dtype[Any]) -> bool:
    """Whether zarr's ``bytes`` codec needs an endian for ``dtype`` (bytes strings do not)."""
    if dtype.names is None:
        return dtype.itemsize > 1 and dtype.byteorder != "|"
    return any(_needs_endian(dtype[name]) for name in dtype.names)


def _byteorder(dtype: np.dtype[Any]) -> str:
    """``>`` or ``<`` (native resolved) of the first multi-byte field of ``dtype``."""
    if dtype.names is not None:
        return next(_byteorder(dtype[n]) for n in dtype.names if _needs_endian(dtype[n]))
    order = dtype.byteorder
    return ("<" if np.little_endian else ">") if order == "=" else order


def _v3_endian_problems(codecs: list[Any], dtype: np.dtype[Any]) -> list[str]:
    """A zarr.json ``bytes`` codec without an endian for a multi-byte type (zarr refuses it)."""
    if not _needs_endian(dtype):
        return []
    for codec in codecs:
        name = (
            codec
            if isinstance(codec, str)
            else codec.get("name")
            if isinstance(codec, dict)
            else None
        )
        config = codec.get("configuration") if isinstance(codec, dict) else None
        if name == "bytes" and not (isinstance(config, dict) and "endian" in config):
            return [f"the bytes codec of a {dtype} array states no endian ('little' or 'big')"]
    return []


def normalize_codec_spec(codec: CodecSpec | Mapping[str, Any] | str) -> CodecSpec:
    return codec if isinstance(codec, CodecSpec) else CodecSpec.from_dict(codec)


def _with_itemsize(codec: CodecSpec, dtype: np.dtype[Any]) -> CodecSpec:
    """Normalise, filling a shuffle's element size from the dtype as zarr v3 does."""
    if codec.name == "numcodecs.shuffle" and "elementsize" not in codec.configuration:
        codec = CodecSpec.from_dict(
            {"name": codec.name, "configuration": {"elementsize": dtype.itemsize}}
        )
    return normalize_codec(codec)


@functools.lru_cache(maxsize=256)
def _is_array_to_bytes(name: str) -> bool:
    from zarr.abc.codec import ArrayBytesCodec
    from zarr.errors import UnknownCodecError
    from zarr.registry import get_codec_class

    try:
        return issubclass(get_codec_class(name), ArrayBytesCodec)
    except (UnknownCodecError, KeyError):
        return False


def _to_dimension_names(value: Sequence[str | None] | None) -> DimensionNames:
    # A 0-d array has no dimensions to name: "no names" and "()" are one value.
    if value is None:
        return None
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise InvalidMetadataError(f"dimension names must be a list, got {value!r}"[:200])
    if len(value) == 0:
        return None
    return tuple(None if v is None else str(v) for v in value)


def _to_attributes(value: Mapping[str, Any] | None) -> FrozenDict[str, JSON]:
    frozen: FrozenDict[str, JSON] = freeze_json(value or {})
    return frozen


@attrs.frozen(kw_only=True)
class ArrayMetadata:
    """Shape, chunk grid, dtype, fill value, codecs, dimension names and attributes.

    >>> meta = ArrayMetadata(shape=(10, 4), chunk_grid=(5, 4), dtype="<f4")
    >>> meta.chunk_shape, meta.grid_shape, meta.codecs[0].to_dict()
    ((5, 4), (2, 1), {'name': 'bytes', 'configuration': {'endian': 'little'}})
    """

    shape: tuple[int, ...] = attrs.field(converter=_to_shape)
    chunk_grid: ChunkGrid = attrs.field(converter=_to_grid)
    dtype: np.dtype[Any] = attrs.field(converter=_to_dtype)
    fill_value: np.generic = attrs.field(
        default=None,
        converter=attrs.Converter(_to_fill_value, takes_self=True),  # type: ignore[misc]
        eq=attrs.cmp_using(eq=_same_scalar),
        hash=False,
    )
    codecs: tuple[CodecSpec, ...] = attrs.field(
        default=attrs.Factory(_default_codecs, takes_self=True),
        converter=attrs.Converter(_to_codecs, takes_self=True),  # type: ignore[misc,call-overload]
    )
    dimension_names: DimensionNames = attrs.field(default=None, converter=_to_dimension_names)
    attributes: FrozenDict[str, JSON] = attrs.field(factory=FrozenDict, converter=_to_attributes)
    encoding: FrozenDict[str, JSON] = attrs.field(factory=FrozenDict, converter=_to_attributes)
    """The CF encoding (packing, missing-value markers, time units): see `vzcore.cf`.

    CF encoding keys given in ``attributes`` are moved here, so that no xarray
    call that drops attributes can change what the stored numbers mean.
    """

    def __attrs_post_init__(self) -> None:
        problems = self._settle_encoding()
        if any(s < 0 for s in self.shape):
            problems.append(f"shape {self.shape} has a negative length")
        elif math.prod(self.shape) > _INT64_MAX:
            problems.append(f"shape {self.shape} has more than 2**63 - 1 elements")
        if any(c > _INT64_MAX for c in self.chunk_grid.max_chunk_shape()):
            problems.append(f"{describe_grid(self.chunk_grid)} has a length above 2**63 - 1")
        if self.chunk_grid.ndim != len(self.shape):
            problems.append(
                f"{describe_grid(self.chunk_grid)} has {self.chunk_grid.ndim} axes, "
                f"shape {self.shape} has {len(self.shape)}"
            )
        elif not any(s < 0 for s in self.shape):
            try:
                grid = canonical_grid(self.chunk_grid, self.shape)
            except InvalidMetadataError as err:
                problems.append(str(err))
            else:
                if grid != self.chunk_grid:
                    # Constructor-time normalisation: one value per grid, so equality works.
                    object.__setattr__(self, "chunk_grid", grid)
        if self.dimension_names is not None and len(self.dimension_names) != len(self.shape):
            problems.append(
                f"dimension names {self.dimension_names} do not match shape {self.shape}"
            )
        if problems:
            raise InvalidMetadataError("; ".join(problems), problems=problems)

    def _settle_encoding(self) -> list[str]:
        """Move CF keys out of the attributes; report conflicts and malformed encodings."""
        plain, moved = split_attributes(self.attributes, context=self.encoding)
        problems = [
            f"attribute {key}={a!r} contradicts the encoding's {key}={b!r}"
            for key, a, b in encoding_conflicts(moved, self.encoding)
        ]
        try:
            encoding = normalize_encoding({**moved, **self.encoding}, self.dtype)
        except (TypeError, ValueError) as err:
            return [*problems, f"invalid CF encoding: {err}"]
        if moved or encoding != self.encoding:
            # Constructor-time normalisation of this instance's own fields.
            object.__setattr__(self, "attributes", _to_attributes(plain))
            object.__setattr__(self, "encoding", _to_attributes(encoding))
        return problems

    @property
    def stored_attributes(self) -> dict[str, JSON]:
        """The attributes as stored: plain attributes and the CF encoding, merged (fresh)."""
        merged: dict[str, JSON] = thaw_json(stored_attributes(self.attributes, self.encoding))
        return merged

    @classmethod
    def create(
        cls,
        *,
        shape: Sequence[int],
        chunk_shape: Sequence[int | Sequence[int]] | ChunkGrid,
        dtype: npt.DTypeLike,
        fill_value: object = None,
        codecs: Sequence[CodecSpec | Mapping[str, Any] | str] | None = None,
        dimension_names: Sequence[str | None] | None = None,
        attributes: Mapping[str, Any] | None = None,
        encoding: Mapping[str, Any] | None = None,
    ) -> Self:
        """Build metadata, deriving the ``bytes`` codec's endianness from ``dtype``.

        ``codecs`` lists the codecs after the ``bytes`` codec (compressors, checksums);
        a pipeline that names its own ``bytes`` (or other array-to-bytes) codec is
        taken as given.

        >>> ArrayMetadata.create(shape=(4,), chunk_shape=(2,), dtype=">i2").codecs[0].to_dict()
        {'name': 'bytes', 'configuration': {'endian': 'big'}}
        """
        np_dtype = np.dtype(dtype)
        given = [
            CodecSpec.from_dict(c) if not isinstance(c, CodecSpec) else c for c in codecs or ()
        ]
        if not any(_is_array_to_bytes(c.name) for c in given):
            given.insert(0, _bytes_codec(np_dtype, _stored_order(np_dtype)))
        return cls(
            shape=shape,
            chunk_grid=chunk_shape,
            dtype=np_dtype,
            fill_value=fill_value,
            codecs=given,
            dimension_names=dimension_names,
            attributes=attributes,
            encoding=encoding,
        )

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def chunk_shape(self) -> tuple[int, ...]:
        """The shape of every chunk of a regular grid.

        Raises
        ------
        RectilinearGridError
            If the grid is rectilinear (ask ``chunk_grid`` for the chunks' lengths).
        """
        return self.chunk_grid.chunk_shape

    @property
    def is_regular(self) -> bool:
        """Whether every chunk has one shape (the grid is a `RegularChunkGrid`)."""
        return isinstance(self.chunk_grid, RegularChunkGrid)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """Number of chunks along each axis."""
        return self.chunk_grid.grid_shape(self.shape)

    @property
    def endian(self) -> str | None:
        """Byte order of the stored items, from the ``bytes`` codec (None if it has none)."""
        for codec in self.codecs:
            if codec.name == "bytes":
                endian = codec.configuration.get("endian")
                return endian if isinstance(endian, str) else None
        return None

    def evolve(self, **changes: Any) -> ArrayMetadata:
        """A copy with some fields replaced (the original is untouched)."""
        return attrs.evolve(self, **changes)

    # ---- zarr v3 -------------------------------------------------------------------------

    def to_zarr_v3(self) -> dict[str, JSON]:
        """The ``zarr.json`` document of this array (a fresh dict)."""
        zdtype = _zdtype(self.dtype)
        doc: dict[str, JSON] = {
            "zarr_format": 3,
            "node_type": "array",
            "shape": list(self.shape),
            "data_type": zdtype.to_json(zarr_format=3),
            "chunk_grid": self.chunk_grid.to_zarr_v3(self.shape),
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": zdtype.to_json_scalar(self.fill_value, zarr_format=3),
            "codecs": [c.to_dict() for c in self.codecs],
            "attributes": self.stored_attributes,
            "storage_transformers": [],
        }
        if self.dimension_names is not None:
            doc["dimension_names"] = list(self.dimension_names)
        return doc

    @classmethod
    def from_zarr_v3(cls, metadata: Mapping[str, Any] | ArrayV3Metadata) -> Self:
        """Parse a zarr v3 ``zarr.json`` dict (or zarr's `ArrayV3Metadata`).

        Every problem found is reported at once in one `InvalidMetadataError`.
        """
        doc: Mapping[str, Any] = metadata if isinstance(metadata, Mapping) else metadata.to_dict()
        with _malformed("invalid zarr v3 metadata"):
            return cls._from_zarr_v3(doc)

    @classmethod
    def _from_zarr_v3(cls, doc: Mapping[str, Any]) -> Self:
        required = ("shape", "data_type", "chunk_grid", "codecs")
        problems = [f"missing {key!r}" for key in required if key not in doc]
        if problems:
            raise InvalidMetadataError(
                "invalid zarr v3 metadata: " + "; ".join(problems), problems=problems
            )
        dtype = _parse_v3_dtype(doc["data_type"], problems)
        chunk_grid = _parse_v3_grid(doc["chunk_grid"], problems)
        problems += _type_problems(
            doc,
            (
                ("shape", list, False),
                ("codecs", list, False),
                ("dimension_names", list, True),
                ("attributes", dict, True),
            ),
        )
        if dtype is not None and not problems:
            problems += _v3_endian_problems(doc["codecs"], dtype)
        if problems or dtype is None or chunk_grid is None:
            raise InvalidMetadataError(
                "invalid zarr v3 metadata: " + "; ".join(problems), problems=problems
            )
        fill = _parse_fill(doc.get("fill_value"), dtype, 3)
        return cls(
            shape=doc["shape"],
            chunk_grid=chunk_grid,
            dtype=dtype,
            fill_value=fill,
            codecs=doc["codecs"],
            dimension_names=doc.get("dimension_names"),
            attributes=doc.get("attributes"),
        )

    # ---- zarr v2 -------------------------------------------------------------------------

    def to_zarr_v2(self) -> tuple[dict[str, JSON], dict[str, JSON]]:
        """The ``.zarray`` and ``.zattrs`` documents (``_ARRAY_DIMENSIONS`` in the latter).

        Raises
        ------
        UnsupportedCodecError
            If the codec pipeline has no zarr v2 form (no ``bytes`` codec, a codec
            numcodecs lacks, a transpose other than a full reversal).
        """
        if not isinstance(self.chunk_grid, RegularChunkGrid):
            raise RectilinearGridError(
                f"the array has a rectilinear chunk grid ({describe_grid(self.chunk_grid)}): "
                "zarr v2 (and Kerchunk) store only regular grids; write it to Icechunk or "
                "manifest parquet, or make the grid regular (vzcore.regularize)"
            )
        names = [c.name for c in self.codecs]
        stored_dtype = self.dtype
        if self.endian is not None:
            stored_dtype = self.dtype.newbyteorder(">" if self.endian == "big" else "<")
        serializer = (
            v3_serializer_to_v2(self.codecs[0], stored_dtype) if len(self.codecs) == 1 else None
        )
        if serializer is not None:  # a whole-chunk format codec (vz.grib) is the compressor
            return self._v2_documents([serializer], "C", stored_dtype)
        if "bytes" not in names:
            raise UnsupportedCodecError(
                f"codecs {names} have no 'bytes' codec: zarr v2 cannot express this pipeline"
            )
        split = names.index("bytes")
        order = "C"
        array_filters: list[dict[str, JSON]] = []
        reversed_axes = list(range(self.ndim))[::-1]
        for codec in self.codecs[:split]:
            if codec.name == "transpose" and list(codec.configuration["order"]) == reversed_axes:
                order = "F"
            elif codec.name.startswith("numcodecs."):
                array_filters.append(v3_codec_to_v2(codec))
            else:
                raise UnsupportedCodecError(f"codec {codec} before 'bytes' has no zarr v2 form")
        v2_codecs = array_filters + [v3_codec_to_v2(c) for c in self.codecs[split + 1 :]]
        return self._v2_documents(v2_codecs, order, stored_dtype)

    def _v2_documents(
        self, v2_codecs: list[dict[str, JSON]], order: str, stored_dtype: np.dtype[Any]
    ) -> tuple[dict[str, JSON], dict[str, JSON]]:
        zdtype = _zdtype(stored_dtype)
        zarray: dict[str, JSON] = {
            "zarr_format": 2,
            "shape": list(self.shape),
            "chunks": list(self.chunk_shape),
            "dtype": zdtype.to_json(zarr_format=2)["name"],
            "compressor": v2_codecs[-1] if v2_codecs else None,
            "filters": v2_codecs[:-1] or None,
            "fill_value": zdtype.to_json_scalar(self.fill_value, zarr_format=2),
            "order": order,
            "dimension_separator": ".",
        }
        zattrs: dict[str, JSON] = self.stored_attributes
        if self.dimension_names is not None or self.ndim == 0:
            zattrs["_ARRAY_DIMENSIONS"] = list(self.dimension_names or ())
        return zarray, zattrs

    @classmethod
    def from_zarr_v2(
        cls, zarray: Mapping[str, Any], zattrs: Mapping[str, Any] | None = None
    ) -> Self:
        """Parse a ``.zarray`` (and ``.zattrs``) into metadata with a zarr v3 codec pipeline.

        Every problem of the document's structure is reported at once in one
        `InvalidMetadataError`.
        """
        with _malformed("invalid .zarray"):
            return cls._from_zarr_v2(zarray, zattrs)

    @classmethod
    def _from_zarr_v2(cls, zarray: Mapping[str, Any], zattrs: Mapping[str, Any] | None) -> Self:
        problems = [f"missing {k!r}" for k in ("shape", "chunks", "dtype") if k not in zarray]
        problems += _type_problems(
            zarray,
            (
                ("shape", list, False),
                ("chunks", list, False),
                ("filters", list, True),
                ("compressor", dict, True),
            ),
        )
        if zarray.get("order", "C") not in ("C", "F"):
            problems.append(f"order must be 'C' or 'F', got {zarray['order']!r}")
        if zarray.get("dimension_separator", ".") not in (".", "/", None):
            problems.append(
                f"dimension_separator must be '.' or '/', got {zarray['dimension_separator']!r}"
            )
        if problems:
            raise InvalidMetadataError("invalid .zarray: " + "; ".join(problems), problems=problems)
        from zarr.core.dtype import get_data_type_from_json

        try:
            zdtype = get_data_type_from_json(
                {"name": zarray["dtype"], "object_codec_id": _v2_object_codec_id(zarray)},
                zarr_format=2,
            )
        except (TypeError, ValueError, KeyError) as err:
            raise InvalidMetadataError(f"invalid .zarray dtype {zarray['dtype']!r}: {err}") from err
        stored = zdtype.to_native_dtype()
        codecs = _v2_pipeline(zarray, stored)
        fill = _parse_fill(zarray.get("fill_value"), stored, 2)
        attributes = dict(zattrs or {})
        dims = attributes.pop("_ARRAY_DIMENSIONS", None)
        return cls(
            shape=zarray["shape"],
            chunk_grid=zarray["chunks"],
            dtype=stored,
            fill_value=fill,
            codecs=codecs,
            dimension_names=dims,
            attributes=attributes,
        )

    def __repr__(self) -> str:
        return (
            f"ArrayMetadata(shape={self.shape}, {_grid_text(self.chunk_grid)}, dtype={self.dtype}, "
            f"fill_value={self.fill_value!r}, codecs=[{', '.join(map(str, self.codecs))}], "
            f"dimension_names={self.dimension_names}"
            + (f", encoding={dict(self.encoding)}" if self.encoding else "")
            + ")"
        )


_JSON_KINDS: dict[type, tuple[str, tuple[type, ...]]] = {
    list: ("a list", (list, tuple)),
    dict: ("an object", (Mapping,)),
}


def _type_problems(
    document: Mapping[str, Any], expected: Sequence[tuple[str, type, bool]]
) -> list[str]:
    """Keys of ``document`` whose value is not of the JSON type expected (None allowed if so)."""
    problems = []
    for key, kind, nullable in expected:
        if key not in document or (nullable and document[key] is None):
            continue
        label, accepted = _JSON_KINDS[kind]
        if not isinstance(document[key], accepted):
            problems.append(
                f"{key!r} must be {label}{' or null' if nullable else ''}, "
                f"got {type(document[key]).__name__}"
            )
    return problems


@contextmanager
def _malformed(what: str) -> Iterator[None]:
    """Whatever a malformed document makes the parsing code trip on, as `InvalidMetadataError`.

    The checks before it name most problems; this catches the shapes of nonsense
    they did not foresee (a codec list of numbers, a dict where a list belongs).
    """
    try:
        yield
    except InvalidMetadataError:
        raise
    except UnsupportedCodecError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError) as err:
        raise InvalidMetadataError(f"{what}: {type(err).__name__}: {err}") from err


def checked_grid(metadata: ArrayMetadata, where: str) -> GridShape:
    """The grid shape of ``metadata``, refused if it has more chunks than ``max_chunks``.

    Parsers call it before building a manifest, which holds a row per chunk.

    Raises
    ------
    LimitExceededError
        If the grid has more chunks than the current ``max_chunks``.
    """
    grid = metadata.grid_shape
    check_count("max_chunks", grid, where, f"the chunk grid {grid}'s number of chunks")
    return grid


def check_in_memory_size(metadata: ArrayMetadata, where: str) -> None:
    """Refuse an array, or one chunk of it, larger than ``max_inline_bytes`` decoded.

    For arrays vz would build in memory (inline chunks, loaded arrays) before it
    decodes anything.
    """
    itemsize = metadata.dtype.itemsize
    check_count(
        "max_inline_bytes",
        (
            itemsize,
            max(math.prod(metadata.shape), math.prod(metadata.chunk_grid.max_chunk_shape())),
        ),
        where,
        f"the decoded size of the array (shape {metadata.shape}, "
        f"{describe_grid(metadata.chunk_grid)}, {metadata.dtype})",
    )


def _v2_object_codec_id(zarray: Mapping[str, Any]) -> str | None:
    """The codec that stores the items of an object (``|O``) array, as zarr finds it."""
    from zarr.core.metadata.v2 import get_object_codec_id

    codecs = [*(zarray.get("filters") or []), zarray.get("compressor")]
    return get_object_codec_id(codecs) if zarray.get("dtype") == "|O" else None


def _parse_fill(value: JSON, dtype: np.dtype[Any], zarr_format: Literal[2, 3]) -> object:
    if value is None:
        return None
    try:
        return _zdtype(dtype).from_json_scalar(value, zarr_format=zarr_format)
    except (TypeError, ValueError, OverflowError) as err:
        raise InvalidMetadataError(f"fill_value {value!r} is not a valid {dtype}: {err}") from err


def _parse_v3_dtype(value: JSON, problems: list[str]) -> np.dtype[Any] | None:
    from zarr.core.dtype import get_data_type_from_json

    try:
        return get_data_type_from_json(value, zarr_format=3).to_native_dtype()
    except (TypeError, ValueError, KeyError) as err:
        problems.append(f"unknown data_type {value!r} ({err})")
        return None


def _grid_text(grid: ChunkGrid) -> str:
    if isinstance(grid, RegularChunkGrid):
        return f"chunk_shape={grid.chunk_shape}"
    return "chunk_lengths=" + describe_grid(grid).removeprefix("chunk lengths ")


def _parse_v3_grid(value: JSON, problems: list[str]) -> ChunkGrid | None:
    name = value.get("name") if isinstance(value, Mapping) else None
    configuration = value.get("configuration", {}) if isinstance(value, Mapping) else {}
    if name == "rectilinear" and isinstance(configuration, Mapping):
        return _parse_rectilinear(value, configuration, problems)
    if name != "regular" or not isinstance(configuration, Mapping):
        problems.append(
            f"unsupported chunk_grid {value!r} (only 'regular' and 'rectilinear' are supported)"
        )
        return None
    chunk_shape = configuration.get("chunk_shape")
    if not isinstance(chunk_shape, list | tuple):
        problems.append(f"chunk_grid has no chunk_shape list: {value!r}")
        return None
    try:
        return RegularChunkGrid(integer_tuple(chunk_shape, "chunk_shape"))
    except InvalidMetadataError as err:
        problems.append(str(err))
        return None


def _parse_rectilinear(
    value: JSON, configuration: Mapping[str, Any], problems: list[str]
) -> ChunkGrid | None:
    """zarr's rectilinear grid: per axis a regular length, or lengths with ``[length, count]`` runs."""
    if configuration.get("kind") != "inline":
        problems.append(f"rectilinear chunk_grid kind must be 'inline': {value!r}")
        return None
    shapes = configuration.get("chunk_shapes")
    if not isinstance(shapes, Sequence) or isinstance(shapes, str):
        problems.append(f"rectilinear chunk_grid has no chunk_shapes list: {value!r}")
        return None
    axes: list[int | tuple[int, ...]] = []
    for axis, spec in enumerate(shapes):
        try:
            if isinstance(spec, Sequence) and not isinstance(spec, str):
                axes.append(expand_run_lengths(spec, axis))
            elif isinstance(spec, int) and not isinstance(spec, bool) and spec >= 1:
                axes.append(spec)
            else:
                raise InvalidMetadataError(
                    f"chunk_shapes entry {spec!r} along axis {axis} is neither a positive "
                    "integer nor a list of chunk lengths"
                )
        except InvalidMetadataError as err:
            problems.append(str(err))
    return None if len(axes) != len(shapes) else as_chunk_grid(axes)


def _v2_pipeline(zarray: Mapping[str, Any], stored: np.dtype[Any]) -> list[CodecSpec]:
    import zarr.abc.codec
    from zarr.errors import UnknownCodecError
    from zarr.registry import get_codec_class

    before: list[CodecSpec] = []
    after: list[CodecSpec] = []
    if zarray.get("order", "C") == "F" and len(zarray["shape"]) > 1:
        order = list(range(len(zarray["shape"])))[::-1]
        before.append(CodecSpec.from_dict({"name": "transpose", "configuration": {"order": order}}))
    # An object array's codec (vlen-utf8, vlen-bytes) turns its items into bytes: in
    # zarr v3 it is the array-to-bytes codec, in place of "bytes".
    object_codec = _v2_object_codec_id(zarray)
    if not zarray.get("filters") and (whole := v2_serializer_to_v3(zarray.get("compressor"))):
        return [whole]  # a whole-chunk format codec (vz.grib) as the compressor
    for config in [*(zarray.get("filters") or []), zarray.get("compressor")]:
        if config is None or (object_codec is not None and config.get("id") == object_codec):
            continue
        _check_v2_codec(config)
        codec = v2_codec_to_v3(config, itemsize=stored.itemsize)
        try:
            is_array_codec = issubclass(get_codec_class(codec.name), zarr.abc.codec.ArrayArrayCodec)
        except (UnknownCodecError, KeyError):
            is_array_codec = False
        (before if is_array_codec else after).append(codec)
    serializer = (
        CodecSpec(object_codec) if object_codec else _bytes_codec(stored, _stored_order(stored))
    )
    return [*before, serializer, *after]


def _check_v2_codec(config: Mapping[str, Any]) -> None:
    """Refuse a codec configuration its numcodecs codec does not take (an unknown key, a
    value of the wrong kind): zarr and numcodecs fail on it only when a chunk is read."""
    import numcodecs
    import numcodecs.errors

    try:
        numcodecs.get_codec(dict(config))
    except numcodecs.errors.UnknownCodecError:
        return  # an unknown codec is refused, or read through zarr, where chunks are read
    except (TypeError, ValueError, KeyError) as err:
        raise InvalidMetadataError(
            f"codec {config.get('id')!r}: its configuration {dict(config)} is not the "
            f"codec's ({err})"
        ) from err


def _stored_order(dtype: np.dtype[Any]) -> str:
    """The ``bytes`` codec's endian for items stored as ``dtype`` (native counts as little)."""
    order = byte_order(dtype)
    return "big" if order == "big" and dtype.byteorder != "=" else "little"
