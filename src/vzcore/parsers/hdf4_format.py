"""The HDF4 file layer: data descriptor (DD) blocks, number types, Vgroups and Vdatas.

Written from the HDF4 file format specification ("HDF Specification and Developer's
Guide": the DD block layout, the tag list of ``htags.h``, the number types of
``hntdefs.h`` and the Vgroup/Vdata headers packed by ``vgp.c`` / ``vio.c``). Every
count read from the file is checked against the bytes the file holds before it is
used, so corrupt input fails fast with an `HDF4FormatError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from vzcore.byteranges import Source
from vzcore.errors import VirtualizationError
from vzcore.limits import check_limit

__all__ = [
    "DD_DTYPE",
    "HDF4_MAGIC",
    "Element",
    "Fields",
    "HDF4FormatError",
    "Vdata",
    "Vgroup",
    "read_dd_table",
]

HDF4_MAGIC = b"\x0e\x03\x13\x01"
DD_DTYPE = np.dtype([("tag", ">u2"), ("ref", ">u2"), ("offset", ">u4"), ("length", ">u4")])
EXTENDED = 0x4000  # a special element's tag: the base tag with this bit set
TAG_NULL = 1
TAG_COMPRESSED = 40
TAG_CHUNK = 61
TAG_NT, TAG_SDD, TAG_SD = 106, 701, 702
TAG_SDG, TAG_NDG = 700, 720  # the old DFSD interface's data set groups
TAG_VH, TAG_VS, TAG_VG = 1962, 1963, 1965
_DD_HEADER = 6  # ndd (uint16) and next (uint32)
_DD_NBYTES = DD_DTYPE.itemsize
_MAX_DD_BLOCKS = 1 << 16
_INVALID = 0xFFFFFFFF

# Number types (hntdefs.h): code -> numpy dtype, big-endian as HDF4 stores them;
# the DFNT_LITEND bit (0x4000) marks little-endian data.
_NUMBER_TYPES: dict[int, str] = {
    3: "S1",  # DFNT_UCHAR8
    4: "S1",  # DFNT_CHAR8
    5: ">f4",
    6: ">f8",
    20: "i1",
    21: "u1",
    22: ">i2",
    23: ">u2",
    24: ">i4",
    25: ">u4",
    26: ">i8",
    27: ">u8",
}
_LITEND = 0x4000
_NATIVE = 0x1000


class HDF4FormatError(VirtualizationError):
    """A file is not a readable HDF4 file, or an element of it cannot be virtualized."""


def number_type(code: int, where: str) -> np.dtype[Any]:
    """The numpy dtype of an HDF4 number type code (``DFNT_*``)."""
    base = code & ~(_LITEND | _NATIVE)
    if base not in _NUMBER_TYPES:
        raise HDF4FormatError(f"{where}: unsupported HDF4 number type {code}")
    dtype = np.dtype(_NUMBER_TYPES[base])
    return dtype.newbyteorder("<") if code & _LITEND and dtype.itemsize > 1 else dtype


@attrs.frozen
class Element:
    """One data element: where its bytes lie, and whether it is a special element."""

    tag: int
    ref: int
    offset: int
    length: int

    @property
    def special(self) -> bool:
        return bool(self.tag & EXTENDED)


def read_dd_table(file: Source, size: int) -> npt.NDArray[Any]:
    """Every data descriptor of the file, NULL slots removed, as a ``DD_DTYPE`` array.

    The DD blocks form a chain (each header holds the offset of the next block); a
    cycle, a block past the end of the file or a count the file cannot hold is refused.
    """
    if size < len(HDF4_MAGIC) + _DD_HEADER:
        raise HDF4FormatError(f"the file has {size} bytes, too few for an HDF4 file")
    magic = bytes(file.read_ranges([0], [len(HDF4_MAGIC)])[0])
    if magic != HDF4_MAGIC:
        raise HDF4FormatError(f"not an HDF4 file (magic {magic!r})")
    blocks: list[npt.NDArray[Any]] = []
    seen: set[int] = set()
    position, total = len(HDF4_MAGIC), 0
    while position:
        if position in seen:
            raise HDF4FormatError(f"the DD block chain loops back to offset {position}")
        if len(seen) >= _MAX_DD_BLOCKS:
            raise HDF4FormatError(f"more than {_MAX_DD_BLOCKS} DD blocks")
        seen.add(position)
        if position + _DD_HEADER > size:
            raise HDF4FormatError(f"a DD block at offset {position} lies past the end ({size})")
        header = bytes(file.read_ranges([position], [position + _DD_HEADER])[0])
        ndd, following = int.from_bytes(header[:2], "big"), int.from_bytes(header[2:], "big")
        end = position + _DD_HEADER + ndd * _DD_NBYTES
        if end > size:
            raise HDF4FormatError(
                f"the DD block at offset {position} holds {ndd} descriptors, which end at "
                f"byte {end}, past the end of the file ({size} bytes)"
            )
        total += ndd
        check_limit("max_chunks", total, file.url, "the number of HDF4 data descriptors")
        raw = file.read_ranges([position + _DD_HEADER], [end])[0]
        blocks.append(np.frombuffer(raw, dtype=DD_DTYPE))
        position = following
    table: npt.NDArray[Any] = np.concatenate(blocks) if blocks else np.empty(0, DD_DTYPE)
    table = table[table["tag"] != TAG_NULL].copy()
    # An element created but never written has offset and length INVALID (all bits set).
    empty = (table["offset"] == _INVALID) | (table["length"] == _INVALID)
    table["offset"][empty], table["length"][empty] = 0, 0
    ends = table["offset"].astype(np.int64) + table["length"].astype(np.int64)
    past = np.flatnonzero(ends > size)
    if len(past):
        bad = table[past[0]]
        raise HDF4FormatError(
            f"data element (tag {int(bad['tag'])}, ref {int(bad['ref'])}) ends at byte "
            f"{int(ends[past[0]])}, past the end of the file ({size} bytes)"
            + (f"; {len(past)} elements affected" if len(past) > 1 else "")
        )
    return table


class Reader:
    """Lookup and batched reads of data elements by (tag, ref)."""

    def __init__(self, file: Source, table: npt.NDArray[Any]) -> None:
        self.file, self.table = file, table
        base = (table["tag"].astype(np.int64) & ~EXTENDED) << 16 | table["ref"].astype(np.int64)
        self._order = np.argsort(base, kind="stable")
        self._keys = base[self._order]
        # The same, for one lookup at a time: the first descriptor of a key wins.
        keys = base.tolist()
        self._row_of = {keys[row]: row for row in range(len(keys) - 1, -1, -1)}
        self._records = list(
            zip(
                table["tag"].tolist(), table["ref"].tolist(),
                table["offset"].tolist(), table["length"].tolist(), strict=True,
            )
        )  # fmt: skip

    def find(self, tag: int, ref: int) -> Element | None:
        """The element of base tag ``tag`` (special or not) and ``ref``, if any."""
        row = self._row_of.get((tag & ~EXTENDED) << 16 | ref)
        return None if row is None else self.element(row)

    def find_many(self, tag: int, refs: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
        """Row numbers in the table of ``(tag, ref)`` for each ref, -1 where absent."""
        keys = np.int64(tag) << 16 | refs.astype(np.int64)
        at = np.searchsorted(self._keys, keys)
        at_clipped = np.minimum(at, max(len(self._keys) - 1, 0))
        hit = (
            (at < len(self._keys)) & (self._keys[at_clipped] == keys) if len(self._keys) else at < 0
        )
        return np.where(hit, self._order[at_clipped], -1).astype(np.int64)

    def element(self, row: int) -> Element:
        return Element(*self._records[row])

    def of_tag(self, tag: int) -> list[Element]:
        rows = np.flatnonzero(self.table["tag"] == tag)
        return [self.element(int(row)) for row in rows]

    def read(self, elements: Sequence[Element]) -> list[bytes]:
        """The bytes of each element, in one batched ranged read."""
        starts = [e.offset for e in elements]
        ends = [e.offset + e.length for e in elements]
        return [bytes(view) for view in self.file.read_ranges(starts, ends)]


class _Cursor:
    """Sequential big-endian reads of one element's bytes."""

    def __init__(self, data: bytes, where: str) -> None:
        self.data, self.pos, self.where = data, 0, where

    def take(self, n_bytes: int) -> bytes:
        end = self.pos + n_bytes
        if n_bytes < 0 or end > len(self.data):
            raise HDF4FormatError(
                f"{self.where}: truncated (needs byte {end}, the element has {len(self.data)})"
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def uint(self, width: int) -> int:
        return int.from_bytes(self.take(width), "big")

    def uints(self, width: int, count: int) -> list[int]:
        raw = self.take(width * count)
        return np.frombuffer(raw, dtype=f">u{width}").tolist()

    def text(self) -> str:
        raw = self.take(self.uint(2))
        return raw.split(b"\x00", 1)[0].decode("utf-8", errors="replace")


def cursor(data: bytes, where: str) -> _Cursor:
    """A big-endian cursor over ``data``, whose errors name ``where``."""
    return _Cursor(data, where)


@attrs.frozen
class Vgroup:
    """A Vgroup: its name, class and members as (tag, ref) pairs."""

    ref: int
    name: str
    class_name: str
    members: tuple[tuple[int, int], ...]


_VSET_VERSIONS = (2, 3, 4)  # VSET_OLD_VERSION, VSET_VERSION, VSET_NEW_VERSION
_MAX_VDATA_VERSION = 4  # VSET_NEW_VERSION: past it, the library unpacks no more


def parse_vgroup(ref: int, data: bytes) -> Vgroup:
    """A Vgroup from its VG element (``vpackvg``: nelt, tags, refs, name, class).

    As for a Vdata header, the HDF4 library takes the version from the element's last
    bytes and unpacks nothing more of a Vgroup whose version is past 4: it has no name,
    class or members for it.
    """
    if len(data) >= 5 and int.from_bytes(data[-5:-3], "big") > _MAX_VDATA_VERSION:
        return Vgroup(ref, "", "", ())
    c = _Cursor(data, f"Vgroup {ref}")
    count = c.uint(2)
    tags, refs = c.uints(2, count), c.uints(2, count)
    name = c.text()
    class_name = c.text()
    if len(data) >= c.pos + 6:  # extension tag and ref, then the version
        c.uints(2, 2)
        version = c.uint(2)
        if version not in _VSET_VERSIONS:  # the HDF4 library does not load the Vgroup
            raise HDF4FormatError(f"Vgroup {ref}: unknown version {version} (corrupt file?)")
    return Vgroup(ref, name, class_name, tuple(zip(tags, refs, strict=True)))


@attrs.frozen
class Fields:
    """The fields of a Vdata: names, number type codes, orders, byte offsets and sizes."""

    names: tuple[str, ...]
    types: tuple[int, ...]
    orders: tuple[int, ...]
    offsets: tuple[int, ...]
    sizes: tuple[int, ...] = ()
    """Each field's size in the file's record (``isize``), as the header states it."""


@attrs.frozen
class Vdata:
    """A Vdata header (VH) and the element holding its records (VS)."""

    ref: int
    name: str
    class_name: str
    n_records: int
    record_nbytes: int
    fields: Fields

    def record_dtype(self, where: str) -> np.dtype[Any]:
        """A structured dtype for one record (each field ``order`` values of its type)."""
        formats: list[Any] = []
        for code, order in zip(self.fields.types, self.fields.orders, strict=True):
            dtype = number_type(code, where)
            formats.append((dtype, (order,)) if order != 1 else dtype)
        try:
            return np.dtype(
                {
                    "names": list(self.fields.names),
                    "formats": formats,
                    "offsets": list(self.fields.offsets),
                    "itemsize": self.record_nbytes,
                }
            )
        except (ValueError, TypeError) as err:
            raise HDF4FormatError(f"{where}: inconsistent Vdata fields ({err})") from err


def parse_vdata_header(ref: int, data: bytes) -> Vdata:
    """A Vdata header from its VH element (``vpackvs``).

    The HDF4 library takes the header's version from its last bytes (``version``,
    ``more`` and a NUL byte end it) and reads nothing more of a header whose version
    is past 4: such a Vdata has no class, name, fields or records for it.
    """
    if len(data) >= 5 and int.from_bytes(data[-5:-3], "big") > _MAX_VDATA_VERSION:
        return Vdata(ref, "", "", 0, 0, Fields((), (), (), (), ()))
    c = _Cursor(data, f"Vdata {ref}")
    interlace = c.uint(2)
    n_records, record_nbytes, count = c.uint(4), c.uint(2), c.uint(2)
    # Records are read fully interlaced; field by field (1) is the same for one field or record.
    if interlace not in (0, 1) or (interlace == 1 and count > 1 and n_records > 1):
        raise HDF4FormatError(f"Vdata {ref}: interlace {interlace} is not read (corrupt file?)")
    types, sizes, offsets, orders = (c.uints(2, count) for _ in range(4))
    names = tuple(c.text() for _ in range(count))
    name = c.text()
    class_name = c.text()
    fields = Fields(names, tuple(types), tuple(orders), tuple(offsets), tuple(sizes))
    return Vdata(ref, name, class_name, n_records, record_nbytes, fields)


def vdata_records(vdata: Vdata, data: bytes, where: str) -> npt.NDArray[Any]:
    """The records of a Vdata as a structured array."""
    dtype = vdata.record_dtype(where)
    needed = vdata.n_records * dtype.itemsize
    if needed > len(data):
        raise HDF4FormatError(
            f"{where}: {vdata.n_records} records of {dtype.itemsize} bytes need {needed} "
            f"bytes, the data element has {len(data)}"
        )
    return np.frombuffer(data, dtype=dtype, count=vdata.n_records)
