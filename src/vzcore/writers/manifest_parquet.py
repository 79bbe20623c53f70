"""Write arrays and groups in the native manifest parquet layout, atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import overload

import pyarrow.parquet as pq

from vzcore.array import AnyArray, LoadedArray, VirtualArray
from vzcore.errors import VirtualizationError
from vzcore.group import VirtualGroup
from vzcore.manifest_layout import GROUP_DOCUMENT, array_to_table, group_document
from vzcore.registry import ObjectStoreRegistry
from vzcore.writers._atomic import (
    is_object_store_url,
    local_target,
    object_target,
    staged_folder_upload,
    staged_output,
    staged_upload,
)

__all__ = ["write_manifest_parquet"]

# Delta encoding suits offsets (increasing) and lengths (similar sizes); paths are a
# dictionary whose indices run-length encode.
_COLUMN_ENCODING = {"offset": "DELTA_BINARY_PACKED", "length": "DELTA_BINARY_PACKED"}
_ROW_GROUP_SIZE = 4 * 1024 * 1024


@overload
def write_manifest_parquet(
    x: VirtualGroup, path: str | os.PathLike[str], *, registry: None = None
) -> Path: ...


@overload
def write_manifest_parquet(
    x: AnyArray | VirtualGroup,
    path: str | os.PathLike[str],
    *,
    registry: ObjectStoreRegistry | None = None,
) -> Path | str: ...


def write_manifest_parquet(
    x: AnyArray | VirtualGroup,
    path: str | os.PathLike[str],
    *,
    registry: ObjectStoreRegistry | None = None,
) -> Path | str:
    """Save an array (one ``.parquet`` file) or a group (a directory) at ``path``.

    The output appears whole or not at all: it is written beside ``path`` and
    renamed into place, replacing what was there (see `vzcore.writers._atomic`).
    It may also go to an object-store URL whose store ``registry`` holds (the URL
    is returned): an array's file is built locally and put in one request; a
    group's prefix must hold no objects yet, and every file is put before the
    group's ``vz-group.json``, without which the prefix reads as no group.

    Raises
    ------
    WriteError
        The output could not be written (a full disk, no permission, a failed
        upload, a group to an object-store prefix that holds objects); what was
        at ``path`` before is still there.

    >>> import tempfile, vzcore as vc
    >>> m = vc.ChunkManifest.from_entries({"0": {"path": "file:///a", "offset": 0, "length": 8}})
    >>> a = vc.VirtualArray(vc.ArrayMetadata(shape=(2,), chunk_grid=(2,), dtype="f4"), m)
    >>> out = write_manifest_parquet(a, tempfile.mkdtemp() + "/a.parquet")
    >>> vc.read_manifest_parquet(out) == a
    True
    """
    if not isinstance(x, VirtualGroup | VirtualArray | LoadedArray):
        raise TypeError(f"expected an array or a VirtualGroup, got {type(x).__name__}")
    if is_object_store_url(path):
        remote = object_target(path, registry)
        if isinstance(x, VirtualGroup):
            with staged_folder_upload(remote, marker=GROUP_DOCUMENT) as built:
                _write_group(x, built, remote.url)
        else:
            with staged_upload(remote) as built:
                _write_array(x, built)
        return remote.url
    target = local_target(path)
    with staged_output(target) as built:
        if isinstance(x, VirtualGroup):
            _write_group(x, built, target)
        else:
            _write_array(x, built)
    return target


def _write_array(array: AnyArray, path: Path) -> None:
    table = array_to_table(array)
    if isinstance(array, VirtualArray):
        pq.write_table(
            table,
            path,
            compression="zstd",
            use_dictionary=["path"],
            column_encoding=_COLUMN_ENCODING,
            row_group_size=_ROW_GROUP_SIZE,
        )
    else:
        pq.write_table(table, path, compression="zstd")


def _write_group(group: VirtualGroup, directory: Path, shown: Path | str) -> None:
    """Write ``group`` into ``directory``; errors name ``shown``, where it will end up."""
    clashes = sorted(
        {f"{name}.parquet" for name in group.arrays} & set(group.groups)
        | ({GROUP_DOCUMENT} & set(group.groups))
    )
    if clashes:
        raise VirtualizationError(
            f"cannot save group {str(shown)!r}: subgroup names {clashes} collide with "
            "the layout's file names"
        )
    directory.mkdir()
    document = group_document(
        attributes=group.attributes,
        arrays=list(group.arrays),
        groups=list(group.groups),
        sources=group.sources,
    )
    (directory / GROUP_DOCUMENT).write_text(json.dumps(document, indent=1))
    for name, array in group.arrays.items():
        _write_array(array, directory / f"{name}.parquet")
    for name, subgroup in group.groups.items():
        _write_group(subgroup, directory / name, f"{shown}/{name}")
