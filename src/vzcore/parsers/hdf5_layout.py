"""The Data Layout message of an HDF5 dataset, read from its object header's bytes.

h5py says where a dataset's object header is (`h5py.h5o.get_info`), but not where its
chunk index is nor which kind it is; both are in the layout message (HDF5 File Format
Specification v3, IV.A.2.i), found by walking the header's messages (IV.A.1.a version 1,
IV.A.1.b version 2 "OHDR", with "OCHK" continuation blocks).
Also here: what every index reader shares (`FileShape`, `read_blocks`, `HDF5IndexError`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

import attrs
import numpy as np
import numpy.typing as npt

from vzcore.errors import VirtualizationError
from vzcore.parsers.hdf5_checksum import lookup3

__all__ = [
    "ChunkLayout",
    "FileShape",
    "HDF5IndexError",
    "RangeReader",
    "chunk_layout",
    "header_address",
    "header_messages",
    "layout_message",
    "little_endian",
    "read_blocks",
    "verify_checksums",
]

_LAYOUT, _CONTINUATION = 0x0008, 0x0010
_HEADER_PROBE = 512  # bytes read first at a header: its prefix and, usually, all its messages
_MAX_CONTINUATIONS = 4096


class RangeReader(Protocol):
    """What the readers here read bytes with: a `Source`, or a cheaper reader of a local file."""

    def read_ranges(
        self, starts: Sequence[int] | npt.NDArray[Any], ends: Sequence[int] | npt.NDArray[Any]
    ) -> list[memoryview]:
        """The bytes of each ``[start, end)`` range, in the order given."""
        ...


class HDF5IndexError(VirtualizationError):
    """A dataset's chunk index (or the header pointing at it) is corrupt or truncated."""


@attrs.frozen
class FileShape:
    """What the superblock fixes for every structure: address and length widths, file size."""

    sizeof_addr: int
    sizeof_size: int
    size: int

    @property
    def undefined(self) -> int:
        """The undefined address (all bits set), HDF5's "not allocated"."""
        return (1 << (8 * self.sizeof_addr)) - 1


@attrs.frozen
class ChunkLayout:
    """A chunked layout message: index type, index address and the chunk's dimensions.

    ``index_type`` is 0 for a version 3 message (a version 1 B-tree) and the version 4
    chunk indexing type otherwise (1 single chunk, 2 implicit, 3 fixed array, 4
    extensible array, 5 version 2 B-tree). ``chunk_dims`` ends with the element size.
    """

    version: int
    flags: int
    chunk_dims: tuple[int, ...]
    index_type: int
    address: int
    # Index-type specific fields, in the specification's order.
    parameters: tuple[int, ...] = ()


def read_blocks(
    file: RangeReader, shape: FileShape, starts: npt.NDArray[np.int64], length: int, where: str
) -> npt.NDArray[np.uint8]:
    """``length`` bytes at each of ``starts`` as one (n, length) array, zero past the file's end.

    Raises
    ------
    HDF5IndexError
        When a block starts outside the file.
    """
    starts = np.asarray(starts, dtype=np.int64)
    outside = (starts < 0) | (starts >= shape.size)
    if outside.any():
        raise HDF5IndexError(
            f"{where}: a chunk index node is at byte {int(starts[outside][0])}, outside the "
            f"file of {shape.size} bytes (corrupt or truncated file)"
        )
    ends = np.minimum(starts + length, shape.size)
    views = file.read_ranges(starts, ends)
    if bool((ends == starts + length).all()):
        return np.frombuffer(b"".join(views), dtype=np.uint8).reshape(len(starts), length)
    blocks = np.zeros((len(starts), length), dtype=np.uint8)
    for row, view in enumerate(views):  # only when a block reaches past the file's end
        blocks[row, : len(view)] = np.frombuffer(view, dtype=np.uint8)
    return blocks


def little_endian(columns: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    """Unsigned little-endian integers of width ``columns.shape[-1]`` (at most 8 bytes)."""
    width = columns.shape[-1]
    padded = np.zeros((*columns.shape[:-1], 8), dtype=np.uint8)
    padded[..., :width] = columns
    return padded.view("<u8")[..., 0].astype(np.uint64)


def verify_checksums(
    blocks: npt.NDArray[np.uint8],
    what: str,
    where: str,
    lengths: npt.NDArray[np.int64] | None = None,
) -> None:
    """Check each row's checksum: 4 bytes after its first ``lengths`` bytes (else its last 4)."""
    count, width = blocks.shape
    ends = np.full(count, width - 4, np.int64) if lengths is None else np.asarray(lengths, np.int64)
    if ((ends < 0) | (ends + 4 > width)).any():
        raise HDF5IndexError(
            f"{where}: a {what} block of the chunk index is too long (corrupt file)"
        )
    rows = np.arange(count)[:, None]
    stored = blocks[rows, ends[:, None] + np.arange(4)].copy().view("<u4")[:, 0]
    bad = np.flatnonzero(lookup3(blocks, ends) != stored)
    if len(bad):
        raise HDF5IndexError(
            f"{where}: checksum mismatch in {len(bad)} {what} block(s) of the chunk index "
            "(corrupt file)"
        )


def chunk_layout(
    dataset: Any, file: RangeReader, shape: FileShape, where: str
) -> ChunkLayout | None:
    """The chunked layout message of ``dataset``; None when vz does not read its header itself."""
    return layout_message(header_messages(header_address(dataset), file, shape, where), shape)


def layout_message(messages: Iterable[tuple[int, bytes]], shape: FileShape) -> ChunkLayout | None:
    """The chunked layout message among an object header's ``messages`` (`header_messages`)."""
    for kind, body in messages:
        if kind == _LAYOUT:
            return _parse_layout(body, shape)
    return None


def header_messages(
    address: int, file: RangeReader, shape: FileShape, where: str
) -> Iterator[tuple[int, bytes]]:
    """The (type, body) of each message of the object header at ``address``, continuations
    followed; nothing for a header vz does not read (not version 1 or 2, outside the file)."""
    if not 0 <= address < shape.size:
        return iter(())
    end = min(address + _HEADER_PROBE, shape.size)
    head = bytes(file.read_ranges([address], [end])[0]).ljust(_HEADER_PROBE, b"\0")
    if head[:4] == b"OHDR":
        return _messages_v2(head, address, file, shape, where)
    if head[0] == 1:
        return _messages_v1(head, address, file, shape, where)
    return iter(())


def header_address(dataset: Any) -> int:
    """Where the object header of ``dataset`` starts.

    The hard link naming it says so at once; `h5py.h5o.get_info` reads the whole
    header (and takes milliseconds), so it is only asked for other links.
    """
    import h5py

    name = dataset.name
    if name and name != "/":
        parent, _, base = name.rpartition("/")
        try:
            group = dataset.file[parent or "/"]
            link = group.id.links.get_info(base.encode())
        except (KeyError, OSError, RuntimeError, ValueError):
            link = None
        if link is not None and link.type == h5py.h5l.TYPE_HARD:
            return int(link.u)
    return int(h5py.h5o.get_info(dataset.id).addr)


def _read(file: RangeReader, shape: FileShape, start: int, length: int, where: str) -> bytes:
    if length <= 0 or start < 0 or start + length > shape.size:
        raise HDF5IndexError(
            f"{where}: an object header block (bytes {start}-{start + length}) is outside "
            f"the file of {shape.size} bytes (corrupt or truncated file)"
        )
    return bytes(file.read_ranges([start], [start + length])[0])


def _messages_v1(
    head: bytes, address: int, file: RangeReader, shape: FileShape, where: str
) -> Iterator[tuple[int, bytes]]:
    header_size = int.from_bytes(head[8:12], "little")
    blocks = [(address + 16, header_size)]
    for _ in range(_MAX_CONTINUATIONS):
        if not blocks:
            return
        start, length = blocks.pop(0)
        data = head[16 : 16 + length] if start == address + 16 else b""
        if len(data) < length:
            data = _read(file, shape, start, length, where)
        position = 0
        while position + 8 <= len(data):
            kind = int.from_bytes(data[position : position + 2], "little")
            size = int.from_bytes(data[position + 2 : position + 4], "little")
            body = data[position + 8 : position + 8 + size]
            yield kind, body
            if kind == _CONTINUATION:
                blocks.append(_continuation(body, shape))
            position += 8 + size


def _messages_v2(
    head: bytes, address: int, file: RangeReader, shape: FileShape, where: str
) -> Iterator[tuple[int, bytes]]:
    flags = head[5]
    position = 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
    width = 1 << (flags & 0x03)
    chunk_size = int.from_bytes(head[position : position + width], "little")
    start = address + position + width
    # (start of the messages, their length, whether the block is a continuation "OCHK").
    blocks: list[tuple[int, int]] = [(address, position + width + chunk_size + 4)]
    message_header = 6 if flags & 0x04 else 4
    for _ in range(_MAX_CONTINUATIONS):
        if not blocks:
            return
        block_start, block_length = blocks.pop(0)
        data = head[:block_length] if block_start == address else b""
        if len(data) < block_length:
            data = _read(file, shape, block_start, block_length, where)
        # No checksum check here: HDF5 verified every block of this header when h5py
        # opened the dataset (H5O_protect loads them all), and it costs a millisecond.
        if block_start == address:
            first = start - address
        elif data[:4] == b"OCHK":
            first = 4
        else:
            raise HDF5IndexError(f"{where}: an object header continuation has no OCHK signature")
        position = first
        while position + message_header <= len(data) - 4:
            kind = data[position]
            size = int.from_bytes(data[position + 1 : position + 3], "little")
            body = data[position + message_header : position + message_header + size]
            yield kind, body
            if kind == _CONTINUATION:
                blocks.append(_continuation(body, shape))
            position += message_header + size


def _continuation(body: bytes, shape: FileShape) -> tuple[int, int]:
    offset = int.from_bytes(body[: shape.sizeof_addr], "little")
    end = shape.sizeof_addr + shape.sizeof_size
    return offset, int.from_bytes(body[shape.sizeof_addr : end], "little")


def _parse_layout(body: bytes, shape: FileShape) -> ChunkLayout | None:
    """A chunked layout message of version 3 or 4; None for any other (left to h5py)."""
    addr = shape.sizeof_addr
    if len(body) < 2 or body[1] != 2:  # layout class 2: chunked
        return None
    version = body[0]
    if version == 3:
        ndims = body[2]
        address = int.from_bytes(body[3 : 3 + addr], "little")
        dims = np.frombuffer(body[3 + addr : 3 + addr + 4 * ndims], "<u4")
        return ChunkLayout(
            version=3,
            flags=0,
            chunk_dims=tuple(dims.tolist()),
            index_type=0,
            address=address,
        )
    if version != 4:
        return None
    flags, ndims, width = body[2], body[3], body[4]
    dims = little_endian(np.frombuffer(body[5 : 5 + ndims * width], np.uint8).reshape(ndims, width))
    position = 5 + ndims * width
    index_type = body[position]
    position += 1
    parameter_widths = {
        1: (shape.sizeof_size, 4) if flags & 0x02 else (),
        2: (),
        3: (1,),
        4: (1, 1, 1, 1, 1),
        5: (4, 1, 1),
    }.get(index_type)
    if parameter_widths is None:
        return None
    parameters = []
    for field in parameter_widths:
        parameters.append(int.from_bytes(body[position : position + field], "little"))
        position += field
    address = int.from_bytes(body[position : position + addr], "little")
    return ChunkLayout(
        version=4,
        flags=flags,
        chunk_dims=tuple(int(d) for d in dims),
        index_type=index_type,
        address=address,
        parameters=tuple(parameters),
    )
