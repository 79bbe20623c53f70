"""cfgrib's own sample GRIB files read through vz equal what cfgrib reads (issue 18)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from tests.sample_packages import sdist_members

import vzcore as vc
from vzcore.errors import VirtualizationError
from vzcore.parsers import GRIBParser

cfgrib = pytest.importorskip("cfgrib")

CFGRIB_VERSION = "0.9.15.1"
SAMPLES = [
    "alternate-scanning.grib",
    "ds.waveh.5.grib",
    "fields_with_missing_values.grib",
    "regular_ll_msl.grib",
    "regular_ll_sfc.grib",
    "step_60m.grib",
    "single_gridpoint.grib",
    "era5-levels-members.grib",
    "era5-single-level-scalar-time.grib",
    "forecast_monthly_ukmo.grib",
    "lambert_grid.grib",
    "multi_param_on_multi_dims.grib",
]
# Not yet covered (differences still open, see the report of branch helper-grib2):
# cams-egg4-monthly, cfrzr_and_cprat, cfrzr_and_cprat_0s, hpa_and_pa (values/vars differ),
# era5-levels-corrupted (vz refuses the whole file, cfgrib skips the bad message), and the
# samples after multi_param_on_multi_dims alphabetically (not tried).

# Samples whose dims differ from cfgrib's on purpose; values are compared flattened.
LAYOUT = {
    # cfgrib has no geography for this grid and gives a flat values axis; vz keeps (y, x)
    "ds.waveh.5.grib": ("y", "x"),
    # cfgrib squeezes the 1 x 1 grid's latitude/longitude to scalars; vz keeps them
    "single_gridpoint.grib": ("time", "step", "latitude", "longitude"),
}

# Flat in cfgrib with alternativeRowScanning set (scanning mode 0x50).
BOUSTROPHEDON = {"ds.waveh.5.grib"}


def _sample(name: str) -> Path:
    files = {p.name: p for p in sdist_members("cfgrib", CFGRIB_VERSION, "tests/sample-data/*")}
    return files[name]


def _groups(group: vc.VirtualGroup) -> Iterator[vc.VirtualGroup]:
    yield group
    for child in group.groups.values():
        yield from _groups(child)


def _vz_variables(path: Path) -> dict[str, xr.DataArray]:
    registry = vc.ObjectStoreRegistry.for_urls([str(path)])
    root = GRIBParser()(str(path), registry)
    out: dict[str, xr.DataArray] = {}
    for group in _groups(root):
        if not any(isinstance(a, vc.VirtualArray) for a in group.arrays.values()):
            continue
        store = vc.ManifestStore(group, registry=registry)
        ds = xr.open_zarr(store, consolidated=False, decode_timedelta=True).load()
        for name in ds.data_vars:
            out[str(name)] = ds[name]
    return out


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_equals_cfgrib(name: str) -> None:
    path = _sample(name)
    got = _vz_variables(path)
    refs = cfgrib.open_datasets(str(path), backend_kwargs={"indexpath": ""})
    try:
        seen = 0
        for ref in refs:
            for var in ref.data_vars:
                want = ref[var].load()
                seen += 1
                assert str(var) in got, f"{name}: vz has no {var}"
                have = got[str(var)]
                if name in LAYOUT:
                    assert have.dims == LAYOUT[name], (name, var)
                    expected = want.values
                    if name in BOUSTROPHEDON:
                        # cfgrib's flat axis is in stored order; vz turns odd rows round
                        expected = expected.reshape(have.shape).copy()
                        expected[1::2] = expected[1::2, ::-1]
                    np.testing.assert_array_equal(
                        have.values.ravel(), expected.ravel(), f"{name}:{var}"
                    )
                    continue
                assert have.dims == want.dims, (name, var)
                np.testing.assert_array_equal(have.values, want.values, f"{name}:{var}")
                for coord in want.coords:
                    if coord == "valid_time":
                        continue  # vz does not make cfgrib's derived valid_time (yet)
                    np.testing.assert_array_equal(
                        have[coord].values, want[coord].values, f"{name}:{var}:{coord}"
                    )
                for key in ("GRIB_paramId", "GRIB_shortName", "units"):
                    if key in want.attrs:
                        assert have.attrs[key] == want.attrs[key], (name, var, key)
        assert seen == len(got), (name, sorted(got))
    finally:
        for ref in refs:
            ref.close()


def test_ds_waveh_missing_values_without_a_bitmap_are_nan() -> None:
    # messages with no bitmap whose points equal missingValue (9999): cfgrib reads NaN
    have = _vz_variables(_sample("ds.waveh.5.grib"))
    values = next(iter(have.values())).values
    assert np.isnan(values).any()
    assert not (values == 9999).any()


def test_spherical_harmonics_is_a_typed_refusal() -> None:
    path = _sample("spherical_harmonics.grib")
    with pytest.raises(VirtualizationError, match="spherical_harmonics"):
        _vz_variables(path)
