"""Parsers: each turns one source URL into a `VirtualGroup`.

A parser is a callable ``parser(url, registry) -> VirtualGroup`` whose class says,
from a `Probe` of the source, whether it can open it (``can_open``); format
options go on its constructor. Parsers read only through the registry, so local
files, S3, GCS, Azure, HTTP and in-memory stores work alike. `detect_parser`
asks every parser of the ``vz.parsers`` entry point group; see ``docs/parsers.md``.
"""

from vzcore.parsers.detect import (
    BUILTIN_PARSERS,
    ENTRY_POINT_GROUP,
    ParserPlugin,
    ParserPluginWarning,
    UnknownFormatError,
    detect_parser,
    parser_plugins,
)
from vzcore.parsers.dmrpp import DMRPPFormatError, DMRPPParser, DMRPPUnsupportedError
from vzcore.parsers.fits import FITSFormatError, FITSParser, FITSUnsupportedError
from vzcore.parsers.grib import GRIBFormatError, GRIBParser
from vzcore.parsers.hdf4 import HDF4FormatError, HDF4Parser, HDF4UnsupportedError
from vzcore.parsers.hdf5 import (
    ExternalLinkError,
    ExternalStorageError,
    HDF5FormatError,
    HDF5GroupError,
    HDF5LimitError,
    HDF5UnsupportedError,
    HDFParser,
    LinkCycleError,
    SkippedLinkWarning,
    VirtualDatasetError,
)
from vzcore.parsers.icechunk import IcechunkFormatError, IcechunkParser, icechunk_storage
from vzcore.parsers.kerchunk import KerchunkFormatError, KerchunkJSONParser, KerchunkParquetParser
from vzcore.parsers.manifest_parquet import ManifestParquetParser, read_manifest_parquet
from vzcore.parsers.netcdf3 import NetCDF3FormatError, NetCDF3Parser
from vzcore.parsers.protocol import HEAD_BYTES, Parser, Probe, ProbeError
from vzcore.parsers.tiff import TIFFFormatError, TIFFParser
from vzcore.parsers.zarr import ZarrFormatError, ZarrParser

__all__ = [
    "BUILTIN_PARSERS",
    "ENTRY_POINT_GROUP",
    "HEAD_BYTES",
    "DMRPPFormatError",
    "DMRPPParser",
    "DMRPPUnsupportedError",
    "ExternalLinkError",
    "ExternalStorageError",
    "FITSFormatError",
    "FITSParser",
    "FITSUnsupportedError",
    "GRIBFormatError",
    "GRIBParser",
    "HDF4FormatError",
    "HDF4Parser",
    "HDF4UnsupportedError",
    "HDF5FormatError",
    "HDF5GroupError",
    "HDF5LimitError",
    "HDF5UnsupportedError",
    "HDFParser",
    "IcechunkFormatError",
    "IcechunkParser",
    "KerchunkFormatError",
    "KerchunkJSONParser",
    "KerchunkParquetParser",
    "LinkCycleError",
    "ManifestParquetParser",
    "NetCDF3FormatError",
    "NetCDF3Parser",
    "Parser",
    "ParserPlugin",
    "ParserPluginWarning",
    "Probe",
    "ProbeError",
    "SkippedLinkWarning",
    "TIFFFormatError",
    "TIFFParser",
    "UnknownFormatError",
    "VirtualDatasetError",
    "ZarrFormatError",
    "ZarrParser",
    "detect_parser",
    "icechunk_storage",
    "parser_plugins",
    "read_manifest_parquet",
]
