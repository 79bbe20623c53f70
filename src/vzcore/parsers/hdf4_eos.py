"""HDF-EOS2 structural metadata: the dimension names of swath and grid fields.

HDF-EOS2 keeps the structure of its swaths and grids in the ``StructMetadata.N``
global attributes, ODL text (``GROUP=SWATH_1 ... OBJECT=DataField_1
DataFieldName="Radiance" DimList=("nTrack","nXtrack") END_OBJECT=DataField_1``). Each
field is an SDS of the file; a field whose name another swath or grid already used
is stored as ``<field>:<swath or grid name>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from vzcore._frozen import JSON

__all__ = ["eos_dimension_names", "struct_metadata"]

_STRUCTURE = re.compile(
    r"GROUP\s*=\s*((?:SWATH|GRID|POINT)_\d+)\b(.*?)END_GROUP\s*=\s*\1\b", re.DOTALL
)
_STRUCTURE_NAME = re.compile(r'(?:Swath|Grid|Point)Name\s*=\s*"([^"]*)"')
_FIELD = re.compile(r"OBJECT\s*=\s*((?:Data|Geo)Field_\d+)\b(.*?)END_OBJECT\s*=\s*\1\b", re.DOTALL)
_FIELD_NAME = re.compile(r'(?:Data|Geo)FieldName\s*=\s*"([^"]*)"')
_DIMS = re.compile(r"DimList\s*=\s*\(([^)]*)\)")
_PART = re.compile(r"StructMetadata\.(\d+)$")


def _fields(text: str) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for _, block in _FIELD.findall(text):
        name, dims = _FIELD_NAME.search(block), _DIMS.search(block)
        if name and dims:
            found[name.group(1)] = tuple(d.strip().strip('"') for d in dims.group(1).split(","))
    return found


def eos_dimension_names(text: str) -> dict[str, tuple[str, ...]]:
    """SDS name -> dimension names, from HDF-EOS2 structural metadata.

    Each field is listed under its own name (the first swath or grid that has it) and
    under ``<field>:<swath or grid name>``.

    >>> eos_dimension_names(
    ...     'GROUP=SWATH_1 SwathName="S" OBJECT=DataField_1 DataFieldName="T" '
    ...     'DimList=("nTrack","nXtrack") END_OBJECT=DataField_1 END_GROUP=SWATH_1'
    ... )
    {'T:S': ('nTrack', 'nXtrack'), 'T': ('nTrack', 'nXtrack')}
    """
    found: dict[str, tuple[str, ...]] = {}
    structures = _STRUCTURE.findall(text)
    for _, block in structures:
        owner = _STRUCTURE_NAME.search(block)
        for field, dims in _fields(block).items():
            if owner:
                found[f"{field}:{owner.group(1)}"] = dims
            found.setdefault(field, dims)
    if not structures:
        found.update(_fields(text))
    return found


def struct_metadata(attributes: Mapping[str, JSON]) -> str:
    """The structural metadata text: the ``StructMetadata.N`` attributes in order of N."""
    parts = sorted(
        (int(match.group(1)), value)
        for name, value in attributes.items()
        if (match := _PART.match(name)) and isinstance(value, str)
    )
    return "".join(value for _, value in parts)
