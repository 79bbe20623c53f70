"""Read arrays and groups saved in the native manifest parquet layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from vzcore.array import AnyArray
from vzcore.errors import ManifestFormatError
from vzcore.group import VirtualGroup
from vzcore.manifest_layout import GROUP_DOCUMENT, parse_group_document, table_to_array

__all__ = ["read_manifest_parquet"]


def read_manifest_parquet(path: str | os.PathLike[str]) -> AnyArray | VirtualGroup:
    """Load what `write_manifest_parquet` saved: an array (a file) or a group (a directory).

    Raises
    ------
    ManifestFormatError
        If ``path`` is missing, unreadable, or not in the vz manifest layout.
    """
    source = Path(path)
    if source.is_dir():
        return _read_group(source)
    return _read_array(source)


def _read_array(path: Path) -> AnyArray:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as err:
        raise ManifestFormatError(f"{path}: cannot read manifest parquet: {err}") from err
    return table_to_array(table, where=str(path))


def _read_group(directory: Path) -> VirtualGroup:
    where = str(directory / GROUP_DOCUMENT)
    try:
        raw = json.loads((directory / GROUP_DOCUMENT).read_text())
    except (OSError, ValueError) as err:
        raise ManifestFormatError(f"{where}: cannot read group document: {err}") from err
    document = parse_group_document(raw, where=where)
    return VirtualGroup(
        arrays={name: _read_array(directory / f"{name}.parquet") for name in document["arrays"]},
        groups={name: _read_group(directory / name) for name in document["groups"]},
        attributes=document["attributes"],
        sources=document["sources"],
    )
