"""Hostile TIFFs: Pillow's crash and out-of-memory samples, and crafted IFDs.

Each must be refused with a typed error (a `VirtualizationError` naming the file)
within a second, in a child process whose address space is capped, so that a
parser that allocated what a corrupt count asks for would fail the test rather
than the machine.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.sample_packages import sdist_members
from tests.test_tiff_samples import PILLOW_VERSION
from tests.tiff_files import PAYLOAD_OFFSET, classic_tiff

PILLOW_HOSTILE = (
    "oom-225817ca0f8c663be7ab4b9e717b02c661e66834.tif",
    "seek_too_large.tif",
    "libtiff_segfault.tif",
    "tiff_overflow_rows_per_strip.tif",
)
_ADDRESS_SPACE = 3 << 30  # bytes: the interpreter with numpy, pyarrow and zarr needs ~1.5 GiB


def _image(
    width: int, height: int, **extra: tuple[int, list[int]]
) -> dict[int, tuple[int, list[int]]]:
    tags = {
        256: (4, [width]),
        257: (4, [height]),
        258: (3, [8]),
        259: (3, [1]),
        262: (3, [1]),
        273: (4, [PAYLOAD_OFFSET]),
        277: (3, [1]),
        278: (4, [height]),
        279: (4, [16]),
    }
    tags.update({int(k.removeprefix("t")): v for k, v in extra.items()})
    return tags


def _huge_entry_count() -> bytes:
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 65535) + bytes(64)


def _huge_tag_count() -> bytes:
    data = bytearray(classic_tiff(_image(4, 4), bytes(16)))
    ifd = struct.unpack_from("<I", data, 4)[0]
    for n in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * n
        if struct.unpack_from("<H", data, entry)[0] == 273:
            struct.pack_into("<I", data, entry + 4, 2**31)  # StripOffsets count
    return bytes(data)


def _ifd_loop() -> bytes:
    data = bytearray(classic_tiff(_image(4, 4), bytes(16)))
    ifd = struct.unpack_from("<I", data, 4)[0]
    count = struct.unpack_from("<H", data, ifd)[0]
    struct.pack_into("<I", data, ifd + 2 + 12 * count, ifd)  # the next IFD is itself
    return bytes(data)


def _subifd_loop() -> bytes:
    data = classic_tiff(_image(4, 4, t330=(4, [0])), bytes(16))
    ifd = struct.unpack_from("<I", data, 4)[0]
    return classic_tiff(_image(4, 4, t330=(4, [ifd])), bytes(16))


def _bigtiff_huge_count() -> bytes:
    return b"II+\x00" + struct.pack("<HHQ", 8, 0, 16) + struct.pack("<Q", 2**62) + bytes(64)


CRAFTED: dict[str, tuple[bytes, str]] = {
    "entry_count.tif": (_huge_entry_count(), "which do not fit in the file"),
    "tag_count.tif": (_huge_tag_count(), "lies outside the file"),
    "ifd_loop.tif": (_ifd_loop(), "loops back"),
    "subifd_loop.tif": (_subifd_loop(), "SubIFD 0 loops"),
    "bigtiff_count.tif": (_bigtiff_huge_count(), "which do not fit in the file"),
    "offset_outside.tif": (
        classic_tiff(_image(4, 4, t273=(4, [10**6])), bytes(16)),
        "lies outside the file",
    ),
    "first_ifd_outside.tif": (b"II*\x00" + struct.pack("<I", 2**31) + bytes(8), "outside the file"),
    "no_ifd.tif": (b"II*\x00" + bytes(12), "has no IFD"),
    "huge_strip.tif": (
        classic_tiff(_image(2**31, 2, t278=(4, [2])), bytes(16)),
        "would decode to more than",
    ),
    "huge_tile.tif": (
        classic_tiff(
            {
                **_image(2**20, 2**20),
                322: (4, [2**20]),
                323: (4, [2**20]),
                324: (4, [PAYLOAD_OFFSET]),
                325: (4, [16]),
            },
            bytes(16),
        ),
        "would decode to more than",
    ),
    "tile_grid.tif": (
        classic_tiff(
            {
                **_image(2**32 - 1, 2**32 - 1),
                322: (3, [16]),
                323: (3, [16]),
                324: (4, [8]),
                325: (4, [16]),
            },
            bytes(16),
        ),
        "1 offsets and 1 byte counts for",
    ),
    "empty.tif": (classic_tiff(_image(0, 4), bytes(16)), "is empty"),
    "wide_geotiff.tif": (
        classic_tiff(
            {
                **_image(2**28, 1),
                322: (3, [2**14]),
                323: (3, [16]),
                324: (4, [PAYLOAD_OFFSET] * 2**14),
                325: (4, [0] * 2**14),  # sparse: no bytes to store
                33550: (12, [1.0, 1.0, 0.0]),
                33922: (12, [0.0, 0.0, 0.0, 100.0, 200.0, 0.0]),
            },
            bytes(16),
        ),
        "above the limit max_inline_bytes",
    ),
    "truncated.tif": (classic_tiff(_image(4, 4), bytes(16))[:30], "do not fit in the file"),
}

RUNNER = textwrap.dedent(
    """
    import json, resource, sys, time
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import vzcore as vc
    from vzcore.parsers import TIFFParser
    for path in sys.argv[2:]:
        url = "file://" + path
        registry = vc.ObjectStoreRegistry.for_urls([url])
        start = time.perf_counter()
        try:
            TIFFParser()(url, registry)
            outcome = {"error": None}
        except vc.VirtualizationError as err:
            outcome = {"error": type(err).__name__, "message": str(err)}
        except BaseException as err:  # an untyped failure: reported, and the test fails
            outcome = {"error": "untyped " + type(err).__name__, "message": str(err)}
        outcome |= {"path": path, "seconds": time.perf_counter() - start}
        print(json.dumps(outcome), flush=True)
    """
)


def _run(paths: list[Path]) -> dict[str, dict[str, object]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(_ADDRESS_SPACE), *map(str, paths)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    outcomes = [json.loads(line) for line in result.stdout.splitlines()]
    return {Path(str(o["path"])).name: o for o in outcomes}


def _assert_refused_quickly(outcome: dict[str, object], reason: str) -> None:
    expected = "LimitExceededError" if "above the limit" in reason else "TIFFFormatError"
    assert outcome["error"] == expected, outcome
    message = str(outcome["message"])
    assert message.startswith(f"file://{outcome['path']}: "), message
    assert reason in message, message
    assert float(str(outcome["seconds"])) < 1.0, outcome


def test_pillow_hostile_files_are_refused_quickly() -> None:
    files = {p.name: p for p in sdist_members("pillow", PILLOW_VERSION, "Tests/images/*.tif*")}
    missing = [name for name in PILLOW_HOSTILE if name not in files]
    if missing:
        pytest.fail(f"Pillow {PILLOW_VERSION} no longer ships {missing}")
    from tests.test_tiff_samples import EXPECTED

    outcomes = _run([files[name] for name in PILLOW_HOSTILE])
    for name in PILLOW_HOSTILE:
        _assert_refused_quickly(outcomes[name], EXPECTED[name])


def test_crafted_hostile_files_are_refused_quickly(tmp_path: Path) -> None:
    for name, (data, _) in CRAFTED.items():
        (tmp_path / name).write_bytes(data)
    outcomes = _run([tmp_path / name for name in CRAFTED])
    for name, (_, reason) in CRAFTED.items():
        _assert_refused_quickly(outcomes[name], reason)
