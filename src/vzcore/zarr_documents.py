"""The zarr v3 documents vz serves (ManifestStore) and writes (Icechunk).

They are the arrays' metadata with xarray's conventions for zarr v3 applied, so
that ``xr.open_zarr`` decodes them exactly as ``xr.open_dataset`` decodes the
original file; loaded (in-memory) arrays are stored uncompressed.
"""

from __future__ import annotations

from typing import Any

from vzcore._frozen import thaw_json
from vzcore.array import AnyArray, LoadedArray
from vzcore.cf import zarr_v3_attributes
from vzcore.group import VirtualGroup

__all__ = ["array_document", "group_document"]


def group_document(group: VirtualGroup) -> dict[str, Any]:
    """The ``zarr.json`` of a group."""
    return {"zarr_format": 3, "node_type": "group", "attributes": thaw_json(group.attributes)}


def array_document(array: AnyArray) -> dict[str, Any]:
    """The ``zarr.json`` of an array as vz serves and writes it (xarray's CF conventions)."""
    document = array.metadata.to_zarr_v3()
    metadata = array.metadata
    document["attributes"] = zarr_v3_attributes(metadata.attributes, metadata.encoding, array.dtype)
    if isinstance(array, LoadedArray):
        # Loaded values are served uncompressed in little-endian order.
        codec: dict[str, Any] = {"name": "bytes"}
        if array.dtype.itemsize > 1:
            codec["configuration"] = {"endian": "little"}
        document["codecs"] = [codec]
    return document
