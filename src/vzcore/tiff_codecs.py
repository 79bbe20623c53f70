"""Decode-only zarr v3 codecs for TIFF segments, under ``vz.`` names.

TIFF compresses each tile or strip on its own; where zarr and numcodecs have
the codec (deflate as ``numcodecs.zlib``, ``zstd``, ``numcodecs.lzma``) the TIFF
parser uses theirs, and these cover the rest. Decoders come from imagecodecs
(the ``tiff`` extra), imported only when a chunk is decoded. Like every codec of
`vzcore.format_codecs` they only decode, and zarr finds them through the
``zarr.codecs`` entry points vz declares.

Bytes to bytes (a stored segment to the bytes of the chunk):

- ``vz.lzw``: TIFF LZW (compression 5).
- ``vz.packbits``: PackBits run lengths (compression 32773).
- ``vz.bitorder``: FillOrder 2, the bits of every byte reversed.
- ``vz.float_predictor``: TIFF's floating-point predictor (3).
- image codecs, each decoding a segment to its pixels as little-endian bytes:
  ``vz.jpeg`` (7, 33007, DNG's 34892; with the JPEGTables of its IFD), ``vz.webp``
  (50001, 34927), ``vz.jpegxl`` (50002 and 52546), ``vz.jpeg2k`` (33003-33005,
  34712), ``vz.lerc`` (34887), ``vz.png`` (34933), ``vz.jpegxr`` (22610 and 34934).

Array to bytes (in place of ``bytes``): ``vz.packed_ints``, unsigned integers of
1 to 31 bits packed without gaps, each row starting on a byte; ``vz.float24``,
24-bit floats decoded to float32.
"""

from __future__ import annotations

import abc
import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from vzcore.errors import ChunkDecodeError, InvalidMetadataError
from vzcore.format_codecs import (
    DecodeOnlyArrayBytesCodec,
    DecodeOnlyBytesBytesCodec,
    _decoded_nbytes,
    _imagecodecs,
)

if TYPE_CHECKING:
    from zarr.core.array_spec import ArraySpec

__all__ = [
    "TIFF_CODECS",
    "BitorderCodec",
    "Float24Codec",
    "FloatPredictorCodec",
    "JPEG2KCodec",
    "JPEGCodec",
    "JPEGXLCodec",
    "JPEGXRCodec",
    "LERCCodec",
    "LZWCodec",
    "PNGCodec",
    "PackBitsCodec",
    "PackedIntsCodec",
    "WebPCodec",
]


def _decoding(name: str, decode: Any, *args: Any, **kwargs: Any) -> Any:
    """Run an imagecodecs decoder; its failures become `ChunkDecodeError`."""
    try:
        return decode(*args, **kwargs)
    except Exception as err:  # imagecodecs raises its own error class per codec
        raise ChunkDecodeError(f"codec {name}: a chunk cannot be decoded: {err}") from err


def _fitted(name: str, decoded: bytes, spec: ArraySpec) -> bytes:
    """``decoded`` cut to the chunk's size: LZW and PackBits streams may run past the end."""
    expected = _decoded_nbytes(spec)
    if len(decoded) < expected:
        raise ChunkDecodeError(
            f"codec {name}: a chunk decoded to {len(decoded)} bytes, expected {expected}"
        )
    return decoded[:expected]


@dataclass(frozen=True)
class LZWCodec(DecodeOnlyBytesBytesCodec):
    """TIFF LZW (compression 5)."""

    name: ClassVar[str] = "vz.lzw"

    def _decode_bytes(self, data: bytes, spec: ArraySpec) -> bytes:
        decoded = _decoding(self.name, _imagecodecs().lzw_decode, data)
        return _fitted(self.name, bytes(decoded), spec)


@dataclass(frozen=True)
class PackBitsCodec(DecodeOnlyBytesBytesCodec):
    """PackBits run-length encoding (compression 32773)."""

    name: ClassVar[str] = "vz.packbits"

    def _decode_bytes(self, data: bytes, spec: ArraySpec) -> bytes:
        decoded = _decoding(self.name, _imagecodecs().packbits_decode, data)
        return _fitted(self.name, bytes(decoded), spec)


_REVERSED_BITS = np.array(
    [int(f"{b:08b}"[::-1], 2) for b in range(256)], dtype=np.uint8
)  # the 256 bytes with their bits in reverse order


@dataclass(frozen=True)
class BitorderCodec(DecodeOnlyBytesBytesCodec):
    """FillOrder 2: the stored bytes have their least significant bit first."""

    name: ClassVar[str] = "vz.bitorder"

    def _decode_bytes(self, data: bytes, spec: ArraySpec) -> bytes:
        return _REVERSED_BITS[np.frombuffer(data, np.uint8)].tobytes()

    def _decode_sync(self, chunk_bytes: Any, chunk_spec: ArraySpec) -> Any:
        # The size of the bytes under it is the codec after it's business, not this one's.
        decoded = self._decode_bytes(chunk_bytes.to_bytes(), chunk_spec)
        return chunk_spec.prototype.buffer.from_bytes(decoded)


def _check_axis(name: str, axis: int) -> None:
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise InvalidMetadataError(f"codec {name}: axis {axis!r} is not an integer")


@dataclass(frozen=True)
class FloatPredictorCodec(DecodeOnlyBytesBytesCodec):
    """TIFF's floating-point predictor (Adobe Photoshop TIFF technical note 3).

    Each row (the chunk's axes from ``axis`` on, e.g. width and samples) is stored
    as the most significant bytes of all its values, then the next bytes, and so
    on, and those bytes as differences to the byte one pixel (``samples`` values)
    earlier. Decoding gives the row's values as big-endian bytes, whatever the
    file's byte order, so the ``bytes`` codec before this one says ``big``.
    """

    name: ClassVar[str] = "vz.float_predictor"
    axis: int = 1

    def __post_init__(self) -> None:
        _check_axis(self.name, self.axis)

    def _decode_bytes(self, data: bytes, spec: ArraySpec) -> bytes:
        shape = spec.shape
        itemsize = spec.dtype.to_native_dtype().itemsize
        if not -len(shape) <= self.axis < len(shape):
            raise ChunkDecodeError(
                f"codec {self.name}: axis {self.axis} is not an axis of a {len(shape)}-d chunk"
            )
        axis = self.axis % len(shape)
        row_items = int(np.prod(shape[axis:]))
        distance = int(np.prod(shape[axis + 1 :]))
        expected = _decoded_nbytes(spec)
        if len(data) < expected:
            raise ChunkDecodeError(
                f"codec {self.name}: a chunk has {len(data)} bytes, expected {expected}"
            )
        rows = expected // max(row_items * itemsize, 1)
        deltas = np.frombuffer(data, np.uint8, count=expected).reshape(rows, -1, distance)
        summed = np.cumsum(deltas, axis=1, dtype=np.uint8).reshape(rows, itemsize, row_items)
        return np.ascontiguousarray(summed.transpose(0, 2, 1)).tobytes()


class _ImageCodec(DecodeOnlyBytesBytesCodec):
    """An image codec: a segment decodes to pixels, handed on as little-endian bytes."""

    name: ClassVar[str]

    @abc.abstractmethod
    def _decode_image(self, data: bytes, codecs: Any) -> npt.NDArray[Any]:
        """The decoded pixels of one segment."""

    def _decode_bytes(self, data: bytes, spec: ArraySpec) -> bytes:
        pixels = np.asarray(_decoding(self.name, self._decode_image, data, _imagecodecs()))
        wanted = spec.dtype.to_native_dtype()
        if pixels.dtype.itemsize != wanted.itemsize or pixels.dtype.kind != wanted.kind:
            raise ChunkDecodeError(
                f"codec {self.name}: a chunk decoded to {pixels.dtype} values, "
                f"the array holds {wanted}"
            )
        return pixels.astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes()


JPEGColorspace = Literal["GRAYSCALE", "RGB", "CMYK"] | None


@dataclass(frozen=True)
class JPEGCodec(_ImageCodec):
    """Baseline or lossless JPEG segments (TIFF compression 7).

    ``tables`` are the IFD's JPEGTables (base64), the quantisation and Huffman
    tables the segments leave out; ``colorspace_jpeg`` and ``colorspace_data`` are
    the colour spaces of the JPEG stream and of the stored pixels (YCbCr segments
    decode to RGB), as tifffile chooses them from the photometric interpretation.
    """

    name: ClassVar[str] = "vz.jpeg"
    tables: str | None = None
    colorspace_jpeg: JPEGColorspace = None
    colorspace_data: JPEGColorspace = None

    def _decode_image(self, data: bytes, codecs: Any) -> npt.NDArray[Any]:
        tables = base64.b64decode(self.tables) if self.tables else None
        decoded: npt.NDArray[Any] = codecs.jpeg8_decode(
            data,
            tables=tables,
            colorspace=self.colorspace_jpeg,
            outcolorspace=self.colorspace_data,
        )
        return decoded


@dataclass(frozen=True)
class WebPCodec(_ImageCodec):
    """WebP segments (TIFF compression 50001)."""

    name: ClassVar[str] = "vz.webp"

    def _decode_image(self, data: bytes, codecs: Any) -> npt.NDArray[Any]:
        decoded: npt.NDArray[Any] = codecs.webp_decode(data)
        return decoded


@dataclass(frozen=True)
class JPEGXLCodec(_ImageCodec):
    """JPEG XL segments (TIFF compression 50002, 52546)."""

    name: ClassVar[str] = "vz.jpegxl"

    def _decode_image(self, data: bytes, codecs: Any) -> npt.NDArray[Any]:
        decoded: npt.NDArray[Any] = codecs.jpegxl_decode(data)
        return decoded


@dataclass(frozen=True)
class JPEG2KCodec(_ImageCodec):
    """JPEG 2000 segments (TIFF compression 33003-33005, 34712)."""

    name: ClassVar[str] = "vz.jpeg2k"

    def _decode_image(self, data: bytes, codecs: Any) -> npt.NDArray[Any]:
        decoded: npt.NDArray[Any] = codecs.jpeg2k_decode(data)
        return decoded


@dataclass(frozen=True)
class JPEGXRCodec(_ImageCodec):
    """JPEG XR segments (TIFF compression 22610, 34934)."""

    name: ClassVar[str] = "vz.jpegxr"

    def _decode_image(self, data: bytes, codecs: Any) -> npt.NDArray[Any]:
        decoded: npt.NDArray[Any] = codecs.jpegxr_decode(data)
        return decoded


@dataclass(frozen=True)
class PNGCodec(_ImageCodec):
    """PNG segments (TIFF compression 34933)."""

    name: ClassVar[str] = "vz.png"

    def _decode_image(self, data: bytes, codecs: Any) -> npt.NDArray[Any]:
        decoded: npt.NDArray[Any] = codecs.png_decode(data)
        return decoded


@dataclass(frozen=True)
class LERCCodec(_ImageCodec):
    """LERC segments (TIFF compression 34887), optionally inside deflate or zstd.

    ``compression`` is the LercParameters tag's second value: 0 plain LERC, 1
    deflate, 2 zstd around it.
    """

    name: ClassVar[str] = "vz.lerc"
    compression: Literal["none", "deflate", "zstd"] = "none"

    def _decode_image(self, data: bytes, codecs: Any) -> npt.NDArray[Any]:
        if self.compression == "deflate":
            data = codecs.deflate_decode(data)
        elif self.compression == "zstd":
            data = codecs.zstd_decode(data)
        decoded: npt.NDArray[Any] = codecs.lerc_decode(data)
        return decoded


@dataclass(frozen=True)
class PackedIntsCodec(DecodeOnlyArrayBytesCodec):
    """Unsigned integers of ``bits`` bits (1-31) packed most significant bit first.

    Each row (the chunk's axes from ``axis`` on) starts on a new byte, as TIFF
    stores bilevel and 2-, 4-, 12-bit images.
    """

    name: ClassVar[str] = "vz.packed_ints"
    bits: int = 1
    axis: int = 1

    def __post_init__(self) -> None:
        _check_axis(self.name, self.axis)
        if not isinstance(self.bits, int) or not 1 <= self.bits <= 31:
            raise InvalidMetadataError(f"codec {self.name}: bits {self.bits!r} is not in 1..31")

    def _decode_sync(self, chunk_bytes: Any, chunk_spec: ArraySpec) -> Any:
        shape = chunk_spec.shape
        if not -len(shape) <= self.axis < len(shape):
            raise ChunkDecodeError(
                f"codec {self.name}: axis {self.axis} is not an axis of a {len(shape)}-d chunk"
            )
        row_items = int(np.prod(shape[self.axis % len(shape) :]))
        dtype = chunk_spec.dtype.to_native_dtype()
        count = int(np.prod(shape))
        rows = count // max(row_items, 1)
        data = chunk_bytes.to_bytes()
        row_bytes = -(-row_items * self.bits // 8)
        if len(data) < rows * row_bytes:
            raise ChunkDecodeError(
                f"codec {self.name}: a chunk of {rows} rows of {row_items} values of "
                f"{self.bits} bits needs {rows * row_bytes} bytes, it has {len(data)}"
            )
        values = _decoding(
            self.name,
            _imagecodecs().packints_decode,
            data[: rows * row_bytes],
            dtype,
            self.bits,
            runlen=row_items,
        )
        decoded = np.asarray(values, dtype=dtype)[:count].reshape(shape)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(decoded)

    def _decode_to_array(self, data: bytes, count: int, dtype: np.dtype[Any]) -> npt.NDArray[Any]:
        raise NotImplementedError  # _decode_sync needs the chunk's shape


@dataclass(frozen=True)
class Float24Codec(DecodeOnlyArrayBytesCodec):
    """24-bit floats (1 sign, 7 exponent, 16 mantissa bits), decoded to float32."""

    name: ClassVar[str] = "vz.float24"
    endian: Literal["little", "big"] = "little"

    def _decode_to_array(self, data: bytes, count: int, dtype: np.dtype[Any]) -> npt.NDArray[Any]:
        if dtype != np.dtype("float32"):
            raise ChunkDecodeError(f"codec {self.name} decodes to float32, not {dtype}")
        if len(data) < 3 * count:
            raise ChunkDecodeError(
                f"codec {self.name}: {count} values need {3 * count} bytes, a chunk has {len(data)}"
            )
        byteorder = "<" if self.endian == "little" else ">"
        decoded: npt.NDArray[Any] = _decoding(
            self.name, _imagecodecs().float24_decode, data[: 3 * count], byteorder=byteorder
        )
        return decoded


TIFF_CODECS: tuple[type[Any], ...] = (
    LZWCodec,
    PackBitsCodec,
    BitorderCodec,
    FloatPredictorCodec,
    JPEGCodec,
    WebPCodec,
    JPEGXLCodec,
    JPEG2KCodec,
    JPEGXRCodec,
    PNGCodec,
    LERCCodec,
    PackedIntsCodec,
    Float24Codec,
)
"""Every TIFF ``vz.`` codec; each has a ``zarr.codecs`` entry point in pyproject.toml."""
