"""`ManifestStore`: a read-only zarr 3 store over a `VirtualGroup`.

It serves ``zarr.json`` documents built from the group's metadata and the bytes of
each chunk, fetched by byte range through the `ObjectStoreRegistry` (an inline
chunk's bytes come from the manifest itself, with no fetch). Concurrent
chunk reads that arrive together are batched: one ranged request per file
(coalescing neighbouring ranges), not one per chunk.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)
from zarr.core.buffer import Buffer, BufferPrototype

from vzcore.array import AnyArray, LoadedArray, VirtualArray, encode_chunk
from vzcore.byteranges import RangeBatcher, Source, SourceReadError, source
from vzcore.group import VirtualGroup
from vzcore.registry import ObjectStoreRegistry, UnregisteredURLError
from vzcore.verify import SourceChangedError, SourceCheck, check_source, recorded_sources
from vzcore.zarr_documents import array_document, group_document

__all__ = ["ChunkFetchError", "ManifestStore"]

_CHUNK_KEY = re.compile(r"^(?:(?P<array>.+)/)?c(?P<coords>(?:/\d+)*)$")


ChunkFetchError = SourceReadError
"""The name `ManifestStore` and `read_array` errors had before the byte-range layer."""


@attrs.frozen
class _VirtualServed:
    """Per-array lookup columns, so serving a chunk is a few numpy index operations."""

    array: VirtualArray
    indices: npt.NDArray[np.int32]
    offsets: npt.NDArray[np.uint64]
    lengths: npt.NDArray[np.uint64]
    sources: tuple[Source, ...]
    """Per dictionary entry, where its bytes are read."""
    present: npt.NDArray[np.bool_]
    """Per row: referenced or inline (not missing)."""
    inline: pa.Array | None
    """The manifest's ``data`` column (one chunk), or None without inline chunks."""


@attrs.frozen
class _LoadedServed:
    array: LoadedArray


def _slice_bytes(data: bytes | memoryview, byte_range: ByteRequest | None) -> bytes | memoryview:
    start, end = _sub_range(len(data), byte_range)
    return data[start:end]


def _sub_range(size: int, byte_range: ByteRequest | None) -> tuple[int, int]:
    """The ``[start, end)`` of ``byte_range`` within an object of ``size`` bytes."""
    if byte_range is None:
        return 0, size
    if isinstance(byte_range, RangeByteRequest):
        return min(byte_range.start, size), min(max(byte_range.end, byte_range.start), size)
    if isinstance(byte_range, OffsetByteRequest):
        return min(byte_range.offset, size), size
    if isinstance(byte_range, SuffixByteRequest):
        return max(size - byte_range.suffix, 0), size
    raise TypeError(f"unexpected byte range {byte_range!r}")


class ManifestStore(Store):
    """A read-only zarr 3 store serving a `VirtualGroup`; no data is written anywhere.

    Parameters
    ----------
    group
        The group to serve (virtual arrays by reference, loaded arrays from memory).
    registry
        Where chunk URLs are read from. Every URL the group references must fall
        under one of its prefixes; this is checked here, before any read.
    check_sources
        Before serving the first chunk of each source file, compare the file's
        fingerprint now with the one recorded when it was parsed
        (`vzcore.verify.check_source`, one HEAD request per file); the chunks of a
        changed, missing or unrecorded file raise `SourceChangedError`.

    Raises
    ------
    UnregisteredURLError
        Listing every referenced URL the registry does not cover.
    SourceChangedError
        On reading, with ``check_sources=True``, from a file that changed.

    Examples
    --------
    >>> import zarr, vzcore as vc
    >>> group = vc.VirtualGroup(arrays={"x": vc.LoadedArray.from_numpy(np.arange(3))})
    >>> zarr.open_array(ManifestStore(group), path="x", mode="r")[:]
    array([0, 1, 2])
    """

    supports_writes = False
    supports_deletes = False
    supports_listing = True
    supports_partial_writes = False

    def __init__(
        self,
        group: VirtualGroup,
        *,
        registry: ObjectStoreRegistry | None = None,
        check_sources: bool = False,
    ) -> None:
        super().__init__(read_only=True)
        self.group = group
        self.registry = registry if registry is not None else ObjectStoreRegistry()
        self.check_sources = check_sources
        self._recorded = recorded_sources(group) if check_sources else {}
        self._checked: dict[str, SourceCheck] = {}
        self._checking = threading.Lock()
        self._documents: dict[str, bytes] = {}
        self._arrays: dict[str, _VirtualServed | _LoadedServed] = {}
        unregistered: list[tuple[str, UnregisteredURLError]] = []
        for path, node in group.walk_groups():
            self._documents[_join(path, "zarr.json")] = json.dumps(group_document(node)).encode()
        for path, array in group.walk_arrays():
            self._documents[_join(path, "zarr.json")] = json.dumps(array_document(array)).encode()
            self._arrays[path] = self._serve(array, unregistered)
        unsafe = [err for _, err in unregistered if type(err) is not UnregisteredURLError]
        if unsafe:  # refused for a reason of its own (an unsafe character): that reason
            raise unsafe[0]
        if unregistered:
            shown = ", ".join(repr(u) for u, _ in unregistered[:5])
            more = f" and {len(unregistered) - 5} more" if len(unregistered) > 5 else ""
            raise UnregisteredURLError(
                f"{len(unregistered)} referenced URL(s) are under no registered prefix: {shown}{more}; "
                f"registered: {', '.join(self.registry.prefixes) or '(none)'}"
            )
        self._batcher = RangeBatcher()

    def _serve(
        self, array: AnyArray, unregistered: list[tuple[str, UnregisteredURLError]]
    ) -> _VirtualServed | _LoadedServed:
        if isinstance(array, LoadedArray):
            return _LoadedServed(array)
        sources = []
        for url in array.manifest.dictionary.to_pylist():
            try:
                sources.append(source(self.registry, url))
            except UnregisteredURLError as err:
                unregistered.append((url, err))
        manifest = array.manifest
        indices, offsets, lengths = manifest.to_numpy_columns()
        inline = manifest.inline_data
        return _VirtualServed(
            array,
            indices,
            offsets,
            lengths,
            tuple(sources),
            ~manifest.missing_mask(),
            None if inline is None else inline.combine_chunks(),
        )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ManifestStore)
            and other.group is self.group
            and other.registry == self.registry
            and other.check_sources == self.check_sources
        )

    def __hash__(self) -> int:
        return id(self.group)

    def __repr__(self) -> str:
        return (
            f"ManifestStore({len(self._arrays)} arrays, registry prefixes {self.registry.prefixes})"
        )

    # ---- reading -------------------------------------------------------------------------

    async def get(
        self,
        key: str,
        prototype: BufferPrototype,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        document = self._documents.get(key)
        if document is not None:
            return prototype.buffer.from_bytes(_slice_bytes(document, byte_range))
        located = self._locate(key)
        if located is None:
            return None
        served, coords = located
        if isinstance(served, _LoadedServed):
            data = encode_chunk(served.array, coords)
            return prototype.buffer.from_bytes(_slice_bytes(data, byte_range))
        row = int(np.ravel_multi_index(coords, served.array.manifest.grid)) if coords else 0
        index = int(served.indices[row])
        if index < 0:
            if served.inline is None or not served.inline[row].is_valid:
                return None
            data = served.inline[row].as_buffer()
            return prototype.buffer.from_bytes(_slice_bytes(memoryview(data), byte_range))
        chunk_start = int(served.offsets[row])
        if self.check_sources:
            await self._check_source(served.sources[index], key)
        # A partial request (a shard's index, say) reads only its sub-range of the chunk.
        first, last = _sub_range(int(served.lengths[row]), byte_range)
        try:
            fetched = await self._batcher.fetch(
                served.sources[index], chunk_start + first, chunk_start + last
            )
        except SourceReadError as err:
            where = f"bytes {chunk_start + first}-{chunk_start + last}"
            raise err.about(
                f"cannot read chunk {key!r} from {err.url!r} ({where})"
            ) from err.__cause__
        return prototype.buffer.from_bytes(fetched)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_checking"]  # a lock does not pickle; a copy (a dask worker's) makes its own
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._checking = threading.Lock()

    async def _check_source(self, file: Source, key: str) -> None:
        """Refuse ``key``'s bytes unless ``file`` is unchanged (asked once per file)."""
        check = self._checked.get(file.url)
        if check is None:
            check = await asyncio.to_thread(self._check_once, file.url)
        if check.status != "unchanged":
            raise SourceChangedError(
                f"cannot serve chunk {key!r}: {file.url} is {check.status} since it was "
                f"virtualized ({check.reason}); re-virtualize it, or open the store "
                "without check_sources=True",
                url=file.url,
            )

    def _check_once(self, url: str) -> SourceCheck:
        with self._checking:
            check = self._checked.get(url)
            if check is None:
                check = check_source(url, self._recorded.get(url), self.registry)
                self._checked[url] = check
            return check

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        return list(
            await asyncio.gather(
                *(self.get(key, prototype, byte_range) for key, byte_range in key_ranges)
            )
        )

    def _locate(self, key: str) -> tuple[_VirtualServed | _LoadedServed, tuple[int, ...]] | None:
        match = _CHUNK_KEY.match(key)
        if match is None:
            return None
        served = self._arrays.get(match["array"] or "")
        if served is None:
            return None
        coords = tuple(int(c) for c in match["coords"].split("/")[1:])
        grid = served.array.metadata.grid_shape
        if len(coords) != len(grid) or any(c >= g for c, g in zip(coords, grid, strict=True)):
            return None
        return served, coords

    async def exists(self, key: str) -> bool:
        if key in self._documents:
            return True
        located = self._locate(key)
        if located is None:
            return False
        served, coords = located
        if isinstance(served, _LoadedServed):
            return True
        row = int(np.ravel_multi_index(coords, served.array.manifest.grid)) if coords else 0
        return bool(served.present[row])

    # ---- writing is refused --------------------------------------------------------------

    async def set(self, key: str, value: Buffer) -> None:
        raise PermissionError(f"ManifestStore is read-only: cannot set {key!r}")

    async def delete(self, key: str) -> None:
        raise PermissionError(f"ManifestStore is read-only: cannot delete {key!r}")

    # ---- listing -------------------------------------------------------------------------

    async def list(self) -> AsyncIterator[str]:
        for key in self._all_keys():
            yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        for key in self._all_keys():
            if key.startswith(prefix):
                yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        prefix = prefix.rstrip("/")
        base = f"{prefix}/" if prefix else ""
        seen: set[str] = set()
        for key in self._documents:
            if key.startswith(base):
                child = key[len(base) :].split("/", 1)[0]
                if child not in seen:
                    seen.add(child)
                    yield child
        for array_path, served in self._arrays.items():
            chunk_root = _join(array_path, "c")
            if prefix == array_path and "c" not in seen and self._has_chunks(served):
                seen.add("c")
                yield "c"
            elif prefix == chunk_root or prefix.startswith(chunk_root + "/"):
                depth = prefix.count("/") - chunk_root.count("/")
                fixed = tuple(int(c) for c in prefix[len(chunk_root) :].split("/")[1:])
                for value in self._child_coords(served, fixed, depth):
                    yield str(value)

    @staticmethod
    def _has_chunks(served: _VirtualServed | _LoadedServed) -> bool:
        if isinstance(served, _LoadedServed):
            return True
        return bool(served.present.any())

    @staticmethod
    def _present_coords(served: _VirtualServed | _LoadedServed) -> npt.NDArray[np.int64]:
        grid = served.array.metadata.grid_shape
        if isinstance(served, _LoadedServed):
            rows = np.arange(int(np.prod(grid)))
        else:
            rows = np.flatnonzero(served.present)
        return (
            np.stack(np.unravel_index(rows, grid), axis=1)
            if grid
            else np.zeros((len(rows), 0), int)
        )

    def _child_coords(
        self, served: _VirtualServed | _LoadedServed, fixed: tuple[int, ...], depth: int
    ) -> Sequence[int]:
        coords = self._present_coords(served)
        if depth >= coords.shape[1]:
            return []
        mask = np.all(coords[:, :depth] == np.array(fixed, dtype=np.int64), axis=1)
        values: list[int] = np.unique(coords[mask, depth]).tolist()
        return values

    def _all_keys(self) -> Iterable[str]:
        yield from self._documents
        for array_path, served in self._arrays.items():
            root = _join(array_path, "c")
            for coords in self._present_coords(served):
                yield "/".join([root, *map(str, coords.tolist())])


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name
