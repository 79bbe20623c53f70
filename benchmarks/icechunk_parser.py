"""Parse time of `IcechunkParser` on an Icechunk repository of many chunk references.

Workload, written into a temporary folder: one array of 100,000 virtual chunks
(400 x 250 grid) over 100 files, written with ``set_virtual_refs_arr``, plus a
native zstd array of 1,000 chunks read as references into the repository
(``max_loaded_bytes=0``). Warm, best of 3; the references are checked against
what was written.

    python benchmarks/icechunk_parser.py [--chunks-per-axis 400 250]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import icechunk
import numpy as np
import zarr

import vzcore as vc
from _workload import best_of
from vzcore.parsers import IcechunkParser


def make_repository(folder: Path, grid: tuple[int, int], n_files: int) -> list[str]:
    """The repository at ``folder/repo``; returns the written locations in C order."""
    data = folder / "data"
    data.mkdir()
    for i in range(n_files):
        (data / f"f{i}.bin").write_bytes(bytes(16 * 1000))
    prefix = f"file://{data}/"
    config = icechunk.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        icechunk.VirtualChunkContainer(prefix, icechunk.local_filesystem_store(str(data)))
    )
    repository = icechunk.Repository.create(
        icechunk.local_filesystem_storage(str(folder / "repo")), config
    )
    n_chunks = grid[0] * grid[1]
    files = np.array([f"{prefix}f{i}.bin" for i in range(n_files)], dtype=object)
    locations: list[str] = files[np.arange(n_chunks) % n_files].tolist()
    session = repository.writable_session("main")
    root = zarr.open_group(session.store, mode="w")
    root.create_array(
        "virtual", shape=(grid[0] * 2, grid[1] * 2), chunks=(2, 2), dtype="u4", compressors=None
    )
    session.store.set_virtual_refs_arr(
        "virtual",
        list(grid),
        locations,
        (np.arange(n_chunks, dtype=np.uint64) % 1000) * 16,
        np.full(n_chunks, 16, dtype=np.uint64),
        validate_containers=False,
    )
    native = root.create_array("native", shape=(1000, 100), chunks=(1, 100), dtype="f8")
    native[...] = np.random.default_rng(0).standard_normal((1000, 100))  # chunks > 512 bytes
    session.commit("benchmark")
    return locations


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--chunks-per-axis", type=int, nargs=2, default=(400, 250))
    arguments.add_argument("--files", type=int, default=100)
    args = arguments.parse_args()
    icechunk.set_logs_filter("error")
    grid = (args.chunks_per_axis[0], args.chunks_per_axis[1])
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        locations = make_repository(folder, grid, args.files)
        registry = vc.ObjectStoreRegistry.for_urls([str(folder / "repo")])
        parser = IcechunkParser(max_loaded_bytes=0)
        seconds, group = best_of(lambda: parser(str(folder / "repo"), registry))
        assert isinstance(group, vc.VirtualGroup)
        manifest = group["virtual"].manifest  # type: ignore[union-attr]
        indices, _, _ = manifest.to_numpy_columns()
        assert manifest.dictionary.take(indices).to_pylist() == locations
        n_refs = manifest.n_chunks + group["native"].manifest.n_chunks  # type: ignore[union-attr]
        print(
            f"IcechunkParser: {n_refs} references ({manifest.n_chunks} virtual, 1000 native) "
            f"in {seconds:.3f} s ({n_refs / seconds / 1e6:.2f} M references/s)"
        )


if __name__ == "__main__":
    main()
