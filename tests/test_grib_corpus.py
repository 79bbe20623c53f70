"""GRIB files nobody here wrote, read through `ManifestStore`, compared with cfgrib.

Three sources: pygrib's sample data (its sdist's ``sampledata/``), iris-grib's test
data (its sdist's ``src/iris_grib/tests/testdata/``) and the GRIB templates compiled
into ecCodes (its ``/MEMFS/samples``, each built with ``codes_grib_new_from_samples``
and written to a file). As in ``test_grib_samples``: every variable of every dataset
``cfgrib.open_datasets`` gives must be in one of vz's datasets with the same dims,
shape, values (NaN where cfgrib has NaN) and coordinates. Files vz refuses are listed
with the reason, files where vz and cfgrib differ with the difference, which a test
asserts; every file of each source is in exactly one list.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.sample_packages import sdist_members
from tests.test_grib_samples import _compare, _vz, assert_refused

# ---- pygrib's sample data ----------------------------------------------------------------

PYGRIB = ("pygrib", "2.1.8")  # the latest release; its sdist has sampledata/

PYGRIB_EQUAL = (
    "CMC_reg_WIND_ISBL_300_ps60km_2010052400_P012.grib", "ds.maxt.bin", "dspr.temp.bin",
    "flux.grb", "ngm.grb", "no-radius-shapeOfEarth-7.grb2", "reduced_latlon_surface.grib2",
    "regular_latlon_surface.grib1", "regular_latlon_surface.grib2", "rotated_ll.grib1",
    "safrica.grib2",
)  # fmt: skip

# cfgrib (indexpath="") scans the whole file again for every variable it tries: 58
# times for eta.grb, a minute. Compared by slices: each level type's messages at its
# first three levels and steps are written to a file of their own (vz and cfgrib both
# build a dataset within one level type) and compared.
PYGRIB_BY_LEVEL_TYPE = ("ds.waveh.bin", "ecmwf_tigge.grb", "eta.grb")

PYGRIB_REFUSED = {
    # Unknown parameters (paramId 0, shortName unknown: local table-2 numbers 188, 189,
    # 195, 200, 212, 227) are one variable "unknown" to cfgrib, which keeps the first
    # message it indexes at each level; vz refuses, naming their numbers.
    "cl00010000_ecoclimap_rot.grib1": "would all be 'unknown'",
    # NCEP local parameters (localTablesVersion 1, numbers ecCodes' tables lack) beside
    # t and soilw on depthBelowLandLayer, where ecCodes gives two layers as 0-0 m
    # (GRIB1's centimetres in whole metres): cfgrib keeps the first of each, vz refuses.
    "gfs.grb": "would all be 'unknown'",
    "gfs.t12z.pgrbf120.2p5deg.grib2": "would all be 'unknown'",
    # NCEP's local grid template 3.32769 (pygrib ships its definition): ecCodes has no
    # latitudes/longitudes for it, cfgrib gives the values without coordinates.
    "rap.wrfnat.grib2": "cannot give the grid's points",
    "spherical_pressure_level.grib1": "cannot give the grid's points",  # gridType sh
}

# A 3 x 2 regular_ll grid stored column by column (scanning mode 0x20,
# jPointsAreConsecutive): vz lays its points out as rows (values and coordinates),
# cfgrib reshapes the column-ordered points as if they were rows. Equal coordinates,
# cfgrib's values are vz's transposed in storage order.
PYGRIB_DIFFERENT = {
    "scanning_mode.grib2": "cfgrib ignores jPointsAreConsecutive",
    "scanning_mode_with_bitmap.grib2": "cfgrib ignores jPointsAreConsecutive",
}

# ---- iris-grib's test data ----------------------------------------------------------------

IRIS_GRIB = ("iris-grib", "0.23.0")  # the latest release
IRIS_TESTDATA = "src/iris_grib/tests/testdata"

IRIS_EQUAL = (
    "CB_T+24_0600.grib2", "faked_sample_hh_grib_data.grib2", "faked_sample_hp_grib_data.grib2",
)  # fmt: skip

# Product template 4.15 (spatial processing): each level twice, statisticalProcess 0
# (mean) and 2 (maximum), a key neither cfgrib nor vz splits variables on; cfgrib
# keeps the first message of each level, vz refuses.
IRIS_REFUSED = {
    "CAT_T+24_0600.grib2": "two messages for one",
    "ICING_T+24_0600.grib2": "two messages for one",
    "INCLDTURB_T+24_0600.grib2": "two messages for one",
}

# ---- ecCodes' sample templates ----------------------------------------------------------

# Not GRIB: codes_grib_new_from_samples refuses them (BUFR, HDF5 and the wrap sample).
TEMPLATES_NOT_GRIB = (
    "BUFR3", "BUFR3_local", "BUFR3_local_satellite", "BUFR4", "BUFR4_local",
    "BUFR4_local_satellite", "hdf5", "wrap",
)  # fmt: skip

TEMPLATES_REFUSED = {
    "budg": "no GRIB message",  # ECMWF's pseudo-GRIB BUDG (cfgrib: KeyError 'gridType')
    "diag": "no GRIB message",  # ECMWF's pseudo-GRIB DIAG (cfgrib: KeyError 'gridType')
    "lambert_bf_grib2": "cannot give the grid's points",  # bi-Fourier coefficients
    **{f"sh_{level}_grib{e}": "cannot give the grid's points" for level in ("ml", "pl", "sfc")
       for e in (1, 2)},  # spherical harmonics
}  # fmt: skip

# Reduced Gaussian grids N512 to N2000: 1.4 M to 20.7 M points, each 1-20 s in cfgrib
# and vz alike (the latitudes and longitudes of every point). Each is the N400
# template (compared) on a finer grid; a test checks that the keys vz reads are the
# N400 sibling's.
TEMPLATES_HUGE = tuple(
    f"reduced_{kind}gg_pl_{n}_grib{e}"
    for kind in ("", "rotated_")
    for n in (512, 640, 1024, 1280, 2000)
    for e in (1, 2)
)

_SIZES = (32, 48, 64, 80, 96, 128, 160, 200, 256, 320, 400)
TEMPLATES_EQUAL = (
    "GRIB1", "GRIB2", "ccsds_grib2", "clusters_grib1", "destine_grib2", "hydro_grib2",
    "reduced_gg_sfc_jpeg_grib2", "reduced_rotated_gg_sfc_jpeg_grib2",
    *(f"{grid}_grib{e}" for e in (1, 2) for grid in (
        "gg_sfc", "reduced_ll_sfc", "polar_stereographic_pl", "polar_stereographic_sfc",
        "regular_ll_pl", "regular_ll_sfc", "rotated_ll_pl", "rotated_ll_sfc",
        *(f"{kind}gg_{level}" for kind in ("regular_", "rotated_", "reduced_",
          "reduced_rotated_") for level in ("ml", "pl", "sfc")),
        *(f"reduced_gg_pl_{n}" for n in _SIZES),
        *(f"reduced_rotated_gg_pl_{n}" for n in _SIZES if n != 64),  # ecCodes has no N64
    )),
)  # fmt: skip

# The keys vz groups and lays out messages by (`vzcore.parsers.grib`), and packing.
_TEMPLATE_KEYS = (
    "edition", "centre", "subCentre", "paramId", "shortName", "cfVarName", "units",
    "dataType", "typeOfLevel", "level", "stepType", "stepUnits", "dataDate", "dataTime",
    "step", "number", "gridType", "NV", "missingValue", "uvRelativeToGrid", "packingType",
    "bitsPerValue", "bitmapPresent", "iScansNegatively", "jScansPositively",
    "jPointsAreConsecutive", "alternativeRowScanning", "isOctahedral",
    "latitudeOfSouthernPoleInDegrees", "longitudeOfSouthernPoleInDegrees",
    "angleOfRotationInDegrees",
)  # fmt: skip


def _pygrib(name: str) -> Path:
    found = sdist_members(*PYGRIB, f"sampledata/{name}")
    assert found, f"{name} is not in the pygrib sdist"
    return found[0]


def _iris(name: str) -> Path:
    found = sdist_members(*IRIS_GRIB, f"{IRIS_TESTDATA}/{name}")
    assert found, f"{name} is not in the iris-grib sdist"
    return found[0]


def _template_names() -> set[str]:
    """The samples ecCodes has, by name: its samples folder, or the in-memory one.

    The eccodes wheel compiles them into ``libeccodes_memfs`` (next to libeccodes),
    served as ``/MEMFS/samples``, which no directory listing shows: the names are read
    from that library.
    """
    import eccodes

    folder = Path(eccodes.codes_samples_path())
    if folder.is_dir():
        return {p.name.removesuffix(".tmpl") for p in folder.glob("*.tmpl")}
    library = Path(eccodes.codes_get_library_path())
    memfs = list(library.parent.glob("libeccodes_memfs*"))
    assert memfs, f"no samples folder {folder} and no libeccodes_memfs beside {library}"
    names = re.findall(rb"/MEMFS/samples/([A-Za-z0-9_.+-]+)\.tmpl", memfs[0].read_bytes())
    return {n.decode() for n in names}


def _template(name: str, folder: Path) -> Path:
    """The template written to a file; constant values replaced by a varying field.

    A constant field would compare equal in any point order, so the values are set
    to a smooth field with a range of several hundred (packed at the template's
    bits per value).
    """
    import eccodes

    handle = eccodes.codes_grib_new_from_samples(name)
    try:
        constant = eccodes.codes_is_defined(handle, "isConstant") and eccodes.codes_get(
            handle, "isConstant"
        )
        if constant and eccodes.codes_get(handle, "gridType") not in ("sh", "lambert_bf"):
            count = eccodes.codes_get_size(handle, "values")
            points = np.arange(count, dtype=np.float64)
            eccodes.codes_set_values(handle, 250 + 40 * np.sin(points / 7) + points % 97)
        message = eccodes.codes_get_message(handle)
    finally:
        eccodes.codes_release(handle)
    path = folder / f"{name}.grib"
    path.write_bytes(message)
    return path


def _keys(name: str) -> dict[str, Any]:
    import eccodes

    handle = eccodes.codes_grib_new_from_samples(name)
    try:
        return {
            key: eccodes.codes_get(handle, key) if eccodes.codes_is_defined(handle, key) else None
            for key in (*_TEMPLATE_KEYS, "N", "numberOfValues")
        }
    finally:
        eccodes.codes_release(handle)


# ---- pygrib ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PYGRIB_EQUAL)
def test_pygrib_sample_equals_cfgrib(name: str) -> None:
    assert _compare(_pygrib(name)) == []


def _by_level_type(path: Path, folder: Path, keep: int = 3) -> dict[str, Path]:
    """The file's messages split by typeOfLevel, each part written as a file in order.

    Each part keeps the messages of its first ``keep`` levels and steps (every
    parameter at those), so that cfgrib's scans stay short.
    """
    import eccodes

    parts: dict[str, list[tuple[float, float, bytes]]] = defaultdict(list)
    with path.open("rb") as f:
        while (handle := eccodes.codes_grib_new_from_file(f)) is not None:
            try:
                level, step = (eccodes.codes_get(handle, k, float) for k in ("level", "endStep"))
                parts[eccodes.codes_get(handle, "typeOfLevel")].append(
                    (level, step, eccodes.codes_get_message(handle))
                )
            finally:
                eccodes.codes_release(handle)
    written = {}
    for level_type, messages in parts.items():
        levels = sorted({m[0] for m in messages})[:keep]
        steps = sorted({m[1] for m in messages})[:keep]
        kept = [m[2] for m in messages if m[0] in levels and m[1] in steps]
        written[level_type] = folder / f"{path.name}.{level_type}.grib"
        written[level_type].write_bytes(b"".join(kept))
    return written


@pytest.mark.parametrize("name", PYGRIB_BY_LEVEL_TYPE)
def test_pygrib_sample_equals_cfgrib_per_level_type(name: str, tmp_path: Path) -> None:
    parts = _by_level_type(_pygrib(name), tmp_path)
    assert parts
    assert {t: _compare(p) for t, p in parts.items()} == {t: [] for t in parts}


@pytest.mark.parametrize("name", PYGRIB_REFUSED)
def test_pygrib_sample_refused_with_a_typed_error(name: str) -> None:
    assert_refused(_pygrib(name), PYGRIB_REFUSED[name])


@pytest.mark.parametrize("name", PYGRIB_DIFFERENT)
def test_pygrib_column_ordered_grid_differs_from_cfgrib(name: str) -> None:
    """vz lays a column-ordered grid out as rows; cfgrib reshapes the columns as rows.

    Checked against ecCodes' own (latitude, longitude, value) triples.
    """
    import cfgrib
    import eccodes

    path = _pygrib(name)
    assert _compare(path) == ["t('latitude', 'longitude')"]
    (got,) = _vz(path)
    (ref,) = cfgrib.open_datasets(str(path), indexpath="")
    np.testing.assert_array_equal(got.latitude.values, ref.latitude.values)
    np.testing.assert_array_equal(got.longitude.values, ref.longitude.values)
    nj, ni = ref.t.shape
    stored = ref.t.values.ravel()  # cfgrib: the stored (column) order, reshaped as rows
    np.testing.assert_array_equal(got.t.values, stored.reshape(ni, nj).T)
    assert not np.array_equal(got.t.values, ref.t.values, equal_nan=True)
    with path.open("rb") as f:
        handle = eccodes.codes_grib_new_from_file(f)
        try:
            assert eccodes.codes_get(handle, "jPointsAreConsecutive") == 1
            eccodes.codes_set(handle, "missingValue", 9.0e37)
            triples = list(eccodes.codes_grib_get_data(handle))
        finally:
            eccodes.codes_release(handle)
    lats, lons = list(got.latitude.values), list(got.longitude.values)
    for point in triples:
        value = got.t.values[lats.index(point["lat"]), lons.index(point["lon"])]
        assert np.isnan(value) if point["value"] == 9.0e37 else value == point["value"]


def test_every_pygrib_sample_is_listed() -> None:
    found = {p.name for p in sdist_members(*PYGRIB, "sampledata/*") if p.suffix != ".idx"}
    listed = [*PYGRIB_EQUAL, *PYGRIB_BY_LEVEL_TYPE, *PYGRIB_REFUSED, *PYGRIB_DIFFERENT]
    assert len(listed) == len(set(listed))
    assert found == set(listed)


# ---- iris-grib -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", IRIS_EQUAL)
def test_iris_grib_test_file_equals_cfgrib(name: str) -> None:
    assert _compare(_iris(name)) == []


@pytest.mark.parametrize("name", IRIS_REFUSED)
def test_iris_grib_test_file_refused_with_a_typed_error(name: str) -> None:
    assert_refused(_iris(name), IRIS_REFUSED[name])


def test_every_iris_grib_test_file_is_listed() -> None:
    found = {
        p.name
        for p in sdist_members(*IRIS_GRIB, "src/iris_grib/tests/*")
        if re.search(r"\.(grib|grb)2?$", p.name)
    }
    listed = [*IRIS_EQUAL, *IRIS_REFUSED]
    assert len(listed) == len(set(listed))
    assert found == set(listed)


# ---- ecCodes' templates -----------------------------------------------------------------


@pytest.mark.parametrize("name", TEMPLATES_EQUAL)
def test_eccodes_template_equals_cfgrib(name: str, tmp_path: Path) -> None:
    assert _compare(_template(name, tmp_path)) == []


@pytest.mark.parametrize("name", TEMPLATES_REFUSED)
def test_eccodes_template_refused_with_a_typed_error(name: str, tmp_path: Path) -> None:
    assert_refused(_template(name, tmp_path), TEMPLATES_REFUSED[name])


@pytest.mark.parametrize("name", TEMPLATES_NOT_GRIB)
def test_eccodes_sample_that_is_not_grib(name: str) -> None:
    import eccodes

    with pytest.raises(eccodes.GribInternalError):
        eccodes.codes_grib_new_from_samples(name)


@pytest.mark.parametrize("name", TEMPLATES_HUGE)
def test_huge_template_is_its_n400_sibling_on_a_finer_grid(name: str) -> None:
    mine, theirs = _keys(name), _keys(re.sub(r"_pl_\d+_", "_pl_400_", name))
    assert mine["numberOfValues"] > 1_000_000
    assert mine.pop("N") > theirs.pop("N")
    assert mine.pop("numberOfValues") > theirs.pop("numberOfValues")
    assert mine == theirs


def test_every_eccodes_template_is_listed() -> None:
    found = _template_names()
    assert {"GRIB1", "GRIB2", "regular_ll_sfc_grib1", "regular_ll_sfc_grib2"} <= found
    listed = [*TEMPLATES_EQUAL, *TEMPLATES_NOT_GRIB, *TEMPLATES_REFUSED, *TEMPLATES_HUGE]
    assert len(listed) == len(set(listed))
    assert found == set(listed)


def test_stored_value_equal_to_missing_value_is_a_value(tmp_path: Path) -> None:
    """eta.grb's 250 hPa geopotential height: simple packing, no bitmap, and 9999 gpm
    (its missingValue) at two points, which cfgrib, and so vz, reads as 9999."""
    import eccodes

    kept = []
    with _pygrib("eta.grb").open("rb") as f:
        while (handle := eccodes.codes_grib_new_from_file(f)) is not None:
            try:
                if (
                    eccodes.codes_get(handle, "shortName") == "gh"
                    and eccodes.codes_get(handle, "typeOfLevel") == "isobaricInhPa"
                    and eccodes.codes_get(handle, "level") == 250
                ):
                    assert eccodes.codes_get(handle, "bitmapPresent") == 0
                    assert eccodes.codes_get(handle, "missingValue") == 9999
                    kept.append(eccodes.codes_get_message(handle))
            finally:
                eccodes.codes_release(handle)
    assert len(kept) == 1
    path = tmp_path / "gh250.grib"
    path.write_bytes(kept[0])
    assert _compare(path) == []
    (got,) = _vz(path)
    values = got["gh"].values
    assert not np.isnan(values).any()
    assert (values == 9999).sum() == 2
