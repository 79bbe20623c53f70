"""A corpus of netCDF4 and HDF5 files written with netCDF4 and h5py, for `HDFParser` tests.

Each builder writes one file into a folder; `CORPUS` names them. The files cover the
storage layouts (chunked, contiguous, compact, never written), the filters this
environment can write (deflate, shuffle, fletcher32, zstd, blosc), every integer
width, both byte orders, bool, enum, complex, strings, CF encodings, groups,
dimension scales and attributes of every kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import h5py
import netCDF4  # importing it points HDF5_PLUGIN_PATH at its filters, so h5py reads them too
import numpy as np

from vzcore.parsers import HDFParser

__all__ = [
    "BLOSC_COMPRESSORS",
    "CORPUS",
    "EXPECTED_ROOT_ATTRIBUTES",
    "UNSUPPORTED_FILTERS",
    "CorpusFile",
    "available_compressions",
    "blosc_skip_reason",
    "filter_variants",
    "real_sample_files",
    "write_lzf_skipped_chunks",
    "write_unsupported_filter_file",
    "zstd_skip_reason",
]

BYTE_ORDERS: tuple[Literal["<", ">"], ...] = ("<", ">")
BLOSC_COMPRESSORS = ("blosc_lz", "blosc_lz4", "blosc_lz4hc", "blosc_zlib", "blosc_zstd")


def zstd_skip_reason() -> str | None:
    """Why zstd cannot be tested here, or None when netCDF4 writes and h5py reads it."""
    if not getattr(netCDF4, "__has_zstandard_support__", False):
        return "this netCDF4 wheel has no zstd filter plugin"
    if not h5py.h5z.filter_avail(32015):
        return "h5py cannot load the zstd filter plugin (HDF5 id 32015)"
    return None


def blosc_skip_reason() -> str | None:
    """Why blosc cannot be tested here, or None when netCDF4 writes and h5py reads it."""
    if not getattr(netCDF4, "__has_blosc_support__", False):
        return "this netCDF4 wheel has no blosc filter plugin"
    if not h5py.h5z.filter_avail(32001):
        return "h5py cannot load the blosc filter plugin (HDF5 id 32001)"
    return None


def _filter_available(flag: str, filter_id: int) -> bool:
    return bool(getattr(netCDF4, flag, False)) and bool(h5py.h5z.filter_avail(filter_id))


def available_compressions() -> list[str]:
    """The netCDF4 ``compression=`` values both netCDF4 (writing) and h5py (reading) have."""
    names = ["zlib"]
    if zstd_skip_reason() is None:
        names.append("zstd")
    if blosc_skip_reason() is None:
        names.extend(BLOSC_COMPRESSORS)
    if _filter_available("__has_bzip2_support__", 307):
        names.append("bzip2")
    if _filter_available("__has_szip_support__", 4):
        names.append("szip")
    return names


def filter_variants() -> dict[str, dict[str, Any]]:
    """netCDF4 ``createVariable`` options per variable of nc_filters.nc.

    netCDF4 applies ``shuffle=`` with zlib only; blosc shuffles inside its own filter.
    """
    variants: dict[str, dict[str, Any]] = {}
    for compression in available_compressions():
        options: dict[str, Any] = {"compression": compression, "shuffle": False}
        if compression == "szip":
            options |= {"szip_coding": "nn", "szip_pixels_per_block": 16}
        elif compression != "bzip2":
            options["complevel"] = 4
        variants[compression] = options
    variants["zlib_shuffle"] = variants["zlib"] | {"shuffle": True}
    if "blosc_lz4" in variants:
        for blosc_shuffle, label in ((0, "noshuffle"), (2, "bitshuffle")):
            variants[f"blosc_lz4_{label}"] = variants["blosc_lz4"] | {
                "blosc_shuffle": blosc_shuffle
            }
    return variants


def _smooth(shape: tuple[int, ...], seed: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Compressible float32 values (blosc refuses chunks it cannot shrink)."""
    rng = np.random.default_rng(seed)
    base = np.floor(10 * np.sin(np.arange(int(np.prod(shape))) / 7.0)).reshape(shape)
    return (base + rng.integers(0, 2, size=shape)).astype(np.float32)


# ---- netCDF4 files -----------------------------------------------------------------------


def _nc_basic(path: Path) -> None:
    """Coordinates, CF time, packed ints, every compression, big endian, strings, enum."""
    nt, ny, nx = 10, 18, 36
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.title = "basic"
        ds.history = "written by tests/hdf5_corpus.py"
        ds.version = np.int32(3)
        ds.scales = np.array([1.5, 2.5, 3.5])
        ds.flag = np.int8(1)
        ds.createDimension("time", None)
        ds.createDimension("lat", ny)
        ds.createDimension("lon", nx)
        ds.createDimension("station", 4)
        ds.createDimension("strlen", 6)

        time = ds.createVariable("time", "i4", ("time",), chunksizes=(16,))
        time.units = "days since 2000-01-01"
        time.calendar = "standard"
        time.standard_name = "time"
        time[:] = np.arange(nt) * 3
        lat = ds.createVariable("lat", "f8", ("lat",))
        lat.units = "degrees_north"
        lat[:] = np.linspace(-85, 85, ny)
        lon = ds.createVariable("lon", "f8", ("lon",))
        lon.units = "degrees_east"
        lon[:] = np.linspace(0, 350, nx)

        field = _smooth((nt, ny, nx), 0)
        tas = ds.createVariable(
            "tas",
            "f4",
            ("time", "lat", "lon"),
            zlib=True,
            complevel=5,
            shuffle=True,
            chunksizes=(4, 5, 7),
            fill_value=np.float32(-999.0),
        )
        tas.units = "K"
        tas.valid_range = np.array([-100.0, 400.0], dtype="f4")
        values = field.copy()
        values[0, 0, :5] = -999.0
        values[1, 2, 3] = np.nan
        tas[:] = values

        tas_be = ds.createVariable(
            "tas_be", ">f4", ("time", "lat", "lon"), zlib=True, endian="big", chunksizes=(2, 9, 9)
        )
        tas_be[:] = field
        be_filled = ds.createVariable(
            "be_filled",
            ">i4",
            ("lat", "lon"),
            endian="big",
            fill_value=np.int32(-5),
            chunksizes=(5, 5),
        )
        be_filled[:5, :] = np.arange(5 * nx, dtype="i4").reshape(5, nx)
        nan_filled = ds.createVariable(
            "nan_filled", "f8", ("lat", "lon"), fill_value=np.nan, chunksizes=(6, 6), zlib=True
        )
        nan_filled[6:12, :] = np.ones((6, nx))
        deflate_only = ds.createVariable(
            "deflate_only", "f8", ("lat", "lon"), zlib=True, shuffle=False, chunksizes=(7, 10)
        )
        deflate_only[:] = field[0].astype("f8") / 3
        orog = ds.createVariable("orog", "f4", ("lat", "lon"), contiguous=True)
        orog.units = "m"
        orog[:] = field[1] * 100

        packed = ds.createVariable(
            "packed", "i2", ("time", "lat", "lon"), zlib=True, fill_value=np.int16(-32767)
        )
        packed.scale_factor = 0.01
        packed.add_offset = 273.15
        packed.set_auto_maskandscale(False)
        raw = np.round(field * 100).astype("i2")
        raw[2, :3, :3] = -32767
        packed[:] = raw
        # float32 packing attributes: xarray decodes to float32 (CF), vz serves JSON floats.
        packed32 = ds.createVariable("packed_f32", "i2", ("lat", "lon"), fill_value=np.int16(-1))
        packed32.scale_factor = np.float32(0.01)
        packed32.add_offset = np.float32(273.15)
        packed32.set_auto_maskandscale(False)
        packed32[:] = raw[0]

        empty = ds.createVariable(
            "never_written", "f4", ("lat", "lon"), fill_value=np.float32(1e20), chunksizes=(4, 4)
        )
        empty.long_name = "declared, never written"
        empty_default = ds.createVariable("never_written_default_fill", "i4", ("lat",))
        del empty_default  # its fill is netCDF's default for int, with no _FillValue attribute

        rng = np.random.default_rng(5)
        for index, dtype in enumerate(("i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8")):
            var = ds.createVariable(f"int_{dtype}", dtype, ("lat", "lon"), zlib=index % 2 == 0)
            info = np.iinfo(dtype)
            ints = rng.integers(info.min, info.max, size=(ny, nx), dtype=dtype, endpoint=True)
            ints[0, :2] = (info.min, info.max)
            var[:] = ints

        hours = ds.createVariable("valid_hours", "f8", ("time",))
        hours.units = "hours since 1970-01-01 00:00:00"
        hours.calendar = "noleap"
        hours[:] = np.arange(nt) * 6.5

        names = ds.createVariable("station_name", str, ("station",))
        for i, name in enumerate(["Aberdeen", "Bâle", "", "Zürich ✓"]):
            names[i] = name
        code = ds.createVariable("station_code", "S1", ("station", "strlen"))
        code.set_auto_chartostring(False)
        code[:] = netCDF4.stringtochar(np.array(["AB", "BSL01", "", "ZRH"], dtype="S6"))

        cloud = ds.createEnumType("u1", "cloud_t", {"clear": 0, "cumulus": 1, "stratus": 2})
        clouds = ds.createVariable("cloud", cloud, ("station",), fill_value=np.uint8(0))
        clouds[:] = np.array([0, 1, 2, 1], dtype="u1")


def _nc_filters(path: Path) -> None:
    """One variable per filter netCDF4 can write here (zstd and blosc when available)."""
    shape, chunks = (12, 40, 50), (5, 20, 30)
    field = _smooth(shape, 1)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        for name, size in zip(("t", "y", "x"), shape, strict=True):
            ds.createDimension(name, size)
        dims = ("t", "y", "x")
        for name, options in filter_variants().items():
            var = ds.createVariable(name, "f4", dims, chunksizes=chunks, **options)
            var[:] = field
        ints = ds.createVariable(
            "zlib_shuffle_int64", "i8", dims, compression="zlib", shuffle=True, chunksizes=chunks
        )
        ints[:] = (field * 1000).astype("i8")


def _nc_fletcher32(path: Path) -> None:
    """Fletcher32 checksums, with and without deflate and shuffle."""
    field = _smooth((9, 11), 2)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("y", 9)
        ds.createDimension("x", 11)
        plain = ds.createVariable("checked", "f4", ("y", "x"), fletcher32=True, chunksizes=(4, 4))
        plain[:] = field
        both = ds.createVariable(
            "checked_deflate",
            "f4",
            ("y", "x"),
            zlib=True,
            shuffle=True,
            fletcher32=True,
            chunksizes=(4, 4),
        )
        both[:] = field


def _nc_unlimited(path: Path) -> None:
    """Variables shorter than their unlimited dimension (netCDF pads them with fill values)."""
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("time", None)
        ds.createDimension("x", 3)
        time = ds.createVariable("time", "f8", ("time",))
        time[:] = np.arange(10.0)
        ds.createVariable("never_written", "f4", ("time", "x"), fill_value=np.float32(-1))
        half = ds.createVariable("half_written", "i4", ("time", "x"), fill_value=np.int32(-9))
        half[:4] = np.arange(12, dtype="i4").reshape(4, 3)


def _nc_groups(path: Path) -> None:
    """A root and two levels of groups, each with its own dimensions and attributes."""
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("x", 5)
        ds.purpose = "root"
        x = ds.createVariable("x", "f4", ("x",))
        x[:] = np.arange(5, dtype="f4")
        top = ds.createVariable("top", "i4", ("x",), zlib=True)
        top[:] = np.arange(5) * 10

        sub = ds.createGroup("sub")
        sub.purpose = "first level"
        sub.createDimension("y", 3)
        y = sub.createVariable("y", "f8", ("y",))
        y[:] = [0.5, 1.5, 2.5]
        grid = sub.createVariable("grid", "f4", ("y", "x"), zlib=True, chunksizes=(2, 2))
        grid.units = "1"
        grid[:] = np.arange(15, dtype="f4").reshape(3, 5)

        deeper = sub.createGroup("deeper")
        deeper.purpose = "second level"
        deeper.createDimension("z", 2)
        deep = deeper.createVariable("deep", "u2", ("z", "y"), fill_value=np.uint16(9))
        deep[:] = np.array([[1, 2, 3], [4, 5, 6]], dtype="u2")

        other = ds.createGroup("other")
        other.createDimension("n", 4)
        labels = other.createVariable("labels", str, ("n",))
        labels[:] = np.array(["a", "bb", "ccc", "dddd"], dtype=object)


# ---- plain HDF5 files --------------------------------------------------------------------

EXPECTED_ROOT_ATTRIBUTES: dict[str, Any] = {
    "title": "plain",
    "fixed_bytes": "raw",
    "numpy_bytes": "nb",
    "utf8": "héllo ✓",
    "int": 7,
    "float": 2.5,
    "float32": 0.5,
    "bool": True,
    "uint64": 2**63 + 1,
    "int64": -(2**62),
    "ints": [0, 1, 2],
    "floats": [1.5, -2.25],
    "one_element": 4,
    "matrix": [[0, 1], [2, 3]],
    "vlen_strings": ["a", "bc"],
    "fixed_strings": ["x", "yz"],
    "empty": None,
}


def _set_root_attributes(f: h5py.File) -> None:
    f.attrs["title"] = "plain"
    f.attrs["fixed_bytes"] = np.bytes_(b"raw")
    f.attrs["numpy_bytes"] = np.bytes_(b"nb")
    f.attrs["utf8"] = "héllo ✓"
    f.attrs["int"] = 7
    f.attrs["float"] = 2.5
    f.attrs["float32"] = np.float32(0.5)
    f.attrs["bool"] = np.bool_(True)
    f.attrs["uint64"] = np.uint64(2**63 + 1)
    f.attrs["int64"] = np.int64(-(2**62))
    f.attrs["ints"] = np.arange(3, dtype="i2")
    f.attrs["floats"] = np.array([1.5, -2.25], dtype=">f8")
    f.attrs["one_element"] = np.array([4], dtype="u1")
    f.attrs["matrix"] = np.arange(4, dtype="i4").reshape(2, 2)
    f.attrs.create("vlen_strings", ["a", "bc"], dtype=h5py.string_dtype())
    f.attrs["fixed_strings"] = np.array([b"x", b"yz"])
    f.attrs["empty"] = h5py.Empty("f4")


def _compact(group: h5py.Group, name: str, data: np.ndarray[Any, Any]) -> None:
    """A dataset with the COMPACT layout (values stored in the object header)."""
    space = h5py.h5s.create_simple(data.shape)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    dsid = h5py.h5d.create(
        group.id, name.encode(), h5py.h5t.py_create(data.dtype), space, dcpl=dcpl
    )
    h5py.Dataset(dsid)[...] = data


def _h5_plain(path: Path) -> None:
    """Plain HDF5 (no dimension scales): types, byte orders, layouts, fill values."""
    rng = np.random.default_rng(3)
    with h5py.File(path, "w") as f:
        _set_root_attributes(f)
        for dtype in ("i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8"):
            info = np.iinfo(dtype)
            values = rng.integers(info.min, info.max, size=(6, 10), dtype=dtype, endpoint=True)
            values[0, :2] = (info.min, info.max)
            for order in BYTE_ORDERS:
                name = f"{dtype}_{'le' if order == '<' else 'be'}"
                stored = values.astype(np.dtype(dtype).newbyteorder(order))
                f.create_dataset(f"{name}_chunked", data=stored, chunks=(4, 3), compression="gzip")
                f.create_dataset(f"{name}_contiguous", data=stored)
        for dtype in ("f2", "f4", "f8", "c8", "c16"):
            values = rng.standard_normal((5, 7)).astype(dtype)
            if dtype.startswith("f"):
                values[1, 1] = np.nan
                values[2, 2] = np.inf
            else:
                values = values + 1j * rng.standard_normal((5, 7)).astype(dtype)
            for order in BYTE_ORDERS:
                name = f"{dtype}_{'le' if order == '<' else 'be'}"
                stored = values.astype(np.dtype(dtype).newbyteorder(order))
                f.create_dataset(
                    f"{name}_chunked", data=stored, chunks=(2, 7), shuffle=True, compression=1
                )
                f.create_dataset(f"{name}_contiguous", data=stored)
        f.create_dataset(
            "bool_chunked", data=rng.integers(0, 2, (9, 4)).astype(bool), chunks=(4, 4)
        )
        f.create_dataset("bool_contiguous", data=np.array([True, False, True]))
        colour = h5py.enum_dtype({"RED": 0, "GREEN": 1, "BLUE": 42}, basetype="i2")
        f.create_dataset(
            "enum_chunked", data=np.array([0, 1, 42, 1, 0], dtype="i2"), dtype=colour, chunks=(2,)
        )
        f.create_dataset("enum_contiguous", data=np.array([[42, 0]], dtype="i2"), dtype=colour)
        f.create_dataset("scalar", data=np.float64(3.25))
        f.create_dataset("scalar_int", data=np.int16(-5))

        # Layouts and fill values.
        f.create_dataset(
            "edge_chunks", data=np.arange(130, dtype="<f4").reshape(10, 13), chunks=(3, 4)
        )
        f.create_dataset(
            "chunk_larger_than_array",
            data=np.arange(5, dtype="i4"),
            chunks=(16,),
            maxshape=(None,),
            compression="gzip",
        )
        f.create_dataset(
            "chunk_larger_2d",
            data=np.arange(6, dtype="u2").reshape(2, 3),
            chunks=(8, 8),
            maxshape=(None, None),
        )
        f.create_dataset(
            "unlimited",
            data=np.arange(20, dtype="f8").reshape(4, 5),
            chunks=(3, 5),
            maxshape=(None, 5),
        )
        f.create_dataset("zero_length", shape=(0,), dtype="f4", chunks=(4,), maxshape=(None,))
        f.create_dataset("zero_length_contiguous", shape=(0, 3), dtype="i2")
        f.create_dataset(
            "never_written_chunked", shape=(7, 9), dtype="f4", chunks=(3, 3), fillvalue=-7.5
        )
        f.create_dataset(
            "never_written_chunked_nan", shape=(4, 5), dtype=">f8", chunks=(2, 2), fillvalue=np.nan
        )
        f.create_dataset("never_written_contiguous", shape=(5, 3), dtype="i4", fillvalue=-3)
        f.create_dataset("never_written_default", shape=(6,), dtype="u1", chunks=(4,))
        partial = f.create_dataset(
            "partially_written", shape=(8, 9), dtype="i2", chunks=(4, 4), fillvalue=11
        )
        partial[0:4, 4:8] = np.arange(16, dtype="i2").reshape(4, 4)
        partial[5, 1] = -1
        _compact(f, "compact", np.arange(12, dtype="<i4").reshape(4, 3))
        _compact(f, "compact_be", np.linspace(0, 1, 6).astype(">f8"))

        # Strings: fixed and variable length, text and bytes.
        f.create_dataset("fixed_ascii", data=np.array([b"alpha", b"be", b""], dtype="S6"))
        f.create_dataset(
            "vlen_utf8",
            data=np.array(["één", "two ✓", ""], dtype=object),
            dtype=h5py.string_dtype("utf-8"),
        )
        f.create_dataset(
            "vlen_ascii_2d",
            data=np.array([[b"a", b"bb", b"d"], [b"ccc", b"", b"ee"]], dtype=object),
            dtype=h5py.string_dtype("ascii"),
        )
        f.create_dataset(
            "vlen_utf8_chunked",
            data=np.array(["x"] * 5 + ["yz"] * 5, dtype=object),
            dtype=h5py.string_dtype(),
            chunks=(3,),
        )
        f.create_dataset(
            "lzf",
            data=np.repeat(np.arange(40, dtype="<f4"), 15).reshape(20, 30),
            chunks=(10, 10),
            compression="lzf",
        )
        var_attrs = f["edge_chunks"].attrs
        var_attrs["units"] = "m s-1"
        var_attrs["valid_range"] = np.array([0, 200], dtype="i2")
        var_attrs["missing_value"] = np.float32(np.nan)

        sub = f.create_group("g1")
        sub.attrs["level"] = 1
        sub.create_dataset("a", data=np.arange(12, dtype="i8").reshape(3, 4), chunks=(2, 2))
        deeper = sub.create_group("g2")
        deeper.attrs["level"] = np.int32(2)
        deeper.create_dataset("b", data=np.arange(5, dtype=">u4"))
        deeper.create_group("empty_group").attrs["note"] = b"nothing here"


def _h5_square(path: Path) -> None:
    """Datasets without dimension scales whose axes have equal lengths."""
    with h5py.File(path, "w") as f:
        f.create_dataset("square", data=np.arange(16, dtype="f4").reshape(4, 4), chunks=(3, 3))
        f.create_dataset("cube", data=np.arange(8, dtype="i2").reshape(2, 2, 2))
        f.create_dataset("rect", data=np.arange(12, dtype="u1").reshape(4, 3))


def _h5_scales(path: Path) -> None:
    """HDF5 dimension scales attached by hand: some axes named, one left phony."""
    with h5py.File(path, "w") as f:
        f["y"] = np.arange(4, dtype="f8")
        f["x"] = np.arange(6, dtype="f8") * 0.5
        f["y"].make_scale("y")
        f["x"].make_scale("x")
        data = f.create_dataset("data", data=np.arange(24, dtype="f4").reshape(4, 6), chunks=(2, 3))
        data.dims[0].attach_scale(f["y"])
        data.dims[1].attach_scale(f["x"])
        f.create_dataset("unnamed", data=np.zeros((7, 5), dtype="u1"))


def _h5_scales_mixed(path: Path) -> None:
    """One axis with a dimension scale, one without (h5netcdf refuses such files)."""
    with h5py.File(path, "w") as f:
        f["y"] = np.arange(4, dtype="f8")
        f["y"].make_scale("y")
        half = f.create_dataset("half_named", data=np.ones((4, 7), dtype="i2"))
        half.dims[0].attach_scale(f["y"])


def _h5_fletcher32(path: Path) -> None:
    """h5py's fletcher32, alone and after shuffle and deflate."""
    with h5py.File(path, "w") as f:
        f.create_dataset(
            "checked",
            data=np.arange(100, dtype="<i4").reshape(10, 10),
            chunks=(3, 4),
            fletcher32=True,
        )
        f.create_dataset(
            "checked_deflate",
            data=np.arange(100, dtype=">f8").reshape(10, 10),
            chunks=(3, 4),
            fletcher32=True,
            shuffle=True,
            compression="gzip",
        )


@attrs.frozen(kw_only=True)
class CorpusFile:
    """One file of the corpus: how to write it and what to expect of it."""

    name: str
    build: Callable[[Path], None]
    netcdf: bool
    """Written by netCDF4, so netCDF4 is a second reference reader."""
    xarray_engine: str | None
    """The `xr.open_dataset` engine that reads it (None: no xarray reader accepts it)."""
    xfail: Mapping[str, str] = attrs.field(factory=dict)
    """Known vz bugs per comparison: ``"zarr"`` (vs h5py), ``"netcdf4"``, ``"xarray"``."""
    xarray_divergent: Mapping[str, str] = attrs.field(factory=dict)
    """Variables whose xarray view differs from `xr.open_dataset`'s, with the reason."""
    strings: tuple[str, ...] = ()
    """Variable-length string variables: `HDFParser` reads them only when told to load them."""

    def parser(self) -> HDFParser:
        """The parser that reads every variable of the file (its strings loaded)."""
        return HDFParser(loadable_variables=self.strings)


_PACKED_F32_DIVERGENCE = (
    "LIMITATION: float32 scale_factor/add_offset become JSON floats, so xarray decodes the "
    "packed int16 to float64 through vz and to float32 (CF rule) through netCDF4"
)

CORPUS: dict[str, CorpusFile] = {
    c.name: c
    for c in (
        CorpusFile(
            name="nc_basic.nc",
            build=_nc_basic,
            netcdf=True,
            xarray_engine="netcdf4",
            xarray_divergent={
                "packed_f32": _PACKED_F32_DIVERGENCE,
            },
            strings=("station_name",),
        ),
        CorpusFile(name="nc_filters.nc", build=_nc_filters, netcdf=True, xarray_engine="netcdf4"),
        CorpusFile(
            name="nc_groups.nc",
            build=_nc_groups,
            netcdf=True,
            xarray_engine="netcdf4",
            strings=("labels",),
        ),
        CorpusFile(
            name="nc_unlimited.nc",
            build=_nc_unlimited,
            netcdf=True,
            xarray_engine="netcdf4",
        ),
        CorpusFile(
            name="nc_fletcher32.nc",
            build=_nc_fletcher32,
            netcdf=True,
            xarray_engine="netcdf4",
        ),
        CorpusFile(
            name="h5_plain.h5",
            build=_h5_plain,
            netcdf=False,
            xarray_engine="h5netcdf",
            strings=("vlen_utf8", "vlen_ascii_2d", "vlen_utf8_chunked"),
        ),
        CorpusFile(
            name="h5_square.h5",
            build=_h5_square,
            netcdf=False,
            xarray_engine="h5netcdf",
        ),
        CorpusFile(name="h5_scales.h5", build=_h5_scales, netcdf=False, xarray_engine="h5netcdf"),
        CorpusFile(
            name="h5_scales_mixed.h5", build=_h5_scales_mixed, netcdf=False, xarray_engine=None
        ),
        CorpusFile(
            name="h5_fletcher32.h5",
            build=_h5_fletcher32,
            netcdf=False,
            xarray_engine="h5netcdf",
        ),
    )
}


# ---- files vz must refuse ----------------------------------------------------------------


UNSUPPORTED_FILTERS: dict[str, tuple[int, str]] = {
    "nbit": (5, "nbit"),
    "scaleoffset": (6, "scaleoffset"),
    "unregistered": (32099, "unknown"),
}
"""Filters vz has no codec for: their HDF5 id and the name vz's error must give."""


def write_unsupported_filter_file(path: Path, filter_name: str) -> None:
    """A file whose dataset ``data`` goes through the filter named ``filter_name``.

    ``"unregistered"`` is filter id 32099, unknown to HDF5, set as optional so that
    HDF5 writes the chunks without it.
    """
    values = np.arange(400, dtype="f4").reshape(20, 20)
    with h5py.File(path, "w") as f:
        if filter_name == "scaleoffset":
            f.create_dataset("data", data=values, chunks=(10, 10), scaleoffset=2)
            return
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((10, 10))
        # What H5Pset_nbit does (h5py has no wrapper); the unknown filter gets dummy values.
        client_data = () if filter_name == "nbit" else (1, 2)
        dcpl.set_filter(UNSUPPORTED_FILTERS[filter_name][0], h5py.h5z.FLAG_OPTIONAL, client_data)
        space = h5py.h5s.create_simple(values.shape)
        dtype = h5py.h5t.py_create(values.dtype)
        dsid = h5py.h5d.create(f.id, b"data", dtype, space, dcpl=dcpl)
        h5py.Dataset(dsid)[...] = values


def write_lzf_skipped_chunks(path: Path) -> None:
    """LZF on random bytes: HDF5 stores incompressible chunks unfiltered (a filter mask)."""
    noise = np.random.default_rng(7).integers(0, 2**31, size=(20, 20), dtype="i4")
    with h5py.File(path, "w") as f:
        f.create_dataset("noise", data=noise, chunks=(10, 10), compression="lzf")


# ---- sample files from installed packages ------------------------------------------------


def real_sample_files(site_packages: list[Path]) -> list[Path]:
    """HDF5 files shipped inside installed packages (h5py's and others' test data)."""
    found: set[Path] = set()
    for root in site_packages:
        for pattern in ("*.nc", "*.nc4", "*.h5", "*.hdf5", "*.he5"):
            for candidate in root.glob(f"*/**/{pattern}"):
                try:
                    with candidate.open("rb") as handle:
                        if handle.read(8) == b"\x89HDF\r\n\x1a\n":
                            found.add(candidate)
                except OSError:
                    continue
    return sorted(found)
