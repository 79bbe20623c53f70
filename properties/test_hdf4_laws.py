"""Laws of the HDF4 parser: whatever pyhdf writes reads back equal; bytes after the
magic number are a file or a typed error, never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import obstore
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from obstore.store import MemoryStore

import vzcore as vc
from vzcore.parsers import HDF4Parser
from vzcore.parsers.hdf4_format import HDF4_MAGIC

pytest.importorskip("pyhdf")

_TYPES = {"i1": "INT8", "u1": "UINT8", "i2": "INT16", "u2": "UINT16", "i4": "INT32",
          "u4": "UINT32", "f4": "FLOAT32", "f8": "FLOAT64"}  # fmt: skip


@st.composite
def _cases(draw: st.DrawFn) -> dict[str, Any]:
    shape = tuple(draw(st.lists(st.integers(1, 7), min_size=1, max_size=3)))
    chunks = draw(st.none() | st.tuples(*(st.integers(1, n) for n in shape)))
    deflate = draw(st.none() | st.integers(1, 9))
    starts = tuple(draw(st.integers(0, n - 1)) for n in shape)
    stops = tuple(draw(st.integers(a + 1, n)) for a, n in zip(starts, shape, strict=True))
    return {
        "dtype": draw(st.sampled_from(sorted(_TYPES))),
        "shape": shape,
        "chunks": chunks,
        "deflate": deflate,
        "region": tuple(slice(a, b) for a, b in zip(starts, stops, strict=True)),
        "fill": draw(st.none() | st.integers(0, 100)),
    }


def _write(path: Path, case: dict[str, Any]) -> None:
    from pyhdf.SD import SD, SDC
    from tests.hdf4_maker import set_chunk

    sd = SD(str(path), SDC.WRITE | SDC.CREATE)
    sds = sd.create("v", getattr(SDC, _TYPES[case["dtype"]]), case["shape"])
    if case["fill"] is not None:
        sds.setfillvalue(case["fill"])
    if case["chunks"] is not None:
        set_chunk(sds, case["chunks"], deflate=case["deflate"])
    region = case["region"]
    if case["chunks"] is None and case["deflate"] is not None:
        sds.setcompress(SDC.COMP_DEFLATE, value=case["deflate"])
        region = tuple(slice(0, n) for n in case["shape"])  # written at once, or not at all
    count = int(np.prod([s.stop - s.start for s in region]))
    sds[region] = (
        (np.arange(count) % 100).astype(case["dtype"]).reshape([s.stop - s.start for s in region])
    )
    sds.endaccess()
    sd.end()


@settings(max_examples=40)
@given(case=_cases())
def test_what_pyhdf_writes_reads_back_equal(case: dict[str, Any]) -> None:
    from pyhdf.SD import SD

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "law.hdf"
        _write(path, case)
        sd = SD(str(path))
        expected = np.asarray(sd.select("v").get())
        sd.end()
        registry = vc.ObjectStoreRegistry.for_urls([str(path)])
        group = HDF4Parser()(f"file://{path}", registry)
        store = vc.ManifestStore(group, registry=registry)
        got = zarr.open_array(store, path="v", mode="r")[...]
        np.testing.assert_array_equal(got, expected.reshape(case["shape"]))


@given(tail=st.binary(max_size=400))
def test_bytes_after_the_magic_are_a_typed_error_or_a_group(tail: bytes) -> None:
    store = MemoryStore()
    obstore.put(store, "f.hdf", HDF4_MAGIC + tail)
    registry = vc.ObjectStoreRegistry({"memory://law/": store})
    try:
        HDF4Parser()("memory://law/f.hdf", registry)
    except vc.VirtualizationError as err:
        assert str(err).startswith("memory://law/f.hdf")  # noqa: PT017
