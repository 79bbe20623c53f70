"""Figures of the writers on 10,000,000 references into 1,000 files (issue: saving).

to_kerchunk parquet and JSON, to_icechunk (local repository, commit included), and
KerchunkParquetParser of the written parquet store, each in a process of its own so
that its peak RSS is its own; VirtualiZarr 2.8's figures beside them when its venv
exists (``--no-peers`` to skip it; its parquet parse takes ~8 minutes and 9 GiB,
``--peer-skip-parse`` leaves that out).

    python benchmarks/writers.py [--no-peers] [--peer-skip-parse]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import vzcore as vc
from algebra import DEFAULT_PEER_PYTHON, HERE, build_inputs

WRITERS = ("parquet", "json", "icechunk", "parse")
CONTAINER = "s3://climate-archive-bucket/"


def build_group() -> vc.VirtualGroup:
    combined = vc.concat(build_inputs(), axis=0)
    metadata = combined.metadata.evolve(dimension_names=("time", "y", "x"))
    return vc.VirtualGroup(arrays={"tas": vc.VirtualArray(metadata, combined.manifest)})


def run_writer(name: str, folder: Path) -> dict[str, float]:
    """One writer on the group saved in ``folder`` (run in a child process of its own)."""
    from obstore.store import LocalStore

    from vzcore.parsers import KerchunkParquetParser
    from vzcore.writers import write_icechunk, write_kerchunk_json, write_kerchunk_parquet

    group = vc.read_manifest_parquet(folder / "group")
    out: dict[str, float] = {}
    start = time.perf_counter()
    if name == "parquet":
        write_kerchunk_parquet(group, folder / "refs.parq")
    elif name == "json":
        write_kerchunk_json(group, folder / "refs.json")
        out["json_mb"] = os.path.getsize(folder / "refs.json") / 1e6
    elif name == "icechunk":
        import icechunk

        config = icechunk.RepositoryConfig.default()
        config.set_virtual_chunk_container(
            icechunk.VirtualChunkContainer(CONTAINER, icechunk.s3_store(region="us-east-1"))
        )
        storage = icechunk.local_filesystem_storage(str(folder / "repo"))
        repo = icechunk.Repository.create(storage, config)
        start = time.perf_counter()
        session = repo.writable_session("main")
        write_icechunk(group, session.store)
        written = time.perf_counter()
        session.commit("references")
        # The two phases apart: vz's writer with Icechunk's set_virtual_refs_arr, and
        # the commit (Icechunk's Rust side: the manifest built, compressed, written).
        out["icechunk_write_s"] = written - start
        out["icechunk_commit_s"] = time.perf_counter() - written
    else:
        registry = vc.ObjectStoreRegistry({f"file://{folder}/": LocalStore(folder)})
        parsed = KerchunkParquetParser()(f"file://{folder}/refs.parq", registry)
        out[f"{name}_s"] = time.perf_counter() - start
        assert parsed["tas"].manifest == group["tas"].manifest  # type: ignore[union-attr]
    out.setdefault(f"{name}_s", time.perf_counter() - start)
    out[f"{name}_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return out


def vz_figures(folder: Path) -> dict[str, float]:
    vc.write_manifest_parquet(build_group(), folder / "group")
    out: dict[str, float] = {}
    for name in WRITERS:
        out.update(_child([sys.executable, __file__, "--child", name, str(folder)], name))
    return out


def peer_figures(skip_parse: bool) -> dict[str, float] | None:
    python = Path(os.environ.get("VZ_PEER_PYTHON", DEFAULT_PEER_PYTHON))
    if not python.exists():
        return None
    folder = Path(tempfile.mkdtemp(prefix="vz-peer-writers-"))
    out: dict[str, float] = {}
    try:
        for name in WRITERS[:-1] if skip_parse else WRITERS:
            command = [str(python), str(HERE / "peer_writers.py"), name, str(folder)]
            out.update(_child(command, f"VirtualiZarr {name}"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


def _child(command: list[str], what: str) -> dict[str, float]:
    proc = subprocess.run(command, capture_output=True, text=True, cwd=HERE, check=False)
    if proc.returncode != 0:
        print(f"({what} failed: {proc.stderr.strip().splitlines()[-1:]})")
        return {}
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


ROWS = [
    ("to_kerchunk parquet (s)", "parquet_s", "<= 5, >= 5x"),
    ("  peak RSS (GiB)", "parquet_rss_gib", ""),
    ("to_kerchunk JSON (s)", "json_s", "<= 5"),
    ("  peak RSS (GiB)", "json_rss_gib", ""),
    ("to_icechunk, local repo, commit included (s)", "icechunk_s", "<= 5"),
    ("  write_icechunk (set_virtual_refs_arr) (s)", "icechunk_write_s", ""),
    ("  session.commit (s)", "icechunk_commit_s", ""),
    ("  peak RSS (GiB)", "icechunk_rss_gib", ""),
    ("KerchunkParquetParser of the parquet store (s)", "parse_s", "<= 3"),
    ("  peak RSS (GiB)", "parse_rss_gib", ""),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--peer-skip-parse", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("WRITER", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, folder = args.child
        print(json.dumps(run_writer(name, Path(folder))))
        return
    folder = Path(tempfile.mkdtemp(prefix="vz-bench-writers-"))
    try:
        ours = vz_figures(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    theirs = None if args.no_peers else peer_figures(args.peer_skip_parse)
    print("10,000,000 references into 1,000 files; each writer in a process of its own")
    header = f"{'figure':48} {'vz':>9} {'VirtualiZarr':>13} {'ratio':>8} {'goal':>12}"
    print(header)
    print("-" * len(header))
    for label, key, goal in ROWS:
        mine, other = ours.get(key), (theirs or {}).get(key)
        ratio = f"{other / mine:7.1f}x" if mine and other else ""
        mine_text = f"{mine:9.2f}" if mine is not None else f"{'-':>9}"
        other_text = f"{other:.2f}" if other is not None else "-"
        print(f"{label:48} {mine_text} {other_text:>13} {ratio:>8} {goal:>12}")
    if "json_mb" in ours:
        print(f"(JSON file: {ours['json_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
