"""A loopback HTTP proxy adding a delay to every request, and counting them.

`LatencyProxy` listens on ``127.0.0.1`` and a free port and forwards each request
(method, path, headers, body) to one upstream server (moto's S3 server in the tests
and benchmarks/s3_latency.py), after sleeping ``delay`` seconds: a client pointed at
the proxy sees a store ``delay`` seconds away per request, as an S3 client in a
cloud region sees S3 (10-30 ms a request). The proxy counts requests by method and
by ``(method, path)``. Stdlib only; one thread per client connection (HTTP/1.1,
keep-alive), each with its own keep-alive connection upstream, so concurrent
requests are delayed concurrently, not one after the other.

Requests are signed for the host the client sends (``Host`` is passed on
unchanged), and moto does not check signatures against its own address.

>>> with LatencyProxy("http://127.0.0.1:9", delay=0.02) as proxy:  # doctest: +SKIP
...     store = S3Store("bucket", endpoint=proxy.endpoint, ...)
...     proxy.requests("GET")
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import unquote, urlsplit

# Hop-by-hop headers (RFC 9110 7.6.1) are the proxy's own, never forwarded.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


class LatencyProxy:
    """Forwards HTTP requests to ``upstream`` (``http://host:port``) after ``delay`` seconds.

    Use as a context manager, or call `start` and `stop`. ``delay`` may be changed
    while the proxy runs.
    """

    def __init__(self, upstream: str, *, delay: float = 0.02, host: str = "127.0.0.1") -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"upstream must be http://host:port, not {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.delay = delay
        self.host = host
        self._lock = threading.Lock()
        self._methods: Counter[str] = Counter()
        self._paths: Counter[tuple[str, str]] = Counter()
        self.log: list[tuple[str, str, str | None]] = []
        """Every request forwarded: method, path and ``Range`` header (None without one)."""
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``: the address to give clients."""
        if self._server is None:
            raise RuntimeError("the proxy is not running; call start() first")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> Self:
        """Bind the port and serve (returns once the socket listens)."""
        server = ThreadingHTTPServer((self.host, 0), _handler_class(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.1,), name="latency-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the proxy down and close its socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- counts ---------------------------------------------------------------------------

    def count(self, method: str, path: str, byte_range: str | None = None) -> None:
        """Count one request (the proxy's handlers call this)."""
        with self._lock:
            self._methods[method] += 1
            self._paths[(method, path)] += 1
            self.log.append((method, path, byte_range))

    def requests(self, method: str = "GET", path: str | None = None) -> int:
        """How many ``method`` requests were forwarded (for ``path`` only, if given).

        ``path`` is the URL path without the query, percent-decoded: ``/bucket/key``.
        """
        with self._lock:
            if path is None:
                return self._methods[method.upper()]
            return self._paths[(method.upper(), path)]

    def by_path(self, method: str = "GET") -> dict[str, int]:
        """Requests per path for ``method``."""
        with self._lock:
            return {p: n for (m, p), n in self._paths.items() if m == method.upper()}

    def reset(self) -> None:
        """Forget the counts."""
        with self._lock:
            self._methods.clear()
            self._paths.clear()
            self.log.clear()


def _handler_class(proxy: LatencyProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as S3 clients expect

        _upstream: http.client.HTTPConnection | None = None

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one log line per request drowns a failing test's report

        def _forward(self) -> None:
            method = self.command.upper()
            proxy.count(method, unquote(urlsplit(self.path).path), self.headers.get("Range"))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            if proxy.delay > 0:
                time.sleep(proxy.delay)
            status, reason, response_headers, data = self._upstream_request(method, headers, body)
            self.send_response_only(status, reason)
            head = method == "HEAD"  # a HEAD's Content-Length is the object's size: kept
            for name, value in response_headers:
                lowered = name.lower()
                if lowered not in _HOP_BY_HOP and (head or lowered != "content-length"):
                    self.send_header(name, value)
            if not head:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if method != "HEAD" and data:
                self.wfile.write(data)

        def _upstream_request(
            self, method: str, headers: dict[str, str], body: bytes | None
        ) -> tuple[int, str, list[tuple[str, str]], bytes]:
            for attempt in range(2):  # once more on a fresh connection if moto closed it
                if self._upstream is None:
                    self._upstream = http.client.HTTPConnection(
                        proxy.upstream_host, proxy.upstream_port, timeout=30
                    )
                try:
                    self._upstream.request(method, self.path, body=body, headers=headers)
                    response = self._upstream.getresponse()
                    data = response.read()
                except (http.client.HTTPException, OSError):
                    self._upstream.close()
                    self._upstream = None
                    if attempt:
                        raise
                    continue
                if response.will_close:
                    self._upstream.close()
                    self._upstream = None
                return response.status, response.reason, response.getheaders(), data
            raise AssertionError("unreachable")

        def finish(self) -> None:
            if self._upstream is not None:
                self._upstream.close()
            super().finish()

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward

    return Handler
