"""`open_virtual_dataset` and `open_virtual_datatree`: a parser's group, as xarray objects."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
import xarray as xr

import vzcore as vc
from vzcore.byteranges import shared_reads
from vzcore.parsers import Parser, detect_parser
from vzxarray.dataset import dataset_from_group

__all__ = ["open_virtual_dataset", "open_virtual_datatree"]


def _subgroup(root: vc.VirtualGroup, group: str | None, url: str) -> vc.VirtualGroup:
    if not group or group.strip("/") == "":
        return root
    try:
        node = root[group]
    except KeyError:
        node = None
    if not isinstance(node, vc.VirtualGroup):
        raise vc.VirtualizationError(f"{url}: no group {group!r}")
    return node


def _told(
    parser: Parser, loadable_variables: Iterable[str] | None, drop_variables: Iterable[str] | None
) -> tuple[Parser, list[str] | None]:
    """The parser told which variables the caller loads and drops, when it takes both options.

    Such a parser (`HDFParser`) refuses some types unless they are loaded, so it must
    know before it parses; the drops it already made are not dropped again.
    """
    drop = None if drop_variables is None else list(drop_variables)
    kind: Any = type(parser)
    fields = attrs.fields_dict(kind) if attrs.has(kind) else {}
    if not {"loadable_variables", "drop_variables"} <= set(fields):
        return parser, drop
    own_loadable = getattr(parser, "loadable_variables", None)
    if loadable_variables is not None:
        own_loadable = (*(own_loadable or ()), *loadable_variables)
    changes: dict[str, Any] = {
        "loadable_variables": own_loadable,
        "drop_variables": (*getattr(parser, "drop_variables", ()), *(drop or ())),
    }
    if "load_dimension_coordinates" in fields and loadable_variables is None:
        # The coordinates this call loads, read while the parser has the file open.
        changes["load_dimension_coordinates"] = True
    told: Parser = attrs.evolve(parser, **changes)  # type: ignore[misc]
    return told, None


def open_virtual_dataset(
    url: str,
    *,
    registry: vc.ObjectStoreRegistry,
    parser: Parser | None = None,
    group: str | None = None,
    loadable_variables: Iterable[str] | None = None,
    drop_variables: Iterable[str] | None = None,
    decode_times: bool | None = None,
) -> xr.Dataset:
    """Open one file as a virtual dataset.

    Parameters
    ----------
    url
        The file's URL (or local path), read through ``registry``.
    registry
        URL prefix -> store; the only places vz reads from.
    parser
        A callable ``parser(url, registry) -> VirtualGroup`` for the file's format;
        by default `vzcore.parsers.detect_parser` picks one.
    group
        A subgroup to open (``"/a/b"``); the root by default.
    loadable_variables
        Variables read into memory (by default the dimension coordinates); the
        others stay virtual.
    drop_variables
        Variables left out.
    decode_times
        As in `xarray.open_dataset`, for the loaded variables.
    """
    with shared_reads():  # detection, parsing, loaded coordinates: one file cache
        loadable = None if loadable_variables is None else list(loadable_variables)
        parser, drop_variables = _told(
            parser or detect_parser(url, registry), loadable, drop_variables
        )
        root = parser(url, registry)
        node = _subgroup(root, group, url)
        return dataset_from_group(
            node,
            registry=registry,
            loadable_variables=_loadable_in(node, loadable, group, url),
            drop_variables=drop_variables,
            decode_times=decode_times,
        )


def _loadable_in(
    node: vc.VirtualGroup, loadable: list[str] | None, group: str | None, url: str
) -> list[str] | None:
    """The names of ``loadable`` that are variables of ``node``.

    A parser may load a name as a whole group (a FITS table: one array per column).
    Such a name is the group it opens (``group=``), whose arrays are already in
    memory; naming it while opening another group is refused with the way to open it.
    """
    if loadable is None:
        return None
    opened = (group or "").strip("/").rsplit("/", 1)[-1]
    groups = [name for name in loadable if name in node.groups and name not in node.arrays]
    if groups:
        raise vc.VirtualizationError(
            f"{url}: loadable_variables names {groups}, which the parser loaded as groups "
            f"(one array per column); open them with open_virtual_datatree, or with "
            f"open_virtual_dataset(..., group={groups[0]!r})"
        )
    return [name for name in loadable if not (name == opened and name not in node.arrays)]


def open_virtual_datatree(
    url: str,
    *,
    registry: vc.ObjectStoreRegistry,
    parser: Parser | None = None,
    group: str | None = None,
    loadable_variables: Iterable[str] | None = None,
    drop_variables: Iterable[str] | None = None,
    decode_times: bool | None = None,
) -> xr.DataTree:
    """Open every group of one file as a tree of virtual datasets (parser as in `open_virtual_dataset`).

    ``loadable_variables`` and ``drop_variables`` apply in each group to the names
    that group has.
    """
    with shared_reads():  # detection, parsing, loaded coordinates: one file cache
        loadable_variables = None if loadable_variables is None else list(loadable_variables)
        parser, drop_variables = _told(
            parser or detect_parser(url, registry), loadable_variables, drop_variables
        )
        root = _subgroup(parser(url, registry), group, url)
        datasets: dict[str, xr.Dataset] = {}
        for path, node in root.walk_groups():
            names = set(node.arrays)
            loadable = (
                None
                if loadable_variables is None
                else [n for n in loadable_variables if n in names]
            )
            dropped = None if drop_variables is None else [n for n in drop_variables if n in names]
            datasets["/" + path] = dataset_from_group(
                node,
                registry=registry,
                loadable_variables=loadable,
                drop_variables=dropped,
                decode_times=decode_times,
            )
    return xr.DataTree.from_dict(datasets)
