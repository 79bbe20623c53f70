"""A TIFF / BigTIFF directory walker over ranged reads.

It reads the header and the first IFD with one request (`FIRST_READ` bytes: a
COG keeps all its IFDs and their tile offsets in the first few KiB, GDAL's
"ghost area"), then follows the IFD chain and SubIFDs, fetching what lies
outside the bytes already read with one request per IFD at most. Entries are
decoded with numpy structured dtypes (12-byte classic, 20-byte BigTIFF entries),
and tag values (tile offsets and byte counts among them) with ``np.frombuffer``.
Every count and offset is checked against the file size before anything is
allocated, so a corrupt file fails fast with a `TIFFFormatError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs
import numpy as np
import numpy.typing as npt

from vzcore.errors import VirtualizationError

__all__ = [
    "FIRST_READ",
    "IFD",
    "MAX_IFDS",
    "TIFFFormatError",
    "TIFFHeader",
    "TagValue",
    "read_ifds",
]

FIRST_READ = 1 << 16
"""Bytes of the first request: the header, and all the IFDs of a COG of up to ~40k x 40k."""

MAX_IFDS = 1 << 16
"""IFDs (pages and SubIFDs) one file may have; a longer chain is taken as corrupt."""

_SUBIFDS = 330
_ASCII = 2

type TagValue = npt.NDArray[Any] | bytes
"""A tag's value: its numbers (1-d, native byte order), or the bytes of an ASCII or UNDEFINED tag."""

type Fetch = Callable[[Sequence[int], Sequence[int]], list[memoryview]]


class TIFFFormatError(VirtualizationError):
    """A file is not a readable TIFF, or it has a feature vz cannot express as zarr."""


# Item size and numpy kind of each TIFF field type (TIFF 6.0 section 2, BigTIFF's 16-18).
_TYPES: dict[int, tuple[int, str]] = {
    1: (1, "u1"),  # BYTE
    2: (1, "u1"),  # ASCII
    3: (2, "u2"),  # SHORT
    4: (4, "u4"),  # LONG
    5: (8, "u4"),  # RATIONAL: two LONGs
    6: (1, "i1"),  # SBYTE
    7: (1, "u1"),  # UNDEFINED
    8: (2, "i2"),  # SSHORT
    9: (4, "i4"),  # SLONG
    10: (8, "i4"),  # SRATIONAL
    11: (4, "f4"),  # FLOAT
    12: (8, "f8"),  # DOUBLE
    13: (4, "u4"),  # IFD
    16: (8, "u8"),  # LONG8
    17: (8, "i8"),  # SLONG8
    18: (8, "u8"),  # IFD8
}
_RATIONALS = frozenset({5, 10})
_ITEMSIZES = np.zeros(max(_TYPES) + 2, dtype=np.uint64)  # 0: a type vz skips
_ITEMSIZES[list(_TYPES)] = [size for size, _ in _TYPES.values()]


@attrs.frozen
class TIFFHeader:
    """The byte order and flavour of a TIFF file."""

    byteorder: str
    """``"<"`` (``II``) or ``">"`` (``MM``)."""
    bigtiff: bool
    first_ifd: int

    @property
    def offset_size(self) -> int:
        return 8 if self.bigtiff else 4

    def entry_dtype(self) -> np.dtype[Any]:
        count = "u8" if self.bigtiff else "u4"
        return np.dtype(
            [
                ("tag", self.byteorder + "u2"),
                ("type", self.byteorder + "u2"),
                ("count", self.byteorder + count),
                ("value", f"V{self.offset_size}"),
            ]
        )


def parse_header(head: bytes) -> TIFFHeader:
    """The header of a TIFF (``II*\\0``, ``MM\\0*``) or BigTIFF (``II+\\0``, ``MM\\0+``) file."""
    if len(head) < 8 or head[:2] not in (b"II", b"MM"):
        raise TIFFFormatError(f"not a TIFF file (first bytes {head[:8]!r})")
    byteorder = "<" if head[:2] == b"II" else ">"
    order: Literal["little", "big"] = "little" if byteorder == "<" else "big"
    version = int.from_bytes(head[2:4], order)
    if version == 42:
        return TIFFHeader(byteorder, False, int.from_bytes(head[4:8], order))
    if version == 43 and len(head) >= 16:
        offset_size = int.from_bytes(head[4:6], order)
        if offset_size != 8:
            raise TIFFFormatError(f"BigTIFF with an offset size of {offset_size}, not 8")
        return TIFFHeader(byteorder, True, int.from_bytes(head[8:16], order))
    raise TIFFFormatError(f"not a TIFF file (version {version}, first bytes {head[:8]!r})")


@attrs.frozen
class IFD:
    """One image file directory: its tags, and where it is in the file."""

    index: str
    """Where it is: ``"0"``, ``"1"`` for pages, ``"0/subifd0"`` for a SubIFD of page 0."""
    offset: int
    tags: Mapping[int, TagValue] = attrs.field(repr=False)
    types: Mapping[int, int] = attrs.field(repr=False)
    subifds: tuple[IFD, ...] = ()

    def get(self, tag: int) -> TagValue | None:
        return self.tags.get(tag)

    def numbers(self, tag: int) -> npt.NDArray[Any] | None:
        """A numeric tag's values (None if absent)."""
        value = self.tags.get(tag)
        if value is None:
            return None
        if isinstance(value, bytes):
            return np.frombuffer(value, np.uint8)
        return value

    def scalar(self, tag: int, default: int | None = None) -> int | None:
        """The first value of an integer tag, or ``default`` if absent."""
        values = self.numbers(tag)
        if values is None or len(values) == 0:
            return default
        return int(values[0])

    def text(self, tag: int) -> str | None:
        """An ASCII tag as text, without its NUL terminator (None if absent)."""
        value = self.tags.get(tag)
        if value is None:
            return None
        raw = value if isinstance(value, bytes) else bytes(np.asarray(value, np.uint8))
        return raw.split(b"\x00", 1)[0].decode("latin-1")


class _Bytes:
    """The bytes of a file read so far: one prefix plus extra ranges, fetched on demand."""

    def __init__(self, fetch: Fetch, size: int) -> None:
        self._fetch, self.size = fetch, size
        self._ranges: list[tuple[int, bytes]] = []

    def prefetch(self, wanted: Sequence[tuple[int, int]], slack: int = 0) -> None:
        """Read every ``(start, end)`` range not held yet, in one request."""
        missing = [(s, e) for s, e in wanted if e > s and self._find(s, e) is None]
        if not missing:
            return
        for start, end in missing:
            if start < 0 or end > self.size:
                raise TIFFFormatError(
                    f"bytes {start}-{end} lie outside the file of {self.size} bytes"
                )
        starts = [s for s, _ in missing]
        ends = [min(max(e, s + slack), self.size) for s, e in missing]
        got = self._fetch(starts, ends)
        self._ranges.extend((s, bytes(b)) for s, b in zip(starts, got, strict=True))

    def _find(self, start: int, end: int) -> bytes | None:
        for base, data in self._ranges:
            if base <= start and end <= base + len(data):
                return data[start - base : end - base]
        return None

    def take(self, start: int, end: int) -> bytes:
        found = self._find(start, end)
        if found is None:
            self.prefetch([(start, end)])
            found = self._find(start, end)
            assert found is not None
        return found


def _values(data: bytes, field_type: int, count: int, byteorder: str) -> TagValue:
    if field_type in (_ASCII, 7):
        return data
    _, kind = _TYPES[field_type]
    numbers = np.frombuffer(
        data, byteorder + kind, count=count * (2 if field_type in _RATIONALS else 1)
    )
    if field_type in _RATIONALS:
        pairs = numbers.reshape(-1, 2).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return pairs[:, 0] / pairs[:, 1]
    native: npt.NDArray[Any] = numbers.astype(numbers.dtype.newbyteorder("="), copy=False)
    return native


def _read_ifd(file: _Bytes, header: TIFFHeader, offset: int, index: str) -> tuple[IFD, int]:
    """The IFD at ``offset`` (its SubIFDs not yet read) and the next IFD's offset (0: none)."""
    count_size = 8 if header.bigtiff else 2
    order: Literal["little", "big"] = "little" if header.byteorder == "<" else "big"
    if offset < 8 or offset + count_size > file.size:
        raise TIFFFormatError(f"IFD {index} at offset {offset} lies outside the file")
    file.prefetch([(offset, offset + count_size)], slack=FIRST_READ)
    n_entries = int.from_bytes(file.take(offset, offset + count_size), order)
    entry_dtype = header.entry_dtype()
    end = offset + count_size + n_entries * entry_dtype.itemsize + header.offset_size
    if n_entries == 0 or end > file.size:
        raise TIFFFormatError(
            f"IFD {index} at offset {offset} has {n_entries} entries, "
            f"which do not fit in the file of {file.size} bytes"
        )
    raw = file.take(offset + count_size, end)
    entries = np.frombuffer(raw, entry_dtype, count=n_entries)
    next_offset = int.from_bytes(raw[-header.offset_size :], order)
    field_types = entries["type"]
    known = np.flatnonzero(_ITEMSIZES[np.minimum(field_types, len(_ITEMSIZES) - 1)] > 0)
    entries = entries[known]
    itemsizes = _ITEMSIZES[entries["type"]]
    counts = entries["count"].astype(np.uint64)
    # A count so large that count * itemsize overflows is larger than any file.
    too_big = counts > np.uint64(file.size)
    nbytes = np.where(too_big, np.uint64(file.size + 1), counts * itemsizes)
    inline = nbytes <= header.offset_size
    value_offsets = (
        entries["value"].copy().view(header.byteorder + ("u8" if header.bigtiff else "u4"))
    )
    outside = (~inline) & (value_offsets.astype(np.uint64) + nbytes > np.uint64(file.size))
    if outside.any():
        tag = int(entries["tag"][np.flatnonzero(outside)[0]])
        raise TIFFFormatError(
            f"IFD {index}: the value of tag {tag} lies outside the file of {file.size} bytes"
        )
    file.prefetch(
        [(int(o), int(o + n)) for o, n in zip(value_offsets[~inline], nbytes[~inline], strict=True)]
    )
    tags: dict[int, TagValue] = {}
    types: dict[int, int] = {}
    entry_size = entry_dtype.itemsize
    for position, tag, field_type, count, size, is_inline, value_offset in zip(
        known.tolist(),
        entries["tag"].tolist(),
        entries["type"].tolist(),
        entries["count"].tolist(),
        nbytes.tolist(),
        inline.tolist(),
        value_offsets.tolist(),
        strict=True,
    ):  # the tags of one IFD (tens), not per chunk
        if tag in tags:
            continue  # a repeated tag: the first one counts, as in libtiff
        if is_inline:
            start = position * entry_size + entry_size - header.offset_size
            data = raw[start : start + size]
        else:
            data = file.take(value_offset, value_offset + size)
        tags[tag] = _values(data, field_type, count, header.byteorder)
        types[tag] = field_type
    return IFD(index=index, offset=offset, tags=tags, types=types), next_offset


def read_ifds(head: bytes, fetch: Fetch, size: int) -> tuple[TIFFHeader, list[IFD]]:
    """Every IFD of the chain, each with its SubIFDs (one level), in file order.

    Parameters
    ----------
    head
        The file's first bytes (at least the header; `FIRST_READ` of them saves requests).
    fetch
        ``fetch(starts, ends)``: the bytes of each range, read in one request.
    size
        The file's size in bytes.

    Raises
    ------
    TIFFFormatError
        If the header or an IFD is invalid, lies outside the file, or the IFDs loop.
    """
    header = parse_header(head)
    file = _Bytes(fetch, size)
    file._ranges.append((0, head))
    ifds: list[IFD] = []
    seen: set[int] = set()
    offset = header.first_ifd
    while offset:
        if offset in seen:
            raise TIFFFormatError(f"the IFD chain loops back to offset {offset}")
        if len(seen) >= MAX_IFDS:
            raise TIFFFormatError(f"the file has more than {MAX_IFDS} IFDs")
        seen.add(offset)
        ifd, offset = _read_ifd(file, header, offset, str(len(ifds)))
        sub_offsets = ifd.numbers(_SUBIFDS)
        if sub_offsets is not None and ifd.types.get(_SUBIFDS) not in (_ASCII, 7):
            subs = []
            for number, sub_offset in enumerate(sub_offsets.tolist()):  # a few per page
                if sub_offset in seen or len(seen) >= MAX_IFDS:
                    raise TIFFFormatError(f"IFD {ifd.index}: SubIFD {number} loops or overflows")
                seen.add(int(sub_offset))
                sub, _ = _read_ifd(file, header, int(sub_offset), f"{ifd.index}/subifd{number}")
                subs.append(sub)
            ifd = attrs.evolve(ifd, subifds=tuple(subs))
        ifds.append(ifd)
    if not ifds:
        raise TIFFFormatError("the file has no IFD (the first IFD offset is 0)")
    return header, ifds
