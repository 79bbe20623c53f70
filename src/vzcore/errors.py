"""The exception hierarchy: every failure vz reports is a `VirtualizationError`."""

from __future__ import annotations

import os
from collections.abc import Sequence

__all__ = [
    "AmbiguousRenameError",
    "BroadcastError",
    "ChunkDecodeError",
    "ChunkShapeMismatch",
    "CodecMismatch",
    "DimensionNameMismatch",
    "DtypeMismatch",
    "EncodingMismatch",
    "FillValueMismatch",
    "InvalidManifestError",
    "InvalidMetadataError",
    "LimitExceededError",
    "ManifestFormatError",
    "MissingChunkError",
    "MissingDependencyError",
    "PartialChunkError",
    "RectilinearGridError",
    "ShapeMismatch",
    "SubchunkError",
    "UnsupportedCodecError",
    "VirtualizationError",
    "WriteError",
]


class VirtualizationError(ValueError):
    """Base class of every error vz raises about its inputs.

    ``problems`` holds each problem found, so one raise can report them all.
    """

    def __init__(self, message: str, *, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems: tuple[str, ...] = tuple(problems) or (message,)


class InvalidManifestError(VirtualizationError):
    """A chunk manifest's columns or grid are inconsistent."""


class InvalidMetadataError(VirtualizationError):
    """Array metadata is malformed (shape, chunks, dtype, fill value, codecs)."""


class UnsupportedCodecError(VirtualizationError):
    """A codec pipeline cannot be expressed in the requested format (e.g. zarr v2)."""


class RectilinearGridError(UnsupportedCodecError):
    """An output, reader or operation needs a regular chunk grid and the array's is rectilinear.

    Zarr v2 and Kerchunk store only regular grids; Icechunk and manifest parquet
    store rectilinear ones (see `vzcore.regularize` for arrays that are regular in fact).
    """


class ChunkDecodeError(VirtualizationError):
    """A chunk's bytes do not decode as its codec says (corrupt or mislabelled data)."""


class LimitExceededError(VirtualizationError):
    """An input declares more work than a limit of `vzcore.limits` allows.

    ``limit`` names the limit, ``value`` is its current setting and ``needed`` what
    the input asks for; ``vzcore.limits(**{limit: ...})`` raises it.
    """

    def __init__(self, message: str, *, limit: str, value: int, needed: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.value = value
        self.needed = needed


class ManifestFormatError(VirtualizationError):
    """A stored manifest (parquet interchange) is unreadable or malformed."""


class ShapeMismatch(VirtualizationError):
    """Arrays differ in ndim or in their lengths along axes that must agree."""


class ChunkShapeMismatch(VirtualizationError):
    """Arrays have different chunk shapes."""


class CodecMismatch(VirtualizationError):
    """Arrays have different codec pipelines."""


class DtypeMismatch(VirtualizationError):
    """Arrays have different data types."""


class EncodingMismatch(VirtualizationError):
    """Arrays have different CF encodings (packing, missing-value markers, time units)."""


class FillValueMismatch(VirtualizationError):
    """Arrays have different fill values."""


class DimensionNameMismatch(VirtualizationError):
    """Arrays have different dimension names."""


class PartialChunkError(VirtualizationError):
    """A partial edge chunk would land inside the result of a concatenation."""


class SubchunkError(PartialChunkError):
    """Chunks cannot be split into smaller references by offset arithmetic.

    Only chunks stored raw (the ``bytes`` codec alone, C order) whose pieces are
    contiguous runs of their bytes can be split; see `vzcore.subchunk`.
    """


class BroadcastError(VirtualizationError):
    """An array cannot be broadcast to the requested shape without rechunking."""


class MissingChunkError(VirtualizationError):
    """A chunk that must exist has no reference."""


class MissingDependencyError(VirtualizationError, ImportError):
    """An optional feature needs a package that is not installed (the message names the extra)."""


class AmbiguousRenameError(VirtualizationError):
    """One new path was given for chunk references that point to several files."""


class WriteError(VirtualizationError):
    """An output could not be written (a full disk, no permission, a failed rename).

    Whatever was at ``path`` before is still there, unless ``reason`` says otherwise.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"cannot write {os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason

    def __reduce__(self) -> tuple[type[WriteError], tuple[str, str]]:
        return type(self), (self.path, self.reason)
