"""`IcechunkParser`: the arrays of an Icechunk repository back as a `VirtualGroup`.

Every chunk reference of an array is listed in bulk (``array_chunk_iterator``,
columnar batches), never one store call per chunk:

- a *virtual* chunk becomes the reference it was written as (URL, offset, length);
- a *native* chunk (written by Icechunk itself) becomes a reference into the
  repository's own chunk object, ``<repository URL>/chunks/<chunk id>``, which the
  registry reads like any other file;
- an array without virtual chunks (a coordinate vz loaded and wrote, or any small
  array written through zarr) is read into a `LoadedArray` when it is at most
  ``max_loaded_bytes``;
- *inline* chunks (bytes kept inside Icechunk's manifests) become inline rows of
  the manifest, their bytes read through the session's store (concurrently), when
  the array also has virtual chunks or is too big to load; an array of native and
  inline chunks only is loaded like any other.

The repository is opened with Icechunk's own storage, built from the store the
registry holds for its URL (a local folder or an S3 bucket), or given as ``storage=``.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from vzcore.algebra import referenced_paths
from vzcore.array import AnyArray, LoadedArray, VirtualArray
from vzcore.byteranges import fingerprints
from vzcore.errors import VirtualizationError
from vzcore.group import SourceFingerprint, VirtualGroup, nest_arrays
from vzcore.limits import check_limit
from vzcore.manifest import ChunkManifest
from vzcore.metadata import ArrayMetadata
from vzcore.parsers.protocol import Probe
from vzcore.registry import ObjectStoreRegistry, ObstoreReader
from vzcore.urls import normalize_url
from vzcore.writers.icechunk import SOURCES_METADATA_KEY

__all__ = [
    "ICECHUNK_MAGIC",
    "IcechunkFormatError",
    "IcechunkParser",
    "icechunk_storage",
    "s3_virtual_chunk_container",
]

ICECHUNK_MAGIC = b"ICE\xf0\x9f\xa7\x8aCHUNK"
"""The first bytes of every object Icechunk writes ("ICE🧊CHUNK"), its ``repo`` file too."""

_NATIVE, _VIRTUAL, _INLINE = (
    1,
    2,
    3,
)  # icechunk.ChunkType values, as array_chunk_iterator gives them
_BATCH_SIZE = 1_000_000


class IcechunkFormatError(VirtualizationError):
    """Not an Icechunk repository, no such branch, tag, snapshot or group, or an array vz cannot hold."""


def _check_version(instance: IcechunkParser, _: attrs.Attribute[Any], value: object) -> None:
    del value
    chosen = [
        name for name in ("branch", "tag", "snapshot_id") if getattr(instance, name) is not None
    ]
    if len(chosen) > 1:
        raise VirtualizationError(
            f"IcechunkParser reads one version: pass one of branch=, tag=, snapshot_id=, "
            f"not {' and '.join(chosen)}"
        )


def _check_limit(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise VirtualizationError(
            f"max_loaded_bytes= must be a non-negative int of bytes, got {value!r}"
        )


@attrs.frozen(kw_only=True)
class IcechunkParser:
    """Parser for Icechunk repositories: a branch tip, tag or snapshot, one group of it.

    Attributes
    ----------
    branch, tag, snapshot_id
        The version to read (at most one; the tip of ``"main"`` by default).
    group
        The group to read (``"a/b"``); the repository's root by default.
    storage
        An ``icechunk.Storage`` to open the repository with; by default it is built
        from the registry's store for the URL (a local folder or an S3 bucket). The
        URL must be registered either way: native chunks are read through it.
    max_loaded_bytes
        Arrays without virtual chunks up to this size (decoded) are read into memory
        as `LoadedArray`; larger ones reference the repository's chunk objects.
    drop_variables
        Arrays left out (by name, in any group), e.g. one whose metadata vz cannot hold.
    fingerprint_sources
        Record the size, last-modified time and ETag of every referenced file as it is
        now (one HEAD each). By default the group's sources are the fingerprints vz's
        commits kept in their metadata (`vzcore.writers.icechunk_commit_metadata`), as
        the files were when they were parsed; Icechunk keeps its own checksums where its
        Python API cannot read them.

    Examples
    --------
    >>> IcechunkParser(snapshot_id="1CECHNKREP0F1RSTCMT0", group="runs").version
    "snapshot '1CECHNKREP0F1RSTCMT0'"
    """

    branch: str | None = attrs.field(default=None, validator=_check_version)
    tag: str | None = None
    snapshot_id: str | None = None
    group: str | None = None
    storage: Any = attrs.field(default=None, eq=False)
    max_loaded_bytes: int = attrs.field(default=64 * 2**20, validator=_check_limit)
    drop_variables: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    fingerprint_sources: bool = False

    priority = -15  # one object with a magic number: as specific as a vz manifest

    @classmethod
    def can_open(cls, probe: Probe) -> bool:
        """A folder holding Icechunk's ``repo`` object (it starts with `ICECHUNK_MAGIC`)."""
        if probe.head is not None:
            return False
        document = probe.member("repo")
        return document is not None and document.startswith(ICECHUNK_MAGIC)

    @property
    def version(self) -> str:
        """The version this parser reads, in words (for messages)."""
        if self.snapshot_id is not None:
            return f"snapshot {self.snapshot_id!r}"
        if self.tag is not None:
            return f"tag {self.tag!r}"
        return f"branch {self.branch or 'main'!r}"

    def __call__(self, url: str, registry: ObjectStoreRegistry) -> VirtualGroup:
        repository_url = normalize_url(url).rstrip("/")
        storage = icechunk_storage(repository_url, registry, given=self.storage)
        repository, session = self._session(storage, repository_url)
        prefix = (self.group or "").strip("/")
        where = f"{repository_url} ({self.version})"
        documents = {
            path: document
            for path, document in _node_documents(session.store, prefix, where).items()
            if document.get("node_type") != "array"
            or posixpath.basename(path) not in self.drop_variables
        }
        arrays: dict[str, AnyArray] = {}
        batches = _chunk_batches(
            session.store,
            [_join(prefix, p) for p, d in documents.items() if d.get("node_type") == "array"],
        )
        for path, document in documents.items():
            if document.get("node_type") != "array":
                continue
            full = _join(prefix, path)
            arrays[path] = self._array(
                session.store, full, document, batches[full], repository_url, where
            )

        def attributes_of(group_path: str) -> Mapping[str, Any]:
            value = documents.get(group_path, {}).get("attributes") or {}
            return value if isinstance(value, dict) else {}

        groups = [p for p, d in documents.items() if d.get("node_type") == "group"]
        group = nest_arrays(arrays, attributes_of, group_paths=groups)
        referenced = referenced_paths(group)
        if self.fingerprint_sources:
            return group.evolve(sources=fingerprints(registry, referenced))
        recorded = _recorded_sources(repository, session.snapshot_id, where)
        return group.evolve(sources={u: fp for u, fp in recorded.items() if u in referenced})

    def _session(self, storage: Any, repository_url: str) -> tuple[Any, Any]:
        import icechunk

        try:
            repository = icechunk.Repository.open(storage)
        except icechunk.IcechunkError as err:
            raise IcechunkFormatError(
                f"{repository_url}: not an Icechunk repository ({_first_line(err)})"
            ) from err
        try:
            if self.snapshot_id is not None:
                return repository, repository.readonly_session(snapshot_id=self.snapshot_id)
            if self.tag is not None:
                return repository, repository.readonly_session(tag=self.tag)
            return repository, repository.readonly_session(self.branch or "main")
        except icechunk.IcechunkError as err:
            raise IcechunkFormatError(
                f"{repository_url}: cannot read {self.version}: {_first_line(err)}"
            ) from err

    def _array(
        self,
        store: Any,
        path: str,
        document: Mapping[str, Any],
        batches: list[tuple[Any, ...]],
        repository_url: str,
        where: str,
    ) -> AnyArray:
        try:
            metadata = ArrayMetadata.from_zarr_v3(document)
        except VirtualizationError as err:
            raise IcechunkFormatError(f"{where}: array {path!r}: {err}") from err
        chunks = _Chunks.concatenate(batches, metadata.ndim)
        counts = np.bincount(chunks.kinds, minlength=4)
        decoded_nbytes = int(np.prod(metadata.shape)) * metadata.dtype.itemsize
        loadable = decoded_nbytes <= self.max_loaded_bytes
        if counts[_VIRTUAL] == 0 and counts[_NATIVE] + counts[_INLINE] > 0 and loadable:
            return _loaded(store, path, metadata, where)
        place = f"{where}: array {path!r}"
        inline_data = None
        if counts[_INLINE]:
            inline = chunks.kinds == _INLINE
            check_limit(
                "max_inline_bytes",
                int(chunks.lengths[inline].sum()),
                place,
                "the total size of its inline chunks in bytes",
            )
            inline_data = _inline_chunks(store, path, chunks.coords[inline], place)
        return VirtualArray(
            metadata, chunks.manifest(metadata.grid_shape, repository_url, place, inline_data)
        )


@attrs.frozen
class _Chunks:
    """The chunk references of one array, as Icechunk lists them (present chunks only)."""

    coords: npt.NDArray[np.int64]
    kinds: npt.NDArray[np.uint8]
    locations: pa.Array
    offsets: npt.NDArray[np.uint64]
    lengths: npt.NDArray[np.uint64]

    @classmethod
    def concatenate(cls, batches: Sequence[tuple[Any, ...]], ndim: int) -> _Chunks:
        if not batches:
            return cls(
                np.zeros((0, ndim), np.int64),
                np.zeros(0, np.uint8),
                pa.array([], pa.string()),
                np.zeros(0, np.uint64),
                np.zeros(0, np.uint64),
            )
        return cls(
            np.concatenate([np.asarray(b[0], np.int64).reshape(len(b[1]), ndim) for b in batches]),
            np.concatenate([np.asarray(b[1], np.uint8) for b in batches]),
            pa.concat_arrays([pa.array(b[2], pa.string()) for b in batches]),
            np.concatenate([np.asarray(b[3], np.uint64) for b in batches]),
            np.concatenate([np.asarray(b[4], np.uint64) for b in batches]),
        )

    def select(self, rows: npt.NDArray[np.bool_]) -> _Chunks:
        """The chunks where ``rows`` is true."""
        return _Chunks(
            self.coords[rows],
            self.kinds[rows],
            pc.filter(self.locations, pa.array(rows)),
            self.offsets[rows],
            self.lengths[rows],
        )

    def manifest(
        self,
        grid: tuple[int, ...],
        repository_url: str,
        where: str,
        inline_data: list[bytes] | None = None,
    ) -> ChunkManifest:
        """The references on the array's grid; native chunks point into the repository.

        ``inline_data`` holds the bytes of the inline chunks, in their order here.
        Chunks outside the grid (left by a shrinking resize) are not part of the array.
        """
        inside = np.all(self.coords < np.asarray(grid, dtype=np.int64), axis=1)
        data = None
        if inline_data is not None:
            data = np.full(len(self.kinds), None, dtype=object)
            data[self.kinds == _INLINE] = inline_data
            data = data[inside]
        chunks = self if inside.all() else self.select(inside)
        locations = chunks.locations
        native = chunks.kinds == _NATIVE
        if native.any():
            ids = pc.filter(locations, pa.array(native))
            odd = pc.invert(pc.match_substring_regex(ids, "^[0-9A-Za-z]+$"))
            if pc.any(odd).as_py():
                raise IcechunkFormatError(
                    f"{where}: native chunk id {pc.filter(ids, odd)[0].as_py()!r} is not "
                    "an Icechunk chunk id (letters and digits)"
                )
            in_repository = pc.binary_join_element_wise(
                pa.scalar(f"{repository_url}/chunks/"), locations, ""
            )
            locations = pc.if_else(pa.array(native), in_repository, locations)
        encoded = locations.dictionary_encode()
        n_chunks = int(np.prod(grid))
        rows = (
            np.ravel_multi_index(tuple(chunks.coords.T), grid)
            if grid
            else np.zeros(len(chunks.kinds), np.int64)
        )
        indices = np.full(n_chunks, -1, dtype=np.int32)
        offsets = np.zeros(n_chunks, dtype=np.uint64)
        lengths = np.zeros(n_chunks, dtype=np.uint64)
        indices[rows] = encoded.indices.to_numpy(zero_copy_only=False)
        offsets[rows] = chunks.offsets
        lengths[rows] = chunks.lengths
        column = None
        if data is not None:
            inline_rows = rows[chunks.kinds == _INLINE]
            indices[inline_rows] = -1
            offsets[inline_rows] = 0
            lengths[inline_rows] = 0
            full = np.full(n_chunks, None, dtype=object)
            full[rows] = data
            column = pa.array(full, pa.large_binary())
        return ChunkManifest.from_numpy_columns(
            grid,
            dictionary=encoded.dictionary,
            indices=indices,
            offsets=offsets,
            lengths=lengths,
            data=column,
        )


def _inline_chunks(store: Any, path: str, coords: npt.NDArray[np.int64], where: str) -> list[bytes]:
    """The bytes of an array's inline chunks, read through the session's store together.

    Icechunk lists inline chunks without their bytes; only the store serves them.
    """
    import asyncio

    import icechunk
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    keys = ["/".join([path, "c", *map(str, c)]) for c in coords.tolist()]

    async def read_all() -> list[Any]:
        prototype = default_buffer_prototype()
        return list(await asyncio.gather(*(store.get(k, prototype=prototype) for k in keys)))

    try:
        buffers = sync(read_all())
    except (icechunk.IcechunkError, OSError, ValueError) as err:
        raise IcechunkFormatError(
            f"{where}: cannot read its inline chunks: {_first_line(err)}"
        ) from err
    absent = [k for k, b in zip(keys, buffers, strict=True) if b is None]
    if absent:
        raise IcechunkFormatError(f"{where}: inline chunk {absent[0]!r} is listed but absent")
    return [b.to_bytes() for b in buffers]


def _loaded(store: Any, path: str, metadata: ArrayMetadata, where: str) -> LoadedArray:
    """The array's values read through zarr from the session (native and inline chunks)."""
    import icechunk
    import zarr

    try:
        values = zarr.open_array(store, path=path, mode="r")[...]
    except (icechunk.IcechunkError, OSError, ValueError) as err:
        raise IcechunkFormatError(
            f"{where}: array {path!r}: cannot read its values: {_first_line(err)}"
        ) from err
    return LoadedArray(metadata, np.asarray(values).astype(metadata.dtype, copy=False))


def icechunk_storage(url: str, registry: ObjectStoreRegistry, *, given: Any = None) -> Any:
    """Icechunk's storage for the repository at ``url``, from the registry's store for it.

    Parameters
    ----------
    url
        The repository's URL; it must lie under a registered prefix.
    registry
        Its store says where the repository is: a `LocalStore` folder or an
        `S3Store` bucket (endpoint, region, keys and ``allow_http`` carried over).
    given
        A storage to use instead (the URL is still checked against the registry).

    Raises
    ------
    UnregisteredURLError
        If ``url`` lies under no registered prefix.
    IcechunkFormatError
        If the store is of a kind Icechunk cannot open by itself (pass ``storage=``).
    """
    import icechunk

    reader, path = registry.resolve(url)
    if given is not None:
        return given
    store = reader.store if isinstance(reader, ObstoreReader) else None
    from obstore.store import LocalStore, S3Store

    if isinstance(store, LocalStore):
        assert isinstance(reader, ObstoreReader)
        local = reader.local_path(path)
        assert local is not None
        return icechunk.local_filesystem_storage(local)
    if isinstance(store, S3Store):
        return _s3_storage(store, path)
    kind = type(store if store is not None else reader).__name__
    raise IcechunkFormatError(
        f"{url}: Icechunk opens repositories from local folders and S3 buckets, not from a "
        f"{kind}; pass IcechunkParser(storage=icechunk.<...>_storage(...))"
    )


def _s3_settings(store: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """How Icechunk reaches the bucket of obstore's ``S3Store`` ``store``: the endpoint
    settings (region, endpoint, http, path style) and the credentials keywords."""
    config: dict[str, Any] = dict(store.config)
    client = dict(store.client_options or {})
    where = {
        "region": config.get("region"),
        "endpoint_url": config.get("endpoint"),
        "allow_http": str(client.get("allow_http", "false")).lower() == "true",
        "force_path_style": (
            str(config.get("virtual_hosted_style_request", "false")).lower() != "true"
        ),
    }
    # obstore signs nothing when skip_signature is set, and uses keys only as a pair.
    if str(config.get("skip_signature", "false")).lower() == "true":
        return where, {"anonymous": True}
    if config.get("access_key_id") and config.get("secret_access_key"):
        names = ("access_key_id", "secret_access_key", "session_token")
        return where, {name: config[name] for name in names if config.get(name)}
    return where, {"from_env": True}


def _s3_storage(store: Any, path: str) -> Any:
    import icechunk

    where, credentials = _s3_settings(store)
    prefix = posixpath.join(str(store.prefix or ""), path).strip("/")
    bucket = dict(store.config)["bucket"]
    return icechunk.s3_storage(bucket=bucket, prefix=prefix or None, **where, **credentials)


def s3_virtual_chunk_container(prefix: str, store: Any) -> tuple[Any, Any]:
    """An Icechunk virtual chunk container for the S3 ``prefix`` obstore's ``store``
    reads, with the same region and endpoint (so Icechunk itself reads its chunks), and
    credentials for it: the store's keys, anonymous, or the environment's."""
    import icechunk

    where, credentials = _s3_settings(store)
    compatible = where["endpoint_url"] is not None
    container = icechunk.VirtualChunkContainer(
        prefix,
        icechunk.s3_store(
            region=where["region"],
            endpoint_url=where["endpoint_url"],
            allow_http=where["allow_http"],
            s3_compatible=compatible,
            force_path_style=where["force_path_style"] and compatible,
        ),
    )
    return container, icechunk.s3_credentials(**credentials)


def _node_documents(store: Any, prefix: str, where: str) -> dict[str, dict[str, Any]]:
    """The ``zarr.json`` of every node under ``prefix``, by path relative to it (``""`` first).

    Icechunk lists the nodes of a group (``list_dir``), never chunk keys, so the walk
    costs one listing per group and one read per node.
    """
    root = _document(store, _join(prefix, "zarr.json"))
    if root is None or root.get("node_type") != "group":
        what = f"no group {prefix!r}" if prefix else "no root group"
        raise IcechunkFormatError(f"{where}: {what}")
    found: dict[str, dict[str, Any]] = {"": root}
    pending = [""]
    while pending:
        group_path = pending.pop()
        for name in sorted(_list_dir(store, _join(prefix, group_path))):
            if name == "zarr.json":
                continue
            path = _join(group_path, name.rstrip("/"))
            document = _document(store, _join(prefix, path, "zarr.json"))
            if document is None:
                continue  # listed but gone: nothing to read
            found[path] = document
            if document.get("node_type") == "group":
                pending.append(path)
    return found


def _document(store: Any, key: str) -> dict[str, Any] | None:
    from zarr.core.buffer import default_buffer_prototype

    buffer = _run(store.get(key, prototype=default_buffer_prototype()))
    if buffer is None:
        return None
    document = json.loads(buffer.to_bytes())
    return document if isinstance(document, dict) else None


def _list_dir(store: Any, prefix: str) -> list[str]:
    async def collect() -> list[str]:
        return [key async for key in store.list_dir(prefix)]

    result: list[str] = _run(collect())
    return result


def _chunk_batches(store: Any, paths: Sequence[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Every array's chunk references in columnar batches, the arrays listed concurrently."""
    import asyncio

    async def one(path: str) -> list[tuple[Any, ...]]:
        return [batch async for batch in store.array_chunk_iterator(path, _BATCH_SIZE)]

    async def every() -> list[list[tuple[Any, ...]]]:
        return list(await asyncio.gather(*(one(p) for p in paths)))

    listed: list[list[tuple[Any, ...]]] = _run(every())
    return dict(zip(paths, listed, strict=True))


def _run(coroutine: Any) -> Any:
    from zarr.core.sync import sync

    return sync(coroutine)


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def _first_line(err: BaseException) -> str:
    # Icechunk's messages carry a multi-line Rust context after the first line.
    lines = str(err).strip().splitlines()
    return lines[0].strip() if lines else type(err).__name__


def _recorded_sources(
    repository: Any, snapshot_id: str, where: str
) -> dict[str, SourceFingerprint]:
    """The fingerprints vz's commits kept (`icechunk_commit_metadata`), merged over the
    snapshot's ancestry: a later commit's fingerprint of a file replaces an earlier one."""
    import icechunk

    try:
        history = list(repository.ancestry(snapshot_id=snapshot_id))
    except icechunk.IcechunkError as err:
        raise IcechunkFormatError(f"{where}: cannot read the history: {_first_line(err)}") from err
    found: dict[str, SourceFingerprint] = {}
    for info in reversed(history):  # oldest first
        kept = (info.metadata or {}).get(SOURCES_METADATA_KEY)
        if kept is None:
            continue
        if not isinstance(kept, dict):
            raise IcechunkFormatError(
                f"{where}: snapshot {info.id}: {SOURCES_METADATA_KEY!r} is not an object"
            )
        try:
            found.update(
                {
                    url: SourceFingerprint.from_json(
                        fp, where=f"{where}: snapshot {info.id}: {url}"
                    )
                    for url, fp in kept.items()
                }
            )
        except VirtualizationError as err:
            raise IcechunkFormatError(str(err)) from err
    return found
