"""`ManifestArray`: an xarray duck array over one `vzcore.VirtualArray`.

It implements only what makes sense without the data values: shape and dtype,
the joins xarray performs when combining datasets (concatenate, stack,
expand_dims, broadcast_to), chunk-aligned indexing, and reference equality,
enough for xarray's own ``equals``, ``identical`` and ``merge`` checks. Everything
that needs values (arithmetic, reductions, ``np.asarray``) raises
`VirtualValuesError`, telling the user how to get real data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow.compute as pc

import vzcore as vc
import vzcore.algebra
from vzcore._frozen import FrozenDict
from vzcore.display import array_html, format_bytes, summarize
from vzcore.errors import VirtualizationError
from vzcore.grid import describe_grid

__all__ = ["ManifestArray", "NullMask", "VirtualChunkingError", "VirtualValuesError"]


class VirtualValuesError(VirtualizationError, TypeError):
    """An operation needed the values of a virtual (not loaded) variable."""


class VirtualChunkingError(VirtualValuesError):
    """A virtual variable was asked to become a dask array (``Dataset.chunk``).

    Dask would wrap the references, not the values, and fail only when computing;
    ``ds.vz.subchunk`` makes smaller virtual chunks, ``ds.vz.to_dataset(chunks=...)``
    gives dask arrays over the real values.
    """


def _needs_values(what: str) -> VirtualValuesError:
    return VirtualValuesError(
        f"{what} needs the values of a virtual variable, which vz does not load. "
        "Load the variable with open_virtual_dataset(..., loadable_variables=[...]), "
        "or write the virtual dataset (ds.vz.to_icechunk / to_kerchunk) and open the "
        "written store with xarray to compute on real data."
    )


_HANDLED: dict[Callable[..., Any], Callable[..., Any]] = {}


def _implements(
    numpy_function: Callable[..., Any],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        _HANDLED[numpy_function] = func
        return func

    return register


class ManifestArray:
    """A virtual array that xarray can hold, combine and index by whole chunks.

    Equality is decided from the chunk references alone, never by loading values:

    - ``a == b`` is True where both arrays have the same metadata and reference the
      very same bytes (same file, offset and length, or both missing), so their
      decoded values are the same, NaN included; elsewhere it is False, meaning
      "not known equal" (other files may hold equal bytes: vz does not read them).
    - ``np.isnan(a)`` (xarray's ``isnull``) is a `NullMask`: unknown without the
      values, but ``(a == b) | (np.isnan(a) & np.isnan(b))``, which is how xarray's
      ``Dataset.equals``, ``identical``, ``xr.testing.assert_equal`` and ``xr.merge``
      compare, is all True when the references are all the same. Otherwise it
      raises `VirtualValuesError` (a TypeError), which xarray takes as "not equal":
      ``equals`` is False and ``merge`` reports a conflict.
    - ``np.where(~np.isnan(a), a, b)`` (xarray's ``fillna``, which ``merge`` uses)
      is ``a`` when ``b`` references the same bytes.
    - ``np.array_equal(a, b)`` is True for the same references (for floats and
      datetimes only with ``equal_nan=True``), False for other shapes, and needs
      the values otherwise.

    Equal references are never claimed for different bytes, and no values are read.

    >>> import numpy as np, vzcore as vc
    >>> meta = vc.ArrayMetadata(shape=(4,), chunk_grid=(2,), dtype="f4")
    >>> a = ManifestArray(vc.VirtualArray(meta, vc.ChunkManifest.empty((2,))))
    >>> np.concatenate([a, a]).shape
    (8,)
    """

    __slots__ = ("_name", "_sources", "_virtual")

    def __init__(
        self,
        virtual: vc.VirtualArray,
        *,
        name: str | None = None,
        sources: Mapping[str, vc.SourceFingerprint] | None = None,
    ) -> None:
        if not isinstance(virtual, vc.VirtualArray):
            raise TypeError(f"ManifestArray wraps a VirtualArray, got {type(virtual).__name__}")
        self._virtual = virtual
        self._name = name
        files = set(virtual.manifest.dictionary.to_pylist()) if sources else set()
        self._sources = FrozenDict({u: f for u, f in (sources or {}).items() if u in files})

    @property
    def name(self) -> str | None:
        """The variable this array came from (for error messages), if known."""
        return self._name

    @property
    def sources(self) -> FrozenDict[str, vc.SourceFingerprint]:
        """Fingerprints of the files this array references, as its parsers recorded them."""
        return self._sources

    def _derived(self, virtual: vc.VirtualArray) -> ManifestArray:
        return ManifestArray(virtual, name=self._name, sources=self._sources)

    def with_virtual(self, virtual: vc.VirtualArray) -> ManifestArray:
        """The same variable (name, source fingerprints) over another core value."""
        return self._derived(virtual)

    @property
    def virtual(self) -> vc.VirtualArray:
        """The wrapped core value."""
        return self._virtual

    @property
    def metadata(self) -> vc.ArrayMetadata:
        return self._virtual.metadata

    @property
    def manifest(self) -> vc.ChunkManifest:
        return self._virtual.manifest

    @property
    def shape(self) -> tuple[int, ...]:
        return self._virtual.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._virtual.dtype

    @property
    def ndim(self) -> int:
        return self._virtual.ndim

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        """Bytes of the referenced chunk data (as stored, possibly compressed)."""
        return self._virtual.nbytes

    @property
    def T(self) -> ManifestArray:
        return self.transpose()

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __repr__(self) -> str:
        m = self.metadata
        return (
            f"ManifestArray<shape={m.shape}, dtype={m.dtype}, chunks={_chunks_text(m)}, "
            f"{self.manifest.n_chunks - self.manifest.n_missing} chunk refs>"
        )

    def _repr_inline_(self, max_width: int) -> str:
        """xarray's one-line preview: references, missing chunks, files, bytes, chunks.

        Where that does not fit (xarray's HTML repr gives 35 characters), the counts
        alone: ``12 refs·12 files·1 missing·4.2 kB``.
        """
        s = summarize(self.manifest)
        missing = f", {s.n_missing} missing" if s.n_missing else ""
        inline = f", {s.n_inline} inline" if s.n_inline else ""
        text = (
            f"ManifestArray<{s.n_references} refs{missing}{inline} in {s.n_files} file(s), "
            f"{format_bytes(s.referenced_nbytes)}, chunks={_chunks_text(self.metadata)}, "
            f"codecs={'+'.join(c.name for c in self.metadata.codecs)}>"
        )
        if len(text) > max_width:
            parts = [f"{s.n_references} refs", f"{s.n_files} file{'' if s.n_files == 1 else 's'}"]
            parts += [f"{s.n_missing} missing"] if s.n_missing else []
            parts += [f"{s.n_inline} inline"] if s.n_inline else []
            text = "·".join([*parts, format_bytes(s.referenced_nbytes)])
        return text if len(text) <= max_width else text[: max(max_width - 3, 0)] + "..."

    def _repr_html_(self) -> str:
        """The notebook view of the wrapped array (xarray shows it as the variable's data)."""
        return array_html(self._virtual, self._name)

    # ---- numpy protocols -----------------------------------------------------------------

    def __array_function__(
        self,
        func: Callable[..., Any],
        types: Sequence[type],
        args: Sequence[Any],
        kwargs: dict[str, Any],
    ) -> Any:
        handler = _HANDLED.get(func)
        if handler is None:
            raise _needs_values(f"numpy.{func.__name__}")
        return handler(*args, **kwargs)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if method == "__call__" and len(inputs) == 1 and not kwargs:
            kind = self.dtype.kind
            if (ufunc is np.isnan and kind in "fcmM") or (ufunc is np.isnat and kind in "mM"):
                return NullMask(self.shape, source=self)
            if ufunc is np.isnan and kind in "biu":
                return np.zeros(self.shape, dtype=bool)  # integers are never NaN
        raise _needs_values(f"numpy.{ufunc.__name__}")

    def __array__(self, dtype: Any = None, copy: Any = None) -> npt.NDArray[Any]:
        raise _needs_values("converting to a numpy array")

    def astype(self, dtype: npt.DTypeLike, *, copy: bool = True) -> ManifestArray:
        """Only casts that keep the dtype, as numpy decides them; others change values.

        Like numpy, a flexible-width target of the same kind keeps the width: ``|S5``
        cast to ``"S"`` (or ``bytes``) stays ``|S5``, which is what xarray asks for when
        it joins string variables. ``|S5`` to ``"S10"`` or ``"U"`` is refused.

        Raises
        ------
        vzcore.DtypeMismatch
            If numpy's cast would give another dtype.
        """
        try:
            cast = np.empty(0, self.dtype).astype(dtype).dtype  # numpy's resulting dtype
        except (TypeError, ValueError) as err:
            raise vc.DtypeMismatch(
                f"cannot cast a virtual array of dtype {self.dtype} to {dtype!r}: {err}"
            ) from err
        if cast == self.dtype:
            return self
        name = "a virtual array " if self._name is None else f"variable {self._name!r} "
        raise vc.DtypeMismatch(
            f"cannot cast {name}(dtype {self.dtype}, in {vc.algebra.source_label(self._virtual)}) "
            f"to {cast}: the chunks on disk decode to their own dtype, and the "
            "files being combined store it with different dtypes; load the variable "
            "(loadable_variables=[...]) or drop it (drop_variables=[...])"
        )

    def copy(self) -> ManifestArray:
        """Refused: a copy is of values, which a virtual array does not hold.

        ``dask.array.from_array`` copies its input first, so this is where
        ``Dataset.chunk`` / ``DataArray.chunk`` on a virtual variable is refused, instead
        of wrapping the references in dask and failing at compute time.

        Raises
        ------
        VirtualChunkingError
            Always; the message names the variable and the ways out.
        """
        name = "a virtual variable" if self._name is None else f"virtual variable {self._name!r}"
        raise VirtualChunkingError(
            f"cannot copy or chunk {name} with dask (Dataset.chunk, DataArray.chunk, "
            "dask.array.from_array): it holds chunk references, not values. For smaller "
            "virtual chunks use ds.vz.subchunk(dim=length) (chunks stored raw only); to "
            "compute with dask use ds.vz.to_dataset(chunks=...), which reads the values"
        )

    def transpose(self, *axes: Any) -> ManifestArray:
        order = tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], Sequence) else axes
        order = order or tuple(reversed(range(self.ndim)))  # numpy's default: reverse
        if tuple(a % self.ndim for a in order) == tuple(range(self.ndim)):
            return self
        raise VirtualValuesError(
            f"cannot transpose a virtual array to axes {order}: the chunks are stored in "
            f"the order {tuple(range(self.ndim))}; keep the dimension order of the files"
        )

    def __getitem__(self, key: Any) -> ManifestArray:
        with _about([self]):
            return self._derived(_index(self._virtual, key))

    def __eq__(self, other: object) -> npt.NDArray[np.bool_]:  # type: ignore[override]
        """Element-wise: True where both arrays reference the very same chunk bytes."""
        if not isinstance(other, ManifestArray):
            raise _needs_values("comparing a virtual array with values")
        if other.shape != self.shape:
            raise ValueError(f"cannot compare shapes {self.shape} and {other.shape}")
        if other.metadata != self.metadata:
            return np.zeros(self.shape, dtype=bool)
        same = _same_references(self.manifest, other.manifest)
        grid = self.metadata.chunk_grid
        for axis in range(self.ndim):
            same = np.repeat(same, grid.axis_lengths(self.shape, axis), axis=axis)
        return same[tuple(slice(0, s) for s in self.shape)]

    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        raise _needs_values("the truth value of a virtual array")


def _refuse_operator(name: str) -> Callable[..., Any]:
    def operator(self: ManifestArray, *args: Any) -> Any:
        raise _needs_values(f"the operator {name}")

    operator.__name__ = name
    return operator


for _name in (
    "__add__ __radd__ __sub__ __rsub__ __mul__ __rmul__ __truediv__ __rtruediv__ "
    "__floordiv__ __rfloordiv__ __mod__ __rmod__ __pow__ __rpow__ __matmul__ __rmatmul__ "
    "__and__ __rand__ __or__ __ror__ __xor__ __rxor__ __lshift__ __rshift__ "
    "__lt__ __le__ __gt__ __ge__ __ne__ __neg__ __pos__ __abs__ __invert__ "
    "__float__ __int__ __complex__ __index__"
).split():
    setattr(ManifestArray, _name, _refuse_operator(_name))


class NullMask:
    """Where a virtual array's values are missing (NaN, NaT): unknown without them.

    ``np.isnan`` of a `ManifestArray` (xarray's ``isnull``) gives one. It knows no
    element, so it answers only where the result does not depend on it:

    - ``mask & mask``, ``mask | mask`` and ``~mask`` are masks again;
    - ``known | mask`` is all True when ``known`` is all True, and ``known & mask``
      all False when ``known`` is all False (True | x, False & x);
    - ``np.where(~np.isnan(a), a, b)`` and ``np.where(np.isnan(a), b, a)`` are ``a``
      when ``b`` references the same chunk bytes as ``a`` (same values, same NaN);
    - ``mask.astype(bool)`` is the mask.

    Everything else (``np.all(mask)``, ``np.asarray``, ``bool``, ``known | mask``
    with some False) needs the values and raises `VirtualValuesError`.

    >>> import numpy as np, vzcore as vc
    >>> meta = vc.ArrayMetadata(shape=(4,), chunk_grid=(2,), dtype="f4")
    >>> a = ManifestArray(vc.VirtualArray(meta, vc.ChunkManifest.empty((2,))))
    >>> b = ManifestArray(vc.VirtualArray(meta, vc.ChunkManifest.empty((2,))))
    >>> ((a == b) | (np.isnan(a) & np.isnan(b))).all()  # how xarray's equals compares
    np.True_
    """

    __slots__ = ("_negated", "_shape", "_source")

    def __init__(
        self, shape: Sequence[int], *, source: ManifestArray | None = None, negated: bool = False
    ) -> None:
        self._shape = tuple(int(s) for s in shape)
        self._source = source  # the array whose isnan this is; None once combined
        self._negated = negated

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def dtype(self) -> np.dtype[np.bool_]:
        return np.dtype(bool)

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def size(self) -> int:
        return int(np.prod(self._shape))

    def __repr__(self) -> str:
        what = "notnull" if self._negated else "isnull"
        of = "a virtual array" if self._source is not None else "virtual arrays"
        return f"NullMask<{what} of {of}, shape={self._shape}, unknown without values>"

    def _repr_inline_(self, max_width: int) -> str:
        text = "NullMask<unknown without values>"
        return text if len(text) <= max_width else text[: max(max_width - 3, 0)] + "..."

    def astype(self, dtype: npt.DTypeLike, *, copy: bool = True) -> NullMask:
        if np.dtype(dtype) == np.bool_:
            return self
        raise _needs_values(f"casting a missing-value mask to {np.dtype(dtype)}")

    def __invert__(self) -> NullMask:
        return NullMask(self._shape, source=self._source, negated=not self._negated)

    def __and__(self, other: Any) -> Any:
        return self._combine(np.logical_and, self, other)

    def __rand__(self, other: Any) -> Any:
        return self._combine(np.logical_and, other, self)

    def __or__(self, other: Any) -> Any:
        return self._combine(np.logical_or, self, other)

    def __ror__(self, other: Any) -> Any:
        return self._combine(np.logical_or, other, self)

    @staticmethod
    def _combine(ufunc: np.ufunc, *inputs: Any) -> Any:
        shape = np.broadcast_shapes(*(getattr(x, "shape", np.shape(x)) for x in inputs))
        known = [x for x in inputs if not isinstance(x, NullMask)]
        if not known:
            return NullMask(shape)
        if any(isinstance(x, ManifestArray) for x in known):
            raise _needs_values(f"numpy.{ufunc.__name__} of a virtual array")
        value = np.asarray(known[0])
        absorbing = ufunc is np.logical_or  # True | x is True, False & x is False
        if value.dtype == np.bool_ and bool(np.all(value == absorbing)):
            return np.full(shape, absorbing)
        raise _needs_values(f"numpy.{ufunc.__name__} with a missing-value mask")

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if method == "__call__" and not kwargs:
            if ufunc in (np.logical_not, np.invert) and len(inputs) == 1:
                return ~self
            if ufunc in (np.logical_and, np.bitwise_and) and len(inputs) == 2:
                return self._combine(np.logical_and, *inputs)
            if ufunc in (np.logical_or, np.bitwise_or) and len(inputs) == 2:
                return self._combine(np.logical_or, *inputs)
        raise _needs_values(f"numpy.{ufunc.__name__} of a missing-value mask")

    def __array_function__(
        self,
        func: Callable[..., Any],
        types: Sequence[type],
        args: Sequence[Any],
        kwargs: dict[str, Any],
    ) -> Any:
        if func is np.where and len(args) == 3 and not kwargs:
            return _where(*args)
        if func is np.shape:
            return self._shape
        if func is np.ndim:
            return self.ndim
        raise _needs_values(f"numpy.{func.__name__} of a missing-value mask")

    def __array__(self, dtype: Any = None, copy: Any = None) -> npt.NDArray[Any]:
        raise _needs_values("converting a missing-value mask to a numpy array")

    def __bool__(self) -> bool:
        raise _needs_values("the truth value of a missing-value mask")

    __hash__ = None  # type: ignore[assignment]


@_implements(np.array_equal)
def _array_equal(a1: Any, a2: Any, equal_nan: bool = False) -> bool:
    """True for the same references (NaN equal to NaN only with ``equal_nan``);
    other references need the values to tell."""
    if isinstance(a1, ManifestArray) and isinstance(a2, ManifestArray):
        if a1.shape != a2.shape:
            return False
        if _same_chunks(a1, a2) and (equal_nan or a1.dtype.kind not in "fcmM"):
            return True
    raise _needs_values("numpy.array_equal of other chunk references")


@_implements(np.where)
def _where(condition: Any, x: Any = None, y: Any = None) -> Any:
    """The ``np.where(condition, x, y)`` that need no values (xarray's ``fillna``).

    ``where(notnull(a), a, b)`` and ``where(isnull(a), b, a)`` are ``a`` when ``b``
    references the same bytes as ``a``; a known condition that is all True picks
    ``x``, all False ``y``, and with ``x`` and ``y`` the same bytes either is ``x``.
    """
    if isinstance(condition, NullMask):
        if condition._source is not None:
            kept, other = (x, y) if condition._negated else (y, x)
            if (
                isinstance(kept, ManifestArray)
                and isinstance(other, ManifestArray)
                and _same_chunks(kept, condition._source)
                and _same_chunks(kept, other)
            ):
                return kept
        raise _needs_values("numpy.where with a missing-value mask (e.g. fillna)")
    if not isinstance(condition, ManifestArray) and x is not None and y is not None:
        known = np.asarray(condition)
        shape = np.broadcast_shapes(known.shape, np.shape(x), np.shape(y))
        dtype = np.result_type(*(v.dtype if isinstance(v, ManifestArray) else v for v in (x, y)))
        for pick, other, picked in ((x, y, bool(np.all(known))), (y, x, not np.any(known))):
            if (
                isinstance(pick, ManifestArray)
                and pick.shape == shape
                and pick.dtype == dtype
                and (picked or (isinstance(other, ManifestArray) and _same_chunks(pick, other)))
            ):
                return pick
    raise _needs_values("numpy.where")


def _same_chunks(a: ManifestArray, b: ManifestArray) -> bool:
    """Same metadata and the very same chunk references: the same values, NaN included."""
    if a is b or a.virtual is b.virtual:
        return True
    return bool(
        a.shape == b.shape
        and a.metadata == b.metadata
        and _same_references(a.manifest, b.manifest).all()
    )


def _same_references(a: vc.ChunkManifest, b: vc.ChunkManifest) -> npt.NDArray[np.bool_]:
    paths_a, offsets_a, lengths_a = a.to_arrays()
    paths_b, offsets_b, lengths_b = b.to_arrays()
    same: npt.NDArray[np.bool_] = (
        (paths_a == paths_b) & (offsets_a == offsets_b) & (lengths_a == lengths_b)
    )
    data_a, data_b = a.inline_data, b.inline_data
    if data_a is None and data_b is None:
        return same
    # Inline rows have no path: the same only if both are inline with equal bytes.
    inline_a = a.inline_mask().reshape(a.grid)
    same &= inline_a == b.inline_mask().reshape(b.grid)
    if data_a is not None and data_b is not None:
        equal = pc.fill_null(pc.equal(data_a, data_b), False).to_numpy(zero_copy_only=False)
        same &= ~inline_a | np.asarray(equal, dtype=bool).reshape(a.grid)
    return same


def _virtual(x: Any) -> vc.VirtualArray:
    if isinstance(x, ManifestArray):
        return x.virtual
    raise VirtualValuesError(
        f"cannot combine a virtual array with {type(x).__name__}: load every variable that is "
        "combined with in-memory values (loadable_variables=)"
    )


def _chunks_text(metadata: vc.ArrayMetadata) -> str:
    """The chunk shape, or a rectilinear grid's chunk lengths."""
    if metadata.is_regular:
        return str(metadata.chunk_shape)
    return describe_grid(metadata.chunk_grid).removeprefix("chunk lengths ")


def _index(array: vc.VirtualArray, key: Any) -> vc.VirtualArray:
    """Basic indexing restricted to what keeps whole chunks."""
    items = list(key) if isinstance(key, tuple) else [key]
    for item in items:
        if not (item is None or item is Ellipsis or isinstance(item, slice | int | np.integer)):
            raise VirtualValuesError(
                f"indexing a virtual array with {type(item).__name__} needs the values; "
                "only slices on chunk boundaries, integers along axes of chunk length 1, "
                "'...' and None are possible"
            )
    ellipses = [i for i, item in enumerate(items) if item is Ellipsis]
    if len(ellipses) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    n_real = sum(item is not None and item is not Ellipsis for item in items)
    if n_real > array.ndim:
        raise IndexError(f"too many indices for a {array.ndim}-d array")
    if ellipses:
        items[ellipses[0] : ellipses[0] + 1] = [slice(None)] * (array.ndim - n_real)
    else:
        items += [slice(None)] * (array.ndim - n_real)
    slices: list[slice] = []
    new_axes: list[int] = []  # positions in the result
    dropped: list[int] = []  # axes of the input
    kept = 0
    for item in items:
        if item is None:
            new_axes.append(kept + len(new_axes))
        elif isinstance(item, slice):
            slices.append(item)
            kept += 1
        else:
            axis, length = len(slices), array.shape[len(slices)]
            if not -length <= int(item) < length:
                raise IndexError(
                    f"index {item} is out of bounds for axis {axis} with size {length}"
                )
            position = int(item) % length
            slices.append(slice(position, position + 1))
            dropped.append(axis)
    result = vc.select_slices(array, slices)
    for axis in reversed(dropped):
        result = vc.squeeze(result, axis=axis)
    for axis in new_axes:
        result = vc.expand_dims(result, axis=axis)
    return result


# ---- the numpy functions xarray uses when combining --------------------------------------


@contextmanager
def _about(arrays: Sequence[Any]) -> Iterator[None]:
    """Name the variable in any `VirtualizationError` raised inside."""
    name = next((a.name for a in arrays if isinstance(a, ManifestArray) and a.name), None)
    try:
        yield
    except VirtualizationError as err:
        if name is None or str(err).startswith("variable "):
            raise
        problems = [f"variable {name!r}: {p}" for p in err.problems]
        try:
            named = type(err)(f"variable {name!r}: {err}", problems=problems)
        except TypeError:  # an error with fields of its own (LimitExceededError): as it is
            raise err from None
        raise named from err


def _joined(arrays: Sequence[Any], virtual: vc.VirtualArray) -> ManifestArray:
    """A result of joining ``arrays``: the first name, every input's source fingerprints."""
    name = next((a.name for a in arrays if isinstance(a, ManifestArray) and a.name), None)
    sources: dict[str, vc.SourceFingerprint] = {}
    for a in arrays:
        if isinstance(a, ManifestArray):
            sources.update(a.sources)
    return ManifestArray(virtual, name=name, sources=sources)


@_implements(np.concatenate)
def _concatenate(arrays: Sequence[Any], axis: int = 0, **kwargs: Any) -> ManifestArray:
    _no_out(kwargs)
    with _about(arrays):
        return _joined(arrays, vc.concat([_virtual(a) for a in arrays], axis=axis))


@_implements(np.stack)
def _stack(arrays: Sequence[Any], axis: int = 0, **kwargs: Any) -> ManifestArray:
    _no_out(kwargs)
    with _about(arrays):
        return _joined(arrays, vc.stack([_virtual(a) for a in arrays], axis=axis))


@_implements(np.expand_dims)
def _expand_dims(a: Any, axis: int | Sequence[int]) -> ManifestArray:
    result = _virtual(a)
    with _about([a]):
        for ax in sorted([axis] if isinstance(axis, int) else axis):
            result = vc.expand_dims(result, axis=ax)
    return _joined([a], result)


@_implements(np.broadcast_to)
def _broadcast_to(array: Any, shape: Sequence[int], subok: bool = False) -> ManifestArray:
    with _about([array]):
        return _joined([array], vc.broadcast_to(_virtual(array), tuple(shape)))


@_implements(np.result_type)
def _result_type(*arrays_and_dtypes: Any) -> np.dtype[Any]:
    return np.result_type(
        *(x.dtype if isinstance(x, ManifestArray) else x for x in arrays_and_dtypes)
    )


@_implements(np.shape)
def _shape(a: Any) -> tuple[int, ...]:
    return tuple(a.shape)


@_implements(np.ndim)
def _ndim(a: Any) -> int:
    return int(a.ndim)


@_implements(np.transpose)
def _transpose(a: Any, axes: Sequence[int] | None = None) -> ManifestArray:
    return _as_manifest_array(a).transpose(*(axes or ()))


def _as_manifest_array(x: Any) -> ManifestArray:
    return x if isinstance(x, ManifestArray) else ManifestArray(_virtual(x))


@_implements(np.full_like)
def _full_like(a: Any, fill_value: Any, dtype: Any = None, **kwargs: Any) -> npt.NDArray[Any]:
    # Needs only the shape: xarray asks for all-False masks of integer arrays this way.
    return np.full(a.shape, fill_value, dtype=dtype if dtype is not None else a.dtype)


def _no_out(kwargs: dict[str, Any]) -> None:
    if kwargs.get("out") is not None:
        raise VirtualValuesError("out= is not supported for virtual arrays")
