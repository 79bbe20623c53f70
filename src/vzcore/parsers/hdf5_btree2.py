"""HDF5's version 2 B-tree of chunk records, read level by level (File Format Spec v3, III.A.2).

The header ("BTHD") gives the root and the tree's depth; every node ("BTIN" internal,
"BTLF" leaf) holds chunk records (type 10: unfiltered, 11: filtered), internal nodes
also pointers to their children with the children's record counts. The nodes of one
level are fetched in one batch and decoded together; their checksums are verified
together (`vzcore.parsers.hdf5_checksum`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from vzcore.byteranges import Source
from vzcore.parsers.hdf5_layout import (
    FileShape,
    HDF5IndexError,
    little_endian,
    read_blocks,
    verify_checksums,
)

__all__ = ["ChunkRecords", "read_v2_btree"]

_PREFIX = 10  # signature, version, type and checksum of every node
_MAX_DEPTH = 64


class ChunkRecords(NamedTuple):
    """Chunk records: scaled offsets (count, ndim), addresses, sizes, filter masks."""

    scaled: npt.NDArray[np.int64]
    offsets: npt.NDArray[np.uint64]
    sizes: npt.NDArray[np.uint64]
    filter_masks: npt.NDArray[np.uint32]


def _encoded_size(limit: int) -> int:
    """Bytes HDF5 uses to store counts up to ``limit`` (H5VM_limit_enc_size)."""
    return (max(limit, 1).bit_length() - 1) // 8 + 1


def _pointer_sizes(
    shape: FileShape, node_size: int, record_size: int, depth: int
) -> tuple[list[int], list[int], int]:
    """Per depth: child pointer size, max records per node; and the record count width."""
    max_records = [(node_size - _PREFIX) // record_size]
    cumulative = [max_records[0]]
    cumulative_size = [0]
    count_size = _encoded_size(max_records[0])
    pointer = [0]
    for level in range(1, depth + 1):
        size = shape.sizeof_addr + count_size + (cumulative_size[level - 1] if level > 1 else 0)
        pointer.append(size)
        records = (node_size - (_PREFIX + size)) // (record_size + size)
        max_records.append(records)
        cumulative.append((records + 1) * cumulative[level - 1] + records)
        cumulative_size.append(_encoded_size(cumulative[level]))
    return pointer, max_records, count_size


def read_v2_btree(
    file: Source, shape: FileShape, address: int, ndim: int, filtered: bool, bound: int, where: str
) -> ChunkRecords:
    """The chunk records of the version 2 B-tree whose header is at ``address``.

    ``bound`` caps the records (the chunks the array can have): more is a corrupt tree.
    """
    addr, length = shape.sizeof_addr, shape.sizeof_size
    header = read_blocks(file, shape, np.array([address]), 22 + addr + length, where)
    if bytes(header[0, :4]) != b"BTHD":
        raise HDF5IndexError(f"{where}: the chunk B-tree has no BTHD signature (corrupt file)")
    verify_checksums(header, "B-tree header", where)
    row = header[0]
    kind = int(row[5])
    node_size = int(little_endian(row[6:10]))
    record_size = int(little_endian(row[10:12]))
    depth = int(little_endian(row[12:14]))
    root = int(little_endian(row[16 : 16 + addr]))
    root_records = int(little_endian(row[16 + addr : 18 + addr]))
    total = int(little_endian(row[18 + addr : 18 + addr + length]))
    size_width = record_size - addr - 4 - 8 * ndim
    if (
        kind != (11 if filtered else 10)
        or (filtered and size_width < 1)
        or (not filtered and record_size != addr + 8 * ndim)
        or depth > _MAX_DEPTH
        or total > bound
        or node_size <= _PREFIX + record_size
    ):
        raise HDF5IndexError(
            f"{where}: the chunk B-tree's header does not match the dataset (type {kind}, "
            f"records of {record_size} bytes, depth {depth}, {total} records) (corrupt file)"
        )
    pointer_size, max_records, count_size = _pointer_sizes(shape, node_size, record_size, depth)
    addresses = np.array([root], np.int64)
    counts = np.array([root_records], np.int64)
    records: list[npt.NDArray[np.uint8]] = []
    for level in range(depth, -1, -1):
        if len(addresses) == 0:
            break
        if (counts > max_records[level]).any() or sum(
            len(r) for r in records
        ) + counts.sum() > total:
            raise HDF5IndexError(
                f"{where}: a node of the chunk B-tree holds more records than it can (corrupt file)"
            )
        nodes = read_blocks(file, shape, addresses, node_size, where)
        signature = b"BTIN" if level else b"BTLF"
        if (nodes[:, :4] != np.frombuffer(signature, np.uint8)).any() or (
            nodes[:, 5] != kind
        ).any():
            raise HDF5IndexError(
                f"{where}: a node of the chunk B-tree has no {signature.decode()} signature "
                "(corrupt file)"
            )
        ends = 6 + counts * record_size + (counts + 1) * pointer_size[level] * (level > 0)
        verify_checksums(nodes, "B-tree node", where, ends)
        taken = np.arange(max_records[level])[None, :] < counts[:, None]
        width = max_records[level] * record_size
        records.append(nodes[:, 6 : 6 + width].reshape(len(nodes), -1, record_size)[taken])
        if level == 0:
            break
        # Child pointers follow each node's records: gather them at per-node offsets.
        size = pointer_size[level]
        span = (max_records[level] + 1) * size
        columns = np.minimum(6 + counts[:, None] * record_size + np.arange(span), node_size - 1)
        pointers = nodes[np.arange(len(nodes))[:, None], columns].reshape(len(nodes), -1, size)
        pointers = pointers[np.arange(max_records[level] + 1)[None, :] <= counts[:, None]]
        addresses = little_endian(pointers[:, :addr]).astype(np.int64)
        counts = little_endian(pointers[:, addr : addr + count_size]).astype(np.int64)
    found = np.concatenate(records) if records else np.zeros((0, record_size), np.uint8)
    if len(found) != total:
        raise HDF5IndexError(
            f"{where}: the chunk B-tree holds {len(found)} records, its header says {total} "
            "(corrupt file)"
        )
    offsets = little_endian(found[:, :addr])
    scaled_at = record_size - 8 * ndim
    scaled = found[:, scaled_at:].copy().view("<u8").astype(np.int64).reshape(-1, ndim)
    if filtered:
        sizes = little_endian(found[:, addr : addr + size_width])
        masks = found[:, scaled_at - 4 : scaled_at].copy().view("<u4")[:, 0].astype(np.uint32)
    else:
        sizes = np.zeros(len(found), np.uint64)  # the caller knows an unfiltered chunk's size
        masks = np.zeros(len(found), np.uint32)
    return ChunkRecords(scaled, offsets, sizes, masks)
