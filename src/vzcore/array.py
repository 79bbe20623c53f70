"""`VirtualArray` (metadata + chunk manifest) and `LoadedArray` (metadata + values)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from vzcore.display import array_html
from vzcore.errors import InvalidManifestError, InvalidMetadataError
from vzcore.grid import ChunkGrid, describe_grid
from vzcore.manifest import ChunkManifest
from vzcore.metadata import ArrayMetadata

__all__ = [
    "AnyArray",
    "LoadedArray",
    "VirtualArray",
    "chunk_selection",
    "encode_chunk",
    "source_label",
]


@attrs.frozen
class VirtualArray:
    """An array whose chunks are byte ranges in other files.

    The manifest's grid always equals the metadata's chunk grid shape.

    >>> meta = ArrayMetadata(shape=(4,), chunk_grid=(2,), dtype="i4")
    >>> VirtualArray(metadata=meta, manifest=ChunkManifest.empty((2,))).shape
    (4,)
    """

    metadata: ArrayMetadata
    manifest: ChunkManifest

    def __attrs_post_init__(self) -> None:
        if self.manifest.grid != self.metadata.grid_shape:
            raise InvalidManifestError(
                f"manifest grid {self.manifest.grid} does not match shape {self.metadata.shape} "
                f"in {describe_grid(self.metadata.chunk_grid)} (grid {self.metadata.grid_shape})"
            )

    @property
    def shape(self) -> tuple[int, ...]:
        return self.metadata.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.metadata.dtype

    @property
    def ndim(self) -> int:
        return self.metadata.ndim

    @property
    def chunk_shape(self) -> tuple[int, ...]:
        return self.metadata.chunk_shape

    @property
    def nbytes(self) -> int:
        """Bytes of the referenced (stored, possibly compressed) chunk data."""
        return self.manifest.referenced_nbytes

    def __repr__(self) -> str:
        return f"VirtualArray({self.metadata!r}, {self.manifest!r})"

    def _repr_html_(self) -> str:
        return array_html(self)


def _readonly_copy(value: npt.ArrayLike) -> npt.NDArray[Any]:
    array = np.array(value, copy=True)
    array.flags.writeable = False
    return array


def _array_equal(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> bool:
    return bool(a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes())


@attrs.frozen
class LoadedArray:
    """An array held in memory (e.g. a coordinate loaded for indexing); read-only."""

    metadata: ArrayMetadata
    data: npt.NDArray[Any] = attrs.field(
        converter=_readonly_copy, eq=attrs.cmp_using(eq=_array_equal), hash=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        if self.data.shape != self.metadata.shape:
            raise InvalidMetadataError(
                f"data shape {self.data.shape} does not match metadata shape {self.metadata.shape}"
            )
        if self.data.dtype != self.metadata.dtype:
            raise InvalidMetadataError(
                f"data dtype {self.data.dtype} does not match metadata dtype {self.metadata.dtype}"
            )

    @classmethod
    def from_numpy(
        cls,
        data: npt.ArrayLike,
        *,
        chunk_shape: tuple[int, ...] | None = None,
        dimension_names: tuple[str | None, ...] | None = None,
        attributes: dict[str, Any] | None = None,
        fill_value: object = None,
    ) -> LoadedArray:
        """Wrap values; one chunk covering the array unless ``chunk_shape`` is given."""
        array = np.asarray(data)
        native = array.astype(array.dtype.newbyteorder("="), copy=False)
        metadata = ArrayMetadata(
            shape=array.shape,
            chunk_grid=chunk_shape or tuple(max(s, 1) for s in array.shape),
            dtype=native.dtype,
            fill_value=fill_value,
            dimension_names=dimension_names,
            attributes=attributes,
        )
        return cls(metadata, native)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.metadata.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.metadata.dtype

    @property
    def ndim(self) -> int:
        return self.metadata.ndim

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)


AnyArray = VirtualArray | LoadedArray


def source_label(array: AnyArray) -> str:
    """The file an array's references point into (the first of them), or ``"in memory"``."""
    if isinstance(array, LoadedArray):
        return "in memory"
    dictionary = array.manifest.dictionary
    if len(dictionary) == 0:
        return ""
    first = str(dictionary[0].as_py())
    return first if len(dictionary) == 1 else f"{first} and {len(dictionary) - 1} more files"


def encode_chunk(array: LoadedArray, coords: tuple[int, ...]) -> bytes:
    """One chunk of a loaded array as stored bytes: little-endian, edges padded with fill."""
    grid = array.metadata.chunk_grid
    chunk_shape = grid.chunk_shape_at(coords)
    selection = chunk_selection(grid, array.shape, coords)
    little = array.dtype.newbyteorder("<")
    part = array.data[selection]
    if part.shape != chunk_shape:
        padded = np.full(chunk_shape, array.metadata.fill_value, dtype=little)
        padded[tuple(slice(0, n) for n in part.shape)] = part
        part = padded
    return np.ascontiguousarray(part, dtype=little).tobytes()


def chunk_selection(
    grid: ChunkGrid, shape: tuple[int, ...], coords: Sequence[int]
) -> tuple[slice, ...]:
    """The part of an array of ``shape`` that the chunk at grid ``coords`` holds."""
    selection = []
    for axis, c in enumerate(coords):
        bounds = grid.chunk_boundaries(shape, axis)
        selection.append(slice(int(bounds[c]), int(bounds[c + 1])))
    return tuple(selection)
