"""GRIB editions 1 and 2: one chunk per message, hypercubes assembled as cfgrib does.

The file is scanned for messages (``GRIB`` and the message length in section 0)
through ranged reads; each message's keys are read with ecCodes (the ``eccodes``
package, whose wheels carry the library). Messages are grouped into hypercubes,
one per level type, step type and grid: an array per variable (named as cfgrib
names it, ``cfVarName`` or else ``shortName``) with the
dimensions cfgrib gives (``number``, ``time``, ``step``, the level type, then
``latitude``/``longitude`` for regular grids, ``y``/``x`` for other grids with
rows and columns, ``values`` for reduced grids); a key with one value across a
hypercube is a scalar coordinate. Every message is one chunk of its array, its
whole byte range, decoded by the ``vz.grib`` codec (ecCodes again, so every packing
it reads works; points missing in the bitmap read as NaN). The fields of a
multi-field message (U and V winds in one message, say) are chunks of their own
arrays, each the message's byte range with the codec told which field it decodes. A coordinate
combination no message has is a missing chunk (NaN), never a shifted cube.

One hypercube is the root group; several are subgroups named
``<typeOfLevel>_<stepType>`` (and the grid when grids differ), which
`open_virtual_datatree` shows as a tree. ``filter_by_keys`` selects messages as in
cfgrib.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from vzcore._frozen import JSON
from vzcore.array import AnyArray, LoadedArray, VirtualArray
from vzcore.byteranges import Source, source
from vzcore.errors import VirtualizationError
from vzcore.format_codecs import grib_points_as_rows
from vzcore.grib_fields import grib2_sections, message_fields
from vzcore.group import VirtualGroup
from vzcore.limits import check_limit
from vzcore.manifest import ChunkManifest
from vzcore.metadata import ArrayMetadata
from vzcore.parsers.protocol import Probe
from vzcore.registry import ObjectStoreRegistry

__all__ = ["GRIBFormatError", "GRIBParser"]

_BLOCK = 1 << 20
_ATTRIBUTE_KEYS = (
    "paramId", "shortName", "units", "name", "cfName", "cfVarName", "dataType", "gridType",
    "typeOfLevel", "stepType", "stepUnits", "numberOfPoints", "NV", "missingValue", "edition",
)  # fmt: skip
_MESSAGE_KEYS = (
    *_ATTRIBUTE_KEYS, "level", "dataDate", "dataTime", "number", "Ni", "Nj", "step",
    "centre", "centreDescription", "subCentre", "uvRelativeToGrid",
    # what names a parameter ecCodes' tables do not know (`_check_unknown`)
    "discipline", "parameterCategory", "parameterNumber", "localTablesVersion",
    "table2Version", "indicatorOfParameter",
)  # fmt: skip
_PARAMETER_NUMBERS = {
    1: ("table2Version", "indicatorOfParameter"),
    2: ("discipline", "parameterCategory", "parameterNumber", "localTablesVersion"),
}
_GEOGRAPHY = frozenset({"regular_ll", "regular_gg"})
_DECREASING = {"isobaricInhPa": "hPa", "isobaricInPa": "Pa"}


class GRIBFormatError(VirtualizationError):
    """A GRIB file vz cannot read: no message, a truncated or corrupt message."""


def _eccodes() -> Any:
    try:
        import eccodes
    except ImportError as err:  # pragma: no cover - the grib extra is missing
        raise VirtualizationError(
            "reading GRIB needs the eccodes package (pip install 'vz[grib]')"
        ) from err
    return eccodes


@attrs.frozen
class _Message:
    offset: int
    length: int
    keys: Mapping[str, Any]
    field: int = 0  # which field of a multi-field message (`message_fields`)


def scan_messages(file: Source, size: int) -> Iterator[tuple[int, int, bytes]]:
    """``(offset, length, bytes)`` of every message, read in blocks of at least 1 MiB.

    Bytes between messages (padding, a GRIB1 file's trailing zeros) are skipped.
    """
    start, buffer = 0, b""
    position = 0
    while position < size:
        if position + 16 > start + len(buffer):
            start, buffer = position, _read(file, position, min(size, position + _BLOCK))
        found = buffer.find(b"GRIB", position - start)
        if found < 0:
            if start + len(buffer) >= size:
                return
            position = start + len(buffer) - 3
            continue
        offset = start + found
        if offset + 16 > start + len(buffer):
            start, buffer = offset, _read(file, offset, min(size, offset + _BLOCK))
            found = 0
        head = buffer[offset - start : offset - start + 16]
        if len(head) < 16:
            raise GRIBFormatError(f"{file.url}: a message at byte {offset} is truncated")
        edition = head[7]
        if edition == 2:
            length = int.from_bytes(head[8:16], "big")
        elif edition == 1:
            length = int.from_bytes(head[4:7], "big")
            if length & 0x800000:
                length = _large_grib1_length(file, offset, length, size)
        else:
            raise GRIBFormatError(f"{file.url}: GRIB edition {edition} at byte {offset}")
        if length < 16 or offset + length > size:
            raise GRIBFormatError(
                f"{file.url}: the message at byte {offset} declares {length} bytes; "
                f"the file has {size - offset} from there (truncated or corrupt)"
            )
        if offset + length <= start + len(buffer):
            data = buffer[offset - start : offset - start + length]
        else:
            data = _read(file, offset, offset + length)
        if data[-4:] != b"7777":
            raise GRIBFormatError(
                f"{file.url}: the message at byte {offset} does not end in 7777 (corrupt)"
            )
        yield offset, length, data
        position = offset + length


def _large_grib1_length(file: Source, offset: int, coded: int, size: int) -> int:
    """The length of a GRIB1 message over 8 MiB, in ECMWF's coding (as ecCodes reads it).

    The top bit of section 0's length says the rest counts units of 120 bytes; section
    4's length, when below 120, is then what to take off that (and 4 to add back).
    """
    position = offset + 8
    head = _read(file, position, min(size, position + 8))
    if len(head) < 8:
        raise GRIBFormatError(f"{file.url}: the message at byte {offset} is truncated")
    flags = head[7]
    position += int.from_bytes(head[:3], "big")  # past section 1
    for present in (flags & 0x80, flags & 0x40):  # sections 2 and 3, when present
        if present:
            position += int.from_bytes(_read(file, position, min(size, position + 3)), "big")
    section4 = int.from_bytes(_read(file, position, min(size, position + 3)), "big")
    if section4 >= 120:
        return coded
    return (coded & 0x7FFFFF) * 120 - section4 + 4


def _read(file: Source, start: int, end: int) -> bytes:
    return bytes(file.read_ranges([start], [end])[0])


_WORKERS = max(1, min(4, os.cpu_count() or 1))
_WINDOW = 64
"""Fields whose keys may be pending at once (their bytes are held until then)."""


@attrs.frozen
class _Field:
    offset: int
    length: int
    field: int
    data: bytes
    keys: Future[dict[str, Any]]
    times: Mapping[str, Any] | None  # the octets' times, when the keys are an identity's


def _fields_with_keys(file: Source, size: int) -> Iterator[tuple[_Field, dict[str, Any]]]:
    """Every field of the file with its keys, in file order.

    ecCodes evaluates a parameter's names and level type from its definition tables,
    milliseconds per message. Messages that differ only in their reference time and
    forecast time (GRIB2, product templates 4.0 and 4.1) share everything else, so
    the keys are computed once per identity (`_identity`) and the time keys read from
    the message's own octets (`_times`).

    ecCodes (built with thread support, and called through cffi, which releases the
    GIL) reads the keys of the distinct identities, and of every message no identity
    describes, on `_WORKERS` threads while the scan goes on; at most `_WINDOW` fields
    wait for theirs.
    """
    started: dict[bytes, Future[dict[str, Any]]] = {}
    waiting: deque[_Field] = deque()
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        count = 0
        for offset, length, data in scan_messages(file, size):
            where = f"{file.url}: message at byte {offset}"
            for field, field_data in enumerate(message_fields(data, where, GRIBFormatError)):
                count += 1
                check_limit("max_chunks", count, file.url, "GRIB fields")
                at = where if field == 0 else f"{where}, field {field}"
                identity = _identity(field_data, at)
                times: Mapping[str, Any] | None = None
                if identity is None:
                    keys = pool.submit(_ecc_keys, field_data, at)
                else:
                    times = _times(field_data)
                    keys = started.get(identity) or _identity_keys(identity, field_data, at, pool)
                    started[identity] = keys
                waiting.append(_Field(offset, length, field, field_data, keys, times))
                while len(waiting) > _WINDOW:
                    yield _done(waiting.popleft())
        while waiting:
            yield _done(waiting.popleft())


def _identity_keys(
    identity: bytes, data: bytes, where: str, pool: ThreadPoolExecutor
) -> Future[dict[str, Any]]:
    cached = _KEY_CACHE.get(identity)
    if cached is not None:
        done: Future[dict[str, Any]] = Future()
        done.set_result(cached)
        return done
    return pool.submit(_cached_keys, identity, data, where)


def _done(field: _Field) -> tuple[_Field, dict[str, Any]]:
    keys = field.keys.result()
    if field.times is not None:
        keys = {**keys, **field.times}
    return field, keys


def _sections(data: bytes, where: str) -> list[tuple[int, int, int]]:
    return grib2_sections(data, where, GRIBFormatError)


def _identity(data: bytes, where: str) -> bytes | None:
    """The message's bytes that decide every key but the times, or None to ask ecCodes.

    GRIB2 with product template 4.0 or 4.1 and forecast times in hours only: section
    0's discipline and edition, section 1 without its reference time (octets 13-19),
    section 3, section 4 without the forecast time's value (octets 19-22), and the
    bitmap indicator of section 6. ``data`` holds one field (`message_fields`).
    """
    if data[7] != 2:
        return None
    sections = _sections(data, where)
    found = {number: (start, length) for number, start, length in sections}
    if 1 not in found or 4 not in found:
        return None
    s1, n1 = found[1]
    s4, n4 = found[4]
    template = int.from_bytes(data[s4 + 7 : s4 + 9], "big")
    if template not in (0, 1) or n1 < 21 or n4 < 22 or data[s4 + 17] != 1:
        return None  # another template, or a forecast time not in hours: ask ecCodes
    section1 = bytearray(data[s1 : s1 + n1])
    section1[12:19] = bytes(7)
    section4 = bytearray(data[s4 : s4 + n4])
    section4[18:22] = bytes(4)
    rest = b"".join(
        data[start : start + (length if number == 3 else 6)]
        for number, start, length in sections
        if number in (3, 6)
    )
    return bytes(data[6:8]) + bytes(section1) + bytes(section4) + rest


def _times(data: bytes) -> dict[str, Any]:
    """``dataDate``, ``dataTime`` and ``step`` from sections 1 and 4 of a GRIB2 message."""
    sections = {number: start for number, start, _ in _sections(data, "")}
    s1, s4 = sections[1], sections[4]
    year = int.from_bytes(data[s1 + 12 : s1 + 14], "big")
    month, day, hour, minute = data[s1 + 14], data[s1 + 15], data[s1 + 16], data[s1 + 17]
    return {
        "dataDate": year * 10000 + month * 100 + day,
        "dataTime": hour * 100 + minute,
        "step": int.from_bytes(data[s4 + 18 : s4 + 22], "big"),  # hours (see `_identity`)
    }


_KEY_CACHE: dict[bytes, dict[str, Any]] = {}
_KEY_CACHE_SIZE = 4096


def _cached_keys(identity: bytes, data: bytes, where: str) -> dict[str, Any]:
    found = _KEY_CACHE.get(identity)
    if found is None:
        found = _ecc_keys(data, where)
        if len(_KEY_CACHE) >= _KEY_CACHE_SIZE:
            _KEY_CACHE.clear()
        _KEY_CACHE[identity] = found
    return found


def _ecc_keys(data: bytes, where: str) -> dict[str, Any]:
    codes = _eccodes()
    try:
        handle = codes.codes_new_from_message(data)
    except Exception as err:  # ecCodes raises its own GribInternalError family
        raise GRIBFormatError(f"{where}: ecCodes cannot read the message: {err}") from err
    try:
        keys = _handle_keys(codes, handle, [k for k in _MESSAGE_KEYS if k not in _NAME_KEYS])
        parameter = tuple(keys.get(k) for k in _PARAMETER_KEYS)
        names = _NAMES.get(parameter)
        if names is None:
            names = _handle_keys(codes, handle, _NAME_KEYS)
            if len(_NAMES) >= _KEY_CACHE_SIZE:
                _NAMES.clear()
            _NAMES[parameter] = names
        keys.update(names)
        if "step" in keys:
            keys["step"] = _step_hours(codes, handle, where)
        keys["_grid"] = _grid(codes, handle, keys)
        keys["_layout"] = _layout(codes, handle)
        return keys
    except codes.GribInternalError as err:  # a key ecCodes cannot compute for this message
        raise GRIBFormatError(f"{where}: ecCodes cannot read the message: {err}") from err
    finally:
        codes.codes_release(handle)


def _handle_keys(codes: Any, handle: Any, names: Iterable[str]) -> dict[str, Any]:
    """The keys of ``names`` the message defines (and can compute), by name."""
    keys: dict[str, Any] = {}
    for key in names:
        if codes.codes_is_defined(handle, key) and not codes.codes_is_missing(handle, key):
            # defined, but this template cannot compute it: left out
            with contextlib.suppress(codes.GribInternalError):
                keys[key] = codes.codes_get(handle, key)
    return keys


# ecCodes evaluates the names and units of a parameter from its concept tables (~20 ms a
# message); they follow from the parameter, so they are looked up once per parameter.
_NAME_KEYS = ("shortName", "units", "name", "cfName", "cfVarName")
_PARAMETER_KEYS = (
    "edition", "centre", "subCentre", "paramId", "discipline", "parameterCategory",
    "parameterNumber", "localTablesVersion", "table2Version", "indicatorOfParameter",
)  # fmt: skip
_NAMES: dict[tuple[Any, ...], dict[str, Any]] = {}


# Seconds per unit of ecCodes' ``stepUnits`` (its stepUnits.table; cfgrib's table too).
_STEP_UNIT_SECONDS = {0: 60, 1: 3600, 2: 86400, 10: 10800, 11: 21600, 12: 43200, 13: 1, 14: 900,
                      15: 1800}  # fmt: skip


def _step_hours(codes: Any, handle: Any, where: str) -> float:
    """The forecast step in hours, as cfgrib gives it (``endStep`` in its ``stepUnits``).

    ecCodes' ``step`` is a string such as ``"30m"`` when the unit is not hours.
    """
    unit = int(codes.codes_get(handle, "stepUnits", int))
    seconds = _STEP_UNIT_SECONDS.get(unit)
    if seconds is None:
        raise GRIBFormatError(
            f"{where}: forecast step in a unit vz does not know (stepUnits={unit})"
        )
    return int(codes.codes_get(handle, "endStep", int)) * seconds / 3600.0


def _grid(codes: Any, handle: Any, keys: Mapping[str, Any]) -> tuple[Any, ...]:
    """The grid's identity: its type, point count and the first/last points."""
    extra = tuple(
        codes.codes_get(handle, k) if codes.codes_is_defined(handle, k) else None
        for k in (
            "latitudeOfFirstGridPointInDegrees",
            "longitudeOfFirstGridPointInDegrees",
            "latitudeOfLastGridPointInDegrees",
            "longitudeOfLastGridPointInDegrees",
        )
    )
    return (
        keys.get("gridType"),
        keys.get("numberOfPoints"),
        keys.get("Ni"),
        keys.get("Nj"),
        *extra,
    )


def _layout(codes: Any, handle: Any) -> tuple[Any, ...]:
    """How the grid's points are ordered and spaced: the scanning mode and increments."""
    return tuple(
        codes.codes_get(handle, k) if codes.codes_is_defined(handle, k) else None
        for k in _LAYOUT_KEYS
    )


_LAYOUT_KEYS = (
    "iScansNegatively", "jScansPositively", "jPointsAreConsecutive", "alternativeRowScanning",
    "iDirectionIncrementInDegrees", "jDirectionIncrementInDegrees",
)  # fmt: skip


def _check_layouts(name: str, members: list[_Message]) -> None:
    """One variable's messages share one set of coordinates, those of its first message
    (cfgrib's too): refuse a message that orders or spaces the same grid's points otherwise."""
    first = members[0].keys.get("_layout")
    for member in members[1:]:
        layout = member.keys.get("_layout")
        if layout != first:
            raise _BadFieldError(
                f"message at byte {member.offset}: variable {name!r}: its grid orders or "
                f"spaces its points otherwise ({dict(zip(_LAYOUT_KEYS, layout or (), strict=False))}) "
                f"than the variable's first message ({dict(zip(_LAYOUT_KEYS, first or (), strict=False))}); "
                "one set of coordinates cannot describe both"
            )


def _matches(keys: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    return all(keys.get(k) == v for k, v in wanted.items())


@attrs.frozen(kw_only=True)
class GRIBParser:
    """Parser for GRIB files (editions 1 and 2, also mixed in one file).

    Attributes
    ----------
    filter_by_keys
        Keep only messages whose ecCodes keys have these values, as cfgrib's
        ``filter_by_keys`` (``{"typeOfLevel": "isobaricInhPa"}``).
    """

    filter_by_keys: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)

    priority = -35

    @classmethod
    def can_open(cls, probe: Probe) -> bool:
        """The magic ``GRIB`` and edition 1 or 2 in section 0."""
        head = probe.head
        return head is not None and head[:4] == b"GRIB" and len(head) >= 8 and head[7] in (1, 2)

    def __call__(self, url: str, registry: ObjectStoreRegistry) -> VirtualGroup:
        """Build the virtual group (one hypercube) or tree (several) of one GRIB file.

        Raises
        ------
        GRIBFormatError
            If the file holds no message, or a message is truncated or corrupt.
        UnregisteredURLError
            If ``url`` lies under no registered prefix.
        """
        file = source(registry, url)
        seen = file.fingerprint()
        size = seen.size if seen.size is not None else file.size()
        messages: list[_Message] = []
        first_bytes: dict[tuple[Any, ...], bytes] = {}
        for found, keys in _fields_with_keys(file, size):
            if _matches(keys, self.filter_by_keys):
                messages.append(_Message(found.offset, found.length, keys, found.field))
                first_bytes.setdefault(keys["_grid"], found.data)
        if not messages:
            raise GRIBFormatError(
                f"{file.url}: no GRIB message"
                + (f" matches filter_by_keys={self.filter_by_keys}" if self.filter_by_keys else "")
            )
        _check_unknown(messages, file.url)
        try:
            datasets = _datasets(_parameters(messages))
        except _BadFieldError as err:
            raise GRIBFormatError(f"{file.url}: {err}") from err
        names = _dataset_names(datasets)
        groups: dict[str, VirtualGroup] = {}
        for name, dataset in zip(names, datasets, strict=True):
            grid = dataset[0].members[0].keys["_grid"]
            where = f"{file.url}: hypercube {name!r}"
            groups[name] = _hypercube(dataset, first_bytes[grid], file.url, where)
        sources = {file.url: seen}
        if len(groups) == 1:
            return attrs.evolve(next(iter(groups.values())), sources=sources)
        shared = [dict(g.attributes) for g in groups.values()]
        attributes = {k: v for k, v in shared[0].items() if all(a.get(k) == v for a in shared)}
        return VirtualGroup(groups=groups, attributes=attributes, sources=sources)


def _check_unknown(messages: list[_Message], url: str) -> None:
    """Refuse parameters ecCodes' tables do not name (paramId 0) when several differ.

    One such parameter is ``unknown``, as in cfgrib. Several (a centre's local tables
    are needed) would all be ``unknown``, where cfgrib keeps one of them: vz names them
    by their numbers, so the user can add the centre's tables (``ECCODES_DEFINITION_PATH``)
    or leave them out (``filter_by_keys``).
    """
    unknown: dict[tuple[Any, ...], _Message] = {}
    for m in messages:
        if m.keys.get("paramId") in (0, None):
            numbers = _PARAMETER_NUMBERS.get(int(m.keys.get("edition", 0)), ())
            unknown.setdefault(tuple((k, m.keys.get(k)) for k in numbers), m)
    if len(unknown) < 2:
        return
    found = list(unknown.items())[:3]
    named = "; ".join(
        f"message at byte {m.offset}: " + ", ".join(f"{k}={v}" for k, v in numbers if v is not None)
        for numbers, m in found
    )
    centre = found[0][1].keys.get("centreDescription", found[0][1].keys.get("centre", "?"))
    raise GRIBFormatError(
        f"{url}: {len(unknown)} parameters ecCodes' tables do not know ({named}; centre "
        f"{centre}) would all be 'unknown': they need the centre's local tables "
        "(ECCODES_DEFINITION_PATH), or leave them out with filter_by_keys="
    )


# ---- hypercubes ---------------------------------------------------------------------------


class _BadFieldError(Exception):
    """A message's date is no calendar date or time of day, or its grid is not its
    variable's (`GRIBParser` names the file)."""


def _time(keys: Mapping[str, Any]) -> int:
    """The reference time in seconds since 1970 (``dataDate`` YYYYMMDD, ``dataTime`` HHMM)."""
    date, hhmm = int(keys.get("dataDate", 19700101)), int(keys.get("dataTime", 0))
    try:
        day = np.datetime64(f"{date // 10000:04d}-{date // 100 % 100:02d}-{date % 100:02d}")
    except ValueError as err:
        raise _BadFieldError(f"dataDate {date} is no date: {err}") from err
    if hhmm // 100 > 23 or hhmm % 100 > 59:
        raise _BadFieldError(f"dataTime {hhmm:04d} is no time of day")
    seconds = day.astype("datetime64[s]").astype(np.int64)
    return int(seconds) + (hhmm // 100) * 3600 + (hhmm % 100) * 60


def _header_axes(members: list[_Message]) -> list[tuple[str, npt.NDArray[Any], dict[str, JSON]]]:
    """``(name, values, attributes)`` of each header key, in cfgrib's order."""
    level_type = str(members[0].keys.get("typeOfLevel", "level"))
    columns = {
        "number": np.array([int(m.keys.get("number", 0)) for m in members]),
        "time": np.array([_time(m.keys) for m in members], dtype=np.int64),
        "step": np.array([float(m.keys.get("step", 0)) for m in members]),
        level_type: np.array([float(m.keys.get("level", 0)) for m in members]),
    }
    attributes: dict[str, dict[str, JSON]] = {
        "number": {"long_name": "ensemble member numerical id", "standard_name": "realization"},
        "time": {
            "long_name": "initial time of forecast",
            "standard_name": "forecast_reference_time",
            "units": "seconds since 1970-01-01T00:00:00",
            "calendar": "proleptic_gregorian",
        },
        "step": {
            "long_name": "time since forecast_reference_time",
            "standard_name": "forecast_period",
            "units": "hours",
        },
        level_type: {
            "long_name": level_type,
            **(
                {"units": _DECREASING[level_type], "positive": "down"}
                if level_type in _DECREASING
                else {}
            ),
        },
    }
    return [(name, values, attributes[name]) for name, values in columns.items()]


# The keys cfgrib requires to be unique within one variable (its DATA_ATTRIBUTES_KEYS
# and GLOBAL_ATTRIBUTES_KEYS; not stepUnits, which cfgrib always reads as 1, the steps
# being hours, as vz's `_step_hours` gives them): a parameter whose messages differ in one of them is
# several variables, as is one on several grids (vz's `_grid`, never a mixed cube).
_UNIQUE_KEYS = (
    "paramId", "dataType", "numberOfPoints", "typeOfLevel", "stepType",
    "gridType", "uvRelativeToGrid", "edition", "centre", "centreDescription", "subCentre",
)  # fmt: skip
_DATASET_KEYS = ("edition", "centre", "centreDescription", "subCentre")


@attrs.frozen(eq=False)
class _Parameter:
    """The messages of one variable and its own header coordinates (before any squeeze)."""

    name: str
    members: list[_Message]
    axes: list[tuple[str, npt.NDArray[Any], dict[str, JSON]]]  # (name, distinct values, attrs)
    positions: list[npt.NDArray[np.int64]]  # each member's index along each axis
    level_type: str
    dataset_keys: tuple[Any, ...]

    def fits(self, other: _Parameter) -> bool:
        """Whether the two can share a dataset: cfgrib's ``xr.merge(join="exact")``."""
        return (
            self.dataset_keys == other.dataset_keys
            and self.members[0].keys["_grid"] == other.members[0].keys["_grid"]
            and all(
                a[0] == b[0] and np.array_equal(a[1], b[1])
                for a, b in zip(self.axes, other.axes, strict=True)
            )
        )


def _parameters(messages: list[_Message]) -> list[_Parameter]:
    """The file's variables as cfgrib's ``open_variable_datasets`` finds them, in its order.

    One per paramId and value of each of `_UNIQUE_KEYS` (and grid), ordered by paramId
    then first appearance; each with the sorted distinct values of its own header keys.
    """
    split: dict[tuple[Any, ...], list[_Message]] = defaultdict(list)
    for message in messages:
        k = message.keys
        split[(*(k.get(key) for key in _UNIQUE_KEYS), k["_grid"])].append(message)
    ordered = sorted(split.items(), key=lambda item: int(item[0][0] or 0))
    parameters = []
    for _, members in ordered:
        _check_layouts(_variable_name(members[0].keys), members)
        axes, positions = [], []
        for name, values, attributes in _header_axes(members):
            distinct, inverse = np.unique(values, return_inverse=True)
            if name in _DECREASING:  # pressure levels run downwards, as cfgrib stores them
                distinct, inverse = distinct[::-1], len(distinct) - 1 - inverse
            axes.append((name, distinct, attributes))
            positions.append(inverse.astype(np.int64))
        keys = members[0].keys
        parameters.append(
            _Parameter(
                name=_variable_name(keys),
                members=members,
                axes=axes,
                positions=positions,
                level_type=str(keys.get("typeOfLevel", "undef")),
                dataset_keys=tuple(keys.get(key) for key in _DATASET_KEYS),
            )
        )
    return parameters


def _datasets(parameters: list[_Parameter]) -> list[list[_Parameter]]:
    """The variables merged into datasets as cfgrib's ``open_datasets`` merges them.

    Per level type (sorted), each variable joins the first dataset whose coordinates
    (every header key, the grid) and global keys are exactly its own and which has no
    variable of its name yet; else it starts a dataset.
    """
    by_level: dict[str, list[_Parameter]] = defaultdict(list)
    for parameter in parameters:
        by_level[parameter.level_type].append(parameter)
    datasets: list[list[_Parameter]] = []
    for level_type in sorted(by_level):
        merged: list[list[_Parameter]] = []
        for parameter in by_level[level_type]:
            for dataset in merged:
                if dataset[0].fits(parameter) and all(p.name != parameter.name for p in dataset):
                    dataset.append(parameter)
                    break
            else:
                merged.append([parameter])
        datasets.extend(merged)
    return datasets


def _dataset_names(datasets: list[list[_Parameter]]) -> list[str]:
    """``<typeOfLevel>_<stepType>`` per dataset (step types joined when several), the
    grid added when the file has several, and ``_<n>`` counting names still repeated."""
    grids = {d[0].members[0].keys["_grid"] for d in datasets}
    names = []
    for dataset in datasets:
        steps = sorted({str(m.keys.get("stepType")) for p in dataset for m in p.members[:1]})
        name = f"{dataset[0].level_type}_{'_'.join(steps)}"
        if len(grids) > 1:
            grid = dataset[0].members[0].keys["_grid"]
            name += f"_{grid[0]}_{grid[1]}"
        names.append(name)
    repeated = {n for n in names if names.count(n) > 1}
    counts: dict[str, int] = defaultdict(int)
    unique = []
    for name in names:
        if name in repeated:
            counts[name] += 1
            name = f"{name}_{counts[name]}"
        unique.append(name)
    return unique


def _hypercube(dataset: list[_Parameter], sample: bytes, url: str, where: str) -> VirtualGroup:
    """One dataset: the shared header coordinates squeezed where of length 1, as cfgrib."""
    first = dataset[0]
    dims: list[str] = []
    arrays: dict[str, AnyArray] = {}
    kept: list[int] = []
    for axis, (name, distinct, attributes) in enumerate(first.axes):
        if len(distinct) > 1:
            dims.append(name)
            kept.append(axis)
            arrays[name] = _loaded(distinct, (name,), attributes)
        else:
            arrays[name] = _loaded(distinct.reshape(()), (), attributes)
    grid_dims, grid_shape, geography, order = _geography(sample, first.members[0].keys, where)
    arrays.update(geography)
    header_shape = tuple(len(first.axes[axis][1]) for axis in kept)
    # Scalar coordinates and 2-d or 1-d point coordinates are named, as CF does.
    dimensions = {*dims, *grid_dims}
    coordinate_names = " ".join(sorted(n for n in arrays if n not in dimensions))
    keys = first.members[0].keys
    for parameter in dataset:
        coordinates = tuple(parameter.positions[axis] for axis in kept)
        rows = (
            np.ravel_multi_index(coordinates, header_shape)
            if header_shape
            else np.zeros(len(parameter.members), np.int64)
        )
        if len(np.unique(rows)) != len(rows):
            raise GRIBFormatError(
                f"{where}: variable {parameter.name!r} has two messages for one "
                f"({', '.join(dims)}) combination; select with filter_by_keys="
            )
        arrays[parameter.name] = _variable(
            parameter.members,
            rows,
            header_shape,
            (dims, grid_dims, order),
            grid_shape,
            url,
            coordinate_names,
        )
    globals_: dict[str, JSON] = {
        f"GRIB_{key}": _json(keys[key]) for key in _DATASET_KEYS if keys.get(key) is not None
    }
    globals_["Conventions"] = "CF-1.7"
    if "GRIB_centreDescription" in globals_:
        globals_["institution"] = globals_["GRIB_centreDescription"]
    return VirtualGroup(arrays=arrays, attributes=globals_)


def _variable_name(keys: Mapping[str, Any]) -> str:
    """cfgrib's name: ``cfVarName`` (``t2m`` for ``2t``) unless it is ``unknown`` or
    ``undef``, else ``shortName`` whatever it says (``unknown`` too), else the paramId."""
    name = str(keys.get("cfVarName", ""))
    if name and name not in ("unknown", "undef"):
        return name
    if keys.get("shortName") is not None:
        return str(keys["shortName"])
    return f"paramId_{keys.get('paramId', 0)}"


def _loaded(
    values: npt.NDArray[Any], dims: tuple[str, ...], attributes: Mapping[str, JSON]
) -> LoadedArray:
    metadata = ArrayMetadata.create(
        shape=values.shape,
        chunk_shape=tuple(max(s, 1) for s in values.shape),
        dtype=values.dtype,
        dimension_names=dims,
        attributes=attributes,
    )
    return LoadedArray(metadata, values)


_GRID_2D = frozenset(
    {"rotated_ll", "rotated_gg", "lambert", "lambert_azimuthal_equal_area", "albers",
     "polar_stereographic"}
)  # fmt: skip
"""Grids cfgrib gives as ``y``/``x`` with 2-d latitude/longitude; `_GEOGRAPHY` as
``latitude``/``longitude``; every other grid as a flat ``values`` axis."""


def _check_latitudes(latitudes: npt.NDArray[np.float64], where: str) -> None:
    """Refuse a grid whose rows' latitudes leave the globe (a corrupt increment or count).

    ecCodes computes such points one way per point and another for cfgrib's
    ``distinctLatitudes``: neither is the data's grid. A wrong increment that stays on
    the globe is read as ecCodes and cfgrib read it (cfgrib's
    ``regular_ll_wrong_increment.grib``).
    """
    if latitudes.size and np.abs(latitudes).max() > 90 + 1e-6:
        raise GRIBFormatError(
            f"{where}: the grid's latitudes reach {latitudes[np.abs(latitudes).argmax()]:g}°, "
            "beyond the poles: its increment or point count is corrupt"
        )


def _geography(
    sample: bytes, keys: Mapping[str, Any], where: str
) -> tuple[tuple[str, ...], tuple[int, ...], dict[str, LoadedArray], str]:
    """The grid dimensions, shape, latitude/longitude and the codec's point order.

    As cfgrib: the layout follows the grid type, and a grid dimension of length 1 is
    squeezed away (a single grid point gives scalar latitude and longitude).
    """
    codes = _eccodes()
    handle = codes.codes_new_from_message(sample)
    ni, nj = int(keys.get("Ni") or 0), int(keys.get("Nj") or 0)
    grid_type = keys.get("gridType")
    try:
        latitudes = np.asarray(codes.codes_get_array(handle, "latitudes"), dtype=np.float64)
        longitudes = np.asarray(codes.codes_get_array(handle, "longitudes"), dtype=np.float64)
        rows = ni > 0 and nj > 0 and ni * nj == len(latitudes)
        if rows and grid_type in _GEOGRAPHY | _GRID_2D:  # the codec's order "rows"
            latitudes = grib_points_as_rows(codes, handle, latitudes, points=True)
            longitudes = grib_points_as_rows(codes, handle, longitudes, points=True)
    except Exception as err:
        raise GRIBFormatError(f"{where}: ecCodes cannot give the grid's points: {err}") from err
    finally:
        codes.codes_release(handle)
    if rows and grid_type in _GEOGRAPHY:
        _check_latitudes(latitudes.reshape(nj, ni)[:, 0], where)
    if rows and grid_type in _GEOGRAPHY:
        dims: tuple[str, ...] = ("latitude", "longitude")
        points: dict[str, tuple[npt.NDArray[Any], tuple[str, ...]]]
        lats, lons = latitudes.reshape(nj, ni)[:, 0], longitudes.reshape(nj, ni)[0, :]
        points = {
            "latitude": (lats.copy(), ("latitude",)),
            "longitude": (lons.copy(), ("longitude",)),
        }
        order = "rows"
    elif rows and grid_type in _GRID_2D:
        dims = ("y", "x")
        points = {
            "latitude": (latitudes.reshape(nj, ni), dims),
            "longitude": (longitudes.reshape(nj, ni), dims),
        }
        order = "rows"
    else:
        dims = ("values",)
        points = {"latitude": (latitudes, dims), "longitude": (longitudes, dims)}
        order = "stored"
    shape = (nj, ni) if dims != ("values",) else (len(latitudes),)
    squeezed = {d for d, n in zip(dims, shape, strict=True) if n == 1}
    geography = {}
    for name, (values, on) in points.items():
        axes = tuple(i for i, d in enumerate(on) if d in squeezed)
        kept = tuple(d for d in on if d not in squeezed)
        attributes: dict[str, JSON] = {
            "units": "degrees_north" if name == "latitude" else "degrees_east",
            "standard_name": name,
        }
        geography[name] = _loaded(np.squeeze(values, axis=axes), kept, attributes)
    kept_dims = tuple(d for d in dims if d not in squeezed)
    kept_shape = tuple(n for d, n in zip(dims, shape, strict=True) if d not in squeezed)
    return kept_dims, kept_shape, geography, order


def _variable(
    members: list[_Message],
    rows: npt.NDArray[np.int64],
    header_shape: tuple[int, ...],
    names: tuple[list[str], tuple[str, ...], str],
    grid_shape: tuple[int, ...],
    url: str,
    coordinates: str,
) -> VirtualArray:
    dims, grid_dims, order = names
    keys = members[0].keys
    fields = sorted({m.field for m in members})
    if len(fields) > 1:
        raise GRIBFormatError(
            f"{url}: variable {_variable_name(keys)!r} is field {fields} of different "
            "multi-field messages; one array decodes one field position (select with "
            "filter_by_keys=)"
        )
    attributes: dict[str, JSON] = {
        f"GRIB_{k}": _json(keys[k]) for k in _ATTRIBUTE_KEYS if k in keys and k != "edition"
    }
    if "GRIB_stepUnits" in attributes:
        # cfgrib reads every step in hours and so reports stepUnits as 1 (hours).
        attributes["GRIB_stepUnits"] = 1
    # As cfgrib: ``name`` and ``units`` whatever they say ("~" for wave spectra), else
    # the paramId and "1"; a ``cfName`` that names no standard name is left out.
    attributes["long_name"] = _json(
        keys.get("name", f"original GRIB paramId: {keys.get('paramId')}")
    )
    attributes["units"] = _json(keys.get("units", "1"))
    if keys.get("cfName") not in (None, "unknown", "~"):
        attributes["standard_name"] = _json(keys["cfName"])
    if coordinates:
        attributes["coordinates"] = coordinates
    metadata = ArrayMetadata.create(
        shape=(*header_shape, *grid_shape),
        chunk_shape=(*(1 for _ in header_shape), *grid_shape),
        dtype=np.float32,
        fill_value=float("nan"),
        codecs=[{"name": "vz.grib", "configuration": {"field": fields[0], "order": order}}],
        dimension_names=(*dims, *grid_dims),
        attributes=attributes,
    )
    n_chunks = math.prod(header_shape)
    indices = np.full(n_chunks, -1, dtype=np.int32)
    offsets = np.zeros(n_chunks, dtype=np.uint64)
    lengths = np.zeros(n_chunks, dtype=np.uint64)
    indices[rows] = 0
    offsets[rows] = [m.offset for m in members]
    lengths[rows] = [m.length for m in members]
    manifest = ChunkManifest.from_numpy_columns(
        (*header_shape, *(1 for _ in grid_shape)),
        dictionary=pa.array([url], pa.string()),
        indices=indices,
        offsets=offsets,
        lengths=lengths,
    )
    return VirtualArray(metadata, manifest)


def _json(value: Any) -> JSON:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, int | float | str | bool):
        return value
    return str(value)
