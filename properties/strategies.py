"""Hypothesis strategies for vzcore values: grids, manifests, metadata, arrays, groups.

Everything is kept small (at most 4 axes of at most a few chunks) so that each
property runs its examples in well under a second.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import vzcore as vc

__all__ = [
    "BYTE_COUNTS",
    "DTYPES",
    "MISSING",
    "PERTURBATIONS",
    "RENAME_TARGETS",
    "URLS",
    "ConcatCase",
    "DenseArrays",
    "PathRenamer",
    "PerturbedCase",
    "apply_renamer",
    "array_metadata",
    "attributes",
    "broadcast_cases",
    "chunk_grids",
    "chunk_manifests",
    "codec_pipelines",
    "concat_cases",
    "dense_arrays",
    "dimension_names",
    "dtypes",
    "fill_values",
    "loaded_arrays",
    "manifest_for",
    "noncanonical_nans",
    "path_renamers",
    "perturbed_concat_cases",
    "source_fingerprints",
    "split_cases",
    "stack_cases",
    "virtual_arrays",
    "virtual_groups",
]

DenseArrays: TypeAlias = tuple[npt.NDArray[Any], npt.NDArray[np.uint64], npt.NDArray[np.uint64]]
"""``(paths, offsets, lengths)`` shaped like a chunk grid, as `ChunkManifest.to_arrays` gives."""

ConcatCase: TypeAlias = tuple[list[vc.VirtualArray], int]
"""Arrays that can be concatenated, and the axis to concatenate them along."""

MISSING = ""
"""The path of a missing chunk in dense arrays."""

URLS: tuple[str, ...] = (
    "file:///data/f0.nc",
    "file:///data/f1.nc",
    "file:///data/f3.nc",
    "s3://bucket/x/y.nc",
    "s3://bucket/x/z.nc",
    "https://example.org/archive/2020.nc",
)
"""The small alphabet of file URLs chunk references point into."""

RENAME_TARGETS: tuple[str, ...] = (
    *URLS,
    "s3://mirror/f0.nc",
    "s3://mirror/merged.nc",
    "gs://other/bucket/file.h5",
)
"""What a rename may send a path to: the URLs themselves (swaps, merges) and new ones."""

BYTE_COUNTS = st.one_of(
    st.integers(min_value=0, max_value=2**16),
    st.integers(min_value=2**63 - 8, max_value=2**63 + 8),
    st.integers(min_value=0, max_value=2**64 - 1),
)
"""Offsets and lengths: the whole uint64 range, with small values and values near 2**63."""

DTYPES: tuple[str, ...] = (
    "|b1",
    "|i1",
    "|u1",
    "<i2",
    ">i2",
    "<u2",
    "<i4",
    ">u4",
    "<i8",
    ">u8",
    "<f2",
    ">f2",
    "<f4",
    ">f4",
    "<f8",
    ">f8",
    "<c8",
    ">c16",
)
"""Stored dtypes, big-endian ones included (the decoded dtype is always native)."""


# ---- grids and manifests -----------------------------------------------------------------


def chunk_grids(
    *, min_ndim: int = 0, max_ndim: int = 4, max_side: int = 3
) -> st.SearchStrategy[tuple[int, ...]]:
    """Chunk grid shapes: 0 to 4 axes of 0 to ``max_side`` chunks."""
    return hnp.array_shapes(min_dims=min_ndim, max_dims=max_ndim, min_side=0, max_side=max_side)


@st.composite
def dense_arrays(draw: st.DrawFn, grid: tuple[int, ...]) -> DenseArrays:
    """Dense ``(paths, offsets, lengths)`` in ``grid`` shape; ``""`` paths are missing chunks.

    Paths come as numpy ``StringDType``, ``<U`` or ``object`` arrays, so every path
    container `ChunkManifest.from_arrays` accepts is exercised.
    """
    n_chunks = math.prod(grid)
    paths = draw(st.lists(st.sampled_from((*URLS, MISSING)), min_size=n_chunks, max_size=n_chunks))
    offsets = draw(st.lists(BYTE_COUNTS, min_size=n_chunks, max_size=n_chunks))
    lengths = draw(st.lists(BYTE_COUNTS, min_size=n_chunks, max_size=n_chunks))
    path_dtype = draw(st.sampled_from([np.dtypes.StringDType(), np.dtype("U"), np.dtype(object)]))
    return (
        np.array(paths, dtype=path_dtype).reshape(grid),
        np.array(offsets, dtype=np.uint64).reshape(grid),
        np.array(lengths, dtype=np.uint64).reshape(grid),
    )


@st.composite
def manifest_for(draw: st.DrawFn, grid: tuple[int, ...]) -> vc.ChunkManifest:
    """A manifest of exactly ``grid``, built from dense arrays (or all missing)."""
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        return vc.ChunkManifest.empty(grid)
    paths, offsets, lengths = draw(dense_arrays(grid))
    return vc.ChunkManifest.from_arrays(paths=paths, offsets=offsets, lengths=lengths)


@st.composite
def chunk_manifests(draw: st.DrawFn, *, min_ndim: int = 0, max_ndim: int = 4) -> vc.ChunkManifest:
    """Manifests of any small grid, lengths 0 included."""
    return draw(manifest_for(draw(chunk_grids(min_ndim=min_ndim, max_ndim=max_ndim))))


# ---- metadata ----------------------------------------------------------------------------


@functools.cache
def dtypes() -> st.SearchStrategy[np.dtype[Any]]:
    return st.sampled_from(DTYPES).map(np.dtype)


@functools.cache
def fill_values(dtype: np.dtype[Any]) -> st.SearchStrategy[Any]:
    """``None`` (the dtype's default), any value of ``dtype``, and NaN for inexact dtypes.

    The only NaN is the canonical quiet NaN: zarr writes every NaN as ``"NaN"``, so
    the sign and payload of other NaNs do not survive a document (see
    `noncanonical_nans` and the xfail tests that use it).
    """
    native = dtype.newbyteorder("=")
    choices = [st.none(), hnp.from_dtype(native, allow_nan=False)]
    if native.kind in "fc":
        choices.append(st.just(float("nan")))
    return st.one_of(*choices)


def noncanonical_nans(dtype: np.dtype[Any]) -> st.SearchStrategy[np.floating[Any]]:
    """NaNs of a float ``dtype`` with the sign bit set or a payload (``-np.nan`` is one)."""
    native = np.dtype(dtype).newbyteorder("=")
    bits = native.itemsize * 8
    mantissa_bits = np.finfo(native).nmant
    exponent = ((1 << (bits - 1 - mantissa_bits)) - 1) << mantissa_bits
    quiet = 1 << (mantissa_bits - 1)
    unsigned = np.dtype(f"u{native.itemsize}")

    def from_bits(value: int) -> np.floating[Any]:
        nan: np.floating[Any] = np.array(value, dtype=unsigned).view(native)[()]
        return nan

    sign = 1 << (bits - 1)
    payloads = st.integers(1, quiet - 1)
    return st.one_of(
        st.just(from_bits(sign | exponent | quiet)),
        payloads.map(lambda p: from_bits(exponent | quiet | p)),
        payloads.map(lambda p: from_bits(sign | exponent | quiet | p)),
    )


_COMPRESSION_LEVELS = st.integers(min_value=0, max_value=9)


@functools.cache
def _codec(dtype: np.dtype[Any]) -> st.SearchStrategy[dict[str, Any]]:
    # blosc's typesize and shuffle's elementsize are the item size, as a parser sets them:
    # zarr v2 has no place for another typesize.
    return st.one_of(
        st.builds(
            lambda level: {"name": "numcodecs.zlib", "configuration": {"level": level}},
            _COMPRESSION_LEVELS,
        ),
        st.builds(
            lambda level: {"name": "gzip", "configuration": {"level": level}},
            _COMPRESSION_LEVELS,
        ),
        st.builds(
            lambda level: {"name": "zstd", "configuration": {"level": level, "checksum": False}},
            _COMPRESSION_LEVELS,
        ),
        st.builds(
            lambda cname, clevel, shuffle: {
                "name": "blosc",
                "configuration": {
                    "cname": cname,
                    "clevel": clevel,
                    "shuffle": shuffle,
                    "typesize": dtype.itemsize,
                    "blocksize": 0,
                },
            },
            st.sampled_from(["lz4", "zstd", "zlib"]),
            _COMPRESSION_LEVELS,
            st.sampled_from(["noshuffle", "shuffle", "bitshuffle"]),
        ),
        st.just({"name": "numcodecs.shuffle", "configuration": {"elementsize": dtype.itemsize}}),
    )


@functools.cache
def codec_pipelines(dtype: np.dtype[Any]) -> st.SearchStrategy[list[dict[str, Any]]]:
    """The codecs after ``bytes``: none, or one or two of zlib/gzip/zstd/blosc/shuffle.

    A shuffle comes first, as in files: after a compressor it cannot encode a chunk
    whose compressed length is no multiple of the item size (the Kerchunk writer
    refuses that pipeline, see tests/test_kerchunk_writer.py).
    """
    return st.lists(_codec(dtype), max_size=2).map(
        lambda codecs: sorted(codecs, key=lambda c: c["name"] != "numcodecs.shuffle")
    )


@functools.cache
def dimension_names(ndim: int) -> st.SearchStrategy[tuple[str | None, ...] | None]:
    names = st.sampled_from(["time", "lat", "lon", "x", "y", None])
    return st.one_of(st.none(), st.tuples(*[names] * ndim))


_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)


@functools.cache
def attributes() -> st.SearchStrategy[dict[str, Any]]:
    """Small JSON attributes (no NaN: a NaN attribute never equals itself)."""
    values = st.recursive(
        _JSON_SCALARS,
        lambda inner: (
            st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2)
        ),
        max_leaves=4,
    )
    return st.dictionaries(st.sampled_from(["units", "title", "scale", "n"]), values, max_size=2)


@st.composite
def array_metadata(
    draw: st.DrawFn,
    *,
    shape: Sequence[int] | None = None,
    chunk_shape: Sequence[int] | None = None,
    dtype: np.dtype[Any] | None = None,
    min_ndim: int = 0,
    max_ndim: int = 4,
) -> vc.ArrayMetadata:
    """Metadata whose ``bytes`` codec carries the stored dtype's byte order.

    ``shape`` and ``chunk_shape`` default to 0-4 axes of chunks of 1-3 items, with
    lengths from 0 to a few chunks (edge chunks may be partial).
    """
    if chunk_shape is None:
        ndim = len(shape) if shape is not None else draw(st.integers(min_ndim, max_ndim))
        chunk_shape = draw(st.tuples(*[st.integers(1, 3)] * ndim))
    if shape is None:
        shape = tuple(draw(st.integers(0, 3 * c)) for c in chunk_shape)
    stored = dtype if dtype is not None else draw(dtypes())
    return vc.ArrayMetadata.create(
        shape=shape,
        chunk_shape=chunk_shape,
        dtype=stored,
        fill_value=draw(fill_values(stored)),
        codecs=draw(codec_pipelines(stored)),
        dimension_names=draw(dimension_names(len(shape))),
        attributes=draw(attributes()),
    )


# ---- arrays ------------------------------------------------------------------------------


@st.composite
def virtual_arrays(
    draw: st.DrawFn,
    *,
    metadata: st.SearchStrategy[vc.ArrayMetadata] | None = None,
    min_ndim: int = 0,
    max_ndim: int = 4,
) -> vc.VirtualArray:
    """A virtual array: metadata and a manifest of its chunk grid."""
    if metadata is None:
        metadata = array_metadata(min_ndim=min_ndim, max_ndim=max_ndim)
    meta = draw(metadata)
    return vc.VirtualArray(meta, draw(manifest_for(meta.grid_shape)))


@st.composite
def loaded_arrays(draw: st.DrawFn, *, max_ndim: int = 3) -> vc.LoadedArray:
    """An in-memory array whose values match its metadata's shape and dtype."""
    meta = draw(array_metadata(max_ndim=max_ndim))
    data = draw(hnp.arrays(meta.dtype, meta.shape))
    return vc.LoadedArray(meta, data)


def _with_length(meta: vc.ArrayMetadata, axis: int, length: int) -> vc.ArrayMetadata:
    shape = list(meta.shape)
    shape[axis] = length
    return meta.evolve(shape=tuple(shape))


@st.composite
def concat_cases(
    draw: st.DrawFn,
    *,
    axis: int | None = None,
    min_size: int = 1,
    max_size: int = 4,
    max_ndim: int = 4,
) -> ConcatCase:
    """Arrays that differ only in their length along ``axis`` (and their manifests).

    All but the last end on a chunk boundary along ``axis``. ``axis`` is drawn
    (negative ones included) unless given, in which case the arrays have it.
    """
    min_ndim = 1 if axis is None else (axis + 1 if axis >= 0 else -axis)
    base = draw(array_metadata(min_ndim=min_ndim, max_ndim=max(max_ndim, min_ndim)))
    if axis is None:
        axis = draw(st.integers(-base.ndim, base.ndim - 1))
    chunk = base.chunk_shape[axis]
    n_arrays = draw(st.integers(min_size, max_size))
    lengths = [chunk * draw(st.integers(0, 2)) for _ in range(n_arrays - 1)]
    lengths.append(draw(st.integers(0, 2 * chunk + chunk - 1)))
    arrays = []
    for length in lengths:
        meta = _with_length(base, axis, length)
        arrays.append(vc.VirtualArray(meta, draw(manifest_for(meta.grid_shape))))
    return arrays, axis


@st.composite
def split_cases(draw: st.DrawFn) -> tuple[vc.VirtualArray, int, list[int]]:
    """An array, an axis, and sorted chunk indices along that axis to split it at."""
    array = draw(virtual_arrays(min_ndim=1))
    axis = draw(st.integers(-array.ndim, array.ndim - 1))
    n_chunks = array.manifest.grid[axis]
    cuts = draw(st.lists(st.integers(0, n_chunks), max_size=3))
    return array, axis, sorted(cuts)


@st.composite
def stack_cases(draw: st.DrawFn, *, max_size: int = 4) -> ConcatCase:
    """Arrays of one metadata (different manifests) and an axis of the stacked result."""
    meta = draw(array_metadata(max_ndim=3))
    n_arrays = draw(st.integers(1, max_size))
    arrays = [vc.VirtualArray(meta, draw(manifest_for(meta.grid_shape))) for _ in range(n_arrays)]
    axis = draw(st.integers(-(meta.ndim + 1), meta.ndim))
    return arrays, axis


@st.composite
def broadcast_cases(draw: st.DrawFn) -> tuple[vc.VirtualArray, tuple[int, ...]]:
    """An array and a shape it broadcasts to without rechunking.

    Only axes of length 1 in chunks of 1 change length; 0 to 2 new leading axes.
    """
    ndim = draw(st.integers(0, 3))
    chunk_shape = draw(st.tuples(*[st.sampled_from([1, 1, 2, 3])] * ndim))
    shape = tuple(draw(st.sampled_from([0, 1, 1, 2, 3 * c])) for c in chunk_shape)
    array = draw(virtual_arrays(metadata=array_metadata(shape=shape, chunk_shape=chunk_shape)))
    leading = draw(st.lists(st.integers(0, 3), max_size=2))
    target = [
        draw(st.integers(0, 3)) if length == 1 and chunk == 1 else length
        for length, chunk in zip(shape, chunk_shape, strict=True)
    ]
    return array, (*leading, *target)


# ---- renames -----------------------------------------------------------------------------


PathRenamer: TypeAlias = Callable[[str], str] | Mapping[str, str]


class _MappingRenamer:
    """A rename given as a callable (with a readable repr for failing examples)."""

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self.mapping = dict(mapping)

    def __call__(self, path: str) -> str:
        return self.mapping.get(path, path)

    def __repr__(self) -> str:
        return f"_MappingRenamer({self.mapping!r})"


def path_renamers(*, injective: bool = False) -> st.SearchStrategy[PathRenamer]:
    """Renames as a mapping or a callable; many-to-one unless ``injective``."""
    targets = st.sampled_from(RENAME_TARGETS)
    if injective:
        # A bijection of the targets, restricted to the URLs: swaps and moves, no merges.
        mappings = st.permutations(RENAME_TARGETS).map(
            lambda perm: dict(zip(RENAME_TARGETS, perm, strict=True))
        )
    else:
        mappings = st.dictionaries(st.sampled_from(URLS), targets, max_size=len(URLS))
    return st.one_of(mappings, mappings.map(_MappingRenamer))


def apply_renamer(renamer: PathRenamer, path: str) -> str:
    """What ``renamer`` does to one path (a mapping keeps paths it lacks)."""
    return renamer.get(path, path) if isinstance(renamer, Mapping) else renamer(path)


# ---- groups ------------------------------------------------------------------------------


@functools.cache
def source_fingerprints() -> st.SearchStrategy[vc.SourceFingerprint]:
    return st.builds(
        vc.SourceFingerprint,
        size=st.none() | st.integers(0, 2**40),
        last_modified=st.none() | st.sampled_from(["2024-01-02T03:04:05+00:00"]),
        etag=st.none() | st.text("0123456789abcdef", min_size=1, max_size=8),
    )


_NODE_NAMES = ("t", "u", "v", "air", "lat", "sub", "g2")


@st.composite
def virtual_groups(draw: st.DrawFn, *, max_depth: int = 2, loaded: bool = True) -> vc.VirtualGroup:
    """Small group trees: up to 3 arrays (virtual, sometimes loaded) and 2 subgroups a level."""
    names = draw(st.lists(st.sampled_from(_NODE_NAMES), unique=True, max_size=4))
    n_groups = draw(st.integers(0, min(2, len(names)))) if max_depth > 0 else 0
    array_names, group_names = names[n_groups:], names[:n_groups]
    array_strategy: st.SearchStrategy[vc.VirtualArray | vc.LoadedArray] = virtual_arrays(max_ndim=2)
    if loaded:
        array_strategy = st.one_of(array_strategy, loaded_arrays(max_ndim=2))
    return vc.VirtualGroup(
        arrays={name: draw(array_strategy) for name in array_names},
        groups={
            name: draw(virtual_groups(max_depth=max_depth - 1, loaded=loaded))
            for name in group_names
        },
        attributes=draw(attributes()),
        sources=draw(st.dictionaries(st.sampled_from(URLS), source_fingerprints(), max_size=3)),
    )


# ---- perturbations -----------------------------------------------------------------------


PERTURBATIONS: tuple[str, ...] = (
    "dtype",
    "chunk_shape",
    "codecs",
    "fill_value",
    "other_axis_length",
    "partial_chunk",
    "dimension_names",
)
"""The fields `perturbed_concat_cases` may change in one array of a compatible list."""

PerturbedCase: TypeAlias = tuple[list[vc.VirtualArray], int, int, str | None]
"""Arrays, the concat axis, the index of the changed array, and the field changed (or None)."""


def _rebuilt_with(draw: st.DrawFn, meta: vc.ArrayMetadata) -> vc.VirtualArray:
    return vc.VirtualArray(meta, draw(manifest_for(meta.grid_shape)))


def _compressors(meta: vc.ArrayMetadata) -> list[dict[str, Any]]:
    return [c.to_dict() for c in meta.codecs if c.name != "bytes"]


def _perturb(
    draw: st.DrawFn, array: vc.VirtualArray, axis: int, field: str
) -> vc.VirtualArray | None:
    """``array`` with ``field`` really changed, or None when that field cannot change."""
    meta = array.metadata
    ndim = meta.ndim
    if field == "dtype":
        new_dtype = draw(dtypes().filter(lambda d: d.newbyteorder("=") != meta.dtype))
        changed = vc.ArrayMetadata.create(
            shape=meta.shape,
            chunk_shape=meta.chunk_shape,
            dtype=new_dtype,
            codecs=_compressors(meta),
            dimension_names=meta.dimension_names,
            attributes=meta.attributes,
        )
        return vc.VirtualArray(changed, array.manifest)
    if field == "chunk_shape":
        # Along the concat axis chunk lengths may differ (a rectilinear result).
        others = [i for i in range(ndim) if i != axis % ndim]
        if not others:
            return None
        target = draw(st.sampled_from(others))
        length = draw(st.integers(1, 4).filter(lambda c: c != meta.chunk_shape[target]))
        return _rebuilt_with(
            draw, meta.evolve(chunk_grid=meta.chunk_grid.replace_axis(target, length))
        )
    if field == "codecs":
        pipeline = draw(
            codec_pipelines(meta.dtype)
            .map(lambda c: meta.evolve(codecs=[*meta.codecs[:1], *c]))
            .filter(lambda m: m.codecs != meta.codecs)
        )
        return vc.VirtualArray(pipeline, array.manifest)
    if field == "fill_value":
        stored = meta.dtype.newbyteorder(">" if meta.endian == "big" else "<")
        changed = draw(
            fill_values(stored)
            .map(lambda f: meta.evolve(fill_value=f))
            .filter(lambda m: m.fill_value.tobytes() != meta.fill_value.tobytes())
        )
        return vc.VirtualArray(changed, array.manifest)
    if field == "other_axis_length":
        others = [i for i in range(ndim) if i != axis % ndim]
        if not others:
            return None
        target = draw(st.sampled_from(others))
        shape = list(meta.shape)
        shape[target] = draw(st.integers(0, 6).filter(lambda s: s != meta.shape[target]))
        return _rebuilt_with(draw, meta.evolve(shape=tuple(shape)))
    if field == "partial_chunk":
        chunk = meta.chunk_shape[axis]
        raw_prefix = [c.name for c in meta.codecs] == ["bytes"] and all(
            c == 1 for c in meta.chunk_shape[: axis % ndim]
        )
        if chunk == 1 or raw_prefix:
            return None  # a raw partial chunk whose part is a prefix becomes a shorter chunk
        shape = list(meta.shape)
        shape[axis] += draw(st.integers(1, chunk - 1))
        return _rebuilt_with(draw, meta.evolve(shape=tuple(shape)))
    if field == "dimension_names":
        names = meta.dimension_names
        if names is None:
            return None
        target = draw(st.integers(0, ndim - 1))
        new_name = draw(
            st.sampled_from(["t", "z", "lev", None]).filter(lambda n: n != names[target])
        )
        renamed = (*names[:target], new_name, *names[target + 1 :])
        return vc.VirtualArray(meta.evolve(dimension_names=renamed), array.manifest)
    raise ValueError(f"unknown perturbation {field!r}")


@st.composite
def perturbed_concat_cases(draw: st.DrawFn) -> PerturbedCase:
    """A compatible list (2-4 arrays), maybe with one field of one array really changed.

    ``partial_chunk`` is only applied to an array before the last one; a field that
    cannot change for the drawn arrays (a 1-d array has no other axis) leaves the list
    compatible and reports None.
    """
    arrays, axis = draw(concat_cases(min_size=2))
    field = draw(st.sampled_from((None, *PERTURBATIONS)))
    if field is None:
        return arrays, axis, 0, None
    last = len(arrays) - (2 if field == "partial_chunk" else 1)
    index = draw(st.integers(0, last))
    changed = _perturb(draw, arrays[index], axis, field)
    if changed is None:
        return arrays, axis, 0, None
    return [*arrays[:index], changed, *arrays[index + 1 :]], axis, index, field


# ---- raw chunked arrays (subchunk) -------------------------------------------------------


RAW_DTYPES = ("<i4", ">i4", ">i2", "<u2", ">f8", "u1")
"""Stored dtypes of raw arrays, both byte orders."""


@st.composite
def raw_chunkings(
    draw: st.DrawFn, *, min_ndim: int = 1, max_ndim: int = 3
) -> tuple[tuple[int, ...], list[int | list[int]]]:
    """``(shape, per-axis chunks)``: regular axes whose last chunk may hang over the end,
    and rectilinear ones (lengths 1-4) whose last chunk may too."""
    shape: list[int] = []
    chunks: list[int | list[int]] = []
    for _ in range(draw(st.integers(min_ndim, max_ndim))):
        if draw(st.booleans()):
            length = draw(st.integers(1, 5))
            chunks.append(length)
            shape.append(draw(st.integers(1, 3 * length)))
        else:
            lengths = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
            chunks.append(lengths)
            shape.append(draw(st.integers(sum(lengths) - lengths[-1] + 1, sum(lengths))))
    return tuple(shape), chunks


@st.composite
def contiguous_requests(
    draw: st.DrawFn, meta: vc.ArrayMetadata, last: int | None = None
) -> dict[int, int]:
    """Piece lengths `vzcore.subchunk` must accept for ``meta``: axis ``last`` (drawn if
    None) split to any length, every axis before it split to 1, the axes after it whole."""
    if last is None:
        last = draw(st.integers(0, meta.ndim - 1))
    request: dict[int, int] = {}
    for axis in range(meta.ndim):
        longest = meta.chunk_grid.max_chunk_shape()[axis]
        if axis < last:
            if longest > 1 or draw(st.booleans()):
                request[axis] = 1
        elif axis == last:
            request[axis] = draw(st.integers(1, longest + 1))
        elif draw(st.booleans()):
            request[axis] = draw(st.integers(longest, longest + 2))
    return request
