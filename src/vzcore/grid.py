"""Chunk grids as small frozen values.

The algebra asks the grid for chunk counts and boundaries instead of computing
``shape // chunk_shape`` itself, so a rectilinear grid (per-axis chunk lengths)
can be added without touching the callers.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

import attrs
import numpy as np

from vzcore.errors import InvalidMetadataError

__all__ = ["ChunkGrid", "GridShape", "RegularChunkGrid", "integer_tuple"]

GridShape: TypeAlias = tuple[int, ...]
"""Number of chunks along each axis."""


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


@attrs.frozen
class RegularChunkGrid:
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
    def ndim(self) -> int:
        return len(self.chunk_shape)

    def grid_shape(self, shape: tuple[int, ...]) -> GridShape:
        """Number of chunks along each axis of an array of ``shape``."""
        return tuple(-(-s // c) for s, c in zip(shape, self.chunk_shape, strict=True))

    def chunk_boundaries(self, shape: tuple[int, ...], axis: int) -> np.ndarray:
        """Start of every chunk along ``axis`` plus the array's length (read-only)."""
        length, chunk = shape[axis], self.chunk_shape[axis]
        starts = np.append(np.arange(0, length, chunk, dtype=np.int64), length)
        starts.flags.writeable = False
        return starts

    def is_aligned(self, length: int, axis: int) -> bool:
        """Whether an array of ``length`` along ``axis`` ends on a chunk boundary."""
        return length % self.chunk_shape[axis] == 0

    def with_axis(self, axis: int, chunk_length: int) -> RegularChunkGrid:
        """This grid with a new axis of ``chunk_length`` inserted at ``axis``."""
        chunks = list(self.chunk_shape)
        chunks.insert(axis, chunk_length)
        return RegularChunkGrid(tuple(chunks))

    def replace_axis(self, axis: int, chunk_length: int) -> RegularChunkGrid:
        """This grid with the chunk length along ``axis`` replaced."""
        chunks = list(self.chunk_shape)
        chunks[axis] = chunk_length
        return RegularChunkGrid(tuple(chunks))

    def to_zarr_v3(self) -> dict[str, Any]:
        return {"name": "regular", "configuration": {"chunk_shape": list(self.chunk_shape)}}


ChunkGrid: TypeAlias = RegularChunkGrid
"""Any chunk grid vz knows (regular today)."""
