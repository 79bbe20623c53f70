"""The zarr v3 codec pipeline of one TIFF IFD: compression, predictor, packing, bit order.

Codecs zarr or numcodecs have are used as they are (deflate as ``numcodecs.zlib``,
``zstd``, ``numcodecs.lzma``); the others are vz's (`vzcore.tiff_codecs`). The
pipeline lists them in encoding order: an array-to-array predictor, the
array-to-bytes codec (``bytes``, ``vz.packed_ints`` or ``vz.float24``), then the
floating-point predictor, the compression and the bit order on the bytes.
"""

from __future__ import annotations

import base64
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from vzcore.parsers.tiff_ifd import TIFFFormatError

if TYPE_CHECKING:
    from vzcore.parsers.tiff_layout import Image

__all__ = ["COMPRESSIONS", "codecs_of", "is_expressible"]

EXTRA_SAMPLES, JPEG_TABLES, LERC_PARAMETERS = 338, 347, 50674

COMPRESSIONS: dict[int, str] = {
    1: "none",
    2: "CCITT RLE",
    3: "CCITT Group 3 fax",
    4: "CCITT Group 4 fax",
    5: "LZW",
    6: "old-style JPEG",
    7: "JPEG",
    8: "deflate",
    32946: "deflate",
    32773: "PackBits",
    34925: "LZMA",
    50000: "zstd",
    34887: "LERC",
    50001: "WebP",
    50002: "JPEG XL",
    52546: "JPEG XL",
    33003: "JPEG 2000",
    33004: "JPEG 2000",
    33005: "JPEG 2000",
    34712: "JPEG 2000",
    34933: "PNG",
    34934: "JPEG XR",
    22610: "JPEG XR",
    34892: "DNG lossy JPEG",
    33007: "JPEG (ALT_JPEG)",
    34926: "zstd (deprecated id)",
    34927: "WebP (deprecated id)",
}
"""TIFF compression ids and their names; all but CCITT and old-style JPEG are read."""

_STREAM_CODECS: dict[int, dict[str, Any]] = {
    5: {"name": "vz.lzw"},
    8: {"name": "numcodecs.zlib", "configuration": {"level": 6}},
    32946: {"name": "numcodecs.zlib", "configuration": {"level": 6}},
    32773: {"name": "vz.packbits"},
    34925: {"name": "numcodecs.lzma"},
    50000: {"name": "zstd", "configuration": {"level": 0, "checksum": False}},
    34926: {"name": "zstd", "configuration": {"level": 0, "checksum": False}},
}
_IMAGE_CODECS: dict[int, str] = {
    7: "vz.jpeg",
    50001: "vz.webp",
    50002: "vz.jpegxl",
    52546: "vz.jpegxl",
    33003: "vz.jpeg2k",
    33004: "vz.jpeg2k",
    33005: "vz.jpeg2k",
    34712: "vz.jpeg2k",
    34933: "vz.png",
    34934: "vz.jpegxr",
    22610: "vz.jpegxr",
    34892: "vz.jpeg",
    33007: "vz.jpeg",
    34927: "vz.webp",
    34887: "vz.lerc",
}
_LERC_COMPRESSION = {0: "none", 1: "deflate", 2: "zstd"}


def is_expressible(compression: int) -> bool:
    """Whether vz has a zarr codec for a TIFF compression id."""
    return compression == 1 or compression in _STREAM_CODECS or compression in _IMAGE_CODECS


def _jpeg_colorspaces(image: Image) -> tuple[str | None, str | None]:
    """The JPEG stream's and the output's colour spaces, chosen as tifffile does."""
    extra = image.ifd.numbers(EXTRA_SAMPLES)
    jpeg: str | None = None
    out: str | None = None
    if extra is None or len(extra) == 0:
        if image.photometric == 6:
            out = "RGB"
        elif image.photometric == 2:
            jpeg, out = "RGB", "RGB"
        elif image.photometric == 5:
            out = "CMYK"
    if image.planar == 2:
        out = "GRAYSCALE"
    return jpeg, out


def _image_codec(image: Image) -> dict[str, Any]:
    name = _IMAGE_CODECS[image.compression]
    if name == "vz.jpeg":
        tables = image.ifd.get(JPEG_TABLES)
        jpeg, out = _jpeg_colorspaces(image)
        config: dict[str, Any] = {"colorspace_jpeg": jpeg, "colorspace_data": out}
        if tables is not None:
            raw = tables if isinstance(tables, bytes) else np.asarray(tables, np.uint8).tobytes()
            config["tables"] = base64.b64encode(raw).decode("ascii")
        return {"name": name, "configuration": config}
    if name == "vz.lerc":
        parameters = image.ifd.numbers(LERC_PARAMETERS)
        code = int(parameters[1]) if parameters is not None and len(parameters) > 1 else 0
        if code not in _LERC_COMPRESSION:
            raise TIFFFormatError(f"{image.where}: LERC with additional compression {code}")
        return {"name": name, "configuration": {"compression": _LERC_COMPRESSION[code]}}
    return {"name": name}


def _bytes_codec(dtype: np.dtype[Any]) -> dict[str, Any]:
    if dtype.itemsize == 1:
        return {"name": "bytes"}
    endian = (
        "big"
        if dtype.byteorder == ">" or (dtype.byteorder == "=" and sys.byteorder == "big")
        else "little"
    )
    return {"name": "bytes", "configuration": {"endian": endian}}


def codecs_of(image: Image) -> tuple[np.dtype[Any], list[dict[str, Any]]]:
    """The stored dtype (its byte order says the ``bytes`` codec's) and the codec pipeline."""
    where, dtype = image.where, image.dtype
    packed = image.bits % 8 != 0 and dtype.kind == "u"
    float24 = image.bits == 24 and dtype.kind == "f"
    before: list[dict[str, Any]] = []  # array to array
    after: list[dict[str, Any]] = []  # bytes to bytes, in encoding order
    if image.predictor == 2:
        if dtype.kind not in "iu" or packed:
            raise TIFFFormatError(
                f"{where}: the horizontal predictor on {image.bits}-bit "
                f"{dtype.kind} samples is not supported"
            )
        before.append({"name": "vz.delta", "configuration": {"axis": image.x_axis}})
    elif image.predictor == 3:
        if dtype.kind != "f" or float24:
            raise TIFFFormatError(f"{where}: the floating-point predictor on {dtype} samples")
        dtype = dtype.newbyteorder(">")
        after.append({"name": "vz.float_predictor", "configuration": {"axis": image.x_axis}})
    elif image.predictor != 1:
        raise TIFFFormatError(f"{where}: predictor {image.predictor} is not 1, 2 or 3")
    array_to_bytes: list[dict[str, Any]] = []
    if image.compression in _IMAGE_CODECS:
        if packed or float24 or image.predictor != 1:
            raise TIFFFormatError(
                f"{where}: {COMPRESSIONS[image.compression]} with {image.bits}-bit samples "
                f"or predictor {image.predictor} is not supported"
            )
        dtype = dtype.newbyteorder("<")
        after.append(_image_codec(image))
    elif image.compression in _STREAM_CODECS:
        after.append(_STREAM_CODECS[image.compression])
    if not packed and not float24:
        array_to_bytes.append(_bytes_codec(dtype))
    if packed:
        array_to_bytes.append(
            {"name": "vz.packed_ints", "configuration": {"bits": image.bits, "axis": image.x_axis}}
        )
    elif float24:
        endian = "little" if image.byteorder == "<" else "big"
        array_to_bytes.append({"name": "vz.float24", "configuration": {"endian": endian}})
    if image.fill_order == 2:
        after.append({"name": "vz.bitorder"})
    return dtype, [*before, *array_to_bytes, *after]
