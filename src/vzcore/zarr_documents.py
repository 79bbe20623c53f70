"""The zarr v3 documents vz serves (ManifestStore) and writes (Icechunk).

They are the arrays' metadata with xarray's conventions for zarr v3 applied, so
that ``xr.open_zarr`` decodes them exactly as ``xr.open_dataset`` decodes the
original file; loaded (in-memory) arrays are stored uncompressed.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import numpy as np

from vzcore._frozen import thaw_json
from vzcore.array import AnyArray, LoadedArray
from vzcore.group import VirtualGroup

__all__ = ["array_document", "group_document"]


def group_document(group: VirtualGroup) -> dict[str, Any]:
    """The ``zarr.json`` of a group."""
    return {"zarr_format": 3, "node_type": "group", "attributes": thaw_json(group.attributes)}


def _xarray_fill_value(value: Any, dtype: np.dtype[Any]) -> Any:
    """A CF ``_FillValue`` attribute in the form xarray reads from zarr v3 attributes.

    xarray stores a float ``_FillValue`` of a zarr v3 array as the base64 text of
    the little-endian double, and reads it back only in that form.
    """
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        value = float(value)
    if dtype.kind == "f" and isinstance(value, int | float):
        return base64.standard_b64encode(struct.pack("<d", float(value))).decode()
    if dtype.kind == "c" and isinstance(value, list | tuple) and len(value) == 2:
        return [base64.standard_b64encode(struct.pack("<d", float(v))).decode() for v in value]
    return value


def array_document(array: AnyArray) -> dict[str, Any]:
    """The ``zarr.json`` of an array as vz serves and writes it (xarray's CF conventions)."""
    document = array.metadata.to_zarr_v3()
    attributes = document["attributes"]
    if "_FillValue" in attributes:
        attributes["_FillValue"] = _xarray_fill_value(attributes["_FillValue"], array.dtype)
    if isinstance(array, LoadedArray):
        # Loaded values are served uncompressed in little-endian order.
        codec: dict[str, Any] = {"name": "bytes"}
        if array.dtype.itemsize > 1:
            codec["configuration"] = {"endian": "little"}
        document["codecs"] = [codec]
    return document
