"""The FITS parser: every image HDU read back through zarr equals astropy's data.

References are astropy's own readers: ``getdata(..., do_not_scale_image_data=True)``
for the stored values, and astropy's scaled data for what xarray decodes. Samples
are astropy's test files (in its wheel) and files written here with astropy:
scaled, BLANK, unsigned, multi-extension, every tile compression.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tests.test_parser_contract  # noqa: F401 - the other formats' contracts, for can_open
import xarray as xr
import zarr
from astropy.io import fits
from tests.parser_contract import ParserContract, Values, local_registry
from tests.s3_server import S3Bucket

import vzcore as vc
import vzxarray as vx
from vzcore.parsers import FITSFormatError, FITSParser, FITSUnsupportedError, detect_parser
from vzcore.read import rectilinear_chunks_enabled

ASTROPY_FITS = Path(fits.__file__).parent
SAMPLES = sorted(
    [
        *(ASTROPY_FITS / "tests" / "data").glob("*.fits"),
        *(ASTROPY_FITS / "hdu" / "compressed" / "tests" / "data").glob("*.fits"),
    ]
)


def registry_for(path: Path) -> vc.ObjectStoreRegistry:
    return local_registry(path.parent)


def url_of(path: Path) -> str:
    return f"file://{path}"


def hdu_index(name: str, hdul: fits.HDUList) -> int:
    """The HDU an array name stands for (``hdu<i>``, ``EXTNAME`` or ``EXTNAME_EXTVER``)."""
    if name.startswith("hdu") and name[3:].isdigit():
        return int(name[3:])
    matches = [i for i, h in enumerate(hdul) if h.name == name]
    if len(matches) == 1:
        return matches[0]
    extname, _, version = name.rpartition("_")
    return int(hdul.index_of((extname, int(version))))


@pytest.fixture(autouse=True)
def _quiet_astropy() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def stored(path: Path, index: int) -> Any:
    with fits.open(path, do_not_scale_image_data=True) as hdul:
        return np.array(hdul[index].data)


def scaled(path: Path, index: int) -> Any:
    with fits.open(path) as hdul:
        return np.array(hdul[index].data)


def parse(path: Path, **options: Any) -> vc.VirtualGroup:
    return FITSParser(**options)(url_of(path), registry_for(path))


def read(group: vc.VirtualGroup, path: Path, name: str) -> Any:
    store = vc.ManifestStore(group, registry=registry_for(path))
    with rectilinear_chunks_enabled():
        return zarr.open_array(store, path=name, mode="r")[...]


def assert_same(got: Any, expected: Any, what: str) -> None:
    assert got.shape == expected.shape, what
    assert got.dtype == expected.dtype.newbyteorder("="), (what, got.dtype, expected.dtype)
    np.testing.assert_array_equal(got, expected, what)


def _uses(array: vc.AnyArray, codec: str) -> bool:
    return any(c.name == codec for c in array.metadata.codecs)


def check_file(path: Path, **options: Any) -> vc.VirtualGroup:
    """Every array of the parsed file equals astropy's values, stored and decoded."""
    group = parse(path, **options)
    with fits.open(path) as hdul:
        indices = {name: hdu_index(name, hdul) for name in group.arrays}
    for name, array in group.arrays.items():
        index = indices[name]
        got = read(group, path, name)
        if _uses(array, "vz.sign_flip"):  # unsigned: astropy's own values, not the stored ones
            assert_same(got, scaled(path, index), f"{path.name}:{name}")
        else:
            assert_same(got, stored(path, index), f"{path.name}:{name}")
    if group.arrays:
        store = vc.ManifestStore(group, registry=registry_for(path))
        with rectilinear_chunks_enabled(), xr.open_zarr(store, consolidated=False) as ds:
            for name in group.arrays:
                expected = scaled(path, indices[name])
                np.testing.assert_allclose(
                    ds[name].values, expected, rtol=1e-6, equal_nan=True, err_msg=name
                )
    return group


# ---- astropy's test files -------------------------------------------------------------------


def _image_samples() -> list[Path]:
    found = []
    for path in SAMPLES:
        with fits.open(path) as hdul:
            kinds = {type(h).__name__ for h in hdul}
        if kinds & {"ImageHDU", "CompImageHDU"} or (
            "PrimaryHDU" in kinds and fits.getheader(path).get("NAXIS", 0)
        ):
            found.append(path)
    return found


IMAGE_SAMPLES = _image_samples()


def _not_referenced(hdul: fits.HDUList) -> list[str]:
    """Names of the HDUs of a file that are no image, or quantized compressed images."""
    names = []
    for i, hdu in enumerate(hdul):
        quantized = isinstance(hdu, fits.CompImageHDU) and "ZSCALE" in hdu._bintable.columns.names
        image = isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU)
        if quantized or not image or isinstance(hdu, fits.GroupsHDU):
            names.append(hdu.name if i and hdu.name else f"hdu{i}")
    return names


@pytest.mark.parametrize("path", IMAGE_SAMPLES, ids=lambda p: p.name)
def test_astropy_samples_equal_astropy(path: Path) -> None:
    with fits.open(path) as hdul:
        dropped = _not_referenced(hdul)
        images = sum(
            1
            for i, h in enumerate(hdul)
            if h.is_image
            and h.header.get("NAXIS", 0)
            and np.prod(h.shape)
            and (h.name if i else "hdu0") not in dropped
        )
    group = check_file(path, drop_variables=dropped)
    assert len(group.arrays) == images


def test_the_samples_cover_every_compression() -> None:
    algorithms = set()
    for path in SAMPLES:
        with fits.open(path, disable_image_compression=True) as hdul:
            algorithms |= {h.header.get("ZCMPTYPE", "").strip() for h in hdul[1:]}
    assert {"RICE_1", "GZIP_1", "HCOMPRESS_1", "PLIO_1"} <= algorithms


# ---- files written here ---------------------------------------------------------------------


def _ramp(shape: tuple[int, ...], dtype: str, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    values = np.arange(np.prod(shape)).reshape(shape) % 251 + rng.integers(0, 40, shape)
    return values.astype(dtype)


def test_multi_extension_file_with_scaling_blank_and_unsigned(tmp_path: Path) -> None:
    path = tmp_path / "multi.fits"
    primary = fits.PrimaryHDU(_ramp((6, 5), "i2"))
    primary.header["OBSERVER"] = "vz"
    primary.header["HISTORY"] = "first"
    primary.header["HISTORY"] = "second"
    blank = fits.ImageHDU(_ramp((4, 7), "i4", 1), name="BLANKED")
    blank.data[1, 2] = -999
    blank.header["BLANK"] = -999
    scaled_hdu = fits.ImageHDU(_ramp((3, 4, 5), "i2", 2), name="SCALED")
    scaled_hdu.header["BSCALE"] = 0.25
    scaled_hdu.header["BZERO"] = 100.0
    unsigned16 = fits.ImageHDU(_ramp((5, 6), "u2", 3) + 40000, name="U16")
    unsigned32 = fits.ImageHDU(_ramp((5, 6), "u4", 4) + 3_000_000_000, name="U32")
    signed8 = fits.ImageHDU(_ramp((5, 6), "i1", 5) - 100, name="I8")
    unsigned64 = fits.ImageHDU(_ramp((5, 6), "u8", 8) + np.uint64(2**63 + 5), name="U64")
    # astropy does not mask BLANK in unsigned images: neither does vz.
    unsigned16.header["BLANK"] = -32768 + 41
    floats = fits.ImageHDU(_ramp((9, 2), "f8", 6) / 3, name="F64")
    twins = [fits.ImageHDU(_ramp((2, 2), "f4", 7 + v), name="TWIN", ver=v) for v in (1, 2)]
    hdus = [primary, blank, scaled_hdu, unsigned16, unsigned32, signed8, unsigned64, floats, *twins]
    fits.HDUList(hdus).writeto(path)
    group = check_file(path)
    assert set(group.arrays) == {
        "hdu0",
        "BLANKED",
        "SCALED",
        "U16",
        "U32",
        "I8",
        "U64",
        "F64",
        "TWIN_1",
        "TWIN_2",
    }
    assert group["hdu0"].metadata.attributes["HISTORY"] == "first\nsecond"
    assert group["hdu0"].metadata.attributes["OBSERVER"] == "vz"
    assert group["BLANKED"].metadata.encoding["_FillValue"] == -999
    assert group["SCALED"].metadata.encoding == {"scale_factor": 0.25, "add_offset": 100.0}
    # x has the primary's length, y not: only y gets the HDU's name.
    assert group["SCALED"].metadata.dimension_names == ("z", "SCALED_y", "x")
    assert group["U16"].metadata.dtype == np.dtype("u2")
    assert group["U64"].metadata.dtype == np.dtype("u8")
    assert "_FillValue" not in group["U16"].metadata.encoding
    assert group["I8"].metadata.dtype == np.dtype("i1")
    # 4 x 7 is not 6 x 5: the second HDU to use the names gets its own.
    assert group["BLANKED"].metadata.dimension_names == ("BLANKED_y", "BLANKED_x")
    ds = vx.open_virtual_dataset(url_of(path), registry=registry_for(path))
    assert ds["hdu0"].dims == ("y", "x")
    with xr.open_zarr(vc.ManifestStore(group, registry=registry_for(path))) as opened:
        assert np.isnan(opened["BLANKED"].values[1, 2])


@pytest.mark.parametrize("rows", [64, 61])
def test_uncompressed_images_are_cut_along_the_slowest_axis(tmp_path: Path, rows: int) -> None:
    path = tmp_path / "rows.fits"
    fits.PrimaryHDU(_ramp((rows, 50, 40), "f4")).writeto(path)
    group = check_file(path, chunks=8 * 50 * 40 * 4)
    metadata = group["hdu0"].metadata
    if rows == 64:
        assert metadata.chunk_shape == (8, 50, 40)
    else:  # 61 is prime: eight rows, then a short last chunk
        assert metadata.chunk_grid.chunk_lengths[0] == (*[8] * 7, 5)
    offsets = group["hdu0"].manifest.to_arrays()[1].ravel()
    assert offsets[0] == 2880
    assert np.all(np.diff(offsets) == 8 * 50 * 40 * 4)


COMPRESSIONS = ["RICE_1", "GZIP_1", "GZIP_2", "PLIO_1", "HCOMPRESS_1", "NOCOMPRESS"]


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("dtype", ["u1", "i2", "i4", "u2"])
def test_tile_compressed_integers_equal_astropy(
    tmp_path: Path, compression: str, dtype: str
) -> None:
    if compression == "PLIO_1" and dtype in ("u2",):
        pytest.skip("astropy refuses PLIO_1 for unsigned integers wider than 8 bits")
    path = tmp_path / f"{compression}-{dtype}.fits"
    data = _ramp((45, 37), dtype)
    if compression == "PLIO_1":
        data = (data % 200).astype(dtype)  # PLIO holds non-negative values below 2**24
    comp = fits.CompImageHDU(data, compression_type=compression, tile_shape=(10, 16))
    fits.HDUList([fits.PrimaryHDU(), comp]).writeto(path)
    group = check_file(path)
    array = group["COMPRESSED_IMAGE"]
    # 45 x 37 in tiles of 10 x 16: short edge tiles on both axes.
    assert array.metadata.chunk_grid.chunk_lengths == ((10, 10, 10, 10, 5), (16, 16, 5))
    assert array.manifest.n_chunks == 15


@pytest.mark.parametrize("compression", ["GZIP_1", "GZIP_2", "NOCOMPRESS"])
def test_lossless_floats_equal_astropy(tmp_path: Path, compression: str) -> None:
    path = tmp_path / f"{compression}.fits"
    data = _ramp((30, 20), "f4") / 7
    comp = fits.CompImageHDU(
        data, compression_type=compression, quantize_level=0.0, tile_shape=(10, 20)
    )
    fits.HDUList([fits.PrimaryHDU(), comp]).writeto(path)
    group = check_file(path)
    assert group["COMPRESSED_IMAGE"].metadata.chunk_shape == (10, 20)


@pytest.mark.parametrize(
    ("compression", "method"), [("RICE_1", 1), ("GZIP_1", 2), ("HCOMPRESS_1", -1)]
)
def test_quantized_floats_are_refused_or_loaded(
    tmp_path: Path, compression: str, method: int
) -> None:
    path = tmp_path / "quantized.fits"
    data = _ramp((30, 20), "f4") / 7
    comp = fits.CompImageHDU(
        data, compression_type=compression, quantize_method=method, name="SCI", tile_shape=(10, 20)
    )
    fits.HDUList([fits.PrimaryHDU(), comp]).writeto(path)
    with pytest.raises(FITSUnsupportedError, match=r"quantize.*SCI|SCI.*quantize") as info:
        parse(path)
    assert str(path) in str(info.value)
    assert "loadable_variables" in str(info.value)
    group = parse(path, loadable_variables=["SCI"])
    assert isinstance(group["SCI"], vc.LoadedArray)
    np.testing.assert_array_equal(group["SCI"].data, scaled(path, 1))
    ds = vx.open_virtual_dataset(
        url_of(path), registry=registry_for(path), loadable_variables=["SCI"]
    )
    np.testing.assert_array_equal(ds["SCI"].values, scaled(path, 1))


def test_tables_and_random_groups_are_refused_or_loaded(tmp_path: Path) -> None:
    path = ASTROPY_FITS / "tests" / "data" / "btable.fits"
    with pytest.raises(FITSUnsupportedError, match=r"HDU 1 .*BINTABLE.*loadable_variables"):
        parse(path)
    group = parse(path, loadable_variables=["hdu1"])
    with fits.open(path) as hdul:
        table = hdul[1].data
        for column in hdul[1].columns.names:
            np.testing.assert_array_equal(group["hdu1"][column].data, np.asarray(table[column]))
    groups = ASTROPY_FITS / "tests" / "data" / "random_groups.fits"
    with pytest.raises(FITSUnsupportedError, match="random groups"):
        parse(groups)
    assert parse(groups, drop_variables=["hdu0"]).arrays == {}
    loaded = parse(groups, loadable_variables=["hdu0"])
    with fits.open(groups) as hdul:
        for name in hdul[0].columns.names:
            np.testing.assert_array_equal(loaded["hdu0"][name].data, hdul[0].data[name], name)


def test_a_gzipped_file_says_to_decompress(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "image.fits.gz"
    plain = tmp_path / "image.fits"
    fits.PrimaryHDU(_ramp((4, 4), "i2")).writeto(plain)
    path.write_bytes(gzip.compress(plain.read_bytes()))
    registry = registry_for(path)
    parser = detect_parser(url_of(path), registry)
    assert isinstance(parser, FITSParser)
    with pytest.raises(FITSFormatError, match="decompress") as info:
        parser(url_of(path), registry)
    assert str(path) in str(info.value)


def test_detect_parser_and_open_virtual_datatree(tmp_path: Path) -> None:
    path = tmp_path / "tree.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(_ramp((3, 4), "i2"), name="SCI")]).writeto(path)
    registry = registry_for(path)
    assert isinstance(detect_parser(url_of(path), registry), FITSParser)
    tree = vx.open_virtual_datatree(url_of(path), registry=registry)
    assert tree["/"].dataset["SCI"].dims == ("y", "x")


def test_from_s3_it_reads_the_same(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    path = tmp_path / "s3.fits"
    comp = fits.CompImageHDU(_ramp((40, 30), "i2"), compression_type="RICE_1", tile_shape=(8, 30))
    fits.HDUList([fits.PrimaryHDU(_ramp((5, 5), "f4")), comp]).writeto(path)
    url = s3_bucket.put_file("data/s3.fits", path)
    before = s3_bucket.get_count()
    group = FITSParser()(url, s3_bucket.registry())
    assert s3_bucket.get_count() - before <= 4  # the two headers and the tile table
    store = vc.ManifestStore(group, registry=s3_bucket.registry())
    for name, index in (("hdu0", 0), ("COMPRESSED_IMAGE", 1)):
        got = zarr.open_array(store, path=name, mode="r")[...]
        assert_same(got, stored(path, index), name)


# ---- the parser contract --------------------------------------------------------------------


class TestFITSContract(ParserContract):
    parser = FITSParser()
    source_name = "sample.fits"

    def make_sample(self, folder: Path) -> None:
        comp = fits.CompImageHDU(
            _ramp((20, 12), "i2"), compression_type="GZIP_2", tile_shape=(5, 12), name="COMP"
        )
        image = fits.ImageHDU(_ramp((3, 4, 5), "f8"), name="CUBE")
        fits.HDUList([fits.PrimaryHDU(_ramp((7, 6), "u2")), image, comp]).writeto(
            folder / self.source_name
        )

    def reference(self, source: Path) -> Values:
        return {"hdu0": scaled(source, 0), "CUBE": stored(source, 1), "COMP": stored(source, 2)}


# ---- many files, the command line, trees ------------------------------------------------------


def _exposures(folder: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = folder / f"exposure{i}.fits"
        fits.PrimaryHDU(_ramp((1, 8, 6), "i2", i)).writeto(path)
        paths.append(path)
    return paths


def test_open_virtual_mfdataset_stacks_exposures(tmp_path: Path) -> None:
    paths = _exposures(tmp_path, 3)
    ds = vx.open_virtual_mfdataset(
        [url_of(p) for p in paths],
        registry=local_registry(tmp_path),
        concat_dim="z",
        combine="nested",
    )
    assert ds["hdu0"].shape == (3, 8, 6)
    group = ds.vz.to_virtual_group()
    expected = np.concatenate([stored(p, 0) for p in paths])
    np.testing.assert_array_equal(read(group, paths[0], "hdu0"), expected)


def test_the_cli_virtualizes_fits_files(tmp_path: Path) -> None:
    from vzxarray.cli import main

    paths = _exposures(tmp_path, 2)
    out = tmp_path / "refs.json"
    arguments = ["virtualize", *map(str, paths), "--concat-dim", "z", "--out", str(out)]
    assert main([*arguments, "--format", "kerchunk-json"]) == 0
    expected = np.concatenate([stored(p, 0) for p in paths])
    with xr.open_dataset(
        "reference://",
        engine="zarr",
        backend_kwargs={
            "consolidated": False,
            "storage_options": {"fo": str(out), "remote_protocol": "file"},
        },
    ) as ds:
        np.testing.assert_array_equal(ds["hdu0"].values, expected)


def test_a_loaded_table_is_a_node_of_the_tree() -> None:
    path = ASTROPY_FITS / "tests" / "data" / "table.fits"
    tree = vx.open_virtual_datatree(
        url_of(path), registry=registry_for(path), loadable_variables=["hdu1"]
    )
    with fits.open(path) as hdul:
        for column in hdul[1].columns.names:
            np.testing.assert_array_equal(
                tree["hdu1"].dataset[column].values, np.asarray(hdul[1].data[column])
            )


def test_a_loaded_table_opens_as_a_dataset_of_its_group() -> None:
    path = ASTROPY_FITS / "tests" / "data" / "table.fits"
    options = {"registry": registry_for(path), "loadable_variables": ["hdu1"]}
    with pytest.raises(vc.VirtualizationError, match=r"loaded as groups.*group='hdu1'"):
        vx.open_virtual_dataset(url_of(path), **options)
    dataset = vx.open_virtual_dataset(url_of(path), group="hdu1", **options)
    with fits.open(path) as hdul:
        assert sorted(dataset.data_vars) == sorted(hdul[1].columns.names)
        for column in hdul[1].columns.names:
            np.testing.assert_array_equal(dataset[column].values, np.asarray(hdul[1].data[column]))


# ---- the codecs -------------------------------------------------------------------------------


def test_the_fits_codecs_check_their_configuration_and_only_decode() -> None:
    from vzcore.errors import InvalidMetadataError, UnsupportedCodecError
    from vzcore.format_codecs import FITSTileCodec, SignFlipCodec

    with pytest.raises(InvalidMetadataError, match="not a FITS tile compression"):
        FITSTileCodec(compression="LZW")  # type: ignore[arg-type]
    with pytest.raises(InvalidMetadataError, match="hold integers"):
        FITSTileCodec(compression="RICE_1", bitpix=-32)
    with pytest.raises(InvalidMetadataError, match="itemsize 3"):
        SignFlipCodec(itemsize=3)
    assert FITSTileCodec.from_dict(FITSTileCodec(bitpix=32).to_dict()) == FITSTileCodec(bitpix=32)
    with pytest.raises(UnsupportedCodecError, match="only decodes"):
        SignFlipCodec().compute_encoded_size(4, None)  # type: ignore[arg-type]


def test_gzip_tiles_wider_than_bitpix_use_the_tile_codec() -> None:
    # astropy's m13_gzip.fits: a 16-bit image whose GZIP_1 tiles hold 32-bit integers.
    path = ASTROPY_FITS / "hdu" / "compressed" / "tests" / "data" / "m13_gzip.fits"
    group = check_file(path)
    codec = group["COMPRESSED_IMAGE"].metadata.codecs[-1]
    assert codec.name == "vz.fits_tile"
    assert codec.configuration["compression"] == "GZIP_1"


@pytest.mark.parametrize(
    ("rows", "row_nbytes", "expected"),
    [(64, 10, [8]), (61, 10, [8] * 7 + [5]), (60, 10, [6]), (3, 100, [1]), (10, 1, [10])],
)
def test_row_chunks(rows: int, row_nbytes: int, expected: list[int]) -> None:
    from vzcore.parsers.fits import _row_chunks

    assert _row_chunks(rows, row_nbytes, 80) == expected


@pytest.mark.parametrize("smooth", [False, True])
def test_lossy_hcompress_integers_equal_astropy(tmp_path: Path, smooth: bool) -> None:
    path = tmp_path / "hcomp.fits"
    comp = fits.CompImageHDU(
        _ramp((32, 48), "i2"),
        compression_type="HCOMPRESS_1",
        hcomp_scale=3,
        hcomp_smooth=smooth,
        tile_shape=(16, 16),
    )
    fits.HDUList([fits.PrimaryHDU(), comp]).writeto(path)
    group = check_file(path)
    config = group["COMPRESSED_IMAGE"].metadata.codecs[-1].configuration
    assert (config["scale"], config["smooth"]) == (3, int(smooth))


@pytest.mark.parametrize("compression", ["RICE_1", "GZIP_2"])
def test_a_compressed_integer_image_with_blank(tmp_path: Path, compression: str) -> None:
    path = tmp_path / "blank.fits"
    data = _ramp((20, 16), "i2")
    data[3, 4] = -999
    header = fits.Header()
    header["BLANK"] = -999
    comp = fits.CompImageHDU(data, header=header, compression_type=compression, tile_shape=(5, 16))
    fits.HDUList([fits.PrimaryHDU(), comp]).writeto(path)
    group = check_file(path)
    assert group["COMPRESSED_IMAGE"].metadata.encoding["_FillValue"] == -999


# ---- files cfitsio wrote: fpack (Debian's libcfitsio-bin; .ci/run installs it) --------------------

FPACK_OPTIONS = ["-r", "-r -t 32,16", "-g", "-g2", "-g -q 0", "-h", "-h -s 4", "-p"]


@pytest.mark.parametrize("options", FPACK_OPTIONS)
def test_fpack_files_equal_astropy(tmp_path: Path, options: str) -> None:
    if shutil.which("fpack") is None:
        message = "fpack (Debian's libcfitsio-bin) is not installed"
        if os.environ.get("VZ_CI"):  # .ci/run installs it: a missing tool there is a failure
            pytest.fail(message)
        pytest.skip(message)
    rng = np.random.default_rng(0)
    images = [
        fits.ImageHDU(rng.normal(100, 5, (64, 96)).astype("i2"), name="I16"),
        fits.ImageHDU(rng.integers(0, 200, (48, 40)).astype("i4"), name="I32"),
    ]
    if not options.startswith(("-h", "-p")):  # HCOMPRESS and PLIO take these
        images += [
            fits.ImageHDU(rng.normal(0, 1, (40, 60)).astype("f4"), name="F32"),
            fits.ImageHDU(rng.integers(0, 60000, (30, 20)).astype("u2"), name="U16"),
        ]
    source, packed = tmp_path / "plain.fits", tmp_path / "packed.fits"
    fits.HDUList([fits.PrimaryHDU(), *images]).writeto(source)
    subprocess.run(
        ["fpack", *options.split(), "-O", str(packed), str(source)], check=True, timeout=60
    )
    with fits.open(packed) as hdul:
        dropped = _not_referenced(hdul)  # fpack quantizes floats unless told -q 0
    group = check_file(packed, drop_variables=dropped)
    assert set(group.arrays) | set(dropped) == {h.name for h in images}


def test_astropys_quantized_sample_loads_equal_astropy() -> None:
    path = ASTROPY_FITS / "hdu" / "compressed" / "tests" / "data" / "compressed_with_nan.fits"
    with pytest.raises(FITSUnsupportedError, match="quantized"):
        parse(path)
    group = parse(path, loadable_variables=["COMPRESSED_IMAGE"])
    np.testing.assert_array_equal(group["COMPRESSED_IMAGE"].data, scaled(path, 1))
    assert np.isnan(group["COMPRESSED_IMAGE"].data).any()


@pytest.mark.parametrize("compression", ["HCOMPRESS_1", "RICE_1", "PLIO_1"])
def test_tiles_decoded_in_many_threads_at_once_stay_exact(tmp_path: Path, compression: str) -> None:
    """astropy's cfitsio decoders are not thread-safe (HCOMPRESS keeps C statics): zarr
    decodes chunks in threads, so `FITSTileCodec` serialises the calls."""
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "threads.fits"
    data = (_ramp((64, 64), "i2") % 200).astype("i2")
    comp = fits.CompImageHDU(data, compression_type=compression, hcomp_scale=3, tile_shape=(16, 16))
    fits.HDUList([fits.PrimaryHDU(), comp]).writeto(path)
    group = parse(path)
    expected = stored(path, 1)
    store = vc.ManifestStore(group, registry=registry_for(path))

    def read_all(_: int) -> bool:
        got = zarr.open_array(store, path="COMPRESSED_IMAGE", mode="r")[...]
        return bool(np.array_equal(got, expected))

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(read_all, range(40)))
