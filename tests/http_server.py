"""A loopback HTTP server that honours ``Range`` (Python's ``http.server`` does not).

Serves the files of one folder read-only, with ``HEAD`` (size, last-modified, ETag)
and single-range ``GET`` (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``), as object
stores' HTTP endpoints do.
"""

from __future__ import annotations

import email.utils
import http.server
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


def _handler(root: Path) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _file(self) -> Path | None:
            path = (root / unquote(urlsplit(self.path).path).lstrip("/")).resolve()
            if root.resolve() not in path.parents or not path.is_file():
                self.send_error(404)
                return None
            return path

        def _headers(self, path: Path, length: int) -> None:
            stat = path.stat()
            self.send_header("Content-Length", str(length))
            self.send_header("Last-Modified", email.utils.formatdate(stat.st_mtime, usegmt=True))
            self.send_header("ETag", f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"')
            self.send_header("Accept-Ranges", "bytes")

        def do_HEAD(self) -> None:
            path = self._file()
            if path is None:
                return
            self.send_response(200)
            self._headers(path, path.stat().st_size)
            self.end_headers()

        def do_GET(self) -> None:
            path = self._file()
            if path is None:
                return
            data = path.read_bytes()
            match = _RANGE.match(self.headers.get("Range", ""))
            if match is None:
                self.send_response(200)
                self._headers(path, len(data))
                self.end_headers()
                self.wfile.write(data)
                return
            first, last = match.groups()
            if first:
                start, stop = int(first), min(int(last) + 1 if last else len(data), len(data))
            else:
                start, stop = max(len(data) - int(last), 0), len(data)
            if start >= len(data) or start >= stop:
                self.send_error(416)
                return
            self.send_response(206)
            self._headers(path, stop - start)
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(data)}")
            self.end_headers()
            self.wfile.write(data[start:stop])

    return Handler


@contextmanager
def serving(root: Path) -> Iterator[str]:
    """Serve ``root`` on a free loopback port; yields the base URL (``http://127.0.0.1:N/``)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(root))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
