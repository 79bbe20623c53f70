"""TIFF files built byte by byte, for layouts no writer here makes (and hostile ones).

`classic_tiff` lays out a little- or big-endian classic TIFF: the 8-byte header,
the ``payload`` (segment data) from offset 8, then one IFD with the given tags,
sorted, and values that do not fit in an entry after it.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

__all__ = ["PAYLOAD_OFFSET", "classic_tiff"]

PAYLOAD_OFFSET = 8
_FORMATS = {1: "B", 2: "s", 3: "H", 4: "I", 7: "s", 11: "f", 12: "d", 16: "Q"}
_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 7: 1, 11: 4, 12: 8, 16: 8}

TagValues = tuple[int, Sequence[int | float] | bytes]
"""A tag's field type and its values (bytes for ASCII and UNDEFINED)."""


def _pack(order: str, field_type: int, values: Sequence[int | float] | bytes) -> bytes:
    if isinstance(values, bytes):
        return values
    return struct.pack(f"{order}{len(values)}{_FORMATS[field_type]}", *values)


def classic_tiff(
    tags: Mapping[int, TagValues],
    payload: bytes = b"",
    *,
    byteorder: str = "<",
    next_ifd: int = 0,
    ifd_offset: int | None = None,
) -> bytes:
    """A classic TIFF with one IFD of ``tags``; ``payload`` starts at `PAYLOAD_OFFSET`.

    ``ifd_offset`` overrides the header's first-IFD offset (to point it anywhere),
    ``next_ifd`` the IFD's next-IFD offset (to make chains and loops).
    """
    order = byteorder
    ifd_start = PAYLOAD_OFFSET + len(payload) + (len(payload) % 2)
    n = len(tags)
    values_start = ifd_start + 2 + 12 * n + 4
    entries, extra = [], b""
    for tag in sorted(tags):
        field_type, values = tags[tag]
        data = _pack(order, field_type, values)
        count = len(data) // _SIZES[field_type]
        if len(data) <= 4:
            entries.append(
                struct.pack(f"{order}HHI", tag, field_type, count) + data.ljust(4, b"\0")
            )
        else:
            offset = values_start + len(extra)
            entries.append(struct.pack(f"{order}HHII", tag, field_type, count, offset))
            extra += data + b"\0" * (len(data) % 2)
    magic = b"II" if order == "<" else b"MM"
    header = magic + struct.pack(f"{order}HI", 42, ifd_start if ifd_offset is None else ifd_offset)
    body = payload + b"\0" * (len(payload) % 2)
    ifd = struct.pack(f"{order}H", n) + b"".join(entries) + struct.pack(f"{order}I", next_ifd)
    return header + body + ifd + extra
