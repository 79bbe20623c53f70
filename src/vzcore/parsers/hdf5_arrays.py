"""HDF5's fixed and extensible arrays of chunk entries, read as one block of entry bytes.

A fixed array (HDF5 File Format Specification v3, VII.C: "FAHD" header, "FADB" data
block, optionally in checksummed pages) or an extensible array (VII.B: "EAHD" header,
"EAIB" index block, "EASB" secondary blocks, "EADB" data blocks, paged when large)
holds one entry per chunk, in the order of the chunk's linear index. Both readers
return the entries as a (count, entry size) byte array, 0xFF (the undefined address)
where nothing was ever written; blocks of one size are fetched and checked together.
"""

from __future__ import annotations

import math

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

__all__ = ["read_extensible_array", "read_fixed_array"]


def _check_signature(blocks: npt.NDArray[np.uint8], signature: bytes, where: str) -> None:
    if len(blocks) and (blocks[:, :4] != np.frombuffer(signature, np.uint8)).any():
        raise HDF5IndexError(
            f"{where}: a chunk index block has no {signature.decode()} signature (corrupt file)"
        )


def _check_entry_size(
    kind: str, client: int, entry_size: int, filtered: bool, shape: FileShape, where: str
) -> None:
    wanted = entry_size > shape.sizeof_addr + 4 if filtered else entry_size == shape.sizeof_addr
    if client != int(filtered) or not wanted:
        raise HDF5IndexError(
            f"{where}: the chunk {kind}'s header does not match the dataset (client {client}, "
            f"entries of {entry_size} bytes, {'' if filtered else 'un'}filtered chunks) "
            "(corrupt file)"
        )


def _paged(
    file: Source,
    shape: FileShape,
    first_pages: npt.NDArray[np.int64],
    written: npt.NDArray[np.bool_],
    count: int,
    page_entries: int,
    entry_size: int,
    where: str,
) -> npt.NDArray[np.uint8]:
    """Entries of blocks of ``count`` entries in pages starting at ``first_pages``.

    ``written`` (blocks, pages) says which pages were ever written; the others read as
    undefined. The last page of a block may be short.
    """
    n_pages = written.shape[1]
    page_size = page_entries * entry_size + 4
    entries = np.full((len(first_pages), n_pages * page_entries, entry_size), 0xFF, np.uint8)
    last_count = count - (n_pages - 1) * page_entries
    for full, entries_in_page in (
        (slice(0, n_pages - 1), page_entries),
        (slice(n_pages - 1, n_pages), last_count),
    ):
        block_rows, pages = np.nonzero(written[:, full])
        pages = pages + full.start
        if not len(pages):
            continue
        starts = first_pages[block_rows] + pages * page_size
        blocks = read_blocks(file, shape, starts, entries_in_page * entry_size + 4, where)
        verify_checksums(blocks, "array page", where)
        values = blocks[:, :-4].reshape(len(pages), entries_in_page, entry_size)
        columns = pages[:, None] * page_entries + np.arange(entries_in_page)
        entries[block_rows[:, None], columns] = values
    return entries[:, :count].reshape(-1, entry_size)


# ---- fixed array ------------------------------------------------------------------------------


def read_fixed_array(
    file: Source, shape: FileShape, address: int, filtered: bool, where: str
) -> npt.NDArray[np.uint8]:
    """The (count, entry size) entries of the fixed array whose header is at ``address``."""
    addr, length = shape.sizeof_addr, shape.sizeof_size
    header = read_blocks(file, shape, np.array([address]), 8 + length + addr + 4, where)
    _check_signature(header, b"FAHD", where)
    verify_checksums(header, "fixed array header", where)
    client, entry_size, page_bits = int(header[0, 5]), int(header[0, 6]), int(header[0, 7])
    _check_entry_size("fixed array", client, entry_size, filtered, shape, where)
    count = int(little_endian(header[0, 8 : 8 + length]))
    block_address = int(little_endian(header[0, 8 + length : 8 + length + addr]))
    prefix = 6 + addr
    page_entries = 1 << page_bits
    if count <= page_entries:
        size = prefix + count * entry_size + 4
        block = read_blocks(file, shape, np.array([block_address]), size, where)
        _check_signature(block, b"FADB", where)
        verify_checksums(block, "fixed array data", where)
        return block[0, prefix:-4].reshape(count, entry_size)
    n_pages = -(-count // page_entries)
    bitmap_size = -(-n_pages // 8)
    head = read_blocks(file, shape, np.array([block_address]), prefix + bitmap_size + 4, where)
    _check_signature(head, b"FADB", where)
    verify_checksums(head, "fixed array data", where)
    # Bit i (most significant first, as HDF5 packs them) says whether page i was written.
    written = np.unpackbits(head[0, prefix : prefix + bitmap_size])[:n_pages].astype(bool)
    first_page = np.array([block_address + prefix + bitmap_size + 4], np.int64)
    return _paged(file, shape, first_page, written[None, :], count, page_entries, entry_size, where)


# ---- extensible array -------------------------------------------------------------------------


def read_extensible_array(
    file: Source, shape: FileShape, address: int, filtered: bool, limit: int, where: str
) -> npt.NDArray[np.uint8] | None:
    """The entries of the extensible array whose header is at ``address``, up to the last set.

    ``limit`` bounds the entries the dataset can have (more is a corrupt header). None for
    a layout vz does not read (paged data blocks straight under the index block).
    """
    addr, length = shape.sizeof_addr, shape.sizeof_size
    header = read_blocks(file, shape, np.array([address]), 12 + 6 * length + addr + 4, where)
    _check_signature(header, b"EAHD", where)
    verify_checksums(header, "extensible array header", where)
    row = header[0]
    client, entry_size = int(row[5]), int(row[6])
    _check_entry_size("extensible array", client, entry_size, filtered, shape, where)
    max_bits, index_entries, block_min, pointers_min, page_bits = (int(v) for v in row[7:12])
    stats = little_endian(row[12 : 12 + 6 * length].reshape(6, length))
    count = int(stats[4])  # the maximum index set, plus one
    index_address = int(little_endian(row[12 + 6 * length : 12 + 6 * length + addr]))
    if (
        block_min < 1
        or pointers_min < 1
        or block_min & (block_min - 1)
        or pointers_min & (pointers_min - 1)
        or not 0 < max_bits <= 64
        or count > 1 << max_bits
        or count > limit
    ):
        raise HDF5IndexError(
            f"{where}: the chunk extensible array's header holds impossible parameters "
            "(corrupt file)"
        )
    # The super blocks (H5EA__hdr_init): super block u holds 2**(u//2) data blocks of
    # block_min * 2**((u+1)//2) entries each.
    n_super = 1 + max_bits - int(math.log2(block_min))
    # Super blocks whose data blocks the index block points at directly.
    direct_supers = 2 * int(math.log2(pointers_min))
    # Only the levels holding entries below ``count`` (a logarithmic number) are looked at.
    all_levels = np.arange(n_super, dtype=np.int64)
    level_entries = 2 ** (all_levels // 2) * block_min * 2 ** ((all_levels + 1) // 2)
    level_first = index_entries + np.concatenate([[0], np.cumsum(level_entries)[:-1]])
    levels = all_levels[: max(int((level_first < count).sum()), direct_supers)]
    blocks_per_super = 2 ** (levels // 2)
    block_entries = block_min * 2 ** ((levels + 1) // 2)
    n_direct_blocks = 2 * (pointers_min - 1)
    n_super_addresses = n_super - direct_supers
    index_size = (
        6 + addr + index_entries * entry_size + (n_direct_blocks + n_super_addresses) * addr + 4
    )
    index = read_blocks(file, shape, np.array([index_address]), index_size, where)
    _check_signature(index, b"EAIB", where)
    verify_checksums(index, "extensible array index", where)
    position = 6 + addr
    entries = np.full((max(count, index_entries), entry_size), 0xFF, np.uint8)
    entries[:index_entries] = index[0, position : position + index_entries * entry_size].reshape(
        index_entries, entry_size
    )
    position += index_entries * entry_size
    pointers = little_endian(
        index[0, position : position + (n_direct_blocks + n_super_addresses) * addr].reshape(
            -1, addr
        )
    )
    # Every data block in index order: its super block, its first entry, its address.
    super_of_block = np.repeat(levels, blocks_per_super)
    first_entry = index_entries + np.concatenate(
        [[0], np.cumsum(np.repeat(block_entries, blocks_per_super))[:-1]]
    )
    block_addresses = np.full(len(super_of_block), shape.undefined, np.uint64)
    block_addresses[:n_direct_blocks] = pointers[:n_direct_blocks]
    page_entries = 1 << page_bits
    if (block_entries[:direct_supers] > page_entries).any():
        return None  # paged data blocks without a secondary block's page bitmap
    arr_offset_size = (max_bits + 7) // 8
    written = _super_blocks(
        file,
        shape,
        pointers[n_direct_blocks:],
        levels[direct_supers:],
        blocks_per_super,
        block_entries,
        first_entry,
        block_addresses,
        count,
        page_entries,
        arr_offset_size,
        where,
    )
    needed = (first_entry < count) & (block_addresses != np.uint64(shape.undefined))
    prefix = 6 + addr + arr_offset_size
    for level in np.unique(super_of_block[needed]):
        chosen = np.flatnonzero(needed & (super_of_block == level))
        n_entries = int(block_entries[level])
        starts = block_addresses[chosen].astype(np.int64)
        if n_entries <= page_entries:
            blocks = read_blocks(file, shape, starts, prefix + n_entries * entry_size + 4, where)
            _check_signature(blocks, b"EADB", where)
            verify_checksums(blocks, "extensible array data", where)
            values = blocks[:, prefix:-4].reshape(-1, entry_size)
        else:
            heads = read_blocks(file, shape, starts, prefix + 4, where)
            _check_signature(heads, b"EADB", where)
            verify_checksums(heads, "extensible array data", where)
            values = _paged(
                file,
                shape,
                starts + prefix + 4,
                written[chosen, : n_entries // page_entries],
                n_entries,
                page_entries,
                entry_size,
                where,
            )
        rows = (first_entry[chosen][:, None] + np.arange(n_entries)).ravel()
        keep = rows < len(entries)
        entries[rows[keep]] = values[keep]
    return entries[:count]


def _super_blocks(
    file: Source,
    shape: FileShape,
    super_addresses: npt.NDArray[np.uint64],
    super_levels: npt.NDArray[np.int64],
    blocks_per_super: npt.NDArray[np.int64],
    block_entries: npt.NDArray[np.int64],
    first_entry: npt.NDArray[np.int64],
    block_addresses: npt.NDArray[np.uint64],
    count: int,
    page_entries: int,
    arr_offset_size: int,
    where: str,
) -> npt.NDArray[np.bool_]:
    """Fill in the data block addresses the secondary blocks hold; their page bitmaps.

    Returns a (data blocks, pages per block) array: which pages of each paged data block
    were written (all True for blocks that are not paged).
    """
    addr = shape.sizeof_addr
    max_pages = max(int(block_entries.max()) // page_entries, 1)
    written = np.ones((len(block_addresses), max_pages), bool)
    first_block_of_super = np.concatenate([[0], np.cumsum(blocks_per_super)[:-1]])
    # One secondary block per level (a logarithmic number of them): a loop per block.
    for level, super_address in zip(super_levels.tolist(), super_addresses.tolist(), strict=False):
        first_block = int(first_block_of_super[level])
        if super_address == shape.undefined or first_entry[first_block] >= count:
            continue
        n_blocks = int(blocks_per_super[level])
        n_pages = (
            int(block_entries[level]) // page_entries if block_entries[level] > page_entries else 0
        )
        bitmap_size = n_blocks * ((n_pages + 7) // 8)
        size = 6 + addr + arr_offset_size + bitmap_size + n_blocks * addr + 4
        block = read_blocks(file, shape, np.array([super_address], np.int64), size, where)
        _check_signature(block, b"EASB", where)
        verify_checksums(block, "extensible array secondary", where)
        position = 6 + addr + arr_offset_size
        if n_pages:
            # One run of bits over the level's blocks, page p of block d at d * n_pages + p.
            bits = np.unpackbits(block[0, position : position + bitmap_size])
            pages = bits[: n_blocks * n_pages].reshape(n_blocks, n_pages).astype(bool)
            written[first_block : first_block + n_blocks, :n_pages] = pages
        position += bitmap_size
        pointers = little_endian(
            block[0, position : position + n_blocks * addr].reshape(n_blocks, addr)
        )
        block_addresses[first_block : first_block + n_blocks] = pointers
    return written
