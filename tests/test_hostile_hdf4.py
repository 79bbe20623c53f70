"""Corrupt, truncated and unsupported HDF4 files: typed errors naming file and data set, fast."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import obstore
import pytest
from obstore.store import MemoryStore
from tests.hdf4_maker import make_sample, set_nbit

import vzcore as vc
from vzcore.parsers import HDF4FormatError, HDF4Parser, HDF4UnsupportedError
from vzcore.parsers.hdf4_format import DD_DTYPE, parse_vdata_header, read_dd_table

pytest.importorskip("pyhdf")

URL = "memory://hostile/f.hdf"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("hostile-hdf4") / "sample.hdf"
    make_sample(path)
    data = path.read_bytes()
    _parse(data)  # warm the imports, so the timings below measure parsing only
    return data


def _parse(data: bytes, **options: object) -> vc.VirtualGroup:
    store = MemoryStore()
    obstore.put(store, "f.hdf", data)
    registry = vc.ObjectStoreRegistry({"memory://hostile/": store})
    return HDF4Parser(**options)(URL, registry)  # type: ignore[arg-type]


@contextmanager
def within(seconds: float) -> Iterator[None]:
    # CPU time of this process: the machine's other load does not count against the parser.
    start = time.process_time()
    yield
    assert time.process_time() - start < seconds


def _first_block(data: bytes) -> tuple[int, int]:
    """The first DD block's descriptor count and next-block offset."""
    return int.from_bytes(data[4:6], "big"), int.from_bytes(data[6:10], "big")


def _with_header(data: bytes, ndd: int, following: int) -> bytes:
    return data[:4] + ndd.to_bytes(2, "big") + following.to_bytes(4, "big") + data[10:]


@pytest.mark.parametrize("fraction", [0.0, 0.001, 0.05, 0.3, 0.6, 0.9, 0.999])
def test_truncated_files_are_typed_errors(sample: bytes, fraction: float) -> None:
    cut = sample[: int(len(sample) * fraction)]
    with within(1.0), pytest.raises(vc.VirtualizationError, match=re.escape(URL)):
        _parse(cut)


def test_a_dd_chain_that_loops_is_refused(sample: bytes) -> None:
    ndd, _ = _first_block(sample)
    with within(1.0), pytest.raises(HDF4FormatError, match="loops back to offset 4"):
        _parse(_with_header(sample, ndd, 4))


def test_a_dd_block_past_the_end_is_refused(sample: bytes) -> None:
    ndd, _ = _first_block(sample)
    with within(1.0), pytest.raises(HDF4FormatError, match="past the end"):
        _parse(_with_header(sample, ndd, len(sample) + 100))


def test_a_huge_descriptor_count_is_refused(sample: bytes) -> None:
    _, following = _first_block(sample)
    with within(1.0), pytest.raises(HDF4FormatError, match="65535 descriptors"):
        _parse(_with_header(sample, 0xFFFF, following))


def test_an_element_past_the_end_is_refused(sample: bytes) -> None:
    ndd, _ = _first_block(sample)
    table = np.frombuffer(sample[10 : 10 + 12 * ndd], dtype=DD_DTYPE).copy()
    sd = np.flatnonzero(table["tag"] == 702)[0]
    table["offset"][sd] = len(sample) - 2
    data = sample[:10] + table.tobytes() + sample[10 + 12 * ndd :]
    with within(1.0), pytest.raises(HDF4FormatError, match=r"tag 702, ref \d+\) ends at byte"):
        _parse(data)


def test_random_corruption_is_only_ever_a_typed_error(sample: bytes) -> None:
    rng = np.random.default_rng(18)
    for _ in range(300):
        data = bytearray(sample)
        for position in rng.integers(0, len(sample), rng.integers(1, 8)):
            data[position] = rng.integers(0, 256)
        start = time.process_time()
        message = URL
        try:
            _parse(bytes(data))
        except vc.VirtualizationError as err:
            message = str(err)
        assert message.startswith(URL)
        assert time.process_time() - start < 1.0


def test_two_data_sets_of_one_name_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "twice.hdf"
    make_sample(path)
    make_sample(path)  # the SD interface appends a second set of data sets
    with pytest.raises(HDF4UnsupportedError, match="two data sets are named 'temperature'"):
        _parse(path.read_bytes())
    with pytest.raises(HDF4UnsupportedError, match="two data sets are named 'temperature'"):
        _parse(path.read_bytes(), drop_variables=["lat"])


# Every compression pyhdf's library can write but deflate (SZIP: it has no SZIP encoder).
@pytest.mark.parametrize(
    ("code", "name"), [("COMP_RLE", "RLE"), ("COMP_SKPHUFF", "Skipping"), ("NBIT", "NBIT")]
)
def test_compressions_without_a_zarr_codec_name_the_data_set(
    tmp_path: Path, code: str, name: str
) -> None:
    from pyhdf.SD import SD, SDC

    path = tmp_path / "packed.hdf"
    sd = SD(str(path), SDC.WRITE | SDC.CREATE)
    packed = sd.create("packed", SDC.INT16, (4, 4))
    if code == "NBIT":
        set_nbit(packed, start_bit=6, bit_len=7)
    else:
        packed.setcompress(getattr(SDC, code), value=2)
    packed[:] = np.arange(16, dtype=np.int16).reshape(4, 4)
    packed.endaccess()
    sd.create("plain", SDC.INT16, (2,)).endaccess()
    sd.end()
    with pytest.raises(HDF4UnsupportedError, match=rf"f.hdf: SDS 'packed': {name}.*drop_variables"):
        _parse(path.read_bytes())
    assert set(_parse(path.read_bytes(), drop_variables=["packed"]).arrays) == {"plain"}
    if code == "COMP_RLE":  # vz decodes RLE to load it (test_hdf4.py compares with pyhdf)
        assert isinstance(_parse(path.read_bytes(), loadable_variables=["packed"])["packed"],
                          vc.LoadedArray)  # fmt: skip
        return
    with pytest.raises(HDF4UnsupportedError, match=rf"'packed': {name}.*cannot load it"):
        _parse(path.read_bytes(), loadable_variables=["packed"])


def _chunk_table_of_one_chunk(data: bytes) -> int:
    """The byte offset of the one-record chunk table (data set "partial" of the sample)."""
    store = MemoryStore()
    obstore.put(store, "f.hdf", data)
    file = vc.byteranges.source(vc.ObjectStoreRegistry({"memory://hostile/": store}), URL)
    table = read_dd_table(file, len(data))
    headers = table[table["tag"] == 1962]
    for row in headers:
        start = int(row["offset"])
        vdata = parse_vdata_header(int(row["ref"]), data[start : start + int(row["length"])])
        if vdata.class_name.startswith("_HDF_CHK_TBL") and vdata.n_records == 1:
            records = table[(table["tag"] == 1963) & (table["ref"] == row["ref"])]
            return int(records["offset"][0])
    raise AssertionError("no one-record chunk table")


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ((9).to_bytes(4, "big") * 2, "outside the chunk grid"),
        (b"\x00" * 8 + (61).to_bytes(2, "big") + (999).to_bytes(2, "big"), "not in the file"),
    ],
)
def test_a_bad_chunk_table_row_is_refused(sample: bytes, patch: bytes, message: str) -> None:
    at = _chunk_table_of_one_chunk(sample)
    data = sample[:at] + patch + sample[at + len(patch) :]
    with within(1.0), pytest.raises(HDF4FormatError, match=rf"SDS 'partial': .*{message}"):
        _parse(data)


def test_short_rle_data_is_a_format_error() -> None:
    from vzcore.parsers.hdf4_elements import rle_decode

    assert rle_decode(bytes.fromhex("8800140100"), 11, "w") == bytes(11)
    with pytest.raises(HDF4FormatError, match="w: the RLE data decode to 14 of 32 bytes"):
        rle_decode(bytes.fromhex("880014010002"), 32, "w")
    with pytest.raises(HDF4FormatError, match="decode to 0 of 4"):
        rle_decode(bytes.fromhex("85"), 4, "w")  # a run without its byte
