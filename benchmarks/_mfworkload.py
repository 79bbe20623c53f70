"""The files of benchmarks/mfdataset.py, shared with its peers' side (numpy only to import)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

N_FILES = 200
SHAPE = (24, 180, 360)  # time, lat, lon: a 1-degree grid, 24 steps per file
SCALING_COUNTS = (200, 500, 1_000, 2_000)
SMALL_SHAPE = (24, 18, 36)  # the scaling files: the same 24 chunks per file, smaller ones
LONG_RUN_S = 20.0  # a run at least this long is timed once (after a warm-up), not best of 3


def file_paths(folder: Path, n: int = N_FILES) -> list[Path]:
    return [folder / "full" / f"tas_{i:04d}.nc" for i in range(n)]


def small_paths(folder: Path, n: int = max(SCALING_COUNTS)) -> list[Path]:
    return [folder / "small" / f"tas_{i:04d}.nc" for i in range(n)]


def warm_best(fn: Callable[[], object], repeat: int = 3, *, warm: bool = True) -> float:
    """Best wall time of ``repeat`` runs after one warm-up run (one run if a run is long)."""
    if warm:
        start = time.perf_counter()
        fn()
        if time.perf_counter() - start >= LONG_RUN_S:
            repeat = 1
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def write_file(path: Path, index: int, shape: tuple[int, int, int]) -> None:
    """A netCDF4 file of ``tas`` (one zlib chunk per time step) and CF time/lat/lon.

    The field is smooth and quantized to 0.25 K, so it compresses well and writes fast.
    Written under a temporary name and renamed, so a folder reused with ``--folder``
    never holds a half-written file.
    """
    import netCDF4

    nt, ny, nx = shape
    lat = np.linspace(-90 + 90 / ny, 90 - 90 / ny, ny)
    lon = np.linspace(180 / nx, 360 - 180 / nx, nx)
    days = index * nt + np.arange(nt)
    field = (
        273.15
        + 30 * np.cos(np.deg2rad(lat))[None, :, None]
        + 5 * np.sin(np.deg2rad(lon))[None, None, :]
        + 8 * np.sin(2 * np.pi * days / 365.25)[:, None, None]
    )
    partial = path.with_suffix(".partial")
    with netCDF4.Dataset(partial, "w", format="NETCDF4") as ds:
        ds.createDimension("time", None)
        ds.createDimension("lat", ny)
        ds.createDimension("lon", nx)
        time_var = ds.createVariable("time", "f8", ("time",))
        time_var.units = "days since 2000-01-01"
        time_var.calendar = "standard"
        time_var[:] = days
        ds.createVariable("lat", "f8", ("lat",))[:] = lat
        ds.createVariable("lon", "f8", ("lon",))[:] = lon
        tas = ds.createVariable(
            "tas", "f4", ("time", "lat", "lon"), zlib=True, chunksizes=(1, ny, nx)
        )
        tas.units = "K"
        tas[:] = (np.round(field * 4) / 4).astype("f4")
    os.replace(partial, path)


def ensure_files(folder: Path, *, small: bool = True) -> tuple[int, float]:
    """Write whichever files are missing (the scaling ones only if ``small``);
    how many were written, in how many seconds."""
    wanted = [(p, i, SHAPE) for i, p in enumerate(file_paths(folder))]
    if small:
        wanted += [(p, i, SMALL_SHAPE) for i, p in enumerate(small_paths(folder))]
    start = time.perf_counter()
    written = 0
    for path, index, shape in wanted:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_file(path, index, shape)
            written += 1
    return written, time.perf_counter() - start
