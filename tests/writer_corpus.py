"""netCDF files for the writer tests (Kerchunk, Icechunk) and the Kerchunk parser tests.

Every file is written with netCDF4 (netCDF-4 and 64-bit-offset netCDF-3); the tests
parse them with vz, write references, read the references back with fsspec, zarr or
Icechunk and compare with ``xr.open_dataset`` of the file itself.

- ``nc4_basic.nc``: unlimited ``time`` with CF units, contiguous and big-endian
  coordinates, a chunked zlib+shuffle variable with ``_FillValue`` (some values
  equal to it) and partial edge chunks, a packed int16 (``scale_factor``,
  ``add_offset``), a big-endian chunked int32, a variable with chunks never
  written (missing chunks), a 0-d variable and a variable-length string variable.
- ``nc4_groups.nc``: a root variable and two levels of groups with attributes.
- ``nc3_records.nc``: 64-bit offset netCDF-3 with record variables (one chunk per
  record), a packed record variable and non-record variables.
- ``part{0,1,2}.nc`` and the mismatched ``bad_*.nc``: pieces of one time series,
  for appending (time chunks of 2, 4 steps per file); ``short.nc`` has 3 steps
  (a partial last chunk), ``tail.nc`` 2 steps following part0.nc.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import fsspec
import netCDF4
import numpy as np
import obstore
import xarray as xr
from fsspec.implementations.reference import LazyReferenceMapper

import vzcore as vc

__all__ = [
    "GROUPS",
    "NETCDF3_FILES",
    "NETCDF4_FILES",
    "STRINGS",
    "assert_same_values",
    "expected_dataset",
    "local_registry",
    "reference_dataset",
    "write_corpus",
    "write_part",
]

NETCDF4_FILES = ("nc4_basic.nc", "nc4_groups.nc")
STRINGS = ("names",)
"""The variable-length string variables: `HDFParser` reads them when told to load them."""
NETCDF3_FILES = ("nc3_records.nc",)
GROUPS: Mapping[str, tuple[str, ...]] = {
    "nc4_basic.nc": ("",),
    "nc4_groups.nc": ("", "obs", "obs/deep"),
    "nc3_records.nc": ("",),
}
"""Every group of each corpus file that holds variables (``""`` is the root)."""


def _nc4_basic(path: Path) -> None:
    nt, ny, nx = 6, 5, 7
    rng = np.random.default_rng(0)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.title = "writer corpus"
        ds.Conventions = "CF-1.8"
        ds.levels = np.array([1, 2, 3], dtype="i4")
        ds.createDimension("time", None)
        ds.createDimension("lat", ny)
        ds.createDimension("lon", nx)

        time = ds.createVariable("time", "i4", ("time",))
        time.units = "days since 2000-01-01"
        time.calendar = "standard"
        time[:] = np.arange(nt) * 2
        lat = ds.createVariable("lat", "f8", ("lat",), contiguous=True)
        lat.units = "degrees_north"
        lat[:] = np.linspace(-60, 60, ny)
        lon = ds.createVariable("lon", np.dtype(">f8"), ("lon",), contiguous=True, endian="big")
        lon.units = "degrees_east"
        lon[:] = np.linspace(0, 300, nx)

        tas = ds.createVariable(
            "tas",
            "f4",
            ("time", "lat", "lon"),
            zlib=True,
            shuffle=True,
            chunksizes=(4, 2, 3),
            fill_value=np.float32(-999.0),
        )
        tas.units = "K"
        values = (rng.standard_normal((nt, ny, nx)) * 10 + 280).astype("f4")
        values[0, 0, :3] = -999.0  # read back as NaN by xarray
        tas[:] = values

        packed = ds.createVariable("packed", "i2", ("lat", "lon"), fill_value=np.int16(-32767))
        packed.scale_factor = 0.01
        packed.add_offset = 273.15
        packed.set_auto_maskandscale(False)
        raw = np.arange(ny * nx, dtype="i2").reshape(ny, nx) * 7 - 100
        raw[1, 1] = -32767
        packed[:] = raw

        big = ds.createVariable(
            "big_endian",
            np.dtype(">i4"),
            ("lat", "lon"),
            endian="big",
            zlib=True,
            chunksizes=(2, 4),
        )
        big[:] = np.arange(ny * nx, dtype="i4").reshape(ny, nx) * -1000

        sparse = ds.createVariable(
            "sparse", "f4", ("lat", "lon"), chunksizes=(2, 2), fill_value=np.float32(-1.0)
        )
        sparse[0:2, :] = 1.5
        sparse[4, 6] = 4.5  # chunks of rows 2-3 and most of row 4 are never written

        scalar = ds.createVariable("scalar", "f8", ())
        scalar.long_name = "a 0-d variable"
        scalar[...] = 3.25

        names = ds.createVariable("names", str, ("lat",))
        for i, name in enumerate(["Oslo", "Bâle", "", "Zürich", "x"]):
            names[i] = name


def _nc4_groups(path: Path) -> None:
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.purpose = "root"
        ds.createDimension("x", 5)
        x = ds.createVariable("x", "f4", ("x",))
        x[:] = np.arange(5, dtype="f4") / 2
        top = ds.createVariable("top", "i4", ("x",), zlib=True, chunksizes=(2,))
        top[:] = np.arange(5) * 10

        obs = ds.createGroup("obs")
        obs.purpose = "first level"
        obs.createDimension("y", 3)
        y = obs.createVariable("y", "f8", ("y",))
        y[:] = [0.5, 1.5, 2.5]
        grid = obs.createVariable(
            "grid", "f4", ("y", "x"), zlib=True, chunksizes=(2, 2), fill_value=np.float32(-1)
        )
        grid.units = "1"
        grid[:] = np.arange(15, dtype="f4").reshape(3, 5)

        deep = obs.createGroup("deep")
        deep.purpose = "second level"
        deep.createDimension("z", 2)
        counts = deep.createVariable("counts", "u2", ("z", "y"), fill_value=np.uint16(9))
        counts[:] = np.array([[1, 2, 9], [4, 5, 6]], dtype="u2")


def _nc3_records(path: Path) -> None:
    with netCDF4.Dataset(path, "w", format="NETCDF3_64BIT_OFFSET") as ds:
        ds.title = "records"
        ds.createDimension("time", None)
        ds.createDimension("station", 4)
        time = ds.createVariable("time", "f8", ("time",))
        time.units = "hours since 2001-02-03 04:00"
        time[:] = np.arange(5) * 6.0
        station = ds.createVariable("station", "i4", ("station",))
        station[:] = [101, 102, 205, 307]
        height = ds.createVariable("height", "f8", ("station",))
        height.units = "m"
        height[:] = [10.0, 250.5, 3.0, 1000.0]
        temp = ds.createVariable("temp", "f4", ("time", "station"), fill_value=np.float32(-9.0))
        temp.units = "degC"
        values = np.arange(20, dtype="f4").reshape(5, 4) / 4
        values[2, 1] = -9.0
        temp[:] = values
        count = ds.createVariable("count", "i2", ("time",))
        count.scale_factor = 0.5
        count.set_auto_maskandscale(False)
        count[:] = np.array([1, 2, 3, 4, 5], dtype="i2")


_WRITERS = {
    "nc4_basic.nc": _nc4_basic,
    "nc4_groups.nc": _nc4_groups,
    "nc3_records.nc": _nc3_records,
}


def write_part(
    path: Path,
    *,
    start: int,
    n_time: int = 4,
    n_lon: int = 3,
    dtype: str = "f4",
    chunks: tuple[int, int] = (2, 3),
    zlib: bool = True,
) -> Path:
    """One piece of a time series: ``time`` (chunks of 2), ``lon`` and ``tas(time, lon)``."""
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("time", n_time)
        ds.createDimension("lon", n_lon)
        time = ds.createVariable("time", "i4", ("time",), chunksizes=(2,))
        time.units = "days since 2000-01-01"
        time.calendar = "standard"
        time[:] = np.arange(start, start + n_time)
        lon = ds.createVariable("lon", "f8", ("lon",))
        lon[:] = np.arange(n_lon) * 10.0
        tas = ds.createVariable("tas", dtype, ("time", "lon"), chunksizes=chunks, zlib=zlib)
        tas.units = "K"
        tas[:] = (np.arange(n_time * n_lon).reshape(n_time, n_lon) + 100 * start).astype(dtype)
    return path


def write_corpus(folder: Path) -> dict[str, Path]:
    """Write every corpus file into ``folder``; the paths by file name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, write in _WRITERS.items():
        write(folder / name)
        paths[name] = folder / name
    for index in range(3):
        paths[f"part{index}.nc"] = write_part(folder / f"part{index}.nc", start=4 * index)
    mismatched: dict[str, dict[str, Any]] = {
        "bad_chunks.nc": {"chunks": (2, 1)},
        "bad_dtype.nc": {"dtype": "f8"},
        "bad_codecs.nc": {"zlib": False},
        "bad_lon.nc": {"n_lon": 5, "chunks": (2, 5)},
        "short.nc": {"n_time": 3},
        "tail.nc": {"n_time": 2},
    }
    for name, options in mismatched.items():
        start = 0 if name == "short.nc" else 4
        paths[name] = write_part(folder / name, start=start, **options)
    return paths


def local_registry(folder: Path) -> vc.ObjectStoreRegistry:
    """A registry serving ``file://<folder>/`` from a LocalStore."""
    return vc.ObjectStoreRegistry({f"file://{folder}/": obstore.store.LocalStore(folder)})


def expected_dataset(path: Path, group: str = "") -> xr.Dataset:
    """``xr.open_dataset`` of a corpus file (one group), loaded and closed."""
    with xr.open_dataset(path, group=group or None) as ds:
        return ds.load()


@contextmanager
def reference_dataset(fo: Any, group: str = "") -> Iterator[xr.Dataset]:
    """Kerchunk references (dict, JSON path or LazyReferenceMapper) opened by xarray."""
    ds = xr.open_dataset(
        "reference://",
        engine="zarr",
        group=group or None,
        backend_kwargs={
            "consolidated": False,
            "storage_options": {"fo": fo, "remote_protocol": "file"},
        },
    )
    try:
        yield ds
    finally:
        ds.close()


def assert_same_values(got: xr.Dataset, expected: xr.Dataset) -> None:
    """The same variables with equal values (NaNs in place), dims and coordinates."""
    assert sorted(map(str, got.variables)) == sorted(map(str, expected.variables))
    for name in expected.variables:
        xr.testing.assert_equal(got[name].load(), expected[name])


class PyarrowReferenceMapper(LazyReferenceMapper):  # type: ignore[misc]
    """fsspec's parquet reference mapper reading with pyarrow, null paths kept as None.

    fsspec (2026.9) knows a missing chunk by ``path is None``, but pandas 3 turns the
    null of a string or dictionary column into NaN, so with ``engine="pyarrow"`` every
    missing chunk would be fetched from the URL ``nan``. The same files read correctly
    with fsspec's default engine, fastparquet (`test_fastparquet_reads_the_parquet_refs`).
    """

    def __init__(self, root: Path | str, fs: fsspec.AbstractFileSystem | None = None) -> None:
        """``root`` is a local folder, or a URL on ``fs`` (s3fs, say) without its scheme."""
        super().__init__(str(root), fs=fs or fsspec.filesystem("file"), engine="pyarrow")

    def setup(self) -> None:
        super().setup()
        load = self.open_refs

        @functools.lru_cache(maxsize=self.cache_size)
        def open_refs(field: str, record: int) -> dict[str, Any] | None:
            refs: dict[str, Any] | None = load(field, record)
            if refs is not None and "path" in refs:
                paths = [p if isinstance(p, str) else None for p in refs["path"]]
                refs = {**refs, "path": np.array(paths, dtype=object)}
            return refs

        self.open_refs = open_refs
