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

__all__ = ["GALLERY", "make_demo_files", "make_gallery", "run_demo"]

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


GALLERY = ("year.png", "wrong-order.png", "missing.png", "tiles.png")
"""The chunk-map pictures `make_gallery` draws (docs/gallery.md shows them)."""


def _write_tile(path: Path, lat: np.ndarray, lon: np.ndarray) -> None:
    import netCDF4

    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("lat", len(lat))
        ds.createDimension("lon", len(lon))
        ds.createVariable("lat", "f4", ("lat",))[:] = lat
        ds.createVariable("lon", "f4", ("lon",))[:] = lon
        height = ds.createVariable(
            "height", "f4", ("lat", "lon"), zlib=True, chunksizes=(len(lat), len(lon))
        )
        height[:] = np.add.outer(lat, lon)


def make_gallery(folder: Path) -> list[Path]:
    """Draw the chunk-map pictures of the docs' gallery (`GALLERY`) into ``folder``.

    Makes the demo's year of files and six map tiles in a temporary folder, virtualizes
    them and saves each picture as a PNG; offline and a few seconds long.
    """
    from vzxarray.mfdataset import open_virtual_mfdataset

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vz-gallery-") as scratch:
        root = Path(scratch)
        files = [str(p) for p in make_demo_files(root)]
        year = open_virtual_mfdataset(files, parallel="threads", progress=False)
        swapped = open_virtual_mfdataset(
            [files[1], files[0], *files[2:]],
            combine="nested",
            concat_dim="time",
            parallel="threads",
            progress=False,
        )
        tas = year["tas"].data.virtual
        days = np.cumsum([0, 31, 28, 31, 30, 31, 30])
        june = vc.select_chunks(tas, (slice(days[5], days[6]), slice(None), slice(None)))
        gap = vc.VirtualArray(june.metadata, vc.ChunkManifest.empty(june.manifest.grid))
        without_june = vc.concat(
            [
                vc.select_chunks(tas, (slice(0, days[5]), slice(None), slice(None))),
                gap,
                vc.select_chunks(tas, (slice(days[6], 365), slice(None), slice(None))),
            ],
            axis=0,
        )
        lat_edges, lon_edges = (-90, -30, 90), (0, 60, 200, 360)
        tiles = []
        for i in range(2):
            for j in range(3):
                path = root / f"height_{i}{j}.nc"
                lat = np.arange(lat_edges[i], lat_edges[i + 1], 2.0) + 1
                lon = np.arange(lon_edges[j], lon_edges[j + 1], 2.0) + 1
                _write_tile(path, lat, lon)
                tiles.append(str(path))
        mosaic = open_virtual_mfdataset(tiles, parallel="threads", progress=False)
        figures = {
            "year.png": year.vz.plot_chunks("tas"),
            "wrong-order.png": swapped.vz.plot_chunks("tas"),
            "missing.png": vc.plot_chunks(without_june, name="tas"),
            "tiles.png": mosaic.vz.plot_chunks("height"),
        }
        written = []
        for name, figure in figures.items():
            figure.savefig(folder / name, dpi=144)
            written.append(folder / name)
    return written
