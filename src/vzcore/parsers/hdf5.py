"""`HDFParser`: netCDF4 and plain HDF5 files as virtual groups, read with h5py.

Chunk locations come from HDF5's own chunk index, read directly from the file's bytes
and decoded with numpy (`vzcore.parsers.hdf5_index`); an index that module does not
read is listed by h5py (`chunk_iter`). Either way the manifest is built with numpy. Local files are opened by path; any
other store through a buffered file-like object over the registry's ranged reads.
The walk never leaves the file (`vzcore.parsers.hdf5_links`): external links,
virtual datasets and external raw storage are refused or, on request, left out.
"""

from __future__ import annotations

import math
import os
import posixpath
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, NamedTuple

import attrs
import numpy as np
import pyarrow as pa

from vzcore._frozen import freeze_json
from vzcore.array import AnyArray, LoadedArray, VirtualArray
from vzcore.byteranges import (
    RangeFile,
    Source,
    SourceReadError,
    open_file,
    reraise_source_error,
    source,
)
from vzcore.errors import InvalidMetadataError, VirtualizationError
from vzcore.group import VirtualGroup
from vzcore.manifest import ChunkManifest
from vzcore.metadata import ArrayMetadata, checked_grid
from vzcore.parsers.hdf5_filters import HDF5UnsupportedError, codecs_for_filters
from vzcore.parsers.hdf5_heap import HeapChecker
from vzcore.parsers.hdf5_index import (
    HDF5IndexError,
    chunk_iter_locations,
    chunk_locations,
    v1_btree_locations,
)
from vzcore.parsers.hdf5_layout import header_address
from vzcore.parsers.hdf5_links import (
    MAX_GROUP_DEPTH,
    MAX_MEMBERS,
    ExternalLinkError,
    ExternalLinks,
    ExternalStorageError,
    HDF5LimitError,
    LinkCycleError,
    SkippedLinkWarning,
    VirtualDatasetError,
    Walker,
    object_address,
    outside_storage,
    refuse_storage,
)
from vzcore.parsers.hdf5_types import (
    ElementType,
    element_type,
    load_references,
    load_strings,
    load_values,
    loadable_dtype,
)
from vzcore.parsers.protocol import Probe
from vzcore.registry import ObjectStoreRegistry

__all__ = [
    "ExternalLinkError",
    "ExternalStorageError",
    "HDF5FormatError",
    "HDF5GroupError",
    "HDF5IndexError",
    "HDF5LimitError",
    "HDF5UnsupportedError",
    "HDFParser",
    "LinkCycleError",
    "SkippedLinkWarning",
    "VirtualDatasetError",
]

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
# What h5py raises on a damaged file: HDF5 errors are OSError/RuntimeError/KeyError, and
# some lookups (dimension scales, datatypes, garbage chunk indexes) fail with ValueError,
# TypeError, IndexError or OverflowError.
_H5PY_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError, OverflowError)

# h5py runs every call behind one process-wide lock, taken and released per call.
# Threads parsing local files (CPU only) interleave their many small h5py calls and
# convoy on that lock and the GIL (2 threads: 1.4x slower than one); one local parse
# at a time keeps the rest of their work (xarray, Arrow) overlapping. Remote files
# are not held to it: their reads wait on the network.
_LOCAL_PARSE = threading.RLock()


def _new_parse_lock() -> None:
    # A child forked while another thread parsed would inherit the lock held.
    global _LOCAL_PARSE
    _LOCAL_PARSE = threading.RLock()


os.register_at_fork(after_in_child=_new_parse_lock)

_HEAD_BLOCK = 1 << 20
"""A remote file's first MiB comes with its first read (metadata is mostly at the start)."""


class HDF5FormatError(VirtualizationError):
    """The file is not readable as HDF5 (corrupt, truncated, or another format)."""


class HDF5GroupError(VirtualizationError):
    """The ``group=`` path is missing from the file or names something else than a group."""


@contextmanager
def _open_file(file: Source, size: int | None) -> Iterator[tuple[Any, str | RangeFile]]:
    """The h5py file, and what it reads: the local path, or the `RangeFile` of the source."""
    import h5py

    try:
        opened = open_file(file, size=size, head_block=_HEAD_BLOCK)
        if not isinstance(opened, str):  # a RangeFile: fetch before h5py takes its global lock
            opened.ranges([0], [1])
        handle = h5py.File(opened, "r")
    except SourceReadError:
        raise
    except (OSError, ValueError) as err:
        reraise_source_error(err)
        raise HDF5FormatError(f"{file.url}: not a readable HDF5/netCDF4 file: {err}") from err
    try:
        yield handle, opened
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
        Datasets left out: by name in any group, or by full path (``"/a/x"``).
    loadable_variables
        Datasets read into memory when their type cannot be referenced (variable-length
        strings, object references, compounds zarr's struct cannot lay out): by name
        or full path. None (the default) loads the dimension coordinates only, as
        `vzxarray.open_virtual_dataset` does; `vzxarray.open_virtual_dataset` passes
        its own ``loadable_variables`` on.
    inline_threshold
        Datasets whose stored size is at most this many bytes are read into
        memory as `LoadedArray` instead of being referenced.
    external_links
        What to do with members whose values are in other files, which vz never
        opens: external links, virtual datasets and external raw storage.
        ``"error"`` (the default) raises `ExternalLinkError`, `VirtualDatasetError`
        or `ExternalStorageError`; ``"skip"`` leaves them out with a
        `SkippedLinkWarning`. Soft and hard links inside the file are followed (a
        member linked under two names appears under both); a link back to an
        enclosing group raises `LinkCycleError`, and a dangling soft link is left
        out with a `SkippedLinkWarning`.
    load_dimension_coordinates
        Read 1-d datasets named like their dimension into memory (`LoadedArray`) while
        the file is open, instead of referencing them: the coordinates
        `vzxarray.open_virtual_dataset` loads by default, without a second read
        through the registry. It passes True when it is given no ``loadable_variables``.
        A coordinate h5py cannot read is referenced as usual.
    direct_index
        Read the chunk index of datasets of many chunks from the file's bytes with
        numpy (`vzcore.parsers.hdf5_index`), much faster than h5py's ``chunk_iter``;
        an index that module does not read still goes to ``chunk_iter``. False:
        always ``chunk_iter``.

    Examples
    --------
    >>> HDFParser(group="/forecast").group
    '/forecast'
    """

    group: str | None = None
    drop_variables: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    loadable_variables: tuple[str, ...] | None = attrs.field(
        default=None, converter=attrs.converters.optional(tuple)
    )
    inline_threshold: int = 0
    external_links: ExternalLinks = attrs.field(
        default="error", validator=attrs.validators.in_(("error", "skip"))
    )
    direct_index: bool = True
    load_dimension_coordinates: bool = False

    priority = -60  # last of the built-ins: a user block past the probe's head costs reads

    @classmethod
    def can_open(cls, probe: Probe) -> bool:
        """An HDF5 superblock signature at byte 0, 512, 1024, 2048, ... (after a user block)."""
        signature = b"\x89HDF\r\n\x1a\n"
        if probe.head is None:
            return False
        if probe.head.startswith(signature):
            return True  # no user block: the size (maybe a request) is not needed
        offset, size = 0, probe.size or 0
        while offset + len(signature) <= size:
            if probe.read_range(offset, offset + len(signature)) == signature:
                return True
            offset = max(512, 2 * offset)
        return False

    def __call__(self, url: str, registry: ObjectStoreRegistry) -> VirtualGroup:
        file = source(registry, url)
        url = file.url
        seen = file.fingerprint()
        local = file.local_path() is not None
        with (
            _LOCAL_PARSE if local else nullcontext(),
            _open_file(file, seen.size) as (handle, opened),
            HeapChecker(handle, file, seen.size, opened) as heaps,
        ):
            try:
                walk = _Walk(
                    url=url,
                    links=Walker(handle, url, self.external_links),
                    file=file,
                    size=seen.size,
                    direct_index=self.direct_index,
                    heaps=heaps,
                )
                path, root = _root_group(walk.links, self.group, url)
                ancestors = {object_address(root): path}
            except VirtualizationError:
                raise
            except _H5PY_ERRORS as err:
                reraise_source_error(err)
                message = f"{url}: cannot open group {self.group or '/'!r}: {err}"
                raise HDF5FormatError(message) from err
            tree = self._group(root, path, walk, ancestors)
        return tree.group.evolve(sources={url: seen})

    def _group(self, h5group: Any, path: str, walk: _Walk, ancestors: dict[int, str]) -> _Tree:
        """The group at ``path``, how many arrays and groups its tree holds, how deep it is.

        ``ancestors`` maps the address of each group from the walk's root down to this
        one to its path: a member group found there is a cycle.
        """
        import h5py

        url = walk.url
        arrays: dict[str, AnyArray] = {}
        groups: dict[str, VirtualGroup] = {}
        try:
            members = walk.links.members(h5group, path, self._wanted)
            # The last of the ancestors is this group.
            walk.heaps.check_attribute_heaps(next(reversed(ancestors)), f"{url}: group {path!r}")
            attributes = _attributes(h5group.attrs)
        except VirtualizationError:
            raise
        except UnicodeDecodeError as err:
            raise HDF5FormatError(
                f"{url}: group {path!r} has a member whose name is not text: {err.object!r}"
            ) from err
        except _H5PY_ERRORS as err:
            reraise_source_error(err)
            raise HDF5FormatError(f"{url}: cannot read group {path!r}: {err}") from err
        count = height = 0
        for member in members:
            node = member.node
            if isinstance(node, h5py.Group):
                sub = self._subgroup(node, member.path, walk, ancestors)
                groups[member.name] = sub.group
                count += 1 + sub.size
                height = max(height, 1 + sub.height)
            elif isinstance(node, h5py.Dataset):
                where = f"{url}: variable {member.path!r}"
                try:
                    array = self._array(node, member.path, where, walk, member.address)
                except VirtualizationError:
                    raise
                except _H5PY_ERRORS as err:
                    reraise_source_error(err)
                    raise HDF5FormatError(f"{where}: cannot read the dataset: {err}") from err
                if array is not None:
                    arrays[member.name] = array
                    count += 1
            if count > MAX_MEMBERS:
                raise HDF5LimitError(
                    f"{url}: group {path!r} holds more than {MAX_MEMBERS} arrays and groups "
                    "(counting each name a shared group is linked under); vz reads no more",
                    url=url,
                    path=path,
                    limit=MAX_MEMBERS,
                )
        try:
            group = VirtualGroup(arrays=arrays, groups=groups, attributes=attributes)
        except VirtualizationError as err:
            raise HDF5FormatError(f"{url}: group {path!r}: {err}") from err
        return _Tree(group, count, height)

    def _subgroup(self, node: Any, path: str, walk: _Walk, ancestors: dict[int, str]) -> _Tree:
        """A member group, walked once however many names link to it (and never in a cycle)."""
        url = walk.url
        try:
            address = object_address(node)
        except _H5PY_ERRORS as err:
            reraise_source_error(err)
            raise HDF5FormatError(f"{url}: cannot read group {path!r}: {err}") from err
        if address in ancestors:
            raise LinkCycleError(
                f"{url}: {path!r} links back to {ancestors[address]!r}, a group that contains "
                "it, so the group tree would be infinite; drop it (drop_variables=)",
                url=url,
                link=path,
                target=ancestors[address],
            )
        # The same group under another name is the same value, unless a drop or a load
        # names a path inside it.
        key = (address, self._paths_below(path))
        tree = walk.groups.get(key)
        # len(ancestors) is this group's depth below the walk's root; a group walked
        # before brings its own height.
        if len(ancestors) + (0 if tree is None else tree.height) > MAX_GROUP_DEPTH:
            raise HDF5LimitError(
                f"{url}: group {path!r} is, or holds groups, nested more than "
                f"{MAX_GROUP_DEPTH} groups deep; vz reads no deeper",
                url=url,
                path=path,
                limit=MAX_GROUP_DEPTH,
            )
        if tree is None:
            tree = walk.groups[key] = self._group(node, path, walk, {**ancestors, address: path})
        return tree

    def _wanted(self, name: str, path: str) -> bool:
        return not _named(name, path, self.drop_variables)

    def _paths_below(self, path: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The dropped and the loaded paths inside the group at ``path``, relative to it."""
        prefix = path.rstrip("/") + "/"

        def below(names: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(sorted(p[len(prefix) :] for p in names if p.startswith(prefix)))

        return below(self.drop_variables), below(self.loadable_variables or ())

    def _loads(self, dataset: Any, path: str) -> bool:
        """Whether the caller asked to load ``dataset`` (by default: a dimension coordinate)."""
        if self.loadable_variables is None:
            return bool(dataset.is_scale and dataset.ndim == 1)
        return _named(posixpath.basename(path), path, self.loadable_variables)

    def _array(
        self, dataset: Any, path: str, where: str, walk: _Walk, address: int | None
    ) -> AnyArray | None:
        """The array of ``dataset``, whose object header is at ``address`` (None: ask h5py)."""
        import h5py

        # Before anything reads values: those of these datasets are in other files.
        outside = outside_storage(dataset, walk.url, path)
        if outside is not None:
            refuse_storage(outside, self.external_links)
            return None
        # Before h5py reads an attribute (the dimension list, strings): a corrupt heap loops it.
        address = header_address(dataset) if address is None else address
        walk.heaps.check_attribute_heaps(address, where)
        if dataset.attrs.get("NAME", b"")[: len(_NETCDF_DIMENSION_ONLY)] == _NETCDF_DIMENSION_ONLY:
            return None
        element = element_type(dataset, where)
        dims, dimension_lengths = _dimensions(
            dataset, posixpath.basename(path), walk.phony, element.extra_shape, where
        )
        attributes = _attributes(dataset.attrs)
        if element.loader == "fixed_strings":
            return load_strings(dataset, dims, attributes, where)
        if element.loader is not None:
            if not self._loads(dataset, path):
                raise HDF5UnsupportedError(
                    f"{where}: {element.refusal}; pass it in loadable_variables= to read "
                    "it into memory, or drop it (drop_variables=)"
                )
            load = load_strings if element.loader == "strings" else load_references
            return load(dataset, dims, attributes, where)
        plist = dataset.id.get_create_plist()
        layout = plist.get_layout()
        try:
            fill_value = _fill_value(dataset, plist, attributes, where)
        except HDF5UnsupportedError:
            if not self._loads(dataset, path):
                raise
            return self._load(dataset, dims, attributes, None, where)
        if (
            self.load_dimension_coordinates
            and dims == (posixpath.basename(path),)
            and not element.extra_shape
        ):
            coordinate = self._coordinate(dataset, dims, attributes, fill_value)
            if coordinate is not None:
                return coordinate
        if layout == h5py.h5d.COMPACT or (
            self.inline_threshold and dataset.id.get_storage_size() <= self.inline_threshold
        ):
            return self._load(dataset, dims, attributes, fill_value, where)
        try:
            metadata = _metadata(
                dataset, plist, element, where, dims, dimension_lengths, fill_value, attributes
            )
        except InvalidMetadataError as err:
            if self._loads(dataset, path):
                return self._load(dataset, dims, attributes, fill_value, where)
            hint = (
                "pass it in loadable_variables= to read it into memory, or drop it"
                if loadable_dtype(dataset.dtype)
                else "drop it"
            )
            raise HDF5UnsupportedError(f"{where}: {err}; {hint} (drop_variables=)") from err
        if layout == h5py.h5d.CHUNKED:
            manifest = _chunked_manifest(dataset, address, metadata, walk, where)
        else:
            manifest = _contiguous_manifest(dataset, metadata, walk.url, where)
        return VirtualArray(metadata, manifest)

    def _coordinate(
        self, dataset: Any, dims: tuple[str, ...], attributes: dict[str, Any], fill_value: object
    ) -> LoadedArray | None:
        """A dimension coordinate's values, or None to reference it (h5py cannot read it)."""
        try:
            return load_values(dataset, dims, attributes, fill_value)
        except (*_H5PY_ERRORS, InvalidMetadataError):
            return None

    def _load(
        self,
        dataset: Any,
        dims: tuple[str, ...],
        attributes: dict[str, Any],
        fill_value: object,
        where: str,
    ) -> LoadedArray:
        try:
            return load_values(dataset, dims, attributes, fill_value)
        except InvalidMetadataError as err:
            raise HDF5UnsupportedError(
                f"{where}: HDF5 type {dataset.dtype} can be neither virtualized nor loaded: "
                f"{err}; drop it (drop_variables=)"
            ) from err


def _metadata(
    dataset: Any,
    plist: Any,
    element: ElementType,
    where: str,
    dims: tuple[str, ...],
    dimension_lengths: tuple[int, ...],
    fill_value: object,
    attributes: dict[str, Any],
) -> ArrayMetadata:
    """Shape, chunks, type, codecs, fill value and attributes of a referenced dataset."""
    import h5py

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
    if plist.get_layout() == h5py.h5d.CHUNKED and not filters:
        chunk_shape = _prefix_chunk_shape(shape, chunk_shape)
    return ArrayMetadata.create(
        # An HDF5 array datatype's axes follow the dataspace's, whole in every chunk.
        shape=shape + element.extra_shape,
        chunk_shape=tuple(chunk_shape) + element.extra_shape,
        dtype=element.dtype,
        codecs=codecs_for_filters(filters, dataset.dtype, where=where),
        dimension_names=dims,
        fill_value=fill_value,
        attributes=attributes,
    )


def _named(name: str, path: str, names: tuple[str, ...]) -> bool:
    """Whether ``names`` lists a member by its name or by its full path."""
    return name in names or path in names


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


def _root_group(links: Walker, group: str | None, url: str) -> tuple[str, Any]:
    """The path and h5py group ``group`` names (the file's root when None), or a typed error."""
    import h5py

    try:
        path, node = links.open_path(group or "/")
    except KeyError as err:
        raise HDF5GroupError(f"{url}: no group {group!r}") from err
    if not isinstance(node, h5py.Group):
        kind = "a dataset" if isinstance(node, h5py.Dataset) else f"a {type(node).__name__}"
        parent = posixpath.dirname(path) or "/"
        raise HDF5GroupError(
            f"{url}: {group!r} is {kind}, not a group; group= names the group whose "
            f"datasets become the variables (here {parent!r})"
        )
    return path, node


class _PhonyDimensions:
    """Names for axes without a dimension scale, as netCDF-C gives them.

    One name per distinct length in the file; a dataset using a length twice gets
    the next name of that length for its second axis.
    """

    def __init__(self) -> None:
        self._names: dict[tuple[int, int], str] = {}

    def name(self, length: int, occurrence: int) -> str:
        return self._names.setdefault((length, occurrence), f"phony_dim_{len(self._names)}")


class _Tree(NamedTuple):
    """A walked group, the arrays and groups its tree holds, and its height (0: no subgroups)."""

    group: VirtualGroup
    size: int
    height: int


@attrs.define
class _Walk:
    """What one parse carries through the file: its URL, its links, the names given so far."""

    url: str
    links: Walker
    file: Source
    size: int | None
    direct_index: bool
    heaps: HeapChecker
    phony: _PhonyDimensions = attrs.Factory(_PhonyDimensions)
    # (address, paths dropped/loaded below) -> the group and the size of its tree.
    groups: dict[tuple[int, tuple[tuple[str, ...], tuple[str, ...]]], _Tree] = attrs.Factory(dict)


def _dimensions(
    dataset: Any, name: str, phony: _PhonyDimensions, extra_shape: tuple[int, ...], where: str
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Dimension names, and each dimension's length (a scale may be longer than the data).

    The axes of an HDF5 array datatype (``extra_shape``) are named ``<variable>_dim_<axis>``.
    """
    names: list[str] = []
    lengths: list[int] = []
    seen: dict[int, int] = {}
    for axis, length in enumerate(dataset.shape):
        try:
            scales = dataset.dims[axis]
            scale = scales[0] if len(scales) else None
        except _H5PY_ERRORS as err:
            reraise_source_error(err)
            # Object references resolve in this file only: a scale attached from another
            # file (through an external link) points at nothing here.
            raise HDF5FormatError(
                f"{where}: the dimension scale of axis {axis} does not resolve in this file "
                f"(attached from another file?): {err}"
            ) from err
        if scale is not None:
            names.append(posixpath.basename(scale.name))
            lengths.append(max(length, scale.shape[0] if scale.shape else length))
        elif axis == 0 and dataset.is_scale:
            names.append(name)
            lengths.append(length)
        else:
            occurrence = seen.get(length, 0)
            seen[length] = occurrence + 1
            names.append(phony.name(length, occurrence))
            lengths.append(length)
    names.extend(f"{name}_dim_{dataset.ndim + i}" for i in range(len(extra_shape)))
    return tuple(names), tuple(lengths)


def _fill_value(dataset: Any, plist: Any, attributes: dict[str, Any], where: str) -> object:
    """``_FillValue``, else HDF5's fill value; None (zarr's default) when HDF5's is undefined.

    Raises
    ------
    HDF5UnsupportedError
        For an HDF5 array type whose fill value h5py cannot read, or whose fill value
        differs from element to element (zarr has one per array).
    """
    import h5py

    value = attributes.get("_FillValue")
    if value is None:
        if plist.fill_value_defined() == h5py.h5d.FILL_VALUE_UNDEFINED:
            return None
        try:
            value = dataset.fillvalue
        except (OSError, RuntimeError) as err:
            if dataset.dtype.subdtype is None:
                raise
            value = err
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, np.ndarray) and value.ndim:
        # An HDF5 array type has one fill value per element of the array.
        value = value.flat[0] if value.size and (value == value.flat[0]).all() else value
    if isinstance(value, Exception | np.ndarray):
        raise HDF5UnsupportedError(
            f"{where}: the fill value of HDF5 array type {dataset.dtype} is not one number "
            f"zarr can use ({value}); pass it in loadable_variables= to read it into memory, "
            "or drop it (drop_variables=)"
        )
    return value


def _contiguous_manifest(
    dataset: Any, metadata: ArrayMetadata, url: str, where: str
) -> ChunkManifest:
    grid = checked_grid(metadata, where)
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


_DIRECT_INDEX_MIN_CHUNKS = 1024
"""Chunk grids at least this big have their index read directly (smaller: ``chunk_iter``)."""


def _reads_index_directly(dataset: Any, grid: tuple[int, ...]) -> bool:
    """Whether reading the chunk index directly beats (or corrects) h5py's ``chunk_iter``.

    ``chunk_iter`` costs a couple of microseconds a chunk, the direct read a few range
    requests: past about a thousand chunks the direct read wins. And HDF5 2.0's
    ``chunk_iter`` gives the chunks of an extensible array whose one unlimited axis is
    not the first offsets outside the array: those are always read directly.
    """
    unlimited = [axis for axis, m in enumerate(dataset.maxshape or ()) if m is None]
    return math.prod(grid) >= _DIRECT_INDEX_MIN_CHUNKS or (len(unlimited) == 1 and unlimited[0] > 0)


def _chunked_manifest(
    dataset: Any, address: int, metadata: ArrayMetadata, walk: _Walk, where: str
) -> ChunkManifest:
    """The manifest of a chunked dataset whose object header is at ``address``."""
    grid = checked_grid(metadata, where)
    if 0 in grid:
        return ChunkManifest.empty(grid)
    found = None
    if walk.direct_index and _reads_index_directly(dataset, grid):
        found = chunk_locations(dataset, walk.file, walk.size, where)
    elif walk.direct_index and walk.heaps.enabled:
        # A version 1 B-tree is read directly however small: chunk_iter hides its keys,
        # and lists chunks HDF5's own lookup does not find when they are corrupt.
        messages = walk.heaps.messages(address, where)
        found = v1_btree_locations(dataset, messages, walk.heaps.reader, walk.heaps.shape, where)
    if found is None:
        if dataset.id.get_storage_size() == 0:  # nothing stored: no index to iterate
            return ChunkManifest.empty(grid)
        found = chunk_iter_locations(dataset)
    if found.filter_masks.any():
        raise HDF5UnsupportedError(
            f"{where}: some chunks skip filters of the pipeline (HDF5 filter mask); "
            "zarr needs one codec pipeline for every chunk"
        )
    count, ndim = len(found.offsets), dataset.ndim
    stored_chunks = dataset.chunks or metadata.chunk_shape[:ndim]
    # The axes of an HDF5 array datatype (after the dataspace's) hold one chunk each.
    grid_coords = tuple(found.coords.T) + (np.zeros(count, np.int64),) * (len(grid) - ndim)
    rows = np.ravel_multi_index(grid_coords, grid) if grid else np.zeros(count, np.int64)
    n_chunks = int(np.prod(grid))
    indices = np.full(n_chunks, -1, dtype=np.int32)
    offsets = np.zeros(n_chunks, dtype=np.uint64)
    lengths = np.zeros(n_chunks, dtype=np.uint64)
    indices[rows] = 0
    offsets[rows] = found.offsets
    if tuple(metadata.chunk_shape[:ndim]) == tuple(stored_chunks):
        lengths[rows] = found.sizes
    else:
        # Trimmed unfiltered chunks (`_prefix_chunk_shape`): the first bytes of each.
        lengths[rows] = math.prod(metadata.chunk_shape) * metadata.dtype.itemsize
    return ChunkManifest.from_numpy_columns(
        grid,
        dictionary=pa.array([walk.url], pa.string()),
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
