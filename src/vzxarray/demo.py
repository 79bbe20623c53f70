"""``vz demo``: a year of daily netCDF4 files, virtualized in parallel, saved and checked."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

import vzcore as vc

__all__ = ["make_demo_files", "run_demo"]

_SHAPE = (90, 180)  # lat, lon: a 2-degree global grid


def make_demo_files(folder: Path) -> list[Path]:
    """Twelve monthly netCDF4 files of daily temperature (zlib, one chunk per day)."""
    import netCDF4

    days_per_month = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    lat = np.linspace(-89.0, 89.0, _SHAPE[0])
    lon = np.linspace(0.0, 358.0, _SHAPE[1])
    rng = np.random.default_rng(2001)
    paths, first_day = [], 0
    for month, days in enumerate(days_per_month, start=1):
        path = folder / f"tas_2001{month:02d}.nc"
        with netCDF4.Dataset(path, "w") as ds:
            ds.title = "vz demo: daily near-surface air temperature"
            ds.createDimension("time", None)
            ds.createDimension("lat", _SHAPE[0])
            ds.createDimension("lon", _SHAPE[1])
            time_var = ds.createVariable("time", "f8", ("time",))
            time_var.units = "days since 2001-01-01"
            time_var.calendar = "standard"
            time_var[:] = np.arange(first_day, first_day + days)
            ds.createVariable("lat", "f4", ("lat",))[:] = lat
            ds.createVariable("lon", "f4", ("lon",))[:] = lon
            tas = ds.createVariable(
                "tas",
                "f4",
                ("time", "lat", "lon"),
                zlib=True,
                chunksizes=(1, *_SHAPE),
                fill_value=np.float32(1e20),
            )
            tas.units = "K"
            seasonal = 15 * np.cos(np.deg2rad(lat))[None, :, None]
            tas[:] = 273.15 + seasonal + rng.normal(0, 3, size=(days, *_SHAPE))
        paths.append(path)
        first_day += days
    return paths


def _timed(label: str, timings: dict[str, float], action: Any) -> Any:
    start = time.perf_counter()
    result = action()
    timings[label] = time.perf_counter() - start
    return result


def run_demo(folder: str | None = None) -> dict[str, float]:
    """Run the example, check every result against xarray on the originals, print timings."""
    from vzxarray.cli import write_icechunk_repository
    from vzxarray.mfdataset import open_virtual_mfdataset

    root = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="vz-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    try:
        files = _timed("write 12 netCDF4 files", timings, lambda: make_demo_files(root))
        registry = vc.ObjectStoreRegistry.for_urls([str(p) for p in files])
        virtual = _timed(
            "virtualize + combine (threads)",
            timings,
            lambda: open_virtual_mfdataset(
                [str(p) for p in files], registry=registry, parallel="threads", progress=False
            ),
        )
        repository = _timed(
            "write Icechunk (commit included)",
            timings,
            lambda: write_icechunk_repository(virtual, str(root / "tas.icechunk"), registry),
        )
        _timed(
            "write Kerchunk parquet",
            timings,
            lambda: virtual.vz.to_kerchunk(root / "tas.parq", format="parquet"),
        )
        expected = _timed(
            "xarray: open + combine the originals",
            timings,
            lambda: xr.combine_by_coords([xr.open_dataset(p) for p in files]),
        )
        from_icechunk = _timed(
            "reopen Icechunk with xarray",
            timings,
            lambda: xr.open_zarr(repository.readonly_session("main").store, consolidated=False),
        )
        from_kerchunk = _timed(
            "reopen Kerchunk parquet with xarray", timings, lambda: _open_parquet_refs(root)
        )
        for name, dataset in (("Icechunk", from_icechunk), ("Kerchunk parquet", from_kerchunk)):
            xr.testing.assert_allclose(dataset.load(), expected.load(), rtol=0, atol=0)
            print(f"{name}: values equal the original files")
        _print_timings(timings)
        return timings
    finally:
        if folder is None:
            shutil.rmtree(root, ignore_errors=True)


def _open_parquet_refs(root: Path) -> xr.Dataset:
    import fsspec
    from fsspec.implementations.reference import LazyReferenceMapper

    mapper = LazyReferenceMapper(
        str(root / "tas.parq"), fs=fsspec.filesystem("file"), engine="pyarrow"
    )
    return xr.open_dataset(
        "reference://",
        engine="zarr",
        backend_kwargs={
            "consolidated": False,
            "storage_options": {"fo": mapper, "remote_protocol": "file"},
        },
    )


def _print_timings(timings: dict[str, float]) -> None:
    width = max(len(label) for label in timings)
    print("timings:")
    for label, seconds in timings.items():
        print(f"  {label:<{width}}  {seconds:7.3f} s")
