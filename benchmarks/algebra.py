"""Figures of the manifest algebra on 10,000,000 references (issue: the core).

Workload: 1,000 arrays, each a (1, 100, 100) grid of chunk references into its own
file (72-character URLs). Prints vz's figures and, when the peers' venv exists (or
``--peers`` builds it with ../shared/peers/setup-venv.sh), VirtualiZarr 2.8's beside them.

    python benchmarks/algebra.py [--peers] [--no-peers]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import pyarrow as pa

import vzcore as vc
from _workload import CHUNK_SHAPE, N_FILES, SHAPE, best_of, file_refs

HERE = Path(__file__).resolve().parent
PEER_SETUP = HERE.parent.parent / "shared" / "peers" / "setup-venv.sh"
DEFAULT_PEER_PYTHON = Path(tempfile.gettempdir()) / "vz-peers" / "bin" / "python"


def build_inputs() -> list[vc.VirtualArray]:
    meta = vc.ArrayMetadata.create(
        shape=SHAPE, chunk_shape=CHUNK_SHAPE, dtype="<f4", codecs=[{"name": "numcodecs.zlib"}]
    )
    arrays = []
    for i in range(N_FILES):
        paths, offsets, lengths = file_refs(i)
        manifest = vc.ChunkManifest.from_arrays(paths=paths, offsets=offsets, lengths=lengths)
        arrays.append(vc.VirtualArray(meta, manifest))
    return arrays


def vz_figures() -> dict[str, float]:
    out: dict[str, float] = {}
    start = time.perf_counter()
    arrays = build_inputs()
    out["build_inputs_s"] = time.perf_counter() - start
    gc.collect()
    before = pa.total_allocated_bytes()
    out["concat_axis0_s"], result = best_of(partial(vc.concat, arrays, axis=0))
    assert isinstance(result, vc.VirtualArray)
    n_refs = result.manifest.n_chunks
    out["n_refs"] = n_refs
    out["concat_axis2_s"], wide = best_of(partial(vc.concat, arrays, axis=2), repeat=1)
    del wide
    out.update(xarray_figures(arrays))
    del arrays
    gc.collect()
    # Axis 0 shares the inputs' buffers; with the inputs gone, what is left is the result.
    out["bytes_per_ref"] = result.manifest.nbytes / n_refs
    out["bytes_per_ref_arrow_pool"] = (pa.total_allocated_bytes() - before) / n_refs
    out["rename_s"], renamed = best_of(
        lambda: vc.rename_paths(result, lambda p: p.replace("s3://", "gs://"))
    )
    del renamed
    folder = Path(tempfile.mkdtemp(prefix="vz-bench-"))
    try:
        target = folder / "result.parquet"
        out["parquet_write_s"], _ = best_of(lambda: vc.write_manifest_parquet(result, target))
        out["parquet_bytes_per_ref"] = os.path.getsize(target) / n_refs
        out["parquet_read_s"], back = best_of(lambda: vc.read_manifest_parquet(target))
        assert back == result, "parquet round trip changed the manifest"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


def xarray_figures(arrays: list[vc.VirtualArray]) -> dict[str, float]:
    """``xr.Variable.concat`` and ``xr.concat`` of 1,000 virtual datasets through vzxarray."""
    import xarray as xr

    import vzxarray as vx

    named = arrays[0].metadata.evolve(dimension_names=("t", "y", "x"))
    datasets = [
        vx.dataset_from_group(vc.VirtualGroup(arrays={"tas": vc.VirtualArray(named, a.manifest)}))
        for a in arrays
    ]
    variables = [xr.Variable(("t", "y", "x"), vx.ManifestArray(a)) for a in arrays]
    out: dict[str, float] = {}
    out["xr_concat_axis0_s"], _ = best_of(partial(xr.Variable.concat, variables, dim="t"), repeat=1)
    out["xr_concat_datasets_s"], _ = best_of(partial(xr.concat, datasets, dim="t"))
    return out


def peer_figures(python: Path) -> dict[str, float] | None:
    proc = subprocess.run(
        [str(python), str(HERE / "peer_algebra.py")],
        capture_output=True,
        text=True,
        cwd=HERE,
        check=False,
    )
    if proc.returncode != 0:
        print(f"(VirtualiZarr run failed: {proc.stderr.strip().splitlines()[-1:]})")
        return None
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def find_peer_python(build: bool) -> Path | None:
    python = Path(os.environ.get("VZ_PEER_PYTHON", DEFAULT_PEER_PYTHON))
    if not python.exists() and build and PEER_SETUP.exists():
        done = subprocess.run(
            ["bash", str(PEER_SETUP)], capture_output=True, text=True, check=False
        )
        if done.returncode == 0:
            python = Path(done.stdout.strip().splitlines()[-1])
    return python if python.exists() else None


ROWS = [
    ("memory of the concatenated result (B/ref)", "bytes_per_ref", "bytes_per_ref_rss", 24.0),
    ("concat of 1,000 along axis 0 (s)", "concat_axis0_s", "concat_axis0_s", 0.1),
    ("  same through xr.Variable.concat (s)", "xr_concat_axis0_s", "xr_concat_axis0_s", None),
    (
        "xr.concat of 1,000 virtual datasets (s)",
        "xr_concat_datasets_s",
        "xr_concat_datasets_s",
        0.2,
    ),
    ("concat of 1,000 along axis 2 (s)", "concat_axis2_s", "concat_axis2_s", 0.25),
    ("rename_paths on the result (s)", "rename_s", "rename_s", 0.05),
    ("manifest parquet write (s)", "parquet_write_s", None, 2.0),
    ("manifest parquet read (s)", "parquet_read_s", None, 2.0),
    ("manifest parquet size (B/ref)", "parquet_bytes_per_ref", None, 4.0),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", action="store_true", help="build the peers' venv if absent")
    parser.add_argument("--no-peers", action="store_true", help="measure vz only")
    args = parser.parse_args()
    print(f"workload: {N_FILES} arrays of grid (1, 100, 100) -> 10,000,000 references")
    ours = vz_figures()
    python = None if args.no_peers else find_peer_python(args.peers)
    theirs = peer_figures(python) if python else None
    print(f"vz inputs built in {ours['build_inputs_s']:.2f} s")
    header = f"{'figure':46} {'vz':>10} {'VirtualiZarr':>13} {'ratio':>7} {'goal':>7}"
    print(header)
    print("-" * len(header))
    for label, our_key, their_key, goal in ROWS:
        ours_value = ours.get(our_key) if our_key else None
        their_value = theirs.get(their_key) if theirs and their_key else None
        ratio = f"{their_value / ours_value:6.1f}x" if ours_value and their_value else ""
        goal_text = f"<= {goal:g}" if goal is not None else ""
        print(
            f"{label:46} {_fmt(ours_value):>10} {_fmt(their_value):>13} {ratio:>7} {goal_text:>7}"
        )
    if theirs is None:
        print("(VirtualiZarr not measured: run with --peers to build its venv)")
    sys.stdout.flush()


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 100 else f"{value:.0f}"


if __name__ == "__main__":
    main()
