"""End to end on S3 (moto): virtualize files on S3, commit Icechunk to S3, change a source.

Two netCDF4 files are uploaded and opened from S3 (`open_virtual_mfdataset` with an
S3 registry), and their references committed to an Icechunk repository in the same
bucket, with the parsers' fingerprints in the commit's metadata. One source object
is then overwritten (same size, other values). ``vz verify s3://.../repo`` (the
command, credentials from the environment, ``--endpoint`` and ``--region``) names
exactly that object; a checking `ManifestStore` over the repository's references
refuses its chunks with a typed error and serves the other file's, equal to the
originals; Icechunk's own read of the repository refuses it too (the writer gave
Icechunk each S3 object's ETag as its checksum, so even a rewrite within the same
second is caught).
"""

from __future__ import annotations

from pathlib import Path

import icechunk
import netCDF4
import numpy as np
import pytest
import xarray as xr
import zarr
from tests.s3_server import S3Bucket

import vzcore as vc
import vzxarray as vx
from vzcore.parsers import IcechunkParser
from vzcore.writers import icechunk_commit_metadata
from vzxarray.cli import main


def write_day(path: Path, day: int, seed: int) -> np.ndarray:
    """``tas`` (time 2, lat 6, lon 8), one zlib chunk per step; returns the values."""
    values = np.random.default_rng(seed).standard_normal((2, 6, 8)).astype("f4")
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("time", None)
        ds.createDimension("lat", 6)
        ds.createDimension("lon", 8)
        time = ds.createVariable("time", "f8", ("time",))
        time.units = "days since 2000-01-01"
        time[:] = [2 * day, 2 * day + 1]
        ds.createVariable("lat", "f8", ("lat",))[:] = np.arange(6)
        ds.createVariable("lon", "f8", ("lon",))[:] = np.arange(8)
        tas = ds.createVariable("tas", "f4", ("time", "lat", "lon"), chunksizes=(1, 6, 8))
        tas[:] = values
    return values


def test_vz_verify_names_the_changed_object_and_only_its_chunks_fail(
    tmp_path: Path,
    s3_bucket: S3Bucket,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    days = [tmp_path / f"day{i}.nc" for i in range(2)]
    values = [write_day(path, i, seed=i) for i, path in enumerate(days)]
    urls = [s3_bucket.put_file(f"data/{p.name}", p) for p in days]
    registry = s3_bucket.registry()
    dataset = vx.open_virtual_mfdataset(
        urls, registry=registry, combine="nested", concat_dim="time", parallel="threads"
    )
    group = dataset.vz.to_virtual_group()
    assert sorted(group.sources) == urls

    repository = icechunk.Repository.create(
        s3_bucket.icechunk_storage("refs/days"),
        s3_bucket.icechunk_config(),
        authorize_virtual_chunk_access=s3_bucket.icechunk_credentials(),
    )
    session = repository.writable_session("main")
    dataset.vz.to_icechunk(session.store)
    session.commit("two days on S3", metadata=icechunk_commit_metadata(group))

    repo_url = s3_bucket.key_url("refs/days")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_bucket.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_bucket.secret_access_key)
    command = ["verify", repo_url, "--endpoint", s3_bucket.endpoint, "--region", s3_bucket.region]
    assert main(command) == 0
    assert "2 source file(s): 2 unchanged" in capsys.readouterr().out

    rewritten = tmp_path / "rewritten.nc"
    write_day(rewritten, 1, seed=99)
    assert rewritten.stat().st_size == days[1].stat().st_size  # only its ETag tells
    s3_bucket.put_file("data/day1.nc", rewritten)

    assert main(command) == 1
    out = capsys.readouterr().out
    assert "2 source file(s): 1 unchanged, 1 changed" in out
    changed = [line for line in out.splitlines() if line.startswith("changed")]
    assert changed == [f"changed    {urls[1]}: its ETag was {group.sources[urls[1]].etag}, " +
                       f"is {s3_bucket.store().head('data/day1.nc')['e_tag']}"]  # fmt: skip

    # The repository's references, read back from S3 and served by a checking store.
    parsed = IcechunkParser()(repo_url, registry.register(s3_bucket.url, s3_bucket.store()))
    assert parsed.sources == group.sources
    store = vc.ManifestStore(parsed, registry=registry, check_sources=True)
    tas = zarr.open_array(store, path="tas", mode="r")
    np.testing.assert_array_equal(tas[0:2], values[0])
    with pytest.raises(vc.SourceChangedError, match="changed since it was virtualized") as info:
        tas[2:4]
    assert info.value.url == urls[1]
    np.testing.assert_array_equal(tas[1], values[0][1])  # the unchanged file still reads

    # Icechunk's own reads: the unchanged file's chunks, not the changed one's.
    reopened = icechunk.Repository.open(
        s3_bucket.icechunk_storage("refs/days"),
        authorize_virtual_chunk_access=s3_bucket.icechunk_credentials(),
    )
    with xr.open_zarr(reopened.readonly_session("main").store, consolidated=False) as got:
        np.testing.assert_array_equal(got["tas"][0:2].values, values[0])
        with pytest.raises(Exception, match="checksum of the object owning the virtual chunk"):
            got["tas"][2:4].load()
