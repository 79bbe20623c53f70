"""cfgrib's sample GRIB files (its sdist), read through `ManifestStore`, compared with cfgrib.

For every sample, every variable of every dataset `cfgrib.open_datasets` gives must be
in one of vz's hypercubes with the same dimensions and shape, equal values (NaN where
cfgrib has NaN) and equal coordinates. Samples vz refuses are
listed with the reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from tests.sample_packages import sdist_members

import vzcore as vc
from vzcore.parsers import GRIBFormatError, GRIBParser

CFGRIB = ("cfgrib", "0.9.15.1")

EQUAL = (
    "alternate-scanning.grib", "cams-egg4-monthly.grib", "cfrzr_and_cprat.grib",
    "cfrzr_and_cprat_0s.grib", "ds.waveh.5.grib",
    "era5-levels-members.grib", "era5-single-level-scalar-time.grib",
    "fields_with_missing_values.grib", "forecast_monthly_ukmo.grib", "hpa_and_pa.grib",
    "lambert_grid.grib", "multi_param_on_multi_dims.grib", "reduced_gg.grib",
    "regular_gg_ml.grib", "regular_gg_ml_g2.grib", "regular_gg_pl.grib", "regular_gg_sfc.grib",
    "regular_ll_msl.grib", "regular_ll_sfc.grib", "regular_ll_wrong_increment.grib",
    "scanning_mode_64.grib", "single_gridpoint.grib", "soil-surface-level-mix.grib",
    "step_60m.grib", "t_analysis_and_fc_0.grib", "t_on_different_level_types.grib",
    "tp_on_different_grid_resolutions.grib", "uv_on_different_levels.grib",
)  # fmt: skip

REFUSED = {
    "era5-levels-corrupted.grib": "does not end in 7777",  # cfgrib skips the bad message
    "regular_gg_wrong_increment.grib": "cannot give the grid",  # cfgrib refuses it too
    "spherical_harmonics.grib": "cannot give the grid's points",  # gridType sh: no points
}

# Too big to read whole (cfgrib too gives a sparse 124 x 124 x 92 cube): compared by slices.
SLICED = ("ncep-seasonal-monthly.grib",)


def _sample(name: str) -> Path:
    found = sdist_members(*CFGRIB, f"tests/sample-data/{name}")
    assert found, f"{name} is not in the cfgrib sdist"
    return found[0]


def _vz(path: Path) -> list[xr.Dataset]:
    registry = vc.ObjectStoreRegistry.for_urls([str(path)])
    group = GRIBParser()(str(path), registry)
    store = vc.ManifestStore(group, registry=registry)
    names = list(group.groups) or [None]
    return [
        xr.open_zarr(store, group=n, consolidated=False, decode_timedelta=True, chunks=None)
        for n in names
    ]


def _same(got: xr.Dataset, ref: xr.Dataset, name: str) -> bool:
    a, b = got[name], ref[name]
    if a.dims != b.dims or a.shape != b.shape:
        return False
    if not np.array_equal(a.values, b.values, equal_nan=True):
        return False
    for coord in b.coords:
        if coord == "valid_time":
            continue  # vz gives no valid_time coordinate (time + step say it)
        if coord not in got.coords:
            return False
        if not np.array_equal(np.asarray(got[coord].values), np.asarray(ref[coord].values)):
            return False
    return all(a.attrs.get(k) == b.attrs.get(k) for k in ("GRIB_paramId", "units", "long_name"))


def _compare(path: Path) -> list[str]:
    import cfgrib

    refs = cfgrib.open_datasets(str(path), indexpath="")
    got = _vz(path)
    return [
        f"{name}{ref[name].dims}"
        for ref in refs
        for name in ref.data_vars
        if not any(name in g.data_vars and _same(g, ref, str(name)) for g in got)
    ]


@pytest.mark.parametrize("name", EQUAL)
def test_sample_equals_cfgrib(name: str) -> None:
    assert _compare(_sample(name)) == []


def test_sparse_seasonal_cube_equals_cfgrib_on_slices() -> None:
    """ncep-seasonal-monthly: number x time x step is a sparse cube in cfgrib as in vz.

    The cube has 1.4 M positions of which a few hundred hold a message; the layout and
    coordinates are compared whole, values on the slices that hold messages and one hole.
    """
    import cfgrib

    path = _sample(SLICED[0])
    refs = cfgrib.open_datasets(str(path), indexpath="")
    registry = vc.ObjectStoreRegistry.for_urls([str(path)])
    tree = GRIBParser()(str(path), registry)
    got = _vz(path)
    checked = 0
    for ref in refs:
        for name in ref.data_vars:
            (mine,) = [g for g in got if name in g.data_vars]
            a, b = mine[name], ref[name]
            assert a.dims == b.dims
            assert a.shape == b.shape
            for coord in b.coords:
                if coord != "valid_time":
                    assert np.array_equal(mine[coord].values, ref[coord].values), coord
            manifest = tree[str(name)].manifest
            present = np.argwhere(~manifest.missing_mask().reshape(manifest.grid))
            assert 0 < len(present) < manifest.n_chunks
            pairs = {tuple(int(k) for k in row[:2]) for row in present[:: len(present) // 6 + 1]}
            holes = np.argwhere(manifest.missing_mask().reshape(manifest.grid)[:, :, 0, 0, 0])
            pairs.add(tuple(int(k) for k in holes[0]))
            for i, j in sorted(pairs):
                where = {a.dims[0]: i, a.dims[1]: j}
                np.testing.assert_array_equal(a[where].values, b[where].values)
                checked += int(np.isfinite(b[where].values).sum())
    assert checked > 0


def assert_refused(path: Path, reason: str) -> None:
    """vz refuses the file with a `GRIBFormatError` naming it and matching ``reason``."""
    with pytest.raises(GRIBFormatError, match=reason) as info:
        _vz(path)
    assert path.name in str(info.value)


@pytest.mark.parametrize("name", REFUSED)
def test_refused_with_a_typed_error(name: str) -> None:
    assert_refused(_sample(name), REFUSED[name])


def test_every_sample_is_listed() -> None:
    names = {p.name for p in sdist_members(*CFGRIB, "tests/sample-data/*.grib")}
    assert names == {*EQUAL, *REFUSED, *SLICED}


def test_values_equal_to_missing_value_without_a_bitmap_are_nan() -> None:
    """ds.waveh.5: no bitmap, 9999 (its missingValue) read NaN by cfgrib; vz the same.

    A Mercator grid is a flat ``values`` axis in ecCodes' stored order, as in cfgrib.
    """
    import cfgrib
    import eccodes

    path = _sample("ds.waveh.5.grib")
    (ref,) = cfgrib.open_datasets(str(path), indexpath="")
    (got,) = _vz(path)
    with path.open("rb") as f:
        handle = eccodes.codes_grib_new_from_file(f)
        try:
            assert eccodes.codes_get(handle, "bitmapPresent") == 0
            expected = eccodes.codes_get_values(handle).astype(np.float32)
            expected[expected == eccodes.codes_get(handle, "missingValue")] = np.nan
        finally:
            eccodes.codes_release(handle)
    values = got["shww"].values.ravel()
    assert np.isnan(values).sum() == np.isnan(ref["shww"].values).sum() > 0
    np.testing.assert_array_equal(values, expected)
