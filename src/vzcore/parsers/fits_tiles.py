"""Tile-compressed FITS images (FITS 4.0 section 10): one chunk per tile, its bytes in the heap.

Such an image is a BINTABLE with ``ZIMAGE = T``: one row per tile, in FITS order
(``ZNAXIS1`` fastest), which is zarr's C order of chunks over the reversed axes.
The ``COMPRESSED_DATA`` column holds a heap descriptor per row, ``(nelem,
offset)`` as two 32-bit (``P``) or 64-bit (``Q``) integers; the table is read
once and the descriptors taken out with one `numpy.frombuffer` over its rows.

Codecs: GZIP_1 is zarr's ``gzip``; GZIP_2 is ``numcodecs.shuffle`` then ``gzip``;
NOCOMPRESS none; RICE_1, PLIO_1 and HCOMPRESS_1 the ``vz.fits_tile`` codec. An
edge tile that the image does not fill is a short chunk of a rectilinear grid.
cfitsio once wrote GZIP tiles of 16-bit images as 32-bit integers; the first
tile is read and decompressed to tell, and such images use ``vz.fits_tile``
(which takes each tile's width from its decoded size, as astropy does).

Quantized floating-point tiles are refused (`TileRefusal`): each tile is
decoded with its own ``ZSCALE``/``ZZERO`` and a dither sequence seeded by the
tile's index, and a zarr codec is told only a chunk's shape and dtype
(`zarr.core.array_spec.ArraySpec`), never which chunk it decodes. So are tiles
stored in the ``GZIP_COMPRESSED_DATA``/``UNCOMPRESSED_DATA`` fallback columns and
a ``ZBLANK`` column that differs between tiles.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from vzcore.array import VirtualArray
from vzcore.manifest import ChunkManifest
from vzcore.metadata import ArrayMetadata
from vzcore.parsers.fits_headers import (
    Fetch,
    FITSFormatError,
    HDUInfo,
    header_attributes,
    header_int,
    image_encoding,
)

__all__ = ["TileRefusal", "compressed_image", "compressed_shape", "is_compressed_image"]

_TFORM = re.compile(r"^\s*(\d*)\s*([LXBIJKAEDCMPQ])\s*([A-Z]?)")
_WIDTHS = {"L": 1, "B": 1, "I": 2, "J": 4, "K": 8, "A": 1, "E": 4, "D": 8, "C": 8, "M": 16}
_COMPRESSION_KEYS = frozenset(
    {"ZIMAGE", "ZSIMPLE", "ZTENSION", "ZBITPIX", "ZNAXIS", "ZCMPTYPE", "ZQUANTIZ", "ZDITHER0"}
    | {"ZBLANK", "ZEXTEND", "ZPCOUNT", "ZGCOUNT", "ZHECKSUM", "ZDATASUM", "ZMASKCMP"}
    | {"CHECKSUM", "DATASUM"}  # of the table, not of the image
)
_ELEMENTS = {"B": 1, "I": 2, "J": 4}
_NUMBERED = re.compile(r"^(ZNAXIS|ZTILE|ZNAME|ZVAL)\d+$")
_ALGORITHMS = ("GZIP_1", "GZIP_2", "RICE_1", "PLIO_1", "HCOMPRESS_1", "NOCOMPRESS")


class TileRefusal(Exception):
    """A compressed image whose tiles no codec can decode on its own (the parser says why)."""


def is_compressed_image(header: Any) -> bool:
    """A BINTABLE extension with ``ZIMAGE = T``."""
    return str(header.get("XTENSION", "")).strip() == "BINTABLE" and header.get("ZIMAGE") is True


def compressed_shape(header: Any, where: str) -> tuple[int, ...]:
    """The image's shape in C order (``ZNAXISn`` reversed)."""
    naxis = header_int(header, "ZNAXIS", where)
    if not 0 <= naxis <= 999:
        raise FITSFormatError(f"{where}: ZNAXIS = {naxis} is not in 0..999")
    lengths = [header_int(header, f"ZNAXIS{i}", where) for i in range(1, naxis + 1)]
    if any(n < 0 for n in lengths):
        raise FITSFormatError(f"{where}: negative ZNAXISn in {lengths}")
    return tuple(lengths[::-1])


def _tile_shape(header: Any, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
    """``ZTILEn`` in C order; by default whole rows (``ZTILE1 = ZNAXIS1``, others 1)."""
    ndim = len(shape)
    tiles = []
    for i in range(1, ndim + 1):
        default = shape[ndim - i] if i == 1 else 1
        tile = header_int(header, f"ZTILE{i}", where, default)
        if tile < 1:
            raise FITSFormatError(f"{where}: ZTILE{i} = {tile} is not positive")
        tiles.append(min(tile, max(shape[ndim - i], 1)))
    return tuple(tiles[::-1])


def _setting(header: Any, name: str, default: int) -> int:
    """A ``ZNAMEi``/``ZVALi`` compression parameter (FITS 4.0 section 10.1.1)."""
    for i in range(1, 1000):
        key = header.get(f"ZNAME{i}")
        if key is None:
            break
        if str(key).strip().upper() == name:
            value = header.get(f"ZVAL{i}", default)
            return int(value) if isinstance(value, int | float) else default
    return default


def _columns(header: Any, where: str) -> dict[str, tuple[int, str, str]]:
    """Column name -> (byte offset in the row, type code, P/Q element type)."""
    fields = header_int(header, "TFIELDS", where)
    if not 0 <= fields <= 999:
        raise FITSFormatError(f"{where}: TFIELDS = {fields} is not in 0..999")
    columns, offset = {}, 0
    for i in range(1, fields + 1):
        form = str(header.get(f"TFORM{i}", ""))
        match = _TFORM.match(form.upper())
        if match is None:
            raise FITSFormatError(f"{where}: TFORM{i} = {form!r} is not a binary table format")
        repeat = int(match.group(1) or 1)
        code = match.group(2)
        if code == "X":
            width = -(-repeat // 8)
        elif code in "PQ":
            width = (8 if code == "P" else 16) * min(repeat, 1)
        else:
            width = _WIDTHS[code] * repeat
        name = str(header.get(f"TTYPE{i}", "")).strip().upper()
        columns[name] = (offset, code, match.group(3))
        offset += width
    if offset != header_int(header, "NAXIS1", where):
        raise FITSFormatError(
            f"{where}: the columns' TFORMn add up to {offset} bytes a row, NAXIS1 says "
            f"{header['NAXIS1']}"
        )
    return columns


def _descriptors(
    table: bytes, row_nbytes: int, rows: int, column: tuple[int, str, str], name: str, where: str
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The ``(nelem, offset)`` heap descriptors of one P or Q column, as int64 arrays."""
    offset, code, element = column
    if code not in "PQ":
        raise FITSFormatError(f"{where}: column {name} is not a heap descriptor (TFORM {code})")
    if element not in _ELEMENTS:
        raise FITSFormatError(
            f"{where}: column {name} holds {element or '?'} elements, not B, I or J"
        )
    integer = ">i4" if code == "P" else ">i8"
    dtype = np.dtype(
        {
            "names": ["n", "o"],
            "formats": [integer, integer],
            "offsets": [offset, offset + np.dtype(integer).itemsize],
            "itemsize": row_nbytes,
        }
    )
    records = np.frombuffer(table, dtype=dtype, count=rows)
    return records["n"].astype(np.int64), records["o"].astype(np.int64)


def _axis_chunks(length: int, tile: int) -> int | list[int]:
    if length % tile == 0:
        return tile
    return [tile] * (length // tile) + [length % tile]


def _full_width(first_tile: bytes, tilesize: int, bitpix: int) -> bool:
    """Whether a GZIP tile holds values of ``bitpix``'s own width (cfitsio may write wider)."""
    expected = tilesize * abs(bitpix) // 8
    try:
        raw = zlib.decompressobj(31).decompress(first_tile, expected + 1)
    except zlib.error:
        return False  # the tile codec reports the corruption when the tile is read
    return len(raw) == expected


def _codecs(
    header: Any, algorithm: str, bitpix: int, full_width: bool, element: int
) -> list[dict[str, Any]]:
    gzip = {"name": "gzip", "configuration": {"level": 6}}
    if algorithm == "GZIP_1" and full_width:
        return [gzip]
    if algorithm == "GZIP_2" and full_width:
        shuffle = {"name": "numcodecs.shuffle", "configuration": {"elementsize": abs(bitpix) // 8}}
        return [shuffle, gzip]
    if algorithm == "NOCOMPRESS":
        return []
    config: dict[str, Any] = {"compression": algorithm, "bitpix": bitpix}
    if element > 1 and not algorithm.startswith("GZIP"):
        config["element"] = element
    if algorithm == "RICE_1":
        config |= {
            "blocksize": _setting(header, "BLOCKSIZE", 32),
            "bytepix": _setting(header, "BYTEPIX", 4),
        }
    elif algorithm == "HCOMPRESS_1":
        config |= {"scale": _setting(header, "SCALE", 0), "smooth": _setting(header, "SMOOTH", 0)}
    return [{"name": "vz.fits_tile", "configuration": config}]


def _blank(
    table: bytes, row_nbytes: int, rows: int, columns: Any, header: Any, bitpix: int, where: str
) -> int | None:
    """``ZBLANK`` as astropy applies it: the keyword (or ``BLANK``), or a uniform column.

    astropy sets the pixels equal to a tile's ZBLANK to the keyword's value (NaN
    for floats); a column that disagrees with the keyword, or a ZBLANK on float
    tiles, would change values per tile, which no codec can do: refused.
    """
    keyword = header.get("ZBLANK", header.get("BLANK"))
    if keyword is not None and (isinstance(keyword, bool) or not isinstance(keyword, int)):
        raise FITSFormatError(f"{where}: ZBLANK = {keyword!r} is not an integer")
    if bitpix < 0 and (keyword is not None or "ZBLANK" in columns):
        raise TileRefusal("its floating-point tiles have a ZBLANK, which astropy turns into NaN")
    if "ZBLANK" not in columns:
        return keyword
    offset, code, _ = columns["ZBLANK"]
    if code not in "IJK":
        raise TileRefusal(f"its ZBLANK column has type {code}, not an integer")
    integer = {"I": ">i2", "J": ">i4", "K": ">i8"}[code]
    dtype = np.dtype(
        {"names": ["b"], "formats": [integer], "offsets": [offset], "itemsize": row_nbytes}
    )
    values = np.unique(np.frombuffer(table, dtype=dtype, count=rows)["b"])
    if len(values) > 1 or (len(values) and values[0] != keyword):
        raise TileRefusal(
            f"its ZBLANK column ({values[:4].tolist()}) differs between tiles or from the "
            f"ZBLANK/BLANK keyword ({keyword})"
        )
    return keyword


def compressed_image(
    info: HDUInfo, url: str, where: str, fetch: Fetch, dims: Sequence[str]
) -> VirtualArray:
    """The virtual array of one tile-compressed image HDU.

    Raises
    ------
    TileRefusal
        If its tiles cannot be decoded chunk by chunk (quantized floats, fallback columns).
    FITSFormatError
        If its table or heap is inconsistent or points outside the file.
    """
    header = info.header
    bitpix = header_int(header, "ZBITPIX", where)
    if bitpix not in (8, 16, 32, 64, -32, -64):
        raise FITSFormatError(f"{where}: ZBITPIX = {bitpix} is not a FITS BITPIX")
    algorithm = str(header.get("ZCMPTYPE", "")).strip().upper().replace("RICE_ONE", "RICE_1")
    if algorithm not in _ALGORITHMS:
        raise FITSFormatError(
            f"{where}: ZCMPTYPE {header.get('ZCMPTYPE')!r} is not one of {list(_ALGORITHMS)}"
        )
    shape = compressed_shape(header, where)
    tile = _tile_shape(header, shape, where)
    columns = _columns(header, where)
    # astropy unquantizes every tile of a table with a ZSCALE column, whatever ZBITPIX.
    if "ZSCALE" in columns:
        raise TileRefusal(
            f"its tiles are quantized (ZQUANTIZ = {header.get('ZQUANTIZ', 'NO_DITHER')!r}) "
            "with a scale, zero and dither seed per tile, which a zarr codec cannot be given: "
            "it is never told which chunk it decodes"
        )
    if bitpix < 0 and algorithm not in ("GZIP_1", "GZIP_2", "NOCOMPRESS"):
        raise FITSFormatError(
            f"{where}: {algorithm} of floats needs quantization, and there is none"
        )
    if "COMPRESSED_DATA" not in columns:
        raise FITSFormatError(f"{where}: no COMPRESSED_DATA column")
    rows = header_int(header, "NAXIS2", where)
    row_nbytes = header_int(header, "NAXIS1", where)
    tiles = (
        math.prod(-(-n // t) for n, t in zip(shape, tile, strict=True)) if math.prod(shape) else 0
    )
    if rows != tiles:
        raise FITSFormatError(
            f"{where}: {rows} table rows, but the tiles {tile} of {shape} are {tiles}"
        )
    table_nbytes = row_nbytes * rows
    heap_start = header_int(header, "THEAP", where, table_nbytes)
    heap_end = table_nbytes + header_int(header, "PCOUNT", where, 0)
    if not table_nbytes <= heap_start <= heap_end:
        raise FITSFormatError(f"{where}: THEAP {heap_start} is outside the data unit")
    table = fetch([info.data_start], [info.data_start + table_nbytes])[0] if rows else b""
    nelem, offsets = _descriptors(
        table, row_nbytes, rows, columns["COMPRESSED_DATA"], "COMPRESSED_DATA", where
    )
    element = _ELEMENTS[columns["COMPRESSED_DATA"][2]]
    nelem = nelem * element  # bytes from here on
    if (nelem == 0).any():
        raise TileRefusal(
            "some tiles are stored in a GZIP_COMPRESSED_DATA or UNCOMPRESSED_DATA fallback "
            "column, with another codec than the others"
        )
    starts = heap_start + offsets
    bad = np.flatnonzero((nelem < 0) | (offsets < 0) | (starts + nelem > heap_end))
    if len(bad):
        first = int(bad[0])
        raise FITSFormatError(
            f"{where}: tile {first}'s heap descriptor ({int(nelem[first])} bytes at heap offset "
            f"{int(offsets[first])}) points outside the {heap_end - heap_start}-byte heap"
        )
    full_width = True
    if tiles and algorithm.startswith("GZIP"):
        # The one data read: the first tile, to see whether the standard gzip codec fits.
        first = info.data_start + int(starts[0])
        peek = fetch([first], [first + int(nelem[0])])[0]
        full_width = _full_width(peek, math.prod(tile), bitpix)
    blank = _blank(table, row_nbytes, rows, columns, header, bitpix, where)
    scaled = image_encoding(header, bitpix, where, blank=blank)
    skip = _COMPRESSION_KEYS | {k for k in header if _NUMBERED.match(k)}
    metadata = ArrayMetadata.create(
        shape=shape,
        chunk_shape=[_axis_chunks(n, t) for n, t in zip(shape, tile, strict=True)]
        if tiles
        else [max(n, 1) for n in shape],
        dtype=scaled.dtype,
        fill_value=scaled.fill_value,
        codecs=[*scaled.codecs, *_codecs(header, algorithm, bitpix, full_width, element)],
        dimension_names=list(dims),
        attributes=header_attributes(header, skip=frozenset(skip)),
        encoding=scaled.encoding,
    )
    if not tiles:
        return VirtualArray(metadata, ChunkManifest.empty(metadata.grid_shape))
    manifest = ChunkManifest.from_numpy_columns(
        metadata.grid_shape,
        dictionary=pa.array([url], pa.string()),
        indices=np.zeros(rows, dtype=np.int32),
        offsets=(info.data_start + starts).astype(np.uint64),
        lengths=nelem.astype(np.uint64),
    )
    return VirtualArray(metadata, manifest)
