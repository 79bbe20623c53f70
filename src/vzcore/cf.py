"""The CF encoding of an array: the one home of vz's CF rules.

An array's stored numbers mean nothing without their *encoding*: packing
(``scale_factor``, ``add_offset``), the values that mark missing data
(``_FillValue``, ``missing_value``), ``_Unsigned``, the text encoding of
bytes (``_Encoding``), and for times their
``units`` ("days since 2000-01-01") and ``calendar``. vz keeps these in
`ArrayMetadata.encoding`, never in its ``attributes``: an xarray call that drops
attributes (``combine_attrs="drop"``, ``drop_attrs()``) can then never change
the decoded values of a virtual variable. Every writer and `ManifestStore`
merges the encoding back into the stored attributes with `stored_attributes`,
in each format's convention (`zarr_v3_attributes`, `zarr_v2_documents`).

>>> split_attributes({"units": "K", "scale_factor": 0.01, "long_name": "t"})
({'units': 'K', 'long_name': 't'}, {'scale_factor': 0.01})
>>> split_attributes({"units": "days since 2000-01-01", "calendar": "noleap"})[1]
{'units': 'days since 2000-01-01', 'calendar': 'noleap'}
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

from vzcore._frozen import JSON, thaw_json

__all__ = [
    "ENCODING_KEYS",
    "attributes_from_zarr_v2",
    "decode_xarray_fill_value",
    "encoding_conflicts",
    "is_encoding_key",
    "is_time_units",
    "normalize_encoding",
    "same_value",
    "split_attributes",
    "stored_attributes",
    "zarr_v2_fill_value",
    "zarr_v3_attributes",
]

ENCODING_KEYS = (
    "scale_factor",
    "add_offset",
    "_FillValue",
    "missing_value",
    "_Unsigned",
    "_Encoding",
    "units",
    "calendar",
)
"""The attribute names that can belong to an encoding (``units`` and ``calendar`` of times only)."""

_ALWAYS = frozenset(
    {"scale_factor", "add_offset", "_FillValue", "missing_value", "_Unsigned", "_Encoding"}
)


def is_time_units(units: object) -> bool:
    """Whether ``units`` is a CF time unit (``"<unit> since <reference date>"``).

    >>> is_time_units("hours since 1970-01-01 00:00"), is_time_units("m s-1")
    (True, False)
    """
    return isinstance(units, str) and " since " in units.strip()


def is_encoding_key(key: str, attributes: Mapping[str, JSON]) -> bool:
    """Whether attribute ``key`` of a variable with ``attributes`` is part of its encoding."""
    if key in _ALWAYS:
        return True
    if key in ("units", "calendar"):
        return is_time_units(attributes.get("units"))
    return False


def split_attributes(
    attributes: Mapping[str, JSON], *, context: Mapping[str, JSON] | None = None
) -> tuple[dict[str, JSON], dict[str, JSON]]:
    """``(plain attributes, encoding)`` of a variable's CF attributes, order kept.

    ``context`` is an encoding the variable already has (its time ``units`` make a
    ``calendar`` attribute part of the encoding too).
    """
    seen = {**(context or {}), **attributes}
    plain: dict[str, JSON] = {}
    encoding: dict[str, JSON] = {}
    for key, value in attributes.items():
        (encoding if is_encoding_key(key, seen) else plain)[key] = value
    return plain, encoding


def normalize_encoding(encoding: Mapping[str, JSON], dtype: np.dtype[Any]) -> dict[str, JSON]:
    """Check an encoding's keys; missing-value markers of floats as plain numbers.

    Raises
    ------
    ValueError
        If a key is not a CF encoding key.
    """
    unknown = [key for key in encoding if key not in ENCODING_KEYS]
    if unknown:
        raise ValueError(
            f"{unknown} are not CF encoding keys (expected some of {list(ENCODING_KEYS)})"
        )
    normalized = dict(encoding)
    for key in ("_FillValue", "missing_value"):
        if key in normalized:
            normalized[key] = decode_xarray_fill_value(normalized[key], dtype)
    return normalized


def encoding_conflicts(
    first: Mapping[str, JSON], second: Mapping[str, JSON]
) -> list[tuple[str, JSON, JSON]]:
    """Keys both mappings hold with different values: ``(key, first value, second value)``."""
    return [
        (key, first[key], second[key])
        for key in first
        if key in second and not same_value(first[key], second[key])
    ]


def same_value(a: JSON, b: JSON) -> bool:
    """JSON equality in which NaN equals NaN (a NaN ``_FillValue`` is one value)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


def stored_attributes(
    attributes: Mapping[str, JSON], encoding: Mapping[str, JSON]
) -> dict[str, JSON]:
    """The attributes a stored array carries: its plain attributes, then its encoding."""
    return {**attributes, **encoding}


# ---- zarr v3, as xarray reads it ---------------------------------------------------------


def zarr_v3_attributes(
    attributes: Mapping[str, JSON], encoding: Mapping[str, JSON], dtype: np.dtype[Any]
) -> dict[str, JSON]:
    """Stored attributes of a zarr v3 array, ``_FillValue`` in xarray's form.

    xarray stores a float ``_FillValue`` of a zarr v3 array as the base64 text of
    the little-endian double, and reads it back only in that form.

    >>> zarr_v3_attributes({}, {"_FillValue": -1.0}, np.dtype("f4"))
    {'_FillValue': 'AAAAAAAA8L8='}
    """
    # Thawed: nested attribute values are frozen mappings, which json cannot write.
    stored: dict[str, JSON] = thaw_json(stored_attributes(attributes, encoding))
    if "_FillValue" in stored:
        stored["_FillValue"] = _xarray_fill_value(stored["_FillValue"], dtype)
    return stored


def _xarray_fill_value(value: JSON, dtype: np.dtype[Any]) -> JSON:
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        value = float(value)
    if dtype.kind == "f" and isinstance(value, int | float):
        return _b64_double(float(value))
    if dtype.kind == "c" and isinstance(value, list | tuple) and len(value) == 2:
        return [_b64_double(float(v)) for v in value]
    return value


def _b64_double(value: float) -> str:
    return base64.standard_b64encode(struct.pack("<d", value)).decode()


def decode_xarray_fill_value(value: JSON, dtype: np.dtype[Any]) -> JSON:
    """A zarr v3 ``_FillValue`` attribute as a plain number (undoing xarray's base64 form).

    >>> decode_xarray_fill_value("AAAAAAAA8L8=", np.dtype("f4"))
    -1.0
    """
    if dtype.kind == "f" and isinstance(value, str):
        return _from_b64_double(value)
    if (
        dtype.kind == "c"
        and isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, str) for v in value)
    ):
        return [_from_b64_double(v) for v in value]
    return value


def _from_b64_double(text: str) -> JSON:
    if text in ("NaN", "Infinity", "-Infinity"):
        return float(text)
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        return text
    if len(raw) != 8:
        return text
    number: float = struct.unpack("<d", raw)[0]
    return number


# ---- zarr v2 (Kerchunk), as xarray reads it -----------------------------------------------


def attributes_from_zarr_v2(
    zarray: Mapping[str, JSON], zattrs: Mapping[str, JSON]
) -> dict[str, JSON]:
    """A zarr v2 array's attributes with the meaning xarray gives them.

    xarray reads a zarr v2 ``fill_value`` as the CF ``_FillValue``: keep that meaning
    (the inverse of `zarr_v2_fill_value`).
    """
    attributes = dict(zattrs)
    if zarray.get("fill_value") is not None and "_FillValue" not in attributes:
        attributes["_FillValue"] = zarray["fill_value"]
    return attributes


def zarr_v2_fill_value(encoding: Mapping[str, JSON]) -> JSON | None:
    """The ``.zarray`` ``fill_value`` that carries a CF ``_FillValue`` in zarr v2.

    xarray masks zarr v2 data with the array's ``fill_value`` (and ignores a
    ``_FillValue`` attribute), so the CF ``_FillValue`` becomes it; without one
    nothing may be masked, so there is none.
    """
    return encoding.get("_FillValue")
