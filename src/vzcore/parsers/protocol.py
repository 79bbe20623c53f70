"""The parser contract: ``parser(url, registry) -> VirtualGroup``, and `Probe`, what ``can_open`` sees.

A parser is an object (usually an attrs class instance) that is called with a URL
and a registry and returns a `VirtualGroup`. To be found by `detect_parser`, its
class also answers ``can_open(probe) -> bool`` from a `Probe`: the first
`HEAD_BYTES` bytes of the source, more byte ranges if it must, and the marker
files under a directory-like store (``zarr.json``, ``.zmetadata``, ...).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, Protocol, runtime_checkable

from vzcore.byteranges import Source, SourceNotFoundError, SourceReadError, source
from vzcore.group import VirtualGroup
from vzcore.registry import ObjectStoreRegistry

__all__ = ["HEAD_BYTES", "Parser", "Probe", "ProbeError"]

HEAD_BYTES = 4096
"""How many leading bytes of a source `Probe.head` holds: room for an XML root element
(DMR++), a Kerchunk JSON document's first keys and HDF5 user blocks up to 2048 bytes."""


class ProbeError(SourceReadError):
    """A source could not be read while detecting its format."""


@runtime_checkable
class Parser(Protocol):
    """The parser protocol.

    ``parser(url, registry) -> VirtualGroup`` reads one source. ``can_open`` (a
    classmethod, so it is asked before any instance exists) says from a `Probe`
    whether the parser reads that source; `detect_parser` asks the parsers in
    descending ``priority`` (0 when a parser does not set it) and builds the
    first that says yes with no arguments. ``priority`` is optional, so it is not
    a protocol member.
    """

    def __call__(self, url: str, registry: ObjectStoreRegistry) -> VirtualGroup: ...

    @classmethod
    def can_open(cls, probe: Probe) -> bool: ...


class Probe:
    """What format detection may look at in one source, read lazily and at most once.

    ``head`` is the source's first `HEAD_BYTES` bytes (all of them if it is
    shorter), or None when nothing is stored at the URL itself: a URL ending in
    ``/``, a directory, a store prefix. `exists` and `member` look under the URL
    as a folder (``url/name``), for stores made of several objects.

    A probe is a reader for one detection, not a value: it remembers what it read.

    Parameters
    ----------
    url
        The source's URL (or local path).
    registry
        Where it is read from.

    Raises
    ------
    UnregisteredURLError
        If ``url`` lies under no registered prefix.

    Examples
    --------
    >>> probe = Probe.from_bytes(b"CDF\\x01\\x00\\x00\\x00\\x00")
    >>> probe.head[:4], probe.size
    (b'CDF\\x01', 8)
    >>> folder = Probe.from_bytes(None, members={".zgroup": b'{"zarr_format": 2}'})
    >>> folder.head is None, folder.exists(".zgroup"), folder.exists("zarr.json")
    (True, True, False)
    """

    __slots__ = (
        "_asked",
        "_file",
        "_head",
        "_members",
        "_present",
        "_registry",
        "_size",
        "url",
    )

    _UNREAD: ClassVar[object] = object()

    def __init__(self, url: str, registry: ObjectStoreRegistry) -> None:
        self._file: Source = source(registry, url)
        self.url = self._file.url
        self._registry = registry
        self._head: object = self._UNREAD
        self._size: int | None = None
        self._members: dict[str, bytes | None] = {}
        self._present: set[str] = set()
        self._asked: list[str] = []

    @classmethod
    def from_bytes(
        cls,
        data: bytes | None,
        *,
        members: Mapping[str, bytes] | None = None,
        url: str = "memory://probe/source",
    ) -> Probe:
        """A probe over bytes held in memory: a file (``data``), or a folder of ``members``.

        For testing ``can_open`` without writing files.
        """
        import obstore
        from obstore.store import MemoryStore

        store = MemoryStore()
        prefix = url.rstrip("/").rsplit("/", 1)[0] + "/"
        name = url.rstrip("/")[len(prefix) :]
        if data is not None:
            obstore.put(store, name, data)
        for member, content in (members or {}).items():
            obstore.put(store, f"{name}/{member}", content)
        return cls(url, ObjectStoreRegistry({prefix: store}))

    @property
    def head(self) -> bytes | None:
        """The first `HEAD_BYTES` bytes, or None when no object is stored at the URL."""
        if self._head is self._UNREAD:
            self._head = self._read_head()
        assert self._head is None or isinstance(self._head, bytes)
        return self._head

    @property
    def size(self) -> int | None:
        """The object's size in bytes, or None when no object is stored at the URL."""
        head = self.head
        if head is None:
            return None
        if self._size is None:
            if len(head) < HEAD_BYTES:
                self._size = len(head)  # the head is the whole object
            else:
                with self._reading("get its size"):
                    self._size = self._file.size()
        return self._size

    def read_range(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the object, clipped to its size (b"" past the end)."""
        size = self.size
        if size is None:
            return b""
        start, end = max(start, 0), min(end, size)
        if start >= end:
            return b""
        head = self.head or b""
        if end <= len(head):
            return head[start:end]
        with self._reading(f"read bytes {start}-{end}"):
            return bytes(self._file.read_ranges([start], [end])[0])

    def exists(self, name: str) -> bool:
        """Whether an object ``name`` lies under the URL taken as a folder (``url/name``)."""
        if name in self._members:
            return self._members[name] is not None
        if name in self._present:
            return True
        self._note(name)
        with self._reading(f"look for {name!r}"):
            if not source(self._registry, self._member_url(name)).exists():
                self._members[name] = None
                return False
        self._present.add(name)
        return True

    def member(self, name: str) -> bytes | None:
        """The whole object ``url/name`` (a marker document), or None if there is none."""
        if name not in self._members:
            self._note(name)
            with self._reading(f"read {name!r}"):
                try:
                    data = source(self._registry, self._member_url(name)).read()
                    self._members[name] = bytes(data)
                except SourceNotFoundError:
                    self._members[name] = None
        return self._members[name]

    def member_json(self, name: str) -> Any:
        """The marker document ``url/name`` parsed as JSON; None if missing or not JSON."""
        document = self.member(name)
        if document is None:
            return None
        try:
            return json.loads(document)
        except ValueError:
            return None

    def _member_url(self, name: str) -> str:
        return f"{self.url.rstrip('/')}/{name}"

    @property
    def asked(self) -> tuple[str, ...]:
        """The marker names `exists` and `member` were asked about, in order (for messages)."""
        return tuple(self._asked)

    def _note(self, name: str) -> None:
        if name not in self._asked:
            self._asked.append(name)

    def _read_head(self) -> bytes | None:
        if self.url.endswith("/") or not self._file.path:
            return None  # a prefix names no object of its own
        with self._reading("read its first bytes"):
            return self._file.head(HEAD_BYTES)

    @contextmanager
    def _reading(self, action: str) -> Iterator[None]:
        """The layer's read errors as `ProbeError`, saying what detection was doing."""
        try:
            yield
        except SourceReadError as err:
            raise ProbeError(
                f"{self.url}: cannot {action}: {err.reason}", url=err.url, reason=err.reason
            ) from err.__cause__
