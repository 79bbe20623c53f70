"""Write a virtual group into an Icechunk session: zarr v3 metadata plus virtual references.

Virtual arrays are stored as references in bulk (``set_virtual_refs_arr``), their
inline chunks (bytes held in the manifest) and loaded arrays as real chunks. With ``append_dim`` the arrays that have that dimension are
grown and the new references written after the existing ones, once every array
has been checked against what the repository holds.

Icechunk reads a virtual chunk only from a declared, authorised container::

    config = icechunk.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        icechunk.VirtualChunkContainer("file:///data/", icechunk.local_filesystem_store("/data")))
    repo = icechunk.Repository.create(storage, config,
        authorize_virtual_chunk_access=icechunk.containers_credentials({"file:///data/": None}))
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Mapping
from typing import Any, Literal

import attrs
import numpy as np
import numpy.typing as npt

from vzcore.algebra import validate_compatible
from vzcore.array import AnyArray, LoadedArray, VirtualArray
from vzcore.errors import ShapeMismatch, VirtualizationError, WriteError
from vzcore.group import SourceFingerprint, VirtualGroup
from vzcore.metadata import ArrayMetadata
from vzcore.read import rectilinear_chunks_enabled
from vzcore.writers._atomic import failure_reason
from vzcore.zarr_documents import array_document, group_document

__all__ = ["SOURCES_METADATA_KEY", "icechunk_commit_metadata", "write_icechunk"]


IcechunkMode = Literal["w-", "w", "a"]

SOURCES_METADATA_KEY = "vz:sources"
"""The key of a commit's metadata that holds the fingerprints of the referenced files."""


def icechunk_commit_metadata(group: VirtualGroup) -> dict[str, Any]:
    """Commit metadata keeping the fingerprints of ``group``'s source files.

    Icechunk keeps each reference's checksum where its Python API cannot read it back;
    given to the commit, the fingerprints (size, last-modified, ETag) stay with the
    snapshot, so `vzcore.verify` and ``vz verify REPOSITORY`` can tell which source
    changed. `IcechunkParser` merges them over the snapshot's ancestry (an append's
    commit adds its new files').

    >>> write_icechunk(group, session.store)  # doctest: +SKIP
    >>> session.commit("virtual references", metadata=icechunk_commit_metadata(group))  # doctest: +SKIP
    """
    from vzcore.verify import recorded_sources

    return {
        SOURCES_METADATA_KEY: {url: fp.to_json() for url, fp in recorded_sources(group).items()}
    }


_MODES: tuple[str, ...] = ("w-", "w", "a")


def write_icechunk(
    group: VirtualGroup,
    store: Any,
    *,
    group_path: str | None = None,
    append_dim: str | None = None,
    mode: IcechunkMode | None = None,
    last_updated_at: datetime.datetime | None = None,
    validate_containers: bool = True,
) -> None:
    """Write ``group`` into an Icechunk session's store (the caller commits).

    Every check runs before the first document is written: a refusal leaves the
    session without any change of ours.

    Parameters
    ----------
    group
        What to write: virtual arrays by reference, loaded arrays as chunks.
    store
        ``session.store`` of a writable Icechunk session.
    group_path
        Where in the repository to write (the root by default).
    append_dim
        Append along this dimension to arrays already in the repository instead of
        creating them; arrays without the dimension are left as they are.
    mode
        ``"w-"`` (the default without ``append_dim``) refuses to overwrite arrays the
        repository already has; ``"w"`` replaces everything under ``group_path``;
        ``"a"`` (implied by ``append_dim``) appends along ``append_dim``.
    last_updated_at
        One checksum (a timezone-aware datetime) for every reference: a source
        modified after it makes the read fail instead of returning changed bytes.
        By default each ``s3://`` file's ETag as its parser recorded it in
        ``group.sources`` (any rewrite then fails the read, even one within the
        second), else its last-modified time (rounded up to the second, which
        Icechunk compares), or the next second for files without one.
    validate_containers
        Check that a virtual chunk container of the repository covers every
        referenced URL (Icechunk would refuse to read the others).

    Raises
    ------
    VirtualizationError
        Before anything is written: an argument of the wrong type or value, an
        existing array with ``mode="w-"``, an ``append_dim`` no array has, an
        appended array that does not match the stored one (dtype, codecs, chunk
        shape, fill value, CF encoding, other dimensions, partial last chunk), or a
        URL no virtual chunk container covers.
    WriteError
        Storage failed while writing (a full disk, no access). If the session had no
        uncommitted changes before the call, its changes are discarded, so it is as it
        was; committing nothing leaves the repository's branch where it was.
    """
    mode = _check_arguments(group, group_path, append_dim, mode, last_updated_at)
    prefix = (group_path or "").strip("/")
    plan: list[_Step]
    if mode == "a":
        assert append_dim is not None
        plan = _append_plan(group, store, prefix, append_dim)
    else:
        plan = [_Step(path, array, None, None) for path, array in group.walk_arrays()]
        if mode == "w-":
            _refuse_existing(store, prefix, plan)
    virtual = [step for step in plan if isinstance(step.array, VirtualArray)]
    if validate_containers:
        _check_containers(store, virtual, prefix)
    checksums = _Checksums(group.sources, last_updated_at)
    # ---- nothing was written above; everything is written below ----
    session: Any = getattr(store, "session", None)
    clean = session is not None and not session.has_uncommitted_changes
    try:
        _write_plan(store, group, plan, mode, prefix, checksums)
    except BaseException as err:
        if clean:
            # The session held nothing before this call: it is put back exactly so.
            session.discard_changes()
        if _is_storage_failure(err):
            kept = "the session is as it was" if clean else "discard the session's changes"
            raise WriteError(
                f"Icechunk group {'/' + prefix!r}", f"{failure_reason(err)}; {kept}"
            ) from err
        raise


def _is_storage_failure(err: BaseException) -> bool:
    """An OSError, or Icechunk's report of a storage failure (a full disk, no access)."""
    if isinstance(err, OSError):
        return True
    import icechunk

    return isinstance(err, icechunk.IcechunkError) and not isinstance(err, VirtualizationError)


def _write_plan(
    store: Any,
    group: VirtualGroup,
    plan: list[_Step],
    mode: IcechunkMode,
    prefix: str,
    checksums: _Checksums,
) -> None:
    """Write the checked plan: group documents, array documents, references and values."""
    if mode == "w" and prefix:
        _run(store.delete_dir(prefix))
    elif mode == "w":
        for key in _run_list(store.list_dir("")):
            _run(store.delete_dir(key.rstrip("/")) if key != "zarr.json" else store.delete(key))
    if mode != "a":
        parts = prefix.split("/") if prefix else []
        for depth in range(len(parts)):
            # The groups above ``group_path`` exist, so zarr and xarray can walk to it.
            key = _join(*parts[:depth], "zarr.json")
            if not _run(store.exists(key)):
                _set_document(store, key, group_document(VirtualGroup()))
        for path, node in group.walk_groups():
            _set_document(store, _join(prefix, path, "zarr.json"), group_document(node))
    for step in plan:
        full = _join(prefix, step.path)
        # Appending keeps the stored array's document (codecs, attributes); the
        # shape grows, and the chunk grid gains the new array's chunks along the axis.
        document = array_document(step.array) if step.stored is None else _appended_document(step)
        _set_document(store, _join(full, "zarr.json"), document)
        if isinstance(step.array, VirtualArray):
            chunk_offset = _chunk_offset(step)
            _set_references(store, full, step.array, chunk_offset, checksums)
            _set_inline(store, full, step.array, chunk_offset)
        else:
            _set_values(store, full, step.array, step.offset)


def _check_arguments(
    group: object,
    group_path: object,
    append_dim: object,
    mode: object,
    last_updated_at: object,
) -> IcechunkMode:
    """Every argument's type and value, all problems reported at once; the mode to use."""
    problems: list[str] = []
    if not isinstance(group, VirtualGroup):
        problems.append(f"group must be a VirtualGroup, got {type(group).__name__}")
    if group_path is not None and not isinstance(group_path, str):
        problems.append(f"group= must be a path string or None, got {group_path!r}")
    if append_dim is not None and not isinstance(append_dim, str):
        problems.append(f"append_dim= must be a dimension name or None, got {append_dim!r}")
    if mode is not None and mode not in _MODES:
        problems.append(f"mode= must be one of {list(_MODES)}, got {mode!r}")
    if append_dim is not None and mode not in (None, "a"):
        problems.append(f"append_dim={append_dim!r} appends: it needs mode='a', not {mode!r}")
    if mode == "a" and append_dim is None:
        problems.append("mode='a' appends along a dimension: pass append_dim=")
    if last_updated_at is not None and (
        not isinstance(last_updated_at, datetime.datetime) or last_updated_at.tzinfo is None
    ):
        problems.append(
            "last_updated_at= must be a timezone-aware datetime, e.g. "
            f"datetime.datetime.now(datetime.UTC), got {last_updated_at!r}"
        )
    if problems:
        raise VirtualizationError(
            "cannot write to Icechunk: " + "; ".join(problems), problems=problems
        )
    chosen = mode if mode is not None else ("a" if append_dim is not None else "w-")
    return chosen  # type: ignore[return-value]


def _refuse_existing(store: Any, prefix: str, plan: list[_Step]) -> None:
    existing = [
        step.path for step in plan if _get_document(store, _join(prefix, step.path, "zarr.json"))
    ]
    if existing:
        raise VirtualizationError(
            f"cannot write to Icechunk with mode='w-': the repository already has "
            f"{', '.join(repr(_join(prefix, p)) for p in existing)}; pass mode='w' to replace "
            "them or append_dim= to append",
            problems=[f"{_join(prefix, p)!r} exists" for p in existing],
        )


@attrs.frozen
class _Step:
    """One array to write: where, what, and for an append the axis/start and stored document."""

    path: str
    array: AnyArray
    offset: tuple[int, int] | None
    stored: dict[str, Any] | None


def _next_second() -> datetime.datetime:
    # Icechunk compares whole seconds: a source written earlier in this second
    # must not count as modified after the references were made.
    now = datetime.datetime.now(datetime.UTC)
    return now.replace(microsecond=0) + datetime.timedelta(seconds=1)


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def _run(coroutine: Any) -> Any:
    from zarr.core.sync import sync

    return sync(coroutine)


def _set_document(store: Any, key: str, document: Mapping[str, Any]) -> None:
    from zarr.core.buffer import cpu

    _run(store.set(key, cpu.Buffer.from_bytes(json.dumps(document).encode())))


def _run_list(iterator: Any) -> list[str]:
    async def collect() -> list[str]:
        return [key async for key in iterator]

    result: list[str] = _run(collect())
    return result


def _get_document(store: Any, key: str) -> dict[str, Any] | None:
    from zarr.core.buffer import default_buffer_prototype

    buffer = _run(store.get(key, prototype=default_buffer_prototype()))
    if buffer is None:
        return None
    document: dict[str, Any] = json.loads(buffer.to_bytes())
    return document


def _chunk_offset(step: _Step) -> tuple[int, ...] | None:
    """Where an appended array's chunks start in the grid: after the stored chunks."""
    if step.offset is None or step.stored is None:
        return None
    axis, _ = step.offset
    chunks = [0] * step.array.ndim
    chunks[axis] = ArrayMetadata.from_zarr_v3(step.stored).grid_shape[axis]
    return tuple(chunks)


def _appended_document(step: _Step) -> dict[str, Any]:
    """The stored ``zarr.json`` with the shape and chunk grid of stored + appended."""
    assert step.stored is not None
    assert step.offset is not None
    axis, start = step.offset
    stored = ArrayMetadata.from_zarr_v3(step.stored)
    shape = tuple(start + n if i == axis else n for i, n in enumerate(step.array.shape))
    document = dict(step.stored)
    document["shape"] = list(shape)
    if isinstance(step.array, VirtualArray):
        lengths = np.concatenate(
            [
                stored.chunk_grid.axis_lengths(stored.shape, axis),
                step.array.metadata.chunk_grid.axis_lengths(step.array.shape, axis),
            ]
        )
        grid = (
            stored.chunk_grid.replace_axis(axis, tuple(lengths.tolist()))
            if len(lengths)
            else stored.chunk_grid
        )
        document["chunk_grid"] = stored.evolve(shape=shape, chunk_grid=grid).to_zarr_v3()[
            "chunk_grid"
        ]
    return document


type _Checksum = datetime.datetime | str
"""What Icechunk compares a source with before reading: a time (modified after it
fails the read) or an ETag (any other ETag fails it)."""

# Icechunk compares the ETag its own S3 client sees with the one a reference keeps;
# obstore's ETags of local files are not the ones Icechunk computes.
_ETAG_SCHEMES = ("s3://",)


class _Checksums:
    """The checksum of each source URL: ``last_updated_at``, else an S3 object's ETag,
    else the file's own time."""

    def __init__(
        self, sources: Mapping[str, SourceFingerprint], last_updated_at: datetime.datetime | None
    ) -> None:
        self._fixed = last_updated_at
        self._sources = sources
        self._default = _next_second()

    def of(self, url: str) -> _Checksum:
        if self._fixed is not None:
            return self._fixed
        fingerprint = self._sources.get(url)
        if fingerprint is not None and fingerprint.etag and url.startswith(_ETAG_SCHEMES):
            return fingerprint.etag
        return self.time_of(url)

    def time_of(self, url: str) -> datetime.datetime:
        """The time checksum of ``url`` (for a reference guarding several files at once)."""
        if self._fixed is not None:
            return self._fixed
        fingerprint = self._sources.get(url)
        if fingerprint is None or fingerprint.last_modified is None:
            return self._default
        # Icechunk compares whole seconds: the file's time, rounded up.
        modified = datetime.datetime.fromisoformat(fingerprint.last_modified)
        if modified.microsecond:
            modified = modified.replace(microsecond=0) + datetime.timedelta(seconds=1)
        return modified


def _set_references(
    store: Any,
    path: str,
    array: VirtualArray,
    chunk_offset: tuple[int, ...] | None,
    checksums: _Checksums,
) -> None:
    """The references in bulk: one call per distinct checksum, over the block of chunks it covers.

    Files concatenated along an axis occupy disjoint blocks of the grid, so the calls
    together visit each chunk about once. When the blocks overlap much (files
    interleaved along an inner axis), one call with the newest checksum is made instead.
    """
    indices, offsets, lengths = array.manifest.to_numpy_columns()
    urls = array.manifest.dictionary.to_pylist()
    if not len(indices) or not urls:
        return  # nothing referenced: every chunk reads as the fill value
    stamps = [checksums.of(u) for u in urls]
    distinct = sorted(set(stamps), key=lambda c: (isinstance(c, str), str(c)))
    position = {stamp: k for k, stamp in enumerate(distinct)}
    group_of_url = np.array([position[t] for t in stamps] + [-1], dtype=np.int64)
    groups = group_of_url[np.where(indices < 0, len(urls), indices)]
    grid = array.manifest.grid
    offset = chunk_offset or (0,) * array.ndim
    location_of = np.array([*urls, ""], dtype=object)
    if len(distinct) <= 1:
        # One checksum (one file, or last_updated_at): the whole grid, slab by slab.
        locations = location_of[np.where(indices < 0, len(urls), indices)]
        _set_slabs(store, path, grid, locations, offsets, lengths, offset, distinct[0])
        return
    present = np.flatnonzero(groups >= 0)
    order = present[np.argsort(groups[present], kind="stable")]
    bounds = np.searchsorted(groups[order], np.arange(len(distinct) + 1))
    blocks = [order[bounds[k] : bounds[k + 1]] for k in range(len(distinct))]
    # A file's block is most often whole slabs along the first axis, back to back in
    # the manifest (files concatenated along it): such a block is passed as a slice
    # of the columns, with no coordinates computed and nothing scattered.
    per_slab = math.prod(grid[1:]) if grid else 0
    runs = [_slab_run(rows, per_slab) for rows in blocks]
    coords: list[tuple[npt.NDArray[np.intp], ...] | None] = []
    spans = []
    for rows, run in zip(blocks, runs, strict=True):
        where = None if run is not None else np.unravel_index(rows, grid)
        coords.append(where)
        spans.append(_run_span(run, grid) if where is None else _span(where, len(grid)))
    if sum(int(np.prod(hi - lo + 1)) for lo, hi in spans) > 4 * len(indices):
        # Interleaved files: the whole grid, guarded by the newest of their times.
        locations = location_of[np.where(indices < 0, len(urls), indices)]
        newest = max(checksums.time_of(u) for u in urls)
        _set_slabs(store, path, grid, locations, offsets, lengths, offset, newest)
        return
    for rows, run, where, (low, high), stamp in zip(
        blocks, runs, coords, spans, distinct, strict=True
    ):
        shape = tuple(int(n) for n in high - low + 1)
        start = tuple(int(a + lo) for a, lo in zip(offset, low, strict=True))
        if run is not None:
            first, last = run[0] * per_slab, (run[0] + run[1]) * per_slab
            _set_slabs(
                store,
                path,
                shape,
                location_of[indices[first:last]],
                offsets[first:last],
                lengths[first:last],
                start,
                stamp,
            )
            continue
        assert where is not None
        inside = np.ravel_multi_index(
            tuple(c - lo for c, lo in zip(where, low, strict=True)), shape
        )
        block_locations = np.full(int(np.prod(shape)), "", dtype=object)
        block_offsets = np.zeros(len(block_locations), dtype=np.uint64)
        block_lengths = np.zeros(len(block_locations), dtype=np.uint64)
        block_locations[inside] = location_of[indices[rows]]
        block_offsets[inside] = offsets[rows]
        block_lengths[inside] = lengths[rows]
        _set_slabs(store, path, shape, block_locations, block_offsets, block_lengths, start, stamp)


def _slab_run(rows: npt.NDArray[np.intp], per_slab: int) -> tuple[int, int] | None:
    """``(first slab, number of slabs)`` if ``rows`` (ascending) are exactly whole slabs
    back to back, else None."""
    if not len(rows) or per_slab < 1:
        return None
    first, count = int(rows[0]), len(rows)
    if first % per_slab or count % per_slab or int(rows[-1]) - first + 1 != count:
        return None
    return first // per_slab, count // per_slab


def _run_span(
    run: tuple[int, int] | None, grid: tuple[int, ...]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The first and last chunk coordinates of whole slabs ``run`` of ``grid``."""
    assert run is not None
    first, count = run
    low = np.array([first, *(0 for _ in grid[1:])], dtype=np.int64)
    high = np.array([first + count - 1, *(n - 1 for n in grid[1:])], dtype=np.int64)
    return low, high


def _set_inline(
    store: Any, path: str, array: VirtualArray, chunk_offset: tuple[int, ...] | None
) -> None:
    """The manifest's inline chunks, already encoded, written as real chunks (concurrently)."""
    import asyncio

    from zarr.core.buffer import cpu

    manifest = array.manifest
    rows = np.flatnonzero(manifest.inline_mask())
    if not len(rows):
        return
    grid = manifest.grid
    coords = (
        np.stack(np.unravel_index(rows, grid), axis=1) + np.array(chunk_offset or (0,) * len(grid))
        if grid
        else np.zeros((len(rows), 0), np.int64)
    )
    keys = ["/".join([path, "c", *map(str, c)]) for c in coords.tolist()]

    async def write_all() -> None:
        await asyncio.gather(
            *(
                store.set(key, cpu.Buffer.from_bytes(data))
                for key, data in zip(keys, manifest.inline_chunks(rows), strict=True)
            )
        )

    _run(write_all())


_SLAB_ROWS = 1 << 16
"""Most references per bulk call: Icechunk's call slows down more than linearly with its
size (10M references in one call take 2-3x as long as in calls of 10,000)."""


def _set_slabs(
    store: Any,
    path: str,
    shape: tuple[int, ...],
    locations: npt.NDArray[np.object_],
    offsets: npt.NDArray[np.uint64],
    lengths: npt.NDArray[np.uint64],
    start: tuple[int, ...],
    checksum: _Checksum,
) -> None:
    """A block of the grid in calls over runs of whole slabs along its first axis.

    Each call covers at most `_SLAB_ROWS` references (or one slab, if a slab is larger).
    """
    if not shape:
        _set_block(store, path, shape, locations.tolist(), offsets, lengths, start, checksum)
        return
    per_slab = math.prod(shape[1:])
    step = max(1, _SLAB_ROWS // max(per_slab, 1))
    for first in range(0, shape[0], step):
        last = min(first + step, shape[0])
        rows = slice(first * per_slab, last * per_slab)
        _set_block(
            store,
            path,
            (last - first, *shape[1:]),
            locations[rows].tolist(),
            offsets[rows],
            lengths[rows],
            (start[0] + first, *start[1:]),
            checksum,
        )


def _set_block(
    store: Any,
    path: str,
    shape: tuple[int, ...],
    locations: list[str],
    offsets: npt.NDArray[np.uint64],
    lengths: npt.NDArray[np.uint64],
    start: tuple[int, ...],
    checksum: _Checksum,
) -> None:
    """One bulk call of Icechunk's: a block of the grid starting at chunk ``start``."""
    failed = store.set_virtual_refs_arr(
        path,
        shape,
        locations,
        np.ascontiguousarray(offsets, dtype=np.uint64),
        np.ascontiguousarray(lengths, dtype=np.uint64),
        validate_containers=False,
        arr_offset=start if any(start) else None,
        checksum=checksum,
    )
    if failed:
        raise VirtualizationError(
            f"Icechunk refused {len(failed)} references of {path!r} (first at chunk "
            f"{failed[0]}): declare a virtual chunk container for their URLs"
        )


def _span(
    coords: tuple[npt.NDArray[np.intp], ...], ndim: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The first and last chunk coordinates of a block, per axis."""
    if not ndim or not len(coords[0]):
        return np.zeros(ndim, np.int64), np.zeros(ndim, np.int64)
    low = np.array([c.min() for c in coords], dtype=np.int64)
    high = np.array([c.max() for c in coords], dtype=np.int64)
    return low, high


def _check_containers(store: Any, steps: list[_Step], prefix: str) -> None:
    """Every referenced URL under a virtual chunk container of the repository; nothing written."""
    try:
        containers = store.session.config.virtual_chunk_containers or {}
    except AttributeError as err:
        raise VirtualizationError(
            "cannot check virtual chunk containers: the store is not an Icechunk session's "
            "store (pass validate_containers=False to skip the check)"
        ) from err
    prefixes = [c.url_prefix for c in containers.values()]
    problems = []
    for step in steps:
        assert isinstance(step.array, VirtualArray)
        uncovered = [
            u
            for u in step.array.manifest.dictionary.to_pylist()
            if not any(u.startswith(p) for p in prefixes)
        ]
        if uncovered:
            shown = ", ".join(uncovered[:3]) + (
                f" and {len(uncovered) - 3} more" if len(uncovered) > 3 else ""
            )
            problems.append(f"{_join(prefix, step.path)!r} references {shown}")
    if problems:
        declared = ", ".join(prefixes) or "none"
        raise VirtualizationError(
            "cannot write to Icechunk: no virtual chunk container covers these URLs: "
            + "; ".join(problems)
            + f" (containers: {declared}); declare one with "
            "RepositoryConfig.set_virtual_chunk_container",
            problems=problems,
        )


def _set_values(store: Any, path: str, array: LoadedArray, offset: tuple[int, int] | None) -> None:
    import zarr

    with rectilinear_chunks_enabled():
        target = zarr.open_array(store, path=path, mode="r+")
        if offset is None:
            target[...] = array.data
            return
        axis, start = offset
        region = tuple(
            slice(start, start + n) if i == axis else slice(None) for i, n in enumerate(array.shape)
        )
        target[region] = array.data


def _append_plan(group: VirtualGroup, store: Any, prefix: str, append_dim: str) -> list[_Step]:
    """Check every appended array against the stored one; nothing is written here."""
    plan: list[_Step] = []
    problems: list[tuple[type[VirtualizationError], str]] = []
    dimensions: dict[str, None] = {}
    for path, array in group.walk_arrays():
        names = array.metadata.dimension_names or ()
        dimensions.update(dict.fromkeys(n for n in names if n is not None))
        if append_dim not in names:
            continue
        axis = names.index(append_dim)
        stored_document = _get_document(store, _join(prefix, path, "zarr.json"))
        if stored_document is None:
            problems.append(
                (VirtualizationError, f"{path!r} is not in the repository to append to")
            )
            continue
        stored = ArrayMetadata.from_zarr_v3(stored_document)
        try:
            _check_appendable(stored, array, axis, path)
        except VirtualizationError as err:
            problems.extend((type(err), p) for p in err.problems)
            continue
        plan.append(_Step(path, array, (axis, stored.shape[axis]), stored_document))
    if not plan and not problems:
        raise VirtualizationError(
            f"cannot append along {append_dim!r}: no array has that dimension; "
            f"the dimensions are {list(dimensions)}"
        )
    if problems:
        messages = [m for _, m in problems]
        raise problems[0][0](
            f"cannot append along {append_dim!r}: " + "; ".join(messages), problems=messages
        )
    return plan


def _check_appendable(stored: ArrayMetadata, array: AnyArray, axis: int, path: str) -> None:
    if isinstance(array, LoadedArray):
        others = [i for i in range(array.ndim) if i != axis]
        if (
            stored.dtype != array.dtype
            or stored.ndim != array.ndim
            or [stored.shape[i] for i in others] != [array.shape[i] for i in others]
        ):
            raise ShapeMismatch(
                f"{path!r}: the stored array is {stored.dtype} {stored.shape}, the new one "
                f"{array.dtype} {array.shape}"
            )
        return
    existing = VirtualArray(stored, _empty_manifest(stored))
    comparable = array.metadata.evolve(attributes=stored.attributes)
    try:
        validate_compatible(
            [existing, VirtualArray(comparable, array.manifest)],
            axis=axis,
            operation="append",
            trim_partial=False,
        )
    except VirtualizationError as err:
        problems = [
            f"{path!r}: {p.replace('array 0', 'the stored array').replace('array 1', 'the new array')}"
            for p in err.problems
        ]
        raise type(err)("; ".join(problems), problems=problems) from err


def _empty_manifest(metadata: ArrayMetadata) -> Any:
    from vzcore.manifest import ChunkManifest

    return ChunkManifest.empty(metadata.grid_shape)
