"""Parse time of `FITSParser` beside kerchunk's ``kerchunk.fits.process_file`` (issue 17).

Workload: one multi-extension FITS file with 10 image HDUs (an empty primary, then
10 IMAGE extensions of 512 x 512 float32, each with a few dozen header cards),
written with astropy into a temporary folder. Goal: vz parses it in <= 50 ms, and
>= 3x faster than kerchunk's ``process_file(path, extension=[1..10])``, warm, best
of 5. kerchunk runs in the peers venv (``VZ_PEER_PYTHON``, or /tmp/vz-peers from
../shared/peers/setup-venv.sh) in the same run, and the figures print side by side.

    python benchmarks/parsers_fits.py [--no-peers]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from obstore.store import LocalStore

import vzcore as vc
from vzcore.parsers import FITSParser

N_HDUS, SHAPE = 10, (512, 512)
DEFAULT_PEER_PYTHON = Path(tempfile.gettempdir()) / "vz-peers" / "bin" / "python"

PEER_SCRIPT = """
import sys, time, warnings
warnings.simplefilter("ignore")
from kerchunk.fits import process_file
path, n = sys.argv[1], int(sys.argv[2])
best = float("inf")
for _ in range(5):
    start = time.perf_counter()
    refs = process_file(path, extension=list(range(1, n + 1)))
    best = min(best, time.perf_counter() - start)
assert sum(1 for k in refs if k.endswith("/.zarray")) == n, sorted(refs)[:20]
print(best)
"""


def write_file(path: Path) -> None:
    from astropy.io import fits

    rng = np.random.default_rng(0)
    hdus: list[fits.PrimaryHDU | fits.ImageHDU] = [fits.PrimaryHDU()]
    for i in range(N_HDUS):
        hdu = fits.ImageHDU(rng.standard_normal(SHAPE).astype("f4"), name=f"CCD{i:02d}")
        for j in range(30):
            hdu.header[f"KEY{j:03d}"] = (j * 1.5, f"card {j} of the benchmark header")
        hdu.header["HISTORY"] = "written by benchmarks/parsers_fits.py"
        hdus.append(hdu)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits.HDUList(hdus).writeto(path, overwrite=True)


def vz_seconds(path: Path) -> float:
    registry = vc.ObjectStoreRegistry({f"file://{path.parent}/": LocalStore(path.parent)})
    parser, url = FITSParser(), f"file://{path}"
    group = parser(url, registry)  # warm: imports, astropy's header machinery
    assert len(group.arrays) == N_HDUS
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        parser(url, registry)
        best = min(best, time.perf_counter() - start)
    return best


def peer_seconds(python: Path, path: Path) -> float | None:
    done = subprocess.run(
        [str(python), "-c", PEER_SCRIPT, str(path), str(N_HDUS)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        print(f"kerchunk failed: {done.stderr[-2000:]}")
        return None
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--no-peers", action="store_true", help="time vz only")
    args = options.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mef.fits"
        write_file(path)
        ours = vz_seconds(path)
        peer_python = Path(os.environ.get("VZ_PEER_PYTHON", DEFAULT_PEER_PYTHON))
        theirs = (
            None if args.no_peers or not peer_python.exists() else peer_seconds(peer_python, path)
        )
    print(f"FITS, {N_HDUS} image HDUs of {SHAPE[0]} x {SHAPE[1]} float32 (warm, best of 5)")
    print(f"{'':24}{'vz':>12}{'kerchunk':>12}{'ratio':>10}")
    peer = f"{theirs * 1e3:9.1f} ms" if theirs is not None else f"{'n/a':>12}"
    ratio = f"{theirs / ours:8.1f}x" if theirs is not None else f"{'':>10}"
    print(f"{'parse (goal <= 50 ms)':24}{ours * 1e3:9.1f} ms{peer}{ratio}  (goal >= 3x)")


if __name__ == "__main__":
    main()
