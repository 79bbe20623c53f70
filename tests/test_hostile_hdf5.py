"""HDF5 files that point outside themselves, or loop: vz never leaves the file, never hangs.

External links, virtual datasets (VDS) and external raw storage (``H5D_EXTERNAL``) name
other files that HDF5 would open from the local disk, whatever store the parent came
from. Each is refused with a typed error naming the file, the link or variable and
the target, or left out with a `SkippedLinkWarning` under ``external_links="skip"``;
the other members then read back equal to h5py. The targets hold a marker (text
``LEAKMARK`` in attributes and values, and integers whose bytes spell it) that must
never appear in any output: attributes, loaded values, `ManifestStore` reads,
`read_array`, Kerchunk references with every chunk inlined. Soft and hard links inside
the file are followed once; cycles are refused, deep or exploding trees are bounded.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import obstore
import pytest
import zarr
from obstore.store import LocalStore, MemoryStore
from tests.s3_server import S3Bucket

import vzcore as vc
import vzxarray as vx
from vzcore.parsers import (
    ExternalLinkError,
    ExternalStorageError,
    HDF5FormatError,
    HDF5LimitError,
    HDFParser,
    LinkCycleError,
    SkippedLinkWarning,
    VirtualDatasetError,
)
from vzcore.parsers.hdf5_links import MAX_GROUP_DEPTH
from vzcore.writers.kerchunk import kerchunk_refs

MARKER = b"LEAKMARK"
MARKER_INTS = np.frombuffer(MARKER * 6, dtype="<i8")  # six integers whose bytes spell it
BACKENDS = ("local", "memory", "s3")

type Parent = tuple[str, vc.ObjectStoreRegistry]
type Publish = Callable[[Path], Parent]


# ---- files -------------------------------------------------------------------------------


def write_target(path: Path) -> Path:
    """A file full of the marker: attributes, contiguous, compact and string values, a scale."""
    with h5py.File(path, "w") as t:
        t.attrs["marker"] = f"{MARKER.decode()} in the root's attributes"
        t["values"] = MARKER_INTS
        t["values"].attrs["marker"] = MARKER.decode()
        space = h5py.h5s.create_simple((6,))
        plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        plist.set_layout(h5py.h5d.COMPACT)
        compact = h5py.h5d.create(t.id, b"compact", h5py.h5t.STD_I64LE, space, dcpl=plist)
        compact.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(MARKER_INTS))
        t["text"] = np.array([MARKER, MARKER])
        t["time"] = MARKER_INTS
        t["time"].make_scale("time")
        t.create_group("sub").attrs["marker"] = MARKER.decode()
        t["sub/inner"] = MARKER_INTS
    return path


def in_file_values() -> dict[str, np.ndarray[Any, Any]]:
    """The parent's own datasets (what must read back equal to h5py)."""
    return {
        "temp": np.linspace(0.0, 1.0, 6),
        "grp/counts": np.arange(12, dtype="i4").reshape(3, 4),
        "grp/chunked": np.arange(40, dtype="f4").reshape(8, 5),
    }


def write_parent(path: Path, target: Path | str) -> Path:
    """The parent's datasets, and external links to the target's every kind of member."""
    target = str(target)
    with h5py.File(path, "w") as f:
        f.attrs["title"] = "parent"
        for name, values in in_file_values().items():
            f.create_dataset(name, data=values, chunks=(4, 5) if name == "grp/chunked" else None)
        f["ext_root"] = h5py.ExternalLink(target, "/")
        f["ext_values"] = h5py.ExternalLink(target, "/values")
        f["grp/ext_compact"] = h5py.ExternalLink(target, "/compact")
        f["grp/ext_text"] = h5py.ExternalLink(target, "/text")
        f["ext_sub"] = h5py.ExternalLink(target, "/sub")
        f["time"] = h5py.ExternalLink(target, "/time")
    return path


def external_names() -> set[str]:
    return {"/ext_root", "/ext_values", "/grp/ext_compact", "/grp/ext_text", "/ext_sub", "/time"}


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder that no registry serves: where the targets live."""
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


@pytest.fixture
def publish(request: pytest.FixtureRequest, tmp_path: Path) -> Publish:
    """Serve a parent file from the backend the test is parametrized with."""
    backend = request.param
    inside = tmp_path / "inside"
    inside.mkdir(exist_ok=True)

    def local(path: Path) -> Parent:
        prefix = f"file://{inside}/"
        moved = path.rename(inside / path.name)
        return prefix + moved.name, vc.ObjectStoreRegistry({prefix: LocalStore(inside)})

    def memory(path: Path) -> Parent:
        store = MemoryStore()
        obstore.put(store, path.name, path.read_bytes())
        return f"memory://m/{path.name}", vc.ObjectStoreRegistry({"memory://m/": store})

    def s3(path: Path) -> Parent:
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        return bucket.put_file(path.name, path), bucket.registry()

    return {"local": local, "memory": memory, "s3": s3}[backend]


# ---- the marker never leaks --------------------------------------------------------------


def _leaks(blob: bytes) -> bool:
    return MARKER in blob or MARKER[::-1] in blob


def _blobs_of(value: Any) -> Iterator[bytes]:
    """Every byte string a JSON-like value holds, base64 inlines decoded."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _blobs_of(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _blobs_of(item)
    elif isinstance(value, str):
        yield value.encode()
        if value.startswith("base64:"):
            yield base64.b64decode(value[len("base64:") :])
        else:
            yield from _blobs_of_json(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        yield value.to_bytes(16, "little", signed=True)


def _blobs_of_json(text: str) -> Iterator[bytes]:
    try:
        parsed = json.loads(text)
    except ValueError:
        return
    if isinstance(parsed, dict | list):
        yield from _blobs_of(parsed)


def _value_bytes(values: Any) -> bytes:
    array = np.asarray(values)
    if array.dtype.kind == "U":
        return "".join(array.ravel().tolist()).encode()
    if array.dtype.kind == "O":
        return repr(array.tolist()).encode()
    return array.tobytes()


def assert_no_marker(group: vc.VirtualGroup, registry: vc.ObjectStoreRegistry) -> None:
    """No output of ``group`` holds a byte of the targets' marker."""
    everything = kerchunk_refs(group, inline_threshold=1 << 30, registry=registry)
    for blob in _blobs_of(everything):
        assert not _leaks(blob), "the marker is in the Kerchunk references"
    root = zarr.open_group(vc.ManifestStore(group, registry=registry), mode="r")
    for path, array in group.walk_arrays():
        assert not _leaks(_value_bytes(vc.read_array(array, registry))), path
        stored = root[path]
        assert isinstance(stored, zarr.Array)
        assert not _leaks(_value_bytes(stored[...])), path
        assert not _leaks(json.dumps(dict(stored.attrs)).encode()), path
    for path, _ in group.walk_groups():
        node = root[path] if path else root
        assert not _leaks(json.dumps(dict(node.attrs)).encode()), path


def assert_reads_like_h5py(
    group: vc.VirtualGroup, registry: vc.ObjectStoreRegistry, local_copy: Path
) -> None:
    """The parent's own datasets, and nothing else, read back equal to h5py's."""
    assert {p for p, _ in group.walk_arrays()} == set(in_file_values())
    root = zarr.open_group(vc.ManifestStore(group, registry=registry), mode="r")
    with h5py.File(local_copy, "r") as f:
        for path in in_file_values():
            expected = f[path][()]
            np.testing.assert_array_equal(vc.read_array(group[path], registry), expected)
            stored = root[path]
            assert isinstance(stored, zarr.Array)
            np.testing.assert_array_equal(stored[...], expected)


@contextmanager
def within(seconds: int) -> Iterator[None]:
    """Fail, rather than block the suite, when the body runs past ``seconds``."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ---- external links ----------------------------------------------------------------------


@pytest.mark.parametrize("publish", BACKENDS, indirect=True)
@pytest.mark.parametrize("target_exists", [True, False], ids=["target", "no-target"])
def test_external_links_are_refused_naming_file_link_and_target(
    publish: Publish, tmp_path: Path, outside: Path, target_exists: bool
) -> None:
    target = outside / "target.h5"
    if target_exists:
        write_target(target)
    url, registry = publish(write_parent(tmp_path / "parent.h5", target))
    with within(60), pytest.raises(ExternalLinkError) as info:
        HDFParser()(url, registry)
    error = info.value
    message = str(error)
    assert url in message
    assert error.url == url
    assert error.link in external_names()
    assert f"link {error.link!r}" in message
    assert error.target_file == str(target)
    assert str(target) in message
    assert repr(error.target_path) in message
    assert "external_links='skip'" in message
    assert "drop_variables=" in message
    assert not _leaks(message.encode())


@pytest.mark.parametrize("publish", BACKENDS, indirect=True)
def test_skip_leaves_external_links_out_and_reads_the_rest(
    publish: Publish, tmp_path: Path, outside: Path
) -> None:
    target = write_target(outside / "target.h5")
    parent = write_parent(tmp_path / "parent.h5", target)
    local_copy = outside / "parent-copy.h5"
    local_copy.write_bytes(parent.read_bytes())
    url, registry = publish(parent)
    with within(60), pytest.warns(SkippedLinkWarning) as warned:
        group = HDFParser(external_links="skip")(url, registry)
    links = {w.message.link for w in warned if isinstance(w.message, SkippedLinkWarning)}
    assert links == external_names()
    for record in warned:
        assert url in str(record.message)
        assert str(target) in str(record.message)
        assert record.filename == __file__  # attributed to the caller, not to vz
    assert set(group.groups) == {"grp"}
    assert dict(group.attributes) == {"title": "parent"}
    assert_reads_like_h5py(group, registry, local_copy)
    assert_no_marker(group, registry)


def test_dropping_an_external_link_by_name_or_path_needs_no_option(
    tmp_path: Path, outside: Path
) -> None:
    target = write_target(outside / "target.h5")
    parent = write_parent(tmp_path / "parent.h5", target)
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    drops = ("ext_root", "ext_values", "/grp/ext_compact", "/grp/ext_text", "ext_sub", "time")
    group = HDFParser(drop_variables=drops)(f"file://{parent}", registry)
    assert_reads_like_h5py(group, registry, parent)
    assert_no_marker(group, registry)


def test_a_soft_link_through_an_external_link_is_an_external_link(
    tmp_path: Path, outside: Path
) -> None:
    target = write_target(outside / "target.h5")
    with h5py.File(tmp_path / "p.h5", "w") as f:
        f["temp"] = np.arange(3.0)
        f["ext"] = h5py.ExternalLink(str(target), "/")
        f["g/alias"] = h5py.SoftLink("/ext/sub/inner")
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    url = f"file://{tmp_path}/p.h5"
    with pytest.raises(ExternalLinkError) as info:
        HDFParser(drop_variables=("/ext",))(url, registry)
    assert info.value.link == "/g/alias"
    assert "'/g/alias' is a soft link through the external link '/ext'" in str(info.value)
    assert info.value.target_file == str(target)
    with pytest.warns(SkippedLinkWarning, match="'/g/alias'"):
        group = HDFParser(drop_variables=("/ext",), external_links="skip")(url, registry)
    assert set(group.arrays) == {"temp"}
    assert dict(group.groups["g"].arrays) == {}


def test_the_group_option_never_passes_through_an_external_link(
    tmp_path: Path, outside: Path
) -> None:
    target = write_target(outside / "target.h5")
    parent = write_parent(tmp_path / "parent.h5", target)
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    for group in ("/ext_sub", "ext_root/sub", "/ext_root"):
        for mode in ("error", "skip"):
            with pytest.raises(ExternalLinkError, match="passes through the external link"):
                HDFParser(group=group, external_links=mode)(f"file://{parent}", registry)  # type: ignore[arg-type]


def test_an_external_dimension_scale_does_not_sneak_into_the_dataset(
    tmp_path: Path, outside: Path
) -> None:
    target = write_target(outside / "target.h5")
    with h5py.File(tmp_path / "p.h5", "w") as f:
        f["time"] = h5py.ExternalLink(str(target), "/time")
        f["temp"] = np.arange(6.0)
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    url = f"file://{tmp_path}/p.h5"
    with pytest.raises(ExternalLinkError, match="'/time'"):
        vx.open_virtual_dataset(url, registry=registry, parser=HDFParser())
    parser = HDFParser(external_links="skip")
    with pytest.warns(SkippedLinkWarning, match="'/time'"):
        ds = vx.open_virtual_dataset(url, registry=registry, parser=parser)
    assert set(ds.variables) == {"temp"}
    assert "time" not in ds.dims
    with pytest.warns(SkippedLinkWarning):
        loaded = vx.open_virtual_dataset(
            url, registry=registry, parser=parser, loadable_variables=["temp"]
        )
    np.testing.assert_array_equal(loaded["temp"].values, np.arange(6.0))
    with pytest.warns(SkippedLinkWarning):
        assert_no_marker(parser(url, registry), registry)


def test_a_scale_attached_from_another_file_is_refused_by_name(
    tmp_path: Path, outside: Path
) -> None:
    """Object references resolve in their own file: the parent's points at nothing there."""
    target = write_target(outside / "target.h5")
    with h5py.File(tmp_path / "p.h5", "w") as f:
        f["time"] = h5py.ExternalLink(str(target), "/time")
        f["temp"] = np.arange(6.0)
        f["temp"].dims[0].attach_scale(f["time"])
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    url = f"file://{tmp_path}/p.h5"
    with pytest.raises(HDF5FormatError) as info:
        HDFParser(drop_variables=("time",))(url, registry)
    message = str(info.value)
    assert url in message
    assert "variable '/temp'" in message
    assert "does not resolve" in message
    assert not _leaks(message.encode())


# ---- virtual datasets and external raw storage -------------------------------------------


def write_vds_parent(path: Path, source: Path) -> Path:
    with h5py.File(source, "w") as s:
        s["values"] = MARKER_INTS
        s["text"] = np.array([MARKER] * 6)
    with h5py.File(path, "w") as f:
        f["temp"] = np.linspace(0.0, 1.0, 6)
        f.create_group("grp")
        f["grp/counts"] = np.arange(12, dtype="i4").reshape(3, 4)
        f.create_dataset("grp/chunked", data=np.arange(40, dtype="f4").reshape(8, 5), chunks=(4, 5))
        for name, source_name, dtype in (("vds", "values", "<i8"), ("grp/vds_text", "text", "S8")):
            layout = h5py.VirtualLayout(shape=(6,), dtype=dtype)
            layout[:] = h5py.VirtualSource(str(source), source_name, shape=(6,))
            f.create_virtual_dataset(name, layout)
        layout = h5py.VirtualLayout(shape=(6,), dtype="f8")
        layout[:] = h5py.VirtualSource(f["temp"])
        f.create_virtual_dataset("vds_self", layout)
    return path


@pytest.mark.parametrize("publish", BACKENDS, indirect=True)
def test_virtual_datasets_are_refused_even_when_loadable(
    publish: Publish, tmp_path: Path, outside: Path
) -> None:
    source = outside / "source.h5"
    parent = write_vds_parent(tmp_path / "parent.h5", source)
    local_copy = outside / "parent-copy.h5"
    local_copy.write_bytes(parent.read_bytes())
    url, registry = publish(parent)
    for loadable in (None, ("vds", "vds_text", "vds_self")):
        with pytest.raises(VirtualDatasetError) as info:
            HDFParser(loadable_variables=loadable, inline_threshold=1 << 20)(url, registry)
        error = info.value
        assert error.url == url
        assert url in str(error)
        assert f"variable {error.variable!r}" in str(error)
        assert error.variable in {"/vds", "/grp/vds_text", "/vds_self"}
        assert set(error.source_files) <= {str(source), "."}
    with pytest.warns(SkippedLinkWarning) as warned:
        group = HDFParser(external_links="skip", loadable_variables=("vds",))(url, registry)
    skipped = {w.message.link for w in warned if isinstance(w.message, SkippedLinkWarning)}
    assert skipped == {"/vds", "/grp/vds_text", "/vds_self"}
    assert any(str(source) in str(w.message) for w in warned)
    assert_reads_like_h5py(group, registry, local_copy)
    assert_no_marker(group, registry)


def write_external_storage_parent(path: Path, raw: Path) -> Path:
    raw.write_bytes(MARKER * 8)
    with h5py.File(path, "w") as f:
        for name, values in in_file_values().items():
            f.create_dataset(name, data=values)
        f.create_dataset("raw", shape=(8,), dtype="<i8", external=[(str(raw), 0, 64)])
    return path


@pytest.mark.parametrize("publish", BACKENDS, indirect=True)
def test_external_raw_storage_is_refused_even_when_loadable_or_inlined(
    publish: Publish, tmp_path: Path, outside: Path
) -> None:
    raw = outside / "raw.bin"
    parent = write_external_storage_parent(tmp_path / "parent.h5", raw)
    local_copy = outside / "parent-copy.h5"
    local_copy.write_bytes(parent.read_bytes())
    with h5py.File(local_copy, "r") as f:  # h5py itself reads the marker from the raw file
        assert f["raw"][()].tobytes() == MARKER * 8
    url, registry = publish(parent)
    for options in ({}, {"loadable_variables": ("raw",)}, {"inline_threshold": 1 << 20}):
        with pytest.raises(ExternalStorageError) as info:
            HDFParser(**options)(url, registry)  # type: ignore[arg-type]
        error = info.value
        assert error.url == url
        assert error.variable == "/raw"
        assert error.files == (str(raw),)
        assert url in str(error)
        assert "variable '/raw'" in str(error)
        assert str(raw) in str(error)
    with pytest.warns(SkippedLinkWarning, match="'/raw'"):
        group = HDFParser(external_links="skip", loadable_variables=("raw",))(url, registry)
    assert_reads_like_h5py(group, registry, local_copy)
    assert_no_marker(group, registry)


def test_targets_that_would_block_when_opened_are_never_opened(
    tmp_path: Path, outside: Path
) -> None:
    """Every target is a FIFO: HDF5 opening one blocks forever, so finishing proves it never did.

    Run in a child process with a timeout, since a thread blocked in HDF5's open() does
    not wake for a signal.
    """
    for name in ("target.h5", "source.h5", "raw.bin"):
        placeholder = outside / name
        placeholder.write_bytes(b"")
    write_parent(tmp_path / "links.h5", outside / "target.h5")
    write_vds_parent(tmp_path / "vds.h5", outside / "source.h5")
    write_external_storage_parent(tmp_path / "raw.h5", outside / "raw.bin")
    for name in ("target.h5", "source.h5", "raw.bin"):
        (outside / name).unlink()
        os.mkfifo(outside / name)
    script = textwrap.dedent(
        f"""
        import warnings
        import obstore
        from obstore.store import LocalStore, MemoryStore
        import vzcore as vc
        from vzcore.parsers import HDFParser, HDF5UnsupportedError

        folder = {str(tmp_path)!r}
        memory = MemoryStore()
        for name in ("links.h5", "vds.h5", "raw.h5"):
            obstore.put(memory, name, open(folder + "/" + name, "rb").read())
        backends = [
            ("file://" + folder + "/", vc.ObjectStoreRegistry({{"file://" + folder + "/": LocalStore(folder)}})),
            ("memory://m/", vc.ObjectStoreRegistry({{"memory://m/": memory}})),
        ]
        for prefix, registry in backends:
            for name in ("links.h5", "vds.h5", "raw.h5"):
                try:
                    HDFParser()(prefix + name, registry)
                    raise SystemExit(name + " was not refused")
                except HDF5UnsupportedError:
                    pass
                with warnings.catch_warnings(record=True):
                    warnings.simplefilter("always")
                    group = HDFParser(external_links="skip")(prefix + name, registry)
                for path, array in group.walk_arrays():
                    vc.read_array(array, registry)
        print("done")
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"


# ---- links inside the file ---------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> Callable[[str], Parent]:
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    return lambda name: (f"file://{tmp_path}/{name}", registry)


def test_soft_and_hard_links_inside_the_file_appear_under_every_name(
    tmp_path: Path, local: Callable[[str], Parent]
) -> None:
    with h5py.File(tmp_path / "links.h5", "w") as f:
        f["data"] = np.arange(6.0)
        f["grp/inner"] = np.arange(4, dtype="i2")
        f["soft_data"] = h5py.SoftLink("/data")
        f["grp/relative"] = h5py.SoftLink("inner")
        f["grp/dotted"] = h5py.SoftLink("./inner")
        f["hard_data"] = f["data"]
        f["soft_grp"] = h5py.SoftLink("/grp")
        f["hard_grp"] = f["grp"]
        f["chain"] = h5py.SoftLink("/soft_data")
    url, registry = local("links.h5")
    group = HDFParser()(url, registry)
    expected = {
        "data", "soft_data", "hard_data", "chain",
        *(f"{g}/{n}" for g in ("grp", "soft_grp", "hard_grp") for n in ("inner", "relative", "dotted")),
    }  # fmt: skip
    assert {p for p, _ in group.walk_arrays()} == expected
    with h5py.File(tmp_path / "links.h5", "r") as f:
        for path in expected:
            np.testing.assert_array_equal(vc.read_array(group[path], registry), f[path][()])
    assert group.groups["soft_grp"] == group.groups["grp"] == group.groups["hard_grp"]


def test_a_dangling_soft_link_is_left_out_with_a_warning(
    tmp_path: Path, local: Callable[[str], Parent]
) -> None:
    with h5py.File(tmp_path / "dangling.h5", "w") as f:
        f["data"] = np.arange(3)
        f["nowhere"] = h5py.SoftLink("/missing/thing")
        f["through_data"] = h5py.SoftLink("/data/below")
        f["loop_a"] = h5py.SoftLink("/loop_b")
        f["loop_b"] = h5py.SoftLink("/loop_a")
    url, registry = local("dangling.h5")
    with within(60), pytest.warns(SkippedLinkWarning) as warned:
        group = HDFParser()(url, registry)
    messages = {w.message.link: str(w.message) for w in warned}  # type: ignore[union-attr]
    assert set(messages) == {"/nowhere", "/through_data", "/loop_a", "/loop_b"}
    assert "'/missing/thing'" in messages["/nowhere"]
    assert url in messages["/nowhere"]
    assert "'/data' is not a group" in messages["/through_data"]
    assert "soft links in a row" in messages["/loop_a"]
    assert set(group.arrays) == {"data"}


@pytest.mark.parametrize("kind", ["hard", "soft", "soft_relative_root"])
def test_a_link_back_to_an_enclosing_group_is_a_cycle(
    kind: str, tmp_path: Path, local: Callable[[str], Parent]
) -> None:
    with h5py.File(tmp_path / "cycle.h5", "w") as f:
        f["a/b/data"] = np.arange(3)
        f["a/x"] = np.arange(2)
        if kind == "hard":
            f["a/b/loop"] = f["a"]
        elif kind == "soft":
            f["a/b/loop"] = h5py.SoftLink("/a")
        else:
            f["a/b/loop"] = h5py.SoftLink("/")
    url, registry = local("cycle.h5")
    with within(60), pytest.raises(LinkCycleError) as info:
        HDFParser()(url, registry)
    error = info.value
    assert error.url == url
    assert url in str(error)
    assert error.link.startswith("/a/b/loop")
    assert repr(error.link) in str(error)
    assert error.target == ("/" if kind == "soft_relative_root" else "/a")
    assert "drop_variables=" in str(error)
    group = HDFParser(drop_variables=("/a/b/loop",))(url, registry)
    assert {p for p, _ in group.walk_arrays()} == {"a/b/data", "a/x"}


def test_a_cycle_below_the_group_option_is_a_cycle_too(
    tmp_path: Path, local: Callable[[str], Parent]
) -> None:
    with h5py.File(tmp_path / "cycle.h5", "w") as f:
        f["a/b/data"] = np.arange(3)
        f["a/b/up"] = h5py.SoftLink("/")
    url, registry = local("cycle.h5")
    with within(60), pytest.raises(LinkCycleError, match="'/a/b/up/a'"):
        HDFParser(group="/a")(url, registry)


def test_a_chain_deeper_than_the_limit_is_refused_quickly(
    tmp_path: Path, local: Callable[[str], Parent]
) -> None:
    deep = "/".join(["g"] * 10_000)
    with h5py.File(tmp_path / "deep.h5", "w") as f:
        f.create_group(deep)
        f[f"{deep}/data"] = np.arange(3)
        limit = "/".join(["g"] * MAX_GROUP_DEPTH)
        f[f"{limit}/at_limit"] = np.arange(5)
    url, registry = local("deep.h5")
    with within(60), pytest.raises(HDF5LimitError) as info:
        HDFParser()(url, registry)
    error = info.value
    assert error.limit == MAX_GROUP_DEPTH
    assert url in str(error)
    assert error.path == "/" + "/".join(["g"] * (MAX_GROUP_DEPTH + 1))
    # MAX_GROUP_DEPTH groups deep is read, and reads back.
    group = HDFParser(drop_variables=("/" + limit + "/g",))(url, registry)
    at_limit = group[f"{limit}/at_limit"]
    assert isinstance(at_limit, vc.VirtualArray | vc.LoadedArray)
    np.testing.assert_array_equal(vc.read_array(at_limit, registry), np.arange(5))


def test_a_tree_that_explodes_through_shared_groups_is_bounded(
    tmp_path: Path, local: Callable[[str], Parent]
) -> None:
    """Each level links the next twice: 2**40 names, 40 groups, refused at once."""
    with h5py.File(tmp_path / "diamond.h5", "w") as f:
        level = f.create_group("l0")
        level["data"] = np.arange(3)
        for depth in range(1, 41):
            parent = f.create_group(f"l{depth}")
            parent["left"] = level
            parent["right"] = level
            level = parent
    url, registry = local("diamond.h5")
    with within(60), pytest.raises(HDF5LimitError, match="more than 1048576 arrays and groups"):
        HDFParser()(url, registry)
    small = HDFParser(group="/l3")(url, registry)
    assert len(list(small.walk_arrays())) == 8
    np.testing.assert_array_equal(
        vc.read_array(small["left/right/left/data"], registry),
        np.arange(3),  # type: ignore[arg-type]
    )


def test_a_shared_group_honours_a_drop_by_full_path_under_one_name(
    tmp_path: Path, local: Callable[[str], Parent]
) -> None:
    with h5py.File(tmp_path / "shared.h5", "w") as f:
        f["grp/x"] = np.arange(3)
        f["grp/y"] = np.arange(4)
        f["alias"] = f["grp"]
    url, registry = local("shared.h5")
    group = HDFParser(drop_variables=("/alias/y",))(url, registry)
    assert set(group.groups["grp"].arrays) == {"x", "y"}
    assert set(group.groups["alias"].arrays) == {"x"}


def test_external_links_takes_error_or_skip() -> None:
    with pytest.raises(ValueError, match="external_links"):
        HDFParser(external_links="follow")  # type: ignore[arg-type]


def test_the_second_line_of_defence_reads_no_target_even_if_asked_to_traverse(
    tmp_path: Path, outside: Path
) -> None:
    """Were HDF5 asked to traverse an external link with the walk's access list, the
    target's bytes would come from an empty buffer: no target object is opened."""
    from vzcore.parsers.hdf5_links import Walker

    target = write_target(outside / "target.h5")
    parent = write_parent(tmp_path / "parent.h5", target)
    with h5py.File(parent, "r") as f:
        assert isinstance(h5py.h5o.open(f.id, b"ext_values"), h5py.h5d.DatasetID)  # h5py would
        walker = Walker(f, f"file://{parent}", "error")
        for name in (b"ext_values", b"ext_root", b"ext_sub"):
            with pytest.raises(KeyError, match="file signature not found"):
                h5py.h5o.open(f.id, name, lapl=walker.lapl)


def test_a_shared_group_counts_its_own_depth_where_it_is_linked_again(
    tmp_path: Path, local: Callable[[str], Parent]
) -> None:
    """``/a`` holds a 200-deep chain; linked again 100 groups down, the tree is 301 deep."""
    with h5py.File(tmp_path / "deep_share.h5", "w") as f:
        chain = "a/" + "/".join(["g"] * 200)
        f[f"{chain}/data"] = np.arange(3)
        low = "b/" + "/".join(["h"] * 99)
        f.create_group(low)
        f[f"{low}/again"] = f["a"]
    url, registry = local("deep_share.h5")
    with within(60), pytest.raises(HDF5LimitError) as info:
        HDFParser()(url, registry)
    assert info.value.path == "/" + low + "/again"
    group = HDFParser(drop_variables=("again",))(url, registry)
    assert {p for p, _ in group.walk_arrays()} == {f"{chain}/data"}


def test_a_huge_unwritten_chunk_grid_is_refused_before_any_allocation(tmp_path: Path) -> None:
    """An HDF5 dataset may declare 2**40 chunks and store none; the manifest would be 20 TB."""
    path = tmp_path / "huge_grid.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("huge", shape=(2**40,), chunks=(1,), dtype="u1")
        file.create_dataset("small", data=np.arange(4))
    registry = vc.ObjectStoreRegistry.for_urls([str(path)])
    with pytest.raises(vc.LimitExceededError) as info:
        HDFParser()(str(path), registry)
    assert "huge" in str(info.value)
    assert "max_chunks" in str(info.value)
    parsed = HDFParser(drop_variables=["huge"])(str(path), registry)
    np.testing.assert_array_equal(vc.read_array(parsed["small"], registry), np.arange(4))  # type: ignore[arg-type]
