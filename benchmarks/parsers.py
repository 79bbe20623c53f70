"""Parse times of `HDFParser` (and `NetCDF3Parser`) beside VirtualiZarr 2.8 and kerchunk.

Workloads, written once with netCDF4 into a temporary folder:

1. one netCDF4 variable of 100,000 chunks: (100000, 10) float32, chunks (1, 10),
   zlib + shuffle. Reference generation, warm, best of 3 (goal: vz >= 3x faster
   than VirtualiZarr and kerchunk, <= 0.08 s, faster than h5py's ``chunk_iter``
   alone, which is timed beside it, as is vz through ``chunk_iter``); and the same
   with 1,000,000 chunks (goal: <= 0.6 s; vz only, ``--no-huge`` skips it).
2. 200 small netCDF4 files (24 x 18 x 36 float32, three variables, zlib, CF
   coordinates): time per file, warm, best of 3 passes (goal: >= 2x faster than
   VirtualiZarr's ``open_virtual_dataset``).
3. a netCDF3 file of 100,000 records x 5 record variables, if vz has a
   ``NetCDF3Parser`` (goal: <= 0.3 s).
4. a 20,000 x 20,000 uint16 COG (GDAL's COG driver through rasterio, 512 x 512
   deflate tiles, 5 overviews): `TIFFParser` on every IFD and ``open_virtual_dataset``,
   warm, best of 30, beside virtual-tiff 0.5 (``VirtualTIFF(ifd=0)``, the full
   resolution only) and kerchunk's ``tiff_to_zarr`` (goal: <= 0.1 s, >= 2x
   virtual-tiff); and the GETs `TIFFParser` sends to moto's S3 server (goal: <= 2).

The peers run in their own venv (``VZ_PEER_PYTHON``, or ../shared/peers/setup-venv.sh's
/tmp/vz-peers; ``--peers`` builds it) as benchmarks/peer_parsers.py, in the same run.

    python benchmarks/parsers.py [--peers] [--no-peers] [--files N] [--no-tiff] [--no-huge]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
from obstore.store import LocalStore

import vzcore as vc
import vzxarray as vx
from _workload import best_of
from vzcore.parsers import HDFParser

HERE = Path(__file__).resolve().parent
PEER_SETUP = HERE.parent.parent / "shared" / "peers" / "setup-venv.sh"
DEFAULT_PEER_PYTHON = Path(tempfile.gettempdir()) / "vz-peers" / "bin" / "python"

BIG_SHAPE, BIG_CHUNKS = (100_000, 10), (1, 10)
HUGE_SHAPE = (1_000_000, 10)  # chunks of BIG_CHUNKS
SMALL_SHAPE = (24, 18, 36)  # time, lat, lon
SMALL_VARIABLES = ("tas", "pr", "huss")
N_RECORDS = 100_000
RECORD_VARIABLES = {"tas": "f4", "pr": "f8", "flag": "i1", "count": "i2", "index": "i4"}
COG_SIZE, COG_TILE, COG_OVERVIEWS = 20_000, 512, 5
TIFF_REPEAT = 30


# ---- the files ---------------------------------------------------------------------------


def write_big(path: Path, shape: tuple[int, int] = BIG_SHAPE) -> None:
    values = np.random.default_rng(0).standard_normal(shape).astype("f4")
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("row", shape[0])
        ds.createDimension("col", shape[1])
        var = ds.createVariable(
            "data", "f4", ("row", "col"), zlib=True, shuffle=True, chunksizes=BIG_CHUNKS
        )
        var[:] = values


def write_small(path: Path, index: int) -> None:
    """A month of daily fields, as a CMIP-like file is laid out (unlimited time)."""
    nt, ny, nx = SMALL_SHAPE
    rng = np.random.default_rng(index)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("time", None)
        ds.createDimension("lat", ny)
        ds.createDimension("lon", nx)
        time = ds.createVariable("time", "f8", ("time",))
        time.units = "days since 2000-01-01"
        time.calendar = "standard"
        time[:] = index * nt + np.arange(nt)
        ds.createVariable("lat", "f8", ("lat",))[:] = np.linspace(-85, 85, ny)
        ds.createVariable("lon", "f8", ("lon",))[:] = np.linspace(0, 350, nx)
        for name in SMALL_VARIABLES:
            var = ds.createVariable(name, "f4", ("time", "lat", "lon"), zlib=True)
            var.units = "1"
            var[:] = rng.standard_normal(SMALL_SHAPE).astype("f4")


def write_records(path: Path) -> None:
    with netCDF4.Dataset(path, "w", format="NETCDF3_64BIT_OFFSET") as ds:
        ds.createDimension("time", None)
        ds.createDimension("station", 3)
        ds.createVariable("station", "i4", ("station",))[:] = np.arange(3)
        for name, dtype in RECORD_VARIABLES.items():
            var = ds.createVariable(name, dtype, ("time", "station"))
            var[:N_RECORDS] = np.ones((N_RECORDS, 3), dtype=dtype)


def write_cog(path: Path) -> None:
    """The COG of workload 4: mostly zeros, a line every 997 rows (GDAL compresses it fast)."""
    import rasterio
    from rasterio.transform import from_origin

    data = np.zeros((COG_SIZE, COG_SIZE), dtype="uint16")
    data[::997, :] = 7
    with rasterio.open(
        path, "w", driver="COG", width=COG_SIZE, height=COG_SIZE, count=1, dtype="uint16",
        crs="EPSG:32633", transform=from_origin(500000, 4200000, 10, 10), compress="deflate",
        blocksize=COG_TILE, overview_count=COG_OVERVIEWS, overview_resampling="nearest",
    ) as dst:  # fmt: skip
        dst.write(data, 1)


def write_files(folder: Path, n_small: int, *, tiff: bool = True, huge: bool = True) -> None:
    if tiff:
        write_cog(folder / "cog.tif")
    write_big(folder / "big.nc")
    if huge:
        write_big(folder / "huge.nc", HUGE_SHAPE)
    (folder / "small").mkdir()
    for index in range(n_small):
        write_small(folder / "small" / f"day_{index:04d}.nc", index)
    write_records(folder / "records.nc")


# ---- vz's side ---------------------------------------------------------------------------


def warm_best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` runs after one untimed run."""
    fn()
    seconds, _ = best_of(fn, repeat=repeat)
    return seconds


def chunk_iter_alone(path: Path) -> float:
    """h5py's ``chunk_iter`` over the variable ``data``, collecting its StoreInfos, nothing else."""
    import h5py

    with h5py.File(path, "r") as f:
        dataset = f["data"]

        def listing() -> list[Any]:
            infos: list[Any] = []
            dataset.id.chunk_iter(infos.append)
            return infos

        return warm_best_of(listing)


def per_file(fn: Callable[[Path], object], paths: list[Path]) -> float:
    """Best time of one pass over ``paths``, divided by the number of files."""
    return warm_best_of(lambda: [fn(path) for path in paths]) / len(paths)


def vz_figures(folder: Path) -> tuple[dict[str, float], list[str]]:
    notes: list[str] = []
    registry = vc.ObjectStoreRegistry({f"file://{folder}/": LocalStore(folder)})
    small = sorted((folder / "small").glob("*.nc"))
    small_registry = vc.ObjectStoreRegistry(
        {f"file://{folder}/small/": LocalStore(folder / "small")}
    )
    parser = HDFParser()
    big_url = f"file://{folder}/big.nc"
    group = parser(big_url, registry)
    data = group["data"]
    assert isinstance(data, vc.VirtualArray)
    n_refs = data.manifest.n_chunks - data.manifest.n_missing
    notes.append(f"big.nc: {n_refs:,} chunk references")
    out = {
        "big_parse_s": warm_best_of(lambda: parser(big_url, registry)),
        "big_chunk_iter_s": chunk_iter_alone(folder / "big.nc"),
        "big_via_chunk_iter_s": warm_best_of(
            lambda: HDFParser(direct_index=False)(big_url, registry)
        ),
        "small_parse_s": per_file(lambda p: parser(f"file://{p}", small_registry), small),
        "small_open_s": per_file(
            lambda p: vx.open_virtual_dataset(
                f"file://{p}", registry=small_registry, parser=parser
            ),
            small,
        ),
    }
    if (folder / "huge.nc").exists():
        huge_url = f"file://{folder}/huge.nc"
        out["huge_parse_s"] = warm_best_of(lambda: parser(huge_url, registry))
        out["huge_chunk_iter_s"] = chunk_iter_alone(folder / "huge.nc")
    try:
        from vzcore.parsers import NetCDF3Parser
    except ImportError:
        notes.append("netCDF3 line skipped: vzcore.parsers.NetCDF3Parser is not importable")
    else:
        records_url = f"file://{folder}/records.nc"
        out["netcdf3_parse_s"] = warm_best_of(lambda: NetCDF3Parser()(records_url, registry))
        records = NetCDF3Parser()(records_url, registry)
        n_record_refs = sum(
            a.manifest.n_chunks for _, a in records.walk_arrays() if isinstance(a, vc.VirtualArray)
        )
        notes.append(f"records.nc: {n_record_refs:,} chunk references")
    if (folder / "cog.tif").exists():
        out.update(tiff_figures(folder, registry, notes))
    return out, notes


def tiff_figures(
    folder: Path, registry: vc.ObjectStoreRegistry, notes: list[str]
) -> dict[str, float]:
    """Workload 4: the COG parsed from local disk, and the GETs it takes from moto's S3."""
    from vzcore.parsers import TIFFParser

    url = f"file://{folder}/cog.tif"
    group = TIFFParser()(url, registry)
    levels = len(group["overviews"].groups) if "overviews" in group.groups else 0
    notes.append(
        f"cog.tif: {group['0'].manifest.n_chunks:,} tiles at full resolution, {levels} overviews"
    )
    out = {
        # Milliseconds on a shared machine: the best of many runs, on both sides.
        "tiff_parse_s": warm_best_of(lambda: TIFFParser()(url, registry), repeat=TIFF_REPEAT),
        "tiff_open_s": warm_best_of(
            lambda: vx.open_virtual_dataset(url, registry=registry, parser=TIFFParser()),
            repeat=TIFF_REPEAT,
        ),
    }
    out["tiff_s3_gets"] = float(s3_gets(folder / "cog.tif"))
    return out


def s3_gets(path: Path) -> int:
    """GET requests moto's S3 server sees while `TIFFParser` parses ``path`` from it."""
    import sys

    sys.path.insert(0, str(HERE.parent))  # tests.s3_server lives in the repository
    from tests.s3_server import running_server

    from vzcore.parsers import TIFFParser

    with running_server() as server:
        bucket = server.create_bucket()
        url = bucket.put_file("cog.tif", path)
        registry = bucket.registry()
        before = bucket.get_count()
        TIFFParser()(url, registry)
        return bucket.get_count() - before


# ---- the peers' side ---------------------------------------------------------------------


def find_peer_python(build: bool) -> Path | None:
    python = Path(os.environ.get("VZ_PEER_PYTHON", DEFAULT_PEER_PYTHON))
    if not python.exists() and build and PEER_SETUP.exists():
        done = subprocess.run(
            ["bash", str(PEER_SETUP)], capture_output=True, text=True, check=False
        )
        if done.returncode == 0:
            python = Path(done.stdout.strip().splitlines()[-1])
    return python if python.exists() else None


def peer_figures(python: Path, folder: Path) -> tuple[dict[str, float], list[str]]:
    """The peers' figures, and the notes their script printed on stderr."""
    proc = subprocess.run(
        [str(python), str(HERE / "peer_parsers.py"), str(folder)],
        capture_output=True,
        text=True,
        cwd=HERE,
        check=False,
    )
    notes = [
        line
        for line in proc.stderr.splitlines()
        if line.startswith(("netCDF3 peers", "TIFF peers"))
    ]
    if proc.returncode != 0:
        return {}, [f"peer run failed: {proc.stderr.strip().splitlines()[-1:]}"]
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result, notes


# ---- the table ---------------------------------------------------------------------------

# label, key of vz's figure, key of VirtualiZarr's, key of kerchunk's, goal
ROWS: list[tuple[str, str, str | None, str | None, str]] = [
    ("100k-chunk netCDF4 variable -> refs (s)", "big_parse_s", "big_parse_s", "big_kerchunk_s",
     ">= 3x both, <= 0.08 s"),
    ("  h5py chunk_iter alone (s)", "big_chunk_iter_s", None, None, "> vz"),
    ("  vz through chunk_iter (s)", "big_via_chunk_iter_s", None, None, ""),
    ("1M-chunk netCDF4 variable -> refs (s)", "huge_parse_s", None, None, "<= 0.6 s"),
    ("  h5py chunk_iter alone (s)", "huge_chunk_iter_s", None, None, "> vz"),
    ("{files} small files: parse, per file (ms)", "small_parse_s", "small_parse_s",
     "small_kerchunk_s", ">= 2x VZ"),
    ("  open_virtual_dataset, per file (ms)", "small_open_s", "small_open_s", None, ">= 2x VZ"),
    ("netCDF3, 100k records x 5 vars (s)", "netcdf3_parse_s", "netcdf3_parse_s",
     "netcdf3_kerchunk_s", "<= 0.3 s"),
    ("20k x 20k COG, all 6 IFDs -> refs (ms)", "tiff_parse_s", "tiff_vt_s", "tiff_kerchunk_s",
     "<= 100 ms, >= 2x VT"),
    ("  open_virtual_dataset (ms)", "tiff_open_s", "tiff_vt_s", None, ">= 2x VT"),
]  # fmt: skip


def _fmt(value: float | None, key: str) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.2f}" if key.startswith(("small", "tiff")) else f"{value:.3f}"


def _ratio(ours: float | None, theirs: float | None) -> str:
    return f"{theirs / ours:.1f}x" if ours and theirs else ""


def print_table(
    ours: dict[str, float], vzr: dict[str, Any], kerchunk: dict[str, Any], *, files: int
) -> None:
    header = (
        f"{'figure':42} {'vz':>9} {'VirtualiZarr':>13} {'kerchunk':>9} "
        f"{'vs VZ':>7} {'vs kc':>7}  goal"
    )
    print(header)
    print("-" * len(header))
    for label, our_key, vzr_key, kc_key, goal in ROWS:
        mine = ours.get(our_key)
        theirs = vzr.get(vzr_key) if vzr_key else None
        kc = kerchunk.get(kc_key) if kc_key else None
        label = label.format(files=files)
        print(
            f"{label:42} {_fmt(mine, our_key):>9} {_fmt(theirs, our_key):>13} "
            f"{_fmt(kc, our_key):>9} {_ratio(mine, theirs):>7} {_ratio(mine, kc):>7}  {goal}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", action="store_true", help="build the peers' venv if absent")
    parser.add_argument("--no-peers", action="store_true", help="measure vz only")
    parser.add_argument("--files", type=int, default=200, help="number of small files")
    parser.add_argument("--no-tiff", action="store_true", help="skip the COG workload")
    parser.add_argument("--no-huge", action="store_true", help="skip the 1M-chunk workload")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vz-bench-parsers-") as tmp:
        folder = Path(tmp)
        write_files(folder, args.files, tiff=not args.no_tiff, huge=not args.no_huge)
        ours, notes = vz_figures(folder)
        python = None if args.no_peers else find_peer_python(args.peers)
        theirs: dict[str, float] = {}
        if python is not None:
            theirs, peer_notes = peer_figures(python, folder)
            notes += peer_notes
    print(
        f"workloads: netCDF4 {BIG_SHAPE} float32 in {BIG_CHUNKS} chunks (zlib+shuffle); "
        f"{args.files} netCDF4 files of {SMALL_SHAPE} x {len(SMALL_VARIABLES)} variables; "
        f"netCDF3 {N_RECORDS:,} records x {len(RECORD_VARIABLES)} variables. "
        "Warm, best of 3."
    )
    for note in notes:
        print(f"({note})")
    print_table(ours, theirs, theirs, files=args.files)
    if "tiff_s3_gets" in ours:
        print(f"COG from moto S3: {int(ours['tiff_s3_gets'])} GET(s) to parse (goal: <= 2)")
    print(
        "(VT: VirtualiZarr's column holds virtual-tiff 0.5 for the COG rows; it reads IFD 0 only)"
    )
    if not theirs:
        print("(peers not measured: run with --peers to build their venv)")


if __name__ == "__main__":
    main()
