"""Chunk grids as small frozen values: regular, or rectilinear (per-axis chunk edges).

The algebra, the readers and the writers ask the grid for chunk counts, boundaries
and lengths instead of computing ``shape // chunk_shape`` themselves. Each axis is
described the way zarr 3.4 describes it (``FixedDimension`` / ``VaryingDimension``
in ``zarr/core/chunk_grids.py``): an ``int`` is a regular chunk length repeated over
the axis, a tuple lists the length of every chunk.

A chunk's *length* along an axis is its stored (codec) extent; the last chunk of an
axis may hang over the array's end (its data is then shorter), exactly as in zarr.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias

import attrs
import numpy as np
import numpy.typing as npt

from vzcore.errors import InvalidMetadataError, RectilinearGridError
from vzcore.limits import check_limit

__all__ = [
    "AxisChunks",
    "ChunkGrid",
    "GridShape",
    "RectilinearChunkGrid",
    "RegularChunkGrid",
    "as_chunk_grid",
    "canonical_grid",
    "describe_grid",
    "integer_tuple",
]

GridShape: TypeAlias = tuple[int, ...]
"""Number of chunks along each axis."""

AxisChunks: TypeAlias = int | tuple[int, ...]
"""The chunks along one axis: a regular length, or the length of every chunk."""

Int64Array: TypeAlias = npt.NDArray[np.int64]


_MAX_NDIM = 64  # numpy's limit on dimensions
_SHORT = reprlib.Repr(maxlist=8, maxtuple=8, maxstring=40, maxother=40)


def integer_tuple(value: Any, what: str) -> tuple[int, ...]:
    """``value`` (a sequence of integers) as a tuple of Python ints.

    A string, a float, a bool or a nested list is refused rather than converted:
    ``int(2.5)`` or ``tuple("12")`` would give a wrong shape, silently.

    >>> integer_tuple([3, np.int64(4)], "shape")
    (3, 4)

    Raises
    ------
    InvalidMetadataError
        If ``value`` is not a sequence of at most 64 integers.
    """
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InvalidMetadataError(f"{what} must be a list of integers, got {_SHORT.repr(value)}")
    items = tuple(value)
    wrong = [v for v in items if isinstance(v, bool) or not isinstance(v, int | np.integer)]
    if wrong:
        raise InvalidMetadataError(
            f"{what} {_SHORT.repr(value)} must hold integers, found {_SHORT.repr(wrong[0])}"
        )
    if len(items) > _MAX_NDIM:
        raise InvalidMetadataError(f"{what} has {len(items)} axes, more than {_MAX_NDIM}")
    return tuple(int(v) for v in items)


def _to_shape(value: Any) -> tuple[int, ...]:
    return integer_tuple(value, "chunk shape")


def _to_axis(value: Any) -> AxisChunks:
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InvalidMetadataError(
            f"chunk lengths must be an integer or a list of integers, got {_SHORT.repr(value)}"
        )
    items = tuple(value)
    wrong = [v for v in items if isinstance(v, bool) or not isinstance(v, int | np.integer)]
    if wrong:
        raise InvalidMetadataError(
            f"chunk lengths {_SHORT.repr(value)} must hold integers, found {_SHORT.repr(wrong[0])}"
        )
    return tuple(int(v) for v in items)


def _to_axes(value: Any) -> tuple[AxisChunks, ...]:
    return tuple(_to_axis(v) for v in value)


def _read_only(values: Int64Array) -> Int64Array:
    values.flags.writeable = False
    return values


def _axis_count(spec: AxisChunks, extent: int) -> int:
    """How many chunks cover ``extent`` elements along one axis (nothing allocated)."""
    if isinstance(spec, int):
        return -(-extent // spec)
    return len(_axis_lengths(spec, extent))


def _axis_lengths(spec: AxisChunks, extent: int) -> Int64Array:
    """The stored length of every chunk along one axis of ``extent`` elements."""
    if isinstance(spec, int):
        return np.full(-(-extent // spec), spec, dtype=np.int64)
    edges = np.asarray(spec, dtype=np.int64)
    ends = np.cumsum(edges)
    count = int(np.searchsorted(ends, extent, side="left")) + 1 if extent else 0
    return edges[:count]


def _axis_boundaries(spec: AxisChunks, extent: int) -> Int64Array:
    lengths = _axis_lengths(spec, extent)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else lengths
    return _read_only(np.append(starts.astype(np.int64), np.int64(extent)))


class _GridQueries:
    """What both grids answer, from the per-axis specs (``chunk_lengths``)."""

    __slots__ = ()
    chunk_lengths: tuple[AxisChunks, ...]

    @property
    def ndim(self) -> int:
        return len(self.chunk_lengths)

    def grid_shape(self, shape: Sequence[int]) -> GridShape:
        """Number of chunks along each axis of an array of ``shape``."""
        return tuple(
            _axis_count(spec, int(extent))
            for spec, extent in zip(self.chunk_lengths, shape, strict=True)
        )

    def axis_lengths(self, shape: Sequence[int], axis: int) -> Int64Array:
        """The stored length of every chunk along ``axis`` (read-only).

        >>> RectilinearChunkGrid(((3, 3, 4),)).axis_lengths((10,), 0).tolist()
        [3, 3, 4]
        """
        return _read_only(_axis_lengths(self.chunk_lengths[axis], int(shape[axis])))

    def chunk_boundaries(self, shape: Sequence[int], axis: int) -> Int64Array:
        """Start of every chunk along ``axis`` plus the array's length (read-only).

        >>> RegularChunkGrid((4,)).chunk_boundaries((10,), 0).tolist()
        [0, 4, 8, 10]
        """
        return _axis_boundaries(self.chunk_lengths[axis], int(shape[axis]))

    def chunk_index(self, shape: Sequence[int], axis: int, positions: npt.ArrayLike) -> Int64Array:
        """The chunk holding each element position along ``axis`` (vectorised)."""
        bounds = self.chunk_boundaries(shape, axis)
        found: Int64Array = np.searchsorted(bounds[:-1], positions, side="right") - 1
        return found

    def chunk_shape_at(self, coords: Sequence[int]) -> tuple[int, ...]:
        """The stored shape of the chunk at grid ``coords``."""
        return tuple(
            spec if isinstance(spec, int) else spec[int(c)]
            for spec, c in zip(self.chunk_lengths, coords, strict=True)
        )

    def max_chunk_shape(self) -> tuple[int, ...]:
        """The largest chunk length along each axis."""
        return tuple(spec if isinstance(spec, int) else max(spec) for spec in self.chunk_lengths)

    def is_aligned(self, length: int, axis: int) -> bool:
        """Whether an array of ``length`` along ``axis`` ends on a chunk boundary."""
        spec = self.chunk_lengths[axis]
        if isinstance(spec, int):
            return length % spec == 0
        return length == 0 or bool(np.isin(length, np.cumsum(spec)))


@attrs.frozen
class RegularChunkGrid(_GridQueries):
    """Every chunk has the same shape; edge chunks may hang over the array's end.

    >>> RegularChunkGrid((10, 4)).grid_shape((25, 8))
    (3, 2)
    """

    chunk_shape: tuple[int, ...] = attrs.field(converter=_to_shape)

    @chunk_shape.validator
    def _check(self, _: attrs.Attribute[tuple[int, ...]], value: tuple[int, ...]) -> None:
        if any(c < 1 for c in value):
            raise InvalidMetadataError(f"chunk lengths must be positive, got {value}")

    @property
    def chunk_lengths(self) -> tuple[AxisChunks, ...]:  # type: ignore[override]
        return self.chunk_shape

    @property
    def is_regular(self) -> bool:
        return True

    def with_axis(self, axis: int, chunk_length: AxisChunks) -> ChunkGrid:
        """This grid with a new axis of ``chunk_length`` inserted at ``axis``."""
        chunks: list[AxisChunks] = list(self.chunk_shape)
        chunks.insert(axis, chunk_length)
        return as_chunk_grid(chunks)

    def replace_axis(self, axis: int, chunk_length: AxisChunks) -> ChunkGrid:
        """This grid with the chunks along ``axis`` replaced."""
        chunks: list[AxisChunks] = list(self.chunk_shape)
        chunks[axis] = chunk_length
        return as_chunk_grid(chunks)

    def to_zarr_v3(self, shape: Sequence[int] | None = None) -> dict[str, Any]:
        """zarr's ``regular`` document (``shape`` is not needed; see the rectilinear one)."""
        return {"name": "regular", "configuration": {"chunk_shape": list(self.chunk_shape)}}


@attrs.frozen
class RectilinearChunkGrid(_GridQueries):
    """Chunks whose lengths vary along some axes (zarr's ``rectilinear`` grid).

    Each axis is an ``int`` (a regular length) or a tuple of chunk lengths. The
    value is canonical inside `vzcore.metadata.ArrayMetadata` (see `canonical_grid`):
    a grid that is regular in fact is a `RegularChunkGrid` there.

    >>> grid = RectilinearChunkGrid(((31, 28, 31), 90))
    >>> grid.grid_shape((90, 180)), grid.chunk_boundaries((90, 180), 0).tolist()
    ((3, 2), [0, 31, 59, 90])
    """

    chunk_lengths: tuple[AxisChunks, ...] = attrs.field(converter=_to_axes)

    @chunk_lengths.validator
    def _check(self, _: attrs.Attribute[tuple[AxisChunks, ...]], value: Any) -> None:
        for axis, spec in enumerate(value):
            lengths = (spec,) if isinstance(spec, int) else spec
            if not lengths or min(lengths) < 1:
                raise InvalidMetadataError(
                    f"chunk lengths along axis {axis} must be positive and at least one, got {spec}"
                )

    @property
    def is_regular(self) -> bool:
        return all(isinstance(spec, int) for spec in self.chunk_lengths)

    @property
    def chunk_shape(self) -> tuple[int, ...]:
        """Refused: the chunks do not share one shape (ask `chunk_shape_at`, `axis_lengths`)."""
        raise RectilinearGridError(
            f"a rectilinear chunk grid ({describe_grid(self)}) has no single chunk shape"
        )

    def with_axis(self, axis: int, chunk_length: AxisChunks) -> ChunkGrid:
        """This grid with a new axis of ``chunk_length`` inserted at ``axis``."""
        chunks = list(self.chunk_lengths)
        chunks.insert(axis, _to_axis(chunk_length))
        return as_chunk_grid(chunks)

    def replace_axis(self, axis: int, chunk_length: AxisChunks) -> ChunkGrid:
        """This grid with the chunks along ``axis`` replaced."""
        chunks = list(self.chunk_lengths)
        chunks[axis] = _to_axis(chunk_length)
        return as_chunk_grid(chunks)

    def to_zarr_v3(self, shape: Sequence[int] | None = None) -> dict[str, Any]:
        """zarr's ``rectilinear`` document; runs of equal lengths are ``[length, count]``.

        With the array's ``shape``, a regular axis is written as the run of its chunks
        rather than zarr's bare-integer shorthand, which Icechunk 2.3 does not read.

        >>> RectilinearChunkGrid(((31, 28, 31, 31), 90)).to_zarr_v3((121, 180))["configuration"]
        {'kind': 'inline', 'chunk_shapes': [[31, 28, [31, 2]], [[90, 2]]]}
        """
        shapes: list[Any] = []
        for axis, spec in enumerate(self.chunk_lengths):
            if isinstance(spec, int) and shape is not None:
                count = max(_axis_count(spec, int(shape[axis])), 1)
                shapes.append([[spec, count]] if count > 1 else [spec])
            else:
                shapes.append(spec if isinstance(spec, int) else _run_length_encoded(spec))
        return {"name": "rectilinear", "configuration": {"kind": "inline", "chunk_shapes": shapes}}


ChunkGrid: TypeAlias = RegularChunkGrid | RectilinearChunkGrid
"""Any chunk grid vz knows."""


def as_chunk_grid(value: ChunkGrid | Sequence[int | Sequence[int]]) -> ChunkGrid:
    """A grid from a grid, a chunk shape, or per-axis chunk lengths (``[[3, 3, 4], 90]``)."""
    if isinstance(value, RegularChunkGrid | RectilinearChunkGrid):
        return value
    axes = _to_axes(value)
    if all(isinstance(spec, int) for spec in axes):
        return RegularChunkGrid(axes)
    return RectilinearChunkGrid(axes)


def canonical_grid(grid: ChunkGrid, shape: Sequence[int]) -> ChunkGrid:
    """The one value of ``grid`` over an array of ``shape``.

    Chunks wholly past the end are dropped, an axis whose chunks all have one length
    becomes that ``int``, and a grid whose axes are all regular is a `RegularChunkGrid`.
    The stored length of every chunk is kept, so the bytes of each decode the same.

    >>> canonical_grid(RectilinearChunkGrid(((4, 4, 4, 9),)), (11,))
    RegularChunkGrid(chunk_shape=(4,))
    >>> canonical_grid(RectilinearChunkGrid(((4, 4, 2),)), (10,)).chunk_lengths
    ((4, 4, 2),)

    Raises
    ------
    InvalidMetadataError
        If the chunk lengths along an axis do not cover its length.
    """
    if isinstance(grid, RegularChunkGrid) or len(shape) != grid.ndim:
        return grid
    axes: list[AxisChunks] = []
    for axis, (spec, extent) in enumerate(zip(grid.chunk_lengths, shape, strict=True)):
        if isinstance(spec, int):
            axes.append(spec)
            continue
        covered = sum(spec)
        if covered < extent:
            raise InvalidMetadataError(
                f"chunk lengths along axis {axis} cover {covered} elements, the array has {extent}"
            )
        lengths = _axis_lengths(spec, int(extent)) if extent else np.asarray(spec[:1])
        if int(lengths.min()) == int(lengths.max()):
            axes.append(int(lengths[0]))
        else:
            axes.append(tuple(lengths.tolist()))
    return as_chunk_grid(axes)


def describe_grid(grid: ChunkGrid) -> str:
    """A short text for messages: ``chunk shape (2, 3)`` or ``chunk lengths ((31, 28), 90)``."""
    if isinstance(grid, RegularChunkGrid):
        return f"chunk shape {grid.chunk_shape}"
    shown = [
        str(spec)
        if isinstance(spec, int) or len(spec) <= 8
        else f"({', '.join(map(str, spec[:4]))}, ... {len(spec)} chunks)"
        for spec in grid.chunk_lengths
    ]
    return f"chunk lengths ({', '.join(shown)}{',' if len(shown) == 1 else ''})"


def _run_length_encoded(lengths: Sequence[int]) -> list[Any]:
    """``[10, 10, 10, 5]`` -> ``[[10, 3], 5]``; the plain list when that is no shorter."""
    values = np.asarray(lengths, dtype=np.int64)
    starts = np.flatnonzero(np.diff(values, prepend=values[0] - 1))
    counts = np.diff(np.append(starts, len(values)))
    if len(starts) >= len(values):
        return list(values.tolist())
    return [
        int(v) if int(c) == 1 else [int(v), int(c)]
        for v, c in zip(values[starts].tolist(), counts.tolist(), strict=True)
    ]


def expand_run_lengths(spec: Sequence[Any], axis: int) -> tuple[int, ...]:
    """The chunk lengths of one axis of zarr's ``rectilinear`` document (runs expanded).

    >>> expand_run_lengths([[10, 3], 5], 0)
    (10, 10, 10, 5)

    Raises
    ------
    InvalidMetadataError
        If an entry is not a positive integer or a ``[length, count]`` pair of them.
    """
    values: list[int] = []
    counts: list[int] = []
    for item in spec:
        pair = item if isinstance(item, list | tuple) else [item, 1]
        if len(pair) != 2 or not all(_is_positive_int(v) for v in pair):
            raise InvalidMetadataError(
                f"chunk_shapes entry {item!r} along axis {axis} is neither a positive "
                "integer nor a [length, count] pair of them"
            )
        values.append(int(pair[0]))
        counts.append(int(pair[1]))
    if not values:
        raise InvalidMetadataError(f"chunk_shapes along axis {axis} lists no chunk")
    chunk_count = sum(counts)
    check_limit("max_chunks", chunk_count, "zarr v3 rectilinear chunk_grid", f"axis {axis}'s runs")
    return tuple(np.repeat(np.asarray(values, dtype=np.int64), counts).tolist())


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and int(value) >= 1
