"""A loopback HTTP proxy adding a delay to every request, and counting them; faults on demand.

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

`FaultProxy` is the same proxy with faults injected per request, chosen by a rule
(`fail_nth`, or any callable): an error status (500, 503) sent instead of
forwarding, a response held back longer than the client waits, the connection
reset, or a response whose ``Content-Length`` promises more body than is sent before
the connection closes.

>>> with FaultProxy(moto, rule=fail_nth("GET", "/bucket/a.nc", {1: Fault.status(503)})) as proxy:  # doctest: +SKIP
...     ...  # the first GET of /bucket/a.nc is answered 503; the rest are forwarded
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self
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
        self.faults: list[Fault] = []
        """Every fault injected (`FaultProxy`), in order."""
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

    def count(self, method: str, path: str, byte_range: str | None = None) -> int:
        """Count one request (the proxy's handlers call this); its number for this path (1, 2...)."""
        with self._lock:
            self._methods[method] += 1
            self._paths[(method, path)] += 1
            self.log.append((method, path, byte_range))
            return self._paths[(method, path)]

    def fault(self, request: Request) -> Fault | None:
        """The fault to inject into ``request``: none (`FaultProxy` chooses some)."""
        return None

    def injected(self, fault: Fault) -> None:
        """Note one injected fault (the handlers call this)."""
        with self._lock:
            self.faults.append(fault)

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
            self.faults.clear()


def _handler_class(proxy: LatencyProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as S3 clients expect

        _upstream: http.client.HTTPConnection | None = None

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one log line per request drowns a failing test's report

        def _forward(self) -> None:
            method = self.command.upper()
            path = unquote(urlsplit(self.path).path)
            byte_range = self.headers.get("Range")
            number = proxy.count(method, path, byte_range)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            fault = proxy.fault(Request(method, path, byte_range, number))
            if proxy.delay > 0:
                time.sleep(proxy.delay)
            if fault is not None:
                if fault.kind == "status":
                    proxy.injected(fault)
                    self._send_error_status(fault.code)
                    return
                if fault.kind == "reset":
                    proxy.injected(fault)
                    self._reset()
                    return
                if fault.kind == "delay":
                    proxy.injected(fault)
                    time.sleep(fault.seconds)
            status, reason, response_headers, data = self._upstream_request(method, headers, body)
            if (
                fault is not None
                and fault.kind in ("truncate", "short")
                and method == "GET"
                and data
            ):
                proxy.injected(fault)
                self._send_truncated(status, reason, response_headers, data, fault)
                return
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

        def _send_error_status(self, code: int) -> None:
            """An S3-style error document with ``code``, the connection kept alive."""
            name = {500: "InternalError", 503: "SlowDown"}.get(code, "InternalError")
            body = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{name}</Code>'
                f"<Message>injected by the test proxy</Message></Error>"
            ).encode()
            self.send_response_only(code)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command.upper() != "HEAD":
                self.wfile.write(body)

        def _reset(self) -> None:
            """Close the client's connection with a TCP reset (SO_LINGER 0), nothing sent."""
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

        def _send_truncated(
            self,
            status: int,
            reason: str,
            response_headers: list[tuple[str, str]],
            data: bytes,
            fault: Fault,
        ) -> None:
            """The upstream's headers and part of the body: ``truncate`` keeps the full
            ``Content-Length`` and closes; ``short`` says the shorter length (a whole,
            well-formed response, but fewer bytes than the ``Content-Range`` asked)."""
            kept = data[: int(len(data) * fault.keep)]
            self.send_response_only(status, reason)
            for name, value in response_headers:
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            if fault.kind == "truncate":
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(len(kept)))
            self.end_headers()
            self.wfile.write(kept)
            self.wfile.flush()

        def handle_one_request(self) -> None:
            try:
                super().handle_one_request()
            except OSError:  # the client left (it timed out, or was reset): nothing to answer
                self.close_connection = True

        def finish(self) -> None:
            if self._upstream is not None:
                self._upstream.close()
            with contextlib.suppress(OSError):  # a reset connection cannot be flushed
                super().finish()

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward

    return Handler


@dataclass(frozen=True)
class Request:
    """One request as a fault rule sees it: ``number`` counts this method and path from 1."""

    method: str
    path: str
    byte_range: str | None
    number: int


@dataclass(frozen=True)
class Fault:
    """A fault injected into one request (use the constructors).

    - ``status``: answered ``code`` (an S3 error document) without reaching the server;
    - ``delay``: forwarded after ``seconds`` more (past a client's timeout);
    - ``reset``: the client's connection reset, nothing answered;
    - ``truncate``: forwarded, the answer's ``Content-Length`` kept but only the first
      ``keep`` fraction of its body sent before the connection closes (GETs only);
    - ``short``: forwarded, only the first ``keep`` fraction of the body sent, with a
      ``Content-Length`` saying so (a server sending fewer bytes than it claims in
      ``Content-Range``; GETs only).
    """

    kind: Literal["status", "delay", "reset", "truncate", "short"]
    code: int = 500
    seconds: float = 0.0
    keep: float = 0.5

    @classmethod
    def status(cls, code: int) -> Fault:
        return cls("status", code=code)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        return cls("delay", seconds=seconds)

    @classmethod
    def reset(cls) -> Fault:
        return cls("reset")

    @classmethod
    def truncate(cls, keep: float = 0.5) -> Fault:
        return cls("truncate", keep=keep)

    @classmethod
    def short(cls, keep: float = 0.5) -> Fault:
        return cls("short", keep=keep)


type FaultRule = Callable[[Request], Fault | None]


def fail_nth(method: str, path: str, schedule: Mapping[int, Fault]) -> FaultRule:
    """A rule: the ``n``-th ``method`` request of ``path`` gets ``schedule[n]`` (from 1).

    ``path`` is ``/bucket/key``; ``"*"`` matches every path (each counted on its own).
    """

    def rule(request: Request) -> Fault | None:
        if request.method != method.upper() or path not in ("*", request.path):
            return None
        return schedule.get(request.number)

    return rule


def always(method: str, path: str, fault: Fault) -> FaultRule:
    """A rule: every ``method`` request of ``path`` (``"*"``: of any path) gets ``fault``."""

    def rule(request: Request) -> Fault | None:
        if request.method != method.upper() or path not in ("*", request.path):
            return None
        return fault

    return rule


class FaultProxy(LatencyProxy):
    """A `LatencyProxy` injecting the fault ``rule`` picks for each request (None: none).

    ``rule`` may be replaced while the proxy runs; ``faults`` lists those injected.
    """

    def __init__(
        self,
        upstream: str,
        *,
        rule: FaultRule | None = None,
        delay: float = 0.0,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(upstream, delay=delay, host=host)
        self.rule = rule

    def fault(self, request: Request) -> Fault | None:
        rule = self.rule
        return None if rule is None else rule(request)
