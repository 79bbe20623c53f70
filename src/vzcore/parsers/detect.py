"""Pick the parser for a URL from what is there: magic bytes, or a store's marker files."""

from __future__ import annotations

from typing import Any

from vzcore.errors import VirtualizationError
from vzcore.registry import ObjectStoreRegistry

__all__ = ["UnknownFormatError", "detect_parser"]

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_NETCDF3_MAGICS = (b"CDF\x01", b"CDF\x02", b"CDF\x05")


class UnknownFormatError(VirtualizationError):
    """No parser recognises the source."""


def _head(registry: ObjectStoreRegistry, url: str, count: int) -> bytes | None:
    reader, path = registry.resolve(url)
    try:
        return bytes(reader.get_ranges(path, starts=[0], ends=[count])[0])
    except FileNotFoundError:  # obstore's "not found", also for a directory
        return None


def _exists(registry: ObjectStoreRegistry, url: str) -> bool:
    return _head(registry, url, 1) is not None


def detect_parser(url: str, registry: ObjectStoreRegistry) -> Any:
    """The parser for ``url``: HDF5/netCDF4, netCDF3, Kerchunk JSON or parquet, Zarr, vz manifest.

    Raises
    ------
    UnknownFormatError
        Naming the URL and what was found.
    """
    from vzcore.parsers.hdf5 import HDFParser
    from vzcore.parsers.kerchunk import KerchunkJSONParser, KerchunkParquetParser
    from vzcore.parsers.manifest_parquet import ManifestParquetParser
    from vzcore.parsers.netcdf3 import NetCDF3Parser
    from vzcore.parsers.zarr import ZarrParser

    head = _head(registry, url, 8)
    if head is not None:
        if head.startswith(_HDF5_MAGIC):
            return HDFParser()
        if head[:4] in _NETCDF3_MAGICS:
            return NetCDF3Parser()
        if head.lstrip()[:1] == b"{":
            return KerchunkJSONParser()
        if head.startswith(b"PAR1"):
            return ManifestParquetParser()
        raise UnknownFormatError(f"{url}: unrecognised format (first bytes {head!r})")
    root = url.rstrip("/")
    if _exists(registry, f"{root}/vz-group.json"):
        return ManifestParquetParser()
    if _exists(registry, f"{root}/.zmetadata") and not _exists(registry, f"{root}/.zgroup"):
        return KerchunkParquetParser()
    if any(_exists(registry, f"{root}/{m}") for m in ("zarr.json", ".zgroup", ".zmetadata")):
        return ZarrParser()
    raise UnknownFormatError(f"{url}: no such file, and not a Zarr, Kerchunk parquet or vz store")
