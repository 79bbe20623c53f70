"""HDF5 filter pipelines as zarr v3 codecs.

HDF5 lists filters in the order they are applied when writing, which is the
order of the bytes-to-bytes codecs after ``bytes`` in a zarr v3 pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vzcore.errors import VirtualizationError

__all__ = ["HDF5UnsupportedError", "codecs_for_filters"]

# (filter id, flags, client data values, name) as h5py's PropDCID.get_filter returns them.
Filter = tuple[int, int, Sequence[int], bytes]

_BLOSC_COMPRESSORS = {0: "blosclz", 1: "lz4", 2: "lz4hc", 3: "snappy", 4: "zlib", 5: "zstd"}
_BLOSC_SHUFFLE = {0: 0, 1: 1, 2: 2}
_KNOWN_UNSUPPORTED = {5: "nbit", 6: "scaleoffset"}
# Bitshuffle's cd_values[4]: how each block is compressed after bit shuffling.
_BITSHUFFLE_COMPRESSION = {0: "none", 2: "lz4", 3: "zstd"}


class HDF5UnsupportedError(VirtualizationError):
    """An HDF5 feature (filter, type, layout) that vz cannot express as zarr."""


def _deflate(values: Sequence[int], itemsize: int, where: str) -> dict[str, Any]:
    return {"name": "numcodecs.zlib", "configuration": {"level": int(values[0]) if values else 4}}


def _shuffle(values: Sequence[int], itemsize: int, where: str) -> dict[str, Any]:
    return {"name": "numcodecs.shuffle", "configuration": {"elementsize": itemsize}}


def _fletcher32(values: Sequence[int], itemsize: int, where: str) -> dict[str, Any]:
    return {"name": "numcodecs.fletcher32"}


def _zstd(values: Sequence[int], itemsize: int, where: str) -> dict[str, Any]:
    return {"name": "numcodecs.zstd", "configuration": {"level": int(values[0]) if values else 3}}


def _blosc(values: Sequence[int], itemsize: int, where: str) -> dict[str, Any]:
    # cd_values: filter revision, blosc version, typesize, chunk bytes, clevel, shuffle, compressor
    clevel = int(values[4]) if len(values) > 4 else 5
    shuffle = _BLOSC_SHUFFLE.get(int(values[5]), 1) if len(values) > 5 else 1
    cname = _BLOSC_COMPRESSORS.get(int(values[6]), "blosclz") if len(values) > 6 else "blosclz"
    return {
        "name": "numcodecs.blosc",
        "configuration": {"cname": cname, "clevel": clevel, "shuffle": shuffle, "blocksize": 0},
    }


def _szip(values: Sequence[int], itemsize: int, where: str) -> dict[str, Any]:
    mask, per_block, bits, per_scanline = (int(v) for v in values[:4])
    return {
        "name": "vz.szip",
        "configuration": {
            "options_mask": mask,
            "pixels_per_block": per_block,
            "bits_per_pixel": bits,
            "pixels_per_scanline": per_scanline,
        },
    }


def _lzf(values: Sequence[int], itemsize: int, where: str) -> dict[str, Any]:
    return {"name": "vz.lzf"}


def _bzip2(values: Sequence[int], itemsize: int, where: str) -> dict[str, Any]:
    return {"name": "numcodecs.bz2", "configuration": {"level": int(values[0]) if values else 9}}


def _lz4(values: Sequence[int], itemsize: int, where: str) -> dict[str, Any]:
    return {"name": "vz.lz4h5"}


def _bitshuffle(values: Sequence[int], itemsize: int, where: str) -> dict[str, Any]:
    # cd_values: major, minor version, element size, block size (items, 0 = default),
    # compression, zstd level (hdf5plugin and the bitshuffle filter write them all).
    compression = _BITSHUFFLE_COMPRESSION.get(int(values[4])) if len(values) > 4 else "none"
    if compression is None:
        raise HDF5UnsupportedError(
            f"{where}: HDF5 filter 32008 (bitshuffle) with compression {values[4]} "
            f"has no zarr codec vz can use (known: {sorted(_BITSHUFFLE_COMPRESSION)})"
        )
    elementsize = int(values[2]) if len(values) > 2 and values[2] else itemsize
    block_size = int(values[3]) if len(values) > 3 else 0
    return {
        "name": "vz.bitshuffle",
        "configuration": {
            "elementsize": elementsize,
            "block_size": block_size,
            "compression": compression,
        },
    }


def _blosc2(values: Sequence[int], itemsize: int, where: str) -> dict[str, Any]:
    # Each chunk is a self-describing Blosc2 frame: the cd_values are not needed to decode.
    return {"name": "vz.blosc2"}


_CODECS = {
    1: _deflate,
    2: _shuffle,
    3: _fletcher32,
    4: _szip,
    307: _bzip2,
    32000: _lzf,
    32001: _blosc,
    32004: _lz4,
    32008: _bitshuffle,
    32015: _zstd,
    32026: _blosc2,
}


def codecs_for_filters(
    filters: Sequence[Filter], dtype: np.dtype[Any], *, where: str
) -> list[dict[str, Any]]:
    """The zarr v3 bytes-to-bytes codecs for an HDF5 filter pipeline.

    Raises
    ------
    HDF5UnsupportedError
        Naming ``where`` (file and variable), the filter id and its name.
    """
    codecs = []
    for code, _flags, values, name in filters:
        build = _CODECS.get(code)
        if build is None:
            label = name.decode("ascii", "replace") or _KNOWN_UNSUPPORTED.get(code, "unknown")
            raise HDF5UnsupportedError(
                f"{where}: HDF5 filter {code} ({label}) has no zarr codec vz can use; "
                "drop the variable (drop_variables=) or load it"
            )
        codecs.append(build(values, dtype.itemsize, where))
    return codecs
