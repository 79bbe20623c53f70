"""The HDUs of a FITS file, found from their headers by ranged reads (FITS 4.0, sections 3-4).

A FITS file is a sequence of HDUs; each is a header of 80-character cards in
2880-byte blocks, ended by an ``END`` card, then a data unit whose size follows
from the header alone (``BITPIX``, ``NAXISn``, ``PCOUNT``, ``GCOUNT``), padded to
whole blocks. No data is read to find the HDUs: one read per header (more for a
header longer than the read-ahead), each count checked against the file's size
before anything is allocated.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import numpy as np

from vzcore._frozen import JSON
from vzcore.errors import VirtualizationError

__all__ = [
    "BLOCK",
    "COMPRESSED_MAGICS",
    "MAX_HEADER_BYTES",
    "FITSFormatError",
    "HDUInfo",
    "ImageEncoding",
    "bitpix_dtype",
    "hdus",
    "header_attributes",
    "header_int",
    "image_encoding",
]

BLOCK = 2880
_CARD = 80
_END = np.frombuffer(b"END     ", dtype=np.uint8)
_READ_AHEAD = 16 * BLOCK
_MAX_NAXIS = 999  # FITS 4.0 section 4.4.1.1
MAX_HEADER_BYTES = 64 * 2**20
"""The longest header read (an END card must come before): 800,000 cards."""
COMPRESSED_MAGICS = (b"\x1f\x8b", b"\x1f\x9d")
"""The first bytes of a gzip and of a Unix compress stream."""
_BITPIX = frozenset({8, 16, 32, 64, -32, -64})

_DTYPES = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_UNSIGNED = {8: ("i1", -128), 16: (">u2", 2**15), 32: (">u4", 2**31), 64: (">u8", 2**63)}
# Keywords that describe the layout of the data unit, not the data: never attributes.
_STRUCTURAL = frozenset(
    {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "GROUPS", "END"}
    | {"BSCALE", "BZERO", "BLANK", "TFIELDS", "THEAP"}
)
_TABLE_PREFIXES = ("TTYPE", "TFORM", "TUNIT", "TDIM", "TNULL", "TSCAL", "TZERO", "TDISP", "TBCOL")


type Fetch = Callable[[Sequence[int], Sequence[int]], list[bytes]]


class FITSFormatError(VirtualizationError):
    """A file is not a readable FITS file, or one of its HDUs is corrupt or unsupported."""


@attrs.frozen
class HDUInfo:
    """One HDU: its position in the file, its header, and where its data unit lies."""

    index: int
    header: Any  # an astropy.io.fits.Header
    header_start: int
    data_start: int
    data_nbytes: int

    @property
    def kind(self) -> str:
        """``PRIMARY``, or the extension type (``IMAGE``, ``BINTABLE``, ``TABLE``, ...)."""
        if self.index == 0:
            return "PRIMARY"
        return str(self.header.get("XTENSION", "")).strip().upper()


class _Blocks:
    """Ranged reads of whole blocks, with read-ahead kept for the next header."""

    def __init__(self, fetch: Fetch, size: int) -> None:
        self._fetch, self.size = fetch, size
        self._start, self._buffer = 0, b""

    def read(self, start: int, nbytes: int) -> bytes:
        end = min(start + nbytes, self.size)
        if not (self._start <= start and end <= self._start + len(self._buffer)):
            ahead = min(max(end, start + _READ_AHEAD), self.size)
            self._start, self._buffer = start, self._fetch([start], [ahead])[0]
        return self._buffer[start - self._start : end - self._start]


def _header_bytes(blocks: _Blocks, start: int, where: str) -> bytes:
    """The header's bytes up to and including the block of its ``END`` card."""
    parts: list[bytes] = []
    position, wanted = start, _READ_AHEAD
    while True:
        data = blocks.read(position, wanted)
        whole = len(data) - len(data) % BLOCK
        if whole == 0:
            raise FITSFormatError(
                f"{where}: the header starting at byte {start} has no END card before the "
                f"end of the file ({blocks.size} bytes)"
            )
        cards = np.frombuffer(data, dtype=np.uint8, count=whole).reshape(-1, _CARD)[:, :8]
        found = np.flatnonzero((cards == _END).all(axis=1))
        if len(found):
            parts.append(data[: math.ceil((int(found[0]) + 1) * _CARD / BLOCK) * BLOCK])
            return b"".join(parts)
        parts.append(data[:whole])
        position += whole
        wanted *= 2
        if position - start > MAX_HEADER_BYTES:
            raise FITSFormatError(
                f"{where}: no END card in the first {MAX_HEADER_BYTES} bytes of the header"
            )


def _parse_header(raw: bytes, where: str) -> Any:
    from astropy.io import fits

    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as err:
        raise FITSFormatError(f"{where}: the header holds bytes that are not ASCII") from err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            header = fits.Header.fromstring(text)
        except Exception as err:  # astropy raises ValueError, VerifyError, KeyError...
            raise FITSFormatError(f"{where}: unreadable header: {err}") from err
        if not _values_parse(header):
            # astropy parses card values lazily: fix what it can, as fits.open does.
            try:
                header.verify("silentfix")
            except Exception as err:
                raise FITSFormatError(f"{where}: unreadable header: {err}") from err
            broken = [card.keyword for card in header.cards if not _value_parses(card)]
            if broken:
                raise FITSFormatError(f"{where}: unparsable header cards {broken[:5]}")
    return header


def _value_parses(card: Any) -> bool:
    from astropy.io.fits.verify import VerifyError

    try:
        card.value  # noqa: B018 - parsing is the point
    except (VerifyError, ValueError, KeyError, IndexError, TypeError):
        return False
    return True


def _values_parse(header: Any) -> bool:
    return all(_value_parses(card) for card in header.cards)


def header_int(header: Any, key: str, where: str, default: int | None = None) -> int:
    """An integer keyword of ``header``; a missing or non-integer one is a `FITSFormatError`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = header.get(key, default)
    except Exception as err:
        raise FITSFormatError(f"{where}: keyword {key} is unreadable: {err}") from err
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        missing = "missing" if value is None else f"not an integer ({value!r})"
        raise FITSFormatError(f"{where}: keyword {key} is {missing}")
    return int(value)


def _axes(header: Any, where: str, prefix: str = "NAXIS") -> tuple[int, ...]:
    """``NAXIS1..NAXISn`` in FITS order (fastest first), each checked."""
    naxis = header_int(header, prefix, where)
    if not 0 <= naxis <= _MAX_NAXIS:
        raise FITSFormatError(f"{where}: {prefix} = {naxis} is not in 0..{_MAX_NAXIS}")
    lengths = tuple(header_int(header, f"{prefix}{i}", where) for i in range(1, naxis + 1))
    if any(n < 0 for n in lengths):
        raise FITSFormatError(f"{where}: negative axis length in {prefix}n = {lengths}")
    return lengths


def _data_nbytes(header: Any, index: int, where: str) -> int:
    """Bytes of the data unit (FITS 4.0 equations 1 and 2), without its padding."""
    bitpix = header_int(header, "BITPIX", where)
    if bitpix not in _BITPIX:
        raise FITSFormatError(f"{where}: BITPIX = {bitpix} is not one of {sorted(_BITPIX)}")
    axes = _axes(header, where)
    pcount = header_int(header, "PCOUNT", where, 0)
    gcount = header_int(header, "GCOUNT", where, 1)
    if pcount < 0 or gcount < 0:
        raise FITSFormatError(f"{where}: PCOUNT {pcount} and GCOUNT {gcount} must be >= 0")
    if not axes:
        return 0
    groups = index == 0 and axes[0] == 0 and bool(header.get("GROUPS", False))
    counted = axes[1:] if groups else axes
    return abs(bitpix) // 8 * gcount * (pcount + math.prod(counted))


def hdus(fetch: Fetch, size: int, url: str) -> Iterator[HDUInfo]:
    """Every HDU of the file, in order; stops at trailing bytes that start no extension."""
    blocks = _Blocks(fetch, size)
    start, index = 0, 0
    if blocks.read(0, 2) in COMPRESSED_MAGICS:
        raise FITSFormatError(
            f"{url}: a compressed (gzip or Unix compress) file; vz references bytes in "
            "place, so decompress it first (gunzip) and open the .fits file"
        )
    if size < BLOCK:
        raise FITSFormatError(f"{url}: not a FITS file ({size} bytes, less than one block)")
    while start < size:
        where = f"{url}: HDU {index}"
        first = blocks.read(start, 8 if index else 9)
        if index == 0 and first != b"SIMPLE  =":
            raise FITSFormatError(f"{url}: not a FITS file (it does not begin with 'SIMPLE  =')")
        if index and first != b"XTENSION":
            return  # padding or junk after the last HDU, which astropy ignores too
        raw = _header_bytes(blocks, start, where)
        header = _parse_header(raw, where)
        data_start = start + len(raw)
        nbytes = _data_nbytes(header, index, where)
        if data_start + nbytes > size:
            raise FITSFormatError(
                f"{where}: its data unit needs bytes {data_start}-{data_start + nbytes}, "
                f"the file has {size} (truncated, or a corrupt NAXISn)"
            )
        yield HDUInfo(index, header, start, data_start, nbytes)
        start = data_start + math.ceil(nbytes / BLOCK) * BLOCK
        index += 1


# ---- what the cards mean -------------------------------------------------------------------


def _attribute_value(value: Any) -> JSON | None:
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        plain: JSON = value.item()
        return plain
    return None  # an undefined value, or astropy's complex card values


def header_attributes(header: Any, skip: frozenset[str] = frozenset()) -> dict[str, JSON]:
    """The cards of ``header`` as attributes: COMMENT and HISTORY joined, layout keywords left out."""
    attributes: dict[str, JSON] = {}
    texts: dict[str, list[str]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for card in header.cards:
            key = card.keyword
            if key in ("COMMENT", "HISTORY", ""):
                if key:
                    texts.setdefault(key, []).append(str(card.value))
                continue
            if key in _STRUCTURAL or key in skip or _is_layout(key):
                continue
            value = _attribute_value(card.value)
            if value is not None:
                attributes[key] = value
    attributes.update({key: "\n".join(lines) for key, lines in texts.items()})
    return attributes


def _is_layout(key: str) -> bool:
    if key.startswith("NAXIS") and key[5:].isdigit():
        return True
    return key.startswith(_TABLE_PREFIXES) and key[5:].isdigit()


# ---- scaling --------------------------------------------------------------------------------


@attrs.frozen
class ImageEncoding:
    """How an image's stored integers or floats become values: dtype, codecs, CF encoding."""

    dtype: np.dtype[Any]
    codecs: tuple[dict[str, Any], ...]
    fill_value: Any
    encoding: dict[str, JSON]


def image_encoding(
    header: Any, bitpix: int, where: str, *, blank: int | str | None = "header"
) -> ImageEncoding:
    """The dtype and CF encoding of an image with ``bitpix`` and the scaling of ``header``.

    ``blank`` is the BLANK value when the caller knows it (a tile-compressed image's
    ``ZBLANK``), else it is read from the header.
    """
    bscale, bzero = header.get("BSCALE", 1), header.get("BZERO", 0)
    for key, value in (("BSCALE", bscale), ("BZERO", bzero)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FITSFormatError(f"{where}: {key} = {value!r} is not a number")
    if isinstance(blank, str):
        blank = header.get("BLANK")
    if bitpix < 0:
        blank = None  # BLANK applies to integer images only (FITS 4.0 section 4.4.2.5)
    if blank is not None and (isinstance(blank, bool) or not isinstance(blank, int)):
        raise FITSFormatError(f"{where}: BLANK = {blank!r} is not an integer")
    dtype = np.dtype(_DTYPES[bitpix])
    if bitpix > 0 and bscale == 1 and bzero == _UNSIGNED[bitpix][1]:
        # astropy returns these as the unsigned (signed bytes) type and does not mask BLANK.
        flipped = np.dtype(_UNSIGNED[bitpix][0])
        fill = 0 if blank is None else _flip(blank, dtype, flipped)
        codec = {"name": "vz.sign_flip", "configuration": {"itemsize": dtype.itemsize}}
        return ImageEncoding(flipped, (codec,), fill, {})
    encoding: dict[str, JSON] = {}
    if (bscale, bzero) != (1, 0):
        encoding = {"scale_factor": float(bscale), "add_offset": float(bzero)}
    if blank is not None:
        info = np.iinfo(dtype)
        if not info.min <= blank <= info.max:
            raise FITSFormatError(f"{where}: BLANK = {blank} does not fit BITPIX {bitpix}")
        encoding["_FillValue"] = int(blank)
    return ImageEncoding(dtype, (), 0 if blank is None else blank, encoding)


def _flip(blank: int, dtype: np.dtype[Any], flipped: np.dtype[Any]) -> Any:
    raw = np.array([blank], dtype=dtype).view(np.uint8).copy()
    raw[0] ^= 0x80
    return raw.view(flipped)[0]


def bitpix_dtype(bitpix: int) -> np.dtype[Any]:
    """The big-endian dtype of stored values of ``bitpix``."""
    return np.dtype(_DTYPES[bitpix])
