"""Read a whole virtual array into memory (for loading coordinates and small variables).

Chunks are fetched with one batched ranged request per file and decoded with
numcodecs when the codec pipeline has a zarr v2 form; anything else is read
through zarr and a `ManifestStore`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from vzcore.array import AnyArray, LoadedArray, VirtualArray, chunk_selection
from vzcore.byteranges import read_references
from vzcore.errors import ChunkDecodeError, UnsupportedCodecError, VirtualizationError
from vzcore.group import VirtualGroup
from vzcore.metadata import ArrayMetadata
from vzcore.registry import ObjectStoreRegistry

__all__ = ["decode_chunks", "read_array", "read_arrays", "rectilinear_chunks_enabled"]


def read_array(array: AnyArray, registry: ObjectStoreRegistry | None = None) -> npt.NDArray[Any]:
    """The values of an array as a numpy array (missing chunks hold the fill value).

    Raises
    ------
    UnregisteredURLError
        If a referenced URL is under no registered prefix.
    SourceReadError
        If a referenced file cannot be read (`ShortReadError` if it is too short).
    """
    if isinstance(array, LoadedArray):
        return array.data
    registry = registry if registry is not None else ObjectStoreRegistry()
    try:
        decode = _numcodecs_decoder(array.metadata)
    except UnsupportedCodecError:
        return _read_with_zarr(array, registry)
    return _read_chunks(array, registry, decode)


def read_arrays(
    arrays: Mapping[str, AnyArray], registry: ObjectStoreRegistry | None = None
) -> dict[str, npt.NDArray[Any]]:
    """The values of several arrays, their chunks fetched in one batch (as `read_array`).

    Loading a file's coordinates this way costs one batch of requests per file, not
    one per coordinate.

    Raises
    ------
    UnregisteredURLError, SourceReadError
        As `read_array`.
    """
    registry = registry if registry is not None else ObjectStoreRegistry()
    out: dict[str, npt.NDArray[Any]] = {}
    batched: list[tuple[str, VirtualArray, Any]] = []
    for name, array in arrays.items():
        if isinstance(array, LoadedArray):
            out[name] = array.data
            continue
        try:
            batched.append((name, array, _numcodecs_decoder(array.metadata)))
        except UnsupportedCodecError:
            try:
                out[name] = _read_with_zarr(array, registry)
            except ChunkDecodeError as err:
                raise ChunkDecodeError(f"array {name!r}: {err}") from err
    if not batched:
        return out
    urls: dict[str, int] = {}
    columns = []
    for _, array, _ in batched:
        indices, offsets, lengths = array.manifest.to_numpy_columns()
        rows = np.flatnonzero(indices >= 0)
        local = [urls.setdefault(u, len(urls)) for u in array.manifest.dictionary.to_pylist()]
        mapped = np.asarray(local, dtype=np.int64)[indices[rows]] if len(rows) else rows
        columns.append((rows, mapped, offsets[rows], lengths[rows]))
    buffers = read_references(
        registry,
        list(urls),
        np.concatenate([c[1] for c in columns]),
        np.concatenate([c[2] for c in columns]),
        np.concatenate([c[3] for c in columns]),
    )
    start = 0
    for (name, array, decode), (rows, _, _, _) in zip(batched, columns, strict=True):
        fetched = buffers[start : start + len(rows)]
        start += len(rows)
        try:
            out[name] = _decoded(array, decode, rows, fetched)
        except ChunkDecodeError as err:
            raise ChunkDecodeError(f"array {name!r}: {err}") from err
    return {name: out[name] for name in arrays}


def decode_chunks(
    metadata: ArrayMetadata, chunks: Mapping[tuple[int, ...], bytes]
) -> npt.NDArray[Any]:
    """An array's values from its encoded chunks (absent chunks hold the fill value)."""
    try:
        decode = _numcodecs_decoder(metadata)
    except UnsupportedCodecError:
        return _decode_with_zarr(metadata, chunks)
    out = np.full(metadata.shape, metadata.fill_value, dtype=metadata.dtype)
    grid = metadata.grid_shape
    for coords, data in chunks.items():
        if len(coords) != len(grid) or any(c >= g for c, g in zip(coords, grid, strict=True)):
            raise VirtualizationError(f"chunk {coords} lies outside the grid {grid}")
        try:
            values = decode(data, metadata.chunk_grid.chunk_shape_at(coords))
        except Exception as err:  # whatever the codec raises (zlib.error is no ValueError)
            raise ChunkDecodeError(f"chunk {coords} does not decode: {err}") from err
        _place(out, values, coords, metadata)
    return out


def _decode_with_zarr(
    metadata: ArrayMetadata, chunks: Mapping[tuple[int, ...], bytes]
) -> npt.NDArray[Any]:
    import json

    import zarr
    from zarr.core.buffer import Buffer, cpu

    contents: dict[str, Buffer] = {
        "zarr.json": cpu.Buffer.from_bytes(json.dumps(metadata.to_zarr_v3()).encode())
    }
    for coords, data in chunks.items():
        key = "/".join(["c", *map(str, coords)])
        contents[key] = cpu.Buffer.from_bytes(data)
    store = zarr.storage.MemoryStore(contents)
    with rectilinear_chunks_enabled():
        values: npt.NDArray[Any] = np.asarray(zarr.open_array(store, mode="r")[...])
    return values


def _numcodecs_pipeline(metadata: ArrayMetadata) -> tuple[list[Any], np.dtype[Any], str]:
    """The zarr v2 form of the pipeline: numcodecs codecs, stored dtype, memory order.

    It depends on the codecs and the dtype alone, so it is built once per pair (files
    of one collection share both) and the codec objects are shared: numcodecs codecs
    hold their configuration only.
    """
    key = (metadata.codecs, metadata.dtype)
    try:
        return _PIPELINES[key]
    except KeyError:
        pass
    except TypeError:  # a codec configuration that does not hash: build it each time
        return _build_numcodecs_pipeline(metadata)
    if len(_PIPELINES) >= 256:
        _PIPELINES.clear()
    built = _PIPELINES[key] = _build_numcodecs_pipeline(metadata)
    return built


_PIPELINES: dict[tuple[Any, ...], tuple[list[Any], np.dtype[Any], str]] = {}


def _build_numcodecs_pipeline(metadata: ArrayMetadata) -> tuple[list[Any], np.dtype[Any], str]:
    import numcodecs
    import numcodecs.errors

    if not metadata.is_regular:
        # The codecs alone matter here: any regular stand-in grid gives their v2 form.
        metadata = metadata.evolve(chunk_grid=metadata.chunk_grid.max_chunk_shape())
    zarray, _ = metadata.to_zarr_v2()
    codecs = [*(zarray["filters"] or []), zarray["compressor"]]
    try:
        pipeline = [numcodecs.get_codec(c) for c in codecs if c is not None]
    except numcodecs.errors.UnknownCodecError as err:  # e.g. imagecodecs' not registered
        raise UnsupportedCodecError(f"no numcodecs codec here: {err}") from err
    # As `to_zarr_v2` stores it; a struct's v2 dtype is a list numpy cannot parse.
    stored = metadata.dtype
    if metadata.endian is not None:
        stored = stored.newbyteorder(">" if metadata.endian == "big" else "<")
    return pipeline, stored, str(zarray["order"])


def encode_fill_chunk(metadata: ArrayMetadata) -> bytes:
    """One chunk holding only the fill value, encoded with the array's codecs (zarr v2 form).

    A constant chunk is the same in C and Fortran order, so either order works. The
    grid must be regular (every chunk one shape).

    Raises
    ------
    UnsupportedCodecError
        If the pipeline has no zarr v2 form.
    """
    pipeline, stored, _ = _numcodecs_pipeline(metadata)
    data: Any = np.full(metadata.chunk_shape, metadata.fill_value, dtype=stored).tobytes()
    for codec in pipeline:
        try:
            data = codec.encode(data)
        except Exception as err:  # numcodecs raises whatever each library raises
            raise UnsupportedCodecError(
                f"the codec {codec!r} cannot encode a chunk of the fill value "
                f"{metadata.fill_value.item()!r} after the codecs before it: {err}"
            ) from err
    return bytes(memoryview(data).cast("B"))


def _numcodecs_decoder(metadata: ArrayMetadata) -> Any:
    pipeline, stored, order = _numcodecs_pipeline(metadata)
    if order != "C":
        raise UnsupportedCodecError("Fortran-ordered chunks are read through zarr")

    def decode(raw: bytes | memoryview, shape: tuple[int, ...]) -> npt.NDArray[Any]:
        data: Any = raw
        if pipeline and pipeline[-1].codec_id == "blosc":
            _check_blosc_frame(raw)
        for codec in reversed(pipeline):
            data = codec.decode(data)
        raw_bytes = memoryview(data).cast("B")
        count = int(np.prod(shape))
        if len(raw_bytes) != count * stored.itemsize:  # zarr's bytes codec refuses it too
            raise ValueError(
                f"it decodes to {len(raw_bytes)} bytes; a chunk of shape {shape} holds "
                f"{count * stored.itemsize}"
            )
        return np.frombuffer(raw_bytes, dtype=stored).reshape(shape)

    return decode


def _check_blosc_frame(raw: bytes | memoryview) -> None:
    """Refuse a blosc frame whose header declares more bytes than it has.

    c-blosc trusts the header: a truncated frame decodes to whatever memory follows it.
    """
    if len(raw) < 16:
        raise ValueError(f"a blosc frame has a 16-byte header, this chunk has {len(raw)} bytes")
    declared = int.from_bytes(bytes(raw[12:16]), "little")
    if declared > len(raw):
        raise ValueError(f"the blosc header declares {declared} bytes, the chunk has {len(raw)}")


def _read_chunks(
    array: VirtualArray, registry: ObjectStoreRegistry, decode: Any
) -> npt.NDArray[Any]:
    indices, offsets, lengths = array.manifest.to_numpy_columns()
    rows = np.flatnonzero(indices >= 0)
    buffers = read_references(
        registry,
        array.manifest.dictionary.to_pylist(),
        indices[rows],
        offsets[rows],
        lengths[rows],
    )
    return _decoded(array, decode, rows, buffers)


def _decoded(
    array: VirtualArray, decode: Any, rows: npt.NDArray[np.intp], buffers: list[memoryview]
) -> npt.NDArray[Any]:
    """The array's values from the fetched chunks of its manifest ``rows`` (and its inline ones)."""
    meta = array.metadata
    out = np.full(meta.shape, meta.fill_value, dtype=meta.dtype)
    _place_inline(out, array, decode)
    indices, offsets, lengths = array.manifest.to_numpy_columns()  # views: no copy
    urls = array.manifest.dictionary.to_pylist()
    grid = array.manifest.grid
    for row, buffer in zip(rows.tolist(), buffers, strict=True):
        coords = tuple(int(c) for c in np.unravel_index(row, grid)) if grid else ()
        try:
            values = decode(buffer, meta.chunk_grid.chunk_shape_at(coords))
        except Exception as err:  # whatever the codec raises, said with where the chunk is
            start = int(offsets[row])
            raise ChunkDecodeError(
                f"{urls[int(indices[row])]}: chunk {coords} (bytes {start}-"
                f"{start + int(lengths[row])}) does not decode: {err}"
            ) from err
        _place(out, values, coords, meta)
    return out


def _place_inline(out: npt.NDArray[Any], array: VirtualArray, decode: Any) -> None:
    """Decode the manifest's inline chunks into ``out`` (their bytes need no fetch)."""
    meta, manifest = array.metadata, array.manifest
    rows = np.flatnonzero(manifest.inline_mask())
    grid = manifest.grid
    for row, data in zip(rows.tolist(), manifest.inline_chunks(rows), strict=True):
        coords = tuple(int(c) for c in np.unravel_index(row, grid)) if grid else ()
        try:
            values = decode(data, meta.chunk_grid.chunk_shape_at(coords))
        except Exception as err:  # whatever the codec raises, said with which chunk it is
            raise ChunkDecodeError(
                f"inline chunk {coords} ({len(data)} bytes) does not decode: {err}"
            ) from err
        _place(out, values, coords, meta)


def _place(
    out: npt.NDArray[Any],
    chunk: npt.NDArray[Any],
    coords: tuple[int, ...],
    metadata: ArrayMetadata,
) -> None:
    target = chunk_selection(metadata.chunk_grid, metadata.shape, coords)
    out[target] = chunk[tuple(slice(0, t.stop - t.start) for t in target)]


def _read_with_zarr(array: VirtualArray, registry: ObjectStoreRegistry) -> npt.NDArray[Any]:
    import zarr

    from vzcore.store import ManifestStore

    store = ManifestStore(VirtualGroup(arrays={"a": array}), registry=registry)
    with rectilinear_chunks_enabled():
        try:
            opened = zarr.open_array(store, path="a", mode="r")
        except Exception as err:  # zarr raises whatever its codec registry raises
            raise UnsupportedCodecError(
                f"{', '.join(_urls(array))}: zarr cannot open the array: {err}"
            ) from err
        try:
            values: npt.NDArray[Any] = np.asarray(opened[...])
        except Exception as err:  # whatever the codecs raise; the store's own errors name the URL
            if isinstance(err, VirtualizationError) and not isinstance(err, ChunkDecodeError):
                raise
            raise _undecodable(array, opened, err) from err
    return values


def _urls(array: VirtualArray) -> list[str]:
    return array.manifest.dictionary.to_pylist() or ["inline chunks"]


def _undecodable(array: VirtualArray, opened: Any, err: Exception) -> ChunkDecodeError:
    """The error naming the first chunk zarr cannot decode (found by reading them one by one)."""
    meta = array.metadata
    indices, offsets, lengths = array.manifest.to_numpy_columns()
    urls = array.manifest.dictionary.to_pylist()
    grid = array.manifest.grid
    for row in range(min(len(indices), 10**5)):
        coords = tuple(int(c) for c in np.unravel_index(row, grid)) if grid else ()
        try:
            opened[chunk_selection(meta.chunk_grid, meta.shape, coords)]
        except Exception as inner:  # noqa: BLE001 (the chunk that fails, whatever zarr raises)
            if indices[row] < 0:
                return ChunkDecodeError(f"inline chunk {coords} does not decode: {inner}")
            start = int(offsets[row])
            return ChunkDecodeError(
                f"{urls[int(indices[row])]}: chunk {coords} (bytes {start}-"
                f"{start + int(lengths[row])}) does not decode: {inner}"
            )
    return ChunkDecodeError(f"{', '.join(_urls(array))}: the array does not decode: {err}")


@contextlib.contextmanager
def rectilinear_chunks_enabled() -> Iterator[None]:
    """zarr's ``array.rectilinear_chunks`` setting switched on within the block.

    zarr 3.4 reads (and writes) arrays with a rectilinear chunk grid only with this
    setting on; vz switches it on wherever it opens arrays itself. A process that
    opens a vz store with zarr or xarray directly sets it itself::

        zarr.config.set({"array.rectilinear_chunks": True})
    """
    import zarr

    with zarr.config.set({"array.rectilinear_chunks": True}):
        yield
