"""A real S3 endpoint for the tests: moto's server on loopback, counting requests.

`MotoS3Server` runs moto's WSGI application (the one `moto.server.ThreadedMotoServer`
runs) on ``127.0.0.1`` and a free port, behind a middleware that counts, per bucket,
the requests the server receives and the body bytes it sends back. Counting at the
server sees every client alike: obstore, Icechunk's Rust client, s3fs and boto3.

`S3Bucket` is one bucket on that server with everything a test needs to talk to it:
an obstore `S3Store`, a vz registry, uploads, Icechunk storage and virtual chunk
container, and the request counts. Nothing is read from or written to the
environment: every client is given the endpoint, region and keys explicitly.

The fixtures `s3_server` and `s3_bucket` (in ``tests/conftest.py``) wrap these.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import unquote

if TYPE_CHECKING:
    import icechunk
    from obstore.store import S3Store

    import vzcore as vc

REGION = "us-east-1"
ACCESS_KEY_ID = "vz-test-key"
SECRET_ACCESS_KEY = "vz-test-secret"

type WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class RequestCounter:
    """WSGI middleware counting requests (by bucket and method) and response body bytes.

    The bucket is the first path segment (path-style requests, ``/bucket/key``) or the
    first label of the host (virtual-hosted requests, ``bucket.localhost:port``).
    """

    def __init__(self, app: WSGIApp, server_host: str) -> None:
        self._app = app
        self._server_host = server_host
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str]] = Counter()
        self._bytes: Counter[tuple[str, str]] = Counter()

    def _bucket(self, environ: dict[str, Any]) -> str:
        host = str(environ.get("HTTP_HOST", "")).rsplit(":", 1)[0]
        if host and host not in (self._server_host, "localhost") and "." in host:
            return host.split(".", 1)[0]
        return unquote(str(environ.get("PATH_INFO", ""))).lstrip("/").split("/", 1)[0]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        key = (self._bucket(environ), str(environ.get("REQUEST_METHOD", "")).upper())
        with self._lock:
            self._requests[key] += 1
        return self._count_body(key, self._app(environ, start_response))

    def _count_body(self, key: tuple[str, str], body: Iterable[bytes]) -> Iterator[bytes]:
        try:
            for piece in body:
                with self._lock:
                    self._bytes[key] += len(piece)
                yield piece
        finally:
            close = getattr(body, "close", None)
            if callable(close):
                close()

    def requests(self, bucket: str, method: str = "GET") -> int:
        """How many ``method`` requests the server has received for ``bucket``."""
        with self._lock:
            return self._requests[(bucket, method.upper())]

    def bytes_sent(self, bucket: str, method: str = "GET") -> int:
        """Response body bytes the server has sent for ``method`` requests on ``bucket``."""
        with self._lock:
            return self._bytes[(bucket, method.upper())]


class MotoS3Server:
    """moto's server application on a loopback port, in a daemon thread.

    Use as a context manager, or call `start` and `stop`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._bucket_numbers = itertools.count()
        self.counter: RequestCounter | None = None

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self._server is None:
            raise RuntimeError("the moto server is not running; call start() first")
        return f"http://{self.host}:{self._server.server_port}"

    def start(self) -> Self:
        """Bind the port and serve (returns once the socket listens)."""
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args: object, **kwargs: object) -> None:
                pass  # one log line per request drowns a failing test's report

        self.counter = RequestCounter(DomainDispatcherApplication(create_backend_app), self.host)
        # make_server binds and listens before returning: no readiness wait is needed.
        self._server = make_server(
            self.host, self._port, self.counter, threaded=True, request_handler=QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="moto-s3", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down and close its socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = self._client = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def boto3_client(self) -> Any:
        """A boto3 S3 client for this server (explicit endpoint, region and keys)."""
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=self.endpoint,
                region_name=REGION,
                aws_access_key_id=ACCESS_KEY_ID,
                aws_secret_access_key=SECRET_ACCESS_KEY,
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
            )
        return self._client

    def create_bucket(self, name: str | None = None) -> S3Bucket:
        """A new, empty bucket (named ``vz-test-<n>-<pid>`` unless ``name`` is given)."""
        name = name or f"vz-test-{next(self._bucket_numbers)}-{os.getpid()}"
        self.boto3_client().create_bucket(Bucket=name)
        return S3Bucket(
            name=name,
            endpoint=self.endpoint,
            region=REGION,
            access_key_id=ACCESS_KEY_ID,
            secret_access_key=SECRET_ACCESS_KEY,
            counter=self.counter,
        )

    def delete_bucket(self, name: str) -> None:
        """Delete ``name`` and every object in it (frees moto's memory)."""
        client = self.boto3_client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys})
        client.delete_bucket(Bucket=name)


@contextmanager
def running_server() -> Iterator[MotoS3Server]:
    """A started `MotoS3Server`, stopped on exit."""
    with MotoS3Server() as server:
        yield server


@dataclass(frozen=True)
class S3Bucket:
    """One bucket on the moto server, and the clients configured for it.

    Attributes
    ----------
    name
        Bucket name, unique per test.
    endpoint
        ``http://127.0.0.1:<port>``.
    region, access_key_id, secret_access_key
        What every client is given explicitly (moto accepts any keys).
    """

    name: str
    endpoint: str
    region: str
    access_key_id: str
    secret_access_key: str
    counter: RequestCounter | None = field(default=None, repr=False, compare=False)

    @property
    def url(self) -> str:
        """``s3://<name>/``."""
        return f"s3://{self.name}/"

    def key_url(self, key: str) -> str:
        """``s3://<name>/<key>``."""
        return f"{self.url}{key.lstrip('/')}"

    def store(self) -> S3Store:
        """An obstore `S3Store` for the bucket (path-style requests over plain http)."""
        from obstore.store import S3Store

        return S3Store(
            self.name,
            endpoint=self.endpoint,
            region=self.region,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
            virtual_hosted_style_request=False,
            # A request moto leaves unanswered (seen twice in 5,000 runs on a loaded
            # machine, never reproduced) is retried after 10 s instead of failing the
            # test after obstore's default 2 x 30 s.
            client_options={"allow_http": True, "timeout": "10s", "connect_timeout": "5s"},
            retry_config={
                "max_retries": 2,
                "backoff": {"max_backoff": timedelta(seconds=0.2)},
                "retry_timeout": timedelta(seconds=45),
            },
        )

    def registry(self) -> vc.ObjectStoreRegistry:
        """A vz registry with this bucket's store at `url`."""
        import vzcore as vc

        return vc.ObjectStoreRegistry({self.url: self.store()})

    def put(self, key: str, data: bytes) -> str:
        """Upload ``data`` at ``key``; returns ``s3://<name>/<key>``."""
        import obstore

        obstore.put(self.store(), key.lstrip("/"), data)
        return self.key_url(key)

    def put_file(self, key: str, path: str | os.PathLike[str]) -> str:
        """Upload the local file ``path`` at ``key``; returns its s3:// URL."""
        return self.put(key, Path(path).read_bytes())

    def put_tree(self, prefix: str, folder: str | os.PathLike[str]) -> str:
        """Upload every file under ``folder`` below ``prefix`` (a zarr store, parquet refs...).

        Returns the URL of the prefix, without a trailing slash.
        """
        import obstore

        store = self.store()
        root = Path(folder)
        prefix = prefix.strip("/")
        files = sorted(path for path in root.rglob("*") if path.is_file())
        if not files:
            raise FileNotFoundError(f"{root} holds no files to upload")
        for path in files:
            key = f"{prefix}/{path.relative_to(root).as_posix()}"
            obstore.put(store, key, path.read_bytes())
        return self.key_url(prefix)

    def get_count(self) -> int:
        """GET requests the server has received for this bucket so far."""
        return self._counter().requests(self.name, "GET")

    def request_count(self, method: str) -> int:
        """``method`` (HEAD, PUT, ...) requests received for this bucket so far."""
        return self._counter().requests(self.name, method)

    def bytes_sent(self) -> int:
        """Body bytes the server has sent in answer to GETs on this bucket so far."""
        return self._counter().bytes_sent(self.name, "GET")

    def _counter(self) -> RequestCounter:
        if self.counter is None:
            raise RuntimeError(f"bucket {self.name!r} was made without a request counter")
        return self.counter

    def s3fs_options(self) -> dict[str, Any]:
        """Keyword arguments for ``s3fs.S3FileSystem`` (fsspec ``remote_options``)."""
        return {
            "endpoint_url": self.endpoint,
            "key": self.access_key_id,
            "secret": self.secret_access_key,
            "client_kwargs": {"region_name": self.region},
        }

    def icechunk_storage(self, prefix: str) -> icechunk.Storage:
        """Icechunk's S3 storage for a repository at ``s3://<name>/<prefix>``."""
        import icechunk

        return icechunk.s3_storage(
            bucket=self.name,
            prefix=prefix.strip("/"),
            region=self.region,
            endpoint_url=self.endpoint,
            allow_http=True,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
            force_path_style=True,
        )

    def icechunk_container(self) -> icechunk.VirtualChunkContainer:
        """A virtual chunk container for `url`, reading from the moto endpoint."""
        import icechunk

        store = icechunk.s3_store(
            region=self.region,
            endpoint_url=self.endpoint,
            allow_http=True,
            s3_compatible=True,
            force_path_style=True,
        )
        return icechunk.VirtualChunkContainer(self.url, store)

    def icechunk_credentials(self) -> dict[str, Any]:
        """``authorize_virtual_chunk_access`` for `icechunk_container`'s prefix."""
        import icechunk

        return icechunk.containers_credentials(
            {
                self.url: icechunk.s3_credentials(
                    access_key_id=self.access_key_id, secret_access_key=self.secret_access_key
                )
            }
        )

    def icechunk_config(self) -> icechunk.RepositoryConfig:
        """A default repository config with `icechunk_container` set."""
        import icechunk

        config = icechunk.RepositoryConfig.default()
        config.set_virtual_chunk_container(self.icechunk_container())
        return config
