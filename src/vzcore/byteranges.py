"""The one byte-range layer: every read of source bytes in vz goes through here.

Parsers, `read_array`, `ManifestStore`, the writers' inlining and the file-like view
given to libraries that want a file (h5py) all read with one policy:

- **coalescing**: ranges of one file closer than ``ReadPolicy.coalesce`` bytes are
  fetched as one request (split again at ``ReadPolicy.max_request`` bytes), and
  sliced apart without copying;
- **a concurrency limit**: at most ``ReadPolicy.concurrency`` files are read at once;
- **short-read detection**: a range that returns fewer bytes than asked raises
  `ShortReadError` (a short file, or a server sending less than asked);
- **retries** are the store's: obstore retries 5xx answers, resets, timeouts and
  bodies cut short (``ObjectStoreRegistry.for_urls(retries=, timeout=)``); what is
  left when they are spent is raised as below;
- **typed errors**: whatever the store raises becomes a `SourceReadError` (or its
  subclasses `SourceNotFoundError`, `ShortReadError`) naming the URL and the bytes,
  with the store's own error chained.

>>> import obstore, vzcore as vc
>>> from obstore.store import MemoryStore
>>> store = MemoryStore()
>>> obstore.put(store, "a.bin", bytes(range(10)))  # doctest: +ELLIPSIS
{...}
>>> registry = vc.ObjectStoreRegistry({"memory://m/": store})
>>> first, last = source(registry, "memory://m/a.bin").read_ranges([0, 8], [2, 10])
>>> bytes(first).hex(), bytes(last).hex()
('0001', '0809')
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from vzcore.errors import VirtualizationError
from vzcore.group import SourceFingerprint
from vzcore.registry import ByteRangeReader, ObjectStoreRegistry, UnregisteredURLError
from vzcore.urls import normalize_url, quote_path

__all__ = [
    "RangeBatcher",
    "RangeFile",
    "ReadPolicy",
    "ShortReadError",
    "Source",
    "SourceNotFoundError",
    "SourceReadError",
    "fingerprints",
    "open_file",
    "read_references",
    "reraise_source_error",
    "shared_reads",
    "source",
]


class SourceReadError(VirtualizationError):
    """Bytes of a source could not be read; ``url`` names it, the store's error is chained.

    ``reason`` is the message without the URL, for callers that word their own.
    """

    def __init__(self, message: str, *, url: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.reason = reason if reason is not None else message

    def about(self, context: str) -> SourceReadError:
        """The same error (same class, URL and reason) as ``"<context>: <reason>"``."""
        return type(self)(f"{context}: {self.reason}", url=self.url, reason=self.reason)


class SourceNotFoundError(SourceReadError):
    """The source does not exist (or is a directory, which holds no bytes)."""


class ShortReadError(SourceReadError):
    """The source is shorter than a requested byte range (truncated, or a wrong reference)."""


@attrs.frozen
class ReadPolicy:
    """How ranges are fetched: gap merged into one request, request size cap, files at once."""

    coalesce: int = 1 << 20
    max_request: int = 64 << 20
    concurrency: int = 16


DEFAULT_POLICY = ReadPolicy()


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


_BODY_CUT_SHORT = "response body error"


def _wrapped(err: BaseException, url: str, what: str) -> VirtualizationError:
    """A store's exception as a typed error naming ``url`` (the original is chained).

    vz's own refusals (a path leading outside its registered folder) pass unchanged.
    """
    if isinstance(err, SourceReadError | UnregisteredURLError):
        return err
    reason = _first_line(err)
    kind: type[SourceReadError] = SourceReadError
    if isinstance(err, FileNotFoundError | IsADirectoryError | NotADirectoryError):
        kind, reason = SourceNotFoundError, "no such object"
    elif "range" in str(err).lower() and "invalid" in str(err).lower():
        kind, reason = ShortReadError, f"the object is shorter than the request ({reason})"
    elif _BODY_CUT_SHORT in str(err).lower():
        # hyper's word for a body that ended before its Content-Length (the connection
        # closed mid-body), after obstore's retries: bytes were missing, none returned.
        kind = ShortReadError
        reason = f"the response ended before all its bytes arrived, after retries ({reason})"
    message = (
        f"{url}: {reason}"
        if kind is SourceNotFoundError
        else f"{url}: cannot read {what}: {reason}"
    )
    error = kind(message, url=url, reason=reason)
    error.__cause__ = err
    return error


def _describe(starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> str:
    if len(starts) == 1:
        return f"bytes {int(starts[0])}-{int(ends[0])}"
    return f"{len(starts)} byte ranges in {int(starts.min())}-{int(ends.max())}"


def coalesced(
    starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64], policy: ReadPolicy
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.intp]]:
    """Requests covering the ranges: (request starts, request ends, request of each range).

    Ranges whose gap is at most ``policy.coalesce`` share a request; a request grows
    to ``policy.max_request`` bytes before a new one starts.

    >>> coalesced(np.array([0, 10, 5000]), np.array([4, 20, 5004]), ReadPolicy(coalesce=100))
    (array([   0, 5000]), array([  20, 5004]), array([0, 0, 1]))
    """
    if len(starts) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.intp)
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    reach = np.maximum.accumulate(e)
    new = np.ones(len(s), bool)
    new[1:] = s[1:] > reach[:-1] + policy.coalesce
    group = np.cumsum(new) - 1
    # Split long groups at multiples of max_request from the group's start (never
    # inside a range that overlaps the one before, so requests never overlap).
    group_start = s[new][group]
    piece = (s - group_start) // max(policy.max_request, 1)
    new[1:] |= (group[1:] == group[:-1]) & (piece[1:] != piece[:-1]) & (s[1:] >= reach[:-1])
    request = np.cumsum(new) - 1
    firsts = np.flatnonzero(new)
    request_starts = s[firsts]
    request_ends = np.maximum.reduceat(e, firsts)
    owner = np.empty(len(s), np.intp)
    owner[order] = request
    return request_starts, request_ends, owner


def _spread(
    buffers: Sequence[bytes | memoryview], asked: npt.NDArray[np.intp], owner: npt.NDArray[np.intp]
) -> list[bytes | memoryview]:
    """One buffer per request: the fetched ones where asked, empty bytes elsewhere."""
    count = int(owner.max()) + 1 if len(owner) else 0
    spread: list[bytes | memoryview] = [b""] * count
    for position, buffer in zip(asked.tolist(), buffers, strict=True):
        spread[position] = buffer
    return spread


def _as_int64(values: Sequence[int] | npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    return np.asarray(values, dtype=np.int64).reshape(-1)


@attrs.frozen
class Source:
    """One source object: its URL, and the store and path that serve it.

    Every method reads with the layer's policy and raises `SourceReadError`s naming the URL.
    """

    url: str
    reader: ByteRangeReader
    path: str
    policy: ReadPolicy = DEFAULT_POLICY

    # ---- ranges --------------------------------------------------------------------------

    def read_ranges(
        self, starts: Sequence[int] | npt.NDArray[Any], ends: Sequence[int] | npt.NDArray[Any]
    ) -> list[memoryview]:
        """The bytes of each ``[start, end)`` range, in the order given."""
        s, e = _as_int64(starts), _as_int64(ends)
        request_starts, request_ends, owner = coalesced(s, e, self.policy)
        asked = np.flatnonzero(request_ends > request_starts)  # empty ranges need no request
        try:
            got = self.reader.get_ranges(
                self.path, starts=request_starts[asked].tolist(), ends=request_ends[asked].tolist()
            )
        except Exception as err:
            raise _wrapped(err, self.url, _describe(s, e)) from err
        return self._sliced(s, e, request_starts, request_ends, owner, _spread(got, asked, owner))

    async def read_ranges_async(
        self, starts: Sequence[int] | npt.NDArray[Any], ends: Sequence[int] | npt.NDArray[Any]
    ) -> list[memoryview]:
        """`read_ranges`, awaited."""
        s, e = _as_int64(starts), _as_int64(ends)
        request_starts, request_ends, owner = coalesced(s, e, self.policy)
        asked = np.flatnonzero(request_ends > request_starts)
        try:
            got = await self.reader.get_ranges_async(
                self.path, starts=request_starts[asked].tolist(), ends=request_ends[asked].tolist()
            )
        except Exception as err:
            raise _wrapped(err, self.url, _describe(s, e)) from err
        return self._sliced(s, e, request_starts, request_ends, owner, _spread(got, asked, owner))

    def _sliced(
        self,
        starts: npt.NDArray[np.int64],
        ends: npt.NDArray[np.int64],
        request_starts: npt.NDArray[np.int64],
        request_ends: npt.NDArray[np.int64],
        owner: npt.NDArray[np.intp],
        buffers: Sequence[bytes | memoryview],
    ) -> list[memoryview]:
        views = [memoryview(b).cast("B") for b in buffers]
        got = np.array([len(v) for v in views], dtype=np.int64)
        short = got < request_ends - request_starts
        if short.any():
            # A short request is an error only for the ranges reaching past what came back.
            available = request_starts + got
            bad = np.flatnonzero(ends > available[owner])
            if len(bad):
                first = int(bad[0])
                reason = (
                    f"bytes {int(starts[first])}-{int(ends[first])} requested, "
                    f"{max(int(available[owner[first]] - starts[first]), 0)} returned (the file "
                    "is shorter than the reference says, or the server sent less than asked)"
                    + (f"; {len(bad)} ranges affected" if len(bad) > 1 else "")
                )
                raise ShortReadError(f"{self.url}: {reason}", url=self.url, reason=reason)
        relative_starts = (starts - request_starts[owner]).tolist()
        relative_ends = (ends - request_starts[owner]).tolist()
        return [
            views[o][a:b]
            for o, a, b in zip(owner.tolist(), relative_starts, relative_ends, strict=True)
        ]

    # ---- whole objects -------------------------------------------------------------------

    def read(self) -> memoryview:
        """The whole object."""
        try:
            return memoryview(self.reader.get(self.path))
        except Exception as err:
            raise _wrapped(err, self.url, "the object") from err

    async def read_async(self) -> memoryview:
        """`read`, awaited."""
        try:
            return memoryview(await self.reader.get_async(self.path))
        except Exception as err:
            raise _wrapped(err, self.url, "the object") from err

    def head(self, count: int) -> bytes | None:
        """The first ``count`` bytes (fewer if the object is shorter); None if there is no object."""
        try:
            return bytes(self.reader.get_ranges(self.path, starts=[0], ends=[count])[0])
        except (FileNotFoundError, NotADirectoryError):  # obstore's "not found", a directory
            return None
        except Exception as err:
            if "range" in str(err).lower():  # some stores refuse any range of an empty object
                return b""
            raise _wrapped(err, self.url, f"its first {count} bytes") from err

    def exists(self) -> bool:
        """Whether an object is there (a HEAD request where the store has one)."""
        head = getattr(self.reader, "head", None)
        if not callable(head):
            return self.head(1) is not None
        try:
            head(self.path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except Exception as err:
            raise _wrapped(err, self.url, "its metadata") from err
        return True

    def size(self) -> int:
        """The object's size in bytes (one HEAD request where the store can)."""
        size = getattr(self.reader, "size", None)
        try:
            if callable(size):
                return int(size(self.path))
            return len(self.reader.get(self.path))
        except Exception as err:
            raise _wrapped(err, self.url, "its size") from err

    def fingerprint(self) -> SourceFingerprint:
        """What the store says of the object now: size, last-modified time, ETag."""
        head = getattr(self.reader, "head", None)
        if not callable(head):
            return SourceFingerprint(size=self.size())
        try:
            info = head(self.path)
        except Exception as err:
            raise _wrapped(err, self.url, "its metadata") from err
        modified = info.get("last_modified")
        return SourceFingerprint(
            size=info.get("size"),
            last_modified=modified.isoformat() if modified is not None else None,
            etag=info.get("e_tag"),
        )

    def list(self) -> Any:
        """An Arrow table (``path``, ``size``) of the objects under this source as a prefix.

        Raises `SourceReadError` if the store fails or cannot list at all.
        """
        lister = getattr(self.reader, "list_objects", None)
        if not callable(lister):
            raise SourceReadError(
                f"{self.url}: the registered store cannot list objects", url=self.url
            )
        try:
            return lister(self.path)
        except Exception as err:
            raise _wrapped(err, self.url, "the objects under it") from err

    def local_path(self) -> str | None:
        """The filesystem path when the store is a local folder, else None."""
        local = getattr(self.reader, "local_path", None)
        return local(self.path) if callable(local) else None

    def cached(
        self, *, size: int | None = None, range_file: RangeFile | None = None, **options: Any
    ) -> Source:
        """This source read through a `RangeFile`'s block cache, for parsers' many small reads.

        Ranges of this object are served from aligned blocks (a file of at most
        ``whole_below`` bytes is fetched in one request), each batch of ranges fetching
        the blocks it lacks together; ``options`` are `RangeFile`'s. ``range_file``, a
        `RangeFile` of this source another reader uses (h5py's), shares its blocks.
        The cached source is for one parse: it keeps the blocks it read until it is
        dropped.

        >>> import obstore, vzcore as vc
        >>> from obstore.store import MemoryStore
        >>> store = MemoryStore()
        >>> obstore.put(store, "a.bin", bytes(range(100)))  # doctest: +ELLIPSIS
        {...}
        >>> registry = vc.ObjectStoreRegistry({"memory://m/": store})
        >>> file = source(registry, "memory://m/a.bin").cached(size=100)
        >>> first, last = file.read_ranges([1, 98], [3, 100])
        >>> bytes(first).hex(), bytes(last)
        ('0102', b'bc')
        """
        reader = _CachedReader(range_file or RangeFile(self, size=size, **options))
        # The blocks batch the reads: ranges are not merged across gaps on top of them.
        return attrs.evolve(self, reader=reader, policy=attrs.evolve(self.policy, coalesce=0))

    def relative(self, name: str) -> Source:
        """The source at ``name`` under this one (``name`` joined with a ``/``)."""
        joined = f"{self.path.rstrip('/')}/{name}" if self.path else name
        return attrs.evolve(self, url=f"{self.url.rstrip('/')}/{quote_path(name)}", path=joined)


def source(
    registry: ObjectStoreRegistry, url: str, *, policy: ReadPolicy = DEFAULT_POLICY
) -> Source:
    """The `Source` for ``url`` (refused with `UnregisteredURLError` outside the registry).

    Inside `shared_reads`, a remote object's sources share one block cache.
    """
    reader, path = registry.resolve(url)
    found = Source(normalize_url(url), reader, path, policy)
    shared = _SHARED.get()
    if shared is None:
        return found
    key = (found.url, id(reader))
    entry = shared.get(key)
    if entry is None:
        if found.local_path() is not None or not callable(getattr(reader, "head", None)):
            return found  # a local file is read by path; a store without HEAD: as usual
        entry = shared[key] = (reader, _SharedReader(found, shared.options))
    return attrs.evolve(found, reader=entry[1], policy=attrs.evolve(policy, coalesce=0))


class _Shared(dict[tuple[str, int], tuple[ByteRangeReader, "_SharedReader"]]):
    """The objects one `shared_reads` block has read: (URL, store) -> the shared reader.

    The store is kept with its reader so its id is not reused while the block lasts.
    """

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__()
        self.options = options


SHARED_HEAD_BLOCK = 1 << 20
"""`shared_reads`' default ``head_block``: a bigger file's first MiB comes with its first read."""

_SHARED: contextvars.ContextVar[_Shared | None] = contextvars.ContextVar(
    "vz_shared_reads", default=None
)


@contextmanager
def shared_reads(**options: Any) -> Iterator[None]:
    """Within the block, every read of one remote object shares one `RangeFile` block cache.

    Opening a file reads it in several passes, each through `source`: format
    detection's first bytes, the parser's metadata (h5py through a `RangeFile`), the
    values of the coordinates loaded afterwards. Inside the block they are served
    from the blocks the first of them fetched (a file of at most ``whole_below``
    bytes is fetched whole, the first ``head_block`` bytes of a bigger one in one
    request), and the object's HEAD is asked once. ``options`` are `RangeFile`'s. The
    blocks are dropped when the block ends; local files are read as usual. The
    sharing is per thread (a context variable): worker threads started inside the
    block read as usual. A block inside another shares the outer block's cache.

    >>> import obstore, vzcore as vc
    >>> from obstore.store import MemoryStore
    >>> store = MemoryStore()
    >>> obstore.put(store, "a.bin", bytes(range(100)))  # doctest: +ELLIPSIS
    {...}
    >>> registry = vc.ObjectStoreRegistry({"memory://m/": store})
    >>> with shared_reads():
    ...     first = source(registry, "memory://m/a.bin").read_ranges([0], [2])
    ...     again = source(registry, "memory://m/a.bin")
    ...     [bytes(v) for v in again.read_ranges([98], [100])], again.reader.file.requests
    ([b'bc'], 1)
    """
    if _SHARED.get() is not None:  # inside another block: its blocks (and options) serve
        yield
        return
    token = _SHARED.set(_Shared({"head_block": SHARED_HEAD_BLOCK, **options}))
    try:
        yield
    finally:
        _SHARED.reset(token)


def read_references(
    registry: ObjectStoreRegistry,
    urls: Sequence[str],
    indices: npt.NDArray[Any],
    offsets: npt.NDArray[Any],
    lengths: npt.NDArray[Any],
    *,
    policy: ReadPolicy = DEFAULT_POLICY,
) -> list[memoryview]:
    """The bytes of each reference ``(urls[indices[i]], offsets[i], lengths[i])``.

    Files are read concurrently (``policy.concurrency`` at once), each with one batch
    of coalesced requests; the result follows the order of the references.
    """
    indices = np.asarray(indices).reshape(-1)
    starts = np.asarray(offsets, dtype=np.int64).reshape(-1)
    ends = starts + np.asarray(lengths, dtype=np.int64).reshape(-1)
    result: list[memoryview] = [memoryview(b"")] * len(indices)
    files = np.unique(indices).tolist()
    positions = {index: np.flatnonzero(indices == index) for index in files}

    def fetch(index: int) -> tuple[int, list[memoryview]]:
        where = positions[index]
        return index, source(registry, urls[index], policy=policy).read_ranges(
            starts[where], ends[where]
        )

    if len(files) <= 1:
        done = [fetch(index) for index in files]
    else:
        with ThreadPoolExecutor(max_workers=min(policy.concurrency, len(files))) as pool:
            done = list(pool.map(fetch, files))
    for index, buffers in done:
        for position, buffer in zip(positions[index].tolist(), buffers, strict=True):
            result[position] = buffer
    return result


def fingerprints(
    registry: ObjectStoreRegistry, urls: Sequence[str], *, policy: ReadPolicy = DEFAULT_POLICY
) -> dict[str, SourceFingerprint]:
    """The fingerprint of each URL, asked concurrently (``policy.concurrency`` at once)."""

    def ask(url: str) -> tuple[str, SourceFingerprint]:
        file = source(registry, url, policy=policy)
        return file.url, file.fingerprint()

    if len(urls) <= 1:
        return dict(ask(url) for url in urls)
    with ThreadPoolExecutor(max_workers=min(policy.concurrency, len(urls))) as pool:
        return dict(pool.map(ask, urls))


class _LoopBatch:
    """One event loop's share of a `RangeBatcher`: its pending reads and its semaphore."""

    def __init__(self, concurrency: int) -> None:
        self.pending: dict[tuple[str, int], tuple[Source, list[tuple[int, int, Any]]]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.limit = asyncio.Semaphore(concurrency)


class RangeBatcher:
    """Collects the range reads awaited in one event-loop turn: one batch per file.

    Used by `ManifestStore`, where zarr asks for many chunks at once; the batch of each
    file is coalesced by `Source.read_ranges_async`, and at most
    ``policy.concurrency`` files are read at the same time. Each event loop has its
    own batches and limit, so one batcher serves many threads, each running its own
    loop (``asyncio.run`` per thread).
    """

    def __init__(self, policy: ReadPolicy = DEFAULT_POLICY) -> None:
        self._policy = policy
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopBatch] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"policy": self._policy}  # batches in flight belong to this process's loops

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["policy"])  # type: ignore[misc]

    def _batch(self, loop: asyncio.AbstractEventLoop) -> _LoopBatch:
        batch = self._loops.get(loop)
        if batch is None:
            with self._lock:
                batch = self._loops.setdefault(loop, _LoopBatch(self._policy.concurrency))
        return batch

    async def fetch(self, source: Source, start: int, end: int) -> memoryview:
        """The bytes ``[start, end)`` of ``source``, fetched with the others of this turn."""
        loop = asyncio.get_running_loop()
        batch = self._batch(loop)
        future: asyncio.Future[memoryview] = loop.create_future()
        if not batch.pending:
            loop.call_soon(self._flush, batch)
        key = (source.url, id(source.reader))
        batch.pending.setdefault(key, (source, []))[1].append((start, end, future))
        return await future

    def _flush(self, batch: _LoopBatch) -> None:
        pending, batch.pending = batch.pending, {}
        for item in pending.values():
            task = asyncio.ensure_future(self._run(batch, *item))
            batch.tasks.add(task)
            task.add_done_callback(batch.tasks.discard)

    async def _run(
        self, batch: _LoopBatch, source: Source, requests: list[tuple[int, int, Any]]
    ) -> None:
        try:
            async with batch.limit:
                buffers = await source.read_ranges_async(
                    [r[0] for r in requests], [r[1] for r in requests]
                )
        except Exception as err:  # noqa: BLE001 (each waiter re-raises it with its context)
            for *_, future in requests:
                if not future.done():
                    future.set_exception(err)
            return
        for (*_, future), buffer in zip(requests, buffers, strict=True):
            if not future.done():
                future.set_result(buffer)


class RangeFile(io.RawIOBase):
    """A read-only, seekable file over one source, for libraries that want a file (h5py).

    Reads are served from aligned blocks of ``block_size`` bytes kept in an LRU cache
    (``cache_blocks`` blocks); the blocks one read lacks are fetched together. Small
    blocks suit metadata scattered through a file: h5py parses a 12 MB netCDF4 file
    on S3 in 10 GETs and 0.7 MB with 64 KiB blocks (37 GETs and 39 MB with a 1 MiB
    read-ahead buffer). A file of at most ``whole_below`` bytes is one block, read
    in one request. The first read of a bigger file also fetches its first
    ``head_block`` bytes, in the same request when they are adjacent (h5coro's
    approach: a netCDF4 file's metadata is mostly at its start). ``size`` saves a
    HEAD request when the caller knows it.
    """

    def __init__(
        self,
        source: Source,
        *,
        size: int | None = None,
        block_size: int = 1 << 16,
        cache_blocks: int = 256,
        whole_below: int = 4 << 20,
        head_block: int = 0,
    ) -> None:
        super().__init__()
        self.source = source
        self.size = source.size() if size is None else size
        if self.size <= whole_below:  # one request for the whole of a small file
            block_size, cache_blocks, head_block = max(self.size, 1), 1, 0
        self._block = block_size
        self._capacity = max(cache_blocks, 1)
        self._cache: OrderedDict[int, memoryview] = OrderedDict()
        self._position = 0
        # The blocks of the first `head_block` bytes, fetched with the first read.
        head_blocks = -(-min(head_block, self.size) // block_size)
        self._head: list[int] = list(range(min(head_blocks, self._capacity)))
        self.requests = 0
        """How many batches of ranged reads this file has issued."""

    def view(self) -> RangeFile:
        """Another file over the same blocks (its own position, at 0; not thread-safe)."""
        other = RangeFile.__new__(RangeFile)
        io.RawIOBase.__init__(other)
        other.source, other.size, other._block = self.source, self.size, self._block
        other._capacity, other._cache, other._head = self._capacity, self._cache, self._head
        other._position, other.requests = 0, 0
        return other

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        self._position = max(base + offset, 0)
        return self._position

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        count = min(len(target), self.size - self._position)
        if count <= 0:
            return 0
        start = self._position
        first, last = start // self._block, (start + count - 1) // self._block
        self._load(range(first, last + 1))
        written = 0
        for block in range(first, last + 1):
            data = self._cache[block]
            self._cache.move_to_end(block)
            lo = max(start + written - block * self._block, 0)
            piece = data[lo : lo + count - written]
            target[written : written + len(piece)] = piece
            written += len(piece)
        self._position += written
        return written

    def ranges(self, starts: Sequence[int], ends: Sequence[int]) -> list[memoryview]:
        """The bytes of each ``[start, end)`` (cut at the end of the file), blocks fetched together.

        A range past the end comes back short, for the caller to report
        (`Source.read_ranges` raises `ShortReadError`).
        """
        spans = [(max(a, 0), min(max(b, a), self.size)) for a, b in zip(starts, ends, strict=True)]
        needed = sorted(
            {
                k
                for a, b in spans
                if b > a
                for k in range(a // self._block, (b - 1) // self._block + 1)
            }
        )
        if len(needed) > self._capacity:  # more than the cache holds: read past it
            return self.source.read_ranges([a for a, _ in spans], [b for _, b in spans])
        self._load(needed)
        out: list[memoryview] = []
        for a, b in spans:
            first, last = a // self._block, (b - 1) // self._block
            if b <= a:
                out.append(memoryview(b""))
            elif first == last:
                out.append(self._cache[first][a - first * self._block : b - first * self._block])
            else:
                out.append(memoryview(b"".join(
                    bytes(self._cache[k][max(a - k * self._block, 0) : b - k * self._block])
                    for k in range(first, last + 1)
                )))  # fmt: skip
        return out

    def _load(self, blocks: Sequence[int]) -> None:
        for block in blocks:  # the blocks this read needs are the most recent
            if block in self._cache:
                self._cache.move_to_end(block)
        missing = [b for b in blocks if b not in self._cache]
        if not missing:
            return
        if self._head:  # the first fetch: the file's first blocks come along
            missing = sorted({*missing, *(b for b in self._head if b not in self._cache)})
            self._head.clear()
        starts = np.array(missing, dtype=np.int64) * self._block
        ends = np.minimum(starts + self._block, self.size)
        self.requests += 1
        for block, data in zip(missing, self.source.read_ranges(starts, ends), strict=True):
            self._cache[block] = data
        while len(self._cache) > max(self._capacity, len(missing), len(blocks)):
            self._cache.popitem(last=False)


class _CachedReader:
    """A `ByteRangeReader` serving one object from a `RangeFile`; other paths pass through."""

    def __init__(self, file: RangeFile) -> None:
        self._file = file
        self._reader = file.source.reader
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:  # size, head, local_path...: the store's own
        return getattr(self._reader, name)

    def get_ranges(
        self, path: str, *, starts: Sequence[int], ends: Sequence[int]
    ) -> Sequence[bytes | memoryview]:
        if path != self._file.source.path:
            return self._reader.get_ranges(path, starts=starts, ends=ends)
        with self._lock:
            return self._file.ranges(starts, ends)

    async def get_ranges_async(
        self, path: str, *, starts: Sequence[int], ends: Sequence[int]
    ) -> Sequence[bytes | memoryview]:
        return await asyncio.to_thread(self.get_ranges, path, starts=starts, ends=ends)

    def get(self, path: str) -> bytes | memoryview:
        return self._reader.get(path)

    async def get_async(self, path: str) -> bytes | memoryview:
        return await self._reader.get_async(path)


class _SharedReader:
    """`_CachedReader` for `shared_reads`: its `RangeFile` made at the first read.

    The object's ``head`` is asked once (its size sizes the `RangeFile`); until then
    nothing is fetched, so a URL that names no object (a folder, a store prefix)
    fails as the store fails, at each read.
    """

    def __init__(self, found: Source, options: dict[str, Any]) -> None:
        self._source = found
        self._reader = found.reader
        self._options = options
        self._lock = threading.RLock()
        self._head: dict[str, Any] | None = None
        self._file: RangeFile | None = None

    def __getattr__(self, name: str) -> Any:  # local_path, list_objects...: the store's own
        return getattr(self._reader, name)

    @property
    def file(self) -> RangeFile:
        """The object's block cache (made, with one HEAD request, at the first call)."""
        with self._lock:
            if self._file is None:
                size = self.size(self._source.path)
                self._file = RangeFile(self._source, size=size, **self._options)
            return self._file

    def head(self, path: str) -> dict[str, Any]:
        if path != self._source.path:
            other: dict[str, Any] = self._reader.head(path)  # type: ignore[attr-defined]
            return other
        with self._lock:
            if self._head is None:
                self._head = dict(self._reader.head(path))  # type: ignore[attr-defined]
            return self._head

    def size(self, path: str) -> int:
        return int(self.head(path)["size"])

    def serves(self, path: str) -> bool:
        """Whether reads of ``path`` go through the shared blocks."""
        return path == self._source.path

    def get_ranges(
        self, path: str, *, starts: Sequence[int], ends: Sequence[int]
    ) -> Sequence[bytes | memoryview]:
        if path != self._source.path:
            return self._reader.get_ranges(path, starts=starts, ends=ends)
        with self._lock:
            return self.file.ranges(starts, ends)

    async def get_ranges_async(
        self, path: str, *, starts: Sequence[int], ends: Sequence[int]
    ) -> Sequence[bytes | memoryview]:
        if path != self._source.path:
            return await self._reader.get_ranges_async(path, starts=starts, ends=ends)
        return await asyncio.to_thread(self.get_ranges, path, starts=starts, ends=ends)

    def get(self, path: str) -> bytes | memoryview:
        return self._reader.get(path)

    async def get_async(self, path: str) -> bytes | memoryview:
        return await self._reader.get_async(path)


def reraise_source_error(err: BaseException) -> None:
    """Raise the `SourceReadError` behind ``err``, if there is one.

    Libraries reading a `RangeFile` (h5py) report its failures as their own errors
    (an ``OSError``) with ours as the cause or context: the typed error naming the
    URL is the one to report.
    """
    cause = err.__cause__ or err.__context__
    if isinstance(cause, SourceReadError):
        raise cause from err


def open_file(source: Source, **options: Any) -> str | RangeFile:
    """What to hand a file-reading library: the local path when there is one, else a `RangeFile`."""
    local = source.local_path()
    if local is not None:
        return local
    shared = source.reader
    if isinstance(shared, _SharedReader) and shared.serves(source.path):
        return shared.file.view()  # `shared_reads`: the blocks other passes read
    return RangeFile(source, **options)
