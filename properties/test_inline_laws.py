"""Laws of inline chunks: the algebra moves them like references, writers keep their bytes.

A manifest row is a reference, an inline chunk (bytes) or missing. The model of a
manifest is a dense object array of those rows in grid shape; concat, stack,
select and broadcast must act on it as numpy acts on the dense array. Manifests
without inline chunks have no ``data`` column at all, so their tables are as before.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from obstore.store import LocalStore
from properties.strategies import URLS, chunk_grids, concat_cases, manifest_for

import vzcore as vc
from vzcore.manifest import MANIFEST_SCHEMA
from vzcore.parsers import KerchunkJSONParser, ManifestParquetParser
from vzcore.read import encode_fill_chunk
from vzcore.writers import write_kerchunk_json

# Odd sizes never decode as a chunk of 2-byte elements: no inline chunk can pass for
# vz's stand-in of a missing chunk (`_missing_chunks_fill` in the Kerchunk parser).
INLINE_BYTES = st.integers(0, 7).flatmap(
    lambda n: st.binary(min_size=2 * n + 1, max_size=2 * n + 1)
)


@st.composite
def with_inline(draw: st.DrawFn, manifest: vc.ChunkManifest) -> vc.ChunkManifest:
    """``manifest`` with some rows (any kind) replaced by inline chunks of random bytes."""
    n_chunks = manifest.n_chunks
    chosen = draw(st.lists(st.booleans(), min_size=n_chunks, max_size=n_chunks))
    dense_paths, dense_offsets, dense_lengths = manifest.to_arrays()
    paths = np.array(dense_paths, dtype=object)
    offsets, lengths = dense_offsets.copy(), dense_lengths.copy()
    data = np.full(manifest.grid, None, dtype=object)
    mask = np.array(chosen, dtype=bool).reshape(manifest.grid)
    data[mask] = [draw(INLINE_BYTES) for _ in range(int(mask.sum()))]
    paths[mask], offsets[mask], lengths[mask] = "", 0, 0
    return vc.ChunkManifest.from_arrays(paths=paths, offsets=offsets, lengths=lengths, data=data)


def dense(manifest: vc.ChunkManifest) -> npt.NDArray[Any]:
    """The model: each row as ``("ref", path, offset, length)``, ``("inline", bytes)`` or None."""
    rows = np.full(manifest.n_chunks, None, dtype=object)
    for row, entry in enumerate(_rows(manifest)):
        rows[row] = entry
    return rows.reshape(manifest.grid)


def _rows(manifest: vc.ChunkManifest) -> list[tuple[Any, ...] | None]:
    paths, offsets, lengths = (a.ravel().tolist() for a in manifest.to_arrays())
    data = manifest.inline_data
    inline = data.to_pylist() if data is not None else [None] * manifest.n_chunks
    return [
        ("inline", d) if d is not None else (("ref", p, o, n) if p else None)
        for p, o, n, d in zip(paths, offsets, lengths, inline, strict=True)
    ]


@settings(deadline=None)
@given(st.data())
def test_concat_moves_inline_rows_as_numpy_moves_elements(data: st.DataObject) -> None:
    arrays, axis = data.draw(concat_cases(max_ndim=3))
    arrays = [
        vc.VirtualArray(a.metadata, data.draw(with_inline(a.manifest)))
        if data.draw(st.booleans())
        else a
        for a in arrays
    ]
    joined = vc.concat(arrays, axis=axis)
    expected = np.concatenate([dense(a.manifest) for a in arrays], axis=axis)
    assert dense(joined.manifest).tolist() == expected.tolist()
    assert joined.manifest.n_inline == sum(a.manifest.n_inline for a in arrays)
    if all(a.manifest.inline_data is None for a in arrays):
        assert joined.manifest.table.schema.equals(MANIFEST_SCHEMA)


@settings(deadline=None)
@given(st.data())
def test_select_chunks_undoes_concat_with_inline_rows(data: st.DataObject) -> None:
    arrays, axis = data.draw(concat_cases(max_ndim=3))
    arrays = [vc.VirtualArray(a.metadata, data.draw(with_inline(a.manifest))) for a in arrays]
    joined = vc.concat(arrays, axis=axis)
    start = 0
    for array in arrays:
        window = [slice(None)] * array.ndim
        window[axis] = slice(start, start + array.shape[axis])
        start += array.shape[axis]
        piece = vc.select_chunks(joined, window)
        assert piece.manifest == array.manifest


@settings(deadline=None)
@given(st.data())
def test_stack_and_broadcast_repeat_inline_rows(data: st.DataObject) -> None:
    grid = data.draw(chunk_grids(max_ndim=2))
    manifest = data.draw(with_inline(data.draw(manifest_for(grid))))
    meta = vc.ArrayMetadata(
        shape=tuple(2 * g for g in grid), chunk_grid=(2,) * len(grid), dtype="<u2"
    )
    array = vc.VirtualArray(meta, manifest)
    stacked = vc.stack([array, array], axis=0)
    assert dense(stacked.manifest).tolist() == np.stack([dense(manifest)] * 2).tolist()
    expanded = vc.expand_dims(array, axis=0)
    repeated = vc.broadcast_to(expanded, (3, *array.shape))
    assert dense(repeated.manifest).tolist() == np.stack([dense(manifest)] * 3).tolist()


@settings(deadline=None)
@given(st.data())
def test_rename_paths_never_touches_inline_rows(data: st.DataObject) -> None:
    manifest = data.draw(with_inline(data.draw(manifest_for(data.draw(chunk_grids())))))
    renamed = vc.rename_paths(manifest, lambda path: path + ".moved")
    before, after = _rows(manifest), _rows(renamed)
    for old, new in zip(before, after, strict=True):
        if old is None or old[0] == "inline":
            assert new == old
        else:
            assert new == ("ref", old[1] + ".moved", old[2], old[3])


@settings(deadline=None)
@given(manifest=chunk_grids().flatmap(manifest_for))
def test_no_inline_data_no_column(manifest: vc.ChunkManifest) -> None:
    """Built any way without inline bytes, a manifest's table is the three columns of before."""
    paths, offsets, lengths = manifest.to_arrays()
    nones = np.full(manifest.grid, None, dtype=object)
    rebuilt = vc.ChunkManifest.from_arrays(
        paths=paths, offsets=offsets, lengths=lengths, data=nones
    )
    assert rebuilt.table.schema.equals(MANIFEST_SCHEMA)
    assert rebuilt == manifest
    assert (
        rebuilt.nbytes
        == vc.ChunkManifest.from_arrays(paths=paths, offsets=offsets, lengths=lengths).nbytes
    )


# ---- writers -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("inline-laws")


def _fresh(scratch: Path) -> tuple[Path, vc.ObjectStoreRegistry]:
    folder = Path(tempfile.mkdtemp(dir=scratch))
    return folder, vc.ObjectStoreRegistry({f"file://{folder}/": LocalStore(folder)})


@st.composite
def inline_arrays(draw: st.DrawFn) -> vc.VirtualArray:
    """Raw ``<u2`` arrays whose manifests mix references (absolute URLs), inline and missing."""
    grid = draw(chunk_grids(min_ndim=1, max_ndim=3))
    n_chunks = math.prod(grid)
    paths = draw(st.lists(st.sampled_from((*URLS, "")), min_size=n_chunks, max_size=n_chunks))
    offsets = draw(st.lists(st.integers(0, 2**40), min_size=n_chunks, max_size=n_chunks))
    lengths = draw(st.lists(st.integers(1, 2**20), min_size=n_chunks, max_size=n_chunks))
    plain = vc.ChunkManifest.from_arrays(
        paths=np.array(paths, dtype=object).reshape(grid),
        offsets=np.array(offsets, dtype=np.int64).reshape(grid),
        lengths=np.array(lengths, dtype=np.int64).reshape(grid),
    )
    meta = vc.ArrayMetadata(
        shape=tuple(2 * g for g in grid),
        chunk_grid=(2,) * len(grid),
        dtype="<u2",
        dimension_names=tuple(f"d{i}" for i in range(len(grid))),
    )
    return vc.VirtualArray(meta, draw(with_inline(plain)))


@settings(max_examples=25, deadline=None)
@given(array=inline_arrays())
def test_manifest_parquet_keeps_inline_bytes(scratch: Path, array: vc.VirtualArray) -> None:
    folder, registry = _fresh(scratch)
    group = vc.VirtualGroup(arrays={"v": array})
    written = vc.write_manifest_parquet(group, folder / "store")
    parsed = ManifestParquetParser()(f"file://{written}", registry)
    assert parsed == group


@settings(max_examples=25, deadline=None)
@given(array=inline_arrays())
def test_kerchunk_json_keeps_inline_bytes(scratch: Path, array: vc.VirtualArray) -> None:
    manifest = array.manifest
    # An array of inline chunks only is values, not references: it parses as a LoadedArray.
    assume(manifest.n_chunks - manifest.n_missing - manifest.n_inline > 0)
    folder, registry = _fresh(scratch)
    written = write_kerchunk_json(vc.VirtualGroup(arrays={"v": array}), folder / "refs.json")
    refs = json.loads(written.read_text())["refs"]
    assert sum(
        isinstance(v, str) and k.startswith("v/") and "/." not in k for k, v in refs.items()
    ) == (manifest.n_inline)
    parsed = KerchunkJSONParser()(f"file://{written}", registry).arrays["v"]
    assert isinstance(parsed, vc.VirtualArray)
    if parsed.manifest != manifest:
        _assert_read_as_missing_chunk_stand_ins(array, parsed)


def _assert_read_as_missing_chunk_stand_ins(
    array: vc.VirtualArray, parsed: vc.VirtualArray
) -> None:
    """The one way the manifest may change: inline chunks that look like the writer's
    stand-ins for missing chunks (one constant chunk, every chunk present) come back
    as missing chunks whose fill value is that constant, which reads the same values."""
    manifest = array.manifest
    inline = manifest.inline_mask()
    assert manifest.n_missing == 0
    assert parsed.manifest.n_inline == 0
    assert np.array_equal(parsed.manifest.missing_mask(), inline)
    kept = ~inline
    for got, want in zip(
        parsed.manifest.to_numpy_columns(), manifest.to_numpy_columns(), strict=True
    ):
        assert np.array_equal(got[kept], want[kept])
    chunks = set(manifest.inline_chunks(np.flatnonzero(inline)))
    assert chunks == {encode_fill_chunk(parsed.metadata)}
