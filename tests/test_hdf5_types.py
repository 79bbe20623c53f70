"""`HDFParser` over HDF5 datatypes beyond plain numbers.

Compounds become zarr structs, HDF5 array types a trailing axis; both are read back
through a `ManifestStore` (zarr v3), Kerchunk JSON (zarr v2 over fsspec) and xarray,
and compared bit for bit with h5py. Types zarr cannot reference are loaded when the
caller asks, and refused otherwise with the file, the variable and the reason; so are
damaged files.
"""

from __future__ import annotations

import ctypes
import glob
import json
import os
import site
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec
import h5py
import numpy as np
import pytest
import xarray as xr
import zarr
from numpy.lib.recfunctions import repack_fields
from obstore.store import LocalStore
from zarr.storage import FsspecStore

import vzcore as vc
import vzxarray as vx
from vzcore.parsers import HDF5FormatError, HDF5UnsupportedError, HDFParser
from vzcore.writers import write_kerchunk_json

TABLES_TESTS = next(
    (Path(p) / "tables" / "tests" for p in site.getsitepackages() if (Path(p) / "tables").is_dir()),
    None,
)


def _registry(folder: Path) -> vc.ObjectStoreRegistry:
    return vc.ObjectStoreRegistry({f"file://{folder}/": LocalStore(folder)})


def _parse(path: Path, **options: Any) -> vc.VirtualGroup:
    return HDFParser(**options)(f"file://{path}", _registry(path.parent))


def same_bits(ours: Any, theirs: Any, *, where: str) -> None:
    """Equal shape, field names and every byte once both are packed in native order."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{where}: shape {ours.shape} != {theirs.shape}"
    assert ours.dtype.names == theirs.dtype.names, f"{where}: {ours.dtype} != {theirs.dtype}"
    native = repack_fields(theirs.dtype.newbyteorder("="), recurse=True)
    assert repack_fields(ours.dtype.newbyteorder("="), recurse=True) == native, where
    ours_bytes = repack_fields(ours.astype(ours.dtype.newbyteorder("=")), recurse=True)
    theirs_bytes = repack_fields(theirs.astype(theirs.dtype.newbyteorder("=")), recurse=True)
    assert ours_bytes.tobytes() == theirs_bytes.tobytes(), f"{where}: values differ"


def _manifest_values(group: vc.VirtualGroup, folder: Path, name: str) -> np.ndarray[Any, Any]:
    store = vc.ManifestStore(group, registry=_registry(folder))
    return np.asarray(zarr.open_array(store, path=name, mode="r")[...])


def _kerchunk_root(group: vc.VirtualGroup, folder: Path) -> zarr.Group:
    refs = write_kerchunk_json(group, folder / "refs.json")
    mapper = fsspec.filesystem("reference", fo=str(refs), remote_protocol="file").get_mapper("")
    return zarr.open_group(FsspecStore.from_mapper(mapper), mode="r", zarr_format=2)


# ---- compounds ---------------------------------------------------------------------------

COMPOUNDS: dict[str, np.dtype[Any]] = {
    "little": np.dtype([("a", "<i4"), ("b", "<f8")]),
    "big": np.dtype([("a", ">i4"), ("b", ">f8"), ("c", ">u2")]),
    "nested": np.dtype([("a", ">i2"), ("b", [("c", ">f4"), ("d", [("e", ">i8")])])]),
    "string_member": np.dtype([("name", "S5"), ("value", "<f4"), ("flag", "?")]),
    "single_bytes": np.dtype([("code", "u1"), ("tag", "S3")]),
    "complex_member": np.dtype([("z", "<c8"), ("n", "<i2")]),
}


def _records(dtype: np.dtype[Any], count: int) -> np.ndarray[Any, Any]:
    """Distinct values in every field (NaN in the floats too)."""
    values = np.zeros(count, dtype)
    raw = np.random.default_rng(len(dtype.descr)).integers(0, 256, count * dtype.itemsize)
    values = np.frombuffer(raw.astype("u1").tobytes(), dtype).copy()
    for name in dtype.names or ():
        if dtype[name].kind == "f":
            values[name][::3] = np.nan
        if dtype[name].kind == "b":
            values[name] = np.arange(count) % 2 == 0
    return values


def _fill(dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    return _records(dtype, 1)[0:1].reshape(())


@pytest.fixture
def compound_file(tmp_path: Path) -> Callable[[str], Path]:
    def build(kind: str) -> Path:
        dtype = COMPOUNDS[kind]
        path = tmp_path / f"{kind}.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("contiguous", data=_records(dtype, 7))
            f.create_dataset(
                "chunked", data=_records(dtype, 10), chunks=(4,), compression="gzip", shuffle=True
            )
            sparse = f.create_dataset(
                "sparse", shape=(9,), dtype=dtype, chunks=(3,), fillvalue=_fill(dtype)
            )
            sparse[3:6] = _records(dtype, 3)
        return path

    return build


@pytest.mark.parametrize("kind", sorted(COMPOUNDS))
def test_compounds_become_structs_that_read_like_h5py(
    kind: str, compound_file: Callable[[str], Path]
) -> None:
    path = compound_file(kind)
    group = _parse(path)
    kerchunk = _kerchunk_root(group, path.parent)
    with h5py.File(path, "r") as f:
        for name in ("contiguous", "chunked", "sparse"):
            array = group[name]
            assert isinstance(array, vc.VirtualArray), name
            document = array.metadata.to_zarr_v3()
            assert isinstance(document["data_type"], dict)
            assert document["data_type"]["name"] == "struct"
            assert isinstance(document["fill_value"], dict)
            theirs = f[name][()]
            where = f"{kind}:{name}"
            same_bits(_manifest_values(group, path.parent, name), theirs, where=where)
            same_bits(np.asarray(kerchunk[name][...]), theirs, where=f"{where} (kerchunk)")
    assert group["sparse"].manifest.n_missing == 2


def test_struct_documents_in_zarr_v3_and_v2_form(compound_file: Callable[[str], Path]) -> None:
    group = _parse(compound_file("big"))
    metadata = group["chunked"].metadata
    v3 = metadata.to_zarr_v3()
    assert v3["codecs"][0] == {"name": "bytes", "configuration": {"endian": "big"}}
    assert [f["name"] for f in v3["data_type"]["configuration"]["fields"]] == ["a", "b", "c"]
    zarray, _ = metadata.to_zarr_v2()
    assert zarray["dtype"] == [["a", ">i4"], ["b", ">f8"], ["c", ">u2"]]
    assert vc.ArrayMetadata.from_zarr_v3(v3) == metadata
    assert vc.ArrayMetadata.from_zarr_v2(zarray) == metadata.evolve(dimension_names=None)


def test_compounds_through_xarray(compound_file: Callable[[str], Path]) -> None:
    path = compound_file("nested")
    group = _parse(path)
    store = vc.ManifestStore(group, registry=_registry(path.parent))
    with xr.open_zarr(store, zarr_format=3, consolidated=False) as ds, h5py.File(path) as f:
        for name in ("contiguous", "chunked", "sparse"):
            same_bits(ds[name].values, f[name][()], where=name)
    virtual = vx.open_virtual_dataset(
        f"file://{path}", registry=_registry(path.parent), parser=HDFParser()
    )
    assert virtual["chunked"].dtype.names == ("a", "b")


LAYOUTS_ZARR_CANNOT_HOLD = {
    "padded": (
        np.dtype(
            {"names": ["a", "b"], "formats": ["u1", "<f8"], "offsets": [0, 8], "itemsize": 16}
        ),
        "padding or fields out of offset order",
    ),
    "mixed_byte_order": (np.dtype([("a", ">i4"), ("b", "<f8")]), "mixes big- and little-endian"),
}


@pytest.mark.parametrize("kind", sorted(LAYOUTS_ZARR_CANNOT_HOLD))
def test_compounds_zarr_cannot_lay_out_are_refused_or_loaded(kind: str, tmp_path: Path) -> None:
    dtype, reason = LAYOUTS_ZARR_CANNOT_HOLD[kind]
    path = tmp_path / "c.h5"
    values = _records(dtype, 6)
    with h5py.File(path, "w") as f:
        f.create_dataset("rec", data=values, chunks=(3,))
        f["fine"] = np.arange(3)
    with pytest.raises(HDF5UnsupportedError, match=reason) as info:
        _parse(path)
    message = str(info.value)
    assert f"file://{path}" in message
    assert "'/rec'" in message
    assert "loadable_variables=" in message
    loaded = _parse(path, loadable_variables=["rec"])["rec"]
    assert isinstance(loaded, vc.LoadedArray)
    with h5py.File(path) as f:
        theirs = f["rec"][()]
    for name in dtype.names or ():
        np.testing.assert_array_equal(loaded.data[name], theirs[name], err_msg=name)
    same_bits(
        _manifest_values(_parse(path, loadable_variables=["/rec"]), tmp_path, "rec"),
        theirs,
        where=kind,
    )


@pytest.mark.skipif(TABLES_TESTS is None, reason="PyTables is not installed")
@pytest.mark.parametrize(
    ("name", "variable"),
    [("out_of_order_types.h5", "/group/table"), ("nested-type-with-gaps.h5", "/nestedtype")],
)
def test_pytables_compounds_out_of_offset_order_load_when_asked(name: str, variable: str) -> None:
    """Fields declared in another order than their offsets, or with gaps (h5py cannot write these)."""
    assert TABLES_TESTS is not None
    path = TABLES_TESTS / name
    with pytest.raises(HDF5UnsupportedError, match="out of offset order") as info:
        _parse(path)
    assert repr(variable) in str(info.value)
    group = _parse(path, loadable_variables=[variable])
    with h5py.File(path) as f:
        same_bits(_manifest_values(group, path.parent, variable[1:]), f[variable][()], where=name)


# ---- HDF5 array types --------------------------------------------------------------------


@pytest.mark.parametrize("element_shape", [(3,), (2, 3)])
def test_array_types_become_a_trailing_axis(element_shape: tuple[int, ...], tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    dtype = np.dtype((">f4", element_shape))
    values = np.arange(8 * int(np.prod(element_shape)), dtype=">f4").reshape(8, *element_shape)
    values[1] = np.nan
    with h5py.File(path, "w") as f:
        options: dict[str, Any] = {"chunks": (3,), "compression": "gzip", "shuffle": True}
        f.create_dataset("chunked", shape=(8,), dtype=dtype, **options)[...] = values
        f.create_dataset("contiguous", shape=(8,), dtype=dtype)[...] = values
        f.create_dataset("sparse", shape=(6,), dtype=dtype, chunks=(2,))[2:4] = values[:2]
        f.create_dataset("grown", shape=(5,), maxshape=(None,), dtype=dtype, chunks=(1024,))
        f["grown"][...] = values[:5]
    group = _parse(path)
    kerchunk = _kerchunk_root(group, tmp_path)
    extra = tuple(f"{{}}_dim_{1 + i}" for i in range(len(element_shape)))
    with h5py.File(path) as f:
        for name in ("chunked", "contiguous", "sparse", "grown"):
            array = group[name]
            assert isinstance(array, vc.VirtualArray)
            assert array.shape == f[name].shape + element_shape
            assert array.metadata.dimension_names is not None
            assert array.metadata.dimension_names[1:] == tuple(e.format(name) for e in extra)
            assert array.chunk_shape[1:] == element_shape
            theirs = f[name][()]
            same_bits(_manifest_values(group, tmp_path, name), theirs, where=name)
            same_bits(np.asarray(kerchunk[name][...]), theirs, where=f"{name} (kerchunk)")
    shuffle = [c for c in group["chunked"].metadata.codecs if c.name == "numcodecs.shuffle"]
    assert shuffle[0].configuration["elementsize"] == 4 * int(np.prod(element_shape))


def test_array_type_fill_values_h5py_cannot_read_are_refused_or_loaded(tmp_path: Path) -> None:
    tables = pytest.importorskip("tables")
    path = tmp_path / "a.h5"
    with tables.open_file(path, "w") as f:
        atom = tables.Float32Atom(shape=(3,), dflt=7.5)
        f.create_carray("/", "v", atom=atom, shape=(6,), chunkshape=(2,))[2:4] = np.arange(
            6.0
        ).reshape(2, 3)
    with pytest.raises(HDF5UnsupportedError, match="fill value of HDF5 array type") as info:
        _parse(path)
    assert "'/v'" in str(info.value)
    assert "loadable_variables=" in str(info.value)
    loaded = _parse(path, loadable_variables=["v"])["v"]
    assert isinstance(loaded, vc.LoadedArray)
    with h5py.File(path) as f:
        same_bits(loaded.data, f["v"][()], where="v")


# ---- fill values HDF5 leaves undefined ---------------------------------------------------


def _hdf5_library() -> ctypes.CDLL | None:
    libs = glob.glob(os.path.join(os.path.dirname(h5py.__file__) + ".libs", "libhdf5-*.so*"))
    return ctypes.CDLL(libs[0]) if libs else None


def test_an_undefined_fill_value_is_no_fill_value(tmp_path: Path) -> None:
    library = _hdf5_library()
    if library is None:
        pytest.skip("h5py's bundled libhdf5 is not where its Linux wheels put it")
    path = tmp_path / "u.h5"
    with h5py.File(path, "w") as f:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((2,))
        # H5Pset_fill_value(plist, type, NULL) is how HDF5 makes the fill value undefined.
        assert (
            library.H5Pset_fill_value(
                ctypes.c_int64(dcpl.id), ctypes.c_int64(h5py.h5t.NATIVE_INT32.id), None
            )
            == 0
        )
        space = h5py.h5s.create_simple((6,))
        h5py.h5d.create(f.id, b"u", h5py.h5t.NATIVE_INT32, space, dcpl=dcpl)
        f["u"][0:2] = [1, 2]
    with h5py.File(path) as f:
        plist = f["u"].id.get_create_plist()
        assert plist.fill_value_defined() == h5py.h5d.FILL_VALUE_UNDEFINED
        theirs = f["u"][()]
    group = _parse(path)
    assert group["u"].metadata.fill_value == 0
    same_bits(_manifest_values(group, tmp_path, "u"), theirs, where="u")


@pytest.mark.skipif(TABLES_TESTS is None, reason="PyTables is not installed")
def test_pytables_tables_without_fill_values(tmp_path: Path) -> None:
    assert TABLES_TESTS is not None
    path = TABLES_TESTS / "ex-noattr.h5"
    group = _parse(path)
    store = vc.ManifestStore(group, registry=_registry(path.parent))
    with h5py.File(path) as f:
        table = f["detector/table"]
        assert table.id.get_create_plist().fill_value_defined() == h5py.h5d.FILL_VALUE_UNDEFINED
        same_bits(
            zarr.open_array(store, path="detector/table", mode="r")[...],
            table[()],
            where="detector/table",
        )


# ---- strings and references: loaded on request -------------------------------------------


@pytest.fixture
def strings_file(tmp_path: Path) -> Path:
    path = tmp_path / "s.nc"
    with h5py.File(path, "w") as f:
        f["station"] = np.array(["alpha", "béta", ""], dtype=h5py.string_dtype())
        f["station"].make_scale("station")
        f["temp"] = np.arange(3.0)
        f["temp"].dims[0].attach_scale(f["station"])
        f["names"] = np.array([["a", "bb"], ["ccc", "dddd"]], dtype=h5py.string_dtype("ascii"))
        f.create_dataset("points_at", data=[f["temp"].ref, h5py.Reference()], dtype=h5py.ref_dtype)
    return path


def test_strings_and_references_load_only_when_asked(strings_file: Path) -> None:
    url, registry = f"file://{strings_file}", _registry(strings_file.parent)
    with pytest.raises(HDF5UnsupportedError, match="variable-length strings") as info:
        vx.open_virtual_dataset(url, registry=registry, parser=HDFParser())
    assert url in str(info.value)
    assert "'/names'" in str(info.value)
    assert "loadable_variables=" in str(info.value)
    ds = vx.open_virtual_dataset(
        url,
        registry=registry,
        parser=HDFParser(),
        loadable_variables=["station", "names", "points_at"],
    )
    assert ds["station"].values.tolist() == ["alpha", "béta", ""]  # a dimension coordinate
    assert ds["names"].values.tolist() == [["a", "bb"], ["ccc", "dddd"]]
    assert ds["points_at"].values.tolist() == ["/temp", ""]
    dropped = vx.open_virtual_dataset(
        url, registry=registry, parser=HDFParser(), drop_variables=["names", "points_at"]
    )
    assert set(dropped.variables) == {"station", "temp"}
    assert dropped["station"].values.tolist() == ["alpha", "béta", ""]
    written = json.loads(json.dumps(ds.vz.to_kerchunk(format="dict")))
    assert "names/.zarray" in written["refs"]


def test_a_string_dimension_coordinate_loads_by_default(strings_file: Path) -> None:
    group = _parse(strings_file, drop_variables=["names", "points_at"])
    assert isinstance(group["station"], vc.LoadedArray)
    with pytest.raises(HDF5UnsupportedError, match="'/station'"):
        _parse(strings_file, drop_variables=["names", "points_at"], loadable_variables=[])


# ---- types zarr has no data type for -----------------------------------------------------


def test_enums_are_their_base_integers(tmp_path: Path) -> None:
    path = tmp_path / "e.h5"
    mapping = {"RED": 0, "GREEN": 1, "BLUE": 2}
    with h5py.File(path, "w") as f:
        f.create_dataset(
            "colour",
            data=np.array([2, 0, 1, 1], "u1"),
            dtype=h5py.enum_dtype(mapping, basetype="u1"),
            chunks=(2,),
        )
    group = _parse(path)
    assert group["colour"].dtype == np.dtype("u1")
    with h5py.File(path) as f:
        same_bits(_manifest_values(group, tmp_path, "colour"), f["colour"][()], where="colour")


@pytest.mark.skipif(TABLES_TESTS is None, reason="PyTables is not installed")
@pytest.mark.parametrize(
    ("name", "variable"),
    [("times-nested-be.h5", "/earr32"), ("time-table-vlarray-1_x.h5", "/table")],
)
def test_time_types_are_refused_by_name(name: str, variable: str) -> None:
    assert TABLES_TESTS is not None
    path = TABLES_TESTS / name
    with pytest.raises(HDF5UnsupportedError, match="no numpy or zarr equivalent") as info:
        _parse(path)
    assert f"file://{path}" in str(info.value)
    assert repr(variable) in str(info.value)


# ---- damaged files -----------------------------------------------------------------------


def _scaled_file(path: Path) -> None:
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(4.0)
        f["x"].make_scale("x")
        f.create_dataset("v", data=np.arange(16.0).reshape(4, 4), chunks=(2, 2), compression="gzip")
        f["v"].dims[0].attach_scale(f["x"])
        f.create_dataset("rec", data=_records(COMPOUNDS["big"], 6), chunks=(2,))


def test_a_dimension_list_pointing_nowhere_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "d.h5"
    _scaled_file(path)
    with h5py.File(path, "r+") as f:
        del f["x"]  # the reference in v's DIMENSION_LIST now points at nothing
    with pytest.raises(HDF5FormatError) as info:
        _parse(path)
    assert f"file://{path}" in str(info.value)
    assert "'/v'" in str(info.value)


def test_flipped_bytes_give_values_or_typed_errors(tmp_path: Path) -> None:
    """Any flipped byte: parsing either works or raises a VirtualizationError naming the file."""
    original = tmp_path / "good.h5"
    _scaled_file(original)
    whole = bytearray(original.read_bytes())
    rng = np.random.default_rng(7)
    folder = tmp_path / "bad"
    folder.mkdir()
    outcomes = {"parsed": 0, "refused": 0}
    unnamed: list[str] = []
    for position in rng.choice(len(whole), size=200, replace=False):
        damaged = bytearray(whole)
        damaged[position] ^= 0xFF
        path = folder / f"flip{position}.h5"
        path.write_bytes(bytes(damaged))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _parse(path)
        except vc.VirtualizationError as err:
            outcomes["refused"] += 1
            if f"file://{path}" not in str(err):
                unnamed.append(str(err))
        else:
            outcomes["parsed"] += 1
    assert not unnamed
    assert outcomes["parsed"], outcomes
    assert outcomes["refused"], outcomes
