"""The vz command line: virtualize, info, demo; errors as one line and a non-zero status."""

from __future__ import annotations

from pathlib import Path

import pytest
import xarray as xr
from tests.s3_server import S3Bucket

import vzcore as vc
from vzcore.parsers import detect_parser
from vzxarray.cli import main
from vzxarray.demo import make_demo_files


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_demo_files(tmp_path_factory.mktemp("cli-year"))


@pytest.mark.parametrize(
    "fmt", ["kerchunk-json", "kerchunk-parquet", "manifest-parquet", "icechunk"]
)
def test_virtualize_writes_a_store_equal_to_the_files(
    year: list[Path], tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"out.{fmt}"
    glob = str(year[0].parent / "tas_*.nc")
    assert (
        main(["virtualize", glob, "--concat-dim", "time", "--out", str(out), "--format", fmt]) == 0
    )
    assert "virtualized 12 file(s)" in capsys.readouterr().out
    expected = xr.combine_by_coords([xr.open_dataset(p) for p in year])
    if fmt == "icechunk":
        import icechunk

        repository = icechunk.Repository.open(
            icechunk.local_filesystem_storage(str(out)),
            authorize_virtual_chunk_access=icechunk.containers_credentials(
                {f"file://{year[0].parent}/": icechunk.Credentials.LocalFileSystemAccess()}
            ),
        )
        opened = xr.open_zarr(repository.readonly_session("main").store, consolidated=False)
    else:
        url = vc.registry.normalize_url(str(out))
        registry = vc.ObjectStoreRegistry.for_urls([url, str(year[0])])
        group = detect_parser(url, registry)(url, registry)
        opened = xr.open_zarr(vc.ManifestStore(group, registry=registry), consolidated=False)
    xr.testing.assert_equal(opened.load(), expected.load())


# ---- inputs and outputs on S3 (moto) -----------------------------------------------------


@pytest.fixture
def on_s3(
    year: list[Path], s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[Path], list[str]]:
    """Three months uploaded under ``data/`` (and a file the glob must not match), with
    the bucket's credentials in the environment, as the command reads them."""
    urls = [s3_bucket.put_file(f"data/{p.name}", p) for p in year[:3]]
    s3_bucket.put_file("data/deeper/tas_200104.nc", year[3])
    s3_bucket.put("data/tas_notes.txt", b"not netCDF")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_bucket.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_bucket.secret_access_key)
    return year[:3], urls


def _remote(bucket: S3Bucket) -> list[str]:
    return ["--endpoint", bucket.endpoint, "--region", bucket.region, "--retries", "1"]


@pytest.mark.parametrize(
    ("fmt", "out"),
    [
        ("kerchunk-json", "out.json"),
        ("kerchunk-parquet", "out.parq"),
        ("manifest-parquet", "out.vz"),
    ],
)
@pytest.mark.parametrize("inputs", ["urls", "glob"])
def test_virtualize_reads_s3_inputs_and_writes_to_s3(
    on_s3: tuple[list[Path], list[str]],
    s3_bucket: S3Bucket,
    capsys: pytest.CaptureFixture[str],
    fmt: str,
    out: str,
    inputs: str,
) -> None:
    local, urls = on_s3
    given = urls if inputs == "urls" else [s3_bucket.key_url("data/*.nc")]  # not data/deeper/
    target = s3_bucket.key_url(out)
    command = ["virtualize", *given, "--concat-dim", "time", *_remote(s3_bucket)]
    assert main([*command, "--out", target, "--format", fmt]) == 0
    assert "virtualized 3 file(s)" in capsys.readouterr().out

    registry = s3_bucket.registry()
    group = detect_parser(target, registry)(target, registry)
    assert sorted(group.sources) == urls
    opened = xr.open_zarr(vc.ManifestStore(group, registry=registry), consolidated=False)
    with xr.open_mfdataset(local, combine="nested", concat_dim="time") as expected:
        xr.testing.assert_identical(opened.load(), expected.load())


def _read_by_icechunk(storage: object, bucket: S3Bucket) -> xr.Dataset:
    """A repository's ``main`` as Icechunk itself reads it: its virtual chunk containers
    must reach the bucket (region, endpoint) for the chunks to load."""
    import icechunk

    repository = icechunk.Repository.open(
        storage, authorize_virtual_chunk_access=bucket.icechunk_credentials()
    )
    opened = xr.open_zarr(repository.readonly_session("main").store, consolidated=False)
    return opened.load()


def test_virtualize_writes_an_icechunk_repository_to_s3(
    on_s3: tuple[list[Path], list[str]], s3_bucket: S3Bucket, capsys: pytest.CaptureFixture[str]
) -> None:
    """Built locally and put with its root object last; read by vz and by Icechunk; a
    second run commits a new snapshot to the repository it finds there."""
    import icechunk

    local, urls = on_s3
    target = s3_bucket.key_url("tas.icechunk")
    command = ["virtualize", *urls, "--concat-dim", "time", *_remote(s3_bucket)]
    assert main([*command, "--out", target, "--format", "icechunk"]) == 0
    assert "virtualized 3 file(s)" in capsys.readouterr().out
    written = _keys(s3_bucket, "tas.icechunk")
    assert "tas.icechunk/repo" in written
    assert any("/snapshots/" in k for k in written)

    registry = s3_bucket.registry()
    group = detect_parser(target, registry)(target, registry)
    assert sorted(group.sources) == urls
    opened = xr.open_zarr(vc.ManifestStore(group, registry=registry), consolidated=False)
    storage = s3_bucket.icechunk_storage("tas.icechunk")
    with xr.open_mfdataset(local, combine="nested", concat_dim="time") as expected:
        xr.testing.assert_identical(opened.load(), expected.load())
        xr.testing.assert_identical(_read_by_icechunk(storage, s3_bucket), expected.load())

    again = ["virtualize", urls[0], "--concat-dim", "time", *_remote(s3_bucket), "--out", target]
    assert main(again) == 0
    repository = icechunk.Repository.open(storage)
    assert len(list(repository.ancestry(branch="main"))) == 3  # initial, first, second
    with xr.open_dataset(local[0]) as expected:
        xr.testing.assert_identical(_read_by_icechunk(storage, s3_bucket), expected.load())


def test_a_local_icechunk_repository_of_s3_inputs_is_read_by_icechunk(
    on_s3: tuple[list[Path], list[str]], s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    """The repository's virtual chunk container carries the inputs' region and endpoint:
    without them Icechunk refused every chunk ("A region must be set")."""
    import icechunk

    local, urls = on_s3
    out = tmp_path / "tas.icechunk"
    command = ["virtualize", *urls, "--concat-dim", "time", *_remote(s3_bucket)]
    assert main([*command, "--out", str(out), "--format", "icechunk"]) == 0
    storage = icechunk.local_filesystem_storage(str(out))
    with xr.open_mfdataset(local, combine="nested", concat_dim="time") as expected:
        xr.testing.assert_identical(_read_by_icechunk(storage, s3_bucket), expected.load())


def test_virtualize_to_s3_refuses_a_prefix_holding_other_objects(
    on_s3: tuple[list[Path], list[str]], s3_bucket: S3Bucket, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing folder store (or anything that is not an Icechunk repository) is
    left as it is, whatever the format."""
    _, urls = on_s3
    command = ["virtualize", *urls, "--concat-dim", "time", *_remote(s3_bucket)]
    refs = s3_bucket.key_url("refs.parq")
    assert main([*command, "--out", refs, "--format", "kerchunk-parquet"]) == 0
    capsys.readouterr()
    before = sorted(_keys(s3_bucket))
    written = {k: bytes(s3_bucket.store().get(k).bytes()) for k in _keys(s3_bucket, "refs.parq")}
    for fmt in ("kerchunk-parquet", "icechunk"):
        assert main([*command, "--out", refs, "--format", fmt]) == 1
        _one_error_line(capsys, refs, "cannot be replaced atomically")
    assert {k: bytes(s3_bucket.store().get(k).bytes()) for k in written} == written
    assert sorted(_keys(s3_bucket)) == before


def test_an_s3_glob_matching_nothing_is_one_line(
    on_s3: tuple[list[Path], list[str]], s3_bucket: S3Bucket, capsys: pytest.CaptureFixture[str]
) -> None:
    pattern = s3_bucket.key_url("data/pr_*.nc")
    command = ["virtualize", pattern, *_remote(s3_bucket), "--out", s3_bucket.key_url("o.json")]
    assert main([*command, "--format", "kerchunk-json"]) == 1
    _one_error_line(capsys, f"no objects match {pattern!r}")


def _keys(bucket: S3Bucket, prefix: str | None = None) -> list[str]:
    return [item["path"] for batch in bucket.store().list(prefix) for item in batch]


def test_info_describes_a_store(
    year: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "refs.json"
    assert (
        main(["virtualize", *map(str, year[:3]), "--out", str(out), "--format", "kerchunk-json"])
        == 0
    )
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "tas: float32 (90, 90, 180) dims (time, lat, lon)" in text
    assert "90 chunks (0 missing) in 3 file(s)" in text
    assert "3 distinct file(s)" in text


def test_skip_bad_lists_the_skipped_files(
    year: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"CDF\x02 broken")
    args = [
        "virtualize",
        str(year[0]),
        str(bad),
        "--out",
        str(tmp_path / "o.json"),
        "--format",
        "kerchunk-json",
    ]
    assert main(args) == 1
    assert "bad.nc" in capsys.readouterr().err
    assert main([*args, "--skip-bad"]) == 0
    assert "skipped: " in capsys.readouterr().out


def _one_error_line(capsys: pytest.CaptureFixture[str], *parts: str) -> str:
    """The one stderr line of a failed command, checked to name each of ``parts``."""
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("vz: error: "), captured.err
    assert "Traceback" not in captured.err
    for part in parts:
        assert part in captured.err, captured.err
    return captured.err


def _kerchunk_json(year: list[Path], out: Path) -> list[str]:
    return ["virtualize", str(year[0]), "--out", str(out), "--format", "kerchunk-json"]


def test_a_missing_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(tmp_path / "missing.nc")]) == 1
    _one_error_line(capsys, "missing.nc", "no such file")
    missing = ["virtualize", str(tmp_path / "gone.nc"), "--out", str(tmp_path / "o.json")]
    assert main(missing) == 1
    _one_error_line(capsys, "gone.nc", "could not be opened")
    assert main(["virtualize", str(tmp_path / "none_*.nc"), "--out", str(tmp_path / "o")]) == 1
    _one_error_line(capsys, "no files match")
    assert list(tmp_path.iterdir()) == []


def test_several_bad_inputs_are_still_one_line(
    year: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = [tmp_path / "bad1.nc", tmp_path / "bad2.nc"]
    for path in bad:
        path.write_bytes(b"CDF\x02 broken")
    out = tmp_path / "o.json"
    assert main(["virtualize", *map(str, bad), "--out", str(out), "--format", "kerchunk-json"]) == 1
    _one_error_line(capsys, "2 file(s) could not be opened", "bad1.nc", "bad2.nc")
    assert not out.exists()


def test_a_url_no_registry_can_hold_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "foo://bucket/x.nc"]) == 1
    _one_error_line(capsys, "foo://bucket/x.nc", "scheme 'foo'")


def test_references_outside_the_inputs_folder_are_refused_for_icechunk(
    year: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A reference file elsewhere points at the year's files: the repository the
    # command makes can only declare the reference file's own folder.
    refs = tmp_path / "refs" / "refs.json"
    assert main(_kerchunk_json(year, refs)) == 0
    capsys.readouterr()
    out = tmp_path / "r.icechunk"
    assert main(["virtualize", str(refs), "--out", str(out), "--format", "icechunk"]) == 1
    _one_error_line(capsys, "no virtual chunk container covers", str(year[0]))
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["refs"]


@pytest.mark.parametrize(
    "fmt", ["kerchunk-json", "kerchunk-parquet", "manifest-parquet", "icechunk"]
)
def test_an_output_folder_that_cannot_be_made_is_one_line(
    year: list[Path], tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "refs"
    assert main(["virtualize", str(year[0]), "--out", str(out), "--format", fmt]) == 1
    _one_error_line(capsys, f"cannot write {out}: {blocker} is a file, not a folder")
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("fmt", ["kerchunk-parquet", "manifest-parquet"])
def test_a_full_disk_is_one_line_and_keeps_the_previous_output(
    year: list[Path],
    tmp_path: Path,
    fmt: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import errno
    import os

    import pyarrow.parquet as pq

    out = tmp_path / "out"
    args = ["virtualize", str(year[0]), "--out", str(out), "--format", fmt]
    assert main(args) == 0
    capsys.readouterr()
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pq, "write_table", full)
    assert main(["virtualize", str(year[1]), "--out", str(out), "--format", fmt]) == 1
    _one_error_line(capsys, f"cannot write {out}: No space left on device")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{", "unrecognised format"),
        (b'{"version": 1, "refs": {".zgroup": "{}", "v/.zarray": "{oops"}}', "not valid JSON"),
    ],
)
def test_a_malformed_reference_file_is_one_line(
    tmp_path: Path, content: bytes, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    refs = tmp_path / "refs.json"
    refs.write_bytes(content)
    assert main(["info", str(refs)]) == 1
    _one_error_line(capsys, str(refs), reason)


def test_another_failure_is_one_line_with_its_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vzxarray import cli

    def broken(store: str, **version: str | None) -> None:
        raise RuntimeError("something unforeseen\nwith a second line")

    monkeypatch.setattr(cli, "_info", broken)
    assert main(["info", "x"]) == 1
    line = _one_error_line(capsys, "RuntimeError: something unforeseen")
    assert "second line" not in line


def test_ctrl_c_exits_130_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vzxarray import cli

    def interrupted(store: str, **version: str | None) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_info", interrupted)
    assert main(["info", "x"]) == 130
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("how", ["--debug first", "--debug last", "VZ_DEBUG=1"])
def test_debug_shows_the_traceback(
    tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = str(tmp_path / "missing.nc")
    argv = {
        "--debug first": ["--debug", "info", missing],
        "--debug last": ["info", missing, "--debug"],
        "VZ_DEBUG=1": ["info", missing],
    }[how]
    if how == "VZ_DEBUG=1":
        monkeypatch.setenv("VZ_DEBUG", "1")
    with pytest.raises(vc.VirtualizationError, match=r"missing\.nc"):
        main(argv)


def test_vz_debug_0_is_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VZ_DEBUG", "0")
    assert main(["info", str(tmp_path / "missing.nc")]) == 1
    _one_error_line(capsys, "missing.nc")


def test_a_usage_error_exits_2_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["virtualize", "--format", "nonsense"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "vz virtualize: error:" in err
    assert "Traceback" not in err


def test_the_installed_command_prints_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "vzxarray.cli", "info", str(tmp_path / "missing.nc")],
        capture_output=True,
        text=True,
        check=False,
        env={**__import__("os").environ, "VZ_DEBUG": ""},
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("vz: error: ")
    assert "missing.nc" in result.stderr


def test_demo_runs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["demo", "--folder", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "Icechunk: values equal the original files" in out
    assert "Kerchunk parquet: values equal the original files" in out


def test_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["virtualize", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--concat-dim",
        "--by-coords",
        "--out",
        "--format",
        "--parallel",
        "--loadable",
        "--skip-bad",
        "--endpoint",
        "--region",
        "--anonymous",
        "--retries",
        "--timeout",
    ):
        assert option in text


def _tiny_files(folder: Path, count: int) -> list[Path]:
    import netCDF4
    import numpy as np

    paths = []
    for i in range(count):
        path = folder / f"step_{i:04d}.nc"
        with netCDF4.Dataset(path, "w") as ds:
            ds.createDimension("time", None)
            ds.createDimension("x", 3)
            time = ds.createVariable("time", "i4", ("time",))
            time.units = "hours since 2001-01-01"
            time[:] = [i]
            ds.createVariable("v", "f4", ("time", "x"), zlib=True)[:] = np.full((1, 3), i, "f4")
        paths.append(path)
    return paths


def test_five_hundred_files_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _tiny_files(tmp_path, 500)
    out = tmp_path / "all.parq"
    glob = str(tmp_path / "step_*.nc")
    args = ["virtualize", glob, "--concat-dim", "time", "--out", str(out)]
    assert main([*args, "--format", "kerchunk-parquet", "--parallel", "threads"]) == 0
    assert "virtualized 500 file(s)" in capsys.readouterr().out
    url = vc.registry.normalize_url(str(out))
    registry = vc.ObjectStoreRegistry.for_urls([url])
    group = detect_parser(url, registry)(url, registry)
    opened = xr.open_zarr(vc.ManifestStore(group, registry=registry), consolidated=False).load()
    expected = xr.concat([xr.open_dataset(p) for p in files], dim="time").load()
    xr.testing.assert_equal(opened, expected)


def test_a_corrupt_file_among_a_hundred(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _tiny_files(tmp_path, 100)
    (tmp_path / "step_0042.nc").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)
    out = tmp_path / "all.json"
    args = ["virtualize", str(tmp_path / "step_*.nc"), "--concat-dim", "time", "--out", str(out)]
    assert main([*args, "--format", "kerchunk-json"]) == 1
    assert "step_0042.nc" in capsys.readouterr().err
    assert not out.exists()
    assert main([*args, "--format", "kerchunk-json", "--skip-bad"]) == 0
    printed = capsys.readouterr().out
    assert "virtualized 99 file(s)" in printed
    assert "skipped: " in printed
    assert "step_0042.nc" in printed
    assert out.exists()
