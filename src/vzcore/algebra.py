"""Pure functions over virtual arrays: concat, stack, expand_dims, broadcast_to, rename_paths.

Each returns a new value and leaves its inputs untouched. Incompatible inputs raise
a subclass of `VirtualizationError` naming the differing values and the inputs
that hold them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, overload

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from vzcore._frozen import canonical_json
from vzcore.array import AnyArray, LoadedArray, VirtualArray, source_label
from vzcore.codecs import codec_names, codecs_with_axes
from vzcore.errors import (
    AmbiguousRenameError,
    BroadcastError,
    ChunkShapeMismatch,
    CodecMismatch,
    DimensionNameMismatch,
    DtypeMismatch,
    EncodingMismatch,
    FillValueMismatch,
    InvalidManifestError,
    PartialChunkError,
    RectilinearGridError,
    ShapeMismatch,
    SubchunkError,
    VirtualizationError,
)
from vzcore.grid import AxisChunks, ChunkGrid, RegularChunkGrid, as_chunk_grid, describe_grid
from vzcore.group import VirtualGroup
from vzcore.manifest import (
    INLINE_MANIFEST_SCHEMA,
    INLINE_TYPE,
    MANIFEST_SCHEMA,
    ChunkManifest,
    _indices,
    arrow_backed_empty,
    unified_dictionary,
    unify_dictionary,
)
from vzcore.metadata import ArrayMetadata
from vzcore.subchunks import cut_selection, subchunk
from vzcore.urls import is_url, normalize_url

__all__ = [
    "broadcast_to",
    "concat",
    "expand_dims",
    "referenced_paths",
    "regularize",
    "rename_paths",
    "select_chunks",
    "select_slices",
    "single_path_renamer",
    "source_label",
    "squeeze",
    "stack",
    "subchunk",
    "validate_compatible",
]

PathMap = Callable[[str], str] | Mapping[str, str]
"""A callable ``old_path -> new_path``, or a mapping (paths it lacks are kept)."""
PathRenamer = PathMap | str
"""What `rename_paths` takes: a `PathMap`, or one path for references to a single file."""


# ---- validation ---------------------------------------------------------------------------


def _format_indices(indices: Sequence[int], files: Sequence[str] | None = None) -> str:
    """``[0, 1, 2, 5]`` -> ``"arrays 0-2, 5"``; ``[3]`` -> ``"array 3"``.

    With ``files`` (one label per input), the inputs' files follow in parentheses.
    """
    text = _format_runs(indices)
    if files is None:
        return text
    named = list(dict.fromkeys(files[i] for i in indices if files[i]))
    if not named:
        return text
    shown = ", ".join(named[:3]) + (f" and {len(named) - 3} more" if len(named) > 3 else "")
    return f"{text} ({shown})"


def _format_runs(indices: Sequence[int]) -> str:
    runs: list[str] = []
    start = prev = indices[0]
    for i in [*indices[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        runs.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    noun = "array" if len(indices) == 1 else "arrays"
    return f"{noun} {', '.join(runs)}"


def _differences(
    values: Sequence[Any],
    label: str,
    key: Callable[[Any], Hashable] = repr,
    files: Sequence[str] | None = None,
) -> list[str]:
    """One message per group of inputs whose value differs from input 0's."""
    groups: dict[Hashable, list[int]] = {}
    shown: dict[Hashable, Any] = {}
    # Arrays joined by the thousand share their codecs, dtype, encoding objects: each
    # object's key is computed once (``values`` keeps them alive, so ids stay unique).
    keys: dict[int, Hashable] = {}
    for index, value in enumerate(values):
        k = keys.get(id(value))
        if k is None:
            k = keys[id(value)] = key(value)
        groups.setdefault(k, []).append(index)
        shown.setdefault(k, value)
    if len(groups) == 1:
        return []
    (reference_key, reference), *others = groups.items()
    messages = []
    for other_key, indices in others:
        verb = "has" if len(indices) == 1 else "have"
        ref_verb = "has" if len(reference) == 1 else "have"
        messages.append(
            f"{_format_indices(indices, files)} {verb} {label} {_show(shown[other_key])}, "
            f"{_format_indices(reference, files)} {ref_verb} {_show(shown[reference_key])}"
        )
    return messages


def _show(value: Any) -> str:
    if isinstance(value, tuple) and value and all(hasattr(v, "name") for v in value):
        return codec_names(value)
    if isinstance(value, Mapping):
        return str(dict(value))
    return str(value)


def _fill_key(value: np.generic) -> Hashable:
    return (str(value.dtype), value.tobytes())


def validate_compatible(
    arrays: Sequence[AnyArray],
    *,
    axis: int,
    operation: str = "concatenate",
    check_storage: bool = True,
    trim_partial: bool = True,
) -> None:
    """Check that ``arrays`` can be joined along ``axis``; report every problem at once.

    Raises the error class of the first problem found (`ShapeMismatch`,
    `DtypeMismatch`, `ChunkShapeMismatch`, `CodecMismatch`, `FillValueMismatch`,
    `DimensionNameMismatch`, `PartialChunkError`) with all problems in its message.
    ``check_storage=False`` checks only what in-memory values need (shapes, dtype).

    Chunk lengths along ``axis`` may differ (the result's grid is then rectilinear);
    along the other axes they must match. An input other than the last may end in a
    partial chunk along ``axis`` only when its chunks are stored uncompressed and the
    part is a prefix of the bytes (see `concat`); ``trim_partial=False`` refuses every
    partial chunk there.

    >>> a = VirtualArray(ArrayMetadata(shape=(4, 4), chunk_grid=(2, 2), dtype="i4"),
    ...                  ChunkManifest.empty((2, 2)))
    >>> b = VirtualArray(ArrayMetadata(shape=(4, 4), chunk_grid=(4, 4), dtype="i4"),
    ...                  ChunkManifest.empty((1, 1)))
    >>> validate_compatible([a, b], axis=0)
    Traceback (most recent call last):
    ...
    vzcore.errors.ChunkShapeMismatch: cannot concatenate: array 1 has chunk shape (4, 4), array 0 has (2, 2)
    """
    if not arrays:
        raise VirtualizationError(f"cannot {operation}: no arrays given")
    metas = [a.metadata for a in arrays]
    files = [source_label(a) for a in arrays]
    problems: list[tuple[type[VirtualizationError], str]] = []

    def check(
        cls: type[VirtualizationError],
        values: Sequence[Any],
        label: str,
        key: Callable[[Any], Hashable] = repr,
    ) -> None:
        problems.extend((cls, m) for m in _differences(values, label, key, files))

    check(ShapeMismatch, [m.ndim for m in metas], "ndim")
    if not problems:
        ndim = metas[0].ndim
        if not -ndim <= axis < ndim:
            raise ShapeMismatch(
                f"cannot {operation}: axis {axis} is out of range for {ndim}-d arrays"
            )
        axis %= ndim
        other_axes = [tuple(s for i, s in enumerate(m.shape) if i != axis) for m in metas]
        check(ShapeMismatch, other_axes, f"shape along axes other than {axis}")
        check(DtypeMismatch, [m.dtype for m in metas], "dtype", key=str)
        check(EncodingMismatch, [m.encoding for m in metas], "CF encoding", key=canonical_json)
        if check_storage:
            check(
                ChunkShapeMismatch,
                [_GridShown(m.chunk_grid, axis) for m in metas],
                "chunk shape",
                key=lambda shown: shown.other_axes,
            )
            check(CodecMismatch, [m.codecs for m in metas], "codecs")
            if len({m.dtype for m in metas}) == 1:
                check(FillValueMismatch, [m.fill_value for m in metas], "fill value", key=_fill_key)
        named = [m.dimension_names for m in metas]
        if all(n is not None for n in named):
            check(DimensionNameMismatch, named, "dimension names")
        if not problems and check_storage:
            problems.extend(_partial_chunk_problems(metas, axis, files, trim_partial))
    if problems:
        messages = [m for _, m in problems]
        raise problems[0][0](f"cannot {operation}: " + "; ".join(messages), problems=messages)


class _GridShown:
    """A grid as a concatenation compares it (its other axes) and as messages show it."""

    def __init__(self, grid: ChunkGrid, axis: int) -> None:
        self.grid = grid
        self.other_axes = tuple(c for i, c in enumerate(grid.chunk_lengths) if i != axis)

    def __str__(self) -> str:
        if isinstance(self.grid, RegularChunkGrid):
            return str(self.grid.chunk_shape)
        return describe_grid(self.grid).removeprefix("chunk lengths ")


def _partial_chunk_problems(
    metas: Sequence[ArrayMetadata], axis: int, files: Sequence[str], trim_partial: bool
) -> list[tuple[type[VirtualizationError], str]]:
    problems: list[tuple[type[VirtualizationError], str]] = []
    for index, meta in enumerate(metas[:-1]):
        if meta.chunk_grid.is_aligned(meta.shape[axis], axis):
            continue
        reason = _untrimmable(meta, axis) if trim_partial else "stored chunks are not rewritten"
        if reason is None:
            continue
        lengths = meta.chunk_grid.axis_lengths(meta.shape, axis)
        bounds = meta.chunk_grid.chunk_boundaries(meta.shape, axis)
        held = int(bounds[-1] - bounds[-2])
        problems.append(
            (
                PartialChunkError,
                (
                    f"{_format_indices([index], files)} has length {meta.shape[axis]} "
                    f"along axis {axis}, not a multiple of its chunk length "
                    f"{_chunk_length_text(meta.chunk_grid, axis)}: its last chunk there is "
                    f"stored for {int(lengths[-1])} elements and holds {held}, and {reason}; "
                    "only the last array may end in a partial chunk"
                ),
            )
        )
    return problems


def _chunk_length_text(grid: ChunkGrid, axis: int) -> str:
    spec = grid.chunk_lengths[axis]
    return str(spec) if isinstance(spec, int) else f"(chunks {spec})"


def _untrimmable(meta: ArrayMetadata, axis: int) -> str | None:
    """Why a partial last chunk along ``axis`` cannot become a shorter chunk (None if it can).

    Its first bytes are the part the array holds when the chunk is stored raw (the
    ``bytes`` codec alone) and every axis before ``axis`` has chunk length 1 (C order).
    """
    if [c.name for c in meta.codecs] != ["bytes"]:
        return (
            f"it is encoded ({', '.join(c.name for c in meta.codecs)}), so the part it holds "
            "cannot be cut "
            "out as a shorter chunk"
        )
    leading = meta.chunk_grid.chunk_lengths[:axis]
    if any(spec != 1 for spec in leading):
        return (
            "the part it holds is not a prefix of its bytes (the axes before it have chunk "
            f"lengths {leading}, not 1)"
        )
    return None


# ---- concat and friends -------------------------------------------------------------------


@overload
def concat(arrays: Sequence[VirtualArray], *, axis: int) -> VirtualArray: ...
@overload
def concat(arrays: Sequence[LoadedArray], *, axis: int) -> LoadedArray: ...
def concat(arrays: Sequence[AnyArray], *, axis: int) -> AnyArray:
    """Join arrays end to end along an existing ``axis``.

    Along the leading axis (or any axis before which the grid has one chunk) the
    per-chunk columns are appended without a copy; along other axes one vectorised
    gather builds the result.

    The chunk lengths along ``axis`` may differ between the arrays: the result then
    has a rectilinear grid (12 monthly files of daily data, one chunk per file, give
    chunks of 31, 28, 31, ... days). An array other than the last that ends in a
    partial chunk is accepted when that chunk is stored raw and the part it holds is a
    prefix of its bytes: the reference is shortened to that prefix, a shorter chunk.

    >>> def one(path):
    ...     meta = ArrayMetadata(shape=(2, 3), chunk_grid=(2, 3), dtype="f8")
    ...     return VirtualArray(meta, ChunkManifest.from_entries(
    ...         {"0.0": {"path": path, "offset": 0, "length": 48}}))
    >>> concat([one("file:///a"), one("file:///b")], axis=0).shape
    (4, 3)
    """
    return _concat(arrays, axis=axis, operation="concatenate")


def _concat(arrays: Sequence[AnyArray], *, axis: int, operation: str) -> AnyArray:
    arrays = list(arrays)
    if arrays and all(isinstance(a, LoadedArray) for a in arrays):
        return _concat_loaded([a for a in arrays if isinstance(a, LoadedArray)], axis, operation)
    validate_compatible(arrays, axis=axis, operation=operation)
    axis %= arrays[0].ndim
    if not all(isinstance(a, VirtualArray) for a in arrays):
        kinds = [type(a).__name__ for a in arrays]
        raise VirtualizationError(
            f"cannot concatenate virtual and loaded arrays together: {kinds}; "
            "load them all (loadable_variables=) or none"
        )
    virtual = [a for a in arrays if isinstance(a, VirtualArray)]
    virtual = [_trim_partial_chunk(a, axis) for a in virtual[:-1]] + virtual[-1:]
    shape = list(virtual[0].shape)
    shape[axis] = sum(a.shape[axis] for a in virtual)
    metadata = _joined_metadata(virtual, axis, tuple(shape))
    grid = metadata.grid_shape
    manifests = [a.manifest for a in virtual]
    if all(math.prod(m.grid[:axis]) <= 1 for m in manifests):
        manifest = ChunkManifest(grid, _append_tables(manifests))
    else:
        manifest = _gather_concat(manifests, axis, grid)
    return VirtualArray(metadata, manifest)


def _concat_loaded(arrays: Sequence[LoadedArray], axis: int, operation: str) -> LoadedArray:
    # In-memory values have no stored chunks: only dtype and the other axes must agree.
    validate_compatible(arrays, axis=axis, operation=operation, check_storage=False)
    data = np.concatenate([a.data for a in arrays], axis=axis)
    chunks = tuple(max(s, 1) for s in data.shape)
    return LoadedArray(arrays[0].metadata.evolve(shape=data.shape, chunk_grid=chunks), data)


def _joined_metadata(
    arrays: Sequence[AnyArray], axis: int, shape: tuple[int, ...]
) -> ArrayMetadata:
    first = arrays[0].metadata
    lengths = np.concatenate([a.metadata.chunk_grid.axis_lengths(a.shape, axis) for a in arrays])
    if not len(lengths):
        return first.evolve(shape=shape)  # no chunk along the axis: its length stays
    # One length throughout is a regular axis (what `canonical_grid` would make of the
    # tuple), given as such: a tuple of 100,000 lengths costs a Python pass to check.
    regular = int(lengths.min()) == int(lengths.max())
    spec: AxisChunks = int(lengths[0]) if regular else tuple(lengths.tolist())
    grid = first.chunk_grid.replace_axis(axis, spec)
    return first.evolve(shape=shape, chunk_grid=grid)


def _trim_partial_chunk(array: VirtualArray, axis: int) -> VirtualArray:
    """``array`` with its partial last chunk along ``axis`` made a shorter chunk of its own.

    Only called once `_untrimmable` has found nothing against it: the chunks are raw and
    the part held is the first bytes of each chunk in that slab.
    """
    meta = array.metadata
    grid = meta.chunk_grid
    if grid.is_aligned(meta.shape[axis], axis):
        return array
    per_axis = [grid.axis_lengths(meta.shape, i) for i in range(meta.ndim)]
    bounds = grid.chunk_boundaries(meta.shape, axis)
    held = int(bounds[-1] - bounds[-2])
    per_axis[axis] = np.array([held], dtype=np.int64)
    # Bytes of the shortened chunks in the last slab: the product of their lengths.
    prefix = np.full((1,) * meta.ndim, meta.dtype.itemsize, dtype=np.int64)
    for i, lengths in enumerate(per_axis):
        prefix = prefix * lengths.reshape([-1 if j == i else 1 for j in range(meta.ndim)])
    manifest = array.manifest
    indices, offsets, lengths_column = manifest.to_numpy_columns()
    new_lengths = np.array(lengths_column, dtype=np.uint64).reshape(manifest.grid)
    last = tuple(slice(-1, None) if i == axis else slice(None) for i in range(meta.ndim))
    slab = new_lengths[last]
    present = indices.reshape(manifest.grid)[last] >= 0
    wanted = np.broadcast_to(prefix, slab.shape).astype(np.uint64)
    short = present & (slab < wanted)
    if short.any():
        raise PartialChunkError(
            f"cannot shorten the last chunk of {source_label(array)} along axis {axis}: "
            f"a reference there has {int(slab[short][0])} bytes, fewer than the "
            f"{int(wanted[short][0])} its {held} elements need"
        )
    new_lengths[last] = np.where(present, wanted, slab)
    new_grid = grid.replace_axis(axis, (*grid.axis_lengths(meta.shape, axis)[:-1].tolist(), held))
    trimmed = ChunkManifest.from_numpy_columns(
        manifest.grid,
        dictionary=manifest.dictionary,
        indices=indices,
        offsets=offsets,
        lengths=new_lengths.ravel(),
        data=_trimmed_inline(array, last, np.broadcast_to(prefix, slab.shape), axis, held),
    )
    return VirtualArray(meta.evolve(chunk_grid=new_grid), trimmed)


def _trimmed_inline(
    array: VirtualArray,
    last: tuple[slice, ...],
    wanted: npt.NDArray[np.int64],
    axis: int,
    held: int,
) -> pa.Array | pa.ChunkedArray | None:
    """The ``data`` column with the inline chunks of the last slab cut to their prefix.

    One vectorised slice per distinct prefix length (a handful: the lengths along
    the other axes), never one per chunk.
    """
    manifest = array.manifest
    data = manifest.inline_data
    if data is None:
        return None
    in_slab = manifest.inline_mask().reshape(manifest.grid)[last]
    if not in_slab.any():
        return data
    rows = np.arange(manifest.n_chunks, dtype=np.int64).reshape(manifest.grid)[last][in_slab]
    want = wanted[in_slab]
    sizes = pc.binary_length(pc.take(data, pa.array(rows))).to_numpy(zero_copy_only=False)
    short = sizes < want
    if short.any():
        raise PartialChunkError(
            f"cannot shorten the last chunk of {source_label(array)} along axis {axis}: "
            f"an inline chunk there has {int(sizes[short][0])} bytes, fewer than the "
            f"{int(want[short][0])} its {held} elements need"
        )
    column = data.combine_chunks()
    for length in np.unique(want).tolist():
        mask = np.zeros(manifest.n_chunks, dtype=bool)
        mask[rows[want == length]] = True
        cut = pc.binary_slice(pc.filter(column, pa.array(mask)), 0, int(length))
        column = pc.replace_with_mask(column, pa.array(mask), cut.cast(INLINE_TYPE))
    return column


def _append_tables(manifests: Sequence[ChunkManifest]) -> pa.Table:
    """The manifests' tables end to end; a ``data`` column (null-filled) if any has one."""
    if any(m.inline_data is not None for m in manifests):
        tables, schema = [_with_inline_column(m) for m in manifests], INLINE_MANIFEST_SCHEMA
    else:
        tables, schema = [m.table for m in manifests], MANIFEST_SCHEMA
    table = pa.concat_tables(tables)
    path = unify_dictionary(table.column("path"))
    return pa.Table.from_arrays([path, *table.columns[1:]], schema=schema)


def _with_inline_column(manifest: ChunkManifest) -> pa.Table:
    if manifest.inline_data is not None:
        return manifest.table
    return manifest.table.append_column("data", pa.nulls(manifest.n_chunks, INLINE_TYPE))


_THREADED_GATHER_ROWS = 1 << 20
"""Results with at least this many chunks are gathered by three threads, one per column."""


def _gather_concat(
    manifests: Sequence[ChunkManifest], axis: int, grid: tuple[int, ...]
) -> ChunkManifest:
    """The manifests side by side along ``axis``, each output column written once.

    Offsets and lengths are one numpy concatenate each, reading the inputs in place
    and writing straight into Arrow's memory pool; the path indices go through each
    input's small transposition into the unified dictionary, written into its slab of
    the output. No intermediate column of the result's size is made; large results
    have their columns filled concurrently.
    """
    dictionary, mappings = unified_dictionary([m.dictionary for m in manifests])
    n_chunks = math.prod(grid)
    columns = [m.to_numpy_columns() for m in manifests]

    def numbers(k: int) -> npt.NDArray[np.uint64]:
        out = arrow_backed_empty(n_chunks, np.dtype(np.uint64))
        parts = [c[k].reshape(m.grid) for c, m in zip(columns, manifests, strict=True)]
        np.concatenate(parts, axis=axis, out=out.reshape(grid))
        return out

    def path_indices() -> npt.NDArray[np.int32]:
        indices = arrow_backed_empty(n_chunks, np.dtype(np.int32))
        shaped = indices.reshape(grid)
        start = 0
        for manifest, column, mapping in zip(manifests, columns, mappings, strict=True):
            stop = start + manifest.grid[axis]
            slab = shaped[(slice(None),) * axis + (slice(start, stop),)]
            local = column[0].reshape(manifest.grid)
            if mapping is None:
                slab[...] = local
            else:
                # "wrap": unbuffered, straight into the slab; -1 (missing) takes the
                # mapping's last entry, which is -1.
                np.take(mapping, local, out=slab, mode="wrap")
            start = stop
        return indices

    if n_chunks < _THREADED_GATHER_ROWS:
        indices, joined = path_indices(), [numbers(1), numbers(2)]
    else:
        # Writing fresh memory costs a page fault per page, and numpy's copies release
        # the GIL: the three columns are filled side by side, on the cores there are.
        with ThreadPoolExecutor(max_workers=2) as pool:
            offsets, lengths = pool.submit(numbers, 1), pool.submit(numbers, 2)
            indices = path_indices()
            joined = [offsets.result(), lengths.result()]
    missing = sum(m.paths.null_count for m in manifests) > 0
    return ChunkManifest.from_numpy_columns(
        grid,
        dictionary=dictionary,
        indices=indices,
        offsets=joined[0],
        lengths=joined[1],
        data=_gathered_inline(manifests, axis),
        may_be_missing=missing,
    )


def _gathered_inline(manifests: Sequence[ChunkManifest], axis: int) -> pa.ChunkedArray | None:
    """The ``data`` columns side by side along ``axis`` (one take), or None without any."""
    if all(m.inline_data is None for m in manifests):
        return None
    data = pa.chunked_array(
        [c for m in manifests for c in _with_inline_column(m).column("data").chunks],
        type=INLINE_TYPE,
    )
    starts = np.cumsum([0] + [m.n_chunks for m in manifests]).tolist()
    order = np.concatenate(
        [
            np.arange(start, start + m.n_chunks, dtype=np.int64).reshape(m.grid)
            for start, m in zip(starts, manifests, strict=False)
        ],
        axis=axis,
    ).ravel()
    return pc.take(data, pa.array(order))


def expand_dims(
    array: VirtualArray, *, axis: int, dimension_name: str | None = None
) -> VirtualArray:
    """Insert a new axis of length 1 (one chunk of length 1) at ``axis``; no copy.

    Codecs that name the axes follow (a shard's inner chunk shape gets a 1 there,
    see `vzcore.codecs.codecs_with_axes`).
    """
    ndim = array.ndim + 1
    if not -ndim <= axis < ndim:
        raise ShapeMismatch(f"cannot expand_dims: axis {axis} is out of range for {ndim}-d result")
    axis %= ndim
    meta = array.metadata
    shape = list(meta.shape)
    shape.insert(axis, 1)
    names = meta.dimension_names
    if names is not None:
        names = (*names[:axis], dimension_name, *names[axis:])
    axes: list[int | None] = list(range(meta.ndim))
    axes.insert(axis, None)
    new_meta = meta.evolve(
        shape=tuple(shape),
        chunk_grid=meta.chunk_grid.with_axis(axis, 1),
        dimension_names=names,
        codecs=codecs_with_axes(meta.codecs, axes, ndim=meta.ndim, operation="expand_dims"),
    )
    return VirtualArray(new_meta, array.manifest.reshape(new_meta.grid_shape))


def stack(arrays: Sequence[VirtualArray], *, axis: int) -> VirtualArray:
    """Join arrays along a new ``axis``: ``concat([expand_dims(a, axis) ...], axis)``."""
    arrays = list(arrays)
    if not arrays:
        raise VirtualizationError("cannot stack: no arrays given")
    ndims = _differences([a.ndim for a in arrays], "ndim", files=[source_label(a) for a in arrays])
    if ndims:
        raise ShapeMismatch("cannot stack: " + "; ".join(ndims), problems=ndims)
    ndim = arrays[0].ndim + 1
    if not -ndim <= axis < ndim:
        raise ShapeMismatch(f"cannot stack: axis {axis} is out of range for {ndim}-d result")
    expanded = [expand_dims(a, axis=axis) for a in arrays]
    result = _concat(expanded, axis=axis, operation="stack")
    assert isinstance(result, VirtualArray)
    return result


def broadcast_to(array: VirtualArray, shape: Sequence[int]) -> VirtualArray:
    """Broadcast like `numpy.broadcast_to`, repeating chunk references (no data copied).

    An axis can only be broadcast from length 1 when its chunk length is 1;
    new leading axes get chunk length 1 (and a shard's inner chunk shape a 1 too).
    """
    target = tuple(int(s) for s in shape)
    meta = array.metadata
    extra = len(target) - meta.ndim
    if extra < 0:
        raise BroadcastError(f"cannot broadcast shape {meta.shape} to fewer dimensions {target}")
    chunks: list[AxisChunks] = [*([1] * extra), *meta.chunk_grid.chunk_lengths]
    padded = (1,) * extra + meta.shape
    for axis, (have, want) in enumerate(zip(padded, target, strict=True)):
        if have == want:
            continue
        if have != 1:
            raise BroadcastError(
                f"cannot broadcast shape {meta.shape} to {target}: axis {axis} has length {have}"
            )
        if chunks[axis] != 1:
            raise BroadcastError(
                f"cannot broadcast shape {meta.shape} to {target}: axis {axis} has chunk length "
                f"{chunks[axis]}, and only chunks of length 1 can be repeated"
            )
    names = meta.dimension_names
    if names is not None:
        names = (None,) * extra + names
    axes = [None] * extra + list(range(meta.ndim))
    new_meta = meta.evolve(
        shape=target,
        chunk_grid=as_chunk_grid(chunks),
        dimension_names=names,
        codecs=codecs_with_axes(meta.codecs, axes, ndim=meta.ndim, operation="broadcast"),
    )
    grid = new_meta.grid_shape
    if grid == array.manifest.grid:
        return VirtualArray(new_meta, array.manifest)
    source_grid = (1,) * extra + array.manifest.grid
    rows = np.broadcast_to(
        np.arange(array.manifest.n_chunks, dtype=np.int64).reshape(source_grid), grid
    ).ravel()
    return VirtualArray(new_meta, array.manifest.take(rows, grid=grid))


def select_chunks(array: VirtualArray, selection: Sequence[slice]) -> VirtualArray:
    """The part of ``array`` picked by one slice per axis, each on chunk boundaries.

    A slice must have step 1, start on a chunk boundary, and stop on one or at the
    array's end; anything else would cut through chunks and is refused.

    >>> meta = ArrayMetadata(shape=(10,), chunk_grid=(5,), dtype="f8")
    >>> a = VirtualArray(meta, ChunkManifest.empty((2,)))
    >>> select_chunks(a, [slice(5, None)]).shape
    (5,)
    """
    meta = array.metadata
    if len(selection) != meta.ndim:
        raise ShapeMismatch(f"selection has {len(selection)} slices for a {meta.ndim}-d array")
    grid = meta.chunk_grid
    ranges: list[npt.NDArray[np.int64]] = []
    axes: list[AxisChunks] = []
    shape: list[int] = []
    for axis, (item, length) in enumerate(zip(selection, meta.shape, strict=True)):
        start, stop, step = item.indices(length)
        stop = max(stop, start)
        bounds = grid.chunk_boundaries(meta.shape, axis)
        first, end = (int(i) for i in np.searchsorted(bounds, [start, stop]))
        if step != 1 or bounds[first] != start or bounds[end] != stop:
            spec = grid.chunk_lengths[axis]
            where = f"multiples of {spec}" if isinstance(spec, int) else _shown_boundaries(bounds)
            raise PartialChunkError(
                f"cannot select {item} along axis {axis}: virtual arrays can only be cut on "
                f"chunk boundaries ({where}, or the end {length}); load the "
                "variable to select arbitrary elements"
            )
        ranges.append(np.arange(first, end, dtype=np.int64))
        lengths = grid.axis_lengths(meta.shape, axis)[first:end]
        spec = grid.chunk_lengths[axis]
        axes.append(spec if isinstance(spec, int) or not len(lengths) else tuple(lengths.tolist()))
        shape.append(stop - start)
    if tuple(shape) == meta.shape:
        return array
    new_meta = meta.evolve(shape=tuple(shape), chunk_grid=as_chunk_grid(axes))
    rows = np.ravel_multi_index(np.ix_(*ranges), array.manifest.grid).ravel()
    return VirtualArray(new_meta, array.manifest.take(rows, grid=new_meta.grid_shape))


def select_slices(array: VirtualArray, selection: Sequence[slice]) -> VirtualArray:
    """The part of ``array`` picked by one slice (step 1) per axis, on chunk boundaries or not.

    On chunk boundaries this is `select_chunks`. Off them, chunks stored raw (the
    ``bytes`` codec alone) are cut by offset arithmetic (see `vzcore.subchunk`): the
    axes before the last one cut become pieces one element long, so that every piece
    is one run of bytes. Nothing is read.

    >>> meta = ArrayMetadata(shape=(10,), chunk_grid=(10,), dtype="<f8")
    >>> a = VirtualArray(meta, ChunkManifest.from_entries(
    ...     {"0": {"path": "file:///a.bin", "offset": 0, "length": 80}}))
    >>> select_slices(a, [slice(2, 5)]).manifest.to_entries()
    {'0': {'path': 'file:///a.bin', 'offset': 16, 'length': 24}}

    Raises
    ------
    PartialChunkError
        If a slice has a step, or cuts chunks that are encoded (`select_chunks`' error).
    SubchunkError
        If raw chunks cannot be cut (a reference that does not hold its chunk's bytes).
    """
    meta = array.metadata
    if len(selection) != meta.ndim:
        raise ShapeMismatch(f"selection has {len(selection)} slices for a {meta.ndim}-d array")
    if all(s.indices(n) == (0, n, 1) for s, n in zip(selection, meta.shape, strict=True)):
        return array  # the whole array
    grid = meta.chunk_grid
    spans: list[tuple[int, int]] = []
    cut_axes: list[int] = []
    for axis, item in enumerate(selection):
        start, stop, step = item.indices(meta.shape[axis])
        stop = max(stop, start)
        if step != 1:
            return select_chunks(array, selection)  # refuses with its message
        spans.append((start, stop))
        bounds = grid.chunk_boundaries(meta.shape, axis)
        if not np.isin([start, stop], bounds).all():
            cut_axes.append(axis)
    if not cut_axes or [c.name for c in meta.codecs] != ["bytes"]:
        return select_chunks(array, selection)
    try:
        return cut_selection(array, spans)
    except SubchunkError as err:
        raise SubchunkError(
            f"cannot select {list(selection)} off chunk boundaries: {err}", problems=err.problems
        ) from err


def _shown_boundaries(bounds: npt.NDArray[np.int64]) -> str:
    values = bounds[:-1].tolist()
    return "at " + ", ".join(map(str, values[:6])) + (", ..." if len(values) > 6 else "")


def squeeze(array: VirtualArray, *, axis: int) -> VirtualArray:
    """Drop an axis of length 1 whose chunk length is 1; no copy.

    Codecs that name the axes follow (a shard's inner chunk shape loses the axis).
    """
    meta = array.metadata
    if not -meta.ndim <= axis < meta.ndim:
        raise ShapeMismatch(f"cannot squeeze: axis {axis} is out of range for {meta.ndim}-d arrays")
    axis %= meta.ndim
    chunk_lengths = meta.chunk_grid.chunk_lengths
    if meta.shape[axis] != 1 or chunk_lengths[axis] != 1:
        raise ShapeMismatch(
            f"cannot squeeze axis {axis}: it has length {meta.shape[axis]} and chunk length "
            f"{chunk_lengths[axis]} (both must be 1)"
        )
    drop = [i for i in range(meta.ndim) if i != axis]
    names = meta.dimension_names
    new_meta = meta.evolve(
        shape=tuple(meta.shape[i] for i in drop),
        chunk_grid=as_chunk_grid([chunk_lengths[i] for i in drop]),
        dimension_names=None if names is None else tuple(names[i] for i in drop),
        codecs=codecs_with_axes(
            meta.codecs, drop, ndim=meta.ndim, operation=f"squeeze axis {axis}"
        ),
    )
    return VirtualArray(new_meta, array.manifest.reshape(new_meta.grid_shape))


@overload
def regularize(x: VirtualArray) -> VirtualArray: ...
@overload
def regularize(x: LoadedArray) -> LoadedArray: ...
@overload
def regularize(x: VirtualGroup) -> VirtualGroup: ...
def regularize(x: AnyArray | VirtualGroup) -> AnyArray | VirtualGroup:
    """``x`` with a regular chunk grid, for outputs and readers that need one (zarr v2, Kerchunk).

    A grid whose chunks all have one length along each axis (the last may hang over
    the end) is regular already: `ArrayMetadata` keeps it so. Any other grid would need
    its chunks merged or split, which rewrites their bytes; this is refused.

    Raises
    ------
    RectilinearGridError
        If an array's chunks have different lengths along an axis; the message says
        which, and names the way out.
    """
    if isinstance(x, VirtualGroup):
        problems: list[str] = []
        for path, array in x.walk_arrays():
            try:
                regularize(array)
            except RectilinearGridError as err:
                problems.append(f"{path!r}: {err}")
        if problems:
            raise RectilinearGridError("; ".join(problems), problems=problems)
        return x
    meta = x.metadata
    if isinstance(x, LoadedArray) or meta.is_regular:
        return x
    varying = [
        f"axis {axis} has chunks of {_lengths_text(spec)}"
        for axis, spec in enumerate(meta.chunk_grid.chunk_lengths)
        if not isinstance(spec, int)
    ]
    advice = (
        "; its chunks are stored raw, so cutting them into equal pieces is possible "
        "without copying (vzcore.subchunk)"
        if [c.name for c in meta.codecs] == ["bytes"]
        else ""
    )
    raise RectilinearGridError(
        f"cannot make the chunk grid of {source_label(x) or 'the array'} regular: "
        f"{', '.join(varying)}; a regular grid has one chunk length per axis, and merging "
        f"or splitting stored chunks would rewrite their bytes{advice}. Icechunk and "
        "manifest parquet store rectilinear grids as they are"
    )


def _lengths_text(lengths: Sequence[int]) -> str:
    shown = ", ".join(map(str, lengths[:6])) + (", ..." if len(lengths) > 6 else "")
    return f"lengths {shown} ({len(lengths)} chunks)"


# ---- paths --------------------------------------------------------------------------------


@overload
def rename_paths(x: ChunkManifest, new: PathRenamer) -> ChunkManifest: ...
@overload
def rename_paths(x: VirtualArray, new: PathRenamer) -> VirtualArray: ...
@overload
def rename_paths(x: LoadedArray, new: PathRenamer) -> LoadedArray: ...
@overload
def rename_paths(x: VirtualGroup, new: PathRenamer) -> VirtualGroup: ...
def rename_paths(
    x: ChunkManifest | AnyArray | VirtualGroup, new: PathRenamer
) -> ChunkManifest | AnyArray | VirtualGroup:
    """Rewrite the file paths of every chunk reference.

    ``new`` is a callable ``old_path -> new_path``, a mapping (paths it lacks are
    kept), or one path: every reference then points to it, which is allowed only
    when they all point to a single file (`single_path_renamer`). Only the
    dictionary of distinct paths is rewritten, never the rows.

    Raises
    ------
    AmbiguousRenameError
        If ``new`` is a string and the references point to more than one file.

    >>> m = ChunkManifest.from_entries({"0": {"path": "/old/a.nc", "offset": 0, "length": 4}})
    >>> m.dictionary.to_pylist()  # plain paths are file:// URLs in every manifest
    ['file:///old/a.nc']
    >>> rename_paths(m, lambda p: p.replace("file:///old/", "s3://bucket/")).dictionary.to_pylist()
    ['s3://bucket/a.nc']
    >>> rename_paths(m, "s3://bucket/new.nc").dictionary.to_pylist()
    ['s3://bucket/new.nc']
    """
    if isinstance(new, str):
        new = single_path_renamer(referenced_paths(x), new)
    elif isinstance(new, Mapping):
        # References are URLs: a mapping may name local files by their plain paths.
        new = {key if is_url(key) else normalize_url(key): value for key, value in new.items()}
    if isinstance(x, ChunkManifest):
        return _rename_manifest(x, new)
    if isinstance(x, VirtualArray):
        return VirtualArray(x.metadata, _rename_manifest(x.manifest, new))
    if isinstance(x, LoadedArray):
        return x
    if isinstance(x, VirtualGroup):
        renamed_sources: dict[str, Any] = {}
        for url, fingerprint in x.sources.items():
            target = _rename_one(url, new)
            if renamed_sources.get(target, fingerprint) != fingerprint:
                raise VirtualizationError(
                    f"renaming merges source files with different fingerprints into {target!r}"
                )
            renamed_sources[target] = fingerprint
        return x.evolve(
            arrays={name: rename_paths(a, new) for name, a in x.arrays.items()},
            groups={name: rename_paths(g, new) for name, g in x.groups.items()},
            sources=renamed_sources,
        )
    raise TypeError(f"rename_paths expects a manifest, array or group, got {type(x).__name__}")


def referenced_paths(x: ChunkManifest | AnyArray | VirtualGroup) -> list[str]:
    """The distinct file paths the chunk references point to, sorted.

    Paths left in a manifest's dictionary by chunks no longer referenced (after
    `select_chunks`, say) are not counted; loaded arrays reference nothing.

    >>> m = ChunkManifest.from_entries({"0": {"path": "/b.nc", "offset": 0, "length": 4},
    ...                                 "1": {"path": "/a.nc", "offset": 0, "length": 4}})
    >>> referenced_paths(m)
    ['file:///a.nc', 'file:///b.nc']
    """
    if isinstance(x, ChunkManifest):
        used = pc.unique(_indices(x.paths)).drop_null()
        return sorted(x.dictionary.take(used).to_pylist())
    if isinstance(x, VirtualArray):
        return referenced_paths(x.manifest)
    if isinstance(x, LoadedArray):
        return []
    if isinstance(x, VirtualGroup):
        return sorted({p for _, a in x.walk_arrays() for p in referenced_paths(a)})
    raise TypeError(f"referenced_paths expects a manifest, array or group, got {type(x).__name__}")


def single_path_renamer(paths: Iterable[str], new: str) -> dict[str, str]:
    """The mapping that renames references to one file ``paths`` holds to ``new``.

    ``paths`` are the referenced paths (repeats allowed); with none, nothing is
    renamed.

    Raises
    ------
    AmbiguousRenameError
        If ``paths`` holds more than one distinct path: one new path for several
        files would mix their bytes up.
    InvalidManifestError
        If ``new`` is empty.

    >>> single_path_renamer(["/a.nc", "/a.nc"], "s3://b/a.nc")
    {'/a.nc': 's3://b/a.nc'}
    """
    if not new:
        raise InvalidManifestError("cannot rename paths to an empty string")
    distinct = sorted(set(paths))
    if len(distinct) > 1:
        shown = ", ".join(distinct[:3]) + (", ..." if len(distinct) > 3 else "")
        raise AmbiguousRenameError(
            f"cannot point every chunk reference to {new!r}: they reference "
            f"{len(distinct)} files ({shown}); pass a callable or a mapping "
            "old path -> new path"
        )
    return dict.fromkeys(distinct, new)


def _rename_one(path: str, new: PathMap) -> str:
    renamed = new.get(path, path) if isinstance(new, Mapping) else new(path)
    if not isinstance(renamed, str) or not renamed:
        raise InvalidManifestError(
            f"renaming path {path!r} gave {renamed!r}: expected a non-empty string"
        )
    return renamed


def _rename_manifest(manifest: ChunkManifest, new: PathMap) -> ChunkManifest:
    return manifest.map_paths(lambda path: _rename_one(path, new))
