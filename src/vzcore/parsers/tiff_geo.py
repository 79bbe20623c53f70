"""GeoTIFF and GDAL tags as attributes: GeoKeys, the affine transform, nodata, metadata.

Written from the OGC GeoTIFF standard 1.1 (the GeoKey directory, section 7; the
raster-to-model transformation, section 7.2) and GDAL's GTiff driver notes
(``GDAL_NODATA`` 42113, ``GDAL_METADATA`` 42112). The ``transform`` attribute
is the affine transform as rasterio gives it, ``(a, b, c, d, e, f)`` with
``x = a * column + b * row + c`` and ``y = d * column + e * row + f`` for the
pixel corner, so that pixel centres (the ``x`` / ``y`` coordinates) are what
rioxarray shows.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from vzcore._frozen import JSON
from vzcore.parsers.tiff_ifd import IFD

__all__ = ["GeoInfo", "gdal_metadata", "gdal_nodata", "geo_info", "pixel_centres"]

MODEL_PIXEL_SCALE, MODEL_TIEPOINT, MODEL_TRANSFORMATION = 33550, 33922, 34264
GEO_KEY_DIRECTORY, GEO_DOUBLE_PARAMS, GEO_ASCII_PARAMS = 34735, 34736, 34737
GDAL_METADATA, GDAL_NODATA = 42112, 42113

_KEY_NAMES = {
    1024: "GTModelTypeGeoKey",
    1025: "GTRasterTypeGeoKey",
    1026: "GTCitationGeoKey",
    2048: "GeodeticCRSGeoKey",
    2049: "GeodeticCitationGeoKey",
    2050: "GeodeticDatumGeoKey",
    2051: "PrimeMeridianGeoKey",
    2052: "GeogLinearUnitsGeoKey",
    2054: "GeogAngularUnitsGeoKey",
    2056: "EllipsoidGeoKey",
    2057: "EllipsoidSemiMajorAxisGeoKey",
    2058: "EllipsoidSemiMinorAxisGeoKey",
    2059: "EllipsoidInvFlatteningGeoKey",
    3072: "ProjectedCRSGeoKey",
    3073: "ProjectedCitationGeoKey",
    3074: "ProjectionGeoKey",
    3075: "ProjMethodGeoKey",
    3076: "ProjLinearUnitsGeoKey",
    4096: "VerticalGeoKey",
    4097: "VerticalCitationGeoKey",
    4098: "VerticalDatumGeoKey",
    4099: "VerticalUnitsGeoKey",
}
_USER_DEFINED = 32767
_PIXEL_IS_POINT = 2

type Transform = tuple[float, float, float, float, float, float]


@attrs.frozen
class GeoInfo:
    """What the GeoTIFF tags of one IFD say."""

    transform: Transform | None
    attributes: dict[str, JSON]


def _geokeys(ifd: IFD) -> dict[int, JSON]:
    directory = ifd.numbers(GEO_KEY_DIRECTORY)
    if directory is None or len(directory) < 4:
        return {}
    doubles = ifd.numbers(GEO_DOUBLE_PARAMS)
    text = ifd.get(GEO_ASCII_PARAMS)
    ascii_params = text.decode("latin-1") if isinstance(text, bytes) else ""
    count = min(int(directory[3]), (len(directory) - 4) // 4)
    keys: dict[int, JSON] = {}
    for key, location, n, value in directory[4 : 4 + 4 * count].reshape(-1, 4).tolist():
        if location == 0:
            keys[key] = value
        elif location == GEO_DOUBLE_PARAMS and doubles is not None:
            found = [float(v) for v in doubles[value : value + n]]
            keys[key] = found[0] if n == 1 and found else found
        elif location == GEO_ASCII_PARAMS:
            keys[key] = ascii_params[value : value + n].rstrip("|\x00")
    return keys


def _transform(ifd: IFD, point: bool) -> Transform | None:
    matrix = ifd.numbers(MODEL_TRANSFORMATION)
    if matrix is not None and len(matrix) >= 16:
        m = [float(v) for v in matrix[:16]]
        a, b, c, d, e, f = m[0], m[1], m[3], m[4], m[5], m[7]
    else:
        scale, tiepoints = ifd.numbers(MODEL_PIXEL_SCALE), ifd.numbers(MODEL_TIEPOINT)
        if scale is None or tiepoints is None or len(scale) < 2 or len(tiepoints) < 6:
            return None
        if len(tiepoints) > 6:
            return None  # ground control points, not a transform
        i, j, _, x, y, _ = (float(v) for v in tiepoints[:6])
        sx, sy = float(scale[0]), float(scale[1])
        a, b, c, d, e, f = sx, 0.0, x - i * sx, 0.0, -sy, y + j * sy
    if point:
        # PixelIsPoint: the tiepoint is a pixel centre; GDAL moves it to the corner.
        c, f = c - 0.5 * a - 0.5 * b, f - 0.5 * d - 0.5 * e
    values = (a, b, c, d, e, f)
    return values if all(math.isfinite(v) for v in values) else None


def geo_info(ifd: IFD) -> GeoInfo | None:
    """The CRS, transform and GeoKeys of an IFD as attributes (None if it has no GeoTIFF tags).

    ``crs`` is ``"EPSG:<code>"`` from the projected or geodetic CRS key when it is
    an EPSG code; every GeoKey is an attribute of its name (``GeoKey<id>`` when unknown).
    """
    keys = _geokeys(ifd)
    point = keys.get(1025) == _PIXEL_IS_POINT
    transform = _transform(ifd, point)
    if not keys and transform is None:
        return None
    attributes: dict[str, JSON] = {}
    for code in (3072, 2048):
        value = keys.get(code)
        if isinstance(value, int) and 0 < value < _USER_DEFINED:
            attributes["crs"] = f"EPSG:{value}"
            break
    attributes.update({_KEY_NAMES.get(k, f"GeoKey{k}"): v for k, v in sorted(keys.items())})
    if transform is not None:
        attributes["transform"] = list(transform)
    tiepoints = ifd.numbers(MODEL_TIEPOINT)
    if transform is None and tiepoints is not None:
        attributes["tiepoints"] = [float(v) for v in tiepoints]
    return GeoInfo(transform, attributes)


def scaled(transform: Transform, factor_x: float, factor_y: float) -> Transform:
    """The transform of an overview whose pixels are ``factor`` times larger."""
    a, b, c, d, e, f = transform
    return (a * factor_x, b * factor_y, c, d * factor_x, e * factor_y, f)


def pixel_centres(
    transform: Transform, height: int, width: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
    """The ``y`` and ``x`` coordinates of pixel centres (None for a rotated grid)."""
    a, b, c, d, e, f = transform
    if b != 0 or d != 0:
        return None
    x = c + (np.arange(width, dtype=np.float64) + 0.5) * a
    y = f + (np.arange(height, dtype=np.float64) + 0.5) * e
    return y, x


def gdal_nodata(ifd: IFD) -> float | None:
    """GDAL_NODATA as a number (None if absent or not a number)."""
    text = ifd.text(GDAL_NODATA)
    if text is None:
        return None
    try:
        return float(text.strip())
    except ValueError:
        return None


def gdal_metadata(ifd: IFD) -> dict[str, JSON]:
    """GDAL_METADATA items: dataset items by name, band items as ``band_<n>_<name>``.

    A single band's ``scale`` and ``offset`` roles become ``scale_factor`` and
    ``add_offset``, as rioxarray shows them.
    """
    text = ifd.text(GDAL_METADATA)
    if not text:
        return {}
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return {"GDAL_METADATA": text}
    attributes: dict[str, JSON] = {}
    for item in root.iter("Item"):
        name, value = item.get("name"), (item.text or "")
        if name is None:
            continue
        sample, role = item.get("sample"), item.get("role")
        if sample is None:
            attributes[name] = value
        elif role in ("scale", "offset") and sample == "0":
            key = "scale_factor" if role == "scale" else "add_offset"
            attributes[key] = _number(value)
        elif sample.isdigit():
            attributes[f"band_{int(sample) + 1}_{name}"] = value
        else:
            attributes[f"band_{sample}_{name}"] = value
    return attributes


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text
