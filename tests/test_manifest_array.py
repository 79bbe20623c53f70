"""Examples for `vzxarray.manifest_array`: the duck array that never loads values."""

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

import vzcore as vc
from vzxarray import ManifestArray, VirtualValuesError
from vzxarray.manifest_array import NullMask


def virtual(
    shape: Sequence[int],
    chunk_shape: Sequence[int],
    *,
    dtype: str = "f4",
    path: str = "file:///data/a.nc",
    first_offset: int = 0,
    missing: Sequence[int] = (),
    **metadata: Any,
) -> vc.VirtualArray:
    """Chunk ``i`` (C order) is 100 bytes at ``first_offset + 100 * i`` of ``path``."""
    meta = vc.ArrayMetadata.create(shape=shape, chunk_shape=chunk_shape, dtype=dtype, **metadata)
    grid = meta.grid_shape
    n_chunks = int(np.prod(grid))
    paths = np.full(n_chunks, path, dtype=object)
    paths[list(missing)] = ""
    offsets = first_offset + 100 * np.arange(n_chunks)
    manifest = vc.ChunkManifest.from_arrays(
        paths=paths.reshape(grid),
        offsets=offsets.reshape(grid),
        lengths=np.full(grid, 100),
    )
    return vc.VirtualArray(meta, manifest)


def manifest_array(*args: Any, **kwargs: Any) -> ManifestArray:
    return ManifestArray(virtual(*args, **kwargs))


# ---- what it is ---------------------------------------------------------------------------


def test_shape_dtype_and_sizes() -> None:
    array = manifest_array((5, 7), (2, 3), dtype=">i2", missing=[1])
    assert array.shape == (5, 7)
    assert array.dtype == np.dtype("i2")  # the decoded dtype; the byte order is the codec's
    assert array.metadata.endian == "big"
    assert array.ndim == 2
    assert array.size == 35
    assert array.nbytes == 8 * 100  # referenced bytes of the 8 present chunks, not 35 * 2
    assert len(array) == 5
    assert np.shape(array) == (5, 7)
    assert np.ndim(array) == 2
    assert array.virtual == virtual((5, 7), (2, 3), dtype=">i2", missing=[1])
    assert array.metadata is array.virtual.metadata
    assert array.manifest is array.virtual.manifest


def test_repr() -> None:
    array = manifest_array((5, 7), (2, 3), missing=[1, 4])
    assert repr(array) == (
        "ManifestArray<shape=(5, 7), dtype=float32, chunks=(2, 3), 7 chunk refs>"
    )
    assert array._repr_inline_(100) == (
        "ManifestArray<7 refs, 2 missing in 1 file(s), 700 B, chunks=(2, 3), codecs=bytes>"
    )
    assert array._repr_inline_(35) == "7 refs·1 file·2 missing·700 B"
    assert array._repr_inline_(20) == "7 refs·1 file·2 m..."


def test_a_zero_d_array() -> None:
    scalar = manifest_array((), ())
    assert scalar.shape == ()
    assert scalar.size == 1
    assert scalar[...].virtual == scalar.virtual
    assert scalar[()].virtual == scalar.virtual
    with pytest.raises(TypeError, match="len"):
        len(scalar)


def test_it_wraps_only_virtual_arrays() -> None:
    loaded = vc.LoadedArray.from_numpy(np.arange(3))
    with pytest.raises(TypeError, match="ManifestArray wraps a VirtualArray, got LoadedArray"):
        ManifestArray(loaded)  # type: ignore[arg-type]


def test_it_is_unhashable() -> None:
    with pytest.raises(TypeError, match="unhashable"):
        hash(manifest_array((4,), (2,)))


# ---- the numpy functions xarray combines with ---------------------------------------------


def test_concatenate_is_vzcore_concat() -> None:
    a, b = virtual((4, 6), (2, 3)), virtual((2, 6), (2, 3), path="file:///data/b.nc")
    result = np.concatenate([ManifestArray(a), ManifestArray(b)])
    assert isinstance(result, ManifestArray)
    assert result.virtual == vc.concat([a, b], axis=0)
    c = virtual((4, 3), (2, 3), path="file:///data/c.nc")
    along_1 = np.concatenate([ManifestArray(a), ManifestArray(c)], axis=1)
    assert along_1.virtual == vc.concat([a, c], axis=1)
    assert along_1.shape == (4, 9)


def test_stack_is_vzcore_stack() -> None:
    a, b = virtual((4, 6), (2, 3)), virtual((4, 6), (2, 3), path="file:///data/b.nc")
    for axis in (0, 1, 2, -1):
        result = np.stack([ManifestArray(a), ManifestArray(b)], axis=axis)
        assert result.virtual == vc.stack([a, b], axis=axis)


def test_expand_dims_is_vzcore_expand_dims() -> None:
    a = virtual((4, 6), (2, 3))
    assert np.expand_dims(ManifestArray(a), 1).virtual == vc.expand_dims(a, axis=1)
    twice = np.expand_dims(ManifestArray(a), (0, 3))
    assert twice.shape == np.expand_dims(np.zeros((4, 6)), (0, 3)).shape == (1, 4, 6, 1)
    assert twice.virtual == vc.expand_dims(vc.expand_dims(a, axis=0), axis=3)


def test_broadcast_to_is_vzcore_broadcast_to() -> None:
    a = virtual((1, 6), (1, 3))
    result = np.broadcast_to(ManifestArray(a), (3, 4, 6))
    assert result.virtual == vc.broadcast_to(a, (3, 4, 6))
    assert result.manifest.n_chunks == 3 * 4 * 2


def test_result_type() -> None:
    a, b = manifest_array((4,), (2,), dtype="f4"), manifest_array((4,), (2,), dtype="i2")
    assert np.result_type(a, a) == np.dtype("f4")
    assert np.result_type(a, b) == np.result_type(np.float32, np.int16)
    assert np.result_type(a, np.dtype("f8")) == np.dtype("f8")
    assert np.result_type(a, "f8") == np.dtype("f8")


def test_result_type_with_a_scalar_type() -> None:
    assert np.result_type(manifest_array((4,), (2,)), np.float64) == np.dtype("f8")


def test_full_like_needs_only_the_shape() -> None:
    mask = np.full_like(manifest_array((2, 3), (1, 3)), False, dtype=bool)
    assert isinstance(mask, np.ndarray)
    np.testing.assert_array_equal(mask, np.zeros((2, 3), bool))


def test_combining_with_numpy_values_is_refused() -> None:
    a = manifest_array((4,), (2,))
    with pytest.raises(VirtualValuesError, match=r"with ndarray: load every variable"):
        np.concatenate([a, np.zeros(4)])
    with pytest.raises(VirtualValuesError, match="out= is not supported"):
        np.concatenate([a, a], out=np.zeros(8))


def test_incompatible_arrays_raise_the_core_errors() -> None:
    a, b = manifest_array((4, 4), (2, 2)), manifest_array((4, 4), (2, 4))
    with pytest.raises(vc.ChunkShapeMismatch) as info:
        np.concatenate([a, b])
    assert str(info.value) == (
        "cannot concatenate: array 1 (file:///data/a.nc) has chunk shape (2, 4), "
        "array 0 (file:///data/a.nc) has (2, 2)"
    )
    with pytest.raises(vc.PartialChunkError):
        np.concatenate([manifest_array((4, 3), (2, 2)), a], axis=1)


def test_chunk_lengths_along_the_axis_may_differ() -> None:
    a, b = manifest_array((4, 4), (2, 2)), manifest_array((4, 4), (4, 2))
    joined = np.concatenate([a, b])
    assert joined.metadata.chunk_grid == vc.RectilinearChunkGrid(((2, 2, 4), 2))
    assert joined[2:8].metadata.chunk_grid == vc.RectilinearChunkGrid(((2, 4), 2))
    with pytest.raises(vc.PartialChunkError, match="chunk boundaries"):
        joined[3:]
    same = joined == np.concatenate([a, b])
    assert same.shape == (8, 4)
    assert same.all()


# ---- indexing -----------------------------------------------------------------------------


def test_whole_array_indexing_returns_the_same_array() -> None:
    a = virtual((4, 6), (2, 3))
    array = ManifestArray(a)
    for key in (..., slice(None), (slice(None), slice(None)), (..., slice(None)), ()):
        assert array[key].virtual == a, key


def test_none_inserts_axes_like_numpy() -> None:
    array = manifest_array((4, 6), (2, 3))
    values = np.zeros((4, 6))
    for key in (None, (None, ...), (..., None), (slice(None), None), (None, slice(2, 4), None)):
        assert array[key].shape == values[key].shape, key
    assert array[:, None].virtual == vc.expand_dims(array.virtual, axis=1)


def test_chunk_aligned_slices_select_chunks() -> None:
    a = virtual((5, 7), (2, 3))
    array = ManifestArray(a)
    assert array[2:4].virtual == vc.select_chunks(a, [slice(2, 4), slice(None)])
    assert array[2:, 3:].shape == (3, 4)  # to the end: the partial edge chunk is kept
    assert (
        array[:, -1:].virtual
        == array[:, 6:].virtual
        == vc.select_chunks(a, [slice(None), slice(6, 7)])
    )
    assert array[..., 3:6].virtual == vc.select_chunks(a, [slice(None), slice(3, 6)])
    assert array[4:2].shape == (0, 7)


def test_integers_index_axes_of_chunk_length_one() -> None:
    a = virtual((3, 4, 6), (1, 2, 3))
    array = ManifestArray(a)
    first = array[0]
    assert first.shape == (4, 6)
    assert first.virtual == vc.squeeze(
        vc.select_chunks(a, [slice(0, 1), *[slice(None)] * 2]), axis=0
    )
    assert array[-1].virtual == array[2].virtual
    assert array[np.int64(1), 2:4].shape == (2, 6)


def test_misaligned_slices_are_partial_chunks() -> None:
    array = manifest_array((5, 7), (2, 3))
    for key in (slice(1, 3), (slice(None), slice(0, 2)), slice(None, None, 2), slice(0, 3)):
        with pytest.raises(vc.PartialChunkError, match="chunk boundaries"):
            array[key]


def test_an_integer_along_a_longer_chunk_is_refused() -> None:
    with pytest.raises(vc.PartialChunkError):
        manifest_array((4,), (2,))[0]


@pytest.mark.parametrize(
    "key",
    [
        [0, 1],
        (slice(None), [0]),
        np.array([0, 1]),
        np.array([True, False, True, False]),
        (np.array([0, 1]), slice(None)),
    ],
)
def test_fancy_indexing_needs_values(key: Any) -> None:
    with pytest.raises(VirtualValuesError, match="only slices on chunk boundaries"):
        manifest_array((4, 6), (1, 3))[key]


def test_index_errors() -> None:
    array = manifest_array((4, 6), (1, 3))
    with pytest.raises(IndexError, match="single ellipsis"):
        array[..., ...]
    with pytest.raises(IndexError, match="too many indices"):
        array[0, 0, 0]
    with pytest.raises(IndexError, match="too many indices"):
        array[:, :, :]


def test_none_after_an_integer_lands_where_numpy_puts_it() -> None:
    array = manifest_array((1, 4), (1, 2))
    assert array[0, None].shape == np.zeros((1, 4))[0, None].shape == (1, 4)


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> tuple[ManifestArray, Any, Any]:
    """A sharded zarr v3 array of shape (3, 4, 6), parsed by `ZarrParser`: the array,
    the registry that reads its shards, and its values."""
    import zarr
    import zarr.storage
    from obstore.store import LocalStore

    from vzcore.parsers import ZarrParser

    folder = tmp_path_factory.mktemp("sharded")
    values = np.arange(72, dtype="i2").reshape(3, 4, 6)
    root = zarr.open_group(zarr.storage.LocalStore(folder / "s.zarr"), mode="w", zarr_format=3)
    root.create_array("v", shape=values.shape, dtype="i2", chunks=(1, 2, 1), shards=(1, 2, 3))
    root["v"][...] = values  # type: ignore[index]
    registry = vc.ObjectStoreRegistry({f"file://{folder}/": LocalStore(folder)})
    array = ZarrParser()(f"file://{folder}/s.zarr", registry)["v"]
    assert isinstance(array, vc.VirtualArray)
    return ManifestArray(array), registry, values


@pytest.mark.parametrize(
    "key",
    [0, -1, (slice(None), None), (1, None), (None, 2), (slice(1, None), None, slice(2, 4))],
    ids=repr,
)
def test_integers_and_new_axes_of_a_sharded_array_read_like_numpy(
    sharded: tuple[ManifestArray, Any, Any], key: Any
) -> None:
    import zarr

    array, registry, values = sharded
    result = array[key]
    store = vc.ManifestStore(vc.VirtualGroup(arrays={"x": result.virtual}), registry=registry)
    np.testing.assert_array_equal(zarr.open_group(store, mode="r")["x"][...], values[key])  # type: ignore[index]
    stacked = np.stack([array, array], axis=1)[:, 1]  # a new axis, then an integer along it
    assert stacked.virtual == array.virtual


def test_out_of_range_integers_raise_index_error() -> None:
    array = manifest_array((3,), (1,))
    with pytest.raises(IndexError):
        array[5]
    with pytest.raises(IndexError):
        array[-4]


# ---- everything that needs values refuses loudly ------------------------------------------

a_2d = manifest_array((4, 6), (2, 3))
NEEDS_VALUES: list[tuple[str, Callable[[], object]]] = [
    ("a + 1", lambda: a_2d + 1),
    ("1 + a", lambda: 1 + a_2d),
    ("a * a", lambda: a_2d * a_2d),
    ("-a", lambda: -a_2d),
    ("abs(a)", lambda: abs(a_2d)),
    ("a < 0", lambda: a_2d < 0),
    ("a != b", lambda: a_2d != manifest_array((4, 6), (2, 3))),
    ("a == 1", lambda: a_2d == 1),
    ("a @ a", lambda: a_2d @ a_2d),
    ("np.asarray(a)", lambda: np.asarray(a_2d)),
    ("np.array(a)", lambda: np.array(a_2d)),
    ("np.mean(a)", lambda: np.mean(a_2d)),
    ("np.sum(a)", lambda: np.sum(a_2d)),
    ("np.where(a)", lambda: np.where(a_2d)),
    ("np.sin(a)", lambda: np.sin(a_2d)),
    ("np.add(a, 1)", lambda: np.add(a_2d, 1)),
    ("bool(a)", lambda: bool(a_2d)),
    ("float(a)", lambda: float(manifest_array((), ()))),
    ("int(a)", lambda: int(manifest_array((), ()))),
]


@pytest.mark.parametrize(("what", "operation"), NEEDS_VALUES, ids=[w for w, _ in NEEDS_VALUES])
def test_operations_on_values_raise_virtual_values_error(
    what: str, operation: Callable[[], object]
) -> None:
    with pytest.raises(VirtualValuesError) as info:
        operation()
    message = str(info.value)
    assert "needs the values of a virtual variable" in message
    assert "loadable_variables" in message


def test_virtual_values_error_is_a_type_error_and_a_virtualization_error() -> None:
    assert issubclass(VirtualValuesError, TypeError)
    assert issubclass(VirtualValuesError, vc.VirtualizationError)


def test_astype_keeps_the_dtype_or_refuses() -> None:
    array = manifest_array((4,), (2,), dtype="f4")
    assert array.astype("f4") is array
    assert array.astype(np.float32, copy=False) is array
    with pytest.raises(vc.DtypeMismatch) as info:
        array.astype("f8")
    assert str(info.value).startswith(
        "cannot cast a virtual array (dtype float32, in file:///data/a.nc) to float64: "
        "the chunks on disk decode"
    )
    assert "loadable_variables=" in str(info.value)
    assert "drop_variables=" in str(info.value)


@pytest.mark.parametrize(
    ("dtype", "target"),
    [
        ("S5", "S"),
        ("S5", np.bytes_),
        ("S5", bytes),
        ("S5", "S5"),
        ("U3", "U"),
        ("U3", str),
        ("U3", "<U"),
        ("V4", "V"),
        ("M8[ns]", "M8"),
    ],
)
def test_astype_to_a_flexible_width_of_the_same_kind_keeps_the_dtype(
    dtype: str, target: Any
) -> None:
    array = manifest_array((4,), (2,), dtype=dtype)
    assert np.empty(0, dtype).astype(target).dtype == np.dtype(dtype)  # as numpy does
    assert array.astype(target) is array


@pytest.mark.parametrize(
    ("dtype", "target", "cast"),
    [("S5", "S10", "|S10"), ("S5", "U", "<U5"), ("U3", "S", "|S3"), ("u1", "u2", "uint16")],
)
def test_astype_to_another_dtype_is_refused(dtype: str, target: str, cast: str) -> None:
    with pytest.raises(vc.DtypeMismatch) as info:
        manifest_array((4,), (2,), dtype=dtype).astype(target)
    message = str(info.value)
    assert message.startswith(f"cannot cast a virtual array (dtype {np.dtype(dtype)}, in ")
    assert f") to {cast}:" in message
    assert "loadable_variables=[...]" in message
    assert "drop_variables=[...]" in message


def test_transpose_keeps_the_order_or_refuses() -> None:
    array = manifest_array((4, 6), (2, 3))
    assert array.transpose(0, 1) is array
    assert array.transpose((0, 1)) is array
    assert np.transpose(array, (0, 1)) is array
    with pytest.raises(
        VirtualValuesError, match=r"cannot transpose a virtual array to axes \(1, 0\)"
    ):
        array.transpose(1, 0)
    one_d = manifest_array((4,), (2,))
    assert one_d.T is one_d


def test_default_transpose_reverses_axes_or_refuses() -> None:
    array = manifest_array((4, 6), (2, 3))
    for transpose in (lambda: array.T, lambda: np.transpose(array)):
        try:
            result = transpose()
        except VirtualValuesError:
            continue
        assert result.shape == (6, 4)


# ---- reference equality -------------------------------------------------------------------


def test_equal_references_compare_true_everywhere() -> None:
    a, b = manifest_array((5, 7), (2, 3)), manifest_array((5, 7), (2, 3))
    same = a == b
    assert isinstance(same, np.ndarray)
    assert same.dtype == np.bool_
    assert same.shape == (5, 7)
    assert same.all()


def test_different_offsets_compare_false_in_that_chunk() -> None:
    a = virtual((5, 7), (2, 3))
    paths, offsets, lengths = a.manifest.to_arrays()
    moved = offsets.copy()
    moved[1, 2] += 1  # the partial chunk covering rows 2-3, column 6
    b = vc.VirtualArray(
        a.metadata, vc.ChunkManifest.from_arrays(paths=paths, offsets=moved, lengths=lengths)
    )
    same = ManifestArray(a) == ManifestArray(b)
    expected = np.ones((5, 7), bool)
    expected[2:4, 6:] = False
    np.testing.assert_array_equal(same, expected)


def test_other_files_or_metadata_compare_false() -> None:
    a = manifest_array((4,), (2,))
    other_file = manifest_array((4,), (2,), path="file:///data/b.nc")
    assert not (a == other_file).any()
    other_fill = manifest_array((4,), (2,), fill_value=1)
    assert not (a == other_fill).any()
    missing_both = manifest_array((4,), (2,), missing=[0])
    np.testing.assert_array_equal(missing_both == manifest_array((4,), (2,), missing=[0]), True)
    np.testing.assert_array_equal(a == missing_both, [False, False, True, True])
    with pytest.raises(ValueError, match=r"cannot compare shapes \(4,\) and \(2,\)"):
        a == manifest_array((2,), (2,))  # noqa: B015


# ---- xarray's equivalence checks: isnull masks, where, array_equal ------------------------


def _xarray_equiv(a: Any, b: Any) -> bool:
    """What xarray's ``duck_array_ops.array_equiv`` computes."""
    return bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def _xarray_notnull_equiv(a: Any, b: Any) -> bool:
    """What xarray's ``duck_array_ops.array_notnull_equiv`` computes (``no_conflicts``)."""
    return bool(np.all((a == b) | np.isnan(a) | np.isnan(b)))


def test_isnan_of_floats_and_datetimes_is_an_unknown_mask() -> None:
    for dtype in ("f4", "c8", "M8[s]"):
        mask = np.isnan(manifest_array((5, 7), (2, 3), dtype=dtype))
        assert isinstance(mask, NullMask)
        assert (mask.shape, mask.dtype, mask.ndim, mask.size) == ((5, 7), np.dtype(bool), 2, 35)
    assert isinstance(np.isnat(manifest_array((3,), (3,), dtype="m8[s]")), NullMask)
    assert "unknown without values" in repr(mask)


def test_isnan_of_integers_is_all_false() -> None:
    mask = np.isnan(manifest_array((4,), (2,), dtype="i4"))
    assert isinstance(mask, np.ndarray)
    np.testing.assert_array_equal(mask, False)


@pytest.mark.parametrize("equiv", [_xarray_equiv, _xarray_notnull_equiv])
def test_the_same_references_are_equivalent_nan_included(equiv: Callable[..., bool]) -> None:
    a = manifest_array((5, 7), (2, 3), fill_value=np.nan, missing=[1])
    b = manifest_array((5, 7), (2, 3), fill_value=np.nan, missing=[1])
    assert equiv(a, b)
    assert equiv(a, a)


@pytest.mark.parametrize("equiv", [_xarray_equiv, _xarray_notnull_equiv])
def test_other_references_are_not_known_equivalent(equiv: Callable[..., bool]) -> None:
    """Other bytes may hold equal values: without reading them, vz refuses to tell."""
    a = manifest_array((4, 6), (2, 3))
    for other in (
        manifest_array((4, 6), (2, 3), path="file:///data/b.nc"),
        manifest_array((4, 6), (2, 3), first_offset=100),  # all but the last chunk moved
        manifest_array((4, 6), (2, 3), dtype="f8"),
    ):
        with pytest.raises(VirtualValuesError, match="needs the values"):
            equiv(a, other)


def test_masks_answer_only_what_does_not_depend_on_them() -> None:
    a = manifest_array((4,), (2,))
    mask = np.isnan(a)
    assert isinstance(mask & np.isnan(a), NullMask)
    assert isinstance(mask | mask, NullMask)
    assert isinstance(~mask, NullMask)
    assert isinstance(np.logical_not(mask), NullMask)
    assert mask.astype(bool) is mask
    np.testing.assert_array_equal(np.ones(4, bool) | mask, True)
    np.testing.assert_array_equal(mask | True, True)
    np.testing.assert_array_equal(np.zeros(4, bool) & mask, False)
    np.testing.assert_array_equal(np.logical_and(False, mask), False)
    for needs_values in (
        lambda: np.array([True, False, True, True]) | mask,
        lambda: mask & True,
        lambda: np.all(mask),
        lambda: np.sum(mask),
        lambda: np.asarray(mask),
        lambda: bool(mask),
        lambda: mask.astype("i1"),
        lambda: mask | a,
        lambda: np.add(mask, 1),
    ):
        with pytest.raises(VirtualValuesError, match="needs the values"):
            needs_values()


def test_fillna_with_the_same_references_is_the_array() -> None:
    """``where(notnull(a), a, b)``: how xarray's ``fillna`` (and ``merge``) combines."""
    a = manifest_array((4,), (2,))
    same = manifest_array((4,), (2,))
    assert np.where(~np.isnan(a), a, same) is a
    assert np.where(np.isnan(a), same, a) is a
    assert np.where(np.isnan(same), same, a) is a  # where same is NaN, so is a
    with pytest.raises(VirtualValuesError, match=r"numpy\.where"):
        np.where(~np.isnan(a), a, manifest_array((4,), (2,), path="file:///data/b.nc"))
    with pytest.raises(VirtualValuesError, match=r"numpy\.where"):
        np.where(~np.isnan(manifest_array((4,), (2,), path="file:///data/b.nc")), a, same)
    with pytest.raises(VirtualValuesError, match=r"numpy\.where"):
        np.where(~np.isnan(a), a, 0.0)


def test_where_with_a_known_condition_picks_a_whole_array() -> None:
    """Integer variables have a known ``notnull``: all True (how fillna gets here)."""
    a = manifest_array((4,), (2,), dtype="i8")
    b = manifest_array((4,), (2,), dtype="i8", path="file:///data/b.nc")
    assert np.where(np.ones(4, bool), a, b) is a
    assert np.where(False, a, b) is b
    assert np.where([True, False, True, False], a, manifest_array((4,), (2,), dtype="i8")) is a
    with pytest.raises(VirtualValuesError, match=r"numpy\.where"):
        np.where([True, False, True, False], a, b)
    with pytest.raises(VirtualValuesError, match=r"numpy\.where"):
        np.where(True, a, 0.5)  # the result would be float64: not a's dtype
    with pytest.raises(VirtualValuesError, match=r"numpy\.where"):
        np.where(a, a, b)


def test_array_equal_from_references() -> None:
    a, same = manifest_array((4,), (2,)), manifest_array((4,), (2,))
    assert np.array_equal(a, same, equal_nan=True)
    assert not np.array_equal(a, manifest_array((6,), (2,)))
    ints = manifest_array((4,), (2,), dtype="i4")
    assert np.array_equal(ints, manifest_array((4,), (2,), dtype="i4"))
    with pytest.raises(VirtualValuesError):
        np.array_equal(a, same)  # NaN != NaN without equal_nan: needs the values
    with pytest.raises(VirtualValuesError):
        np.array_equal(a, manifest_array((4,), (2,), path="file:///data/b.nc"), equal_nan=True)
