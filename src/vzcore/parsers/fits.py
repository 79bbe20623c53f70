"""Parser for FITS files: the primary HDU and IMAGE extensions, plain or tile-compressed.

Written from the FITS 4.0 standard. Headers are found by ranged reads and parsed
with astropy (`astropy.io.fits.Header`); data offsets come from the header
arithmetic alone (`vzcore.parsers.fits_headers`), so no image data is read.
Each image HDU becomes one array named by its ``EXTNAME`` (``EXTNAME_EXTVER``
when the name repeats) or its index (``hdu0``, ``hdu1``...):

- ``BITPIX`` gives a big-endian dtype and ``NAXISn`` the shape, reversed to C
  order (``NAXIS1`` is the last, fastest axis); the dimensions are ``x``, ``y``,
  ``z`` for ``NAXIS1..3`` (``axis4``... beyond), prefixed by the HDU's name when
  another HDU already uses that name with another length.
- ``BSCALE``/``BZERO`` become the CF ``scale_factor``/``add_offset`` and ``BLANK``
  the ``_FillValue``; the unsigned convention (``BZERO`` = 2**15, 2**31, 2**63, or
  -128 for signed bytes, with ``BSCALE`` = 1) gives the unsigned (signed) dtype
  through the ``vz.sign_flip`` codec, values exactly as astropy returns them.
- uncompressed images are cut into chunks of whole rows along the slowest axis
  (``chunks=`` bytes, a few MiB by default); tile-compressed images
  (`vzcore.parsers.fits_tiles`) have one chunk per tile.

Tables, random groups and quantized floating-point tiles cannot be references:
they are read into memory when named in ``loadable_variables``, otherwise they
raise a `FITSUnsupportedError` naming the HDU. The header cards become attributes
(``COMMENT`` and ``HISTORY`` joined by newlines); those of a primary HDU without
data become the group's attributes.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import pyarrow as pa

from vzcore._frozen import JSON
from vzcore.array import AnyArray, LoadedArray, VirtualArray
from vzcore.byteranges import Source, SourceReadError, source
from vzcore.errors import VirtualizationError
from vzcore.group import VirtualGroup
from vzcore.manifest import ChunkManifest
from vzcore.metadata import ArrayMetadata
from vzcore.parsers.fits_headers import (
    COMPRESSED_MAGICS,
    Fetch,
    FITSFormatError,
    HDUInfo,
    hdus,
    header_attributes,
    header_int,
    image_encoding,
)
from vzcore.parsers.fits_tiles import (
    TileRefusal,
    compressed_image,
    compressed_shape,
    is_compressed_image,
)
from vzcore.parsers.protocol import Probe
from vzcore.registry import ObjectStoreRegistry

__all__ = ["FITSFormatError", "FITSParser", "FITSUnsupportedError"]

DEFAULT_CHUNK_BYTES = 4 * 2**20


class FITSUnsupportedError(FITSFormatError):
    """An HDU vz cannot reference (a table, random groups, quantized floats...)."""


# ---- names and attributes -------------------------------------------------------------------


def _extname(header: Any) -> str | None:
    """``EXTNAME``; the last one when a header repeats it, as a compressed image's may."""
    if "EXTNAME" not in header:
        return None
    count = header.count("EXTNAME")
    return str(header[("EXTNAME", count - 1)]).strip() or None


def _hdu_names(infos: Sequence[HDUInfo]) -> list[str]:
    """``EXTNAME``, ``EXTNAME_EXTVER`` when a name repeats, else ``hdu<index>``."""
    extnames = [_extname(h.header) for h in infos]
    counts: dict[str, int] = {}
    for name in extnames:
        if name:
            counts[name] = counts.get(name, 0) + 1
    names: list[str] = []
    for info, extname in zip(infos, extnames, strict=True):
        name = f"hdu{info.index}"
        if extname and counts[extname] == 1:
            name = extname
        elif extname:
            name = f"{extname}_{info.header.get('EXTVER', 1)}"
        names.append(name if name not in names else f"hdu{info.index}")
    return names


def dimension_names(ndim: int) -> list[str]:
    """C-order dimension names: ``x`` for NAXIS1 (last), then ``y``, ``z``, ``axis4``..."""
    fits_order = ["x", "y", "z", *(f"axis{i}" for i in range(4, ndim + 1))][:ndim]
    return fits_order[::-1]


def _unique_dimensions(
    names: list[str], shape: tuple[int, ...], prefix: str, seen: dict[str, int]
) -> list[str]:
    """Each dimension keeps its name unless another array gave that name another length."""
    unique = []
    for name, length in zip(names, shape, strict=True):
        if seen.setdefault(name, length) != length:
            name = f"{prefix}_{name}"
            seen.setdefault(name, length)
        unique.append(name)
    return unique


# ---- uncompressed images --------------------------------------------------------------------


def _row_chunks(rows: int, row_nbytes: int, chunk_bytes: int) -> list[int]:
    """Rows per chunk along the slowest axis: regular if a near divisor exists, else a short last."""
    target = max(1, min(rows, chunk_bytes // max(row_nbytes, 1)))
    if rows % target == 0:
        return [target]
    candidates = np.arange(target, target // 2, -1, dtype=np.int64)  # at most half smaller
    divisors = candidates[rows % candidates == 0]
    if len(divisors):
        return [int(divisors[0])]
    return [target] * (rows // target) + [rows % target]


def _image(info: HDUInfo, url: str, where: str, dims: list[str], chunk_bytes: int) -> VirtualArray:
    header = info.header
    bitpix = header_int(header, "BITPIX", where)
    shape = tuple(header_int(header, f"NAXIS{i}", where) for i in range(1, header["NAXIS"] + 1))[
        ::-1
    ]
    scaled = image_encoding(header, bitpix, where)
    row_nbytes = math.prod(shape[1:]) * scaled.dtype.itemsize
    rows = _row_chunks(shape[0], row_nbytes, chunk_bytes) if math.prod(shape) else [1]
    chunk_shape: list[int | list[int]] = [rows[0] if len(rows) == 1 else rows, *shape[1:]]
    if not math.prod(shape):
        chunk_shape = [max(n, 1) for n in shape]
    metadata = ArrayMetadata.create(
        shape=shape,
        chunk_shape=chunk_shape,
        dtype=scaled.dtype,
        fill_value=scaled.fill_value,
        codecs=list(scaled.codecs),
        dimension_names=dims,
        attributes=header_attributes(header),
        encoding=scaled.encoding,
    )
    if not math.prod(shape):
        return VirtualArray(metadata, ChunkManifest.empty(metadata.grid_shape))
    lengths = (
        np.full(shape[0] // rows[0], rows[0], dtype=np.uint64)
        if len(rows) == 1
        else (np.array(rows, dtype=np.uint64))
    )
    lengths *= np.uint64(row_nbytes)
    offsets = np.uint64(info.data_start) + np.concatenate(
        [np.zeros(1, np.uint64), np.cumsum(lengths[:-1], dtype=np.uint64)]
    )
    manifest = ChunkManifest.from_numpy_columns(
        metadata.grid_shape,
        dictionary=pa.array([url], pa.string()),
        indices=np.zeros(len(offsets), dtype=np.int32),
        offsets=offsets,
        lengths=lengths,
    )
    return VirtualArray(metadata, manifest)


# ---- HDUs read into memory ------------------------------------------------------------------


def _loaded(info: HDUInfo, fetch: Fetch, where: str, dims: list[str]) -> AnyArray | VirtualGroup:
    """An HDU astropy decodes in memory: its bytes read once, opened from a buffer."""
    from astropy.io import fits

    end = info.data_start + info.data_nbytes
    raw = fetch([info.header_start], [end])[0]
    prefix = b"" if info.index == 0 else _EMPTY_PRIMARY
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with fits.open(io.BytesIO(prefix + raw + b"\0" * (-len(raw) % 2880))) as hdul:
                hdu = hdul[-1]
                data = hdu.data
                if isinstance(hdu, fits.BinTableHDU | fits.TableHDU | fits.GroupsHDU):
                    return _table_group(hdu, where)
                values = np.asarray(data)
                values = values.astype(values.dtype.newbyteorder("="), copy=False)
        except FITSFormatError:
            raise
        except Exception as err:
            raise FITSFormatError(f"{where}: astropy cannot read it: {err}") from err
    return LoadedArray(
        ArrayMetadata.create(
            shape=values.shape,
            chunk_shape=[max(n, 1) for n in values.shape],
            dtype=values.dtype,
            dimension_names=dims,
            attributes=header_attributes(info.header),
        ),
        values,
    )


def _empty_primary() -> bytes:
    """The header of a primary HDU without data, put before an extension to open it alone."""
    cards = ["SIMPLE  =                    T", "BITPIX  =                    8"]
    cards += ["NAXIS   =                    0", "EXTEND  =                    T", "END"]
    return "".join(card.ljust(80) for card in cards).ljust(2880).encode("ascii")


_EMPTY_PRIMARY = _empty_primary()


def _table_group(hdu: Any, where: str) -> VirtualGroup:
    """A table's (or random groups') columns, one in-memory array each along ``row``."""
    arrays: dict[str, AnyArray] = {}
    for column in hdu.columns.names:
        values = np.asarray(hdu.data[column])
        values = values.astype(values.dtype.newbyteorder("="), copy=False)
        if values.dtype.kind == "O":
            raise FITSUnsupportedError(
                f"{where}: column {column!r} has variable-length arrays, which vz cannot load"
            )
        dims = ["row", *(f"{column}_dim_{i}" for i in range(1, values.ndim))]
        arrays[column] = LoadedArray(
            ArrayMetadata.create(
                shape=values.shape,
                chunk_shape=[max(n, 1) for n in values.shape],
                dtype=values.dtype,
                dimension_names=dims,
            ),
            values,
        )
    return VirtualGroup(arrays=arrays, attributes=header_attributes(hdu.header))


# ---- the parser -----------------------------------------------------------------------------


def _fetcher(file: Source) -> Fetch:
    def fetch(starts: Sequence[int], ends: Sequence[int]) -> list[bytes]:
        return [bytes(b) for b in file.read_ranges(starts, ends)]

    return fetch


def _size(info: HDUInfo) -> int:
    return math.prod(info.header.get(f"NAXIS{i}", 0) for i in range(1, info.header["NAXIS"] + 1))


def _is_image(info: HDUInfo) -> bool:
    groups = info.index == 0 and bool(info.header.get("GROUPS", False))
    return info.kind in ("PRIMARY", "IMAGE") and not groups


@attrs.frozen(kw_only=True)
class FITSParser:
    """Parser for FITS files (primary HDU, IMAGE extensions, tile-compressed images).

    Attributes
    ----------
    chunks
        Target bytes of one chunk of an uncompressed image, cut into whole rows
        along its slowest axis (a row is never split).
    drop_variables
        HDU names (``EXTNAME``, ``hdu<index>``) left out.
    loadable_variables
        HDU names read into memory when they cannot be referenced: tables and
        random groups (a subgroup of one array per column) and quantized
        floating-point compressed images (decoded by astropy).

    Examples
    --------
    >>> FITSParser(chunks=2**20).chunks
    1048576
    """

    chunks: int = attrs.field(default=DEFAULT_CHUNK_BYTES, validator=attrs.validators.gt(0))
    drop_variables: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    loadable_variables: tuple[str, ...] | None = attrs.field(
        default=None, converter=attrs.converters.optional(tuple)
    )

    priority = -32  # a magic card at byte 0: as specific as GRIB (-35) and netCDF3 (-40)

    @classmethod
    def can_open(cls, probe: Probe) -> bool:
        """The card ``SIMPLE  =`` at byte 0, or a gzip stream named ``*.fits.gz`` (refused later)."""
        head = probe.head
        if head is None:
            return False
        if head[:2] in COMPRESSED_MAGICS:
            return probe.url.lower().rsplit("/", 1)[-1].split(".")[-2:-1] in (
                ["fits"],
                ["fit"],
                ["fts"],
            )
        return head[:9] == b"SIMPLE  ="

    def __call__(self, url: str, registry: ObjectStoreRegistry) -> VirtualGroup:
        """Build the virtual group of one FITS file.

        Raises
        ------
        FITSFormatError
            If the file is not FITS, is gzipped, truncated or corrupt.
        FITSUnsupportedError
            If an HDU cannot be referenced and is neither loaded nor dropped.
        """
        file = source(registry, url)
        try:
            return self._parse(file)
        except SourceReadError:
            raise
        except FITSFormatError:
            raise
        except VirtualizationError as err:
            raise FITSFormatError(f"{file.url}: {err}") from err

    def _parse(self, file: Source) -> VirtualGroup:
        url = file.url
        seen = file.fingerprint()
        size = seen.size if seen.size is not None else file.size()
        fetch = _fetcher(file)
        infos = list(hdus(fetch, size, url))
        names = _hdu_names(infos)
        arrays: dict[str, AnyArray] = {}
        groups: dict[str, VirtualGroup] = {}
        seen_dims: dict[str, int] = {}
        attributes: dict[str, JSON] = {}
        for info, name in zip(infos, names, strict=True):
            where = f"{url}: HDU {info.index} ({name})"
            if info.index == 0 and (info.data_nbytes == 0 or (_is_image(info) and not _size(info))):
                attributes = header_attributes(info.header)
                continue
            if name in self.drop_variables:
                continue
            node = self._hdu(info, name, where, url, fetch, seen_dims)
            if isinstance(node, VirtualGroup):
                groups[name] = node
            elif node is not None:
                arrays[name] = node
        return VirtualGroup(
            arrays=arrays, groups=groups, attributes=attributes, sources={url: seen}
        )

    def _hdu(
        self,
        info: HDUInfo,
        name: str,
        where: str,
        url: str,
        fetch: Fetch,
        seen_dims: dict[str, int],
    ) -> AnyArray | VirtualGroup | None:
        loads = name in (self.loadable_variables or ())
        if _is_image(info):
            shape = tuple(
                header_int(info.header, f"NAXIS{i}", where)
                for i in range(info.header["NAXIS"], 0, -1)
            )
            if not math.prod(shape) or not shape:
                return None  # an image HDU without data (NAXIS = 0, or an axis of length 0)
            dims = _unique_dimensions(dimension_names(len(shape)), shape, name, seen_dims)
            return _image(info, url, where, dims, self.chunks)
        if is_compressed_image(info.header):
            shape = compressed_shape(info.header, where)
            dims = _unique_dimensions(dimension_names(len(shape)), shape, name, seen_dims)
            try:
                return compressed_image(info, url, where, fetch, dims)
            except TileRefusal as refusal:
                if loads:
                    return _loaded(info, fetch, where, dims)
                raise FITSUnsupportedError(f"{where}: {refusal}; {_HINT}") from None
        if info.kind not in ("PRIMARY", "BINTABLE", "TABLE"):
            raise FITSUnsupportedError(
                f"{where}: {info.kind or 'a non-standard'} extensions are not read by vz; "
                "drop it (drop_variables=)"
            )
        if loads:
            return _loaded(info, fetch, where, [])
        what = "random groups" if info.index == 0 else f"a {info.kind} extension"
        raise FITSUnsupportedError(
            f"{where}: {what} holds interleaved rows, which cannot be referenced as an "
            f"array; {_HINT}"
        )


_HINT = "pass its name in loadable_variables= to read it into memory, or drop it (drop_variables=)"
