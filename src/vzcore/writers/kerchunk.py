"""Kerchunk references (version 1): an in-memory dict, JSON, and fsspec's parquet layout.

Zarr v2 metadata sits under ``.zgroup``, ``.zattrs``, ``<array>/.zarray`` and
``<array>/.zattrs`` (``_ARRAY_DIMENSIONS`` for xarray); chunk ``<array>/i.j.k`` is
``[url, offset, length]``, or inline data (``base64:...``) for loaded arrays, the
manifest's inline chunks and chunks under ``inline_threshold``; missing chunks are
left out. Inline bytes are always written as ``base64:`` text (a raw string that
happened to start with ``base64:`` would be misread).

JSON and parquet are built column-wise with Arrow (keys, URLs and numbers are
formatted as string columns, never one Python object per reference) and written
atomically (`vzcore.writers._atomic`): to a temporary sibling, flushed to disk, then
renamed into place; a failure leaves the previous output, or nothing.
"""

from __future__ import annotations

import base64
import json
import math
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vzcore._frozen import JSON, thaw_json
from vzcore.array import AnyArray, LoadedArray, VirtualArray, encode_chunk
from vzcore.byteranges import read_references
from vzcore.cf import zarr_v2_fill_value
from vzcore.errors import (
    RectilinearGridError,
    UnsupportedCodecError,
    VirtualizationError,
    WriteError,
)
from vzcore.group import VirtualGroup
from vzcore.manifest import ChunkManifest, _indices
from vzcore.metadata import ArrayMetadata
from vzcore.read import encode_fill_chunk
from vzcore.registry import ObjectStoreRegistry
from vzcore.urls import fsspec_url
from vzcore.writers._atomic import (
    ObjectTarget,
    is_object_store_url,
    local_target,
    object_target,
    staged_folder_upload,
    staged_output,
    staged_upload,
)
from vzcore.writers.icechunk import SOURCES_METADATA_KEY

__all__ = ["kerchunk_refs", "write_kerchunk_json", "write_kerchunk_parquet"]

_BATCH_ROWS = 1 << 20
_FILL_BUDGET = 64 << 20


# ---- metadata -------------------------------------------------------------------------


def _v2_documents(array: AnyArray) -> tuple[dict[str, JSON], dict[str, JSON]]:
    """``.zarray`` and ``.zattrs`` with xarray's CF conventions for zarr v2."""
    metadata = array.metadata
    if isinstance(array, LoadedArray):
        # In-memory values are inlined uncompressed, little-endian.
        codec: dict[str, Any] = {"name": "bytes"}
        if array.dtype.itemsize > 1:
            codec["configuration"] = {"endian": "little"}
        metadata = metadata.evolve(codecs=[codec])
    zarray, zattrs = metadata.to_zarr_v2()
    cf_fill = zarr_v2_fill_value(metadata.encoding)
    zattrs.pop("_FillValue", None)
    if cf_fill is not None:
        zarray["fill_value"] = metadata.evolve(fill_value=cf_fill).to_zarr_v2()[0]["fill_value"]
    elif not _fill_value_must_say_it(array):
        # Without a CF _FillValue nothing may be masked, so there is no fill_value.
        zarray["fill_value"] = None
    return zarray, zattrs


def _fill_value_must_say_it(array: AnyArray) -> bool:
    """Missing chunks the ``fill_value`` must stand for: NaN, or too many to write out
    (see `_fill_chunk`)."""
    if not isinstance(array, VirtualArray):
        return False
    metadata = array.metadata
    if (
        "_FillValue" not in metadata.encoding
        and array.manifest.n_missing > 0
        and _nan_carried(metadata)
    ):
        return True
    return _fill_is_material(array) and not _fill_chunk(array)


def _fill_is_material(array: VirtualArray) -> bool:
    """Whether a missing chunk of ``array`` reads as something other than zarr v2's default."""
    metadata = array.metadata
    return (
        "_FillValue" not in metadata.encoding
        and array.manifest.n_missing > 0
        and any(metadata.fill_value.tobytes())
        and not _nan_carried(metadata)
    )


def _nan_carried(metadata: ArrayMetadata) -> bool:
    """A NaN fill the ``fill_value`` may carry: masking NaN as NaN changes no value.

    Not for packed data: a ``fill_value`` read as ``_FillValue`` makes xarray keep the
    stored float type where ``add_offset`` alone would give float64.
    """
    fill = metadata.fill_value
    packed = "scale_factor" in metadata.encoding or "add_offset" in metadata.encoding
    return not packed and fill.dtype.kind in "fc" and bool(np.isnan(fill).all())


def _fill_chunk(array: VirtualArray) -> bytes:
    """The encoded chunk that stands in for the array's missing chunks, or b"" for none.

    xarray masks zarr v2 data with the ``fill_value``, which is right only when the
    array has a CF ``_FillValue``. Without one, the missing chunks (never written in
    the source, e.g. an HDF5 dataset's unallocated chunks) read as the source's fill
    value *unmasked*, so each is written as an inline chunk of that value, up to
    `_FILL_BUDGET` bytes in all; beyond that the ``fill_value`` carries it.
    """
    if not _fill_is_material(array):
        return b""
    encoded = encode_fill_chunk(array.metadata)
    return encoded if len(encoded) * array.manifest.n_missing <= _FILL_BUDGET else b""


def _fill_rows(array: VirtualArray) -> tuple[npt.NDArray[np.int64], bytes]:
    """Rows of the missing chunks written as inline fill chunks, and their bytes."""
    data = _fill_chunk(array)
    if not data:
        return np.zeros(0, np.int64), b""
    return np.flatnonzero(array.manifest.missing_mask()), data


def _metadata_entries(group: VirtualGroup) -> dict[str, JSON]:
    entries: dict[str, JSON] = {}
    for path, node in group.walk_groups():
        prefix = f"{path}/" if path else ""
        entries[f"{prefix}.zgroup"] = {"zarr_format": 2}
        entries[f"{prefix}.zattrs"] = thaw_json(node.attributes)
    for path, array in group.walk_arrays():
        try:
            zarray, zattrs = _v2_documents(array)
            if isinstance(array, VirtualArray):
                _fill_chunk(array)  # refused here, before any output, if it cannot encode
        except UnsupportedCodecError as err:
            advice = (
                ""
                if isinstance(err, RectilinearGridError)
                else "; write it to Icechunk or a manifest parquet, or load it"
            )
            raise type(err)(
                f"variable {path!r} cannot be written as Kerchunk references (zarr v2): "
                f"{err}{advice}"
            ) from err
        entries[f"{path}/.zarray"] = zarray
        entries[f"{path}/.zattrs"] = zattrs
    return entries


# ---- chunk keys and inline data ---------------------------------------------------------


def _chunk_keys(grid: tuple[int, ...], rows: npt.NDArray[np.int64]) -> pa.Array:
    """``"i.j.k"`` for each row of a C-ordered grid, built as Arrow string columns."""
    if not grid:
        return pa.array(["0"] * len(rows), pa.large_string())
    texts = _key_texts(grid, "", rows_per_call=len(rows))(rows)
    return texts[0] if len(texts) == 1 else pc.binary_join_element_wise(*texts, _text(""))


def _key_texts(
    grid: tuple[int, ...], prefix: str, *, rows_per_call: int = _BATCH_ROWS
) -> Callable[[npt.NDArray[np.int64]], list[pa.Array | pa.Scalar]]:
    """A function giving, for rows of ``grid``, the texts that joined make ``prefix + "i.j.k"``.

    Trailing axes are taken together while their chunks number no more than the rows
    of a call (``rows_per_call``): the texts of such a run (``"j.k"``) are formatted once
    and picked per row by ``row // stride % size``, so a join sees few pieces (one per
    run of axes); a longer axis alone is formatted per row. The first text starts with
    ``prefix``; the runs are joined by ``"."``.
    """
    if not grid:
        return lambda rows: [_text(prefix + "0")]
    runs: list[tuple[int, int]] = []  # (first axis, last axis + 1), from the last axis back
    stop = len(grid)
    while stop > 0:
        start, size = stop - 1, grid[stop - 1]
        while start > 0 and size * grid[start - 1] <= rows_per_call:
            start -= 1
            size *= grid[start]
        runs.append((start, stop))
        stop = start
    runs.reverse()
    pieces: list[tuple[int, int | None, pa.Array | None, str, str]] = []
    for number, (start, stop) in enumerate(runs):
        before = prefix if number == 0 else ""
        after = "" if number == len(runs) - 1 else "."
        size = math.prod(grid[start:stop])
        stride = math.prod(grid[stop:])
        labels = _run_labels(grid[start:stop], before, after) if size <= rows_per_call else None
        # The first run's coordinate is row // stride already; the others wrap around.
        pieces.append((stride, size if start else None, labels, before, after))

    def texts(rows: npt.NDArray[np.int64]) -> list[pa.Array | pa.Scalar]:
        out: list[pa.Array | pa.Scalar] = []
        for stride, wrap, labels, before, after in pieces:
            coords = rows // stride if stride > 1 else rows
            if wrap is not None:
                coords = coords % wrap
            out.append(
                _decimal_with(coords, before, after) if labels is None else pc.take(labels, coords)
            )
        return out

    return texts


def _run_labels(sides: tuple[int, ...], before: str, after: str) -> pa.Array:
    """``before + "j.k" + after`` for every coordinate of a grid of ``sides``, in C order."""
    coords = np.unravel_index(np.arange(math.prod(sides), dtype=np.int64), sides)
    last = len(sides) - 1
    parts = [
        _decimal_with(c, before if a == 0 else "", after if a == last else ".")
        for a, c in enumerate(coords)
    ]
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, _text(""))


def _decimal_with(values: npt.NDArray[Any], before: str, after: str) -> pa.Array:
    """``before + str(v) + after`` for each value, as one Arrow string column."""
    digits = pc.cast(pa.array(values), pa.large_string())
    if not before and not after:
        return digits
    return pc.binary_join_element_wise(_text(before), digits, _text(after), _text(""))


def _text(value: str) -> pa.Scalar:
    return pa.scalar(value, pa.large_string())


def _loaded_chunks(array: LoadedArray) -> Iterator[tuple[str, bytes]]:
    grid = array.metadata.grid_shape
    for coords in np.ndindex(*grid):
        key = ".".join(map(str, coords)) if grid else "0"
        yield key, encode_chunk(array, coords)


def _inline_text(data: bytes) -> str:
    return "base64:" + base64.b64encode(data).decode("ascii")


def _small_chunk_rows(array: VirtualArray, threshold: int) -> npt.NDArray[np.int64]:
    indices, _, lengths = array.manifest.to_numpy_columns()
    return np.flatnonzero((indices >= 0) & (lengths <= threshold))


def _fetch_rows(
    array: VirtualArray, rows: npt.NDArray[np.int64], registry: ObjectStoreRegistry
) -> list[bytes]:
    indices, offsets, lengths = array.manifest.to_numpy_columns()
    buffers = read_references(
        registry, array.manifest.dictionary.to_pylist(), indices[rows], offsets[rows], lengths[rows]
    )
    return [bytes(buffer) for buffer in buffers]


def _check_inline(inline_threshold: int, registry: ObjectStoreRegistry | None) -> None:
    if inline_threshold > 0 and registry is None:
        raise VirtualizationError("inline_threshold > 0 needs registry= to read the small chunks")


# ---- dict ---------------------------------------------------------------------------------


def kerchunk_refs(
    group: VirtualGroup,
    *,
    inline_threshold: int = 0,
    registry: ObjectStoreRegistry | None = None,
) -> dict[str, Any]:
    """Version 1 Kerchunk references as a Python dict (metadata values as JSON text).

    Examples
    --------
    >>> import vzcore as vc
    >>> m = vc.ChunkManifest.from_entries({"0": {"path": "file:///a.nc", "offset": 8, "length": 16}})
    >>> a = vc.VirtualArray(vc.ArrayMetadata(shape=(4,), chunk_grid=(4,), dtype="f4",
    ...                                      dimension_names=("x",)), m)
    >>> kerchunk_refs(vc.VirtualGroup(arrays={"v": a}))["refs"]["v/0"]
    ['file:///a.nc', 8, 16]
    """
    _check_inline(inline_threshold, registry)
    refs: dict[str, Any] = {k: json.dumps(v) for k, v in _metadata_entries(group).items()}
    for path, array in group.walk_arrays():
        if isinstance(array, VirtualArray):
            indices, offsets, lengths = array.manifest.to_numpy_columns()
            rows = np.flatnonzero(indices >= 0)
            keys = _chunk_keys(array.manifest.grid, rows).to_pylist()
            urls = _fsspec_urls(array.manifest)
            triples = zip(
                indices[rows].tolist(), offsets[rows].tolist(), lengths[rows].tolist(), strict=True
            )
            refs.update(
                (f"{path}/{key}", [urls[i], o, n])
                for key, (i, o, n) in zip(keys, triples, strict=True)
            )
        for key, text in _inline_entries(array, inline_threshold, registry).items():
            refs[f"{path}/{key}"] = text
    return {"version": 1, "refs": refs}


def _fsspec_urls(manifest: ChunkManifest) -> list[str]:
    """The manifest's URLs as Kerchunk writes them: the form fsspec reads (`fsspec_url`)."""
    return [fsspec_url(url) for url in manifest.dictionary.to_pylist()]


def _fsspec_paths(paths: pa.ChunkedArray) -> pa.ChunkedArray:
    """A dictionary-encoded column of URLs with `fsspec_url` applied to its dictionaries."""
    chunks = []
    for chunk in paths.chunks:
        urls = [fsspec_url(url) for url in chunk.dictionary.to_pylist()]
        chunks.append(pa.DictionaryArray.from_arrays(chunk.indices, pa.array(urls, pa.string())))
    return pa.chunked_array(chunks, paths.type)


# ---- JSON ---------------------------------------------------------------------------------


def _json_entries(path: str, array: VirtualArray, skip: set[int]) -> Iterator[pa.Buffer]:
    """``,"key":["url",offset,length]`` texts of the array's references, in batches.

    Each batch is read from the manifest's Arrow columns in place (no numpy copy of the
    whole manifest) and handed out as the data buffer of the joined strings, for the
    file to take without a copy; an entry starts with its comma.

    A join costs about the same per piece and row, so each entry is made of as few
    pieces as there can be: the key's runs of axes (`_key_texts`), the URL text, the
    offset, ``","`` and the length. The ``]`` that closes an entry is written at the
    start of the next one (``],"key":...``): the first entry's is dropped, and the
    last entry's ``]`` is written after the last batch.
    """
    manifest = array.manifest
    # Everything between a row's numbers is text per URL or per coordinate, formatted
    # once and picked by index: one join per batch writes each entry.
    url_texts = pa.array(
        [f'":[{json.dumps(u)},' for u in _fsspec_urls(manifest)], pa.large_string()
    )
    key_texts = _key_texts(manifest.grid, "]," + json.dumps(path + "/")[:-1])
    skipped = np.fromiter(skip, np.int64, len(skip))

    def batch_text(start: int) -> list[pa.Buffer]:
        batch = manifest.table.slice(start, _BATCH_ROWS).combine_chunks()
        rows = np.arange(start, start + batch.num_rows, dtype=np.int64)
        paths = batch.column("path")
        if paths.null_count or len(skipped):
            wanted = pc.is_valid(paths).to_numpy(zero_copy_only=False)
            if len(skipped):
                wanted &= ~np.isin(rows, skipped)
            batch, rows = batch.filter(pa.array(wanted)), rows[wanted]
        if not len(rows):
            return []
        text = pc.binary_join_element_wise(
            *key_texts(rows),
            pc.take(url_texts, _indices(batch.column("path"))),
            pc.cast(batch.column("offset"), pa.large_string()),
            _text(","),
            pc.cast(batch.column("length"), pa.large_string()),
            _text(""),
        )
        return list(_data_buffers(text))

    def buffers() -> Iterator[pa.Buffer]:
        # Arrow's kernels release the GIL: the next batch is formatted while one is
        # written, and at most two batches are held at once.
        with ThreadPoolExecutor(max_workers=2) as pool:
            pending: deque[Future[list[pa.Buffer]]] = deque()
            for start in range(0, manifest.n_chunks, _BATCH_ROWS):
                pending.append(pool.submit(batch_text, start))
                if len(pending) == 2:
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()

    first = True
    for buffer in buffers():
        if first:
            first = False
            buffer = buffer.slice(1)  # the "]" of no entry before the first
        yield buffer
    if not first:
        yield pa.py_buffer(b"]")


def _fill_json_entries(path: str, array: VirtualArray) -> Iterator[pa.Buffer]:
    """``,"key":"base64:..."`` texts of the fill chunks standing in for missing chunks."""
    rows, fill = _fill_rows(array)
    value = json.dumps(_inline_text(fill))
    for start in range(0, len(rows), _BATCH_ROWS):
        keys = _chunk_keys(array.manifest.grid, rows[start : start + _BATCH_ROWS])
        text = pc.binary_join_element_wise(
            _text("," + json.dumps(path + "/")[:-1]), keys, _text(f'":{value}'), _text("")
        )
        yield from _data_buffers(text)


def _data_buffers(strings: pa.Array | pa.ChunkedArray) -> Iterator[pa.Buffer]:
    """All strings of a (large_)string column back to back: slices of its data buffers."""
    chunks = strings.chunks if isinstance(strings, pa.ChunkedArray) else [strings]
    for chunk in chunks:
        if not len(chunk):
            continue
        chunk = chunk.cast(pa.large_string())
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64)[
            chunk.offset : chunk.offset + len(chunk) + 1
        ]
        data = chunk.buffers()[2]
        if data is not None and offsets[-1] > offsets[0]:
            yield data.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


SOURCES_SIDECAR = ".vz-sources.json"
"""Beside Kerchunk JSON ``refs.json``: ``refs.json.vz-sources.json``; inside a parquet
reference folder: ``vz-sources.json``. It keeps the fingerprints of the referenced files,
which Kerchunk's own format has no place for, so that ``vz verify`` can check them."""


def sources_sidecar(url: str, *, folder: bool) -> str:
    """The sidecar of a Kerchunk JSON file or parquet folder (``folder=True``).

    >>> sources_sidecar("file:///data/refs.json", folder=False)
    'file:///data/refs.json.vz-sources.json'
    >>> sources_sidecar("file:///data/refs.parq/", folder=True)
    'file:///data/refs.parq/vz-sources.json'
    """
    return url.rstrip("/") + ("/" + SOURCES_SIDECAR.lstrip(".") if folder else SOURCES_SIDECAR)


def _sources_document(group: VirtualGroup) -> bytes | None:
    from vzcore.verify import recorded_sources

    recorded = recorded_sources(group)
    if not recorded:
        return None
    kept = {url: fp.to_json() for url, fp in recorded.items()}
    return json.dumps({SOURCES_METADATA_KEY: kept}).encode()


def _write_sources_sidecar(group: VirtualGroup, target: Path) -> None:
    """The JSON file's sidecar, written after it (a stale one is removed first)."""
    sidecar = Path(sources_sidecar(str(target), folder=False))
    document = _sources_document(group)
    sidecar.unlink(missing_ok=True)
    if document is not None:
        with staged_output(sidecar) as built:
            built.write_bytes(document)


def _upload_sources_sidecar(group: VirtualGroup, target: ObjectTarget) -> None:
    """The JSON object's sidecar, put after it (a stale one is deleted)."""
    import obstore

    sidecar = attrs.evolve(
        target,
        url=sources_sidecar(target.url, folder=False),
        key=sources_sidecar(target.key, folder=False),
    )
    document = _sources_document(group)
    if document is None:
        try:
            obstore.delete(sidecar.store, sidecar.key)
        except FileNotFoundError:
            pass
        except Exception as err:
            raise WriteError(sidecar.url, f"cannot delete the stale sidecar: {err}") from err
        return
    with staged_upload(sidecar) as built:
        built.write_bytes(document)


def write_kerchunk_json(
    group: VirtualGroup,
    path: str | os.PathLike[str],
    *,
    inline_threshold: int = 0,
    registry: ObjectStoreRegistry | None = None,
) -> Path | str:
    """Write version 1 Kerchunk JSON references at ``path`` (atomically).

    ``path`` is a local path (returned as a `Path`), or an object-store URL whose
    store ``registry`` holds (returned as the URL): the file is built locally and
    put in one request, so the previous object stays until the new one is whole.
    The fingerprints of the referenced files, which Kerchunk cannot hold, go to the
    sidecar ``<path>.vz-sources.json`` (`sources_sidecar`), read back by
    `KerchunkJSONParser` and ``vz verify``, written after the references.

    Raises
    ------
    WriteError
        The file could not be written (a full disk, no permission, a failed
        upload); what was at ``path`` before is still there.
    """
    _check_inline(inline_threshold, registry)
    if is_object_store_url(path):
        remote = object_target(path, registry)
        with staged_upload(remote) as built:
            _write_json_file(group, built, inline_threshold, registry)
        _upload_sources_sidecar(group, remote)
        return remote.url
    target = local_target(path)
    with staged_output(target) as built:
        _write_json_file(group, built, inline_threshold, registry)
    _write_sources_sidecar(group, target)
    return target


def _write_json_file(
    group: VirtualGroup, built: Path, inline_threshold: int, registry: ObjectStoreRegistry | None
) -> None:
    """The references of ``group`` as Kerchunk JSON, streamed into the file ``built``."""
    with built.open("wb") as out:
        out.write(b'{"version":1,"refs":{')
        first = True
        for key, value in _metadata_entries(group).items():
            out.write((b"" if first else b",") + _json_pair(key, json.dumps(value)))
            first = False
        for array_path, array in group.walk_arrays():
            inline = _inline_entries(array, inline_threshold, registry, fills=False)
            for key, text in inline.items():
                out.write(b"," + _json_pair(f"{array_path}/{key}", text))
            if isinstance(array, VirtualArray):
                for batch in _fill_json_entries(array_path, array):
                    out.write(batch)
                skip = (
                    {int(r) for r in _small_chunk_rows(array, inline_threshold)}
                    if inline and inline_threshold
                    else set()
                )
                for batch in _json_entries(array_path, array, skip):
                    out.write(batch)
        out.write(b"}}")


def _json_pair(key: str, value: str) -> bytes:
    return f"{json.dumps(key)}:{json.dumps(value)}".encode()


def _inline_entries(
    array: AnyArray,
    inline_threshold: int,
    registry: ObjectStoreRegistry | None,
    *,
    fills: bool = True,
) -> dict[str, str]:
    """Chunk key -> inline text for a loaded array, or a virtual array's small chunks.

    With ``fills``, also the fill chunks standing in for missing chunks (`_fill_chunk`);
    the JSON writer writes those column-wise instead (`_fill_json_entries`).
    """
    if isinstance(array, LoadedArray):
        return {key: _inline_text(data) for key, data in _loaded_chunks(array)}
    entries: dict[str, str] = _manifest_inline_entries(array.manifest)
    if fills:
        fill_rows, fill = _fill_rows(array)
        keys = _chunk_keys(array.manifest.grid, fill_rows).to_pylist()
        entries.update(dict.fromkeys(keys, _inline_text(fill)))  # one string for all of them
    if not inline_threshold:
        return entries
    rows = _small_chunk_rows(array, inline_threshold)
    if not len(rows):
        return entries
    assert registry is not None
    keys = _chunk_keys(array.manifest.grid, rows).to_pylist()
    entries.update(
        (k, _inline_text(d)) for k, d in zip(keys, _fetch_rows(array, rows, registry), strict=True)
    )
    return entries


def _manifest_inline_entries(manifest: ChunkManifest) -> dict[str, str]:
    """Chunk key -> ``base64:`` text of the manifest's inline chunks."""
    rows = np.flatnonzero(manifest.inline_mask())
    keys = _chunk_keys(manifest.grid, rows).to_pylist()
    return {
        key: _inline_text(data)
        for key, data in zip(keys, manifest.inline_chunks(rows), strict=True)
    }


# ---- parquet ------------------------------------------------------------------------------

_PARQUET_SCHEMA = pa.schema(
    [
        pa.field("path", pa.dictionary(pa.int32(), pa.string())),
        pa.field("offset", pa.int64()),
        pa.field("size", pa.int64()),
        pa.field("raw", pa.binary()),
    ]
)


def write_kerchunk_parquet(
    group: VirtualGroup,
    path: str | os.PathLike[str],
    *,
    record_size: int = 100_000,
    inline_threshold: int = 0,
    registry: ObjectStoreRegistry | None = None,
) -> Path | str:
    """Write references in fsspec's parquet layout (`LazyReferenceMapper`), atomically.

    ``<path>/.zmetadata`` holds every ``.z*`` document and ``record_size``; each
    array has ``<path>/<array>/refs.K.parq`` files of exactly ``record_size`` rows
    (chunk n in file n // record_size, row n % record_size; padding rows and
    missing chunks have null ``path`` and ``raw``); ``<path>/vz-sources.json`` keeps
    the referenced files' fingerprints (`sources_sidecar`).

    A local folder is built beside ``path`` and renamed into place. An object-store
    URL whose store ``registry`` holds (returned as the URL) must hold no objects yet:
    every file is put before ``.zmetadata``, without which fsspec and vz see no store.

    Raises
    ------
    WriteError
        The folder could not be written (a full disk, no permission, a failed put),
        or the object-store prefix already holds objects; what was at ``path``
        before is still there.
    """
    if record_size < 1:
        raise VirtualizationError(f"record_size must be positive, got {record_size}")
    _check_inline(inline_threshold, registry)
    if is_object_store_url(path):
        remote = object_target(path, registry)
        with staged_folder_upload(remote, marker=".zmetadata") as built:
            _write_parquet_folder(group, built, record_size, inline_threshold, registry)
        return remote.url
    target = local_target(path)
    with staged_output(target) as built:
        _write_parquet_folder(group, built, record_size, inline_threshold, registry)
    return target


def _write_parquet_folder(
    group: VirtualGroup,
    built: Path,
    record_size: int,
    inline_threshold: int,
    registry: ObjectStoreRegistry | None,
) -> None:
    built.mkdir()
    zmetadata = {"metadata": _metadata_entries(group), "record_size": record_size}
    (built / ".zmetadata").write_text(json.dumps(zmetadata))
    if (sources := _sources_document(group)) is not None:
        (built / SOURCES_SIDECAR.lstrip(".")).write_bytes(sources)
    for array_path, array in group.walk_arrays():
        table = _array_table(array, inline_threshold, registry)
        _write_records(table, built / array_path, record_size)


def _array_table(
    array: AnyArray, inline_threshold: int, registry: ObjectStoreRegistry | None
) -> pa.Table:
    """One row per chunk in C order: path, offset, size, raw."""
    if isinstance(array, LoadedArray):
        raws = [data for _, data in _loaded_chunks(array)]
        count = len(raws)
        return pa.Table.from_arrays(
            [
                pa.DictionaryArray.from_arrays(
                    pa.nulls(count, pa.int32()), pa.array([], pa.string())
                ),
                pa.array(np.zeros(count, np.int64)),
                pa.array(np.zeros(count, np.int64)),
                pa.array(raws, pa.binary()),
            ],
            schema=_PARQUET_SCHEMA,
        )
    manifest = array.manifest
    path = _fsspec_paths(manifest.paths)
    offsets = manifest.table.column("offset").cast(pa.int64())
    sizes = manifest.table.column("length").cast(pa.int64())
    inline = manifest.inline_data
    raw: pa.ChunkedArray | pa.Array = (
        pa.nulls(manifest.n_chunks, pa.binary()) if inline is None else inline.cast(pa.binary())
    )
    rows = _small_chunk_rows(array, inline_threshold) if inline_threshold else np.zeros(0, np.int64)
    fill_rows, fill = _fill_rows(array)
    if len(rows) or len(fill_rows):
        data = np.full(manifest.n_chunks, None, dtype=object)
        inline_rows = np.flatnonzero(manifest.inline_mask())
        data[inline_rows] = manifest.inline_chunks(inline_rows)
        data[fill_rows] = fill  # missing chunks: their path is null already
        if len(rows):
            assert registry is not None
            data[rows] = _fetch_rows(array, rows, registry)
            mask = np.zeros(manifest.n_chunks, dtype=bool)
            mask[rows] = True
            path = pc.if_else(pa.array(mask), pa.scalar(None, path.type), path)
        raw = pa.array(data, pa.binary())
    return pa.Table.from_arrays([path, offsets, sizes, raw], schema=_PARQUET_SCHEMA)


def _write_records(table: pa.Table, folder: Path, record_size: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    n_files = max(math.ceil(table.num_rows / record_size), 1)
    padding = n_files * record_size - table.num_rows
    if padding:
        table = pa.concat_tables([table, _padding(padding)]).combine_chunks()
    for k in range(n_files):
        pq.write_table(
            table.slice(k * record_size, record_size),
            folder / f"refs.{k}.parq",
            compression="zstd",
        )


def _padding(count: int) -> pa.Table:
    return pa.Table.from_arrays(
        [
            pa.DictionaryArray.from_arrays(pa.nulls(count, pa.int32()), pa.array([], pa.string())),
            pa.array(np.zeros(count, np.int64)),
            pa.array(np.zeros(count, np.int64)),
            pa.nulls(count, pa.binary()),
        ],
        schema=_PARQUET_SCHEMA,
    )
