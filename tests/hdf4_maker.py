"""HDF4 files written with pyhdf (the test reference), with chunking through libmfhdf.

pyhdf does not wrap ``SDsetchunk``; the library it ships does, so chunked files are
made by calling it with ctypes on the same library instance pyhdf uses.
"""

from __future__ import annotations

import ctypes
import glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

_MAX_VAR_DIMS = 32
_COMP_RLE, _COMP_DEFLATE = 1, 4
_HDF_CHUNK, _HDF_COMP = 1, 3


class _ChunkDef(ctypes.Structure):
    # HDF_CHUNK_DEF: chunk_lengths[MAX_VAR_DIMS], then comp_type, model_type, comp_info
    _fields_ = [("values", ctypes.c_int32 * 64)]


def _library() -> ctypes.CDLL:
    import pyhdf

    libs = os.path.join(os.path.dirname(pyhdf.__file__), os.pardir, "pyhdf.libs")
    found = glob.glob(os.path.join(libs, "libmfhdf*"))
    if not found:  # pragma: no cover - a pyhdf built against a system library
        return ctypes.CDLL("libmfhdf.so")
    return ctypes.CDLL(found[0])


def make_dfsd(path: Path, arrays: Sequence[np.ndarray[Any, Any]]) -> None:
    """A file of ``arrays`` written by the old DFSD interface (``DFSDadddata``): NDG
    groups and no SD interface ``CDF0.0`` Vgroup, as HDF 3 wrote them. pyhdf's SD
    interface reads them as ``Data-Set-<ref>`` with ``fakeDim`` dimensions."""
    import pyhdf
    import pyhdf.SD  # loads the libraries libdf needs

    libs = os.path.join(os.path.dirname(pyhdf.__file__), os.pardir, "pyhdf.libs")
    df = ctypes.CDLL(glob.glob(os.path.join(libs, "libdf*"))[0])
    types = {np.dtype("f4"): 5, np.dtype("f8"): 6, np.dtype("i4"): 24, np.dtype("i2"): 22}
    for values in arrays:
        native = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("="))
        dims = (ctypes.c_int32 * native.ndim)(*native.shape)
        df.DFSDclear()
        if df.DFSDsetNT(types[native.dtype]) != 0:
            raise RuntimeError("DFSDsetNT failed")
        data = native.ctypes.data_as(ctypes.c_void_p)
        if df.DFSDadddata(str(path).encode(), native.ndim, dims, data) != 0:
            raise RuntimeError("DFSDadddata failed")


def set_chunk(
    sds: Any, chunk_shape: Sequence[int], *, deflate: int | None = None, rle: bool = False
) -> None:
    """Make a pyhdf SDS chunked (and deflated at ``deflate`` level, or RLE-compressed)
    before it is written."""
    definition = _ChunkDef()
    for axis, length in enumerate(chunk_shape):
        definition.values[axis] = length
    flags = _HDF_CHUNK
    if rle:
        definition.values[_MAX_VAR_DIMS] = _COMP_RLE
        flags = _HDF_COMP
    elif deflate is not None:
        definition.values[_MAX_VAR_DIMS] = _COMP_DEFLATE
        definition.values[_MAX_VAR_DIMS + 2] = deflate
        flags = _HDF_COMP
    status = _library().SDsetchunk(ctypes.c_int32(sds._id), definition, ctypes.c_int32(flags))
    if status != 0:
        raise RuntimeError(f"SDsetchunk failed for chunk shape {tuple(chunk_shape)}")


def set_nbit(sds: Any, start_bit: int, bit_len: int) -> None:
    """Make a pyhdf SDS NBIT-packed (pyhdf's ``setcompress`` cannot) before it is written."""
    status = _library().SDsetnbitdataset(
        ctypes.c_int32(sds._id), *(ctypes.c_int32(v) for v in (start_bit, bit_len, 0, 0))
    )
    if status < 0:  # it returns an access id
        raise RuntimeError(f"SDsetnbitdataset failed for bits {start_bit}, {bit_len}")


def make_sample(path: Path) -> None:
    """A file with every layout the parser references: see the comments per data set."""
    from pyhdf.SD import SD, SDC

    sd = SD(str(path), SDC.WRITE | SDC.CREATE)
    sd.title = "sample"
    sd.attr("numbers").set(SDC.INT32, [1, 2, 3])
    sd.attr("ratio").set(SDC.FLOAT64, 0.5)
    # contiguous, with a fill value, attributes and a dimension scale with attributes
    temp = sd.create("temperature", SDC.FLOAT32, (3, 4))
    temp.units = "K"
    temp.setfillvalue(-9.0)
    lat = temp.dim(0)
    lat.setname("lat")
    lat.setscale(SDC.FLOAT64, [10.0, 20.0, 30.0])
    lat.attr("units").set(SDC.CHAR8, "degrees_north")
    temp.dim(1).setname("lon")
    temp[:] = np.arange(12, dtype=np.float32).reshape(3, 4)
    temp.endaccess()
    # several dtypes, contiguous, sharing the "lon" dimension
    rng = np.random.default_rng(4)
    for name, code, dtype in [
        ("i8", SDC.INT8, "i1"),
        ("u8", SDC.UINT8, "u1"),
        ("i16", SDC.INT16, "i2"),
        ("u16", SDC.UINT16, "u2"),
        ("i32", SDC.INT32, "i4"),
        ("u32", SDC.UINT32, "u4"),
        ("f64", SDC.FLOAT64, "f8"),
    ]:
        sds = sd.create(name, code, (2, 4))
        sds.dim(1).setname("lon")
        info = np.iinfo(dtype) if dtype[0] in "iu" else None
        values = (
            rng.integers(info.min, info.max, (2, 4), endpoint=True).astype(dtype)
            if info is not None
            else rng.normal(size=(2, 4))
        )
        sds[:] = values
        sds.endaccess()
    # chunked, only the first chunk written: the rest is fill
    partial = sd.create("partial", SDC.INT16, (5, 7))
    set_chunk(partial, (2, 3))
    partial[0:2, 0:3] = np.ones((2, 3), np.int16)
    partial.endaccess()
    # chunked, partial edge chunks, with a fill value
    chunked = sd.create("chunked_u8", SDC.UINT8, (5, 7))
    chunked.setfillvalue(7)
    set_chunk(chunked, (2, 3))
    chunked[1:5, 2:6] = np.arange(16, dtype=np.uint8).reshape(4, 4)
    chunked.endaccess()
    # chunked and deflated
    deflated = sd.create("chunked_deflate", SDC.FLOAT64, (6, 5, 4))
    set_chunk(deflated, (4, 2, 3), deflate=6)
    deflated[:] = np.linspace(0, 1, 120).reshape(6, 5, 4)
    deflated.endaccess()
    # deflated, not chunked
    zipped = sd.create("deflate", SDC.INT32, (5, 7))
    zipped.setcompress(SDC.COMP_DEFLATE, value=6)
    zipped[:] = np.arange(35, dtype=np.int32).reshape(5, 7)
    zipped.endaccess()
    # unlimited dimension, written at once: one linked block
    unlimited = sd.create("unlimited", SDC.FLOAT64, (0, 3))
    unlimited.dim(0).setname("time")
    unlimited[0:4] = np.arange(12.0).reshape(4, 3)
    unlimited.endaccess()
    # never written: all fill
    sd.create("empty", SDC.FLOAT32, (2, 2)).endaccess()
    sd.end()


def make_appended(path: Path) -> None:
    """An unlimited data set appended to between writes of another: separate linked blocks."""
    from pyhdf.SD import SD, SDC

    sd = SD(str(path), SDC.WRITE | SDC.CREATE)
    grow = sd.create("grow", SDC.INT32, (0, 4))
    other = sd.create("other", SDC.INT32, (0, 4))
    rows = np.arange(800, dtype=np.int32).reshape(200, 4)
    for step in range(3):  # each write longer than a linked block
        grow[200 * step : 200 * (step + 1)] = rows + 1000 * step
        other[200 * step : 200 * (step + 1)] = -rows
    grow.endaccess()
    other.endaccess()
    sd.end()


def read_all(path: Path) -> dict[str, np.ndarray[Any, Any]]:
    """Every data set of a file as pyhdf reads it."""
    from pyhdf.SD import SD

    sd = SD(str(path))
    try:
        return {name: np.asarray(sd.select(name).get()) for name in sd.datasets()}
    finally:
        sd.end()


def write_native(sds: Any, values: np.ndarray[Any, Any]) -> None:
    """Write native-order ``values`` into a pyhdf SDS of any type through ``SDwritedata``.

    pyhdf refuses little-endian (``DFNT_LITEND``) types; libmfhdf converts itself.
    """
    native = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("="))
    rank = native.ndim
    start = (ctypes.c_int32 * rank)(*([0] * rank))
    edges = (ctypes.c_int32 * rank)(*native.shape)
    status = _library().SDwritedata(
        ctypes.c_int32(sds._id), start, None, edges, native.ctypes.data_as(ctypes.c_void_p)
    )
    if status != 0:
        raise RuntimeError("SDwritedata failed")
