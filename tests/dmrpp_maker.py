"""DMR++ documents made from an HDF5 file's own chunk index (h5py), as build_dmrpp would.

Independent of vz: the layout, filters, offsets and sizes come from h5py's low-level
API (``get_chunk_info``, ``get_offset``, the creation property list), and the XML is
written with ElementTree. The tests compare what vz reads through such a document
with what h5py reads from the file.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

DAP = "http://xml.opendap.org/ns/DAP/4.0#"
DMRPP = "http://xml.opendap.org/dap/dmrpp/1.0.0#"
ET.register_namespace("", DAP)
ET.register_namespace("dmrpp", DMRPP)

DAP_TYPES = {
    "u1": "Byte", "i1": "Int8", "i2": "Int16", "u2": "UInt16", "i4": "Int32", "u4": "UInt32",
    "i8": "Int64", "u8": "UInt64", "f4": "Float32", "f8": "Float64",
}  # fmt: skip
FILTER_NAMES = {1: "deflate", 2: "shuffle", 3: "fletcher32"}


def _q(namespace: str, tag: str) -> str:
    return f"{{{namespace}}}{tag}"


def _attribute(parent: ET.Element, name: str, value: Any) -> None:
    array = np.asarray(value)
    if array.dtype.kind in "SUO":
        kind = "String"
        texts = [v.decode() if isinstance(v, bytes) else str(v) for v in np.atleast_1d(array)]
    else:
        kind = DAP_TYPES[array.dtype.str[1:]]
        texts = [repr(v.item()) for v in np.atleast_1d(array)]
    element = ET.SubElement(parent, _q(DAP, "Attribute"), name=name, type=kind)
    for text in texts:
        ET.SubElement(element, _q(DAP, "Value")).text = text


def _chunks(dataset: h5py.Dataset, element: ET.Element, href: str | None) -> None:
    plist = dataset.id.get_create_plist()
    filters = [plist.get_filter(i) for i in range(plist.get_nfilters())]
    attributes = {"byteOrder": "BE" if dataset.dtype.byteorder == ">" else "LE"}
    fill = np.asarray(dataset.fillvalue)
    attributes["fillValue"] = (
        "nan" if fill.dtype.kind == "f" and np.isnan(fill) else repr(fill.item())
    )
    names = [FILTER_NAMES[code] for code, *_ in filters]
    if names:
        attributes["compressionType"] = " ".join(names)
    for code, _flags, values, _name in filters:
        if code == 1 and values:
            attributes["deflateLevel"] = str(values[0])
    layout = plist.get_layout()
    if layout == h5py.h5d.COMPACT:
        chunks = ET.SubElement(element, _q(DMRPP, "chunks"), attributes)
        raw = dataset[()].tobytes()
        ET.SubElement(element, _q(DMRPP, "compact")).text = base64.b64encode(raw).decode()
        return
    chunks = ET.SubElement(element, _q(DMRPP, "chunks"), attributes)
    extra = {"href": href} if href else {}
    if layout == h5py.h5d.CONTIGUOUS:
        offset = dataset.id.get_offset()
        if offset is not None:
            size = str(dataset.id.get_storage_size())
            ET.SubElement(chunks, _q(DMRPP, "chunk"), offset=str(offset), nBytes=size, **extra)
        return
    sizes = ET.SubElement(chunks, _q(DMRPP, "chunkDimensionSizes"))
    sizes.text = " ".join(map(str, dataset.chunks))
    for i in range(dataset.id.get_num_chunks()):
        info = dataset.id.get_chunk_info(i)
        position = "[" + ",".join(map(str, info.chunk_offset)) + "]"
        ET.SubElement(
            chunks,
            _q(DMRPP, "chunk"),
            offset=str(info.byte_offset),
            nBytes=str(info.size),
            chunkPositionInArray=position,
            **extra,
        )


def make_dmrpp(
    path: Path,
    *,
    href: str = "OPeNDAP_DMRpp_DATA_ACCESS_URL",
    dimensions: Mapping[str, Sequence[str]] | None = None,
    chunk_hrefs: Mapping[str, str] | None = None,
) -> bytes:
    """The DMR++ of the HDF5 file at ``path``.

    ``dimensions`` names the dimensions of some datasets (full paths ``/g/x`` to
    ``["/y", "/x"]``, declared at the root); the others get anonymous ``<Dim size=>``.
    ``chunk_hrefs`` gives some datasets a per-chunk ``href``.
    """
    dimensions = dimensions or {}
    root = ET.Element(_q(DAP, "Dataset"), {"name": path.name, _q(DMRPP, "href"): href})
    declared: dict[str, int] = {}

    def walk(group: h5py.Group, element: ET.Element) -> None:
        for name, value in group.attrs.items():
            _attribute(element, name, value)
        for name, member in group.items():
            if isinstance(member, h5py.Group):
                walk(member, ET.SubElement(element, _q(DAP, "Group"), name=name))
                continue
            variable = ET.SubElement(element, _q(DAP, DAP_TYPES[member.dtype.str[1:]]), name=name)
            named = dimensions.get(member.name)
            for axis, size in enumerate(member.shape):
                if named:
                    declared[named[axis]] = size
                    ET.SubElement(variable, _q(DAP, "Dim"), name=named[axis])
                else:
                    ET.SubElement(variable, _q(DAP, "Dim"), size=str(size))
            for attr, value in member.attrs.items():
                _attribute(variable, attr, value)
            _chunks(member, variable, (chunk_hrefs or {}).get(member.name))

    with h5py.File(path, "r") as file:
        walk(file, root)
    for position, (name, size) in enumerate(sorted(declared.items())):
        dim = ET.Element(_q(DAP, "Dimension"), name=name.lstrip("/"), size=str(size))
        root.insert(position, dim)
    return b'<?xml version="1.0" encoding="ISO-8859-1"?>\n' + ET.tostring(root)
