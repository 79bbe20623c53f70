"""Parser for HDF4 files written by the SD (scientific data set) interface, and HDF-EOS2.

Written from the HDF4 file format specification: the SD interface (``mfhdf``) keeps
each data set as a Vgroup of class ``Var0.0`` holding its dimensions (Vgroups of
class ``Dim0.0``/``UDim0.0``), its attributes (Vdatas of class ``Attr0.0``), its
number type (NT), its dimension record (SDD) and its data (SD). The data element is
plain (one contiguous chunk), or a special element: chunked (a chunk table Vdata of
origins and chunk refs, each chunk possibly compressed), compressed, linked blocks
or external. Dimension scales are the data sets of class ``CoordVar``; HDF-EOS2
files name the dimensions of their swaths and grids in the ``StructMetadata.0``
attribute, whose names replace the SD interface's.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
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
from vzcore.metadata import ArrayMetadata, checked_grid
from vzcore.parsers.hdf4_eos import eos_dimension_names, struct_metadata
from vzcore.parsers.hdf4_format import (
    EXTENDED,
    HDF4_MAGIC,
    TAG_CHUNK,
    TAG_COMPRESSED,
    TAG_NT,
    TAG_SD,
    TAG_SDD,
    TAG_VG,
    TAG_VH,
    TAG_VS,
    Element,
    HDF4FormatError,
    Reader,
    Vdata,
    Vgroup,
    cursor,
    number_type,
    parse_vdata_header,
    parse_vgroup,
    read_dd_table,
    vdata_records,
)
from vzcore.parsers.protocol import Probe
from vzcore.registry import ObjectStoreRegistry

__all__ = ["HDF4FormatError", "HDF4Parser", "HDF4UnsupportedError"]


class HDF4UnsupportedError(HDF4FormatError):
    """An HDF4 data set is stored in a way vz cannot reference (and was not loaded)."""


_SPECIAL_LINKED, _SPECIAL_EXT, _SPECIAL_COMP, _SPECIAL_CHUNKED = 1, 2, 3, 5
_COMPRESSIONS = {1: "RLE", 2: "NBIT", 3: "Skipping Huffman", 4: "deflate", 5: "SZIP", 7: "JPEG"}
_DEFLATE = 4
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
# The SD interface's default fills are netCDF's, by the netCDF type each HDF4 type maps
# to (mfhdf's hdf_map_type): unsigned types take the signed type's fill, reinterpreted.
_DEFAULT_FILLS: dict[int, int | float] = {1: -127, 2: -32767, 4: -2147483647, 8: -2147483647}
_FLOAT_FILL = 9.9692099683868690e36
_LINK_TAG = 20
_PRELOADED = (TAG_VG, TAG_VH, TAG_VS, TAG_VS | EXTENDED, TAG_NT, TAG_SDD, TAG_SD | EXTENDED)
_MAX_LINK_TABLES = 1 << 16


def _default_fill(dtype: np.dtype[Any]) -> Any:
    if dtype.kind == "f":
        return dtype.type(_FLOAT_FILL)
    if dtype.kind == "S":
        return b"\x00"
    signed = np.array(_DEFAULT_FILLS[dtype.itemsize], dtype=f"i{dtype.itemsize}")
    return signed.view(dtype.newbyteorder("="))[()]


@attrs.frozen
class _Pieces:
    """Where the bytes of a data element lie: one or more ranges, in order."""

    offsets: tuple[int, ...]
    lengths: tuple[int, ...]


@attrs.frozen
class _Dataset:
    name: str
    shape: tuple[int, ...]
    dimension_names: tuple[str, ...]
    dtype: np.dtype[Any]
    attributes: dict[str, JSON]
    data: Element | None
    is_coordinate: bool


class _File:
    """One open HDF4 file: its data descriptors, Vgroups and Vdatas."""

    def __init__(self, file: Source, size: int) -> None:
        self.url, self.size = file.url, size
        self.reader = Reader(file, read_dd_table(file, size))
        # Every header-sized element is read at once (one batched, coalesced request),
        # so a file of many data sets costs a few requests, not a few per data set.
        rows = np.flatnonzero(np.isin(self.reader.table["tag"], _PRELOADED))
        elements = [self.reader.element(int(row)) for row in rows]
        self._bytes = {
            (e.tag, e.ref): raw for e, raw in zip(elements, self.reader.read(elements), strict=True)
        }
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

    def pieces(self, element: Element, where: str) -> _Pieces:
        """The byte ranges of a plain or linked-block element's data."""
        if not element.special:
            return _Pieces((element.offset,), (element.length,))
        c = cursor(self.read(element), where)
        special = c.uint(2)
        if special != _SPECIAL_LINKED:
            raise HDF4UnsupportedError(f"{where}: special element type {special} in a Vdata")
        return self._linked(c.uint(4), c.uint(4), c.uint(4), c.uint(2), where)

    def _linked(self, total: int, _block: int, per_table: int, link: int, where: str) -> _Pieces:
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
        return _Pieces(tuple(offsets[keep].tolist()), tuple(used[keep].tolist()))

    def vdata_bytes(self, vdata: Vdata, where: str) -> bytes:
        element = self.reader.find(TAG_VS, vdata.ref)
        if element is None:
            return b""
        if not element.special:
            return self.read(element)
        pieces = self.pieces(element, where)
        ends = [o + n for o, n in zip(pieces.offsets, pieces.lengths, strict=True)]
        return b"".join(bytes(v) for v in self.reader.file.read_ranges(pieces.offsets, ends))


def _merged(pieces: _Pieces) -> _Pieces:
    """Adjacent ranges joined into one."""
    offsets, lengths = [pieces.offsets[0]], [pieces.lengths[0]]
    for offset, length in zip(pieces.offsets[1:], pieces.lengths[1:], strict=True):
        if offset == offsets[-1] + lengths[-1]:
            lengths[-1] += length
        else:
            offsets.append(offset)
            lengths.append(length)
    return _Pieces(tuple(offsets), tuple(lengths))


def _attribute_value(file: _File, vdata: Vdata, where: str) -> JSON:
    records = vdata_records(vdata, file.vdata_bytes(vdata, where), where)
    values = records[records.dtype.names[0]].reshape(-1) if records.dtype.names else records
    if values.dtype.kind == "S":
        return values.tobytes().split(b"\x00", 1)[0].decode("utf-8", errors="replace")
    items: list[JSON] = values.tolist()
    return items[0] if len(items) == 1 else items


def _attributes(file: _File, members: Sequence[tuple[int, int]], where: str) -> dict[str, JSON]:
    attributes: dict[str, JSON] = {}
    for tag, ref in members:
        vdata = file.vdatas.get(ref) if tag == TAG_VH else None
        if vdata is not None and vdata.class_name == "Attr0.0":
            attributes[vdata.name] = _attribute_value(
                file, vdata, f"{where}attribute {vdata.name!r}"
            )
    return attributes


def _dataset(file: _File, group: Vgroup) -> _Dataset:
    where = f"SDS {group.name!r}"
    members = {(tag & ~EXTENDED): ref for tag, ref in group.members}
    if TAG_SDD not in members:
        raise HDF4FormatError(f"{where}: no dimension record (SDD)")
    c = cursor(file.read(file.element(TAG_SDD, members[TAG_SDD], where)), f"{where}: SDD")
    rank = c.uint(2)
    shape = tuple(c.uints(4, rank))
    nt_ref = c.uints(2, 2)[1]
    nt = cursor(file.read(file.element(TAG_NT, nt_ref, where)), f"{where}: number type")
    _, code, _, byte_class = (nt.uint(1) for _ in range(4))
    dtype = number_type(code, where)
    if byte_class == 4 and dtype.itemsize > 1:  # DFNTF_PC / DFNTI_IBO: little-endian
        dtype = dtype.newbyteorder("<")
    dims = [
        file.vgroups[ref]
        for tag, ref in group.members
        if tag == TAG_VG
        and ref in file.vgroups
        and file.vgroups[ref].class_name in ("Dim0.0", "UDim0.0")
    ]
    names = (
        tuple(d.name for d in dims)
        if len(dims) == rank
        else tuple(f"fakeDim{i}" for i in range(rank))
    )
    markers = {
        file.vdatas[r].class_name for t, r in group.members if t == TAG_VH and r in file.vdatas
    }
    is_coordinate = "CoordVar" in markers or (
        rank == 1 and names == (group.name,) and "SDSVar" not in markers
    )
    data = file.reader.find(TAG_SD, members[TAG_SD]) if TAG_SD in members else None
    attributes = _attributes(file, group.members, f"{where}: ")
    return _Dataset(group.name, shape, names, dtype, attributes, data, is_coordinate)


def _fill_value(dataset: _Dataset, where: str) -> Any:
    raw = dataset.attributes.get("_FillValue")
    if raw is None:
        return _default_fill(dataset.dtype)
    if dataset.dtype.kind == "S":
        return (str(raw).encode() or b"\x00")[:1]
    if not isinstance(raw, int | float):
        raise HDF4FormatError(f"{where}: _FillValue {raw!r} is not one number")
    return np.array(raw).astype(dataset.dtype)[()]


@attrs.frozen
class _Layout:
    """The chunks of one data set: chunk shape, codecs and the chunk table columns."""

    chunk_shape: tuple[int, ...]
    codecs: tuple[dict[str, Any], ...]
    rows: npt.NDArray[np.int64]  # C-order chunk numbers
    offsets: npt.NDArray[np.uint64]
    lengths: npt.NDArray[np.uint64]


def _codec(comp_type: int, level: int, where: str) -> dict[str, Any]:
    if comp_type != _DEFLATE:
        name = _COMPRESSIONS.get(comp_type, f"type {comp_type}")
        raise HDF4UnsupportedError(
            f"{where}: {name} compression has no zarr codec vz can use; drop the data set "
            "(drop_variables=)"
        )
    return {"name": "numcodecs.zlib", "configuration": {"level": level}}


def _contiguous(pieces: _Pieces, shape: tuple[int, ...], nbytes: int, where: str) -> _Layout:
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
    return _Layout(
        tuple(max(s, 1) for s in shape),
        (),
        one,
        np.array(merged.offsets, dtype=np.uint64),
        np.array([nbytes], dtype=np.uint64),
    )


def _compressed(file: _File, raw: bytes, shape: tuple[int, ...], where: str) -> _Layout:
    size = _COMP_HEADER.itemsize
    if len(raw) < size - 2:
        raise HDF4FormatError(f"{where}: truncated compression header ({len(raw)} bytes)")
    header = np.frombuffer(raw[:size].ljust(size, b"\0"), dtype=_COMP_HEADER)[0]
    codec = _codec(int(header["comp_type"]), int(header["level"]), where)
    data = file.element(TAG_COMPRESSED, int(header["ref"]), where)
    if data.special:
        raise HDF4UnsupportedError(f"{where}: the compressed data is itself a special element")
    return _Layout(
        tuple(max(s, 1) for s in shape),
        (codec,),
        np.zeros(1, dtype=np.int64),
        np.array([data.offset], dtype=np.uint64),
        np.array([data.length], dtype=np.uint64),
    )


def _chunked(file: _File, raw: bytes, shape: tuple[int, ...], where: str) -> _Layout:
    """A chunked special element (hchunks.c): its header, then the chunk table Vdata."""
    c = cursor(raw, f"{where}: chunked header")
    c.take(2 + 4 + 1 + 4 + 4 + 4 + 4)  # special, length, version, flags, sizes
    table_tag, table_ref = c.uint(2), c.uint(2)
    c.take(4)  # the (unused) special tag and ref
    rank = c.uint(4)
    if rank != len(shape) or table_tag != TAG_VH:
        raise HDF4FormatError(f"{where}: the chunked header has rank {rank} for {len(shape)}")
    dims = np.array(c.uints(4, 3 * rank), dtype=np.int64).reshape(rank, 3)
    chunk_shape = tuple(int(n) for n in dims[:, 2])
    if min(chunk_shape, default=1) < 1:
        raise HDF4FormatError(f"{where}: chunk shape {chunk_shape} has an empty side")
    vdata = file.vdatas.get(table_ref)
    if vdata is None:
        raise HDF4FormatError(f"{where}: the chunk table (Vdata {table_ref}) is missing")
    table = vdata_records(vdata, file.vdata_bytes(vdata, where), f"{where}: chunk table")
    names = table.dtype.names or ()
    if len(names) != 3:
        raise HDF4FormatError(f"{where}: the chunk table has fields {names}")
    origins = np.asarray(table[names[0]], dtype=np.int64).reshape(len(table), rank)
    refs = np.asarray(table[names[2]], dtype=np.int64)
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
        if (packed["special"] != _SPECIAL_COMP).any():
            raise HDF4UnsupportedError(
                f"{where}: a chunk is a special element other than compressed"
            )
        kinds = np.unique(packed["comp_type"])
        if len(kinds) != 1:
            raise HDF4UnsupportedError(f"{where}: chunks use compressions {kinds.tolist()}")
        codecs = (_codec(int(kinds[0]), int(packed["level"][0]), where),)
        data = file.reader.find_many(TAG_COMPRESSED, packed["ref"].astype(np.int64))
        if (data < 0).any():
            raise HDF4FormatError(f"{where}: a compressed chunk's data element is missing")
        if (file.reader.table["tag"][data] & EXTENDED).any():
            raise HDF4UnsupportedError(f"{where}: a compressed chunk's data is a special element")
        offsets = file.reader.table["offset"][data].astype(np.uint64)
        lengths = file.reader.table["length"][data].astype(np.uint64)
    return _Layout(chunk_shape, codecs, rows.astype(np.int64), offsets, lengths)


def _layout(file: _File, dataset: _Dataset, where: str) -> _Layout | None:
    """The chunks of a data set, or None when it has no data (all fill)."""
    nbytes = math.prod(dataset.shape) * dataset.dtype.itemsize
    data = dataset.data
    if data is None or data.length == 0 or nbytes == 0:
        return None
    if not data.special:
        return _contiguous(_Pieces((data.offset,), (data.length,)), dataset.shape, nbytes, where)
    raw = file.read(data)
    special = int.from_bytes(raw[:2], "big")
    if special == _SPECIAL_CHUNKED:
        return _chunked(file, raw, dataset.shape, where)
    if special == _SPECIAL_COMP:
        return _compressed(file, raw, dataset.shape, where)
    if special == _SPECIAL_LINKED:
        return _contiguous(file.pieces(data, where), dataset.shape, nbytes, where)
    if special == _SPECIAL_EXT:
        raise HDF4UnsupportedError(
            f"{where}: the data lies in an external file, which vz does not follow; drop it"
        )
    raise HDF4UnsupportedError(f"{where}: unsupported special element type {special}")


def _virtual_array(file: _File, dataset: _Dataset, names: tuple[str, ...]) -> VirtualArray:
    where = f"{file.url}: SDS {dataset.name!r}"
    layout = _layout(file, dataset, where)
    chunk_shape = layout.chunk_shape if layout else tuple(max(s, 1) for s in dataset.shape)
    fill = _fill_value(dataset, where)
    attributes = dict(dataset.attributes)
    if "_FillValue" in attributes:
        attributes["_FillValue"] = fill.item()
    metadata = ArrayMetadata.create(
        shape=dataset.shape,
        chunk_shape=chunk_shape,
        dtype=dataset.dtype,
        fill_value=fill,
        codecs=list(layout.codecs) if layout else None,
        dimension_names=names,
        attributes=attributes,
    )
    grid = checked_grid(metadata, where)
    if layout is None or 0 in grid:
        return VirtualArray(metadata, ChunkManifest.empty(grid))
    n_chunks = math.prod(grid)
    indices = np.full(n_chunks, -1, dtype=np.int32)
    offsets = np.zeros(n_chunks, dtype=np.uint64)
    lengths = np.zeros(n_chunks, dtype=np.uint64)
    indices[layout.rows], offsets[layout.rows], lengths[layout.rows] = (
        0,
        layout.offsets,
        layout.lengths,
    )
    manifest = ChunkManifest.from_numpy_columns(
        grid,
        dictionary=pa.array([file.url], pa.string()),
        indices=indices,
        offsets=offsets,
        lengths=lengths,
    )
    return VirtualArray(metadata, manifest)


def _loaded_array(file: _File, dataset: _Dataset, names: tuple[str, ...]) -> LoadedArray:
    """A data set read into memory: plain, linked-block or deflated data."""
    where = f"{file.url}: SDS {dataset.name!r}"
    fill = _fill_value(dataset, where)
    count = math.prod(dataset.shape)
    check_limit("max_inline_bytes", count * dataset.dtype.itemsize, where, "the bytes to load")
    data = dataset.data
    if data is None or data.length == 0:
        values = np.full(dataset.shape, fill, dtype=dataset.dtype)
    else:
        if data.special and int.from_bytes(file.read(data)[:2], "big") == _SPECIAL_LINKED:
            pieces = file.pieces(data, where)
        else:
            layout = _layout(file, dataset, where)
            if layout is None or layout.rows.shape != (1,):
                raise HDF4UnsupportedError(f"{where}: only unchunked data can be loaded")
            pieces = _Pieces((int(layout.offsets[0]),), (int(layout.lengths[0]),))
            if layout.codecs:
                raw = file.reader.file.read_ranges(
                    pieces.offsets, [pieces.offsets[0] + pieces.lengths[0]]
                )
                try:
                    decoded = zlib.decompress(bytes(raw[0]))
                except zlib.error as err:
                    raise HDF4FormatError(f"{where}: corrupt deflate stream ({err})") from err
                return _loaded(decoded, dataset, names, fill, where)
        ends = [o + n for o, n in zip(pieces.offsets, pieces.lengths, strict=True)]
        joined = b"".join(bytes(v) for v in file.reader.file.read_ranges(pieces.offsets, ends))
        return _loaded(joined, dataset, names, fill, where)
    return LoadedArray.from_numpy(
        values, dimension_names=names, attributes=dict(dataset.attributes), fill_value=fill
    )


def _loaded(
    raw: bytes, dataset: _Dataset, names: tuple[str, ...], fill: Any, where: str
) -> LoadedArray:
    nbytes = math.prod(dataset.shape) * dataset.dtype.itemsize
    if len(raw) < nbytes:
        raise HDF4FormatError(f"{where}: {len(raw)} bytes of data, the data set needs {nbytes}")
    values = np.frombuffer(raw[:nbytes], dtype=dataset.dtype).reshape(dataset.shape)
    attributes = dict(dataset.attributes)
    if "_FillValue" in attributes:
        attributes["_FillValue"] = fill.item()
    return LoadedArray.from_numpy(
        values, dimension_names=names, attributes=attributes, fill_value=fill
    )


# ---- the parser -------------------------------------------------------------------------


def _root_members(file: _File) -> list[tuple[int, int]]:
    """The members of the SD interface's ``CDF0.0`` Vgroup (or every Var0.0 and attribute)."""
    roots = [g for g in file.vgroups.values() if g.class_name == "CDF0.0"]
    if roots:
        return list(roots[0].members)
    members = [(TAG_VG, ref) for ref, g in file.vgroups.items() if g.class_name == "Var0.0"]
    return members


@attrs.frozen(kw_only=True)
class HDF4Parser:
    """Parser for HDF4 files (the SD interface's data sets, and HDF-EOS2), by ranged reads.

    Attributes
    ----------
    drop_variables
        Names of data sets to leave out.
    loadable_variables
        Names of data sets to read into memory (linked-block data, or any plain one).
    """

    drop_variables: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    loadable_variables: tuple[str, ...] = attrs.field(default=(), converter=tuple)

    priority = -38

    @classmethod
    def can_open(cls, probe: Probe) -> bool:
        """The HDF4 magic number ``0e 03 13 01``."""
        head = probe.head
        return head is not None and head[:4] == HDF4_MAGIC

    def __call__(self, url: str, registry: ObjectStoreRegistry) -> VirtualGroup:
        """Build the virtual group of one HDF4 file.

        Parameters
        ----------
        url
            The file's URL; it must lie under one of ``registry``'s prefixes.
        registry
            Where the file is read from (ranged reads of its descriptors and headers).

        Returns
        -------
        VirtualGroup
            One array per data set (dimension scales as coordinate arrays named by their
            dimension), the file attributes, and the file's fingerprint.

        Raises
        ------
        HDF4FormatError
            If the file is not HDF4, or is truncated or corrupt.
        HDF4UnsupportedError
            If a data set is stored in a way vz cannot reference and is not loadable.
        """
        file = source(registry, url)
        try:
            return self._parse(file)
        except SourceReadError:
            raise
        except HDF4FormatError as err:
            if str(err).startswith(file.url):
                raise
            raise type(err)(f"{file.url}: {err}") from err
        except VirtualizationError as err:
            raise HDF4FormatError(f"{file.url}: {err}") from err

    def _parse(self, source_file: Source) -> VirtualGroup:
        seen = source_file.fingerprint()
        size = seen.size if seen.size is not None else source_file.size()
        file = _File(source_file, size)
        members = _root_members(file)
        attributes = _attributes(file, members, "global ")
        eos_dims = eos_dimension_names(struct_metadata(attributes))
        arrays: dict[str, AnyArray] = {}
        for tag, ref in members:
            group = file.vgroups.get(ref) if tag == TAG_VG else None
            if group is None or group.class_name != "Var0.0" or group.name in self.drop_variables:
                continue
            dataset = _dataset(file, group)
            if dataset.is_coordinate and dataset.data is None:
                continue  # a dimension with attributes but no scale values
            names = eos_dims.get(dataset.name, dataset.dimension_names)
            if len(names) != len(dataset.shape):
                names = dataset.dimension_names
            if dataset.name in arrays:
                raise HDF4UnsupportedError(
                    f"two data sets are named {dataset.name!r}; drop one (drop_variables=)"
                )
            if dataset.name in self.loadable_variables:
                arrays[dataset.name] = _loaded_array(file, dataset, names)
            else:
                arrays[dataset.name] = _virtual_array(file, dataset, names)
        return VirtualGroup(arrays=arrays, attributes=attributes, sources={source_file.url: seen})
