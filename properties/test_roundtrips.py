"""Round trips: manifests through arrays, entries and Arrow; metadata through zarr v3 and
v2 documents; arrays and groups through the manifest parquet layout."""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st
from properties.strategies import (
    MISSING,
    array_metadata,
    chunk_grids,
    chunk_manifests,
    dense_arrays,
    loaded_arrays,
    noncanonical_nans,
    virtual_arrays,
    virtual_groups,
)

import vzcore as vc

# A known bug's test stops at its first failing example instead of shrinking it.
_NO_SHRINKING = (Phase.explicit, Phase.reuse, Phase.generate)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory shared by all examples of a test; each example takes a fresh subdirectory."""
    return tmp_path_factory.mktemp("roundtrips")


def _fresh_dir(scratch: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=scratch))


# ---- manifests ---------------------------------------------------------------------------


@given(st.data())
def test_from_arrays_to_arrays(data: st.DataObject) -> None:
    grid = data.draw(chunk_grids())
    paths, offsets, lengths = data.draw(dense_arrays(grid))
    manifest = vc.ChunkManifest.from_arrays(paths=paths, offsets=offsets, lengths=lengths)
    assert manifest.grid == grid
    got_paths, got_offsets, got_lengths = manifest.to_arrays()
    present = paths != MISSING
    np.testing.assert_array_equal(got_paths, paths.astype(np.dtypes.StringDType()))
    # A missing chunk has no byte range: its offset and length read back as 0.
    np.testing.assert_array_equal(got_offsets, np.where(present, offsets, 0))
    np.testing.assert_array_equal(got_lengths, np.where(present, lengths, 0))
    assert got_offsets.dtype == got_lengths.dtype == np.uint64
    assert manifest.n_missing == int((~present).sum())


@given(chunk_manifests())
def test_to_arrays_from_arrays(manifest: vc.ChunkManifest) -> None:
    paths, offsets, lengths = manifest.to_arrays()
    assert vc.ChunkManifest.from_arrays(paths=paths, offsets=offsets, lengths=lengths) == manifest


@settings(phases=_NO_SHRINKING)
@given(chunk_manifests())
@example(
    vc.ChunkManifest.from_arrays(
        paths=np.array(["s3://bucket/x/y.nc"]),
        offsets=np.array([2**63], dtype=np.uint64),
        lengths=np.array([8], dtype=np.uint64),
    )
)
def test_to_entries_from_entries(manifest: vc.ChunkManifest) -> None:
    entries = manifest.to_entries()
    assert vc.ChunkManifest.from_entries(entries, grid=manifest.grid) == manifest


@given(chunk_manifests())
def test_to_entries_from_entries_below_2_63(manifest: vc.ChunkManifest) -> None:
    # The same law where every offset and length fits in an int64 (see the xfail above).
    offsets, lengths = manifest.to_arrays()[1:]
    small = vc.ChunkManifest.from_arrays(
        paths=manifest.to_arrays()[0], offsets=offsets >> np.uint64(1), lengths=lengths >> 1
    )
    entries = small.to_entries()
    assert len(entries) == small.n_chunks - small.n_missing
    assert vc.ChunkManifest.from_entries(entries, grid=small.grid) == small


@given(chunk_manifests())
def test_to_entries_lists_exactly_the_present_chunks(manifest: vc.ChunkManifest) -> None:
    paths, offsets, lengths = manifest.to_arrays()
    entries = manifest.to_entries()
    assert len(entries) == manifest.n_chunks - manifest.n_missing
    for key, entry in entries.items():
        index = tuple(int(i) for i in key.split(".")) if manifest.ndim else ()
        assert entry == {
            "path": paths[index],
            "offset": int(offsets[index]),
            "length": int(lengths[index]),
        }


@given(chunk_manifests())
def test_from_arrow_of_own_table(manifest: vc.ChunkManifest) -> None:
    assert vc.ChunkManifest.from_arrow(manifest.table, grid=manifest.grid) == manifest


@given(chunk_manifests(), st.lists(st.integers(0, 20), max_size=3))
def test_from_arrow_of_string_table_in_pieces(manifest: vc.ChunkManifest, cuts: list[int]) -> None:
    # A plain-string path column ("" for missing), in several record batches.
    paths, offsets, lengths = manifest.to_arrays()
    table = pa.table(
        {
            "path": pa.array(paths.ravel().tolist(), pa.string()),
            "offset": pa.array(offsets.ravel(), pa.uint64()),
            "length": pa.array(lengths.ravel(), pa.uint64()),
        }
    )
    bounds = sorted({0, table.num_rows, *(min(c, table.num_rows) for c in cuts)})
    pieces = pa.concat_tables(
        [table.slice(lo, hi - lo) for lo, hi in itertools.pairwise(bounds)] or [table]
    )
    rebuilt = vc.ChunkManifest.from_arrow(pieces, grid=manifest.grid)
    assert rebuilt == manifest
    assert rebuilt.table.schema.equals(manifest.table.schema)


# ---- metadata ----------------------------------------------------------------------------


@given(array_metadata())
def test_zarr_v3_round_trip(meta: vc.ArrayMetadata) -> None:
    document = meta.to_zarr_v3()
    assert vc.ArrayMetadata.from_zarr_v3(document) == meta
    # The document is plain JSON (NaN fill values as the string "NaN").
    assert vc.ArrayMetadata.from_zarr_v3(json.loads(json.dumps(document))) == meta


@given(array_metadata())
def test_zarr_accepts_the_v3_document(meta: vc.ArrayMetadata) -> None:
    from zarr.core.metadata.v3 import ArrayV3Metadata

    parsed = ArrayV3Metadata.from_dict(meta.to_zarr_v3())
    assert parsed.shape == meta.shape
    assert parsed.chunks == meta.chunk_shape
    assert vc.ArrayMetadata.from_zarr_v3(parsed) == meta


@given(array_metadata())
def test_zarr_v2_round_trip(meta: vc.ArrayMetadata) -> None:
    zarray, zattrs = meta.to_zarr_v2()
    assert vc.ArrayMetadata.from_zarr_v2(zarray, zattrs) == meta
    assert vc.ArrayMetadata.from_zarr_v2(json.loads(json.dumps(zarray)), zattrs) == meta


_NAN_BUG = (
    "a NaN fill value with the sign bit set or a payload (e.g. -np.nan) is kept bit for bit "
    'and compared bitwise, but zarr writes every NaN as "NaN", so from_zarr_v3/v2 and the '
    "parquet layout give back the canonical NaN and the metadata no longer compares equal; "
    "see metadata.py _to_fill_value (no NaN canonicalisation) and _same_scalar"
)


@settings(phases=_NO_SHRINKING)
@given(st.data())
def test_zarr_round_trips_of_any_nan_fill_value(data: st.DataObject) -> None:
    dtype = data.draw(st.sampled_from(["<f2", ">f2", "<f4", ">f4", "<f8", ">f8"]).map(np.dtype))
    fill = data.draw(noncanonical_nans(dtype))
    meta = vc.ArrayMetadata.create(shape=(4,), chunk_shape=(2,), dtype=dtype, fill_value=fill)
    assert np.isnan(meta.fill_value)
    assert vc.ArrayMetadata.from_zarr_v3(meta.to_zarr_v3()) == meta
    assert vc.ArrayMetadata.from_zarr_v2(*meta.to_zarr_v2()) == meta


@given(array_metadata())
def test_zarr_v2_keeps_the_stored_byte_order(meta: vc.ArrayMetadata) -> None:
    zarray, _ = meta.to_zarr_v2()
    stored = np.dtype(zarray["dtype"])
    assert stored.newbyteorder("=") == meta.dtype
    if meta.dtype.itemsize > 1:
        assert (stored.byteorder == ">") == (meta.endian == "big")


# ---- manifest parquet --------------------------------------------------------------------


@given(st.one_of(virtual_arrays(), loaded_arrays()))
def test_parquet_round_trip_of_arrays(
    scratch: Path, array: vc.VirtualArray | vc.LoadedArray
) -> None:
    path = vc.write_manifest_parquet(array, _fresh_dir(scratch) / "array.parquet")
    assert vc.read_manifest_parquet(path) == array


@given(virtual_groups())
def test_parquet_round_trip_of_groups(scratch: Path, group: vc.VirtualGroup) -> None:
    path = vc.write_manifest_parquet(group, _fresh_dir(scratch) / "store")
    assert vc.read_manifest_parquet(path) == group


@given(virtual_groups(max_depth=1), st.one_of(virtual_arrays(), virtual_groups(max_depth=1)))
def test_parquet_rewrite_replaces_what_was_there(
    scratch: Path, first: vc.VirtualGroup, second: vc.VirtualArray | vc.VirtualGroup
) -> None:
    target = _fresh_dir(scratch) / "store"
    vc.write_manifest_parquet(first, target)
    vc.write_manifest_parquet(second, target)
    assert vc.read_manifest_parquet(target) == second
    assert sorted(p.name for p in target.parent.iterdir()) == ["store"]


def _one_array() -> vc.VirtualArray:
    meta = vc.ArrayMetadata(shape=(2,), chunk_grid=(2,), dtype="i4")
    return vc.VirtualArray(meta, vc.ChunkManifest.empty((1,)))


@pytest.mark.parametrize(
    "group",
    [
        vc.VirtualGroup(arrays={"x": _one_array()}, groups={"x.parquet": vc.VirtualGroup()}),
        vc.VirtualGroup(groups={"vz-group.json": vc.VirtualGroup()}),
    ],
    ids=["array-and-group-file-names", "group-named-like-the-document"],
)
def test_every_valid_group_round_trips_or_is_refused_clearly(
    tmp_path: Path, group: vc.VirtualGroup
) -> None:
    try:
        path = vc.write_manifest_parquet(group, tmp_path / "store")
    except vc.VirtualizationError:
        return  # refusing such names up front, saying why, is as good as a round trip
    assert vc.read_manifest_parquet(path) == group
