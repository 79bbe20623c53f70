"""Small netCDF4 files exercising CF decoding, split so they combine along time (and x).

Written with netCDF4-python (one attribute removed with h5py afterwards), a few KB
each. The differential tests (tests/test_differential.py) combine the virtual
datasets of these files with xarray, write them with every vz writer, reopen the
written stores with plain xarray and compare with ``xr.open_mfdataset`` of the
files themselves.

Every file of a *series* holds, along ``time`` (unlimited) and ``x``:

- ``time``: float64 days since 2000-01-01 in the series' calendar (loaded by vz);
- ``x``: float64 metres (loaded by vz);
- ``packed``: int16 with ``scale_factor``, ``add_offset`` and ``_FillValue``
  (netCDF4's ``fill_value=``), zlib, some values equal to the fill (NaN decoded);
- ``packed_mv``: int16 with ``scale_factor`` and ``missing_value`` (no ``_FillValue``);
- ``sparse``: float32 with ``_FillValue`` = -1, chunks (1, 2), only some chunks
  written (the others are never allocated and decode to NaN);
- ``nofill``: float32 whose HDF5 fill value is -999 but which has no ``_FillValue``
  attribute, chunks (1, 2), only some written: unwritten chunks read as -999,
  unmasked;
- ``counts``: int16 without any CF encoding (the raw values are ``RAW_COUNTS``);
- ``valid_time``: a virtual (not loaded) time variable in the ``noleap`` calendar,
  and ``model_time`` one in the ``360_day`` calendar;
- ``station_name``: a netCDF char array (S1 with a ``nchar`` dimension), no
  ``_Encoding`` (decodes to fixed-width bytes), and ``station_code`` one with
  ``_Encoding = "utf-8"`` (decodes to str);
- the group ``obs``: its own coordinate ``depth`` and a packed int16 ``temp(time, depth)``.

Every variable with a time dimension has a time chunk of 1, so files of 3 and 5
steps concatenate on chunk boundaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import netCDF4
import numpy as np
import numpy.typing as npt
import xarray as xr
from tests.writer_corpus import PyarrowReferenceMapper

import vzcore as vc
import vzxarray  # noqa: F401 (registers the .vz accessor)

__all__ = [
    "CALENDARS",
    "NX",
    "SERIES_STEPS",
    "TILE_STEPS",
    "TILE_X",
    "Corpus",
    "PackedSpec",
    "counts_values",
    "write_corpus",
    "write_packed_series",
]

CALENDARS = ("standard", "noleap", "360_day")
"""Calendars of the series' ``time`` coordinate."""

SERIES_STEPS = (3, 5, 3, 5)
"""Time steps of the files of one series."""

NX = 4
"""Length of ``x`` in a series file."""

TILE_STEPS = (3, 5)
"""Time steps of the rows of tiles."""

TILE_X = (4, 4)
"""Lengths of ``x`` of the columns of tiles."""

NCHAR = 6
STATION_NAMES = (b"Oslo", b"Bern")
STATION_CODES = ("Zü", "q")
PACKED_FILL = -32767
MISSING_VALUE = -1
NOFILL_FILL = -999.0
SPARSE_FILL = -1.0
TIME_UNITS = "days since 2000-01-01"

type Values = npt.NDArray[Any]


@dataclass(frozen=True)
class Corpus:
    """The corpus files, by role.

    Attributes
    ----------
    folder
        Where every file is (the registry and the Icechunk container cover it).
    series
        calendar -> the files of one series along time (`SERIES_STEPS`).
    tiles
        ``tiles[i][j]``: time block ``i`` (`TILE_STEPS`), x block ``j`` (`TILE_X`),
        the nested list `xr.combine_nested` takes (standard calendar).
    """

    folder: Path
    series: dict[str, list[Path]]
    tiles: list[list[Path]]

    def urls(self, paths: Sequence[Path]) -> list[str]:
        return [f"file://{p}" for p in paths]


def counts_values(time_start: int, n_time: int, x_start: int, n_x: int) -> Values:
    """The raw int16 values of ``counts`` in a file covering the given steps and columns."""
    t = np.arange(time_start, time_start + n_time)[:, None]
    x = np.arange(x_start, x_start + n_x)[None, :]
    return (t * 10 + x - 20).astype("i2")


def _packed_raw(t: Values, x: Values) -> Values:
    raw = (t * 37 - x * 11 + 150).astype("i2")
    raw[(t + x) % 5 == 0] = PACKED_FILL  # decode to NaN
    return raw


def _packed_mv_raw(t: Values, x: Values) -> Values:
    raw = (t * 3 + x).astype("i2")
    raw[(t * x) % 4 == 1] = MISSING_VALUE
    return raw


def _float_values(t: Values, x: Values) -> Values:
    values = (t * 1.5 + x * 0.25).astype("f4")
    values[(t + 2 * x) % 7 == 3] = SPARSE_FILL  # written values equal to the fill
    return values


def write_file(
    path: Path,
    *,
    calendar: str,
    time_start: int,
    n_time: int,
    x_start: int,
    n_x: int,
    name: str,
) -> Path:
    """One file of the corpus: the steps ``time_start..`` and columns ``x_start..``."""
    t = np.arange(time_start, time_start + n_time)[:, None]
    x = np.arange(x_start, x_start + n_x)[None, :]
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.title = "cf corpus"
        ds.Conventions = "CF-1.8"
        ds.source_file = name  # differs between files: combine_attrs decides
        ds.createDimension("time", None)
        ds.createDimension("x", n_x)
        ds.createDimension("station", len(STATION_NAMES))
        ds.createDimension("nchar", NCHAR)

        time = ds.createVariable("time", "f8", ("time",))
        time.units = TIME_UNITS
        time.calendar = calendar
        time.standard_name = "time"
        time[:] = np.arange(time_start, time_start + n_time, dtype="f8")
        xs = ds.createVariable("x", "f8", ("x",))
        xs.units = "m"
        xs[:] = np.arange(x_start, x_start + n_x, dtype="f8") * 100.0

        packed = ds.createVariable(
            "packed",
            "i2",
            ("time", "x"),
            zlib=True,
            chunksizes=(1, 2),
            fill_value=np.int16(PACKED_FILL),
        )
        packed.set_auto_maskandscale(False)
        packed.scale_factor = 0.01
        packed.add_offset = 273.15
        packed.units = "K"
        packed[:] = _packed_raw(t, x)

        packed_mv = ds.createVariable("packed_mv", "i2", ("time", "x"), chunksizes=(1, 2))
        packed_mv.set_auto_maskandscale(False)
        packed_mv.scale_factor = 0.5
        packed_mv.missing_value = np.int16(MISSING_VALUE)
        packed_mv[:] = _packed_mv_raw(t, x)

        sparse = ds.createVariable(
            "sparse", "f4", ("time", "x"), chunksizes=(1, 2), fill_value=np.float32(SPARSE_FILL)
        )
        sparse.set_auto_maskandscale(False)
        sparse.long_name = "only some chunks written"
        values = _float_values(t, x)
        for i in range(n_time):  # every other step written, and its first column chunk only
            if (time_start + i) % 2 == 0:
                sparse[i, 0:2] = values[i, 0:2]

        nofill = ds.createVariable(
            "nofill", "f4", ("time", "x"), chunksizes=(1, 2), fill_value=np.float32(NOFILL_FILL)
        )
        nofill.set_auto_maskandscale(False)
        for i in range(n_time):  # steps 0, 3, 6, ... written in full, the others never
            if (time_start + i) % 3 == 0:
                nofill[i, :] = values[i, :] + 100

        counts = ds.createVariable("counts", "i2", ("time", "x"), chunksizes=(1, n_x))
        counts.set_auto_maskandscale(False)
        counts.long_name = "raw counts"
        counts[:] = counts_values(time_start, n_time, x_start, n_x)

        valid = ds.createVariable("valid_time", "f8", ("time",), chunksizes=(1,))
        valid.units = "hours since 1999-12-31 00:00"
        valid.calendar = "noleap"
        valid[:] = np.arange(time_start, time_start + n_time) * 24.0 + 6

        model = ds.createVariable("model_time", "i4", ("time",), chunksizes=(1,))
        model.units = "days since 1990-01-01"
        model.calendar = "360_day"
        model[:] = np.arange(time_start, time_start + n_time) * 31

        names = ds.createVariable("station_name", "S1", ("station", "nchar"))
        names.set_auto_chartostring(False)
        names[:] = netCDF4.stringtochar(np.array(STATION_NAMES, dtype=f"S{NCHAR}"))
        codes = ds.createVariable("station_code", "S1", ("station", "nchar"))
        codes._Encoding = "utf-8"
        codes.set_auto_chartostring(False)
        codes[:] = np.array(
            [list(c.encode().ljust(NCHAR, b"\0")) for c in STATION_CODES], dtype="u1"
        ).view("S1")

        obs = ds.createGroup("obs")
        obs.purpose = "a subgroup"
        obs.createDimension("depth", 3)
        depth = obs.createVariable("depth", "f4", ("depth",))
        depth.units = "m"
        depth[:] = [0.5, 10.0, 100.0]
        temp = obs.createVariable(
            "temp", "i2", ("time", "depth"), chunksizes=(1, 3), fill_value=np.int16(-999)
        )
        temp.set_auto_maskandscale(False)
        temp.scale_factor = 0.1
        temp.add_offset = 10.0
        temp.units = "degC"
        temp_raw = (np.arange(time_start, time_start + n_time)[:, None] * 4 + np.arange(3)).astype(
            "i2"
        )
        temp_raw[temp_raw % 6 == 1] = -999
        temp[:] = temp_raw

    # The HDF5 fill value stays -999, but no attribute says so: netCDF readers
    # return -999 for the chunks never written, and xarray does not mask them.
    with h5py.File(path, "r+") as f:
        del f["nofill"].attrs["_FillValue"]
    return path


def write_corpus(folder: Path) -> Corpus:
    """Every series (one per calendar) and the 2 x 2 tiles, in ``folder``."""
    series: dict[str, list[Path]] = {}
    for calendar in CALENDARS:
        paths = []
        start = 0
        for index, steps in enumerate(SERIES_STEPS):
            name = f"series-{calendar}-{index}.nc"
            paths.append(
                write_file(
                    folder / name,
                    calendar=calendar,
                    time_start=start,
                    n_time=steps,
                    x_start=0,
                    n_x=NX,
                    name=name,
                )
            )
            start += steps
        series[calendar] = paths
    tiles: list[list[Path]] = []
    time_start = 0
    for i, steps in enumerate(TILE_STEPS):
        row = []
        x_start = 0
        for j, n_x in enumerate(TILE_X):
            name = f"tile-{i}-{j}.nc"
            row.append(
                write_file(
                    folder / name,
                    calendar="standard",
                    time_start=time_start,
                    n_time=steps,
                    x_start=x_start,
                    n_x=n_x,
                    name=name,
                )
            )
            x_start += n_x
        tiles.append(row)
        time_start += steps
    return Corpus(folder, series, tiles)


# ---- random encodings, for the hypothesis property ----------------------------------------


@dataclass(frozen=True)
class PackedSpec:
    """One variable's storage and CF encoding; None leaves an attribute out.

    ``fill_kind`` says how ``fill_value`` is recorded: ``"_FillValue"`` (the
    attribute and the HDF5 fill value, netCDF4's ``fill_value=``), ``"hdf5"`` (the
    HDF5 fill value only: no attribute, so nothing is masked) or ``"missing_value"``
    (the attribute only).
    """

    dtype: str  # "i2" or "f4"
    scale_factor: float | None
    add_offset: float | None
    attribute_dtype: str  # of scale_factor and add_offset: "f4" or "f8"
    fill_value: float | None
    chunk_x: int
    fill_kind: str = "_FillValue"


def write_packed_series(
    folder: Path,
    spec: PackedSpec,
    raw: Values,
    steps: Sequence[int],
    *,
    calendar: str = "standard",
) -> list[Path]:
    """``raw`` (time, x) split along time into files of ``steps`` steps, encoded by ``spec``.

    The variable is ``v``; chunks are ``(1, spec.chunk_x)``. When the fill value is
    the HDF5 fill value, rows whose raw values all equal it are not written (their
    chunks are never allocated and read as the fill value).
    """
    assert sum(steps) == raw.shape[0]
    fill = None if spec.fill_value is None else np.array(spec.fill_value, spec.dtype)
    hdf5_fill = fill is not None and spec.fill_kind in ("_FillValue", "hdf5")
    paths = []
    start = 0
    for index, n in enumerate(steps):
        path = folder / f"part-{index}.nc"
        with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
            ds.createDimension("time", None)
            ds.createDimension("x", raw.shape[1])
            time = ds.createVariable("time", "i4", ("time",))
            time.units = TIME_UNITS
            time.calendar = calendar
            time[:] = np.arange(start, start + n)
            v = ds.createVariable(
                "v",
                spec.dtype,
                ("time", "x"),
                chunksizes=(1, spec.chunk_x),
                fill_value=fill if hdf5_fill else None,
            )
            v.set_auto_maskandscale(False)
            if spec.scale_factor is not None:
                v.scale_factor = np.array(spec.scale_factor, spec.attribute_dtype)
            if spec.add_offset is not None:
                v.add_offset = np.array(spec.add_offset, spec.attribute_dtype)
            if fill is not None and spec.fill_kind == "missing_value":
                v.missing_value = fill
            part = raw[start : start + n]
            for i in range(n):
                if not (hdf5_fill and np.array_equal(part[i], np.full_like(part[i], fill), True)):
                    v[i, :] = part[i]
        if fill is not None and spec.fill_kind == "hdf5":
            with h5py.File(path, "r+") as f:
                del f["v"].attrs["_FillValue"]
        paths.append(path)
        start += n
    return paths


# ---- writing virtual datasets and reopening them with plain xarray ------------------------

WRITERS = ("kerchunk-json", "kerchunk-parquet", "icechunk", "manifest-parquet", "manifest-store")
"""Every way vz saves (or serves) a virtual dataset; the first four are also `vz` formats."""


def icechunk_repository(data_folder: Path, storage: Any = None) -> Any:
    """A repository (in memory by default) allowed to read virtual chunks of ``data_folder``."""
    import icechunk

    prefix = f"file://{data_folder}/"
    config = icechunk.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        icechunk.VirtualChunkContainer(prefix, icechunk.local_filesystem_store(str(data_folder)))
    )
    credentials = icechunk.containers_credentials(
        {prefix: icechunk.Credentials.LocalFileSystemAccess()}
    )
    return icechunk.Repository.create(
        storage if storage is not None else icechunk.in_memory_storage(),
        config,
        authorize_virtual_chunk_access=credentials,
    )


def open_icechunk(path: Path, data_folder: Path) -> Any:
    """The ``main`` branch of the local repository at ``path``, read-only."""
    import icechunk

    repository = icechunk.Repository.open(
        icechunk.local_filesystem_storage(str(path)),
        authorize_virtual_chunk_access=icechunk.containers_credentials(
            {f"file://{data_folder}/": icechunk.Credentials.LocalFileSystemAccess()}
        ),
    )
    return repository.readonly_session("main").store


def write(
    obj: xr.Dataset | xr.DataTree,
    writer: str,
    out: Path,
    data_folder: Path,
    registry: vc.ObjectStoreRegistry,
) -> Any:
    """Save ``obj`` with ``writer`` (one of `WRITERS`, or ``"kerchunk-dict"``).

    Returns what `reopen` takes.
    """
    if writer == "kerchunk-dict":
        return obj.vz.to_kerchunk()
    if writer == "kerchunk-json":
        return obj.vz.to_kerchunk(out / "refs.json", format="json")
    if writer == "kerchunk-parquet":
        return obj.vz.to_kerchunk(out / "refs.parq", format="parquet", record_size=7)
    if writer == "icechunk":
        repository = icechunk_repository(data_folder)
        session = repository.writable_session("main")
        obj.vz.to_icechunk(session.store)
        session.commit("differential")
        return repository.readonly_session("main").store
    if writer == "manifest-parquet":
        return obj.vz.to_manifest_parquet(out / "manifest.vz")
    assert writer == "manifest-store"
    return vc.ManifestStore(obj.vz.to_virtual_group(), registry=registry)


def _zarr_source(
    writer: str, written: Any, registry: vc.ObjectStoreRegistry
) -> tuple[Any, dict[str, Any]]:
    """What ``xr.open_dataset(..., engine="zarr")`` opens, and its backend options."""
    if writer.startswith("kerchunk-"):
        fo = {"kerchunk-dict": written, "kerchunk-json": str(written)}.get(writer)
        fo = fo if fo is not None else PyarrowReferenceMapper(written)
        return "reference://", {"storage_options": {"fo": fo, "remote_protocol": "file"}}
    if writer == "manifest-parquet":
        from vzcore.parsers import ManifestParquetParser

        url = vc.registry.normalize_url(str(written))
        local = vc.ObjectStoreRegistry.for_urls([url])
        group = ManifestParquetParser()(url, local)
        return vc.ManifestStore(group, registry=registry), {}
    return written, {}  # an Icechunk session store, a ManifestStore


def reopen(
    writer: str, written: Any, registry: vc.ObjectStoreRegistry, group: str | None = None
) -> xr.Dataset:
    """A written store (one group) opened by plain xarray, loaded."""
    source, options = _zarr_source(writer, written, registry)
    with xr.open_dataset(
        source, engine="zarr", group=group, chunks=None, consolidated=False, **options
    ) as ds:
        return ds.load()


def reopen_tree(writer: str, written: Any, registry: vc.ObjectStoreRegistry) -> xr.DataTree:
    """A written store opened as a tree by plain xarray, loaded."""
    source, options = _zarr_source(writer, written, registry)
    with xr.open_datatree(
        source, engine="zarr", chunks=None, consolidated=False, **options
    ) as tree:
        return tree.load()


def differences(got: xr.Dataset, expected: xr.Dataset) -> list[str]:
    """Every way ``got`` differs from ``expected``: variables, coordinates, dtypes, values, attrs."""
    problems = []
    if sorted(map(str, got.variables)) != sorted(map(str, expected.variables)):
        problems.append(
            f"variables {sorted(map(str, got.variables))} != {sorted(map(str, expected.variables))}"
        )
    if sorted(map(str, got.coords)) != sorted(map(str, expected.coords)):
        problems.append(
            f"coordinates {sorted(map(str, got.coords))} != {sorted(map(str, expected.coords))}"
        )
    if got.attrs != expected.attrs:
        problems.append(f"global attrs {got.attrs} != {expected.attrs}")
    for name in expected.variables:
        if name not in got.variables:
            continue
        g, e = got[name].variable, expected[name].variable
        if g.dims != e.dims or g.shape != e.shape:
            problems.append(f"{name}: dims {dict(g.sizes)} != {dict(e.sizes)}")
            continue
        if g.dtype != e.dtype:
            problems.append(f"{name}: dtype {g.dtype} != {e.dtype}")
        if not g.equals(e):
            problems.append(f"{name}: values\n    {g.values!r}\n != {e.values!r}")
        if g.attrs != e.attrs:
            problems.append(f"{name}: attrs {g.attrs} != {e.attrs}")
    return problems


def assert_decodes_like(got: xr.Dataset, expected: xr.Dataset) -> None:
    """``got`` is identical to ``expected``, dtype by dtype; every difference is listed."""
    problems = differences(got, expected)
    assert not problems, "\n".join(problems)
    xr.testing.assert_identical(got, expected)
