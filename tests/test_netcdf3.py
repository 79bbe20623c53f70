"""`NetCDF3Parser`: differential tests against netCDF4 and scipy, bit for bit.

Every variable of every file is read back through ``ManifestStore`` (with zarr and
with xarray) and compared with what netCDF4 and scipy read from the file itself.
The corpus is written here with netCDF4 (CDF-1, CDF-2, CDF-5) and scipy (CDF-1,
CDF-2), plus the netCDF3 sample files shipped with scipy and xarray. Corrupt
inputs (truncated files, random bytes, header fields pointing past the end)
must raise a `VirtualizationError` quickly.
"""

import functools
import gzip
import re
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import obstore
import pytest
import scipy
import xarray as xr
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from obstore.store import LocalStore, MemoryStore
from scipy.io import netcdf_file

import vzcore as vc
from vzcore.parsers import NetCDF3FormatError, NetCDF3Parser, netcdf3

# Char variables are served as fixed-width bytes, which zarr marks as unstable in v3.
pytestmark = pytest.mark.filterwarnings("ignore::zarr.errors.UnstableSpecificationWarning")

BAD_URL = "memory://bucket/bad.nc"
NETCDF3_MAGICS = (b"CDF\x01", b"CDF\x02", b"CDF\x05")
CLASSIC_TYPES = ("i1", "i2", "i4", "f4", "f8")
CDF5_TYPES = (*CLASSIC_TYPES, "u1", "u2", "u4", "i8", "u8")
DEFAULT_FILLS = {
    "i1": -127, "i2": -32767, "i4": -2147483647, "f4": np.float32(9.9692099683868690e36),
    "f8": 9.9692099683868690e36, "u1": 255, "u2": 65535, "u4": 4294967295,
    "i8": -9223372036854775806, "u8": 18446744073709551614,
}  # fmt: skip


# ---- the corpus ------------------------------------------------------------------------


def _values(dtype: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype[0] == "f":
        values = rng.standard_normal(shape).astype(dtype) * 100
        values.flat[:: max(1, values.size // 3)] = np.nan
        return values
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def _chars(strings: list[str], length: int) -> np.ndarray:
    return netCDF4.stringtochar(np.array(strings, dtype=f"S{length}"))


def _write_netcdf4_rich(path: Path, file_format: str) -> None:
    """Every type, 0-d, fixed and record variables, fills, packing, char, attributes."""
    types = CDF5_TYPES if file_format == "NETCDF3_64BIT_DATA" else CLASSIC_TYPES
    with netCDF4.Dataset(path, "w", format=file_format) as ds:
        ds.set_auto_maskandscale(False)
        ds.setncatts({"title": "vz corpus", "count": np.int32(3), "pair": np.array([1.5, 2.5])})
        ds.setncattr("nan", np.float64("nan"))
        # odd byte counts: attribute values padded to 4 bytes in the header
        ds.setncatts({"shorts": np.array([1, -2, 3], "i2"), "byte": np.int8(-5), "odd": "abcde"})
        for name, size in (("time", None), ("x", 3), ("y", 5), ("strlen", 7)):
            ds.createDimension(name, size)
        time_var = ds.createVariable("time", "f8", ("time",))
        time_var.setncatts({"units": "days since 2000-01-01", "calendar": "noleap"})
        time_var[:] = np.arange(4) * 0.5
        for seed, dtype in enumerate(types):
            ds.createVariable(f"fixed_{dtype}", dtype, ("x", "y"))[:] = _values(dtype, (3, 5), seed)
            ds.createVariable(f"scalar_{dtype}", dtype, ()).assignValue(_values(dtype, (), seed))
            ds.createVariable(f"odd_{dtype}", dtype, ("x",))[:] = _values(dtype, (3,), seed)
            record = ds.createVariable(f"record_{dtype}", dtype, ("time", "x"))
            record[:4] = _values(dtype, (4, 3), seed + 100)
        filled = ds.createVariable("filled", "f4", ("time", "y"), fill_value=np.float32(-999.5))
        filled[1] = np.arange(5, dtype="f4")  # records 0, 2, 3 hold the fill value
        nan_filled = ds.createVariable("nan_filled", "f8", ("y",), fill_value=np.nan)
        nan_filled[:2] = [1.0, 2.0]
        unwritten = ds.createVariable("unwritten", "i2", ("time", "y"))  # default fill
        unwritten.long_name = "never written"
        packed = ds.createVariable("packed", "i2", ("time", "x"), fill_value=np.int16(-1))
        packed.setncatts({"scale_factor": np.float32(0.1), "add_offset": 5.0, "units": "K"})
        packed[:4] = np.arange(12, dtype="i2").reshape(4, 3)
        ds.createVariable("names", "S1", ("x", "strlen"))[:] = _chars(["a", "bb", "ccc"], 7)
        ds.createVariable("labels", "S1", ("time", "strlen"))[:4] = _chars(list("wxyz"), 7)
        ds.createVariable("letter", "S1", ())[...] = b"q"


def _write_netcdf4_one_record_var(path: Path, file_format: str) -> None:
    """A lone record variable: its records are packed without padding."""
    with netCDF4.Dataset(path, "w", format=file_format) as ds:
        ds.createDimension("time", None)
        ds.createDimension("x", 3)
        ds.createVariable("fixed", "i1", ("x",))[:] = [1, 2, 3]
        ds.createVariable("shorts", "i2", ("time", "x"))[:5] = np.arange(15).reshape(5, 3)


def _write_netcdf4_zero_records(path: Path, file_format: str) -> None:
    with netCDF4.Dataset(path, "w", format=file_format) as ds:
        ds.createDimension("time", None)
        ds.createDimension("x", 2)
        ds.createDimension("strlen", 3)
        ds.createVariable("x", "f4", ("x",))[:] = [0.5, 1.5]
        ds.createVariable("values", "f8", ("time", "x"))
        ds.createVariable("counts", "i1", ("time",))
        ds.createVariable("labels", "S1", ("time", "strlen"))


def _write_netcdf4_record_shapes(path: Path, file_format: str) -> None:
    """Several record variables of different shapes and odd sizes (padding in records)."""
    with netCDF4.Dataset(path, "w", format=file_format) as ds:
        for name, size in (("t", None), ("a", 3), ("b", 5)):
            ds.createDimension(name, size)
        ds.createVariable("t_only", "i1", ("t",))[:7] = np.arange(7)
        ds.createVariable("t_a", "i2", ("t", "a"))[:7] = np.arange(21).reshape(7, 3)
        ds.createVariable("t_a_b", "f4", ("t", "a", "b"))[:7] = np.arange(105).reshape(7, 3, 5)
        ds.createVariable("fixed_b", "i1", ("b",))[:] = np.arange(5)
        ds.createVariable("t_b", "f8", ("t", "b"))[:7] = np.arange(35).reshape(7, 5) / 3


def _write_netcdf4_big_header(path: Path, file_format: str) -> None:
    """A header longer than the first 64 KiB read."""
    with netCDF4.Dataset(path, "w", format=file_format) as ds:
        ds.history = "h" * 70_000
        ds.createDimension("x", 2)
        for i in range(300):
            var = ds.createVariable(f"v{i:03d}", "i4", ("x",))
            var.comment = f"variable {i} " * 20
            var[:] = [i, -i]


def _write_scipy(path: Path, version: int) -> None:
    with netcdf_file(path, "w", version=version) as f:
        f.history = "written by scipy"
        f.createDimension("time", None)
        f.createDimension("x", 4)
        f.createDimension("n", 6)
        f.createVariable("time", "i4", ("time",))[:] = np.arange(5)
        f.createVariable("a", "f8", ("time", "x"))[:] = np.arange(20).reshape(5, 4) / 7
        f.createVariable("c", "i2", ("time",))[:] = np.arange(5) - 2
        f.createVariable("b", "i1", ("x",))[:] = [1, -2, 3, -4]
        packed = f.createVariable("packed", "i2", ("x",))
        packed[:] = [10, 20, 30, 32767]
        packed.scale_factor, packed.add_offset, packed._FillValue = 0.5, 1.0, np.int16(32767)
        f.createVariable("s", "c", ("x", "n"))[:] = _chars(["ab", "", "cdef", "ghijkl"], 6)


def _write_scipy_fixed(path: Path, version: int) -> None:
    # No record variables: scipy places a 0-d variable inside the record section
    # when there are some, a file netCDF-C refuses to open.
    with netcdf_file(path, "w", version=version) as f:
        f.createDimension("x", 3)
        f.createVariable("z", "f4", ()).data[...] = 3.5  # assignValue fails on 0-d
        f.createVariable("d", "f8", ("x",))[:] = [0.5, np.nan, -1e300]


def _write_scipy_one_record_var(path: Path, version: int) -> None:
    with netcdf_file(path, "w", version=version) as f:
        f.createDimension("time", None)
        f.createDimension("x", 3)
        f.createVariable("bytes", "i1", ("time", "x"))[:] = np.arange(12).reshape(4, 3)


def _netcdf4(writer: Callable[[Path, str], None], fmt: str) -> Callable[[Path], None]:
    return lambda path: writer(path, fmt)


def _scipy(writer: Callable[[Path, int], None], version: int) -> Callable[[Path], None]:
    return lambda path: writer(path, version)


FORMATS = {"cdf1": "NETCDF3_CLASSIC", "cdf2": "NETCDF3_64BIT_OFFSET", "cdf5": "NETCDF3_64BIT_DATA"}
NETCDF4_WRITERS = {
    "rich": _write_netcdf4_rich,
    "one_record_var": _write_netcdf4_one_record_var,
    "zero_records": _write_netcdf4_zero_records,
    "record_shapes": _write_netcdf4_record_shapes,
    "big_header": _write_netcdf4_big_header,
}
CORPUS: dict[str, Callable[[Path], None]] = {
    **{
        f"netcdf4_{kind}_{short}.nc": _netcdf4(writer, fmt)
        for kind, writer in NETCDF4_WRITERS.items()
        for short, fmt in FORMATS.items()
    },
    **{f"scipy_v{v}.nc": _scipy(_write_scipy, v) for v in (1, 2)},
    **{f"scipy_fixed_v{v}.nc": _scipy(_write_scipy_fixed, v) for v in (1, 2)},
    **{f"scipy_one_record_var_v{v}.nc": _scipy(_write_scipy_one_record_var, v) for v in (1, 2)},
}


SITE = Path(scipy.__file__).parent.parent  # site-packages


def _installed_samples() -> list[Path]:
    roots = [Path(scipy.__file__).parent / "io/tests/data", Path(xr.__file__).parent / "tests/data"]
    return sorted(p for root in roots if root.is_dir() for p in root.glob("*.nc*"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("netcdf3")
    for name, write in CORPUS.items():
        write(folder / name)
    return folder


def _registry(folder: Path) -> vc.ObjectStoreRegistry:
    return vc.ObjectStoreRegistry({f"file://{folder}/": LocalStore(folder)})


def _parse(path: Path, **options: Any) -> tuple[vc.VirtualGroup, vc.ObjectStoreRegistry]:
    registry = _registry(path.parent)
    return NetCDF3Parser(**options)(f"file://{path}", registry), registry


# ---- reading back ----------------------------------------------------------------------


def _as_strings(chars: np.ndarray) -> np.ndarray:
    """netCDF's char arrays ``(..., n)`` as the parser's ``S{n}`` arrays ``(...)``."""
    if chars.ndim == 0:
        return chars
    if chars.shape[-1] == 0:
        return np.zeros(chars.shape[:-1], dtype="S1")
    return np.ascontiguousarray(chars).view(f"S{chars.shape[-1]}").reshape(chars.shape[:-1])


def _netcdf4_values(path: Path) -> dict[str, np.ndarray]:
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_maskandscale(False)
        ds.set_auto_chartostring(False)
        return {name: np.asarray(var[...]) for name, var in ds.variables.items()}


def _scipy_values(path: Path) -> dict[str, np.ndarray]:
    with netcdf_file(path, mmap=False, maskandscale=False) as f:
        return {name: np.array(var.data, copy=True) for name, var in f.variables.items()}


def _assert_same(got: np.ndarray, expected: np.ndarray, name: str) -> None:
    if expected.dtype.kind == "S":
        expected = _as_strings(expected)
    assert got.dtype.newbyteorder("=") == expected.dtype.newbyteorder("="), name
    assert got.shape == expected.shape, name
    np.testing.assert_array_equal(got, expected, err_msg=name)


def _assert_roundtrip(path: Path, reference: dict[str, np.ndarray]) -> vc.VirtualGroup:
    group, registry = _parse(path)
    assert set(group.arrays) == set(reference)
    store = vc.ManifestStore(group, registry=registry)
    zgroup = zarr.open_group(store, mode="r")
    for name, expected in reference.items():
        _assert_same(np.asarray(zgroup[name][...]), expected, name)
    with xr.open_zarr(
        store, consolidated=False, chunks=None, mask_and_scale=False, decode_times=False
    ) as ds:
        for name, expected in reference.items():
            _assert_same(ds[name].values, expected, name)
    return group


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_matches_netcdf4(corpus: Path, name: str) -> None:
    _assert_roundtrip(corpus / name, _netcdf4_values(corpus / name))


@pytest.mark.parametrize("name", sorted(n for n in CORPUS if "cdf5" not in n))
def test_corpus_matches_scipy(corpus: Path, name: str) -> None:
    _assert_roundtrip(corpus / name, _scipy_values(corpus / name))


@pytest.mark.parametrize("sample", _installed_samples(), ids=lambda p: str(p.relative_to(SITE)))
def test_installed_samples(sample: Path, tmp_path: Path) -> None:
    path = sample
    if sample.suffix == ".gz":
        path = tmp_path / sample.stem
        path.write_bytes(gzip.decompress(sample.read_bytes()))
    if path.read_bytes()[:4] not in NETCDF3_MAGICS:
        pytest.skip(f"{sample.name} is not a netCDF3 file (magic {path.read_bytes()[:4]!r})")
    _assert_roundtrip(path, _netcdf4_values(path))
    _assert_roundtrip(path, _scipy_values(path))


def test_memory_store(corpus: Path) -> None:
    path = corpus / "netcdf4_rich_cdf5.nc"
    store = MemoryStore()
    obstore.put(store, "x.nc", path.read_bytes())
    registry = vc.ObjectStoreRegistry({"memory://bucket/": store})
    group = NetCDF3Parser()("memory://bucket/x.nc", registry)
    zgroup = zarr.open_group(vc.ManifestStore(group, registry=registry), mode="r")
    for name, expected in _netcdf4_values(path).items():
        _assert_same(np.asarray(zgroup[name][...]), expected, name)
    (seen,) = group.sources.values()
    assert list(group.sources) == ["memory://bucket/x.nc"]
    assert seen.size == path.stat().st_size
    assert seen.last_modified is not None


class CountingReader:
    """A `ByteRangeReader` over a local folder that records every range it serves."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ranges: list[tuple[int, int]] = []

    def get_ranges(self, path: str, *, starts: Any, ends: Any) -> list[bytes]:
        data = (self.folder / path).read_bytes()
        self.ranges += zip(starts, ends, strict=True)
        return [data[start:end] for start, end in zip(starts, ends, strict=True)]

    async def get_ranges_async(self, path: str, *, starts: Any, ends: Any) -> list[bytes]:
        return self.get_ranges(path, starts=starts, ends=ends)

    def get(self, path: str) -> bytes:
        raise AssertionError("the parser must not read whole files")

    async def get_async(self, path: str) -> bytes:
        raise AssertionError("the parser must not read whole files")

    def size(self, path: str) -> int:
        return (self.folder / path).stat().st_size


@pytest.mark.parametrize(
    ("name", "n_reads"), [("netcdf4_big_header_cdf2.nc", 3), ("netcdf4_record_shapes_cdf5.nc", 1)]
)
def test_header_is_read_in_a_few_ranges(corpus: Path, name: str, n_reads: int) -> None:
    reader = CountingReader(corpus)
    registry = vc.ObjectStoreRegistry({f"file://{corpus}/": reader})
    group = NetCDF3Parser()(f"file://{corpus}/{name}", registry)
    assert len(reader.ranges) == n_reads
    assert reader.ranges[0] == (0, min(64 * 1024, (corpus / name).stat().st_size))
    header_end = min(int(o) for _, a in group.walk_arrays() for o in a.manifest.to_arrays()[1].flat)
    # each further read doubles the bytes read so far: at most twice the header
    assert max(end for _, end in reader.ranges) <= 2 * max(header_end, 64 * 1024)


def test_large_file_reads_only_the_header(tmp_path: Path) -> None:
    path = tmp_path / "large.nc"
    with netCDF4.Dataset(path, "w", format="NETCDF3_CLASSIC") as ds:
        ds.createDimension("time", None)
        ds.createDimension("x", 10)
        ds.createVariable("a", "f8", ("time", "x"))[:20_000] = np.ones((20_000, 10))
        ds.createVariable("b", "i2", ("time",))[:20_000] = np.arange(20_000) % 1000
    reader = CountingReader(tmp_path)
    group = NetCDF3Parser()(
        f"file://{path}", vc.ObjectStoreRegistry({f"file://{tmp_path}/": reader})
    )
    assert reader.ranges == [(0, 64 * 1024)]
    assert path.stat().st_size > 1_000_000
    zgroup = zarr.open_group(vc.ManifestStore(group, registry=_registry(tmp_path)), mode="r")
    for name, expected in _netcdf4_values(path).items():
        _assert_same(np.asarray(zgroup[name][...]), expected, name)


# ---- metadata --------------------------------------------------------------------------


def _json_like(value: Any) -> Any:
    if isinstance(value, bytes | str):
        return value.decode() if isinstance(value, bytes) else value
    items = np.asarray(value).tolist()
    return items[0] if isinstance(items, list) and len(items) == 1 else items


def test_attributes_dimensions_and_fill_values(corpus: Path) -> None:
    path = corpus / "netcdf4_rich_cdf5.nc"
    group, registry = _parse(path)
    with netCDF4.Dataset(path) as ds:
        np.testing.assert_equal(
            dict(group.attributes), {k: _json_like(ds.getncattr(k)) for k in ds.ncattrs()}
        )
        for name, var in ds.variables.items():
            array = group.arrays[name]
            meta = array.metadata
            expected = {k: _json_like(var.getncattr(k)) for k in var.ncattrs() if k != "_FillValue"}
            np.testing.assert_equal(
                {k: v for k, v in meta.stored_attributes.items() if k != "_FillValue"}, expected
            )
            is_char = var.dtype.kind == "S"
            expected = var.dimensions[:-1] if is_char else var.dimensions
            assert (meta.dimension_names or ()) == expected  # None for 0-d arrays
            if is_char:
                continue
            fill = var.getncattr("_FillValue") if "_FillValue" in var.ncattrs() else None
            expected_fill = DEFAULT_FILLS[var.dtype.str[1:]] if fill is None else fill
            np.testing.assert_equal(meta.fill_value, np.asarray(expected_fill, dtype=meta.dtype))
    # A plain CF number in the group; ManifestStore serves it as xarray's base64 double.
    assert group.arrays["filled"].metadata.encoding["_FillValue"] == -999.5
    store = vc.ManifestStore(group, registry=registry)
    with xr.open_zarr(store, consolidated=False, mask_and_scale=False, decode_times=False) as ds:
        assert ds["filled"].attrs["_FillValue"] == np.float32(-999.5)
        assert np.isnan(ds["nan_filled"].attrs["_FillValue"])
        assert ds["packed"].attrs == {
            "_FillValue": -1,
            "scale_factor": pytest.approx(0.1),
            "add_offset": 5.0,
            "units": "K",
        }
        assert ds["time"].attrs == {"units": "days since 2000-01-01", "calendar": "noleap"}
        assert "_FillValue" not in ds["unwritten"].attrs
    with xr.open_zarr(store, consolidated=False) as ds:  # CF decoding on top of the store
        packed = _netcdf4_values(path)["packed"]
        expected = np.where(packed == -1, np.nan, packed * np.float32(0.1) + 5.0)
        np.testing.assert_allclose(ds["packed"].values, expected, rtol=1e-6, atol=1e-5)
        assert ds["time"].dtype.kind == "O"  # noleap dates decoded by cftime


def test_chunk_layout(corpus: Path) -> None:
    path = corpus / "netcdf4_record_shapes_cdf1.nc"
    group, _ = _parse(path)
    record, fixed = group.arrays["t_a_b"], group.arrays["fixed_b"]
    assert isinstance(record, vc.VirtualArray)
    assert isinstance(fixed, vc.VirtualArray)
    assert record.chunk_shape == (1, 3, 5)
    assert record.manifest.grid == (7, 1, 1)
    _, offsets, lengths = record.manifest.to_arrays()
    # records of 1 + 6 + 60 + 40 bytes, each padded to 4: 4 + 8 + 60 + 40
    assert set(np.diff(offsets.ravel()).tolist()) == {112}
    assert set(lengths.ravel().tolist()) == {60}
    assert fixed.chunk_shape == (5,)
    assert fixed.manifest.n_chunks == 1
    assert fixed.manifest.to_entries()["0"]["length"] == 5
    scalar = _parse(corpus / "netcdf4_rich_cdf1.nc")[0].arrays["scalar_f8"]
    assert scalar.shape == ()
    assert scalar.chunk_shape == ()
    assert scalar.metadata.grid_shape == ()
    lone = _parse(corpus / "netcdf4_one_record_var_cdf1.nc")[0].arrays["shorts"]
    assert isinstance(lone, vc.VirtualArray)
    assert set(np.diff(lone.manifest.to_arrays()[1].ravel()).tolist()) == {6}  # no padding


def test_zero_records_are_missing_chunks(corpus: Path) -> None:
    group, _ = _parse(corpus / "netcdf4_zero_records_cdf2.nc")
    values = group.arrays["values"]
    assert isinstance(values, vc.VirtualArray)
    assert values.shape == (0, 2)
    assert values.manifest.grid == (0, 1)
    assert group.arrays["labels"].shape == (0,)


def test_char_variables_are_loaded(corpus: Path) -> None:
    group, _ = _parse(corpus / "netcdf4_rich_cdf1.nc")
    names = group.arrays["names"]
    assert isinstance(names, vc.LoadedArray)
    assert names.dtype == np.dtype("S7")
    assert names.metadata.dimension_names == ("x",)
    assert names.data.tolist() == [b"a", b"bb", b"ccc"]
    assert group.arrays["letter"].shape == ()


def test_char_records_far_apart_are_read_by_ranges(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(netcdf3, "_CLOSE_SPAN", 0)  # every record read by its own range
    path = corpus / "netcdf4_rich_cdf2.nc"
    labels = _parse(path)[0].arrays["labels"]
    assert isinstance(labels, vc.LoadedArray)
    _assert_same(labels.data, _netcdf4_values(path)["labels"], "labels")


def test_drop_variables_and_sources(corpus: Path) -> None:
    path = corpus / "netcdf4_rich_cdf2.nc"
    group, _ = _parse(path, drop_variables=["names", "time"])
    assert "names" not in group.arrays
    assert "time" not in group.arrays
    assert "fixed_f4" in group.arrays
    assert list(group.sources) == [f"file://{path}"]
    assert group.sources[f"file://{path}"].size == path.stat().st_size


def test_streaming_numrecs(corpus: Path, tmp_path: Path) -> None:
    """numrecs = STREAMING: the record count comes from the file size."""
    for name, width in (("netcdf4_record_shapes_cdf1.nc", 4), ("netcdf4_rich_cdf5.nc", 8)):
        data = bytearray((corpus / name).read_bytes())
        data[4 : 4 + width] = b"\xff" * width
        streamed = tmp_path / name
        streamed.write_bytes(bytes(data))
        _assert_roundtrip(streamed, _netcdf4_values(corpus / name))


# ---- corrupt input ---------------------------------------------------------------------


def _parse_bytes(data: bytes) -> vc.VirtualGroup:
    store = MemoryStore()
    obstore.put(store, "bad.nc", data)
    return NetCDF3Parser()(BAD_URL, vc.ObjectStoreRegistry({"memory://bucket/": store}))


def _assert_parses_or_fails_cleanly(data: bytes) -> None:
    """Either a group (all zeros is a valid empty file) or a typed error naming the URL."""
    try:
        group = _parse_bytes(data)
    except vc.VirtualizationError as err:
        message = str(err)
    else:
        assert isinstance(group, vc.VirtualGroup)
        return
    assert BAD_URL in message


def _data_end(group: vc.VirtualGroup) -> int:
    ends = [0]
    for _, array in group.walk_arrays():
        if isinstance(array, vc.VirtualArray) and array.manifest.n_chunks:
            _, offsets, lengths = array.manifest.to_arrays()
            ends.append(int((offsets + lengths).max()))
    return max(ends)


@pytest.mark.parametrize(
    "name",
    [
        "netcdf4_record_shapes_cdf1.nc",
        "netcdf4_record_shapes_cdf5.nc",
        "netcdf4_one_record_var_cdf2.nc",
    ],
)
def test_truncated_files_fail(corpus: Path, name: str) -> None:
    data = (corpus / name).read_bytes()
    data_end = _data_end(_parse(corpus / name)[0])
    step = max(1, data_end // 400)
    for cut in [*range(0, data_end, step), data_end - 1]:
        started = time.perf_counter()
        with pytest.raises(NetCDF3FormatError, match=re.escape(BAD_URL)):
            _parse_bytes(data[:cut])
        assert time.perf_counter() - started < 1.0
    _parse_bytes(data[:data_end])  # the trailing padding may go


def _minimal_cdf1(*, dim_length: int = 2, nc_type: int = 3, begin: int = 80) -> bytes:
    """A CDF-1 file with dimension ``x`` and one variable ``v(x)`` (see the spec's grammar)."""
    fields = [0, 0x0A, 1, 1, 0x78000000, dim_length, 0, 0, 0x0B, 1, 1, 0x76000000, 1, 0, 0, 0]
    return b"CDF\x01" + struct.pack(">19I2h", *fields, nc_type, 4, begin, 7, 8)


def test_minimal_file_parses() -> None:
    group = _parse_bytes(_minimal_cdf1())
    assert group.arrays["v"].shape == (2,)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated header"),
        (b"\x89HDF\r\n\x1a\n" + bytes(100), "not a netCDF classic file"),
        (b"CDF\x03" + bytes(100), "not a netCDF classic file"),
        (_minimal_cdf1(begin=1000), "variable 'v'.*past the end of the file"),
        (_minimal_cdf1(begin=8), "variable 'v'.*inside the 80-byte header"),
        (_minimal_cdf1(dim_length=10**9), "variable 'v'.*past the end of the file"),
        (_minimal_cdf1(dim_length=2**31), "negative"),
        (_minimal_cdf1(nc_type=7), "variable 'v': invalid nc_type 7 for CDF-1"),
        (_minimal_cdf1(nc_type=0), "invalid nc_type 0"),
        (_minimal_cdf1()[:12] + struct.pack(">I", 2**31 - 1) + _minimal_cdf1()[16:], "cannot fit"),
        (_minimal_cdf1()[:8] + struct.pack(">I", 0x0B) + _minimal_cdf1()[12:], "list tag"),
        (b"CDF\x01" + struct.pack(">I", 2**31) + bytes(24), "numrecs is negative"),
        (b"CDF\x05" + b"\x7f" * 8 + struct.pack(">IQ", 0x0A, 2**62) + bytes(64), "cannot fit"),
    ],
)
def test_corrupt_headers_fail(data: bytes, reason: str) -> None:
    with pytest.raises(NetCDF3FormatError, match=reason) as info:
        _parse_bytes(data)
    assert BAD_URL in str(info.value)


def test_record_data_past_the_end(corpus: Path) -> None:
    data = bytearray((corpus / "netcdf4_one_record_var_cdf1.nc").read_bytes())
    data[4:8] = struct.pack(">I", 1000)  # numrecs
    with pytest.raises(NetCDF3FormatError, match=r"variable 'shorts'.*past the end"):
        _parse_bytes(bytes(data))


@settings(max_examples=50, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
@given(magic=st.sampled_from(NETCDF3_MAGICS), body=st.binary(max_size=4096))
def test_random_bytes_after_magic(magic: bytes, body: bytes) -> None:
    _assert_parses_or_fails_cleanly(magic + body)


@functools.cache
def _rich_sample() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rich.nc"
        _write_netcdf4_rich(path, "NETCDF3_CLASSIC")
        return path.read_bytes()


@settings(max_examples=50, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
@given(position=st.integers(min_value=4, max_value=600), patch=st.binary(min_size=1, max_size=8))
def test_corrupted_header_bytes(position: int, patch: bytes) -> None:
    data = bytearray(_rich_sample())
    data[position : position + len(patch)] = patch
    _assert_parses_or_fails_cleanly(bytes(data))


def test_huge_declared_counts_fail_fast() -> None:
    for magic, width in ((b"CDF\x01", 4), (b"CDF\x05", 8)):
        for field in range(3):  # dimension, attribute or variable count
            prefix = bytes(width) + bytes(4 + width) * field
            body = prefix + struct.pack(">I", (0x0A, 0x0C, 0x0B)[field])
            body += (2**31 - 1).to_bytes(width, "big") + bytes(256)
            started = time.perf_counter()
            with pytest.raises(NetCDF3FormatError, match="cannot fit"):
                _parse_bytes(magic + body)
            assert time.perf_counter() - started < 1.0


def test_unregistered_url_is_refused(corpus: Path) -> None:
    with pytest.raises(vc.UnregisteredURLError):
        NetCDF3Parser()(f"file://{corpus}/x.nc", vc.ObjectStoreRegistry())


def test_missing_file_is_a_typed_error(corpus: Path) -> None:
    with pytest.raises(vc.SourceNotFoundError, match=r"missing\.nc"):
        _parse(corpus / "missing.nc")


# ---- names and text that are not plain ASCII -------------------------------------------------


def _patched_names(path: Path, replacements: dict[bytes, bytes]) -> Path:
    """A scipy-written CDF-1 file whose names are then rewritten byte for byte."""
    with netcdf_file(path, "w") as f:
        f.createDimension("xdim", 3)
        v = f.createVariable("vcafe", "i4", ("xdim",))
        v[:] = [1, -2, 3]
        v.acafe = b"plain"
        f.gcafe = b"global"
    data = path.read_bytes()
    for old, new in replacements.items():
        assert len(old) == len(new)
        assert data.count(old) == 1
        data = data.replace(old, new)
    path.write_bytes(data)
    return path


def _names_and_values(group: vc.VirtualGroup, registry: vc.ObjectStoreRegistry) -> dict[str, Any]:
    (name,) = group.arrays
    array = group[name]
    return {
        "variable": name,
        "dimensions": list(array.metadata.dimension_names or ()),
        "attributes": sorted(array.metadata.attributes),
        "global": sorted(group.attributes),
        "values": vc.read_array(array, registry).tolist(),
    }


UTF8_NAMES = {
    b"vcafe": "vcée".encode(),
    b"xdim": "x\u00e9m".encode(),
    b"acafe": "ae\u0301e".encode(),
}


def test_utf8_names_read_like_netcdf4(tmp_path: Path) -> None:
    path = _patched_names(tmp_path / "utf8.nc", UTF8_NAMES)
    group, registry = _parse(path)
    with netCDF4.Dataset(path) as ds:
        (variable,) = ds.variables.values()
        expected = {
            "variable": variable.name,
            "dimensions": list(variable.dimensions),
            "attributes": sorted(variable.ncattrs()),
            "global": sorted(ds.ncattrs()),
            "values": variable[:].tolist(),
        }
    assert expected["attributes"] == ["ae\u0301e"]  # as stored: netCDF4 does not normalise
    assert _names_and_values(group, registry) == expected


LATIN1_NAMES = {
    b"vcafe": b"vcaf\xe9",
    b"xdim": b"x\xffim",
    b"acafe": b"acaf\xe9",
    b"gcafe": b"g\xe0afe",
}


def test_names_that_are_not_utf8_read_like_scipy(tmp_path: Path) -> None:
    path = _patched_names(tmp_path / "latin1.nc", LATIN1_NAMES)
    with pytest.raises(UnicodeDecodeError):  # netCDF4-python cannot open such a file at all
        netCDF4.Dataset(path)
    group, registry = _parse(path)
    with netcdf_file(path, mmap=False) as f:
        (name,) = f.variables
        variable = f.variables[name]
        expected = {
            "variable": name,
            "dimensions": list(variable.dimensions),
            "attributes": sorted(variable._attributes),
            "global": sorted(f._attributes),
            "values": variable[:].tolist(),
        }
    assert expected["variable"] == "vcaf\u00e9"
    assert _names_and_values(group, registry) == expected
    store = vc.ManifestStore(group, registry=registry)
    assert zarr.open_array(store, path="vcaf\u00e9", mode="r")[...].tolist() == [1, -2, 3]
    with xr.open_zarr(store, consolidated=False) as ds:
        assert list(ds["vcaf\u00e9"].dims) == ["x\u00ffim"]
        assert set(ds["vcaf\u00e9"].attrs) == {"acaf\u00e9"}


@pytest.mark.parametrize(
    "raw",
    [b"valu\xe9 here", b"ab\x00cd\x00\x00", b"\x00lead", b"\xff\xfe", b"", "naïve".encode()],
    ids=["latin-1", "inner-nuls", "leading-nul", "invalid", "empty", "utf-8"],
)
def test_text_attributes_read_like_netcdf4(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "text.nc"
    with netcdf_file(path, "w") as f:
        f.createDimension("x", 2)
        v = f.createVariable("v", "i2", ("x",))
        v[:] = 1
        v.text = raw
        f.text = raw
    group, _ = _parse(path)
    with netCDF4.Dataset(path) as ds:
        assert group["v"].metadata.attributes["text"] == ds["v"].getncattr("text")
        assert group.attributes["text"] == ds.getncattr("text")


def test_overlapping_variables_are_refused_as_netcdf_c_refuses_them(tmp_path: Path) -> None:
    """scipy puts a scalar variable after the record variables, over the second record:
    netCDF-C refuses such a file, and so does vz (scipy reads the record wrong)."""
    path = tmp_path / "overlap.nc"
    with netcdf_file(path, "w", version=2) as f:
        f.createDimension("time", None)
        f.createVariable("temp", "f4", ("time",))[:] = [1.0, 2.0, 3.0]
        f.createVariable("flag", "i2", ("time",))[:] = [0, 1, 0]
        f.createVariable("scalar", "f8", ())[...] = 2.5
    with netcdf_file(path, mmap=False) as f:  # what scipy reads back is not what it wrote
        assert f.variables["temp"][1] != 2.0
    with pytest.raises(OSError, match="Unknown file format"):
        netCDF4.Dataset(path)
    with pytest.raises(NetCDF3FormatError, match="overlap") as info:
        _parse(path)
    assert str(path) in str(info.value)
    assert "'scalar'" in str(info.value)


def test_record_variables_out_of_order_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "order.nc"
    with netCDF4.Dataset(path, "w", format="NETCDF3_CLASSIC") as ds:
        ds.createDimension("time", None)
        ds.createVariable("a", "i4", ("time",))[:] = [1, 2]
        ds.createVariable("b", "i4", ("time",))[:] = [3, 4]
    _parse(path)  # as written: fine
    data = bytearray(path.read_bytes())
    group, _ = _parse(path)
    begin_b = group["b"].manifest.to_entries()["0"]["offset"]
    at = data.rindex(begin_b.to_bytes(4, "big"))
    data[at : at + 4] = (begin_b - 4).to_bytes(4, "big")  # b now begins inside a
    path.write_bytes(bytes(data))
    with pytest.raises(OSError):
        netCDF4.Dataset(path)
    with pytest.raises(
        NetCDF3FormatError, match=r"variable 'b' begins .* before the end of variable 'a'"
    ):
        _parse(path)
