"""Figures of reading through ManifestStore and of opening a wide virtual dataset.

1. Reading all 10,000 chunks (64 KiB each, in 10 local files) through
   ``xr.open_zarr(ManifestStore)`` vs ``zarr.open_array`` on a plain zarr
   ``LocalStore`` copy of the same chunks (goal: within 1.5x).
2. Opening a virtual dataset of 100 variables x 10,000 chunks (native manifest
   parquet, read through the registry) into an xarray Dataset (goal: <= 0.5 s).

    python benchmarks/store.py
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from obstore.store import LocalStore

import vzcore as vc
import vzxarray as vx
from _workload import best_of

CHUNK = (64, 128)  # float64: 64 KiB
GRID = (100, 100)  # 10,000 chunks
N_ARCHIVES = 10
HEADER = 4096


def make_sources(folder: Path) -> tuple[np.ndarray, vc.VirtualGroup, Path]:
    shape = (GRID[0] * CHUNK[0], GRID[1] * CHUNK[1])
    data = np.random.default_rng(0).standard_normal(shape)
    copy = folder / "plain.zarr"
    plain = zarr.create_array(
        store=zarr.storage.LocalStore(copy),
        shape=shape,
        chunks=CHUNK,
        dtype="f8",
        compressors=None,
        dimension_names=("y", "x"),
    )
    plain[:] = data
    # The same chunk bytes, packed into a few "archive" files behind a header.
    n_chunks = GRID[0] * GRID[1]
    per_file = n_chunks // N_ARCHIVES
    chunk_bytes = CHUNK[0] * CHUNK[1] * 8
    paths = np.empty(n_chunks, dtype=object)
    offsets = np.zeros(n_chunks, dtype=np.uint64)
    for k in range(N_ARCHIVES):
        archive = folder / f"archive_{k}.bin"
        with archive.open("wb") as f:
            f.write(b"\0" * HEADER)
            for row in range(k * per_file, (k + 1) * per_file):
                i, j = np.unravel_index(row, GRID)
                block = data[i * CHUNK[0] : (i + 1) * CHUNK[0], j * CHUNK[1] : (j + 1) * CHUNK[1]]
                f.write(np.ascontiguousarray(block, dtype="<f8").tobytes())
        paths[k * per_file : (k + 1) * per_file] = f"file://{archive}"
        offsets[k * per_file : (k + 1) * per_file] = HEADER + chunk_bytes * np.arange(per_file)
    meta = vc.ArrayMetadata.create(
        shape=shape, chunk_shape=CHUNK, dtype="<f8", dimension_names=("y", "x")
    )
    manifest = vc.ChunkManifest.from_arrays(
        paths=paths.reshape(GRID),
        offsets=offsets.reshape(GRID),
        lengths=np.full(GRID, chunk_bytes, dtype=np.uint64),
    )
    return data, vc.VirtualGroup(arrays={"data": vc.VirtualArray(meta, manifest)}), copy


def read_figures(folder: Path) -> dict[str, float]:
    data, group, copy = make_sources(folder)
    registry = vc.ObjectStoreRegistry({f"file://{folder}/": LocalStore(folder)})

    def read_virtual() -> np.ndarray:
        store = vc.ManifestStore(group, registry=registry)
        with xr.open_zarr(store, consolidated=False, chunks=None) as ds:
            return ds["data"].values

    def read_plain() -> np.ndarray:
        return zarr.open_array(zarr.storage.LocalStore(copy), mode="r")[:]

    read_plain(), read_virtual()  # warm the page cache for both
    plain_s, plain = best_of(read_plain)
    virtual_s, virtual = best_of(read_virtual)
    assert np.array_equal(plain, data)
    assert np.array_equal(virtual, data)
    return {"plain_s": plain_s, "virtual_s": virtual_s}


def open_figures(folder: Path) -> dict[str, float]:
    n_vars, grid = 100, (100, 100)
    meta = vc.ArrayMetadata.create(
        shape=(grid[0], grid[1] * 10),
        chunk_shape=(1, 10),
        dtype="<f4",
        codecs=[{"name": "numcodecs.zlib"}],
        dimension_names=("time", "x"),
    )
    rng = np.random.default_rng(1)
    arrays: dict[str, vc.AnyArray] = {}
    for v in range(n_vars):
        lengths = rng.integers(100, 400, size=grid, dtype=np.uint64)
        offsets = np.cumsum(lengths).reshape(grid) - lengths
        paths = np.full(grid, f"file://{folder}/source_{v}.nc")
        manifest = vc.ChunkManifest.from_arrays(paths=paths, offsets=offsets, lengths=lengths)
        arrays[f"var_{v:03d}"] = vc.VirtualArray(meta, manifest)
    arrays["time"] = vc.LoadedArray.from_numpy(
        np.arange(grid[0]),
        dimension_names=("time",),
        attributes={"units": "days since 2000-01-01", "calendar": "standard"},
    )
    arrays["x"] = vc.LoadedArray.from_numpy(np.arange(grid[1] * 10.0), dimension_names=("x",))
    target = folder / "wide.vz"
    vc.write_manifest_parquet(vc.VirtualGroup(arrays=arrays), target)
    registry = vc.ObjectStoreRegistry({f"file://{folder}/": LocalStore(folder)})
    parser = vc.parsers.ManifestParquetParser()

    def open_wide() -> xr.Dataset:
        return vx.open_virtual_dataset(f"file://{target}", registry=registry, parser=parser)

    open_wide()
    seconds, ds = best_of(open_wide)
    assert len(ds.data_vars) == n_vars
    assert ds["time"].dtype.kind == "M"
    return {"open_s": seconds}


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="vz-bench-store-"))
    try:
        start = time.perf_counter()
        reads = read_figures(folder)
        opens = open_figures(folder)
        setup = time.perf_counter() - start
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    ratio = reads["virtual_s"] / reads["plain_s"]
    print("reading 10,000 chunks of 64 KiB (655 MB, warm page cache), best of 3:")
    print(f"  zarr.open_array on a LocalStore copy        {reads['plain_s']:7.3f} s")
    print(f"  xr.open_zarr(ManifestStore) (10 files)      {reads['virtual_s']:7.3f} s")
    print(f"  ratio virtual / plain                       {ratio:7.2f}x   (goal <= 1.5x)")
    print("opening 100 variables x 10,000 chunks into an xarray Dataset, best of 3:")
    print(
        f"  open_virtual_dataset (manifest parquet)     {opens['open_s']:7.3f} s   (goal <= 0.5 s)"
    )
    print(f"(setup and runs took {setup:.0f} s)")


if __name__ == "__main__":
    main()
