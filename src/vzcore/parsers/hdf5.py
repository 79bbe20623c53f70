"""`HDFParser`: netCDF4 and plain HDF5 files as virtual groups, read with h5py.

Chunk locations come from HDF5's own chunk index, read in bulk (`chunk_iter`),
then turned into the manifest with numpy. Local files are opened by path; any
other store through a buffered file-like object over the registry's ranged reads.
"""

from __future__ import annotations

import io
import math
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import numpy as np
import pyarrow as pa

from vzcore._frozen import freeze_json
from vzcore.array import AnyArray, LoadedArray, VirtualArray
from vzcore.errors import VirtualizationError
from vzcore.group import VirtualGroup
from vzcore.manifest import ChunkManifest
from vzcore.metadata import ArrayMetadata
from vzcore.parsers.hdf5_filters import HDF5UnsupportedError, codecs_for_filters
from vzcore.parsers.protocol import Probe
from vzcore.registry import ByteRangeReader, ObjectStoreRegistry, fingerprint, object_size

__all__ = ["HDF5FormatError", "HDF5GroupError", "HDF5UnsupportedError", "HDFParser"]

# Attributes that describe HDF5/netCDF-4 plumbing, not the data.
_INTERNAL_ATTRIBUTES = frozenset(
    {
        "CLASS",
        "DIMENSION_LIST",
        "NAME",
        "REFERENCE_LIST",
        "_Netcdf4Dimid",
        "_Netcdf4Coordinates",
        "_nc3_strict",
        "_NCProperties",
        "_SuperblockVersion",
        "_IsNetcdf4",
    }
)
_NETCDF_DIMENSION_ONLY = b"This is a netCDF dimension but not a netCDF variable"
_SKIP = object()


class HDF5FormatError(VirtualizationError):
    """The file is not readable as HDF5 (corrupt, truncated, or another format)."""


class HDF5GroupError(VirtualizationError):
    """The ``group=`` path is missing from the file or names something else than a group."""


class _RangeFile(io.RawIOBase):
    """A seekable raw file over ranged reads of one object, for h5py."""

    def __init__(self, reader: ByteRangeReader, path: str, size: int) -> None:
        self._reader, self._path, self._size, self._position = reader, path, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(base + offset, 0)
        return self._position

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self._size - self._position)
        if count <= 0:
            return 0
        start = self._position
        data = self._reader.get_ranges(self._path, starts=[start], ends=[start + count])[0]
        memoryview(buffer).cast("B")[:count] = data
        self._position += count
        return count


@contextmanager
def _open_file(reader: ByteRangeReader, path: str, url: str) -> Iterator[Any]:
    import h5py

    local_path = getattr(reader, "local_path", lambda _: None)(path)
    try:
        if local_path is not None:
            handle = h5py.File(local_path, "r")
        else:
            raw = _RangeFile(reader, path, object_size(reader, path))
            handle = h5py.File(io.BufferedReader(raw, buffer_size=1 << 20), "r")
    except (OSError, ValueError) as err:
        raise HDF5FormatError(f"{url}: not a readable HDF5/netCDF4 file: {err}") from err
    try:
        yield handle
    finally:
        handle.close()


@attrs.frozen
class HDFParser:
    """Parser for netCDF4 and HDF5 files.

    Attributes
    ----------
    group
        Path of the group to read (``"/a/b"``); the root by default.
    drop_variables
        Datasets left out (by name, in any group).
    inline_threshold
        Datasets whose stored size is at most this many bytes are read into
        memory as `LoadedArray` instead of being referenced.

    Examples
    --------
    >>> HDFParser(group="/forecast").group
    '/forecast'
    """

    group: str | None = None
    drop_variables: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    inline_threshold: int = 0

    priority = -60  # last of the built-ins: a user block past the probe's head costs reads

    @classmethod
    def can_open(cls, probe: Probe) -> bool:
        """An HDF5 superblock signature at byte 0, 512, 1024, 2048, ... (after a user block)."""
        signature = b"\x89HDF\r\n\x1a\n"
        if probe.head is None:
            return False
        offset, size = 0, probe.size or 0
        while offset + len(signature) <= size:
            if probe.read_range(offset, offset + len(signature)) == signature:
                return True
            offset = max(512, 2 * offset)
        return False

    def __call__(self, url: str, registry: ObjectStoreRegistry) -> VirtualGroup:
        reader, path = registry.resolve(url)
        with _open_file(reader, path, url) as handle:
            root = _root_group(handle, self.group, url)
            phony = _PhonyDimensions()
            try:
                group = self._group(root, url, phony)
            except (OSError, RuntimeError, KeyError) as err:
                raise HDF5FormatError(f"{url}: cannot read the HDF5 structure: {err}") from err
        return group.evolve(sources={url: fingerprint(reader, path)})

    def _group(self, h5group: Any, url: str, phony: _PhonyDimensions) -> VirtualGroup:
        import h5py

        arrays: dict[str, AnyArray] = {}
        groups: dict[str, VirtualGroup] = {}
        for name in h5group:
            if name in self.drop_variables:
                continue
            node = h5group.get(name)
            if isinstance(node, h5py.Group):
                groups[name] = self._group(node, url, phony)
            elif isinstance(node, h5py.Dataset):
                array = self._array(node, url, phony)
                if array is not None:
                    arrays[name] = array
        return VirtualGroup(arrays=arrays, groups=groups, attributes=_attributes(h5group.attrs))

    def _array(self, dataset: Any, url: str, phony: _PhonyDimensions) -> AnyArray | None:
        import h5py

        where = f"{url}: variable {dataset.name!r}"
        if dataset.attrs.get("NAME", b"")[: len(_NETCDF_DIMENSION_ONLY)] == _NETCDF_DIMENSION_ONLY:
            return None
        dims, dimension_lengths = _dimensions(dataset, phony)
        attributes = _attributes(dataset.attrs)
        plist = dataset.id.get_create_plist()
        layout = plist.get_layout()
        if h5py.check_string_dtype(dataset.dtype) is not None or dataset.dtype.kind == "S":
            return _loaded_strings(dataset, dims, attributes, where)
        _check_type(dataset.dtype, where)
        if layout == h5py.h5d.VIRTUAL or plist.get_external_count() > 0:
            raise HDF5UnsupportedError(
                f"{where}: virtual or external HDF5 storage is not supported"
            )
        fill_value = _fill_value(dataset, attributes)
        if layout == h5py.h5d.COMPACT or (
            self.inline_threshold and dataset.id.get_storage_size() <= self.inline_threshold
        ):
            return _loaded(dataset, dims, attributes, fill_value)
        filters = [plist.get_filter(i) for i in range(plist.get_nfilters())]
        chunk_shape = dataset.chunks or tuple(max(s, 1) for s in dataset.shape)
        # A netCDF variable may stop short of its unlimited dimension: it reads as
        # fill values there, so the array takes the dimension's length.
        shape = tuple(
            full if maximum is None else length
            for length, full, maximum in zip(
                dataset.shape, dimension_lengths, dataset.maxshape or dataset.shape, strict=True
            )
        )
        if layout == h5py.h5d.CHUNKED and not filters:
            chunk_shape = _prefix_chunk_shape(shape, chunk_shape)
        metadata = ArrayMetadata.create(
            shape=shape,
            chunk_shape=chunk_shape,
            dtype=dataset.dtype,
            fill_value=fill_value,
            codecs=codecs_for_filters(filters, dataset.dtype, where=where),
            dimension_names=dims,
            attributes=attributes,
        )
        if layout == h5py.h5d.CHUNKED:
            manifest = _chunked_manifest(dataset, metadata, url, where)
        else:
            manifest = _contiguous_manifest(dataset, metadata, url)
        return VirtualArray(metadata, manifest)


def _prefix_chunk_shape(shape: tuple[int, ...], chunk_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The chunk shape trimmed to the array where the kept bytes are a prefix of each chunk.

    HDF5 sizes the chunks of an unlimited dimension for growth (1024 steps for an
    array of 10), and zarr allows a partial chunk only at the end of a
    concatenation. An unfiltered chunk is stored whole in C order, so an axis whose
    single chunk is longer than the array can be cut to the array's length exactly
    when every axis before it has chunk length 1 (after trimming): the first
    ``prod(trimmed)`` elements are then the array's. Other axes are left as stored.

    >>> _prefix_chunk_shape((10, 3, 4), (1024, 3, 4))
    (10, 3, 4)
    >>> _prefix_chunk_shape((1, 10), (1024, 1024))
    (1, 10)
    >>> _prefix_chunk_shape((10, 6), (1024, 8))  # the second axis' cut is not a prefix
    (10, 8)
    """
    trimmed: list[int] = []
    leading_ones = True
    for length, chunk in zip(shape, chunk_shape, strict=True):
        if leading_ones and 0 < length < chunk:
            chunk = length
        trimmed.append(chunk)
        leading_ones = leading_ones and chunk == 1
    return tuple(trimmed)


def _root_group(handle: Any, group: str | None, url: str) -> Any:
    """The h5py group ``group`` names (the file's root when None), or a typed error."""
    import h5py

    if not group:
        return handle
    try:
        node = handle[group]
    except KeyError as err:
        raise HDF5GroupError(f"{url}: no group {group!r}") from err
    if not isinstance(node, h5py.Group):
        kind = "a dataset" if isinstance(node, h5py.Dataset) else f"a {type(node).__name__}"
        parent = posixpath.dirname(node.name.rstrip("/")) or "/"
        raise HDF5GroupError(
            f"{url}: {group!r} is {kind}, not a group; group= names the group whose "
            f"datasets become the variables (here {parent!r})"
        )
    return node


class _PhonyDimensions:
    """Names for axes without a dimension scale, as netCDF-C gives them.

    One name per distinct length in the file; a dataset using a length twice gets
    the next name of that length for its second axis.
    """

    def __init__(self) -> None:
        self._names: dict[tuple[int, int], str] = {}

    def name(self, length: int, occurrence: int) -> str:
        return self._names.setdefault((length, occurrence), f"phony_dim_{len(self._names)}")


def _dimensions(dataset: Any, phony: _PhonyDimensions) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Dimension names, and each dimension's length (a scale may be longer than the data)."""
    names: list[str] = []
    lengths: list[int] = []
    seen: dict[int, int] = {}
    for axis, length in enumerate(dataset.shape):
        scales = dataset.dims[axis]
        if len(scales):
            scale = scales[0]
            names.append(posixpath.basename(scale.name))
            lengths.append(max(length, scale.shape[0] if scale.shape else length))
        elif axis == 0 and dataset.is_scale:
            names.append(posixpath.basename(dataset.name))
            lengths.append(length)
        else:
            occurrence = seen.get(length, 0)
            seen[length] = occurrence + 1
            names.append(phony.name(length, occurrence))
            lengths.append(length)
    return tuple(names), tuple(lengths)


def _check_type(dtype: np.dtype[Any], where: str) -> None:
    if dtype.kind in "biufcmM":
        return
    kind = (
        "compound"
        if dtype.names
        else {"O": "reference or variable-length", "V": "opaque"}.get(dtype.kind, str(dtype))
    )
    raise HDF5UnsupportedError(
        f"{where}: HDF5 {kind} type {dtype} cannot be virtualized; drop it (drop_variables=)"
    )


def _fill_value(dataset: Any, attributes: dict[str, Any]) -> object:
    value = attributes.get("_FillValue")
    if value is None:
        value = dataset.fillvalue
    if isinstance(value, list):
        value = value[0] if value else None
    return value


def _loaded(
    dataset: Any, dims: tuple[str, ...], attributes: dict[str, Any], fill_value: object
) -> LoadedArray:
    values = np.asarray(dataset[()])
    return LoadedArray.from_numpy(
        values.astype(values.dtype.newbyteorder("="), copy=False),
        dimension_names=dims,
        attributes=attributes,
        fill_value=fill_value,
    )


def _loaded_strings(
    dataset: Any, dims: tuple[str, ...], attributes: dict[str, Any], where: str
) -> LoadedArray:
    """Fixed-length bytes stay bytes (xarray joins netCDF char arrays); others become str."""
    import h5py

    try:
        if dataset.dtype.kind == "S":
            values = np.asarray(dataset[()])
        else:
            info = h5py.check_string_dtype(dataset.dtype)
            raw = np.asarray(dataset.asstr()[()] if info is not None else dataset[()], dtype=object)
            values = np.asarray(raw.tolist(), dtype=str).reshape(raw.shape)
    except (OSError, ValueError, TypeError) as err:
        raise HDF5UnsupportedError(f"{where}: cannot read string values: {err}") from err
    attributes.pop("_FillValue", None)
    return LoadedArray.from_numpy(values, dimension_names=dims, attributes=attributes)


def _contiguous_manifest(dataset: Any, metadata: ArrayMetadata, url: str) -> ChunkManifest:
    grid = metadata.grid_shape
    offset = dataset.id.get_offset()
    if offset is None or 0 in grid:
        return ChunkManifest.empty(grid)
    n_chunks = int(np.prod(grid))
    return ChunkManifest.from_numpy_columns(
        grid,
        dictionary=pa.array([url], pa.string()),
        indices=np.zeros(n_chunks, dtype=np.int32),
        offsets=np.full(n_chunks, offset, dtype=np.uint64),
        lengths=np.full(n_chunks, dataset.id.get_storage_size(), dtype=np.uint64),
    )


def _chunked_manifest(dataset: Any, metadata: ArrayMetadata, url: str, where: str) -> ChunkManifest:
    grid = metadata.grid_shape
    if 0 in grid or dataset.id.get_storage_size() == 0:
        return ChunkManifest.empty(grid)
    infos: list[Any] = []
    dataset.id.chunk_iter(infos.append)
    count, ndim = len(infos), len(grid)
    # StoreInfo is (chunk_offset, filter_mask, byte_offset, size): one C-level transpose.
    chunk_starts, filter_masks, byte_offsets, sizes = (
        zip(*infos, strict=True) if infos else ((),) * 4
    )
    if any(filter_masks):
        raise HDF5UnsupportedError(
            f"{where}: some chunks skip filters of the pipeline (HDF5 filter mask); "
            "zarr needs one codec pipeline for every chunk"
        )
    starts = np.array(chunk_starts, dtype=np.int64).reshape(count, ndim)
    stored_chunks = dataset.chunks or metadata.chunk_shape
    coords = starts // np.asarray(stored_chunks, dtype=np.int64)
    rows = np.ravel_multi_index(tuple(coords.T), grid) if ndim else np.zeros(count, np.int64)
    n_chunks = int(np.prod(grid))
    indices = np.full(n_chunks, -1, dtype=np.int32)
    offsets = np.zeros(n_chunks, dtype=np.uint64)
    lengths = np.zeros(n_chunks, dtype=np.uint64)
    indices[rows] = 0
    offsets[rows] = np.array(byte_offsets, dtype=np.uint64)
    if tuple(metadata.chunk_shape) == tuple(stored_chunks):
        lengths[rows] = np.array(sizes, dtype=np.uint64)
    else:
        # Trimmed unfiltered chunks (`_prefix_chunk_shape`): the first bytes of each.
        lengths[rows] = math.prod(metadata.chunk_shape) * dataset.dtype.itemsize
    return ChunkManifest.from_numpy_columns(
        grid,
        dictionary=pa.array([url], pa.string()),
        indices=indices,
        offsets=offsets,
        lengths=lengths,
    )


def _attributes(attrs: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name in attrs:
        if name in _INTERNAL_ATTRIBUTES:
            continue
        try:
            value = _attribute_value(attrs[name])
            freeze_json(value)
        except (OSError, TypeError, ValueError):
            continue  # unreadable or unrepresentable attribute types are left out
        if value is not _SKIP:
            result[name] = value
    return result


def _attribute_value(value: Any) -> Any:
    import h5py

    if isinstance(value, h5py.Empty):
        return None
    if isinstance(value, bytes | np.bytes_):
        return value.decode("utf-8", "replace")
    if isinstance(value, h5py.Reference | h5py.RegionReference):
        return _SKIP
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O" or value.dtype.kind == "S":
            items = [_attribute_value(v) for v in value.ravel().tolist()]
            return items[0] if value.size == 1 else items
        if value.dtype.names or value.dtype.kind == "V":
            return _SKIP
        return value.ravel()[0].item() if value.size == 1 else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
