"""TIFFParser on files made here: tifffile's layouts and codecs, rasterio's COGs, crafted IFDs.

Every array is read back through `ManifestStore` and compared bit for bit with
tifffile (and, for COGs, with rasterio: values, overviews, transform, CRS).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import zarr
from tests.s3_server import S3Bucket
from tests.tiff_files import PAYLOAD_OFFSET, classic_tiff

import vzcore as vc
from vzcore.parsers import TIFFFormatError, TIFFParser, detect_parser
from vzcore.read import rectilinear_chunks_enabled

rasterio = pytest.importorskip("rasterio")


def registry_for(path: Path) -> vc.ObjectStoreRegistry:
    return vc.ObjectStoreRegistry.for_urls([f"file://{path}"])


def parse(path: Path, **options: Any) -> vc.VirtualGroup:
    return TIFFParser(**options)(f"file://{path}", registry_for(path))


def read(group: vc.VirtualGroup, registry: vc.ObjectStoreRegistry, path: str) -> Any:
    with rectilinear_chunks_enabled():
        store = vc.ManifestStore(group, registry=registry)
        return zarr.open_array(store, path=path, mode="r")[...]


def assert_reads_like_tifffile(path: Path, **options: Any) -> vc.VirtualGroup:
    group = parse(path, **options)
    with tifffile.TiffFile(path) as tif:
        for number, page in enumerate(tif.pages):
            got = read(group, registry_for(path), str(number))
            expected = page.asarray()
            if expected.dtype == bool:  # tifffile's bilevel images; vz gives uint8 0 and 1
                expected = expected.view("u1")
            assert got.dtype == expected.dtype.newbyteorder("="), number
            np.testing.assert_array_equal(got, expected, err_msg=f"page {number}")
    return group


_RNG = np.random.default_rng(17)
_U16 = _RNG.integers(0, 60000, (101, 130), dtype="u2")
_RGB = _RNG.integers(0, 255, (70, 61, 3), dtype="u1")
_F32 = _RNG.random((45, 50)).astype("f4")

TIFFFILE_CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    "tiled deflate": (_U16, {"tile": (32, 48), "compression": "zlib"}),
    "tiled deflate 32946": (_U16, {"tile": (32, 48), "compression": "deflate"}),
    "strips, short last strip": (_U16.astype("i4"), {"rowsperstrip": 10}),
    "strips big-endian": (_U16, {"rowsperstrip": 7, "byteorder": ">"}),
    "strips lzw predictor rgb": (
        _RGB,
        {"compression": "lzw", "predictor": True, "rowsperstrip": 9, "photometric": "rgb"},
    ),
    "tiled zstd planar": (
        np.moveaxis(_RGB, -1, 0),
        {"planarconfig": "separate", "tile": (16, 16), "compression": "zstd", "photometric": "rgb"},
    ),
    "planar strips": (
        np.moveaxis(_RGB, -1, 0),
        {"planarconfig": "separate", "rowsperstrip": 8, "photometric": "rgb"},
    ),
    "float predictor": (_F32, {"compression": "zlib", "predictor": 3, "tile": (16, 16)}),
    "float predictor big-endian rgb f8": (
        _RNG.random((40, 50, 3)),
        {
            "compression": "zlib",
            "predictor": 3,
            "rowsperstrip": 9,
            "byteorder": ">",
            "photometric": "rgb",
        },
    ),
    "float16": (_F32.astype("f2"), {"compression": "zlib"}),
    "horizontal predictor big-endian": (
        _U16[:64, :64],
        {"compression": "zlib", "predictor": 2, "byteorder": ">", "tile": (16, 32)},
    ),
    "bigtiff lzma": (_U16.astype("i2"), {"bigtiff": True, "compression": "lzma", "tile": (16, 16)}),
    "bigtiff big-endian": (_F32.astype("f8"), {"bigtiff": True, "byteorder": ">"}),
    "packbits": ((_U16 % 3).astype("u1"), {"compression": "packbits", "rowsperstrip": 16}),
    "jpeg rgb": (_RGB[:64, :64], {"compression": "jpeg", "tile": (32, 32), "photometric": "rgb"}),
    "jpeg ycbcr": (_RGB[:64, :64], {"compression": "jpeg", "tile": (32, 32)}),
    "jpeg gray strips": ((_U16 % 256).astype("u1"), {"compression": "jpeg", "rowsperstrip": 16}),
    "webp": (_RGB[:64, :64], {"compression": "webp", "tile": (32, 32)}),
    "jpegxl": (_RGB[:64, :64], {"compression": "jpegxl", "tile": (32, 32)}),
    "jpeg2000": (_U16[:64, :64], {"compression": "jpeg2000", "tile": (32, 32)}),
    "png": (_RGB[:64, :64], {"compression": "png", "tile": (32, 32)}),
    "lerc": (_F32[:32, :32], {"compression": "lerc", "tile": (16, 16)}),
    "int64": (_U16.astype("i8") - 30000, {"tile": (16, 16)}),
    "uint32 rgba": (
        _RNG.integers(0, 2**32, (20, 30, 4), dtype="u4"),
        {"photometric": "rgb", "extrasamples": [2], "compression": "zlib"},
    ),
    "bilevel": (_U16 > 30000, {}),
    "jpegxr": (_RGB[:64, :64], {"compression": "jpegxr", "tile": (32, 32), "photometric": "rgb"}),
    "planar predictor lzw": (
        np.moveaxis(_RGB, -1, 0).astype("i2") - 100,
        {"planarconfig": "separate", "photometric": "rgb", "predictor": 2, "compression": "lzw"},
    ),
    "planar float predictor tiles": (
        np.moveaxis(_RNG.random((40, 50, 3)).astype("f4"), -1, 0),
        {
            "planarconfig": "separate",
            "photometric": "rgb",
            "predictor": 3,
            "compression": "zstd",
            "tile": (16, 16),
        },
    ),
    "int8 uint64": (_U16.astype("u8") * 2**40, {"compression": "zlib", "predictor": 2}),
}


@pytest.mark.parametrize("name", sorted(TIFFFILE_CASES))
def test_tifffile_layouts_and_codecs_read_back_equal(name: str, tmp_path: Path) -> None:
    data, options = TIFFFILE_CASES[name]
    path = tmp_path / "image.tif"
    try:
        tifffile.imwrite(path, data, **options)
    except (ValueError, NotImplementedError) as err:  # an encoder imagecodecs was built without
        pytest.skip(f"tifffile cannot write {name}: {err}")
    assert_reads_like_tifffile(path)


def test_a_short_last_strip_is_a_short_chunk(tmp_path: Path) -> None:
    path = tmp_path / "strips.tif"
    tifffile.imwrite(path, _U16, rowsperstrip=10, compression="zlib")
    array = parse(path)["0"]
    assert isinstance(array, vc.VirtualArray)
    assert array.metadata.chunk_grid.chunk_lengths[0] == (10,) * 10 + (1,)
    np.testing.assert_array_equal(read(parse(path), registry_for(path), "0"), _U16)


def test_multipage_files_are_one_array_per_page_or_stacked(tmp_path: Path) -> None:
    path = tmp_path / "pages.tif"
    pages = _RNG.integers(0, 255, (4, 30, 40), dtype="u1")
    with tifffile.TiffWriter(path) as tif:
        for page in pages:
            tif.write(page, compression="zlib", tile=(16, 16))
    group = assert_reads_like_tifffile(path)
    assert sorted(group.arrays) == ["0", "1", "2", "3"]
    stacked = parse(path, stack_pages=True)
    assert stacked["pages"].metadata.dimension_names == ("page", "y", "x")
    np.testing.assert_array_equal(read(stacked, registry_for(path), "pages"), pages)


def test_pages_that_differ_cannot_be_stacked(tmp_path: Path) -> None:
    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(_U16[:20, :20], compression="zlib")
        tif.write(_U16[:20, :20], compression="lzw")
    with pytest.raises(TIFFFormatError, match="cannot be stacked") as info:
        parse(path, stack_pages=True)
    assert str(path) in str(info.value)


def test_jpeg_tables_may_differ_between_ifds(tmp_path: Path) -> None:
    from rasterio.enums import Resampling

    path = tmp_path / "jpeg.tif"
    with rasterio.Env(JPEG_QUALITY_OVERVIEW=30):
        with rasterio.open(
            path, "w", driver="GTiff", width=256, height=256, count=3, dtype="uint8",
            tiled=True, blockxsize=128, blockysize=128, compress="jpeg", jpeg_quality=95,
            photometric="ycbcr", crs="EPSG:4326",
            transform=rasterio.transform.from_origin(0, 256, 1, 1),
        ) as dst:  # fmt: skip
            dst.write(np.moveaxis(np.tile(_RGB[:64, :61], (4, 5, 1))[:256, :256], -1, 0))
        with rasterio.open(path, "r+") as dst:
            dst.build_overviews([2], Resampling.average)
    group = parse(path)
    tables = [
        group[where].metadata.codecs[-1].configuration["tables"] for where in ("0", "overviews/1/0")
    ]
    assert all(tables)
    assert tables[0] != tables[1]
    registry = registry_for(path)
    with tifffile.TiffFile(path) as tif:
        np.testing.assert_array_equal(read(group, registry, "0"), tif.pages[0].asarray())
        np.testing.assert_array_equal(
            read(group, registry, "overviews/1/0"), tif.pages[1].asarray()
        )


def test_subifds_are_a_subgroup(tmp_path: Path) -> None:
    path = tmp_path / "pyramid.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(_U16, subifds=2, tile=(32, 32), compression="zlib")
        tif.write(_U16[::2, ::2], subfiletype=1, tile=(32, 32), compression="zlib")
        tif.write(_U16[::4, ::4], subfiletype=1, tile=(32, 32), compression="zlib")
    group = parse(path)
    registry = registry_for(path)
    np.testing.assert_array_equal(read(group, registry, "0"), _U16)
    np.testing.assert_array_equal(read(group, registry, "subifds/1/0"), _U16[::2, ::2])
    np.testing.assert_array_equal(read(group, registry, "subifds/2/0"), _U16[::4, ::4])


# ---- crafted layouts: sparse tiles, fill order, float24, packed integers ----------------------


def _image_tags(
    height: int,
    width: int,
    bits: int,
    offsets: list[int],
    counts: list[int],
    extra: dict[int, Any] | None = None,
) -> dict[int, Any]:
    tags: dict[int, Any] = {
        256: (3, [width]),
        257: (3, [height]),
        258: (3, [bits]),
        259: (3, [1]),
        262: (3, [1]),
        273: (4, offsets),
        277: (3, [1]),
        278: (3, [height]),
        279: (4, counts),
    }
    tags.update(extra or {})
    return tags


def test_sparse_tiles_are_missing_chunks(tmp_path: Path) -> None:
    tile = np.arange(256, dtype="<u2").reshape(16, 16)
    payload = tile.tobytes()
    tags = {
        256: (3, [32]),
        257: (3, [16]),
        258: (3, [16]),
        259: (3, [1]),
        262: (3, [1]),
        277: (3, [1]),
        322: (3, [16]),
        323: (3, [16]),
        324: (4, [PAYLOAD_OFFSET, 0]),
        325: (4, [len(payload), 0]),
        42113: (2, b"7\0"),
    }
    path = tmp_path / "sparse.tif"
    path.write_bytes(classic_tiff(tags, payload))
    group = parse(path)
    array = group["0"]
    assert isinstance(array, vc.VirtualArray)
    assert array.manifest.n_missing == 1
    got = read(group, registry_for(path), "0")
    np.testing.assert_array_equal(got[:, :16], tile)
    np.testing.assert_array_equal(got[:, 16:], 7)  # GDAL_NODATA fills, as GDAL reads it
    np.testing.assert_array_equal(got[:, :16], tifffile.imread(path)[:, :16])


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_fill_order_2_reverses_the_bits(byteorder: str, tmp_path: Path) -> None:
    values = _RNG.integers(0, 255, (6, 10), dtype="u1")
    stored = np.array([int(f"{v:08b}"[::-1], 2) for v in values.ravel()], "u1").tobytes()
    tags = _image_tags(6, 10, 8, [PAYLOAD_OFFSET], [60], {266: (3, [2])})
    path = tmp_path / "fillorder.tif"
    path.write_bytes(classic_tiff(tags, stored, byteorder=byteorder))
    np.testing.assert_array_equal(read(parse(path), registry_for(path), "0"), values)
    np.testing.assert_array_equal(tifffile.imread(path), values)


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_float24_samples_decode_to_float32(byteorder: str, tmp_path: Path) -> None:
    import imagecodecs

    values = (_F32[:5, :7] * 100).astype("f4")
    stored = imagecodecs.float24_encode(values, byteorder=byteorder)
    tags = _image_tags(5, 7, 24, [PAYLOAD_OFFSET], [len(stored)], {339: (3, [3])})
    path = tmp_path / "float24.tif"
    path.write_bytes(classic_tiff(tags, bytes(stored), byteorder=byteorder))
    got = read(parse(path), registry_for(path), "0")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, tifffile.imread(path))


@pytest.mark.parametrize("bits", [1, 2, 4, 12])
def test_packed_integers_unpack(bits: int, tmp_path: Path) -> None:
    height, width = 9, 13
    values = _RNG.integers(0, 2**bits, (height, width), dtype="u2")
    bit_rows = np.unpackbits(values.astype(">u2").view("u1").reshape(height, width, 2), axis=-1)
    rows = bit_rows[..., 16 - bits :].reshape(height, width * bits)
    stored = np.packbits(rows, axis=-1).tobytes()  # each row padded to a byte
    tags = _image_tags(height, width, bits, [PAYLOAD_OFFSET], [len(stored)])
    path = tmp_path / "packed.tif"
    path.write_bytes(classic_tiff(tags, stored))
    got = read(parse(path), registry_for(path), "0")
    np.testing.assert_array_equal(got, values)
    np.testing.assert_array_equal(got, tifffile.imread(path))


@pytest.mark.parametrize(
    ("compression", "name"),
    [
        (2, "CCITT RLE"),
        (3, "CCITT Group 3"),
        (4, "CCITT Group 4"),
        (6, "old-style JPEG"),
        (9, "unknown"),
    ],
)
def test_an_unexpressible_compression_is_named(compression: int, name: str, tmp_path: Path) -> None:
    tags = _image_tags(4, 4, 8, [PAYLOAD_OFFSET], [16], {259: (3, [compression])})
    path = tmp_path / "compressed.tif"
    path.write_bytes(classic_tiff(tags, bytes(16)))
    with pytest.raises(TIFFFormatError) as info:
        parse(path)
    message = str(info.value)
    assert f"file://{path}" in message
    assert "IFD 0" in message
    assert f"compression {compression} ({name}" in message


def test_an_uncompressed_segment_shorter_than_its_pixels_is_refused(tmp_path: Path) -> None:
    tags = _image_tags(4, 4, 8, [PAYLOAD_OFFSET], [10])
    path = tmp_path / "short.tif"
    path.write_bytes(classic_tiff(tags, bytes(16)))
    with pytest.raises(TIFFFormatError, match="holds 10 bytes"):
        parse(path)


# ---- GeoTIFF and COG, made with rasterio (GDAL) ---------------------------------------------


def _cog_values(count: int, dtype: str) -> np.ndarray[Any, Any]:
    grid = np.add.outer(np.arange(700), np.arange(900)) % 4000
    if count == 3:
        return np.stack([(grid * (k + 1)) % 256 for k in range(3)]).astype(dtype)
    return grid[None].astype(dtype)


COG_CODECS: dict[str, dict[str, Any]] = {
    "deflate": {"compress": "deflate", "predictor": 2},
    "deflate float predictor": {"compress": "deflate", "predictor": 3, "dtype": "float32"},
    "lzw": {"compress": "lzw"},
    "zstd": {"compress": "zstd"},
    "lzma": {"compress": "lzma"},
    "packbits": {"compress": "packbits"},
    "none": {"compress": "none"},
    "jpeg": {"compress": "jpeg", "count": 3, "dtype": "uint8"},
    "webp": {"compress": "webp", "count": 3, "dtype": "uint8"},
    "lerc": {"compress": "lerc"},
    "lerc zstd": {"compress": "lerc_zstd"},
    "lerc deflate": {"compress": "lerc_deflate"},
}


def write_cog(
    path: Path, *, compress: str, count: int = 1, dtype: str = "uint16", **extra: Any
) -> None:
    from rasterio.transform import from_origin

    data = _cog_values(count, dtype)
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=900,
        height=700,
        count=count,
        dtype=dtype,
        crs="EPSG:32633",
        transform=from_origin(500000, 4200000, 30, 30),
        nodata=None if count == 3 else 0,
        compress=compress,
        blocksize=256,
        overview_count=3,
        **extra,
    ) as dst:
        dst.write(data)


@pytest.fixture(scope="module")
def cogs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from rasterio._err import CPLE_BaseError

    folder = tmp_path_factory.mktemp("cogs")
    made = {}
    for name, options in COG_CODECS.items():
        path = folder / f"{name.replace(' ', '_')}.tif"
        try:
            write_cog(path, **options)
        except CPLE_BaseError:
            continue  # a codec this GDAL lacks: the test names it as skipped
        made[name] = path
    return made


def _rasterio_levels(path: Path) -> Iterator[tuple[np.ndarray[Any, Any], Any]]:
    with rasterio.open(path) as src:
        yield src.read(), src.transform
        levels = len(src.overviews(1))
    for level in range(levels):
        with rasterio.open(path, overview_level=level) as src:
            yield src.read(), src.transform


@pytest.mark.parametrize("name", sorted(COG_CODECS))
def test_cogs_read_back_like_rasterio_and_tifffile(name: str, cogs: dict[str, Path]) -> None:
    if name not in cogs:
        pytest.skip(f"this GDAL cannot write {name} COGs")
    path = cogs[name]
    group = parse(path)
    registry = registry_for(path)
    levels = list(_rasterio_levels(path))
    assert len(levels) == 4
    with tifffile.TiffFile(path) as tif:
        for level, (values, transform) in enumerate(levels):
            where = "0" if level == 0 else f"overviews/{level}/0"
            got = read(group, registry, where)
            expected = values[0] if values.shape[0] == 1 else np.moveaxis(values, 0, -1)
            np.testing.assert_array_equal(got, expected, err_msg=where)
            np.testing.assert_array_equal(got, tif.series[0].levels[level].asarray())
            array = group[where]
            assert isinstance(array, vc.VirtualArray)
            np.testing.assert_allclose(array.metadata.attributes["transform"], list(transform)[:6])
            assert array.metadata.attributes["crs"] == "EPSG:32633"


def test_an_internal_mask_and_its_overviews_are_arrays(tmp_path: Path) -> None:
    path = tmp_path / "masked.tif"
    data = _cog_values(1, "uint16")
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(
            path, "w", driver="GTiff", width=900, height=700, count=1, dtype="uint16",
            tiled=True, blockxsize=256, blockysize=256, compress="deflate", crs="EPSG:32633",
            transform=rasterio.transform.from_origin(500000, 4200000, 30, 30),
        ) as dst:  # fmt: skip
            dst.write(data)
            mask = np.zeros((700, 900), dtype="uint8")
            mask[100:500, 200:800] = 255
            dst.write_mask(mask)
        with rasterio.open(path, "r+") as dst:
            dst.build_overviews([2, 4], rasterio.enums.Resampling.nearest)
    group = parse(path)
    registry = registry_for(path)
    assert group["1"].metadata.attributes["subfile_type"] == 4
    with tifffile.TiffFile(path) as tif:
        for number, page in enumerate(tif.pages):
            where = {0: "0", 1: "1"}.get(number)
            if where is None:
                level = (
                    sum(
                        1
                        for p in tif.pages[: number + 1]
                        if p.subfiletype & 4 == page.subfiletype & 4
                    )
                    - 1
                )
                where = f"overviews/{level}/{1 if page.subfiletype & 4 else 0}"
            expected = page.asarray()
            expected = expected.view("u1") if expected.dtype == bool else expected
            np.testing.assert_array_equal(read(group, registry, where), expected, err_msg=where)
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(read(group, registry, "1") > 0, src.read_masks(1) > 0)


def test_geotiff_coordinates_are_pixel_centres(cogs: dict[str, Path]) -> None:
    path = cogs["deflate"]
    group = parse(path)
    with rasterio.open(path) as src:
        transform, width, height = src.transform, src.width, src.height
    columns, rows = np.arange(width) + 0.5, np.arange(height) + 0.5
    np.testing.assert_allclose(group["x"].data, transform.c + columns * transform.a)
    np.testing.assert_allclose(group["y"].data, transform.f + rows * transform.e)
    level = group["overviews/1"]
    assert isinstance(level, vc.VirtualGroup)
    assert level["x_level1"].shape == (450,)
    assert level["0"].metadata.dimension_names == ("y_level1", "x_level1")
    assert group["0"].metadata.dimension_names == ("y", "x")
    assert group["0"].metadata.fill_value == 0  # GDAL_NODATA
    assert group["0"].metadata.attributes["ProjectedCRSGeoKey"] == 32633


def test_pixel_is_point_moves_the_transform_like_gdal(tmp_path: Path) -> None:
    from rasterio.transform import from_origin

    path = tmp_path / "point.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=20, height=10, count=1, dtype="uint8",
        crs="EPSG:4326", transform=from_origin(10, 50, 0.5, 0.5),
    ) as dst:  # fmt: skip
        dst.update_tags(AREA_OR_POINT="Point")
        dst.write(np.arange(200, dtype="u1").reshape(1, 10, 20))
    group = parse(path)
    with rasterio.open(path) as src:
        expected = list(src.transform)[:6]
    np.testing.assert_allclose(group["0"].metadata.attributes["transform"], expected)


def test_gdal_metadata_becomes_attributes(tmp_path: Path) -> None:
    path = tmp_path / "meta.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=8, height=8, count=1, dtype="int16",
        nodata=-9999, crs="EPSG:4326", transform=rasterio.transform.from_origin(0, 8, 1, 1),
    ) as dst:  # fmt: skip
        dst.update_tags(title="a test", units_note="none")
        dst.update_tags(1, band_note="first band")
        dst.scales, dst.offsets = (0.5,), (10.0,)
        dst.write(np.arange(64, dtype="i2").reshape(1, 8, 8))
    array = parse(path)["0"]
    attributes = array.metadata.attributes
    assert attributes["title"] == "a test"
    assert attributes["band_1_band_note"] == "first band"
    assert array.metadata.fill_value == -9999
    assert array.metadata.encoding["scale_factor"] == 0.5
    assert array.metadata.encoding["add_offset"] == 10.0


def test_a_cog_from_s3_takes_at_most_two_gets(cogs: dict[str, Path], s3_bucket: S3Bucket) -> None:
    url = s3_bucket.put_file("cog.tif", cogs["deflate"])
    registry = s3_bucket.registry()
    before = s3_bucket.get_count()
    group = TIFFParser()(url, registry)
    assert s3_bucket.get_count() - before <= 2
    local = parse(cogs["deflate"])
    moved = vc.rename_paths(group, lambda p: p.replace(url, f"file://{cogs['deflate']}"))
    assert moved.evolve(sources={}) == local.evolve(sources={})
    np.testing.assert_array_equal(read(group, registry, "0"), _cog_values(1, "uint16")[0])


def test_detect_parser_finds_tiff_and_bigtiff(tmp_path: Path) -> None:
    for name, options in (
        ("a.tif", {}),
        ("b.tif", {"bigtiff": True}),
        ("c.tif", {"byteorder": ">"}),
    ):
        tifffile.imwrite(tmp_path / name, _U16[:4, :4], **options)
        url = f"file://{tmp_path / name}"
        assert isinstance(detect_parser(url, registry_for(tmp_path / name)), TIFFParser)


# ---- the xarray adapter, the CLI, writers ----------------------------------------------------


def test_open_virtual_dataset_gives_y_x_and_coordinates(cogs: dict[str, Path]) -> None:
    import vzxarray as vx

    path = cogs["deflate"]
    ds = vx.open_virtual_dataset(f"file://{path}", registry=registry_for(path), parser=TIFFParser())
    assert ds["0"].dims == ("y", "x")
    assert ds.sizes == {"y": 700, "x": 900}
    assert ds["x"].values[0] == 500015.0
    tree = vx.open_virtual_datatree(
        f"file://{path}", registry=registry_for(path), parser=TIFFParser()
    )
    assert tree["overviews/3"].to_dataset(inherit=False).sizes == {"y_level3": 87, "x_level3": 112}


def test_open_virtual_mfdataset_concatenates_pages(tmp_path: Path) -> None:
    import vzxarray as vx

    paths = []
    for number in range(3):
        path = tmp_path / f"t{number}.tif"
        tifffile.imwrite(path, _U16 + number, tile=(32, 32), compression="zlib")
        paths.append(f"file://{path}")
    registry = vc.ObjectStoreRegistry.for_urls(paths)
    ds = vx.open_virtual_mfdataset(
        paths,
        registry=registry,
        parser=TIFFParser(),
        combine="nested",
        concat_dim="time",
        data_vars="all",
    )
    assert ds["0"].shape == (3, *_U16.shape)
    store = vc.ManifestStore(ds.vz.to_virtual_group(), registry=registry)
    got = zarr.open_array(store, path="0", mode="r")[...]
    np.testing.assert_array_equal(got, np.stack([_U16 + n for n in range(3)]))


def test_the_cli_describes_and_virtualizes_a_tiff(
    cogs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vzxarray.cli import main

    path = cogs["deflate"]
    assert main(["info", str(path)]) == 0
    assert "0: uint16 (700, 900) dims (y, x) chunk shape (256, 256)" in capsys.readouterr().out
    out = tmp_path / "refs"
    assert main(["virtualize", str(path), "--out", str(out), "--format", "manifest-parquet"]) == 0
    group = vc.read_manifest_parquet(out)
    np.testing.assert_array_equal(read(group, registry_for(path), "0"), _cog_values(1, "uint16")[0])


def test_a_cog_round_trips_through_kerchunk_parquet(cogs: dict[str, Path], tmp_path: Path) -> None:
    import fsspec
    from tests.writer_corpus import PyarrowReferenceMapper

    from vzcore.writers import write_kerchunk_parquet

    path = cogs["zstd"]
    group = parse(path)
    refs = write_kerchunk_parquet(group.evolve(arrays={"0": group["0"]}), tmp_path / "refs.parq")
    fs = fsspec.filesystem("reference", fo=PyarrowReferenceMapper(refs), remote_protocol="file")
    with tifffile.TiffFile(path) as tif:
        for level in range(4):
            where = "0" if level == 0 else f"overviews/{level}/0"
            got = zarr.open_array(fs.get_mapper(where), mode="r", zarr_format=2)[...]
            np.testing.assert_array_equal(got, tif.series[0].levels[level].asarray(), where)


def test_kerchunk_output_maps_tiff_codecs_to_imagecodecs(
    cogs: dict[str, Path], tmp_path: Path
) -> None:
    import fsspec
    import imagecodecs.numcodecs

    from vzcore.writers import kerchunk_refs

    imagecodecs.numcodecs.register_codecs()
    for name in ("lzw", "jpeg", "zstd"):
        if name not in cogs:
            continue
        path = cogs[name]
        group = parse(path)
        refs = kerchunk_refs(vc.VirtualGroup(arrays={"0": group["0"]}))
        fs = fsspec.filesystem("reference", fo=refs, remote_protocol="file")
        got = zarr.open_array(fs.get_mapper("0"), mode="r", zarr_format=2)[...]
        np.testing.assert_array_equal(got, tifffile.imread(path), err_msg=name)


def test_kerchunk_refuses_codecs_numcodecs_lacks(cogs: dict[str, Path]) -> None:
    from vzcore.writers import kerchunk_refs

    group = parse(cogs["deflate"])  # predictor 2: vz.delta
    with pytest.raises(vc.VirtualizationError, match=r"vz\.delta"):
        kerchunk_refs(vc.VirtualGroup(arrays={"0": group["0"]}))


ICECHUNK_READER = """
import json, sys
import icechunk, numpy as np, zarr

folder, repository, expected_path = sys.argv[1:4]
prefix = f"file://{folder}/"
config = icechunk.RepositoryConfig.default()
config.set_virtual_chunk_container(
    icechunk.VirtualChunkContainer(prefix, icechunk.local_filesystem_store(folder))
)
credentials = icechunk.containers_credentials(
    {prefix: icechunk.Credentials.LocalFileSystemAccess()}
)
repo = icechunk.Repository.open(
    icechunk.local_filesystem_storage(repository), config,
    authorize_virtual_chunk_access=credentials,
)
store = repo.readonly_session("main").store
expected = np.load(expected_path)
report = {"imported_before_reading": "vzcore" in sys.modules, "equal": {}, "codecs": []}
for key in expected.files:
    path = key.replace("__", "/")
    array = zarr.open_array(store, path=path, mode="r")
    report["equal"][path] = bool(np.array_equal(array[...], expected[key]))
    report["codecs"] += [c["name"] for c in array.metadata.to_dict()["codecs"]]
print(json.dumps(report))
"""


def test_a_cog_round_trips_through_icechunk_to_a_process_without_vzcore(
    cogs: dict[str, Path], tmp_path: Path
) -> None:
    import json
    import os
    import subprocess
    import sys

    import icechunk
    from tests.test_format_codecs import _entry_point_path

    from vzcore.writers import write_icechunk

    source = cogs["jpeg"] if "jpeg" in cogs else cogs["lzw"]
    folder = source.parent
    group = parse(source)
    expected = {}
    with tifffile.TiffFile(source) as tif:
        for level in range(4):
            where = "0" if level == 0 else f"overviews/{level}/0"
            expected[where.replace("/", "__")] = tif.series[0].levels[level].asarray()
    prefix = f"file://{folder}/"
    config = icechunk.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        icechunk.VirtualChunkContainer(prefix, icechunk.local_filesystem_store(str(folder)))
    )
    repository = icechunk.Repository.create(
        icechunk.local_filesystem_storage(str(tmp_path / "repository")),
        config,
        authorize_virtual_chunk_access=icechunk.containers_credentials(
            {prefix: icechunk.Credentials.LocalFileSystemAccess()}
        ),
    )
    session = repository.writable_session("main")
    write_icechunk(group, session.store)
    session.commit("a COG")
    np.savez(tmp_path / "expected.npz", **expected)
    package_root = Path(vc.__file__).resolve().parents[1]
    path = [*_entry_point_path(tmp_path / "entry-points"), str(package_root)]
    env = os.environ | {"PYTHONPATH": os.pathsep.join([*path, os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            ICECHUNK_READER,
            str(folder),
            str(tmp_path / "repository"),
            str(tmp_path / "expected.npz"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["imported_before_reading"] is False
    assert report["equal"] == dict.fromkeys((k.replace("__", "/") for k in expected), True)
    assert ("vz.jpeg" if "jpeg" in cogs else "vz.lzw") in report["codecs"]
