"""Writers leave the previous output or nothing: failed renames, full disks, crashed runs.

Each writer's previous output is written from one netCDF4 file; then a second write
fails at a chosen step (the final rename, a parquet or JSON write mid-way, an Icechunk
reference or commit) with ``OSError(ENOSPC)`` injected by monkeypatch. Afterwards the
folder holds exactly the bytes it held before (no temporary names left), the error is a
`WriteError` naming the target and the reason, and the output still reads back equal
to the file netCDF4 wrote. For Icechunk the branch tip stays the previous snapshot, and
a failed ``vz virtualize --format icechunk`` leaves nothing that blocks a rerun.
"""

from __future__ import annotations

import errno
import os
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import icechunk
import netCDF4
import numpy as np
import pyarrow.parquet as pq
import pytest
import zarr

import vzcore as vc
from vzcore.parsers import HDFParser, detect_parser
from vzcore.writers import (
    WriteError,
    write_icechunk,
    write_kerchunk_json,
    write_kerchunk_parquet,
    write_manifest_parquet,
)
from vzcore.writers import _atomic as atomic
from vzcore.writers import kerchunk as kerchunk_module
from vzcore.writers.icechunk import _set_block
from vzxarray.cli import main

VARIABLES = ("tas", "count")
FORMATS = ("kerchunk-json", "kerchunk-parquet", "manifest-parquet", "manifest-array")
"""Every local writer; ``manifest-array`` is one array's single parquet file."""


def _write_netcdf(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("time", 6)
        ds.createDimension("x", 5)
        ds.createVariable("tas", "f4", ("time", "x"), zlib=True, chunksizes=(2, 5))[:] = (
            rng.standard_normal((6, 5)).astype("f4")
        )
        ds.createVariable("count", "i4", ("time",), chunksizes=(3,))[:] = rng.integers(
            0, 1000, 6, dtype="i4"
        )
    return path


def _netcdf_values(path: Path) -> dict[str, np.ndarray]:
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(False)
        return {name: np.asarray(ds[name][...]) for name in VARIABLES}


class Sources:
    """Two netCDF4 files: ``old`` for the previous output, ``new`` for the one that fails."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.old = _write_netcdf(folder / "old.nc", seed=1)
        self.new = _write_netcdf(folder / "new.nc", seed=2)
        self.registry = vc.ObjectStoreRegistry.for_urls([str(self.old)])

    def group(self, path: Path) -> vc.VirtualGroup:
        return HDFParser()(f"file://{path}", self.registry)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Sources:
    return Sources(tmp_path_factory.mktemp("hostile-sources"))


@pytest.fixture
def out_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def write(fmt: str, group: vc.VirtualGroup, folder: Path) -> Path:
    """``group`` written by the writer of ``fmt`` under ``folder``."""
    if fmt == "kerchunk-json":
        return write_kerchunk_json(group, folder / "refs.json")
    if fmt == "kerchunk-parquet":
        return write_kerchunk_parquet(group, folder / "refs.parq", record_size=2)
    if fmt == "manifest-parquet":
        return write_manifest_parquet(group, folder / "store")
    return write_manifest_parquet(group.arrays["tas"], folder / "tas.parquet")


def read_back(fmt: str, target: Path, registry: vc.ObjectStoreRegistry) -> dict[str, np.ndarray]:
    """The values the output at ``target`` references, read with vz's own readers."""
    if fmt == "manifest-array":
        return {"tas": vc.read_array(vc.read_manifest_parquet(target), registry)}
    url = f"file://{target}"
    readers = vc.ObjectStoreRegistry.for_urls([url, *registry.prefixes])
    group = detect_parser(url, readers)(url, readers)
    return {name: vc.read_array(group.arrays[name], registry) for name in VARIABLES}


def assert_reads_like(
    values: dict[str, np.ndarray], path: Path, names: tuple[str, ...] = VARIABLES
) -> None:
    expected = _netcdf_values(path)
    assert set(values) == set(names)
    for name in names:
        np.testing.assert_array_equal(values[name], expected[name])


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every name under ``folder`` (hidden ones too) with a file's bytes, None for a folder."""
    return {
        str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(folder.rglob("*"))
    }


def _enospc(what: str) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), what)


def _raiser(err: BaseException) -> Callable[..., NoReturn]:
    def fail(*args: Any, **kwargs: Any) -> NoReturn:
        raise err

    return fail


def _names(fmt: str) -> tuple[str, ...]:
    return ("tas",) if fmt == "manifest-array" else VARIABLES


def _fail_renames_onto(monkeypatch: pytest.MonkeyPatch, target: Path) -> list[tuple[str, str]]:
    """Make every rename whose destination is ``target`` fail; the renames attempted."""
    attempted: list[tuple[str, str]] = []
    real_rename, real_replace = os.rename, os.replace

    def guard(real: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
        def rename(source: Any, destination: Any) -> None:
            attempted.append((os.fspath(source), os.fspath(destination)))
            if Path(destination) == target and not Path(source).name.startswith(
                f".{target.name}.vz-old-"
            ):
                raise _enospc(os.fspath(destination))
            real(source, destination)

        return rename

    monkeypatch.setattr(os, "rename", guard(real_rename))
    monkeypatch.setattr(os, "replace", guard(real_replace))
    return attempted


# ---- the final rename ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_failed_final_rename_restores_the_previous_output(
    sources: Sources, out_folder: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = write(fmt, sources.group(sources.old), out_folder)
    before = snapshot(out_folder)
    attempted = _fail_renames_onto(monkeypatch, target)
    with pytest.raises(WriteError, match="No space left on device") as caught:
        write(fmt, sources.group(sources.new), out_folder)
    monkeypatch.undo()
    assert caught.value.path == str(target)
    assert str(target) in str(caught.value)
    assert any(Path(d) == target for _, d in attempted)  # the final step was reached
    assert snapshot(out_folder) == before
    assert_reads_like(read_back(fmt, target, sources.registry), sources.old, _names(fmt))


@pytest.mark.parametrize("fmt", ["kerchunk-parquet", "manifest-parquet"])
def test_an_output_that_cannot_be_moved_back_is_named(
    sources: Sources, out_folder: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = write(fmt, sources.group(sources.old), out_folder)
    real_rename = os.rename

    def rename(source: Any, destination: Any) -> None:
        if Path(destination) == target:  # the new output, and the old one coming back
            raise _enospc(os.fspath(destination))
        real_rename(source, destination)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(WriteError, match="could not be moved back") as caught:
        write(fmt, sources.group(sources.new), out_folder)
    monkeypatch.undo()
    (aside,) = out_folder.glob(f".{target.name}.vz-old-*")
    assert str(aside) in str(caught.value)
    assert not target.exists()
    assert_reads_like(read_back(fmt, aside, sources.registry), sources.old)


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_output_of_the_other_kind_is_replaced(
    sources: Sources, out_folder: Path, fmt: str
) -> None:
    target = write(fmt, sources.group(sources.old), out_folder)
    if target.is_dir():
        atomic._remove(target)
        target.write_text("a file where the folder goes")
    else:
        target.unlink()
        target.mkdir()
        (target / "stale").write_text("a folder where the file goes")
    write(fmt, sources.group(sources.new), out_folder)
    assert_reads_like(read_back(fmt, target, sources.registry), sources.new, _names(fmt))
    sidecar = [f"{target.name}.vz-sources.json"] if fmt == "kerchunk-json" else []
    assert sorted(p.name for p in out_folder.iterdir()) == [target.name, *sidecar]


# ---- failures mid-write -------------------------------------------------------------------


def _fail_second_parquet(monkeypatch: pytest.MonkeyPatch) -> None:
    real = pq.write_table
    calls: list[object] = []

    def write_table(table: Any, where: Any, **options: Any) -> None:
        calls.append(where)
        if len(calls) == 2:
            raise _enospc(os.fspath(where))
        real(table, where, **options)

    monkeypatch.setattr(pq, "write_table", write_table)


def _fail_json_midway(monkeypatch: pytest.MonkeyPatch) -> None:
    real = kerchunk_module._json_entries

    def entries(*args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield from real(*args, **kwargs)
        raise _enospc("refs.json")

    monkeypatch.setattr(kerchunk_module, "_json_entries", entries)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_full_disk_mid_write_keeps_the_previous_output(
    sources: Sources, out_folder: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = write(fmt, sources.group(sources.old), out_folder)
    before = snapshot(out_folder)
    if fmt == "kerchunk-json":
        _fail_json_midway(monkeypatch)
    elif fmt == "manifest-array":
        monkeypatch.setattr(pq, "write_table", _raiser(_enospc("x")))
    else:
        _fail_second_parquet(monkeypatch)
    with pytest.raises(WriteError, match=f"cannot write {target}: No space left on device"):
        write(fmt, sources.group(sources.new), out_folder)
    monkeypatch.undo()
    assert snapshot(out_folder) == before
    assert_reads_like(read_back(fmt, target, sources.registry), sources.old, _names(fmt))


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_failed_first_write_leaves_nothing_not_even_its_folders(
    sources: Sources, tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_json_midway(monkeypatch)
    monkeypatch.setattr(pq, "write_table", _raiser(_enospc("x")))
    with pytest.raises(WriteError, match="No space left on device"):
        write(fmt, sources.group(sources.new), tmp_path / "made" / "for" / "it")
    assert list(tmp_path.iterdir()) == []


def test_another_exception_passes_through_and_leaves_nothing(
    sources: Sources, out_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = write("kerchunk-json", sources.group(sources.old), out_folder)
    before = snapshot(out_folder)

    def interrupted(*args: Any, **kwargs: Any) -> Iterator[bytes]:
        raise KeyboardInterrupt
        yield b""

    monkeypatch.setattr(kerchunk_module, "_json_entries", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_kerchunk_json(sources.group(sources.new), target)
    assert snapshot(out_folder) == before


# ---- durability and leftovers -------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_file_is_on_disk_before_the_rename(
    sources: Sources, out_folder: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, str]] = []
    real_sync, real_rename, real_replace = atomic._sync_file, os.rename, os.replace

    def sync(path: Path) -> None:
        events.append(("sync", str(path)))
        real_sync(path)

    def moved(real: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
        def rename(source: Any, destination: Any) -> None:
            events.append(("rename", os.fspath(source)))
            real(source, destination)

        return rename

    monkeypatch.setattr(atomic, "_sync_file", sync)
    monkeypatch.setattr(os, "rename", moved(real_rename))
    monkeypatch.setattr(os, "replace", moved(real_replace))
    target = write(fmt, sources.group(sources.new), out_folder)
    monkeypatch.undo()
    renamed = [source for kind, source in events if kind == "rename"]
    # Kerchunk JSON: the references, then their sidecar of fingerprints, each whole.
    assert len(renamed) == (2 if fmt == "kerchunk-json" else 1)
    built = renamed[0]
    synced = {path for kind, path in events[: events.index(("rename", built))] if kind == "sync"}
    if target.is_file():
        assert built in synced
        for later in renamed[1:]:
            before = events[: events.index(("rename", later))]
            assert ("sync", later) in before
    else:
        files = [p.relative_to(target) for p in target.rglob("*") if p.is_file()]
        assert len(files) > 2
        assert {str(Path(built, p)) for p in files} <= synced


@pytest.mark.parametrize("fmt", FORMATS)
def test_leftovers_of_a_crashed_run_do_not_break_the_next_write(
    sources: Sources, out_folder: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = write(fmt, sources.group(sources.old), out_folder)
    monkeypatch.setattr(atomic.secrets, "token_hex", lambda n: "0" * 2 * n)
    crashed = [
        target.with_name(f".{target.name}.vz-tmp-{'0' * 12}"),
        target.with_name(f".{target.name}.vz-old-{'0' * 12}"),
        target.with_name(f"{target.name}.old"),
    ]
    for leftover in crashed:
        leftover.mkdir()
        (leftover / "half").write_bytes(b"half written")
    monkeypatch.undo()
    write(fmt, sources.group(sources.new), out_folder)
    assert_reads_like(read_back(fmt, target, sources.registry), sources.new, _names(fmt))
    for leftover in crashed:  # not ours to delete: another run may still be writing it
        assert (leftover / "half").read_bytes() == b"half written"


# ---- where a writer may write -------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_object_store_url_is_refused_without_making_a_folder(
    sources: Sources, tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    group = sources.group(sources.new)
    writers: dict[str, Callable[[str], object]] = {
        "kerchunk-json": lambda url: write_kerchunk_json(group, url),
        "kerchunk-parquet": lambda url: write_kerchunk_parquet(group, url),
        "manifest-parquet": lambda url: write_manifest_parquet(group, url),
        "manifest-array": lambda url: write_manifest_parquet(group.arrays["tas"], url),
    }
    # Each output goes to a store the registry holds; without one, refused.
    with pytest.raises(WriteError, match=r"cannot write s3://bucket/refs: an .*needs registry="):
        writers[fmt]("s3://bucket/refs")
    assert list(tmp_path.iterdir()) == []


def test_a_file_url_is_a_local_path(sources: Sources, out_folder: Path) -> None:
    target = write_kerchunk_json(sources.group(sources.new), f"file://{out_folder}/refs.json")
    assert target == out_folder / "refs.json"
    assert_reads_like(read_back("kerchunk-json", target, sources.registry), sources.new)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_folder_that_cannot_exist_is_a_write_error(
    sources: Sources, tmp_path: Path, fmt: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(WriteError, match=f"cannot write {blocker}/.*{blocker} is a file, not a"):
        write(fmt, sources.group(sources.new), blocker / "sub")
    assert snapshot(tmp_path) == {"a-file": b"not a folder"}


def test_write_error_keeps_its_evidence_through_pickle() -> None:
    err = WriteError("/data/out.json", "No space left on device")
    copy = pickle.loads(pickle.dumps(err))
    assert isinstance(copy, WriteError)
    assert isinstance(copy, vc.VirtualizationError)
    assert (copy.path, copy.reason, str(copy)) == (err.path, err.reason, str(err))


# ---- Icechunk -----------------------------------------------------------------------------


def _repository(sources: Sources, where: Path) -> icechunk.Repository:
    prefix = f"file://{sources.folder}/"
    config = icechunk.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        icechunk.VirtualChunkContainer(prefix, icechunk.local_filesystem_store(str(sources.folder)))
    )
    return icechunk.Repository.create(
        icechunk.local_filesystem_storage(str(where)),
        config,
        authorize_virtual_chunk_access=icechunk.containers_credentials(
            {prefix: icechunk.Credentials.LocalFileSystemAccess()}
        ),
    )


def _icechunk_values(repository: icechunk.Repository) -> dict[str, np.ndarray]:
    store = repository.readonly_session("main").store
    return {name: zarr.open_array(store, path=name, mode="r")[...] for name in VARIABLES}


def _fail_references(monkeypatch: pytest.MonkeyPatch, *, after: int = 1) -> None:
    """Make the ``after``-th bulk reference call of `write_icechunk` fail with ENOSPC."""
    from vzcore.writers import icechunk as icechunk_module

    calls: list[str] = []

    def set_block(store: Any, path: str, *args: Any) -> None:
        calls.append(path)
        if len(calls) == after:
            raise _enospc(path)
        _set_block(store, path, *args)

    monkeypatch.setattr(icechunk_module, "_set_block", set_block)


@pytest.mark.parametrize("mode", ["w", "w-"])
def test_a_full_disk_mid_write_commits_nothing(
    sources: Sources, tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = _repository(sources, tmp_path / "repo")
    session = repository.writable_session("main")
    write_icechunk(sources.group(sources.old), session.store)
    tip = session.commit("previous")
    before = snapshot(tmp_path)
    _fail_references(monkeypatch, after=2)
    session = repository.writable_session("main")
    target = "other" if mode == "w-" else None  # a new group, or replacing the old one
    with pytest.raises(
        WriteError, match=r"No space left on device: (other/)?count; the session is as it was"
    ):
        write_icechunk(sources.group(sources.new), session.store, group_path=target, mode=mode)  # type: ignore[arg-type]
    assert not session.has_uncommitted_changes
    assert repository.lookup_branch("main") == tip
    assert snapshot(tmp_path) == before
    assert_reads_like(_icechunk_values(repository), sources.old)


def test_a_session_with_changes_of_its_own_is_not_discarded(
    sources: Sources, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = _repository(sources, tmp_path / "repo")
    session = repository.writable_session("main")
    zarr.create_array(session.store, name="mine", shape=(2,), dtype="i4")[:] = [7, 8]
    _fail_references(monkeypatch)
    with pytest.raises(WriteError, match="discard the session's changes"):
        write_icechunk(sources.group(sources.new), session.store)
    np.testing.assert_array_equal(zarr.open_array(session.store, path="mine")[...], [7, 8])


def _virtualize(source: Path, out: Path) -> list[str]:
    return ["virtualize", str(source), "--out", str(out), "--format", "icechunk"]


def _open_cli_repository(sources: Sources, out: Path) -> icechunk.Repository:
    prefix = f"file://{sources.folder}/"
    return icechunk.Repository.open(
        icechunk.local_filesystem_storage(str(out)),
        authorize_virtual_chunk_access=icechunk.containers_credentials(
            {prefix: icechunk.Credentials.LocalFileSystemAccess()}
        ),
    )


def _assert_one_error_line(err: str, *parts: str) -> None:
    assert err.count("\n") == 1, err
    assert err.startswith("vz: error: "), err
    assert "Traceback" not in err
    for part in parts:
        assert part in err


@pytest.mark.parametrize("step", ["references", "commit"])
def test_a_failed_first_virtualize_leaves_no_repository_and_a_rerun_works(
    sources: Sources,
    tmp_path: Path,
    step: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "tas.icechunk"
    if step == "references":
        _fail_references(monkeypatch)
    else:
        monkeypatch.setattr(icechunk.Session, "commit", _raiser(_enospc("commit")))
    assert main(_virtualize(sources.new, out)) == 1
    _assert_one_error_line(capsys.readouterr().err, "No space left on device")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    assert main(_virtualize(sources.new, out)) == 0
    assert_reads_like(_icechunk_values(_open_cli_repository(sources, out)), sources.new)


def test_a_failed_rerun_keeps_the_previous_snapshot_and_the_next_one_replaces_it(
    sources: Sources,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "tas.icechunk"
    assert main(_virtualize(sources.old, out)) == 0
    repository = _open_cli_repository(sources, out)
    tip = repository.lookup_branch("main")
    before = snapshot(tmp_path)
    monkeypatch.setattr(icechunk.Session, "commit", _raiser(_enospc("commit")))
    capsys.readouterr()
    assert main(_virtualize(sources.new, out)) == 1
    _assert_one_error_line(capsys.readouterr().err, str(out), "nothing was committed")
    monkeypatch.undo()
    assert repository.lookup_branch("main") == tip
    assert_reads_like(_icechunk_values(_open_cli_repository(sources, out)), sources.old)
    assert sorted(snapshot(tmp_path).items()) == sorted(before.items())
    assert main(_virtualize(sources.new, out)) == 0
    reopened = _open_cli_repository(sources, out)
    assert_reads_like(_icechunk_values(reopened), sources.new)
    assert [s.id for s in reopened.ancestry(branch="main")][1] == tip


def test_icechunk_output_over_a_folder_that_is_no_repository_is_refused(
    sources: Sources, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    assert main(_virtualize(sources.new, out)) == 1
    _assert_one_error_line(capsys.readouterr().err, str(out), "is not an Icechunk repository")
    assert snapshot(tmp_path) == {"mine": None, "mine/precious.txt": b"keep me"}
