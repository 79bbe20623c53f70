"""HDF5 chunk indexes read directly: node bytes in batches, decoded with numpy.

`chunk_locations` reads the index a dataset's layout message (`vzcore.parsers.hdf5_layout`)
points at, without h5py and without a Python object per chunk: a version 1 B-tree
level by level (HDF5 File Format Specification v3, III.A.1), a fixed array (VII.C)
with its pages, a single chunk, or an implicit index (IV.A.2.i). Each level's nodes
are fetched in one `Source.read_ranges` call and decoded as structured numpy arrays.
It answers None for what it does not read (extensible arrays, version 2 B-trees,
other layout versions, user blocks), and the parser asks h5py's ``chunk_iter`` then.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from vzcore.byteranges import Source
from vzcore.parsers.hdf5_arrays import read_extensible_array, read_fixed_array
from vzcore.parsers.hdf5_btree2 import read_v2_btree
from vzcore.parsers.hdf5_layout import (
    ChunkLayout,
    FileShape,
    HDF5IndexError,
    RangeReader,
    chunk_layout,
    layout_message,
    little_endian,
    read_blocks,
)

__all__ = [
    "ChunkLocations",
    "HDF5IndexError",
    "chunk_iter_locations",
    "chunk_locations",
    "v1_btree_locations",
]

_V1_GUESS_ENTRIES = 64  # 2K for HDF5's default K of 32: most nodes come in one read
_MAX_TREE_LEVELS = 64


class ChunkLocations(NamedTuple):
    """Stored chunks: grid coordinates (count, ndim), byte offsets, sizes, filter masks."""

    coords: npt.NDArray[np.int64]
    offsets: npt.NDArray[np.uint64]
    sizes: npt.NDArray[np.uint64]
    filter_masks: npt.NDArray[np.uint32]


def chunk_locations(
    dataset: Any, file: Source, file_size: int | None, where: str
) -> ChunkLocations | None:
    """The chunks of ``dataset`` from its index, or None when h5py should list them.

    Raises
    ------
    HDF5IndexError
        When the index is corrupt or truncated (bad signature, checksum, level or address).
    """
    creation = dataset.file.id.get_create_plist()
    if creation.get_userblock() != 0:
        return None  # addresses are relative to the superblock: keep to the plain case
    sizeof_addr, sizeof_size = creation.get_sizes()
    size = file.size() if file_size is None else file_size
    shape = FileShape(sizeof_addr=sizeof_addr, sizeof_size=sizeof_size, size=size)
    layout = chunk_layout(dataset, file, shape, where)
    stored_chunks = tuple(int(c) for c in dataset.chunks or ())
    if layout is None or layout.chunk_dims[:-1] != stored_chunks or layout.flags & 0x01:
        # Flag 0x01: partial edge chunks skip the filters, which one codec pipeline cannot say.
        return None
    if layout.address == shape.undefined:
        return _none(len(stored_chunks))
    filtered = dataset.id.get_create_plist().get_nfilters() > 0
    readers = {
        0: _v1_btree,
        1: _single,
        2: _implicit,
        3: _fixed_array,
        4: _extensible_array,
        5: _v2_btree,
    }
    reader = readers.get(layout.index_type)
    if reader is None:
        return None
    return reader(dataset, layout, file, shape, filtered, where)


def v1_btree_locations(
    dataset: Any,
    messages: list[tuple[int, bytes]],
    file: RangeReader,
    shape: FileShape,
    where: str,
) -> ChunkLocations | None:
    """The chunks of ``dataset`` if its index is a version 1 B-tree, else None.

    h5py's ``chunk_iter`` does not show a version 1 B-tree's keys, and lists chunks
    HDF5's own lookup does not find when they are corrupt: `_v1_btree` checks them.
    ``messages`` are those of the dataset's object header (`header_messages`); ``file``
    is read in small pieces; the file must have no user block.
    """
    layout = layout_message(messages, shape)
    stored_chunks = tuple(int(c) for c in dataset.chunks or ())
    if layout is None or layout.index_type != 0 or layout.chunk_dims[:-1] != stored_chunks:
        return None
    if layout.address == shape.undefined:
        return _none(len(stored_chunks))
    filtered = dataset.id.get_create_plist().get_nfilters() > 0
    return _v1_btree(dataset, layout, file, shape, filtered, where)


def chunk_iter_locations(dataset: Any) -> ChunkLocations:
    """The stored chunks of ``dataset`` as h5py lists them (one StoreInfo per chunk)."""
    infos: list[Any] = []
    dataset.id.chunk_iter(infos.append)
    count, ndim = len(infos), dataset.ndim
    # StoreInfo is (chunk_offset, filter_mask, byte_offset, size): one C-level transpose.
    chunk_starts, filter_masks, byte_offsets, sizes = (
        zip(*infos, strict=True) if infos else ((),) * 4
    )
    starts = np.array(chunk_starts, dtype=np.int64).reshape(count, ndim)
    return ChunkLocations(
        starts // np.asarray(dataset.chunks, dtype=np.int64),
        np.array(byte_offsets, dtype=np.uint64),
        np.array(sizes, dtype=np.uint64),
        np.array(filter_masks, dtype=np.uint32),
    )


def _none(ndim: int) -> ChunkLocations:
    return ChunkLocations(
        np.zeros((0, ndim), np.int64),
        np.zeros(0, np.uint64),
        np.zeros(0, np.uint64),
        np.zeros(0, np.uint32),
    )


def _chunk_nbytes(layout: ChunkLayout) -> int:
    return math.prod(layout.chunk_dims)


def _grid(extent: tuple[int | None, ...], layout: ChunkLayout) -> tuple[int, ...] | None:
    """The chunk grid over ``extent`` (None if an axis is unlimited)."""
    if any(length is None for length in extent):
        return None
    return tuple(
        -(-int(length or 0) // c) for length, c in zip(extent, layout.chunk_dims[:-1], strict=True)
    )


def _single(
    dataset: Any, layout: ChunkLayout, file: Source, shape: FileShape, filtered: bool, where: str
) -> ChunkLocations | None:
    if filtered and not layout.flags & 0x02:
        return None
    size, mask = layout.parameters if filtered else (_chunk_nbytes(layout), 0)
    return ChunkLocations(
        np.zeros((1, dataset.ndim), np.int64),
        np.array([layout.address], np.uint64),
        np.array([size], np.uint64),
        np.array([mask], np.uint32),
    )


def _implicit(
    dataset: Any, layout: ChunkLayout, file: Source, shape: FileShape, filtered: bool, where: str
) -> ChunkLocations | None:
    if filtered:
        return None
    # Every chunk of the maximum grid is allocated, in C order, back to back.
    # Fixed and implicit indexes count chunks over the dataset's maximum shape.
    grid = _grid(dataset.maxshape or dataset.shape, layout)
    if grid is None:
        return None
    count = math.prod(grid)
    nbytes = _chunk_nbytes(layout)
    linear = np.arange(count, dtype=np.int64)
    offsets = np.uint64(layout.address) + linear.astype(np.uint64) * np.uint64(nbytes)
    sizes = np.full(count, nbytes, np.uint64)
    masks = np.zeros(count, np.uint32)
    return _within(dataset, layout, _unravel(linear, grid), offsets, sizes, masks)


def _unravel(linear: npt.NDArray[np.int64], grid: tuple[int, ...]) -> npt.NDArray[np.int64]:
    """The (count, ndim) grid coordinates of C-order positions in ``grid``."""
    coords = np.unravel_index(linear, grid) if len(linear) else [np.zeros(0, np.int64)] * len(grid)
    return np.stack(coords, axis=1).astype(np.int64).reshape(-1, len(grid))


def _within(
    dataset: Any,
    layout: ChunkLayout,
    coords: npt.NDArray[np.int64],
    offsets: npt.NDArray[np.uint64],
    sizes: npt.NDArray[np.uint64],
    masks: npt.NDArray[np.uint32],
) -> ChunkLocations:
    """The chunks at ``coords`` that start inside the dataset's current shape."""
    starts = coords * np.asarray(layout.chunk_dims[:-1], np.int64)
    inside = (starts < np.asarray(dataset.shape, np.int64)).all(axis=1)
    return ChunkLocations(coords[inside], offsets[inside], sizes[inside], masks[inside])


# ---- version 1 B-tree ------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)  # building a structured dtype costs tens of microseconds
def _v1_node_dtype(shape: FileShape, ndim: int, entries: int) -> np.dtype[Any]:
    """A version 1 B-tree node of raw data chunks holding ``entries`` children."""
    key = np.dtype([("size", "<u4"), ("mask", "<u4"), ("offsets", "<u8", (ndim + 1,))])
    addr = f"V{shape.sizeof_addr}"
    return np.dtype(
        [
            ("signature", "S4"),
            ("type", "u1"),
            ("level", "u1"),
            ("used", "<u2"),
            ("siblings", addr, (2,)),
            ("entries", [("key", key), ("child", addr)], (entries,)),
            ("last_key", key),
        ]
    )


def _v1_btree(
    dataset: Any,
    layout: ChunkLayout,
    file: RangeReader,
    shape: FileShape,
    filtered: bool,
    where: str,
) -> ChunkLocations | None:
    ndim = dataset.ndim
    grid = _grid(dataset.shape, layout) or ()
    bound = max(math.prod(grid), 1)
    addresses = np.array([layout.address], np.int64)
    level: int | None = None
    dims = np.asarray(layout.chunk_dims, np.uint64)
    if (dims == 0).any():
        raise HDF5IndexError(f"{where}: the chunk layout has a dimension of 0 (corrupt file)")
    # The key interval [low, high) each node's chunks must lie in (None: the root's, open).
    bounds: tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]] | None = None
    for _ in range(_MAX_TREE_LEVELS):
        if len(addresses) == 0:
            return _none(ndim)
        nodes = _v1_level(addresses, ndim, file, shape, where)
        levels = nodes["level"]
        expected = int(levels[0]) if level is None else level - 1
        if (levels != expected).any() or expected < 0:
            raise HDF5IndexError(
                f"{where}: the chunk B-tree's nodes are at inconsistent levels (corrupt file)"
            )
        level = expected
        used = nodes["used"].astype(np.int64)
        width = nodes["entries"].shape[1]
        taken = np.arange(width) < used[:, None]
        entries = nodes["entries"][taken]
        children = little_endian(
            np.ascontiguousarray(entries["child"]).view(np.uint8).reshape(-1, shape.sizeof_addr)
        )
        bounds = _v1_key_intervals(nodes, taken, dims, bounds, level == 0, where)
        if level > 0:
            if len(children) > bound:
                raise HDF5IndexError(
                    f"{where}: the chunk B-tree has more nodes than the array has chunks "
                    "(corrupt file)"
                )
            addresses = children.astype(np.int64)
            continue
        keys = entries["key"]
        starts = keys["offsets"][:, :ndim].astype(np.int64)
        chunk_shape = np.asarray(layout.chunk_dims[:-1], np.int64)
        coords = starts // chunk_shape
        if ((starts % chunk_shape) != 0).any() or (coords >= np.asarray(grid)).any():
            raise HDF5IndexError(
                f"{where}: the chunk B-tree holds a chunk at an offset off the chunk grid "
                "(corrupt file)"
            )
        if not filtered:
            # Without filters HDF5 ignores the key's mask, and reads a chunk whose key says
            # fewer bytes than a chunk's into a buffer it does not fill (other values).
            if (keys["size"] != _chunk_nbytes(layout)).any():
                raise HDF5IndexError(
                    f"{where}: a key of the chunk B-tree gives an unfiltered chunk a size "
                    f"other than the chunk's {_chunk_nbytes(layout)} bytes (corrupt file)"
                )
            return ChunkLocations(
                coords, children, keys["size"].astype(np.uint64), np.zeros(len(children), np.uint32)
            )
        return ChunkLocations(
            coords,
            children,
            keys["size"].astype(np.uint64),
            keys["mask"].astype(np.uint32),
        )
    raise HDF5IndexError(f"{where}: the chunk B-tree is deeper than {_MAX_TREE_LEVELS} levels")


def _v1_key_intervals(
    nodes: npt.NDArray[Any],
    taken: npt.NDArray[np.bool_],
    dims: npt.NDArray[np.uint64],
    bounds: tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]] | None,
    leaves: bool,
    where: str,
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """Check that HDF5 finds every chunk of one level where the B-tree lists it.

    HDF5 looks a chunk up (``H5B_find``) by a binary search in each node for the
    child whose keys ``[key i, key i+1)`` hold the chunk's scaled offset (with 0 for
    the element axis), and takes a leaf's chunk only if its left key is that offset.
    With a node's keys out of order, a chunk outside its parent's interval, or a leaf
    key with a nonzero element offset, h5py reads fill values where the listing has
    bytes: the index is refused. Answers each child's interval (for the next level).
    """
    keys = (
        np.concatenate(
            [nodes["entries"]["key"]["offsets"], nodes["last_key"]["offsets"][:, None]], axis=1
        ).astype(np.uint64)
        // dims
    )
    # The keys left and right of each listed child (a node with k children has k+1 keys).
    node_of, position = np.nonzero(taken)
    left, right = keys[node_of, position], keys[node_of, position + 1]
    if leaves and (left[:, -1] != 0).any():
        raise HDF5IndexError(
            f"{where}: a key of the chunk B-tree has a nonzero element offset, so HDF5 "
            "does not find its chunk (corrupt file)"
        )
    if not _lex_less(left, right).all():
        raise HDF5IndexError(
            f"{where}: the keys of a chunk B-tree node are out of order, so HDF5 does not "
            "find some of its chunks (corrupt file)"
        )
    if bounds is None:
        return left, right
    low, high = bounds[0][node_of], bounds[1][node_of]
    if _lex_less(left, low).any() or not _lex_less(left, high).all():
        raise HDF5IndexError(
            f"{where}: a chunk B-tree node holds keys outside its parent's interval, so "
            "HDF5 does not find some of its chunks (corrupt file)"
        )
    return left, np.where(_lex_less(right, high)[:, None], right, high)


def _lex_less(a: npt.NDArray[np.uint64], b: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
    """Row-wise ``a < b`` comparing coordinates first to last (HDF5's ``H5VM_vector_cmp_u``)."""
    less = np.zeros(len(a), bool)
    decided = np.zeros(len(a), bool)
    for column in range(a.shape[1]):
        less |= ~decided & (a[:, column] < b[:, column])
        decided |= a[:, column] != b[:, column]
    return less


def _v1_level(
    addresses: npt.NDArray[np.int64], ndim: int, file: RangeReader, shape: FileShape, where: str
) -> npt.NDArray[Any]:
    """The nodes at ``addresses``, as one structured array sized for the fullest of them."""
    guess = _v1_node_dtype(shape, ndim, _V1_GUESS_ENTRIES)
    blocks = read_blocks(file, shape, addresses, guess.itemsize, where)
    heads = blocks[:, :8]
    if (heads[:, :4] != np.frombuffer(b"TREE", np.uint8)).any() or (heads[:, 4] != 1).any():
        raise HDF5IndexError(
            f"{where}: a node of the chunk B-tree has no TREE signature of a raw-data tree "
            "(corrupt file)"
        )
    used = heads[:, 6].astype(np.int64) | (heads[:, 7].astype(np.int64) << 8)
    most = int(used.max())
    if most > _V1_GUESS_ENTRIES:  # K above HDF5's default: read the nodes again, whole
        guess = _v1_node_dtype(shape, ndim, most)
        blocks = read_blocks(file, shape, addresses, guess.itemsize, where)
    nodes: npt.NDArray[Any] = blocks.view(guess)[:, 0]
    return nodes


def _v2_btree(
    dataset: Any, layout: ChunkLayout, file: Source, shape: FileShape, filtered: bool, where: str
) -> ChunkLocations | None:
    grid = _grid(dataset.shape, layout) or ()
    ndim = dataset.ndim
    records = read_v2_btree(
        file, shape, layout.address, ndim, filtered, max(math.prod(grid), 1), where
    )
    if (records.scaled >= np.asarray(grid, np.int64)).any():
        raise HDF5IndexError(
            f"{where}: the chunk B-tree holds a chunk outside the array's grid (corrupt file)"
        )
    count = len(records.offsets)
    sizes = records.sizes if filtered else np.full(count, _chunk_nbytes(layout), np.uint64)
    return ChunkLocations(records.scaled, records.offsets, sizes, records.filter_masks)


# ---- fixed and extensible arrays -------------------------------------------------------------


def _fixed_array(
    dataset: Any, layout: ChunkLayout, file: Source, shape: FileShape, filtered: bool, where: str
) -> ChunkLocations | None:
    grid = _grid(dataset.maxshape or dataset.shape, layout)
    if grid is None:
        return None
    entries = read_fixed_array(file, shape, layout.address, filtered, where)
    if len(entries) != math.prod(grid):
        raise HDF5IndexError(
            f"{where}: the chunk fixed array has {len(entries)} entries for a grid of {grid} "
            "chunks (corrupt file)"
        )
    linear, offsets, sizes, masks = _entries(entries, layout, shape, filtered)
    return _within(dataset, layout, _unravel(linear, grid), offsets, sizes, masks)


def _extensible_array(
    dataset: Any, layout: ChunkLayout, file: Source, shape: FileShape, filtered: bool, where: str
) -> ChunkLocations | None:
    maxshape = dataset.maxshape or dataset.shape
    unlimited = [axis for axis, m in enumerate(maxshape) if m is None]
    if len(unlimited) != 1:
        return None
    axis = unlimited[0]
    # The index counts over the grid with the unlimited axis moved first (H5VM_swizzle_coords).
    fixed = [m for a, m in enumerate(maxshape) if a != axis]
    chunks = [c for a, c in enumerate(layout.chunk_dims[:-1]) if a != axis]
    others = tuple(-(-int(m) // c) for m, c in zip(fixed, chunks, strict=True))
    steps = -(-int(dataset.shape[axis]) // layout.chunk_dims[axis])
    limit = steps * math.prod(others)
    entries = read_extensible_array(file, shape, layout.address, filtered, limit, where)
    if entries is None:
        return None
    linear, offsets, sizes, masks = _entries(entries, layout, shape, filtered)
    swizzled = _unravel(linear, (np.iinfo(np.int64).max // max(math.prod(others), 1), *others))
    coords = np.insert(swizzled[:, 1:], axis, swizzled[:, 0], axis=1)
    return _within(dataset, layout, coords, offsets, sizes, masks)


def _entries(
    entries: npt.NDArray[np.uint8], layout: ChunkLayout, shape: FileShape, filtered: bool
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.uint64], npt.NDArray[np.uint64], npt.NDArray[np.uint32]
]:
    """The written entries of an array index: linear index, address, size, filter mask."""
    addr, entry_size = shape.sizeof_addr, entries.shape[1]
    offsets = little_endian(entries[:, :addr])
    present = np.flatnonzero(offsets != np.uint64(shape.undefined))
    written = entries[present]
    if filtered:
        sizes = little_endian(written[:, addr : entry_size - 4])
        masks = written[:, entry_size - 4 :].copy().view("<u4")[:, 0].astype(np.uint32)
    else:
        sizes = np.full(len(present), _chunk_nbytes(layout), np.uint64)
        masks = np.zeros(len(present), np.uint32)
    return present.astype(np.int64), offsets[present], sizes, masks
