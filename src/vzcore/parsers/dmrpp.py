"""OPeNDAP DMR++ sidecars: the chunk index of an HDF5 (or HDF4) file, as XML.

A DMR++ document (``<Dataset xmlns:dmrpp=...>``) is the DAP4 DMR of a file with a
``<dmrpp:chunks>`` element per variable: the storage's fill value, byte order and
filters (``compressionType="shuffle deflate"``), the chunk shape
(``<dmrpp:chunkDimensionSizes>``) and one ``<dmrpp:chunk offset= nBytes=
chunkPositionInArray=>`` per stored chunk, optionally in another file (``href=``).
Data held in the document itself (``<dmrpp:compact>``, ``<dmrpp:missingdata>``)
becomes a loaded array.

The data file is the root's ``dmrpp:href`` (relative to the document), the
document's URL without ``.dmrpp`` when the href is Hyrax's placeholder
``OPeNDAP_DMRpp_DATA_ACCESS_URL``, or ``data_url=`` when the sidecar has moved.
Every data URL must lie in the registry like any other.

The XML is parsed by the standard library only after refusing a document type
declaration: DMR++ has none, and entities are how "billion laughs" documents
expand.
"""

from __future__ import annotations

import base64
import binascii
import math
import posixpath
import re
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from vzcore._frozen import JSON
from vzcore.array import AnyArray, LoadedArray, VirtualArray
from vzcore.byteranges import SourceReadError, source
from vzcore.errors import VirtualizationError
from vzcore.group import SourceFingerprint, VirtualGroup
from vzcore.limits import check_limit, read_document
from vzcore.manifest import ChunkManifest
from vzcore.metadata import ArrayMetadata, checked_grid
from vzcore.parsers.protocol import Probe
from vzcore.registry import ObjectStoreRegistry, UnregisteredURLError
from vzcore.urls import is_url, normalize_url, quote_path

__all__ = ["DMRPPFormatError", "DMRPPParser", "DMRPPUnsupportedError"]

DAP = "{http://xml.opendap.org/ns/DAP/4.0#}"
DMRPP_NAMESPACE = "http://xml.opendap.org/dap/dmrpp/1.0.0#"
_PP = "{" + DMRPP_NAMESPACE + "}"
PLACEHOLDER = "OPeNDAP_DMRpp_DATA_ACCESS_URL"

_TYPES: dict[str, str] = {
    "Byte": "u1",
    "UInt8": "u1",
    "Int8": "i1",
    "Int16": "i2",
    "UInt16": "u2",
    "Int32": "i4",
    "UInt32": "u4",
    "Int64": "i8",
    "UInt64": "u8",
    "Float32": "f4",
    "Float64": "f8",
}
_UNSUPPORTED_TYPES = ("String", "URL", "Char", "Opaque", "Enum", "Structure", "Sequence")
_DECLARATION = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


XML_START = re.compile(rb"\A(\xef\xbb\xbf)?\s*<")
"""The start of an XML document: optional UTF-8 byte order mark, blanks, ``<``."""


def looks_like_dmrpp(head: bytes) -> bool:
    """Whether the first bytes of a source are a DMR++ document's.

    >>> looks_like_dmrpp(b'<?xml version="1.0"?><Dataset xmlns="http://xml.opendap.org/ns/'
    ...                  b'DAP/4.0#" xmlns:dmrpp="http://xml.opendap.org/dap/dmrpp/1.0.0#">')
    True
    """
    return (
        XML_START.match(head) is not None and DAP.strip("{}").encode() in head and b"dmrpp" in head
    )


class DMRPPFormatError(VirtualizationError):
    """A DMR++ document that is not well-formed XML or not a valid DMR++."""


class DMRPPUnsupportedError(VirtualizationError):
    """A DMR++ variable vz cannot reference: a string or structure type, an unknown filter."""


@attrs.frozen(kw_only=True)
class DMRPPParser:
    """Parser for OPeNDAP DMR++ sidecar documents (for HDF5 and HDF4 data files).

    Attributes
    ----------
    data_url
        The data file's URL, replacing the document's ``dmrpp:href`` (for a sidecar
        that moved, or a copy of the data elsewhere). Chunks with their own ``href``
        keep it.
    group
        Only this group (``"a/b"``) and below, as the root of the result.
    drop_variables
        Names (or full paths ``"a/b/x"``) of variables to leave out.

    Examples
    --------
    >>> import obstore, vzcore as vc
    >>> from obstore.store import MemoryStore
    >>> doc = b'''<Dataset xmlns="http://xml.opendap.org/ns/DAP/4.0#"
    ...   xmlns:dmrpp="http://xml.opendap.org/dap/dmrpp/1.0.0#" name="f.h5" dmrpp:href="f.h5">
    ...   <Dimension name="x" size="4"/>
    ...   <Int16 name="v"><Dim name="/x"/>
    ...     <dmrpp:chunks byteOrder="LE"><dmrpp:chunk offset="2048" nBytes="8"/></dmrpp:chunks>
    ...   </Int16></Dataset>'''
    >>> store = MemoryStore()
    >>> _ = obstore.put(store, "f.h5.dmrpp", doc)
    >>> registry = vc.ObjectStoreRegistry({"memory://b/": store})
    >>> group = DMRPPParser()("memory://b/f.h5.dmrpp", registry)
    >>> group["v"].shape, group["v"].manifest.to_entries()["0"]
    ((4,), {'path': 'memory://b/f.h5', 'offset': 2048, 'length': 8})
    """

    data_url: str | None = None
    group: str | None = None
    drop_variables: tuple[str, ...] = attrs.field(default=(), converter=tuple)

    priority = -45

    @classmethod
    def can_open(cls, probe: Probe) -> bool:
        """An XML document in the DAP4 namespace that speaks of ``dmrpp``."""
        head = probe.head
        return head is not None and looks_like_dmrpp(head)

    def __call__(self, url: str, registry: ObjectStoreRegistry) -> VirtualGroup:
        """Build the virtual group a DMR++ document describes.

        Raises
        ------
        DMRPPFormatError
            If the document is not XML, declares a document type or entities, or is
            not a valid DMR++ (sizes, positions and offsets are checked).
        DMRPPUnsupportedError
            For a variable of a type or filter vz cannot reference (drop it).
        UnregisteredURLError
            If the document or a data file lies under no registered prefix.
        """
        file = source(registry, url)
        document = read_document(file, where=file.url, what="the DMR++ document")
        root = _parse_xml(bytes(document), file.url)
        data = self._data_url(root, file.url)
        context = _Context(
            document=file.url, data_url=data, drop=self.drop_variables, registry=registry
        )
        node = _select_group(root, self.group, file.url)
        try:
            group = _group(node, context, path="", dimensions=_dimensions(root, ""), depth=0)
        except VirtualizationError as err:  # from the model's checks, which know no file
            if file.url in str(err):
                raise
            raise DMRPPFormatError(f"{file.url}: {err}") from err
        except (ValueError, OverflowError) as err:  # a number numpy cannot hold or parse
            raise DMRPPFormatError(
                f"{file.url}: a value of the document is invalid: {err}"
            ) from err
        return attrs.evolve(group, sources=_fingerprints(context))

    def _data_url(self, root: ET.Element, document: str) -> str:
        href = self.data_url if self.data_url is not None else root.get(f"{_PP}href")
        if href is None or href == PLACEHOLDER:
            if not document.endswith(".dmrpp"):
                raise DMRPPFormatError(
                    f"{document}: the document names no data file (dmrpp:href) and its URL "
                    "does not end in .dmrpp; pass data_url="
                )
            return document.removesuffix(".dmrpp")
        return _resolve(href, document)


@attrs.define
class _Context:
    document: str
    data_url: str
    drop: tuple[str, ...]
    registry: ObjectStoreRegistry
    urls: set[str] = attrs.field(factory=set)
    phony: dict[tuple[int, int], str] = attrs.field(factory=dict)


def _resolve(href: str, document: str) -> str:
    """``href`` as a canonical URL; a relative one is relative to the document's folder."""
    if is_url(href) or href.startswith("/"):
        return normalize_url(href)
    return normalize_url(posixpath.join(posixpath.dirname(document), quote_path(href)))


def _parse_xml(data: bytes, where: str) -> ET.Element:
    if _DECLARATION.search(data) is not None:
        raise DMRPPFormatError(
            f"{where}: the document declares a document type or entities, which DMR++ never "
            "does (refused: entity expansion can make a small document enormous)"
        )
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, LookupError) as err:  # LookupError: an unknown encoding
        raise DMRPPFormatError(f"{where}: not well-formed XML: {err}") from err
    if root.tag != f"{DAP}Dataset":
        raise DMRPPFormatError(f"{where}: the root element is {root.tag!r}, not a DAP4 Dataset")
    return root


def _select_group(root: ET.Element, group: str | None, where: str) -> ET.Element:
    node = root
    for name in (group or "").strip("/").split("/") if group and group.strip("/") else []:
        found = next((g for g in node.iter(f"{DAP}Group") if g.get("name") == name), None)
        if found is None or found not in list(node):
            raise DMRPPFormatError(f"{where}: no group {group!r}")
        node = found
    return node


def _int(text: str | None, what: str, where: str, *, minimum: int = 0) -> int:
    try:
        value = int(text or "")
    except ValueError:
        raise DMRPPFormatError(f"{where}: {what} {text!r} is not an integer") from None
    if value < minimum:
        raise DMRPPFormatError(f"{where}: {what} {value} is below {minimum}")
    return value


def _dimensions(node: ET.Element, path: str) -> dict[str, int]:
    """The shared dimensions a group declares, by full path (``/lat``, ``/g/x``)."""
    where = f"group {'/' + path!r}"
    return {
        f"{path}/{d.get('name')}": _int(d.get("size"), f"dimension {d.get('name')!r} size", where)
        for d in node.findall(f"{DAP}Dimension")
    }


def _group(
    node: ET.Element, context: _Context, *, path: str, dimensions: dict[str, int], depth: int
) -> VirtualGroup:
    check_limit("max_group_depth", depth, context.document, "levels of nested groups")
    arrays: dict[str, AnyArray] = {}
    groups: dict[str, VirtualGroup] = {}
    for child in node:
        name = child.get("name", "")
        full = f"{path}/{name}".strip("/")
        kind = child.tag.removeprefix(DAP)
        if kind == "Group":
            inner = {**dimensions, **_dimensions(child, "/" + full)}
            groups[name] = _group(child, context, path=full, dimensions=inner, depth=depth + 1)
        elif kind in _TYPES or kind in _UNSUPPORTED_TYPES:
            if name in context.drop or full in context.drop:
                continue
            where = f"{context.document}: variable {'/' + full!r}"
            if kind in _UNSUPPORTED_TYPES:
                raise DMRPPUnsupportedError(
                    f"{where}: DAP4 type {kind} has no fixed-size zarr data type vz can "
                    "reference; drop it (drop_variables=)"
                )
            arrays[name] = _variable(child, kind, context, dimensions, where)
    return VirtualGroup(arrays=arrays, groups=groups, attributes=_attributes(node))


# ---- attributes ---------------------------------------------------------------------------


def _attributes(node: ET.Element) -> dict[str, JSON]:
    return {a.get("name", ""): _attribute(a) for a in node.findall(f"{DAP}Attribute")}


def _attribute(element: ET.Element) -> JSON:
    kind = element.get("type", "String")
    if kind == "Container" or kind == "OtherXML":
        return _attributes(element) if kind == "Container" else ET.tostring(element).decode()
    texts = [v.text or "" for v in element.findall(f"{DAP}Value")]
    values: list[JSON] = [_scalar(kind, t) for t in texts]
    return values[0] if len(values) == 1 else values


def _scalar(kind: str, text: str) -> JSON:
    code = _TYPES.get(kind)
    if code is None:
        return text
    try:
        return float(text) if code[0] == "f" else int(text.strip(), 0)
    except ValueError:
        return text


# ---- variables ----------------------------------------------------------------------------


def _variable(
    element: ET.Element, kind: str, context: _Context, dimensions: dict[str, int], where: str
) -> AnyArray:
    shape, names = _shape(element, dimensions, context, where)
    chunks = element.find(f"{_PP}chunks")
    order = "<" if chunks is None or chunks.get("byteOrder", "LE") == "LE" else ">"
    dtype = np.dtype(order + _TYPES[kind])
    attributes = _attributes(element)
    fill = _fill_value(chunks, attributes, dtype, where)
    compact = element.find(f"{_PP}compact")
    missing = element.find(f"{_PP}missingdata")
    if compact is not None or missing is not None:
        holder = compact if compact is not None else missing
        assert holder is not None
        return _loaded(holder, holder is missing, shape, dtype, names, attributes, fill, where)
    if chunks is None:  # never all fill: nothing says the data were not written
        raise DMRPPUnsupportedError(
            f"{where}: no <dmrpp:chunks> element says where its data lie (a plain DMR?); "
            "drop it (drop_variables=)"
        )
    chunk_shape = _chunk_shape(chunks, shape, where)
    metadata = ArrayMetadata.create(
        shape=shape,
        chunk_shape=chunk_shape,
        dtype=dtype,
        fill_value=fill,
        codecs=_codecs(chunks, dtype, where),
        dimension_names=names,
        attributes=attributes,
    )
    return VirtualArray(metadata, _manifest(chunks, metadata, context, where))


def _shape(
    element: ET.Element, dimensions: dict[str, int], context: _Context, where: str
) -> tuple[tuple[int, ...], tuple[str, ...]]:
    shape: list[int] = []
    names: list[str] = []
    anonymous: list[int] = []
    for dim in element.findall(f"{DAP}Dim"):
        name = dim.get("name")
        if name is not None:
            if name not in dimensions:
                raise DMRPPFormatError(f"{where}: dimension {name!r} is not declared")
            shape.append(dimensions[name])
            names.append(name.rsplit("/", 1)[-1])
        else:
            size = _int(dim.get("size"), "anonymous dimension size", where)
            shape.append(size)
            # As h5netcdf names HDF5 dimensions without scales: one name per length, and
            # a second axis of the same length in one variable is a second dimension.
            key = (size, anonymous.count(size))
            anonymous.append(size)
            names.append(context.phony.setdefault(key, f"phony_dim_{len(context.phony)}"))
    return tuple(shape), tuple(names)


def _fill_value(
    chunks: ET.Element | None, attributes: Mapping[str, JSON], dtype: np.dtype[Any], where: str
) -> Any:
    text = chunks.get("fillValue") if chunks is not None else None
    if text is None:
        given = attributes.get("_FillValue")
        return given if isinstance(given, int | float) else None
    try:
        return float(text) if dtype.kind == "f" else int(text, 0)
    except ValueError:
        raise DMRPPFormatError(f"{where}: fillValue {text!r} is not a {dtype} number") from None


def _chunk_shape(chunks: ET.Element | None, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
    sizes = chunks.find(f"{_PP}chunkDimensionSizes") if chunks is not None else None
    if sizes is None:
        return tuple(max(s, 1) for s in shape)  # contiguous: one chunk holds the array
    lengths = tuple(
        _int(t, "chunk dimension size", where, minimum=1) for t in (sizes.text or "").split()
    )
    if len(lengths) != len(shape):
        raise DMRPPFormatError(
            f"{where}: chunkDimensionSizes {list(lengths)} has {len(lengths)} axes, "
            f"the variable has {len(shape)}"
        )
    return lengths


def _codecs(chunks: ET.Element | None, dtype: np.dtype[Any], where: str) -> list[dict[str, Any]]:
    """The zarr codecs after ``bytes`` for ``compressionType``, in filter order."""
    names = (chunks.get("compressionType", "") if chunks is not None else "").split()
    level = chunks.get("deflateLevel") if chunks is not None else None
    codecs: list[dict[str, Any]] = []
    for name in names:
        if name in ("deflate", "zlib"):
            codecs.append({"name": "numcodecs.zlib", "configuration": {"level": int(level or 4)}})
        elif name == "shuffle":
            codecs.append(
                {"name": "numcodecs.shuffle", "configuration": {"elementsize": dtype.itemsize}}
            )
        elif name == "fletcher32":
            codecs.append({"name": "numcodecs.fletcher32"})
        else:
            raise DMRPPUnsupportedError(
                f"{where}: compression {name!r} has no zarr codec vz can use; drop the "
                "variable (drop_variables=)"
            )
    return codecs


def _manifest(
    chunks: ET.Element | None, metadata: ArrayMetadata, context: _Context, where: str
) -> ChunkManifest:
    grid = checked_grid(metadata, where)
    found = chunks.findall(f"{_PP}chunk") if chunks is not None else []
    if not found or 0 in grid:
        return ChunkManifest.empty(grid)
    count = len(found)
    check_limit("max_chunks", count, where, "chunk elements")
    offsets = _column(found, "offset", where)
    lengths = _column(found, "nBytes", where)
    rows = _rows(found, metadata, grid, where)
    hrefs = [c.get("href") for c in found]
    distinct = sorted({h for h in hrefs if h is not None})
    urls = [context.data_url, *(_resolve(h, context.document) for h in distinct)]
    index_of = {h: i + 1 for i, h in enumerate(distinct)}
    file_index = np.array([index_of.get(h, 0) for h in hrefs], dtype=np.int32)  # type: ignore[arg-type]
    context.urls.update(urls if distinct else urls[:1])
    if len(np.unique(rows)) != count:
        raise DMRPPFormatError(f"{where}: two chunks have the same chunkPositionInArray")
    n_chunks = math.prod(grid)
    indices = np.full(n_chunks, -1, dtype=np.int32)
    all_offsets = np.zeros(n_chunks, dtype=np.uint64)
    all_lengths = np.zeros(n_chunks, dtype=np.uint64)
    indices[rows], all_offsets[rows], all_lengths[rows] = file_index, offsets, lengths
    return ChunkManifest.from_numpy_columns(
        grid,
        dictionary=pa.array(urls, pa.string()),
        indices=indices,
        offsets=all_offsets,
        lengths=all_lengths,
    )


def _column(found: list[ET.Element], name: str, where: str) -> npt.NDArray[np.uint64]:
    texts = [c.get(name) for c in found]
    try:
        values = np.array(texts, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise DMRPPFormatError(f"{where}: a chunk's {name} is missing or not an integer") from None
    if (values < 0).any():
        raise DMRPPFormatError(f"{where}: a chunk's {name} is negative")
    return values.astype(np.uint64)


def _rows(
    found: list[ET.Element], metadata: ArrayMetadata, grid: tuple[int, ...], where: str
) -> npt.NDArray[np.int64]:
    """The C-order grid row of each chunk, from its element position."""
    positions = [c.get("chunkPositionInArray") for c in found]
    if all(p is None for p in positions):
        if len(found) != 1:
            raise DMRPPFormatError(f"{where}: {len(found)} chunks and no chunkPositionInArray")
        return np.zeros(1, dtype=np.int64)
    if any(p is None for p in positions):
        raise DMRPPFormatError(f"{where}: some chunks lack chunkPositionInArray")
    text = ",".join(p.strip().removeprefix("[").removesuffix("]") for p in positions)  # type: ignore[union-attr]
    try:
        flat = np.array(text.split(","), dtype=np.int64)
    except ValueError:
        raise DMRPPFormatError(
            f"{where}: a chunkPositionInArray is not a list of integers"
        ) from None
    ndim = metadata.ndim
    if flat.size != len(found) * ndim:
        raise DMRPPFormatError(f"{where}: a chunkPositionInArray does not have {ndim} numbers")
    starts = flat.reshape(len(found), ndim)
    chunk = np.asarray(metadata.chunk_shape, dtype=np.int64)
    if (starts < 0).any() or (starts % chunk).any() or (starts // chunk >= np.asarray(grid)).any():
        raise DMRPPFormatError(
            f"{where}: a chunkPositionInArray is not the start of a chunk of the grid "
            f"({metadata.shape} in chunks of {metadata.chunk_shape})"
        )
    rows: npt.NDArray[np.int64] = np.ravel_multi_index(tuple((starts // chunk).T), grid)
    return rows.astype(np.int64)


def _loaded(
    holder: ET.Element,
    deflated: bool,
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    names: tuple[str, ...],
    attributes: dict[str, JSON],
    fill: Any,
    where: str,
) -> LoadedArray:
    """Values stored in the document itself: base64 (``compact``), deflated too (``missingdata``)."""
    nbytes = math.prod(shape) * dtype.itemsize
    check_limit("max_inline_bytes", nbytes, where, "decoded bytes of data held in the document")
    try:
        raw = base64.b64decode(holder.text or "", validate=False)
        if deflated:
            inflater = zlib.decompressobj()
            raw = inflater.decompress(raw, nbytes + 1)
    except (binascii.Error, zlib.error) as err:
        raise DMRPPFormatError(
            f"{where}: data held in the document does not decode: {err}"
        ) from err
    if len(raw) != nbytes:
        raise DMRPPFormatError(
            f"{where}: data held in the document has {len(raw)} bytes, shape {shape} of "
            f"{dtype} needs {nbytes}"
        )
    values = np.frombuffer(raw, dtype=dtype).reshape(shape)
    metadata = ArrayMetadata.create(
        shape=shape,
        chunk_shape=tuple(max(s, 1) for s in shape),
        dtype=dtype,
        fill_value=fill,
        dimension_names=names,
        attributes=attributes,
    )
    return LoadedArray(metadata, values.astype(metadata.dtype))


def _fingerprints(context: _Context) -> dict[str, SourceFingerprint]:
    """The data files' fingerprints, where the registry can tell them.

    Raises
    ------
    UnregisteredURLError
        If a data file lies under no registered prefix (naming the document).
    """
    found: dict[str, SourceFingerprint] = {}
    for url in sorted(context.urls):
        try:
            data = source(context.registry, url)
        except UnregisteredURLError as err:
            raise type(err)(f"{context.document}: data file: {err}") from err
        try:
            found[url] = data.fingerprint()
        except SourceReadError:
            continue  # not reachable now: the references stand, reads will say why
    return found
