"""The native manifest interchange layout (versions 1 and 2): Arrow tables in parquet files.

One array is one parquet file. A virtual array's file holds the manifest table
(``path`` dictionary<int32, string>, ``offset`` uint64, ``length`` uint64; one
row per chunk in C order; and ``data`` large_binary when the manifest holds inline
chunks); a loaded array's file holds one row with one binary column ``npy``, the
array in ``.npy`` format. A file with a ``data`` column says version 2, so that a
reader of version 1 refuses it instead of reading its inline chunks as missing;
every other file (and every group document) stays version 1. The parquet
key-value metadata says what the file is:

=================  ============================================================
key                value
=================  ============================================================
``vz:format``      ``vz-manifest``
``vz:version``     ``1``, or ``2`` for a manifest with inline chunks
``vz:kind``        ``virtual`` or ``loaded``
``vz:grid``        chunk grid shape as a JSON list (virtual arrays)
``zarr.json``      the array's zarr v3 metadata document (JSON)
=================  ============================================================

A group is a directory: ``vz-group.json`` (``{"vz:format", "vz:version",
"attributes", "arrays": [names], "groups": [names], "sources": {url: {...}}}``),
``<name>.parquet`` per array and a subdirectory per subgroup. See
``docs/manifest-parquet.md``.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from vzcore._frozen import JSON, thaw_json
from vzcore.array import AnyArray, LoadedArray, VirtualArray
from vzcore.errors import (
    InvalidMetadataError,
    LimitExceededError,
    ManifestFormatError,
    VirtualizationError,
)
from vzcore.group import SourceFingerprint, name_problem
from vzcore.limits import load_json
from vzcore.manifest import ChunkManifest
from vzcore.metadata import ArrayMetadata, check_in_memory_size, checked_grid
from vzcore.urls import UnregisteredURLError, normalize_url

if TYPE_CHECKING:
    import pyarrow.parquet as pq

__all__ = [
    "FORMAT",
    "GROUP_DOCUMENT",
    "INLINE_VERSION",
    "VERSION",
    "array_to_table",
    "check_manifest_metadata",
    "group_document",
    "is_manifest_metadata",
    "parse_group_document",
    "table_to_array",
]

FORMAT = "vz-manifest"
VERSION = 1
INLINE_VERSION = 2
"""The layout version of an array file whose manifest has a ``data`` (inline chunks) column."""
GROUP_DOCUMENT = "vz-group.json"
_FORMAT_KEY, _VERSION_KEY, _KIND_KEY = b"vz:format", b"vz:version", b"vz:kind"
_GRID_KEY, _ZARR_KEY = b"vz:grid", b"zarr.json"


def array_to_table(array: AnyArray) -> pa.Table:
    """The Arrow table of one array, its metadata in the schema's key-value metadata."""
    metadata = {
        _FORMAT_KEY: FORMAT.encode(),
        _VERSION_KEY: str(VERSION).encode(),
        _ZARR_KEY: json.dumps(array.metadata.to_zarr_v3()).encode(),
    }
    if isinstance(array, VirtualArray):
        if array.manifest.inline_data is not None:
            metadata[_VERSION_KEY] = str(INLINE_VERSION).encode()
        metadata[_KIND_KEY] = b"virtual"
        metadata[_GRID_KEY] = json.dumps(list(array.manifest.grid)).encode()
        return array.manifest.table.replace_schema_metadata(metadata)
    buffer = io.BytesIO()
    np.save(buffer, array.data, allow_pickle=False)
    metadata[_KIND_KEY] = b"loaded"
    table = pa.table({"npy": pa.array([buffer.getvalue()], type=pa.large_binary())})
    return table.replace_schema_metadata(metadata)


def is_manifest_metadata(metadata: Mapping[bytes, bytes] | None) -> bool:
    """Whether a parquet file's key-value metadata marks it as a vz manifest file."""
    return (metadata or {}).get(_FORMAT_KEY) == FORMAT.encode()


def check_manifest_metadata(footer: pq.FileMetaData, *, where: str) -> None:
    """Check what a manifest file's footer declares before its pages are read.

    A virtual array's grid must be within ``max_chunks`` and match the file's rows; a
    loaded array must be within ``max_inline_bytes``.

    Raises
    ------
    ManifestFormatError
        If the declared grid and the rows disagree, or the metadata is malformed.
    LimitExceededError
        If the declared array is beyond the limits.
    """
    kv = footer.metadata or {}
    if not is_manifest_metadata(kv) or _ZARR_KEY not in kv:
        return  # table_to_array says what is wrong
    metadata = _array_metadata(kv, where)
    if kv.get(_KIND_KEY) == b"loaded":
        check_in_memory_size(metadata, where)
        return
    grid = checked_grid(metadata, where)
    if footer.num_rows != math.prod(grid):
        raise ManifestFormatError(
            f"{where}: {footer.num_rows} rows for the {math.prod(grid)} chunks of grid {grid}"
        )


def _json_value(raw: bytes, what: str, where: str) -> Any:
    try:
        return load_json(raw, where=where, what=what, error=ManifestFormatError)
    except ManifestFormatError as err:
        raise ManifestFormatError(
            f"{where}: malformed manifest file: {what} is not valid JSON ({err.__cause__})"
        ) from err


def _array_metadata(kv: Mapping[bytes, bytes], where: str) -> ArrayMetadata:
    try:
        return ArrayMetadata.from_zarr_v3(_json_value(kv[_ZARR_KEY], "zarr.json", where))
    except InvalidMetadataError as err:
        raise ManifestFormatError(f"{where}: malformed manifest file: {err}") from err


def table_to_array(table: pa.Table, *, where: str) -> AnyArray:
    """Rebuild an array from its table; ``where`` names the file in error messages."""
    kv = table.schema.metadata or {}
    if not is_manifest_metadata(kv):
        raise ManifestFormatError(f"{where}: not a vz manifest file (no 'vz:format' key)")
    version = kv.get(_VERSION_KEY, b"?").decode(errors="replace")
    if version not in (str(VERSION), str(INLINE_VERSION)):
        raise ManifestFormatError(
            f"{where}: manifest layout version {version}, expected {VERSION} or {INLINE_VERSION}"
        )
    if version == str(VERSION) and "data" in table.column_names:
        raise ManifestFormatError(
            f"{where}: malformed manifest file: a 'data' column in a version {VERSION} file"
        )
    try:
        metadata = _array_metadata(kv, where)
        kind = kv.get(_KIND_KEY)
        if kind == b"virtual":
            grid = _json_value(kv[_GRID_KEY], "vz:grid", where)
            if not isinstance(grid, list) or tuple(grid) != checked_grid(metadata, where):
                raise ManifestFormatError(
                    f"{where}: malformed manifest file: invalid chunk manifest: vz:grid "
                    f"{str(grid)[:80]} is not the grid {metadata.grid_shape} of the array"
                )
            try:  # an unsafe path is refused here, naming this file
                manifest = ChunkManifest.from_arrow(table, grid=grid)
                for url in manifest.dictionary.to_pylist():
                    normalize_url(url)
            except UnregisteredURLError as err:
                raise type(err)(f"{where}: {err}") from err
            return VirtualArray(metadata, manifest)
        if kind == b"loaded":
            data = np.load(io.BytesIO(table.column("npy")[0].as_py()), allow_pickle=False)
            return LoadedArray(metadata, data)
    except (ManifestFormatError, LimitExceededError, UnregisteredURLError):
        raise
    except (KeyError, ValueError, TypeError, VirtualizationError) as err:
        raise ManifestFormatError(f"{where}: malformed manifest file: {err}") from err
    raise ManifestFormatError(f"{where}: unknown array kind {kind!r}")


def group_document(
    *,
    attributes: Mapping[str, JSON],
    arrays: list[str],
    groups: list[str],
    sources: Mapping[str, SourceFingerprint],
) -> dict[str, JSON]:
    """The ``vz-group.json`` document of one group."""
    return {
        "vz:format": FORMAT,
        "vz:version": VERSION,
        "attributes": thaw_json(attributes),
        "arrays": arrays,
        "groups": groups,
        "sources": {url: fp.to_json() for url, fp in sources.items()},
    }


def parse_group_document(document: Any, *, where: str) -> dict[str, Any]:
    """Check a ``vz-group.json`` document; returns it with ``sources`` as fingerprints."""
    if not isinstance(document, dict) or document.get("vz:format") != FORMAT:
        raise ManifestFormatError(f"{where}: not a vz manifest group document")
    if document.get("vz:version") != VERSION:
        raise ManifestFormatError(
            f"{where}: manifest layout version {document.get('vz:version')}, expected {VERSION}"
        )
    problems = [
        f"{key!r} must be a {kind.__name__}"
        for key, kind in (
            ("attributes", dict),
            ("arrays", list),
            ("groups", list),
            ("sources", dict),
        )
        if not isinstance(document.get(key), kind)
    ]
    if problems:
        raise ManifestFormatError(f"{where}: " + "; ".join(problems), problems=problems)
    # Names become file names: one that is no single segment could reach outside.
    problems = [
        f"{key}: {problem}"
        for key in ("arrays", "groups")
        for name in document[key]
        if (problem := name_problem(name)) is not None
    ]
    if problems:
        raise ManifestFormatError(f"{where}: " + "; ".join(problems), problems=problems)
    try:
        sources = {url: SourceFingerprint(**fp) for url, fp in document["sources"].items()}
    except TypeError as err:
        raise ManifestFormatError(f"{where}: malformed 'sources': {err}") from err
    return {**document, "sources": sources}
