"""Laws of `vzcore.subchunk` and of selections that cut raw chunks.

The model: a dense numpy array stored raw in a real file, one chunk after another in
C order (edge chunks padded to their stored length, either byte order), some chunks
missing (read as the fill value). Every law that reads values compares them with it.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from properties.strategies import RAW_DTYPES, contiguous_requests, raw_chunkings

import vzcore as vc
from vzcore.array import chunk_selection

FILL = 7


@st.composite
def raw_arrays(draw: st.DrawFn, *, max_ndim: int = 3) -> tuple[vc.ArrayMetadata, np.ndarray, Any]:
    """``(metadata, model values, missing rows)`` of a raw array."""
    shape, chunks = draw(raw_chunkings(max_ndim=max_ndim))
    dtype = draw(st.sampled_from(RAW_DTYPES))
    meta = vc.ArrayMetadata.create(shape=shape, chunk_shape=chunks, dtype=dtype, fill_value=FILL)
    start = draw(st.integers(0, 50))
    values = (np.arange(math.prod(shape)) + start).astype(meta.dtype).reshape(shape)
    n_chunks = math.prod(meta.grid_shape)
    missing = draw(st.lists(st.integers(0, n_chunks - 1), max_size=2, unique=True))
    return meta, values, missing


@contextmanager
def stored(
    meta: vc.ArrayMetadata, values: np.ndarray, missing: list[int]
) -> Iterator[tuple[vc.VirtualArray, np.ndarray, vc.ObjectStoreRegistry]]:
    """The array written raw to a file: its `VirtualArray`, the values read back, a registry."""
    stored_dtype = meta.dtype.newbyteorder(">" if meta.endian == "big" else "<")
    expected = values.copy()
    blobs, rows = [], []
    for row, coords in enumerate(np.ndindex(*meta.grid_shape)):
        part = chunk_selection(meta.chunk_grid, meta.shape, coords)
        if row in missing:
            expected[part] = FILL
            rows.append(None)
            continue
        chunk = np.full(meta.chunk_grid.chunk_shape_at(coords), 99, dtype=stored_dtype)
        chunk[tuple(slice(0, s.stop - s.start) for s in part)] = values[part]
        rows.append(len(blobs))
        blobs.append(chunk.tobytes())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "raw.bin"
        path.write_bytes(b"head" + b"".join(blobs))
        starts = np.cumsum([4] + [len(b) for b in blobs])
        grid = meta.grid_shape
        paths = np.array(["" if r is None else path.as_uri() for r in rows], dtype=object)
        offsets = np.array([0 if r is None else starts[r] for r in rows], dtype=np.int64)
        lengths = np.array([0 if r is None else len(blobs[r]) for r in rows], dtype=np.int64)
        manifest = vc.ChunkManifest.from_arrays(
            paths=paths.reshape(grid), offsets=offsets.reshape(grid), lengths=lengths.reshape(grid)
        )
        yield vc.VirtualArray(meta, manifest), expected, vc.ObjectStoreRegistry.for_urls([path])


@settings(max_examples=40)
@given(data=st.data(), case=raw_arrays())
def test_subchunk_then_reading_is_identity_on_values(data: st.DataObject, case: Any) -> None:
    meta, values, missing = case
    request = data.draw(contiguous_requests(meta))
    with stored(meta, values, missing) as (array, expected, registry):
        np.testing.assert_array_equal(vc.read_array(array, registry), expected)
        pieces = vc.subchunk(array, request)
        np.testing.assert_array_equal(vc.read_array(pieces, registry), expected)
        assert pieces.shape == array.shape
        for axis, length in request.items():
            held = np.diff(pieces.metadata.chunk_grid.chunk_boundaries(pieces.shape, axis))
            assert held.max() <= length
        assert pieces.manifest.referenced_nbytes <= array.manifest.referenced_nbytes


@settings(max_examples=40)
@given(data=st.data(), case=raw_arrays())
def test_any_request_splits_right_or_is_refused(data: st.DataObject, case: Any) -> None:
    meta, values, missing = case
    lengths = data.draw(
        st.lists(st.none() | st.integers(1, 6), min_size=meta.ndim, max_size=meta.ndim)
    )
    with stored(meta, values, missing) as (array, expected, registry):
        try:
            pieces = vc.subchunk(array, lengths)
        except vc.SubchunkError as err:
            message = str(err)
        else:
            message = ""
            np.testing.assert_array_equal(vc.read_array(pieces, registry), expected)
        assert message == "" or "not be contiguous" in message


@given(data=st.data(), case=raw_arrays())
def test_subchunk_by_a_multiple_then_by_its_divisor_is_subchunk_by_the_divisor(
    data: st.DataObject, case: Any
) -> None:
    meta, values, missing = case
    last = data.draw(st.integers(0, meta.ndim - 1))
    request = data.draw(contiguous_requests(meta, last))
    divisor = request[last]
    multiple = divisor * data.draw(st.integers(1, 3))
    with stored(meta, values, missing) as (array, _, _):
        coarse = vc.subchunk(array, {**request, last: multiple})
        assert vc.subchunk(coarse, request) == vc.subchunk(array, request)


@settings(max_examples=30)
@given(data=st.data(), case=raw_arrays(max_ndim=2))
def test_subchunk_commutes_with_concat_along_another_axis(data: st.DataObject, case: Any) -> None:
    meta, values, missing = case
    if meta.ndim < 2:
        meta = meta.evolve(shape=(1, *meta.shape), chunk_grid=(1, *meta.chunk_grid.chunk_lengths))
        values, missing = values[None], []
    join = data.draw(st.integers(0, 1))
    split = 1 - join
    request = {split: data.draw(st.integers(1, 4))}
    if split == 1:
        request[0] = 1  # C order: the axis before a split one is cut to length 1
    grid = meta.chunk_grid
    bounds = grid.chunk_boundaries(meta.shape, join).tolist()
    # The first input ends on a chunk boundary (a partial chunk cannot come first).
    ends = bounds[1:-1] + ([bounds[-1]] if grid.is_aligned(meta.shape[join], join) else [])
    assume(ends)
    cut = data.draw(st.sampled_from(ends))
    with stored(meta, values, missing) as (array, _, _):
        left = [slice(None)] * 2
        left[join] = slice(0, cut)
        first = vc.select_chunks(array, left)
        joined = vc.concat([first, array], axis=join)
        split_then_join = vc.concat(
            [vc.subchunk(first, request), vc.subchunk(array, request)], axis=join
        )
        assert vc.subchunk(joined, request) == split_then_join


@settings(max_examples=40)
@given(data=st.data(), case=raw_arrays())
def test_cutting_selections_equal_numpy_slicing(data: st.DataObject, case: Any) -> None:
    meta, values, missing = case
    selection = []
    for length in meta.shape:
        start = data.draw(st.integers(0, length))
        selection.append(slice(start, data.draw(st.integers(start, length))))
    with stored(meta, values, missing) as (array, expected, registry):
        part = vc.select_slices(array, selection)
        assert part.shape == expected[tuple(selection)].shape
        np.testing.assert_array_equal(vc.read_array(part, registry), expected[tuple(selection)])
