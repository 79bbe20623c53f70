"""One TIFF IFD as a virtual array: dtype, shape, chunk grid, codecs and references.

Tiles are chunks of the tile shape (edge tiles are stored full-size, so the grid
is regular); strips are chunks of RowsPerStrip rows, and a short last strip a
short chunk of a rectilinear grid. PlanarConfiguration 1 stores samples as the
last axis, ``(y, x, sample)``; 2 as the first, ``(band, y, x)``, one chunk per
band and tile. A tile or strip with offset or byte count 0 is a missing chunk.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from vzcore.array import VirtualArray
from vzcore.limits import check_count
from vzcore.manifest import MANIFEST_SCHEMA, ChunkManifest
from vzcore.metadata import ArrayMetadata
from vzcore.parsers.tiff_ifd import IFD, TIFFFormatError
from vzcore.parsers.tiff_pipeline import COMPRESSIONS, codecs_of, is_expressible

__all__ = ["Image", "image_of", "virtual_array"]

(
    NEW_SUBFILE_TYPE,
    IMAGE_WIDTH,
    IMAGE_LENGTH,
    BITS_PER_SAMPLE,
    COMPRESSION,
    PHOTOMETRIC,
    FILL_ORDER,
    STRIP_OFFSETS,
    SAMPLES_PER_PIXEL,
    ROWS_PER_STRIP,
    STRIP_BYTE_COUNTS,
    PLANAR_CONFIGURATION,
    PREDICTOR,
    TILE_WIDTH,
    TILE_LENGTH,
    TILE_OFFSETS,
    TILE_BYTE_COUNTS,
    SAMPLE_FORMAT,
    YCBCR_SUBSAMPLING,
    IMAGE_DEPTH,
) = (
    254, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 284, 317, 322, 323, 324, 325,
    339, 530, 32997,
)  # fmt: skip
"""TIFF 6.0 tag numbers (the codec-specific ones are in `vzcore.parsers.tiff_pipeline`)."""

_MAX_CHUNK_BYTES = 1 << 31
"""Decoded bytes of one tile or strip; a larger one is taken as corrupt (libtiff refuses them too)."""

_PHOTOMETRIC = {
    0: "MINISWHITE",
    1: "MINISBLACK",
    2: "RGB",
    3: "PALETTE",
    4: "MASK",
    5: "SEPARATED",
    6: "YCBCR",
    8: "CIELAB",
    32844: "LOGL",
    32845: "LOGLUV",
    34892: "LINEAR_RAW",
}


@attrs.frozen
class Image:
    """What the tags of one IFD say about its pixels, checked."""

    ifd: IFD
    where: str
    byteorder: str
    height: int
    width: int
    samples: int
    bits: int
    dtype: np.dtype[Any]
    planar: int
    compression: int
    predictor: int
    fill_order: int
    photometric: int
    tiled: bool
    segment_rows: int
    segment_columns: int
    offsets: npt.NDArray[np.uint64] = attrs.field(repr=False)
    byte_counts: npt.NDArray[np.uint64] = attrs.field(repr=False)

    @property
    def subfile_type(self) -> int:
        return self.ifd.scalar(NEW_SUBFILE_TYPE, 0) or 0

    @property
    def is_reduced(self) -> bool:
        return bool(self.subfile_type & 1)

    @property
    def shape(self) -> tuple[int, ...]:
        if self.samples == 1:
            return (self.height, self.width)
        if self.planar == 2:
            return (self.samples, self.height, self.width)
        return (self.height, self.width, self.samples)

    @property
    def x_axis(self) -> int:
        return 2 if self.samples > 1 and self.planar == 2 else 1

    @property
    def photometric_name(self) -> str:
        return _PHOTOMETRIC.get(self.photometric, str(self.photometric))


def _uniform(values: npt.NDArray[Any] | None, default: int, what: str, where: str) -> int:
    if values is None or len(values) == 0:
        return default
    if len(np.unique(values)) != 1:
        raise TIFFFormatError(
            f"{where}: {what} differs between samples ({values.tolist()}); "
            "vz reads images whose samples are all alike"
        )
    return int(values[0])


def _dtype(bits: int, sample_format: int, byteorder: str, where: str) -> np.dtype[Any]:
    """The array's dtype: the stored one, or the one packed or 24-bit samples decode to."""
    if sample_format == 3:
        if bits in (16, 32, 64):
            return np.dtype(f"{byteorder}f{bits // 8}")
        if bits == 24:
            return np.dtype("<f4")
    elif sample_format in (1, 2, 4):
        kind = "i" if sample_format == 2 else "u"
        if bits in (8, 16, 32, 64):
            return np.dtype(f"{byteorder}{kind}{bits // 8}")
        if kind == "u" and 1 <= bits <= 31:
            return np.dtype(f"<u{1 if bits <= 8 else 2 if bits <= 16 else 4}")
    raise TIFFFormatError(
        f"{where}: {bits}-bit samples of SampleFormat {sample_format} have no zarr dtype vz "
        "can decode them to"
    )


def image_of(ifd: IFD, byteorder: str, url: str) -> Image:
    """Check an IFD's tags and describe its pixels.

    Raises
    ------
    TIFFFormatError
        For missing or inconsistent tags, or a layout vz cannot express as chunks,
        naming the file and the IFD.
    """
    where = f"{url}: IFD {ifd.index}"
    width, height = ifd.scalar(IMAGE_WIDTH), ifd.scalar(IMAGE_LENGTH)
    if width is None or height is None:
        raise TIFFFormatError(f"{where}: no ImageWidth or ImageLength tag")
    if (ifd.scalar(IMAGE_DEPTH, 1) or 1) > 1:
        raise TIFFFormatError(f"{where}: volumetric images (ImageDepth > 1) are not supported")
    samples = ifd.scalar(SAMPLES_PER_PIXEL, 1) or 1
    bits = _uniform(ifd.numbers(BITS_PER_SAMPLE), 1, "BitsPerSample", where)
    sample_format = _uniform(ifd.numbers(SAMPLE_FORMAT), 1, "SampleFormat", where)
    compression = ifd.scalar(COMPRESSION, 1) or 1
    if not is_expressible(compression):
        name = COMPRESSIONS.get(compression, "unknown")
        raise TIFFFormatError(
            f"{where}: compression {compression} ({name}) has no zarr codec vz can use"
        )
    planar = ifd.scalar(PLANAR_CONFIGURATION, 1) or 1
    if planar not in (1, 2):
        raise TIFFFormatError(f"{where}: PlanarConfiguration {planar} is not 1 or 2")
    if samples == 1:
        planar = 1
    photometric = ifd.scalar(PHOTOMETRIC, 1)
    photometric = 1 if photometric is None else photometric
    subsampling = ifd.numbers(YCBCR_SUBSAMPLING)
    if (
        photometric == 6
        and compression != 7
        and subsampling is not None
        and tuple(subsampling.tolist()[:2]) != (1, 1)
    ):
        raise TIFFFormatError(f"{where}: subsampled YCbCr without JPEG is not supported")
    tiled = ifd.get(TILE_OFFSETS) is not None
    if tiled:
        rows = ifd.scalar(TILE_LENGTH) or 0
        columns = ifd.scalar(TILE_WIDTH) or 0
        offsets, counts = ifd.numbers(TILE_OFFSETS), ifd.numbers(TILE_BYTE_COUNTS)
    else:
        rows = min(ifd.scalar(ROWS_PER_STRIP, height) or height, height)
        columns = width
        offsets, counts = ifd.numbers(STRIP_OFFSETS), ifd.numbers(STRIP_BYTE_COUNTS)
    if offsets is None or counts is None:
        raise TIFFFormatError(f"{where}: no tile or strip offsets and byte counts")
    if width == 0 or height == 0 or rows == 0 or columns == 0:
        raise TIFFFormatError(
            f"{where}: an image of {height} x {width} pixels in segments of "
            f"{rows} x {columns} is empty"
        )
    image = Image(
        ifd=ifd,
        where=where,
        byteorder=byteorder,
        height=height,
        width=width,
        samples=samples,
        bits=bits,
        dtype=_dtype(bits, sample_format, byteorder, where),
        planar=planar,
        compression=compression,
        predictor=ifd.scalar(PREDICTOR, 1) or 1,
        fill_order=ifd.scalar(FILL_ORDER, 1) or 1,
        photometric=photometric,
        tiled=tiled,
        segment_rows=rows,
        segment_columns=columns,
        offsets=offsets.astype(np.uint64),
        byte_counts=counts.astype(np.uint64),
    )
    _check_segments(image)
    return image


def _grid(image: Image) -> tuple[int, ...]:
    across = -(-image.height // image.segment_rows), -(-image.width // image.segment_columns)
    if image.samples == 1:
        return across
    return (image.samples, *across) if image.planar == 2 else (*across, 1)


def _check_segments(image: Image) -> None:
    grid = _grid(image)
    expected = math.prod(grid)
    if len(image.offsets) != expected or len(image.byte_counts) != expected:
        raise TIFFFormatError(
            f"{image.where}: {len(image.offsets)} offsets and {len(image.byte_counts)} byte "
            f"counts for {expected} {'tiles' if image.tiled else 'strips'} "
            f"(an image of {image.height} x {image.width} in segments of "
            f"{image.segment_rows} x {image.segment_columns})"
        )
    check_count("max_chunks", grid, image.where, "the number of tiles or strips")
    values_per_chunk = image.segment_rows * image.segment_columns
    if image.planar == 1:
        values_per_chunk *= image.samples
    if values_per_chunk * max(image.dtype.itemsize, 1) > _MAX_CHUNK_BYTES:
        raise TIFFFormatError(
            f"{image.where}: one tile or strip of {image.segment_rows} x "
            f"{image.segment_columns} pixels would decode to more than {_MAX_CHUNK_BYTES} bytes"
        )


def _chunk_shape(image: Image) -> tuple[int | tuple[int, ...], ...]:
    rows: int | tuple[int, ...] = image.segment_rows
    if not image.tiled and image.height % image.segment_rows:
        count = -(-image.height // image.segment_rows)
        rows = (image.segment_rows,) * (count - 1) + (image.height % image.segment_rows,)
    if image.samples == 1:
        return (rows, image.segment_columns)
    if image.planar == 2:
        return (1, rows, image.segment_columns)
    return (rows, image.segment_columns, image.samples)


def _raw_nbytes(image: Image) -> npt.NDArray[np.uint64]:
    """The stored bytes each uncompressed segment needs, in grid order."""
    rows = np.full(-(-image.height // image.segment_rows), image.segment_rows, dtype=np.uint64)
    if not image.tiled and image.height % image.segment_rows:
        rows[-1] = image.height % image.segment_rows
    row_values = image.segment_columns * (image.samples if image.planar == 1 else 1)
    if image.bits % 8 == 0:
        row_bytes = row_values * image.bits // 8
    else:
        row_bytes = -(-row_values * image.bits // 8)
    per_row = rows * np.uint64(row_bytes)
    columns = -(-image.width // image.segment_columns)
    per_plane = np.repeat(per_row, columns)
    planes = image.samples if image.planar == 2 else 1
    return np.tile(per_plane, planes)


def virtual_array(
    image: Image,
    url: str,
    *,
    file_size: int,
    fill_value: object,
    dimension_names: Sequence[str],
    attributes: dict[str, Any],
) -> VirtualArray:
    """The IFD's pixels as a virtual array referencing its tiles or strips in ``url``."""
    dtype, codecs = codecs_of(image)
    offsets, counts = image.offsets, image.byte_counts
    present = (offsets > 0) & (counts > 0)
    if image.compression == 1:
        needed = _raw_nbytes(image)
        short = present & (counts < needed)
        if short.any():
            first = int(np.flatnonzero(short)[0])
            raise TIFFFormatError(
                f"{image.where}: segment {first} holds {int(counts[first])} bytes, an "
                f"uncompressed segment needs {int(needed[first])}"
            )
        counts = np.where(present, needed, counts)  # read no padding past a segment's values
    ends = offsets + counts
    outside = present & ((ends > np.uint64(file_size)) | (ends < offsets))
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise TIFFFormatError(
            f"{image.where}: segment {first} (bytes {int(offsets[first])}-{int(ends[first])}) "
            f"lies outside the file of {file_size} bytes"
        )
    grid = _grid(image)
    # Built in the manifest's own schema (one dictionary entry, nulls for missing tiles),
    # so no normalisation pass is needed.
    paths = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(len(present), np.int32), mask=~present), pa.array([url], pa.string())
    )
    table = pa.Table.from_arrays(
        [
            paths,
            pa.array(np.where(present, offsets, 0).astype(np.uint64)),
            pa.array(np.where(present, counts, 0).astype(np.uint64)),
        ],
        schema=MANIFEST_SCHEMA,
    )
    manifest = ChunkManifest(grid, table)
    metadata = ArrayMetadata.create(
        shape=image.shape,
        chunk_shape=_chunk_shape(image),
        dtype=dtype,
        fill_value=fill_value,
        codecs=codecs,
        dimension_names=dimension_names,
        attributes=attributes,
    )
    return VirtualArray(metadata=metadata, manifest=manifest)
