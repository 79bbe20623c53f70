"""CF-encoded files, split along time, virtualized, concatenated and written, decode like
``xr.open_mfdataset`` of the files.

Random encodings of one variable (int16 or float32 storage; ``scale_factor``,
``add_offset`` and a fill value each present or not, the fill value recorded as
``_FillValue``, as ``missing_value`` or only as the HDF5 fill value; fill values
among the data and whole time steps of fill never written), random values, random splits of the
time axis into 1 to 4 files and a random calendar. The virtual datasets are joined
with ``xr.concat``, saved with a random vz writer, reopened with plain xarray and
compared — dtypes, values and attributes — with ``xr.open_mfdataset``.
"""

from __future__ import annotations

import itertools
import math
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tests.cf_corpus import (
    CALENDARS,
    WRITERS,
    PackedSpec,
    assert_decodes_like,
    reopen,
    write,
    write_packed_series,
)

import vzcore as vc
import vzxarray as vx
from vzcore.parsers import HDFParser

MINIMAL = {"data_vars": "minimal", "coords": "minimal", "compat": "override"}
NX = 4

FILLS = {"i2": (-32767, -1, 0, 99), "f4": (-999.0, 1e20, float("nan"), 0.0)}


@st.composite
def specs(draw: st.DrawFn) -> PackedSpec:
    dtype = draw(st.sampled_from(["i2", "f4"]))
    return PackedSpec(
        dtype=dtype,
        scale_factor=draw(st.none() | st.sampled_from([0.01, 0.5, 2.0, 1e-4])),
        add_offset=draw(st.none() | st.sampled_from([0.0, 10.0, -273.15, 1000.5])),
        attribute_dtype="f8",  # float32 attributes: tests/test_differential.py
        fill_value=draw(st.none() | st.sampled_from(FILLS[dtype])),
        chunk_x=draw(st.sampled_from([1, 2, 4])),
        fill_kind=draw(st.sampled_from(["_FillValue", "hdf5", "missing_value"])),
    )


@st.composite
def raw_values(draw: st.DrawFn, spec: PackedSpec, n_time: int) -> np.ndarray:
    if spec.dtype == "i2":
        values = draw(
            st.lists(st.integers(-2000, 2000), min_size=n_time * NX, max_size=n_time * NX)
        )
    else:
        values = draw(
            st.lists(
                st.floats(-1e4, 1e4, width=32, allow_nan=False),
                min_size=n_time * NX,
                max_size=n_time * NX,
            )
        )
    raw = np.array(values, dtype=spec.dtype).reshape(n_time, NX)
    if spec.fill_value is not None:
        fill = np.array(spec.fill_value, spec.dtype)
        mask = draw(st.lists(st.booleans(), min_size=raw.size, max_size=raw.size))
        raw[np.array(mask).reshape(raw.shape)] = fill
        empty = draw(st.lists(st.integers(0, n_time - 1), max_size=2))  # never written
        raw[empty] = fill
    return raw


@st.composite
def splits(draw: st.DrawFn, n_time: int) -> list[int]:
    n_files = draw(st.integers(1, min(4, n_time)))
    cuts = (
        sorted(
            draw(st.sets(st.integers(1, n_time - 1), min_size=n_files - 1, max_size=n_files - 1))
        )
        if n_files > 1
        else []
    )
    bounds = [0, *cuts, n_time]
    return [b - a for a, b in itertools.pairwise(bounds)]


@st.composite
def cases(draw: st.DrawFn) -> tuple[PackedSpec, np.ndarray, list[int], str, str]:
    spec = draw(specs())
    n_time = draw(st.integers(1, 8))
    raw = draw(raw_values(spec, n_time))
    steps = draw(splits(n_time))
    calendar = draw(st.sampled_from(CALENDARS))
    writer = draw(st.sampled_from(["kerchunk-dict", *WRITERS]))
    return spec, raw, steps, calendar, writer


# Always tried: a step of fill never written, the fill value known only to HDF5.
HDF5_FILL_ONLY = (
    PackedSpec("f4", 0.5, None, "f8", -999.0, chunk_x=2, fill_kind="hdf5"),
    np.array([[1, 2, 3, 4], [-999, -999, -999, -999], [5, -999, 6, 7]], dtype="f4"),
    [2, 1],
    "noleap",
    "kerchunk-dict",
)

# Missing chunks of NaN in packed float data: written out, not carried by fill_value
# (which xarray reads as _FillValue, keeping float32 where add_offset gives float64).
NAN_FILL_PACKED = (
    PackedSpec("f4", None, 0.0, "f8", np.nan, chunk_x=1, fill_kind="hdf5"),
    np.array([[np.nan] * 4, [0.0] * 4, [0.0] * 4, [0.0] * 4], dtype="f4"),
    [4],
    "standard",
    "kerchunk-dict",
)


@settings(max_examples=15, deadline=None)
@given(cases())
@example(HDF5_FILL_ONLY)
@example(NAN_FILL_PACKED)
def test_concatenated_and_written_decodes_like_open_mfdataset(
    case: tuple[PackedSpec, np.ndarray, list[int], str, str],
) -> None:
    spec, raw, steps, calendar, writer = case
    assert math.fsum(steps) == raw.shape[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp).resolve()
        data = folder / "data"
        data.mkdir()
        paths = write_packed_series(data, spec, raw, steps, calendar=calendar)
        registry = vc.ObjectStoreRegistry.for_urls([f"file://{data}/x"])
        virtual = xr.concat(
            [
                vx.open_virtual_dataset(f"file://{p}", registry=registry, parser=HDFParser())
                for p in paths
            ],
            dim="time",
            **MINIMAL,
        )
        with xr.open_mfdataset(paths, combine="nested", concat_dim="time", **MINIMAL) as ds:
            expected = ds.load()
        written = write(virtual, writer, folder, data, registry)
        assert_decodes_like(reopen(writer, written, registry), expected)
