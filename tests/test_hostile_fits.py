"""Hostile FITS files: each is a typed error naming the file, within a second, with no data read."""

from __future__ import annotations

import functools
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import obstore
import pytest
import zarr
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from obstore.store import MemoryStore
from tests.parser_contract import local_registry

import vzcore as vc
from vzcore.errors import ChunkDecodeError
from vzcore.parsers import FITSFormatError, FITSParser
from vzcore.read import rectilinear_chunks_enabled


@pytest.fixture(autouse=True)
def _quiet_astropy() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def card(text: str) -> bytes:
    return text.ljust(80).encode("ascii")


def header(*cards: str, end: bool = True) -> bytes:
    raw = b"".join(card(c) for c in cards) + (card("END") if end else b"")
    return raw.ljust(-(-len(raw) // 2880) * 2880, b" ")


def primary(*cards: str) -> bytes:
    return header("SIMPLE  =                    T", *cards)


def refuse(tmp_path: Path, data: bytes, match: str) -> FITSFormatError:
    path = tmp_path / "hostile.fits"
    path.write_bytes(data)
    start = time.perf_counter()
    with pytest.raises(FITSFormatError, match=match) as info:
        FITSParser()(f"file://{path}", local_registry(tmp_path))
    assert time.perf_counter() - start < 1.0
    assert str(path) in str(info.value)
    return info.value


def compressed_file(tmp_path: Path) -> bytes:
    data = (np.arange(600).reshape(20, 30) % 97).astype("i2")
    comp = fits.CompImageHDU(data, compression_type="RICE_1", tile_shape=(5, 30))
    fits.HDUList([fits.PrimaryHDU(), comp]).writeto(tmp_path / "good.fits")
    return (tmp_path / "good.fits").read_bytes()


def replace_card(data: bytes, keyword: str, value: str) -> bytes:
    """The file with the first card ``keyword`` given a new value."""
    position = next(
        i for i in range(0, len(data), 80) if data[i : i + 8] == keyword.ljust(8).encode()
    )
    new = card(f"{keyword.ljust(8)}= {value.rjust(20)}")
    return data[:position] + new + data[position + 80 :]


CASES: list[tuple[str, Callable[[Path], bytes], str]] = [
    ("not fits", lambda _: b"SIMPLE = T".ljust(2880), "not a FITS file"),
    ("empty", lambda _: b"", "not a FITS file"),
    ("short", lambda _: b"SIMPLE  =                    T", "not a FITS file"),
    (
        "foreign extension",
        lambda _: (
            primary("BITPIX  =                    8", "NAXIS   =                    0")
            + header(
                "XTENSION= 'FOREIGN '",
                "BITPIX  =                    8",
                "NAXIS   =                    0",
                "PCOUNT  =                    0",
                "GCOUNT  =                    1",
            )
        ),
        "FOREIGN extensions are not read",
    ),
    ("no END card", lambda _: header("SIMPLE  =                    T", end=False), "no END card"),
    (
        "truncated header",
        lambda _: (
            primary("BITPIX  =                    8", "NAXIS   =                    0")
            + header("XTENSION= 'IMAGE   '", "BITPIX  =                   16")[:1000]
        ),
        "HDU 1: the header starting at byte 2880 has no END card",
    ),
    (
        "non-ASCII header",
        lambda _: primary("BITPIX  =                   16", "OBJECT  = 'cafe'").replace(
            b"cafe", b"caf\xff"
        ),
        "not ASCII",
    ),
    (
        "NAXIS bomb",
        lambda _: primary(
            "BITPIX  =                   64",
            "NAXIS   =                    2",
            "NAXIS1  =         100000000000",
            "NAXIS2  =         100000000000",
        ),
        "past|needs bytes",
    ),
    (
        "too many axes",
        lambda _: primary("BITPIX  =                   16", "NAXIS   =                 5000"),
        "NAXIS = 5000",
    ),
    (
        "bad BITPIX",
        lambda _: primary("BITPIX  =                    7", "NAXIS   =                    0"),
        "BITPIX = 7",
    ),
    (
        "missing NAXISn",
        lambda _: primary("BITPIX  =                   16", "NAXIS   =                    2"),
        "NAXIS1 is missing",
    ),
    (
        "negative axis",
        lambda _: primary(
            "BITPIX  =                   16", "NAXIS   =                    1", "NAXIS1  = -5"
        ),
        "negative",
    ),
    (
        "truncated data",
        lambda _: (
            primary(
                "BITPIX  =                   16",
                "NAXIS   =                    2",
                "NAXIS1  =                  100",
                "NAXIS2  =                  100",
            )
            + b"\0" * 5000
        ),
        "truncated",
    ),
    (
        "endless header",
        lambda _: b"SIMPLE  =                    T".ljust(80) + b" " * (2880 * 400 - 80),
        "no END card",
    ),
    (
        "heap offset past the end",
        lambda tmp: replace_card(compressed_file(tmp), "PCOUNT", "10"),
        "outside the .*heap|needs bytes",
    ),
    (
        "tile count",
        lambda tmp: replace_card(compressed_file(tmp), "ZNAXIS2", "2000000000"),
        "table rows, but the tiles",
    ),
    (
        "unknown compression",
        lambda tmp: replace_card(compressed_file(tmp), "ZCMPTYPE", "'LZMA_9  '"),
        "ZCMPTYPE",
    ),
    (
        "garbage TFORM",
        lambda tmp: replace_card(compressed_file(tmp), "TFORM1", "'9Z      '"),
        "TFORM1",
    ),
]


@pytest.mark.parametrize(("make", "match"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_files_are_typed_errors(
    tmp_path: Path, make: Callable[[Path], bytes], match: str
) -> None:
    refuse(tmp_path, make(tmp_path), match)


def test_a_heap_descriptor_past_the_heap_is_refused(tmp_path: Path) -> None:
    data = bytearray(compressed_file(tmp_path))
    with fits.open(tmp_path / "good.fits", disable_image_compression=True) as hdul:
        table_start = hdul[1]._data_offset
    # The first row's descriptor: (nelem, offset) as two big-endian int32.
    data[table_start + 4 : table_start + 8] = (10**9).to_bytes(4, "big")
    error = refuse(tmp_path, bytes(data), "tile 0's heap descriptor")
    assert "HDU 1" in str(error)


def test_a_corrupt_tile_fails_when_read_not_silently(tmp_path: Path) -> None:
    data = bytearray(compressed_file(tmp_path))
    path = tmp_path / "corrupt.fits"
    with fits.open(tmp_path / "good.fits", disable_image_compression=True) as hdul:
        heap = hdul[1]._data_offset + hdul[1]._theap
    data[heap : heap + 40] = b"\xff" * 40
    path.write_bytes(bytes(data))
    registry = local_registry(tmp_path)
    group = FITSParser()(f"file://{path}", registry)
    store = vc.ManifestStore(group, registry=registry)
    with (
        rectilinear_chunks_enabled(),
        pytest.raises(ChunkDecodeError, match="RICE_1 tile is corrupt"),
    ):
        zarr.open_array(store, path="COMPRESSED_IMAGE", mode="r")[...]


# ---- fuzzing: any corruption parses or fails with a FITSFormatError ---------------------------


@functools.cache
def _rich_sample() -> bytes:
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = (np.arange(600).reshape(20, 30) % 97).astype("i2")
        hdus = [
            fits.PrimaryHDU(data),
            fits.CompImageHDU(data, compression_type="RICE_1", tile_shape=(5, 30)),
            fits.ImageHDU(data.astype("f4"), name="F"),
        ]
        fits.HDUList(hdus).writeto(Path(folder) / "rich.fits")
        return (Path(folder) / "rich.fits").read_bytes()


def _parses_or_fails_cleanly(data: bytes) -> None:
    store = MemoryStore()
    obstore.put(store, "x.fits", data)
    registry = vc.ObjectStoreRegistry({"memory://fuzz/": store})
    start = time.perf_counter()
    message = "memory://fuzz/x.fits"
    try:
        FITSParser()("memory://fuzz/x.fits", registry)
    except FITSFormatError as err:
        message = str(err)
    assert "memory://fuzz/x.fits" in message
    assert time.perf_counter() - start < 1.0


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    position=st.integers(min_value=0, max_value=4 * 2880 + 600),
    patch=st.binary(min_size=1, max_size=8),
)
def test_corrupted_bytes_parse_or_fail_cleanly(position: int, patch: bytes) -> None:
    data = bytearray(_rich_sample())
    data[position : position + len(patch)] = patch
    _parses_or_fails_cleanly(bytes(data))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=6000))
def test_random_bytes_after_the_magic(body: bytes) -> None:
    _parses_or_fails_cleanly(b"SIMPLE  =" + body)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=1, max_value=8 * 2880))
def test_truncated_files_parse_or_fail_cleanly(cut: int) -> None:
    _parses_or_fails_cleanly(_rich_sample()[:cut])
