"""Parser for HDF4 files written by the SD (scientific data set) interface, and HDF-EOS2.

Written from the HDF4 file format specification: the SD interface (``mfhdf``) keeps
each data set as a Vgroup of class ``Var0.0`` holding its dimensions (Vgroups of
class ``Dim0.0``/``UDim0.0``), its attributes (Vdatas of class ``Attr0.0``), its
number type (NT), its dimension record (SDD) and its data (SD). The data element is
plain (one contiguous chunk), or a special element: chunked (a chunk table Vdata of
origins and chunk refs, each chunk possibly compressed), compressed, linked blocks
or external. Dimension scales are the data sets of class ``CoordVar``; HDF-EOS2
files name the dimensions of their swaths and grids in the ``StructMetadata.0``
attribute, whose names replace the SD interface's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from vzcore._frozen import JSON
from vzcore.array import AnyArray, LoadedArray, VirtualArray
from vzcore.byteranges import Source, SourceReadError, source
from vzcore.errors import VirtualizationError
from vzcore.group import VirtualGroup
from vzcore.limits import check_limit
from vzcore.manifest import ChunkManifest
from vzcore.metadata import ArrayMetadata, checked_grid
from vzcore.parsers.hdf4_elements import (
    RLE_CODEC,
    SPECIAL_LINKED,
    HDF4File,
    HDF4UnsupportedError,
    Layout,
    chunk_layout,
    rle_decode,
)
from vzcore.parsers.hdf4_eos import eos_dimension_names, struct_metadata
from vzcore.parsers.hdf4_format import (
    EXTENDED,
    HDF4_MAGIC,
    TAG_NDG,
    TAG_NT,
    TAG_SD,
    TAG_SDD,
    TAG_SDG,
    TAG_VG,
    TAG_VH,
    Element,
    HDF4FormatError,
    Vdata,
    Vgroup,
    cursor,
    number_type,
    vdata_records,
)
from vzcore.parsers.hdf4_sd import Dimension, dimension_table, record_count, sd_number_type
from vzcore.parsers.protocol import Probe
from vzcore.read import read_array
from vzcore.registry import ObjectStoreRegistry

__all__ = ["HDF4FormatError", "HDF4Parser", "HDF4UnsupportedError"]


# The SD interface's default fills are netCDF's, by the netCDF type each HDF4 type maps
# to (mfhdf's hdf_map_type): unsigned types take the signed type's fill, reinterpreted.
_DEFAULT_FILLS: dict[int, int | float] = {1: -127, 2: -32767, 4: -2147483647, 8: -2147483647}
_FLOAT_FILL = 9.9692099683868690e36


def _default_fill(dtype: np.dtype[Any]) -> Any:
    if dtype.kind == "f":
        return dtype.type(_FLOAT_FILL)
    if dtype.kind == "S":
        return b"\x00"
    signed = np.array(_DEFAULT_FILLS[dtype.itemsize], dtype=f"i{dtype.itemsize}")
    return signed.view(dtype.newbyteorder("="))[()]


@attrs.frozen
class _Dataset:
    name: str
    shape: tuple[int, ...]
    dimension_names: tuple[str, ...]
    dtype: np.dtype[Any]
    attributes: dict[str, JSON]
    data: Element | None
    is_coordinate: bool
    fill_attribute: npt.NDArray[Any] | None = None
    """The ``_FillValue`` attribute's values as stored (their type may not be the data set's)."""


def _attribute_values(file: HDF4File, vdata: Vdata, where: str) -> npt.NDArray[Any]:
    records = vdata_records(vdata, file.vdata_bytes(vdata, where), where)
    values = records[records.dtype.names[0]].reshape(-1) if records.dtype.names else records
    return np.asarray(values)


def _attribute_value(file: HDF4File, vdata: Vdata, where: str) -> JSON:
    values = _attribute_values(file, vdata, where)
    if values.dtype.kind == "S":
        return values.tobytes().split(b"\x00", 1)[0].decode("utf-8", errors="replace")
    items: list[JSON] = values.tolist()
    return items[0] if len(items) == 1 else items


def _attributes(file: HDF4File, members: Sequence[tuple[int, int]], where: str) -> dict[str, JSON]:
    attributes: dict[str, JSON] = {}
    for tag, ref in members:
        vdata = file.vdatas.get(ref) if tag == TAG_VH else None
        if vdata is not None and vdata.class_name == "Attr0.0":
            attributes[vdata.name] = _attribute_value(
                file, vdata, f"{where}attribute {vdata.name!r}"
            )
    return attributes


def _dataset(file: HDF4File, group: Vgroup, table: dict[str, Dimension] | None) -> _Dataset:
    """A data set's metadata. With the library's dimension ``table`` (a file with a
    ``CDF0.0`` Vgroup, as the library needs) its type, dimension lengths and record
    count are the library's; vz refuses the file where they disagree with its SDD."""
    where = f"SDS {group.name!r}"
    members = {(tag & ~EXTENDED): ref for tag, ref in group.members}
    if TAG_SDD not in members:
        raise HDF4FormatError(f"{where}: no dimension record (SDD)")
    c = cursor(file.read(file.element(TAG_SDD, members[TAG_SDD], where)), f"{where}: SDD")
    rank = c.uint(2)
    shape = tuple(c.uints(4, rank))
    nt_ref = c.uints(2, 2)[1]
    sd_refs = [ref for tag, ref in group.members if tag == TAG_SD]
    data = file.reader.find(TAG_SD, sd_refs[-1]) if sd_refs else None
    if table is None:
        nt = cursor(file.read(file.element(TAG_NT, nt_ref, where)), f"{where}: number type")
        _, code, _, byte_class = (nt.uint(1) for _ in range(4))
        dtype = number_type(code, where)
        if byte_class == 4 and dtype.itemsize > 1:  # DFNTF_PC / DFNTI_IBO: little-endian
            dtype = dtype.newbyteorder("<")
    else:
        dtype = sd_number_type(file, group, where)
    dims = [
        file.vgroups[ref]
        for tag, ref in group.members
        if tag == TAG_VG
        and ref in file.vgroups
        and file.vgroups[ref].class_name in ("Dim0.0", "UDim0.0")
    ]
    if (dims or table is not None) and len(dims) != rank:  # the library's rank is theirs
        raise HDF4FormatError(f"{where}: {len(dims)} dimension records for rank {rank}")
    if table is None:
        for axis, dim in enumerate(dims):
            size = _dimension_size(file, dim) if dim.class_name == "Dim0.0" else None
            if size is not None and size != shape[axis]:
                raise HDF4FormatError(
                    f"{where}: dimension {dim.name!r} has length {size}, the SDD says {shape[axis]}"
                )
    else:
        shape = _library_shape(file, dims, table, shape, dtype, data, where)
    names = (
        tuple(d.name for d in dims)
        if len(dims) == rank
        else tuple(f"fakeDim{i}" for i in range(rank))
    )
    markers = {
        file.vdatas[r].class_name for t, r in group.members if t == TAG_VH and r in file.vdatas
    }
    is_coordinate = "CoordVar" in markers or (
        rank == 1 and names == (group.name,) and "SDSVar" not in markers
    )
    attributes = _attributes(file, group.members, f"{where}: ")
    fills = [
        _attribute_values(file, file.vdatas[ref], f"{where}: attribute '_FillValue'")
        for tag, ref in group.members
        if tag == TAG_VH
        and ref in file.vdatas
        and file.vdatas[ref].class_name == "Attr0.0"
        and file.vdatas[ref].name == "_FillValue"
    ]
    fill = fills[-1] if fills else None  # the one `_attributes` keeps
    return _Dataset(group.name, shape, names, dtype, attributes, data, is_coordinate, fill)


def _library_shape(
    file: HDF4File,
    dims: Sequence[Vgroup],
    table: dict[str, Dimension],
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    data: Element | None,
    where: str,
) -> tuple[int, ...]:
    """The shape the library gives a data set: each dimension's length from its list of
    dimensions, and an unlimited first dimension's from the data's length."""
    lengths = list(shape)
    for axis, dim in enumerate(dims):
        entry = table.get(dim.name)
        if entry is None or entry.size is None:
            raise HDF4FormatError(
                f"{where}: dimension {dim.name!r} has no length record (DimVal0.1); the "
                "HDF4 library would take another dimension's length"
            )
        if entry.unlimited and axis == 0:
            lengths[0] = record_count(file, data, shape, dtype.itemsize, where)
        elif entry.unlimited or entry.size == 0:
            raise HDF4FormatError(
                f"{where}: dimension {dim.name!r} is unlimited at axis {axis}, which the "
                "HDF4 library does not read"
            )
        elif entry.size != shape[axis]:
            raise HDF4FormatError(
                f"{where}: dimension {dim.name!r} has length {entry.size}, the SDD says "
                f"{shape[axis]}"
            )
    return tuple(lengths)


def _dimension_size(file: HDF4File, dim: Vgroup) -> int | None:
    """A dimension's length as its ``DimVal0.1`` Vdata holds it (None: not that layout)."""
    for tag, ref in dim.members:
        vdata = file.vdatas.get(ref) if tag == TAG_VH else None
        if vdata is None or vdata.class_name != "DimVal0.1" or vdata.n_records != 1:
            continue
        where = f"dimension {dim.name!r}"
        records = vdata_records(vdata, file.vdata_bytes(vdata, where), where)
        fields = records.dtype.names or ()
        if len(fields) == 1 and records.size == 1:
            return int(records[fields[0]].reshape(-1)[0])
    return None


def _fill_value(dataset: _Dataset, where: str) -> Any:
    raw = dataset.attributes.get("_FillValue")
    if raw is None:
        return _default_fill(dataset.dtype)
    if dataset.dtype.kind == "S":
        return (str(raw).encode() or b"\x00")[:1]
    if not isinstance(raw, int | float):
        raise HDF4FormatError(f"{where}: _FillValue {raw!r} is not one number")
    with np.errstate(all="ignore"):
        cast = np.array(raw).astype(dataset.dtype)
        same = bool(cast == raw) or (cast.dtype.kind == "f" and bool(np.isnan(cast)))
    if not same:
        raise HDF4FormatError(f"{where}: _FillValue {raw!r} is not a {dataset.dtype}")
    return cast[()]


def _no_data_fill(dataset: _Dataset, fill: Any, where: str) -> Any:
    """What the library fills a data set without data with (``hdf_xdr_NCvdata``): the
    first bytes of the ``_FillValue`` attribute's values as it holds them in memory
    (little-endian, on every machine pyhdf runs on), whatever their type; ``fill`` when
    that type is the data set's."""
    stored = dataset.fill_attribute
    itemsize = dataset.dtype.itemsize
    if (
        stored is None
        or dataset.dtype.kind == "S"
        or (stored.dtype.kind, stored.dtype.itemsize) == (dataset.dtype.kind, itemsize)
    ):
        return fill
    memory = stored.astype(stored.dtype.newbyteorder("<")).tobytes()
    if len(memory) < itemsize:
        raise HDF4FormatError(
            f"{where}: _FillValue holds {len(memory)} bytes of {stored.dtype}, a value of "
            f"the data set {itemsize}; the HDF4 library fills it from past the attribute"
        )
    return np.frombuffer(memory[:itemsize], dtype=dataset.dtype.newbyteorder("<"))[0]


def _chunk_fill(layout: Layout | None, dtype: np.dtype[Any], fill: Any) -> Any:
    """What an absent chunk holds: the chunked header's fill value, else ``fill``."""
    if layout is None or layout.fill is None:
        return fill
    return np.frombuffer(layout.fill, dtype=dtype)[0]


def _virtual_array(file: HDF4File, dataset: _Dataset, names: tuple[str, ...]) -> VirtualArray:
    where = f"{file.url}: SDS {dataset.name!r}"
    layout = chunk_layout(file, dataset.shape, dataset.dtype, dataset.data, where)
    chunk_shape = layout.chunk_shape if layout else tuple(max(s, 1) for s in dataset.shape)
    fill = _fill_value(dataset, where)
    attributes = dict(dataset.attributes)
    if "_FillValue" in attributes:
        attributes["_FillValue"] = fill.item()
    metadata = ArrayMetadata.create(
        shape=dataset.shape,
        chunk_shape=chunk_shape,
        dtype=dataset.dtype,
        fill_value=(
            _chunk_fill(layout, dataset.dtype, fill)
            if layout is not None
            else _no_data_fill(dataset, fill, where)
        ),
        codecs=list(layout.codecs) if layout else None,
        dimension_names=names,
        attributes=attributes,
    )
    grid = checked_grid(metadata, where)
    if layout is None or 0 in grid:
        return VirtualArray(metadata, ChunkManifest.empty(grid))
    n_chunks = math.prod(grid)
    indices = np.full(n_chunks, -1, dtype=np.int32)
    offsets = np.zeros(n_chunks, dtype=np.uint64)
    lengths = np.zeros(n_chunks, dtype=np.uint64)
    indices[layout.rows], offsets[layout.rows], lengths[layout.rows] = (
        0,
        layout.offsets,
        layout.lengths,
    )
    manifest = ChunkManifest.from_numpy_columns(
        grid,
        dictionary=pa.array([file.url], pa.string()),
        indices=indices,
        offsets=offsets,
        lengths=lengths,
    )
    return VirtualArray(metadata, manifest)


def _rle_values(
    file: HDF4File, dataset: _Dataset, layout: Layout, fill: Any, where: str
) -> npt.NDArray[Any]:
    """An RLE data set decoded: every stored chunk (full-sized, as HDF4 keeps edge
    chunks) into its place, absent chunks fill, then cut to the data set's shape."""
    chunk = layout.chunk_shape
    grid = tuple(-(-s // c) for s, c in zip(dataset.shape, chunk, strict=True))
    per_chunk = math.prod(chunk) * dataset.dtype.itemsize
    tiles = np.full((math.prod(grid), *chunk), fill, dtype=dataset.dtype)
    ends = (layout.offsets + layout.lengths).tolist()
    blobs = file.reader.file.read_ranges(layout.offsets.tolist(), ends)
    for row, blob in zip(layout.rows.tolist(), blobs, strict=True):
        decoded = rle_decode(bytes(blob), per_chunk, where)
        tiles[row] = np.frombuffer(decoded, dtype=dataset.dtype).reshape(chunk)
    rank = len(chunk)
    order = [axis for pair in zip(range(rank), range(rank, 2 * rank), strict=True) for axis in pair]
    padded = tiles.reshape(*grid, *chunk).transpose(order)
    whole = padded.reshape(tuple(g * c for g, c in zip(grid, chunk, strict=True)))
    return whole[tuple(slice(0, s) for s in dataset.shape)]


def _loaded_array(
    file: HDF4File, dataset: _Dataset, names: tuple[str, ...], registry: ObjectStoreRegistry
) -> LoadedArray:
    """A data set read into memory: linked blocks joined, anything else decoded as zarr
    would decode its chunks."""
    where = f"{file.url}: SDS {dataset.name!r}"
    nbytes = math.prod(dataset.shape) * dataset.dtype.itemsize
    check_limit("max_inline_bytes", nbytes, where, "the bytes to load")
    fill = _fill_value(dataset, where)
    attributes = dict(dataset.attributes)
    if "_FillValue" in attributes:
        attributes["_FillValue"] = fill.item()
    data = dataset.data
    if data is not None and data.special and file.special_kind(data) == SPECIAL_LINKED:
        raw = file.linked_bytes(file.pieces(data, where))
        if len(raw) < nbytes:
            raise HDF4FormatError(f"{where}: {len(raw)} bytes of data, the data set needs {nbytes}")
        values = np.frombuffer(raw[:nbytes], dtype=dataset.dtype).reshape(dataset.shape)
    else:
        try:
            layout = chunk_layout(file, dataset.shape, dataset.dtype, data, where, loading=True)
            rle = layout is not None and layout.codecs == ({"name": RLE_CODEC},)
            virtual = None if rle else _virtual_array(file, dataset, names)
        except HDF4UnsupportedError as err:
            raise HDF4UnsupportedError(
                f"{err}; vz cannot decode it either, so loadable_variables= cannot load it"
            ) from None
        if virtual is None:
            assert layout is not None
            chunk_fill = _chunk_fill(layout, dataset.dtype, fill)
            values = _rle_values(file, dataset, layout, chunk_fill, where)
            return LoadedArray.from_numpy(
                values, dimension_names=names, attributes=attributes, fill_value=fill
            )
        try:
            values = read_array(virtual, registry)
        except VirtualizationError:
            raise
        except Exception as err:  # a codec's own error on corrupt chunk bytes
            raise HDF4FormatError(f"{where}: the data cannot be decoded ({err})") from err
    return LoadedArray.from_numpy(
        values, dimension_names=names, attributes=attributes, fill_value=fill
    )


# ---- the parser -------------------------------------------------------------------------


def _root_members(file: HDF4File) -> list[tuple[int, int]]:
    """The members of the SD interface's ``CDF0.0`` Vgroup (or every Var0.0 and attribute).

    Without that Vgroup the HDF4 library reads the file's data sets from the groups of
    the older DFSD interface (``hdf_read_sds_cdf``), which vz does not read: a file
    holding such groups is refused rather than read as missing its data sets.
    """
    roots = [g for g in file.vgroups.values() if g.class_name == "CDF0.0"]
    if roots:
        return list(roots[0].members)
    old = int(np.isin(file.reader.table["tag"], (TAG_SDG, TAG_NDG)).sum())
    if old:
        raise HDF4UnsupportedError(
            f"{file.url}: the file's data sets were written by the old DFSD interface "
            f"({old} SDG/NDG groups, no SD interface CDF0.0 Vgroup), which vz does not "
            "read yet; the HDF4 library (pyhdf) reads them"
        )
    members = [(TAG_VG, ref) for ref, g in file.vgroups.items() if g.class_name == "Var0.0"]
    return members


@attrs.frozen(kw_only=True)
class HDF4Parser:
    """Parser for HDF4 files (the SD interface's data sets, and HDF-EOS2), by ranged reads.

    Attributes
    ----------
    drop_variables
        Names of data sets to leave out.
    loadable_variables
        Names of data sets to read into memory (any layout; the only way to open data in
        separate linked blocks).
    """

    drop_variables: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    loadable_variables: tuple[str, ...] = attrs.field(default=(), converter=tuple)

    priority = -38

    @classmethod
    def can_open(cls, probe: Probe) -> bool:
        """The HDF4 magic number ``0e 03 13 01``."""
        head = probe.head
        return head is not None and head[:4] == HDF4_MAGIC

    def __call__(self, url: str, registry: ObjectStoreRegistry) -> VirtualGroup:
        """Build the virtual group of one HDF4 file.

        Parameters
        ----------
        url
            The file's URL; it must lie under one of ``registry``'s prefixes.
        registry
            Where the file is read from (ranged reads of its descriptors and headers).

        Returns
        -------
        VirtualGroup
            One array per data set (dimension scales as coordinate arrays named by their
            dimension), the file attributes, and the file's fingerprint.

        Raises
        ------
        HDF4FormatError
            If the file is not HDF4, or is truncated or corrupt.
        HDF4UnsupportedError
            If a data set is stored in a way vz cannot reference and is not loadable.
        """
        file = source(registry, url)
        try:
            return self._parse(file, registry)
        except SourceReadError:
            raise
        except HDF4FormatError as err:
            if str(err).startswith(file.url):
                raise
            raise type(err)(f"{file.url}: {err}") from err
        except VirtualizationError as err:
            raise HDF4FormatError(f"{file.url}: {err}") from err

    def _parse(self, source_file: Source, registry: ObjectStoreRegistry) -> VirtualGroup:
        seen = source_file.fingerprint()
        size = seen.size if seen.size is not None else source_file.size()
        # Tags, chunk tables and attributes are small reads scattered through the file.
        file = HDF4File(source_file.cached(size=size), size)
        members = _root_members(file)
        has_root = any(g.class_name == "CDF0.0" for g in file.vgroups.values())
        table = dimension_table(file, members) if has_root else None
        attributes = _attributes(file, members, "global ")
        eos_dims = eos_dimension_names(struct_metadata(attributes))
        arrays: dict[str, AnyArray] = {}
        for tag, ref in members:
            group = file.vgroups.get(ref) if tag == TAG_VG else None
            if group is None or group.class_name != "Var0.0" or group.name in self.drop_variables:
                continue
            dataset = _dataset(file, group, table)
            if dataset.is_coordinate and dataset.data is None:
                continue  # a dimension with attributes but no scale values
            names = eos_dims.get(dataset.name, dataset.dimension_names)
            if len(names) != len(dataset.shape):
                names = dataset.dimension_names
            if dataset.name in arrays:
                raise HDF4UnsupportedError(
                    f"two data sets are named {dataset.name!r}; drop one (drop_variables=)"
                )
            if dataset.name in self.loadable_variables:
                arrays[dataset.name] = _loaded_array(file, dataset, names, registry)
            else:
                arrays[dataset.name] = _virtual_array(file, dataset, names)
        return VirtualGroup(arrays=arrays, attributes=attributes, sources={source_file.url: seen})
