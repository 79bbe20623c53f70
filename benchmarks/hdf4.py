"""Parse time of `HDF4Parser` beside kerchunk's experimental ``HDF4ToZarr``.

Workload: one HDF4 file of 20 data sets (200 x 300 float32, chunks of 50 x 60,
deflate; written with pyhdf and libmfhdf). Warm, best of 3 (goal: vz >= 3x faster
than kerchunk). kerchunk runs in the peers' venv (``VZ_PEER_PYTHON``, or
/tmp/vz-peers), skipped when absent.

    python benchmarks/hdf4.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import vzcore as vc
from _workload import best_of
from vzcore.parsers import HDF4Parser

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from tests.hdf4_maker import set_chunk

N_SDS, SHAPE, CHUNKS = 20, (200, 300), (50, 60)
PEER_PYTHON = Path(
    os.environ.get("VZ_PEER_PYTHON", Path(tempfile.gettempdir()) / "vz-peers" / "bin" / "python")
)
PEER_CODE = """
import sys, time
from kerchunk.hdf4 import HDF4ToZarr
HDF4ToZarr(sys.argv[1]).translate()
best = float("inf")
for _ in range(3):
    start = time.perf_counter()
    HDF4ToZarr(sys.argv[1]).translate()
    best = min(best, time.perf_counter() - start)
print(best)
"""


def write_file(path: Path) -> None:
    from pyhdf.SD import SD, SDC

    sd = SD(str(path), SDC.WRITE | SDC.CREATE)
    values = np.random.default_rng(0).standard_normal(SHAPE).astype("f4")
    for index in range(N_SDS):
        sds = sd.create(f"field_{index:02d}", SDC.FLOAT32, SHAPE)
        set_chunk(sds, CHUNKS, deflate=4)
        sds[:] = values + index
        sds.endaccess()
    sd.end()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "twenty.hdf"
        write_file(path)
        registry = vc.ObjectStoreRegistry.for_urls([str(path)])
        parser = HDF4Parser()
        parser(f"file://{path}", registry)  # warm
        ours, _ = best_of(lambda: parser(f"file://{path}", registry))
        theirs = None
        if PEER_PYTHON.exists():
            proc = subprocess.run(
                [str(PEER_PYTHON), "-c", PEER_CODE, str(path)],
                check=False,
                capture_output=True,
                text=True,
            )
            theirs = float(proc.stdout) if proc.returncode == 0 else None
            if theirs is None:
                print(f"(kerchunk failed: {proc.stderr.strip().splitlines()[-1:]})")
        print(f"HDF4, {N_SDS} SDS of {SHAPE} in {CHUNKS} deflated chunks; warm, best of 3")
        print(f"vz HDF4Parser:        {ours * 1000:8.1f} ms")
        if theirs is not None:
            print(f"kerchunk HDF4ToZarr:  {theirs * 1000:8.1f} ms  ({theirs / ours:.1f}x)")
        else:
            print("kerchunk not measured (no peers venv)")


if __name__ == "__main__":
    main()
