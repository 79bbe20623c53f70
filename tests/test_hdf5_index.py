"""The HDF5 chunk index read directly (`vzcore.parsers.hdf5_index`) equals h5py's ``chunk_iter``.

Every index type h5py writes (version 1 B-tree, fixed array, paged fixed array, single
chunk, implicit; extensible arrays and version 2 B-trees through whichever path reads
them), over shapes of 1 to 4 axes, partially written datasets (missing chunks),
big-endian types, filters on and off, and trees of thousands of chunks (internal
nodes), gives the same chunks, offsets, sizes and filter masks both ways, and the same
manifest through `HDFParser` locally and through an in-memory object store. Corrupt
index nodes give a typed error naming the file and the variable.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import h5py
import netCDF4
import numpy as np
import obstore
import pytest
import zarr
from obstore.store import MemoryStore
from tests.hdf5_corpus import CORPUS, write_lzf_skipped_chunks

import vzcore as vc
from vzcore.byteranges import source
from vzcore.parsers import HDFParser
from vzcore.parsers.hdf5 import HDF5IndexError, HDF5UnsupportedError
from vzcore.parsers.hdf5_checksum import lookup3
from vzcore.parsers.hdf5_index import ChunkLocations, chunk_iter_locations, chunk_locations
from vzcore.parsers.hdf5_layout import FileShape, chunk_layout

INDEX_NAMES = {
    0: "v1 B-tree",
    1: "single chunk",
    2: "implicit",
    3: "fixed array",
    4: "extensible array",
    5: "v2 B-tree",
}


@attrs.frozen(kw_only=True)
class Case:
    """One dataset: its shape, chunks, growth, type, filters and which chunks are written."""

    name: str
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    maxshape: tuple[int | None, ...] | None = None
    dtype: str = "<f4"
    latest: bool = False
    filters: dict[str, Any] = attrs.field(factory=dict)
    fill: str = "all"  # "all", "part" (some chunks never written), "ends" (first and last), "none"
    early: bool = False  # allocation time early (with latest and no filters: implicit)


CASES = [
    # version 1 B-tree (the default, netCDF-4's): up to 4 axes, trees with internal nodes
    Case(name="v1_1d", shape=(100,), chunks=(7,)),
    Case(name="v1_2d_be", shape=(30, 20), chunks=(4, 6), dtype=">i8"),
    Case(name="v1_3d_gzip", shape=(9, 10, 11), chunks=(2, 3, 4), filters={"compression": "gzip"}),
    Case(name="v1_4d", shape=(6, 5, 4, 7), chunks=(2, 2, 3, 2), filters={"shuffle": True}),
    Case(name="v1_part", shape=(300, 40), chunks=(2, 10), fill="part", dtype=">f8"),
    Case(name="v1_unwritten", shape=(30, 40), chunks=(2, 10), fill="none"),
    Case(name="v1_deep", shape=(20_000,), chunks=(2,), filters={"compression": "gzip"}),
    Case(name="v1_unlimited", shape=(50, 6), chunks=(4, 4), maxshape=(None, 6)),
    # fixed array: unpaged, paged (more than 1024 chunks), partly written, bigger maxshape
    Case(name="fa_small", shape=(10, 10), chunks=(3, 3), latest=True),
    Case(name="fa_paged", shape=(3000, 10), chunks=(1, 5), latest=True, dtype=">u2"),
    Case(name="fa_paged_part", shape=(3000, 10), chunks=(1, 5), latest=True, fill="part"),
    Case(name="fa_paged_ends", shape=(3000, 10), chunks=(1, 5), latest=True, fill="ends"),
    Case(name="fa_max", shape=(20, 10), chunks=(3, 3), maxshape=(40, 10), latest=True),
    Case(name="fa_4d", shape=(6, 5, 4, 7), chunks=(2, 2, 3, 2), latest=True),
    Case(
        name="fa_gzip",
        shape=(3000, 10),
        chunks=(1, 5),
        latest=True,
        fill="part",
        filters={"compression": "gzip"},
    ),
    # single chunk, implicit
    Case(name="single", shape=(10, 12), chunks=(10, 12), latest=True),
    Case(name="single_unwritten", shape=(10, 12), chunks=(10, 12), latest=True, fill="none"),
    Case(
        name="single_gzip",
        shape=(10, 12),
        chunks=(10, 12),
        latest=True,
        filters={"compression": "gzip"},
    ),
    Case(name="implicit", shape=(10, 10), chunks=(3, 3), latest=True, early=True),
    Case(
        name="implicit_max",
        shape=(10, 10),
        chunks=(3, 3),
        maxshape=(20, 10),
        latest=True,
        early=True,
    ),
    # extensible array (one unlimited axis), version 2 B-tree (more than one)
    Case(name="ea", shape=(50, 6), chunks=(4, 4), maxshape=(None, 6), latest=True),
    Case(
        name="ea_big", shape=(5000, 4), chunks=(1, 4), maxshape=(None, 4), latest=True, fill="part"
    ),
    Case(name="ea_inner", shape=(6, 50), chunks=(4, 4), maxshape=(6, None), latest=True),
    Case(name="ea_max", shape=(50, 6), chunks=(4, 4), maxshape=(None, 10), latest=True),
    Case(name="ea_3d", shape=(5, 30, 7), chunks=(2, 4, 3), maxshape=(5, None, 9), latest=True),
    Case(name="ea_paged", shape=(150_000,), chunks=(1,), maxshape=(None,), latest=True),
    Case(
        name="ea_paged_ends",
        shape=(150_000,),
        chunks=(1,),
        maxshape=(None,),
        latest=True,
        fill="ends",
        dtype="u1",
    ),
    Case(
        name="bt2_deep",
        shape=(300, 300),
        chunks=(2, 3),
        maxshape=(None, None),
        latest=True,
        fill="part",
        dtype=">i2",
    ),
    Case(
        name="bt2_3d", shape=(30, 20, 10), chunks=(2, 3, 4), maxshape=(None, None, 10), latest=True
    ),
    Case(name="bt2", shape=(30, 20), chunks=(4, 6), maxshape=(None, None), latest=True),
    Case(
        name="bt2_big",
        shape=(200, 100),
        chunks=(2, 2),
        maxshape=(None, None),
        latest=True,
        fill="part",
        filters={"compression": "gzip"},
    ),
]


def write_case(path: Path, case: Case) -> None:
    """A file holding the dataset ``case.name`` as ``case`` describes it."""
    values = np.arange(int(np.prod(case.shape)), dtype=np.float64).reshape(case.shape)
    values = values.astype(case.dtype)
    with h5py.File(path, "w", libver="latest" if case.latest else "earliest") as f:
        if case.early:
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_chunk(case.chunks)
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            maxshape = tuple(
                h5py.h5s.UNLIMITED if m is None else m for m in case.maxshape or case.shape
            )
            space = h5py.h5s.create_simple(case.shape, maxshape)
            dsid = h5py.h5d.create(
                f.id, case.name.encode(), h5py.h5t.py_create(values.dtype), space, dcpl=dcpl
            )
            dataset = h5py.Dataset(dsid)
        else:
            dataset = f.create_dataset(
                case.name,
                shape=case.shape,
                dtype=values.dtype,
                chunks=case.chunks,
                maxshape=case.maxshape,
                **case.filters,
            )
        if case.fill == "all":
            dataset[...] = values
        elif case.fill == "ends":
            step = case.chunks[0]
            dataset[:step] = values[:step]
            dataset[-step:] = values[-step:]
        elif case.fill == "part":
            # Every third run of leading-axis steps, so whole chunks stay unwritten.
            step = case.chunks[0]
            for start in range(0, case.shape[0], 3 * step):
                dataset[start : start + step] = values[start : start + step]


def _sorted(found: ChunkLocations, grid: tuple[int, ...]) -> list[np.ndarray[Any, Any]]:
    rows = np.ravel_multi_index(tuple(found.coords.T), grid) if grid else np.zeros(0, int)
    order = np.argsort(rows, kind="stable")
    return [rows[order], found.offsets[order], found.sizes[order], found.filter_masks[order]]


def assert_same_locations(a: ChunkLocations, b: ChunkLocations, grid: tuple[int, ...]) -> None:
    for mine, theirs, what in zip(
        _sorted(a, grid), _sorted(b, grid), ("chunks", "offsets", "sizes", "masks"), strict=True
    ):
        np.testing.assert_array_equal(mine, theirs, err_msg=what)


def direct(path: Path, name: str) -> tuple[ChunkLocations | None, ChunkLocations, int | None]:
    """(the index read directly, h5py's chunk_iter, the index type) of dataset ``name``."""
    registry = vc.ObjectStoreRegistry.for_urls([f"file://{path}"])
    file = source(registry, f"file://{path}")
    with h5py.File(path, "r") as f:
        dataset = f[name]
        sizes = f.id.get_create_plist().get_sizes()
        layout = chunk_layout(dataset, file, FileShape(*sizes, path.stat().st_size), name)
        found = chunk_locations(dataset, file, path.stat().st_size, f"{path}: {name}")
        return found, chunk_iter_locations(dataset), None if layout is None else layout.index_type


def manifests(group: vc.VirtualGroup) -> dict[str, Any]:
    return {
        name: array.manifest
        for name, array in group.walk_arrays()
        if isinstance(array, vc.VirtualArray)
    }


# Index types read directly; the others are listed by h5py, and must still come out equal.
DIRECT = {0, 1, 2, 3, 4, 5}

CHUNK_ITER_WRONG = {
    "ea_inner": "h5py's chunk_iter (HDF5 2.0) gives an extensible array whose unlimited axis "
    "is not the first chunk offsets outside the array; vz raised on such files before",
    "ea_3d": "the same HDF5 bug",
}
"""Cases where h5py's listing is wrong: the direct index is checked by the values read back."""


@pytest.fixture(scope="module")
def case_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hdf5-index")
    paths = {}
    for case in CASES:
        paths[case.name] = folder / f"{case.name}.h5"
        write_case(paths[case.name], case)
    return paths


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_direct_index_equals_chunk_iter(case_files: dict[str, Path], case: Case) -> None:
    path = case_files[case.name]
    found, iterated, index_type = direct(path, case.name)
    with h5py.File(path) as f:
        dataset = f[case.name]
        grid = tuple(-(-s // c) for s, c in zip(dataset.shape, case.chunks, strict=True))
    # Filtered datasets of libver="latest" files have a version 5 layout message (HDF5 2.0).
    if index_type in DIRECT and not (case.filters and case.latest):
        assert found is not None, f"{INDEX_NAMES[index_type]} fell back to chunk_iter"
    if case.fill in ("part", "ends"):
        assert 0 < len(iterated.offsets) < int(np.prod(grid))
    if case.name in CHUNK_ITER_WRONG:
        assert found is not None
        assert len(found.offsets) == len(iterated.offsets)
        return
    if found is not None:
        assert_same_locations(found, iterated, grid)
    registry = vc.ObjectStoreRegistry.for_urls([f"file://{path}"])
    url = f"file://{path}"
    assert manifests(HDFParser()(url, registry)) == manifests(
        HDFParser(direct_index=False)(url, registry)
    )


def test_index_types_are_the_expected_ones(case_files: dict[str, Path]) -> None:
    """The corpus above really holds every index type (so the differential test covers them)."""
    seen = {direct(path, name)[2] for name, path in case_files.items()}
    assert {0, 1, 2, 3, 4, 5} <= seen


def test_deep_tree_has_internal_nodes(case_files: dict[str, Path]) -> None:
    """10,000 chunks in a version 1 B-tree of 64-entry nodes: at least two levels."""
    path = case_files["v1_deep"]
    registry = vc.ObjectStoreRegistry.for_urls([f"file://{path}"])
    file = source(registry, f"file://{path}")
    with h5py.File(path) as f:
        layout = chunk_layout(f["v1_deep"], file, FileShape(8, 8, path.stat().st_size), "v1_deep")
        assert layout is not None
    root = path.read_bytes()[layout.address : layout.address + 8]
    assert root[:4] == b"TREE"
    assert root[5] >= 1  # the root's level: not a leaf


def test_v2_btree_has_internal_nodes(case_files: dict[str, Path]) -> None:
    """5,000 records in 2 KiB nodes: the version 2 B-tree has a depth of at least 1."""
    path = case_files["bt2_deep"]
    registry = vc.ObjectStoreRegistry.for_urls([f"file://{path}"])
    file = source(registry, f"file://{path}")
    with h5py.File(path) as f:
        layout = chunk_layout(f["bt2_deep"], file, FileShape(8, 8, path.stat().st_size), "")
        assert layout is not None
    header = path.read_bytes()[layout.address : layout.address + 16]
    assert header[:4] == b"BTHD"
    assert int.from_bytes(header[12:14], "little") >= 1


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_manifests_equal(tmp_path: Path, name: str) -> None:
    corpus_file = CORPUS[name]
    path = tmp_path / name
    corpus_file.build(path)
    registry = vc.ObjectStoreRegistry.for_urls([f"file://{tmp_path}/x"])
    parser = corpus_file.parser()
    url = f"file://{path}"
    ours = parser(url, registry)
    theirs = attrs.evolve(parser, direct_index=False)(url, registry)
    assert manifests(ours) == manifests(theirs)
    assert ours == theirs


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_values_read_back(case_files: dict[str, Path], case: Case) -> None:
    """Chunks found directly decode to h5py's values, missing chunks to the fill value."""
    path = case_files[case.name]
    registry = vc.ObjectStoreRegistry.for_urls([f"file://{path}"])
    group = HDFParser()(f"file://{path}", registry)
    store = vc.ManifestStore(group, registry=registry)
    array = zarr.open_array(store, path=case.name, mode="r")
    # Big arrays: their two ends (the first and the last blocks of the index), not all.
    steps = 300 if np.prod(case.shape) > 5_000 else case.shape[0]
    with h5py.File(path) as f:
        for part in (slice(0, steps), slice(-steps, None)):
            np.testing.assert_array_equal(array[part], f[case.name][part])


def test_netcdf4_file_reads_directly(tmp_path: Path) -> None:
    path = tmp_path / "nc.nc"
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("t", None)
        ds.createDimension("x", 50)
        var = ds.createVariable("v", "f4", ("t", "x"), zlib=True, chunksizes=(1, 10))
        var[:300] = np.arange(300 * 50, dtype="f4").reshape(300, 50)
    found, iterated, index_type = direct(path, "v")
    assert index_type == 0
    assert found is not None
    assert_same_locations(found, iterated, (300, 5))


def test_remote_store_equals_local(case_files: dict[str, Path]) -> None:
    """Through an in-memory object store the nodes come through the byte-range layer."""
    store = MemoryStore()
    remote = vc.ObjectStoreRegistry({"memory://bucket/": store})
    for name, path in case_files.items():
        local = vc.ObjectStoreRegistry.for_urls([f"file://{path}"])
        obstore.put(store, path.name, path.read_bytes())
        got = HDFParser()(f"memory://bucket/{path.name}", remote)
        want = HDFParser()(f"file://{path}", local)
        renamed = vc.rename_paths(got, {f"memory://bucket/{path.name}": f"file://{path}"})
        assert manifests(renamed) == manifests(want), name


def test_user_block_falls_back(tmp_path: Path) -> None:
    path = tmp_path / "ub.h5"
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset("v", data=np.arange(100.0), chunks=(7,))
    found, iterated, _ = direct(path, "v")
    assert found is None
    registry = vc.ObjectStoreRegistry.for_urls([f"file://{path}"])
    got = HDFParser()(f"file://{path}", registry)
    assert manifests(got) == manifests(HDFParser(direct_index=False)(f"file://{path}", registry))
    assert got["v"].manifest.n_chunks - got["v"].manifest.n_missing == len(iterated.offsets)


def test_filter_mask_refused_directly(tmp_path: Path) -> None:
    path = tmp_path / "lzf.h5"
    write_lzf_skipped_chunks(path)
    found, _, _ = direct(path, "noise")
    assert found is not None
    assert found.filter_masks.any()
    registry = vc.ObjectStoreRegistry.for_urls([f"file://{path}"])
    with pytest.raises(HDF5UnsupportedError, match="filter mask"):
        HDFParser()(f"file://{path}", registry)


# ---- corrupt indexes --------------------------------------------------------------------


def _corrupted(tmp_path: Path, case: Case, damage: Callable[[bytearray, int], None]) -> Path:
    path = tmp_path / f"{case.name}.h5"
    write_case(path, case)
    registry = vc.ObjectStoreRegistry.for_urls([f"file://{path}"])
    with h5py.File(path) as f:
        layout = chunk_layout(
            f[case.name],
            source(registry, f"file://{path}"),
            FileShape(8, 8, path.stat().st_size),
            "",
        )
    assert layout is not None
    data = bytearray(path.read_bytes())
    damage(data, layout.address)
    bad = tmp_path / f"bad-{case.name}.h5"
    bad.write_bytes(bytes(data))
    return bad


def _first_leaf(data: bytearray, root: int) -> int:
    node = root
    while data[node + 5] > 0:  # an internal node: follow its first child
        # header 8, siblings 16, then key 0 (size 4, mask 4, two offsets of 8): child 0
        node = int.from_bytes(data[node + 48 : node + 56], "little")
    return node


def _flip_v2_root(data: bytearray, header: int) -> None:
    """A byte of the first record of the version 2 B-tree's root node (its checksum fails)."""
    root = int.from_bytes(data[header + 16 : header + 24], "little")
    data[root + 8] ^= 0x10


DAMAGES: dict[str, tuple[str, Callable[[bytearray, int], None]]] = {
    "btree_signature": ("v1_deep", lambda d, a: d.__setitem__(slice(a, a + 4), b"XXXX")),
    "btree_leaf_signature": (
        "v1_deep",
        lambda d, a: d.__setitem__(slice(_first_leaf(d, a), _first_leaf(d, a) + 4), b"EERT"),
    ),
    "btree_level": ("v1_deep", lambda d, a: d.__setitem__(a + 5, 200)),
    "farray_header_checksum": ("fa_paged", lambda d, a: d.__setitem__(a + 8, d[a + 8] ^ 1)),
    "earray_header_checksum": ("ea_big", lambda d, a: d.__setitem__(a + 14, d[a + 14] ^ 4)),
    "earray_signature": ("ea_big", lambda d, a: d.__setitem__(slice(a, a + 4), b"EAHX")),
    "btree2_header_checksum": ("bt2_deep", lambda d, a: d.__setitem__(a + 8, d[a + 8] ^ 1)),
    "btree2_root_record": ("bt2_deep", lambda d, a: _flip_v2_root(d, a)),
    "farray_signature": ("fa_paged", lambda d, a: d.__setitem__(slice(a, a + 4), b"FAHX")),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_corrupt_index_is_a_typed_error(tmp_path: Path, damage: str) -> None:
    name, hurt = DAMAGES[damage]
    case = next(c for c in CASES if c.name == name)
    bad = _corrupted(tmp_path, case, hurt)
    registry = vc.ObjectStoreRegistry.for_urls([f"file://{bad}"])
    with pytest.raises(HDF5IndexError) as info:
        HDFParser()(f"file://{bad}", registry)
    assert str(bad) in str(info.value)
    assert name in str(info.value)


def test_corrupt_fixed_array_page(tmp_path: Path) -> None:
    """A flipped byte inside a page of chunk addresses fails the page's checksum."""
    case = next(c for c in CASES if c.name == "fa_paged")

    def flip_page(data: bytearray, header: int) -> None:
        block = int.from_bytes(data[header + 16 : header + 24], "little")
        # FADB prefix (4+1+1+8), a 3-page bitmap byte, the prefix checksum: page 0 follows.
        data[block + 14 + 1 + 4 + 100] ^= 0xFF

    bad = _corrupted(tmp_path, case, flip_page)
    registry = vc.ObjectStoreRegistry.for_urls([f"file://{bad}"])
    with pytest.raises(HDF5IndexError, match="checksum"):
        HDFParser()(f"file://{bad}", registry)


def test_truncated_index_is_a_typed_error(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.name == "v1_deep")
    path = tmp_path / "deep.h5"
    write_case(path, case)
    found, _, _ = direct(path, case.name)
    assert found is not None
    # The leaves point past the end of a file cut short.
    registry = vc.ObjectStoreRegistry.for_urls([f"file://{path}"])
    file = source(registry, f"file://{path}")
    with h5py.File(path) as f:
        dataset = f[case.name]
        with pytest.raises(HDF5IndexError, match="outside the file"):
            chunk_locations(dataset, file, 2048, f"{path}: {case.name}")


def test_lookup3_matches_hdf5_checksums() -> None:
    """lookup3 over equal-length rows at every length up to 40 bytes, against a scalar model."""

    def scalar(data: bytes) -> int:
        mask = 0xFFFFFFFF

        def rot(x: int, k: int) -> int:
            return ((x << k) | (x >> (32 - k))) & mask

        def words(chunk: bytes) -> list[int]:
            return [int.from_bytes(chunk[j : j + 4], "little") for j in (0, 4, 8)]

        length = len(data)
        abc = [(0xDEADBEEF + length) & mask] * 3
        if length == 0:
            return abc[2]
        blocks = [data[i : i + 12] for i in range(0, length, 12)]
        # (target, source, rotation, then-add target, then-add source) per step of mix
        mix = [(0, 2, 4, 2, 1), (1, 0, 6, 0, 2), (2, 1, 8, 1, 0)] * 2
        rotations = [4, 6, 8, 16, 19, 4]
        for block in blocks[:-1]:
            abc = [(x + w) & mask for x, w in zip(abc, words(block), strict=True)]
            for (t, src, _, add_t, add_s), k in zip(mix, rotations, strict=True):
                abc[t] = ((abc[t] - abc[src]) & mask) ^ rot(abc[src], k)
                abc[add_t] = (abc[add_t] + abc[add_s]) & mask
        tail = blocks[-1] + bytes(12 - len(blocks[-1]))
        a, b, c = ((x + w) & mask for x, w in zip(abc, words(tail), strict=True))
        c = ((c ^ b) - rot(b, 14)) & mask
        a = ((a ^ c) - rot(c, 11)) & mask
        b = ((b ^ a) - rot(a, 25)) & mask
        c = ((c ^ b) - rot(b, 16)) & mask
        a = ((a ^ c) - rot(c, 4)) & mask
        b = ((b ^ a) - rot(a, 14)) & mask
        c = ((c ^ b) - rot(b, 24)) & mask
        return c

    rng = np.random.default_rng(3)
    for length in range(41):
        rows = rng.integers(0, 256, size=(5, length), dtype=np.uint8)
        got = lookup3(rows)
        assert [int(x) for x in got] == [scalar(bytes(r)) for r in rows], length
    # Rows of different lengths hashed together: each over its own first bytes only.
    rows = rng.integers(0, 256, size=(60, 50), dtype=np.uint8)
    lengths = rng.integers(0, 51, size=60)
    got = lookup3(rows, lengths)
    assert [int(x) for x in got] == [
        scalar(bytes(r[:n])) for r, n in zip(rows, lengths, strict=True)
    ]


def test_parser_reads_big_indexes_directly(
    case_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many chunks (or an extensible array chunk_iter misplaces): direct; a few: chunk_iter.

    A version 1 B-tree of a few chunks is read directly too (its keys checked), and
    every other index of a few chunks is left to chunk_iter.
    """
    from vzcore.parsers import hdf5

    asked: list[tuple[str, bool]] = []

    def spy(real: Any) -> Any:
        def spied(dataset: Any, *args: Any) -> ChunkLocations | None:
            found: ChunkLocations | None = real(dataset, *args)
            asked.append((dataset.name, found is not None))
            return found

        return spied

    for reader in ("chunk_locations", "v1_btree_locations"):
        monkeypatch.setattr(hdf5, reader, spy(getattr(hdf5, reader)))
    for name in ("v1_deep", "v1_1d", "ea_inner", "fa_small", "bt2_deep"):
        path = case_files[name]
        HDFParser()(f"file://{path}", vc.ObjectStoreRegistry.for_urls([f"file://{path}"]))
    assert [name for name, direct in asked if direct] == [
        "/v1_deep",
        "/v1_1d",
        "/ea_inner",
        "/bt2_deep",
    ]
    assert ("/fa_small", False) in asked
