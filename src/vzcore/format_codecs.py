"""Zarr v3 codecs for format-specific encodings zarr lacks, under ``vz.`` names.

They describe bytes that already exist, so they only decode: encoding raises
`UnsupportedCodecError`. zarr finds them through the ``zarr.codecs`` entry points
vz declares, so a process that never imports vzcore reads stores that use them;
`register_format_codecs` (run on ``import vzcore``) registers them by hand as well.
Decoders come from imagecodecs and python-blosc2 (the ``formats`` extra), imported
only when a chunk is decoded.

Bytes to bytes:

- ``vz.lzf``: the LZF stream of HDF5 filter 32000 (h5py's lzf).
- ``vz.szip``: SZIP/libaec data of HDF5 filter 4, with its 4-byte size header.
- ``vz.lz4h5``: HDF5 filter 32004 (8-byte big-endian size, 4-byte block size,
  then blocks of 4-byte big-endian compressed size and LZ4 data).
- ``vz.bitshuffle``: HDF5 filter 32008, bit shuffling with optional LZ4 or zstd.
- ``vz.blosc2``: HDF5 filter 32026, a Blosc2 frame (or chunk) per HDF5 chunk.

Array to array: ``vz.delta``, differences along one axis (TIFF predictor 2).

Array to bytes: ``vz.simple_packing``, GRIB2 simple packing (data template 5.0);
``vz.grib``, a whole GRIB message decoded by ecCodes.

FITS (bytes to bytes, decoded with astropy's cfitsio-derived C functions, the
``fits`` extra):

- ``vz.fits_tile``: one tile of a tile-compressed FITS image (RICE_1, PLIO_1,
  HCOMPRESS_1), decoded to the big-endian integers of its ``bitpix``.
- ``vz.sign_flip``: big-endian integers whose top bit is flipped, FITS's unsigned
  convention (BZERO = 2**15, 2**31, 2**63 with BSCALE = 1; BZERO = -128 for
  signed bytes).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import importlib
import struct
import threading
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import numpy as np
import numpy.typing as npt
from zarr.abc.codec import ArrayArrayCodec, ArrayBytesCodec, BytesBytesCodec
from zarr.registry import register_codec

from vzcore.errors import (
    ChunkDecodeError,
    InvalidMetadataError,
    UnsupportedCodecError,
    VirtualizationError,
)
from vzcore.grib_fields import message_fields

if TYPE_CHECKING:
    from zarr.core.array_spec import ArraySpec
    from zarr.core.buffer import Buffer, NDBuffer
    from zarr.core.dtype.wrapper import TBaseDType, TBaseScalar, ZDType
    from zarr.core.metadata.v3 import ChunkGridMetadata

__all__ = [
    "BitshuffleCodec",
    "Blosc2Codec",
    "DecodeOnlyArrayArrayCodec",
    "DecodeOnlyArrayBytesCodec",
    "DecodeOnlyBytesBytesCodec",
    "DeltaCodec",
    "FITSTileCodec",
    "GRIBCodec",
    "LZ4H5Codec",
    "LZFCodec",
    "SZIPCodec",
    "SignFlipCodec",
    "SimplePackingCodec",
    "decode_grib_field",
    "register_format_codecs",
]


def _optional_module(name: str, package: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise VirtualizationError(
            f"decoding this chunk needs {package}: pip install 'vz[formats]'"
        ) from err


def _imagecodecs() -> Any:
    return _optional_module("imagecodecs", "imagecodecs")


def _native_dtype(spec: ArraySpec) -> np.dtype[Any]:
    dtype: np.dtype[Any] = spec.dtype.to_native_dtype()
    return dtype


def _decoded_nbytes(spec: ArraySpec) -> int:
    return int(np.prod(spec.shape)) * _native_dtype(spec).itemsize


# ---- the decode-only bases ------------------------------------------------------------------


def _configuration(codec: Any) -> dict[str, Any]:
    return {f.name: getattr(codec, f.name) for f in dataclasses.fields(codec)}


def _codec_dict(codec: Any) -> dict[str, Any]:
    config = _configuration(codec)
    return {"name": codec.name, "configuration": config} if config else {"name": codec.name}


def _require_kind(name: str, dtype: ZDType[TBaseDType, TBaseScalar], kinds: str, says: str) -> None:
    """Refuse an array whose numpy dtype kind is not one of ``kinds``."""
    native = dtype.to_native_dtype()
    if native.kind not in kinds:
        raise InvalidMetadataError(f"codec {name} {says}, not {native}")


def _refuse_encoding(name: str) -> UnsupportedCodecError:
    return UnsupportedCodecError(f"codec {name} only decodes existing data; it cannot encode")


class _DecodeOnly:
    """What every decode-only codec shares: its JSON form, threaded decoding, no encoding."""

    name: ClassVar[str]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(**(data.get("configuration") or {}))

    def to_dict(self) -> dict[str, Any]:
        return _codec_dict(self)

    def _decode_sync(self, chunk: Any, chunk_spec: ArraySpec) -> Any:
        raise NotImplementedError

    async def _decode_single(self, chunk: Any, chunk_spec: ArraySpec) -> Any:
        return await asyncio.to_thread(self._decode_sync, chunk, chunk_spec)

    async def _encode_single(self, chunk: Any, chunk_spec: ArraySpec) -> Any:
        raise _refuse_encoding(self.name)


@dataclass(frozen=True)
class DecodeOnlyBytesBytesCodec(_DecodeOnly, BytesBytesCodec):
    """A bytes-to-bytes codec that only decodes: subclasses give `_decode_bytes`."""

    name: ClassVar[str]
    is_fixed_size = False

    @abc.abstractmethod
    def _decode_bytes(self, data: bytes, spec: ArraySpec) -> bytes:
        """The decoded bytes of one chunk of ``spec.shape`` items."""

    def _decode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> Buffer:
        decoded = self._decode_bytes(chunk_bytes.to_bytes(), chunk_spec)
        expected = _decoded_nbytes(chunk_spec)
        if len(decoded) != expected:
            raise ChunkDecodeError(
                f"codec {self.name}: a chunk decoded to {len(decoded)} bytes, "
                f"expected {expected} ({chunk_spec.shape} items of {_native_dtype(chunk_spec)})"
            )
        return chunk_spec.prototype.buffer.from_bytes(decoded)

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise _refuse_encoding(self.name)


@dataclass(frozen=True)
class DecodeOnlyArrayArrayCodec(_DecodeOnly, ArrayArrayCodec):
    """An array-to-array codec that only decodes: subclasses give `_decode_array`.

    The decoded array has the shape and dtype of the encoded one (zarr's
    `resolve_metadata` is the identity).
    """

    name: ClassVar[str]
    is_fixed_size = True

    @abc.abstractmethod
    def _decode_array(self, array: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """The decoded values of one chunk."""

    def _decode_sync(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> NDBuffer:
        decoded = self._decode_array(np.asarray(chunk_array.as_numpy_array()))
        return chunk_spec.prototype.nd_buffer.from_numpy_array(decoded)

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        return input_byte_length


@dataclass(frozen=True)
class DecodeOnlyArrayBytesCodec(_DecodeOnly, ArrayBytesCodec):
    """An array-to-bytes codec that only decodes: subclasses give `_decode_to_array`."""

    name: ClassVar[str]
    is_fixed_size = False

    @abc.abstractmethod
    def _decode_to_array(self, data: bytes, count: int, dtype: np.dtype[Any]) -> npt.NDArray[Any]:
        """The ``count`` decoded values (1-d, of ``dtype``) of one chunk."""

    def _decode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        dtype = _native_dtype(chunk_spec)
        values = self._decode_to_array(
            chunk_bytes.to_bytes(), int(np.prod(chunk_spec.shape)), dtype
        )
        decoded = np.asarray(values, dtype=dtype).reshape(chunk_spec.shape)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(decoded)

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise _refuse_encoding(self.name)


# ---- HDF5 filters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LZFCodec(DecodeOnlyBytesBytesCodec):
    """LZF (HDF5 filter 32000)."""

    name: ClassVar[str] = "vz.lzf"

    def _decode_bytes(self, data: bytes, spec: ArraySpec) -> bytes:
        decoded: bytes = _imagecodecs().lzf_decode(data, out=_decoded_nbytes(spec))
        return decoded


@dataclass(frozen=True)
class SZIPCodec(DecodeOnlyBytesBytesCodec):
    """SZIP (HDF5 filter 4), data prefixed by its 4-byte decoded size."""

    name: ClassVar[str] = "vz.szip"
    options_mask: int = field(default=0)
    pixels_per_block: int = field(default=32)
    bits_per_pixel: int = field(default=8)
    pixels_per_scanline: int = field(default=1)

    def _decode_bytes(self, data: bytes, spec: ArraySpec) -> bytes:
        decoded: bytes = _imagecodecs().szip_decode(
            data,
            self.options_mask,
            self.pixels_per_block,
            self.bits_per_pixel,
            self.pixels_per_scanline,
            header=True,
        )
        return decoded


@dataclass(frozen=True)
class LZ4H5Codec(DecodeOnlyBytesBytesCodec):
    """LZ4 in HDF5's framing (HDF5 filter 32004); a block that LZ4 cannot shrink is stored."""

    name: ClassVar[str] = "vz.lz4h5"

    def _decode_bytes(self, data: bytes, spec: ArraySpec) -> bytes:
        decoded: bytes = _imagecodecs().lz4h5_decode(data)
        return decoded


BitshuffleCompression = Literal["none", "lz4", "zstd"]
_BITSHUFFLE_HEADER = struct.Struct(">QI")
_BLOCK_SIZE = struct.Struct(">I")


@dataclass(frozen=True)
class BitshuffleCodec(DecodeOnlyBytesBytesCodec):
    """Bitshuffle (HDF5 filter 32008), uncompressed or with LZ4 or zstd per block.

    Compressed chunks start with the decoded size (8 bytes, big-endian) and the
    block size in bytes (4 bytes); each block follows as a 4-byte big-endian length
    and its compressed bytes. Blocks hold ``block_size`` items (0: bitshuffle's
    default); the last block is cut to a multiple of 8 items, and the remaining
    items are stored as they are after it. Uncompressed chunks have no header.
    """

    name: ClassVar[str] = "vz.bitshuffle"
    elementsize: int = 1
    block_size: int = 0
    compression: BitshuffleCompression = "none"

    def __post_init__(self) -> None:
        if self.compression not in ("none", "lz4", "zstd"):
            raise InvalidMetadataError(
                f"codec {self.name}: compression {self.compression!r} is not 'none', "
                "'lz4' or 'zstd'"
            )
        if self.elementsize < 1 or self.block_size < 0 or self.block_size % 8:
            raise InvalidMetadataError(
                f"codec {self.name}: elementsize {self.elementsize} must be positive and "
                f"block_size {self.block_size} a non-negative multiple of 8"
            )

    def _decode_bytes(self, data: bytes, spec: ArraySpec) -> bytes:
        codecs = _imagecodecs()
        if self.compression == "none":
            shuffled, block_items = data, self.block_size
        else:
            shuffled, block_items = self._decompress_blocks(data, codecs)
        decoded: bytes = codecs.bitshuffle_decode(
            shuffled, itemsize=self.elementsize, blocksize=block_items
        )
        return decoded

    def _decompress_blocks(self, data: bytes, codecs: Any) -> tuple[bytes, int]:
        """The bit-shuffled bytes of a compressed chunk, and its items per block."""
        try:
            nbytes, block_bytes = _BITSHUFFLE_HEADER.unpack_from(data)
        except struct.error as err:
            raise ChunkDecodeError(f"codec {self.name}: a chunk has no bitshuffle header") from err
        block_items = block_bytes // self.elementsize
        if nbytes % self.elementsize or block_items < 8 or block_items % 8:
            raise ChunkDecodeError(
                f"codec {self.name}: a chunk's header says {nbytes} bytes in blocks of "
                f"{block_bytes} bytes, which items of {self.elementsize} bytes cannot fill"
            )
        items = nbytes // self.elementsize
        last_block = items % block_items - items % block_items % 8
        sizes = [block_bytes] * (items // block_items) + [last_block * self.elementsize] * (
            last_block > 0
        )
        decompress = codecs.lz4_decode if self.compression == "lz4" else codecs.zstd_decode
        parts = []
        position = _BITSHUFFLE_HEADER.size
        try:
            for size in sizes:  # the blocks of one chunk
                (length,) = _BLOCK_SIZE.unpack_from(data, position)
                position += _BLOCK_SIZE.size
                block = data[position : position + length]
                position += length
                parts.append(decompress(block, out=size))
        except (struct.error, RuntimeError, ValueError) as err:
            raise ChunkDecodeError(
                f"codec {self.name}: a chunk's blocks are corrupt: {err}"
            ) from err
        parts.append(data[position : position + (items % 8) * self.elementsize])
        return b"".join(bytes(p) for p in parts), block_items


@dataclass(frozen=True)
class Blosc2Codec(DecodeOnlyBytesBytesCodec):
    """Blosc2 (HDF5 filter 32026): one Blosc2 frame (a super-chunk or b2nd array) or chunk."""

    name: ClassVar[str] = "vz.blosc2"

    def _decode_bytes(self, data: bytes, spec: ArraySpec) -> bytes:
        blosc2 = _optional_module("blosc2", "python-blosc2")
        try:
            if data[2:9] == b"b2frame":
                frame = blosc2.from_cframe(data, copy=True)
                decoded = frame[:] if isinstance(frame, blosc2.SChunk) else frame.tobytes()
            else:
                decoded = blosc2.decompress(data)
        except (RuntimeError, ValueError, TypeError) as err:
            raise ChunkDecodeError(f"codec {self.name}: a chunk is not Blosc2 data: {err}") from err
        return bytes(decoded)


# ---- array codecs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DeltaCodec(DecodeOnlyArrayArrayCodec):
    """Integers stored as differences along one axis (TIFF's horizontal predictor, 2).

    Each value is the difference to the previous one along ``axis`` (the first is
    kept), computed in the integer type itself, so decoding is a cumulative sum that
    wraps around as the encoder's subtraction did.
    """

    name: ClassVar[str] = "vz.delta"
    axis: int = -1

    def validate(
        self,
        *,
        shape: tuple[int, ...],
        dtype: ZDType[TBaseDType, TBaseScalar],
        chunk_grid: ChunkGridMetadata,
    ) -> None:
        _require_kind(self.name, dtype, "iu", "applies to integers")
        if not -len(shape) <= self.axis < len(shape):
            raise InvalidMetadataError(
                f"codec {self.name}: axis {self.axis} is not an axis of a {len(shape)}-d array"
            )

    def _decode_array(self, array: npt.NDArray[Any]) -> npt.NDArray[Any]:
        decoded: npt.NDArray[Any] = np.cumsum(array, axis=self.axis, dtype=array.dtype)
        return decoded


@dataclass(frozen=True)
class SimplePackingCodec(DecodeOnlyArrayBytesCodec):
    """GRIB2 simple packing (data representation template 5.0).

    Each value is a ``bits_per_value``-bit unsigned integer X, packed most significant
    bit first without padding between values; it decodes as GRIB decoders compute it,
    ``(reference_value + X * 2**binary_scale_factor) * 10**-decimal_scale_factor`` in
    double precision, then cast to the array's float type.
    """

    name: ClassVar[str] = "vz.simple_packing"
    reference_value: float = 0.0
    binary_scale_factor: int = 0
    decimal_scale_factor: int = 0
    bits_per_value: int = 16

    def __post_init__(self) -> None:
        if not 0 <= self.bits_per_value <= 32:
            raise InvalidMetadataError(
                f"codec {self.name}: bits_per_value {self.bits_per_value} is not in 0..32"
            )

    def validate(
        self,
        *,
        shape: tuple[int, ...],
        dtype: ZDType[TBaseDType, TBaseScalar],
        chunk_grid: ChunkGridMetadata,
    ) -> None:
        _require_kind(self.name, dtype, "f", "decodes to floats")

    def _decode_to_array(self, data: bytes, count: int, dtype: np.dtype[Any]) -> npt.NDArray[Any]:
        nbits = self.bits_per_value
        if len(data) * 8 < count * nbits:
            raise ChunkDecodeError(
                f"codec {self.name}: a chunk of {count} values of {nbits} bits needs "
                f"{-(-count * nbits // 8)} bytes, it has {len(data)}"
            )
        bits = np.unpackbits(np.frombuffer(data, np.uint8), count=count * nbits)
        weights = np.left_shift(np.uint64(1), np.arange(nbits - 1, -1, -1, dtype=np.uint64))
        packed = bits.reshape(count, nbits) @ weights
        scaled = self.reference_value + packed * 2.0**self.binary_scale_factor
        decoded: npt.NDArray[Any] = (scaled * 10.0**-self.decimal_scale_factor).astype(dtype)
        return decoded


# ---- GRIB -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GRIBCodec(DecodeOnlyArrayBytesCodec):
    """A whole GRIB message (edition 1 or 2) decoded by ecCodes to its grid's values.

    Every packing ecCodes reads works (simple, complex, spatial differencing, JPEG,
    CCSDS, IEEE, PNG); points the message marks missing (its bitmap, complex
    packing's missing-value management) decode as NaN, as cfgrib reads them. Needs the
    ``eccodes`` package (the ``grib`` extra).
    """

    name: ClassVar[str] = "vz.grib"
    field: int = 0
    """Which field of a multi-field message the chunk holds (0 for the first)."""
    order: str = "rows"
    """``"rows"``: a grid of rows, each running as the first does (cfgrib's 2-D grids);
    ``"stored"``: the points in the order the message stores them (cfgrib's ``values``)."""

    def __post_init__(self) -> None:
        if not isinstance(self.field, int) or isinstance(self.field, bool) or self.field < 0:
            raise InvalidMetadataError(
                f"codec {self.name}: field must be a non-negative integer, not {self.field!r}"
            )
        check_grib_order(self.order, self.name)

    def validate(
        self,
        *,
        shape: tuple[int, ...],
        dtype: ZDType[TBaseDType, TBaseScalar],
        chunk_grid: ChunkGridMetadata,
    ) -> None:
        _require_kind(self.name, dtype, "f", "decodes to floats")

    def _decode_to_array(self, data: bytes, count: int, dtype: np.dtype[Any]) -> npt.NDArray[Any]:
        where = f"codec {self.name}"
        return decode_grib_field(data, self.field, count, where, order=self.order).astype(dtype)


GRIB_ORDERS = ("rows", "stored")


def check_grib_order(order: object, codec: str) -> None:
    """Refuse a ``vz.grib`` ``order`` other than `GRIB_ORDERS`."""
    if order not in GRIB_ORDERS:
        raise InvalidMetadataError(
            f"codec {codec}: order must be one of {GRIB_ORDERS}, not {order!r}"
        )


_GRIB_MISSING = float(np.finfo(np.float32).max)
"""cfgrib's missing-value indicator (its ``MISSING_VAUE_INDICATOR``)."""


def decode_grib_field(
    data: bytes, field: int, count: int | None, where: str, *, order: str = "rows"
) -> npt.NDArray[np.float64]:
    """Field ``field`` of the GRIB message ``data`` as ecCodes decodes it (``count`` values).

    Points the message marks missing are NaN (as cfgrib). With ``order="rows"``
    the rows of a grid that alternates row direction all run one way, and a grid stored
    column by column is laid out as rows (`grib_points_as_rows`); with ``"stored"`` the points stay in the message's order (as cfgrib gives
    a flat ``values`` axis). The one decoder behind the zarr v3 codec `GRIBCodec` and
    the numcodecs codec of Kerchunk output.

    Raises
    ------
    ChunkDecodeError
        Without eccodes, for bytes that are not such a message, or a count (when given)
        that differs.
    """
    try:
        import eccodes
    except ImportError as err:
        raise ChunkDecodeError(f"{where}: decoding GRIB needs the eccodes package") from err
    fields = message_fields(bytes(data), where, ChunkDecodeError)
    if field >= len(fields):
        raise ChunkDecodeError(
            f"{where}: the message holds {len(fields)} fields, not field {field}"
        )
    try:
        handle = eccodes.codes_new_from_message(fields[field])
    except Exception as err:  # ecCodes raises its own error family
        raise ChunkDecodeError(f"{where}: not a GRIB message: {err}") from err
    try:
        # As cfgrib: ecCodes is told to give the points the message marks missing (its
        # bitmap, or complex packing's missing-value management, as in cfgrib's
        # ds.waveh.5) as the float32 maximum, which then reads NaN. A value the message
        # stores is never NaN, even one equal to its missingValue (9999 gpm, say).
        with contextlib.suppress(eccodes.GribInternalError):
            eccodes.codes_set(handle, "missingValue", _GRIB_MISSING)
        values = np.asarray(eccodes.codes_get_values(handle), dtype=np.float64)
        values[values == _GRIB_MISSING] = np.nan
        if order == "rows":
            values = grib_points_as_rows(eccodes, handle, values)
    except Exception as err:
        raise ChunkDecodeError(f"{where}: ecCodes cannot decode: {err}") from err
    finally:
        eccodes.codes_release(handle)
    if count is not None and values.size != count:
        raise ChunkDecodeError(
            f"{where}: the message holds {values.size} values, the chunk {count}"
        )
    return values


def grib_points_as_rows(
    eccodes: Any, handle: Any, values: npt.NDArray[Any], *, points: bool = False
) -> npt.NDArray[Any]:
    """The grid's values (or with ``points`` its latitudes or longitudes) as rows.

    ecCodes returns the values in the order they are stored. With scanning mode bit
    0x10 (``alternativeRowScanning``) odd rows run the opposite way, and cfgrib turns
    them round so that every row runs as the first does (ecCodes gives the points'
    latitudes and longitudes with every row running one way already). With bit 0x20
    (``jPointsAreConsecutive``) values and points alike are stored column by column;
    they are laid out as rows here, where cfgrib lays the column-ordered values out as
    rows unturned.
    """
    flags = [
        eccodes.codes_is_defined(handle, k) and bool(eccodes.codes_get(handle, k))
        for k in ("alternativeRowScanning", "jPointsAreConsecutive")
    ]
    alternate, by_columns = flags
    alternate = alternate and not points
    if not (alternate or by_columns):
        return values
    ni, nj = (
        int(eccodes.codes_get(handle, k)) if eccodes.codes_is_defined(handle, k) else 0
        for k in ("Ni", "Nj")
    )
    if ni <= 0 or nj <= 0 or ni * nj != values.size:
        return values  # not rows and columns (a reduced grid): nothing to turn round
    lines = values.reshape((ni, nj) if by_columns else (nj, ni)).copy()
    if alternate:
        lines[1::2] = lines[1::2, ::-1]
    return (lines.T if by_columns else lines).ravel()


# ---- FITS ------------------------------------------------------------------------------------

FITSTileCompression = Literal["GZIP_1", "GZIP_2", "RICE_1", "PLIO_1", "HCOMPRESS_1"]
_FITS_BITPIX = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


# astropy's cfitsio decoders release the GIL and keep state in C statics (HCOMPRESS's
# bit buffer at least): decoding two tiles at once in threads gives wrong values, so
# every call holds this lock.
_CFITSIO_LOCK = threading.Lock()


def _astropy_compression() -> Any:
    return _optional_module("astropy.io.fits.hdu.compressed._compression", "astropy (vz[fits])")


@dataclass(frozen=True)
class FITSTileCodec(DecodeOnlyBytesBytesCodec):
    """One tile of a tile-compressed FITS image (FITS 4.0 section 10.4).

    The tile decodes to ``prod(shape)`` big-endian values of ``bitpix``, the chunk's
    shape being the tile's (an edge tile is a short chunk of a rectilinear grid).
    RICE_1 takes ``blocksize`` and ``bytepix``; HCOMPRESS_1 ``scale`` and ``smooth``
    and a tile with two axes longer than 1. ``element`` is the byte width of the
    heap column's elements (1 for ``1PB``, 2 for ``1PI``, 4 for ``1PJ``). GZIP_1 and GZIP_2 (byte-shuffled) tiles
    may hold integers wider than ``bitpix`` (cfitsio once wrote 16-bit images as
    32-bit integers): the width is taken from the decoded size, as astropy does.
    Values wrap into ``bitpix`` as astropy's assignment into its image array does.
    """

    name: ClassVar[str] = "vz.fits_tile"
    compression: FITSTileCompression = "RICE_1"
    bitpix: int = 16
    blocksize: int = 32
    bytepix: int = 4
    scale: int = 0
    smooth: int = 0
    element: int = 1

    def __post_init__(self) -> None:
        problems = []
        if self.compression not in ("GZIP_1", "GZIP_2", "RICE_1", "PLIO_1", "HCOMPRESS_1"):
            problems.append(f"compression {self.compression!r} is not a FITS tile compression")
        if self.bitpix not in _FITS_BITPIX:
            problems.append(f"bitpix {self.bitpix} is not 8, 16, 32, 64, -32 or -64")
        elif self.bitpix < 0 and not self.compression.startswith("GZIP"):
            problems.append(f"{self.compression} tiles hold integers, not bitpix {self.bitpix}")
        if self.element not in (1, 2, 4):
            problems.append(f"element {self.element} is not 1, 2 or 4 bytes")
        if self.bytepix not in (1, 2, 4, 8) or self.blocksize < 1:
            problems.append(
                f"bytepix {self.bytepix} must be 1, 2, 4 or 8 and blocksize {self.blocksize} positive"
            )
        if problems:
            raise InvalidMetadataError(f"codec {self.name}: " + "; ".join(problems))

    def _decode_bytes(self, data: bytes, spec: ArraySpec) -> bytes:
        tilesize = int(np.prod(spec.shape))
        if self.compression.startswith("GZIP"):
            return self._decode_gzip(data, tilesize)
        c = _astropy_compression()
        if self.element > 1:
            # A heap column of 16- or 32-bit elements (1PI, 1PJ): astropy hands their
            # values to cfitsio's decoders in native byte order.
            data = (
                np.frombuffer(data, dtype=f">i{self.element}").astype(f"=i{self.element}").tobytes()
            )
        try:
            with _CFITSIO_LOCK:
                values = self._decode_cfitsio(c, data, spec, tilesize)
        except c.CfitsioException as err:
            raise ChunkDecodeError(
                f"codec {self.name}: a {self.compression} tile is corrupt: {err}"
            ) from err
        if len(values) < tilesize:
            raise ChunkDecodeError(
                f"codec {self.name}: a {self.compression} tile decoded to {len(values)} "
                f"values, its shape {spec.shape} holds {tilesize}"
            )
        wrapped: bytes = values[:tilesize].astype(_FITS_BITPIX[self.bitpix]).tobytes()
        return wrapped

    def _decode_cfitsio(
        self, c: Any, data: bytes, spec: ArraySpec, tilesize: int
    ) -> npt.NDArray[Any]:
        """The integers of one RICE_1, PLIO_1 or HCOMPRESS_1 tile (call with the lock held)."""
        if self.compression == "RICE_1":
            raw = c.decompress_rice_1_c(data, self.blocksize, self.bytepix, tilesize)
            return np.frombuffer(raw, dtype=f"i{self.bytepix}")
        if self.compression == "PLIO_1":
            return np.frombuffer(c.decompress_plio_1_c(data, tilesize), dtype="i4")
        sides = [n for n in spec.shape if n != 1]
        if len(sides) != 2:
            raise ChunkDecodeError(
                f"codec {self.name}: HCOMPRESS_1 needs a tile with two axes longer "
                f"than 1, this one has shape {spec.shape}"
            )
        raw = c.decompress_hcompress_1_c(data, sides[0], sides[1], self.scale, self.smooth, 8)
        return np.frombuffer(raw, dtype="i4")  # always 4-byte integers

    def _decode_gzip(self, data: bytes, tilesize: int) -> bytes:
        itemsize = abs(self.bitpix) // 8
        stream = zlib.decompressobj(31)  # a gzip member
        try:
            raw = stream.decompress(data, 8 * tilesize + 1)  # no tile holds more
        except zlib.error as err:
            raise ChunkDecodeError(
                f"codec {self.name}: a {self.compression} tile is corrupt: {err}"
            ) from err
        width, extra = divmod(len(raw), tilesize) if tilesize else (itemsize, 0)
        if extra or width not in (1, 2, 4, 8):
            raise ChunkDecodeError(
                f"codec {self.name}: a {self.compression} tile decoded to {len(raw)} bytes, "
                f"which is no whole number of 1, 2, 4 or 8-byte values for its {tilesize}"
            )
        stored = np.frombuffer(raw, dtype=np.uint8)
        if self.compression == "GZIP_2":
            stored = stored.reshape(width, -1).T.ravel()
        kind = "f" if self.bitpix < 0 and width >= 4 else ("u" if width == 1 else "i")
        values = stored.view(f">{kind}{width}")
        converted: bytes = values.astype(_FITS_BITPIX[self.bitpix]).tobytes()
        return converted


@dataclass(frozen=True)
class SignFlipCodec(DecodeOnlyBytesBytesCodec):
    """Big-endian integers of ``itemsize`` bytes stored with their top bit flipped.

    FITS stores unsigned integers as signed ones offset by BZERO = 2**(8 * itemsize - 1)
    (and signed bytes as unsigned ones with BZERO = -128); adding that offset is the
    same as flipping the top bit, which keeps the values exact in their own type.
    """

    name: ClassVar[str] = "vz.sign_flip"
    itemsize: int = 2

    def __post_init__(self) -> None:
        if self.itemsize not in (1, 2, 4, 8):
            raise InvalidMetadataError(
                f"codec {self.name}: itemsize {self.itemsize} is not 1, 2, 4 or 8"
            )

    def _decode_bytes(self, data: bytes, spec: ArraySpec) -> bytes:
        if len(data) % self.itemsize:
            raise ChunkDecodeError(
                f"codec {self.name}: a chunk of {len(data)} bytes is no whole number of "
                f"{self.itemsize}-byte items"
            )
        items = np.frombuffer(data, dtype=np.uint8).reshape(-1, self.itemsize).copy()
        items[:, 0] ^= 0x80
        return items.tobytes()


FORMAT_CODECS: tuple[type[Any], ...] = (
    LZFCodec,
    SZIPCodec,
    LZ4H5Codec,
    BitshuffleCodec,
    Blosc2Codec,
    DeltaCodec,
    SimplePackingCodec,
    GRIBCodec,
    FITSTileCodec,
    SignFlipCodec,
)
"""Every ``vz.`` codec; each has a ``zarr.codecs`` entry point in pyproject.toml."""

_REGISTERED = False


def register_format_codecs() -> None:
    """Make zarr know the ``vz.*`` codecs (idempotent; done on ``import vzcore``)."""
    global _REGISTERED
    if not _REGISTERED:
        from vzcore.tiff_codecs import TIFF_CODECS  # (the TIFF codecs live in their own module)

        for codec in (*FORMAT_CODECS, *TIFF_CODECS):
            register_codec(codec.name, codec)
        _REGISTERED = True
