"""Faults between vz and S3: every one is recovered by a retry or surfaces as a typed error.

A `FaultProxy` sits between vz and moto's S3 server and spoils chosen requests:
500 and 503 answers, an answer held back past the client's timeout, a reset
connection, a body cut short of its ``Content-Length`` (the connection closed
mid-body), a well-formed answer with fewer bytes than the range asked. A fault on
one request is retried (obstore's retries, set with ``retries=`` and ``timeout=``
of `ObjectStoreRegistry.for_urls`) and the read gives the source's bytes: a
digest of every chunk served is compared with the bytes of the local file it was
uploaded from, and the decoded values with h5py's. A fault on every request
exhausts the retries (counted at the proxy: ``retries + 1`` requests) and raises a
`SourceReadError` naming the URL; a short body raises `ShortReadError` and is
never returned as data.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr
from tests.latency_proxy import Fault, FaultProxy, Request, always, fail_nth
from tests.s3_server import MotoS3Server, S3Bucket
from tests.writer_corpus import PyarrowReferenceMapper
from zarr.core.buffer import default_buffer_prototype

import vzcore as vc
from vzcore.byteranges import ShortReadError, SourceReadError, source
from vzcore.parsers import HDFParser, KerchunkParquetParser, ManifestParquetParser
from vzcore.parsers.protocol import Parser
from vzcore.writers import write_kerchunk_parquet

RETRIES = 2
TIMEOUT = timedelta(seconds=1)  # what a held-back answer must exceed; moto answers in ms
BACKOFF = {"init_backoff": timedelta(milliseconds=5), "max_backoff": timedelta(milliseconds=20)}

# Faults a retry recovers from, and those that stay if every request has them.
TRANSIENT = {
    "503": Fault.status(503),
    "500": Fault.status(500),
    "reset": Fault.reset(),
    "held past the timeout": Fault.delay(TIMEOUT.total_seconds() + 1),
    "body cut short": Fault.truncate(0.5),
}


@pytest.fixture
def proxy(s3_server: MotoS3Server) -> Iterator[FaultProxy]:
    with FaultProxy(s3_server.endpoint) as running:
        yield running


def faulty_registry(
    bucket: S3Bucket, proxy: FaultProxy, *, retries: int = RETRIES
) -> vc.ObjectStoreRegistry:
    """A registry reading ``bucket`` through the proxy, with short backoffs and timeouts."""
    return vc.ObjectStoreRegistry.for_urls(
        [bucket.url],
        endpoint=proxy.endpoint,
        region=bucket.region,
        access_key_id=bucket.access_key_id,
        secret_access_key=bucket.secret_access_key,
        retries=retries,
        timeout=TIMEOUT,
        client_options={"connect_timeout": "1s"},
        retry_config={"backoff": BACKOFF, "retry_timeout": timedelta(seconds=20)},
    )


@pytest.fixture
def sample(tmp_path: Path, s3_bucket: S3Bucket) -> tuple[Path, str, vc.VirtualGroup]:
    """A 16-chunk gzip HDF5 file of noise on S3, parsed without faults: (local, url, group)."""
    local = tmp_path / "noise.h5"
    values = np.random.default_rng(7).standard_normal((16, 24, 24)).astype("<f4")
    with h5py.File(local, "w") as f:
        f.create_dataset("x", data=values, chunks=(1, 24, 24), compression="gzip")
    url = s3_bucket.put_file("noise.h5", local)
    return local, url, HDFParser()(url, s3_bucket.registry())


def object_path(bucket: S3Bucket, key: str) -> str:
    return f"/{bucket.name}/{key}"


def served_digests(store: vc.ManifestStore, name: str, grid: tuple[int, ...]) -> list[str]:
    """The SHA-256 of every chunk ``store`` serves for array ``name``, in C order."""
    keys = [f"{name}/c/" + "/".join(map(str, index)) for index in np.ndindex(*grid)]

    async def every() -> list[str]:
        prototype = default_buffer_prototype()
        buffers = await asyncio.gather(*(store.get(key, prototype) for key in keys))
        assert all(b is not None for b in buffers)
        return [hashlib.sha256(b.to_bytes()).hexdigest() for b in buffers if b is not None]

    return asyncio.run(every())


def source_digests(local: Path, array: vc.VirtualArray) -> list[str]:
    """The SHA-256 of each chunk's bytes in the local file, from the manifest's ranges."""
    _, offsets, lengths = array.manifest.to_arrays()
    data = local.read_bytes()
    return [
        hashlib.sha256(data[int(o) : int(o) + int(n)]).hexdigest()
        for o, n in zip(offsets.ravel(), lengths.ravel(), strict=True)
    ]


def assert_reads_the_source(
    group: vc.VirtualGroup, registry: vc.ObjectStoreRegistry, local: Path
) -> None:
    """Every chunk's bytes as served hash to the source's, and the values equal h5py's."""
    array = group["x"]
    assert isinstance(array, vc.VirtualArray)
    store = vc.ManifestStore(group, registry=registry)
    assert served_digests(store, "x", array.manifest.grid) == source_digests(local, array)
    with h5py.File(local, "r") as f:
        np.testing.assert_array_equal(zarr.open_array(store, path="x", mode="r")[...], f["x"][...])


@pytest.mark.parametrize("fault", list(TRANSIENT.values()), ids=list(TRANSIENT))
def test_a_fault_on_one_request_is_retried_and_every_byte_is_the_sources(
    sample: tuple[Path, str, vc.VirtualGroup],
    s3_bucket: S3Bucket,
    proxy: FaultProxy,
    fault: Fault,
) -> None:
    local, _, group = sample
    registry = faulty_registry(s3_bucket, proxy)
    proxy.rule = fail_nth("GET", object_path(s3_bucket, "noise.h5"), {1: fault})
    assert_reads_the_source(group, registry, local)
    assert proxy.faults == [fault]  # the first GET was spoilt, a retry served it


@pytest.mark.parametrize("fault", list(TRANSIENT.values()), ids=list(TRANSIENT))
def test_a_fault_on_every_request_is_a_typed_error_naming_the_url_after_the_retries(
    sample: tuple[Path, str, vc.VirtualGroup],
    s3_bucket: S3Bucket,
    proxy: FaultProxy,
    fault: Fault,
) -> None:
    _, url, group = sample
    path = object_path(s3_bucket, "noise.h5")
    registry = faulty_registry(s3_bucket, proxy, retries=1)
    proxy.rule = always("GET", path, fault)
    array = zarr.open_array(vc.ManifestStore(group, registry=registry), path="x", mode="r")
    kind = ShortReadError if fault.kind == "truncate" else SourceReadError
    with pytest.raises(kind) as info:
        array[0]
    assert info.value.url == url
    assert url in str(info.value)
    assert "'x/c/0/0/0'" in str(info.value)
    assert proxy.requests("GET", path) == 2  # the request and its one retry


def test_without_retries_the_first_fault_is_the_error(
    sample: tuple[Path, str, vc.VirtualGroup], s3_bucket: S3Bucket, proxy: FaultProxy
) -> None:
    _, url, group = sample
    path = object_path(s3_bucket, "noise.h5")
    proxy.rule = fail_nth("GET", path, {1: Fault.status(503)})
    store = vc.ManifestStore(group, registry=faulty_registry(s3_bucket, proxy, retries=0))
    with pytest.raises(SourceReadError, match="503") as info:
        zarr.open_array(store, path="x", mode="r")[3]
    assert info.value.url == url
    assert proxy.requests("GET", path) == 1


@pytest.mark.parametrize("keep", [0.0, 0.5, 0.99])
def test_a_well_formed_short_answer_is_a_short_read_never_data(
    sample: tuple[Path, str, vc.VirtualGroup], s3_bucket: S3Bucket, proxy: FaultProxy, keep: float
) -> None:
    """An answer whose Content-Length is honest but shorter than the range asked:
    obstore returns the short buffer, vz's length check refuses it."""
    _, url, group = sample
    array = group["x"]
    assert isinstance(array, vc.VirtualArray)
    _, offsets, lengths = array.manifest.to_arrays()
    start, length = int(offsets.ravel()[5]), int(lengths.ravel()[5])
    registry = faulty_registry(s3_bucket, proxy)
    proxy.rule = always("GET", object_path(s3_bucket, "noise.h5"), Fault.short(keep))
    with pytest.raises(ShortReadError) as info:
        source(registry, url).read_ranges([start], [start + length])
    assert info.value.url == url
    assert f"bytes {start}-{start + length} requested, {int(length * keep)} returned" in str(
        info.value
    )
    store = vc.ManifestStore(group, registry=registry)
    with pytest.raises(ShortReadError, match="'x/c/5/0/0'"):
        zarr.open_array(store, path="x", mode="r")[5]


def test_parsing_through_faults_gives_the_same_group(
    sample: tuple[Path, str, vc.VirtualGroup], s3_bucket: S3Bucket, proxy: FaultProxy
) -> None:
    """Detection, the HEAD, h5py's reads: each first request of the file spoilt once."""
    local, url, clean = sample
    path = object_path(s3_bucket, "noise.h5")
    registry = faulty_registry(s3_bucket, proxy)
    proxy.rule = lambda request: (
        Fault.status(503) if request.path == path and request.number == 1 else None
    )
    group = HDFParser()(url, registry)
    assert group == clean
    assert {f.kind for f in proxy.faults} == {"status"}
    assert len(proxy.faults) >= 2
    assert_reads_the_source(group, registry, local)


def test_parsing_a_file_whose_bodies_are_cut_short_is_a_short_read_naming_it(
    sample: tuple[Path, str, vc.VirtualGroup], s3_bucket: S3Bucket, proxy: FaultProxy
) -> None:
    """h5py reads through a RangeFile: the typed error comes out, not h5py's OSError."""
    _, url, _ = sample
    proxy.rule = always("GET", object_path(s3_bucket, "noise.h5"), Fault.short(0.5))
    with pytest.raises(ShortReadError) as info:
        HDFParser()(url, faulty_registry(s3_bucket, proxy))
    assert info.value.url == url


def test_a_failing_head_is_retried_or_reported_unreadable_by_verify(
    sample: tuple[Path, str, vc.VirtualGroup], s3_bucket: S3Bucket, proxy: FaultProxy
) -> None:
    _, url, group = sample
    path = object_path(s3_bucket, "noise.h5")
    registry = faulty_registry(s3_bucket, proxy)
    proxy.rule = fail_nth("HEAD", path, {1: Fault.reset()})
    assert [c.status for c in vc.verify(group, registry)] == ["unchanged"]
    proxy.rule = always("HEAD", path, Fault.status(503))
    (check,) = vc.verify(group, registry)
    assert check.status == "unreadable"
    assert url in check.reason
    assert "503" in check.reason
    store = vc.ManifestStore(group, registry=registry, check_sources=True)
    with pytest.raises(vc.SourceChangedError, match="unreadable"):
        zarr.open_array(store, path="x", mode="r")[0]


def test_retries_and_timeout_are_the_registrys_and_say_so(s3_bucket: S3Bucket) -> None:
    registry = vc.ObjectStoreRegistry.for_urls(
        [s3_bucket.url], endpoint=s3_bucket.endpoint, region=s3_bucket.region, retries=4,
        timeout="3s",
    )  # fmt: skip
    assert "timeout='3s', retries=4" in registry.describe()
    with pytest.raises(vc.VirtualizationError, match="not both"):
        vc.ObjectStoreRegistry.for_urls([s3_bucket.url], retries=1, retry_config={"max_retries": 2})
    with pytest.raises(vc.VirtualizationError, match="not both"):
        vc.ObjectStoreRegistry.for_urls(
            [s3_bucket.url], timeout="1s", client_options={"timeout": "2s"}
        )
    with pytest.raises(vc.VirtualizationError, match="retries=-1"):
        vc.ObjectStoreRegistry.for_urls([s3_bucket.url], retries=-1)


# ---- writes: one object, put whole or not at all ------------------------------------------------


def test_kerchunk_json_on_s3_is_replaced_whole_or_not_at_all(
    sample: tuple[Path, str, vc.VirtualGroup], s3_bucket: S3Bucket, proxy: FaultProxy
) -> None:
    """A put that fails (the connection reset once the body is sent, every retry) leaves
    the previous references and their sidecar as they were, readable."""
    from vzcore.parsers import KerchunkJSONParser
    from vzcore.writers import WriteError, write_kerchunk_json

    local, _, group = sample
    registry = faulty_registry(s3_bucket, proxy, retries=1)
    refs = s3_bucket.key_url("refs/noise.json")
    assert write_kerchunk_json(group, refs, registry=registry) == refs
    store = s3_bucket.store()
    before = {
        key: bytes(store.get(key).bytes())
        for key in ("refs/noise.json", "refs/noise.json.vz-sources.json")
    }
    parsed = KerchunkJSONParser()(refs, registry)
    assert parsed.sources == group.sources  # from the sidecar
    assert_reads_the_source(parsed, registry, local)

    x = group["x"]
    assert isinstance(x, vc.VirtualArray)
    twice = vc.VirtualGroup(arrays={"x": vc.concat([x, x], axis=0)}, sources=group.sources)
    proxy.reset()
    proxy.rule = always("PUT", object_path(s3_bucket, "refs/noise.json"), Fault.reset())
    with pytest.raises(WriteError, match="the upload failed") as info:
        write_kerchunk_json(twice, refs, registry=registry)
    assert info.value.path == refs
    assert proxy.requests("PUT", object_path(s3_bucket, "refs/noise.json")) == 2  # and a retry
    assert {key: bytes(store.get(key).bytes()) for key in before} == before
    assert KerchunkJSONParser()(refs, registry) == parsed

    proxy.rule = None
    write_kerchunk_json(twice, refs, registry=registry)
    assert KerchunkJSONParser()(refs, registry)["x"].metadata.shape == (32, 24, 24)


def test_a_manifest_parquet_array_on_s3_is_one_put(
    sample: tuple[Path, str, vc.VirtualGroup], s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    from vzcore.writers import WriteError, write_manifest_parquet

    _, _, group = sample
    registry = s3_bucket.registry()
    url = s3_bucket.key_url("manifests/x.parquet")
    assert write_manifest_parquet(group["x"], url, registry=registry) == url
    downloaded = tmp_path / "x.parquet"
    downloaded.write_bytes(bytes(s3_bucket.store().get("manifests/x.parquet").bytes()))
    assert vc.read_manifest_parquet(downloaded) == group["x"]
    with pytest.raises(WriteError, match="needs registry="):
        write_manifest_parquet(group["x"], url)
    assert listed(s3_bucket) == ["manifests/x.parquet", "noise.h5"]


# ---- writes: a folder, put manifest-last ----------------------------------------------------


def listed(bucket: S3Bucket, prefix: str | None = None) -> list[str]:
    """The keys in ``bucket`` (under ``prefix``), sorted."""
    return sorted(item["path"] for batch in bucket.store().list(prefix) for item in batch)


def contents(bucket: S3Bucket, prefix: str) -> dict[str, bytes]:
    store = bucket.store()
    return {key: bytes(store.get(key).bytes()) for key in listed(bucket, prefix)}


def puts(bucket: S3Bucket, proxy: FaultProxy, prefix: str) -> list[str]:
    """The keys below ``prefix`` the proxy saw put, in order (retries included)."""
    start = object_path(bucket, prefix) + "/"
    return [
        path.removeprefix(start)
        for m, path, _ in proxy.log
        if m == "PUT" and path.startswith(start)
    ]


def two_levels(group: vc.VirtualGroup) -> vc.VirtualGroup:
    """``x`` at the top and, doubled along time, in subgroup ``sub``."""
    x = group["x"]
    assert isinstance(x, vc.VirtualArray)
    sub = vc.VirtualGroup(arrays={"y": vc.concat([x, x], axis=0)}, attributes={"level": 2})
    return vc.VirtualGroup(arrays={"x": x}, groups={"sub": sub}, sources=group.sources)


def test_kerchunk_parquet_on_s3_is_put_zmetadata_last_and_reads_back(
    sample: tuple[Path, str, vc.VirtualGroup], s3_bucket: S3Bucket, proxy: FaultProxy
) -> None:
    """Read back by vz and by fsspec's ReferenceFileSystem (s3fs fetching the chunks),
    the values are h5py's and xarray's."""
    import fsspec
    import xarray as xr

    local, _, group = sample
    registry = faulty_registry(s3_bucket, proxy)
    refs = s3_bucket.key_url("refs/noise.parq")
    assert write_kerchunk_parquet(group, refs, record_size=5, registry=registry) == refs
    order = puts(s3_bucket, proxy, "refs/noise.parq")
    assert order == ["vz-sources.json"] + [f"x/refs.{k}.parq" for k in range(4)] + [".zmetadata"]
    assert listed(s3_bucket, "refs/noise.parq") == sorted(f"refs/noise.parq/{k}" for k in order)

    parsed = KerchunkParquetParser()(refs, registry)
    assert parsed.sources == group.sources  # from the sidecar
    assert_reads_the_source(parsed, registry, local)

    options = s3_bucket.s3fs_options()
    mapper = PyarrowReferenceMapper(refs, fs=fsspec.filesystem("s3", **options))
    fs = fsspec.filesystem(
        "reference", fo=mapper, remote_protocol="s3",
        remote_options={**options, "asynchronous": True}, asynchronous=True,
    )  # fmt: skip
    root = zarr.open_group(zarr.storage.FsspecStore(fs, read_only=True, path=""), mode="r")
    with (
        h5py.File(local) as f,
        xr.open_dataset(local, engine="h5netcdf", phony_dims="access") as expected,
    ):
        np.testing.assert_array_equal(root["x"][...], f["x"][...])
        np.testing.assert_array_equal(root["x"][...], expected["x"].values)


def test_a_manifest_parquet_group_on_s3_is_put_each_group_document_after_its_arrays(
    sample: tuple[Path, str, vc.VirtualGroup], s3_bucket: S3Bucket, proxy: FaultProxy
) -> None:
    from vzcore.writers import write_manifest_parquet

    local, _, group = sample
    nested = two_levels(group)
    registry = faulty_registry(s3_bucket, proxy)
    url = s3_bucket.key_url("manifests/all")
    assert write_manifest_parquet(nested, url, registry=registry) == url
    assert puts(s3_bucket, proxy, "manifests/all") == [
        "sub/y.parquet", "x.parquet", "sub/vz-group.json", "vz-group.json",
    ]  # fmt: skip
    parsed = ManifestParquetParser()(url, registry)
    assert parsed == nested
    assert_reads_the_source(parsed, registry, local)
    y = parsed["sub"]["y"]
    assert isinstance(y, vc.VirtualArray)
    store = vc.ManifestStore(parsed, registry=registry)
    with h5py.File(local) as f:
        twice = np.concatenate([f["x"][...], f["x"][...]])
        np.testing.assert_array_equal(zarr.open_array(store, path="sub/y", mode="r")[...], twice)


def _kerchunk_parquet(
    group: vc.VirtualGroup, url: str, registry: vc.ObjectStoreRegistry
) -> Path | str:
    return write_kerchunk_parquet(group, url, record_size=5, registry=registry)


def _manifest_parquet(
    group: vc.VirtualGroup, url: str, registry: vc.ObjectStoreRegistry
) -> Path | str:
    return vc.write_manifest_parquet(group, url, registry=registry)


type FolderWriter = Callable[[vc.VirtualGroup, str, vc.ObjectStoreRegistry], Path | str]

# format: its writer, the key of its third put, its reader
FOLDER_WRITERS: dict[str, tuple[FolderWriter, str, Parser]] = {
    "kerchunk-parquet": (_kerchunk_parquet, "sub/y/refs.2.parq", KerchunkParquetParser()),
    "manifest-parquet": (_manifest_parquet, "sub/vz-group.json", ManifestParquetParser()),
}


@pytest.mark.parametrize("fmt", list(FOLDER_WRITERS))
def test_a_put_failing_mid_folder_leaves_no_store_and_no_objects(
    sample: tuple[Path, str, vc.VirtualGroup], s3_bucket: S3Bucket, proxy: FaultProxy, fmt: str
) -> None:
    """The third put fails every retry: the two put before it (and it) are deleted, the
    marker is never put, and the prefix holds nothing; a second try without the fault
    writes the store."""
    from vzcore.writers import WriteError

    _, _, group = sample
    write, third, read = FOLDER_WRITERS[fmt]
    nested = two_levels(group)
    url = s3_bucket.key_url("out")
    registry = faulty_registry(s3_bucket, proxy, retries=1)
    proxy.rule = always("PUT", object_path(s3_bucket, f"out/{third}"), Fault.reset())
    with pytest.raises(WriteError, match=f"the upload of {third} failed") as info:
        write(nested, url, registry)
    assert info.value.path == url
    assert "the objects put were deleted" in str(info.value)
    order = puts(s3_bucket, proxy, "out")
    assert order[2:] == [third, third]  # and its retry; nothing after it
    assert listed(s3_bucket) == ["noise.h5"]
    with pytest.raises(vc.VirtualizationError):
        read(url, s3_bucket.registry())

    proxy.rule = None
    assert write(nested, url, registry) == url
    assert listed(s3_bucket, "out")


def test_objects_a_failed_folder_write_cannot_delete_are_named(
    sample: tuple[Path, str, vc.VirtualGroup], s3_bucket: S3Bucket, proxy: FaultProxy
) -> None:
    """The third put and every delete fail: the error names what is left behind,
    and without ``.zmetadata`` the leftovers read as no store."""
    from vzcore.writers import WriteError

    _, _, group = sample
    url = s3_bucket.key_url("out")
    registry = faulty_registry(s3_bucket, proxy, retries=0)
    failing = {object_path(s3_bucket, "out/sub/y/refs.2.parq")}

    def rule(request: Request) -> Fault | None:
        # obstore deletes on S3 with a POST of DeleteObjects to the bucket.
        deleting = request.method == "POST" and request.path == object_path(s3_bucket, "")[:-1]
        if deleting or (request.method == "PUT" and request.path in failing):
            return Fault.status(503)
        return None

    proxy.rule = rule
    with pytest.raises(WriteError, match="could not delete") as info:
        _kerchunk_parquet(two_levels(group), url, registry)
    left = ["sub/y/refs.2.parq", "sub/y/refs.1.parq", "sub/y/refs.0.parq"]
    assert f"could not delete {[f'out/{name}' for name in left]}" in str(info.value)
    assert listed(s3_bucket, "out") == sorted(f"out/{name}" for name in left[1:])
    with pytest.raises(vc.VirtualizationError):
        KerchunkParquetParser()(url, s3_bucket.registry())


def test_a_failed_put_of_a_new_icechunk_repository_leaves_no_objects(
    sample: tuple[Path, str, vc.VirtualGroup], s3_bucket: S3Bucket, proxy: FaultProxy
) -> None:
    """``vz virtualize --format icechunk`` to S3: the root object ``repo`` goes last;
    when its put fails, what was put is deleted and no repository is found there."""
    import icechunk

    from vzcore.writers import WriteError
    from vzxarray import open_virtual_dataset
    from vzxarray.cli import write_icechunk_repository

    local, source_url, _ = sample
    url = s3_bucket.key_url("repo.icechunk")
    registry = faulty_registry(s3_bucket, proxy, retries=1)
    dataset = open_virtual_dataset(source_url, registry=s3_bucket.registry())
    proxy.rule = always("PUT", object_path(s3_bucket, "repo.icechunk/repo"), Fault.reset())
    with pytest.raises(WriteError, match="the upload of repo failed") as info:
        write_icechunk_repository(dataset, url, registry)
    assert "the objects put were deleted" in str(info.value)
    assert puts(s3_bucket, proxy, "repo.icechunk")[-2:] == ["repo", "repo"]  # and its retry
    assert listed(s3_bucket) == ["noise.h5"]
    storage = s3_bucket.icechunk_storage("repo.icechunk")
    assert not icechunk.Repository.exists(storage)

    proxy.rule = None
    write_icechunk_repository(dataset, url, registry)
    repository = icechunk.Repository.open(
        storage, authorize_virtual_chunk_access=s3_bucket.icechunk_credentials()
    )
    array = zarr.open_array(repository.readonly_session("main").store, path="x", mode="r")
    with h5py.File(local) as f:
        np.testing.assert_array_equal(array[...], f["x"][...])


@pytest.mark.parametrize("fmt", list(FOLDER_WRITERS))
def test_an_existing_folder_store_on_s3_is_refused_unchanged(
    sample: tuple[Path, str, vc.VirtualGroup], s3_bucket: S3Bucket, proxy: FaultProxy, fmt: str
) -> None:
    from vzcore.writers import WriteError

    _, _, group = sample
    write, _, _ = FOLDER_WRITERS[fmt]
    url = s3_bucket.key_url("out")
    registry = faulty_registry(s3_bucket, proxy)
    write(two_levels(group), url, registry)
    before = contents(s3_bucket, "out")
    proxy.reset()
    with pytest.raises(WriteError, match="cannot be replaced atomically") as info:
        write(group, url, registry)
    assert info.value.path == url
    assert proxy.requests("PUT") == 0
    assert contents(s3_bucket, "out") == before
    # A stray object (no store) is refused too: the prefix is not this write's to mix into.
    s3_bucket.put("stray/notes.txt", b"mine")
    with pytest.raises(WriteError, match="already holds objects"):
        write(group, s3_bucket.key_url("stray"), registry)
    assert listed(s3_bucket, "stray") == ["stray/notes.txt"]


def test_an_icechunk_commit_on_s3_whose_last_put_fails_commits_nothing(
    sample: tuple[Path, str, vc.VirtualGroup], s3_bucket: S3Bucket, proxy: FaultProxy
) -> None:
    """The references and the snapshot are stored, the put that publishes it (the
    repository's ``repo`` object) fails every retry: the branch tip stays the first commit."""
    import icechunk

    from vzcore.parsers import IcechunkParser
    from vzcore.writers import icechunk_commit_metadata, write_icechunk

    local, _, group = sample
    config = s3_bucket.icechunk_config()
    config.storage = icechunk.StorageSettings(
        retries=icechunk.StorageRetriesSettings(
            max_tries=2, initial_backoff_ms=5, max_backoff_ms=20
        )
    )
    through_proxy = icechunk.s3_storage(
        bucket=s3_bucket.name,
        prefix="repo",
        region=s3_bucket.region,
        endpoint_url=proxy.endpoint,
        allow_http=True,
        access_key_id=s3_bucket.access_key_id,
        secret_access_key=s3_bucket.secret_access_key,
        force_path_style=True,
    )
    credentials = s3_bucket.icechunk_credentials()
    repository = icechunk.Repository.create(
        through_proxy, config, authorize_virtual_chunk_access=credentials
    )
    session = repository.writable_session("main")
    write_icechunk(group, session.store)
    first = session.commit("sixteen steps", metadata=icechunk_commit_metadata(group))

    x = group["x"]
    assert isinstance(x, vc.VirtualArray)
    twice = vc.VirtualGroup(arrays={"x": vc.concat([x, x], axis=0)}, sources=group.sources)
    session = repository.writable_session("main")
    write_icechunk(twice, session.store, mode="w")
    proxy.rule = always("PUT", object_path(s3_bucket, "repo/repo"), Fault.status(503))
    with pytest.raises(icechunk.IcechunkError):
        session.commit("thirty-two steps", metadata=icechunk_commit_metadata(twice))
    assert proxy.faults  # the publishing put was refused

    reopened = icechunk.Repository.open(
        s3_bucket.icechunk_storage("repo"), authorize_virtual_chunk_access=credentials
    )
    assert reopened.lookup_branch("main") == first
    parsed = IcechunkParser()(s3_bucket.key_url("repo"), s3_bucket.registry())
    assert parsed["x"].metadata.shape == (16, 24, 24)
    assert_reads_the_source(parsed, s3_bucket.registry(), local)
