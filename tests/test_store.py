"""Examples for `vzcore.store.ManifestStore`: zarr and xarray read real data through it."""

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr
from obstore.store import LocalStore
from tests.data_factories import (
    ARCHIVE_HEADER,
    Sample,
    archive_sample,
    local_sample,
    memory_sample,
    packed_uint8_sample,
)
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import Buffer, cpu, default_buffer_prototype

import vzcore as vc
from vzcore.registry import ObstoreReader

ARRAY_PATHS = ("tas", "level", "mask", "scale", "time", "sub/depth", "sub/deeper/flag")
KINDS = ("local", "memory", "archive")


def run[T](coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


async def collect(keys: AsyncIterator[str]) -> list[str]:
    return sorted([key async for key in keys])


def get_bytes(store: vc.ManifestStore, key: str, byte_range: Any = None) -> bytes | None:
    buffer = run(store.get(key, default_buffer_prototype(), byte_range))
    return None if buffer is None else buffer.to_bytes()


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Sample]:
    return {
        "local": local_sample(tmp_path_factory.mktemp("local")),
        "memory": memory_sample(),
        "archive": archive_sample(tmp_path_factory.mktemp("archive")),
    }


def manifest_store(sample: Sample) -> vc.ManifestStore:
    return vc.ManifestStore(sample.group, registry=sample.registry)


class CountingReader:
    """A `ByteRangeReader` over a local folder that records every request it serves."""

    def __init__(self, folder: Path) -> None:
        self.inner = ObstoreReader(LocalStore(folder))
        self.calls: list[tuple[str, int]] = []
        self.ranges: Counter[tuple[str, int, int]] = Counter()

    async def get_ranges_async(
        self, path: str, *, starts: Sequence[int], ends: Sequence[int]
    ) -> Sequence[bytes | memoryview]:
        self.calls.append((path, len(starts)))
        self.ranges.update((path, s, e) for s, e in zip(starts, ends, strict=True))
        return await self.inner.get_ranges_async(path, starts=starts, ends=ends)

    async def get_async(self, path: str) -> bytes | memoryview:
        return await self.inner.get_async(path)

    def get_ranges(
        self, path: str, *, starts: Sequence[int], ends: Sequence[int]
    ) -> Sequence[bytes | memoryview]:
        return self.inner.get_ranges(path, starts=starts, ends=ends)

    def get(self, path: str) -> bytes | memoryview:
        return self.inner.get(path)


# ---- the factories build what they promise ------------------------------------------------


def test_missing_chunks_are_missing_from_the_manifests(samples: dict[str, Sample]) -> None:
    group = samples["local"].group
    missing = {path: array.manifest.n_missing for path, array in group.walk_arrays()}
    assert missing == {path: 2 if path in ("tas", "mask") else 0 for path in ARRAY_PATHS}


def test_archive_references_have_increasing_offsets_into_one_file(
    samples: dict[str, Sample],
) -> None:
    sample = samples["archive"]
    offsets = []
    for _, array in sample.group.walk_arrays():
        assert isinstance(array, vc.VirtualArray)
        assert array.manifest.dictionary.to_pylist() == [sample.url]
        offsets += [entry["offset"] for entry in array.manifest.to_entries().values()]
    assert min(offsets) == len(ARCHIVE_HEADER)
    assert len(set(offsets)) == len(offsets) == len(sample.chunk_keys)


# ---- values through zarr and xarray -------------------------------------------------------


@pytest.mark.parametrize("path", ARRAY_PATHS)
@pytest.mark.parametrize("kind", KINDS)
def test_zarr_reads_the_values_written(samples: dict[str, Sample], kind: str, path: str) -> None:
    sample = samples[kind]
    virtual = zarr.open_array(manifest_store(sample), path=path, mode="r")
    source = sample.open_zarr()[path]
    assert isinstance(source, zarr.Array)
    values = virtual[...]
    assert virtual.shape == source.shape
    assert virtual.dtype == source.dtype
    np.testing.assert_array_equal(values, source[...])
    np.testing.assert_array_equal(values, sample.expected[path])


@pytest.mark.parametrize("kind", KINDS)
def test_zarr_reads_selections_across_edge_and_missing_chunks(
    samples: dict[str, Sample], kind: str
) -> None:
    tas = zarr.open_array(manifest_store(samples[kind]), path="tas", mode="r")
    expected = samples[kind].expected["tas"]
    np.testing.assert_array_equal(tas[1:5, 2:7], expected[1:5, 2:7])
    assert np.isnan(tas[0:2, 3:6]).all()  # a chunk never written reads as the fill value
    assert tas[4, 4] == expected[4, 4]
    assert np.isnan(tas[4, 5:]).all()  # a NaN stored in a chunk, and a missing edge chunk
    mask = zarr.open_array(manifest_store(samples[kind]), path="mask", mode="r")
    np.testing.assert_array_equal(mask[0:3], [0, 0, 0])
    assert mask[9] == 255


@pytest.mark.parametrize("kind", KINDS)
def test_zarr_opens_the_whole_hierarchy(samples: dict[str, Sample], kind: str) -> None:
    sample = samples[kind]
    virtual = zarr.open_group(manifest_store(sample), mode="r")
    source = sample.open_zarr()
    assert sorted(p for p, _ in virtual.members(max_depth=None)) == sorted(
        p for p, _ in source.members(max_depth=None)
    )
    assert (
        dict(virtual.attrs) == dict(source.attrs) == {"title": "vz sample", "Conventions": "CF-1.8"}
    )
    sub = virtual["sub"]
    assert isinstance(sub, zarr.Group)
    assert dict(sub.attrs) == {"title": "a subgroup"}
    for path in ARRAY_PATHS:
        array, source_array = virtual[path], source[path]
        assert isinstance(array, zarr.Array)
        assert isinstance(source_array, zarr.Array)
        assert array.metadata.to_dict() == source_array.metadata.to_dict()
        np.testing.assert_array_equal(array[...], sample.expected[path])


@pytest.mark.parametrize("group", [None, "sub", "sub/deeper"])
@pytest.mark.parametrize("kind", KINDS)
def test_xarray_reads_what_it_reads_from_the_source(
    samples: dict[str, Sample], kind: str, group: str | None
) -> None:
    sample = samples[kind]
    source_group = "/".join(p for p in (sample.zarr_path, group) if p) or None
    with (
        xr.open_zarr(manifest_store(sample), group=group, consolidated=False, chunks=None) as ds,
        xr.open_zarr(
            sample.zarr_store, group=source_group, consolidated=False, chunks=None
        ) as expected,
    ):
        xr.testing.assert_identical(ds.load(), expected.load())


def test_xarray_decodes_times_and_masks_fill_values(samples: dict[str, Sample]) -> None:
    with xr.open_zarr(manifest_store(samples["local"]), consolidated=False, chunks=None) as ds:
        assert ds["time"].dtype == np.dtype("datetime64[ns]")
        assert str(ds["time"].values[3])[:10] == "2000-02-01"
        assert int(np.isnan(ds["tas"].values).sum()) == 8
        assert float(ds["scale"]) == 273.15


def test_arrays_of_two_stores_are_read_together(samples: dict[str, Sample]) -> None:
    local, memory = samples["local"], samples["memory"]
    tas = [s.group.arrays["tas"] for s in (local, memory)]
    assert isinstance(tas[0], vc.VirtualArray)
    assert isinstance(tas[1], vc.VirtualArray)
    cropped = [vc.select_chunks(a, [slice(0, 4), slice(None)]) for a in tas]
    group = vc.VirtualGroup(arrays={"both": vc.concat(cropped, axis=0)})
    registry = local.registry.register(
        "memory://bucket/", memory.registry.stores["memory://bucket/"]
    )
    values = zarr.open_array(vc.ManifestStore(group, registry=registry), path="both", mode="r")[...]
    expected = np.concatenate([local.expected["tas"][:4], memory.expected["tas"][:4]])
    np.testing.assert_array_equal(values, expected)


def test_repeated_references_are_read_for_each_chunk(samples: dict[str, Sample]) -> None:
    depth = samples["local"].group["sub/depth"]
    assert isinstance(depth, vc.VirtualArray)
    row = vc.expand_dims(depth, axis=0)
    group = vc.VirtualGroup(arrays={"rows": vc.broadcast_to(row, (3, 4))})
    store = vc.ManifestStore(group, registry=samples["local"].registry)
    values = zarr.open_array(store, path="rows", mode="r")[...]
    np.testing.assert_array_equal(values, np.tile(samples["local"].expected["sub/depth"], (3, 1)))


# ---- loaded arrays ------------------------------------------------------------------------


def test_loaded_arrays_are_served_from_memory_with_padded_edge_chunks() -> None:
    values = np.arange(35, dtype=">i4").reshape(5, 7)
    loaded = vc.LoadedArray.from_numpy(
        values, chunk_shape=(2, 3), dimension_names=("y", "x"), fill_value=-9
    )
    scalar = vc.LoadedArray.from_numpy(np.float64(2.5))
    store = vc.ManifestStore(vc.VirtualGroup(arrays={"v": loaded, "s": scalar}))
    read = zarr.open_array(store, path="v", mode="r")
    np.testing.assert_array_equal(read[...], values)
    assert read.dtype == np.dtype("int32")
    assert zarr.open_array(store, path="s", mode="r")[()] == 2.5
    # The edge chunk (2, 2) holds one value; the rest is fill, little-endian.
    edge = np.frombuffer(get_bytes(store, "v/c/2/2") or b"", dtype="<i4").reshape(2, 3)
    np.testing.assert_array_equal(edge, [[34, -9, -9], [-9, -9, -9]])
    assert get_bytes(store, "s/c") == np.float64(2.5).tobytes()
    assert run(store.exists("v/c/2/2"))
    assert not run(store.exists("v/c/3/0"))


def test_loaded_and_virtual_arrays_share_a_group(samples: dict[str, Sample]) -> None:
    sample = samples["memory"]
    lat = vc.LoadedArray.from_numpy(np.linspace(-60, 60, 5), dimension_names=("y",))
    group = sample.group.evolve(arrays={**sample.group.arrays, "y": lat})
    with xr.open_zarr(
        vc.ManifestStore(group, registry=sample.registry), consolidated=False, chunks=None
    ) as ds:
        np.testing.assert_array_equal(ds["y"].values, np.linspace(-60, 60, 5))
        np.testing.assert_array_equal(ds["tas"].values, sample.expected["tas"])
        assert "y" in ds["tas"].coords


# ---- byte ranges --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("byte_range", "part"),
    [
        (None, slice(None)),
        (RangeByteRequest(2, 10), slice(2, 10)),
        (OffsetByteRequest(5), slice(5, None)),
        (SuffixByteRequest(4), slice(-4, None)),
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_get_serves_byte_ranges_of_chunks(
    samples: dict[str, Sample], kind: str, byte_range: Any, part: slice
) -> None:
    # Each sample's own source: gzip stamps a time, so two writes may differ in bytes.
    source = samples[kind].zarr_store
    assert source is not None
    store = manifest_store(samples[kind])
    prefix = f"{samples[kind].zarr_path}/" if samples[kind].zarr_path else ""
    for key in ("tas/c/2/1", "level/c/1/0", "scale/c", "sub/depth/c/1"):
        whole = run(source.get(prefix + key, default_buffer_prototype()))
        assert isinstance(whole, Buffer)
        assert get_bytes(store, key, byte_range) == whole.to_bytes()[part]


@pytest.mark.parametrize(
    "byte_range",
    [RangeByteRequest(0, 12), OffsetByteRequest(3), SuffixByteRequest(7), None],
)
def test_get_serves_byte_ranges_of_documents_and_loaded_chunks(byte_range: Any) -> None:
    loaded = vc.LoadedArray.from_numpy(np.arange(6, dtype="u2"), dimension_names=("n",))
    store = vc.ManifestStore(vc.VirtualGroup(arrays={"n": loaded}, attributes={"a": 1}))
    document = get_bytes(store, "zarr.json")
    assert document is not None
    whole_chunk = np.arange(6, dtype="<u2").tobytes()
    if byte_range is None:
        assert get_bytes(store, "n/c/0") == whole_chunk
        return
    part = {
        RangeByteRequest: lambda r: slice(r.start, r.end),
        OffsetByteRequest: lambda r: slice(r.offset, None),
        SuffixByteRequest: lambda r: slice(-r.suffix, None),
    }[type(byte_range)](byte_range)
    assert get_bytes(store, "zarr.json", byte_range) == document[part]
    assert get_bytes(store, "n/c/0", byte_range) == whole_chunk[part]


@pytest.mark.parametrize("key", ["sub/deeper/flag/c/0", "n/c/0", "zarr.json"])
def test_a_suffix_longer_than_the_object_gives_the_whole_object(
    samples: dict[str, Sample], key: str
) -> None:
    # zarr's own stores (LocalStore, MemoryStore) answer with the whole object here.
    sample = samples["local"]
    loaded = vc.LoadedArray.from_numpy(np.arange(3, dtype="u1"), dimension_names=("n",))
    group = sample.group.evolve(arrays={**sample.group.arrays, "n": loaded})
    store = vc.ManifestStore(group, registry=sample.registry)
    whole = get_bytes(store, key)
    assert whole is not None
    assert get_bytes(store, key, SuffixByteRequest(len(whole) + 1)) == whole


def test_get_returns_none_for_absent_keys(samples: dict[str, Sample]) -> None:
    store = manifest_store(samples["local"])
    for key in ("nope", "tas/c/0/1", "tas/c/3/0", "tas/c/0", "tas/zarr.jsn", "sub/c/0", "c/0"):
        assert get_bytes(store, key) is None, key


# ---- exists and listing -------------------------------------------------------------------


def test_exists(samples: dict[str, Sample]) -> None:
    store = manifest_store(samples["archive"])
    present = ["zarr.json", "tas/zarr.json", "sub/zarr.json", "sub/deeper/flag/zarr.json"]
    present += ["tas/c/0/0", "tas/c/2/1", "scale/c", "mask/c/3", "sub/deeper/flag/c/0"]
    absent = ["tas/c/0/1", "tas/c/2/2", "mask/c/0", "tas/c/9/9", "tas/c/0", "scale/c/0", "x"]
    assert [run(store.exists(k)) for k in present] == [True] * len(present)
    assert [run(store.exists(k)) for k in absent] == [False] * len(absent)


async def _source_keys(sample: Sample) -> list[str]:
    assert sample.zarr_store is not None
    prefix = f"{sample.zarr_path}/" if sample.zarr_path else ""
    return sorted([k.removeprefix(prefix) async for k in sample.zarr_store.list_prefix(prefix)])


@pytest.mark.parametrize("kind", KINDS)
def test_list_gives_the_keys_of_the_source(samples: dict[str, Sample], kind: str) -> None:
    sample = samples[kind]
    keys = run(collect(manifest_store(sample).list()))
    assert keys == run(_source_keys(sample))
    assert "tas/c/0/1" not in keys  # a missing chunk is not listed
    assert len(keys) == len(set(keys))


def test_list_prefix(samples: dict[str, Sample]) -> None:
    store = manifest_store(samples["local"])
    assert run(collect(store.list_prefix("sub/deeper/"))) == [
        "sub/deeper/flag/c/0",
        "sub/deeper/flag/zarr.json",
        "sub/deeper/zarr.json",
    ]
    assert run(collect(store.list_prefix("mask/c/"))) == ["mask/c/1", "mask/c/3"]
    assert run(collect(store.list_prefix("nothing/"))) == []


@pytest.mark.parametrize(
    "prefix",
    ["", "tas", "tas/", "tas/c", "tas/c/0", "tas/c/2", "mask/c", "scale", "scale/c", "sub",
     "sub/deeper", "sub/deeper/flag/c", "level/c/1"],
)  # fmt: skip
def test_list_dir_matches_the_source(samples: dict[str, Sample], prefix: str) -> None:
    sample = samples["local"]
    assert sample.zarr_store is not None
    expected = run(collect(sample.zarr_store.list_dir(prefix)))
    assert run(collect(manifest_store(sample).list_dir(prefix))) == expected


def test_list_dir_examples(samples: dict[str, Sample]) -> None:
    store = manifest_store(samples["memory"])
    assert run(collect(store.list_dir(""))) == sorted(
        ["zarr.json", "tas", "level", "mask", "scale", "time", "sub"]
    )
    assert run(collect(store.list_dir("tas"))) == ["c", "zarr.json"]
    assert run(collect(store.list_dir("tas/c"))) == ["0", "1", "2"]
    assert run(collect(store.list_dir("tas/c/0"))) == ["0", "2"]


# ---- read-only ----------------------------------------------------------------------------


def test_the_store_is_read_only(samples: dict[str, Sample]) -> None:
    store = manifest_store(samples["local"])
    assert store.read_only
    assert not store.supports_writes
    assert not store.supports_deletes
    with pytest.raises(PermissionError, match="cannot set 'tas/c/0/0'"):
        run(store.set("tas/c/0/0", cpu.Buffer.from_bytes(b"x")))
    with pytest.raises(PermissionError, match=r"cannot delete 'zarr\.json'"):
        run(store.delete("zarr.json"))
    with pytest.raises(PermissionError):
        zarr.open_array(store, path="tas", mode="r")[0, 0] = 1.0
    assert get_bytes(store, "tas/c/0/0") is not None


def test_equality_and_repr(samples: dict[str, Sample]) -> None:
    sample = samples["local"]
    store = manifest_store(sample)
    assert store == manifest_store(sample)
    assert store != vc.ManifestStore(sample.group.evolve(), registry=sample.registry)
    assert hash(store) == hash(manifest_store(sample))
    assert repr(store) == f"ManifestStore(7 arrays, registry prefixes {sample.registry.prefixes})"


# ---- failures -----------------------------------------------------------------------------


def _referencing(*urls: str) -> vc.VirtualGroup:
    meta = vc.ArrayMetadata.create(shape=(2 * len(urls),), chunk_shape=(2,), dtype="f4")
    manifest = vc.ChunkManifest.from_arrays(
        paths=np.array(urls), offsets=np.zeros(len(urls), int), lengths=np.full(len(urls), 8)
    )
    return vc.VirtualGroup(arrays={"x": vc.VirtualArray(meta, manifest)})


def test_unregistered_urls_are_refused_at_construction() -> None:
    registry = vc.ObjectStoreRegistry({"file:///data/": LocalStore("/")})
    group = _referencing("file:///data/a.nc", "s3://bucket/b.nc", "file:///data/../etc/c.nc")
    with pytest.raises(vc.UnregisteredURLError) as info:
        vc.ManifestStore(group, registry=registry)
    assert str(info.value) == (
        "2 referenced URL(s) are under no registered prefix: 's3://bucket/b.nc', "
        "'file:///data/../etc/c.nc'; registered: file:///data/"
    )


def test_many_unregistered_urls_are_summarised() -> None:
    group = _referencing(*(f"s3://bucket/{i}.nc" for i in range(8)))
    with pytest.raises(vc.UnregisteredURLError) as info:
        vc.ManifestStore(group)
    message = str(info.value)
    assert message.startswith(
        "8 referenced URL(s) are under no registered prefix: 's3://bucket/0.nc'"
    )
    assert message.endswith("'s3://bucket/4.nc' and 3 more; registered: (none)")


def test_a_missing_file_fails_the_read_naming_url_and_chunk(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/gone.nc"
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    store = vc.ManifestStore(_referencing(url, url), registry=registry)
    assert run(store.exists("x/c/1"))  # the reference exists; its bytes do not
    with pytest.raises(vc.ChunkFetchError) as info:
        get_bytes(store, "x/c/1")
    assert str(info.value).startswith(f"cannot read chunk 'x/c/1' from {url!r} (bytes 0-8): ")
    assert isinstance(info.value.__cause__, FileNotFoundError)
    with pytest.raises(vc.ChunkFetchError, match=r"cannot read chunk 'x/c/[01]'"):
        zarr.open_array(store, path="x", mode="r")[...]


# ---- concurrency --------------------------------------------------------------------------


def test_ten_thousand_chunk_reads_are_batched_into_few_requests(tmp_path: Path) -> None:
    sample = packed_uint8_sample(tmp_path, n_files=4)
    counting = CountingReader(tmp_path)
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": counting})
    array = sample.group.arrays["packed"]
    assert isinstance(array, vc.VirtualArray)
    assert array.manifest.n_chunks == 10_000

    values = zarr.open_array(vc.ManifestStore(sample.group, registry=registry), path="packed")[...]

    np.testing.assert_array_equal(values, sample.expected["packed"])
    paths, offsets, lengths = array.manifest.to_arrays()
    wanted = {
        (str(p).removeprefix(f"file://{tmp_path}/"), int(o), int(o + n))
        for p, o, n in zip(paths.ravel(), offsets.ravel(), lengths.ravel(), strict=True)
    }
    # Neighbouring chunks are coalesced: every chunk lies inside one request, no byte is
    # requested twice, and the requests are far fewer than the chunks.
    requests: dict[str, list[tuple[int, int]]] = {}
    for path, start, end in counting.ranges:
        requests.setdefault(path, []).append((start, end))
    for spans in requests.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    for path, start, end in wanted:
        assert any(a <= start and end <= b for a, b in requests[path])
    assert set(counting.ranges.values()) == {1}
    assert len(counting.ranges) < len(wanted) / 5
    print(f"10,000 chunks read in {len(counting.calls)} get_ranges_async calls")
    assert len(counting.calls) < 10_000 / 5


def test_get_partial_values_makes_one_request_per_file(tmp_path: Path) -> None:
    sample = packed_uint8_sample(tmp_path, n_files=4)
    counting = CountingReader(tmp_path)
    store = vc.ManifestStore(
        sample.group, registry=vc.ObjectStoreRegistry({f"file://{tmp_path}/": counting})
    )
    rows = range(0, 100, 5)  # 20 rows of chunks, 5 from each file
    keys = [(f"packed/c/{row}/{col}", None) for row in rows for col in (0, 50, 99)]
    keys.append(("packed/c/0/0", RangeByteRequest(4, 8)))
    buffers = run(store.get_partial_values(default_buffer_prototype(), keys))

    assert sorted(path for path, _ in counting.calls) == [f"packed-{i}.bin" for i in range(4)]
    assert sum(n for _, n in counting.calls) <= len(keys)  # coalesced within each file
    expected = sample.expected["packed"]
    for (key, _), buffer in zip(keys[:-1], buffers[:-1], strict=True):
        row, col = map(int, key.split("/")[2:])
        assert buffer is not None
        assert buffer.to_bytes() == expected[row, 16 * col : 16 * col + 16].tobytes()
    assert buffers[-1] is not None
    assert buffers[-1].to_bytes() == expected[0, 4:8].tobytes()


@pytest.mark.parametrize(
    ("byte_range", "first", "last"),
    [
        (RangeByteRequest(4, 8), 4, 8),
        (SuffixByteRequest(6), 10, 16),
        (OffsetByteRequest(12), 12, 16),
    ],
)
def test_a_partial_chunk_request_reads_only_its_sub_range(
    tmp_path: Path, byte_range: Any, first: int, last: int
) -> None:
    # A sharded array's reader asks for the shard index (a suffix) before any inner chunk:
    # that must not fetch the whole shard.
    sample = packed_uint8_sample(tmp_path, n_files=4)
    counting = CountingReader(tmp_path)
    store = vc.ManifestStore(
        sample.group, registry=vc.ObjectStoreRegistry({f"file://{tmp_path}/": counting})
    )
    array = sample.group.arrays["packed"]
    assert isinstance(array, vc.VirtualArray)
    entry = array.manifest.to_entries()["0.0"]

    buffer = run(store.get("packed/c/0/0", default_buffer_prototype(), byte_range))

    assert buffer is not None
    assert buffer.to_bytes() == sample.expected["packed"][0, first:last].tobytes()
    path = str(entry["path"]).removeprefix(f"file://{tmp_path}/")
    offset = int(entry["offset"])
    assert list(counting.ranges) == [(path, offset + first, offset + last)]


def test_a_failed_batch_fails_every_chunk_in_it(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/gone.nc"
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    store = vc.ManifestStore(_referencing(url, url, url), registry=registry)

    async def read_all() -> list[Any]:
        keys = ["x/c/0", "x/c/1", "x/c/2"]
        return await asyncio.gather(
            *(store.get(k, default_buffer_prototype()) for k in keys), return_exceptions=True
        )

    results = run(read_all())
    assert [type(r) for r in results] == [vc.SourceNotFoundError] * 3
    assert all(isinstance(r, vc.ChunkFetchError) for r in results)
    assert [str(r).split(" from ")[0] for r in results] == [
        f"cannot read chunk 'x/c/{i}'" for i in range(3)
    ]


def test_nested_attribute_values_are_served_as_json(tmp_path: Path) -> None:
    """A mapping inside an attribute value (frozen in the metadata) is written as JSON."""
    values = np.arange(4, dtype="<i4")
    (tmp_path / "a.bin").write_bytes(values.tobytes())
    manifest = vc.ChunkManifest.from_arrays(
        paths=np.array([f"file://{tmp_path}/a.bin"], dtype=object),
        offsets=np.array([0]),
        lengths=np.array([16]),
    )
    nested = {"grid": {"name": "regular", "shape": [4]}, "list": [{"a": 1}]}
    meta = vc.ArrayMetadata(
        shape=(4,), chunk_grid=(4,), dtype="<i4", dimension_names=("x",), attributes=nested
    )
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    store = vc.ManifestStore(
        vc.VirtualGroup(arrays={"v": vc.VirtualArray(meta, manifest)}), registry=registry
    )
    opened = zarr.open_group(store, mode="r", zarr_format=3)["v"]
    assert dict(opened.attrs) == nested
    np.testing.assert_array_equal(opened[:], values)
