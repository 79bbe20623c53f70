"""The parser protocol, exercised with `ManifestParquetParser` over local and in-memory stores."""

from pathlib import Path

import numpy as np
import obstore
import pytest
from obstore.store import LocalStore, MemoryStore
from tests.data_factories import local_sample

import vzcore as vc
from vzcore.parsers import ManifestParquetParser, Parser


def sample_group(folder: Path) -> vc.VirtualGroup:
    """The local sample (nested groups, virtual arrays) plus a loaded array and a fingerprint."""
    group = local_sample(folder).group
    lat = vc.LoadedArray.from_numpy(np.linspace(-60.0, 60.0, 5), dimension_names=("y",))
    return group.evolve(
        arrays={**group.arrays, "y": lat},
        sources={"file:///elsewhere/a.nc": vc.SourceFingerprint(size=1234, etag="abc")},
    )


def put_tree(memory: MemoryStore, folder: Path, prefix: str) -> None:
    """Copy every file under ``folder`` into ``memory`` under ``prefix``."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            obstore.put(memory, f"{prefix}/{path.relative_to(folder)}", path.read_bytes())


def test_manifest_parquet_parser_is_a_parser() -> None:
    assert isinstance(ManifestParquetParser(), Parser)
    assert not isinstance(object(), Parser)


def test_a_group_directory_through_a_local_store(tmp_path: Path) -> None:
    group = sample_group(tmp_path)
    vc.write_manifest_parquet(group, tmp_path / "out" / "group.vz")
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/out/": LocalStore(tmp_path / "out")})
    parser = ManifestParquetParser()
    for url in (f"file://{tmp_path}/out/group.vz", f"file://{tmp_path}/out/group.vz/"):
        parsed = parser(url, registry)
        assert parsed == group
        assert parsed.groups["sub"].groups["deeper"] == group.groups["sub"].groups["deeper"]
        assert parsed.sources == group.sources


def test_a_single_array_file_through_a_local_store(tmp_path: Path) -> None:
    tas = sample_group(tmp_path).arrays["tas"]
    vc.write_manifest_parquet(tas, tmp_path / "tas.parquet")
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    parsed = ManifestParquetParser()(f"file://{tmp_path}/tas.parquet", registry)
    assert parsed == vc.VirtualGroup(arrays={"tas": tas})


def test_a_group_directory_through_a_memory_store(tmp_path: Path) -> None:
    group = sample_group(tmp_path)
    written = vc.write_manifest_parquet(group, tmp_path / "group.vz")
    memory = MemoryStore()
    put_tree(memory, written, "manifests/group.vz")
    registry = vc.ObjectStoreRegistry({"memory://bucket/": memory})
    assert ManifestParquetParser()("memory://bucket/manifests/group.vz", registry) == group


def test_a_store_registered_at_the_group_directory_itself(tmp_path: Path) -> None:
    group = sample_group(tmp_path)
    written = vc.write_manifest_parquet(group, tmp_path / "group.vz")
    memory = MemoryStore()
    put_tree(memory, written, "group.vz")
    registry = vc.ObjectStoreRegistry({"memory://bucket/group.vz/": MemoryStore()}).register(
        "memory://bucket/", memory
    )
    # The longer prefix (an empty store) wins for URLs under it.
    with pytest.raises(vc.SourceNotFoundError, match=r"group\.vz/vz-group\.json"):
        ManifestParquetParser()("memory://bucket/group.vz/", registry)
    assert ManifestParquetParser()("memory://bucket/group.vz", registry) == group


def test_a_single_array_file_through_a_memory_store(tmp_path: Path) -> None:
    level = sample_group(tmp_path).arrays["level"]
    written = vc.write_manifest_parquet(level, tmp_path / "level.parquet")
    memory = MemoryStore()
    obstore.put(memory, "x/level.parquet", written.read_bytes())
    registry = vc.ObjectStoreRegistry({"memory://bucket/": memory})
    parsed = ManifestParquetParser()("memory://bucket/x/level.parquet", registry)
    assert parsed == vc.VirtualGroup(arrays={"level": level})


def test_parsed_groups_are_served_by_the_same_registry(tmp_path: Path) -> None:
    import zarr

    sample = local_sample(tmp_path)
    vc.write_manifest_parquet(sample.group, tmp_path / "sample.vz")
    group = ManifestParquetParser()(f"file://{tmp_path}/sample.vz", sample.registry)
    store = vc.ManifestStore(group, registry=sample.registry)
    for path, values in sample.expected.items():
        np.testing.assert_array_equal(zarr.open_array(store, path=path, mode="r")[...], values)


@pytest.mark.parametrize(
    "url",
    [
        "memory://other/group.vz",
        "s3://bucket/group.vz",
        "memory://bucketx/group.vz",
        "file:///etc/group.vz",
    ],
)
def test_unregistered_urls_are_refused(url: str) -> None:
    registry = vc.ObjectStoreRegistry({"memory://bucket/": MemoryStore()})
    with pytest.raises(vc.UnregisteredURLError) as info:
        ManifestParquetParser()(url, registry)
    assert repr(url) in str(info.value)
    assert "registered: memory://bucket/" in str(info.value)


@pytest.mark.parametrize("name", ["missing.vz", "missing.parquet"])
def test_missing_sources_are_typed_errors_naming_the_url(name: str) -> None:
    registry = vc.ObjectStoreRegistry({"memory://bucket/": MemoryStore()})
    url = f"memory://bucket/{name}"
    with pytest.raises(vc.SourceNotFoundError) as info:
        ManifestParquetParser()(url, registry)
    assert str(info.value).startswith(url)


def test_a_file_that_is_not_parquet_is_a_format_error() -> None:
    memory = MemoryStore()
    obstore.put(memory, "bad.parquet", b"not parquet at all")
    registry = vc.ObjectStoreRegistry({"memory://bucket/": memory})
    with pytest.raises(vc.ManifestFormatError) as info:
        ManifestParquetParser()("memory://bucket/bad.parquet", registry)
    assert str(info.value).startswith("memory://bucket/bad.parquet: cannot read manifest parquet: ")


# ---- every parser accepts every registry form --------------------------------------------


@pytest.fixture(scope="module")
def one_file_per_format(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small file of each format a parser here reads, all in one folder."""
    import xarray as xr
    import zarr

    from vzcore.parsers import HDFParser
    from vzcore.writers import write_kerchunk_json, write_kerchunk_parquet

    folder = tmp_path_factory.mktemp("formats")
    data = xr.Dataset({"v": (("x",), np.arange(6.0))}, coords={"x": np.arange(6)})
    data.to_netcdf(folder / "a.nc", engine="netcdf4")
    data.to_netcdf(folder / "b3.nc", format="NETCDF3_CLASSIC", engine="scipy")
    zarr.create_group(folder / "c.zarr").create_array("v", shape=(6,), chunks=(3,), dtype="f8")[
        :
    ] = np.arange(6.0)
    group = HDFParser()(f"file://{folder}/a.nc", vc.ObjectStoreRegistry.for_urls([folder / "a.nc"]))
    write_kerchunk_json(group, folder / "d.json")
    write_kerchunk_parquet(group, folder / "e.parq")
    vc.write_manifest_parquet(group, folder / "f.vz")
    return {
        "HDFParser": folder / "a.nc",
        "NetCDF3Parser": folder / "b3.nc",
        "ZarrParser": folder / "c.zarr",
        "KerchunkJSONParser": folder / "d.json",
        "KerchunkParquetParser": folder / "e.parq",
        "ManifestParquetParser": folder / "f.vz",
    }


REGISTRY_FORMS = {
    "file:// root": lambda folder: {"file://": LocalStore()},
    "file:/// root": lambda folder: {"file:///": LocalStore("/")},
    "folder": lambda folder: {f"file://{folder}/": LocalStore(folder)},
    "for_urls": None,
}


@pytest.mark.parametrize("form", REGISTRY_FORMS)
@pytest.mark.parametrize("url_form", ["url", "path"])
@pytest.mark.parametrize(
    "parser_name",
    [
        "HDFParser",
        "NetCDF3Parser",
        "ZarrParser",
        "KerchunkJSONParser",
        "KerchunkParquetParser",
        "ManifestParquetParser",
    ],
)
def test_every_parser_accepts_every_registry_form(
    one_file_per_format: dict[str, Path], parser_name: str, form: str, url_form: str
) -> None:
    import vzcore.parsers

    path = one_file_per_format[parser_name]
    build = REGISTRY_FORMS[form]
    registry = (
        vc.ObjectStoreRegistry.for_urls([path, path / "x"])
        if build is None
        else vc.ObjectStoreRegistry(build(path.parent))
    )
    url = f"file://{path}" if url_form == "url" else str(path)
    group = getattr(vzcore.parsers, parser_name)()(url, registry)
    v = group.arrays["v"]
    np.testing.assert_array_equal(vc.read_array(v, registry), np.arange(6.0))
    if isinstance(v, vc.VirtualArray):
        # Every reference is a URL, whatever form the input named the file in.
        assert all(p.startswith("file:///") for p in v.manifest.dictionary.to_pylist())
    assert all(u.startswith("file:///") for u in group.sources)
