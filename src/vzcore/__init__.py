"""vzcore: xarray-free chunk manifests, their algebra, and virtual Zarr groups.

>>> import vzcore as vc
>>> m = vc.ChunkManifest.from_entries({"0": {"path": "file:///a.nc", "offset": 0, "length": 8}})
>>> a = vc.VirtualArray(vc.ArrayMetadata(shape=(2,), chunk_grid=(2,), dtype="f4"), m)
>>> vc.concat([a, a], axis=0).shape
(4,)
"""

from vzcore.algebra import (
    broadcast_to,
    concat,
    expand_dims,
    regularize,
    rename_paths,
    select_chunks,
    select_slices,
    squeeze,
    stack,
    subchunk,
    validate_compatible,
)
from vzcore.array import AnyArray, LoadedArray, VirtualArray
from vzcore.byteranges import ShortReadError, SourceNotFoundError, SourceReadError
from vzcore.codecs import CodecSpec
from vzcore.errors import (
    AmbiguousRenameError,
    BroadcastError,
    ChunkDecodeError,
    ChunkShapeMismatch,
    CodecMismatch,
    DimensionNameMismatch,
    DtypeMismatch,
    EncodingMismatch,
    FillValueMismatch,
    InvalidManifestError,
    InvalidMetadataError,
    LimitExceededError,
    ManifestFormatError,
    MissingChunkError,
    MissingDependencyError,
    PartialChunkError,
    RectilinearGridError,
    ShapeMismatch,
    SubchunkError,
    UnsupportedCodecError,
    VirtualizationError,
    WriteError,
)
from vzcore.format_codecs import register_format_codecs
from vzcore.grid import ChunkGrid, RectilinearChunkGrid, RegularChunkGrid
from vzcore.group import SourceFingerprint, VirtualGroup
from vzcore.limits import Limits, current_limits, limits
from vzcore.manifest import ChunkManifest
from vzcore.metadata import ArrayMetadata
from vzcore.parsers.manifest_parquet import read_manifest_parquet
from vzcore.plot import plot_chunks
from vzcore.read import read_array, read_arrays
from vzcore.registry import ObjectStoreRegistry, UnregisteredURLError
from vzcore.store import ChunkFetchError, ManifestStore
from vzcore.verify import SourceChangedError, SourceCheck, Verification, verify
from vzcore.writers.manifest_parquet import write_manifest_parquet

register_format_codecs()

__all__ = [
    "AmbiguousRenameError",
    "AnyArray",
    "ArrayMetadata",
    "BroadcastError",
    "ChunkDecodeError",
    "ChunkFetchError",
    "ChunkGrid",
    "ChunkManifest",
    "ChunkShapeMismatch",
    "CodecMismatch",
    "CodecSpec",
    "DimensionNameMismatch",
    "DtypeMismatch",
    "EncodingMismatch",
    "FillValueMismatch",
    "InvalidManifestError",
    "InvalidMetadataError",
    "LimitExceededError",
    "Limits",
    "LoadedArray",
    "ManifestFormatError",
    "ManifestStore",
    "MissingChunkError",
    "MissingDependencyError",
    "ObjectStoreRegistry",
    "PartialChunkError",
    "RectilinearChunkGrid",
    "RectilinearGridError",
    "RegularChunkGrid",
    "ShapeMismatch",
    "ShortReadError",
    "SourceChangedError",
    "SourceCheck",
    "SourceFingerprint",
    "SourceNotFoundError",
    "SourceReadError",
    "SubchunkError",
    "UnregisteredURLError",
    "UnsupportedCodecError",
    "Verification",
    "VirtualArray",
    "VirtualGroup",
    "VirtualizationError",
    "WriteError",
    "broadcast_to",
    "concat",
    "current_limits",
    "expand_dims",
    "limits",
    "plot_chunks",
    "read_array",
    "read_arrays",
    "read_manifest_parquet",
    "regularize",
    "rename_paths",
    "select_chunks",
    "select_slices",
    "squeeze",
    "stack",
    "subchunk",
    "validate_compatible",
    "verify",
    "write_manifest_parquet",
]
