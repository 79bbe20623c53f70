"""`vzcore.subchunk`, ``.vz.subchunk`` and selections off chunk boundaries: raw chunks cut.

Every split is proven by reading values back (through `ManifestStore` with zarr, through
`read_array`, and after a Kerchunk JSON round trip) and comparing them with what scipy,
netCDF4 and h5py read from the files themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import netCDF4
import numpy as np
import pytest
import xarray as xr
import zarr
from scipy.io import netcdf_file

import vzcore as vc
import vzxarray as vx
from vzcore.parsers import HDFParser, KerchunkJSONParser, NetCDF3Parser
from vzcore.read import rectilinear_chunks_enabled
from vzcore.subchunks import cut_selection

RNG = np.random.default_rng(16)
TIME, X, Y = 5, 6, 7


@pytest.fixture(scope="module")
def netcdf3_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CDF-1 file by scipy: big-endian, a record variable and non-record ones."""
    path = tmp_path_factory.mktemp("nc3") / "sample.nc"
    with netcdf_file(path, "w") as f:
        f.createDimension("time", None)
        f.createDimension("x", X)
        f.createDimension("y", Y)
        record = f.createVariable("record", "f4", ("time", "x", "y"))
        record[:] = RNG.standard_normal((TIME, X, Y)).astype("f4")
        fixed = f.createVariable("fixed", "i2", ("x", "y"))
        fixed[:] = RNG.integers(-1000, 1000, (X, Y), dtype="i2")
        series = f.createVariable("series", "f8", ("time",))
        series[:] = np.arange(TIME) * 1.5
    return path


@pytest.fixture(scope="module")
def hdf5_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Uncompressed HDF5: contiguous and chunked (edge chunks hang over), one gzip'd."""
    path = tmp_path_factory.mktemp("h5") / "sample.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("contiguous", data=RNG.standard_normal((3, 4, 5)).astype(">f8"))
        f.create_dataset(
            "chunked", data=np.arange(110, dtype="<i4").reshape(10, 11), chunks=(4, 11)
        )
        f.create_dataset("rows", data=np.arange(90, dtype="<u2").reshape(10, 9), chunks=(1, 9))
        sparse = f.create_dataset("sparse", shape=(8, 3), dtype="<i2", chunks=(2, 3), fillvalue=-5)
        sparse[2:4] = 7
        f.create_dataset(
            "compressed", data=np.arange(40, dtype="<i4").reshape(10, 4), chunks=(5, 4),
            compression="gzip",
        )  # fmt: skip
    return path


def _group(path: Path, parser: Any) -> tuple[vc.VirtualGroup, vc.ObjectStoreRegistry]:
    registry = vc.ObjectStoreRegistry.for_urls([str(path)])
    return parser(str(path), registry), registry


def served(array: vc.VirtualArray, registry: vc.ObjectStoreRegistry) -> np.ndarray:
    """The values zarr reads through a `ManifestStore` of ``array``."""
    store = vc.ManifestStore(vc.VirtualGroup(arrays={"v": array}), registry=registry)
    with rectilinear_chunks_enabled():
        values: np.ndarray = zarr.open_array(store, path="v", mode="r")[...]
    return values


def netcdf4_values(path: Path, name: str) -> np.ndarray:
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_maskandscale(False)
        return np.asarray(ds[name][...])


def h5py_values(path: Path, name: str) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return np.asarray(f[name][...])


def entries(array: vc.VirtualArray) -> list[tuple[int, int]]:
    return [(e["offset"], e["length"]) for e in array.manifest.to_entries().values()]


# ---- netCDF3 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "lengths", "grid", "chunk_lengths"),
    [
        ("record", {1: 1}, (5, 6, 1), (1, 1, 7)),
        ("record", {1: 4}, (5, 2, 1), (1, (4, 2), 7)),
        ("record", {1: 1, 2: 3}, (5, 6, 3), (1, 1, (3, 3, 1))),
        ("record", [None, 1, 2], (5, 6, 4), (1, 1, (2, 2, 2, 1))),
        ("record", {-2: 6}, (5, 1, 1), (1, 6, 7)),  # the whole chunk: no split
        ("fixed", {0: 1}, (6, 1), (1, 7)),
        ("fixed", {0: 4}, (2, 1), ((4, 2), 7)),
        ("fixed", {0: 1, 1: 2}, (6, 4), (1, (2, 2, 2, 1))),
        ("series", {0: 1}, (5,), (1,)),
    ],
)
def test_netcdf3_pieces_read_back_as_netcdf4_reads_the_file(
    netcdf3_file: Path, name: str, lengths: Any, grid: tuple[int, ...], chunk_lengths: Any
) -> None:
    group, registry = _group(netcdf3_file, NetCDF3Parser())
    array = group.arrays[name]
    assert isinstance(array, vc.VirtualArray)
    assert array.metadata.endian == "big"
    pieces = vc.subchunk(array, lengths)
    assert pieces.manifest.grid == grid
    assert pieces.metadata.chunk_grid.chunk_lengths == chunk_lengths
    assert pieces.manifest.referenced_nbytes == array.manifest.referenced_nbytes
    expected = netcdf4_values(netcdf3_file, name)
    np.testing.assert_array_equal(served(pieces, registry), expected)
    np.testing.assert_array_equal(vc.read_array(pieces, registry), expected)
    with netcdf_file(netcdf3_file, mmap=False) as f:
        np.testing.assert_array_equal(served(pieces, registry), f.variables[name][...])


def test_pieces_are_consecutive_runs_of_the_chunk(netcdf3_file: Path) -> None:
    group, _ = _group(netcdf3_file, NetCDF3Parser())
    fixed = group.arrays["fixed"]
    assert isinstance(fixed, vc.VirtualArray)
    ((offset, length),) = entries(fixed)
    pieces = vc.subchunk(fixed, {0: 1, 1: 3})
    row = Y * 2  # bytes of one row of i2
    expected = [
        (offset + r * row + start * 2, n * 2)
        for r in range(X)
        for start, n in ((0, 3), (3, 3), (6, 1))
    ]
    assert entries(pieces) == expected
    assert sum(n for _, n in expected) == length


def test_no_split_is_the_same_array(netcdf3_file: Path) -> None:
    group, _ = _group(netcdf3_file, NetCDF3Parser())
    record = group.arrays["record"]
    assert isinstance(record, vc.VirtualArray)
    assert vc.subchunk(record, {}) is record
    assert vc.subchunk(record, {0: 3, 1: 100, 2: 7}) is record


# ---- HDF5 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "lengths", "grid"),
    [
        ("contiguous", {0: 1}, (3, 1, 1)),
        ("contiguous", {0: 1, 1: 1}, (3, 4, 1)),
        ("contiguous", {0: 1, 1: 1, 2: 2}, (3, 4, 3)),
        ("contiguous", {0: 2}, (2, 1, 1)),
        ("chunked", {0: 2}, (5, 1)),  # the last chunk (8..12) keeps only 8..10
        ("chunked", {0: 3}, (5, 1)),  # 3, 1, 3, 1, then 2 held of the last 4
        ("chunked", {0: 1}, (10, 1)),
        ("chunked", {0: 1, 1: 5}, (10, 3)),
        ("rows", {1: 4}, (10, 3)),
        ("sparse", {0: 1}, (8, 1)),
        ("sparse", {0: 1, 1: 2}, (8, 2)),
    ],
)
def test_hdf5_pieces_read_back_as_h5py_reads_the_file(
    hdf5_file: Path, name: str, lengths: dict[int, int], grid: tuple[int, ...]
) -> None:
    group, registry = _group(hdf5_file, HDFParser())
    array = group.arrays[name]
    assert isinstance(array, vc.VirtualArray)
    pieces = vc.subchunk(array, lengths)
    assert pieces.manifest.grid == grid
    expected = h5py_values(hdf5_file, name)
    np.testing.assert_array_equal(served(pieces, registry), expected)
    np.testing.assert_array_equal(vc.read_array(pieces, registry), expected)


def test_an_overhanging_edge_chunk_is_cut_to_the_part_the_array_holds(hdf5_file: Path) -> None:
    group, _ = _group(hdf5_file, HDFParser())
    chunked = group.arrays["chunked"]
    assert isinstance(chunked, vc.VirtualArray)
    assert chunked.metadata.chunk_grid.axis_lengths(chunked.shape, 0).tolist() == [4, 4, 4]
    pieces = vc.subchunk(chunked, {0: 3})
    assert pieces.metadata.chunk_grid.chunk_lengths == ((3, 1, 3, 1, 2), 11)
    last_offset = entries(chunked)[-1][0]
    assert entries(pieces)[-1] == (last_offset, 2 * 11 * 4)
    assert vc.subchunk(chunked, {0: 2}).metadata.chunk_grid == vc.RegularChunkGrid((2, 11))


def test_missing_chunks_stay_missing_in_every_piece(hdf5_file: Path) -> None:
    group, registry = _group(hdf5_file, HDFParser())
    sparse = group.arrays["sparse"]
    assert isinstance(sparse, vc.VirtualArray)
    assert sparse.manifest.n_missing == 3
    pieces = vc.subchunk(sparse, {0: 1, 1: 2})
    assert pieces.manifest.n_missing == 3 * 2 * 2
    paths, offsets, lengths = pieces.manifest.to_arrays()
    assert (paths != "").sum() == 4
    assert (offsets[paths == ""] == 0).all()
    assert (lengths[paths == ""] == 0).all()
    values = served(pieces, registry)
    np.testing.assert_array_equal(values, h5py_values(hdf5_file, "sparse"))
    assert (values[:2] == -5).all()


# ---- refusals -----------------------------------------------------------------------------


def test_compressed_chunks_are_refused(hdf5_file: Path) -> None:
    group, _ = _group(hdf5_file, HDFParser())
    compressed = group.arrays["compressed"]
    assert isinstance(compressed, vc.VirtualArray)
    with pytest.raises(vc.SubchunkError, match=r"encoded \(bytes, numcodecs.zlib\)") as info:
        vc.subchunk(compressed, {0: 1})
    assert str(hdf5_file) in str(info.value)
    assert "axes 0" in str(info.value)
    assert vc.subchunk(compressed, {0: 5}) is compressed  # nothing to cut: nothing refused


def test_pieces_that_are_not_contiguous_are_refused(netcdf3_file: Path) -> None:
    group, _ = _group(netcdf3_file, NetCDF3Parser())
    fixed = group.arrays["fixed"]
    assert isinstance(fixed, vc.VirtualArray)
    with pytest.raises(vc.SubchunkError) as info:
        vc.subchunk(fixed, {1: 2})
    message = str(info.value)
    assert str(netcdf3_file) in message
    assert "along axis 1 into pieces of 2" in message
    assert "axis 0 has pieces of length 6 (chunk length 6)" in message
    assert "not be contiguous" in message
    with pytest.raises(vc.SubchunkError, match="axis 0 has pieces of length 2"):
        vc.subchunk(fixed, {0: 2, 1: 2})
    assert isinstance(info.value, vc.PartialChunkError)


def test_fortran_order_is_refused() -> None:
    meta = vc.ArrayMetadata.from_zarr_v2(
        {
            "zarr_format": 2,
            "shape": [4, 6],
            "chunks": [4, 6],
            "dtype": "<f4",
            "compressor": None,
            "filters": None,
            "fill_value": 0,
            "order": "F",
        }
    )
    array = vc.VirtualArray(
        meta, vc.ChunkManifest.from_entries({"0.0": {"path": "/f.bin", "offset": 0, "length": 96}})
    )
    with pytest.raises(vc.SubchunkError, match="Fortran order"):
        vc.subchunk(array, {0: 1})


def test_references_of_the_wrong_length_are_refused() -> None:
    meta = vc.ArrayMetadata(shape=(4, 3), chunk_grid=(2, 3), dtype="<i4")
    manifest = vc.ChunkManifest.from_entries(
        {
            "0.0": {"path": "/a.bin", "offset": 0, "length": 24},
            "1.0": {"path": "/a.bin", "offset": 24, "length": 20},
        }
    )
    with pytest.raises(vc.SubchunkError, match=r"chunk 1\.0 references 20 bytes, but its"):
        vc.subchunk(vc.VirtualArray(meta, manifest), {0: 1})


@pytest.mark.parametrize(
    ("lengths", "match"),
    [
        ({2: 1}, "axis 2 is not an axis of a 2-d array"),
        ({0: 0}, "must be a positive integer, got 0"),
        ({0: 1.5}, "must be a positive integer"),
        ({True: 1}, "is not an axis"),
        ([1], "1 piece lengths given for a 2-d array"),
        ("1", "takes a mapping"),
    ],
)
def test_malformed_requests_are_refused(lengths: Any, match: str) -> None:
    meta = vc.ArrayMetadata(shape=(4, 3), chunk_grid=(2, 3), dtype="<i4")
    array = vc.VirtualArray(meta, vc.ChunkManifest.empty((2, 1)))
    with pytest.raises(vc.SubchunkError, match=match):
        vc.subchunk(array, lengths)


def test_too_many_pieces_are_refused_before_any_is_made() -> None:
    meta = vc.ArrayMetadata(shape=(2**40,), chunk_grid=(2**40,), dtype="u1")
    array = vc.VirtualArray(
        meta, vc.ChunkManifest.from_entries({"0": {"path": "/a", "offset": 0, "length": 2**40}})
    )
    with pytest.raises(vc.LimitExceededError, match="max_chunks"):
        vc.subchunk(array, {0: 1})


# ---- selections that cut raw chunks -------------------------------------------------------


SELECTIONS = [
    (slice(1, 4), slice(2, 5)),
    (slice(0, 6), slice(1, 2)),
    (slice(2, 3), slice(None)),
    (slice(5, 6), slice(6, 7)),
    (slice(3, 3), slice(1, 2)),
    (slice(-2, None), slice(None, -3)),
]


@pytest.mark.parametrize("selection", SELECTIONS)
def test_cutting_selections_equal_numpy_slicing(
    netcdf3_file: Path, selection: tuple[slice, ...]
) -> None:
    group, registry = _group(netcdf3_file, NetCDF3Parser())
    fixed = group.arrays["fixed"]
    assert isinstance(fixed, vc.VirtualArray)
    part = vc.select_slices(fixed, list(selection))
    expected = netcdf4_values(netcdf3_file, "fixed")[selection]
    assert part.shape == expected.shape
    np.testing.assert_array_equal(served(part, registry), expected)


@pytest.mark.parametrize(
    "selection",
    [
        (slice(1, 9), slice(2, 5)),
        (slice(9, 10), slice(None)),
        (slice(3, 7), slice(10, 11)),
        (slice(5, 8), slice(0, 11)),
    ],
)
def test_cutting_selections_of_chunked_hdf5(hdf5_file: Path, selection: tuple[slice, ...]) -> None:
    group, registry = _group(hdf5_file, HDFParser())
    chunked = group.arrays["chunked"]
    assert isinstance(chunked, vc.VirtualArray)
    part = vc.select_slices(chunked, list(selection))
    np.testing.assert_array_equal(
        served(part, registry), h5py_values(hdf5_file, "chunked")[selection]
    )


def test_aligned_selections_are_select_chunks(hdf5_file: Path) -> None:
    group, _ = _group(hdf5_file, HDFParser())
    chunked = group.arrays["chunked"]
    assert isinstance(chunked, vc.VirtualArray)
    selection = [slice(4, 10), slice(None)]
    assert vc.select_slices(chunked, selection) == vc.select_chunks(chunked, selection)


def test_cutting_compressed_chunks_is_refused_as_before(hdf5_file: Path) -> None:
    group, _ = _group(hdf5_file, HDFParser())
    compressed = group.arrays["compressed"]
    assert isinstance(compressed, vc.VirtualArray)
    with pytest.raises(vc.PartialChunkError, match="chunk boundaries") as info:
        vc.select_slices(compressed, [slice(1, 3), slice(None)])
    assert not isinstance(info.value, vc.SubchunkError)
    with pytest.raises(vc.PartialChunkError, match="chunk boundaries"):
        vc.select_slices(compressed, [slice(0, 10, 2), slice(None)])


# ---- xarray: ds.vz.subchunk, isel, and Dataset.chunk ---------------------------------------


def _open(path: Path, **options: Any) -> tuple[xr.Dataset, vc.ObjectStoreRegistry]:
    registry = vc.ObjectStoreRegistry.for_urls([str(path)])
    return vx.open_virtual_dataset(str(path), registry=registry, **options), registry


def read_back(ds: xr.Dataset, registry: vc.ObjectStoreRegistry) -> xr.Dataset:
    """The values of a virtual dataset, as xarray reads them through a `ManifestStore`."""
    store = vc.ManifestStore(ds.vz.to_virtual_group(), registry=registry)
    with rectilinear_chunks_enabled():
        return xr.open_zarr(store, consolidated=False, mask_and_scale=False).load()


def test_dataset_subchunk_splits_every_virtual_variable_with_the_dimension(
    netcdf3_file: Path,
) -> None:
    ds, registry = _open(netcdf3_file, loadable_variables=["series"])
    split = ds.vz.subchunk(x=1, y=3)
    record, fixed = split["record"].data, split["fixed"].data
    assert isinstance(record, vx.ManifestArray)
    assert isinstance(fixed, vx.ManifestArray)
    assert record.manifest.grid == (TIME, X, 3)
    assert fixed.manifest.grid == (X, 3)
    assert split["series"].variable._data is ds["series"].variable._data  # loaded: untouched
    assert ds["record"].data.manifest.grid == (TIME, 1, 1)  # the input is unchanged
    assert split.vz.subchunk({"time": 1}).equals(split)  # record chunks have 1 step already
    with xr.open_dataset(netcdf3_file, engine="scipy", mask_and_scale=False) as expected:
        back = read_back(split, registry)
        for name in ("record", "fixed"):
            np.testing.assert_array_equal(back[name].values, expected[name].values)


def test_subchunked_dataset_round_trips_through_kerchunk_json(
    netcdf3_file: Path, tmp_path: Path
) -> None:
    ds, registry = _open(netcdf3_file)
    split = ds.vz.subchunk(x=1).vz.subchunk(y=1)
    refs = split.vz.to_kerchunk(tmp_path / "refs.json", format="json")
    reopened = vx.open_virtual_dataset(
        str(refs), registry=vc.ObjectStoreRegistry.for_urls([str(refs), str(netcdf3_file)]),
        parser=KerchunkJSONParser(),
    )  # fmt: skip
    assert reopened["fixed"].data.manifest.grid == (X, Y)
    through_fsspec = xr.open_dataset(
        "reference://", engine="zarr", mask_and_scale=False,
        backend_kwargs={"consolidated": False, "storage_options": {"fo": str(refs)}},
    )  # fmt: skip
    with netCDF4.Dataset(netcdf3_file) as nc, through_fsspec:
        nc.set_auto_maskandscale(False)
        back = read_back(reopened, registry)
        for name in ("record", "fixed", "series"):
            np.testing.assert_array_equal(back[name].values, nc[name][...])
            np.testing.assert_array_equal(through_fsspec[name].values, nc[name][...])


def test_dataarray_subchunk(hdf5_file: Path) -> None:
    ds, registry = _open(hdf5_file, loadable_variables=[])
    rows = ds["chunked"]
    dim = rows.dims[0]
    split = rows.vz.subchunk({dim: 3})
    assert isinstance(split, xr.DataArray)
    assert split.data.metadata.chunk_grid.chunk_lengths == ((3, 1, 3, 1, 2), 11)
    values = vc.read_array(split.data.virtual, registry)
    np.testing.assert_array_equal(values, h5py_values(hdf5_file, "chunked"))


def test_subchunk_refusals_name_the_variable(netcdf3_file: Path, hdf5_file: Path) -> None:
    ds, _ = _open(netcdf3_file)
    with pytest.raises(vc.SubchunkError, match="variable 'fixed': cannot split") as info:
        ds.vz.subchunk(y=2)
    assert "not be contiguous" in str(info.value)
    with pytest.raises(vc.SubchunkError, match=r"not dimensions of the dataset"):
        ds.vz.subchunk(level=2)
    with pytest.raises(vc.SubchunkError, match="not both"):
        ds.vz.subchunk({"x": 1}, y=1)
    h5, _ = _open(hdf5_file, loadable_variables=[])
    dim = h5["compressed"].dims[0]
    with pytest.raises(vc.SubchunkError, match=r"variable 'compressed'.*encoded"):
        h5[["compressed"]].vz.subchunk({dim: 1})


CHUNK_CALLS: dict[str, Callable[[xr.Dataset], Any]] = {
    "dataset": lambda ds: ds[["record"]].chunk(time=1),
    "dataarray": lambda ds: ds["record"].chunk({"x": 2}),
    "variable": lambda ds: ds["record"].variable.chunk(),
    "whole": lambda ds: ds[["record"]].chunk(),
}


@pytest.mark.parametrize("how", sorted(CHUNK_CALLS))
def test_dask_chunking_of_virtual_variables_is_refused(netcdf3_file: Path, how: str) -> None:
    ds, _ = _open(netcdf3_file)
    expected = r"variable 'record'.*ds\.vz\.subchunk"
    with pytest.raises(vx.VirtualChunkingError, match=expected) as info:
        CHUNK_CALLS[how](ds)
    assert isinstance(info.value, vc.VirtualizationError)
    assert "to_dataset(chunks=...)" in str(info.value)


def test_loaded_variables_still_chunk_with_dask(netcdf3_file: Path) -> None:
    ds, _ = _open(netcdf3_file, loadable_variables=["series"])
    chunked = ds[["series"]].chunk(time=2)
    assert chunked["series"].chunks == ((2, 2, 1),)


@pytest.mark.parametrize(
    "indexers",
    [
        {"x": slice(1, 4)},
        {"x": slice(1, 4), "y": slice(2, 6)},
        {"x": 3},
        {"x": 2, "y": slice(0, 3)},
        {"time": slice(1, 3), "x": slice(2, 5), "y": 4},
        {"y": slice(-3, None)},
    ],
)
def test_isel_that_cuts_raw_chunks_equals_numpy_slicing(
    netcdf3_file: Path, indexers: dict[str, Any]
) -> None:
    ds, registry = _open(netcdf3_file)
    part = ds.isel(indexers)
    with xr.open_dataset(netcdf3_file, engine="scipy", mask_and_scale=False) as full:
        expected = full.isel(indexers)
        back = read_back(part, registry)
        for name in ("record", "fixed", "series"):
            assert isinstance(part[name].data, vx.ManifestArray)
            np.testing.assert_array_equal(back[name].values, expected[name].values)


def test_an_overhanging_chunk_before_the_cut_axis_is_cut_to_one_element(tmp_path: Path) -> None:
    """Found by a law: a chunk stored 2 long holding 1 element, before the axis being cut."""
    path = tmp_path / "raw.bin"
    stored = np.array([[[10, 11], [98, 99]]], dtype="<i4")  # chunk (1, 2, 2); row 1 is padding
    path.write_bytes(stored.tobytes())
    meta = vc.ArrayMetadata(shape=(1, 1, 2), chunk_grid=(1, 2, 2), dtype="<i4")
    array = vc.VirtualArray(
        meta,
        vc.ChunkManifest.from_entries(
            {"0.0.0": {"path": str(path), "offset": 0, "length": stored.nbytes}}
        ),
    )
    registry = vc.ObjectStoreRegistry.for_urls([str(path)])
    pieces = vc.subchunk(array, {1: 1, 2: 1})
    assert pieces.metadata.chunk_grid == vc.RegularChunkGrid((1, 1, 1))
    assert entries(pieces) == [(0, 4), (4, 4)]
    np.testing.assert_array_equal(vc.read_array(pieces, registry), [[[10, 11]]])
    part = vc.select_slices(array, [slice(0, 1), slice(0, 1), slice(1, 2)])
    assert entries(part) == [(4, 4)]
    assert vc.select_slices(array, [slice(0, 0), slice(0, 0), slice(0, 1)]).shape == (0, 0, 1)


def test_a_cut_of_too_many_pieces_through_indexing_is_refused_by_the_limit() -> None:
    meta = vc.ArrayMetadata(shape=(2**40, 2), chunk_grid=(2**40, 2), dtype="u1")
    array = vc.VirtualArray(
        meta,
        vc.ChunkManifest.from_entries({"0.0": {"path": "/a", "offset": 0, "length": 2**41}}),
    )
    with pytest.raises(vc.LimitExceededError, match="max_chunks"):
        vx.ManifestArray(array, name="huge")[:, :1]
    assert vx.ManifestArray(array, name="huge")[:5, :1].shape == (5, 1)


def test_rectilinear_pieces_round_trip_through_icechunk_and_manifest_parquet(
    hdf5_file: Path, tmp_path: Path
) -> None:
    import icechunk

    from vzcore.writers import write_icechunk

    group, registry = _group(hdf5_file, HDFParser())
    chunked = group.arrays["chunked"]
    assert isinstance(chunked, vc.VirtualArray)
    split = vc.subchunk(chunked, {0: 3})
    assert split.metadata.chunk_grid.chunk_lengths == ((3, 1, 3, 1, 2), 11)
    pieces = vc.VirtualGroup(arrays={"v": split})
    expected = h5py_values(hdf5_file, "chunked")
    reread = vc.read_manifest_parquet(vc.write_manifest_parquet(pieces, tmp_path / "m"))
    assert reread.arrays["v"] == pieces.arrays["v"]
    folder = str(hdf5_file.parent)
    prefix = f"file://{folder}/"
    config = icechunk.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        icechunk.VirtualChunkContainer(prefix, icechunk.local_filesystem_store(folder))
    )
    credentials = icechunk.containers_credentials(
        {prefix: icechunk.Credentials.LocalFileSystemAccess()}
    )
    repository = icechunk.Repository.create(
        icechunk.in_memory_storage(), config, authorize_virtual_chunk_access=credentials
    )
    session = repository.writable_session("main")
    write_icechunk(pieces, session.store)
    session.commit("pieces")
    with rectilinear_chunks_enabled():
        stored = zarr.open_array(repository.readonly_session("main").store, path="v", mode="r")
        np.testing.assert_array_equal(stored[...], expected)
    np.testing.assert_array_equal(served(split, registry), expected)


def test_cut_selection_on_chunk_boundaries_is_select_chunks(hdf5_file: Path) -> None:
    group, _ = _group(hdf5_file, HDFParser())
    for name, spans in (("chunked", [(4, 8), (0, 11)]), ("compressed", [(5, 10), (0, 4)])):
        array = group.arrays[name]
        assert isinstance(array, vc.VirtualArray)
        expected = vc.select_chunks(array, [slice(*span) for span in spans])
        assert cut_selection(array, spans) == expected
        whole = [(0, n) for n in array.shape]
        assert cut_selection(array, whole) is array


def test_inline_chunks_are_refused_not_taken_for_missing() -> None:
    """An inline row has no reference to cut: refused, never read as a missing piece."""
    metadata = vc.ArrayMetadata.create(shape=(4,), chunk_shape=(2,), dtype="<i4")
    manifest = vc.ChunkManifest.from_arrays(
        paths=np.array(["file:///data/a.bin", ""], dtype=object),
        offsets=np.array([0, 0]),
        lengths=np.array([8, 0]),
        data=[None, np.array([5, 6], dtype="<i4").tobytes()],
    )
    with pytest.raises(vc.SubchunkError, match="held inline"):
        vc.subchunk(vc.VirtualArray(metadata, manifest), {0: 1})
