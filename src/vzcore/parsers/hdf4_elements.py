"""HDF4 data elements as chunks: plain, linked-block, compressed and chunked elements.

From the HDF4 specification's special elements (``hblocks.c``, ``hcomp.c``,
``hchunks.c``): a special element's descriptor points at a header naming its kind;
a chunked element's header names the chunk table (a Vdata of chunk origins and
``DFTAG_CHUNK`` refs), and each chunk may itself be a compressed element whose data
is a ``DFTAG_COMPRESSED`` element. Chunk tables become manifest columns with numpy.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from vzcore.byteranges import Source
from vzcore.limits import check_limit
from vzcore.parsers.hdf4_format import (
    EXTENDED,
    TAG_CHUNK,
    TAG_COMPRESSED,
    TAG_NT,
    TAG_NULL,
    TAG_SD,
    TAG_SDD,
    TAG_VG,
    TAG_VH,
    TAG_VS,
    Element,
    HDF4FormatError,
    Reader,
    Vdata,
    cursor,
    parse_vdata_header,
    parse_vgroup,
    read_dd_table,
    vdata_records,
)

__all__ = [
    "RLE_CODEC",
    "SPECIAL_LINKED",
    "HDF4File",
    "HDF4UnsupportedError",
    "Layout",
    "Pieces",
    "chunk_layout",
    "rle_decode",
]


class HDF4UnsupportedError(HDF4FormatError):
    """An HDF4 data set is stored in a way vz cannot reference (and was not loaded)."""


SPECIAL_LINKED, _SPECIAL_EXT, _SPECIAL_COMP, _SPECIAL_CHUNKED = 1, 2, 3, 5
_COMPRESSIONS = {1: "RLE", 2: "NBIT", 3: "Skipping Huffman", 4: "deflate", 5: "SZIP", 7: "JPEG"}
_RLE, _DEFLATE = 1, 4
RLE_CODEC = "hdf4.rle"
"""The codec name a loading layout gives RLE chunks: vz decodes them itself, zarr cannot."""
_COMP_HEADER = np.dtype(
    [
        ("special", ">u2"),
        ("version", ">u2"),
        ("length", ">u4"),
        ("ref", ">u2"),
        ("model", ">u2"),
        ("comp_type", ">u2"),
        ("level", ">u2"),  # deflate's; other compressions' parameters start here too
    ]
)
_LINK_TAG = 20
_PRELOADED = (TAG_VG, TAG_VH, TAG_VS, TAG_VS | EXTENDED, TAG_NT, TAG_SDD, TAG_SD | EXTENDED)
_MAX_LINK_TABLES = 1 << 16
_SMALL_LINKED = 1 << 16
_PRELOADED_LINKED_BYTES = 4 << 20


@attrs.frozen
class Pieces:
    """Where the bytes of a data element lie: one or more ranges, in order."""

    offsets: tuple[int, ...]
    lengths: tuple[int, ...]
    refs: tuple[int, ...] = ()
    """The linked blocks' refs, one per range, when the pieces are linked blocks."""


class HDF4File:
    """One open HDF4 file: its data descriptors, Vgroups and Vdatas."""

    def __init__(self, file: Source, size: int) -> None:
        self.url, self.size = file.url, size
        self.reader = Reader(file, read_dd_table(file, size))
        # Every header-sized element is read at once (one batched, coalesced request),
        # so a file of many data sets costs a few requests, not a few per data set.
        table = self.reader.table
        preloaded = np.isin(table["tag"], _PRELOADED)
        # Linked blocks and their tables (chunk tables are stored so) when they are small.
        linked = (table["tag"] == _LINK_TAG) & (table["length"] <= _SMALL_LINKED)
        if int(table["length"][linked].sum()) <= _PRELOADED_LINKED_BYTES:
            preloaded |= linked
        rows = np.flatnonzero(preloaded)
        elements = [self.reader.element(int(row)) for row in rows]
        held = zip(elements, self.reader.read(elements), strict=True)
        # A (tag, ref) listed twice is the first descriptor's, as Reader.find answers.
        self._bytes = {(e.tag, e.ref): raw for e, raw in reversed(list(held))}
        self.chunk_headers, self.chunk_header_of = self._chunk_headers()
        self.vgroups = {
            e.ref: parse_vgroup(e.ref, self._bytes[e.tag, e.ref])
            for e in elements
            if e.tag == TAG_VG
        }
        self.vdatas = {
            e.ref: parse_vdata_header(e.ref, self._bytes[e.tag, e.ref])
            for e in elements
            if e.tag == TAG_VH
        }

    def _chunk_headers(self) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64]]:
        """The compression headers of every special chunk, read at once, and the index of
        each table row's header (-1 for other rows)."""
        table = self.reader.table
        rows = np.flatnonzero(table["tag"] == TAG_CHUNK | EXTENDED)
        check_limit("max_chunks", len(rows), self.url, "the number of compressed chunks")
        starts = table["offset"][rows].astype(np.int64)
        ends = starts + np.minimum(table["length"][rows], _COMP_HEADER.itemsize).astype(np.int64)
        views = self.reader.file.read_ranges(starts, ends) if len(rows) else []
        size = _COMP_HEADER.itemsize
        packed = b"".join(bytes(v).ljust(size, b"\0") for v in views)
        header_of = np.full(len(table), -1, dtype=np.int64)
        header_of[rows] = np.arange(len(rows))
        return np.frombuffer(packed, dtype=_COMP_HEADER), header_of

    def element(self, tag: int, ref: int, where: str) -> Element:
        found = self.reader.find(tag, ref)
        if found is None:
            raise HDF4FormatError(f"{where}: no data element (tag {tag}, ref {ref})")
        return found

    def read(self, element: Element) -> bytes:
        held = self._bytes.get((element.tag, element.ref))
        return held if held is not None else self.reader.read([element])[0]

    def special_kind(self, element: Element) -> int:
        """The kind of a special element (``SPECIAL_LINKED``, ...), from its header."""
        return int.from_bytes(self.read(element)[:2], "big")

    def pieces(self, element: Element, where: str) -> Pieces:
        """The byte ranges of a plain or linked-block element's data."""
        if not element.special:
            return Pieces((element.offset,), (element.length,))
        c = cursor(self.read(element), where)
        special = c.uint(2)
        if special != SPECIAL_LINKED:
            raise HDF4UnsupportedError(f"{where}: special element type {special} in a Vdata")
        return self._linked(c.uint(4), c.uint(4), c.uint(4), c.uint(2), where)

    def _linked(self, total: int, _block: int, per_table: int, link: int, where: str) -> Pieces:
        """Linked blocks (hblocks.c): link tables of ``per_table`` block refs, chained."""
        refs: list[int] = []
        seen: set[int] = set()
        while link:
            if link in seen or len(seen) > _MAX_LINK_TABLES:
                raise HDF4FormatError(f"{where}: the linked-block tables form a cycle")
            seen.add(link)
            table = cursor(self.read(self.element(_LINK_TAG, link, where)), where)
            link = table.uint(2)
            refs.extend(r for r in table.uints(2, per_table) if r)
        check_limit("max_chunks", len(refs), where, "linked blocks")
        rows = self.reader.find_many(_LINK_TAG, np.array(refs, dtype=np.int64))
        if (rows < 0).any():
            raise HDF4FormatError(f"{where}: a linked block is missing")
        offsets = self.reader.table["offset"][rows].astype(np.int64)
        lengths = self.reader.table["length"][rows].astype(np.int64)
        # The last block is allocated whole; only the element's length of it is data.
        ends = np.minimum(np.cumsum(lengths), total)
        used = np.diff(ends, prepend=0)
        keep = used > 0
        if int(ends[-1] if len(ends) else 0) < total:
            raise HDF4FormatError(f"{where}: the linked blocks hold fewer than {total} bytes")
        kept = np.array(refs, dtype=np.int64)[keep]
        return Pieces(
            tuple(offsets[keep].tolist()), tuple(used[keep].tolist()), tuple(kept.tolist())
        )

    def vdata_bytes(self, vdata: Vdata, where: str) -> bytes:
        element = self.reader.find(TAG_VS, vdata.ref)
        if element is None:
            return b""
        if not element.special:
            return self.read(element)
        return self.linked_bytes(self.pieces(element, where))

    def linked_bytes(self, pieces: Pieces) -> bytes:
        """The bytes of ``pieces`` joined (of linked blocks read with the file's headers)."""
        if pieces.refs:
            held = [self._bytes.get((_LINK_TAG, ref)) for ref in pieces.refs]
            if all(h is not None for h in held):
                return b"".join(h[:n] for h, n in zip(held, pieces.lengths, strict=True))  # type: ignore[index]
        ends = [o + n for o, n in zip(pieces.offsets, pieces.lengths, strict=True)]
        return b"".join(bytes(v) for v in self.reader.file.read_ranges(pieces.offsets, ends))


def _merged(pieces: Pieces) -> Pieces:
    """Adjacent ranges joined into one."""
    offsets, lengths = [pieces.offsets[0]], [pieces.lengths[0]]
    for offset, length in zip(pieces.offsets[1:], pieces.lengths[1:], strict=True):
        if offset == offsets[-1] + lengths[-1]:
            lengths[-1] += length
        else:
            offsets.append(offset)
            lengths.append(length)
    return Pieces(tuple(offsets), tuple(lengths))


@attrs.frozen
class Layout:
    """The chunks of one data set: chunk shape, codecs and the chunk table columns."""

    chunk_shape: tuple[int, ...]
    codecs: tuple[dict[str, Any], ...]
    rows: npt.NDArray[np.int64]  # C-order chunk numbers
    offsets: npt.NDArray[np.uint64]
    lengths: npt.NDArray[np.uint64]
    fill: bytes | None = None
    """A chunked element's fill value (its header's, in the file's byte order): the HDF4
    library fills absent chunks with it, whatever the ``_FillValue`` attribute says."""


def _codec(comp_type: int, level: int, where: str, loading: bool) -> dict[str, Any]:
    if loading and comp_type == _RLE:
        return {"name": RLE_CODEC}
    if comp_type != _DEFLATE:
        name = _COMPRESSIONS.get(comp_type, f"type {comp_type}")
        raise HDF4UnsupportedError(
            f"{where}: {name} compression has no zarr codec vz can use; drop the data set "
            "(drop_variables=)"
        )
    return {"name": "numcodecs.zlib", "configuration": {"level": level}}


def _contiguous(pieces: Pieces, shape: tuple[int, ...], nbytes: int, where: str) -> Layout:
    merged = _merged(pieces)
    if len(merged.offsets) != 1:
        raise HDF4UnsupportedError(
            f"{where}: the data lies in {len(merged.offsets)} separate linked blocks, which "
            "a chunk reference cannot name; pass it in loadable_variables= or drop it"
        )
    if merged.lengths[0] < nbytes:
        raise HDF4FormatError(
            f"{where}: the data element has {merged.lengths[0]} bytes, the data set needs {nbytes}"
        )
    one = np.zeros(1, dtype=np.int64)
    return Layout(
        tuple(max(s, 1) for s in shape),
        (),
        one,
        np.array(merged.offsets, dtype=np.uint64),
        np.array([nbytes], dtype=np.uint64),
    )


def _compressed(
    file: HDF4File, raw: bytes, shape: tuple[int, ...], nbytes: int, where: str, loading: bool
) -> Layout | None:
    """A compressed element (hcomp.c), or None when its header says it holds no bytes."""
    size = _COMP_HEADER.itemsize
    if len(raw) < size - 2:
        raise HDF4FormatError(f"{where}: truncated compression header ({len(raw)} bytes)")
    header = np.frombuffer(raw[:size].ljust(size, b"\0"), dtype=_COMP_HEADER)[0]
    codec = _codec(int(header["comp_type"]), int(header["level"]), where, loading)
    data = file.element(TAG_COMPRESSED, int(header["ref"]), where)
    if data.special:
        raise HDF4UnsupportedError(f"{where}: the compressed data is itself a special element")
    # The header's uncompressed length is an int32 (HCIread_header). The library reads
    # a length of 0 or less as a template with no data, all fill (hdf_xdr_NCvdata), and
    # refuses to read past a shorter length (HCPread).
    length = int(header["length"].astype(np.int32))
    if length <= 0:
        return None
    if length < nbytes:
        raise HDF4FormatError(
            f"{where}: the compression header says the data holds {length} bytes, the "
            f"data set needs {nbytes}"
        )
    return Layout(
        tuple(max(s, 1) for s in shape),
        (codec,),
        np.zeros(1, dtype=np.int64),
        np.array([data.offset], dtype=np.uint64),
        np.array([data.length], dtype=np.uint64),
    )


_CHUNK_TABLE_CLASS = "_HDF_CHK_TBL_0"  # the library compares this prefix of the class
_CHUNK_FIELDS = ("origin", "chk_tag", "chk_ref")
_INT32, _UINT16 = 24, 23
_MAX_CHUNK_HEADER = 256  # the library refuses a longer chunked header


@attrs.frozen
class _ChunkedHeader:
    """The fields of a chunked element's header (``HMCIstaccess``) vz uses or checks."""

    flag: int
    length: int  # elements in the whole data set
    chunk_size: int  # elements in one chunk
    nt_size: int
    table_tag: int
    table_ref: int
    dims: npt.NDArray[np.int64]  # (rank, 3): flag, dim_length, chunk_length
    fill: bytes


def _chunked_header(raw: bytes, where: str) -> _ChunkedHeader:
    c = cursor(raw, f"{where}: chunked header")
    c.take(2)  # the special kind
    header_length = c.uint(4)
    if header_length > _MAX_CHUNK_HEADER:
        raise HDF4FormatError(f"{where}: the chunked header claims {header_length} bytes")
    version = c.uint(1)
    if version != 0:  # _HDF_CHK_HDR_VER: the library opens no other
        raise HDF4FormatError(f"{where}: chunked header version {version} is not read")
    flag, length, chunk_size, nt_size = (c.uint(4) for _ in range(4))
    table_tag, table_ref = c.uint(2), c.uint(2)
    c.take(4)  # the (unused) special tag and ref
    rank = c.uint(4)
    if rank > 32:  # MAX_VAR_DIMS
        raise HDF4FormatError(f"{where}: the chunked header has rank {rank}")
    dims = np.array(c.uints(4, 3 * rank), dtype=np.int64).reshape(rank, 3)
    fill = c.take(c.uint(4))
    return _ChunkedHeader(flag, length, chunk_size, nt_size, table_tag, table_ref, dims, fill)


def _checked_header(
    header: _ChunkedHeader, shape: tuple[int, ...], itemsize: int, where: str
) -> tuple[int, ...]:
    """The chunk shape, once the header agrees with the data set: the library numbers
    chunks by the header's dimension lengths and sizes its reads by its chunk and
    element counts, so a header that disagrees is read otherwise than vz would."""
    if len(header.dims) != len(shape) or header.table_tag != TAG_VH:
        raise HDF4FormatError(
            f"{where}: the chunked header has rank {len(header.dims)} for {len(shape)}"
        )
    chunk_shape = tuple(int(n) for n in header.dims[:, 2])
    if min(chunk_shape, default=1) < 1:
        raise HDF4FormatError(f"{where}: chunk shape {chunk_shape} has an empty side")
    if header.flag & 0xFF not in (0, _SPECIAL_COMP):
        raise HDF4FormatError(f"{where}: chunked header flag {header.flag:#x} is not read")
    if header.nt_size != itemsize or len(header.fill) != itemsize:
        raise HDF4FormatError(
            f"{where}: the chunked header gives {header.nt_size}-byte values and a "
            f"{len(header.fill)}-byte fill value for a {itemsize}-byte type"
        )
    if header.chunk_size != math.prod(chunk_shape):
        raise HDF4FormatError(
            f"{where}: the chunked header gives {header.chunk_size} values a chunk for "
            f"chunk shape {chunk_shape}"
        )
    unlimited = ((header.dims[:, 0] >> 8) & 0xFF) != 0
    lengths = tuple(int(n) for n in header.dims[:, 1])
    fixed = [axis for axis in range(len(shape)) if not unlimited[axis]]
    if any(lengths[axis] != shape[axis] for axis in fixed) or (
        not unlimited.any() and header.length != math.prod(shape)
    ):
        raise HDF4FormatError(
            f"{where}: the chunked header gives shape {lengths} ({header.length} values), "
            f"the data set has shape {shape}"
        )
    return chunk_shape


def _chunk_table(file: HDF4File, vdata: Vdata | None, rank: int, where: str) -> npt.NDArray[Any]:
    """The chunk table's records, once its class and fields are the library's."""
    if vdata is None:
        raise HDF4FormatError(f"{where}: the chunk table is missing")
    fields = vdata.fields
    expected = {"origin": (_INT32, rank, 4 * rank), "chk_tag": (_UINT16, 1, 2)}
    expected["chk_ref"] = (_UINT16, 1, 2)
    found = {
        name: (code, order, size)
        for name, code, order, size in zip(
            fields.names, fields.types, fields.orders, fields.sizes, strict=True
        )
    }
    if not vdata.class_name.startswith(_CHUNK_TABLE_CLASS) or any(
        found.get(name) != spec for name, spec in expected.items()
    ):
        raise HDF4FormatError(
            f"{where}: the chunk table (Vdata {vdata.ref}, class {vdata.class_name!r}) has "
            f"fields {found}, not origin, chk_tag and chk_ref as the HDF4 library reads them"
        )
    return vdata_records(vdata, file.vdata_bytes(vdata, where), f"{where}: chunk table")


def _chunked(
    file: HDF4File, raw: bytes, shape: tuple[int, ...], itemsize: int, where: str, loading: bool
) -> Layout:
    """A chunked special element (hchunks.c): its header, then the chunk table Vdata."""
    header = _chunked_header(raw, where)
    chunk_shape = _checked_header(header, shape, itemsize, where)
    rank = len(shape)
    table = _chunk_table(file, file.vdatas.get(header.table_ref), rank, where)
    tags = np.asarray(table["chk_tag"], dtype=np.int64)
    # A NULL tag is a chunk not written (the library fills it); any other than a chunk's
    # is an error when the library reads it.
    written = tags != TAG_NULL
    bad = written & ((tags & ~EXTENDED) != TAG_CHUNK)
    if bad.any():
        raise HDF4FormatError(
            f"{where}: the chunk table names tag {int(tags[bad][0])}, not a chunk's"
        )
    table = table[written]
    origins = np.asarray(table["origin"], dtype=np.int64).reshape(len(table), rank)
    refs = np.asarray(table["chk_ref"], dtype=np.int64)
    grid = tuple(-(-s // n) for s, n in zip(shape, chunk_shape, strict=True))
    if ((origins < 0) | (origins >= np.array(grid, dtype=np.int64))).any():
        raise HDF4FormatError(f"{where}: a chunk origin lies outside the chunk grid {grid}")
    rows = np.ravel_multi_index(tuple(origins.T), grid) if len(origins) else refs[:0]
    if len(np.unique(rows)) != len(rows):
        raise HDF4FormatError(f"{where}: two chunks have the same origin")
    found = file.reader.find_many(TAG_CHUNK, refs)
    if (found < 0).any():
        raise HDF4FormatError(f"{where}: the chunk table names a chunk that is not in the file")
    dds = file.reader.table[found]
    offsets = dds["offset"].astype(np.uint64)
    lengths = dds["length"].astype(np.uint64)
    special = (dds["tag"] & EXTENDED) != 0
    codecs: tuple[dict[str, Any], ...] = ()
    if special.any():
        if not special.all():
            raise HDF4UnsupportedError(f"{where}: some chunks are compressed and others not")
        packed = file.chunk_headers[file.chunk_header_of[found]]
        if (lengths < _COMP_HEADER.itemsize - 2).any():
            # The library would decode the header from past its descriptor's bytes.
            raise HDF4FormatError(f"{where}: a compressed chunk's header is truncated")
        if (packed["special"] != _SPECIAL_COMP).any():
            raise HDF4UnsupportedError(
                f"{where}: a chunk is a special element other than compressed"
            )
        kinds = np.unique(packed["comp_type"])
        if len(kinds) != 1:
            raise HDF4UnsupportedError(f"{where}: chunks use compressions {kinds.tolist()}")
        codecs = (_codec(int(kinds[0]), int(packed["level"][0]), where, loading),)
        # HCPread refuses to read a chunk past its header's (int32) uncompressed length.
        chunk_bytes = math.prod(chunk_shape) * itemsize
        if (packed["length"].astype(np.int32) < chunk_bytes).any():
            raise HDF4FormatError(
                f"{where}: a compressed chunk's header says it holds fewer than the "
                f"chunk's {chunk_bytes} bytes"
            )
        data = file.reader.find_many(TAG_COMPRESSED, packed["ref"].astype(np.int64))
        if (data < 0).any():
            raise HDF4FormatError(f"{where}: a compressed chunk's data element is missing")
        if (file.reader.table["tag"][data] & EXTENDED).any():
            raise HDF4UnsupportedError(f"{where}: a compressed chunk's data is a special element")
        offsets = file.reader.table["offset"][data].astype(np.uint64)
        lengths = file.reader.table["length"][data].astype(np.uint64)
    fill = header.fill
    return Layout(chunk_shape, codecs, rows.astype(np.int64), offsets, lengths, fill)


def chunk_layout(
    file: HDF4File,
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    data: Element | None,
    where: str,
    *,
    loading: bool = False,
) -> Layout | None:
    """The chunks of a data set, or None when it has no data (all fill).

    With ``loading``, RLE chunks get the `RLE_CODEC` marker (for `rle_decode`) instead
    of a refusal.
    """
    nbytes = math.prod(shape) * dtype.itemsize
    if data is None or nbytes == 0 or (data.length == 0 and not data.special):
        return None
    if not data.special:
        return _contiguous(Pieces((data.offset,), (data.length,)), shape, nbytes, where)
    raw = file.read(data)
    if len(raw) < 2:
        # The library reads the header from a buffer of the descriptor's length, so it
        # would decode whatever memory follows (a different data set on each run).
        raise HDF4FormatError(f"{where}: the special element's header has {len(raw)} bytes")
    special = int.from_bytes(raw[:2], "big")
    if special == _SPECIAL_CHUNKED:
        return _chunked(file, raw, shape, dtype.itemsize, where, loading)
    if special == _SPECIAL_COMP:
        return _compressed(file, raw, shape, nbytes, where, loading)
    if special == SPECIAL_LINKED:
        return _contiguous(file.pieces(data, where), shape, nbytes, where)
    if special == _SPECIAL_EXT:
        raise HDF4UnsupportedError(
            f"{where}: the data lies in an external file, which vz does not follow; drop it"
        )
    raise HDF4UnsupportedError(f"{where}: unsupported special element type {special}")


def rle_decode(data: bytes, nbytes: int, where: str) -> bytes:
    """HDF4's run-length encoding (crle.c) decoded to ``nbytes`` bytes.

    A control byte with the top bit set is a run of ``(c & 0x7f) + 3`` copies of the
    next byte; else ``c + 1`` literal bytes follow. Only used to load data sets.
    """
    out = bytearray()
    at, size = 0, len(data)
    while len(out) < nbytes and at < size:
        control = data[at]
        if control & 0x80:
            if at + 1 >= size:
                break
            out += data[at + 1 : at + 2] * ((control & 0x7F) + 3)
            at += 2
        else:
            out += data[at + 1 : at + 2 + control]
            at += 2 + control
    if len(out) < nbytes:
        raise HDF4FormatError(f"{where}: the RLE data decode to {len(out)} of {nbytes} bytes")
    return bytes(out[:nbytes])
