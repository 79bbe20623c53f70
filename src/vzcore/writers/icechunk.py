"""Write a virtual group into an Icechunk session: zarr v3 metadata plus virtual references.

Virtual arrays are stored as references in bulk (``set_virtual_refs_arr``), loaded
arrays as real chunks. With ``append_dim`` the arrays that have that dimension are
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
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from vzcore.algebra import validate_compatible
from vzcore.array import AnyArray, LoadedArray, VirtualArray
from vzcore.errors import ShapeMismatch, VirtualizationError
from vzcore.group import VirtualGroup
from vzcore.metadata import ArrayMetadata
from vzcore.zarr_documents import array_document, group_document

__all__ = ["write_icechunk"]


def write_icechunk(
    group: VirtualGroup,
    store: Any,
    *,
    group_path: str | None = None,
    append_dim: str | None = None,
    last_updated_at: datetime.datetime | None = None,
) -> None:
    """Write ``group`` into an Icechunk session's store (the caller commits).

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
    last_updated_at
        Checksum for every reference (default: now, rounded up to the next second):
        a source modified after it
        makes the read fail instead of returning changed bytes.

    Raises
    ------
    VirtualizationError
        Before anything is written, if an appended array does not match the stored
        one (dtype, codecs, chunk shape, other dimensions, partial last chunk).
    """
    checksum = last_updated_at or _next_second()
    prefix = (group_path or "").strip("/")
    plan: list[_Step]
    if append_dim is None:
        plan = [_Step(path, array, None, None) for path, array in group.walk_arrays()]
        for path, node in group.walk_groups():
            _set_document(store, _join(prefix, path, "zarr.json"), group_document(node))
    else:
        plan = _append_plan(group, store, prefix, append_dim)
    for step in plan:
        full = _join(prefix, step.path)
        if step.stored is None:
            document = array_document(step.array)
        else:
            # Appending keeps the stored array's document (chunking, codecs, attributes).
            axis, start = step.offset or (0, 0)
            document = dict(step.stored)
            document["shape"] = [
                start + n if i == axis else n for i, n in enumerate(step.array.shape)
            ]
        _set_document(store, _join(full, "zarr.json"), document)
        if isinstance(step.array, VirtualArray):
            chunk_offset = _chunk_offset(step.array, step.offset)
            _set_references(store, full, step.array, chunk_offset, checksum)
        else:
            _set_values(store, full, step.array, step.offset)


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


def _get_document(store: Any, key: str) -> dict[str, Any] | None:
    from zarr.core.buffer import default_buffer_prototype

    buffer = _run(store.get(key, prototype=default_buffer_prototype()))
    if buffer is None:
        return None
    document: dict[str, Any] = json.loads(buffer.to_bytes())
    return document


def _chunk_offset(array: AnyArray, offset: tuple[int, int] | None) -> tuple[int, ...] | None:
    if offset is None:
        return None
    axis, length = offset
    chunks = [0] * array.ndim
    chunks[axis] = length // array.metadata.chunk_shape[axis]
    return tuple(chunks)


def _set_references(
    store: Any,
    path: str,
    array: VirtualArray,
    chunk_offset: tuple[int, ...] | None,
    checksum: datetime.datetime,
) -> None:
    indices, offsets, lengths = array.manifest.to_numpy_columns()
    if not len(indices):
        return
    # One Python string per distinct file, shared by every chunk of that file.
    urls = np.array([*array.manifest.dictionary.to_pylist(), ""], dtype=object)
    locations = urls[np.where(indices < 0, len(urls) - 1, indices)].tolist()
    _check_containers(store, path, array, chunk_offset, checksum)
    failed = store.set_virtual_refs_arr(
        path,
        array.manifest.grid,
        locations,
        np.ascontiguousarray(offsets, dtype=np.uint64),
        np.ascontiguousarray(lengths, dtype=np.uint64),
        validate_containers=False,
        arr_offset=chunk_offset,
        checksum=checksum,
    )
    if failed:
        raise VirtualizationError(
            f"Icechunk refused {len(failed)} references of {path!r} (first at chunk {failed[0]}): "
            "declare a virtual chunk container for their URLs"
        )


def _check_containers(
    store: Any,
    path: str,
    array: VirtualArray,
    chunk_offset: tuple[int, ...] | None,
    checksum: datetime.datetime,
) -> None:
    """Write one reference per source file with Icechunk's container check on.

    Checking every reference makes Icechunk's commit far slower; one per file
    catches a URL no virtual chunk container covers just as well.
    """
    indices, offsets, lengths = array.manifest.to_numpy_columns()
    present = np.flatnonzero(indices >= 0)
    _, first = np.unique(indices[present], return_index=True)
    urls = array.manifest.dictionary.to_pylist()
    shift = np.asarray(chunk_offset or (0,) * array.ndim)
    for row in present[first].tolist():
        coords = np.unravel_index(row, array.manifest.grid) if array.ndim else ()
        key = "/".join([path, "c", *(str(c + s) for c, s in zip(coords, shift, strict=True))])
        url = urls[indices[row]]
        try:
            store.set_virtual_ref(
                key,
                url,
                offset=int(offsets[row]),
                length=int(lengths[row]),
                checksum=checksum,
                validate_container=True,
            )
        except Exception as err:  # icechunk's error types are not importable by name
            raise VirtualizationError(
                f"Icechunk refused a reference of {path!r} to {url!r}: {err}; declare a "
                "virtual chunk container for it"
            ) from err


def _set_values(store: Any, path: str, array: LoadedArray, offset: tuple[int, int] | None) -> None:
    import zarr

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
    for path, array in group.walk_arrays():
        names = array.metadata.dimension_names or ()
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
            [existing, VirtualArray(comparable, array.manifest)], axis=axis, operation="append"
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
