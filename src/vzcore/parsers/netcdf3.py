"""Parser for netCDF classic files: CDF-1 (classic), CDF-2 (64-bit offset), CDF-5 (64-bit data).

Written from the netCDF classic format specification (the BNF grammar of the
header in Unidata's "File Format Specifications", with the CDF-5 extensions).
The header is read with a few ranged reads; every count in it is checked against
the bytes left in the file before anything is allocated or looped over, so corrupt
input fails fast with a `NetCDF3FormatError`.

Non-record variables become one chunk covering the whole array; record variables
(first dimension unlimited) one chunk per record. Char variables are read into
memory as fixed-width bytes (``S{n}``, the last dimension being the string length).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from vzcore._frozen import JSON
from vzcore.array import AnyArray, LoadedArray, VirtualArray
from vzcore.byteranges import Source, SourceReadError, source
from vzcore.errors import VirtualizationError
from vzcore.group import VirtualGroup
from vzcore.limits import check_limit
from vzcore.manifest import ChunkManifest
from vzcore.metadata import ArrayMetadata
from vzcore.parsers.protocol import Probe
from vzcore.registry import ObjectStoreRegistry

__all__ = ["NetCDF3FormatError", "NetCDF3Parser"]


class NetCDF3FormatError(VirtualizationError):
    """A file is not a readable netCDF classic (CDF-1/2/5) file."""


@attrs.frozen
class _NCType:
    dtype: np.dtype[Any]
    default_fill: Any


# nc_type codes: NC_BYTE, NC_CHAR, NC_SHORT, NC_INT, NC_FLOAT, NC_DOUBLE and, in CDF-5
# only, NC_UBYTE, NC_USHORT, NC_UINT, NC_INT64, NC_UINT64; with their NC_FILL_* values.
_TYPES: dict[int, _NCType] = {
    1: _NCType(np.dtype("i1"), np.int8(-127)),
    2: _NCType(np.dtype("S1"), b""),
    3: _NCType(np.dtype(">i2"), np.int16(-32767)),
    4: _NCType(np.dtype(">i4"), np.int32(-2147483647)),
    5: _NCType(np.dtype(">f4"), np.float32(9.9692099683868690e36)),
    6: _NCType(np.dtype(">f8"), np.float64(9.9692099683868690e36)),
    7: _NCType(np.dtype("u1"), np.uint8(255)),
    8: _NCType(np.dtype(">u2"), np.uint16(65535)),
    9: _NCType(np.dtype(">u4"), np.uint32(4294967295)),
    10: _NCType(np.dtype(">i8"), np.int64(-9223372036854775806)),
    11: _NCType(np.dtype(">u8"), np.uint64(18446744073709551614)),
}
_CLASSIC_TYPES = frozenset(range(1, 7))
_VERSIONS = {1: "CDF-1", 2: "CDF-2", 5: "CDF-5"}
_NC_DIMENSION, _NC_VARIABLE, _NC_ATTRIBUTE = 0x0A, 0x0B, 0x0C
_FIRST_READ = 64 * 1024
_CLOSE_SPAN = 16 * 2**20  # char records within this span are read at once, then sliced
# netCDF-C caps names at NC_MAX_NAME (256) bytes; anything far longer is corruption.
_MAX_NAME_BYTES = 4096

type _RawAttribute = str | npt.NDArray[Any]
type _Fetch = Callable[[Sequence[int], Sequence[int]], list[bytes]]


@attrs.frozen
class _Variable:
    name: str
    shape: tuple[int, ...]  # with 0 for the record dimension
    dimension_names: tuple[str, ...]
    is_record: bool
    chunk_nbytes: int  # bytes of the whole array, or of one record of a record variable
    attributes: dict[str, _RawAttribute]
    nc_type: _NCType
    begin: int


@attrs.frozen
class _Header:
    numrecs: int | None  # None when streaming (numrecs = STREAMING)
    attributes: dict[str, _RawAttribute]
    variables: list[_Variable]
    nbytes: int


class _HeaderCursor:
    """Sequential big-endian reads over a prefix of the file, extended on demand."""

    def __init__(self, fetch: _Fetch, file_size: int) -> None:
        self._fetch, self._size = fetch, file_size
        self._buffer = bytearray()
        self.pos = 0
        self.version = 1
        self.width = 4  # NON_NEG and nelems: 4 bytes, 8 in CDF-5
        self.offset_width = 4  # OFFSET: 4 bytes in CDF-1, 8 otherwise

    def take(self, n_bytes: int) -> bytes:
        end = self.pos + n_bytes
        if end > len(self._buffer):
            if end > self._size:
                raise NetCDF3FormatError(
                    f"truncated header: it needs byte {end}, the file has {self._size}"
                )
            start = len(self._buffer)
            target = min(self._size, max(end, 2 * start, _FIRST_READ))
            self._buffer += self._fetch([start], [target])[0]
        data = bytes(self._buffer[self.pos : end])
        self.pos = end
        return data

    def uint32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def signed(self, width: int, what: str) -> int:
        value = int.from_bytes(self.take(width), "big", signed=True)
        if value < 0:
            raise NetCDF3FormatError(f"{what} is negative ({value})")
        return value

    def non_neg(self, what: str) -> int:
        return self.signed(self.width, what)

    def count(self, what: str, min_item_bytes: int) -> int:
        """A NON_NEG count of items that each take at least ``min_item_bytes``."""
        value = self.non_neg(what)
        remaining = self._size - self.pos
        if value * min_item_bytes > remaining:
            raise NetCDF3FormatError(
                f"{what} {value} cannot fit in the {remaining} bytes left in the file"
            )
        return value

    def padded(self, n_bytes: int) -> bytes:
        data = self.take(n_bytes)
        self.take(-n_bytes % 4)
        return data

    def name(self, what: str) -> str:
        length = self.count(f"{what} length", 1)
        if length > _MAX_NAME_BYTES:
            raise NetCDF3FormatError(f"{what} length {length} exceeds {_MAX_NAME_BYTES} bytes")
        return _decode_name(self.padded(length))

    def nc_type(self, what: str) -> _NCType:
        code = self.uint32()
        if code not in _TYPES or (self.version != 5 and code not in _CLASSIC_TYPES):
            raise NetCDF3FormatError(
                f"{what}: invalid nc_type {code} for {_VERSIONS[self.version]}"
            )
        return _TYPES[code]

    def items[T](self, tag: int, what: str, min_item_bytes: int, item: Callable[[], T]) -> list[T]:
        """A tagged list (``ABSENT | tag nelems [item ...]``)."""
        found = self.uint32()
        count = self.count(f"{what} count", min_item_bytes)
        if found == 0 and count == 0:  # ABSENT
            return []
        if found != tag:
            raise NetCDF3FormatError(f"expected the {what} list tag {tag:#x}, found {found:#x}")
        return [item() for _ in range(count)]


def _decode_name(raw: bytes) -> str:
    r"""A dimension, variable or attribute name, as netCDF4-python reads it where it can.

    netCDF names are UTF-8 (kept as stored, not normalised), which is how netCDF4-python
    decodes them; it refuses a file with any other name (a UnicodeDecodeError on
    opening). Such names are read as scipy and xarray's scipy engine read every name,
    as latin-1, so that each byte is one character and the file still opens.

    >>> _decode_name(b"caf\xc3\xa9"), _decode_name(b"caf\xe9")
    ('café', 'café')
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _decode_text(raw: bytes) -> str:
    r"""A text attribute's value, as netCDF4-python reads it.

    UTF-8 with undecodable bytes replaced by U+FFFD, and every NUL removed (some
    writers pad text with NULs).

    >>> _decode_text(b"valu\xe9\x00\x00")
    'valu\ufffd'
    """
    return raw.decode("utf-8", errors="replace").replace("\x00", "")


def _parse_attribute(cursor: _HeaderCursor, owner: str) -> tuple[str, _RawAttribute]:
    name = cursor.name(f"{owner}attribute name")
    where = f"{owner}attribute {name!r}"
    nc_type = cursor.nc_type(where)
    itemsize = nc_type.dtype.itemsize
    data = cursor.padded(cursor.count(f"{where}: value count", itemsize) * itemsize)
    if nc_type.dtype.kind == "S":
        return name, _decode_text(data)
    return name, np.frombuffer(data, dtype=nc_type.dtype)


def _parse_attributes(cursor: _HeaderCursor, owner: str) -> dict[str, _RawAttribute]:
    min_bytes = 2 * cursor.width + 4
    parse = lambda: _parse_attribute(cursor, owner)
    return dict(cursor.items(_NC_ATTRIBUTE, f"{owner}attribute", min_bytes, parse))


def _parse_dimension(cursor: _HeaderCursor) -> tuple[str, int]:
    name = cursor.name("dimension name")
    return name, cursor.non_neg(f"length of dimension {name!r}")  # 0: the unlimited one


def _parse_variable(cursor: _HeaderCursor, dimensions: list[tuple[str, int]]) -> _Variable:
    name = cursor.name("variable name")
    where = f"variable {name!r}"
    ndims = cursor.count(f"{where}: dimension count", cursor.width)
    dim_ids = [cursor.non_neg(f"{where}: dimension id") for _ in range(ndims)]
    if any(i >= len(dimensions) for i in dim_ids):
        raise NetCDF3FormatError(f"{where}: dimension ids {dim_ids} past {len(dimensions)}")
    names, shape = zip(*(dimensions[i] for i in dim_ids), strict=True) if dim_ids else ((), ())
    if 0 in shape[1:]:
        raise NetCDF3FormatError(f"{where}: only the first dimension may be unlimited")
    attributes = _parse_attributes(cursor, f"{where}: ")
    nc_type = cursor.nc_type(where)
    cursor.non_neg(f"{where}: vsize")  # redundant (and clipped past 4 GiB): recomputed
    begin = cursor.signed(cursor.offset_width, f"{where}: begin")
    is_record = bool(shape) and shape[0] == 0
    nbytes = math.prod(shape[1:] if is_record else shape) * nc_type.dtype.itemsize
    return _Variable(name, shape, names, is_record, nbytes, attributes, nc_type, begin)


def _parse_header(cursor: _HeaderCursor) -> _Header:
    magic = cursor.take(4)
    if magic[:3] != b"CDF" or magic[3] not in _VERSIONS:
        raise NetCDF3FormatError(f"not a netCDF classic file (magic {magic!r})")
    cursor.version = magic[3]
    cursor.width = 8 if cursor.version == 5 else 4
    cursor.offset_width = 4 if cursor.version == 1 else 8
    w = cursor.width
    raw = cursor.take(w)  # numrecs: NON_NEG, or STREAMING (all bits set)
    numrecs = None if raw == b"\xff" * w else int.from_bytes(raw, "big", signed=True)
    if (numrecs or 0) < 0:
        raise NetCDF3FormatError(f"numrecs is negative ({numrecs})")
    dimensions = cursor.items(_NC_DIMENSION, "dimension", 2 * w, lambda: _parse_dimension(cursor))
    unlimited = [name for name, length in dimensions if length == 0]
    if len(unlimited) > 1:
        raise NetCDF3FormatError(f"more than one unlimited dimension: {unlimited}")
    attributes = _parse_attributes(cursor, "global ")
    min_var_bytes = 4 * w + 8 + cursor.offset_width
    parse_var = lambda: _parse_variable(cursor, dimensions)
    variables = cursor.items(_NC_VARIABLE, "variable", min_var_bytes, parse_var)
    if len({v.name for v in variables}) != len(variables):
        raise NetCDF3FormatError("two variables have the same name")
    return _Header(numrecs, attributes, variables, cursor.pos)


def _record_size(records: Sequence[_Variable]) -> int:
    """Bytes per record: each record variable's slab padded to 4 bytes, except that the
    records of a lone record variable are packed without padding (spec, note on vsize)."""
    if len(records) == 1:
        return records[0].chunk_nbytes
    return sum(_padded(var) for var in records)


def _count_records(header: _Header, records: Sequence[_Variable], size: int) -> int:
    """numrecs from the header or, for a streamed file, the whole records the file holds."""
    if header.numrecs is not None:
        return header.numrecs
    recsize = _record_size(records)
    counts = [(size - var.begin - var.chunk_nbytes) // recsize + 1 for var in records]
    return max(0, min(counts, default=0))


def _check_order(variables: Sequence[_Variable]) -> None:
    """netCDF-C's rule for where variables lie (``NC_check_voffs``): the fixed-size
    variables in header order, each beginning at or after the end of the one before, then
    the records, whose variables follow each other the same way within a record. netCDF-C
    refuses other files as not netCDF; their variables overlap (``scipy.io.netcdf_file``
    writes such files when a scalar variable is defined beside record variables: the
    scalar's bytes are written over a record)."""
    fixed = [var for var in variables if not var.is_record]
    records = [var for var in variables if var.is_record]
    previous: _Variable | None = None
    for var in [*fixed, *records]:
        if previous is not None and var.begin < previous.begin + _padded(previous):
            first_record = var.is_record and not previous.is_record
            what = "the records begin" if first_record else f"variable {var.name!r} begins"
            raise NetCDF3FormatError(
                f"{what} at byte {var.begin}, before the end of variable {previous.name!r} "
                f"(bytes {previous.begin}-{previous.begin + _padded(previous)}"
                f"{' of a record' if previous.is_record else ''}): variables overlap or are "
                "out of order (netCDF-C refuses the file)"
            )
        previous = var


def _padded(var: _Variable) -> int:
    """A variable's bytes (of one record for a record variable) padded to 4, as netCDF-C
    counts them when it checks where variables lie."""
    return var.chunk_nbytes + (-var.chunk_nbytes % 4)


def _check_extent(
    var: _Variable, numrecs: int, recsize: int, header_nbytes: int, size: int
) -> None:
    if var.begin < header_nbytes:
        raise NetCDF3FormatError(
            f"variable {var.name!r}: begins at byte {var.begin}, inside the "
            f"{header_nbytes}-byte header"
        )
    n_chunks = numrecs if var.is_record else 1
    end = var.begin + (n_chunks - 1) * recsize + var.chunk_nbytes if n_chunks else 0
    if end > size:
        raise NetCDF3FormatError(
            f"variable {var.name!r}: its data ends at byte {end}, past the end of the file "
            f"({size} bytes)"
        )


def _attribute_json(value: _RawAttribute) -> JSON:
    if isinstance(value, str):
        return value
    items: list[JSON] = value.tolist()
    return items[0] if len(items) == 1 else items


def _fill_value(var: _Variable) -> Any:
    """The zarr fill value: ``_FillValue`` if present, else the netCDF default fill."""
    raw = var.attributes.get("_FillValue")
    dtype = var.nc_type.dtype
    if raw is None:
        return var.nc_type.default_fill
    if dtype.kind == "S":
        return (raw if isinstance(raw, str) else raw.tobytes().decode("latin-1")).encode()[:1]
    if isinstance(raw, str) or raw.size != 1:
        raise NetCDF3FormatError(f"variable {var.name!r}: _FillValue {raw!r} is not one number")
    with np.errstate(all="ignore"):
        cast = raw.astype(dtype)
        same = bool(cast.astype(raw.dtype) == raw) or (dtype.kind == "f" and bool(np.isnan(cast)))
    if not same:
        raise NetCDF3FormatError(f"variable {var.name!r}: _FillValue {raw[0]} is not a {dtype}")
    return cast[0]


def _array_attributes(var: _Variable, fill: Any) -> dict[str, JSON]:
    attributes = {name: _attribute_json(value) for name, value in var.attributes.items()}
    if "_FillValue" not in attributes:
        return attributes
    if var.nc_type.dtype.kind == "S":
        # xarray cannot decode a _FillValue attribute of a bytes array; the zarr fill
        # value carries it instead.
        del attributes["_FillValue"]
    else:
        # A plain number, as CF writes it; the store and writers render it in each
        # format's convention (xarray's base64 double for zarr v3 floats).
        attributes["_FillValue"] = fill.item()
    return attributes


def _chunk_offsets(
    var: _Variable, numrecs: int, recsize: int
) -> tuple[tuple[int, ...], npt.NDArray[np.uint64]]:
    """The array's shape and the byte offset of each chunk (one per record, or one)."""
    if not var.is_record:
        return var.shape, np.array([var.begin], dtype=np.uint64)
    offsets = np.uint64(var.begin) + np.arange(numrecs, dtype=np.uint64) * np.uint64(recsize)
    return (numrecs, *var.shape[1:]), offsets


def _virtual_array(var: _Variable, numrecs: int, recsize: int, url: str) -> VirtualArray:
    if var.is_record:
        check_limit("max_chunks", numrecs, f"{url}: variable {var.name!r}", "records (chunks)")
    shape, offsets = _chunk_offsets(var, numrecs, recsize)
    fill = _fill_value(var)
    metadata = ArrayMetadata.create(
        shape=shape,
        chunk_shape=(1, *shape[1:]) if var.is_record else shape,
        dtype=var.nc_type.dtype,
        fill_value=fill,
        dimension_names=var.dimension_names,
        attributes=_array_attributes(var, fill),
    )
    if len(offsets) == 0:
        return VirtualArray(metadata, ChunkManifest.empty(metadata.grid_shape))
    manifest = ChunkManifest.from_numpy_columns(
        metadata.grid_shape,
        dictionary=pa.array([url], pa.string()),
        indices=np.zeros(len(offsets), dtype=np.int32),
        offsets=offsets,
        lengths=np.full(len(offsets), var.chunk_nbytes, dtype=np.uint64),
    )
    return VirtualArray(metadata, manifest)


def _read_chunks(fetch: _Fetch, starts: npt.NDArray[np.uint64], nbytes: int) -> bytes:
    """The bytes of every chunk, concatenated: one read if the chunks lie close together."""
    if len(starts) == 0:
        return b""
    first, span = int(starts[0]), int(starts[-1] - starts[0]) + nbytes
    if span > _CLOSE_SPAN and span > 4 * nbytes * len(starts):
        return b"".join(fetch(starts.tolist(), (starts + np.uint64(nbytes)).tolist()))
    stride = int(starts[1] - starts[0]) if len(starts) > 1 else nbytes
    block = np.frombuffer(fetch([first], [first + span])[0], dtype=np.uint8)
    return np.lib.stride_tricks.as_strided(block, (len(starts), nbytes), (stride, 1)).tobytes()


def _join_chars(chars: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Characters ``(..., n)`` as fixed-width strings ``S{n}`` of shape ``(...)``."""
    if chars.ndim == 0:
        return chars
    length = chars.shape[-1]
    if length == 0:
        return np.zeros(chars.shape[:-1], dtype="S1")
    return np.ascontiguousarray(chars).view(f"S{length}").reshape(chars.shape[:-1])


def _loaded_char_array(var: _Variable, numrecs: int, recsize: int, fetch: _Fetch) -> LoadedArray:
    shape, starts = _chunk_offsets(var, numrecs, recsize)
    raw = _read_chunks(fetch, starts, var.chunk_nbytes)
    strings = _join_chars(np.frombuffer(raw, dtype="S1").reshape(shape))
    fill = _fill_value(var)
    metadata = ArrayMetadata.create(
        shape=strings.shape,
        chunk_shape=tuple(max(s, 1) for s in strings.shape),
        dtype=strings.dtype,
        fill_value=fill[: strings.dtype.itemsize],
        dimension_names=var.dimension_names[: strings.ndim],
        attributes=_array_attributes(var, fill),
    )
    return LoadedArray(metadata, strings)


def _fetcher(file: Source) -> _Fetch:
    def fetch(starts: Sequence[int], ends: Sequence[int]) -> list[bytes]:
        return [bytes(b) for b in file.read_ranges(starts, ends)]

    return fetch


@attrs.frozen(kw_only=True)
class NetCDF3Parser:
    r"""Parser for netCDF classic files (CDF-1, CDF-2 and CDF-5), read through a registry.

    Attributes
    ----------
    drop_variables
        Names of variables to leave out of the result.

    Examples
    --------
    A CDF-1 file with one dimension ``x`` of 2 and one short variable ``v(x)``:

    >>> import struct, obstore, vzcore as vc
    >>> from obstore.store import MemoryStore
    >>> fields = [0, 0x0A, 1, 1, 0x78000000, 2, 0, 0, 0x0B, 1, 1, 0x76000000, 1, 0, 0, 0, 3, 4, 80]
    >>> store = MemoryStore()
    >>> _ = obstore.put(store, "a.nc", b"CDF\x01" + struct.pack(">19I2h", *fields, 7, 8))
    >>> registry = vc.ObjectStoreRegistry({"memory://bucket/": store})
    >>> group = NetCDF3Parser()("memory://bucket/a.nc", registry)
    >>> group["v"].shape, group["v"].manifest.to_entries()["0"]["offset"]
    ((2,), 80)
    """

    drop_variables: tuple[str, ...] = attrs.field(default=(), converter=tuple)

    priority = -40

    @classmethod
    def can_open(cls, probe: Probe) -> bool:
        """The magic ``CDF`` and a version byte: 1 (classic), 2 (64-bit offset) or 5 (CDF5)."""
        head = probe.head
        return head is not None and len(head) >= 4 and head[:3] == b"CDF" and head[3] in _VERSIONS

    def __call__(self, url: str, registry: ObjectStoreRegistry) -> VirtualGroup:
        """Build the virtual group of one netCDF classic file.

        Parameters
        ----------
        url
            The file's URL; it must lie under one of ``registry``'s prefixes.
        registry
            Where the file is read from (ranged reads of the header and of char
            variables only).

        Returns
        -------
        VirtualGroup
            One array per variable (virtual, or loaded for char variables), the
            global attributes, and the file's fingerprint (size, last-modified, ETag).

        Raises
        ------
        NetCDF3FormatError
            If the file cannot be read, is not netCDF classic, or is truncated or corrupt.
        UnregisteredURLError
            If ``url`` lies under no registered prefix.
        """
        file = source(registry, url)
        try:
            return self._parse(file)
        except SourceReadError:
            raise
        except VirtualizationError as err:
            raise NetCDF3FormatError(f"{file.url}: {err}") from err

    def _parse(self, file: Source) -> VirtualGroup:
        url = file.url
        seen = file.fingerprint()
        size = seen.size if seen.size is not None else file.size()
        fetch = _fetcher(file)
        header = _parse_header(_HeaderCursor(fetch, size))
        _check_order(header.variables)
        records = [var for var in header.variables if var.is_record]
        recsize = _record_size(records)
        numrecs = _count_records(header, records, size)
        arrays: dict[str, AnyArray] = {}
        for var in header.variables:
            if var.name in self.drop_variables:
                continue
            _check_extent(var, numrecs, recsize, header.nbytes, size)
            try:
                arrays[var.name] = (
                    _loaded_char_array(var, numrecs, recsize, fetch)
                    if var.nc_type.dtype.kind == "S"
                    else _virtual_array(var, numrecs, recsize, url)
                )
            except VirtualizationError as err:
                raise NetCDF3FormatError(f"variable {var.name!r}: {err}") from err
        return VirtualGroup(
            arrays=arrays,
            attributes={k: _attribute_json(v) for k, v in header.attributes.items()},
            sources={url: seen},
        )
