"""Splitting raw chunks into smaller references by offset arithmetic (Kerchunk's ``subchunk``).

A chunk stored raw (the ``bytes`` codec alone) is its elements in C order, so any
piece of it that is one contiguous run of those bytes is a chunk of its own: the
same file, a later offset, fewer bytes. A piece is such a run when, along every
axis before the last one cut, it is one element long, and along every axis after
that one it spans the whole chunk. Nothing is read or copied.

`subchunk` cuts into pieces of given lengths; `cut_selection` cuts out the part
of an array that a selection off chunk boundaries picks (see
`vzcore.algebra.select_slices`). Both compute every offset with numpy at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, TypeAlias, TypeGuard

import numpy as np
import numpy.typing as npt

from vzcore.array import VirtualArray, source_label
from vzcore.errors import SubchunkError
from vzcore.grid import AxisChunks, as_chunk_grid
from vzcore.limits import check_count
from vzcore.manifest import ChunkManifest
from vzcore.metadata import ArrayMetadata

__all__ = ["AxisLengths", "cut_selection", "subchunk"]

AxisLengths: TypeAlias = Mapping[int, int] | Sequence[int | None]
"""Piece length per axis: ``{axis: length}``, or one entry per axis (None = no split)."""

Int64Array: TypeAlias = npt.NDArray[np.int64]


class _AxisPlan(NamedTuple):
    """The pieces along one axis: the chunk each comes from, where it starts in it, its length."""

    source: Int64Array
    start: Int64Array
    length: Int64Array
    split: bool


def subchunk(array: VirtualArray, axis_lengths: AxisLengths) -> VirtualArray:
    """Split each raw chunk along the given axes into pieces of the given length.

    A chunk of length 10 split by 4 gives pieces of 4, 4 and 2 (the grid then is
    rectilinear); a length at least the chunk's leaves that axis as it is. Missing
    chunks stay missing in every piece, and a piece that would hang over the end of
    the array along a split axis holds only the elements inside it.

    Parameters
    ----------
    array
        A virtual array whose codecs are the ``bytes`` codec alone (either endian).
    axis_lengths
        ``{axis: length}`` or one entry per axis (``None`` = not split).

    Raises
    ------
    SubchunkError
        If a chunk that must be split is encoded (compressed, filtered, Fortran
        order), if the pieces would not be contiguous runs of bytes (an axis before
        a split one is neither of chunk length 1 nor split to length 1), if a
        reference does not hold exactly its chunk's bytes, or if ``axis_lengths`` is
        malformed.

    >>> meta = ArrayMetadata(shape=(2, 10), chunk_grid=(1, 10), dtype="<i4")
    >>> a = VirtualArray(meta, ChunkManifest.from_entries(
    ...     {"0.0": {"path": "file:///a.bin", "offset": 0, "length": 40},
    ...      "1.0": {"path": "file:///a.bin", "offset": 40, "length": 40}}))
    >>> b = subchunk(a, {1: 4})
    >>> b.metadata.chunk_grid.chunk_lengths
    (1, (4, 4, 2))
    >>> [(e["offset"], e["length"]) for e in b.manifest.to_entries().values()]
    [(0, 16), (16, 16), (32, 8), (40, 16), (56, 16), (72, 8)]
    """
    meta = array.metadata
    lengths = _requested_lengths(array, axis_lengths)
    where = f"subchunk of {source_label(array) or 'a virtual array'}"
    counts = [
        _piece_count(meta, axis, n) if n is not None else meta.grid_shape[axis]
        for axis, n in enumerate(lengths)
    ]
    check_count("max_chunks", counts, where, "the number of pieces")
    plans = [
        _plan(meta, axis, None if n is None else _every(meta, axis, n))
        for axis, n in enumerate(lengths)
    ]
    label = source_label(array) or "a virtual array"
    return _apply(array, plans, f"split the chunks of {label} {_request_text(lengths)}")


def cut_selection(array: VirtualArray, spans: Sequence[tuple[int, int]]) -> VirtualArray:
    """The part of ``array`` from ``start`` to ``stop`` along each axis, raw chunks cut.

    Chunks are cut where a span starts and stops; along every axis before the last
    one so cut, into pieces one element long (so that each piece is one run of
    bytes). Only the pieces inside the spans are made. This is the arithmetic of
    `subchunk` for a selection off chunk boundaries (`vzcore.algebra.select_slices`).

    Raises
    ------
    SubchunkError
        As `subchunk`.
    LimitExceededError
        If the pieces would be more than the ``max_chunks`` limit.
    """
    meta = array.metadata
    grid = meta.chunk_grid
    unaligned = [
        axis
        for axis, span in enumerate(spans)
        if not np.isin(span, grid.chunk_boundaries(meta.shape, axis)).all()
    ]
    label = source_label(array) or "a virtual array"
    shape = tuple(stop - start for start, stop in spans)
    if 0 in shape:  # nothing selected: no piece, no reference to check
        empty = meta.evolve(shape=shape)
        return VirtualArray(empty, ChunkManifest.empty(empty.grid_shape))
    last = unaligned[-1] if unaligned else -1
    ones = [stop - start for start, stop in spans[:last]]
    check_count("max_chunks", [*ones, 2], f"cutting {label}", "the number of pieces")
    plans = []
    for axis, (start, stop) in enumerate(spans):
        inside = (
            np.arange(start + 1, stop, dtype=np.int64) if axis < last else np.empty(0, np.int64)
        )
        cuts = np.concatenate([[start, stop], inside]).astype(np.int64)
        plans.append(_plan(meta, axis, cuts, window=(start, stop)))
    return _apply(array, plans, f"cut the chunks of {label}", shape=shape)


# ---- the request --------------------------------------------------------------------------


def _requested_lengths(array: VirtualArray, axis_lengths: AxisLengths) -> list[int | None]:
    ndim = array.ndim
    lengths: list[int | None] = [None] * ndim
    items: list[tuple[object, object]]
    if isinstance(axis_lengths, Mapping):
        items = list(axis_lengths.items())
    elif isinstance(axis_lengths, Sequence) and not isinstance(axis_lengths, str | bytes):
        if len(axis_lengths) != ndim:
            raise SubchunkError(
                f"cannot subchunk {source_label(array)}: {len(axis_lengths)} piece lengths "
                f"given for a {ndim}-d array (pass one per axis, or a mapping axis -> length)"
            )
        items = list(enumerate(axis_lengths))
    else:
        raise SubchunkError(
            f"subchunk takes a mapping axis -> length or one length per axis, "
            f"got {type(axis_lengths).__name__}"
        )
    for axis, length in items:
        if not _is_int(axis) or not -ndim <= int(axis) < ndim:
            raise SubchunkError(
                f"cannot subchunk {source_label(array)}: axis {axis!r} is not an axis "
                f"of a {ndim}-d array"
            )
        if length is None:
            continue
        if not _is_int(length) or int(length) < 1:
            raise SubchunkError(
                f"cannot subchunk {source_label(array)} along axis {axis}: the piece length "
                f"must be a positive integer, got {length!r}"
            )
        lengths[int(axis) % ndim] = int(length)
    return lengths


def _is_int(value: object) -> TypeGuard[int | np.integer[Any]]:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _request_text(lengths: Sequence[int | None]) -> str:
    asked = [f"axis {axis} into pieces of {n}" for axis, n in enumerate(lengths) if n is not None]
    return "along " + ", ".join(asked) if asked else "nothing"


# ---- the plan of each axis ----------------------------------------------------------------


def _piece_count(meta: ArrayMetadata, axis: int, length: int) -> int:
    """How many pieces of ``length`` the chunks along ``axis`` give (nothing allocated)."""
    spec = meta.chunk_grid.chunk_lengths[axis]
    chunks = meta.grid_shape[axis]
    if isinstance(spec, int):
        return chunks * -(-spec // length)
    stored = meta.chunk_grid.axis_lengths(meta.shape, axis)
    return int((-(-stored // length)).sum())


def _every(meta: ArrayMetadata, axis: int, length: int) -> Int64Array:
    """The start of every piece of ``length`` inside each chunk along ``axis``."""
    grid = meta.chunk_grid
    starts = grid.chunk_boundaries(meta.shape, axis)[:-1]
    stored = grid.axis_lengths(meta.shape, axis)
    per_chunk = -(-stored // length)
    total = int(per_chunk.sum())
    first_of_chunk = np.repeat(np.cumsum(per_chunk) - per_chunk, per_chunk)
    rank = np.arange(total, dtype=np.int64) - first_of_chunk
    found: Int64Array = np.repeat(starts, per_chunk) + rank * length
    return found


def _plan(
    meta: ArrayMetadata,
    axis: int,
    cuts: Int64Array | None,
    window: tuple[int, int] | None = None,
) -> _AxisPlan:
    """The pieces along ``axis`` when the chunks are also cut at element positions ``cuts``.

    With a ``window`` (start, stop), which must be among the cuts or chunk boundaries,
    only the pieces inside it are kept.
    """
    grid = meta.chunk_grid
    bounds = grid.chunk_boundaries(meta.shape, axis)
    stored = grid.axis_lengths(meta.shape, axis).astype(np.int64)
    chunk_starts, extent = bounds[:-1].astype(np.int64), int(bounds[-1])
    identity = _AxisPlan(np.arange(len(stored), dtype=np.int64), stored * 0, stored, split=False)
    if cuts is None or not len(stored):
        return identity
    inside = cuts[(cuts > 0) & (cuts < extent)]
    starts = np.union1d(chunk_starts, inside)
    plan = identity
    if len(starts) != len(chunk_starts):
        source = np.searchsorted(chunk_starts, starts, side="right") - 1
        start = starts - chunk_starts[source]
        # A piece ends where the next one in its chunk starts, or at its chunk's stored end.
        end = stored[source].copy()
        same_chunk = source[1:] == source[:-1]
        end[:-1][same_chunk] = start[1:][same_chunk]
        # A split axis keeps no stored elements past the array's end (a byte prefix: the
        # axes before a split one are one element long, see `_check_contiguous`).
        length = np.minimum(end - start, extent - starts)
        plan = _AxisPlan(source.astype(np.int64), start, length, split=True)
    if window is None:
        return plan
    first = chunk_starts[plan.source] + plan.start
    kept = (first >= window[0]) & (first < window[1])
    return _AxisPlan(plan.source[kept], plan.start[kept], plan.length[kept], split=plan.split)


def _held(meta: ArrayMetadata, axis: int, plan: _AxisPlan) -> _AxisPlan:
    """``plan`` with each piece shortened to the elements inside the array.

    Along an axis before the last one cut this keeps the pieces byte prefixes: the
    axes before it are one element long (or `_check_contiguous` refuses).
    """
    bounds = meta.chunk_grid.chunk_boundaries(meta.shape, axis)
    first = bounds[:-1][plan.source] + plan.start
    length = np.minimum(plan.length, int(bounds[-1]) - first)
    return plan._replace(length=length)


# ---- the references -----------------------------------------------------------------------


def _apply(
    array: VirtualArray,
    plans: Sequence[_AxisPlan],
    operation: str,
    shape: tuple[int, ...] | None = None,
) -> VirtualArray:
    """The array of the pieces ``plans`` describe (of ``shape``, by default the array's)."""
    split_axes = [axis for axis, plan in enumerate(plans) if plan.split]
    manifest = array.manifest
    whole = all(len(p.source) == n for p, n in zip(plans, manifest.grid, strict=True))
    if not split_axes and whole:
        return array
    meta = array.metadata
    if split_axes:  # whole chunks (a window on chunk boundaries) need no check
        _check_codecs(array, split_axes, operation)
        last = split_axes[-1]
        plans = [_held(meta, axis, p) if axis < last else p for axis, p in enumerate(plans)]
        _check_contiguous(array, plans, last, operation)
        _check_reference_lengths(array, operation)
    itemsize = meta.dtype.itemsize
    ndim = meta.ndim

    def along(axis: int, values: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
        return values.astype(np.uint64).reshape([-1 if i == axis else 1 for i in range(ndim)])

    # Byte offset of each piece in its chunk: sum of start * stride, C order, where a
    # stride is the bytes of one step along that axis of the *source* chunk.
    shift = np.zeros((1,) * ndim, dtype=np.uint64)
    stride = np.full((1,) * ndim, itemsize, dtype=np.uint64)
    nbytes = np.full((1,) * ndim, itemsize, dtype=np.uint64)
    for axis in reversed(range(ndim)):
        plan = plans[axis]
        source_lengths = meta.chunk_grid.axis_lengths(meta.shape, axis)[plan.source]
        shift = shift + along(axis, plan.start) * stride
        stride = stride * along(axis, source_lengths)
        nbytes = nbytes * along(axis, plan.length)
    grid = tuple(len(plan.source) for plan in plans)
    rows = np.ravel_multi_index(np.ix_(*(plan.source for plan in plans)), manifest.grid)
    indices, offsets, lengths = manifest.to_numpy_columns()
    piece_indices = np.take(indices, rows)
    present = piece_indices >= 0
    zero = np.uint64(0)
    piece_offsets = np.where(present, np.take(offsets, rows) + shift, zero)
    # Whole chunks keep their references as they are (encoded ones too).
    held = np.broadcast_to(nbytes, grid) if split_axes else np.take(lengths, rows)
    piece_lengths = np.where(present, held, zero)
    # An axis of no chunks (length 0) keeps its chunk lengths: there is nothing to cut.
    chunks: list[AxisChunks] = [
        tuple(plan.length.tolist()) if len(plan.length) else meta.chunk_grid.chunk_lengths[axis]
        for axis, plan in enumerate(plans)
    ]
    new_meta = meta.evolve(shape=shape or meta.shape, chunk_grid=as_chunk_grid(chunks))
    pieces = ChunkManifest.from_numpy_columns(
        grid,
        dictionary=manifest.dictionary,
        indices=piece_indices.ravel(),
        offsets=piece_offsets.ravel().astype(np.uint64),
        lengths=piece_lengths.ravel().astype(np.uint64),
    )
    return VirtualArray(new_meta, pieces)


def _check_codecs(array: VirtualArray, split_axes: Sequence[int], operation: str) -> None:
    names = [codec.name for codec in array.metadata.codecs]
    inline = array.manifest.n_inline
    if names == ["bytes"] and inline:
        raise SubchunkError(
            f"cannot {operation}: {inline} of its chunks are held inline in the manifest, "
            "and only referenced chunks are cut into smaller references; load the variable"
        )
    if names == ["bytes"]:
        return
    axes = ", ".join(map(str, split_axes))
    if "transpose" in names:
        reason = (
            "its chunks are stored in Fortran order (a transpose codec before bytes), so a "
            "piece along an axis is not one run of bytes"
        )
    else:
        reason = (
            f"its chunks are encoded ({', '.join(names)}), and only chunks stored raw "
            "(the bytes codec alone) can be cut without decoding them"
        )
    raise SubchunkError(
        f"cannot {operation} (axes {axes} would be cut): {reason}; load the variable to rechunk it"
    )


def _check_contiguous(
    array: VirtualArray, plans: Sequence[_AxisPlan], last_split: int, operation: str
) -> None:
    """Refuse pieces that are not one run of bytes (C order, see the module docs)."""
    problems = []
    for axis in range(last_split):
        lengths = plans[axis].length
        if len(lengths) and int(lengths.max()) != 1:
            spec = array.metadata.chunk_grid.chunk_lengths[axis]
            problems.append(
                f"axis {axis} has pieces of length {int(lengths.max())} (chunk length {spec})"
            )
    if problems:
        raise SubchunkError(
            f"cannot {operation}: the pieces cut along axis {last_split} would not be contiguous runs of bytes, because "
            f"{'; '.join(problems)}; in C order every axis before a cut one must be one "
            f"element long (split it to length 1 too), and the axes after it whole",
            problems=problems,
        )


def _check_reference_lengths(array: VirtualArray, operation: str) -> None:
    """Each present reference must hold exactly its chunk's raw bytes, or offsets lie."""
    meta = array.metadata
    manifest = array.manifest
    expected = np.full((1,) * meta.ndim, meta.dtype.itemsize, dtype=np.uint64)
    for axis in range(meta.ndim):
        lengths = meta.chunk_grid.axis_lengths(meta.shape, axis).astype(np.uint64)
        expected = expected * lengths.reshape([-1 if i == axis else 1 for i in range(meta.ndim)])
    indices, _, lengths_column = manifest.to_numpy_columns()
    held = lengths_column.reshape(manifest.grid)
    wrong = (indices.reshape(manifest.grid) >= 0) & (held != expected)
    if not wrong.any():
        return
    where = tuple(int(i) for i in np.argwhere(wrong)[0])
    key = ".".join(map(str, where)) or "0"
    want = int(np.broadcast_to(expected, manifest.grid)[where])
    raise SubchunkError(
        f"cannot {operation}: chunk {key} references {int(held[where])} bytes, but its "
        f"{meta.chunk_grid.chunk_shape_at(where)} elements of {meta.dtype} are {want} raw "
        f"bytes ({int(wrong.sum())} chunks differ); the offsets of its pieces would be wrong"
    )
