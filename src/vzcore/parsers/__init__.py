"""Parsers: each turns one source URL into a `VirtualGroup`.

A parser is any callable ``parser(url, registry) -> VirtualGroup``; format options
go on its constructor. Parsers read only through the registry, so local files,
S3, GCS, Azure, HTTP and in-memory stores work alike.
"""

from typing import Protocol, runtime_checkable

from vzcore.group import VirtualGroup
from vzcore.parsers.detect import UnknownFormatError, detect_parser
from vzcore.parsers.hdf5 import HDF5FormatError, HDF5GroupError, HDF5UnsupportedError, HDFParser
from vzcore.parsers.kerchunk import KerchunkFormatError, KerchunkJSONParser, KerchunkParquetParser
from vzcore.parsers.manifest_parquet import ManifestParquetParser, read_manifest_parquet
from vzcore.parsers.netcdf3 import NetCDF3FormatError, NetCDF3Parser
from vzcore.parsers.zarr import ZarrFormatError, ZarrParser
from vzcore.registry import ObjectStoreRegistry

__all__ = [
    "HDF5FormatError",
    "HDF5GroupError",
    "HDF5UnsupportedError",
    "HDFParser",
    "KerchunkFormatError",
    "KerchunkJSONParser",
    "KerchunkParquetParser",
    "ManifestParquetParser",
    "NetCDF3FormatError",
    "NetCDF3Parser",
    "Parser",
    "UnknownFormatError",
    "ZarrFormatError",
    "ZarrParser",
    "detect_parser",
    "read_manifest_parquet",
]


@runtime_checkable
class Parser(Protocol):
    """The parser protocol: ``parser(url, registry) -> VirtualGroup``."""

    def __call__(self, url: str, registry: ObjectStoreRegistry) -> VirtualGroup: ...
