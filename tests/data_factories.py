"""Real zarr data in local folders and obstore MemoryStores, with its virtual twin.

Every factory writes data with zarr itself, lists the chunk objects zarr wrote,
and builds the `VirtualGroup` by hand: `ArrayMetadata.from_zarr_v3` of each array
and a `ChunkManifest.from_arrays` whose references are the chunk objects (path =
the object's URL, offset 0, length = its size). Chunks zarr never wrote (all fill
value) are missing. `archive_sample` packs the chunk objects into one file behind
a header, so its references have offsets other than 0. No parser is involved: the
tests of the store and the adapter do not depend on one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import obstore
import zarr
import zarr.storage
from obstore.store import LocalStore, MemoryStore
from zarr.abc.store import Store
from zarr.codecs import BytesCodec, GzipCodec

import vzcore as vc

type Values = npt.NDArray[Any]
type ChunkReference = tuple[str, int, int]
"""``(url, offset, length)`` of one chunk."""
type Locate = Callable[[str], ChunkReference | None]
"""Chunk key relative to the hierarchy root (``"sub/depth/c/1"``) -> its reference."""

TIME_UNITS = "days since 2000-01-01"


@dataclass(frozen=True)
class Sample:
    """A zarr hierarchy written into an object store, and its virtual twin.

    Attributes
    ----------
    url
        URL of the hierarchy's root folder, without a trailing slash.
    group
        The virtual group referencing the chunk objects (built by hand).
    registry
        Covers every URL the group references.
    expected
        The values written, by array path (``"tas"``, ``"sub/depth"``).
    zarr_store, zarr_path
        Where zarr reads the same hierarchy back (None when written by hand).
    """

    url: str
    group: vc.VirtualGroup
    registry: vc.ObjectStoreRegistry
    expected: Mapping[str, Values]
    zarr_store: Store | None = None
    zarr_path: str = ""
    chunk_keys: tuple[str, ...] = field(default=())

    def open_zarr(self) -> zarr.Group:
        """The source hierarchy opened read-only with zarr itself."""
        assert self.zarr_store is not None
        return zarr.open_group(self.zarr_store, path=self.zarr_path, mode="r")


# ---- the data -----------------------------------------------------------------------------


def fill_sample_group(root: zarr.Group) -> dict[str, Values]:
    """Write the sample arrays into ``root``; return the values by array path.

    - ``tas``: float32 (5, 7) in (2, 3) chunks (partial edge chunks on both axes),
      zstd (zarr's default), NaN fill, an inner and an edge chunk all NaN (never written);
    - ``level``: big-endian int16 (6, 4) in (4, 4) chunks, uncompressed, fill -1;
    - ``mask``: uint8 (10,) in (3,) chunks, gzip, two chunks all fill (missing),
      an edge chunk of length 1;
    - ``scale``: a 0-d float64, uncompressed;
    - ``time``: int64 days with CF ``units``/``calendar``, (6,) in (4,) chunks;
    - ``sub/depth`` (float32, gzip) and ``sub/deeper/flag`` (uint8) in nested groups.
    """
    root.attrs.update({"title": "vz sample", "Conventions": "CF-1.8"})
    values: dict[str, Values] = {}

    tas = np.arange(35, dtype="f4").reshape(5, 7) / 4
    tas[0:2, 3:6] = np.nan
    tas[4, 5:] = np.nan  # chunk (2, 2) becomes all fill (missing); chunk (2, 1) keeps a NaN
    _write(root, "tas", tas, chunks=(2, 3), fill_value=np.nan, dims=("y", "x"), units="K")
    values["tas"] = tas

    level = (np.arange(24, dtype=">i2").reshape(6, 4) - 7) * 300
    root.create_array(
        "level",
        shape=level.shape,
        chunks=(4, 4),
        dtype=">i2",
        fill_value=-1,
        serializer=BytesCodec(endian="big"),
        compressors=None,
        dimension_names=("z", "w"),
    )[...] = level
    values["level"] = level

    mask = np.array([0, 0, 0, 1, 0, 2, 0, 0, 0, 255], dtype="u1")
    _write(root, "mask", mask, chunks=(3,), fill_value=0, dims=("n",), compressors=GzipCodec())
    values["mask"] = mask

    scale = np.array(273.15, dtype="f8")
    _write(root, "scale", scale, chunks=(), fill_value=0.0, dims=(), compressors=None)
    values["scale"] = scale

    time = np.array([0, 1, 2, 31, 59, 366], dtype="i8")
    _write(root, "time", time, chunks=(4,), fill_value=0, dims=("time",), units=TIME_UNITS)
    root["time"].attrs["calendar"] = "standard"
    values["time"] = time

    sub = root.create_group("sub", attributes={"title": "a subgroup"})
    depth = np.array([0.5, 1.5, 2.5, 3.5], dtype="f4")
    _write(sub, "depth", depth, chunks=(2,), fill_value=0.0, dims=("d",), compressors=GzipCodec())
    values["sub/depth"] = depth
    deeper = sub.create_group("deeper")
    flag = np.array([1, 0, 1], dtype="u1")
    _write(deeper, "flag", flag, chunks=(3,), fill_value=0, dims=("f",), compressors=None)
    values["sub/deeper/flag"] = flag
    return values


def _write(
    group: zarr.Group,
    name: str,
    data: Values,
    *,
    chunks: tuple[int, ...],
    fill_value: Any,
    dims: tuple[str, ...],
    units: str | None = None,
    compressors: Any = "auto",
) -> zarr.Array:
    array = group.create_array(
        name,
        shape=data.shape,
        chunks=chunks,
        dtype=data.dtype,
        fill_value=fill_value,
        compressors=compressors,
        dimension_names=dims,
        attributes={"units": units} if units is not None else None,
    )
    array[...] = data
    return array


# ---- building the virtual twin ------------------------------------------------------------


def virtual_group(root: zarr.Group, locate: Locate, prefix: str = "") -> vc.VirtualGroup:
    """The virtual group of a zarr hierarchy whose chunk keys ``locate`` resolves."""
    arrays: dict[str, vc.AnyArray] = {}
    groups: dict[str, vc.VirtualGroup] = {}
    for name, member in root.members():
        if isinstance(member, zarr.Array):
            arrays[name] = virtual_array(member, locate, f"{prefix}{name}")
        else:
            groups[name] = virtual_group(member, locate, f"{prefix}{name}/")
    return vc.VirtualGroup(arrays=arrays, groups=groups, attributes=dict(root.attrs))


def virtual_array(array: zarr.Array, locate: Locate, path: str) -> vc.VirtualArray:
    """One zarr array as a `VirtualArray`; ``path`` is its key prefix in the hierarchy."""
    metadata = vc.ArrayMetadata.from_zarr_v3(array.metadata)  # type: ignore[arg-type]
    grid = metadata.grid_shape
    paths = np.full(grid, "", dtype=object)
    offsets = np.zeros(grid, dtype=np.int64)
    lengths = np.zeros(grid, dtype=np.int64)
    for coords in np.ndindex(grid):
        reference = locate("/".join([path, "c", *map(str, coords)]))
        if reference is not None:
            paths[coords], offsets[coords], lengths[coords] = reference
    manifest = vc.ChunkManifest.from_arrays(paths=paths, offsets=offsets, lengths=lengths)
    return vc.VirtualArray(metadata, manifest)


def object_sizes(store: LocalStore | MemoryStore, prefix: str) -> dict[str, int]:
    """Size of every chunk object under ``prefix``, keyed by path relative to it."""
    sizes: dict[str, int] = {}
    for batch in obstore.list(store, prefix=prefix):
        for meta in batch:
            key = str(meta["path"]).removeprefix(prefix).lstrip("/")
            if not key.endswith("zarr.json"):
                sizes[key] = int(meta["size"])
    return sizes


def _whole_objects(url: str, sizes: Mapping[str, int]) -> Locate:
    def locate(key: str) -> ChunkReference | None:
        return (f"{url}/{key}", 0, sizes[key]) if key in sizes else None

    return locate


# ---- samples ------------------------------------------------------------------------------


def local_sample(folder: Path, name: str = "sample.zarr") -> Sample:
    """`fill_sample_group` written to ``folder/name`` on disk, referenced by ``file://`` URL."""
    zarr_store = zarr.storage.LocalStore(folder / name)
    expected = fill_sample_group(zarr.open_group(zarr_store, mode="w"))
    url = f"file://{folder}/{name}"
    sizes = object_sizes(LocalStore(folder), name)
    group = virtual_group(zarr.open_group(zarr_store, mode="r"), _whole_objects(url, sizes))
    registry = vc.ObjectStoreRegistry({f"file://{folder}/": LocalStore(folder)})
    return Sample(url, group, registry, expected, zarr_store, "", tuple(sorted(sizes)))


def memory_sample(bucket: str = "bucket", name: str = "sample.zarr") -> Sample:
    """`fill_sample_group` written into an obstore MemoryStore, ``memory://bucket/...`` URLs."""
    memory = MemoryStore()
    zarr_store = zarr.storage.ObjectStore(memory)
    expected = fill_sample_group(zarr.open_group(zarr_store, path=name, mode="w"))
    url = f"memory://{bucket}/{name}"
    sizes = object_sizes(memory, name)
    group = virtual_group(
        zarr.open_group(zarr_store, path=name, mode="r"), _whole_objects(url, sizes)
    )
    registry = vc.ObjectStoreRegistry({f"memory://{bucket}/": memory})
    return Sample(url, group, registry, expected, zarr_store, name, tuple(sorted(sizes)))


ARCHIVE_HEADER = b"VZ-FAKE-ARCHIVE\n".ljust(4096, b"\xab")
ARCHIVE_GAP = b"\xcd" * 17


def archive_sample(folder: Path) -> Sample:
    """The local sample's chunk objects packed into one file, ``folder/archive.bin``.

    The file starts with a 4096-byte header, and a 17-byte gap follows each chunk,
    so every reference has its own offset (increasing in key order) into one file.
    """
    source = local_sample(folder, "archive-source.zarr")
    archive_path = folder / "archive.bin"
    archive_url = f"file://{archive_path}"
    placed: dict[str, ChunkReference] = {}
    with archive_path.open("wb") as archive:
        archive.write(ARCHIVE_HEADER)
        for key in source.chunk_keys:
            data = (folder / "archive-source.zarr" / key).read_bytes()
            placed[key] = (archive_url, archive.tell(), len(data))
            archive.write(data + ARCHIVE_GAP)
    group = virtual_group(source.open_zarr(), placed.get)
    registry = vc.ObjectStoreRegistry({f"file://{folder}/": LocalStore(folder)})
    return Sample(
        archive_url,
        group,
        registry,
        source.expected,
        source.zarr_store,
        "",
        source.chunk_keys,
    )


# ---- many small chunks --------------------------------------------------------------------


def packed_uint8_sample(folder: Path, *, n_files: int = 4, gap: int = 8) -> Sample:
    """A (100, 1600) uint8 array in (1, 16) chunks: 10,000 chunks of 16 bytes.

    The chunks are written raw (the ``bytes`` codec alone) into ``n_files`` local
    files, rows of chunks split evenly between them, with ``gap`` junk bytes after
    each chunk so no two ranges touch. The group holds the array as ``"packed"``.
    """
    rng = np.random.default_rng(0)
    values = rng.integers(0, 256, size=(100, 1600), dtype=np.uint8)
    metadata = vc.ArrayMetadata.create(
        shape=values.shape, chunk_shape=(1, 16), dtype="u1", dimension_names=("row", "col")
    )
    grid = metadata.grid_shape
    chunks = values.reshape(grid[0], 1, grid[1], 16).transpose(0, 2, 1, 3).reshape(*grid, 16)
    file_of_row = np.arange(grid[0]) * n_files // grid[0]
    paths = np.empty(grid, dtype=object)
    offsets = np.zeros(grid, dtype=np.int64)
    stride = 16 + gap
    junk = np.full((grid[1], gap), 0xEE, dtype=np.uint8)
    for index in range(n_files):
        rows = np.flatnonzero(file_of_row == index)
        path = folder / f"packed-{index}.bin"
        block = np.concatenate([chunks[rows], np.broadcast_to(junk, (len(rows), *junk.shape))], 2)
        path.write_bytes(block.tobytes())
        paths[rows] = f"file://{path}"
        offsets[rows] = np.arange(len(rows) * grid[1]).reshape(len(rows), grid[1]) * stride
    manifest = vc.ChunkManifest.from_arrays(
        paths=paths, offsets=offsets, lengths=np.full(grid, 16, dtype=np.int64)
    )
    group = vc.VirtualGroup(arrays={"packed": vc.VirtualArray(metadata, manifest)})
    registry = vc.ObjectStoreRegistry({f"file://{folder}/": LocalStore(folder)})
    return Sample(f"file://{folder}", group, registry, {"packed": values})


# ---- tiles of one field, for combining ----------------------------------------------------


def tile_values(time: Values, lat: Values, lon: Values) -> Values:
    """The global field every tile is a piece of: ``100 * time + 10 * lat_index + lon``."""
    lat_index = np.arange(len(lat))
    field_values = 100.0 * time[:, None, None] + 10.0 * lat_index[None, :, None] + lon
    return field_values.astype("f4")


def write_tile(
    folder: Path,
    name: str,
    *,
    time_start: int = 0,
    lon_start: int = 0,
    n_time: int = 4,
    n_lon: int = 4,
    chunks: tuple[int, int, int] = (2, 3, 2),
    variables: tuple[str, ...] = ("tas",),
    dtype: str = "f4",
    compressors: Any = "auto",
) -> Sample:
    """One "file" of a tiled dataset: coordinates ``time``/``lat``/``lon`` and data variables.

    ``time`` is int64 days since 2000-01-01 (CF attributes), ``lat`` three values,
    ``lon`` ``n_lon`` degrees from ``lon_start``; each data variable (dims ``time,
    lat, lon``) holds `tile_values`, plus 1000 per position in ``variables``.
    """
    zarr_store = zarr.storage.LocalStore(folder / name)
    root = zarr.open_group(zarr_store, mode="w")
    time = np.arange(time_start, time_start + n_time, dtype="i8")
    lat = np.array([10.0, 20.0, 30.0])
    lon = np.arange(lon_start, lon_start + n_lon, dtype="f8")
    expected: dict[str, Values] = {"time": time, "lat": lat, "lon": lon}
    _write(root, "time", time, chunks=(n_time,), fill_value=0, dims=("time",), units=TIME_UNITS)
    root["time"].attrs["calendar"] = "standard"
    _write(root, "lat", lat, chunks=(3,), fill_value=0.0, dims=("lat",), units="degrees_north")
    _write(root, "lon", lon, chunks=(n_lon,), fill_value=0.0, dims=("lon",), units="degrees_east")
    for position, variable in enumerate(variables):
        data = (tile_values(time, lat, lon) + 1000 * position).astype(dtype)
        _write(
            root,
            variable,
            data,
            chunks=chunks,
            fill_value=0,
            dims=("time", "lat", "lon"),
            units="K",
            compressors=compressors,
        )
        expected[variable] = data
    url = f"file://{folder}/{name}"
    sizes = object_sizes(LocalStore(folder), name)
    group = virtual_group(zarr.open_group(zarr_store, mode="r"), _whole_objects(url, sizes))
    registry = vc.ObjectStoreRegistry({f"file://{folder}/": LocalStore(folder)})
    return Sample(url, group, registry, expected, zarr_store, "", tuple(sorted(sizes)))
