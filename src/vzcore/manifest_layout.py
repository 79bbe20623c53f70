"""The native manifest interchange layout (version 1): Arrow tables in parquet files.

One array is one parquet file. A virtual array's file holds the manifest table
(``path`` dictionary<int32, string>, ``offset`` uint64, ``length`` uint64; one
row per chunk in C order); a loaded array's file holds one row with one binary
column ``npy``, the array in ``.npy`` format. The parquet key-value metadata says
what the file is:

=================  ============================================================
key                value
=================  ============================================================
``vz:format``      ``vz-manifest``
``vz:version``     ``1``
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
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from vzcore._frozen import JSON, thaw_json
from vzcore.array import AnyArray, LoadedArray, VirtualArray
from vzcore.errors import ManifestFormatError, VirtualizationError
from vzcore.group import SourceFingerprint
from vzcore.manifest import ChunkManifest
from vzcore.metadata import ArrayMetadata

__all__ = [
    "FORMAT",
    "GROUP_DOCUMENT",
    "VERSION",
    "array_to_table",
    "group_document",
    "is_manifest_metadata",
    "parse_group_document",
    "table_to_array",
]

FORMAT = "vz-manifest"
VERSION = 1
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


def table_to_array(table: pa.Table, *, where: str) -> AnyArray:
    """Rebuild an array from its table; ``where`` names the file in error messages."""
    kv = table.schema.metadata or {}
    if not is_manifest_metadata(kv):
        raise ManifestFormatError(f"{where}: not a vz manifest file (no 'vz:format' key)")
    version = kv.get(_VERSION_KEY, b"?").decode()
    if version != str(VERSION):
        raise ManifestFormatError(f"{where}: manifest layout version {version}, expected {VERSION}")
    try:
        metadata = ArrayMetadata.from_zarr_v3(json.loads(kv[_ZARR_KEY]))
        kind = kv.get(_KIND_KEY)
        if kind == b"virtual":
            grid = json.loads(kv[_GRID_KEY])
            return VirtualArray(metadata, ChunkManifest.from_arrow(table, grid=grid))
        if kind == b"loaded":
            data = np.load(io.BytesIO(table.column("npy")[0].as_py()), allow_pickle=False)
            return LoadedArray(metadata, data)
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
        "sources": {
            url: {"size": fp.size, "last_modified": fp.last_modified, "etag": fp.etag}
            for url, fp in sources.items()
        },
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
    try:
        sources = {url: SourceFingerprint(**fp) for url, fp in document["sources"].items()}
    except TypeError as err:
        raise ManifestFormatError(f"{where}: malformed 'sources': {err}") from err
    return {**document, "sources": sources}
