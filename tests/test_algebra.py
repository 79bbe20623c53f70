"""Examples for `vzcore.algebra`: error messages, concat, stack, expand_dims, broadcast, rename."""

import os
import pickle
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import vzcore as vc
from vzcore import (
    BroadcastError,
    ChunkShapeMismatch,
    CodecMismatch,
    DimensionNameMismatch,
    DtypeMismatch,
    FillValueMismatch,
    InvalidManifestError,
    PartialChunkError,
    ShapeMismatch,
    VirtualizationError,
)
from vzcore.algebra import referenced_paths
from vzcore.codecs import codecs_with_axes

type Factory = Callable[..., vc.VirtualArray]

PARTIAL = (
    "array {index} (file:///data.nc) has length {length} along axis {axis}, not a multiple of its chunk length "
    "{chunk}: its last chunk there is stored for {chunk} elements and holds {held}, and {reason}; "
    "only the last array may end in a partial chunk"
)
ENCODED = "it is encoded (bytes, numcodecs.zlib), so the part it holds cannot be cut out as a shorter chunk"
ZLIB = [{"name": "numcodecs.zlib", "configuration": {"level": 1}}]


def _dense(array: vc.VirtualArray) -> tuple[npt.NDArray[Any], ...]:
    return array.manifest.to_arrays()


def _assert_manifest_matches(
    result: vc.VirtualArray,
    inputs: Sequence[vc.VirtualArray],
    combine: Callable[[list[npt.NDArray[Any]]], npt.NDArray[Any]],
) -> None:
    """The result's dense columns equal ``combine`` of the inputs' dense columns."""
    got = _dense(result)
    for column in range(3):
        expected = combine([_dense(a)[column] for a in inputs])
        np.testing.assert_array_equal(got[column], expected)


def _snapshot(arrays: Sequence[vc.VirtualArray]) -> list[vc.VirtualArray]:
    return [pickle.loads(pickle.dumps(a)) for a in arrays]


# ---- error messages ---------------------------------------------------------------------


def test_chunk_shape_mismatch_names_the_odd_array(make_virtual: Factory) -> None:
    arrays = [make_virtual((1, 180, 360), (1, 180, 360)) for _ in range(3)]
    arrays.append(make_virtual((1, 180, 360), (1, 90, 180)))
    with pytest.raises(ChunkShapeMismatch) as info:
        vc.concat(arrays, axis=0)
    message = "array 3 (file:///data.nc) has chunk shape (1, 90, 180), arrays 0-2 (file:///data.nc) have (1, 180, 360)"
    assert str(info.value) == f"cannot concatenate: {message}"
    assert info.value.problems == (message,)


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        pytest.param(
            {"dtype": "f8"},
            DtypeMismatch,
            "array 1 (file:///data.nc) has dtype float64, array 0 (file:///data.nc) has float32",
            id="dtype",
        ),
        pytest.param(
            {"codecs": [{"name": "gzip", "configuration": {"level": 1}}]},
            CodecMismatch,
            'array 1 (file:///data.nc) has codecs [bytes{"endian":"little"}, gzip{"level":1}], '
            'array 0 (file:///data.nc) has [bytes{"endian":"little"}]',
            id="codecs",
        ),
        pytest.param(
            {"fill_value": 1},
            FillValueMismatch,
            "array 1 (file:///data.nc) has fill value 1.0, array 0 (file:///data.nc) has 0.0",
            id="fill-value",
        ),
        pytest.param(
            {"dimension_names": ["t", "lon"]},
            DimensionNameMismatch,
            "array 1 (file:///data.nc) has dimension names ('t', 'lon'), array 0 (file:///data.nc) has ('t', 'lat')",
            id="dimension-names",
        ),
        pytest.param(
            {"shape": (2, 5)},
            ShapeMismatch,
            "array 1 (file:///data.nc) has shape along axes other than 0 (5,), array 0 (file:///data.nc) has (4,)",
            id="other-axes",
        ),
        pytest.param(
            {"shape": (2,), "chunk_shape": (2,), "dimension_names": None},
            ShapeMismatch,
            "array 1 (file:///data.nc) has ndim 1, array 0 (file:///data.nc) has 2",
            id="ndim",
        ),
    ],
)
def test_each_mismatch_has_its_error_and_message(
    make_virtual: Factory, changes: dict[str, Any], error: type[VirtualizationError], message: str
) -> None:
    base: dict[str, Any] = {
        "shape": (2, 4),
        "chunk_shape": (2, 4),
        "dimension_names": ["t", "lat"],
    }
    first = make_virtual(**base)
    second = make_virtual(**{**base, **changes})
    with pytest.raises(error) as info:
        vc.concat([first, second], axis=0)
    assert str(info.value) == f"cannot concatenate: {message}"
    assert info.value.problems == (message,)


def test_nan_fill_values_are_compatible_and_reported_by_group(make_virtual: Factory) -> None:
    nan_a = make_virtual((2,), (2,), fill_value=np.nan)
    nan_b = make_virtual((2,), (2,), fill_value=float("nan"))
    assert vc.concat([nan_a, nan_b], axis=0).shape == (4,)
    with pytest.raises(FillValueMismatch) as info:
        vc.concat([make_virtual((2,), (2,)), nan_a, nan_b], axis=0)
    assert str(info.value) == (
        "cannot concatenate: arrays 1-2 (file:///data.nc) have fill value nan, array 0 (file:///data.nc) has 0.0"
    )


def test_dimension_names_are_only_compared_when_all_arrays_have_them(
    make_virtual: Factory,
) -> None:
    named = make_virtual((2,), (2,), dimension_names=["time"])
    anonymous = make_virtual((2,), (2,))
    assert vc.concat([named, anonymous], axis=0).metadata.dimension_names == ("time",)


def test_a_partial_chunk_inside_the_result_is_refused(make_virtual: Factory) -> None:
    with pytest.raises(PartialChunkError) as info:
        vc.concat(
            [make_virtual((3, 4), (2, 4), codecs=ZLIB), make_virtual((2, 4), (2, 4), codecs=ZLIB)],
            axis=0,
        )
    message = PARTIAL.format(index=0, length=3, axis=0, chunk=2, held=1, reason=ENCODED)
    assert str(info.value) == f"cannot concatenate: {message}"


def test_a_raw_partial_chunk_inside_the_result_becomes_a_shorter_chunk(
    make_virtual: Factory,
) -> None:
    """Raw bytes, cut along the leading axis: the part held is the chunk's first bytes."""
    first = make_virtual((3, 4), (2, 4), chunk_nbytes=32, paths="file:///a.nc")
    last = make_virtual((2, 4), (2, 4), chunk_nbytes=32, paths="file:///b.nc")
    result = vc.concat([first, last], axis=0)
    assert result.shape == (5, 4)
    assert result.metadata.chunk_grid == vc.RectilinearChunkGrid(((2, 1, 2), 4))
    assert result.manifest.to_numpy_columns()[2].tolist() == [32, 16, 32]
    assert result.manifest.to_numpy_columns()[1].tolist() == [0, 32, 0]


def test_a_partial_chunk_at_the_end_is_allowed(make_virtual: Factory) -> None:
    first = make_virtual((4, 2), (2, 2), paths="file:///a.nc")
    last = make_virtual((4, 3), (2, 2), paths="file:///b.nc")
    result = vc.concat([first, last], axis=1)
    assert result.shape == (4, 5)
    assert result.manifest.grid == (2, 3)
    _assert_manifest_matches(result, [first, last], lambda c: np.concatenate(c, axis=1))


def test_every_partial_chunk_is_reported(make_virtual: Factory) -> None:
    arrays = [make_virtual((2, 3), (2, 2)) for _ in range(3)] + [make_virtual((2, 3), (2, 2))]
    with pytest.raises(PartialChunkError) as info:
        vc.concat(arrays, axis=-1)
    reason = (
        "the part it holds is not a prefix of its bytes (the axes before it have chunk "
        "lengths (2,), not 1)"
    )
    assert info.value.problems == tuple(
        PARTIAL.format(index=i, length=3, axis=1, chunk=2, held=1, reason=reason) for i in range(3)
    )


def test_several_problems_are_reported_together(make_virtual: Factory) -> None:
    first = make_virtual((2, 3), (2, 3))
    second = make_virtual((2, 4), (2, 2), dtype="i2", fill_value=1)
    with pytest.raises(ShapeMismatch) as info:  # the class of the first problem
        vc.concat([first, second], axis=0)
    problems = (
        "array 1 (file:///data.nc) has shape along axes other than 0 (4,), array 0 (file:///data.nc) has (3,)",
        "array 1 (file:///data.nc) has dtype int16, array 0 (file:///data.nc) has float32",
        "array 1 (file:///data.nc) has chunk shape (2, 2), array 0 (file:///data.nc) has (2, 3)",
    )
    assert info.value.problems == problems
    assert str(info.value) == "cannot concatenate: " + "; ".join(problems)


def test_inputs_are_named_by_runs_of_indices(make_virtual: Factory) -> None:
    dtypes = ["f4", "f8", "f8", "i4", "f4"]
    arrays = [make_virtual((2,), (2,), dtype=d) for d in dtypes]
    with pytest.raises(DtypeMismatch) as info:
        vc.concat(arrays, axis=0)
    assert info.value.problems == (
        "arrays 1-2 (file:///data.nc) have dtype float64, arrays 0, 4 (file:///data.nc) have float32",
        "array 3 (file:///data.nc) has dtype int32, arrays 0, 4 (file:///data.nc) have float32",
    )


def test_validate_compatible_names_the_operation(make_virtual: Factory) -> None:
    arrays = [make_virtual((2,), (2,)), make_virtual((2,), (2,), dtype="f8")]
    with pytest.raises(
        DtypeMismatch, match=r"^cannot stack: array 1 \(file:///data.nc\) has dtype float64"
    ):
        vc.validate_compatible(arrays, axis=0, operation="stack")
    vc.validate_compatible(arrays[:1], axis=0)


@pytest.mark.parametrize(
    ("arrays", "axis", "error", "message"),
    [
        ("none", 0, VirtualizationError, "cannot concatenate: no arrays given"),
        ("one", 2, ShapeMismatch, "cannot concatenate: axis 2 is out of range for 2-d arrays"),
        ("one", -3, ShapeMismatch, "cannot concatenate: axis -3 is out of range for 2-d arrays"),
    ],
)
def test_concat_refuses_no_arrays_and_bad_axes(
    make_virtual: Factory, arrays: str, axis: int, error: type[Exception], message: str
) -> None:
    inputs = [] if arrays == "none" else [make_virtual((2, 4), (2, 2))]
    with pytest.raises(error) as info:
        vc.concat(inputs, axis=axis)
    assert str(info.value) == message


# ---- concat -----------------------------------------------------------------------------


def test_concat_along_axis_0_appends_without_copying(make_virtual: Factory) -> None:
    first = make_virtual((4, 6), (2, 3), paths=["file:///a.nc", "file:///b.nc"])
    second = make_virtual((4, 6), (2, 3), paths="file:///c.nc", missing=[1])
    result = vc.concat([first, second], axis=0)
    assert result.shape == (8, 6)
    assert result.manifest.grid == (4, 2)
    offsets = result.manifest.table.column("offset")
    assert offsets.num_chunks == 2
    for i, source in enumerate([first, second]):
        source_offsets = source.manifest.table.column("offset").chunk(0)
        assert offsets.chunk(i).buffers()[1].address == source_offsets.buffers()[1].address
    assert result.manifest.dictionary.to_pylist() == [
        "file:///a.nc",
        "file:///b.nc",
        "file:///c.nc",
    ]
    assert all(
        c.dictionary.equals(result.manifest.dictionary) for c in result.manifest.paths.chunks
    )
    _assert_manifest_matches(result, [first, second], lambda c: np.concatenate(c, axis=0))


def test_concat_along_a_later_axis_after_one_chunk_appends_too(make_virtual: Factory) -> None:
    first = make_virtual((1, 4, 6), (1, 2, 3), paths="file:///a.nc")
    second = make_virtual((1, 2, 6), (1, 2, 3), paths="file:///b.nc")
    result = vc.concat([first, second], axis=1)
    assert result.manifest.table.column("offset").num_chunks == 2
    _assert_manifest_matches(result, [first, second], lambda c: np.concatenate(c, axis=1))


@pytest.mark.parametrize("axis", [1, 2, -1])
def test_concat_along_inner_axes_gathers_like_numpy(make_virtual: Factory, axis: int) -> None:
    first = make_virtual(
        (4, 6, 8), (2, 3, 4), paths=["file:///a0.nc", "file:///a1.nc"], missing=[0, 5]
    )
    middle = make_virtual((4, 6, 8), (2, 3, 4), paths="file:///b.nc", first_offset=7)
    last_shape = [4, 6, 8]
    last_shape[axis] = 5  # ends in a partial chunk
    last = make_virtual(tuple(last_shape), (2, 3, 4), paths="file:///a1.nc", missing=[2])
    inputs = [first, middle, last]
    snapshot = _snapshot(inputs)
    result = vc.concat(inputs, axis=axis)
    expected_shape = [4, 6, 8]
    expected_shape[axis] = 6 + 6 + 5 if axis == 1 else 8 + 8 + 5
    assert result.shape == tuple(expected_shape)
    assert result.manifest.grid == result.metadata.grid_shape
    _assert_manifest_matches(result, inputs, lambda c: np.concatenate(c, axis=axis))
    assert sorted(result.manifest.dictionary.to_pylist()) == [
        "file:///a0.nc",
        "file:///a1.nc",
        "file:///b.nc",
    ]
    assert inputs == snapshot


def test_concat_gathers_from_chunked_manifests(make_virtual: Factory) -> None:
    top = vc.concat(
        [
            make_virtual((2, 4), (2, 2), paths="file:///a.nc", missing=[1]),
            make_virtual((2, 4), (2, 2), paths="file:///b.nc"),
        ],
        axis=0,
    )
    right = make_virtual((4, 2), (2, 2), paths="file:///c.nc", missing=[0])
    assert top.manifest.paths.num_chunks == 2
    result = vc.concat([top, right], axis=1)
    _assert_manifest_matches(result, [top, right], lambda c: np.concatenate(c, axis=1))


def test_concat_of_one_array_is_that_array(make_virtual: Factory) -> None:
    array = make_virtual((4, 6), (2, 3), missing=[3])
    assert vc.concat([array], axis=1) == array


def test_concat_keeps_the_first_arrays_metadata(make_virtual: Factory) -> None:
    first = make_virtual((2,), (2,), dimension_names=["t"], attributes={"units": "K"})
    second = make_virtual((2,), (2,), dimension_names=["t"], attributes={"units": "C"})
    result = vc.concat([first, second], axis=0)
    assert result.metadata == first.metadata.evolve(shape=(4,))


def test_concat_of_loaded_arrays_concatenates_their_values() -> None:
    first = vc.LoadedArray.from_numpy(np.arange(6).reshape(2, 3), dimension_names=("y", "x"))
    second = vc.LoadedArray.from_numpy(np.arange(6, 12).reshape(2, 3), dimension_names=("y", "x"))
    down = vc.concat([first, second], axis=0)
    assert isinstance(down, vc.LoadedArray)
    np.testing.assert_array_equal(down.data, np.arange(12).reshape(4, 3))
    assert down.shape == (4, 3)
    assert down.metadata.dimension_names == ("y", "x")
    assert not down.data.flags.writeable
    across = vc.concat([first, second], axis=1)
    np.testing.assert_array_equal(across.data, np.hstack([first.data, second.data]))


def test_mixing_virtual_and_loaded_arrays_is_refused(make_virtual: Factory) -> None:
    loaded = vc.LoadedArray.from_numpy(np.zeros((2, 3), dtype="f4"))
    virtual = make_virtual((2, 3), (2, 3))
    with pytest.raises(VirtualizationError) as info:
        vc.concat([loaded, virtual], axis=0)  # type: ignore[list-item]
    assert str(info.value) == (
        "cannot concatenate virtual and loaded arrays together: ['LoadedArray', 'VirtualArray']; "
        "load them all (loadable_variables=) or none"
    )


# ---- stack and expand_dims --------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_stack_joins_along_a_new_axis_like_numpy(make_virtual: Factory, axis: int) -> None:
    arrays = [
        make_virtual((4, 6), (2, 3), paths=f"file:///{name}.nc", dimension_names=["y", "x"])
        for name in "abc"
    ]
    result = vc.stack(arrays, axis=axis)
    assert result.shape == np.stack([np.empty((4, 6))] * 3, axis=axis).shape
    names: list[str | None] = ["y", "x"]
    names.insert(axis % 3, None)
    assert result.metadata.dimension_names == tuple(names)
    chunks = [2, 3]
    chunks.insert(axis % 3, 1)
    assert result.chunk_shape == tuple(chunks)
    _assert_manifest_matches(result, arrays, lambda c: np.stack(c, axis=axis))
    expanded = [vc.expand_dims(a, axis=axis) for a in arrays]
    assert result == vc.concat(expanded, axis=axis)


@pytest.mark.parametrize(
    ("arrays", "axis", "error", "message"),
    [
        ("none", 0, VirtualizationError, "cannot stack: no arrays given"),
        (
            "ragged",
            0,
            ShapeMismatch,
            "cannot stack: array 1 (file:///data.nc) has ndim 2, array 0 (file:///data.nc) has 1",
        ),
        ("same", 2, ShapeMismatch, "cannot stack: axis 2 is out of range for 2-d result"),
        (
            "dtypes",
            0,
            DtypeMismatch,
            "cannot stack: array 1 (file:///data.nc) has dtype float64, array 0 (file:///data.nc) has float32",
        ),
    ],
)
def test_stack_errors(
    make_virtual: Factory, arrays: str, axis: int, error: type[Exception], message: str
) -> None:
    one = make_virtual((2,), (2,))
    inputs = {
        "none": [],
        "ragged": [one, make_virtual((2, 2), (2, 2))],
        "same": [one, one],
        "dtypes": [one, make_virtual((2,), (2,), dtype="f8")],
    }[arrays]
    with pytest.raises(error) as info:
        vc.stack(inputs, axis=axis)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("axis", "shape", "chunks", "names"),
    [
        (0, (1, 4, 6), (1, 2, 3), ("time", "y", "x")),
        (1, (4, 1, 6), (2, 1, 3), ("y", "time", "x")),
        (-1, (4, 6, 1), (2, 3, 1), ("y", "x", "time")),
    ],
)
def test_expand_dims_inserts_a_named_axis_without_copying(
    make_virtual: Factory,
    axis: int,
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    names: tuple[str, ...],
) -> None:
    array = make_virtual((4, 6), (2, 3), dimension_names=["y", "x"])
    result = vc.expand_dims(array, axis=axis, dimension_name="time")
    assert result.shape == shape
    assert result.chunk_shape == chunks
    assert result.metadata.dimension_names == names
    assert result.manifest.table is array.manifest.table
    _assert_manifest_matches(result, [array], lambda c: np.expand_dims(c[0], axis))


def test_expand_dims_of_an_unnamed_array_stays_unnamed(make_virtual: Factory) -> None:
    result = vc.expand_dims(make_virtual((4,), (2,)), axis=0, dimension_name="time")
    assert result.metadata.dimension_names is None


def test_expand_dims_refuses_an_axis_out_of_range(make_virtual: Factory) -> None:
    with pytest.raises(ShapeMismatch) as info:
        vc.expand_dims(make_virtual((4,), (2,)), axis=3)
    assert str(info.value) == "cannot expand_dims: axis 3 is out of range for 2-d result"


# ---- broadcast_to -----------------------------------------------------------------------


def test_broadcast_repeats_size_1_axes_with_chunk_1(make_virtual: Factory) -> None:
    array = make_virtual((1, 6), (1, 3), paths=["file:///a.nc", "file:///b.nc"], missing=[1])
    result = vc.broadcast_to(array, (5, 6))
    assert result.shape == (5, 6)
    assert result.chunk_shape == (1, 3)
    assert result.manifest.grid == (5, 2)
    _assert_manifest_matches(result, [array], lambda c: np.broadcast_to(c[0], (5, 2)))
    assert result.manifest.n_missing == 5


def test_broadcast_adds_new_leading_axes_with_chunk_1(make_virtual: Factory) -> None:
    array = make_virtual((4, 6), (2, 3), dimension_names=["y", "x"])
    result = vc.broadcast_to(array, (3, 4, 6))
    assert result.shape == (3, 4, 6)
    assert result.chunk_shape == (1, 2, 3)
    assert result.metadata.dimension_names == (None, "y", "x")
    _assert_manifest_matches(result, [array], lambda c: np.broadcast_to(c[0], (3, 2, 2)))


def test_broadcast_to_the_same_shape_keeps_the_manifest(make_virtual: Factory) -> None:
    array = make_virtual((4, 6), (2, 3))
    result = vc.broadcast_to(array, (4, 6))
    assert result == array
    assert result.manifest is array.manifest


@pytest.mark.parametrize(
    ("shape", "chunks", "target", "message"),
    [
        (
            (1, 6),
            (2, 3),
            (4, 6),
            (
                "cannot broadcast shape (1, 6) to (4, 6): axis 0 has chunk length 2, "
                "and only chunks of length 1 can be repeated"
            ),
        ),
        ((2, 6), (2, 3), (4, 6), "cannot broadcast shape (2, 6) to (4, 6): axis 0 has length 2"),
        ((2, 6), (2, 3), (2, 7), "cannot broadcast shape (2, 6) to (2, 7): axis 1 has length 6"),
        ((2, 6), (2, 3), (6,), "cannot broadcast shape (2, 6) to fewer dimensions (6,)"),
    ],
)
def test_broadcast_errors(
    make_virtual: Factory,
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    target: tuple[int, ...],
    message: str,
) -> None:
    with pytest.raises(BroadcastError) as info:
        vc.broadcast_to(make_virtual(shape, chunks), target)
    assert str(info.value) == message


# ---- squeeze and select_chunks ----------------------------------------------------------


def test_squeeze_drops_a_unit_axis_without_copying(make_virtual: Factory) -> None:
    array = make_virtual((1, 4, 6), (1, 2, 3), dimension_names=["t", "y", "x"], missing=[1])
    result = vc.squeeze(array, axis=0)
    assert result.shape == (4, 6)
    assert result.chunk_shape == (2, 3)
    assert result.metadata.dimension_names == ("y", "x")
    assert result.manifest.table is array.manifest.table
    assert vc.squeeze(array, axis=-3) == result
    assert vc.expand_dims(result, axis=0, dimension_name="t") == array


def test_squeeze_refuses_an_axis_longer_than_1(make_virtual: Factory) -> None:
    with pytest.raises(ShapeMismatch) as info:
        vc.squeeze(make_virtual((1, 4, 6), (1, 2, 3)), axis=1)
    assert str(info.value) == (
        "cannot squeeze axis 1: it has length 4 and chunk length 2 (both must be 1)"
    )


def test_squeeze_refuses_an_axis_out_of_range(make_virtual: Factory) -> None:
    with pytest.raises(ShapeMismatch):
        vc.squeeze(make_virtual((1, 4, 6), (1, 2, 3)), axis=3)


def test_squeeze_of_a_0d_array_is_refused(make_virtual: Factory) -> None:
    with pytest.raises(ShapeMismatch):
        vc.squeeze(make_virtual((), ()), axis=0)


@pytest.mark.parametrize(
    "selection",
    [
        (slice(5, None), slice(3, 7)),
        (slice(0, 5), slice(None)),
        (slice(-5, None), slice(None, -4)),
        (slice(5, 5), slice(0, 7)),
    ],
)
def test_select_chunks_agrees_with_numpy_on_the_chunk_grid(
    make_virtual: Factory, selection: tuple[slice, ...]
) -> None:
    array = make_virtual((10, 7), (5, 3), paths=["f0", "f1", "f2"], missing=[4])
    result = vc.select_chunks(array, selection)
    assert result.shape == np.empty((10, 7))[selection].shape
    assert result.chunk_shape == (5, 3)

    def chunk_slice(item: slice, length: int, chunk: int) -> slice:
        start, stop, _ = item.indices(length)
        return slice(start // chunk, -(-max(stop, start) // chunk))

    grid_selection = tuple(
        chunk_slice(item, length, chunk)
        for item, length, chunk in zip(selection, (10, 7), (5, 3), strict=True)
    )
    _assert_manifest_matches(result, [array], lambda c: c[0][grid_selection])


def test_select_chunks_of_everything_is_the_array(make_virtual: Factory) -> None:
    array = make_virtual((10, 7), (5, 3))
    assert vc.select_chunks(array, [slice(None), slice(0, 100)]) is array


@pytest.mark.parametrize(
    ("selection", "error", "message"),
    [
        (
            [slice(1, 10), slice(None)],
            PartialChunkError,
            (
                "cannot select slice(1, 10, None) along axis 0: virtual arrays can only be cut on "
                "chunk boundaries (multiples of 5, or the end 10); load the variable to select "
                "arbitrary elements"
            ),
        ),
        (
            [slice(None), slice(0, 4)],
            PartialChunkError,
            (
                "cannot select slice(0, 4, None) along axis 1: virtual arrays can only be cut on "
                "chunk boundaries (multiples of 3, or the end 7); load the variable to select "
                "arbitrary elements"
            ),
        ),
        (
            [slice(0, 10, 5), slice(None)],
            PartialChunkError,
            (
                "cannot select slice(0, 10, 5) along axis 0: virtual arrays can only be cut on "
                "chunk boundaries (multiples of 5, or the end 10); load the variable to select "
                "arbitrary elements"
            ),
        ),
        ([slice(None)], ShapeMismatch, "selection has 1 slices for a 2-d array"),
    ],
)
def test_select_chunks_refuses_cuts_through_chunks(
    make_virtual: Factory, selection: list[slice], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        vc.select_chunks(make_virtual((10, 7), (5, 3)), selection)
    assert str(info.value) == message


# ---- codecs that name the axes: sharding and transpose -----------------------------------


def _sharding(inner: Sequence[int], **config: Any) -> dict[str, Any]:
    config.setdefault("codecs", [{"name": "bytes", "configuration": {"endian": "little"}}])
    config.setdefault(
        "index_codecs",
        [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}],
    )
    return {"name": "sharding_indexed", "configuration": {"chunk_shape": list(inner), **config}}


def _inner_chunks(array: vc.VirtualArray) -> tuple[int, ...]:
    (codec,) = array.metadata.codecs
    assert codec.name == "sharding_indexed"
    return tuple(codec.configuration["chunk_shape"])  # type: ignore[arg-type]


def _zarr_accepts(array: vc.VirtualArray) -> None:
    from zarr.core.metadata.v3 import ArrayV3Metadata

    ArrayV3Metadata.from_dict(array.metadata.to_zarr_v3())  # validates every codec


@pytest.mark.parametrize(
    ("operation", "shape", "inner"),
    [
        pytest.param(lambda a, u: vc.expand_dims(a, axis=0), (1, 8, 12), (1, 2, 3), id="expand0"),
        pytest.param(lambda a, u: vc.expand_dims(a, axis=1), (8, 1, 12), (2, 1, 3), id="expand1"),
        pytest.param(lambda a, u: vc.expand_dims(a, axis=-1), (8, 12, 1), (2, 3, 1), id="expand-1"),
        pytest.param(lambda a, u: vc.stack([a, a], axis=1), (8, 2, 12), (2, 1, 3), id="stack1"),
        pytest.param(
            lambda a, u: vc.broadcast_to(a, (5, 8, 12)), (5, 8, 12), (1, 2, 3), id="bcast"
        ),
        pytest.param(
            lambda a, u: vc.broadcast_to(u, (3, 4, 8, 12)), (3, 4, 8, 12), (1, 1, 2, 3), id="bcast1"
        ),
        pytest.param(lambda a, u: vc.squeeze(u, axis=0), (8, 12), (2, 3), id="squeeze"),
        pytest.param(
            lambda a, u: vc.squeeze(
                vc.select_chunks(vc.stack([a, a], axis=0), [slice(1, 2)] + [slice(None)] * 2),
                axis=0,
            ),
            (8, 12),
            (2, 3),
            id="index",
        ),
    ],
)
def test_axis_changes_keep_the_shard_inner_chunks_in_step(
    make_virtual: Factory,
    operation: Callable[[vc.VirtualArray, vc.VirtualArray], vc.VirtualArray],
    shape: tuple[int, ...],
    inner: tuple[int, ...],
) -> None:
    array = make_virtual((8, 12), (4, 6), codecs=[_sharding((2, 3))])
    unit = make_virtual((1, 8, 12), (1, 4, 6), codecs=[_sharding((1, 2, 3))])
    result = operation(array, unit)
    assert result.shape == shape
    assert _inner_chunks(result) == inner
    _zarr_accepts(result)


@pytest.mark.parametrize(
    ("order", "axes", "expected"),
    [
        pytest.param([1, 0], [None, 0, 1], [2, 1, 0], id="F-order-new-first"),
        pytest.param([1, 0], [0, None, 1], [2, 1, 0], id="F-order-new-middle"),
        pytest.param([2, 1, 0], [1, 2], [1, 0], id="F-order-dropped"),
        pytest.param([0, 1], [0, 1, None], [0, 1, 2], id="C-order-new-last"),
        pytest.param([1, 0, 2], [0, None, 1, 2], [1, 2, 0, 3], id="other-new"),
        pytest.param([1, 0, 2], [None, 1, 2], [0, 1, 2], id="other-replaced"),
    ],
)
def test_transpose_orders_are_renumbered(
    order: list[int], axes: list[int | None], expected: list[int]
) -> None:
    transpose = vc.CodecSpec.from_dict({"name": "transpose", "configuration": {"order": order}})
    bytes_ = vc.CodecSpec("bytes")
    got = codecs_with_axes([transpose, bytes_], axes, ndim=len(order), operation="test")
    assert [c.name for c in got] == ["transpose", "bytes"]
    assert got[0].configuration["order"] == expected
    assert got[1] is bytes_


def test_codecs_inside_shards_and_their_index_are_renumbered(make_virtual: Factory) -> None:
    transpose: dict[str, Any] = {"name": "transpose", "configuration": {"order": [1, 0]}}
    nested = _sharding(
        (2, 3),
        codecs=[_sharding((1, 3), codecs=[transpose, {"name": "bytes"}])],
        index_codecs=[
            {"name": "transpose", "configuration": {"order": [2, 1, 0]}},
            {"name": "bytes", "configuration": {"endian": "little"}},
        ],
    )
    array = make_virtual((8, 12), (4, 6), codecs=[nested], dtype="u1")
    result = vc.expand_dims(array, axis=1)
    config = result.metadata.codecs[0].configuration
    assert config["chunk_shape"] == [2, 1, 3]
    inner = config["codecs"][0]["configuration"]  # type: ignore[index,call-overload]
    assert inner["chunk_shape"] == [1, 1, 3]
    assert inner["codecs"][0]["configuration"]["order"] == [2, 1, 0]
    # the index has a trailing axis (offset, length): it stays last
    assert config["index_codecs"][0]["configuration"]["order"] == [3, 2, 1, 0]  # type: ignore[index,call-overload]
    _zarr_accepts(result)
    assert vc.squeeze(result, axis=1) == array


def test_pipelines_without_axes_are_kept(make_virtual: Factory) -> None:
    array = make_virtual((8,), (4,), codecs=[{"name": "gzip", "configuration": {"level": 1}}])
    assert vc.expand_dims(array, axis=0).metadata.codecs == array.metadata.codecs
    assert codecs_with_axes(array.metadata.codecs, [0], ndim=1, operation="x") == (
        array.metadata.codecs
    )


def test_what_cannot_be_renumbered_is_refused() -> None:
    from zarr.codecs import TransposeCodec
    from zarr.registry import register_codec

    class Reshape(TransposeCodec):  # any array-to-array codec vz has never heard of
        pass

    register_codec("test.reshape", Reshape)
    reshape = vc.CodecSpec.from_dict({"name": "test.reshape", "configuration": {"order": [0]}})
    with pytest.raises(vc.UnsupportedCodecError) as info:
        codecs_with_axes([reshape], [None, 0], ndim=1, operation="expand_dims")
    assert str(info.value) == (
        'cannot expand_dims: codec test.reshape{"order":[0]} works on the chunk as an array, '
        "and vz does not know whether it depends on the array's axes; load the variable instead"
    )
    split = vc.CodecSpec.from_dict(_sharding((2, 3)))
    with pytest.raises(
        vc.UnsupportedCodecError, match=r"splits axis 0 into inner chunks of length 2"
    ):
        codecs_with_axes([split], [1], ndim=2, operation="squeeze axis 0")
    wrong = vc.CodecSpec.from_dict({"name": "transpose", "configuration": {"order": [1, 0]}})
    with pytest.raises(vc.UnsupportedCodecError, match=r"is not a permutation of the 3 axes"):
        codecs_with_axes([wrong], [None, 0, 1, 2], ndim=3, operation="expand_dims")
    with pytest.raises(vc.UnsupportedCodecError, match=r"does not have the array's 3 axes"):
        codecs_with_axes([split], [None, 0, 1, 2], ndim=3, operation="expand_dims")


@pytest.fixture(scope="module")
def sharded_zarr(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[vc.VirtualGroup, vc.ObjectStoreRegistry, dict[str, npt.NDArray[Any]]]:
    """Sharded zarr v3 arrays (one with a transpose inside its shards, one without
    shards but with a transpose) written by zarr and parsed by `ZarrParser`."""
    import zarr
    import zarr.storage
    from obstore.store import LocalStore
    from zarr.codecs import TransposeCodec

    from vzcore.parsers import ZarrParser

    folder = tmp_path_factory.mktemp("sharded")
    root = zarr.open_group(zarr.storage.LocalStore(folder / "s.zarr"), mode="w", zarr_format=3)
    values = np.arange(48, dtype="i4").reshape(6, 8)
    expected = {
        "a": np.where(values < 32, values, -1),  # the shards of rows 4- are all fill
        "b": -values,
        "t": values * 10,
        "f": values + 0.5,
        "u": values[np.newaxis] * 3,
    }
    options: dict[str, dict[str, Any]] = {
        "a": {"chunks": (2, 2), "shards": (2, 4)},
        "b": {"chunks": (2, 2), "shards": (2, 4)},
        "t": {"chunks": (2, 2), "shards": (2, 4), "filters": [TransposeCodec(order=(1, 0))]},
        "f": {"chunks": (2, 4), "filters": [TransposeCodec(order=(1, 0))]},
        "u": {"chunks": (1, 2, 2), "shards": (1, 2, 4)},
    }
    for name, data in expected.items():
        array = root.create_array(
            name, shape=data.shape, dtype=data.dtype, fill_value=-1, **options[name]
        )
        array[...] = data
    registry = vc.ObjectStoreRegistry({f"file://{folder}/": LocalStore(folder)})
    group = ZarrParser()(f"file://{folder}/s.zarr", registry)
    assert group["a"].manifest.n_missing == 2  # type: ignore[union-attr]
    return group, registry, expected


def _served(array: vc.VirtualArray, registry: vc.ObjectStoreRegistry) -> npt.NDArray[Any]:
    import zarr

    store = vc.ManifestStore(vc.VirtualGroup(arrays={"x": array}), registry=registry)
    result: npt.NDArray[Any] = zarr.open_group(store, mode="r")["x"][...]  # type: ignore[assignment,index]
    return result


type Virtual = Callable[[str], vc.VirtualArray]
type Values = Callable[[str], npt.NDArray[Any]]
EVERYTHING = [slice(None)] * 2
AXIS_CHANGES: list[Any] = [
    *(
        pytest.param(
            lambda v, axis=axis: vc.stack([v("a"), v("b")], axis=axis),
            lambda n, axis=axis: np.stack([n("a"), n("b")], axis=axis),
            id=f"stack{axis}",
        )
        for axis in (0, 1, 2)
    ),
    *(
        pytest.param(
            lambda v, axis=axis: vc.expand_dims(v("a"), axis=axis),
            lambda n, axis=axis: np.expand_dims(n("a"), axis),
            id=f"expand_dims{axis}",
        )
        for axis in (0, 1, 2)
    ),
    pytest.param(
        lambda v: vc.concat([vc.stack([v("a"), v("b")], axis=0)] * 2, axis=0),
        lambda n: np.concatenate([np.stack([n("a"), n("b")])] * 2),
        id="concat-of-stacks",
    ),
    pytest.param(
        lambda v: vc.broadcast_to(v("a"), (3, 6, 8)),
        lambda n: np.broadcast_to(n("a"), (3, 6, 8)),
        id="broadcast-new-axis",
    ),
    pytest.param(
        lambda v: vc.broadcast_to(vc.expand_dims(v("b"), axis=1), (6, 3, 8)),
        lambda n: np.broadcast_to(n("b")[:, np.newaxis], (6, 3, 8)),
        id="broadcast-unit-axis",
    ),
    pytest.param(lambda v: vc.squeeze(v("u"), axis=0), lambda n: n("u")[0], id="squeeze"),
    pytest.param(  # what integer indexing does: the second of a stack
        lambda v: vc.squeeze(
            vc.select_chunks(vc.stack([v("a"), v("b")], axis=0), [slice(1, 2), *EVERYTHING]),
            axis=0,
        ),
        lambda n: np.stack([n("a"), n("b")])[1],
        id="index",
    ),
    pytest.param(
        lambda v: vc.stack([v("t"), v("t")], axis=1),
        lambda n: np.stack([n("t"), n("t")], axis=1),
        id="transpose-in-shards",
    ),
    pytest.param(
        lambda v: vc.expand_dims(v("f"), axis=1),
        lambda n: n("f")[:, np.newaxis],
        id="transpose",
    ),
    pytest.param(
        lambda v: vc.stack([v("f"), v("f")], axis=2),
        lambda n: np.stack([n("f"), n("f")], axis=2),
        id="transpose-stack-last",
    ),
]


@pytest.mark.parametrize(("operation", "numpy_operation"), AXIS_CHANGES)
def test_axis_changes_of_sharded_zarr_read_like_numpy(
    sharded_zarr: tuple[vc.VirtualGroup, vc.ObjectStoreRegistry, dict[str, npt.NDArray[Any]]],
    operation: Callable[[Virtual], vc.VirtualArray],
    numpy_operation: Callable[[Values], npt.NDArray[Any]],
) -> None:
    group, registry, expected = sharded_zarr

    def virtual(name: str) -> vc.VirtualArray:
        array = group[name]
        assert isinstance(array, vc.VirtualArray)
        return array

    result = operation(virtual)
    np.testing.assert_array_equal(_served(result, registry), numpy_operation(expected.__getitem__))


# ---- rename_paths -----------------------------------------------------------------------


@pytest.fixture
def two_files(make_virtual: Factory) -> vc.VirtualArray:
    return make_virtual(
        (6,),
        (1,),
        paths=["file:///old/a.nc", "file:///old/b.nc", "file:///old/a.nc"],
        missing=[5],
        chunk_nbytes=8,
    )


def test_rename_paths_with_a_callable(two_files: vc.VirtualArray) -> None:
    snapshot = _snapshot([two_files])
    renamed = vc.rename_paths(two_files, lambda p: p.replace("file:///old/", "s3://bucket/"))
    assert renamed.manifest.dictionary.to_pylist() == ["s3://bucket/a.nc", "s3://bucket/b.nc"]
    paths, offsets, lengths = _dense(renamed)
    a_nc, b_nc = "s3://bucket/a.nc", "s3://bucket/b.nc"
    assert paths.tolist() == [a_nc, b_nc, a_nc, a_nc, b_nc, ""]
    new = renamed.manifest.table.column("offset").chunk(0)
    old = two_files.manifest.table.column("offset").chunk(0)
    assert new.buffers()[1].address == old.buffers()[1].address  # rows untouched
    np.testing.assert_array_equal(offsets, _dense(two_files)[1])
    np.testing.assert_array_equal(lengths, _dense(two_files)[2])
    assert renamed.metadata == two_files.metadata
    assert [two_files] == snapshot


def test_rename_paths_with_a_partial_mapping(two_files: vc.VirtualArray) -> None:
    renamed = vc.rename_paths(two_files, {"file:///old/b.nc": "s3://bucket/b.nc"})
    assert renamed.manifest.dictionary.to_pylist() == ["file:///old/a.nc", "s3://bucket/b.nc"]
    assert _dense(renamed)[0][:3].tolist() == [
        "file:///old/a.nc",
        "s3://bucket/b.nc",
        "file:///old/a.nc",
    ]


def test_rename_paths_many_to_one_deduplicates_the_dictionary(
    two_files: vc.VirtualArray,
) -> None:
    renamed = vc.rename_paths(two_files, lambda _: "s3://bucket/all.nc")
    assert renamed.manifest.dictionary.to_pylist() == ["s3://bucket/all.nc"]
    assert _dense(renamed)[0].tolist() == ["s3://bucket/all.nc"] * 5 + [""]
    assert renamed.manifest.n_missing == 1


def test_rename_paths_many_to_one_on_a_chunked_manifest(make_virtual: Factory) -> None:
    joined = vc.concat(
        [
            make_virtual((2,), (1,), paths="file:///a.nc"),
            make_virtual((2,), (1,), paths="file:///b.nc"),
        ],
        axis=0,
    )
    renamed = vc.rename_paths(
        joined, {"file:///a.nc": "file:///c.nc", "file:///b.nc": "file:///c.nc"}
    )
    assert renamed.manifest.paths.num_chunks == 2
    assert renamed.manifest.dictionary.to_pylist() == ["file:///c.nc"]
    assert _dense(renamed)[0].tolist() == ["file:///c.nc"] * 4


def test_rename_paths_identity_is_equal(two_files: vc.VirtualArray) -> None:
    assert vc.rename_paths(two_files, lambda p: p) == two_files
    assert vc.rename_paths(two_files.manifest, {}) == two_files.manifest


@pytest.mark.parametrize("result", ["", None, 3])
def test_rename_paths_must_give_a_non_empty_string(
    two_files: vc.VirtualArray, result: object
) -> None:
    with pytest.raises(InvalidManifestError) as info:
        vc.rename_paths(two_files, lambda _: result)  # type: ignore[arg-type,return-value]
    assert str(info.value) == (
        f"renaming path 'file:///old/a.nc' gave {result!r}: expected a non-empty string"
    )


def test_rename_paths_on_a_group_renames_arrays_and_sources(make_virtual: Factory) -> None:
    loaded = vc.LoadedArray.from_numpy(np.arange(3))
    group = vc.VirtualGroup(
        arrays={"top": make_virtual((2,), (1,), paths="file:///old/top.nc"), "time": loaded},
        groups={
            "sub": vc.VirtualGroup(
                arrays={"deep": make_virtual((2,), (1,), paths="file:///old/deep.nc")},
                sources={"file:///old/deep.nc": vc.SourceFingerprint(size=10, etag="e")},
            )
        },
        attributes={"title": "demo"},
        sources={"file:///old/top.nc": vc.SourceFingerprint(size=3)},
    )
    snapshot = pickle.loads(pickle.dumps(group))
    renamed = vc.rename_paths(group, lambda p: p.replace("file:///old/", "s3://b/"))
    top, deep = renamed["top"], renamed["sub/deep"]
    assert isinstance(top, vc.VirtualArray)
    assert isinstance(deep, vc.VirtualArray)
    assert top.manifest.dictionary.to_pylist() == ["s3://b/top.nc"]
    assert deep.manifest.dictionary.to_pylist() == ["s3://b/deep.nc"]
    assert renamed["time"] is loaded
    assert renamed.sources == {"s3://b/top.nc": vc.SourceFingerprint(size=3)}
    assert renamed.groups["sub"].sources == {
        "s3://b/deep.nc": vc.SourceFingerprint(size=10, etag="e")
    }
    assert renamed.attributes == {"title": "demo"}
    assert group == snapshot


def test_rename_paths_with_one_path_for_references_to_one_file(make_virtual: Factory) -> None:
    one = make_virtual((4,), (1,), paths="file:///old/a.nc", missing=[2])
    renamed = vc.rename_paths(one, "s3://b/new.nc")
    assert renamed == vc.rename_paths(one, {"file:///old/a.nc": "s3://b/new.nc"})
    assert _dense(renamed)[0].tolist() == ["s3://b/new.nc"] * 2 + [""] + ["s3://b/new.nc"]
    group = vc.VirtualGroup(
        arrays={"x": one, "time": vc.LoadedArray.from_numpy(np.arange(3))},
        groups={"sub": vc.VirtualGroup(arrays={"y": one})},
        sources={"file:///old/a.nc": vc.SourceFingerprint(size=3)},
    )
    renamed_group = vc.rename_paths(group, "s3://b/new.nc")
    assert referenced_paths(renamed_group) == ["s3://b/new.nc"]
    assert renamed_group.sources == {"s3://b/new.nc": vc.SourceFingerprint(size=3)}
    empty = vc.ChunkManifest.empty((3,))
    assert vc.rename_paths(empty, "s3://b/new.nc") == empty


def test_rename_paths_with_one_path_refuses_references_to_several_files(
    two_files: vc.VirtualArray, make_virtual: Factory
) -> None:
    with pytest.raises(vc.AmbiguousRenameError) as info:
        vc.rename_paths(two_files, "s3://b/new.nc")
    assert str(info.value) == (
        "cannot point every chunk reference to 's3://b/new.nc': they reference 2 files "
        "(file:///old/a.nc, file:///old/b.nc); pass a callable or a mapping old path -> new path"
    )
    group = vc.VirtualGroup(
        arrays={"a": make_virtual((2,), (1,), paths="file:///a.nc")},
        groups={
            "sub": vc.VirtualGroup(arrays={"b": make_virtual((2,), (1,), paths="file:///b.nc")})
        },
    )
    with pytest.raises(vc.AmbiguousRenameError, match="they reference 2 files"):
        vc.rename_paths(group, "s3://b/new.nc")
    with pytest.raises(InvalidManifestError, match="empty string"):
        vc.rename_paths(group["a"], "")


def test_referenced_paths_counts_only_the_chunks_still_referenced(
    two_files: vc.VirtualArray,
) -> None:
    assert referenced_paths(two_files) == ["file:///old/a.nc", "file:///old/b.nc"]
    first = vc.select_chunks(two_files, [slice(0, 1)])
    assert first.manifest.dictionary.to_pylist() == ["file:///old/a.nc", "file:///old/b.nc"]
    assert referenced_paths(first) == ["file:///old/a.nc"]
    renamed = vc.rename_paths(first, "s3://b/a.nc")
    assert _dense(renamed)[0].tolist() == ["s3://b/a.nc"]


def test_rename_paths_leaves_loaded_arrays_and_empty_manifests_alone() -> None:
    loaded = vc.LoadedArray.from_numpy(np.arange(3))
    assert vc.rename_paths(loaded, str.upper) is loaded
    empty = vc.ChunkManifest.empty((3,))
    assert vc.rename_paths(empty, lambda _: "") is empty


def test_rename_paths_refuses_other_types() -> None:
    with pytest.raises(TypeError, match="rename_paths expects a manifest, array or group, got int"):
        vc.rename_paths(3, str.upper)  # type: ignore[call-overload]


def test_plain_paths_become_file_urls_once(make_virtual: Factory) -> None:
    """Paths become URLs at the manifest boundary; a mapping may still name plain paths."""
    array = make_virtual(
        (4,), (1,), paths=["/data/a.nc", "file:///data/a.nc", "b.nc", "/x/../c.nc"]
    )
    assert array.manifest.dictionary.to_pylist() == [
        "file:///data/a.nc",
        f"file://{os.getcwd()}/b.nc",
        "file:///c.nc",
    ]
    renamed = vc.rename_paths(array, {"/data/a.nc": "s3://bucket/a.nc"})
    assert renamed.manifest.dictionary.to_pylist()[0] == "s3://bucket/a.nc"
    group = vc.VirtualGroup(sources={"/data/a.nc": vc.SourceFingerprint(size=3)})
    assert list(group.sources) == ["file:///data/a.nc"]


# ---- the gather along inner axes ----------------------------------------------------------


def _files_along(n_files: int, grid: tuple[int, ...]) -> list[vc.VirtualArray]:
    """``n_files`` arrays of ``grid`` chunks, each over its own file, some chunks missing."""
    arrays = []
    for i in range(n_files):
        n_chunks = int(np.prod(grid))
        paths = np.full(n_chunks, f"s3://bucket/f{i}.nc", dtype=np.dtypes.StringDType())
        paths[(np.arange(n_chunks) + i) % 5 == 0] = ""
        offsets = np.arange(n_chunks, dtype=np.uint64) * 7 + np.uint64(i << 32)
        lengths = np.arange(n_chunks, dtype=np.uint64) % 11 + np.uint64(i)
        manifest = vc.ChunkManifest.from_arrays(
            paths=paths.reshape(grid), offsets=offsets.reshape(grid), lengths=lengths.reshape(grid)
        )
        shape = tuple(2 * g for g in grid)
        arrays.append(
            vc.VirtualArray(
                vc.ArrayMetadata(shape=shape, chunk_grid=(2, 2, 2), dtype="f4"), manifest
            )
        )
    return arrays


@pytest.mark.parametrize("axis", [1, 2])
def test_threaded_gather_equals_numpy_on_the_dense_columns(
    axis: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large results fill their columns in threads: the same references, in the same places."""
    import vzcore.algebra as algebra_module

    arrays = _files_along(12, (3, 4, 5))
    sequential = vc.concat(arrays, axis=axis)
    monkeypatch.setattr(algebra_module, "_THREADED_GATHER_ROWS", 0)
    threaded = vc.concat(arrays, axis=axis)
    assert threaded == sequential
    dense = [a.manifest.to_arrays() for a in arrays]
    for got, k in zip(threaded.manifest.to_arrays(), range(3), strict=True):
        np.testing.assert_array_equal(got, np.concatenate([d[k] for d in dense], axis=axis))
