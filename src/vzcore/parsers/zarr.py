"""`ZarrParser`: an existing Zarr v2 or v3 store as references to its chunk objects.

Each chunk object becomes a reference ``(object URL, 0, object size)``; the store's
own metadata becomes `ArrayMetadata`. The store is listed once; chunk keys are
turned into grid coordinates with Arrow string kernels, not one by one.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vzcore.array import AnyArray, VirtualArray
from vzcore.byteranges import Source, SourceNotFoundError, source
from vzcore.cf import attributes_from_zarr_v2
from vzcore.errors import VirtualizationError
from vzcore.group import VirtualGroup, check_node_path, nest_arrays
from vzcore.limits import check_limit, load_json
from vzcore.manifest import ChunkManifest
from vzcore.metadata import ArrayMetadata, checked_grid
from vzcore.parsers.protocol import Probe
from vzcore.registry import ObjectStoreRegistry
from vzcore.urls import normalize_url, quote_paths

__all__ = ["ZarrFormatError", "ZarrParser"]


class ZarrFormatError(VirtualizationError):
    """A Zarr store that is missing metadata or holds malformed documents."""


@attrs.frozen
class ZarrParser:
    """Parser for Zarr v2 (consolidated or not, ``.`` or ``/`` chunk keys) and v3 stores.

    Attributes
    ----------
    drop_variables
        Arrays left out (by name, in any group).
    """

    drop_variables: tuple[str, ...] = attrs.field(default=(), converter=tuple)

    priority = -30

    @classmethod
    def can_open(cls, probe: Probe) -> bool:
        """A folder with ``zarr.json``, ``.zgroup`` or ``.zarray``, or zarr's ``.zmetadata``.

        A ``.zmetadata`` alone is zarr's only if it says ``zarr_consolidated_format``:
        Kerchunk's parquet references have one too.
        """
        if probe.head is not None:
            return False
        if any(probe.exists(marker) for marker in ("zarr.json", ".zgroup", ".zarray")):
            return True
        document = probe.member_json(".zmetadata")
        return isinstance(document, dict) and "zarr_consolidated_format" in document

    def __call__(self, url: str, registry: ObjectStoreRegistry) -> VirtualGroup:
        root_url = normalize_url(url).rstrip("/")
        folder = source(registry, root_url + "/")
        root = folder.path
        listing: pa.Table = folder.list()
        relative = pc.utf8_slice_codeunits(listing.column("path"), len(root))
        objects = pa.table({"key": relative, "size": listing.column("size")})
        keys = set(objects.column("key").to_pylist()) if objects.num_rows < 100_000 else None
        documents = _Documents(folder, root_url, keys, _document_sizes(objects))
        markers = ("zarr.json", ".zgroup", ".zarray", ".zmetadata")
        if keys is not None and not any(m in keys for m in markers):
            raise ZarrFormatError(
                f"{url}: not a Zarr store (no zarr.json, .zgroup, .zarray or .zmetadata at its root)"
            )
        metadata_paths = _metadata_paths(objects)
        for path in metadata_paths:
            if path:
                check_node_path(path, where=root_url, error=ZarrFormatError)
        arrays = {}
        for path, kind in metadata_paths.items():
            if posixpath.basename(path) in self.drop_variables:
                continue
            if (
                kind == "v3?"
                and documents.read(_join(path, "zarr.json")).get("node_type") != "array"
            ):
                continue  # a group
            arrays[path] = self._array(path, kind, documents, objects, root_url)
        return _nest(arrays, documents, root_url)

    def _array(
        self,
        path: str,
        kind: str,
        documents: _Documents,
        objects: pa.Table,
        root_url: str,
    ) -> AnyArray:
        where = f"{root_url}: array {path!r}"
        if kind != "v2":
            document = documents.read(_join(path, "zarr.json"))
            problems = _v3_document_problems(document)
            if problems:
                raise ZarrFormatError(f"{where}: {'; '.join(problems)}", problems=problems)
            try:
                metadata = ArrayMetadata.from_zarr_v3(document)
            except VirtualizationError as err:
                raise ZarrFormatError(f"{where}: {err}") from err
            layout = _v3_key_layout(document.get("chunk_key_encoding"), where)
        else:
            zarray = documents.read(_join(path, ".zarray"))
            zattrs = documents.read(_join(path, ".zattrs"), missing_ok=True)
            attributes = attributes_from_zarr_v2(zarray, zattrs)
            try:
                metadata = ArrayMetadata.from_zarr_v2(zarray, attributes)
            except VirtualizationError as err:
                raise ZarrFormatError(f"{where}: {err}") from err
            separator = zarray.get("dimension_separator") or "."
            layout = ("", separator, "0")
        manifest = _chunk_manifest(path, metadata, objects, layout, root_url)
        return VirtualArray(metadata, manifest)


def _v3_key_layout(encoding: Any, where: str) -> tuple[str, str, str]:
    """(key prefix, separator, 0-d key) of a v3 ``chunk_key_encoding``."""
    encoding = encoding or {"name": "default"}
    configuration = encoding.get("configuration") or {} if isinstance(encoding, dict) else None
    name = encoding.get("name", "default") if isinstance(encoding, dict) else None
    if not isinstance(configuration, dict) or name not in ("default", "v2"):
        raise ZarrFormatError(f"{where}: unsupported chunk_key_encoding {encoding!r}")
    default = name == "default"
    separator = configuration.get("separator", "/" if default else ".")
    if separator not in ("/", "."):
        raise ZarrFormatError(f"{where}: chunk key separator must be '/' or '.', got {separator!r}")
    return ("c" + separator, separator, "c") if default else ("", separator, "0")


def _v3_document_problems(document: Mapping[str, Any]) -> list[str]:
    """What zarr-python refuses in a stored array ``zarr.json`` (beyond its metadata values).

    Keys the specification requires, ``zarr_format`` 3, no storage transformers (zarr
    implements none), and extra fields only as objects saying ``"must_understand": false``.
    """
    from zarr.core.metadata.v3 import ARRAY_METADATA_KEYS, check_allowed_extra_field

    required = ("zarr_format", "fill_value", "chunk_key_encoding")
    problems = [f"missing {key!r}" for key in required if key not in document]
    if document.get("zarr_format", 3) != 3:
        problems.append(f"zarr_format is {document['zarr_format']!r}, expected 3")
    if document.get("storage_transformers"):
        problems.append(
            f"storage transformers {document['storage_transformers']!r} are not supported"
        )
    problems += [
        f'extra field {key!r} is not an object with "must_understand": false'
        for key, value in sorted(document.items())
        if key not in ARRAY_METADATA_KEYS and not check_allowed_extra_field(value)
    ]
    return problems


class _Documents:
    """Reads (and caches) metadata documents, from .zmetadata when the store has one."""

    def __init__(
        self, folder: Source, root_url: str, keys: set[str] | None, sizes: Mapping[str, int]
    ) -> None:
        self._folder, self._root_url, self._keys, self._sizes = folder, root_url, keys, sizes
        self._consolidated: dict[str, Any] = {}
        if keys is None or ".zmetadata" in keys:
            try:
                consolidated = self._fetch(".zmetadata")
            except (ZarrFormatError, SourceNotFoundError):
                consolidated = None
            if isinstance(consolidated, dict) and isinstance(consolidated.get("metadata"), dict):
                self._consolidated = consolidated["metadata"]
                where = f"{root_url}/.zmetadata"
                for key in self._consolidated:
                    check_node_path(key, where=where, error=ZarrFormatError)

    def _fetch(self, key: str) -> Any:
        where = f"{self._root_url}/{key}"
        if key in self._sizes:  # the listing's size, before reading
            check_limit("max_document_bytes", self._sizes[key], where, "the document's size")
        data = self._folder.relative(key).read()
        try:
            return load_json(data, where=where, error=ZarrFormatError)
        except ZarrFormatError as err:
            raise ZarrFormatError(f"{where}: cannot read: {err}") from err

    def read(self, key: str, *, missing_ok: bool = False) -> dict[str, Any]:
        if key in self._consolidated:
            value = self._consolidated[key]
        elif self._keys is not None and key not in self._keys:
            if missing_ok:
                return {}
            raise ZarrFormatError(f"{self._root_url}/{key}: missing")
        else:
            value = self._fetch(key)
        if not isinstance(value, dict):
            raise ZarrFormatError(f"{self._root_url}/{key}: not a JSON object")
        return value


def _join(path: str, name: str) -> str:
    return f"{path}/{name}" if path else name


def _metadata_paths(objects: pa.Table) -> dict[str, str]:
    """Array paths of the store and their format, from the listing."""
    found: dict[str, str] = {}
    keys = (
        objects.column("key").to_pylist() if objects.num_rows < 100_000 else _metadata_keys(objects)
    )
    for key in keys:
        name = posixpath.basename(key)
        parent = posixpath.dirname(key)
        if name == ".zarray":
            found[parent] = "v2"
        elif name == "zarr.json":
            found.setdefault(parent, "v3?")
    return found


_DOCUMENT_NAMES = r"(^|/)(\.zarray|\.zattrs|\.zgroup|\.zmetadata|zarr\.json)$"


def _document_sizes(objects: pa.Table) -> dict[str, int]:
    """The listed size of each metadata document (found with one vectorised match)."""
    chosen = objects.filter(pc.match_substring_regex(objects.column("key"), _DOCUMENT_NAMES))
    sizes: dict[str, int] = dict(
        zip(chosen.column("key").to_pylist(), chosen.column("size").to_pylist(), strict=True)
    )
    return sizes


def _metadata_keys(objects: pa.Table) -> list[str]:
    mask = pc.match_substring_regex(objects.column("key"), r"(^|/)(\.zarray|zarr\.json)$")
    keys: list[str] = pc.filter(objects.column("key"), mask).to_pylist()
    return keys


def _chunk_manifest(
    path: str,
    metadata: ArrayMetadata,
    objects: pa.Table,
    layout: tuple[str, str, str],
    root_url: str,
) -> ChunkManifest:
    """Manifest of the chunk objects of one array; ``layout`` = (key prefix, separator, 0-d key)."""
    key_prefix, separator, scalar_key = layout
    grid = checked_grid(metadata, f"{root_url}: array {path!r}")
    base = f"{path}/" if path else ""
    if grid:
        # At most 18 digits: every index fits int64 (and the grid is far smaller).
        digits = re.escape(separator).join(["[0-9]{1,18}"] * len(grid))
        pattern = "^" + re.escape(base + key_prefix) + digits + "$"
    else:
        pattern = "^" + re.escape(base + scalar_key) + "$"
    chosen = objects.filter(pc.match_substring_regex(objects.column("key"), pattern))
    if chosen.num_rows == 0:
        return ChunkManifest.empty(grid)
    positions = np.arange(chosen.num_rows)
    rows = np.zeros(1, dtype=np.int64)
    if grid:
        tails = pc.utf8_slice_codeunits(chosen.column("key"), len(base + key_prefix))
        parts = pc.list_flatten(pc.split_pattern(tails, separator))
        coords = parts.to_numpy(zero_copy_only=False).astype(np.int64).reshape(-1, len(grid))
        positions = np.flatnonzero(np.all(coords < np.asarray(grid), axis=1))
        rows = np.ravel_multi_index(tuple(coords[positions].T), grid)
    n_chunks = int(np.prod(grid))
    indices = np.full(n_chunks, -1, dtype=np.int32)
    lengths = np.zeros(n_chunks, dtype=np.uint64)
    indices[rows] = np.arange(len(positions), dtype=np.int32)
    lengths[rows] = chosen.column("size").to_numpy()[positions]
    urls = pc.binary_join_element_wise(
        pa.scalar(root_url + "/"),
        quote_paths(pc.take(chosen.column("key"), pa.array(positions))),
        "",
    )
    return ChunkManifest.from_numpy_columns(
        grid,
        dictionary=urls,
        indices=indices,
        offsets=np.zeros(n_chunks, dtype=np.uint64),
        lengths=lengths,
    )


def _nest(arrays: Mapping[str, AnyArray], documents: _Documents, root_url: str) -> VirtualGroup:
    if "" in arrays:
        raise ZarrFormatError(f"{root_url}: the store is a single array; open its parent group")

    def attributes_of(prefix: str) -> dict[str, Any]:
        v3 = documents.read(_join(prefix, "zarr.json"), missing_ok=True)
        if v3:
            value = v3.get("attributes") or {}
            return value if isinstance(value, dict) else {}
        return documents.read(_join(prefix, ".zattrs"), missing_ok=True)

    return nest_arrays(arrays, attributes_of)
