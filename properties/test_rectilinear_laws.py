"""Laws of rectilinear chunk grids: split/concat, associativity, selection, round trips.

The model: a dense numpy array stored raw, one contiguous run of bytes per chunk, in
a real file; every law that reads values compares them with the model.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.cf_corpus import icechunk_repository

import vzcore as vc
from vzcore.manifest_layout import array_to_table, table_to_array
from vzcore.read import rectilinear_chunks_enabled

edges_strategy = st.lists(st.integers(1, 5), min_size=1, max_size=6)


def _virtual(edges: Sequence[int], width: int, path: str, first_offset: int = 0) -> vc.VirtualArray:
    """An (sum(edges), width) int32 array whose chunk k has ``edges[k]`` rows, raw, back to back."""
    meta = vc.ArrayMetadata.create(
        shape=(sum(edges), width), chunk_shape=[list(edges), width], dtype="<i4"
    )
    lengths = np.asarray(edges, dtype=np.int64) * width * 4
    offsets = first_offset + np.concatenate([[0], np.cumsum(lengths)[:-1]])
    manifest = vc.ChunkManifest.from_arrays(
        paths=np.full((len(edges), 1), path, dtype=object),
        offsets=offsets.reshape(-1, 1),
        lengths=lengths.reshape(-1, 1),
    )
    return vc.VirtualArray(meta, manifest)


@given(edges=edges_strategy, cuts=st.lists(st.integers(0, 6), max_size=4), width=st.integers(1, 3))
def test_split_at_chunk_boundaries_then_concat_is_identity(
    edges: list[int], cuts: list[int], width: int
) -> None:
    array = _virtual(edges, width, "file:///model.bin")
    bounds = array.metadata.chunk_grid.chunk_boundaries(array.shape, 0).tolist()
    points = sorted({bounds[min(c, len(bounds) - 1)] for c in cuts} | {0, array.shape[0]})
    pieces = [
        vc.select_chunks(array, [slice(a, b), slice(None)]) for a, b in itertools.pairwise(points)
    ]
    assert vc.concat(pieces, axis=0) == array


@given(parts=st.lists(edges_strategy, min_size=3, max_size=3), width=st.integers(1, 3))
def test_concat_is_associative(parts: list[list[int]], width: int) -> None:
    a, b, c = (_virtual(e, width, f"file:///{i}.bin") for i, e in enumerate(parts))
    left = vc.concat([vc.concat([a, b], axis=0), c], axis=0)
    right = vc.concat([a, vc.concat([b, c], axis=0)], axis=0)
    assert left == right == vc.concat([a, b, c], axis=0)
    assert (
        left.metadata.chunk_grid
        == vc.ArrayMetadata.create(
            shape=left.shape, chunk_shape=[[*parts[0], *parts[1], *parts[2]], width], dtype="<i4"
        ).chunk_grid
    )


@given(first=edges_strategy, second=edges_strategy, width=st.integers(1, 3))
def test_select_chunks_undoes_concat(first: list[int], second: list[int], width: int) -> None:
    a, b = _virtual(first, width, "file:///a.bin"), _virtual(second, width, "file:///b.bin")
    joined = vc.concat([a, b], axis=0)
    assert vc.select_chunks(joined, [slice(0, a.shape[0]), slice(None)]) == a
    assert vc.select_chunks(joined, [slice(a.shape[0], None), slice(None)]) == b


@given(edges=edges_strategy, width=st.integers(1, 3))
def test_a_grid_is_regular_exactly_when_its_chunks_share_a_length(
    edges: list[int], width: int
) -> None:
    meta = _virtual(edges, width, "file:///m.bin").metadata
    assert meta.is_regular == (len(set(edges)) == 1)
    assert meta.chunk_grid.axis_lengths(meta.shape, 0).tolist() == edges
    assert vc.ArrayMetadata.from_zarr_v3(meta.to_zarr_v3()) == meta


@given(edges=edges_strategy, width=st.integers(1, 3))
def test_manifest_parquet_table_round_trip(edges: list[int], width: int) -> None:
    array = _virtual(edges, width, "file:///m.bin")
    table = pa.table(array_to_table(array))
    assert table_to_array(table, where="memory") == array


@settings(max_examples=15)
@given(parts=st.lists(edges_strategy, min_size=1, max_size=3), width=st.integers(1, 3))
def test_values_read_back_through_read_array_manifest_store_and_icechunk(
    parts: list[list[int]], width: int
) -> None:
    import zarr

    with tempfile.TemporaryDirectory() as folder:
        arrays, models = [], []
        start = 0
        for index, edges in enumerate(parts):
            values = np.arange(start, start + sum(edges) * width, dtype="<i4").reshape(-1, width)
            start += values.size
            path = Path(folder) / f"{index}.bin"
            path.write_bytes(values.tobytes())  # chunks back to back in C order: the rows
            arrays.append(_virtual(edges, width, path.as_uri()))
            models.append(values)
        joined = vc.concat(arrays, axis=0)
        model = np.concatenate(models)
        registry = vc.ObjectStoreRegistry.for_urls([str(Path(folder) / "0.bin")])
        np.testing.assert_array_equal(vc.read_array(joined, registry), model)
        group = vc.VirtualGroup(arrays={"v": joined})
        with rectilinear_chunks_enabled():
            served = zarr.open_array(vc.ManifestStore(group, registry=registry), path="v")
            np.testing.assert_array_equal(served[...], model)
        repository = icechunk_repository(Path(folder))
        session = repository.writable_session("main")
        from vzcore.writers import write_icechunk

        write_icechunk(group, session.store)
        session.commit("law")
        with rectilinear_chunks_enabled():
            stored = zarr.open_array(repository.readonly_session("main").store, path="v", mode="r")
            np.testing.assert_array_equal(stored[...], model)
