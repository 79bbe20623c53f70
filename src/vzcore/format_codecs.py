"""Zarr v3 codecs for format-specific compressions zarr lacks, registered under ``vz.`` names.

Decoding uses imagecodecs (the ``formats`` extra), imported only when a chunk is
decoded. Encoding is not offered: these codecs describe existing bytes.

- ``vz.lzf``: the LZF stream of HDF5 filter 32000 (h5py's lzf).
- ``vz.szip``: SZIP/libaec data of HDF5 filter 4, with its 4-byte size header;
  configuration ``options_mask``, ``pixels_per_block``, ``bits_per_pixel``,
  ``pixels_per_scanline`` as HDF5 stores them.
"""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
from zarr.abc.codec import BytesBytesCodec
from zarr.registry import register_codec

from vzcore.errors import VirtualizationError

if TYPE_CHECKING:
    from zarr.core.array_spec import ArraySpec
    from zarr.core.buffer import Buffer

__all__ = ["LZFCodec", "SZIPCodec", "register_format_codecs"]


def _imagecodecs() -> Any:
    try:
        import imagecodecs
    except ImportError as err:
        raise VirtualizationError(
            "decoding this chunk needs imagecodecs: pip install 'vz[formats]'"
        ) from err
    return imagecodecs


def _decoded_nbytes(spec: ArraySpec) -> int:
    return int(np.prod(spec.shape)) * spec.dtype.to_native_dtype().itemsize


@dataclass(frozen=True)
class _DecodeOnlyCodec(BytesBytesCodec):
    """A bytes-to-bytes codec that decodes with a function of (data, expected size)."""

    name: ClassVar[str]
    is_fixed_size = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(**(data.get("configuration") or {}))

    def to_dict(self) -> dict[str, Any]:
        config = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        return {"name": self.name, "configuration": config} if config else {"name": self.name}

    @abc.abstractmethod
    def _decode_bytes(self, data: bytes, nbytes: int) -> bytes:
        """The decoded bytes of one chunk of ``nbytes`` bytes."""

    def _decode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> Buffer:
        decoded = self._decode_bytes(chunk_bytes.to_bytes(), _decoded_nbytes(chunk_spec))
        return chunk_spec.prototype.buffer.from_bytes(decoded)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> Buffer:
        return await asyncio.to_thread(self._decode_sync, chunk_bytes, chunk_spec)

    async def _encode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> Buffer | None:
        raise VirtualizationError(f"codec {self.name} only decodes existing data")

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise VirtualizationError(f"codec {self.name} cannot predict encoded sizes")


@dataclass(frozen=True)
class LZFCodec(_DecodeOnlyCodec):
    """LZF (HDF5 filter 32000)."""

    name: ClassVar[str] = "vz.lzf"

    def _decode_bytes(self, data: bytes, nbytes: int) -> bytes:
        decoded: bytes = _imagecodecs().lzf_decode(data, out=nbytes)
        return decoded


@dataclass(frozen=True)
class SZIPCodec(_DecodeOnlyCodec):
    """SZIP (HDF5 filter 4), data prefixed by its 4-byte decoded size."""

    name: ClassVar[str] = "vz.szip"
    options_mask: int = field(default=0)
    pixels_per_block: int = field(default=32)
    bits_per_pixel: int = field(default=8)
    pixels_per_scanline: int = field(default=1)

    def _decode_bytes(self, data: bytes, nbytes: int) -> bytes:
        decoded: bytes = _imagecodecs().szip_decode(
            data,
            self.options_mask,
            self.pixels_per_block,
            self.bits_per_pixel,
            self.pixels_per_scanline,
            header=True,
        )
        return decoded


_REGISTERED = False


def register_format_codecs() -> None:
    """Make zarr know the ``vz.*`` codecs (idempotent; done on ``import vzcore``)."""
    global _REGISTERED
    if not _REGISTERED:
        for codec in (LZFCodec, SZIPCodec):
            register_codec(codec.name, codec)
        _REGISTERED = True
