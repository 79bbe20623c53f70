"""Global heap collections behind an object's variable-length attributes, checked from bytes.

libhdf5 2.0 loads a global heap collection (HDF5 File Format Specification v3, III.E)
by stepping over its objects by their sizes (``H5HG__cache_heap_deserialize``): an
object whose size makes no step (the free space object of size 0, or a size that
wraps the pointer) loops forever, inside C where no signal reaches. So before h5py
reads the attributes of an object (``DIMENSION_LIST`` of dimension scales, strings
of variable length), `check_attribute_heaps` reads the object header's attribute
messages (IV.A.2.m), takes the collections their variable-length values are in, and
walks each the way libhdf5 does: a collection it would not walk to its end is refused.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from vzcore.byteranges import RangeFile, Source
from vzcore.parsers.hdf5_layout import FileShape, RangeReader, header_messages, little_endian

__all__ = ["HeapChecker"]

_ATTRIBUTE = 0x000C
_VLEN = 9  # datatype class: variable-length (sequences and strings)


class HeapChecker:
    """Checks, once per collection, the global heaps the attributes of objects of one file use.

    A context manager: a local file stays open for its reads until the parse ends.
    ``reader`` and ``shape`` serve other small reads of the file's structures; they
    are for a file without a user block only (``enabled``).
    """

    def __init__(
        self, handle: Any, file: Source, size: int | None, opened: str | RangeFile | None = None
    ) -> None:
        creation = handle.id.get_create_plist()
        sizeof_addr, sizeof_size = creation.get_sizes()
        self.shape = FileShape(
            sizeof_addr=sizeof_addr,
            sizeof_size=sizeof_size,
            size=file.size() if size is None else size,
        )
        # Addresses are relative to the superblock: keep to files without a user block.
        self.enabled = creation.get_userblock() == 0
        local = file.local_path()
        # Headers and collections are small reads: a local file's by pread, a remote
        # file's through the blocks h5py reads (``opened``, its `RangeFile`): no GET more.
        shared = opened if isinstance(opened, RangeFile) else None
        self.reader: RangeReader = (
            file.cached(size=self.shape.size, range_file=shared)
            if local is None
            else _LocalRanges(local)
        )
        self._checked: set[int] = set()
        self._header: tuple[int, list[tuple[int, bytes]]] | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if isinstance(self.reader, _LocalRanges):
            self.reader.close()

    def messages(self, address: int, where: str) -> list[tuple[int, bytes]]:
        """The messages of the object header at ``address`` (the last header asked: kept)."""
        if self._header is None or self._header[0] != address:
            self._header = address, list(header_messages(address, self.reader, self.shape, where))
        return self._header[1]

    def check_attribute_heaps(self, address: int, where: str) -> None:
        """Refuse the object at ``address`` if a collection its attributes use would hang HDF5.

        Raises
        ------
        HDF5FormatError
            When such a collection is outside the file, has no GCOL signature, or holds
            an object HDF5 would step over forever or past the collection's end.
        """
        if not self.enabled:
            return
        for kind, body in self.messages(address, where):
            if kind == _ATTRIBUTE:
                for collection in _vlen_collections(body, self.shape):
                    if collection not in self._checked:
                        self._check_collection(collection, where)
                        self._checked.add(collection)

    def _check_collection(self, address: int, where: str) -> None:
        from vzcore.parsers.hdf5 import HDF5FormatError

        shape, sizes = self.shape, self.shape.sizeof_size
        header = 8 + sizes  # "GCOL", version, 3 reserved, collection size
        object_header = 8 + sizes  # index, reference count, 4 reserved, object size
        problem = None
        if address + header > shape.size:
            problem = "starts outside the file"
        else:
            head = bytes(self.reader.read_ranges([address], [address + header])[0])
            length = int.from_bytes(head[8:header], "little")
            if head[:4] != b"GCOL":
                problem = "has no GCOL signature"
            elif length < header or address + length > shape.size:
                problem = f"of {length} bytes does not fit in the file"
            else:
                data = bytes(self.reader.read_ranges([address], [address + length])[0])
                problem = _walk(data, header, object_header, sizes)
        if problem is not None:
            raise HDF5FormatError(
                f"{where}: the global heap collection at byte {address} that an attribute's "
                f"values are in {problem} (corrupt file; HDF5 would not read it, or loop)"
            )


class _LocalRanges:
    """`RangeReader` of a local file, without the store layer's cost per call (µs, not 100s)."""

    def __init__(self, path: str) -> None:
        self._descriptor = os.open(path, os.O_RDONLY)

    def read_ranges(
        self, starts: Sequence[int] | npt.NDArray[Any], ends: Sequence[int] | npt.NDArray[Any]
    ) -> list[memoryview]:
        return [
            memoryview(os.pread(self._descriptor, int(end) - int(start), int(start)))
            for start, end in zip(starts, ends, strict=True)
        ]

    def close(self) -> None:
        os.close(self._descriptor)


def _walk(data: bytes, header: int, object_header: int, sizes: int) -> str | None:
    """What stops libhdf5 from stepping through the collection's objects to its end, if anything."""
    position, end = header, len(data)
    while position < end:
        if position + object_header > end:
            return None  # a tail too short for an object: free space, as libhdf5 takes it
        index = int.from_bytes(data[position : position + 2], "little")
        size = int.from_bytes(data[position + 8 : position + 8 + sizes], "little")
        step = object_header + (-(-size // 8) * 8) if index else size
        if step == 0 or position + step > end:
            return f"holds an object (index {index}, {size} bytes) at byte {position} that " + (
                "has no size" if step == 0 else "reaches past the collection's end"
            )
        position += step
    return None


def _vlen_collections(body: bytes, shape: FileShape) -> set[int]:
    """The global heap collections the values of an attribute message of a vlen type are in."""
    if len(body) < 8:
        return set()
    version, flags, name_size, type_size, space_size = struct.unpack_from("<BBHHH", body)
    if version == 1:

        def padded(n: int) -> int:
            return -(-n // 8) * 8

        start = 8
    elif version in (2, 3):

        def padded(n: int) -> int:
            return n

        start = 8 if version == 2 else 9
    else:
        return set()
    if version > 1 and flags & 0x03:
        return set()  # a shared datatype or dataspace: left to HDF5
    type_start = start + padded(name_size)
    space_start = type_start + padded(type_size)
    data_start = space_start + padded(space_size)
    datatype = body[type_start : type_start + type_size]
    if len(datatype) < 8 or datatype[0] & 0x0F != _VLEN:
        return set()
    count = _elements(body[space_start : space_start + space_size], shape)
    addr = shape.sizeof_addr
    width = 4 + addr + 4  # sequence length, collection address, object index
    data = body[data_start : data_start + count * width]
    if len(data) > 64 * width:  # many values: with numpy
        rows = np.frombuffer(data[: len(data) // width * width], np.uint8).reshape(-1, width)
        addresses = little_endian(rows[:, 4 : 4 + addr])
        lengths = rows[:, :4].copy().view("<u4")[:, 0]
        used = (lengths > 0) & (addresses != 0) & (addresses != np.uint64(shape.undefined))
        return {int(a) for a in np.unique(addresses[used])}
    found = set()
    for row in range(0, len(data) - width + 1, width):
        address = int.from_bytes(data[row + 4 : row + 4 + addr], "little")
        if data[row : row + 4] != b"\0\0\0\0" and address not in (0, shape.undefined):
            found.add(address)
    return found


def _elements(space: bytes, shape: FileShape) -> int:
    """How many elements a dataspace message (IV.A.2.b) holds (0 when it cannot be read)."""
    if len(space) < 4:
        return 0
    version, rank = space[0], space[1]
    if version == 1:
        dims_start = 8
    elif version == 2:
        if space[3] == 2:  # null dataspace
            return 0
        dims_start = 4
    else:
        return 0
    sizes = shape.sizeof_size
    dims = space[dims_start : dims_start + rank * sizes]
    if len(dims) < rank * sizes:
        return 0
    count = 1
    for axis in range(rank):
        count *= int.from_bytes(dims[axis * sizes : (axis + 1) * sizes], "little")
    return min(count, 1 << 20)
