"""Writers and their parsers are inverse: write -> parse -> write gives the same references.

For random groups of virtual arrays (random grids, URLs, offsets, lengths, missing
chunks, fill values, zarr-v2-expressible codecs) and loaded arrays: Kerchunk JSON,
Kerchunk parquet (random record size) and the native manifest parquet layout.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from obstore.store import LocalStore
from properties.strategies import DTYPES, array_metadata, attributes, dimension_names

import vzcore as vc
from vzcore.parsers import KerchunkJSONParser, KerchunkParquetParser, ManifestParquetParser
from vzcore.writers import kerchunk_refs, write_kerchunk_json, write_kerchunk_parquet

URLS: tuple[str, ...] = (
    "file:///data/a.nc",
    "file:///data/sub/b.h5",
    "s3://bucket/key/c.nc",
    "https://example.org/d.nc?version=2",
    'file:///data/odd "name" with spaces é ü %2541 %3F.nc',
)
"""Absolute canonical URLs only (relative ones are resolved on parsing); one needs JSON
escaping and names a file ``... %41 ?.nc`` (literal in the references, as fsspec reads them)."""

NAMES = ("tas", "a", "x1", "lon")

# Offsets and lengths stay below 2**62 (Kerchunk stores int64), and lengths are at least 1:
# in fsspec's parquet layout offset 0 with size 0 means "the whole file".
OFFSETS = st.integers(min_value=0, max_value=2**62)
LENGTHS = st.one_of(st.integers(min_value=1, max_value=2**16), st.integers(1, 2**40))


@st.composite
def manifests(draw: st.DrawFn, grid: tuple[int, ...]) -> vc.ChunkManifest:
    """A manifest of ``grid``: random URLs (``""`` = missing), offsets and lengths."""
    n_chunks = math.prod(grid)
    paths = draw(st.lists(st.sampled_from((*URLS, "")), min_size=n_chunks, max_size=n_chunks))
    offsets = draw(st.lists(OFFSETS, min_size=n_chunks, max_size=n_chunks))
    lengths = draw(st.lists(LENGTHS, min_size=n_chunks, max_size=n_chunks))
    return vc.ChunkManifest.from_arrays(
        paths=np.array(paths, dtype=object).reshape(grid),
        offsets=np.array(offsets, dtype=np.int64).reshape(grid),
        lengths=np.array(lengths, dtype=np.int64).reshape(grid),
    )


@st.composite
def virtual_arrays(draw: st.DrawFn, *, cf_fill: bool = True) -> vc.VirtualArray:
    """Sometimes with the CF ``_FillValue`` attribute equal to the fill value, as parsers set it."""
    metadata = draw(array_metadata(max_ndim=3))
    if cf_fill and metadata.dtype.kind in "biuf" and draw(st.booleans()):
        fill = metadata.fill_value.item()
        metadata = metadata.evolve(attributes={**metadata.attributes, "_FillValue": fill})
    manifest = draw(manifests(metadata.grid_shape))
    if manifest.n_missing == manifest.n_chunks and "_FillValue" not in metadata.encoding:
        # Kerchunk writes such an array's chunks inline (the fill is material), and its
        # parser cannot tell them from loaded values: they come back as a LoadedArray
        # (tests/test_kerchunk_writer.py::test_an_array_without_references_reads_as_its_fill).
        metadata = metadata.evolve(fill_value=None)
    return vc.VirtualArray(metadata, manifest)


@st.composite
def loaded_arrays(draw: st.DrawFn) -> vc.LoadedArray:
    """In-memory values in one chunk (Kerchunk inlines them)."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=4))
    values = draw(hnp.arrays(dtype, shape))
    return vc.LoadedArray.from_numpy(
        values,
        dimension_names=draw(dimension_names(len(shape))),
        attributes=draw(attributes()),
    )


@st.composite
def groups(draw: st.DrawFn, *, loaded: bool = True, cf_fill: bool = True) -> vc.VirtualGroup:
    """1-3 arrays (mostly virtual), sometimes a subgroup holding one more."""
    virtual = virtual_arrays(cf_fill=cf_fill)
    array_strategy: st.SearchStrategy[vc.AnyArray] = virtual
    if loaded:
        array_strategy = st.one_of(virtual, virtual, loaded_arrays())
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
    subgroups = {}
    if draw(st.booleans()):
        subgroups["sub"] = vc.VirtualGroup(
            arrays={"inner": draw(array_strategy)}, attributes=draw(attributes())
        )
    return vc.VirtualGroup(
        arrays={name: draw(array_strategy) for name in names},
        groups=subgroups,
        attributes=draw(attributes()),
    )


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("writer-roundtrips")


def _fresh(scratch: Path) -> tuple[Path, vc.ObjectStoreRegistry]:
    folder = Path(tempfile.mkdtemp(dir=scratch))
    return folder, vc.ObjectStoreRegistry({f"file://{folder}/": LocalStore(folder)})


def _parquet_files(root: Path) -> dict[str, Any]:
    """Every file of a parquet reference folder: tables, and JSON documents."""
    contents: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        if path.is_dir():
            continue
        name = str(path.relative_to(root))
        if path.suffix in (".parq", ".parquet"):
            contents[name] = pq.read_table(path)
        else:
            contents[name] = json.loads(path.read_text())
    return contents


def _assert_same_files(first: dict[str, Any], second: dict[str, Any]) -> None:
    assert sorted(first) == sorted(second)
    for name, value in first.items():
        other = second[name]
        assert value.equals(other) if hasattr(value, "equals") else value == other, name


@settings(max_examples=25, deadline=None)
@given(group=groups())
def test_kerchunk_json_round_trips(scratch: Path, group: vc.VirtualGroup) -> None:
    folder, registry = _fresh(scratch)
    first = write_kerchunk_json(group, folder / "first.json")
    parsed = KerchunkJSONParser()(f"file://{first}", registry)
    second = write_kerchunk_json(parsed, folder / "second.json")
    assert json.loads(second.read_text()) == json.loads(first.read_text())
    assert kerchunk_refs(parsed) == kerchunk_refs(group)
    for path, array in group.walk_arrays():
        got = parsed[path]
        if isinstance(array, vc.VirtualArray):
            assert isinstance(got, vc.VirtualArray)
            assert got.manifest == array.manifest


@settings(max_examples=25, deadline=None)
@given(group=groups(), record_size=st.integers(min_value=1, max_value=12))
def test_kerchunk_parquet_round_trips(
    scratch: Path, group: vc.VirtualGroup, record_size: int
) -> None:
    folder, registry = _fresh(scratch)
    first = write_kerchunk_parquet(group, folder / "first.parq", record_size=record_size)
    parsed = KerchunkParquetParser()(f"file://{first}", registry)
    second = write_kerchunk_parquet(parsed, folder / "second.parq", record_size=record_size)
    _assert_same_files(_parquet_files(first), _parquet_files(second))
    assert kerchunk_refs(parsed) == kerchunk_refs(group)


@settings(max_examples=25, deadline=None)
@given(group=groups(loaded=False), record_size=st.integers(min_value=1, max_value=12))
def test_kerchunk_json_and_parquet_parse_alike(
    scratch: Path, group: vc.VirtualGroup, record_size: int
) -> None:
    folder, registry = _fresh(scratch)
    from_json = KerchunkJSONParser()(
        f"file://{write_kerchunk_json(group, folder / 'refs.json')}", registry
    )
    root = write_kerchunk_parquet(group, folder / "refs.parq", record_size=record_size)
    from_parquet = KerchunkParquetParser()(f"file://{root}", registry)
    for path, array in from_json.walk_arrays():
        other = from_parquet[path]
        assert isinstance(array, vc.VirtualArray)
        assert isinstance(other, vc.VirtualArray)
        assert other.manifest == array.manifest
        assert other.metadata == array.metadata


@settings(max_examples=25, deadline=None)
@given(group=groups(cf_fill=False))  # a NaN attribute never equals itself
def test_manifest_parquet_round_trips(scratch: Path, group: vc.VirtualGroup) -> None:
    folder, registry = _fresh(scratch)
    first = vc.write_manifest_parquet(group, folder / "first")
    parsed = ManifestParquetParser()(f"file://{first}", registry)
    assert parsed == group
    second = vc.write_manifest_parquet(parsed, folder / "second")
    _assert_same_files(_parquet_files(first), _parquet_files(second))
