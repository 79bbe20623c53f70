"""Headers and references that declare enormous work are refused before any allocation.

Issue 20 part 2, per format: a header declaring 10**12 chunks, a shape of 2**60
elements, a gigantic inline value. Each is refused with a typed error naming the
file (`LimitExceededError` where a limit of `vzcore.limits` bounds it); a manifest
of 10**12 rows would need 20 TB, so a refusal after allocating could not pass here.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from tests.parser_contract import local_registry

import vzcore as vc
from vzcore.parsers import (
    FITSParser,
    HDFParser,
    KerchunkJSONParser,
    NetCDF3Parser,
    TIFFParser,
    ZarrParser,
)

type Make = Callable[[Path], tuple[str, object]]  # writes a file; its name and its parser


def refused(folder: Path, make: Make) -> vc.VirtualizationError:
    name, parser = make(folder)
    url = f"file://{folder}/{name}"
    with pytest.raises(vc.VirtualizationError) as info:
        parser(url, local_registry(folder))  # type: ignore[operator]
    assert url.rsplit("/", 1)[1] in str(info.value), str(info.value)
    return info.value


# ---- HDF5 ----------------------------------------------------------------------------------


def hdf5_chunks(folder: Path) -> tuple[str, object]:
    import h5py

    with h5py.File(folder / "chunks.h5", "w") as f:
        f.create_dataset("huge", shape=(10**12,), chunks=(1,), dtype="u1")
    return "chunks.h5", HDFParser()


def hdf5_shape(folder: Path) -> tuple[str, object]:
    import h5py

    with h5py.File(folder / "shape.h5", "w") as f:
        f.create_dataset("huge", shape=(2**30, 2**30), chunks=(2**15, 2**15), dtype="u1")
    return "shape.h5", HDFParser()


# ---- netCDF3 -------------------------------------------------------------------------------


def _classic(path: Path) -> bytes:
    from scipy.io import netcdf_file

    with netcdf_file(path, "w", version=2) as ds:
        ds.createDimension("time", None)
        ds.createDimension("x", 4)
        ds.createVariable("temp", "f4", ("time", "x"))[:] = np.ones((3, 4), "f4")
    return path.read_bytes()


def netcdf3_chunks(folder: Path) -> tuple[str, object]:
    data = bytearray(_classic(folder / "records.nc"))
    data[4:8] = struct.pack(">i", 2**31 - 1)  # numrecs: one chunk a record
    (folder / "records.nc").write_bytes(bytes(data))
    return "records.nc", NetCDF3Parser()


def netcdf3_shape(folder: Path) -> tuple[str, object]:
    import netCDF4

    path = folder / "cdf5.nc"
    with netCDF4.Dataset(path, "w", format="NETCDF3_64BIT_DATA") as ds:
        ds.createDimension("abcdefgh", 4)
        ds.createVariable("v", "u1", ("abcdefgh",))[:] = np.arange(4)
    data = bytearray(path.read_bytes())
    at = data.index(b"abcdefgh") + 8  # the dimension's 8-byte length follows its name
    data[at : at + 8] = struct.pack(">q", 2**60)
    path.write_bytes(bytes(data))
    return "cdf5.nc", NetCDF3Parser()


# ---- TIFF ----------------------------------------------------------------------------------


def tiff_chunks(folder: Path) -> tuple[str, object]:
    import tifffile

    path = folder / "tiles.tif"
    tifffile.imwrite(path, np.zeros((32, 32), "u1"), tile=(16, 16))
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        fields = [tags[n] for n in ("ImageWidth", "ImageLength")]
        for tag in fields:  # 2**32 - 1 by 2**32 - 1 pixels: 2**56 tiles
            assert tag.dtype in (3, 4)
            size = 2 if tag.dtype == 3 else 4
            data[tag.valueoffset : tag.valueoffset + size] = b"\xff" * size
    path.write_bytes(bytes(data))
    return "tiles.tif", TIFFParser()


# ---- FITS ----------------------------------------------------------------------------------


def _fits(path: Path, cards: dict[str, int]) -> None:
    from astropy.io import fits

    fits.PrimaryHDU(np.zeros((4, 3), ">i2")).writeto(path)
    data = bytearray(path.read_bytes())
    for key, value in cards.items():
        at = data.index(key.ljust(8).encode() + b"=")
        data[at : at + 80] = f"{key:<8}= {value:>20}".ljust(80).encode()
    path.write_bytes(bytes(data))


def fits_chunks(folder: Path) -> tuple[str, object]:
    _fits(folder / "rows.fits", {"NAXIS2": 10**12})
    return "rows.fits", FITSParser()


def fits_shape(folder: Path) -> tuple[str, object]:
    _fits(folder / "shape.fits", {"NAXIS1": 2**30, "NAXIS2": 2**30})
    return "shape.fits", FITSParser()


# ---- Zarr and Kerchunk ---------------------------------------------------------------------


def _zarray(shape: list[int], chunks: list[int]) -> dict[str, object]:
    return {
        "zarr_format": 2,
        "shape": shape,
        "chunks": chunks,
        "dtype": "<u1",
        "compressor": None,
        "filters": None,
        "fill_value": 0,
        "order": "C",
    }


def _zarr_v2(folder: Path, shape: list[int], chunks: list[int]) -> tuple[str, object]:
    store = folder / "huge.zarr"
    (store / "a").mkdir(parents=True)
    (store / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    (store / "a" / ".zarray").write_text(json.dumps(_zarray(shape, chunks)))
    return "huge.zarr", ZarrParser()


def _zarr_v3(folder: Path, shape: list[int], chunks: list[int]) -> tuple[str, object]:
    store = folder / "huge3.zarr"
    (store / "a").mkdir(parents=True)
    (store / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group"}))
    metadata = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": shape,
        "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunks}},
        "chunk_key_encoding": {"name": "default"},
        "fill_value": 0,
        "codecs": [{"name": "bytes"}],
    }
    (store / "a" / "zarr.json").write_text(json.dumps(metadata))
    return "huge3.zarr", ZarrParser()


def _kerchunk(folder: Path, shape: list[int], chunks: list[int]) -> tuple[str, object]:
    refs = {
        ".zgroup": json.dumps({"zarr_format": 2}),
        "a/.zarray": json.dumps(_zarray(shape, chunks)),
    }
    (folder / "refs.json").write_text(json.dumps({"version": 1, "refs": refs}))
    return "refs.json", KerchunkJSONParser()


CHUNKS: dict[str, Make] = {
    "hdf5": hdf5_chunks,
    "netcdf3": netcdf3_chunks,
    "tiff": tiff_chunks,
    "fits": fits_chunks,
    "zarr_v2": lambda f: _zarr_v2(f, [10**12], [1]),
    "zarr_v3": lambda f: _zarr_v3(f, [10**12], [1]),
    "kerchunk": lambda f: _kerchunk(f, [10**12], [1]),
}
SHAPES: dict[str, Make] = {
    "hdf5": hdf5_shape,
    "netcdf3": netcdf3_shape,
    "fits": fits_shape,
    "zarr_v2": lambda f: _zarr_v2(f, [2**30, 2**30], [2**10, 2**10]),
    "zarr_v3": lambda f: _zarr_v3(f, [2**30, 2**30], [2**10, 2**10]),
    "kerchunk": lambda f: _kerchunk(f, [2**30, 2**30], [2**10, 2**10]),
}


@pytest.mark.parametrize("fmt", sorted(CHUNKS))
def test_a_header_declaring_10_12_chunks_is_refused(tmp_path: Path, fmt: str) -> None:
    refused(tmp_path, CHUNKS[fmt])


@pytest.mark.parametrize("fmt", sorted(SHAPES))
def test_a_2_60_shape_is_refused(tmp_path: Path, fmt: str) -> None:
    refused(tmp_path, SHAPES[fmt])


@pytest.mark.parametrize("make", [_zarr_v2, _zarr_v3, _kerchunk], ids=["v2", "v3", "kerchunk"])
def test_the_chunk_limit_is_configurable(
    tmp_path: Path, make: Callable[[Path, list[int], list[int]], tuple[str, object]]
) -> None:
    name, parser = make(tmp_path, [10**4], [1])
    url = f"file://{tmp_path}/{name}"
    with vc.limits(max_chunks=10**3), pytest.raises(vc.LimitExceededError) as info:
        parser(url, local_registry(tmp_path))  # type: ignore[operator]
    assert info.value.limit == "max_chunks"
    assert name in str(info.value)
    group = parser(url, local_registry(tmp_path))  # type: ignore[operator]
    assert group["a"].metadata.shape == (10**4,)


def test_a_gigantic_inline_value_is_refused(tmp_path: Path) -> None:
    """An inline chunk decoding to more than max_inline_bytes is refused unread."""
    chunk = base64.b64encode(b"\x00" * 4096).decode()
    refs = {
        ".zgroup": json.dumps({"zarr_format": 2}),
        "a/.zarray": json.dumps(_zarray([4096], [4096])),
        "a/0": "base64:" + chunk,
    }
    (tmp_path / "inline.json").write_text(json.dumps({"version": 1, "refs": refs}))
    url = f"file://{tmp_path}/inline.json"
    with vc.limits(max_inline_bytes=1024), pytest.raises(vc.LimitExceededError) as info:
        KerchunkJSONParser()(url, local_registry(tmp_path))
    assert "inline.json" in str(info.value)
    assert info.value.limit == "max_inline_bytes"
