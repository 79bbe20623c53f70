"""Laws of `TIFFParser` on TIFFs built byte by byte (tests/tiff_files.py).

1. Any uncompressed image (dtype, byte order, strips or tiles, samples, planar
   configuration) reads back through `ManifestStore` equal to the numpy values it
   was written from.
2. Any corruption of such a file's bytes parses, or fails with a
   `VirtualizationError`; never another exception.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import obstore
import zarr
from hypothesis import given
from hypothesis import strategies as st
from obstore.store import MemoryStore
from tests.tiff_files import PAYLOAD_OFFSET, classic_tiff

import vzcore as vc
from vzcore.parsers import TIFFParser
from vzcore.read import rectilinear_chunks_enabled

_FORMATS = {"u": 1, "i": 2, "f": 3}
_URL = "memory://tiff/image.tif"


def _registry(data: bytes) -> vc.ObjectStoreRegistry:
    store = MemoryStore()
    obstore.put(store, "image.tif", data)
    return vc.ObjectStoreRegistry({"memory://tiff/": store})


@st.composite
def images(draw: st.DrawFn) -> tuple[bytes, np.ndarray[Any, Any]]:
    """An uncompressed TIFF and the values it holds, as tifffile would return them."""
    kind = draw(st.sampled_from("uif"))
    size = draw(st.sampled_from([1, 2, 4, 8] if kind != "f" else [4, 8]))
    byteorder = draw(st.sampled_from("<>"))
    dtype = np.dtype(f"{byteorder}{kind}{size}")
    height, width = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    samples = draw(st.sampled_from([1, 1, 3]))
    planar = draw(st.sampled_from([1, 2])) if samples > 1 else 1
    seed = draw(st.integers(0, 2**16))
    raw = np.random.default_rng(seed).integers(0, 256, height * width * samples * size, "u1")
    values = raw.view(dtype).reshape(
        (samples, height, width) if planar == 2 else (height, width, samples)
    )
    if kind == "f":
        values = np.where(np.isfinite(values), values, 0).astype(dtype)
    planes = list(values) if planar == 2 else [values]
    tiled = draw(st.booleans())
    rows = draw(st.integers(1, height)) if not tiled else 16 * draw(st.integers(1, 2))
    columns = width if not tiled else 16 * draw(st.integers(1, 2))
    segments: list[bytes] = []
    for plane in planes:
        for top in range(0, height, rows):
            for left in range(0, width, columns):
                block = plane[top : top + rows, left : left + columns]
                if tiled:  # edge tiles are stored full-size
                    padded = np.zeros((rows, columns, *block.shape[2:]), dtype)
                    padded[: block.shape[0], : block.shape[1]] = block
                    block = padded
                segments.append(np.ascontiguousarray(block).tobytes())
    offsets = np.cumsum([PAYLOAD_OFFSET] + [len(s) for s in segments[:-1]]).tolist()
    tags: dict[int, Any] = {
        256: (4, [width]),
        257: (4, [height]),
        258: (3, [size * 8] * samples),
        259: (3, [1]),
        262: (3, [1 if samples == 1 else 2]),
        277: (3, [samples]),
        284: (3, [planar]),
        339: (3, [_FORMATS[kind]] * samples),
    }
    if tiled:
        tags |= {322: (4, [columns]), 323: (4, [rows]), 324: (4, offsets)}
        tags[325] = (4, [len(s) for s in segments])
    else:
        tags |= {278: (4, [rows]), 273: (4, offsets), 279: (4, [len(s) for s in segments])}
    data = classic_tiff(tags, b"".join(segments), byteorder=byteorder)
    return data, values[..., 0] if samples == 1 and planar == 1 else values


@given(images())
def test_uncompressed_images_read_back_equal(image: tuple[bytes, np.ndarray[Any, Any]]) -> None:
    data, values = image
    registry = _registry(data)
    group = TIFFParser()(_URL, registry)
    with rectilinear_chunks_enabled():
        store = vc.ManifestStore(group, registry=registry)
        got = zarr.open_array(store, path="0", mode="r")[...]
    assert got.dtype == values.dtype.newbyteorder("=")
    np.testing.assert_array_equal(got, values)


@given(images(), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8))
def test_corrupt_bytes_parse_or_raise_a_typed_error(
    image: tuple[bytes, np.ndarray[Any, Any]], changes: list[tuple[int, int]]
) -> None:
    data = bytearray(image[0])
    for position, value in changes:
        data[4 + position % (len(data) - 4)] = value  # keep the magic: detection still says TIFF
    with contextlib.suppress(vc.VirtualizationError):
        TIFFParser()(_URL, _registry(bytes(data)))
