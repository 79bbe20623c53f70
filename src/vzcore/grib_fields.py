"""The sections of a GRIB2 message, and its fields as standalone messages.

A GRIB2 message may hold several fields: after section 7 the sequence of
sections 2-7, 3-7 or 4-7 repeats, and a section not repeated stays in effect
(WMO FM 92 GRIB, regulation 92.9). A field is then rebuilt as a message of its
own (section 0 with the new total length, the sections in effect, ``7777``), so
that ecCodes reads it with no multi-field mode. A bitmap section saying "the
bitmap defined before applies" (indicator 254) is replaced by that bitmap.

`GRIBParser` reads each field's keys from it; the ``vz.grib`` codec decodes the
field its ``field`` names from the chunk's whole message.
"""

from __future__ import annotations

__all__ = ["grib2_sections", "message_fields"]

_PREVIOUS_BITMAP = 254


def grib2_sections(data: bytes, where: str, error: type[Exception]) -> list[tuple[int, int, int]]:
    """``(number, start, length)`` of each section of a GRIB2 message after section 0.

    Raises ``error`` naming ``where`` when a section's length runs past the message.
    """
    sections: list[tuple[int, int, int]] = []
    position, end = 16, len(data) - 4
    while position < end:
        length = int.from_bytes(data[position : position + 4], "big")
        if length < 5 or position + length > end:
            raise error(f"{where}: a section of the message is {length} bytes long")
        sections.append((data[position + 4], position, length))
        position += length
    return sections


def message_fields(data: bytes, where: str, error: type[Exception]) -> list[bytes]:
    """The fields of one GRIB message, each a standalone message (``[data]`` for one field).

    >>> message_fields(b"GRIB\\x00\\x00\\x00\\x01" + bytes(4) + b"7777", "m", ValueError)[0][:4]
    b'GRIB'
    """
    if len(data) < 16 or data[7] != 2:
        return [data]
    sections = grib2_sections(data, where, error)
    if sum(1 for number, _, _ in sections if number == 7) <= 1:
        return [data]
    in_effect: dict[int, bytes] = {}
    bitmap: bytes | None = None
    fields: list[bytes] = []
    for number, start, length in sections:
        section = data[start : start + length]
        if number == 6:
            indicator = section[5] if length > 5 else None
            if indicator == _PREVIOUS_BITMAP:
                if bitmap is None:
                    raise error(
                        f"{where}: field {len(fields)} uses the bitmap defined before it, "
                        "and no field before it defines one"
                    )
                section = bitmap
            elif indicator == 0:
                bitmap = section
        in_effect[number] = section
        if number == 7:
            missing = [n for n in (1, 3, 4, 5, 6) if n not in in_effect]
            if missing:
                raise error(f"{where}: field {len(fields)} lacks sections {missing}")
            body = b"".join(in_effect[n] for n in (1, 2, 3, 4, 5, 6, 7) if n in in_effect)
            total = 16 + len(body) + 4
            fields.append(data[:8] + total.to_bytes(8, "big") + body + b"7777")
    return fields
