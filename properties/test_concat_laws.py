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
