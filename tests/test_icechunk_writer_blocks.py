"""`write_icechunk` with one checksum per file: each file's block of the grid, in place.

Files whose chunks are whole slabs along the first axis, back to back, are passed as
slices of the manifest's columns; other blocks (files side by side along an inner
axis, partial slabs, missing chunks) are scattered into their bounding box. Read
back with `IcechunkParser`, the manifest must be the one written either way.
"""

from __future__ import annotations

from pathlib import Path

import icechunk
import numpy as np
import pytest
from obstore.store import LocalStore

import vzcore as vc
from vzcore.group import SourceFingerprint
from vzcore.parsers import IcechunkParser
from vzcore.writers import icechunk as icechunk_module
from vzcore.writers import write_icechunk

PREFIX = "s3://bucket/"


def _group(layout: str) -> vc.VirtualGroup:
    grid = (6, 4, 3)
    n = int(np.prod(grid))
    rows = np.arange(n).reshape(grid)
    if layout == "slabs":  # two time steps a file: whole slabs, back to back
        file_of = rows // 12 // 2
    elif layout == "uneven":  # slab runs of different lengths, one a partial slab
        file_of = np.digitize(rows // 12, [1, 4]) + 3 * (rows > 62)
    elif layout == "inner":  # files side by side along the second axis
        file_of = np.broadcast_to(np.arange(4)[None, :, None], grid)
    else:  # interleaved along the last axis
        file_of = np.broadcast_to(np.arange(3)[None, None, :], grid)
    urls = np.array([f"{PREFIX}f{k}.nc" for k in range(int(file_of.max()) + 1)])
    paths = urls[file_of].astype(object)
    if layout in ("inner", "interleaved"):
        paths[(rows % 7) == 5] = ""  # missing chunks: no file's block is whole slabs
    offsets = np.where(paths != "", rows * 100 + 7, 0).astype(np.uint64)
    lengths = np.where(paths != "", rows + 1, 0).astype(np.uint64)
    manifest = vc.ChunkManifest.from_arrays(paths=paths, offsets=offsets, lengths=lengths)
    metadata = vc.ArrayMetadata(
        shape=(6, 8, 6),
        chunk_grid=(1, 2, 2),
        dtype="<f4",
        fill_value=0,
        dimension_names=("t", "y", "x"),
    )
    sources = {
        str(u): SourceFingerprint(size=1, last_modified=f"2026-01-0{k + 1}T00:00:00+00:00")
        for k, u in enumerate(urls)
    }
    return vc.VirtualGroup(arrays={"v": vc.VirtualArray(metadata, manifest)}, sources=sources)


@pytest.mark.parametrize("layout", ["slabs", "uneven", "inner", "interleaved"])
@pytest.mark.parametrize("slab_rows", [1, 12, 1 << 16])
def test_each_files_block_is_written_in_place(
    layout: str, slab_rows: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(icechunk_module, "_SLAB_ROWS", slab_rows)
    calls: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    original = icechunk_module._set_block

    def spy(store, path, shape, locations, offsets, lengths, start, checksum):  # type: ignore[no-untyped-def]
        calls.append((shape, start))
        original(store, path, shape, locations, offsets, lengths, start, checksum)

    monkeypatch.setattr(icechunk_module, "_set_block", spy)
    group = _group(layout)
    config = icechunk.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        icechunk.VirtualChunkContainer(PREFIX, icechunk.s3_store(region="us-east-1"))
    )
    where = tmp_path / "repo"
    repository = icechunk.Repository.create(icechunk.local_filesystem_storage(str(where)), config)
    session = repository.writable_session("main")
    write_icechunk(group, session.store)
    session.commit("blocks")
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    parsed = IcechunkParser()(f"file://{where}", registry)
    assert parsed["v"].manifest == group["v"].manifest  # type: ignore[union-attr]
    if layout == "slabs" and slab_rows == 1 << 16:
        # One call per file, over its two slabs exactly.
        assert calls == [((2, 4, 3), (2 * k, 0, 0)) for k in range(3)]


def test_slab_runs() -> None:
    run = icechunk_module._slab_run
    assert run(np.arange(12, 36), 12) == (1, 2)
    assert run(np.arange(13, 37), 12) is None  # not at a slab's start
    assert run(np.arange(12, 30), 12) is None  # a partial slab
    assert run(np.delete(np.arange(12, 37), 3), 12) is None  # a gap
    assert run(np.arange(0), 12) is None
    assert run(np.arange(3), 0) is None  # a 0-d grid
