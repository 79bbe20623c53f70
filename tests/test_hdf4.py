"""HDF4Parser against pyhdf: files written by pyhdf, read back through ManifestStore."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr
from tests.hdf4_maker import (
    make_appended,
    make_dfsd,
    make_sample,
    read_all,
    set_chunk,
    write_native,
)
from tests.s3_server import S3Bucket

import vzcore as vc
from vzcore.parsers import HDF4Parser, HDF4UnsupportedError, detect_parser
from vzcore.parsers.hdf4_eos import eos_dimension_names
from vzcore.writers import write_icechunk, write_kerchunk_json

pytest.importorskip("pyhdf")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hdf4") / "sample.hdf"
    make_sample(path)
    return path


def _open(path: Path, **options: object) -> tuple[vc.VirtualGroup, vc.ObjectStoreRegistry]:
    registry = vc.ObjectStoreRegistry.for_urls([str(path)])
    return HDF4Parser(**options)(f"file://{path}", registry), registry  # type: ignore[arg-type]


def _read(group: vc.VirtualGroup, registry: vc.ObjectStoreRegistry, name: str) -> np.ndarray:
    store = vc.ManifestStore(group, registry=registry)
    return np.asarray(zarr.open_array(store, path=name, mode="r")[...])


def test_every_data_set_reads_back_equal_to_pyhdf(sample: Path) -> None:
    group, registry = _open(sample)
    expected = read_all(sample)
    assert set(group.arrays) == set(expected)
    for name, values in expected.items():
        got = _read(group, registry, name)
        assert got.dtype == values.dtype, name
        np.testing.assert_array_equal(got, values, err_msg=name)


def test_layouts_become_chunks_and_codecs(sample: Path) -> None:
    group, _ = _open(sample)
    partial = group["partial"]
    assert partial.metadata.chunk_shape == (2, 3)
    assert partial.manifest.n_chunks == 9
    assert partial.manifest.n_missing == 8
    deflated = group["chunked_deflate"].metadata
    assert deflated.chunk_shape == (4, 2, 3)
    assert [c.name for c in deflated.codecs] == ["bytes", "numcodecs.zlib"]
    assert group["temperature"].manifest.n_chunks == 1  # type: ignore[union-attr]
    assert group["empty"].manifest.n_missing == 1  # type: ignore[union-attr]


def test_dimensions_attributes_and_fill_values(sample: Path) -> None:
    from pyhdf.SD import SD

    group, _ = _open(sample)
    assert group.attributes == {"title": "sample", "numbers": (1, 2, 3), "ratio": 0.5}
    temperature = group["temperature"].metadata
    assert temperature.dimension_names == ("lat", "lon")
    assert temperature.attributes["units"] == "K"
    assert temperature.fill_value == -9.0
    assert group["lat"].metadata.attributes["units"] == "degrees_north"
    assert group["unlimited"].metadata.dimension_names[0] == "time"
    assert group["i16"].metadata.dimension_names[1] == "lon"
    sd = SD(str(sample))
    for name in ("partial", "chunked_u8", "empty"):
        sds = sd.select(name)
        untouched = np.asarray(sds.get())[-1, -1]
        assert group[name].metadata.fill_value == untouched, name
    sd.end()


def test_opens_in_xarray_with_coordinates(sample: Path) -> None:
    import vzxarray as vx

    registry = vc.ObjectStoreRegistry.for_urls([str(sample)])
    ds = vx.open_virtual_dataset(f"file://{sample}", registry=registry, parser=HDF4Parser())
    assert ds["temperature"].dims == ("lat", "lon")
    assert "lat" in ds.coords


def test_separate_linked_blocks_are_refused_or_loaded(tmp_path: Path) -> None:
    path = tmp_path / "appended.hdf"
    make_appended(path)
    with pytest.raises(HDF4UnsupportedError, match=r"appended.hdf: SDS 'grow': .*linked blocks"):
        _open(path)
    group, registry = _open(path, loadable_variables=["grow", "other"])
    for name, values in read_all(path).items():
        assert isinstance(group[name], vc.LoadedArray)
        np.testing.assert_array_equal(_read(group, registry, name), values)
    group, registry = _open(path, drop_variables=["grow", "other"])
    assert not group.arrays


def test_data_sets_of_the_old_dfsd_interface_are_refused_not_missed(tmp_path: Path) -> None:
    """Without a CDF0.0 Vgroup the library reads the DFSD groups as data sets; vz read
    such a file as holding none (an empty group)."""
    path = tmp_path / "dfsd.hdf"
    make_dfsd(path, [np.arange(12, dtype="f4").reshape(3, 4), np.arange(6, dtype="i4")])
    read = read_all(path)
    np.testing.assert_array_equal(read["Data-Set-2"], np.arange(12).reshape(3, 4))
    np.testing.assert_array_equal(read["Data-Set-3"], np.arange(6))
    with pytest.raises(HDF4UnsupportedError, match=r"dfsd.hdf: .*old DFSD interface") as info:
        _open(path)
    assert f"file://{path}" in str(info.value)


@pytest.mark.parametrize("compressed", [False, True], ids=["no-data", "template"])
def test_a_fill_attribute_of_another_type_fills_as_the_library_does(
    tmp_path: Path, compressed: bool
) -> None:
    """An INT16 data set without data whose ``_FillValue`` is stored as FLOAT64 -5.0:
    the library fills with the attribute's first two bytes in memory (0), not -5."""
    from pyhdf.SD import SD, SDC

    path = tmp_path / "fill.hdf"
    sd = SD(str(path), SDC.WRITE | SDC.CREATE)
    sds = sd.create("t", SDC.INT16, (2, 3))
    if compressed:
        sds.setcompress(SDC.COMP_DEFLATE, 6)  # a compressed template: no data written
    sds.attr("_FillValue").set(SDC.FLOAT64, -5.0)
    sds.endaccess()
    sd.end()
    expected = read_all(path)["t"]
    assert (expected == 0).all()  # what pyhdf reads
    group, registry = _open(path)
    np.testing.assert_array_equal(_read(group, registry, "t"), expected)
    loaded, registry = _open(path, loadable_variables=["t"])
    np.testing.assert_array_equal(_read(loaded, registry, "t"), expected)


def test_a_fill_attribute_shorter_than_a_value_is_refused(tmp_path: Path) -> None:
    """An INT32 data set without data and a one-byte ``_FillValue``: the library would
    fill from the memory after the attribute."""
    from pyhdf.SD import SD, SDC

    path = tmp_path / "short-fill.hdf"
    sd = SD(str(path), SDC.WRITE | SDC.CREATE)
    sds = sd.create("t", SDC.INT32, (4,))
    sds.attr("_FillValue").set(SDC.INT8, 7)
    sds.endaccess()
    sd.end()
    with pytest.raises(vc.VirtualizationError, match="_FillValue holds 1 bytes of int8") as info:
        _open(path)
    assert f"file://{path}" in str(info.value)


_STRUCT = (
    'GROUP=SWATH_1\n\tSwathName="Swath A"\n\tGROUP=DataField\n'
    '\t\tOBJECT=DataField_1\n\t\t\tDataFieldName="Radiance"\n\t\t\tDataType=DFNT_FLOAT32\n'
    '\t\t\tDimList=("nTrack","nXtrack")\n\t\tEND_OBJECT=DataField_1\n'
    "\tEND_GROUP=DataField\nEND_GROUP=SWATH_1\n"
    'GROUP=SWATH_2\n\tSwathName="Swath B"\n\tGROUP=GeoField\n'
    '\t\tOBJECT=GeoField_1\n\t\t\tGeoFieldName="Radiance"\n'
    '\t\t\tDimList=("along","across")\n\t\tEND_OBJECT=GeoField_1\n'
    "\tEND_GROUP=GeoField\nEND_GROUP=SWATH_2\n"
    'GROUP=GRID_1\n\tGridName="Grid"\n\tGROUP=DataField\n'
    '\t\tOBJECT=DataField_1\n\t\t\tDataFieldName="Cover"\n'
    '\t\t\tDimList=("YDim","XDim","Band")\n\t\tEND_OBJECT=DataField_1\n'
    "\tEND_GROUP=DataField\nEND_GROUP=GRID_1\nEND\n"
)


def test_hdf_eos2_dimension_names(tmp_path: Path) -> None:
    from pyhdf.SD import SD, SDC

    path = tmp_path / "swath.hdf"
    sd = SD(str(path), SDC.WRITE | SDC.CREATE)
    half = len(_STRUCT) // 2  # structural metadata longer than one attribute is split
    sd.attr("StructMetadata.1").set(SDC.CHAR8, _STRUCT[half:])
    sd.attr("StructMetadata.0").set(SDC.CHAR8, _STRUCT[:half])
    shapes = {"Radiance": (3, 2), "Radiance:Swath B": (2, 2), "Cover": (2, 3), "Other": (4,)}
    for name, shape in shapes.items():
        sds = sd.create(name, SDC.FLOAT32, shape)
        sds[:] = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
        sds.endaccess()
    sd.end()
    group, registry = _open(path)
    assert group["Radiance"].metadata.dimension_names == ("nTrack", "nXtrack")
    assert group["Radiance:Swath B"].metadata.dimension_names == ("along", "across")
    # a DimList of another rank than the SDS is ignored
    assert group["Cover"].metadata.dimension_names == ("fakeDim4", "fakeDim5")
    assert group["Other"].metadata.dimension_names == ("fakeDim6",)
    for name, values in read_all(path).items():
        np.testing.assert_array_equal(_read(group, registry, name), values)
    assert eos_dimension_names("GROUP=SWATH_1\nEND") == {}


def test_detected_and_read_from_s3(s3_bucket: S3Bucket, sample: Path) -> None:
    url = s3_bucket.put_file("d/sample.hdf", sample)
    registry = s3_bucket.registry()
    parser = detect_parser(url, registry)
    assert isinstance(parser, HDF4Parser)
    group = parser(url, registry)
    for name, values in read_all(sample).items():
        np.testing.assert_array_equal(_read(group, registry, name), values)


def test_kerchunk_and_icechunk_round_trips(sample: Path, tmp_path: Path) -> None:
    import icechunk

    group, _ = _open(sample)
    expected = read_all(sample)
    names = ["temperature", "partial", "chunked_deflate", "deflate", "u32", "empty"]
    refs = write_kerchunk_json(group, tmp_path / "refs.json")
    code = (
        "import json, sys, fsspec, zarr, numpy as np\n"
        "fs = fsspec.filesystem('reference', fo=sys.argv[1], remote_protocol='file')\n"
        "root = zarr.open_group(zarr.storage.FsspecStore.from_mapper(fs.get_mapper('')), mode='r')\n"
        "print(json.dumps({k: np.asarray(root[k][...]).tolist() for k in sys.argv[2:]}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(refs), *names], capture_output=True, text=True, check=True
    )
    for name, got in json.loads(out.stdout).items():
        np.testing.assert_array_equal(np.asarray(got, dtype=expected[name].dtype), expected[name])
    prefix = f"file://{sample.parent}/"
    config = icechunk.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        icechunk.VirtualChunkContainer(prefix, icechunk.local_filesystem_store(str(sample.parent)))
    )
    repository = icechunk.Repository.create(
        icechunk.in_memory_storage(),
        config,
        authorize_virtual_chunk_access=icechunk.containers_credentials(
            {prefix: icechunk.Credentials.LocalFileSystemAccess()}
        ),
    )
    session = repository.writable_session("main")
    write_icechunk(group, session.store)
    session.commit("from HDF4")
    root = zarr.open_group(repository.readonly_session("main").store, mode="r")
    for name, values in expected.items():
        np.testing.assert_array_equal(root[name][...], values, name)


def test_little_endian_number_types(tmp_path: Path) -> None:
    from pyhdf.SD import SD, SDC

    litend = 0x4000  # DFNT_LITEND: pyhdf cannot read these, so libmfhdf's input is the truth
    path = tmp_path / "little.hdf"
    expected = {
        "f32": np.array([[1.5, -2.25, 3e30]], dtype=np.float32),
        "i16": np.array([[1, -2, 300]], dtype=np.int16),
        "u32": np.array([[7, 2**31 + 5, 0]], dtype=np.uint32),
        "f64": np.array([[np.pi, -1.0, 2.0**-40]]),
    }
    codes = {"f32": SDC.FLOAT32, "i16": SDC.INT16, "u32": SDC.UINT32, "f64": SDC.FLOAT64}
    sd = SD(str(path), SDC.WRITE | SDC.CREATE)
    for name, values in expected.items():
        sds = sd.create(name, codes[name] | litend, values.shape)
        if name == "f64":
            set_chunk(sds, (1, 2), deflate=4)
        write_native(sds, values)
        sds.endaccess()
    sd.end()
    group, registry = _open(path)
    for name, values in expected.items():
        assert group[name].metadata.dtype.byteorder in ("<", "=") or values.itemsize == 1
        np.testing.assert_array_equal(_read(group, registry, name), values, err_msg=name)


def test_a_dimension_with_attributes_but_no_scale_has_no_array(tmp_path: Path) -> None:
    from pyhdf.SD import SD, SDC

    path = tmp_path / "dims.hdf"
    sd = SD(str(path), SDC.WRITE | SDC.CREATE)
    v = sd.create("v", SDC.FLOAT32, (3,))
    v.dim(0).setname("t")
    v.dim(0).attr("units").set(SDC.CHAR8, "days")  # pyhdf lists "t", all fill values
    v[:] = np.ones(3, np.float32)
    v.endaccess()
    w = sd.create("w", SDC.INT8, (3, 2))
    w.dim(0).setname("t")
    w.dim(1).setname("k")
    w.dim(1).setscale(SDC.INT32, [5, 6])
    w[:] = np.ones((3, 2), np.int8)
    w.endaccess()
    sd.end()
    group, registry = _open(path)
    expected = read_all(path)
    assert set(expected) - set(group.arrays) == {"t"}
    assert group["w"].metadata.dimension_names == ("t", "k")
    for name in group.arrays:
        np.testing.assert_array_equal(_read(group, registry, name), expected[name])


def test_loadable_variables_are_read_into_memory(sample: Path) -> None:
    names = ["temperature", "partial", "chunked_deflate", "deflate", "unlimited", "empty"]
    group, registry = _open(sample, loadable_variables=names)
    expected = read_all(sample)
    for name in names:
        assert isinstance(group[name], vc.LoadedArray), name
        np.testing.assert_array_equal(_read(group, registry, name), expected[name], name)
    assert group["temperature"].metadata.dimension_names == ("lat", "lon")
    assert group["temperature"].metadata.fill_value == -9.0


def test_kerchunk_parquet_and_manifest_parquet_round_trips(sample: Path, tmp_path: Path) -> None:
    from vzcore.parsers import KerchunkParquetParser, read_manifest_parquet
    from vzcore.writers import write_kerchunk_parquet, write_manifest_parquet

    group, registry = _open(sample)
    expected = read_all(sample)
    refs = write_kerchunk_parquet(group, tmp_path / "refs.parq", record_size=3)
    registry = vc.ObjectStoreRegistry.for_urls([str(sample), str(refs)])
    from_parquet = KerchunkParquetParser()(f"file://{refs}", registry)
    saved = read_manifest_parquet(write_manifest_parquet(group, tmp_path / "group.vz"))
    assert isinstance(saved, vc.VirtualGroup)
    for name, values in expected.items():
        np.testing.assert_array_equal(_read(from_parquet, registry, name), values, name)
        np.testing.assert_array_equal(_read(saved, registry, name), values, name)


def test_rle_data_sets_are_loaded_equal_to_pyhdf(tmp_path: Path) -> None:
    from pyhdf.SD import SD, SDC

    path = tmp_path / "rle.hdf"
    sd = SD(str(path), SDC.WRITE | SDC.CREATE)
    runs = np.repeat(np.arange(-3, 40, dtype=np.int16), 7)[:300].reshape(15, 20)
    runs[::4] = np.arange(20, dtype=np.int16) * 1000  # literal stretches between runs
    plain = sd.create("plain_rle", SDC.INT16, runs.shape)
    plain.setcompress(SDC.COMP_RLE)
    plain[:] = runs
    plain.endaccess()
    chunked = sd.create("chunked_rle", SDC.FLOAT32, (7, 9))
    set_chunk(chunked, (3, 4), rle=True)  # edge chunks, and chunks never written
    chunked[0:5, 0:9] = np.linspace(0, 1, 45, dtype=np.float32).reshape(5, 9)
    chunked.endaccess()
    sd.end()
    for name, other in (("plain_rle", "chunked_rle"), ("chunked_rle", "plain_rle")):
        assert SD(str(path)).select(name).getcompress()[0] == SDC.COMP_RLE
        with pytest.raises(HDF4UnsupportedError, match=rf"SDS '{name}': RLE"):
            _open(path, drop_variables=[other])
    group, registry = _open(path, loadable_variables=["plain_rle", "chunked_rle"])
    for name, values in read_all(path).items():
        assert isinstance(group[name], vc.LoadedArray)
        got = _read(group, registry, name)
        assert got.dtype == values.dtype, name
        np.testing.assert_array_equal(got, values, err_msg=name)
