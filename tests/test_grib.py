"""GRIBParser: hypercubes as cfgrib builds them, every packing ecCodes writes, holes, faults.

Files are xarray's ``example.grib`` (written by ECMWF's tools, nobody here) and GRIB
files made in the tests from ecCodes' own sample templates with ``codes_set``. Every
array is read through `ManifestStore` and compared with cfgrib (xarray's ``cfgrib``
engine) or with ecCodes' decoded values.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import eccodes
import numpy as np
import pytest
import xarray as xr
from tests.cf_corpus import icechunk_repository
from tests.s3_server import S3Bucket

import vzcore as vc
import vzxarray as vx
from vzcore.parsers import GRIBFormatError, GRIBParser, detect_parser

EXAMPLE = Path(xr.__file__).parent / "tests" / "data" / "example.grib"
PACKINGS = ("grid_simple", "grid_ieee", "grid_ccsds", "grid_complex", "grid_second_order")


def _message(sample: str, values: np.ndarray | None = None, **keys: Any) -> bytes:
    handle = eccodes.codes_grib_new_from_samples(sample)
    try:
        for key, value in keys.items():
            eccodes.codes_set(handle, key, value)
        if values is not None:
            eccodes.codes_set_values(handle, values.ravel())
        return bytes(eccodes.codes_get_message(handle))
    finally:
        eccodes.codes_release(handle)


def _field(seed: int) -> np.ndarray:
    """A smooth field on the 16 x 31 grid of ``regular_ll_sfc_grib2``."""
    lat, lon = np.meshgrid(np.linspace(0, 3, 31), np.linspace(0, 2, 16), indexing="ij")
    return (280 + 10 * np.sin(lat + seed) * np.cos(lon)).ravel()


def _write(path: Path, messages: Iterable[bytes]) -> Path:
    path.write_bytes(b"".join(messages))
    return path


def _decoded(path: Path) -> list[np.ndarray]:
    """Every message's values as ecCodes decodes them (missing points NaN)."""
    out = []
    with path.open("rb") as f:
        while (handle := eccodes.codes_grib_new_from_file(f)) is not None:
            values = eccodes.codes_get_values(handle).astype(np.float64)
            if eccodes.codes_get(handle, "bitmapPresent"):
                values[values == eccodes.codes_get(handle, "missingValue")] = np.nan
            out.append(values)
            eccodes.codes_release(handle)
    return out


def _virtual(path: Path | str, **options: Any) -> tuple[vc.VirtualGroup, vc.ObjectStoreRegistry]:
    registry = vc.ObjectStoreRegistry.for_urls([str(path)])
    return GRIBParser(**options)(str(path), registry), registry


def _opened(group: vc.VirtualGroup, registry: vc.ObjectStoreRegistry) -> xr.Dataset:
    store = vc.ManifestStore(group, registry=registry)
    return xr.open_zarr(store, consolidated=False, decode_timedelta=True).load()


def test_example_grib_equals_cfgrib() -> None:
    group, registry = _virtual(EXAMPLE)
    got = _opened(group, registry)
    with xr.open_dataset(EXAMPLE, engine="cfgrib", indexpath="") as ref:
        ref = ref.load()
        assert got["t"].dims == ref["t"].dims
        for name in ("t", "z", "number", "time", "isobaricInhPa", "latitude", "longitude", "step"):
            np.testing.assert_array_equal(got[name].values, ref[name].values, name)
        for key in ("GRIB_paramId", "GRIB_shortName", "units", "long_name", "standard_name"):
            assert got["t"].attrs[key] == ref["t"].attrs[key], key
    t = group["t"]
    assert isinstance(t, vc.VirtualArray)
    assert t.manifest.n_chunks == 12  # one chunk per message
    assert [c.name for c in t.metadata.codecs] == ["vz.grib"]


@pytest.mark.parametrize("packing", PACKINGS)
def test_every_packing_decodes_as_eccodes(tmp_path: Path, packing: str) -> None:
    messages = [
        _message("regular_ll_sfc_grib2", _field(step), packingType=packing, step=step,
                 bitsPerValue=16)
        for step in (0, 6, 12)
    ]  # fmt: skip
    path = _write(tmp_path / f"{packing}.grib2", messages)
    group, registry = _virtual(path)
    name = next(n for n, a in group.arrays.items() if isinstance(a, vc.VirtualArray))
    got = _opened(group, registry)[name]
    assert got.dims == ("step", "latitude", "longitude")
    expected = np.stack(_decoded(path)).astype(np.float32).reshape(got.shape)
    np.testing.assert_array_equal(got.values, expected)


def test_a_bitmap_reads_as_nan(tmp_path: Path) -> None:
    values = _field(1)
    values[::7] = 9999.0
    message = _message("regular_ll_sfc_grib2", None, bitmapPresent=1, missingValue=9999.0)
    handle = eccodes.codes_new_from_message(message)
    eccodes.codes_set(handle, "missingValue", 9999.0)
    eccodes.codes_set_values(handle, values)
    data = bytes(eccodes.codes_get_message(handle))
    eccodes.codes_release(handle)
    path = _write(tmp_path / "bitmap.grib2", [data])
    group, registry = _virtual(path)
    got = _opened(group, registry)
    name = next(n for n, a in group.arrays.items() if isinstance(a, vc.VirtualArray))
    flat = got[name].values.ravel()
    assert np.isnan(flat[::7]).all()
    np.testing.assert_array_equal(flat, _decoded(path)[0].astype(np.float32))


def holes_file(tmp_path: Path) -> Path:
    """2t at steps 0, 6, 12 of one day and 0, 12 of the next: (day 2, step 6) is a hole."""
    days = {20240101: (0, 6, 12), 20240102: (0, 12)}
    messages = [
        _message("regular_ll_sfc_grib2", _field(s + d % 7), shortName="2t", dataDate=d, step=s)
        for d, steps in days.items()
        for s in steps
    ]
    return _write(tmp_path / "holes.grib2", messages)


def test_holes_in_the_cube_are_missing_chunks(tmp_path: Path) -> None:
    path = holes_file(tmp_path)
    group, registry = _virtual(path)
    got = _opened(group, registry)
    assert group["t2m"].manifest.n_missing == 1  # type: ignore[union-attr]
    assert got["t2m"].dims == ("time", "step", "latitude", "longitude")
    assert np.isnan(got["t2m"].isel(time=1, step=1).values).all()
    decoded = _decoded(path)
    for (day, step), values in zip(((0, 0), (0, 1), (0, 2), (1, 0), (1, 2)), decoded, strict=True):
        np.testing.assert_array_equal(
            got["t2m"].isel(time=day, step=step).values.ravel(), values.astype("f4")
        )
    with xr.open_dataset(path, engine="cfgrib", indexpath="") as ref:
        np.testing.assert_array_equal(got["t2m"].values, ref["t2m"].values)


def test_variables_on_different_steps_are_separate_datasets_as_in_cfgrib(
    tmp_path: Path,
) -> None:
    """2t at steps 0, 6, 12, 2d at 0, 12: cfgrib makes two datasets (no shared cube)."""
    messages = [
        _message("regular_ll_sfc_grib2", _field(s + len(name)), shortName=name, step=s)
        for name in ("2t", "2d")
        for s in (0, 6, 12)
        if not (name == "2d" and s == 6)
    ]
    path = _write(tmp_path / "steps.grib2", messages)
    group, registry = _virtual(path)
    import cfgrib

    refs = cfgrib.open_datasets(str(path), indexpath="")
    assert sorted(list(r.data_vars) for r in refs) == [["d2m"], ["t2m"]]
    assert len(group.groups) == 2
    store = vc.ManifestStore(group, registry=registry)
    for name, sub in group.groups.items():
        assert sub["step"].shape in ((2,), (3,))
        got = xr.open_zarr(store, group=name, consolidated=False, decode_timedelta=True)
        (ref,) = [r for r in refs if set(r.data_vars) == set(got.data_vars)]
        for var in ref.data_vars:
            np.testing.assert_array_equal(got[var].values, ref[var].values)
            assert group[f"{name}/{var}"].manifest.n_missing == 0  # type: ignore[union-attr]


def test_grib1_and_grib2_in_one_file_and_reduced_grids(tmp_path: Path) -> None:
    grib1 = _message("GRIB1", None)
    grib2 = _message("regular_ll_sfc_grib2", _field(0))
    reduced = _message("reduced_gg_pl_32_grib2", None)
    path = _write(tmp_path / "mixed.grib", [grib1, grib2, reduced])
    group, registry = _virtual(path)
    assert len(group.groups) == 3  # three grids, three hypercubes
    decoded = _decoded(path)
    store = vc.ManifestStore(group, registry=registry)
    seen = []
    for name, sub in group.groups.items():
        ds = xr.open_zarr(store, group=name, consolidated=False, decode_timedelta=True).load()
        (var,) = [v for v in ds.data_vars if isinstance(sub[v], vc.VirtualArray)]
        seen.append(ds[var].values.ravel())
        if "reduced" in name:
            assert ds[var].dims == ("values",)
            assert ds["latitude"].dims == ("values",)
    for expected in decoded:
        assert any(
            len(s) == len(expected) and np.array_equal(s, expected.astype("f4"), equal_nan=True)
            for s in seen
        )
    tree = vx.open_virtual_datatree(str(path), registry=registry)
    assert set(tree.children) == set(group.groups)


def test_filter_by_keys(tmp_path: Path) -> None:
    messages = [
        _message("regular_ll_sfc_grib2", _field(0), typeOfLevel="surface"),
        _message("regular_ll_pl_grib2", None, typeOfLevel="isobaricInhPa", level=500),
    ]
    path = _write(tmp_path / "two.grib2", messages)
    group, _ = _virtual(path)
    assert len(group.groups) == 2
    only, _ = _virtual(path, filter_by_keys={"typeOfLevel": "surface"})
    assert not only.groups
    assert "surface" not in only.arrays or only.arrays["surface"].shape == ()
    with pytest.raises(GRIBFormatError, match="matches filter_by_keys"):
        _virtual(path, filter_by_keys={"typeOfLevel": "nope"})


def test_detected_and_read_from_s3(s3_bucket: S3Bucket) -> None:
    url = s3_bucket.put("g/example.grib", EXAMPLE.read_bytes())
    registry = s3_bucket.registry()
    parser = detect_parser(url, registry)
    assert isinstance(parser, GRIBParser)
    got = _opened(parser(url, registry), registry)
    with xr.open_dataset(EXAMPLE, engine="cfgrib", indexpath="") as ref:
        np.testing.assert_array_equal(got["t"].values, ref["t"].values)


CORRUPT: Mapping[str, tuple[bytes, str]] = {
    "no message": (b"not a grib file at all" * 10, "no GRIB message"),
    "truncated": (EXAMPLE.read_bytes()[:-100], "truncated or corrupt"),
    "no 7777": (EXAMPLE.read_bytes()[:-4] + b"XXXX", "does not end in 7777"),
    "edition 3": (b"GRIB\x00\x00\x10\x03" + b"\x00" * 8, "edition 3"),
    "huge length": (b"GRIB\x00\x00\x00\x02" + (2**62).to_bytes(8, "big") + b"\0" * 8, "declares"),
}


@pytest.mark.parametrize("case", CORRUPT)
def test_corrupt_files_are_typed_errors(tmp_path: Path, case: str) -> None:
    data, needle = CORRUPT[case]
    path = tmp_path / "bad.grib"
    path.write_bytes(data)
    with pytest.raises(GRIBFormatError) as info:
        _virtual(path)
    assert f"file://{path}" in str(info.value)
    assert needle in str(info.value)


@pytest.mark.parametrize("edition", [1, 2])
def test_a_grib_needing_local_tables_is_a_typed_error(tmp_path: Path, edition: int) -> None:
    """Parameters of a centre's local tables: named by their numbers, not merged.

    cfgrib calls both ``unknown`` and keeps one; vz refuses within a second, naming the
    file, the messages and the numbers, and reads the known ones through filter_by_keys;
    one unknown parameter alone is ``unknown``, as in cfgrib.
    """
    if edition == 2:
        sample = "regular_ll_sfc_grib2"
        local = {"centre": 74, "localTablesVersion": 1, "discipline": 0,
                 "parameterCategory": 0}  # fmt: skip
        unknown = [{**local, "parameterNumber": n} for n in (250, 251)]
        known = {"discipline": 0, "parameterCategory": 0, "parameterNumber": 0}
        needle, param, name = "parameterNumber=250", 130, "t"
    else:
        sample = "regular_ll_sfc_grib1"
        unknown = [{"centre": 74, "table2Version": 250, "indicatorOfParameter": n}
                   for n in (250, 251)]  # fmt: skip
        known = {"table2Version": 128, "indicatorOfParameter": 167}
        needle, param, name = "indicatorOfParameter=250", 167, "t2m"
    messages = [_message(sample, None, **k) for k in (*unknown, known)]
    path = _write(tmp_path / f"local{edition}.grib", messages)
    start = time.perf_counter()
    with pytest.raises(GRIBFormatError) as info:
        _virtual(path)
    assert time.perf_counter() - start < 1.0 + 5.0  # a second, with slack for a busy CI
    text = str(info.value)
    assert f"file://{path}" in text
    assert "message at byte 0" in text
    assert needle in text
    assert "local tables" in text
    (alone, registry) = _virtual(_write(tmp_path / "one.grib", messages[:1]))
    assert list(alone.arrays) == ["unknown"] or "unknown" in alone.arrays
    group, registry = _virtual(path, filter_by_keys={"paramId": param})
    got = _opened(group, registry)
    with xr.open_dataset(path, engine="cfgrib", indexpath="",
                         backend_kwargs={"filter_by_keys": {"paramId": param}}) as ref:  # fmt: skip
        np.testing.assert_array_equal(got[name].values, ref[name].values)


def test_grib1_messages_over_8_mib_are_read_with_ecmwfs_length_coding(tmp_path: Path) -> None:
    """A GRIB1 length has 3 bytes: ECMWF codes longer messages in units of 120 bytes."""
    grid = {"Ni": 2880, "Nj": 1441, "iDirectionIncrementInDegrees": 0.125,
            "jDirectionIncrementInDegrees": 0.125, "latitudeOfFirstGridPointInDegrees": 90.0,
            "latitudeOfLastGridPointInDegrees": -90.0, "longitudeOfFirstGridPointInDegrees": 0.0,
            "longitudeOfLastGridPointInDegrees": 359.875, "bitsPerValue": 24}  # fmt: skip
    rng = np.random.default_rng(0)
    big = [
        _message("regular_ll_sfc_grib1", rng.normal(280, 10, 2880 * 1441), dataDate=d, **grid)
        for d in (20240101, 20240102)
    ]
    assert all(len(m) > 1 << 23 and m[4] & 0x80 for m in big)  # the large-message coding
    path = _write(tmp_path / "large.grib1", [big[0], _message("regular_ll_sfc_grib1"), big[1]])
    group, registry = _virtual(path)
    (cube,) = [g for g in group.groups.values() if g.arrays["t2m"].shape[0] == 2]
    assert cube.arrays["t2m"].manifest.to_arrays()[2].ravel().tolist() == [len(m) for m in big]
    got = xr.open_zarr(
        vc.ManifestStore(cube, registry=registry), consolidated=False, decode_timedelta=True
    )
    with xr.open_dataset(path, engine="cfgrib", indexpath="",
                         backend_kwargs={"filter_by_keys": {"Ni": 2880}}) as ref:  # fmt: skip
        np.testing.assert_array_equal(got["t2m"].values, ref["t2m"].values)


def test_a_damaged_message_body_is_a_typed_error_on_parse_or_read(tmp_path: Path) -> None:
    data = bytearray(EXAMPLE.read_bytes())
    data[40:60] = b"\xff" * 20  # inside the first message's sections
    path = tmp_path / "damaged.grib"
    path.write_bytes(bytes(data))
    try:
        group, registry = _virtual(path)
        _opened(group, registry)
    except vc.VirtualizationError as err:
        message = str(err)
    else:
        return  # ecCodes read the damaged sections as other valid values: nothing to refuse
    assert "damaged.grib" in message or "vz.grib" in message


def test_icechunk_keeps_the_grib_codec(tmp_path: Path) -> None:
    """(Kerchunk output: tests/test_grib_kerchunk.py.)"""
    import zarr

    from vzcore.writers import write_icechunk

    group, _ = _virtual(EXAMPLE)
    repository = icechunk_repository(EXAMPLE.parent)
    session = repository.writable_session("main")
    write_icechunk(group, session.store)
    session.commit("a GRIB file")
    root = zarr.open_group(repository.readonly_session("main").store, mode="r")
    with xr.open_dataset(EXAMPLE, engine="cfgrib", indexpath="") as ref:
        np.testing.assert_array_equal(root["t"][...], ref["t"].values)


def test_keys_from_the_identity_cache_equal_what_eccodes_says(tmp_path: Path) -> None:
    """Every message of every test file: the fast keys (cache + octets) equal ecCodes' own."""
    from vzcore.byteranges import source
    from vzcore.parsers.grib import _ecc_keys, _fields_with_keys

    messages = [
        _message(sample, None, **keys)
        for sample in ("regular_ll_sfc_grib2", "regular_ll_pl_grib2", "reduced_gg_pl_32_grib2")
        for keys in (
            {"step": 0}, {"step": 6, "dataDate": 20200229, "dataTime": 1830}, {"step": 240},
            {"shortName": "2t", "step": 3}, {"shortName": "10u", "step": 3},
        )
    ]  # fmt: skip
    path = _write(tmp_path / "many.grib2", [*messages, EXAMPLE.read_bytes()])
    file = source(vc.ObjectStoreRegistry.for_urls([str(path)]), str(path))
    checked = 0
    for found, keys in _fields_with_keys(file, path.stat().st_size):
        assert keys == _ecc_keys(found.data, str(found.offset)), found.offset
        checked += 1
    assert checked == len(messages) + 24  # example.grib: t and z, 2 x 3 x 2 each
