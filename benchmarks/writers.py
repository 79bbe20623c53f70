"""Figures of the writers on 10,000,000 references into 1,000 files (issue: saving).

to_kerchunk parquet and JSON, to_icechunk (local repository, commit included), and
KerchunkParquetParser of the written parquet store; VirtualiZarr 2.8's figures beside
them when its venv exists (``--no-peers`` to skip it; its parquet parse takes ~8
minutes and 9 GiB, ``--peer-skip-parse`` leaves that out).

    python benchmarks/writers.py [--no-peers] [--peer-skip-parse]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import icechunk
from obstore.store import LocalStore

import vzcore as vc
from algebra import DEFAULT_PEER_PYTHON, HERE, build_inputs
from vzcore.parsers import KerchunkParquetParser
from vzcore.writers import write_icechunk, write_kerchunk_json, write_kerchunk_parquet


def build_group() -> vc.VirtualGroup:
    combined = vc.concat(build_inputs(), axis=0)
    metadata = combined.metadata.evolve(dimension_names=("time", "y", "x"))
    return vc.VirtualGroup(arrays={"tas": vc.VirtualArray(metadata, combined.manifest)})


def vz_figures(folder: Path) -> dict[str, float]:
    group = build_group()
    out: dict[str, float] = {}
    start = time.perf_counter()
    write_kerchunk_parquet(group, folder / "refs.parq")
    out["parquet_s"] = time.perf_counter() - start
    start = time.perf_counter()
    write_kerchunk_json(group, folder / "refs.json")
    out["json_s"] = time.perf_counter() - start
    out["json_mb"] = os.path.getsize(folder / "refs.json") / 1e6
    config = icechunk.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        icechunk.VirtualChunkContainer(
            "s3://climate-archive-bucket/", icechunk.s3_store(region="us-east-1")
        )
    )
    repo = icechunk.Repository.create(
        icechunk.local_filesystem_storage(str(folder / "repo")), config
    )
    start = time.perf_counter()
    session = repo.writable_session("main")
    write_icechunk(group, session.store)
    session.commit("references")
    out["icechunk_s"] = time.perf_counter() - start
    registry = vc.ObjectStoreRegistry({f"file://{folder}/": LocalStore(folder)})
    start = time.perf_counter()
    parsed = KerchunkParquetParser()(f"file://{folder}/refs.parq", registry)
    out["parquet_parse_s"] = time.perf_counter() - start
    assert parsed["tas"].manifest == group["tas"].manifest  # type: ignore[union-attr]
    return out


def peer_figures(skip_parse: bool) -> dict[str, float] | None:
    python = Path(os.environ.get("VZ_PEER_PYTHON", DEFAULT_PEER_PYTHON))
    if not python.exists():
        return None
    command = [str(python), str(HERE / "peer_writers.py")] + (
        ["--skip-parse"] if skip_parse else []
    )
    proc = subprocess.run(command, capture_output=True, text=True, cwd=HERE, check=False)
    if proc.returncode != 0:
        print(f"(VirtualiZarr run failed: {proc.stderr.strip().splitlines()[-1:]})")
        return None
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


ROWS = [
    ("to_kerchunk parquet (s)", "parquet_s", "<= 5, >= 5x"),
    ("to_kerchunk JSON (s)", "json_s", ">= 2x"),
    ("to_icechunk, local repo, commit included (s)", "icechunk_s", "<= VZ"),
    ("KerchunkParquetParser of the parquet store (s)", "parquet_parse_s", "<= 3"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--peer-skip-parse", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="vz-bench-writers-"))
    try:
        ours = vz_figures(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    theirs = None if args.no_peers else peer_figures(args.peer_skip_parse)
    print("10,000,000 references into 1,000 files")
    header = f"{'figure':48} {'vz':>9} {'VirtualiZarr':>13} {'ratio':>8} {'goal':>12}"
    print(header)
    print("-" * len(header))
    for label, key, goal in ROWS:
        mine, other = ours.get(key), (theirs or {}).get(key)
        ratio = f"{other / mine:7.1f}x" if mine and other else ""
        other_text = f"{other:.2f}" if other is not None else "-"
        print(f"{label:48} {mine:9.2f} {other_text:>13} {ratio:>8} {goal:>12}")
    print(f"(JSON file: {ours['json_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
