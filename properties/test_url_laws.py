"""Laws of URL resolution: whatever the registry resolves lies under a registered root.

Generated URLs mix every trick a hostile reference file can play — ``..`` and ``.``
segments, their percent-escapes (once and twice), ``?`` and ``#``, repeated slashes,
NUL and control characters, backslashes, foreign schemes, sibling prefixes — and
local paths walk a real folder tree with symlinks leading inside and outside.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from pathlib import Path
from urllib.parse import unquote

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from obstore.store import LocalStore

import vzcore as vc
from vzcore.byteranges import source
from vzcore.parsers import KerchunkJSONParser
from vzcore.urls import normalize_url, url_path
from vzcore.writers.kerchunk import write_kerchunk_json

ROOT = "/data/root"
SEGMENTS = st.sampled_from(
    [
        "a", "b.nc", "..", ".", "", "%2e%2e", "%2E%2e", "%252e%252e", "x?", "x#", "?", "#",
        "%3F", "%23", "%", "%25", "%2f", "%2F..", "..%2f..", "a\\..", "%5c", "%00", "\x00",
        "\n", "%0a", "root", "rootx", "data", "~", " ", "é", "%C3%A9", ";", "@",
    ]
)  # fmt: skip
PREFIXES = st.sampled_from(
    [
        f"file://{ROOT}/", f"file://{ROOT}", f"file://{ROOT}x/", "file:///data/", "file://",
        "file://host/data/root/", "FILE://" + ROOT + "/", "s3://bucket/", "http://h/",
        f"{ROOT}/", "relative/", "",
    ]
)  # fmt: skip
URLS = st.builds(
    lambda prefix, parts: prefix + "/".join(parts), PREFIXES, st.lists(SEGMENTS, max_size=8)
)


class PathEcho:
    """A reader that records the store paths it is asked for (no obstore)."""

    async def get_ranges_async(
        self, path: str, *, starts: list[int], ends: list[int]
    ) -> list[bytes]:
        return []

    async def get_async(self, path: str) -> bytes:
        return b""

    def get_ranges(self, path: str, *, starts: list[int], ends: list[int]) -> list[bytes]:
        return []

    def get(self, path: str) -> bytes:
        return b""


REGISTRY = vc.ObjectStoreRegistry({f"file://{ROOT}/": PathEcho()})


@given(URLS)
def test_resolved_paths_stay_under_the_root(url: str) -> None:
    try:
        _, path = REGISTRY.resolve(url)
    except vc.UnregisteredURLError:
        return
    assert "\x00" not in path
    assert "\\" not in path
    assert not {"..", "."} & set(path.split("/"))
    full = posixpath.normpath(posixpath.join(ROOT, path))
    assert full == ROOT or full.startswith(ROOT + "/")


@given(URLS)
def test_normalisation_is_idempotent_and_resolution_agrees(url: str) -> None:
    try:
        once = normalize_url(url)
    except vc.UnregisteredURLError:
        return
    assert normalize_url(once) == once
    try:
        resolved = REGISTRY.resolve(url)[1]
    except vc.UnregisteredURLError:
        resolved = None
    try:
        again = REGISTRY.resolve(once)[1]
    except vc.UnregisteredURLError:
        again = None
    assert resolved == again


@given(st.lists(SEGMENTS, max_size=8))
def test_the_store_path_is_the_decoded_path(parts: list[str]) -> None:
    """The path a store is asked for names the file the URL names, decoded exactly once."""
    url = f"file://{ROOT}/" + "/".join(parts)
    try:
        _, path = REGISTRY.resolve(url)
    except vc.UnregisteredURLError:
        return
    expected = posixpath.normpath("/" + unquote(url[len("file://") :]).lstrip("/"))
    assert posixpath.join(ROOT, path).rstrip("/") == expected.rstrip("/")
    assert url_path(normalize_url(url)[len(f"file://{ROOT}/") :]) == path


def _tree() -> tuple[str, str]:
    """A real folder tree with symlinks inside and out: (registered root, outside folder)."""
    base = Path(tempfile.mkdtemp(prefix="vz-url-laws-"))
    root, outside = base / "root", base / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    for folder in (root, root / "sub", outside):
        (folder / "f.bin").write_bytes(b"inside" if folder != outside else b"OUTSIDE")
    (root / "in_file").symlink_to(root / "sub" / "f.bin")
    (root / "in_dir").symlink_to(root / "sub")
    (root / "out_file").symlink_to(outside / "f.bin")
    (root / "out_dir").symlink_to(outside)
    (root / "sub" / "up").symlink_to("..")
    (root / "sub" / "upup").symlink_to("../..")
    (root / "loop").symlink_to("loop")
    return str(root), str(outside)


TREE_ROOT, TREE_OUTSIDE = _tree()
TREE = vc.ObjectStoreRegistry({f"file://{TREE_ROOT}/": LocalStore(TREE_ROOT)})
TREE_SEGMENTS = st.sampled_from(
    ["sub", "f.bin", "in_file", "in_dir", "out_file", "out_dir", "up", "upup", "loop", "..", "."]
)


@given(st.lists(TREE_SEGMENTS, min_size=1, max_size=6))
def test_local_reads_never_leave_the_real_root(parts: list[str]) -> None:
    url = f"file://{TREE_ROOT}/" + "/".join(parts)
    try:
        file = source(TREE, url)
        local = file.local_path()
        data = bytes(file.read())
    except vc.VirtualizationError:
        return  # refused, outside the registry, missing or a folder: all typed
    assert data == b"inside"
    assert local is not None
    real = os.path.realpath(local)
    assert real.startswith(os.path.realpath(TREE_ROOT) + "/")


@given(st.lists(SEGMENTS, min_size=1, max_size=6))
def test_kerchunk_references_keep_the_file_they_name(parts: list[str]) -> None:
    """Writing Kerchunk JSON and parsing it back names the same file (fsspec-literal paths)."""
    try:
        url = normalize_url(f"file://{ROOT}/" + "/".join(parts))
        REGISTRY.resolve(url)
    except vc.UnregisteredURLError:
        return
    metadata = vc.ArrayMetadata.create(shape=(4,), chunk_shape=(4,), dtype="<i4")
    manifest = vc.ChunkManifest.from_arrays(
        paths=np.array([url]), offsets=np.array([0]), lengths=np.array([16])
    )
    group = vc.VirtualGroup(arrays={"x": vc.VirtualArray(metadata, manifest)})
    folder = Path(tempfile.mkdtemp(prefix="vz-url-refs-"))
    path = write_kerchunk_json(group, folder / "refs.json")
    registry = vc.ObjectStoreRegistry(
        {f"file://{ROOT}/": PathEcho(), f"file://{folder}/": LocalStore(str(folder))}
    )
    parsed = KerchunkJSONParser()(f"file://{path}", registry)["x"]
    assert isinstance(parsed, vc.VirtualArray)
    assert parsed.manifest.paths.to_pylist() == [url]
