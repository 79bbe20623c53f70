"""vz against a real S3 endpoint (moto's server on loopback, see `tests.s3_server`).

Every parser reads its source from S3, every read goes to S3 for the chunk bytes, and
the Kerchunk and Icechunk outputs reference ``s3://`` sources that fsspec (s3fs) and
Icechunk's own S3 client read back. Each test compares the values with the format's
own library (netCDF4 / h5py through xarray, scipy, zarr) reading the local copy.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import icechunk
import netCDF4
import numpy as np
import obstore
import pytest
import xarray as xr
import zarr
from tests.data_factories import fill_sample_group
from tests.s3_server import S3Bucket
from tests.writer_corpus import (
    GROUPS,
    NETCDF4_FILES,
    STRINGS,
    PyarrowReferenceMapper,
    assert_same_values,
    expected_dataset,
    write_corpus,
)

import vzcore as vc
import vzxarray as vx
from vzcore.parsers import (
    HDFParser,
    KerchunkJSONParser,
    KerchunkParquetParser,
    ManifestParquetParser,
    NetCDF3Parser,
    ZarrParser,
    detect_parser,
)
from vzcore.writers import write_icechunk, write_kerchunk_json, write_kerchunk_parquet

PARTS = ("part0.nc", "part1.nc", "part2.nc")


@dataclass(frozen=True)
class Sources:
    """Local source files and stores, written once per module."""

    folder: Path
    files: dict[str, Path]
    zarr_values: dict[str, np.ndarray[Any, Any]]

    def path(self, name: str) -> Path:
        return self.files[name]


def _scipy_netcdf3(path: Path) -> Path:
    """A CDF-1 file written by scipy (through xarray): a record dimension, packed ints."""
    data = xr.Dataset(
        {
            "temp": (("time", "x"), (np.arange(12, dtype="f4").reshape(4, 3) - 2) / 8),
            "counts": (("x",), np.array([3, -7, 11], dtype="i2")),
        },
        coords={"time": np.arange(4.0), "x": np.array([10, 20, 30], dtype="i4")},
        attrs={"title": "scipy-made"},
    )
    data["time"].attrs["units"] = "hours since 2001-01-01"
    data["counts"].attrs.update({"scale_factor": 0.5, "add_offset": 1.0})
    data.to_netcdf(path, format="NETCDF3_CLASSIC", engine="scipy", unlimited_dims=["time"])
    return path


def _zarr_dataset() -> xr.Dataset:
    rng = np.random.default_rng(3)
    tas = (rng.standard_normal((6, 5, 7)) * 5 + 280).astype("f4")
    tas[1, 2, :] = np.nan
    return xr.Dataset(
        {
            "tas": (("time", "lat", "lon"), tas, {"units": "K"}),
            "count": (("lat",), np.array([1, 2, -3, 4, 5], dtype="i2")),
        },
        coords={
            "time": ("time", np.arange(6, dtype="i4"), {"units": "days since 2000-01-01"}),
            "lat": np.linspace(-60.0, 60.0, 5),
            "lon": np.linspace(0.0, 300.0, 7),
        },
        attrs={"title": "zarr source"},
    )


def _write_zarr(folder: Path, zarr_format: int) -> Path:
    path = folder / f"v{zarr_format}.zarr"
    encoding = {"tas": {"chunks": (4, 2, 3)}, "count": {"chunks": (2,)}}
    _zarr_dataset().to_zarr(
        path, zarr_format=zarr_format, consolidated=zarr_format == 2, encoding=encoding
    )
    return path


def _write_nested_zarr(folder: Path) -> tuple[Path, dict[str, np.ndarray[Any, Any]]]:
    path = folder / "nested.zarr"
    values = fill_sample_group(zarr.open_group(path, mode="w", zarr_format=3))
    return path, values


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Sources:
    folder = tmp_path_factory.mktemp("s3-sources")
    files = write_corpus(folder)
    files["scipy.nc"] = _scipy_netcdf3(folder / "scipy.nc")
    files["v2.zarr"] = _write_zarr(folder, 2)
    files["v3.zarr"] = _write_zarr(folder, 3)
    files["nested.zarr"], values = _write_nested_zarr(folder)
    return Sources(folder, files, values)


def upload(bucket: S3Bucket, sources: Sources, *names: str) -> dict[str, str]:
    """Upload the named sources under ``data/``; their s3:// URLs by name."""
    urls = {}
    for name in names:
        local = sources.path(name)
        key = f"data/{name}"
        urls[name] = bucket.put_tree(key, local) if local.is_dir() else bucket.put_file(key, local)
    return urls


def read_back(
    group: vc.VirtualGroup, registry: vc.ObjectStoreRegistry, path: str = ""
) -> xr.Dataset:
    """The group served by a ManifestStore, opened by xarray and loaded."""
    store = vc.ManifestStore(group, registry=registry)
    with xr.open_zarr(store, group=path or None, consolidated=False) as ds:
        return ds.load()


def referenced_urls(group: vc.VirtualGroup) -> set[str]:
    """Every source URL the group's virtual arrays reference."""
    urls: set[str] = set()
    for _, array in group.walk_arrays():
        if isinstance(array, vc.VirtualArray):
            paths = array.manifest.table.column("path").combine_chunks()
            urls.update(p for p in paths.dictionary_decode().to_pylist() if p)
    return urls


# ---- parsers reading their sources from S3 ------------------------------------------------


@pytest.mark.parametrize("name", NETCDF4_FILES)
def test_hdf_parser_reads_netcdf4_from_s3(s3_bucket: S3Bucket, sources: Sources, name: str) -> None:
    url = upload(s3_bucket, sources, name)[name]
    registry = s3_bucket.registry()
    group = HDFParser(loadable_variables=STRINGS)(url, registry)
    assert referenced_urls(group) == {url}
    for path in GROUPS[name]:
        assert_same_values(
            read_back(group, registry, path), expected_dataset(sources.path(name), path)
        )


def test_hdf_parser_chunks_from_s3_equal_h5py(s3_bucket: S3Bucket, sources: Sources) -> None:
    """Raw values (no CF decoding) through zarr.open_array equal h5py's reading of the file."""
    url = upload(s3_bucket, sources, "nc4_basic.nc")["nc4_basic.nc"]
    registry = s3_bucket.registry()
    store = vc.ManifestStore(
        HDFParser(loadable_variables=STRINGS)(url, registry), registry=registry
    )
    with h5py.File(sources.path("nc4_basic.nc"), "r") as f:
        for name in ("tas", "packed", "big_endian", "sparse", "lat", "lon", "time"):
            np.testing.assert_array_equal(
                zarr.open_array(store, path=name, mode="r")[...], f[name][...], err_msg=name
            )


@pytest.mark.parametrize("name", ["scipy.nc", "nc3_records.nc"])
def test_netcdf3_parser_reads_from_s3(s3_bucket: S3Bucket, sources: Sources, name: str) -> None:
    url = upload(s3_bucket, sources, name)[name]
    registry = s3_bucket.registry()
    group = NetCDF3Parser()(url, registry)
    assert referenced_urls(group) == {url}
    assert_same_values(read_back(group, registry), expected_dataset(sources.path(name)))


def test_netcdf3_chunks_from_s3_equal_scipy(s3_bucket: S3Bucket, sources: Sources) -> None:
    import scipy.io

    url = upload(s3_bucket, sources, "scipy.nc")["scipy.nc"]
    registry = s3_bucket.registry()
    store = vc.ManifestStore(NetCDF3Parser()(url, registry), registry=registry)
    with scipy.io.netcdf_file(sources.path("scipy.nc"), "r", mmap=False) as f:
        for name in ("temp", "counts", "time", "x"):
            np.testing.assert_array_equal(
                zarr.open_array(store, path=name, mode="r")[...], f.variables[name][:], err_msg=name
            )


@pytest.mark.parametrize("name", ["v2.zarr", "v3.zarr"])
def test_zarr_parser_reads_a_store_on_s3(s3_bucket: S3Bucket, sources: Sources, name: str) -> None:
    url = upload(s3_bucket, sources, name)[name]
    registry = s3_bucket.registry()
    group = ZarrParser()(url, registry)
    assert all(u.startswith(url + "/") for u in referenced_urls(group))
    with xr.open_zarr(sources.path(name), consolidated=name == "v2.zarr") as expected:
        xr.testing.assert_identical(read_back(group, registry), expected.load())


def test_zarr_parser_reads_nested_groups_on_s3(s3_bucket: S3Bucket, sources: Sources) -> None:
    url = upload(s3_bucket, sources, "nested.zarr")["nested.zarr"]
    registry = s3_bucket.registry()
    store = vc.ManifestStore(ZarrParser()(url, registry), registry=registry)
    source = zarr.open_group(sources.path("nested.zarr"), mode="r")
    for path, values in sources.zarr_values.items():
        got = zarr.open_array(store, path=path, mode="r")[...]
        np.testing.assert_array_equal(got, values, err_msg=path)
        np.testing.assert_array_equal(got, source[path][...], err_msg=path)


@pytest.fixture
def parsed_basic(s3_bucket: S3Bucket, sources: Sources) -> tuple[str, vc.VirtualGroup]:
    """nc4_basic.nc uploaded and parsed from S3: its URL and group."""
    url = upload(s3_bucket, sources, "nc4_basic.nc")["nc4_basic.nc"]
    return url, HDFParser(loadable_variables=STRINGS)(url, s3_bucket.registry())


def test_kerchunk_json_parser_reads_refs_on_s3(
    s3_bucket: S3Bucket, sources: Sources, parsed_basic: tuple[str, vc.VirtualGroup], tmp_path: Path
) -> None:
    _, group = parsed_basic
    refs = s3_bucket.put_file("refs/basic.json", write_kerchunk_json(group, tmp_path / "b.json"))
    registry = s3_bucket.registry()
    parsed = KerchunkJSONParser()(refs, registry)
    assert_same_values(read_back(parsed, registry), expected_dataset(sources.path("nc4_basic.nc")))


def test_kerchunk_parquet_parser_reads_refs_on_s3(
    s3_bucket: S3Bucket, sources: Sources, parsed_basic: tuple[str, vc.VirtualGroup], tmp_path: Path
) -> None:
    _, group = parsed_basic
    written = write_kerchunk_parquet(group, tmp_path / "basic.parq", record_size=3)
    refs = s3_bucket.put_tree("refs/basic.parq", written)
    registry = s3_bucket.registry()
    parsed = KerchunkParquetParser()(refs, registry)
    assert_same_values(read_back(parsed, registry), expected_dataset(sources.path("nc4_basic.nc")))


def test_manifest_parquet_parser_reads_manifests_on_s3(
    s3_bucket: S3Bucket, sources: Sources, parsed_basic: tuple[str, vc.VirtualGroup], tmp_path: Path
) -> None:
    _, group = parsed_basic
    registry = s3_bucket.registry()
    folder = s3_bucket.put_tree(
        "manifests/basic.vz", vc.write_manifest_parquet(group, tmp_path / "g")
    )
    parsed = ManifestParquetParser()(folder, registry)
    assert parsed == group
    assert_same_values(read_back(parsed, registry), expected_dataset(sources.path("nc4_basic.nc")))
    single = vc.write_manifest_parquet(group.arrays["tas"], tmp_path / "tas.parquet")
    one = ManifestParquetParser()(s3_bucket.put_file("manifests/tas.parquet", single), registry)
    assert one == vc.VirtualGroup(arrays={"tas": group.arrays["tas"]})


def test_detect_parser_on_s3_urls(
    s3_bucket: S3Bucket, sources: Sources, parsed_basic: tuple[str, vc.VirtualGroup], tmp_path: Path
) -> None:
    nc4, group = parsed_basic
    urls = upload(s3_bucket, sources, "scipy.nc", "nc3_records.nc", "v2.zarr", "v3.zarr")
    expected: dict[str, type] = {
        nc4: HDFParser,
        urls["scipy.nc"]: NetCDF3Parser,
        urls["nc3_records.nc"]: NetCDF3Parser,
        urls["v2.zarr"]: ZarrParser,
        urls["v3.zarr"]: ZarrParser,
        s3_bucket.put_file(
            "r/b.json", write_kerchunk_json(group, tmp_path / "b.json")
        ): KerchunkJSONParser,
        s3_bucket.put_tree(
            "r/b.parq", write_kerchunk_parquet(group, tmp_path / "b.parq")
        ): KerchunkParquetParser,
        s3_bucket.put_tree(
            "r/b.vz", vc.write_manifest_parquet(group, tmp_path / "b.vz")
        ): ManifestParquetParser,
    }
    registry = s3_bucket.registry()
    assert {url: type(detect_parser(url, registry)) for url in expected} == expected
    with pytest.raises(vc.VirtualizationError, match="nothing-here"):
        detect_parser(s3_bucket.key_url("nothing-here"), registry)


# ---- the xarray adapter -------------------------------------------------------------------


def test_open_virtual_dataset_from_s3(s3_bucket: S3Bucket, sources: Sources) -> None:
    urls = upload(s3_bucket, sources, "nc4_basic.nc", "nc3_records.nc")
    registry = s3_bucket.registry()
    for name, parser in (
        ("nc4_basic.nc", HDFParser(loadable_variables=STRINGS)),
        ("nc3_records.nc", NetCDF3Parser()),
    ):
        ds = vx.open_virtual_dataset(urls[name], registry=registry, parser=parser)
        got = read_back(ds.vz.to_virtual_group(), registry)
        xr.testing.assert_identical(got, expected_dataset(sources.path(name)))


def test_open_virtual_mfdataset_from_s3(s3_bucket: S3Bucket, sources: Sources) -> None:
    urls = upload(s3_bucket, sources, *PARTS)
    registry = s3_bucket.registry()
    combined = vx.open_virtual_mfdataset([urls[p] for p in PARTS], registry=registry)
    assert isinstance(combined["tas"].data, vx.ManifestArray)
    assert referenced_urls(combined.vz.to_virtual_group()) == set(urls.values())
    with xr.open_mfdataset([sources.path(p) for p in PARTS], combine="by_coords") as expected:
        xr.testing.assert_identical(
            read_back(combined.vz.to_virtual_group(), registry), expected.load()
        )


# ---- Kerchunk references to s3:// sources, read by fsspec + s3fs --------------------------


@pytest.fixture
def s3fs(s3_bucket: S3Bucket) -> Iterator[Any]:
    """An asynchronous s3fs filesystem for the bucket, its session closed after the test.

    zarr 3 reads references through an asynchronous reference filesystem, which needs
    an asynchronous s3fs; s3fs leaves closing those sessions to their owner.
    """
    import s3fs
    from zarr.core.sync import sync

    fs = s3fs.S3FileSystem(asynchronous=True, skip_instance_cache=True, **s3_bucket.s3fs_options())
    sync(fs.set_session())  # on zarr's event loop, where the reads will run
    yield fs
    sync(fs.s3.close())


def _open_references(fo: Any, s3fs: Any, group: str = "") -> xr.Dataset:
    """Kerchunk references opened by xarray through fsspec's reference filesystem and s3fs."""
    with xr.open_dataset(
        "reference://",
        engine="zarr",
        group=group or None,
        backend_kwargs={"consolidated": False, "storage_options": {"fo": fo, "fs": {"s3": s3fs}}},
    ) as ds:
        return ds.load()


@pytest.mark.parametrize("name", NETCDF4_FILES)
def test_kerchunk_json_of_s3_sources_read_by_fsspec(
    s3_bucket: S3Bucket, sources: Sources, s3fs: Any, name: str, tmp_path: Path
) -> None:
    url = upload(s3_bucket, sources, name)[name]
    group = HDFParser(loadable_variables=STRINGS)(url, s3_bucket.registry())
    refs = write_kerchunk_json(group, tmp_path / "refs.json")
    assert f'"{url}"' in refs.read_text()
    for path in GROUPS[name]:
        got = _open_references(str(refs), s3fs, path)
        assert_same_values(got, expected_dataset(sources.path(name), path))


def test_kerchunk_parquet_of_s3_sources_read_by_fsspec(
    s3_bucket: S3Bucket, sources: Sources, s3fs: Any, tmp_path: Path
) -> None:
    url = upload(s3_bucket, sources, "nc4_basic.nc")["nc4_basic.nc"]
    group = HDFParser(loadable_variables=STRINGS)(url, s3_bucket.registry())
    refs = write_kerchunk_parquet(group, tmp_path / "refs.parq", record_size=4)
    got = _open_references(PyarrowReferenceMapper(refs), s3fs)
    assert_same_values(got, expected_dataset(sources.path("nc4_basic.nc")))


def test_accessor_to_kerchunk_of_s3_sources_read_by_fsspec(
    s3_bucket: S3Bucket, sources: Sources, s3fs: Any
) -> None:
    urls = upload(s3_bucket, sources, *PARTS)
    combined = vx.open_virtual_mfdataset([urls[p] for p in PARTS], registry=s3_bucket.registry())
    refs = combined.vz.to_kerchunk(format="dict")
    with xr.open_mfdataset([sources.path(p) for p in PARTS], combine="by_coords") as expected:
        xr.testing.assert_identical(_open_references(refs, s3fs), expected.load())


# ---- Icechunk on S3 with virtual chunks on S3 ---------------------------------------------


def _new_repository(bucket: S3Bucket, prefix: str) -> icechunk.Repository:
    return icechunk.Repository.create(
        bucket.icechunk_storage(prefix),
        bucket.icechunk_config(),
        authorize_virtual_chunk_access=bucket.icechunk_credentials(),
    )


def _reopened(bucket: S3Bucket, prefix: str) -> icechunk.Session:
    """A read-only session of a fresh `Repository.open` (nothing cached from the writer)."""
    repository = icechunk.Repository.open(
        bucket.icechunk_storage(prefix),
        authorize_virtual_chunk_access=bucket.icechunk_credentials(),
    )
    return repository.readonly_session("main")


@pytest.mark.parametrize("name", NETCDF4_FILES)
def test_icechunk_on_s3_with_virtual_chunks_on_s3(
    s3_bucket: S3Bucket, sources: Sources, name: str
) -> None:
    url = upload(s3_bucket, sources, name)[name]
    group = HDFParser(loadable_variables=STRINGS)(url, s3_bucket.registry())
    session = _new_repository(s3_bucket, "repo").writable_session("main")
    write_icechunk(group, session.store)
    session.commit("virtual references to s3")
    store = _reopened(s3_bucket, "repo").store
    for path in GROUPS[name]:
        with xr.open_zarr(store, group=path or None, consolidated=False) as got:
            assert_same_values(got.load(), expected_dataset(sources.path(name), path))


def test_accessor_to_icechunk_appends_s3_files(s3_bucket: S3Bucket, sources: Sources) -> None:
    urls = upload(s3_bucket, sources, *PARTS)
    registry = s3_bucket.registry()
    repository = _new_repository(s3_bucket, "series")
    for index, part in enumerate(PARTS):
        session = repository.writable_session("main")
        ds = vx.open_virtual_dataset(
            urls[part], registry=registry, parser=HDFParser(loadable_variables=STRINGS)
        )
        ds.vz.to_icechunk(session.store, append_dim="time" if index else None)
        session.commit(part)
    with (
        xr.open_zarr(_reopened(s3_bucket, "series").store, consolidated=False) as got,
        xr.open_mfdataset([sources.path(p) for p in PARTS], combine="by_coords") as expected,
    ):
        xr.testing.assert_equal(got.load(), expected.load())


# ---- errors naming the URL ----------------------------------------------------------------


def test_a_url_in_another_bucket_is_refused(s3_bucket: S3Bucket, sources: Sources) -> None:
    upload(s3_bucket, sources, "nc4_basic.nc")
    other = f"s3://{s3_bucket.name}-other/data/nc4_basic.nc"
    registry = s3_bucket.registry()
    for call in (
        lambda: HDFParser(loadable_variables=STRINGS)(other, registry),
        lambda: detect_parser(other, registry),
        lambda: vx.open_virtual_dataset(
            other, registry=registry, parser=HDFParser(loadable_variables=STRINGS)
        ),
    ):
        with pytest.raises(vc.UnregisteredURLError, match=other) as info:
            call()
        assert s3_bucket.url in str(info.value)


def test_references_to_an_unregistered_bucket_are_refused_by_the_store(
    s3_bucket: S3Bucket, parsed_basic: tuple[str, vc.VirtualGroup]
) -> None:
    url, group = parsed_basic
    elsewhere = f"s3://{s3_bucket.name}-other/nc4_basic.nc"
    moved = vc.rename_paths(group, {url: elsewhere})
    with pytest.raises(vc.UnregisteredURLError, match=elsewhere):
        vc.ManifestStore(moved, registry=s3_bucket.registry())


@pytest.mark.parametrize(
    ("parser", "key"),
    [
        pytest.param(HDFParser(loadable_variables=STRINGS), "missing.nc"),
        pytest.param(NetCDF3Parser(), "missing.nc"),
        pytest.param(ZarrParser(), "missing.zarr"),
        pytest.param(KerchunkJSONParser(), "missing.json"),
        pytest.param(KerchunkParquetParser(), "missing.parq"),
        pytest.param(ManifestParquetParser(), "missing.vz"),
    ],
)
def test_a_missing_object_is_a_typed_error_naming_the_url(
    s3_bucket: S3Bucket, parser: Any, key: str
) -> None:
    url = s3_bucket.key_url(f"data/{key}")
    with pytest.raises(vc.VirtualizationError, match=url):
        parser(url, s3_bucket.registry())


PARSERS: dict[str, Any] = {
    "hdf": HDFParser(loadable_variables=STRINGS),
    "netcdf3": NetCDF3Parser(),
    "zarr": ZarrParser(),
    "kerchunk-json": KerchunkJSONParser(),
    "kerchunk-parquet": KerchunkParquetParser(),
    "manifest-parquet": ManifestParquetParser(),
    "detect": detect_parser,
}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("broken", ["unreachable endpoint", "missing bucket"])
@pytest.mark.parametrize("kind", PARSERS)
def test_an_unreachable_store_is_a_typed_error_naming_the_url(
    s3_bucket: S3Bucket, kind: str, broken: str
) -> None:
    if broken == "missing bucket":
        dead = dataclasses.replace(s3_bucket, name=f"{s3_bucket.name}-missing")
    else:
        dead = dataclasses.replace(s3_bucket, endpoint=f"http://127.0.0.1:{_closed_port()}")
    url = dead.key_url("data/source")
    # A dead endpoint fails every read; a missing bucket may read as a missing object.
    with pytest.raises(vc.VirtualizationError, match=url):
        PARSERS[kind](url, dead.registry())


def test_chunks_from_an_unreachable_endpoint_are_a_typed_error_naming_the_url(
    s3_bucket: S3Bucket, parsed_basic: tuple[str, vc.VirtualGroup]
) -> None:
    url, group = parsed_basic
    dead = dataclasses.replace(s3_bucket, endpoint=f"http://127.0.0.1:{_closed_port()}")
    store = vc.ManifestStore(group, registry=dead.registry())
    with pytest.raises(vc.VirtualizationError, match=url):
        zarr.open_array(store, path="tas", mode="r")[...]


def test_a_source_deleted_after_parsing_is_a_typed_error_at_read(
    s3_bucket: S3Bucket, parsed_basic: tuple[str, vc.VirtualGroup]
) -> None:
    url, group = parsed_basic
    obstore.delete(s3_bucket.store(), url.removeprefix(s3_bucket.url))
    store = vc.ManifestStore(group, registry=s3_bucket.registry())
    with pytest.raises(vc.VirtualizationError, match=url):
        zarr.open_array(store, path="tas", mode="r")[...]


# ---- request counts -----------------------------------------------------------------------


def _large_netcdf4(path: Path) -> Path:
    """Ten compressed variables of 120 chunks each: a file whose bytes are mostly data."""
    rng = np.random.default_rng(7)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("time", 24)
        ds.createDimension("lat", 40)
        ds.createDimension("lon", 50)
        for index in range(10):
            var = ds.createVariable(
                f"v{index}", "f4", ("time", "lat", "lon"), zlib=True, chunksizes=(2, 10, 10)
            )
            var[:] = rng.standard_normal((24, 40, 50)).astype("f4")
    return path


@pytest.fixture
def large_on_s3(s3_bucket: S3Bucket, tmp_path: Path) -> tuple[Path, str]:
    """`_large_netcdf4` written locally and uploaded: its local path and s3:// URL."""
    local = _large_netcdf4(tmp_path / "large.nc")
    return local, s3_bucket.put_file("large.nc", local)


def test_requests_to_parse_and_read_a_netcdf4_file_on_s3(
    s3_bucket: S3Bucket, large_on_s3: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Counted at the server; printed (run with -s to see them while the test passes)."""
    local, url = large_on_s3
    registry = s3_bucket.registry()
    gets, sent = s3_bucket.get_count(), s3_bucket.bytes_sent()
    group = HDFParser(loadable_variables=STRINGS)(url, registry)
    parse_gets, parse_bytes = s3_bucket.get_count() - gets, s3_bucket.bytes_sent() - sent
    store = vc.ManifestStore(group, registry=registry)
    with xr.open_dataset(local) as expected:
        for name in expected.data_vars:
            values = zarr.open_array(store, path=str(name), mode="r")[...]
            np.testing.assert_array_equal(values, expected[name].values, err_msg=str(name))
    read_gets = s3_bucket.get_count() - gets - parse_gets
    with capsys.disabled():
        print(
            f"\nHDFParser on S3: {parse_gets} GETs, {parse_bytes} bytes to parse a "
            f"{local.stat().st_size}-byte file; {read_gets} GETs to read its 1200 chunks"
        )
    assert parse_gets > 0
    assert read_gets > 0


def test_a_small_netcdf4_file_on_s3_is_parsed_in_one_get(
    s3_bucket: S3Bucket, large_on_s3: tuple[Path, str]
) -> None:
    """Below 4 MiB the file view reads the whole file at once: one GET, no more bytes."""
    local, url = large_on_s3
    gets, sent = s3_bucket.get_count(), s3_bucket.bytes_sent()
    HDFParser(loadable_variables=STRINGS)(url, s3_bucket.registry())
    assert s3_bucket.get_count() - gets == 1
    assert s3_bucket.bytes_sent() - sent == local.stat().st_size


def test_parsing_a_bigger_netcdf4_file_on_s3_fetches_a_small_part_of_it(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    """Parsing needs the metadata and the chunk index, a small part of a file of data."""
    import netCDF4

    path = tmp_path / "bigger.nc"
    rng = np.random.default_rng(1)
    with netCDF4.Dataset(path, "w") as ds:
        for name, size in (("time", 16), ("lat", 100), ("lon", 160)):
            ds.createDimension(name, size)
        for index in range(6):
            var = ds.createVariable(
                f"v{index}", "f4", ("time", "lat", "lon"), zlib=True, chunksizes=(4, 25, 40)
            )
            var[:] = rng.standard_normal((16, 100, 160)).astype("f4")
    assert path.stat().st_size > 4 << 20
    url = s3_bucket.put_file("bigger.nc", path)
    gets, sent = s3_bucket.get_count(), s3_bucket.bytes_sent()
    group = HDFParser()(url, s3_bucket.registry())
    assert s3_bucket.bytes_sent() - sent < path.stat().st_size / 4
    assert s3_bucket.get_count() - gets <= 20
    store = vc.ManifestStore(group, registry=s3_bucket.registry())
    with netCDF4.Dataset(path) as expected:
        for name in ("v0", "v5"):
            np.testing.assert_array_equal(
                zarr.open_array(store, path=name, mode="r")[...], expected[name][...].data
            )
