"""Differential tests of `HDFParser` over a corpus of netCDF4 and HDF5 files.

Every variable read back through a `ManifestStore` (with zarr, then with xarray) must
equal what h5py, netCDF4 and `xr.open_dataset` read from the file itself, bit for
bit, whether the file is reached through a LocalStore (h5py opens the path) or a
MemoryStore (h5py reads through vz's ranged file-like object). The corpus is written
by tests/hdf5_corpus.py; the files vz must refuse are made here.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, Literal

import attrs
import h5py
import netCDF4
import numpy as np
import obstore
import pytest
import xarray as xr
import zarr
from _pytest.mark.structures import ParameterSet
from hypothesis import given, settings
from hypothesis import strategies as st
from obstore.store import LocalStore, MemoryStore
from tests.hdf5_corpus import (
    CORPUS,
    EXPECTED_ROOT_ATTRIBUTES,
    UNSUPPORTED_FILTERS,
    available_compressions,
    blosc_skip_reason,
    filter_variants,
    write_lzf_skipped_chunks,
    write_unsupported_filter_file,
    zstd_skip_reason,
)
from tests.writer_corpus import reference_dataset

import vzcore as vc
import vzxarray as vx
from vzcore.parsers import HDF5FormatError, HDF5GroupError, HDF5UnsupportedError, HDFParser

type Backend = Literal["local", "memory"]
type Parse = Callable[[str, Backend], vc.VirtualGroup]

BACKENDS: tuple[Backend, ...] = ("local", "memory")
MEMORY_PREFIX = "memory://bucket/"
NETCDF_DIMENSION_ONLY = b"This is a netCDF dimension but not a netCDF variable"
INTERNAL_ATTRIBUTES = {
    "CLASS",
    "DIMENSION_LIST",
    "NAME",
    "REFERENCE_LIST",
    "_Netcdf4Dimid",
    "_Netcdf4Coordinates",
    "_NCProperties",
}


# ---- where the corpus lives --------------------------------------------------------------


@attrs.frozen
class Source:
    """A registry and the URL prefix under which it serves the corpus."""

    registry: vc.ObjectStoreRegistry
    prefix: str

    def url(self, name: str) -> str:
        return self.prefix + name


@pytest.fixture(scope="session")
def corpus_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hdf5_corpus")
    for entry in CORPUS.values():
        entry.build(folder / entry.name)
    return folder


@pytest.fixture(scope="session")
def sources(corpus_folder: Path) -> dict[Backend, Source]:
    memory = MemoryStore()
    for entry in CORPUS.values():
        obstore.put(memory, entry.name, (corpus_folder / entry.name).read_bytes())
    local_prefix = f"file://{corpus_folder}/"
    return {
        "local": Source(
            vc.ObjectStoreRegistry({local_prefix: LocalStore(corpus_folder)}), local_prefix
        ),
        "memory": Source(vc.ObjectStoreRegistry({MEMORY_PREFIX: memory}), MEMORY_PREFIX),
    }


@pytest.fixture(scope="session")
def parsed(sources: dict[Backend, Source]) -> Parse:
    """The corpus file's parser (strings loaded) over a backend, parsed once per session."""

    @cache
    def parse(name: str, backend: Backend) -> vc.VirtualGroup:
        source = sources[backend]
        return CORPUS[name].parser()(source.url(name), source.registry)

    return parse


def _store(parsed: Parse, sources: dict[Backend, Source], name: str, backend: Backend) -> Any:
    return vc.ManifestStore(parsed(name, backend), registry=sources[backend].registry)


def corpus_params(check: str, *, netcdf_only: bool = False) -> list[ParameterSet]:
    """One parameter per corpus file, xfail (strict) where the corpus lists a known bug."""
    params = []
    for entry in CORPUS.values():
        if netcdf_only and not entry.netcdf:
            continue
        marks: list[pytest.MarkDecorator] = []
        if check in entry.xfail:
            marks.append(pytest.mark.xfail(reason=entry.xfail[check], strict=True))
        if check == "xarray" and entry.xarray_engine is None:
            marks.append(pytest.mark.skip(reason="no xarray engine opens this file"))
        params.append(pytest.param(entry.name, marks=marks, id=entry.name))
    return params


# ---- reading with the reference libraries ------------------------------------------------


def h5_variables(f: h5py.File) -> list[str]:
    """Paths (no leading slash) of the datasets that are variables, not bare netCDF dims."""
    paths: list[str] = []

    def visit(path: str, node: object) -> None:
        if isinstance(node, h5py.Dataset):
            name = node.attrs.get("NAME", b"")
            if not (isinstance(name, bytes) and name.startswith(NETCDF_DIMENSION_ONLY)):
                paths.append(path)

    f.visititems(visit)
    return sorted(paths)


def h5py_values(dataset: h5py.Dataset) -> np.ndarray[Any, Any]:
    """What h5py reads; strings decoded to str (vz's contract for string variables)."""
    if h5py.check_string_dtype(dataset.dtype) is not None:
        return as_text(dataset.asstr()[()])
    return np.asarray(dataset[()])


def as_text(values: Any) -> np.ndarray[Any, Any]:
    """Strings, bytes or object arrays of either, as a numpy str array of the same shape."""
    array = np.asarray(values)
    if array.dtype.kind == "U":
        return array
    decoded = [
        v.decode("utf-8") if isinstance(v, bytes | np.bytes_) else str(v)
        for v in array.ravel().tolist()
    ]
    return np.asarray(decoded, dtype=str).reshape(array.shape)


def nc_variables(ds: netCDF4.Dataset, prefix: str = "") -> Iterator[tuple[str, Any]]:
    yield from ((prefix + name, var) for name, var in ds.variables.items())
    for name, group in ds.groups.items():
        yield from nc_variables(group, f"{prefix}{name}/")


def zarr_values(root: zarr.Group, path: str) -> np.ndarray[Any, Any]:
    """The whole array at ``path``, read by zarr."""
    array = root[path]
    assert isinstance(array, zarr.Array), path
    return np.asarray(array[...])


def assert_same_values(ours: Any, theirs: Any, *, where: str) -> None:
    """Equal shapes, dtypes (byte order aside) and values, bit for bit; strings as text."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{where}: shape {ours.shape} != {theirs.shape}"
    if theirs.dtype.kind in "OSU":
        # Fixed-length bytes stay bytes (so xarray joins netCDF char arrays); others are text.
        assert ours.dtype.kind in "SU", f"{where}: strings came back as {ours.dtype}"
        np.testing.assert_array_equal(as_text(ours), as_text(theirs), err_msg=where)
        return
    native = theirs.dtype.newbyteorder("=")
    assert ours.dtype.newbyteorder("=") == native, f"{where}: dtype {ours.dtype} != {native}"
    np.testing.assert_array_equal(ours, theirs, err_msg=where)
    assert ours.astype(native).tobytes() == theirs.astype(native).tobytes(), f"{where}: bits"


# ---- values: zarr over the ManifestStore vs h5py and netCDF4 -----------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", corpus_params("zarr"))
def test_zarr_values_equal_h5py(
    name: str,
    backend: Backend,
    corpus_folder: Path,
    sources: dict[Backend, Source],
    parsed: Parse,
) -> None:
    group = parsed(name, backend)
    root = zarr.open_group(_store(parsed, sources, name, backend), mode="r")
    with h5py.File(corpus_folder / name, "r") as f:
        variables = h5_variables(f)
        assert sorted(path for path, _ in group.walk_arrays()) == variables
        for path in variables:
            ours, theirs = zarr_values(root, path), h5py_values(f[path])
            if ours.shape != theirs.shape and ours.ndim == theirs.ndim:
                # A netCDF variable shorter than its unlimited dimension spans the whole
                # dimension here, as in netCDF4; h5py shows the stored extent only.
                assert all(o >= t for o, t in zip(ours.shape, theirs.shape, strict=True))
                ours = ours[tuple(slice(0, t) for t in theirs.shape)]
            assert_same_values(ours, theirs, where=f"{name}:{path}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", corpus_params("netcdf4", netcdf_only=True))
def test_zarr_values_equal_netcdf4(
    name: str,
    backend: Backend,
    corpus_folder: Path,
    sources: dict[Backend, Source],
    parsed: Parse,
) -> None:
    root = zarr.open_group(_store(parsed, sources, name, backend), mode="r")
    with netCDF4.Dataset(corpus_folder / name, "r") as ds:
        for path, variable in nc_variables(ds):
            variable.set_auto_maskandscale(False)
            variable.set_auto_chartostring(False)
            assert_same_values(zarr_values(root, path), variable[...], where=f"{name}:{path}")


def _canonical(group: vc.VirtualGroup) -> dict[str, Any]:
    """A group as comparable plain values (JSON text for metadata, so NaN equals NaN)."""
    described: dict[str, Any] = {}
    for path, node in group.walk_groups():
        described[f"group {path}"] = json.dumps(dict(node.attributes), sort_keys=True)
    for path, array in group.walk_arrays():
        described[f"array {path}"] = json.dumps(array.metadata.to_zarr_v3(), sort_keys=True)
        if isinstance(array, vc.VirtualArray):
            described[f"chunks {path}"] = array.manifest.to_entries()
        else:
            described[f"values {path}"] = array.data.tolist()
    return described


def test_memory_store_gives_the_same_group(
    corpus_folder: Path, sources: dict[Backend, Source], parsed: Parse
) -> None:
    """Through the ranged file-like path the references are the ones h5py finds locally."""
    for name in CORPUS:
        local, memory = parsed(name, "local"), parsed(name, "memory")
        local_url, memory_url = sources["local"].url(name), sources["memory"].url(name)
        assert _canonical(vc.rename_paths(memory, {memory_url: local_url})) == _canonical(local)
        assert set(memory.sources) == {memory_url}
        assert set(local.sources) == {local_url}
        size = (corpus_folder / name).stat().st_size
        assert memory.sources[memory_url].size == local.sources[local_url].size == size


def test_parsing_twice_gives_equal_groups(sources: dict[Backend, Source]) -> None:
    source = sources["local"]
    url = source.url("h5_plain.h5")
    parser = CORPUS["h5_plain.h5"].parser()
    assert parser(url, source.registry) == parser(url, source.registry)


# ---- xarray over the ManifestStore vs xr.open_dataset ------------------------------------


def _open_reference(path: Path, engine: str, group: str | None) -> xr.Dataset:
    options: dict[str, Any] = {"phony_dims": "sort"} if engine == "h5netcdf" else {}
    with xr.open_dataset(path, engine=engine, group=group, **options) as opened:
        loaded: xr.Dataset = opened.load()
    return loaded


def _open_ours(store: Any, group: str | None) -> xr.Dataset:
    with xr.open_zarr(store, consolidated=False, chunks=None, group=group) as opened:
        loaded: xr.Dataset = opened.load()
    return loaded


def _real_dims(dims: tuple[Any, ...]) -> list[str]:
    return [str(d) for d in dims if not str(d).startswith("phony_dim_")]


def assert_same_variable(ours: xr.Variable, theirs: xr.Variable, *, where: str) -> None:
    """Equal values, dtype and attributes; phony dimensions are compared by length only."""
    assert ours.shape == theirs.shape, f"{where}: shape {ours.shape} != {theirs.shape}"
    assert _real_dims(ours.dims) == _real_dims(theirs.dims), (
        f"{where}: {ours.dims} vs {theirs.dims}"
    )
    if theirs.dtype.kind in "OSU":
        np.testing.assert_array_equal(as_text(ours.values), as_text(theirs.values), err_msg=where)
        return
    assert ours.dtype == theirs.dtype, f"{where}: dtype {ours.dtype} != {theirs.dtype}"
    renamed = xr.Variable(theirs.dims, ours.values, ours.attrs)
    xr.testing.assert_identical(renamed, theirs.to_base_variable())


@pytest.mark.parametrize("name", corpus_params("xarray"))
def test_xarray_equals_open_dataset(
    name: str, corpus_folder: Path, sources: dict[Backend, Source], parsed: Parse
) -> None:
    entry = CORPUS[name]
    assert entry.xarray_engine is not None
    group = parsed(name, "local")
    store = _store(parsed, sources, name, "local")
    # Open every array once with zarr first: a bad document fails here, in one task,
    # rather than inside xr.open_zarr's concurrent listing (which leaves orphan tasks).
    root = zarr.open_group(store, mode="r")
    for path, _ in group.walk_arrays():
        root[path]  # parses the array's zarr.json
    for path, _ in group.walk_groups():
        ours = _open_ours(store, path or None)
        theirs = _open_reference(corpus_folder / name, entry.xarray_engine, path or None)
        skipped = set(entry.xarray_divergent)
        assert set(ours.variables) - skipped == set(theirs.variables) - skipped
        for variable in sorted(set(theirs.variables) - skipped, key=str):
            assert_same_variable(
                ours[variable].variable, theirs[variable].variable, where=f"{name}:{variable}"
            )
        if entry.netcdf:
            # Real dimension names: the whole datasets agree, coordinates and attributes too.
            xr.testing.assert_identical(ours.drop_vars(skipped), theirs.drop_vars(skipped))


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        pytest.param(
            entry.name,
            variable,
            marks=pytest.mark.xfail(reason=reason, strict=True),
            id=f"{entry.name}:{variable}",
        )
        for entry in CORPUS.values()
        for variable, reason in entry.xarray_divergent.items()
    ],
)
def test_xarray_divergent_variables(
    name: str, variable: str, corpus_folder: Path, sources: dict[Backend, Source], parsed: Parse
) -> None:
    engine = CORPUS[name].xarray_engine
    assert engine is not None
    ours = _open_ours(_store(parsed, sources, name, "local"), None)[variable].variable
    theirs = _open_reference(corpus_folder / name, engine, None)[variable].variable
    assert ours.dims == theirs.dims
    assert ours.dtype == theirs.dtype
    xr.testing.assert_identical(ours, theirs)


def test_global_attributes_through_xarray(sources: dict[Backend, Source], parsed: Parse) -> None:
    ours = _open_ours(_store(parsed, sources, "nc_basic.nc", "local"), None)
    assert ours.attrs == {
        "title": "basic",
        "history": "written by tests/hdf5_corpus.py",
        "version": 3,
        "scales": [1.5, 2.5, 3.5],
        "flag": 1,
    }


# ---- structure: dimension names, attributes, layouts, groups -----------------------------


def test_netcdf_dimension_names(parsed: Parse) -> None:
    group = parsed("nc_basic.nc", "local")
    dims = {name: array.metadata.dimension_names for name, array in group.arrays.items()}
    assert dims["tas"] == ("time", "lat", "lon")
    assert dims["time"] == ("time",)
    assert dims["orog"] == ("lat", "lon")
    assert dims["station_name"] == ("station",)
    assert dims["station_code"] == ("station", "strlen")
    nested = parsed("nc_groups.nc", "local")
    assert nested["sub/grid"].metadata.dimension_names == ("y", "x")
    assert nested["sub/deeper/deep"].metadata.dimension_names == ("z", "y")


def test_variables_span_their_unlimited_dimension(parsed: Parse) -> None:
    group = parsed("nc_unlimited.nc", "local")
    assert group["time"].shape == (10,)
    assert group["never_written"].shape == (10, 3)
    assert group["half_written"].shape == (10, 3)


def test_dimension_scales_name_axes(parsed: Parse) -> None:
    group = parsed("h5_scales.h5", "local")
    assert group["data"].metadata.dimension_names == ("y", "x")
    assert group["x"].metadata.dimension_names == ("x",)
    unnamed = group["unnamed"].metadata.dimension_names
    assert unnamed is not None
    assert all(name.startswith("phony_dim_") for name in unnamed)
    mixed = parsed("h5_scales_mixed.h5", "local")["half_named"].metadata.dimension_names
    assert mixed is not None
    assert mixed[0] == "y"
    assert mixed[1].startswith("phony_dim_")


def test_phony_dimensions_name_each_length(parsed: Parse) -> None:
    """Without scales every axis is phony_dim_N, one name per axis length in the file."""
    lengths_of: dict[str, set[int]] = {}
    for _, array in parsed("h5_plain.h5", "local").walk_arrays():
        names = array.metadata.dimension_names or ()  # a 0-d array has none
        assert len(names) == array.ndim
        for name, length in zip(names, array.shape, strict=True):
            assert name is not None
            assert name.startswith("phony_dim_")
            lengths_of.setdefault(name, set()).add(length)
    assert all(len(lengths) == 1 for lengths in lengths_of.values()), lengths_of


def test_phony_dimensions_are_distinct_within_a_variable(parsed: Parse) -> None:
    for path, array in parsed("h5_square.h5", "local").walk_arrays():
        names = array.metadata.dimension_names
        assert names is not None
        assert len(set(names)) == len(names), f"{path}: {names}"


def _array_attributes(array: vc.AnyArray) -> dict[str, Any]:
    attributes = array.metadata.to_zarr_v3()["attributes"]
    assert isinstance(attributes, dict)
    return attributes


def test_root_attributes_of_every_kind(sources: dict[Backend, Source], parsed: Parse) -> None:
    """Strings, bytes, scalars, arrays, empty: decoded to JSON values, served by the store."""
    root = zarr.open_group(_store(parsed, sources, "h5_plain.h5", "local"), mode="r")
    attributes = root.attrs.asdict()
    assert attributes == EXPECTED_ROOT_ATTRIBUTES
    assert json.loads(json.dumps(attributes, allow_nan=False)) == EXPECTED_ROOT_ATTRIBUTES
    assert root["g1"].attrs.asdict() == {"level": 1}
    assert root["g1/g2/empty_group"].attrs.asdict() == {"note": "nothing here"}


def test_variable_attributes(parsed: Parse) -> None:
    plain = _array_attributes(parsed("h5_plain.h5", "local")["edge_chunks"])
    assert plain["units"] == "m s-1"
    assert plain["valid_range"] == [0, 200]
    assert math.isnan(plain["missing_value"])
    basic = parsed("nc_basic.nc", "local")
    tas = _array_attributes(basic["tas"])
    assert tas == {"units": "K", "valid_range": [-100.0, 400.0], "_FillValue": -999.0}
    assert basic["tas"].metadata.fill_value == np.float32(-999.0)
    time_attributes = _array_attributes(basic["time"])
    assert time_attributes == {
        "units": "days since 2000-01-01",
        "calendar": "standard",
        "standard_name": "time",
    }
    assert _array_attributes(basic["packed"])["scale_factor"] == 0.01


def test_no_hdf5_plumbing_attributes(parsed: Parse) -> None:
    for name in CORPUS:
        group = parsed(name, "local")
        for path, node in group.walk_groups():
            assert not INTERNAL_ATTRIBUTES & set(node.attributes), f"{name}:/{path}"
        for path, array in group.walk_arrays():
            attributes = _array_attributes(array)
            assert not INTERNAL_ATTRIBUTES & set(attributes), f"{name}:{path}"
            json.dumps(attributes)


def test_layouts_become_references_or_values(corpus_folder: Path, parsed: Parse) -> None:
    group = parsed("h5_plain.h5", "local")
    for name in ("compact", "compact_be", "fixed_ascii", "vlen_utf8", "vlen_ascii_2d"):
        assert isinstance(group[name], vc.LoadedArray), name
    with h5py.File(corpus_folder / "h5_plain.h5", "r") as f:
        contiguous = group["f8_be_contiguous"]
        assert isinstance(contiguous, vc.VirtualArray)
        assert contiguous.chunk_shape == contiguous.shape == (5, 7)
        _, offsets, lengths = contiguous.manifest.to_arrays()
        assert offsets.tolist() == [[f["f8_be_contiguous"].id.get_offset()]]
        assert lengths.tolist() == [[5 * 7 * 8]]
        edge = group["edge_chunks"]
        assert isinstance(edge, vc.VirtualArray)
        assert (edge.chunk_shape, edge.manifest.grid) == ((3, 4), (4, 4))
        larger = group["chunk_larger_than_array"]
        assert (larger.shape, larger.chunk_shape) == ((5,), (16,))
        for name in ("never_written_chunked", "never_written_contiguous", "zero_length"):
            array = group[name]
            assert isinstance(array, vc.VirtualArray), name
            assert array.manifest.n_missing == array.manifest.n_chunks, name
        partial = group["partially_written"]
        assert isinstance(partial, vc.VirtualArray)
        assert partial.manifest.n_chunks - partial.manifest.n_missing == 2


@pytest.mark.parametrize("name", ["h5_plain.h5", "nc_filters.nc", "nc_basic.nc"])
def test_chunk_references_are_hdf5s_own(name: str, corpus_folder: Path, parsed: Parse) -> None:
    """Every chunk's (offset, length) is what HDF5's chunk index says, at the right key.

    A trimmed unfiltered chunk (see `test_oversized_unfiltered_chunks_are_trimmed`)
    keeps HDF5's offset and references the first bytes of the stored chunk.
    """
    group = parsed(name, "local")
    with h5py.File(corpus_folder / name, "r") as f:
        for path, array in group.walk_arrays():
            dataset = f[path]
            if not isinstance(array, vc.VirtualArray) or dataset.chunks is None:
                continue
            infos: list[Any] = []
            dataset.id.chunk_iter(infos.append)
            trimmed = array.chunk_shape != dataset.chunks
            prefix = math.prod(array.chunk_shape) * dataset.dtype.itemsize
            expected = {
                ".".join(
                    str(start // size)
                    for start, size in zip(info.chunk_offset, dataset.chunks, strict=True)
                ): (info.byte_offset, prefix if trimmed else info.size)
                for info in infos
            }
            assert not trimmed or all(prefix <= info.size for info in infos), path
            entries = array.manifest.to_entries()
            assert {k: (e["offset"], e["length"]) for k, e in entries.items()} == expected, path


# ---- chunks longer than the array ----------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "chunks", "options", "expected"),
    [
        ((10,), (1024,), {}, (10,)),
        ((10, 3, 4), (1024, 3, 4), {}, (10, 3, 4)),
        ((3, 6), (1, 1024), {}, (1, 6)),  # chunk length 1 before: still a prefix
        ((10, 6), (10, 1024), {}, (10, 1024)),  # rows of 1024, not of 6: no prefix
        ((10, 6), (1024, 1024), {}, (10, 1024)),  # only the leading cut is a prefix
        ((10,), (1024,), {"compression": "gzip"}, (1024,)),  # compressed: no prefix
        ((10,), (1024,), {"shuffle": True}, (1024,)),  # shuffled: no prefix
    ],
    ids=["1d", "3d", "after-ones", "second-axis", "both-axes", "gzip", "shuffle"],
)
def test_oversized_unfiltered_chunks_are_trimmed_where_the_bytes_are_a_prefix(
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    options: dict[str, Any],
    expected: tuple[int, ...],
    tmp_path: Path,
    local: Source,
) -> None:
    values = np.arange(math.prod(shape), dtype="<f4").reshape(shape)
    with h5py.File(tmp_path / "grown.h5", "w") as f:
        maxshape = (None,) * len(shape)
        f.create_dataset("v", data=values, chunks=chunks, maxshape=maxshape, **options)
        infos: list[Any] = []
        f["v"].id.chunk_iter(infos.append)
    group = HDFParser()(local.url("grown.h5"), local.registry)
    array = group["v"]
    assert isinstance(array, vc.VirtualArray)
    assert array.chunk_shape == expected
    _, offsets, lengths = array.manifest.to_arrays()
    assert offsets.ravel().tolist() == [info.byte_offset for info in infos]
    if expected != chunks:  # the first bytes of each stored chunk
        assert set(lengths.ravel().tolist()) == {math.prod(expected) * 4}
    else:
        assert lengths.ravel().tolist() == [info.size for info in infos]
    store = vc.ManifestStore(group, registry=local.registry)
    np.testing.assert_array_equal(zarr.open_array(store, path="v", mode="r")[...], values)


def _unlimited_netcdf(path: Path, start: int, steps: int) -> None:
    """A netCDF4 file whose unfiltered ``tas`` has chunks of 1024 steps along ``time``."""
    rng = np.random.default_rng(start)
    with netCDF4.Dataset(path, "w") as f:
        f.createDimension("time", None)
        f.createDimension("y", 3)
        f.createDimension("x", 4)
        time = f.createVariable("time", "f8", ("time",))
        time.units = "days since 2000-01-01"
        tas = f.createVariable("tas", "f4", ("time", "y", "x"), chunksizes=(1024, 3, 4))
        tas.units = "K"
        time[:] = np.arange(start, start + steps)
        tas[:] = rng.random((steps, 3, 4), dtype="f4")


@pytest.mark.parametrize("loadable", [None, []], ids=["time-loaded", "all-virtual"])
def test_unlimited_netcdf_files_concatenate_along_time(
    loadable: list[str] | None, tmp_path: Path, local: Source
) -> None:
    """Files of 10 steps in chunks of 1024 steps: trimmed to 10, they concatenate and save."""
    paths = [tmp_path / "a.nc", tmp_path / "b.nc"]
    for index, path in enumerate(paths):
        _unlimited_netcdf(path, start=10 * index, steps=10)
    datasets = [
        vx.open_virtual_dataset(
            local.url(p.name),
            registry=local.registry,
            parser=HDFParser(),
            loadable_variables=loadable,
        )
        for p in paths
    ]
    assert [ds["tas"].data.metadata.chunk_shape for ds in datasets] == [(10, 3, 4)] * 2
    combined = xr.concat(datasets, dim="time", coords="minimal", compat="override")
    refs = combined.vz.to_kerchunk()
    store = vc.ManifestStore(combined.vz.to_virtual_group(), registry=local.registry)
    with xr.open_mfdataset(paths, combine="nested", concat_dim="time") as expected:
        expected = expected.load()
        with reference_dataset(refs) as got:
            xr.testing.assert_identical(got.load().drop_encoding(), expected.drop_encoding())
        got = xr.open_zarr(store, consolidated=False).load()
        xr.testing.assert_identical(got.drop_encoding(), expected.drop_encoding())


def test_a_trimmed_file_reads_like_the_original(tmp_path: Path, local: Source) -> None:
    """7 steps of 1024: the trimmed references read exactly what netCDF4 reads."""
    _unlimited_netcdf(tmp_path / "short.nc", start=0, steps=7)
    group = HDFParser()(local.url("short.nc"), local.registry)
    assert [group[n].chunk_shape for n in ("time", "tas")] == [(7,), (7, 3, 4)]  # type: ignore[union-attr]
    store = vc.ManifestStore(group, registry=local.registry)
    with xr.open_dataset(tmp_path / "short.nc") as expected:
        got = xr.open_zarr(store, consolidated=False).load()
        xr.testing.assert_identical(got.drop_encoding(), expected.load().drop_encoding())


def test_dimension_coordinates_are_loaded_while_the_file_is_open_when_asked(
    tmp_path: Path, local: Source
) -> None:
    """vzxarray's default: coordinates read by h5py during the parse, equal to netCDF4's."""
    _unlimited_netcdf(tmp_path / "a.nc", start=5, steps=4)
    url = local.url("a.nc")
    referenced = HDFParser()(url, local.registry)
    loaded = HDFParser(load_dimension_coordinates=True)(url, local.registry)
    assert isinstance(referenced["time"], vc.VirtualArray)
    assert isinstance(loaded["time"], vc.LoadedArray)
    assert isinstance(loaded["tas"], vc.VirtualArray)
    assert loaded["tas"] == referenced["tas"]
    assert (
        loaded["time"].metadata.stored_attributes == referenced["time"].metadata.stored_attributes
    )
    values = vc.read_arrays({"time": referenced["time"]}, local.registry)["time"]
    with netCDF4.Dataset(tmp_path / "a.nc") as expected:
        np.testing.assert_array_equal(loaded["time"].data, expected["time"][:])
    np.testing.assert_array_equal(loaded["time"].data, values)
    opened = vx.open_virtual_dataset(url, registry=local.registry)
    with xr.open_dataset(tmp_path / "a.nc") as expected:
        xr.testing.assert_identical(opened["time"], expected["time"])


def _try_parse_lock(results: Any) -> None:
    from vzcore.parsers import hdf5

    results.put(hdf5._LOCAL_PARSE.acquire(blocking=False))


def test_local_parses_run_one_at_a_time_and_a_forked_child_is_not_blocked(
    tmp_path: Path, local: Source
) -> None:
    """Threads parse local files in turn (h5py's lock convoys otherwise); a child forked
    while another thread holds that turn has a free lock of its own."""
    import multiprocessing
    import threading

    from vzcore.parsers import hdf5

    _unlimited_netcdf(tmp_path / "a.nc", start=0, steps=3)
    url = local.url("a.nc")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with hdf5._LOCAL_PARSE:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    parsed: list[vc.VirtualGroup] = []
    waiter = threading.Thread(target=lambda: parsed.append(HDFParser()(url, local.registry)))
    try:
        assert held.wait(30)
        # The child runs no parse (a forked child of a process with store threads may
        # hang elsewhere): it only takes the lock, which it must find free.
        context = multiprocessing.get_context("fork")
        results = context.SimpleQueue()
        child = context.Process(target=_try_parse_lock, args=(results,))
        child.start()
        child.join(30)
        if child.is_alive():
            child.kill()
        assert child.exitcode == 0
        assert results.get() is True
        # In this process, a second thread waits its turn.
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive()
        assert not parsed
    finally:
        release.set()
        holder.join()
    waiter.join(30)
    assert sorted(parsed[0].arrays) == ["tas", "time"]


def test_filters_become_codecs(parsed: Parse) -> None:
    group = parsed("nc_filters.nc", "local")
    variants = filter_variants()
    assert set(group.arrays) == {*variants, "zlib_shuffle_int64"}
    expected = {
        "zlib": ["numcodecs.zlib"],
        "zlib_shuffle": ["numcodecs.shuffle", "numcodecs.zlib"],
        "zstd": ["numcodecs.zstd"],
        "bzip2": ["numcodecs.bz2"],
        "szip": ["vz.szip"],
        **{name: ["numcodecs.blosc"] for name in variants if name.startswith("blosc")},
    }
    for name in variants:
        assert [c.name for c in group[name].metadata.codecs] == ["bytes", *expected[name]], name
    blosc_shuffle = {"blosc_lz4": 1, "blosc_lz4_noshuffle": 0, "blosc_lz4_bitshuffle": 2}
    for name, shuffle in blosc_shuffle.items():
        if name in variants:
            (codec,) = group[name].metadata.codecs[1:]
            assert codec.configuration["shuffle"] == shuffle, name
            assert codec.configuration["cname"] == "lz4", name


@pytest.mark.parametrize("reason", [zstd_skip_reason(), blosc_skip_reason()])
def test_optional_filters_are_in_the_corpus(reason: str | None) -> None:
    if reason is not None:
        pytest.skip(reason)
    assert {"zstd", "blosc_lz4"} <= set(available_compressions())


def test_subgroup_parser(sources: dict[Backend, Source], parsed: Parse) -> None:
    source = sources["local"]
    url = source.url("nc_groups.nc")
    whole = parsed("nc_groups.nc", "local")
    sub = HDFParser(group="/sub")(url, source.registry)
    assert sub.evolve(sources={}) == whole.groups["sub"]
    deeper = HDFParser(group="/sub/deeper")(url, source.registry)
    assert deeper.evolve(sources={}) == whole.groups["sub"].groups["deeper"]
    assert set(sub.sources) == {url}
    with pytest.raises(HDF5GroupError, match="nowhere"):
        HDFParser(group="/nowhere")(url, source.registry)


@pytest.mark.parametrize("group", ["/top", "top", "/sub/deeper/deep"])
def test_a_dataset_path_as_group_is_a_typed_error(
    group: str, sources: dict[Backend, Source]
) -> None:
    source = sources["local"]
    url = source.url("nc_groups.nc")
    with pytest.raises(HDF5GroupError, match="is a dataset, not a group") as info:
        HDFParser(group=group)(url, source.registry)
    assert url in str(info.value)
    assert repr(group) in str(info.value)


def test_drop_variables(sources: dict[Backend, Source]) -> None:
    source = sources["local"]
    group = HDFParser(drop_variables=("tas", "station_name"))(
        source.url("nc_basic.nc"), source.registry
    )
    assert "tas" not in group.arrays
    assert "station_name" not in group.arrays
    assert "tas_be" in group.arrays


def _node(tree: xr.DataTree, path: str) -> xr.Dataset:
    node = tree[path]
    assert isinstance(node, xr.DataTree)
    return node.to_dataset(inherit=False)


def test_open_virtual_datatree_yields_every_group(
    corpus_folder: Path, sources: dict[Backend, Source]
) -> None:
    source = sources["local"]
    url = source.url("nc_groups.nc")
    tree = vx.open_virtual_datatree(
        url, registry=source.registry, parser=HDFParser(), loadable_variables=["labels"]
    )
    assert set(tree.groups) == {"/", "/sub", "/sub/deeper", "/other"}
    assert set(_node(tree, "/sub").variables) == {"y", "grid"}
    assert set(_node(tree, "/sub/deeper").variables) == {"deep"}
    everything = ["x", "top", "y", "grid", "deep", "labels"]
    loaded = vx.open_virtual_datatree(
        url, registry=source.registry, parser=HDFParser(), loadable_variables=everything
    )
    with xr.open_datatree(corpus_folder / "nc_groups.nc") as reference:
        for path in ("/", "/sub", "/sub/deeper", "/other"):
            xr.testing.assert_identical(_node(loaded, path), _node(reference, path))


@pytest.mark.parametrize("name", ["nc_basic.nc", "nc_groups.nc", "nc_filters.nc"])
def test_open_virtual_dataset_loaded_equals_open_dataset(
    name: str, corpus_folder: Path, sources: dict[Backend, Source], parsed: Parse
) -> None:
    """All variables loaded by the adapter (read_array + decode_cf) as xarray reads them."""
    source = sources["local"]
    divergent = set(CORPUS[name].xarray_divergent)
    names = [n for n in parsed(name, "local").arrays if n not in divergent]
    ours = vx.open_virtual_dataset(
        source.url(name),
        registry=source.registry,
        parser=CORPUS[name].parser(),  # the strings of subgroups, which the root lacks
        loadable_variables=names,
        drop_variables=sorted(divergent),
    )
    with xr.open_dataset(corpus_folder / name) as opened:
        theirs = opened.drop_vars(sorted(divergent)).load()
    xr.testing.assert_identical(ours, theirs)


# ---- files vz must refuse ----------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> Source:
    prefix = f"file://{tmp_path}/"
    return Source(vc.ObjectStoreRegistry({prefix: LocalStore(tmp_path)}), prefix)


def _write_unsupported(f: h5py.File, kind: str) -> str:
    """One dataset ``bad`` of an HDF5 feature vz cannot reference; returns the message part."""
    if kind == "compound_with_array_member":
        f["bad"] = np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8", (2,))])
        return "field 'b' is a subarray"
    if kind == "float128":
        f["bad"] = np.zeros(3, dtype=np.longdouble)
        return "zarr has no data type for float128"
    if kind == "complex256":
        f["bad"] = np.zeros(3, dtype=np.clongdouble)
        return "zarr has no data type for complex256"
    if kind == "region_reference":
        bad = f.create_dataset("bad", (1,), dtype=h5py.regionref_dtype)
        bad[0] = f["fine"].regionref[1:]
        return "region reference"
    if kind == "vlen_int":
        bad = f.create_dataset("bad", (2,), dtype=h5py.vlen_dtype(np.dtype("i4")))
        bad[0], bad[1] = np.arange(3, dtype="i4"), np.arange(1, dtype="i4")
        return "variable-length"
    if kind == "reference":
        f.create_dataset("bad", data=[f["fine"].ref], dtype=h5py.ref_dtype)
        return "object references cannot be referenced .* pass it in loadable_variables="
    if kind == "vlen_string":
        f.create_dataset("bad", data=["a", "bc"], dtype=h5py.string_dtype())
        return "variable-length strings .* pass it in loadable_variables="
    if kind == "opaque":
        f["bad"] = np.frombuffer(b"abcdefgh" * 3, dtype="V8")
        return "opaque"
    if kind == "external":
        raw = Path(f.filename).with_name("ext.bin")  # beside the file, not in the cwd
        f.create_dataset("bad", data=np.arange(4, dtype="i4"), external=[(str(raw), 0, 16)])
        return "external"
    layout = h5py.VirtualLayout(shape=(3,), dtype="i8")
    layout[:] = h5py.VirtualSource(f["fine"])
    f.create_virtual_dataset("bad", layout)
    return "virtual"


@pytest.mark.parametrize(
    "kind",
    [
        "compound_with_array_member",
        "float128",
        "complex256",
        "region_reference",
        "vlen_int",
        "reference",
        "vlen_string",
        "opaque",
        "external",
        "virtual",
    ],
)
def test_unsupported_types_and_storage_are_refused_by_name(
    kind: str, tmp_path: Path, local: Source
) -> None:
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["fine"] = np.arange(3, dtype="i8")
        expected = _write_unsupported(f, kind)
    url = local.url("bad.h5")
    with pytest.raises(HDF5UnsupportedError, match=expected) as info:
        HDFParser()(url, local.registry)
    assert "'/bad'" in str(info.value)
    assert url in str(info.value)
    kept = HDFParser(drop_variables=("bad",))(url, local.registry)
    assert set(kept.arrays) == {"fine"}


def test_reference_attributes_are_left_out(tmp_path: Path, local: Source) -> None:
    with h5py.File(tmp_path / "refs.h5", "w") as f:
        f["target"] = np.arange(3)
        f["data"] = np.arange(4.0)
        f["data"].attrs["points_at"] = f["target"].ref
        f["data"].attrs["region"] = f["target"].regionref[1:]
        f["data"].attrs["pair"] = np.zeros(1, dtype=[("a", "i4"), ("b", "f4")])
        f["data"].attrs["kept"] = "yes"
    group = HDFParser()(local.url("refs.h5"), local.registry)
    assert _array_attributes(group["data"]) == {"kept": "yes"}


@pytest.mark.parametrize("filter_name", sorted(UNSUPPORTED_FILTERS))
def test_unsupported_filter_names_id_and_name(
    filter_name: str, tmp_path: Path, local: Source
) -> None:
    write_unsupported_filter_file(tmp_path / "filtered.h5", filter_name)
    filter_id, label = UNSUPPORTED_FILTERS[filter_name]
    with pytest.raises(HDF5UnsupportedError) as info:
        HDFParser()(local.url("filtered.h5"), local.registry)
    message = str(info.value)
    assert f"filter {filter_id} ({label})" in message
    assert "'/data'" in message
    assert local.url("filtered.h5") in message


def test_chunks_that_skip_a_filter_are_refused(tmp_path: Path, local: Source) -> None:
    write_lzf_skipped_chunks(tmp_path / "lzf.h5")
    with pytest.raises(HDF5UnsupportedError, match="filter mask") as info:
        HDFParser()(local.url("lzf.h5"), local.registry)
    assert "'/noise'" in str(info.value)


def test_complex_attribute_is_left_out(tmp_path: Path, local: Source) -> None:
    with h5py.File(tmp_path / "complex.h5", "w") as f:
        f.attrs["c"] = np.complex128(1 + 2j)
        f["data"] = np.arange(3)
        f["data"].attrs["c"] = np.complex64(3j)
    group = HDFParser()(local.url("complex.h5"), local.registry)
    assert set(group.arrays) == {"data"}


def _netcdf3_bytes(tmp_path: Path) -> bytes:
    with netCDF4.Dataset(tmp_path / "classic.nc", "w", format="NETCDF3_CLASSIC") as ds:
        ds.createDimension("x", 4)
        ds.createVariable("v", "f4", ("x",))[:] = np.arange(4)
    return (tmp_path / "classic.nc").read_bytes()


NOT_HDF5: dict[str, Callable[[Path], bytes]] = {
    "empty": lambda _: b"",
    "random": lambda _: np.random.default_rng(0).bytes(5000),
    "signature_only": lambda _: b"\x89HDF\r\n\x1a\n",
    "netcdf3": _netcdf3_bytes,
    "truncated_half": lambda tmp: (Path(tmp) / "half").read_bytes(),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", sorted(NOT_HDF5))
def test_not_hdf5_is_a_format_error_naming_the_url(
    kind: str, backend: Backend, tmp_path: Path, corpus_folder: Path
) -> None:
    whole = (corpus_folder / "nc_basic.nc").read_bytes()
    (tmp_path / "half").write_bytes(whole[: len(whole) // 2])
    data = NOT_HDF5[kind](tmp_path)
    url, registry = _serve_bytes(data, backend, tmp_path)
    start = time.perf_counter()
    with pytest.raises(HDF5FormatError) as info:
        HDFParser()(url, registry)
    assert time.perf_counter() - start < 2.0
    assert url in str(info.value)


def _serve_bytes(data: bytes, backend: Backend, folder: Path) -> tuple[str, vc.ObjectStoreRegistry]:
    if backend == "memory":
        memory = MemoryStore()
        obstore.put(memory, "f.nc", data)
        return MEMORY_PREFIX + "f.nc", vc.ObjectStoreRegistry({MEMORY_PREFIX: memory})
    (folder / "f.nc").write_bytes(data)
    prefix = f"file://{folder}/"
    return prefix + "f.nc", vc.ObjectStoreRegistry({prefix: LocalStore(folder)})


@pytest.fixture(scope="session")
def truncation_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("truncated")


@settings(max_examples=30, deadline=2000)
@given(fraction=st.floats(0, 1, exclude_max=True), backend=st.sampled_from(BACKENDS))
def test_truncated_files_raise_typed_errors(
    fraction: float, backend: Backend, corpus_folder: Path, truncation_folder: Path
) -> None:
    """Any strict prefix of a real file: a VirtualizationError, never a hang or a crash."""
    names = ("nc_basic.nc", "h5_plain.h5")
    whole = (corpus_folder / names[int(fraction * 1000) % 2]).read_bytes()
    url, registry = _serve_bytes(whole[: int(fraction * len(whole))], backend, truncation_folder)
    with pytest.raises(vc.VirtualizationError):
        HDFParser()(url, registry)


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_file_is_an_error_naming_the_url(
    backend: Backend, sources: dict[Backend, Source]
) -> None:
    source = sources[backend]
    url = source.url("no_such_file.nc")
    with pytest.raises(vc.VirtualizationError) as info:
        HDFParser()(url, source.registry)
    assert url in str(info.value)


def test_unregistered_url_is_refused(sources: dict[Backend, Source]) -> None:
    registry = sources["local"].registry
    with pytest.raises(vc.UnregisteredURLError):
        HDFParser()("file:///somewhere/else/data.nc", registry)
    with pytest.raises(vc.UnregisteredURLError):
        HDFParser()("s3://bucket/data.nc", registry)
    with pytest.raises(vc.UnregisteredURLError):
        HDFParser()(sources["local"].prefix + "../escape.nc", registry)
