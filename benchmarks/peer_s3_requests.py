"""The kerchunk side of benchmarks/s3_requests.py: ``SingleHdf5ToZarr`` of one file on S3.

Run by benchmarks/s3_requests.py (in the peers' venv when kerchunk is not installed in
vz's); the server counts the requests. Reads the secret key from stdin; prints one
line of JSON: the reader used, the number of chunk references and the seconds taken.

    python peer_s3_requests.py ENDPOINT BUCKET KEY ACCESS_KEY_ID < SECRET

With s3fs installed the file is opened as kerchunk users open it (``fsspec.open`` of
the s3:// URL, s3fs's defaults: 50 MiB read-ahead blocks). Without s3fs, the same
fsspec read-ahead buffering runs over obstore's ranged GETs.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import fsspec
from kerchunk.hdf import SingleHdf5ToZarr

S3FS_BLOCK_SIZE = 50 * 2**20  # s3fs.S3FileSystem.default_block_size


class ObstoreReadAheadFile(fsspec.spec.AbstractBufferedFile):  # type: ignore[misc]
    """fsspec's read-ahead buffered file (as s3fs opens one) fetching with obstore."""

    def __init__(self, store: Any, key: str, size: int) -> None:
        self._store, self._key = store, key
        super().__init__(
            fs=None, path=key, mode="rb", block_size=S3FS_BLOCK_SIZE, cache_type="readahead",
            size=size,
        )  # fmt: skip

    def _fetch_range(self, start: int, end: int) -> bytes:
        import obstore

        return bytes(obstore.get_range(self._store, self._key, start=start, end=end))


def open_source(endpoint: str, bucket: str, key: str, access: str, secret: str) -> tuple[Any, str]:
    """The file on S3, opened for kerchunk; and what opened it."""
    try:
        import s3fs  # noqa: F401
    except ImportError:
        import obstore
        from obstore.store import S3Store

        store = S3Store(
            bucket,
            endpoint=endpoint,
            region="us-east-1",
            access_key_id=access,
            secret_access_key=secret,
            virtual_hosted_style_request=False,
            client_options={"allow_http": True},
        )
        size = int(obstore.head(store, key)["size"])
        return ObstoreReadAheadFile(store, key, size), "fsspec read-ahead over obstore, no s3fs"
    options = {"endpoint_url": endpoint, "key": access, "secret": secret}
    return fsspec.open(f"s3://{bucket}/{key}", "rb", **options).open(), "s3fs defaults"


def main() -> None:
    endpoint, bucket, key, access = sys.argv[1:5]
    secret = sys.stdin.read().strip()
    start = time.perf_counter()
    source, reader = open_source(endpoint, bucket, key, access, secret)
    with source:
        refs = SingleHdf5ToZarr(source, url=f"s3://{bucket}/{key}", inline_threshold=0).translate()
    seconds = time.perf_counter() - start
    chunk_refs = sum(1 for k, v in refs["refs"].items() if isinstance(v, list))
    print(json.dumps({"reader": reader, "chunk_refs": chunk_refs, "seconds": seconds}))


if __name__ == "__main__":
    main()
