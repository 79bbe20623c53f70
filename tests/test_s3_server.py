"""The S3 test server itself: uploads land, reads come back, requests are counted per bucket."""

from pathlib import Path

import icechunk
import numpy as np
import obstore
import zarr
from tests.s3_server import MotoS3Server, S3Bucket


def test_put_returns_the_url_and_a_registered_read_gets_the_bytes(s3_bucket: S3Bucket) -> None:
    url = s3_bucket.put("folder/data.bin", b"0123456789")
    assert url == f"s3://{s3_bucket.name}/folder/data.bin"
    reader, path = s3_bucket.registry().resolve(url)
    assert path == "folder/data.bin"
    assert [bytes(b) for b in reader.get_ranges(path, starts=[2, 7], ends=[5, 9])] == [
        b"234",
        b"78",
    ]


def test_gets_and_their_bytes_are_counted_at_the_server(s3_bucket: S3Bucket) -> None:
    s3_bucket.put("data.bin", bytes(range(200)))
    gets, sent = s3_bucket.get_count(), s3_bucket.bytes_sent()
    store = s3_bucket.store()
    assert bytes(obstore.get_range(store, "data.bin", start=10, end=60)) == bytes(range(10, 60))
    assert bytes(obstore.get(store, "data.bin").bytes()) == bytes(range(200))
    assert s3_bucket.get_count() - gets == 2
    assert s3_bucket.bytes_sent() - sent == 50 + 200
    assert s3_bucket.request_count("PUT") == 2  # CreateBucket and the upload


def test_each_bucket_counts_only_its_own_requests(s3_server: MotoS3Server) -> None:
    first, second = s3_server.create_bucket(), s3_server.create_bucket()
    try:
        assert first.name != second.name
        first.put("a", b"a")
        obstore.get(first.store(), "a").bytes()
        obstore.get(first.store(), "a").bytes()
        assert (first.get_count(), second.get_count()) == (2, 0)
    finally:
        s3_server.delete_bucket(first.name)
        s3_server.delete_bucket(second.name)


def test_put_tree_uploads_every_file_below_the_prefix(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "1").write_bytes(b"one")
    (tmp_path / "tree" / "top").write_bytes(b"top")
    assert s3_bucket.put_tree("/store/", tmp_path / "tree") == f"s3://{s3_bucket.name}/store"
    listed = {item["path"] for batch in obstore.list(s3_bucket.store()) for item in batch}
    assert listed == {"store/sub/1", "store/top"}
    assert bytes(obstore.get(s3_bucket.store(), "store/sub/1").bytes()) == b"one"


def test_icechunk_repository_on_s3_reads_a_virtual_chunk_on_s3(s3_bucket: S3Bucket) -> None:
    values = np.arange(6, dtype="<i4")
    source = s3_bucket.put("raw.bin", b"header" + values.tobytes())
    repository = icechunk.Repository.create(
        s3_bucket.icechunk_storage("repo"),
        s3_bucket.icechunk_config(),
        authorize_virtual_chunk_access=s3_bucket.icechunk_credentials(),
    )
    session = repository.writable_session("main")
    zarr.create_array(
        session.store, name="a", shape=(6,), chunks=(6,), dtype="<i4", compressors=None
    )
    session.store.set_virtual_ref("a/c/0", source, offset=6, length=values.nbytes)
    session.commit("one virtual chunk")
    reopened = icechunk.Repository.open(
        s3_bucket.icechunk_storage("repo"),
        authorize_virtual_chunk_access=s3_bucket.icechunk_credentials(),
    )
    store = reopened.readonly_session("main").store
    np.testing.assert_array_equal(zarr.open_array(store, path="a", mode="r")[:], values)
