"""Source-change detection: `vc.verify`, ``ManifestStore(check_sources=True)``, ``vz verify``.

Files are virtualized (their fingerprints recorded by the parser), then one is
rewritten and one deleted: `verify` names each by what happened to it, a checking
store refuses only their chunks (the others still read, equal to h5py), and the
fingerprints survive the manifest-parquet round trip so that ``vz verify`` on the
saved store says the same. On S3 (moto) a same-size rewrite is caught by its ETag.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr
from tests.s3_server import S3Bucket

import vzcore as vc
from vzcore.group import SourceFingerprint
from vzcore.parsers import HDFParser, KerchunkJSONParser
from vzcore.verify import change_of
from vzcore.writers import write_kerchunk_json
from vzxarray.cli import main


def _write(path: Path, seed: int) -> np.ndarray:
    values = np.arange(40, dtype="<f4").reshape(4, 10) + seed
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=values, chunks=(1, 10))
    return values


def _files(folder: Path, n: int = 3) -> tuple[list[Path], list[np.ndarray]]:
    paths = [folder / f"f{i}.h5" for i in range(n)]
    return paths, [_write(p, 100 * i) for i, p in enumerate(paths)]


def _group(paths: list[Path]) -> tuple[vc.VirtualGroup, vc.ObjectStoreRegistry]:
    registry = vc.ObjectStoreRegistry.for_urls([str(paths[0])])
    groups = [HDFParser()(f"file://{p}", registry) for p in paths]
    arrays = [g["x"] for g in groups]
    combined = vc.concat(arrays, axis=0)  # type: ignore[arg-type]
    sources = {u: f for g in groups for u, f in g.sources.items()}
    return vc.VirtualGroup(arrays={"x": combined}, sources=sources), registry


def _change(path: Path, seed: int) -> None:
    """Rewrite with other values (and a later modification time)."""
    _write(path, seed)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))


def test_unchanged_sources_verify(tmp_path: Path) -> None:
    paths, _ = _files(tmp_path)
    group, registry = _group(paths)
    result = vc.verify(group, registry)
    assert result.ok
    assert [c.status for c in result] == ["unchanged"] * 3
    assert str(result).startswith("3 source file(s): 3 unchanged")


def test_changed_and_missing_sources_are_named(tmp_path: Path) -> None:
    paths, _ = _files(tmp_path)
    group, registry = _group(paths)
    _change(paths[1], 7)
    paths[2].unlink()
    result = vc.verify(group, registry)
    assert not result.ok
    by_url = {c.url: c for c in result}
    assert by_url[f"file://{paths[0]}"].status == "unchanged"
    changed = by_url[f"file://{paths[1]}"]
    assert changed.status == "changed"
    assert changed.reason.startswith(("its ETag was", "it was last modified", "its size was"))
    assert by_url[f"file://{paths[2]}"].status == "missing"
    text = str(result)
    assert f"changed    file://{paths[1]}" in text
    assert f"missing    file://{paths[2]}" in text


def test_a_checking_store_refuses_only_the_changed_files_chunks(tmp_path: Path) -> None:
    paths, values = _files(tmp_path)
    group, registry = _group(paths)
    _change(paths[1], 7)
    checking = zarr.open_array(
        vc.ManifestStore(group, registry=registry, check_sources=True), path="x", mode="r"
    )
    np.testing.assert_array_equal(checking[0:4], values[0])  # the first file's rows
    np.testing.assert_array_equal(checking[8:12], values[2])
    with pytest.raises(vc.SourceChangedError, match=r"f1\.h5 is changed since") as info:
        checking[4:8]
    assert info.value.url == f"file://{paths[1]}"
    # Without the check the store serves whatever the bytes are now.
    plain = zarr.open_array(vc.ManifestStore(group, registry=registry), path="x", mode="r")
    assert plain[4:8].shape == (4, 10)


def test_references_without_fingerprints_are_unrecorded(tmp_path: Path) -> None:
    paths, values = _files(tmp_path, 1)
    group, registry = _group(paths)
    refs = tmp_path / "refs.json"
    write_kerchunk_json(group, refs)
    # References from another tool: no sidecar of fingerprints.
    Path(f"{refs}.vz-sources.json").unlink()
    from_refs = KerchunkJSONParser()(f"file://{refs}", registry)
    result = vc.verify(from_refs, registry)
    assert [c.status for c in result] == ["unrecorded"]
    assert not result.ok
    store = vc.ManifestStore(from_refs, registry=registry, check_sources=True)
    with pytest.raises(vc.SourceChangedError, match="unrecorded"):
        zarr.open_array(store, path="x", mode="r")[...]
    np.testing.assert_array_equal(
        zarr.open_array(vc.ManifestStore(from_refs, registry=registry), path="x", mode="r")[...],
        values[0],
    )


def test_vz_verify_on_a_saved_manifest_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths, _ = _files(tmp_path)
    group, _ = _group(paths)
    out = tmp_path / "store.vz"
    vc.write_manifest_parquet(group, out)
    assert main(["verify", str(out)]) == 0
    assert "3 unchanged" in capsys.readouterr().out
    _change(paths[0], 9)
    assert main(["verify", str(out)]) == 1
    printed = capsys.readouterr().out
    assert f"changed    file://{paths[0]}" in printed
    for refs in (
        write_kerchunk_json(group, tmp_path / "refs.json"),
        vc.writers.write_kerchunk_parquet(group, tmp_path / "refs.parq"),
    ):
        # The sidecar (refs.json.vz-sources.json, refs.parq/vz-sources.json) keeps them.
        assert main(["verify", str(refs)]) == 1
        assert f"changed    file://{paths[0]}" in capsys.readouterr().out
    Path(f"{tmp_path / 'refs.json'}.vz-sources.json").unlink()
    assert main(["verify", str(tmp_path / "refs.json")]) == 3  # nothing to compare with
    assert "3 unrecorded" in capsys.readouterr().out


def test_change_rule() -> None:
    recorded = SourceFingerprint(size=10, last_modified="2026-01-01T00:00:00+00:00", etag='"a"')
    assert change_of(recorded, recorded) is None
    assert change_of(recorded, SourceFingerprint(size=10)) is None  # nothing more to compare
    later = SourceFingerprint(size=10, last_modified="2026-01-02T00:00:00+00:00")
    assert change_of(recorded, later) == (
        "it was last modified at 2026-01-01T00:00:00+00:00, now at 2026-01-02T00:00:00+00:00"
    )
    assert change_of(recorded, SourceFingerprint(etag='"b"')) == 'its ETag was "a", is "b"'


def test_a_same_size_rewrite_on_s3_is_caught_by_its_etag(
    tmp_path: Path, s3_bucket: S3Bucket
) -> None:
    paths, values = _files(tmp_path, 2)
    urls = [s3_bucket.put_file(p.name, p) for p in paths]
    registry = s3_bucket.registry()
    groups = [HDFParser()(u, registry) for u in urls]
    assert all(f.etag for g in groups for f in g.sources.values())
    combined = vc.concat([g["x"] for g in groups], axis=0)  # type: ignore[arg-type]
    sources = {u: f for g in groups for u, f in g.sources.items()}
    group = vc.VirtualGroup(arrays={"x": combined}, sources=sources)
    rewritten = tmp_path / "rewritten.h5"
    _write(rewritten, 55)
    assert rewritten.stat().st_size == paths[1].stat().st_size
    s3_bucket.put_file(paths[1].name, rewritten)
    result = vc.verify(group, registry)
    assert [c.status for c in result] == ["unchanged", "changed"]
    heads = s3_bucket.request_count("HEAD")
    array = zarr.open_array(
        vc.ManifestStore(group, registry=registry, check_sources=True), path="x", mode="r"
    )
    np.testing.assert_array_equal(array[0:4], values[0])
    np.testing.assert_array_equal(array[1:3], values[0][1:3])
    assert s3_bucket.request_count("HEAD") == heads + 1  # one HEAD per file, not per chunk
    with pytest.raises(vc.SourceChangedError, match="ETag"):
        array[4:8]


# ---- Icechunk: the fingerprints kept in the commits' metadata ---------------------------------


def test_icechunk_commits_keep_the_fingerprints_over_appends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import icechunk
    import zarr
    from tests.cf_corpus import icechunk_repository

    from vzcore.parsers import IcechunkParser
    from vzcore.writers import icechunk_commit_metadata, write_icechunk

    data = tmp_path / "data"
    data.mkdir()
    paths, values = _files(data)
    first, _ = _group(paths[:2])
    where = tmp_path / "repo"
    repository = icechunk_repository(data, icechunk.local_filesystem_storage(str(where)))
    session = repository.writable_session("main")
    write_icechunk(first, session.store)
    session.commit("two files", metadata=icechunk_commit_metadata(first))
    appended, _ = _group(paths[2:])
    x = appended["x"]
    assert isinstance(x, vc.VirtualArray)
    named = vc.VirtualArray(
        metadata=x.metadata.evolve(dimension_names=first["x"].metadata.dimension_names),
        manifest=x.manifest,
    )
    appended = appended.evolve(arrays={"x": named})
    session = repository.writable_session("main")
    write_icechunk(appended, session.store, append_dim=named.metadata.dimension_names[0])
    session.commit("a third", metadata=icechunk_commit_metadata(appended))

    registry = vc.ObjectStoreRegistry.for_urls([str(data), str(where)])
    parsed = IcechunkParser()(f"file://{where}", registry)
    assert parsed.sources == {**first.sources, **appended.sources}
    assert vc.verify(parsed, registry).ok
    assert main(["verify", str(where)]) == 0
    assert "3 unchanged" in capsys.readouterr().out

    _change(paths[1], 7)
    result = vc.verify(IcechunkParser()(f"file://{where}", registry), registry)
    assert [c.url for c in result.with_status("changed")] == [f"file://{paths[1]}"]
    assert main(["verify", str(where)]) == 1
    assert f"changed    file://{paths[1]}" in capsys.readouterr().out
    # The other files' chunks still read; Icechunk refuses the changed file's own.
    root = zarr.open_group(repository.readonly_session("main").store, mode="r")
    np.testing.assert_array_equal(root["x"][:4], values[0])
    np.testing.assert_array_equal(root["x"][8:], values[2])
    with pytest.raises(Exception, match=r"(?i)modified|changed|checksum"):
        root["x"][4:8]


def test_vz_virtualize_to_icechunk_records_the_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import netCDF4

    paths = []
    for i in range(3):
        path = tmp_path / f"t{i}.nc"
        with netCDF4.Dataset(path, "w") as ds:
            ds.createDimension("time", 2)
            ds.createVariable("time", "i4", ("time",))[:] = [2 * i, 2 * i + 1]
            ds.createVariable("tas", "f4", ("time",))[:] = [i, i + 0.5]
        paths.append(path)
    out = tmp_path / "series.icechunk"
    args = ["virtualize", *map(str, paths), "--concat-dim", "time", "--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["verify", str(out)]) == 0
    assert "3 unchanged" in capsys.readouterr().out
    paths[2].unlink()
    assert main(["verify", str(out)]) == 1
    assert f"missing    file://{paths[2]}" in capsys.readouterr().out
