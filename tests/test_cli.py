"""The vz command line: virtualize, info, demo; errors as one line and a non-zero status."""

from __future__ import annotations

from pathlib import Path

import pytest
import xarray as xr

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


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(tmp_path / "missing.nc")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vz info: ")
    assert "missing.nc" in err


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
