"""Multi-field GRIB2 messages: each field a chunk of its own array, decoded as ecCodes does.

The files are made with ecCodes' own multi-field writer (``codes_grib_multi_append``
from section 3 or 4); one is edited so that its second field says "the bitmap
defined before applies" (bitmap indicator 254). The reference is ecCodes with its
multi-field support on, iterating the fields of the file.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import eccodes
import numpy as np
import pytest
import xarray as xr

import vzcore as vc
from vzcore.errors import ChunkDecodeError, InvalidMetadataError
from vzcore.format_codecs import GRIBCodec
from vzcore.grib_fields import grib2_sections, message_fields
from vzcore.parsers import GRIBFormatError, GRIBParser

POINTS = 16 * 31  # the grid of ecCodes' regular_ll_sfc_grib2 sample
MISSING = 9999.0


def _handle(short_name: str, values: np.ndarray, step: int, *, bitmap: bool = False) -> int:
    handle = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib2")
    eccodes.codes_set(handle, "shortName", short_name)
    eccodes.codes_set(handle, "step", step)
    if bitmap:
        eccodes.codes_set(handle, "bitmapPresent", 1)
        eccodes.codes_set(handle, "missingValue", MISSING)
    eccodes.codes_set_values(handle, values)
    return int(handle)


def _values(seed: int, *, holes: bool = False) -> np.ndarray:
    values = 250 + 20 * np.sin(np.arange(POINTS) / 17 + seed)
    if holes:
        values[::9] = MISSING
    return values


def _multi_message(
    fields: list[tuple[str, np.ndarray]], step: int, start: int, **kw: bool
) -> bytes:
    multi = eccodes.codes_grib_multi_new()
    handles = [_handle(name, values, step, **kw) for name, values in fields]
    try:
        for handle in handles:
            eccodes.codes_grib_multi_append(handle, start, multi)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "multi.grib2"
            with path.open("wb") as out:
                eccodes.codes_grib_multi_write(multi, out)
            return path.read_bytes()
    finally:
        for handle in handles:
            eccodes.codes_release(handle)
        eccodes.codes_grib_multi_release(multi)


@contextmanager
def _multi_support() -> Iterator[None]:
    eccodes.codes_grib_multi_support_on()
    try:
        yield
    finally:
        eccodes.codes_grib_multi_support_off()


def _reference(path: Path) -> dict[tuple[str, int], np.ndarray]:
    """(shortName, step) -> values of every field, ecCodes reading in multi-field mode."""
    fields = {}
    with _multi_support(), path.open("rb") as f:
        while (handle := eccodes.codes_grib_new_from_file(f)) is not None:
            values = eccodes.codes_get_values(handle).astype(np.float64)
            if eccodes.codes_get(handle, "bitmapPresent"):
                values[values == eccodes.codes_get(handle, "missingValue")] = np.nan
            key = (eccodes.codes_get(handle, "shortName"), eccodes.codes_get(handle, "step"))
            fields[key] = values
            eccodes.codes_release(handle)
    return fields


def _opened(path: Path) -> tuple[vc.VirtualGroup, xr.Dataset]:
    registry = vc.ObjectStoreRegistry.for_urls([str(path)])
    group = GRIBParser()(str(path), registry)
    store = vc.ManifestStore(group, registry=registry)
    return group, xr.open_zarr(store, consolidated=False, decode_timedelta=True).load()


def _check_against_eccodes(path: Path, steps: tuple[int, ...]) -> vc.VirtualGroup:
    group, got = _opened(path)
    reference = _reference(path)
    assert len(reference) == 2 * len(steps)
    for (short_name, step), expected in reference.items():
        name = {"10u": "u10", "10v": "v10"}[short_name]
        index = steps.index(step)
        np.testing.assert_array_equal(
            got[name].values[index].ravel(), expected.astype(np.float32), f"{name} step {step}"
        )
    return group


@pytest.mark.parametrize("start", [3, 4], ids=["from section 3", "from section 4"])
def test_each_field_is_a_chunk_of_its_array(tmp_path: Path, start: int) -> None:
    steps = (0, 6, 12)
    path = tmp_path / "uv.grib2"
    path.write_bytes(
        b"".join(
            _multi_message([("10u", _values(s)), ("10v", _values(s + 100))], s, start)
            for s in steps
        )
    )
    group = _check_against_eccodes(path, steps)
    for name, field in (("u10", 0), ("v10", 1)):
        array = group[name]
        assert isinstance(array, vc.VirtualArray)
        assert array.manifest.n_chunks == len(steps)
        configuration = array.metadata.codecs[0].to_dict()["configuration"]
        assert configuration == {"field": field, "order": "rows"}
    # Both arrays reference the same whole messages.
    u, v = group["u10"], group["v10"]
    assert isinstance(u, vc.VirtualArray)
    assert isinstance(v, vc.VirtualArray)
    assert u.manifest.to_arrays()[1].tolist() == v.manifest.to_arrays()[1].tolist()


def _reuse_previous_bitmap(data: bytes) -> bytes:
    """The message with its second bitmap section replaced by indicator 254 (reuse)."""
    sections = [s for s in grib2_sections(data, "test", ValueError) if s[0] == 6]
    assert len(sections) == 2
    assert data[sections[0][1] + 5] == 0
    _, start, length = sections[1]
    reuse = (6).to_bytes(4, "big") + bytes([6, 254])
    edited = data[:start] + reuse + data[start + length :]
    return edited[:8] + len(edited).to_bytes(8, "big") + edited[16:]


def test_a_field_reusing_the_previous_bitmap(tmp_path: Path) -> None:
    steps = (0, 6)
    messages = [
        _multi_message(
            [("10u", _values(s, holes=True)), ("10v", _values(s + 1, holes=True))],
            s,
            4,
            bitmap=True,
        )
        for s in steps
    ]
    path = tmp_path / "reuse.grib2"
    path.write_bytes(b"".join(_reuse_previous_bitmap(m) for m in messages))
    _, got = _opened(path)
    assert np.isnan(got["v10"].values[0].ravel()[::9]).all()
    _check_against_eccodes(path, steps)


def test_a_reused_bitmap_with_none_before_is_a_typed_error(tmp_path: Path) -> None:
    data = _multi_message([("10u", _values(0)), ("10v", _values(1))], 0, 4)
    sections = [s for s in grib2_sections(data, "test", ValueError) if s[0] == 6]
    _, start, _ = sections[0]
    broken = data[: start + 5] + bytes([254]) + data[start + 6 :]  # the first field's
    path = tmp_path / "broken.grib2"
    path.write_bytes(broken)
    with pytest.raises(GRIBFormatError, match=r"broken.grib2.*bitmap defined before"):
        GRIBParser()(str(path), vc.ObjectStoreRegistry.for_urls([str(path)]))


def test_the_codec_checks_its_field(tmp_path: Path) -> None:
    with pytest.raises(InvalidMetadataError, match="non-negative"):
        GRIBCodec(field=-1)
    data = _multi_message([("10u", _values(0)), ("10v", _values(1))], 0, 4)
    assert len(message_fields(data, "m", ValueError)) == 2
    codec = GRIBCodec(field=2)
    with pytest.raises(ChunkDecodeError, match="holds 2 fields, not field 2"):
        codec._decode_to_array(data, POINTS, np.dtype("float32"))
    path = tmp_path / "uv.grib2"
    path.write_bytes(data)
    expected = _reference(path)[("10v", 0)]
    decoded = GRIBCodec(field=1)._decode_to_array(data, POINTS, np.dtype("float32"))
    np.testing.assert_array_equal(decoded, expected.astype(np.float32))


def test_single_field_messages_are_returned_whole() -> None:
    handle = _handle("2t", _values(3), 0)
    data = bytes(eccodes.codes_get_message(handle))
    eccodes.codes_release(handle)
    assert message_fields(data, "m", ValueError) == [data]
