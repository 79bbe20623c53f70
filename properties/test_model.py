"""Model-based tests: every algebra operation against numpy on the dense chunk arrays.

The model of a virtual array is its chunk grid as three dense numpy arrays
``(paths, offsets, lengths)`` (`ChunkManifest.to_arrays`) plus its shape. Each
operation must do to the manifest exactly what the numpy function does to the
model: `concat` is `np.concatenate`, `stack` is `np.stack`, `expand_dims` is
`np.expand_dims`, `broadcast_to` is `np.broadcast_to`, and `rename_paths` is an
element-wise rename of the present paths.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)
from properties.strategies import (
    MISSING,
    ConcatCase,
    DenseArrays,
    PathRenamer,
    apply_renamer,
    broadcast_cases,
    chunk_manifests,
    concat_cases,
    path_renamers,
    stack_cases,
    virtual_arrays,
)

import vzcore as vc


def _dense(array: vc.VirtualArray) -> DenseArrays:
    return array.manifest.to_arrays()


def _shape_model(shape: Sequence[int]) -> np.ndarray:
    """A zero-byte stand-in for an array's values, so numpy computes the result shape."""
    return np.broadcast_to(np.empty((), dtype=np.bool_), tuple(shape))


def _assert_dense_equal(actual: DenseArrays, expected: Sequence[np.ndarray]) -> None:
    for got, want, name in zip(actual, expected, ("paths", "offsets", "lengths"), strict=True):
        assert got.shape == want.shape, name
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert actual[1].dtype == actual[2].dtype == np.uint64


def _per_column(
    function: Callable[[list[np.ndarray]], np.ndarray], models: Sequence[DenseArrays]
) -> list[np.ndarray]:
    return [function([model[column] for model in models]) for column in range(3)]


def _rename_model(paths: np.ndarray, renamer: PathRenamer) -> np.ndarray:
    renamed = np.array(paths, dtype=np.dtypes.StringDType(), copy=True)
    # One vectorised replacement per distinct file (a loop over files, not chunks).
    for old in np.unique(paths[paths != MISSING]).tolist():
        renamed[paths == old] = apply_renamer(renamer, old)
    return renamed


# ---- one operation at a time -------------------------------------------------------------


@given(concat_cases())
def test_concat_is_np_concatenate(case: ConcatCase) -> None:
    arrays, axis = case
    result = vc.concat(arrays, axis=axis)
    models = [_dense(a) for a in arrays]
    _assert_dense_equal(
        _dense(result), _per_column(lambda cs: np.concatenate(cs, axis=axis), models)
    )
    expected_shape = np.concatenate([_shape_model(a.shape) for a in arrays], axis=axis).shape
    assert result.shape == expected_shape
    assert result.chunk_shape == arrays[0].chunk_shape


@given(stack_cases())
def test_stack_is_np_stack(case: ConcatCase) -> None:
    arrays, axis = case
    result = vc.stack(arrays, axis=axis)
    models = [_dense(a) for a in arrays]
    _assert_dense_equal(_dense(result), _per_column(lambda cs: np.stack(cs, axis=axis), models))
    assert result.shape == np.stack([_shape_model(a.shape) for a in arrays], axis=axis).shape
    chunks = list(arrays[0].chunk_shape)
    chunks.insert(axis % result.ndim, 1)
    assert result.chunk_shape == tuple(chunks)


@given(data=st.data())
def test_expand_dims_is_np_expand_dims(data: st.DataObject) -> None:
    array = data.draw(virtual_arrays(max_ndim=3))
    axis = data.draw(st.integers(-(array.ndim + 1), array.ndim))
    result = vc.expand_dims(array, axis=axis)
    _assert_dense_equal(_dense(result), [np.expand_dims(d, axis) for d in _dense(array)])
    assert result.shape == np.expand_dims(_shape_model(array.shape), axis).shape
    if array.metadata.dimension_names is not None:
        assert result.metadata.dimension_names is not None
        assert result.metadata.dimension_names[axis] is None


@given(broadcast_cases())
def test_broadcast_to_is_np_broadcast_to(case: tuple[vc.VirtualArray, tuple[int, ...]]) -> None:
    array, target = case
    result = vc.broadcast_to(array, target)
    assert result.shape == np.broadcast_to(_shape_model(array.shape), target).shape
    # Axes that grow have chunks of 1, so their grid length is their length.
    extra = len(target) - array.ndim
    grid = tuple(
        want if have != want else chunks
        for have, want, chunks in zip(
            (1,) * extra + array.shape, target, (1,) * extra + array.manifest.grid, strict=True
        )
    )
    _assert_dense_equal(_dense(result), [np.broadcast_to(d, grid) for d in _dense(array)])


@given(data=st.data())
def test_broadcast_to_refuses_exactly_what_it_cannot_do(data: st.DataObject) -> None:
    array = data.draw(virtual_arrays(max_ndim=3))
    target = data.draw(st.lists(st.integers(0, 3), max_size=array.ndim + 2).map(tuple))
    try:
        np.broadcast_to(_shape_model(array.shape), target)
        numpy_can = True
    except ValueError:
        numpy_can = False
    extra = len(target) - array.ndim
    rechunks = numpy_can and any(
        have != want and chunk != 1
        for have, want, chunk in zip(array.shape, target[extra:], array.chunk_shape, strict=True)
    )
    if numpy_can and not rechunks:
        assert vc.broadcast_to(array, target).shape == target
    else:
        with pytest.raises(vc.BroadcastError):
            vc.broadcast_to(array, target)


@given(data=st.data())
def test_squeeze_is_np_squeeze_and_undoes_expand_dims(data: st.DataObject) -> None:
    array = data.draw(virtual_arrays(max_ndim=3))
    axis = data.draw(st.integers(-(array.ndim + 1), array.ndim))
    expanded = vc.expand_dims(array, axis=axis)
    squeezed = vc.squeeze(expanded, axis=axis)
    _assert_dense_equal(_dense(squeezed), [np.squeeze(d, axis) for d in _dense(expanded)])
    assert squeezed == array


@given(data=st.data())
def test_select_chunks_is_slicing_on_chunk_boundaries(data: st.DataObject) -> None:
    array = data.draw(virtual_arrays(max_ndim=3))
    selection, chunk_window = [], []
    for length, chunk, n_chunks in zip(
        array.shape, array.chunk_shape, array.manifest.grid, strict=True
    ):
        # Starts on a chunk boundary inside the array (or at its end when that is one).
        first = data.draw(st.integers(0, length // chunk))
        stop = data.draw(st.integers(first, n_chunks))
        selection.append(slice(first * chunk, min(stop * chunk, length)))
        chunk_window.append(slice(first, stop))
    result = vc.select_chunks(array, selection)
    window = (*chunk_window, Ellipsis)  # Ellipsis keeps 0-d results arrays
    _assert_dense_equal(_dense(result), [d[window] for d in _dense(array)])
    assert result.shape == _shape_model(array.shape)[tuple(selection)].shape


@given(chunk_manifests(), path_renamers())
def test_rename_paths_is_elementwise_rename(
    manifest: vc.ChunkManifest, renamer: PathRenamer
) -> None:
    paths, offsets, lengths = manifest.to_arrays()
    result = vc.rename_paths(manifest, renamer)
    _assert_dense_equal(result.to_arrays(), [_rename_model(paths, renamer), offsets, lengths])
    assert result.n_missing == manifest.n_missing


# ---- sequences of operations -------------------------------------------------------------


# Chains grow arrays; past these sizes a rule leaves its array as it is.
_MAX_NDIM = 6
_MAX_CHUNKS = 256


class AlgebraAgainstNumpy(RuleBasedStateMachine):
    """Random chains of operations; each result is checked against the numpy model."""

    arrays = Bundle("arrays")

    def __init__(self) -> None:
        super().__init__()
        self.models: dict[int, tuple[DenseArrays, tuple[int, ...]]] = {}
        self.live: list[vc.VirtualArray] = []

    def _remember(self, array: vc.VirtualArray, model: Sequence[np.ndarray]) -> vc.VirtualArray:
        _assert_dense_equal(_dense(array), model)
        self.models[id(array)] = (
            (model[0].copy(), model[1].copy(), model[2].copy()),
            array.shape,
        )
        self.live.append(array)
        return array

    def _model(self, array: vc.VirtualArray) -> DenseArrays:
        return self.models[id(array)][0]

    @initialize(target=arrays, array=virtual_arrays(max_ndim=3))
    def first(self, array: vc.VirtualArray) -> vc.VirtualArray:
        return self._remember(array, [d.copy() for d in _dense(array)])

    @rule(target=arrays, array=virtual_arrays(max_ndim=3))
    def new(self, array: vc.VirtualArray) -> vc.VirtualArray:
        return self._remember(array, [d.copy() for d in _dense(array)])

    @rule(target=arrays, array=arrays, data=st.data())
    def expand_dims(self, array: vc.VirtualArray, data: st.DataObject) -> vc.VirtualArray:
        if array.ndim >= _MAX_NDIM:
            return self._remember(array, self._model(array))
        axis = data.draw(st.integers(-(array.ndim + 1), array.ndim), label="axis")
        result = vc.expand_dims(array, axis=axis)
        return self._remember(result, [np.expand_dims(d, axis) for d in self._model(array)])

    @rule(target=arrays, array=arrays, leading=st.integers(0, 2), renamer=path_renamers())
    def stack_with_renamed_self(
        self, array: vc.VirtualArray, leading: int, renamer: PathRenamer
    ) -> vc.VirtualArray:
        if array.ndim >= _MAX_NDIM or array.manifest.n_chunks > _MAX_CHUNKS:
            return self._remember(array, self._model(array))
        axis = min(leading, array.ndim)
        other = vc.rename_paths(array, renamer)
        model = self._model(array)
        renamed = [_rename_model(model[0], renamer), model[1], model[2]]
        result = vc.stack([array, other], axis=axis)
        return self._remember(result, _per_column(lambda cs: np.stack(cs, axis), [model, renamed]))

    @rule(target=arrays, array=arrays, data=st.data())
    def concat_with_self(self, array: vc.VirtualArray, data: st.DataObject) -> vc.VirtualArray:
        if array.ndim == 0 or array.manifest.n_chunks > _MAX_CHUNKS:
            return self._remember(array, self._model(array))
        axis = data.draw(st.integers(-array.ndim, array.ndim - 1), label="axis")
        aligned = array.shape[axis] % array.chunk_shape[axis] == 0
        raw_prefix = [c.name for c in array.metadata.codecs] == ["bytes"] and all(
            c == 1 for c in array.chunk_shape[: axis % array.ndim]
        )
        if not aligned and raw_prefix:
            # The partial chunk becomes a shorter one: a rectilinear grid (its own laws),
            # unless a reference there is too short to hold the shorter chunk.
            indices, _, lengths = array.manifest.to_numpy_columns()
            grid = array.manifest.grid
            last = [np.take(c.reshape(grid), -1, axis=axis) for c in (indices, lengths)]
            kept = array.shape[axis] % array.chunk_shape[axis]
            needed = kept * math.prod(array.chunk_shape) // array.chunk_shape[axis]
            if np.any((last[0] >= 0) & (last[1] < needed * array.dtype.itemsize)):
                with pytest.raises(vc.PartialChunkError, match="fewer than"):
                    vc.concat([array, array], axis=axis)
            else:
                assert not vc.concat([array, array], axis=axis).metadata.is_regular
            return self._remember(array, self._model(array))
        if not aligned:
            with pytest.raises(vc.PartialChunkError, match=r"array 0 (\([^)]*\) )?has length"):
                vc.concat([array, array], axis=axis)
            return self._remember(array, self._model(array))
        result = vc.concat([array, array], axis=axis)
        model = self._model(array)
        return self._remember(result, [np.concatenate([d, d], axis=axis) for d in model])

    @rule(target=arrays, array=arrays, renamer=path_renamers())
    def rename(self, array: vc.VirtualArray, renamer: PathRenamer) -> vc.VirtualArray:
        model = self._model(array)
        result = vc.rename_paths(array, renamer)
        return self._remember(result, [_rename_model(model[0], renamer), model[1], model[2]])

    @rule(target=arrays, array=arrays, data=st.data())
    def broadcast(self, array: vc.VirtualArray, data: st.DataObject) -> vc.VirtualArray:
        if array.manifest.n_chunks > _MAX_CHUNKS:
            return self._remember(array, self._model(array))
        leading = data.draw(st.lists(st.integers(0, 2), max_size=max(0, _MAX_NDIM - array.ndim)))
        target = (*leading, *array.shape)
        grid = (*leading, *array.manifest.grid)
        result = vc.broadcast_to(array, target)
        return self._remember(result, [np.broadcast_to(d, grid) for d in self._model(array)])

    @invariant()
    def inputs_are_never_changed(self) -> None:
        for array in self.live:
            _assert_dense_equal(_dense(array), self._model(array))
            assert array.shape == self.models[id(array)][1]


AlgebraAgainstNumpy.TestCase.settings = settings(stateful_step_count=10)
TestAlgebraAgainstNumpy = AlgebraAgainstNumpy.TestCase
