"""Inputs that differ are refused, never merged: the error names the variable, both files
and both values, and nothing is written.

Files that differ in one way each (packing, dtype as in GOES-16 vs GOES-17 files,
fill value) go through every combine path and the command line.
"""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

import vzcore as vc
import vzxarray as vx
from vzcore.parsers import HDFParser
from vzxarray.cli import main


def _write(
    path: Path,
    *,
    start: int,
    scale_factor: float = 0.01,
    dtype: str = "i2",
    fill_value: int = -999,
) -> Path:
    """Two steps of a packed variable ``v`` and an unpacked ``plain`` along ``time``."""
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", None)
        nc.createDimension("x", 3)
        time = nc.createVariable("time", "f8", ("time",))
        time.units = "days since 2000-01-01"
        packed = nc.createVariable(
            "v", dtype, ("time", "x"), fill_value=fill_value, chunksizes=(1, 3)
        )
        packed.scale_factor = scale_factor
        packed.add_offset = 10.0
        packed.set_auto_maskandscale(False)
        plain = nc.createVariable("plain", "f4", ("time", "x"), chunksizes=(1, 3))
        time[:] = np.arange(2) + start
        packed[:] = np.arange(6).reshape(2, 3)
        plain[:] = np.ones((2, 3))
    return path


CASES = {
    "scale_factor": (
        vc.EncodingMismatch,
        {"scale_factor": 0.02},
        ["'scale_factor': 0.02", "'scale_factor': 0.01"],
    ),
    "dtype": (vc.DtypeMismatch, {"dtype": "i4"}, ["int32", "int16"]),
    "fill_value": (
        vc.EncodingMismatch,
        {"fill_value": -1},
        ["'_FillValue': -1", "'_FillValue': -999"],
    ),
}


@pytest.fixture
def pair(
    tmp_path: Path, request: pytest.FixtureRequest
) -> tuple[list[Path], vc.ObjectStoreRegistry]:
    _, odd, _ = CASES[request.param]
    paths = [_write(tmp_path / "a.nc", start=0), _write(tmp_path / "b.nc", start=2, **odd)]
    return paths, vc.ObjectStoreRegistry.for_urls(paths)


def _assert_names_everything(message: str, paths: list[Path], values: list[str]) -> None:
    assert message.startswith("variable 'v': ") or "variable 'v'" in message, message
    for path in paths:
        assert str(path) in message, message
    for value in values:
        assert value in message, message


COMBINES = {
    "concat": lambda ds: xr.concat(ds, dim="time", coords="minimal", compat="override"),
    "combine_nested": lambda ds: xr.combine_nested(ds, concat_dim="time"),
    "combine_nested_attrs_dropped": lambda ds: xr.combine_nested(
        [d.drop_attrs() for d in ds], concat_dim="time"
    ),
    "combine_by_coords": lambda ds: xr.combine_by_coords(
        ds, coords="minimal", compat="override", combine_attrs="override"
    ),
}


@pytest.mark.parametrize("combine", COMBINES)
@pytest.mark.parametrize("pair", CASES, indirect=True)
def test_combining_files_that_differ_is_refused(
    pair: tuple[list[Path], vc.ObjectStoreRegistry], combine: str, request: pytest.FixtureRequest
) -> None:
    paths, registry = pair
    error, _, values = CASES[request.node.callspec.params["pair"]]
    datasets = [
        vx.open_virtual_dataset(f"file://{p}", registry=registry, parser=HDFParser()) for p in paths
    ]
    with pytest.raises(error) as info:
        COMBINES[combine](datasets)
    _assert_names_everything(
        str(info.value), paths if error is not vc.DtypeMismatch else paths[:1], values
    )
    if error is vc.DtypeMismatch:
        assert "loadable_variables=" in str(info.value)
        assert "drop_variables=" in str(info.value)


@pytest.mark.parametrize("pair", CASES, indirect=True)
def test_open_virtual_mfdataset_refuses_files_that_differ(
    pair: tuple[list[Path], vc.ObjectStoreRegistry], request: pytest.FixtureRequest
) -> None:
    paths, registry = pair
    error, _, _ = CASES[request.node.callspec.params["pair"]]
    with pytest.raises(error) as info:
        vx.open_virtual_mfdataset(
            [f"file://{p}" for p in paths],
            registry=registry,
            parser=HDFParser(),
            combine="nested",
            concat_dim="time",
        )
    assert "'v'" in str(info.value)
    assert str(paths[0]) in str(info.value)


@pytest.mark.parametrize("fmt", ["kerchunk-json", "kerchunk-parquet", "icechunk"])
@pytest.mark.parametrize("pair", ["dtype", "scale_factor"], indirect=True)
def test_vz_virtualize_refuses_files_that_differ_and_writes_nothing(
    pair: tuple[list[Path], vc.ObjectStoreRegistry],
    fmt: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As `vz virtualize` of GOES-16 and GOES-17 files, whose DQF variables differ in dtype."""
    paths, _ = pair
    out = tmp_path / "out.store"
    args = ["virtualize", *map(str, paths), "--concat-dim", "time", "--out", str(out)]
    assert main([*args, "--format", fmt]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vz: error: ")
    assert err.count("\n") == 1
    assert "variable 'v'" in err
    assert str(paths[0]) in err
    assert not out.exists()
    assert {p.name for p in tmp_path.iterdir()} == {p.name for p in paths}  # nothing half-written


@pytest.mark.parametrize("pair", ["scale_factor"], indirect=True)
def test_dropping_the_attributes_of_one_side_is_still_refused(
    pair: tuple[list[Path], vc.ObjectStoreRegistry],
) -> None:
    """The encoding is the array's: dropping attributes or encodings hides nothing."""
    paths, registry = pair
    first, second = (
        vx.open_virtual_dataset(f"file://{p}", registry=registry, parser=HDFParser()) for p in paths
    )
    second["v"].attrs = {}
    second["v"].encoding = {}
    with pytest.raises(vc.EncodingMismatch):
        xr.concat([first, second], dim="time", coords="minimal", compat="override")


def test_an_attribute_contradicting_the_encoding_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.nc", start=0)
    registry = vc.ObjectStoreRegistry.for_urls([path])
    ds = vx.open_virtual_dataset(f"file://{path}", registry=registry, parser=HDFParser())
    ds["v"].attrs["scale_factor"] = 5.0
    with pytest.raises(vc.InvalidMetadataError, match=r"variable 'v': .*scale_factor=5.0.*0.01"):
        ds.vz.to_kerchunk()
