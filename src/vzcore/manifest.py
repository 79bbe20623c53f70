"""`ChunkManifest`: where every chunk of an array lives, as one frozen Arrow table.

One row per chunk in C order of the chunk grid, three columns:

- ``path``: ``dictionary<int32, string>`` (a file URL; null = missing chunk),
- ``offset``: ``uint64`` byte offset of the chunk in that file,
- ``length``: ``uint64`` byte count of the chunk.

All chunks of the ``path`` column share one dictionary, so renaming files touches
only the dictionary and never the per-chunk rows. Missing chunks have offset and
length 0.

A manifest may also hold *inline* chunks: the encoded bytes of a chunk kept in the
table itself (Kerchunk inline data, Icechunk inline chunks), in a fourth column

- ``data``: ``large_binary``, null except on inline rows.

An inline row has a null ``path``, offset and length 0 and non-null ``data``; a
missing chunk has a null ``path`` and null ``data``. A manifest without inline
chunks has no ``data`` column at all (its table is exactly the three columns
above, as small as ever): a ``data`` column of nulls only is dropped when the
manifest is built.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Self

import attrs
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from vzcore.display import manifest_html
from vzcore.errors import InvalidManifestError, InvalidMetadataError
from vzcore.grid import GridShape, integer_tuple
from vzcore.limits import check_limit
from vzcore.urls import is_url, normalize_url

__all__ = [
    "INLINE_MANIFEST_SCHEMA",
    "MANIFEST_SCHEMA",
    "ChunkEntry",
    "ChunkKey",
    "ChunkManifest",
]

PATH_TYPE = pa.dictionary(pa.int32(), pa.string())
MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("path", PATH_TYPE),
        pa.field("offset", pa.uint64(), nullable=False),
        pa.field("length", pa.uint64(), nullable=False),
    ]
)
INLINE_TYPE = pa.large_binary()
INLINE_MANIFEST_SCHEMA = MANIFEST_SCHEMA.append(pa.field("data", INLINE_TYPE))

type ChunkKey = str
"""A chunk's grid coordinates joined by ``.``, e.g. ``"0.3.1"`` (``"0"`` for 0-d arrays)."""
type ChunkEntry = Mapping[str, Any]
"""``{"path": str, "offset": int, "length": int}``, or ``{"data": bytes}`` for an inline chunk."""

_KEY_SEPARATORS = re.compile(r"[./]")
# ASCII digits only: int() also takes " 1", "+1", "1_0" and other scripts' digits. A
# negative index is well formed, and outside every grid.
_CHUNK_KEY = re.compile(r"-?[0-9]{1,19}(?:[./]-?[0-9]{1,19})*")


def _to_grid(value: Iterable[int]) -> GridShape:
    try:
        grid = integer_tuple(value, "chunk grid")
    except InvalidMetadataError as err:
        raise InvalidManifestError(str(err)) from err
    if any(g < 0 for g in grid):
        raise InvalidManifestError(f"chunk grid {grid} has a negative length")
    return grid


def _readonly[T: np.generic](array: npt.NDArray[T]) -> npt.NDArray[T]:
    array.flags.writeable = False
    return array


@attrs.frozen(eq=False)
class ChunkManifest:
    """The chunk grid shape and the table of chunk references (see module docs).

    Build one with `from_arrays`, `from_entries` or `from_arrow`; the constructor
    itself only checks an already-normalised table.

    >>> m = ChunkManifest.from_entries(
    ...     {"0.0": {"path": "file:///a.nc", "offset": 100, "length": 50},
    ...      "0.1": {"path": "file:///a.nc", "offset": 150, "length": 50}})
    >>> m.grid, m.n_chunks, m.n_missing
    ((1, 2), 2, 0)
    """

    grid: GridShape = attrs.field(converter=_to_grid)
    table: pa.Table = attrs.field(repr=False)

    def __attrs_post_init__(self) -> None:
        problems = []
        if any(g < 0 for g in self.grid):
            problems.append(f"grid {self.grid} has a negative length")
        schema = self.table.schema
        if not (schema.equals(MANIFEST_SCHEMA) or schema.equals(INLINE_MANIFEST_SCHEMA)):
            problems.append(f"table schema is {schema}, expected {MANIFEST_SCHEMA}")
        elif schema.equals(INLINE_MANIFEST_SCHEMA):
            problems.extend(self._check_inline())
        if self.table.num_rows != math.prod(self.grid):
            problems.append(
                f"table has {self.table.num_rows} rows, grid {self.grid} has "
                f"{math.prod(self.grid)} chunks"
            )
        if problems:
            raise InvalidManifestError(
                "invalid chunk manifest: " + "; ".join(problems), problems=problems
            )
        # Paths become URLs once, here: a plain path (from a parser, from Kerchunk
        # references with POSIX paths) is the file:// URL of that local file.
        dictionary = self.dictionary
        if len(dictionary) and not _all_urls(dictionary):
            urls = [p if is_url(p) else normalize_url(p) for p in dictionary.to_pylist()]
            object.__setattr__(self, "table", _with_dictionary(self.table, urls))

    def _check_inline(self) -> list[str]:
        """Problems of the ``data`` column; a column of nulls only is dropped (no inline rows)."""
        data = self.table.column("data")
        if data.null_count == len(data):
            object.__setattr__(self, "table", self.table.drop_columns(["data"]))
            return []
        inline = pc.is_valid(data)
        problems = []
        both = pc.sum(pc.and_(inline, pc.is_valid(self.paths))).as_py() or 0
        if both:
            problems.append(f"{both} row(s) have both a path and inline bytes")
        zero = pa.scalar(0, pa.uint64())
        numbers = pc.or_(
            pc.not_equal(self.table.column("offset"), zero),
            pc.not_equal(self.table.column("length"), zero),
        )
        nonzero = pc.sum(pc.and_(inline, numbers)).as_py() or 0
        if nonzero:
            problems.append(f"{nonzero} inline row(s) have a non-zero offset or length")
        if not problems:
            check_limit(
                "max_inline_bytes",
                _binary_nbytes(data),
                f"chunk manifest of grid {self.grid}",
                "the total size of its inline chunks in bytes",
            )
        return problems

    def map_paths(self, new_path: Callable[[str], str]) -> ChunkManifest:
        """The manifest with each distinct path ``p`` replaced by ``new_path(p)``.

        Only the dictionary is rewritten; paths that become equal are merged. Inline
        rows have no path and are left as they are.
        """
        old = self.dictionary.to_pylist()
        if not old:
            return self
        return ChunkManifest(self.grid, _with_dictionary(self.table, [new_path(p) for p in old]))

    # ---- constructors ------------------------------------------------------------------

    @classmethod
    def from_arrays(
        cls,
        *,
        paths: npt.ArrayLike,
        offsets: npt.ArrayLike,
        lengths: npt.ArrayLike,
        data: npt.ArrayLike | None = None,
    ) -> Self:
        """Build from three numpy arrays shaped like the chunk grid.

        A path of ``""`` or ``None`` marks a missing chunk. ``data``, an object array
        of the same shape holding ``bytes`` or ``None``, gives inline chunks: a row
        with bytes there has path ``""``, offset and length 0.

        >>> m = ChunkManifest.from_arrays(
        ...     paths=np.array([["s3://b/x.nc", ""]]), offsets=np.array([[8, 0]]),
        ...     lengths=np.array([[16, 0]]))
        >>> m.grid, m.n_missing
        ((1, 2), 1)
        """
        path_array = np.asarray(paths)
        offset_array, length_array = np.asarray(offsets), np.asarray(lengths)
        if not path_array.shape == offset_array.shape == length_array.shape:
            raise InvalidManifestError(
                f"paths, offsets and lengths differ in shape: {path_array.shape}, "
                f"{offset_array.shape}, {length_array.shape}"
            )
        flat_paths = path_array.ravel()
        if flat_paths.dtype.kind not in "UOT":
            raise InvalidManifestError(f"paths must be strings, got dtype {flat_paths.dtype}")
        path_column = pa.array(flat_paths, type=pa.string())
        columns = {
            "path": path_column,
            "offset": _to_uint64(offset_array.ravel(), "offsets"),
            "length": _to_uint64(length_array.ravel(), "lengths"),
        }
        if data is not None:
            columns["data"] = _inline_column(data, path_array.shape)
        return cls.from_arrow(pa.table(columns), grid=path_array.shape)

    @classmethod
    def from_entries(
        cls, entries: Mapping[ChunkKey, ChunkEntry], *, grid: Iterable[int] | None = None
    ) -> Self:
        """Build from Kerchunk-style entries keyed by chunk key (``"0.1"`` or ``"0/1"``).

        Chunks absent from ``entries`` are missing. ``grid`` defaults to one past the
        largest key along each axis.
        """
        keys = list(entries)
        malformed = [k for k in keys if not isinstance(k, str) or not _CHUNK_KEY.fullmatch(k)]
        if malformed:
            raise InvalidManifestError(
                f"chunk keys must be integers joined by '.' or '/', got {str(malformed[0])[:60]!r}"
            )
        split = [[int(i) for i in _KEY_SEPARATORS.split(k)] for k in keys]
        if len({len(c) for c in split}) > 1:
            raise InvalidManifestError("chunk keys have different numbers of axes")
        grid_shape = _entries_grid(split, grid)
        if len(grid_shape) == 0:
            # The key of a 0-d array's only chunk is "0".
            if any(c != [0] for c in split):
                raise InvalidManifestError("a 0-d array has exactly one chunk, keyed '0'")
            split = [[] for _ in split]
        if split and len(split[0]) != len(grid_shape):
            raise InvalidManifestError(
                f"chunk keys have {len(split[0])} axes, the grid {grid_shape} has {len(grid_shape)}"
            )
        try:
            coords = np.array(split, dtype=np.int64).reshape(len(keys), len(grid_shape))
        except OverflowError as err:
            raise InvalidManifestError(f"a chunk key lies outside the grid {grid_shape}") from err
        if len(keys) and ((coords < 0).any() or (coords >= np.array(grid_shape)).any()):
            raise InvalidManifestError(f"a chunk key lies outside the grid {grid_shape}")
        n_chunks = math.prod(grid_shape)
        rows = (
            np.asarray(np.ravel_multi_index(tuple(coords.T), grid_shape), dtype=np.int64)
            if len(grid_shape)
            else np.zeros(len(keys), np.int64)
        )
        if len(np.unique(rows)) != len(rows):
            raise InvalidManifestError("two chunk keys name the same chunk")
        paths = np.full(n_chunks, None, dtype=object)
        offsets = np.zeros(n_chunks, dtype=object)
        lengths = np.zeros(n_chunks, dtype=object)
        values = list(entries.values())
        is_inline = [isinstance(e, Mapping) and e.get("data") is not None for e in values]
        both = [
            k for k, e, flag in zip(keys, values, is_inline, strict=True) if flag and e.get("path")
        ]
        if both:
            raise InvalidManifestError(
                f"chunk {both[0]!r} has both a path and inline bytes ('data'); give one of them"
            )
        referenced = [e for e, flag in zip(values, is_inline, strict=True) if not flag]
        referenced_rows = rows[~np.array(is_inline, dtype=bool)] if len(rows) else rows
        try:
            paths[referenced_rows] = [e["path"] for e in referenced]
            offsets[referenced_rows] = [e["offset"] for e in referenced]
            lengths[referenced_rows] = [e["length"] for e in referenced]
        except (KeyError, TypeError) as err:
            raise InvalidManifestError(
                f"each entry needs 'path', 'offset' and 'length' (or 'data'): missing {err}"
            ) from err
        data = None
        if any(is_inline):
            data = np.full(n_chunks, None, dtype=object)
            inline_rows = rows[np.array(is_inline, dtype=bool)]
            data[inline_rows] = [
                e["data"] for e, flag in zip(values, is_inline, strict=True) if flag
            ]
            data = data.reshape(grid_shape)
        return cls.from_arrays(
            paths=paths.reshape(grid_shape),
            offsets=offsets.reshape(grid_shape),
            lengths=lengths.reshape(grid_shape),
            data=data,
        )

    @classmethod
    def from_arrow(cls, table: pa.Table, *, grid: Iterable[int]) -> Self:
        """Build from an Arrow table with ``path``, ``offset`` and ``length`` columns.

        Columns are cast to the manifest schema, ``""`` paths become missing chunks,
        and the ``path`` chunks are given one shared dictionary. An optional binary
        ``data`` column holds inline chunks (non-null on their rows, whose path is
        null or ``""``; their offset and length become 0).
        """
        missing = {"path", "offset", "length"} - set(table.column_names)
        if missing:
            raise InvalidManifestError(f"table lacks columns {sorted(missing)}")
        path = _normalise_paths(table.column("path"))
        offset = _cast_unsigned(table.column("offset"), "offset")
        length = _cast_unsigned(table.column("length"), "length")
        if path.null_count:
            present = pc.is_valid(path)
            offset = pc.if_else(present, offset, pa.scalar(0, pa.uint64()))
            length = pc.if_else(present, length, pa.scalar(0, pa.uint64()))
        if "data" not in table.column_names:
            return cls(grid, pa.Table.from_arrays([path, offset, length], schema=MANIFEST_SCHEMA))
        data = _cast_inline(table.column("data"))
        return cls(
            grid,
            pa.Table.from_arrays([path, offset, length, data], schema=INLINE_MANIFEST_SCHEMA),
        )

    @classmethod
    def empty(cls, grid: Iterable[int]) -> Self:
        """A manifest in which every chunk is missing."""
        grid_shape = _to_grid(grid)
        n_chunks = math.prod(grid_shape)
        indices = pa.nulls(n_chunks, pa.int32())
        path = pa.DictionaryArray.from_arrays(indices, pa.array([], pa.string()))
        zeros = pa.array(np.zeros(n_chunks, dtype=np.uint64))
        return cls(grid_shape, pa.Table.from_arrays([path, zeros, zeros], schema=MANIFEST_SCHEMA))

    # ---- views -------------------------------------------------------------------------

    @property
    def ndim(self) -> int:
        return len(self.grid)

    @property
    def n_chunks(self) -> int:
        rows: int = self.table.num_rows
        return rows

    @property
    def n_missing(self) -> int:
        """Chunks neither referenced nor inline (they read as the fill value)."""
        nulls: int = self.table.column("path").null_count
        return nulls - self.n_inline

    @property
    def inline_data(self) -> pa.ChunkedArray | None:
        """The ``data`` column (null except on inline rows), or None without inline chunks."""
        if "data" not in self.table.column_names:
            return None
        return self.table.column("data")

    @property
    def n_inline(self) -> int:
        """Chunks whose encoded bytes are held in the manifest itself."""
        data = self.inline_data
        return 0 if data is None else len(data) - data.null_count

    @property
    def inline_nbytes(self) -> int:
        """Sum of the sizes of the inline chunks."""
        data = self.inline_data
        return 0 if data is None else _binary_nbytes(data)

    def inline_mask(self) -> npt.NDArray[np.bool_]:
        """Read-only flat boolean array: which rows (C order) are inline chunks."""
        data = self.inline_data
        if data is None:
            return _readonly(np.zeros(self.n_chunks, dtype=bool))
        return _readonly(pc.is_valid(data).to_numpy(zero_copy_only=False))

    def missing_mask(self) -> npt.NDArray[np.bool_]:
        """Read-only flat boolean array: which rows are missing (neither referenced nor inline)."""
        missing = pc.is_null(self.paths).to_numpy(zero_copy_only=False)
        data = self.inline_data
        if data is not None:
            missing = missing & ~pc.is_valid(data).to_numpy(zero_copy_only=False)
        return _readonly(np.asarray(missing, dtype=bool))

    def inline_chunks(self, rows: npt.NDArray[np.integer[Any]]) -> list[bytes]:
        """The inline bytes of the given rows (each must be an inline row)."""
        data = self.inline_data
        if data is None or not len(rows):
            if len(rows):
                raise InvalidManifestError(f"row {int(rows[0])} is not an inline chunk")
            return []
        taken = pc.take(data, pa.array(np.asarray(rows, dtype=np.int64)))
        if taken.null_count:
            raise InvalidManifestError(f"{taken.null_count} of the rows are not inline chunks")
        values: list[bytes] = taken.to_pylist()
        return values

    @property
    def paths(self) -> pa.ChunkedArray:
        return self.table.column("path")

    @property
    def dictionary(self) -> pa.Array:
        """The distinct file paths (the shared dictionary of the ``path`` column)."""
        path = self.paths
        return path.chunk(0).dictionary if path.num_chunks else pa.array([], pa.string())

    @property
    def referenced_nbytes(self) -> int:
        """Sum of the lengths of all chunk references."""
        total = pc.sum(self.table.column("length")).as_py()
        return int(total or 0)

    @property
    def nbytes(self) -> int:
        """Memory held by the table, counting each shared buffer (the dictionary) once."""
        seen: dict[int, int] = {}
        for column in self.table.columns:
            for chunk in column.chunks:
                arrays = (
                    [chunk.indices, chunk.dictionary]
                    if isinstance(chunk, pa.DictionaryArray)
                    else [chunk]
                )
                for array in arrays:
                    for buffer in array.buffers():
                        if buffer is not None:
                            seen[buffer.address] = max(seen.get(buffer.address, 0), buffer.size)
        return sum(seen.values())

    def to_arrays(self) -> tuple[npt.NDArray[Any], npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
        """Read-only numpy ``(paths, offsets, lengths)`` in grid shape; missing paths are ``""``."""
        paths = pc.fill_null(self.paths.cast(pa.string()), "").to_numpy(zero_copy_only=False)
        string_paths = np.asarray(paths, dtype=np.dtypes.StringDType()).reshape(self.grid)
        offsets = self.table.column("offset").to_numpy().reshape(self.grid)
        lengths = self.table.column("length").to_numpy().reshape(self.grid)
        return _readonly(string_paths), _readonly(offsets.copy()), _readonly(lengths.copy())

    def to_entries(self) -> dict[ChunkKey, dict[str, Any]]:
        """Kerchunk-style ``{"i.j": {"path", "offset", "length"}}`` of the present chunks.

        Inline chunks are ``{"data": bytes}``.
        """
        paths = self.paths.cast(pa.string()).to_pylist()
        offsets = self.table.column("offset").to_pylist()
        lengths = self.table.column("length").to_pylist()
        data = self.inline_data
        inline = data.to_pylist() if data is not None else None
        present = np.flatnonzero(~self.missing_mask())
        coords = np.unravel_index(present, self.grid) if self.grid else ()
        keys = (
            [".".join(map(str, c)) for c in zip(*coords, strict=True)]
            if self.grid
            else ["0"] * len(present)
        )
        return {
            key: {"data": inline[row]}
            if inline is not None and inline[row] is not None
            else {"path": paths[row], "offset": offsets[row], "length": lengths[row]}
            for key, row in zip(keys, present.tolist(), strict=True)
        }

    # ---- structure-preserving helpers used by the algebra ------------------------------

    def reshape(self, grid: Iterable[int]) -> ChunkManifest:
        """The same rows under another grid with as many chunks (no copy)."""
        return ChunkManifest(grid, self.table)

    def take(self, rows: npt.NDArray[np.integer[Any]], *, grid: Iterable[int]) -> ChunkManifest:
        """Rows gathered by index (vectorised, one copy per column) under a new grid."""
        columns = self.to_numpy_columns()
        taken = [
            np.take(column, rows, out=arrow_backed_empty(len(rows), column.dtype))
            for column in columns
        ]
        data = self.inline_data
        return ChunkManifest.from_numpy_columns(
            grid,
            dictionary=self.dictionary,
            indices=taken[0],
            offsets=taken[1],
            lengths=taken[2],
            data=None if data is None else pc.take(data, pa.array(rows)),
        )

    def to_numpy_columns(
        self,
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
        """Flat numpy columns: dictionary indices (-1 = no path), offsets, lengths.

        A row without a path is missing or inline (`inline_mask` tells them apart).
        Zero-copy where Arrow allows it (one chunk, no nulls); read-only either way.
        """
        return (
            column_to_numpy(_indices(self.paths)),
            column_to_numpy(self.table.column("offset")),
            column_to_numpy(self.table.column("length")),
        )

    @classmethod
    def from_numpy_columns(
        cls,
        grid: Iterable[int],
        *,
        dictionary: pa.Array,
        indices: npt.NDArray[np.int32],
        offsets: npt.NDArray[np.uint64],
        lengths: npt.NDArray[np.uint64],
        data: pa.Array | pa.ChunkedArray | None = None,
        may_be_missing: bool = True,
    ) -> Self:
        """The inverse of `to_numpy_columns` (columns taken over without a copy).

        ``data``, a binary column of one value per row, carries the inline chunks.
        ``may_be_missing=False`` says no index is negative (the caller knows it), which
        saves a pass over the indices.
        """
        mask = None
        if may_be_missing:
            missing = indices < 0
            mask = missing if missing.any() else None
        path = pa.DictionaryArray.from_arrays(
            pa.array(indices, type=pa.int32(), mask=mask), dictionary
        )
        columns = [path, pa.array(offsets, pa.uint64()), pa.array(lengths, pa.uint64())]
        if data is None:
            return cls(grid, pa.Table.from_arrays(columns, schema=MANIFEST_SCHEMA))
        return cls(
            grid,
            pa.Table.from_arrays([*columns, _cast_inline(data)], schema=INLINE_MANIFEST_SCHEMA),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ChunkManifest):
            return NotImplemented
        if self.grid != other.grid:
            return False
        for name in ("offset", "length"):
            if not self.table.column(name).equals(other.table.column(name)):
                return False
        data, other_data = self.inline_data, other.inline_data
        if (data is None) != (other_data is None):
            return False
        if data is not None and not data.equals(other_data):
            return False
        if (
            self.dictionary.equals(other.dictionary)
            and _single_dictionary(self.paths)
            and _single_dictionary(other.paths)
        ):
            return bool(_indices(self.paths).equals(_indices(other.paths)))
        return bool(self.paths.cast(pa.string()).equals(other.paths.cast(pa.string())))

    def __hash__(self) -> int:
        return hash((self.grid, self.n_chunks, self.n_missing, self.n_inline))

    def _repr_html_(self) -> str:
        return manifest_html(self)

    def __repr__(self) -> str:
        inline = f", n_inline={self.n_inline}" if self.n_inline else ""
        return (
            f"ChunkManifest(grid={self.grid}, n_chunks={self.n_chunks}, n_missing={self.n_missing}"
            f"{inline}, n_files={len(self.dictionary)})"
        )


def _all_urls(dictionary: pa.Array) -> bool:
    """Whether every path of ``dictionary`` has a scheme (plain paths become URLs)."""
    if len(dictionary) <= 32:  # a parser's one file: cheaper in Python than two kernels
        return all(path is None or "://" in path for path in dictionary.to_pylist())
    return bool(pc.all(pc.match_substring(dictionary, "://")).as_py())


def _entries_grid(coords: list[list[int]], grid: Iterable[int] | None) -> GridShape:
    if grid is not None:
        return _to_grid(grid)
    if not coords:
        raise InvalidManifestError("cannot infer the grid of an empty manifest: pass grid=")
    try:
        largest = np.array(coords, dtype=np.int64).max(axis=0)
    except OverflowError as err:
        raise InvalidManifestError("a chunk key is beyond 2**63 - 1") from err
    return tuple(int(v) + 1 for v in largest)


def _to_uint64(values: npt.NDArray[Any], name: str) -> pa.Array:
    if values.dtype == object:
        values = _object_integers(values, name)
    elif values.dtype.kind not in "iu":
        raise InvalidManifestError(f"{name} must be integers, got dtype {values.dtype}")
    if values.dtype.kind == "i" and values.size and values.min() < 0:
        raise InvalidManifestError(f"{name} must be non-negative, found {int(values.min())}")
    return pa.array(values.astype(np.uint64, copy=False))


def _object_integers(values: npt.NDArray[Any], name: str) -> npt.NDArray[Any]:
    """Python integers (possibly beyond int64) as uint64, refusing anything else."""
    wrong = [v for v in values.tolist() if not isinstance(v, int) or isinstance(v, bool)]
    if wrong:
        raise InvalidManifestError(f"{name} must be integers: found {wrong[0]!r}")
    if values.size and (values < 0).any():
        raise InvalidManifestError(f"{name} must be non-negative, found {int(values.min())}")
    try:
        return values.astype(np.uint64)
    except OverflowError as err:
        raise InvalidManifestError(f"{name} must be below 2**64: {err}") from err


def _cast_unsigned(column: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    if not pa.types.is_integer(column.type):
        raise InvalidManifestError(f"column {name!r} must be integers, got {column.type}")
    if column.null_count:
        raise InvalidManifestError(f"column {name!r} has {column.null_count} nulls")
    if pa.types.is_signed_integer(column.type) and len(column):
        smallest = pc.min(column).as_py()
        if smallest is not None and smallest < 0:
            raise InvalidManifestError(f"column {name!r} has a negative value ({smallest})")
    return column.cast(pa.uint64())


def _normalise_paths(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray:
    """Dictionary-encode, turn ``""`` into null, and give every chunk one dictionary."""
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column])
    if pa.types.is_dictionary(column.type):
        column = column.cast(pa.dictionary(pa.int32(), pa.string()))
    elif (
        pa.types.is_string(column.type)
        or pa.types.is_large_string(column.type)
        or pa.types.is_null(column.type)
    ):
        column = column.cast(pa.string()).dictionary_encode()
    else:
        raise InvalidManifestError(f"column 'path' must hold strings, got {column.type}")
    column = unify_dictionary(column)
    dictionary = column.chunk(0).dictionary if column.num_chunks else pa.array([], pa.string())
    empty = pc.index(dictionary, "").as_py()
    if empty < 0:
        return column
    # "" marks a missing chunk: null its rows and drop it from the dictionary.
    kept = pa.concat_arrays([dictionary[:empty], dictionary[empty + 1 :]])
    null = pa.scalar(None, pa.int32())
    chunks = []
    for chunk in column.chunks:
        indices = chunk.indices
        shifted = pc.subtract(indices, pc.cast(pc.greater(indices, empty), pa.int32()))
        chunks.append(
            pa.DictionaryArray.from_arrays(
                pc.if_else(pc.equal(indices, empty), null, shifted), kept
            )
        )
    return pa.chunked_array(chunks, type=PATH_TYPE)


def _with_dictionary(table: pa.Table, paths: list[str]) -> pa.Table:
    """``table`` whose path dictionary entry i is ``paths[i]`` (equal entries merged)."""
    encoded = pa.array(paths, type=pa.string()).dictionary_encode()
    dictionary = encoded.dictionary
    # Two old paths may map to one new path: remap the indices through the encoding.
    remap = None if len(dictionary) == len(paths) else encoded.indices
    path_column = table.column("path")
    chunks = []
    for chunk in path_column.chunks:
        indices = chunk.indices if remap is None else pc.take(remap, chunk.indices)
        chunks.append(pa.DictionaryArray.from_arrays(indices, dictionary))
    path = pa.chunked_array(chunks, type=PATH_TYPE)
    return pa.Table.from_arrays([path, *table.columns[1:]], schema=table.schema)


def _inline_column(data: npt.ArrayLike, grid: tuple[int, ...]) -> pa.Array:
    """An object array of ``bytes`` / ``None`` in grid shape as the ``data`` column."""
    values = np.asarray(data, dtype=object)
    if values.shape != grid:
        raise InvalidManifestError(f"data has shape {values.shape}, the paths {grid}")
    try:
        return pa.array(values.ravel(), type=INLINE_TYPE)
    except (pa.ArrowException, TypeError) as err:
        raise InvalidManifestError(f"data must hold bytes or None: {err}") from err


def _cast_inline(column: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column])
    if not (pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)) and not (
        pa.types.is_null(column.type)
    ):
        raise InvalidManifestError(f"column 'data' must hold bytes, got {column.type}")
    return column.cast(INLINE_TYPE)


def _binary_nbytes(column: pa.ChunkedArray) -> int:
    """Total bytes of the non-null values of a binary column."""
    total = pc.sum(pc.binary_length(column)).as_py()
    return int(total or 0)


def unify_dictionary(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Give all chunks of a dictionary column one shared dictionary.

    Each chunk's indices are transposed into the shared dictionary (one vectorised
    take per chunk); a chunk whose indices already fit is kept as it is.
    """
    if column.num_chunks <= 1 or _single_dictionary(column):
        return column
    unified, mappings = unified_dictionary([chunk.dictionary for chunk in column.chunks])
    # The transposed indices of all chunks go into one buffer of Arrow's pool, which
    # recycles memory: a thousand small fresh allocations would fault page by page.
    moved = sum(len(c) for c, m in zip(column.chunks, mappings, strict=True) if m is not None)
    buffer = arrow_backed_empty(moved, np.dtype(np.int32))
    start = 0
    chunks = []
    for chunk, mapping in zip(column.chunks, mappings, strict=True):
        indices = chunk.indices
        if mapping is not None:
            local = indices.to_numpy(zero_copy_only=False) if not indices.null_count else None
            if local is None:
                indices = pc.take(pa.array(mapping[:-1]), indices)
            else:
                out = buffer[start : start + len(local)]
                np.take(mapping, local, out=out, mode="wrap")  # unbuffered; no -1 here
                start += len(local)
                indices = pa.array(out, type=pa.int32())
        chunks.append(pa.DictionaryArray.from_arrays(indices, unified))
    return pa.chunked_array(chunks, type=PATH_TYPE)


def unified_dictionary(
    dictionaries: Sequence[pa.Array],
) -> tuple[pa.Array, list[npt.NDArray[np.int32] | None]]:
    """One dictionary holding the entries of all ``dictionaries``, and how to get there.

    Returns the unified dictionary and, per input dictionary, its transposition: the
    position in the unified one of each of its entries, followed by ``-1`` (so that a
    missing row's index ``-1`` maps to ``-1``); None where that is the identity. A
    dictionary object given several times is encoded once.

    >>> unified, maps = unified_dictionary([pa.array(["a", "b"]), pa.array(["b", "c"])])
    >>> unified.to_pylist(), maps[0], maps[1].tolist()
    (['a', 'b', 'c'], None, [1, 2, -1])
    """
    by_identity = {id(d): d for d in dictionaries}
    ordered = list(by_identity.values())
    if len(ordered) == 1:
        return ordered[0], [None] * len(dictionaries)
    position = {key: k for k, key in enumerate(by_identity)}
    encoded = pa.concat_arrays(ordered).dictionary_encode()
    transpose = encoded.indices.to_numpy().astype(np.int32)
    sizes = np.array([len(d) for d in ordered], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    # Whole-array passes, not one per dictionary: which transpositions are the
    # identity, and every transposition followed by its -1 in one buffer (views of it).
    within = np.arange(len(transpose)) - np.repeat(starts, sizes)
    changed = np.concatenate([[0], np.cumsum(transpose != within)])
    moved = changed[starts + sizes] - changed[starts]  # entries moved, per dictionary
    padded = np.insert(transpose, np.cumsum(sizes), np.int32(-1)).astype(np.int32)
    padded_starts = (starts + np.arange(len(ordered))).tolist()
    per_distinct: list[npt.NDArray[np.int32] | None] = [
        None if not m else padded[a : a + n + 1]
        for m, a, n in zip(moved.tolist(), padded_starts, sizes.tolist(), strict=True)
    ]
    return encoded.dictionary, [per_distinct[position[id(d)]] for d in dictionaries]


def _single_dictionary(column: pa.ChunkedArray) -> bool:
    if column.num_chunks <= 1:
        return True
    first = column.chunk(0).dictionary
    return all(c.dictionary is first or c.dictionary.equals(first) for c in column.chunks[1:])


def arrow_backed_empty(size: int, dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """An uninitialised numpy array living in Arrow's memory pool.

    Arrow's pool hands back recycled memory, where a fresh numpy allocation of
    hundreds of MB pays a page fault per page on first touch.
    """
    buffer = pa.allocate_buffer(size * dtype.itemsize)
    return np.frombuffer(buffer, dtype=dtype, count=size)


def column_to_numpy(column: pa.ChunkedArray) -> npt.NDArray[Any]:
    """A read-only numpy view of an integer column (nulls as -1); copies only if chunked."""
    if column.null_count:
        column = pc.fill_null(column, -1)
    if column.num_chunks == 1:
        array = column.chunk(0).to_numpy()
    else:
        dtype = np.dtype(column.type.to_pandas_dtype())
        out = arrow_backed_empty(len(column), dtype)
        array = (
            np.concatenate([c.to_numpy() for c in column.chunks], out=out) if len(column) else out
        )
    return _readonly(array)


def _indices(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pa.chunked_array([c.indices for c in column.chunks], type=pa.int32())
