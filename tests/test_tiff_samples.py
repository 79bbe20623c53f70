"""TIFFParser on Pillow's test images (its sdist's ``Tests/images``), files nobody here wrote.

Every TIFF there is in `EXPECTED`: read back through `ManifestStore` and compared
bit for bit with tifffile (every page, overviews by their place in the layout,
SubIFDs), with rasterio where tifffile misreads the file, or refused with a typed error whose
reason is listed. A new file in a later Pillow fails the test until it is listed.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import zarr
from tests.sample_packages import sdist_members

import vzcore as vc
from vzcore.parsers import TIFFFormatError, TIFFParser
from vzcore.read import rectilinear_chunks_enabled

PILLOW_VERSION = "13.0.0"

TIFFFILE, RASTERIO = "tifffile", "rasterio"
_CCITT = "compression 4 (CCITT Group 4 fax) has no zarr codec"

_READ = (
    "10ct_32bit_128.tiff 12bit.cropped.tif 12in16bit.tif 16_bit_binary_pgm.tiff "
    "16_bit_noise.tif 16bit.MM.cropped.tif 16bit.MM.deflate.tif 16bit.cropped.tif "
    "16bit.deflate.tif 16bit.r.tif 16bit.s.tif 8bit.s.tif child_ifd.tiff child_ifd_jpeg.tiff "
    "cmx3g8_wv_1998.260_0745_mcidas.tiff copyleft.tiff hopper.Lab.tif hopper.iccprofile.tif "
    "hopper.iccprofile_binary.tif hopper.tif hopper_bigtiff.tif hopper_float_dpi_2.tif "
    "hopper_float_dpi_3.tif hopper_float_dpi_None.tif hopper_gray_4bpp.tif hopper_jpg.tif "
    "hopper_lzma.tif hopper_lzw.tif hopper_unknown_pixel_mode.tif hopper_webp.tif "
    "ifd_tag_type.tiff imagedraw_polygon_width_I.tiff imagedraw_rectangle_I.tiff "
    "issue_2278.tif lab-green.tif lab-red.tif lab.tif multipage-lastframe.tif "
    "multipage-mmap.tiff multipage.tiff multipage_out_of_order.tiff no_rows_per_strip.tif "
    "pil136.tiff pil168.tif rdf.tif separate_planar_extra_samples.tiff tiff_16bit_RGB.tiff "
    "tiff_16bit_RGBa.tiff tiff_adobe_deflate.tif hopper2.tif hopper2I.tif hopper2IR.tif "
    "hopper2R.tif hopper4.tif hopper4I.tif hopper4IR.tif hopper4R.tif "
    "tiff_strip_cmyk_16l_jpeg.tif tiff_strip_cmyk_jpeg.tif tiff_strip_planar_16bit_RGB.tiff "
    "tiff_strip_planar_16bit_RGBa.tiff tiff_strip_planar_lzw.tiff tiff_strip_planar_raw.tif "
    "tiff_strip_planar_raw_with_overviews.tif tiff_strip_raw.tif "
    "tiff_strip_ycbcr_jpeg_1x1_sampling.tif tiff_strip_ycbcr_jpeg_2x2_sampling.tif "
    "tiff_tiled_cmyk_jpeg.tif tiff_tiled_planar_16bit_RGB.tiff "
    "tiff_tiled_planar_16bit_RGBa.tiff tiff_tiled_planar_lzw.tiff tiff_tiled_planar_raw.tif "
    "tiff_tiled_raw.tif tiff_tiled_ycbcr_jpeg_1x1_sampling.tif "
    "tiff_tiled_ycbcr_jpeg_2x2_sampling.tif tiff_wrong_bits_per_sample.tiff "
    "tiff_wrong_bits_per_sample_3.tiff uint16_1_4660.tif"
)
_G4 = (
    "g4-fillorder-test.tif g4-multi.tiff hopper_g4.tif hopper_g4_500.tif pport_g4.tif "
    + " ".join(f"g4_orientation_{n}.tif" for n in range(1, 9))
)

EXPECTED: dict[str, str] = (
    dict.fromkeys(_READ.split(), TIFFFILE)
    | {
        # tifffile takes the PlanarConfiguration stored as a BYTE (b"\x01") for "separate"
        # and returns (3, 360, 480); libtiff, GDAL and vz read the tiles as contiguous RGB
        # (Pillow refuses the file: it tests an out-of-bounds read).
        "tiff_tiled_jpeg_oob_read.tif": RASTERIO,
        # Refused, with the reason the error gives.
        "compression.tif": "compression 2 (CCITT RLE) has no zarr codec",
        "total-pages-zero.tif": "compression 3 (CCITT Group 3 fax) has no zarr codec",
        "old-style-jpeg-compression.tif": "compression 6 (old-style JPEG) has no zarr codec",
        "old-style-jpeg-compression-no-samplesperpixel.tif": "compression 6 (old-style JPEG)",
        "multipage_multiple_frame_loop.tiff": "the IFD chain loops back",
        "multipage_single_frame_loop.tiff": "the IFD chain loops back",
        "tiff_wrong_bits_per_sample_2.tiff": "BitsPerSample differs between samples",
        # The hostile files (also in test_hostile_tiff.py, with time and memory bounds).
        "libtiff_segfault.tif": "1 offsets and 1 byte counts for 23 strips",
        "oom-225817ca0f8c663be7ab4b9e717b02c661e66834.tif": "which do not fit in the file",
        "seek_too_large.tif": "lies outside the file",
        "tiff_overflow_rows_per_strip.tif": "39 offsets and 39 byte counts for 3 strips",
    }
    | dict.fromkeys(_G4.split(), _CCITT)
)


@pytest.fixture(scope="module")
def pillow_images() -> dict[str, Path]:
    files = sdist_members("pillow", PILLOW_VERSION, "Tests/images/*.tif*")
    return {path.name: path for path in files}


def test_every_pillow_tiff_is_listed(pillow_images: dict[str, Path]) -> None:
    assert sorted(set(pillow_images) - set(EXPECTED)) == []
    assert sorted(set(EXPECTED) - set(pillow_images)) == []


def _paths_of_pages(tif: tifffile.TiffFile) -> list[str]:
    """Where vz puts each page of tifffile's chain: a page number, or an overview level."""
    paths, page, level = [], -1, 0
    for tiff_page in tif.pages:
        if tiff_page.subfiletype & 1 and page >= 0:
            level += 1
            paths.append(f"overviews/{level}/{page}")
        else:
            page, level = page + 1, 0
            paths.append(str(page))
    return paths


def _read(group: vc.VirtualGroup, registry: vc.ObjectStoreRegistry, path: str) -> Any:
    with rectilinear_chunks_enabled():
        return zarr.open_array(vc.ManifestStore(group, registry=registry), path=path, mode="r")[...]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_pillow_images(name: str, pillow_images: dict[str, Path]) -> None:
    path = pillow_images[name]
    url = f"file://{path}"
    registry = vc.ObjectStoreRegistry.for_urls([url])
    expected = EXPECTED[name]
    if expected not in (TIFFFILE, RASTERIO):
        with pytest.raises(TIFFFormatError) as info:
            TIFFParser()(url, registry)
        assert str(info.value).startswith(f"{url}: IFD") or str(info.value).startswith(url)
        assert expected in str(info.value)
        return
    group = TIFFParser()(url, registry)
    if expected == RASTERIO:
        rasterio = pytest.importorskip("rasterio")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                values = np.moveaxis(src.read(), 0, -1)
        np.testing.assert_array_equal(_read(group, registry, "0"), values)
        return
    with tifffile.TiffFile(path) as tif:
        for where, page in zip(_paths_of_pages(tif), tif.pages, strict=True):
            values = page.asarray()
            if values.dtype == bool:
                values = values.view("u1")
            got = _read(group, registry, where)
            assert got.dtype == values.dtype.newbyteorder("="), where
            np.testing.assert_array_equal(got, values, err_msg=where)
        for number, page in enumerate(tif.pages):
            for sub, subpage in enumerate(page.pages or (), start=1):
                if 256 not in subpage.tags:
                    # An EXIF-style JPEG thumbnail (JPEGInterchangeFormat) is no image IFD.
                    with pytest.raises(KeyError):
                        group[f"subifds/{sub}/{number}"]
                    continue
                np.testing.assert_array_equal(
                    _read(group, registry, f"subifds/{sub}/{number}"), subpage.asarray()
                )
