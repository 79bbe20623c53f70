"""Examples for `vzcore.array`: `VirtualArray` and `LoadedArray`."""

import pickle
from collections.abc import Callable

import attrs
import numpy as np
import pytest

import vzcore as vc
from vzcore import ArrayMetadata, ChunkManifest, InvalidManifestError, InvalidMetadataError

type Factory = Callable[..., vc.VirtualArray]


# ---- VirtualArray -----------------------------------------------------------------------


def test_virtual_array_refuses_a_manifest_on_another_grid() -> None:
    meta = ArrayMetadata.create(shape=(4, 6), chunk_shape=(2, 3), dtype="f4")
    with pytest.raises(InvalidManifestError) as info:
        vc.VirtualArray(meta, ChunkManifest.empty((2, 3)))
    assert str(info.value) == (
        "manifest grid (2, 3) does not match shape (4, 6) in chunk shape (2, 3) (grid (2, 2))"
    )


def test_virtual_array_counts_partial_edge_chunks_in_its_grid() -> None:
    meta = ArrayMetadata.create(shape=(5, 7), chunk_shape=(2, 3), dtype="f4")
    array = vc.VirtualArray(meta, ChunkManifest.empty((3, 3)))
    assert array.manifest.grid == meta.grid_shape == (3, 3)


def test_virtual_array_views(make_virtual: Factory) -> None:
    array = make_virtual((4, 6), (2, 3), dtype="i2", chunk_nbytes=11, missing=[2])
    assert array.shape == (4, 6)
    assert array.dtype == np.dtype("i2")
    assert array.ndim == 2
    assert array.chunk_shape == (2, 3)
    assert array.nbytes == 3 * 11  # referenced bytes of the present chunks
    assert repr(array) == (
        "VirtualArray(ArrayMetadata(shape=(4, 6), chunk_shape=(2, 3), dtype=int16, "
        'fill_value=np.int16(0), codecs=[bytes{"endian":"little"}], dimension_names=None), '
        "ChunkManifest(grid=(2, 2), n_chunks=4, n_missing=1, n_files=1))"
    )


def test_virtual_arrays_compare_by_value(make_virtual: Factory) -> None:
    array = make_virtual((4,), (2,))
    assert array == make_virtual((4,), (2,))
    assert array != make_virtual((4,), (2,), paths="file:///other.nc")
    assert array != make_virtual((4,), (2,), fill_value=1)
    assert pickle.loads(pickle.dumps(array)) == array
    assert hash(array) == hash(make_virtual((4,), (2,)))


@pytest.mark.parametrize("name", ["metadata", "manifest"])
def test_virtual_array_is_frozen(make_virtual: Factory, name: str) -> None:
    array = make_virtual((4,), (2,))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(array, name, getattr(array, name))


# ---- LoadedArray ------------------------------------------------------------------------


def test_loaded_array_holds_a_read_only_copy() -> None:
    values = np.arange(6, dtype="f4").reshape(2, 3)
    meta = ArrayMetadata.create(shape=(2, 3), chunk_shape=(2, 3), dtype="f4")
    array = vc.LoadedArray(meta, values)
    values[0, 0] = 100.0
    assert array.data[0, 0] == 0.0
    assert not np.shares_memory(array.data, values)
    assert not array.data.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        array.data[0, 0] = 1.0
    assert values.flags.writeable  # the caller's array is left as it was


def test_loaded_array_refuses_data_of_another_shape() -> None:
    meta = ArrayMetadata.create(shape=(2, 3), chunk_shape=(2, 3), dtype="f4")
    with pytest.raises(InvalidMetadataError) as info:
        vc.LoadedArray(meta, np.zeros((3, 2), dtype="f4"))
    assert str(info.value) == "data shape (3, 2) does not match metadata shape (2, 3)"


def test_loaded_array_refuses_data_of_another_dtype() -> None:
    meta = ArrayMetadata.create(shape=(2, 3), chunk_shape=(2, 3), dtype="f4")
    with pytest.raises(InvalidMetadataError) as info:
        vc.LoadedArray(meta, np.zeros((2, 3), dtype="f8"))
    assert str(info.value) == "data dtype float64 does not match metadata dtype float32"


def test_from_numpy_covers_the_array_with_one_chunk() -> None:
    array = vc.LoadedArray.from_numpy(
        np.arange(5, dtype=">i4"),
        dimension_names=("time",),
        attributes={"units": "days since 2000-01-01"},
        fill_value=-1,
    )
    assert array.shape == (5,)
    assert array.metadata.chunk_shape == (5,)
    assert array.dtype == np.dtype("i4")
    assert array.data.dtype.byteorder == "="  # big-endian input, native values
    np.testing.assert_array_equal(array.data, np.arange(5))
    assert array.metadata.dimension_names == ("time",)
    assert array.metadata.encoding == {"units": "days since 2000-01-01"}
    assert array.metadata.attributes == {}
    assert array.metadata.fill_value == -1
    assert array.nbytes == 20
    assert array.ndim == 1


@pytest.mark.parametrize(
    ("values", "chunk_shape", "expected_chunks"),
    [
        (np.zeros((0, 3)), None, (1, 3)),
        (np.float64(3.0), None, ()),
        ([1, 2, 3], (2,), (2,)),
        (np.array(["ab", "cde"]), None, (2,)),
        (np.array(["2000-01-01", "2000-01-02"], dtype="datetime64[D]"), None, (2,)),
    ],
)
def test_from_numpy_wraps_many_kinds_of_values(
    values: object, chunk_shape: tuple[int, ...] | None, expected_chunks: tuple[int, ...]
) -> None:
    array = vc.LoadedArray.from_numpy(values, chunk_shape=chunk_shape)  # type: ignore[arg-type]
    expected = np.asarray(values)
    np.testing.assert_array_equal(array.data, expected)
    assert array.dtype == expected.dtype
    assert array.metadata.chunk_shape == expected_chunks


def test_loaded_arrays_compare_bitwise() -> None:
    nan = vc.LoadedArray.from_numpy(np.array([np.nan, 1.0]))
    assert nan == vc.LoadedArray.from_numpy(np.array([np.nan, 1.0]))
    assert nan != vc.LoadedArray.from_numpy(np.array([np.nan, 2.0]))
    assert pickle.loads(pickle.dumps(nan)) == nan
    assert hash(nan) == hash(vc.LoadedArray.from_numpy(np.array([np.nan, 1.0])))


def test_loaded_array_is_frozen() -> None:
    array = vc.LoadedArray.from_numpy(np.arange(3))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        array.data = np.arange(4)  # type: ignore[misc]
