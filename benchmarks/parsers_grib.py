"""GRIB figures of issue 18: index + hypercube assembly of one file, and many files combined.

Workloads, written into a temporary folder with ecCodes from its ``regular_ll_pl_grib2``
sample (a 1-degree global grid, 181 x 360): one GRIB2 file of 300 messages (5
parameters x 6 pressure levels x 10 steps), and 100 files of 150 messages (5 x 3 x
10, on a 2.5-degree grid) one per forecast run. vz's ``GRIBParser`` builds the hypercubes; kerchunk's
``scan_grib`` (in the peers' venv, ../shared/peers/setup-venv.sh) builds its per-message
references, in the same run. Best of 3; "cold" empties vz's cache of parameter keys
(ecCodes is asked once per parameter and level) before each run, "warm" keeps it, as
a process parsing many files of one collection does.

    python benchmarks/parsers_grib.py [--no-peers]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import eccodes
import numpy as np
import xarray as xr

import vzcore as vc
import vzxarray as vx
from _workload import best_of
from vzcore.parsers import GRIBParser
from vzcore.parsers.grib import _KEY_CACHE, _NAMES

HERE = Path(__file__).resolve().parent
PEER_PYTHON = Path(tempfile.gettempdir()) / "vz-peers" / "bin" / "python"
PARAMS = ("t", "u", "v", "q", "z")


def write_file(
    path: Path, levels: tuple[int, ...], steps: int, date: int, degrees: float = 1.0
) -> int:
    """One GRIB2 file of len(PARAMS) x len(levels) x steps messages; returns the count."""
    ni, nj = int(360 / degrees), int(180 / degrees) + 1
    rng = np.random.default_rng(date)
    messages = []
    for name in PARAMS:
        for level in levels:
            for step in range(steps):
                handle = eccodes.codes_grib_new_from_samples("regular_ll_pl_grib2")
                for key, value in (
                    ("Ni", ni), ("Nj", nj), ("iDirectionIncrementInDegrees", degrees),
                    ("jDirectionIncrementInDegrees", degrees),
                    ("latitudeOfFirstGridPointInDegrees", 90.0),
                    ("latitudeOfLastGridPointInDegrees", -90.0),
                    ("longitudeOfFirstGridPointInDegrees", 0.0),
                    ("longitudeOfLastGridPointInDegrees", 360.0 - degrees),
                    ("shortName", name), ("level", level), ("step", 6 * step),
                    ("dataDate", date),
                ):  # fmt: skip
                    eccodes.codes_set(handle, key, value)
                eccodes.codes_set_values(handle, rng.normal(280, 10, ni * nj))
                messages.append(bytes(eccodes.codes_get_message(handle)))
                eccodes.codes_release(handle)
    path.write_bytes(b"".join(messages))
    return len(messages)


def vz_one(path: Path) -> tuple[float, float]:
    """Best of 3 parse times: cold (no parameter seen before in the process), and warm."""
    registry = vc.ObjectStoreRegistry.for_urls([str(path)])
    parse = GRIBParser()
    group = parse(str(path), registry)
    expected = xr.open_dataset(path, engine="cfgrib", indexpath="")["t"].values
    got = vc.read_array(group["t"], registry)  # type: ignore[arg-type]
    np.testing.assert_array_equal(got, expected)  # the figure is of a parse that reads right

    def cold() -> object:
        _KEY_CACHE.clear()
        _NAMES.clear()
        return parse(str(path), registry)

    cold_seconds, _ = best_of(cold, repeat=3)
    warm_seconds, _ = best_of(lambda: parse(str(path), registry), repeat=3)
    return cold_seconds, warm_seconds


def vz_many(paths: list[Path]) -> float:
    registry = vc.ObjectStoreRegistry.for_urls([str(paths[0])])
    start = time.perf_counter()
    combined = vx.open_virtual_mfdataset(
        [str(p) for p in paths], registry=registry, parser=GRIBParser(), combine="nested",
        concat_dim="time", progress=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    assert combined["t"].shape[0] == len(paths)
    return seconds


PEER = """
import json, sys, time
from kerchunk.grib2 import scan_grib
path = sys.argv[1]
scan_grib(path)
best = min(
    (lambda t0: (scan_grib(path), time.perf_counter() - t0)[1])(time.perf_counter())
    for _ in range(3)
)
print(json.dumps({"scan_grib": best}))
"""


def peer_one(path: Path) -> float | None:
    if not PEER_PYTHON.exists():
        return None
    proc = subprocess.run(
        [str(PEER_PYTHON), "-c", PEER, str(path)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        print(f"kerchunk failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["scan_grib"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--files", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        one = folder / "one.grib2"
        count = write_file(one, (1000, 850, 700, 500, 300, 250), 10, 20240101)
        cold, warm = vz_one(one)
        theirs = None if args.no_peers else peer_one(one)
        many = [folder / f"run_{i:03d}.grib2" for i in range(args.files)]
        for i, path in enumerate(many):
            write_file(path, (850, 500, 250), 10, 20240101 + i % 28 + 100 * (i // 28), 2.5)
        combined = vz_many(many)
    print(f"{'workload':<52} {'vz':>9} {'kerchunk':>9} {'ratio':>7}")
    kerchunk = f"{theirs:8.3f}s" if theirs else "        -"
    for label, ours in (("cold", cold), ("warm", warm)):
        ratio = f"{theirs / ours:6.1f}x" if theirs else "      -"
        text = f"one GRIB2 file, {count} messages -> refs ({label})"
        print(f"{text:<52} {ours:8.3f}s {kerchunk} {ratio}")
    label = f"{args.files} files x 150 messages -> one dataset"
    print(f"{label:<52} {combined:8.3f}s {'-':>9} {'-':>7}")


if __name__ == "__main__":
    main()
