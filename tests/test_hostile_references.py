"""Hostile and malformed reference documents: each refused with a typed error, boundedly.

Every reference parser (Kerchunk JSON and parquet, Zarr v2 and v3, vz's manifest
parquet) is handed the inputs issue 22 names: bombs that declare enormous work (a
``gen`` of 10**12 keys, a gigabyte template, a 2**62 chunk grid, JSON 100 000 deep,
a parquet file that decompresses to 150 million rows, a template the old regex took
cubic time on) and malformed documents that used to escape as a raw ``KeyError``,
``OverflowError``, ``binascii.Error``... Each must raise a `VirtualizationError`
naming the file and the key or variable; a bomb must also finish (an alarm turns a
hang into a failure) within a bounded amount of memory (``tracemalloc``'s peak,
measured in a child process traced from its start).
"""

from __future__ import annotations

import base64
import contextvars
import json
import os
import signal
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import obstore
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from obstore.store import LocalStore, MemoryStore

import vzcore as vc
from vzcore.limits import json_depth
from vzcore.parsers import (
    KerchunkFormatError,
    KerchunkJSONParser,
    KerchunkParquetParser,
    ManifestParquetParser,
    ZarrFormatError,
    ZarrParser,
)

MEMORY_BOUND = 50 << 20
"""Peak Python allocations (tracemalloc) allowed while a bomb is refused."""

ZARRAY = {
    "zarr_format": 2,
    "shape": [20],
    "chunks": [5],
    "dtype": "<f4",
    "compressor": None,
    "filters": None,
    "fill_value": 0.0,
    "order": "C",
}
VALUES = np.arange(20, dtype="<f4")


class Hang(Exception):
    """Raised by the alarm: the call did not finish in time."""


def _alarm(signum: int, frame: Any) -> None:
    raise Hang("the parser did not finish within the alarm")


def refused(
    call: Callable[[], object], error: type[Exception], *needles: str, bomb: bool = False
) -> Exception:
    """The error ``call`` raises: of class ``error``, naming every needle.

    A bomb must finish before a 10 s alarm and, in a process traced from its start
    (see `test_bombs_stay_within_the_memory_bound`), allocate at most `MEMORY_BOUND`.
    """
    measuring = bomb and tracemalloc.is_tracing()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(10)
    if measuring:
        tracemalloc.reset_peak()
    baseline = tracemalloc.get_traced_memory()[0]
    try:
        with pytest.raises(error) as caught:
            call()
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert isinstance(caught.value, vc.VirtualizationError)
    message = str(caught.value)
    for needle in needles:
        assert needle in message, message
    if measuring:
        assert peak < MEMORY_BOUND, f"peak {peak} bytes while refusing"
    return caught.value


def test_bombs_stay_within_the_memory_bound() -> None:
    """The `memory_bound` tests again, in a child Python traced from its first line.

    ``tracemalloc.start()`` and ``stop()`` race with threads that allocate without
    the GIL (CPython gh-128679, fixed after the 3.12.1 this project runs on): toggled
    in a test process full of other tests' threads, they crashed the run. The child
    starts tracing before any thread exists (``PYTHONTRACEMALLOC``) and never stops.
    """
    env = {**os.environ, "PYTHONTRACEMALLOC": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m"]
    command += ["memory_bound", "-W", "ignore::pytest.PytestUnraisableExceptionWarning"]
    done = subprocess.run(
        [*command, __file__], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert " passed" in done.stdout, done.stdout
    assert "deselected" in done.stdout, done.stdout


class Folder:
    """A folder with ``data.bin`` (VALUES), a registry for it, and files written into it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "data.bin").write_bytes(VALUES.tobytes())
        self.registry = vc.ObjectStoreRegistry({f"file://{root}/": LocalStore(root)})
        self.data_url = f"file://{root}/data.bin"

    def url(self, name: str) -> str:
        return f"file://{self.root}/{name}"

    def text(self, name: str, text: str | bytes) -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return self.url(name)

    def kerchunk(self, document: Any, name: str = "refs.json") -> vc.VirtualGroup:
        return KerchunkJSONParser()(self.text(name, json.dumps(document)), self.registry)


@pytest.fixture
def folder(tmp_path: Path) -> Folder:
    return Folder(tmp_path)


def _refs(folder: Folder, **changes: Any) -> dict[str, Any]:
    """Version 1 references to VALUES, array ``x``; ``changes`` replace or add refs."""
    refs: dict[str, Any] = {
        ".zgroup": json.dumps({"zarr_format": 2}),
        "x/.zarray": json.dumps(ZARRAY),
        "x/.zattrs": json.dumps({"_ARRAY_DIMENSIONS": ["x"]}),
        **{f"x/{i}": [folder.data_url, 20 * i, 20] for i in range(4)},
    }
    for key, value in changes.items():
        refs[key.replace("__", "/")] = value
    return {"version": 1, "refs": {k: v for k, v in refs.items() if v is not None}}


def _zarray(**changes: Any) -> str:
    return json.dumps({**ZARRAY, **changes})


def _gen(**fields: Any) -> dict[str, Any]:
    return {"key": "x/{{i}}", "url": "{{u}}", "dimensions": {"i": {"stop": 4}}, **fields}


def _with_gen(folder: Folder, *generators: Any, templates: Any = None) -> dict[str, Any]:
    document = _refs(folder)
    document["refs"] = {k: v for k, v in document["refs"].items() if not k[-1].isdigit()}
    document["gen"] = list(generators)
    document["templates"] = {"u": folder.data_url} if templates is None else templates
    return document


def test_the_valid_document_reads_back(folder: Folder) -> None:
    """The baseline every case below breaks in one way: it parses and reads VALUES."""
    for document in (
        _refs(folder),
        _with_gen(folder, _gen(offset="{{i * 20}}", length="20")),
    ):
        group = folder.kerchunk(document)
        np.testing.assert_array_equal(vc.read_array(group["x"], folder.registry), VALUES)  # type: ignore[arg-type]


# ---- Kerchunk JSON: bombs ----------------------------------------------------------------

KERCHUNK_BOMBS: dict[str, tuple[Callable[[Folder], Any], str, str]] = {
    "gen of 10**12 keys": (
        lambda f: _with_gen(
            f, _gen(key="x/{{i}}.{{j}}", dimensions={"i": {"stop": 10**6}, "j": {"stop": 10**6}})
        ),
        "max_generated_keys",
        "'gen' entry 'x/{{i}}.{{j}}'",
    ),
    "gen of 10**30 values on one axis": (
        lambda f: _with_gen(f, _gen(dimensions={"i": {"stop": 10**30}})),
        "max_generated_keys",
        "dimension 'i'",
    ),
    "template expression building a gigabyte": (
        lambda f: _with_gen(f, _gen(url="{{'a' * 1000000000}}")),
        "max_template_bytes",
        "'gen' entry 'x/{{i}}'",
    ),
    "gigabyte by repeated doubling": (
        lambda f: _with_gen(
            f, _gen(url="{{" + "(" * 30 + "'ab'" + " + 'ab')" * 0 + " * 2)" * 30 + "}}")
        ),
        "max_template_bytes",
        "'gen' entry 'x/{{i}}'",
    ),
    "template rendering past max_template_bytes": (
        lambda f: {
            **_refs(f, **{f"x__{i}": ["{{big}}" * 20 + str(i), 0, 20] for i in range(4)}),
            "templates": {"big": "a" * 4000},
        },
        "max_template_bytes",
        "'x/0'",
    ),
    "declared shape 2**62 with one reference": (
        lambda f: _refs(f, **{"x__.zarray": _zarray(shape=[2**62], chunks=[1])}),
        "max_chunks",
        "array 'x'",
    ),
    "declared grid of 2**33 chunks in 3 axes": (
        lambda f: _refs(
            f,
            **{"x__.zarray": _zarray(shape=[2**11] * 3, chunks=[1] * 3)},
            **{"x__.zattrs": json.dumps({"_ARRAY_DIMENSIONS": ["a", "b", "c"]})},
            **{f"x__{i}": None for i in range(4)},
        ),
        "max_chunks",
        "array 'x'",
    ),
    "inline array of 2**40 bytes": (
        lambda f: _refs(
            f,
            **{"x__.zarray": _zarray(shape=[2**38], chunks=[2**38])},
            **{f"x__{i}": None for i in range(1, 4)},
            x__0="base64:" + base64.b64encode(b"\0" * 8).decode(),
        ),
        "max_inline_bytes",
        "array 'x'",
    ),
}


@pytest.mark.memory_bound
@pytest.mark.parametrize("case", KERCHUNK_BOMBS)
def test_kerchunk_bombs_are_refused_before_allocating(folder: Folder, case: str) -> None:
    make, limit, place = KERCHUNK_BOMBS[case]
    document = make(folder)
    error = refused(
        lambda: folder.kerchunk(document),
        vc.LimitExceededError,
        folder.url("refs.json"),
        place,
        bomb=True,
    )
    assert isinstance(error, vc.LimitExceededError)
    assert error.limit == limit, error
    assert f"vzcore.limits({limit}=...)" in str(error)


def test_templates_rendering_too_much_in_total_are_refused(folder: Folder) -> None:
    """Each URL below max_template_bytes, all of them above max_document_bytes."""
    refs = {f"x__{i}": ["{{big}}" * 15 + str(i), 0, 20] for i in range(4)}
    document = {**_refs(folder, **refs), "templates": {"big": "a" * 4000}}
    with vc.limits(max_document_bytes=200_000):
        error = refused(
            lambda: folder.kerchunk(document), vc.LimitExceededError, folder.url("refs.json")
        )
    assert isinstance(error, vc.LimitExceededError)
    assert error.limit == "max_document_bytes"
    assert "the characters the templates and 'gen' entries render" in str(error)


@pytest.mark.memory_bound
@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000],
    ids=["arrays", "objects"],
)
def test_json_nested_100k_deep_is_refused(folder: Folder, text: str) -> None:
    url = folder.text("deep.json", text)
    error = refused(
        lambda: KerchunkJSONParser()(url, folder.registry), vc.LimitExceededError, url, bomb=True
    )
    assert isinstance(error, vc.LimitExceededError)
    assert (error.limit, error.needed) == ("max_json_depth", 100_000)


def test_json_nested_deeply_inside_a_zattrs_string_is_refused(folder: Folder) -> None:
    deep = '{"a":' * 5000 + "1" + "}" * 5000
    document = _refs(folder, **{"x__.zattrs": deep})
    refused(lambda: folder.kerchunk(document), vc.LimitExceededError, "x/.zattrs", "max_json_depth")


def test_a_document_above_max_document_bytes_is_refused_unread(folder: Folder) -> None:
    url = folder.text("refs.json", json.dumps(_refs(folder)))
    size = (folder.root / "refs.json").stat().st_size
    with vc.limits(max_document_bytes=size - 1):
        refused(
            lambda: KerchunkJSONParser()(url, folder.registry),
            vc.LimitExceededError,
            url,
            f"is {size}",
            "max_document_bytes",
        )
    KerchunkJSONParser()(url, folder.registry)  # the default allows it


@pytest.mark.parametrize(
    "template",
    [
        "{{ " + " " * 400_000 + "x",  # cubic for the lazy "\s*([^{}]+?)\s*" pattern
        "{{" + "a" * 400_000,
        "{{a" * 130_000,
        "{{" * 200_000 + "}",
    ],
    ids=["spaces", "no-close", "many-opens", "only-braces"],
)
def test_template_matching_is_linear(folder: Folder, template: str) -> None:
    """Unterminated placeholders stay as they are, in time linear in the URL's length."""
    document = _refs(folder, x__0=[template, 0, 20])
    document["templates"] = {"a": "b"}
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(10)
    try:
        with vc.limits(max_template_bytes=10**6):
            group = folder.kerchunk(document)
    finally:
        signal.alarm(0)
    x = group["x"]
    assert isinstance(x, vc.VirtualArray)
    assert template in x.manifest.to_entries()["0"]["path"]


def test_templates_still_render_where_they_close(folder: Folder) -> None:
    document = _refs(folder, x__0=["{{ root }}/{{name}}", 0, 20], x__1=["{{{name}}}", 20, 20])
    document["templates"] = {"root": f"file://{folder.root}", "name": "data.bin"}
    x = folder.kerchunk(document)["x"]
    assert isinstance(x, vc.VirtualArray)
    entries = x.manifest.to_entries()
    assert entries["0"]["path"] == folder.data_url
    assert entries["1"]["path"].endswith("/{data.bin}")


# ---- Kerchunk JSON: malformed --------------------------------------------------------------

KERCHUNK_MALFORMED: dict[str, tuple[Callable[[Folder], Any], tuple[str, ...]]] = {
    "templates as a list": (
        lambda f: {**_refs(f), "templates": ["a"]},
        ("'templates' must be an object",),
    ),
    "template value an object": (
        lambda f: {**_refs(f), "templates": {"a": {"b": 1}}},
        ("template 'a' must be a string",),
    ),
    "gen not a list": (lambda f: {**_refs(f), "gen": {"key": "x"}}, ("'gen' must be a list",)),
    "gen without stop": (
        lambda f: _with_gen(f, _gen(dimensions={"i": {"start": 0}})),
        ("'gen' entry 'x/{{i}}'", "dimension 'i' has no 'stop'"),
    ),
    "gen with step 0": (
        lambda f: _with_gen(f, _gen(dimensions={"i": {"stop": 4, "step": 0}})),
        ("dimension 'i'", "'step' must be positive"),
    ),
    "gen with a negative step": (
        lambda f: _with_gen(f, _gen(dimensions={"i": {"start": 4, "stop": 0, "step": -1}})),
        ("'step' must be positive",),
    ),
    "gen with a string start": (
        lambda f: _with_gen(f, _gen(dimensions={"i": {"start": "0", "stop": 4}})),
        ("'start' must be an integer",),
    ),
    "gen with a float stop": (
        lambda f: _with_gen(f, _gen(dimensions={"i": {"stop": 4.5}})),
        ("'stop' must be an integer",),
    ),
    "gen with a bool step": (
        lambda f: _with_gen(f, _gen(dimensions={"i": {"stop": 4, "step": True}})),
        ("'step' must be an integer",),
    ),
    "gen dimensions as a list": (
        lambda f: _with_gen(f, _gen(dimensions=["i"])),
        ("'dimensions' must be an object",),
    ),
    "gen dimension a number": (
        lambda f: _with_gen(f, _gen(dimensions={"i": 4})),
        ("dimension 'i' must be a list of values",),
    ),
    "gen without dimensions": (
        lambda f: _with_gen(f, {"key": "x/{{i}}", "url": "{{u}}"}),
        ("'gen' entry needs",),
    ),
    "gen key not a string": (
        lambda f: _with_gen(f, _gen(key=5)),
        ("'key' and 'url' must be strings",),
    ),
    "gen expression with a power": (
        lambda f: _with_gen(f, _gen(offset="{{10 ** 10 ** 10}}", length="20")),
        ("unsupported template expression",),
    ),
    "gen expression formatting a string": (
        lambda f: _with_gen(f, _gen(url="{{'%0999999999d' % 1}}")),
        ("Mod of str and int",),
    ),
    "gen expression with an attribute": (
        lambda f: _with_gen(f, _gen(url="{{u.__class__}}")),
        ("unsupported template expression",),
    ),
    "gen expression nested 100k deep": (
        lambda f: _with_gen(f, _gen(offset="{{" + "1+" * 20_000 + "1}}", length="20")),
        ("'gen' entry 'x/{{i}}'",),
    ),
    "gen offset not a number": (
        lambda f: _with_gen(f, _gen(offset="{{u}}", length="20")),
        ("is not an integer",),
    ),
    "gen offset of 10 000 digits": (
        lambda f: _with_gen(f, _gen(offset="1" * 10_000, length="20")),
        ("is not an integer",),
    ),
    "gen integer above 2**128": (
        lambda f: _with_gen(f, _gen(offset="{{" + "*".join(["99999999999"] * 20) + "}}")),
        ("an integer above 2**128",),
    ),
    "chunk key v/99999999999999999999": (
        lambda f: _refs(f, x__99999999999999999999=[f.data_url, 0, 20]),
        ("array 'x'", "'99999999999999999999'"),
    ),
    "chunk key v/-1": (
        lambda f: _refs(f, **{"x__-1": [f.data_url, 0, 20]}),
        ("array 'x'", "outside the grid"),
    ),
    "chunk key v/+1": (lambda f: _refs(f, **{"x__+1": [f.data_url, 0, 20]}), ("'+1'",)),
    "chunk key v/a.b": (lambda f: _refs(f, **{"x__a.b": [f.data_url, 0, 20]}), ("'a.b'",)),
    "chunk key v/1_0 (int() reads 10)": (
        lambda f: _refs(f, x__1_0=[f.data_url, 0, 20]),
        ("'1_0'",),
    ),
    "chunk key with other digits": (
        lambda f: _refs(f, x__٣=[f.data_url, 0, 20]),
        ("array 'x'",),
    ),
    "chunk key outside the grid": (
        lambda f: _refs(f, x__4=[f.data_url, 0, 20]),
        ("outside the grid",),
    ),
    "inline chunk key huge": (
        lambda f: _refs(f, **{f"x__{i}": "AAAA" for i in range(4)}, x__9999999999999999999999="A"),
        ("bad chunk key",),
    ),
    "inline chunk key outside the grid": (
        lambda f: _refs(f, **{f"x__{i}": "\0" * 20 for i in range(4)}, x__7="\0" * 20),
        ("outside the chunk grid (4,)",),
    ),
    ".zarray shape 'abc'": (
        lambda f: _refs(f, **{"x__.zarray": _zarray(shape="abc")}),
        ("array 'x'", "'shape' must be a list"),
    ),
    ".zarray shape of floats": (
        lambda f: _refs(f, **{"x__.zarray": _zarray(shape=[20.5])}),
        ("must hold integers",),
    ),
    ".zarray shape of bools": (
        lambda f: _refs(f, **{"x__.zarray": _zarray(shape=[True])}),
        ("must hold integers",),
    ),
    ".zarray shape nested": (
        lambda f: _refs(f, **{"x__.zarray": _zarray(shape=[[20]])}),
        ("must hold integers",),
    ),
    ".zarray shape negative": (
        lambda f: _refs(f, **{"x__.zarray": _zarray(shape=[-20])}),
        ("negative length",),
    ),
    ".zarray shape beyond int64 elements": (
        lambda f: _refs(f, **{"x__.zarray": _zarray(shape=[2**40, 2**40], chunks=[2**40, 2**40])}),
        ("more than 2**63 - 1 elements",),
    ),
    ".zarray with 65 axes": (
        lambda f: _refs(f, **{"x__.zarray": _zarray(shape=[1] * 65, chunks=[1] * 65)}),
        ("65 axes",),
    ),
    ".zarray chunks 0": (
        lambda f: _refs(f, **{"x__.zarray": _zarray(chunks=[0])}),
        ("chunk lengths must be positive",),
    ),
    ".zarray chunks a string": (
        lambda f: _refs(f, **{"x__.zarray": _zarray(chunks="5")}),
        ("'chunks' must be a list",),
    ),
    ".zarray dtype unknown": (
        lambda f: _refs(f, **{"x__.zarray": _zarray(dtype="<q9")}),
        ("dtype",),
    ),
    ".zarray dtype a number": (lambda f: _refs(f, **{"x__.zarray": _zarray(dtype=5)}), ("dtype",)),
    ".zarray compressor a string": (
        lambda f: _refs(f, **{"x__.zarray": _zarray(compressor="zlib")}),
        ("'compressor' must be an object",),
    ),
    ".zarray compressor without id": (
        lambda f: _refs(f, **{"x__.zarray": _zarray(compressor={"level": 1})}),
        ("'id'",),
    ),
    ".zarray filters an object": (
        lambda f: _refs(f, **{"x__.zarray": _zarray(filters={"id": "zlib"})}),
        ("'filters' must be a list",),
    ),
    ".zarray filters of numbers": (
        lambda f: _refs(f, **{"x__.zarray": _zarray(filters=[5])}),
        ("array 'x'",),
    ),
    ".zarray order 'X'": (
        lambda f: _refs(f, **{"x__.zarray": _zarray(order="X")}),
        ("order must be 'C' or 'F'",),
    ),
    ".zarray not an object": (
        lambda f: _refs(f, **{"x__.zarray": "[1, 2]"}),
        ("x/.zarray must be a JSON object",),
    ),
    ".zattrs not an object": (
        lambda f: _refs(f, **{"x__.zattrs": "[]"}),
        ("x/.zattrs must be a JSON object",),
    ),
    "_ARRAY_DIMENSIONS a number": (
        lambda f: _refs(f, **{"x__.zattrs": json.dumps({"_ARRAY_DIMENSIONS": 5})}),
        ("dimension names must be a list",),
    ),
    "inline value a number": (lambda f: _refs(f, x__0=5), ("chunk '0'", "malformed reference")),
    "inline base64 badly padded": (
        lambda f: _refs(f, **{f"x__{i}": "base64:A" for i in range(4)}),
        ("not valid base64",),
    ),
    "reference with a string offset": (
        lambda f: _refs(f, x__0=[f.data_url, "0", 20]),
        ("must be integers",),
    ),
    "reference with a bool length": (
        lambda f: _refs(f, x__0=[f.data_url, 0, True]),
        ("must be integers",),
    ),
    "reference with a negative offset": (
        lambda f: _refs(f, x__0=[f.data_url, -1, 20]),
        ("negative offset",),
    ),
    "reference with an offset beyond 2**64": (
        lambda f: _refs(f, x__0=[f.data_url, 2**70, 20]),
        ("must be integers",),
    ),
    "reference of two items": (
        lambda f: _refs(f, x__0=[f.data_url, 0]),
        ("malformed reference",),
    ),
    "reference url not a string": (
        lambda f: _refs(f, x__0=[5, 0, 20]),
        ("malformed reference",),
    ),
    # Reference URLs are literal, as fsspec reads them: no such files.
    "[url] with a query": (lambda f: _refs(f, x__0=[f.data_url + "?x=1"]), ("data.bin%3Fx=1",)),
    "[url] with %00": (lambda f: _refs(f, x__0=[f.data_url + "%00"]), ("data.bin%2500",)),
    "[url] with NUL": (lambda f: _refs(f, x__0=[f.data_url + "\x00"]), ("control character",)),
    "refs a list": (lambda f: {"version": 1, "refs": [1]}, ("'refs' must be a JSON object",)),
    "version true": (lambda f: {**_refs(f), "version": True}, ("unsupported references version",)),
    "version '1'": (lambda f: {**_refs(f), "version": "1"}, ("unsupported references version",)),
    "array path with ..": (
        lambda f: _refs(f, **{"../x/.zarray": _zarray()}),
        ("'../x'", "one path segment"),
    ),
    "array path %2e%2e": (
        lambda f: _refs(f, **{"%2e%2e/x/.zarray": _zarray()}),
        ("percent-decoded '..'",),
    ),
    "array path with a backslash": (
        lambda f: _refs(f, **{"a\\b/.zarray": _zarray()}),
        ("holds '\\\\'",),
    ),
    "array path with NUL": (
        lambda f: _refs(f, **{"a\x00b/.zarray": _zarray()}),
        ("one path segment",),
    ),
    "array path with an empty segment": (
        lambda f: _refs(f, **{"a//x/.zarray": _zarray()}),
        ("'a//x'",),
    ),
    "group path with ..": (
        lambda f: _refs(f, **{"../.zgroup": json.dumps({"zarr_format": 2})}),
        ("'..'",),
    ),
}


@pytest.mark.parametrize("case", KERCHUNK_MALFORMED)
def test_malformed_kerchunk_json_is_a_typed_error(folder: Folder, case: str) -> None:
    make, needles = KERCHUNK_MALFORMED[case]
    document = make(folder)
    refused(
        lambda: folder.kerchunk(document), vc.VirtualizationError, folder.url("refs.json"), *needles
    )


# ---- Kerchunk parquet ----------------------------------------------------------------------


def _kerchunk_parquet(
    folder: Folder, *, zarray: Any = None, record_size: Any = 4, table: pa.Table | None = None
) -> str:
    root = folder.root / "refs.parq"
    (root / "x").mkdir(parents=True, exist_ok=True)
    metadata = {
        ".zgroup": {"zarr_format": 2},
        "x/.zarray": zarray if zarray is not None else ZARRAY,
        "x/.zattrs": {"_ARRAY_DIMENSIONS": ["x"]},
    }
    text = json.dumps({"metadata": metadata, "record_size": record_size})
    (root / ".zmetadata").write_text(text)
    if table is None:
        table = pa.table(
            {"path": [folder.data_url] * 4, "offset": [0, 20, 40, 60], "size": [20] * 4}
        )
    pq.write_table(table, root / "x" / "refs.0.parq")
    return f"file://{root}"


def test_kerchunk_parquet_baseline_reads_back(folder: Folder) -> None:
    group = KerchunkParquetParser()(_kerchunk_parquet(folder), folder.registry)
    np.testing.assert_array_equal(vc.read_array(group["x"], folder.registry), VALUES)  # type: ignore[arg-type]


@pytest.mark.parametrize("record_size", [0, -4, "4", True, 4.0, None])
def test_kerchunk_parquet_record_size_must_be_a_positive_integer(
    folder: Folder, record_size: Any
) -> None:
    url = _kerchunk_parquet(folder, record_size=record_size)
    refused(
        lambda: KerchunkParquetParser()(url, folder.registry),
        KerchunkFormatError,
        f"{url}/.zmetadata",
        "'record_size' must be a positive integer",
    )


def test_kerchunk_parquet_declaring_millions_of_record_files(folder: Folder) -> None:
    url = _kerchunk_parquet(
        folder, zarray={**ZARRAY, "shape": [10**7], "chunks": [1]}, record_size=1
    )
    error = refused(
        lambda: KerchunkParquetParser()(url, folder.registry),
        vc.LimitExceededError,
        url,
        "array 'x'",
        "10000000",
        bomb=True,
    )
    assert isinstance(error, vc.LimitExceededError)
    assert error.limit == "max_reference_files"


@pytest.mark.memory_bound
def test_kerchunk_parquet_with_a_2_62_grid(folder: Folder) -> None:
    url = _kerchunk_parquet(folder, zarray={**ZARRAY, "shape": [2**62], "chunks": [1]})
    error = refused(
        lambda: KerchunkParquetParser()(url, folder.registry),
        vc.LimitExceededError,
        "array 'x'",
        bomb=True,
    )
    assert isinstance(error, vc.LimitExceededError)
    assert error.limit == "max_chunks"


def test_kerchunk_parquet_file_with_more_rows_than_the_record_size(folder: Folder) -> None:
    table = pa.table({"path": [folder.data_url] * 9, "offset": [0] * 9, "size": [20] * 9})
    url = _kerchunk_parquet(folder, table=table)
    refused(
        lambda: KerchunkParquetParser()(url, folder.registry),
        KerchunkFormatError,
        "refs.0.parq has 9 rows, more than the record size 4",
    )


@pytest.mark.parametrize(
    ("columns", "needle"),
    [
        ({"path": [1, 2, 3, 4], "offset": [0] * 4, "size": [20] * 4}, "array 'x'"),
        ({"path": ["a"] * 4, "offset": ["x"] * 4, "size": [20] * 4}, "malformed columns"),
        ({"path": ["a"] * 4, "offset": [[1]] * 4, "size": [20] * 4}, "malformed columns"),
        ({"path": ["a"] * 4, "offset": [-1] * 4, "size": [20] * 4}, "negative offset"),
        ({"path": ["a"] * 4, "offset": [0] * 4}, "lacks columns"),
    ],
    ids=["int paths", "string offsets", "list offsets", "negative offsets", "no size"],
)
def test_kerchunk_parquet_columns_of_wrong_types(
    folder: Folder, columns: dict[str, Any], needle: str
) -> None:
    url = _kerchunk_parquet(folder, table=pa.table(columns))
    refused(
        lambda: KerchunkParquetParser()(url, folder.registry), vc.VirtualizationError, url, needle
    )


@pytest.mark.memory_bound
def test_kerchunk_parquet_zmetadata_nested_100k_deep(folder: Folder) -> None:
    url = _kerchunk_parquet(folder)
    (folder.root / "refs.parq" / ".zmetadata").write_text("[" * 100_000 + "]" * 100_000)
    refused(
        lambda: KerchunkParquetParser()(url, folder.registry),
        vc.LimitExceededError,
        ".zmetadata",
        "max_json_depth",
        bomb=True,
    )


def test_kerchunk_parquet_array_path_with_dotdot_reads_nothing(folder: Folder) -> None:
    root = folder.root / "refs.parq"
    root.mkdir()
    metadata = {"../x/.zarray": ZARRAY}
    (root / ".zmetadata").write_text(json.dumps({"metadata": metadata, "record_size": 4}))
    refused(
        lambda: KerchunkParquetParser()(f"file://{root}", folder.registry),
        KerchunkFormatError,
        "'../x'",
    )


# ---- one stored table that decompresses to 150 million rows --------------------------------


@pytest.fixture(scope="module")
def row_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A parquet file of a few MB holding 150 million rows of zeros (vz manifest metadata)."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.parquet"
    rows = 2_000_000
    zarr_json = vc.ArrayMetadata(shape=(150_000_000,), chunk_grid=(1,), dtype="f4").to_zarr_v3()
    metadata = {
        b"vz:format": b"vz-manifest",
        b"vz:version": b"1",
        b"vz:kind": b"virtual",
        b"vz:grid": b"[150000000]",
        b"zarr.json": json.dumps(zarr_json).encode(),
    }
    batch = pa.table({"offset": pa.array(np.zeros(rows, np.uint8))}).replace_schema_metadata(
        metadata
    )
    with pq.ParquetWriter(path, batch.schema, compression="zstd", use_dictionary=False) as out:
        for _ in range(75):
            out.write_table(batch, row_group_size=rows)
    assert path.stat().st_size < 5 << 20
    return path


@pytest.mark.memory_bound
def test_manifest_parquet_row_bomb_is_refused_from_its_footer(row_bomb: Path) -> None:
    pool = pa.default_memory_pool()
    before = pool.bytes_allocated()
    error = refused(
        lambda: vc.read_manifest_parquet(row_bomb), vc.LimitExceededError, str(row_bomb), bomb=True
    )
    assert isinstance(error, vc.LimitExceededError)
    assert (error.limit, error.needed) == ("max_chunks", 150_000_000)
    assert pool.bytes_allocated() - before < MEMORY_BOUND


@pytest.mark.memory_bound
def test_manifest_parquet_row_bomb_through_the_parser(row_bomb: Path) -> None:
    registry = vc.ObjectStoreRegistry({f"file://{row_bomb.parent}/": LocalStore(row_bomb.parent)})
    url = f"file://{row_bomb}"
    refused(
        lambda: ManifestParquetParser()(url, registry),
        vc.LimitExceededError,
        url,
        "max_chunks",
        bomb=True,
    )


def test_kerchunk_parquet_row_bomb_is_refused_from_its_footer(
    folder: Folder, row_bomb: Path
) -> None:
    url = _kerchunk_parquet(folder, record_size=200_000_000)
    (folder.root / "refs.parq" / "x" / "refs.0.parq").write_bytes(row_bomb.read_bytes())
    refused(
        lambda: KerchunkParquetParser()(url, folder.registry),
        vc.LimitExceededError,
        "refs.0.parq",
        "max_chunks",
        bomb=True,
    )


# ---- Zarr v2 and v3 ------------------------------------------------------------------------


def _zarr_v2(root: Path, array: str = "x", **zarray: Any) -> str:
    (root / array).mkdir(parents=True, exist_ok=True)
    (root / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    (root / array / ".zarray").write_text(json.dumps({**ZARRAY, **zarray}))
    for i in range(4):
        (root / array / str(i)).write_bytes(VALUES[5 * i : 5 * i + 5].tobytes())
    return f"file://{root}"


V3_ARRAY = {
    "zarr_format": 3,
    "node_type": "array",
    "shape": [20],
    "data_type": "float32",
    "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [5]}},
    "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
    "fill_value": 0.0,
    "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
}


def _zarr_v3(root: Path, **document: Any) -> str:
    (root / "x" / "c").mkdir(parents=True, exist_ok=True)
    (root / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group"}))
    (root / "x" / "zarr.json").write_text(json.dumps({**V3_ARRAY, **document}))
    for i in range(4):
        (root / "x" / "c" / str(i)).write_bytes(VALUES[5 * i : 5 * i + 5].tobytes())
    return f"file://{root}"


@pytest.mark.parametrize("write", [_zarr_v2, _zarr_v3], ids=["v2", "v3"])
def test_zarr_baseline_reads_back(folder: Folder, write: Callable[..., str]) -> None:
    group = ZarrParser()(write(folder.root / "store"), folder.registry)
    np.testing.assert_array_equal(vc.read_array(group["x"], folder.registry), VALUES)  # type: ignore[arg-type]


ZARR_V2_MALFORMED: dict[str, tuple[dict[str, Any], type[Exception], str]] = {
    "shape 'abc'": ({"shape": "abc"}, ZarrFormatError, "'shape' must be a list"),
    "shape negative": ({"shape": [-1]}, ZarrFormatError, "negative length"),
    "shape 2**62 with chunk 1": (
        {"shape": [2**62], "chunks": [1]},
        vc.LimitExceededError,
        "max_chunks",
    ),
    "chunks 0": ({"chunks": [0]}, ZarrFormatError, "chunk lengths must be positive"),
    "dtype unknown": ({"dtype": "<q9"}, ZarrFormatError, "dtype"),
    "filters a string": ({"filters": "zlib"}, ZarrFormatError, "'filters' must be a list"),
    "dimension_separator '-'": (
        {"dimension_separator": "-"},
        ZarrFormatError,
        "dimension_separator must be",
    ),
}


@pytest.mark.memory_bound
@pytest.mark.parametrize("case", ZARR_V2_MALFORMED)
def test_malformed_zarr_v2_is_a_typed_error(folder: Folder, case: str) -> None:
    changes, error, needle = ZARR_V2_MALFORMED[case]
    url = _zarr_v2(folder.root / "store", **changes)
    refused(lambda: ZarrParser()(url, folder.registry), error, url, "array 'x'", needle, bomb=True)


ZARR_V3_MALFORMED: dict[str, tuple[dict[str, Any], type[Exception], str]] = {
    "shape 'abc'": ({"shape": "abc"}, ZarrFormatError, "'shape' must be a list"),
    "shape of floats": ({"shape": [2.5]}, ZarrFormatError, "must hold integers"),
    "shape 2**62 with chunk 1": (
        {
            "shape": [2**62],
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1]}},
        },
        vc.LimitExceededError,
        "max_chunks",
    ),
    "chunk shape 'abc'": (
        {"chunk_grid": {"name": "regular", "configuration": {"chunk_shape": "abc"}}},
        ZarrFormatError,
        "chunk_shape",
    ),
    "chunk shape of strings": (
        {"chunk_grid": {"name": "regular", "configuration": {"chunk_shape": ["a"]}}},
        ZarrFormatError,
        "must hold integers",
    ),
    "chunk grid configuration a list": (
        {"chunk_grid": {"name": "regular", "configuration": [1]}},
        ZarrFormatError,
        "chunk_grid",
    ),
    "data type unknown": ({"data_type": "float99"}, ZarrFormatError, "data_type"),
    "codecs a number": ({"codecs": 5}, ZarrFormatError, "'codecs' must be a list"),
    "codecs of numbers": ({"codecs": [5]}, ZarrFormatError, "codec"),
    "dimension_names a number": (
        {"dimension_names": 5},
        ZarrFormatError,
        "'dimension_names' must be a list",
    ),
    "chunk key encoding a string": (
        {"chunk_key_encoding": "default"},
        ZarrFormatError,
        "chunk_key_encoding",
    ),
    "chunk key separator '-'": (
        {"chunk_key_encoding": {"name": "default", "configuration": {"separator": "-"}}},
        ZarrFormatError,
        "separator",
    ),
}


@pytest.mark.memory_bound
@pytest.mark.parametrize("case", ZARR_V3_MALFORMED)
def test_malformed_zarr_v3_is_a_typed_error(folder: Folder, case: str) -> None:
    changes, error, needle = ZARR_V3_MALFORMED[case]
    url = _zarr_v3(folder.root / "store", **changes)
    refused(lambda: ZarrParser()(url, folder.registry), error, url, "array 'x'", needle, bomb=True)


def test_zarr_chunk_keys_with_huge_indices_are_not_chunks(folder: Folder) -> None:
    url = _zarr_v2(folder.root / "store")
    (folder.root / "store" / "x" / "99999999999999999999").write_bytes(b"junk")
    (folder.root / "store" / "x" / "9999999999999999").write_bytes(b"junk")
    group = ZarrParser()(url, folder.registry)
    np.testing.assert_array_equal(vc.read_array(group["x"], folder.registry), VALUES)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "needle"),
    [("%2e%2e", "percent-decoded '..'"), ("a\\b", "holds '\\\\'"), ("%2F", "holds '/'")],
)
def test_zarr_listed_names_that_are_no_segment(folder: Folder, name: str, needle: str) -> None:
    url = _zarr_v2(folder.root / "store", array=f"{name}/x")
    refused(lambda: ZarrParser()(url, folder.registry), ZarrFormatError, url, needle)


def test_zarr_names_in_a_memory_store_listing(folder: Folder) -> None:
    store = MemoryStore()
    obstore.put(store, "s/.zgroup", json.dumps({"zarr_format": 2}).encode())
    obstore.put(store, "s/%2e%2e/x/.zarray", json.dumps(ZARRAY).encode())
    registry = vc.ObjectStoreRegistry({"memory://m/": store})
    refused(lambda: ZarrParser()(registry=registry, url="memory://m/s"), ZarrFormatError, "'..'")


def test_zarr_consolidated_names_with_dotdot(folder: Folder) -> None:
    url = _zarr_v2(folder.root / "store")
    consolidated = {
        "zarr_consolidated_format": 1,
        "metadata": {".zgroup": {"zarr_format": 2}, "../../outside/.zarray": ZARRAY},
    }
    (folder.root / "store" / ".zmetadata").write_text(json.dumps(consolidated))
    refused(
        lambda: ZarrParser()(url, folder.registry), ZarrFormatError, ".zmetadata", "'../../outside"
    )


def test_zarr_groups_nested_deeper_than_the_limit(folder: Folder) -> None:
    url = _zarr_v2(folder.root / "store", array="/".join(["g"] * 200) + "/x")
    error = refused(lambda: ZarrParser()(url, folder.registry), vc.LimitExceededError, url)
    assert isinstance(error, vc.LimitExceededError)
    assert error.limit == "max_group_depth"
    with vc.limits(max_group_depth=300):
        group = ZarrParser()(url, folder.registry)
    assert len([a for _, a in group.walk_arrays()]) == 1


@pytest.mark.memory_bound
def test_zarr_document_nested_100k_deep(folder: Folder) -> None:
    url = _zarr_v2(folder.root / "store")
    (folder.root / "store" / "x" / ".zattrs").write_text("[" * 100_000 + "]" * 100_000)
    refused(
        lambda: ZarrParser()(url, folder.registry),
        vc.LimitExceededError,
        "x/.zattrs",
        "max_json_depth",
        bomb=True,
    )


# ---- vz's manifest parquet -----------------------------------------------------------------


@pytest.fixture
def saved_group(folder: Folder) -> Path:
    """A manifest parquet group beside an ``outside.parquet`` that is not part of it."""
    manifest = vc.ChunkManifest.from_entries(
        {str(i): {"path": folder.data_url, "offset": 20 * i, "length": 20} for i in range(4)}
    )
    array = vc.VirtualArray(vc.ArrayMetadata(shape=(20,), chunk_grid=(5,), dtype="<f4"), manifest)
    vc.write_manifest_parquet(array, folder.root / "outside.parquet")
    return vc.write_manifest_parquet(vc.VirtualGroup(arrays={"x": array}), folder.root / "g")


def _rewrite_group(directory: Path, **changes: Any) -> None:
    document = json.loads((directory / "vz-group.json").read_text())
    (directory / "vz-group.json").write_text(json.dumps({**document, **changes}))


def test_manifest_group_baseline_reads_back(folder: Folder, saved_group: Path) -> None:
    group = vc.read_manifest_parquet(saved_group)
    assert isinstance(group, vc.VirtualGroup)
    np.testing.assert_array_equal(vc.read_array(group["x"], folder.registry), VALUES)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {"arrays": ["../outside"]},
        {"groups": [".."]},
        {"arrays": ["/tmp/outside"]},
        {"arrays": ["%2e%2e%2Foutside"]},
        {"groups": ["a\\b"]},
        {"arrays": [5]},
    ],
    ids=["array ..", "group ..", "absolute", "percent-encoded", "backslash", "number"],
)
@pytest.mark.parametrize("reader", ["read_manifest_parquet", "parser"])
def test_manifest_group_names_are_refused_before_any_read(
    folder: Folder, saved_group: Path, changes: dict[str, Any], reader: str
) -> None:
    _rewrite_group(saved_group, **changes)

    def read() -> object:
        if reader == "parser":
            return ManifestParquetParser()(f"file://{saved_group}", folder.registry)
        return vc.read_manifest_parquet(saved_group)

    refused(read, vc.ManifestFormatError, "vz-group.json", "must be")


def test_a_name_outside_the_group_says_nothing_of_whether_the_file_exists(
    folder: Folder, saved_group: Path
) -> None:
    """The same message whether ``../outside.parquet`` exists or not."""
    messages = []
    for name in ("outside", "absent"):
        _rewrite_group(saved_group, arrays=[f"../{name}"])
        for read in (
            lambda: vc.read_manifest_parquet(saved_group),
            lambda: ManifestParquetParser()(f"file://{saved_group}", folder.registry),
        ):
            error = refused(read, vc.ManifestFormatError, "vz-group.json")
            messages.append(str(error).replace(f"../{name}", "../NAME"))
    assert (folder.root / "outside.parquet").exists()
    assert messages[0] == messages[2], messages
    assert messages[1] == messages[3], messages


@pytest.mark.parametrize(
    ("columns", "needle"),
    [
        ({"path": [1, 2, 3, 4], "offset": [0] * 4, "length": [20] * 4}, "path"),
        ({"path": ["file:///a"] * 4, "offset": [-1] * 4, "length": [20] * 4}, "negative"),
        ({"path": ["file:///a"] * 4, "offset": ["0"] * 4, "length": [20] * 4}, "offset"),
        ({"path": ["file:///a"] * 4, "offset": [0] * 4}, "length"),
        ({"path": ["file:///a"] * 9, "offset": [0] * 9, "length": [20] * 9}, "9 rows for the 4"),
    ],
    ids=["int paths", "negative offsets", "string offsets", "no length", "more rows"],
)
def test_manifest_file_columns_of_wrong_types(
    folder: Folder, saved_group: Path, columns: dict[str, Any], needle: str
) -> None:
    written = saved_group / "x.parquet"
    metadata = pq.read_schema(written).metadata
    pq.write_table(pa.table(columns).replace_schema_metadata(metadata), written)
    refused(
        lambda: vc.read_manifest_parquet(saved_group), vc.ManifestFormatError, "x.parquet", needle
    )


def test_manifest_loaded_array_declaring_a_terabyte(folder: Folder) -> None:
    loaded = vc.LoadedArray(
        vc.ArrayMetadata(shape=(4,), chunk_grid=(4,), dtype="f4"), np.ones(4, "f4")
    )
    path = vc.write_manifest_parquet(loaded, folder.root / "l.parquet")
    metadata = dict(pq.read_schema(path).metadata)
    huge = vc.ArrayMetadata(shape=(2**40,), chunk_grid=(2**40,), dtype="f4").to_zarr_v3()
    metadata[b"zarr.json"] = json.dumps(huge).encode()
    pq.write_table(pq.read_table(path).replace_schema_metadata(metadata), path)
    error = refused(lambda: vc.read_manifest_parquet(path), vc.LimitExceededError, str(path))
    assert isinstance(error, vc.LimitExceededError)
    assert error.limit == "max_inline_bytes"


def test_manifest_groups_nested_deeper_than_the_limit(folder: Folder) -> None:
    group = vc.VirtualGroup()
    for _ in range(10):
        group = vc.VirtualGroup(groups={"g": group})
    path = vc.write_manifest_parquet(group, folder.root / "deep")
    with vc.limits(max_group_depth=5):
        error = refused(
            lambda: vc.read_manifest_parquet(path), vc.LimitExceededError, "vz-group.json"
        )
    assert isinstance(error, vc.LimitExceededError)
    assert error.limit == "max_group_depth"
    assert vc.read_manifest_parquet(path) == group


# ---- vc.limits -----------------------------------------------------------------------------


def test_raising_max_chunks_lets_a_big_but_fine_input_through(folder: Folder) -> None:
    """20 000 one-element chunks, the first 20 referenced: refused at 10 000, read at 20 000."""
    refs = {f"x__{i}": [folder.data_url, 4 * i, 4] for i in range(20)}
    document = _refs(folder, **{"x__.zarray": _zarray(shape=[20_000], chunks=[1])}, **refs)
    with vc.limits(max_chunks=10_000):
        error = refused(
            lambda: folder.kerchunk(document), vc.LimitExceededError, "max_chunks=10000"
        )
        assert isinstance(error, vc.LimitExceededError)
        assert error.needed == 20_000
        with vc.limits(max_chunks=20_000) as raised:
            assert raised.max_chunks == 20_000
            assert vc.current_limits() is raised
            x = folder.kerchunk(document)["x"]
        assert vc.current_limits().max_chunks == 10_000
    assert vc.current_limits() == vc.Limits()
    assert isinstance(x, vc.VirtualArray)
    assert x.manifest.n_chunks == 20_000
    values = vc.read_array(x, folder.registry)
    np.testing.assert_array_equal(values[:20], VALUES)
    assert not values[20:].any()


def test_limits_are_restored_after_an_error_inside_the_block() -> None:
    with pytest.raises(RuntimeError), vc.limits(max_json_depth=3):
        raise RuntimeError("inside")
    assert vc.current_limits().max_json_depth == vc.Limits().max_json_depth


@pytest.mark.parametrize(
    "overrides", [{"max_chunk": 5}, {"max_chunks": 0}, {"max_chunks": 2.5}, {"max_chunks": True}]
)
def test_bad_limits_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(vc.VirtualizationError), vc.limits(**overrides):
        pass


def test_limits_carry_into_threads_as_a_value() -> None:
    seen: dict[str, int] = {}

    def work(name: str, base: vc.Limits | None = None) -> None:
        if base is None:
            seen[name] = vc.current_limits().max_chunks
            return
        with vc.limits(base):
            seen[name] = vc.current_limits().max_chunks

    with vc.limits(max_chunks=7):
        plain = threading.Thread(target=work, args=("plain",))
        carried = threading.Thread(target=work, args=("carried", vc.current_limits()))
        context = contextvars.copy_context()
        copied = threading.Thread(target=context.run, args=(work, "copied"))
        for thread in (plain, carried, copied):
            thread.start()
            thread.join()
    assert seen == {"plain": vc.Limits().max_chunks, "carried": 7, "copied": 7}


# ---- the JSON depth scan -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"1", 0),
        (b"[]", 1),
        (b'{"a": [1, {"b": "]]"}]}', 3),
        (rb'["\\"]', 1),
        (rb'["\\\"[[["]', 1),
        (rb'[["\\\\"], "[["]', 2),
        (rb'"{{{{"', 0),
    ],
)
def test_json_depth_ignores_brackets_in_strings(text: bytes, depth: int) -> None:
    assert _nesting(json.loads(text)) == depth
    assert json_depth(text) == depth


def _nesting(value: Any) -> int:
    """The depth of a parsed JSON value (the reference for `json_depth`)."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max((_nesting(v) for v in value), default=0)
    return 0
