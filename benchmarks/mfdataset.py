"""Many netCDF4 files -> one virtual dataset: combine, reopen, scale (open_virtual_mfdataset).

Workload, written once into a temporary folder (or kept in ``--folder`` for the next run):
200 netCDF4 files of ``tas``, 24 x 180 x 360 float32 in (1, 180, 360) zlib chunks, with
CF time ("days since 2000-01-01"), lat and lon; and 2,000 files of 24 x 18 x 36 (the same
24 chunks per file, smaller) for the scaling table.

1. virtualize + combine the 200 files: vz's ``open_virtual_mfdataset`` (serial and
   threads) beside VirtualiZarr 2.8's (serial and a ThreadPoolExecutor, its default
   combine options) and kerchunk's ``SingleHdf5ToZarr`` per file + ``MultiZarrToZarr``.
   Warm, best of 3. Goal: vz >= 3x faster than both.
2. reopening: vz's combined dataset written as Icechunk and as Kerchunk parquet, and
   reopened with xarray, beside ``xr.open_mfdataset`` of the originals (in the peers'
   venv if vz's has no dask). Warm, best of 3. Goal: >= 20x faster. The reopened values
   are checked against the original files.
2b. computing: ``vx.open_mfdataset`` (virtualize + combine + an ordinary lazy dask Dataset
   over a ManifestStore, nothing saved) beside ``xr.open_mfdataset`` of the same files:
   both open times (warm, best of 3) and a check that every value, coordinate and
   attribute is equal (the whole of ``tas``, compared chunk by chunk with dask).
3. scaling: vz's time per file for 200 to 2,000 files, serial and threads. Goal: flat
   (serial: <= 1.25x at 2,000; the threads' figure varies with lock contention).

The peers run in their own venv (``VZ_PEER_PYTHON``, or ../shared/peers/setup-venv.sh's
/tmp/vz-peers; ``--peers`` builds it) as benchmarks/peer_mfdataset.py, in the same run.

    python benchmarks/mfdataset.py [--folder DIR] [--peers] [--no-peers] [--only-lazy]
                                   [--only-combine]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import icechunk
import numpy as np
import xarray as xr

import vzcore as vc
import vzxarray as vx
from _mfworkload import (
    N_FILES,
    SCALING_COUNTS,
    SHAPE,
    SMALL_SHAPE,
    ensure_files,
    file_paths,
    small_paths,
    warm_best,
)
from algebra import HERE, find_peer_python
from vzxarray.cli import create_icechunk_repository
from vzxarray.mfdataset import Parallel

COMBINE_GOAL = 3.0  # vz at least this many times faster than VirtualiZarr and kerchunk
REOPEN_GOAL = 20.0  # reopening at least this many times faster than xr.open_mfdataset
SCALING_GOAL = 1.25  # time per file at 2,000 files at most this times that at 200
CHECKED_STEPS = (0, 1, N_FILES * SHAPE[0] // 2 + 5, N_FILES * SHAPE[0] - 1)


def _ratio(ours: float | None, theirs: float | None) -> str:
    return f"{theirs / ours:.1f}x" if ours and theirs else ""


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


# ---- 1. virtualize + combine --------------------------------------------------------------


def vz_combine(paths: Sequence[Path], parallel: Parallel) -> xr.Dataset:
    ds: xr.Dataset = vx.open_virtual_mfdataset([str(p) for p in paths], parallel=parallel)
    assert ds["tas"].shape[0] == len(paths) * SHAPE[0], ds["tas"].shape
    return ds


def combine_figures(folder: Path) -> dict[str, float]:
    paths = file_paths(folder)
    return {
        "serial_s": warm_best(lambda: vz_combine(paths, None)),
        "threads_s": warm_best(lambda: vz_combine(paths, "threads")),
        # The pool's workers start on the warm-up call and are kept (as in a session).
        "processes_s": warm_best(lambda: vz_combine(paths, "processes")),
        "xr_open_mfdataset_s": warm_best(lambda: open_originals(paths)),
    }


def peer_figures(python: Path, folder: Path, *options: str) -> tuple[dict[str, float], list[str]]:
    """The peers' figures (none if their run failed), and notes on the failure."""
    proc = subprocess.run(
        [str(python), str(HERE / "peer_mfdataset.py"), str(folder), *options],
        capture_output=True,
        text=True,
        cwd=HERE,
        check=False,
    )
    if proc.returncode != 0:
        return {}, [f"peer run failed: {proc.stderr.strip().splitlines()[-1:]}"]
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result, []


def print_combine(ours: dict[str, float], theirs: dict[str, float]) -> bool:
    header = (
        f"{'200 files -> one dataset (s)':34} {'vz':>7} {'VirtualiZarr':>13} {'kerchunk':>9} "
        f"{'vs VZ':>6} {'vs kc':>6}  goal"
    )
    print(header)
    print("-" * len(header))
    mf = ours.pop("xr_open_mfdataset_s", None)
    best = min(ours.values())
    vzr_best = min(
        (theirs[k] for k in ("vzr_serial_s", "vzr_threads_s") if k in theirs), default=None
    )
    kerchunk = theirs.get("kerchunk_s")
    goal = f">= {COMBINE_GOAL:g}x both"
    rows: list[tuple[str, float, float | None, float | None, str]] = [
        ("serial", ours["serial_s"], theirs.get("vzr_serial_s"), kerchunk, ""),
        ("threads", ours["threads_s"], theirs.get("vzr_threads_s"), None, ""),
        ("processes (workers kept)", ours["processes_s"], None, None, ""),
        ("best of vz's", best, vzr_best, kerchunk, goal),
    ]
    for label, mine, vzr, kc, goal_text in rows:
        print(
            f"{label:34} {_fmt(mine):>7} {_fmt(vzr):>13} {_fmt(kc):>9} "
            f"{_ratio(mine, vzr):>6} {_ratio(mine, kc):>6}  {goal_text}"
        )
    if mf is not None:
        print(
            f"{'xr.open_mfdataset (lazy, dask)':34} {_fmt(mf):>7}   (vz serial / it: {ours['serial_s'] / mf:.2f})"
        )
    if vzr_best is None or kerchunk is None:
        print("(peers not measured: the goal is not checked)")
        return True
    ok = vzr_best >= COMBINE_GOAL * best and kerchunk >= COMBINE_GOAL * best
    print(
        f"goal vz >= {COMBINE_GOAL:g}x faster than VirtualiZarr and kerchunk: {_met(ok)} "
        f"({_ratio(best, vzr_best)}, {_ratio(best, kerchunk)})"
    )
    return ok


# ---- 2. reopening -------------------------------------------------------------------------


def open_icechunk(path: Path, registry: vc.ObjectStoreRegistry) -> xr.Dataset:
    """Open the repository and its main branch as a reader would, then the dataset."""
    credentials = {p: icechunk.Credentials.LocalFileSystemAccess() for p in registry.prefixes}
    repository = icechunk.Repository.open(
        icechunk.local_filesystem_storage(str(path)),
        authorize_virtual_chunk_access=icechunk.containers_credentials(credentials),
    )
    ds: xr.Dataset = xr.open_zarr(repository.readonly_session("main").store, consolidated=False)
    return ds


def open_parquet(path: Path) -> xr.Dataset:
    """Kerchunk parquet references through fsspec, as vz's demo reopens them."""
    import fsspec
    from fsspec.implementations.reference import LazyReferenceMapper

    mapper = LazyReferenceMapper(str(path), fs=fsspec.filesystem("file"), engine="pyarrow")
    return xr.open_dataset(
        "reference://",
        engine="zarr",
        backend_kwargs={
            "consolidated": False,
            "storage_options": {"fo": mapper, "remote_protocol": "file"},
        },
    )


def open_originals(paths: Sequence[Path]) -> None:
    ds = xr.open_mfdataset([str(p) for p in paths], combine="by_coords")
    assert ds["tas"].shape == (len(paths) * SHAPE[0], *SHAPE[1:])
    ds.close()


def check_values(name: str, ds: xr.Dataset, paths: Sequence[Path]) -> list[str]:
    """Problems of ``ds`` against the original files at `CHECKED_STEPS` (none if equal)."""
    problems: list[str] = []
    for step in CHECKED_STEPS:
        index, within = divmod(step, SHAPE[0])
        with xr.open_dataset(paths[index]) as original:
            expected = original.isel(time=within)
            got = ds.isel(time=step)
            problems.extend(
                f"{name}: {variable} differs at time step {step}"
                for variable in ("tas", "time", "lat", "lon")
                if not np.array_equal(got[variable].values, expected[variable].values)
            )
    return problems


def reopen_figures(
    folder: Path, work: Path, python: Path | None
) -> tuple[dict[str, float], list[str]]:
    paths = file_paths(folder)
    ds = vz_combine(paths, "threads")
    registry = vc.ObjectStoreRegistry.for_urls([str(p) for p in paths])
    out: dict[str, float] = {}
    start = time.perf_counter()
    repository = create_icechunk_repository(str(work / "tas.icechunk"), registry)
    session = repository.writable_session("main")
    ds.vz.to_icechunk(session.store)
    session.commit("benchmark")
    out["write_icechunk_s"] = time.perf_counter() - start
    start = time.perf_counter()
    ds.vz.to_kerchunk(work / "tas.parq", format="parquet")
    out["write_parquet_s"] = time.perf_counter() - start
    out["icechunk_s"] = warm_best(lambda: open_icechunk(work / "tas.icechunk", registry))
    out["parquet_s"] = warm_best(lambda: open_parquet(work / "tas.parq"))
    if importlib.util.find_spec("dask") is not None:
        out["open_mfdataset_s"] = warm_best(lambda: open_originals(paths))
    elif python is not None:  # xr.open_mfdataset needs dask: time it in the peers' venv
        mf, notes = peer_figures(python, folder, "--open-mfdataset")
        if not mf:
            raise RuntimeError(f"xr.open_mfdataset in the peers' venv failed: {notes}")
        out["open_mfdataset_s"] = mf["open_mfdataset_s"]
    else:
        raise RuntimeError("xr.open_mfdataset needs dask: pip install dask (or the peers' venv)")
    problems = check_values("Icechunk", open_icechunk(work / "tas.icechunk", registry), paths)
    problems += check_values("Kerchunk parquet", open_parquet(work / "tas.parq"), paths)
    return out, problems


def print_reopen(out: dict[str, float], problems: list[str]) -> bool:
    header = f"{'reopening the 200 files (s)':50} {'seconds':>8} {'vs mf':>7}  goal"
    print(header)
    print("-" * len(header))
    baseline = out["open_mfdataset_s"]
    rows = [
        ('xr.open_mfdataset(combine="by_coords")', "open_mfdataset_s", ""),
        ("Icechunk: Repository.open + xr.open_zarr", "icechunk_s", f">= {REOPEN_GOAL:g}x"),
        ('Kerchunk parquet: xr.open_dataset("reference://")', "parquet_s", f">= {REOPEN_GOAL:g}x"),
        ("  (written once: Icechunk, commit included)", "write_icechunk_s", ""),
        ("  (written once: Kerchunk parquet)", "write_parquet_s", ""),
    ]
    for label, key, goal in rows:
        ratio = _ratio(out[key], baseline) if goal else ""
        print(f"{label:50} {_fmt(out[key]):>8} {ratio:>7}  {goal}")
    ok = max(out["icechunk_s"], out["parquet_s"]) * REOPEN_GOAL <= baseline
    print(
        f"goal reopening >= {REOPEN_GOAL:g}x faster than xr.open_mfdataset: {_met(ok)} "
        f"({_ratio(out['icechunk_s'], baseline)} Icechunk, "
        f"{_ratio(out['parquet_s'], baseline)} parquet)"
    )
    steps = ", ".join(str(s) for s in CHECKED_STEPS)
    if problems:
        for problem in problems:
            print(f"CHECK FAILED: {problem}")
    else:
        print(f"check: tas/time/lat/lon of both stores equal the original files at steps {steps}")
    return ok and not problems


# ---- 2b. computing on virtual data, nothing saved ------------------------------------------

MF_OPTIONS: dict[str, Any] = {
    "combine": "by_coords",
    "data_vars": "minimal",
    "coords": "minimal",
    "compat": "override",
    "join": "outer",
    "combine_attrs": "override",
}
"""What open_virtual_mfdataset does by default, spelled out for xarray."""


def lazy_figures(folder: Path) -> tuple[dict[str, float], list[str]]:
    """Open times of vx.open_mfdataset and xr.open_mfdataset, and their differences."""
    if importlib.util.find_spec("dask") is None:
        raise RuntimeError("vx.open_mfdataset and xr.open_mfdataset need dask: pip install dask")
    paths = [str(p) for p in file_paths(folder)]
    out = {
        "vx_threads_s": warm_best(
            lambda: vx.open_mfdataset(paths, parallel="threads", progress=False)
        ),
        "vx_serial_s": warm_best(lambda: vx.open_mfdataset(paths, progress=False)),
        "xr_s": warm_best(lambda: xr.open_mfdataset(paths, **MF_OPTIONS).close()),
    }
    start = time.perf_counter()
    with xr.open_mfdataset(paths, **MF_OPTIONS) as theirs:
        ours = vx.open_mfdataset(paths, parallel="threads", progress=False)
        problems = lazy_differences(ours, theirs)
    out["check_s"] = time.perf_counter() - start
    return out, problems


def lazy_differences(ours: xr.Dataset, theirs: xr.Dataset) -> list[str]:
    """Every difference of two lazy datasets; data variables compared by dask, chunk by chunk."""
    import dask.array as da  # vz's venv may lack dask: then lazy_figures said so

    problems = []
    if list(ours.variables) != list(theirs.variables) or list(ours.coords) != list(theirs.coords):
        problems.append(f"variables {list(ours.variables)} != {list(theirs.variables)}")
    if ours.attrs != theirs.attrs:
        problems.append(f"global attributes {ours.attrs} != {theirs.attrs}")
    for name, theirs_variable in theirs.variables.items():
        if name not in ours.variables:
            continue
        mine = ours.variables[name]
        if mine.dims != theirs_variable.dims or mine.dtype != theirs_variable.dtype:
            problems.append(f"{name}: {mine.dims} {mine.dtype} != {theirs_variable.dims} ...")
            continue
        if mine.attrs != theirs_variable.attrs:
            problems.append(f"{name}: attributes {mine.attrs} != {theirs_variable.attrs}")
        same = (mine == theirs_variable) | (mine.isnull() & theirs_variable.isnull())
        if not bool(same.all().compute()):
            problems.append(f"{name}: values differ")
    if not isinstance(ours["tas"].data, da.Array) or ours["tas"].chunks != theirs["tas"].chunks:
        problems.append("tas: not a dask array in the source chunks")
    return problems


def print_lazy(out: dict[str, float], problems: list[str]) -> bool:
    header = (
        f"{'lazy dask Dataset of the 200 files, nothing saved (s)':58} {'open':>7} {'vs mf':>7}"
    )
    print(header)
    print("-" * len(header))
    rows = [
        ('xr.open_mfdataset(combine="by_coords")', "xr_s"),
        ('vx.open_mfdataset (lazy, computable), parallel="threads"', "vx_threads_s"),
        ("vx.open_mfdataset (lazy, computable), serial", "vx_serial_s"),
    ]
    for label, key in rows:
        ratio = f"{out[key] / out['xr_s']:.2f}x" if key != "xr_s" else ""
        print(f"{label:58} {_fmt(out[key]):>7} {ratio:>7}")
    print("(vs mf: vz's open time over xr.open_mfdataset's; below 1 is faster)")
    if problems:
        for problem in problems:
            print(f"CHECK FAILED: {problem}")
    else:
        print(
            "check: vx.open_mfdataset equals xr.open_mfdataset: every value of tas, time, lat "
            f"and lon, every attribute, the dask chunks ({out['check_s']:.1f} s)"
        )
    return not problems


# ---- 3. scaling ---------------------------------------------------------------------------


def scaling_figures(folder: Path) -> dict[int, dict[str, float]]:
    paths = small_paths(folder)
    vz_combine(paths[: SCALING_COUNTS[0]], None)  # warm-up; each count is then best of 3
    modes: list[tuple[str, Parallel]] = [("serial_s", None), ("threads_s", "threads")]
    table: dict[int, dict[str, float]] = {}
    for count in SCALING_COUNTS:
        subset = paths[:count]
        table[count] = {
            mode: warm_best(partial(vz_combine, subset, parallel), warm=False)
            for mode, parallel in modes
        }
    return table


def print_scaling(table: dict[int, dict[str, float]], full: dict[str, float]) -> bool:
    header = (
        f"{'files':>6} {'shape':>12} {'serial (s)':>11} {'ms/file':>8} {'vs 200':>7} "
        f"{'threads (s)':>12} {'ms/file':>8} {'vs 200':>7}"
    )
    print(header)
    print("-" * len(header))

    def cells(seconds: float, count: int, first: float) -> str:
        per_file = seconds / count
        return f"{seconds:11.3f} {per_file * 1000:8.2f} {per_file / first:6.2f}x"

    first = {mode: table[SCALING_COUNTS[0]][mode] / SCALING_COUNTS[0] for mode in full}
    shape = "x".join(map(str, SHAPE))
    print(
        f"{N_FILES:>6} {shape:>12} {cells(full['serial_s'], N_FILES, first['serial_s'])} "
        f"{cells(full['threads_s'], N_FILES, first['threads_s'])}"
    )
    small = "x".join(map(str, SMALL_SHAPE))
    for count, row in table.items():
        print(
            f"{count:>6} {small:>12} {cells(row['serial_s'], count, first['serial_s'])} "
            f"{cells(row['threads_s'], count, first['threads_s'])}"
        )
    print(f"(vs 200: time per file over that of the {SCALING_COUNTS[0]} files of {small})")
    last = table[SCALING_COUNTS[-1]]
    growth = {mode: last[mode] / SCALING_COUNTS[-1] / first[mode] for mode in last}
    ok = growth["serial_s"] <= SCALING_GOAL
    print(
        f"goal time per file at {SCALING_COUNTS[-1]:,} files <= {SCALING_GOAL:g}x that at "
        f"{SCALING_COUNTS[0]} (serial): {_met(ok)} ({growth['serial_s']:.2f}x; threads "
        f"{growth['threads_s']:.2f}x, which varies from run to run with lock contention)"
    )
    return ok


# ---- main ---------------------------------------------------------------------------------


def run_all(folder: Path, work: Path, args: argparse.Namespace) -> list[bool]:
    ours = combine_figures(folder)
    python = None if args.no_peers else find_peer_python(args.peers)
    theirs, notes = peer_figures(python, folder) if python else ({}, [])
    for note in notes:
        print(f"({note})")
    results = [print_combine(ours, theirs)]
    print()
    if args.only_combine:
        return results
    results.append(print_reopen(*reopen_figures(folder, work, python)))
    print()
    results.append(print_lazy(*lazy_figures(folder)))
    print()
    results.append(print_scaling(scaling_figures(folder), ours))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, help="keep the files here (reused if present)")
    parser.add_argument("--peers", action="store_true", help="build the peers' venv if absent")
    parser.add_argument("--no-peers", action="store_true", help="measure vz only")
    parser.add_argument(
        "--only-lazy", action="store_true", help="only 2b: vx.open_mfdataset vs xr.open_mfdataset"
    )
    parser.add_argument("--only-combine", action="store_true", help="only 1: virtualize + combine")
    args = parser.parse_args()
    icechunk.set_logs_filter("error")
    started = time.perf_counter()
    folder: Path = args.folder or Path(tempfile.mkdtemp(prefix="vz-bench-mf-"))
    work = Path(tempfile.mkdtemp(prefix="vz-bench-mf-out-"))
    try:
        written, seconds = ensure_files(folder, small=not (args.only_lazy or args.only_combine))
        print(
            f"workload: {N_FILES} netCDF4 files of tas {SHAPE} float32, chunks "
            f"(1, {SHAPE[1]}, {SHAPE[2]}), zlib, CF time/lat/lon; scaling: "
            f"{max(SCALING_COUNTS):,} files of {SMALL_SHAPE} (also 24 chunks each). "
            f"{written} files written in {seconds:.1f} s ({folder})."
        )
        print("Warm, best of 3 (one timed run after the warm-up when a run takes >= 20 s).\n")
        if args.only_lazy:
            results = [print_lazy(*lazy_figures(folder))]
        else:
            results = run_all(folder, work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)
    print(
        f"\n{sum(results)} of {len(results)} goals met; total {time.perf_counter() - started:.0f} s"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
