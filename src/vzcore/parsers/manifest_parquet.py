"""Read arrays and groups saved in the native manifest parquet layout."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable
from pathlib import Path

import attrs
import pyarrow as pa
import pyarrow.parquet as pq

from vzcore.array import AnyArray
from vzcore.byteranges import SourceReadError, source
from vzcore.errors import LimitExceededError, ManifestFormatError, VirtualizationError
from vzcore.group import VirtualGroup
from vzcore.limits import check_limit, check_parquet_size, load_json
from vzcore.manifest_layout import (
    GROUP_DOCUMENT,
    check_manifest_metadata,
    is_manifest_metadata,
    parse_group_document,
    table_to_array,
)
from vzcore.parsers.protocol import Probe
from vzcore.registry import ObjectStoreRegistry

__all__ = ["ManifestParquetParser", "read_manifest_parquet"]

Fetch = Callable[[str], "bytes | memoryview"]


def read_manifest_parquet(path: str | os.PathLike[str]) -> AnyArray | VirtualGroup:
    """Load what `write_manifest_parquet` saved: an array (a file) or a group (a directory).

    Raises
    ------
    ManifestFormatError
        If ``path`` is missing, unreadable, or not in the vz manifest layout.
    """
    source = Path(path)

    def fetch(name: str) -> bytes:
        file = source / name if name else source
        check_limit(
            "max_document_bytes", file.stat().st_size, str(file), "the file's size in bytes"
        )
        return file.read_bytes()

    if source.is_dir():
        return _read_group(fetch, "", str(source))
    return _read_array(fetch, "", str(source))


@attrs.frozen
class ManifestParquetParser:
    """Parser for the native layout, read through the registry (local, S3, memory, ...).

    A URL ending in ``.parquet`` is one array (the group holds it under the file's
    stem); any other URL is a group directory.
    """

    priority = -10

    @classmethod
    def can_open(cls, probe: Probe) -> bool:
        """A folder with ``vz-group.json``, or a parquet file whose metadata says ``vz:format``."""
        if probe.head is None:
            return probe.exists(GROUP_DOCUMENT)
        if not probe.head.startswith(b"PAR1"):
            return False  # before the size: that may cost a request
        size = probe.size or 0
        if size < 12:
            return False
        # The footer: thrift metadata, its length (4 bytes, little-endian), b"PAR1".
        tail = probe.read_range(size - 8, size)
        footer_length = int.from_bytes(tail[:4], "little")
        if not tail.endswith(b"PAR1") or footer_length > size - 12:
            return False
        footer = probe.read_range(size - 8 - footer_length, size - 8)
        try:
            metadata = pq.read_metadata(pa.BufferReader(b"PAR1" + footer + tail)).metadata
        except (OSError, pa.ArrowException):
            return False
        return is_manifest_metadata(metadata)

    def __call__(self, url: str, registry: ObjectStoreRegistry) -> VirtualGroup:
        root = source(registry, url)

        def fetch(name: str) -> bytes | memoryview:
            file = root.relative(name) if name else root
            check_limit("max_document_bytes", file.size(), file.url, "the file's size in bytes")
            return file.read()

        if url.rstrip("/").endswith(".parquet"):
            stem = posixpath.basename(url.rstrip("/")).removesuffix(".parquet")
            return VirtualGroup(arrays={stem: _read_array(fetch, "", url)})
        return _read_group(fetch, "", url.rstrip("/"))


def _read_array(fetch: Fetch, name: str, where: str) -> AnyArray:
    try:
        data = pa.BufferReader(fetch(name))
        # The footer first: what it declares is checked before any page is decompressed.
        footer = pq.ParquetFile(data).metadata
        check_parquet_size(footer, where)
        check_manifest_metadata(footer, where=where)
        table = pq.read_table(data)
        table.validate(full=True)  # UTF-8 of the paths, indices of their dictionary
    except (SourceReadError, LimitExceededError, ManifestFormatError):
        raise
    except (OSError, pa.ArrowException, UnicodeDecodeError, VirtualizationError) as err:
        raise ManifestFormatError(f"{where}: cannot read manifest parquet: {err}") from err
    return table_to_array(table, where=where)


def _read_group(fetch: Fetch, prefix: str, where: str, depth: int = 1) -> VirtualGroup:
    document_name = posixpath.join(prefix, GROUP_DOCUMENT)
    location = f"{where}/{document_name}"
    check_limit("max_group_depth", depth, location, "the depth of nested groups")
    try:
        raw = load_json(fetch(document_name), where=location, error=ManifestFormatError)
    except (SourceReadError, LimitExceededError):
        raise
    except (OSError, VirtualizationError) as err:
        raise ManifestFormatError(f"{location}: cannot read group document: {err}") from err
    # Checks every name before anything is read by one: a name such as "../x" could
    # otherwise read, or tell whether there is, a file outside the group.
    document = parse_group_document(raw, where=location)
    arrays = {
        name: _read_array(
            fetch,
            posixpath.join(prefix, f"{name}.parquet"),
            f"{where}/{posixpath.join(prefix, f'{name}.parquet')}",
        )
        for name in document["arrays"]
    }
    groups = {
        name: _read_group(fetch, posixpath.join(prefix, name), where, depth + 1)
        for name in document["groups"]
    }
    return VirtualGroup(
        arrays=arrays, groups=groups, attributes=document["attributes"], sources=document["sources"]
    )
