"""Laws of `concat` and `stack`: associativity, split/concat identity, purity."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from properties.strategies import (
    ConcatCase,
    concat_cases,
    loaded_arrays,
    split_cases,
    stack_cases,
    virtual_arrays,
)

import vzcore as vc


def _piece(array: vc.VirtualArray, axis: int, first_chunk: int, stop_chunk: int) -> vc.VirtualArray:
    """Chunks ``first_chunk:stop_chunk`` of ``array`` along ``axis``, as an array of their own."""
    chunk, length = array.chunk_shape[axis], array.shape[axis]
    shape = list(array.shape)
    shape[axis] = min(stop_chunk * chunk, length) - min(first_chunk * chunk, length)
    window = [slice(None)] * array.ndim
    window[axis] = slice(first_chunk, stop_chunk)
    paths, offsets, lengths = (dense[tuple(window)] for dense in array.manifest.to_arrays())
    manifest = vc.ChunkManifest.from_arrays(paths=paths, offsets=offsets, lengths=lengths)
    return vc.VirtualArray(array.metadata.evolve(shape=tuple(shape)), manifest)


def _split(array: vc.VirtualArray, axis: int, cuts: Sequence[int]) -> list[vc.VirtualArray]:
    n_chunks = array.manifest.grid[axis]
    bounds = [0, *cuts, n_chunks]
    pieces = [_piece(array, axis, lo, hi) for lo, hi in itertools.pairwise(bounds)]
    # concat refuses a partial edge chunk before another array, even an empty one
    # (validate_compatible checks lengths, not whether anything follows): so the piece
    # holding the partial chunk stays last.
    last_nonempty = max((i for i, p in enumerate(pieces) if p.shape[axis]), default=0)
    return pieces[: last_nonempty + 1]


def _snapshot(array: vc.VirtualArray) -> tuple[Any, ...]:
    """Independent copies of everything an operation could change in place."""
    paths, offsets, lengths = array.manifest.to_arrays()
    return (
        array.metadata.to_zarr_v3(),
        array.manifest.grid,
        paths.copy(),
        offsets.copy(),
        lengths.copy(),
        array.manifest.table,
        tuple(pa.concat_arrays(c.chunks).to_pylist() for c in array.manifest.table.columns[1:]),
    )


def _rebuilt(array: vc.VirtualArray) -> vc.VirtualArray:
    """An equal array sharing no object with ``array``."""
    paths, offsets, lengths = (dense.copy() for dense in array.manifest.to_arrays())
    return vc.VirtualArray(
        vc.ArrayMetadata.from_zarr_v3(array.metadata.to_zarr_v3()),
        vc.ChunkManifest.from_arrays(paths=paths, offsets=offsets, lengths=lengths),
    )


def _assert_untouched(array: vc.VirtualArray, before: tuple[Any, ...]) -> None:
    zarr_json, grid, paths, offsets, lengths, table, columns = before
    assert array.metadata.to_zarr_v3() == zarr_json
    assert array.manifest.grid == grid
    now_paths, now_offsets, now_lengths = array.manifest.to_arrays()
    np.testing.assert_array_equal(now_paths, paths)
    np.testing.assert_array_equal(now_offsets, offsets)
    np.testing.assert_array_equal(now_lengths, lengths)
    assert array.manifest.table is table
    assert columns == tuple(
        pa.concat_arrays(c.chunks).to_pylist() for c in array.manifest.table.columns[1:]
    )


# ---- associativity -----------------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1])
@given(data=st.data())
def test_concat_is_associative(axis: int, data: st.DataObject) -> None:
    (a, b, c), _ = data.draw(concat_cases(axis=axis, min_size=3, max_size=3))
    left = vc.concat([vc.concat([a, b], axis=axis), c], axis=axis)
    right = vc.concat([a, vc.concat([b, c], axis=axis)], axis=axis)
    flat = vc.concat([a, b, c], axis=axis)
    assert left == flat
    assert right == flat


@given(concat_cases(min_size=2))
def test_concat_regroups_any_prefix(case: ConcatCase) -> None:
    arrays, axis = case
    flat = vc.concat(arrays, axis=axis)
    for cut in range(1, len(arrays)):
        head = vc.concat(arrays[:cut], axis=axis)
        assert vc.concat([head, *arrays[cut:]], axis=axis) == flat


# ---- split and identity ------------------------------------------------------------------


@given(split_cases())
def test_concat_of_split_is_identity(case: tuple[vc.VirtualArray, int, list[int]]) -> None:
    array, axis, cuts = case
    pieces = _split(array, axis, cuts)
    assert sum(p.shape[axis] for p in pieces) == array.shape[axis]
    assert vc.concat(pieces, axis=axis) == array


@given(data=st.data())
def test_single_element_concat_is_identity(data: st.DataObject) -> None:
    array = data.draw(virtual_arrays(min_ndim=1))
    axis = data.draw(st.integers(-array.ndim, array.ndim - 1))
    assert vc.concat([array], axis=axis) == array


@given(data=st.data())
def test_single_element_concat_of_loaded_array_is_identity(data: st.DataObject) -> None:
    array = data.draw(loaded_arrays().filter(lambda a: a.ndim > 0))
    axis = data.draw(st.integers(-array.ndim, array.ndim - 1))
    # In-memory values have no stored chunks: a join gives them one chunk covering the
    # array, as `LoadedArray.from_numpy` does; everything else is kept.
    whole = tuple(max(s, 1) for s in array.shape)
    assert vc.concat([array], axis=axis) == vc.LoadedArray(
        array.metadata.evolve(chunk_grid=whole), array.data
    )


# ---- stack -------------------------------------------------------------------------------


@given(stack_cases())
def test_stack_is_concat_of_expand_dims(case: ConcatCase) -> None:
    arrays, axis = case
    expanded = [vc.expand_dims(a, axis=axis) for a in arrays]
    assert vc.stack(arrays, axis=axis) == vc.concat(expanded, axis=axis)


@given(stack_cases(max_size=1))
def test_stack_of_one_is_expand_dims(case: ConcatCase) -> None:
    arrays, axis = case
    assert vc.stack(arrays, axis=axis) == vc.expand_dims(arrays[0], axis=axis)


# ---- purity ------------------------------------------------------------------------------


@given(concat_cases())
def test_concat_leaves_inputs_untouched(case: ConcatCase) -> None:
    arrays, axis = case
    before = [_snapshot(a) for a in arrays]
    copies = [_rebuilt(a) for a in arrays]
    vc.concat(arrays, axis=axis)
    assert arrays == copies
    for array, snapshot in zip(arrays, before, strict=True):
        _assert_untouched(array, snapshot)


@given(stack_cases())
def test_stack_leaves_inputs_untouched(case: ConcatCase) -> None:
    arrays, axis = case
    before = [_snapshot(a) for a in arrays]
    vc.stack(arrays, axis=axis)
    for array, snapshot in zip(arrays, before, strict=True):
        _assert_untouched(array, snapshot)


@given(concat_cases())
def test_concat_result_is_read_only(case: ConcatCase) -> None:
    arrays, axis = case
    result = vc.concat(arrays, axis=axis)
    for dense in result.manifest.to_arrays():
        assert not dense.flags.writeable
    for column in result.manifest.to_numpy_columns():
        assert not column.flags.writeable


# ---- the gather --------------------------------------------------------------------------


def _rechunked(manifest: vc.ChunkManifest, rows_per_chunk: int) -> vc.ChunkManifest:
    """The same manifest whose table is cut into Arrow chunks of ``rows_per_chunk`` rows."""
    batches = manifest.table.to_batches(max_chunksize=rows_per_chunk)
    table = pa.Table.from_batches(batches, schema=manifest.table.schema)
    return vc.ChunkManifest(manifest.grid, table)


def _with_inline(manifest: vc.ChunkManifest, data: st.DataObject) -> vc.ChunkManifest:
    """Some missing chunks of ``manifest`` made inline chunks of drawn bytes."""
    paths, offsets, lengths = (a.copy() for a in manifest.to_arrays())
    blobs = np.full(manifest.grid, None, dtype=object)
    for index in zip(*np.nonzero(paths == ""), strict=True):
        if data.draw(st.booleans()):
            blobs[index] = data.draw(st.binary(min_size=1, max_size=4))
    if all(blob is None for blob in blobs.ravel()):
        return manifest
    return vc.ChunkManifest.from_arrays(paths=paths, offsets=offsets, lengths=lengths, data=blobs)


@pytest.mark.parametrize("axis", [0, 1, 2, 3])
@given(data=st.data())
def test_gather_concat_is_np_concatenate_of_every_column(axis: int, data: st.DataObject) -> None:
    """The one-pass gather equals numpy on the dense columns, on any axis and any table layout.

    Inputs have tables cut into several Arrow chunks, share dictionary objects (one
    manifest given twice), hold missing and inline chunks; along axis 0 the gather also
    equals the appended tables.
    """
    from vzcore.algebra import _append_tables, _gather_concat

    arrays, axis = data.draw(concat_cases(axis=axis, min_size=1, max_size=4))
    manifests = [a.manifest for a in arrays]
    manifests = [
        _rechunked(m, data.draw(st.integers(1, 4))) if data.draw(st.booleans()) else m
        for m in manifests
    ]
    if data.draw(st.booleans()):
        manifests = [_with_inline(m, data) for m in manifests]
    if len(manifests) > 1 and data.draw(st.booleans()):
        manifests = [manifests[0], *manifests]
    grid = list(manifests[0].grid)
    grid[axis] = sum(m.grid[axis] for m in manifests)
    gathered = _gather_concat(manifests, axis, tuple(grid))

    dense = [m.to_arrays() for m in manifests]
    expected = [np.concatenate([d[k] for d in dense], axis=axis) for k in range(3)]
    for got, want in zip(gathered.to_arrays(), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    inline = [
        np.array(
            m.inline_data.to_pylist() if m.inline_data is not None else [None] * m.n_chunks,
            dtype=object,
        ).reshape(m.grid)
        for m in manifests
    ]
    want_inline = np.concatenate(inline, axis=axis).ravel().tolist()
    got_inline = gathered.inline_data
    assert (got_inline.to_pylist() if got_inline is not None else [None] * gathered.n_chunks) == (
        want_inline
    )
    assert gathered.n_missing == sum(m.n_missing for m in manifests)
    if axis == 0:
        assert gathered == vc.ChunkManifest(tuple(grid), _append_tables(manifests))
