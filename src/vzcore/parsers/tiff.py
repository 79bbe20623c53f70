"""Parser for TIFF, BigTIFF, GeoTIFF and Cloud-Optimized GeoTIFF files.

The IFDs are read by vz's own walker (`vzcore.parsers.tiff_ifd`) over ranged
reads: a COG's header, IFDs and tile offsets come with the first request. Each
IFD of the main chain is one array of the root group, named by its page number
(``"0"``, ``"1"``, ...); a reduced-resolution IFD (NewSubfileType bit 0: a COG's
overviews) is an array of the subgroup ``overviews/<level>``, under the name of
the page it reduces; SubIFDs are arrays of ``subifds/<n>``. Dimensions are
``y`` and ``x``, with ``band`` first for PlanarConfiguration 2 and ``sample``
last for several samples per pixel stored together; a GeoTIFF without rotation
gets loaded ``x`` and ``y`` coordinates (pixel centres, as rioxarray gives them).
In a subgroup the names carry the level (``y_level1``, ``x_subifd2``), and a page
of another size than the first its page (``y_page1``): xarray's DataTree aligns
dimensions of the same name between a group and its parents.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from vzcore._frozen import JSON
from vzcore.algebra import stack
from vzcore.array import AnyArray, LoadedArray, VirtualArray
from vzcore.byteranges import Source, SourceReadError, source
from vzcore.errors import LimitExceededError, VirtualizationError
from vzcore.group import VirtualGroup
from vzcore.limits import check_limit
from vzcore.parsers.protocol import Probe
from vzcore.parsers.tiff_geo import (
    GeoInfo,
    Transform,
    gdal_metadata,
    gdal_nodata,
    geo_info,
    pixel_centres,
    scaled,
)
from vzcore.parsers.tiff_ifd import FIRST_READ, IFD, TIFFFormatError, read_ifds
from vzcore.parsers.tiff_layout import Image, image_of, virtual_array
from vzcore.registry import ObjectStoreRegistry

__all__ = ["TIFFFormatError", "TIFFParser"]

_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_TEXT_TAGS = {
    269: "DocumentName",
    270: "ImageDescription",
    271: "Make",
    272: "Model",
    305: "Software",
    306: "DateTime",
    315: "Artist",
    33432: "Copyright",
}


@attrs.frozen
class _Node:
    """One IFD placed in the layout: the group it goes to and its array's name."""

    group: str
    name: str
    image: Image
    transform: Transform | None
    attributes: dict[str, JSON]


def _fill_value(nodata: float | None, dtype: np.dtype[Any]) -> object:
    """GDAL_NODATA as a value of ``dtype``, or None (zarr's default) when it is not one."""
    if nodata is None:
        return None
    if dtype.kind == "f":
        return dtype.type(nodata)
    info = np.iinfo(dtype)
    if nodata.is_integer() and info.min <= nodata <= info.max:
        return dtype.type(int(nodata))
    return None


def _attributes(image: Image, geo: GeoInfo | None) -> dict[str, JSON]:
    ifd = image.ifd
    attributes: dict[str, JSON] = {"photometric": image.photometric_name}
    if image.subfile_type:
        attributes["subfile_type"] = image.subfile_type
    for tag, name in _TEXT_TAGS.items():
        text = ifd.text(tag)
        if text:
            attributes[name] = text
    metadata = gdal_metadata(ifd)
    if image.samples > 1:
        metadata = {k: v for k, v in metadata.items() if k not in ("scale_factor", "add_offset")}
    attributes.update(metadata)
    if geo is not None:
        attributes.update(geo.attributes)
    return attributes


def _dimension_names(image: Image, suffix: str) -> tuple[str, ...]:
    y, x = f"y{suffix}", f"x{suffix}"
    if image.samples == 1:
        return (y, x)
    return (f"band{suffix}", y, x) if image.planar == 2 else (y, x, f"sample{suffix}")


class _Layout:
    """Places the IFDs of a file into groups, following pages, overviews and SubIFDs."""

    def __init__(self, url: str, byteorder: str) -> None:
        self.url, self.byteorder = url, byteorder
        self.nodes: list[_Node] = []
        self._pages: dict[int, _Node] = {}  # the last page, by its mask bit
        self._levels: dict[str, int] = {}

    def add(self, ifd: IFD) -> None:
        image = image_of(ifd, self.byteorder, self.url)
        parent = self._pages.get(image.subfile_type & 4)
        if image.is_reduced and parent is not None:
            level = self._levels[parent.name] = self._levels[parent.name] + 1
            self._reduced(image, parent, f"overviews/{level}")
        else:
            geo = geo_info(ifd)
            name = str(len(self._pages_seen()))
            node = _Node("", name, image, geo.transform if geo else None, _attributes(image, geo))
            self.nodes.append(node)
            self._pages[image.subfile_type & 4] = node
            self._levels[name] = 0
            parent = node
        for number, sub in enumerate(ifd.subifds, start=1):
            if sub.get(256) is None and sub.get(257) is None:
                continue  # no image: an EXIF-style JPEG thumbnail (JPEGInterchangeFormat)
            self._reduced(image_of(sub, self.byteorder, self.url), parent, f"subifds/{number}")

    def _pages_seen(self) -> list[_Node]:
        return [n for n in self.nodes if n.group == ""]

    def _reduced(self, image: Image, parent: _Node, group: str) -> None:
        geo = geo_info(image.ifd)
        transform = geo.transform if geo else None
        attributes = _attributes(image, geo)
        if transform is None and parent.transform is not None:
            transform = scaled(
                parent.transform,
                parent.image.width / image.width,
                parent.image.height / image.height,
            )
            attributes.update(
                {k: v for k, v in parent.attributes.items() if k == "crs" or "GeoKey" in k}
            )
            attributes["transform"] = list(transform)
        self.nodes.append(_Node(group, parent.name, image, transform, attributes))


def _build_group(
    nodes: list[_Node], url: str, size: int, with_coordinates: bool
) -> dict[str, dict[str, AnyArray]]:
    """The arrays of each group path; each group's first (y, x) size takes the plain names."""
    groups: dict[str, dict[str, AnyArray]] = {}
    for group in dict.fromkeys(n.group for n in nodes):
        members = [n for n in nodes if n.group == group]
        first = members[0].image
        arrays: dict[str, AnyArray] = {}
        coordinates_from: _Node | None = None
        # A subgroup's dimensions are not its parent's: DataTree aligns shared names.
        group_suffix = "_" + group.replace("overviews/", "level").replace("subifds/", "subifd")
        for node in members:
            image = node.image
            plain = (image.height, image.width) == (first.height, first.width)
            suffix = ("" if not group else group_suffix) if plain else f"_page{node.name}"
            nodata = gdal_nodata(image.ifd)
            arrays[node.name] = virtual_array(
                image,
                url,
                file_size=size,
                fill_value=_fill_value(nodata, image.dtype),
                dimension_names=_dimension_names(image, suffix),
                attributes=node.attributes,
            )
            if plain and coordinates_from is None and node.transform is not None:
                coordinates_from = node
        if with_coordinates and coordinates_from is not None:
            arrays.update(_coordinates(coordinates_from, "" if not group else group_suffix))
        groups[group] = arrays
    return groups


def _coordinates(node: _Node, suffix: str) -> dict[str, AnyArray]:
    assert node.transform is not None
    # Loaded values: a corrupt file's huge width must not allocate them.
    check_limit(
        "max_inline_bytes",
        8 * (node.image.height + node.image.width),
        node.image.where,
        "the bytes of the x and y coordinates",
    )
    centres = pixel_centres(node.transform, node.image.height, node.image.width)
    if centres is None:
        return {}
    y, x = centres
    return {
        f"y{suffix}": LoadedArray.from_numpy(y, dimension_names=(f"y{suffix}",)),
        f"x{suffix}": LoadedArray.from_numpy(x, dimension_names=(f"x{suffix}",)),
    }


def _nest(groups: Mapping[str, dict[str, AnyArray]], sources: dict[str, Any]) -> VirtualGroup:
    """The root group with its subgroups ``overviews/<level>`` and ``subifds/<n>``."""
    children: dict[str, dict[str, VirtualGroup]] = {}
    for path, arrays in groups.items():
        if path:
            parent, _, level = path.partition("/")
            children.setdefault(parent, {})[level] = VirtualGroup(arrays=arrays)
    subgroups = {name: VirtualGroup(groups=levels) for name, levels in children.items()}
    return VirtualGroup(arrays=groups.get("", {}), groups=subgroups, sources=sources)


def _stacked(arrays: dict[str, AnyArray], url: str) -> dict[str, AnyArray]:
    """The pages stacked along a new leading axis ``page``, as one array ``pages``."""
    pages = [a for a in arrays.values() if isinstance(a, VirtualArray)]
    loaded = {k: a for k, a in arrays.items() if isinstance(a, LoadedArray)}
    if len(pages) < 2:
        return arrays
    try:
        result = stack(pages, axis=0)
    except VirtualizationError as err:
        raise TIFFFormatError(f"{url}: the pages cannot be stacked: {err}") from err
    names = result.metadata.dimension_names or ()
    metadata = result.metadata.evolve(dimension_names=("page", *names[1:]))
    return {"pages": attrs.evolve(result, metadata=metadata), **loaded}


@attrs.frozen(kw_only=True)
class TIFFParser:
    """Parser for TIFF, BigTIFF, GeoTIFF and COG files, read through a registry.

    Attributes
    ----------
    stack_pages
        Stack the pages of a multipage file along a new leading axis ``page`` into
        one array ``pages`` (their shapes, chunks, dtypes and codecs must agree).
    coordinates
        Give a GeoTIFF loaded ``x`` and ``y`` coordinates (pixel centres).

    Examples
    --------
    >>> TIFFParser.can_open(Probe.from_bytes(b"II*\\x00" + bytes(12)))
    True
    """

    stack_pages: bool = False
    coordinates: bool = True

    priority = -35

    @classmethod
    def can_open(cls, probe: Probe) -> bool:
        """The magic of classic TIFF (``II*\\0``, ``MM\\0*``) or BigTIFF (``II+\\0``, ``MM\\0+``)."""
        head = probe.head
        return head is not None and head[:4] in _MAGIC

    def __call__(self, url: str, registry: ObjectStoreRegistry) -> VirtualGroup:
        """Build the virtual group of one TIFF file.

        Parameters
        ----------
        url
            The file's URL; it must lie under one of ``registry``'s prefixes.
        registry
            Where the file is read from (ranged reads of the header and IFDs only;
            a COG needs one).

        Returns
        -------
        VirtualGroup
            One array per page, overviews and SubIFDs in subgroups, loaded ``x``/``y``
            for a GeoTIFF, and the file's fingerprint.

        Raises
        ------
        TIFFFormatError
            If the file is not a TIFF, is corrupt, or uses a compression or layout vz
            cannot express (old-style JPEG, CCITT, ...); the message names the file and
            the IFD.
        UnregisteredURLError
            If ``url`` lies under no registered prefix.
        """
        file = source(registry, url)
        try:
            return self._parse(file)
        except (SourceReadError, TIFFFormatError, LimitExceededError):
            raise  # they name the file already
        except VirtualizationError as err:
            raise TIFFFormatError(f"{file.url}: {err}") from err

    def _parse(self, file: Source) -> VirtualGroup:
        url = file.url
        seen = file.fingerprint()
        size = seen.size if seen.size is not None else file.size()
        head = file.head(FIRST_READ) or b""

        def fetch(starts: Any, ends: Any) -> list[memoryview]:
            return file.read_ranges(starts, ends)

        try:
            header, ifds = read_ifds(head, fetch, size)
        except TIFFFormatError as err:
            raise TIFFFormatError(f"{url}: {err}") from err
        layout = _Layout(url, header.byteorder)
        for ifd in ifds:
            layout.add(ifd)
        groups = _build_group(layout.nodes, url, size, self.coordinates)
        if self.stack_pages:
            groups[""] = _stacked(groups[""], url)
        return _nest(groups, {url: seen})
