"""HDF4Parser on real HDF4 files from public packages, against pyhdf.

VirtualiZarr's wheel ships a real MODIS fire product (``MOD14.hdf4``, 30 SDS, 28 of
them empty along an unlimited dimension) and ``synthetic_fires.hdf4``. Every SDS goes
through HDF4Parser -> ManifestStore -> zarr and must equal pyhdf's
``SD(path).select(name).get()``: values, dtype, shape, dimension names, attributes and
fill value. pyhdf cannot read the empty SDS (``SDreaddata failure``); for those vz must
give a 0-length array of the dtype and shape the headers declare (pyhdf's ``info()``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr
from tests.cf_corpus import icechunk_repository
from tests.sample_packages import wheel_members

import vzcore as vc
import vzxarray as vx
from vzcore.parsers import HDF4Parser, detect_parser

pytest.importorskip("pyhdf")

# pyhdf's SDC type codes -> numpy (the HDF4 number types the samples use, and more).
_TYPES = {4: "S1", 5: ">f4", 6: ">f8", 20: "i1", 21: "u1", 22: ">i2", 23: ">u2", 24: ">i4",
          25: ">u4"}  # fmt: skip
# What the SD interface fills with when an SDS has no _FillValue (netCDF-2's fills, by
# the signed type of the same size; checked on unwritten data in test_hdf4.py).
_DEFAULT_FILLS = {1: -127, 2: -32767, 4: -2147483647}


@pytest.fixture(scope="module")
def samples() -> dict[str, Path]:
    found = wheel_members("virtualizarr", "2.8.0", "virtualizarr/tests/data/*.hdf4")
    by_name = {path.name: path for path in found}
    assert set(by_name) == {"MOD14.hdf4", "synthetic_fires.hdf4"}
    return by_name


def _open(path: Path) -> tuple[vc.VirtualGroup, vc.ObjectStoreRegistry]:
    registry = vc.ObjectStoreRegistry.for_urls([str(path)])
    return HDF4Parser()(f"file://{path}", registry), registry


def _pyhdf(path: Path) -> dict[str, dict[str, Any]]:
    """Per SDS what pyhdf says: header (shape, dtype, dims, attributes, fill) and values."""
    from pyhdf.error import HDF4Error
    from pyhdf.SD import SD

    sd = SD(str(path))
    found: dict[str, dict[str, Any]] = {}
    for name in sd.datasets():
        sds = sd.select(name)
        _, rank, dims, kind, _ = sds.info()
        shape = tuple(dims) if isinstance(dims, list) else (dims,)
        try:
            values: np.ndarray[Any, Any] | None = np.asarray(sds.get())
        except (HDF4Error, ValueError):
            values = None  # pyhdf cannot read an SDS that has no data yet
        try:
            fill = sds.getfillvalue()
        except HDF4Error:
            fill = None
        found[name] = {
            "shape": shape,
            "dtype": np.dtype(_TYPES[kind]),
            "dims": tuple(sds.dim(i).info()[0] for i in range(rank)),
            "attributes": sds.attributes(),
            "fill": fill,
            "values": values,
        }
        sds.endaccess()
    found[""] = {"attributes": sd.attributes()}
    sd.end()
    return found


def _same_attributes(ours: dict[str, Any], theirs: dict[str, Any], where: str) -> None:
    assert sorted(ours) == sorted(theirs), where
    for key, value in theirs.items():
        expected = tuple(value) if isinstance(value, list) else value
        assert ours[key] == expected, (where, key)


@pytest.mark.parametrize("name", ["MOD14.hdf4", "synthetic_fires.hdf4"])
def test_every_sds_equals_pyhdf(samples: dict[str, Path], name: str) -> None:
    path = samples[name]
    group, registry = _open(path)
    assert isinstance(detect_parser(f"file://{path}", registry), HDF4Parser)
    store = vc.ManifestStore(group, registry=registry)
    expected = _pyhdf(path)
    _same_attributes(dict(group.attributes), expected.pop("")["attributes"], name)
    assert sorted(group.arrays) == sorted(expected)
    for sds, facts in expected.items():
        metadata = group[sds].metadata
        got = np.asarray(zarr.open_array(store, path=sds, mode="r")[...])
        assert got.shape == metadata.shape == facts["shape"], sds
        assert got.dtype == facts["dtype"].newbyteorder("="), sds
        assert metadata.dimension_names == facts["dims"], sds
        # CF keys (_FillValue, scale_factor, time units) live in the encoding
        stored = {**metadata.attributes, **metadata.encoding}
        _same_attributes(stored, facts["attributes"], sds)
        if facts["fill"] is not None:
            assert metadata.fill_value == facts["fill"], sds
        else:
            signed = np.array(_DEFAULT_FILLS.get(got.dtype.itemsize, 0), f"i{got.itemsize}")
            default = np.float32(9.9692099683868690e36) if got.dtype.kind == "f" else signed
            assert np.asarray(metadata.fill_value).tobytes() == default.tobytes(), sds
        if facts["values"] is None:
            assert got.size == 0, sds  # only the empty SDS are unreadable by pyhdf
        else:
            assert facts["values"].dtype == got.dtype, sds
            np.testing.assert_array_equal(got, facts["values"], err_msg=sds)


def test_mod14_has_real_values_and_empty_fire_tables(samples: dict[str, Path]) -> None:
    group, registry = _open(samples["MOD14.hdf4"])
    store = vc.ManifestStore(group, registry=registry)
    mask = np.asarray(zarr.open_array(store, path="fire mask", mode="r")[...])
    assert mask.shape == (2030, 1354)
    assert set(np.unique(mask)) <= set(range(10))
    assert len(np.unique(mask)) > 2
    empty = [name for name, array in group.arrays.items() if array.metadata.shape == (0,)]
    assert len(empty) == 27
    assert all(name.startswith("FP_") for name in empty)
    assert all(group[n].metadata.dimension_names == ("number_of_active_fires",) for n in empty)
    # MOD14 is plain SD (no HDF-EOS2 StructMetadata): its dimension names are the SDS's own.
    assert not any(key.startswith("StructMetadata") for key in group.attributes)


_KERCHUNK_READ = (
    "import sys, fsspec, zarr, numpy as np\n"
    "fs = fsspec.filesystem('reference', fo=sys.argv[1], remote_protocol='file')\n"
    "root = zarr.open_group(zarr.storage.FsspecStore.from_mapper(fs.get_mapper('')), mode='r')\n"
    "np.savez(sys.argv[2], **{k: np.asarray(root[k][...]) for k in sys.argv[3:]})\n"
)


def test_mod14_through_xarray_kerchunk_and_icechunk(
    samples: dict[str, Path], tmp_path: Path
) -> None:
    path = samples["MOD14.hdf4"]
    expected = {n: f for n, f in _pyhdf(path).items() if n and f["values"] is not None}
    registry = vc.ObjectStoreRegistry.for_urls([str(path)])
    ds = vx.open_virtual_dataset(f"file://{path}", registry=registry, parser=HDF4Parser())
    assert ds["fire mask"].dims == ("number_of_scan_lines", "pixels_per_scan_line")
    assert ds["FP_power"].shape == (0,)
    loaded = xr.open_zarr(vc.ManifestStore(ds.vz.to_virtual_group(), registry=registry),
                          consolidated=False, mask_and_scale=False)  # fmt: skip
    for name, facts in expected.items():
        np.testing.assert_array_equal(loaded[name].values, facts["values"], err_msg=name)

    refs = ds.vz.to_kerchunk(tmp_path / "refs.json", format="json")
    out = tmp_path / "kerchunk.npz"
    subprocess.run([sys.executable, "-c", _KERCHUNK_READ, str(refs), str(out), *expected,
                    "FP_power"], check=True, capture_output=True, text=True)  # fmt: skip
    with np.load(out) as read:
        assert read["FP_power"].shape == (0,)
        assert read["FP_power"].dtype.kind == "f"
        for name, facts in expected.items():
            # Kerchunk keeps the file's byte order in the Zarr v2 dtype
            assert read[name].dtype.newbyteorder("=") == facts["values"].dtype, name
            np.testing.assert_array_equal(read[name], facts["values"], err_msg=name)

    repository = icechunk_repository(path.parent)
    session = repository.writable_session("main")
    ds.vz.to_icechunk(session.store)
    session.commit("MOD14")
    root = zarr.open_group(repository.readonly_session("main").store, mode="r")
    assert root["FP_power"].shape == (0,)
    for name, facts in expected.items():
        np.testing.assert_array_equal(root[name][...], facts["values"], err_msg=name)
