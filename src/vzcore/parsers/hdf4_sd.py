"""How the SD interface (``mfhdf``) reads a data set's type, dimensions and record count.

Written from the HDF4 library's reading of the SD metadata (``hdf_read_dims`` and
``hdf_read_vars`` in ``mfhdf/libsrc/cdf.c``): the library takes a data set's number
type from the ``NT`` member of its ``Var0.0`` Vgroup, each dimension's length from the
file's list of dimensions (built from the ``Dim0.0`` Vgroups' ``DimVal0.1`` Vdatas,
looked up by name), and the record count of a data set with an unlimited dimension
from the length of its data element. vz reads the same fields, and refuses a file
whose fields the library would read otherwise than vz (a length left over from
another dimension, a number type it skips), rather than read other values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from vzcore.parsers.hdf4_elements import SPECIAL_LINKED, HDF4File
from vzcore.parsers.hdf4_format import (
    TAG_NT,
    TAG_VG,
    TAG_VH,
    Element,
    HDF4FormatError,
    Vdata,
    Vgroup,
    number_type,
)

__all__ = ["Dimension", "dimension_table", "record_count", "sd_number_type"]

_DIMENSION, _UNLIMITED = "Dim0.0", "UDim0.0"
_DIM_VALUES, _DIM_VALUES_01 = "DimVal0.0", "DimVal0.1"
_NT_VERSION = 1  # DFNT_VERSION
_BIG_ENDIAN_CLASSES = (0, 1)  # DFNTF_NONE, DFNTF_IEEE
_LITTLE_ENDIAN_CLASS = 4  # DFNTF_PC (and DFNTI_IBO)
_INT32_TYPES = (24, 25, 24 | 0x4000, 25 | 0x4000)
_SPECIAL_COMP, _SPECIAL_CHUNKED, _SPECIAL_EXT = 3, 5, 2


@attrs.frozen
class Dimension:
    """One entry of the library's dimension list."""

    size: int | None
    """The length; None where the library takes a length left over from another one."""
    unlimited: bool


def _first_value(file: HDF4File, vdata: Vdata, where: str) -> int:
    """The first record of a dimension's Vdata, read as the library reads it: into a
    4-byte integer."""
    fields = vdata.fields
    if len(fields.types) != 1 or fields.types[0] not in _INT32_TYPES or fields.orders != (1,):
        raise HDF4FormatError(
            f"{where}: its length record (Vdata {vdata.ref}) has field types {fields.types}, "
            "not one 32-bit integer the HDF4 library reads it as"
        )
    raw = file.vdata_bytes(vdata, where)
    offset = fields.offsets[0]
    if vdata.n_records < 1 or len(raw) < offset + 4:
        raise HDF4FormatError(f"{where}: its length record (Vdata {vdata.ref}) is empty")
    dtype = "<i4" if fields.types[0] & 0x4000 else ">i4"  # into an int32, whatever its sign
    return int(np.frombuffer(raw, dtype=dtype, count=1, offset=offset)[0])


def dimension_table(file: HDF4File, members: Sequence[tuple[int, int]]) -> dict[str, Dimension]:
    """The library's list of dimensions (``hdf_read_dims``), by name (the first of a name).

    Each Vdata of a ``Dim0.0`` / ``UDim0.0`` Vgroup makes an entry: a ``DimVal0.1``
    record gives its length, a ``DimVal0.0`` its record count; any other Vdata leaves
    the length the previous one set, which vz marks unknown.
    """
    entries: list[tuple[str, int | None, bool, bool]] = []  # name, length, known, unlimited
    size: int | None = None
    for tag, ref in members:
        group = file.vgroups.get(ref) if tag == TAG_VG else None
        if group is None or group.class_name not in (_DIMENSION, _UNLIMITED):
            continue
        unlimited = group.class_name == _UNLIMITED
        where = f"dimension {group.name!r}"
        for member_tag, member_ref in group.members:
            if member_tag != TAG_VH:
                continue
            vdata = file.vdatas.get(member_ref)
            if vdata is None:
                raise HDF4FormatError(f"{where}: its Vdata {member_ref} is missing")
            known = False
            if vdata.class_name == _DIM_VALUES and not unlimited:
                size, known = vdata.n_records, True
            if vdata.class_name == _DIM_VALUES_01 or unlimited:
                value = _first_value(file, vdata, where)
                size, known = (0 if unlimited else value), True
            if not any(n == group.name and s == size for n, s, _, _ in entries):
                entries.append((group.name, size, known, unlimited))
    table: dict[str, Dimension] = {}
    for name, length, known, unlimited in entries:
        table.setdefault(name, Dimension(length if known else None, unlimited))
    return table


def sd_number_type(file: HDF4File, group: Vgroup, where: str) -> np.dtype[Any]:
    """A data set's dtype from the ``NT`` member of its ``Var0.0`` Vgroup (the last one),
    as the library takes it."""
    refs = [ref for tag, ref in group.members if tag == TAG_NT]
    if not refs:
        raise HDF4FormatError(
            f"{where}: no number type (NT) member; the HDF4 library would take another "
            "data set's type"
        )
    raw = file.read(file.element(TAG_NT, refs[-1], where))
    if len(raw) < 4:
        raise HDF4FormatError(f"{where}: the number type has {len(raw)} bytes")
    version, code, _, byte_class = raw[:4]
    dtype = number_type(code, where)
    if byte_class == _LITTLE_ENDIAN_CLASS:
        return dtype.newbyteorder("<") if dtype.itemsize > 1 else dtype
    if version != _NT_VERSION or byte_class not in _BIG_ENDIAN_CLASSES:
        raise HDF4FormatError(
            f"{where}: number type version {version}, byte order class {byte_class}: the "
            "HDF4 library leaves such a data set out"
        )
    return dtype


def _data_length(file: HDF4File, data: Element, where: str) -> int:
    """The data element's length as ``Hlength`` answers it (a special element's header
    states its own)."""
    if not data.special:
        return data.length
    raw = file.read(data)
    kind = int.from_bytes(raw[:2], "big")
    if kind in (SPECIAL_LINKED, _SPECIAL_EXT) and len(raw) >= 6:
        return int.from_bytes(raw[2:6], "big")
    if kind == _SPECIAL_COMP and len(raw) >= 8:
        return int.from_bytes(raw[4:8], "big")
    if kind == _SPECIAL_CHUNKED and len(raw) >= 23:
        return int.from_bytes(raw[11:15], "big") * int.from_bytes(raw[19:23], "big")
    raise HDF4FormatError(f"{where}: special data element of kind {kind} has no length")


def record_count(
    file: HDF4File, data: Element | None, shape: tuple[int, ...], itemsize: int, where: str
) -> int:
    """The records of a data set with an unlimited first dimension, as the library counts
    them: its data element's length over one record's bytes (none without data)."""
    if data is None:
        return 0
    record = math.prod(shape[1:]) * itemsize
    if record == 0:
        raise HDF4FormatError(f"{where}: an unlimited data set with empty records")
    length = _data_length(file, data, where)
    if length >= 1 << 31:  # the library's int32 length turns negative
        raise HDF4FormatError(f"{where}: the data element's length {length} is past 2**31")
    return length // record
