"""The byte-range layer: coalescing, limits, short reads, typed errors, the file view."""

import io
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import obstore
import pytest
from obstore.store import LocalStore, MemoryStore

import vzcore as vc
from vzcore.byteranges import (
    RangeFile,
    ReadPolicy,
    ShortReadError,
    Source,
    coalesced,
    open_file,
    read_references,
    source,
)

DATA = bytes(range(256)) * 64  # 16 KiB


class RecordingReader:
    """A `ByteRangeReader` over bytes in memory that records each batch it is asked for."""

    def __init__(self, data: bytes = DATA, *, delay: float = 0.0) -> None:
        self.data = data
        self.batches: list[list[tuple[int, int]]] = []
        self.delay = delay
        self.active = 0
        self.most_active = 0
        self._lock = threading.Lock()

    def get_ranges(self, path: str, *, starts: Sequence[int], ends: Sequence[int]) -> list[bytes]:
        with self._lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            time.sleep(self.delay)
            self.batches.append(list(zip(starts, ends, strict=True)))
            return [self.data[s:e] for s, e in zip(starts, ends, strict=True)]
        finally:
            with self._lock:
                self.active -= 1

    async def get_ranges_async(
        self, path: str, *, starts: Sequence[int], ends: Sequence[int]
    ) -> list[bytes]:
        return self.get_ranges(path, starts=starts, ends=ends)

    def get(self, path: str) -> bytes:
        return self.data

    async def get_async(self, path: str) -> bytes:
        return self.data

    def size(self, path: str) -> int:
        return len(self.data)


class FailingReader(RecordingReader):
    def get_ranges(self, path: str, *, starts: Any, ends: Any) -> list[bytes]:
        raise RuntimeError("connection reset by peer\nmore detail")

    def size(self, path: str) -> int:
        raise PermissionError("access denied")


def _source(reader: Any, policy: ReadPolicy | None = None) -> Source:
    registry = vc.ObjectStoreRegistry({"memory://m/": reader})
    return source(registry, "memory://m/f.bin", policy=policy or ReadPolicy())


# ---- coalescing -----------------------------------------------------------------------------


def test_near_ranges_share_one_request_and_come_back_in_the_order_asked() -> None:
    reader = RecordingReader()
    starts, ends = [9000, 0, 100, 8000], [9010, 10, 110, 8100]
    got = _source(reader, ReadPolicy(coalesce=1000)).read_ranges(starts, ends)
    assert [bytes(b) for b in got] == [DATA[s:e] for s, e in zip(starts, ends, strict=True)]
    assert reader.batches == [[(0, 110), (8000, 9010)]]


def test_requests_are_split_at_max_request() -> None:
    starts = np.arange(0, 16384, 1024)
    request_starts, request_ends, owner = coalesced(
        starts, starts + 1024, ReadPolicy(coalesce=0, max_request=4096)
    )
    assert request_starts.tolist() == [0, 4096, 8192, 12288]
    assert request_ends.tolist() == [4096, 8192, 12288, 16384]
    assert owner.tolist() == [i // 4 for i in range(16)]


def test_overlapping_and_repeated_ranges_are_served() -> None:
    reader = RecordingReader()
    starts, ends = [10, 10, 15, 0], [20, 20, 30, 40]
    got = _source(reader).read_ranges(starts, ends)
    assert [bytes(b) for b in got] == [DATA[s:e] for s, e in zip(starts, ends, strict=True)]
    assert reader.batches == [[(0, 40)]]


def test_empty_request_list_asks_nothing() -> None:
    reader = RecordingReader()
    assert _source(reader).read_ranges([], []) == []


# ---- short reads and errors -----------------------------------------------------------------


@pytest.mark.parametrize("store_kind", ["memory", "local"])
@pytest.mark.parametrize(("start", "end"), [(16000, 16500), (20000, 20010)])
def test_a_range_past_the_end_is_a_short_read_naming_the_url(
    tmp_path: Path, store_kind: str, start: int, end: int
) -> None:
    if store_kind == "memory":
        store: Any = MemoryStore()
        obstore.put(store, "f.bin", DATA)
        registry = vc.ObjectStoreRegistry({"memory://m/": store})
        url = "memory://m/f.bin"
    else:
        (tmp_path / "f.bin").write_bytes(DATA)
        registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
        url = f"file://{tmp_path}/f.bin"
    with pytest.raises(vc.ShortReadError, match=url) as info:
        source(registry, url).read_ranges([0, start], [10, end])
    assert info.value.url == url


def test_a_short_reply_from_any_reader_is_detected() -> None:
    reader = RecordingReader(DATA[:100])
    with pytest.raises(vc.ShortReadError, match=r"bytes 50-200 requested, 50 returned"):
        _source(reader).read_ranges([50], [200])


def test_a_missing_object_is_not_found_with_the_store_error_chained(tmp_path: Path) -> None:
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    url = f"file://{tmp_path}/gone.bin"
    for read in (
        lambda s: s.read_ranges([0], [4]),
        lambda s: s.read(),
        lambda s: s.size(),
        lambda s: s.fingerprint(),
    ):
        with pytest.raises(vc.SourceNotFoundError) as info:
            read(source(registry, url))
        assert str(info.value) == f"{url}: no such object"
        assert isinstance(info.value.__cause__, FileNotFoundError)
    assert source(registry, url).head(8) is None
    assert not source(registry, url).exists()


def test_any_store_failure_is_a_source_read_error_naming_the_url() -> None:
    file = _source(FailingReader())
    with pytest.raises(
        vc.SourceReadError, match=r"^memory://m/f\.bin: cannot read bytes 0-4: "
    ) as info:
        file.read_ranges([0], [4])
    assert "more detail" not in str(info.value)  # the first line; the rest is chained
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(vc.SourceReadError, match="its size: access denied"):
        file.size()


def test_source_errors_are_virtualization_errors() -> None:
    assert issubclass(vc.SourceNotFoundError, vc.SourceReadError)
    assert issubclass(vc.ShortReadError, vc.SourceReadError)
    assert issubclass(vc.SourceReadError, vc.VirtualizationError)
    assert vc.ChunkFetchError is vc.SourceReadError


# ---- many files -----------------------------------------------------------------------------


def test_many_files_are_read_concurrently_within_the_limit() -> None:
    reader = RecordingReader(delay=0.02)
    urls = [f"memory://m/f{i}.bin" for i in range(12)]
    registry = vc.ObjectStoreRegistry({"memory://m/": reader})
    indices = np.repeat(np.arange(12), 3)
    offsets = np.tile([0, 5000, 100], 12)
    lengths = np.full(36, 10)
    got = read_references(
        registry, urls, indices, offsets, lengths, policy=ReadPolicy(coalesce=200, concurrency=4)
    )
    assert [bytes(b) for b in got] == [DATA[o : o + 10] for o in offsets.tolist()]
    assert len(reader.batches) == 12  # one batch per file
    assert 1 < reader.most_active <= 4


def test_reading_references_names_the_failing_file() -> None:
    registry = vc.ObjectStoreRegistry(
        {"memory://ok/": RecordingReader(), "memory://bad/": FailingReader()}
    )
    with pytest.raises(vc.SourceReadError, match=r"memory://bad/x\.bin"):
        read_references(
            registry,
            ["memory://ok/x.bin", "memory://bad/x.bin"],
            np.array([0, 1]),
            np.array([0, 0]),
            np.array([4, 4]),
        )


# ---- the file-like view ---------------------------------------------------------------------


def test_range_file_reads_like_a_file_object() -> None:
    reader = RecordingReader()
    view = RangeFile(_source(reader), block_size=1000, cache_blocks=3, whole_below=0)
    plain = io.BytesIO(DATA)
    rng = np.random.default_rng(0)
    for _ in range(200):
        where, count = int(rng.integers(0, 17000)), int(rng.integers(0, 3000))
        assert view.seek(where) == plain.seek(where)
        assert view.read(count) == plain.read(count)
        assert view.tell() == plain.tell()
    assert view.seek(-10, io.SEEK_END) == plain.seek(-10, io.SEEK_END)
    assert view.read() == plain.read()
    # Every batch fetched whole blocks, aligned, each asked at most once per batch.
    for batch in reader.batches:
        assert all(start % 1000 == 0 for start, _ in batch)


def test_range_file_caches_blocks() -> None:
    reader = RecordingReader()
    view = RangeFile(_source(reader), block_size=4096, whole_below=0)
    for _ in range(3):
        view.seek(10)
        view.read(100)
        view.seek(5000)
        view.read(100)
    assert view.requests == 2


def test_a_cached_source_serves_many_small_reads_from_a_few_block_requests() -> None:
    reader = RecordingReader()
    cached = _source(reader).cached(block_size=4096, whole_below=0)
    rng = np.random.default_rng(0)
    starts = rng.integers(0, len(DATA) - 64, 200)
    for start in starts.tolist():  # one range at a time, as a parser reads headers
        (got,) = cached.read_ranges([start], [start + 64])
        assert bytes(got) == DATA[start : start + 64]
    spans = cached.read_ranges([4000, 100, 8190], [4200, 100, 12300])  # across blocks, empty
    assert [bytes(v) for v in spans] == [DATA[4000:4200], b"", DATA[8190:12300]]
    fetched = [r for batch in reader.batches for r in batch]
    assert len(fetched) == len(DATA) // 4096  # every block once, never again
    assert all(start % 4096 == 0 for start, _ in fetched)
    assert cached.url == _source(reader).url
    assert cached.size() == len(DATA)  # what the store answers passes through


def test_a_cached_source_reports_a_range_past_the_end_as_short() -> None:
    cached = _source(RecordingReader()).cached(block_size=4096, whole_below=0)
    with pytest.raises(ShortReadError, match=r"memory://m/f\.bin"):
        cached.read_ranges([len(DATA) - 10], [len(DATA) + 10])


def test_a_cached_source_reads_more_than_it_holds_past_the_cache() -> None:
    reader = RecordingReader()
    cached = _source(reader).cached(block_size=1024, cache_blocks=2, whole_below=0)
    (got,) = cached.read_ranges([0], [len(DATA)])
    assert bytes(got) == DATA
    assert reader.batches == [[(0, len(DATA))]]  # one request, not 16 blocks


def test_open_file_gives_local_paths_and_range_files(tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(DATA)
    local = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    assert open_file(source(local, f"file://{tmp_path}/f.bin")) == str(tmp_path / "f.bin")
    view = open_file(_source(RecordingReader()))
    assert isinstance(view, RangeFile)
    assert view.read(4) == DATA[:4]


def test_h5py_through_the_file_view_reads_what_h5py_reads_from_disk(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(100_000, dtype="f8"), chunks=(1000,))
        f.create_dataset("y", data=np.arange(12, dtype="i2").reshape(3, 4))
    reader = RecordingReader(path.read_bytes())
    view = RangeFile(_source(reader), block_size=1 << 12, whole_below=0)
    with h5py.File(view, "r") as remote, h5py.File(path, "r") as disk:
        for name in ("x", "y"):
            np.testing.assert_array_equal(remote[name][...], disk[name][...])
    print(f"h5py read the file in {view.requests} batches of blocks")


def test_a_truncated_hdf5_file_over_a_store_is_a_typed_error(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    from vzcore.parsers import HDFParser

    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(10_000, dtype="f8"), chunks=(100,))
    memory = MemoryStore()
    obstore.put(memory, "f.h5", path.read_bytes()[:3000])
    registry = vc.ObjectStoreRegistry({"memory://m/": memory})
    with pytest.raises(vc.VirtualizationError, match=r"memory://m/f\.h5"):
        HDFParser()("memory://m/f.h5", registry)


# ---- for_urls -------------------------------------------------------------------------------


def test_for_urls_configures_s3_and_says_what_it_built(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="vzcore.registry"):
        registry = vc.ObjectStoreRegistry.for_urls(
            ["s3://bucket/a.nc", "s3://bucket/b.nc", "s3://other/c.nc"],
            anonymous=True,
            region="eu-west-1",
            endpoint="http://127.0.0.1:9000",
        )
    description = registry.describe()
    assert description.splitlines() == [
        (
            "s3://bucket/ -> S3Store(bucket='bucket', region='eu-west-1', "
            "endpoint='http://127.0.0.1:9000', skip_signature='true', allow_http=True)"
        ),
        (
            "s3://other/ -> S3Store(bucket='other', region='eu-west-1', "
            "endpoint='http://127.0.0.1:9000', skip_signature='true', allow_http=True)"
        ),
    ]
    assert description in caplog.text


def test_for_urls_builds_gcs_azure_http_and_local_stores(tmp_path: Path) -> None:
    registry = vc.ObjectStoreRegistry.for_urls(
        [
            "gs://gbucket/a.nc",
            "http://host.example/c.nc",
            "https://secure.example/d.nc",
            tmp_path / "e.nc",
        ],
        anonymous=True,
    )
    lines = dict(line.split(" -> ") for line in registry.describe().splitlines())
    assert lines["gs://gbucket/"] == "GCSStore(bucket='gbucket', skip_signature='true')"
    azure = vc.ObjectStoreRegistry.for_urls(
        ["az://container/b.nc"], anonymous=True, account_name="account"
    )
    assert azure.describe() == (
        "az://container/ -> "
        "AzureStore(container_name='container', account_name='account', skip_signature='true')"
    )
    assert lines["http://host.example/"].startswith("HTTPStore(")
    assert lines["https://secure.example/"].startswith("HTTPStore(")
    assert lines[f"file://{tmp_path}/"] == f"LocalStore({str(tmp_path)!r})"


def test_for_urls_never_shows_credentials() -> None:
    registry = vc.ObjectStoreRegistry.for_urls(
        ["s3://bucket/a.nc"], access_key_id="AKIDSECRET", secret_access_key="hush"
    )
    assert "AKIDSECRET" not in registry.describe()
    assert "hush" not in registry.describe()


def test_for_urls_refuses_what_it_cannot_build() -> None:
    with pytest.raises(vc.UnregisteredURLError, match="region= and endpoint= apply to s3"):
        vc.ObjectStoreRegistry.for_urls(["gs://b/a.nc"], region="eu-west-1")
    with pytest.raises(vc.UnregisteredURLError, match=r"cannot build a store for 's3://b/a\.nc'"):
        vc.ObjectStoreRegistry.for_urls(["s3://b/a.nc"], no_such_option=1)


def test_empty_ranges_need_no_request() -> None:
    reader = RecordingReader()
    got = _source(reader, ReadPolicy(coalesce=0)).read_ranges([5, 100, 9000], [5, 110, 9000])
    assert [bytes(b) for b in got] == [b"", DATA[100:110], b""]
    assert reader.batches == [[(100, 110)]]
    assert _source(reader).read_ranges([7], [7]) == [b""]


def test_a_corrupt_chunk_read_into_memory_names_file_and_chunk(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    from vzcore.parsers import HDFParser

    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(4000, dtype="f8"), chunks=(1000,), compression="gzip")
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    array = HDFParser()(f"file://{path}", registry)["x"]
    assert isinstance(array, vc.VirtualArray)
    entry = array.manifest.to_entries()["2"]
    data = bytearray(path.read_bytes())
    data[int(entry["offset"]) : int(entry["offset"]) + 16] = bytes(16)  # break chunk 2
    path.write_bytes(bytes(data))
    with pytest.raises(
        vc.ChunkDecodeError, match=rf"f\.h5: chunk \(2,\) \(bytes {entry['offset']}-"
    ):
        vc.read_array(array, registry)
