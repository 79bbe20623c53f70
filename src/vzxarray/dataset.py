"""`VirtualGroup` <-> `xarray.Dataset`: virtual arrays become `ManifestArray` variables."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any, Literal, TypeAlias

import numpy as np
import xarray as xr
from xarray.backends.zarr import encode_zarr_variable

import vzcore as vc
from vzcore._frozen import thaw_json
from vzcore.algebra import referenced_paths
from vzcore.cf import is_encoding_key
from vzcore.read import read_arrays
from vzxarray.manifest_array import ManifestArray

__all__ = [
    "Chunks",
    "dataset_from_group",
    "default_loadable_variables",
    "group_from_dataset",
    "lazy_dataset_from_group",
]

Chunks: TypeAlias = int | Mapping[str, Any] | Literal["auto"] | None
"""Dask chunks as `xarray.open_zarr` takes them; None means the source chunks (``{}``)."""


def _dims(name: str, array: vc.AnyArray) -> tuple[str, ...]:
    names = array.metadata.dimension_names
    if names is None:
        return tuple(f"{name}_dim_{i}" for i in range(array.ndim))
    return tuple(n if n is not None else f"{name}_dim_{i}" for i, n in enumerate(names))


def default_loadable_variables(group: vc.VirtualGroup) -> list[str]:
    """Dimension coordinates (1-d arrays named like their dimension) and in-memory arrays."""
    return [
        name
        for name, array in group.arrays.items()
        if isinstance(array, vc.LoadedArray) or (array.ndim == 1 and _dims(name, array) == (name,))
    ]


def dataset_from_group(
    group: vc.VirtualGroup,
    *,
    registry: vc.ObjectStoreRegistry | None = None,
    loadable_variables: Iterable[str] | None = None,
    drop_variables: Iterable[str] | None = None,
    decode_times: bool | None = None,
) -> xr.Dataset:
    """An xarray Dataset of one group's arrays (subgroups are ignored).

    Loadable variables (by default the dimension coordinates) are read through a
    `ManifestStore` and decoded by xarray exactly as `xr.open_dataset` would
    (``decode_times`` included); the others stay virtual as `ManifestArray`.

    Raises
    ------
    VirtualizationError
        If a requested loadable or dropped variable does not exist.
    """
    dropped = set(drop_variables or ())
    _check_names(group, dropped, "drop_variables")
    arrays = {name: a for name, a in group.arrays.items() if name not in dropped}
    kept = group.evolve(arrays=arrays, groups={})
    if loadable_variables is None:
        loadable = default_loadable_variables(kept)
    else:
        loadable = list(loadable_variables)
        _check_names(kept, set(loadable), "loadable_variables")
        loadable += [
            n for n, a in arrays.items() if isinstance(a, vc.LoadedArray) and n not in loadable
        ]
    loaded, loaded_coords = _load(kept, loadable, registry, decode_times)
    variables: dict[Hashable, xr.Variable] = {}
    coord_names: set[Hashable] = set()
    for name, array in arrays.items():
        if name in loaded:
            variables[name] = loaded[name]
            coord_names.update(str(loaded[name].encoding.get("coordinates", "")).split())
            continue
        assert isinstance(array, vc.VirtualArray)
        attrs = thaw_json(array.metadata.attributes)
        # A copy for xarray users to read; the array's own encoding stays authoritative.
        encoding: dict[str, Any] = thaw_json(array.metadata.encoding)
        if "coordinates" in attrs:
            encoding["coordinates"] = attrs.pop("coordinates")
            coord_names.update(str(encoding["coordinates"]).split())
        data = ManifestArray(array, name=name, sources=group.sources)
        variables[name] = xr.Variable(_dims(name, array), data, attrs, encoding)
    attributes = thaw_json(group.attributes)
    coord_names.update(str(attributes.pop("coordinates", "")).split())  # CF global list
    coord_names |= {name for name, v in variables.items() if v.dims == (name,)}
    coord_names |= loaded_coords
    coord_names &= set(variables)
    # In file order, never the set's (which follows PYTHONHASHSEED). Loaded dimension
    # coordinates become indexes; a virtual one cannot (an index needs values), so it
    # stays a coordinate without an index.
    ordered = {n: v for n, v in variables.items() if n in coord_names}
    indexes = xr.Coordinates({n: v for n, v in ordered.items() if n in loaded}).xindexes
    coords = xr.Coordinates(ordered, indexes=dict(indexes))
    data_vars = {n: v for n, v in variables.items() if n not in coord_names}
    return xr.Dataset(data_vars, coords=coords, attrs=attributes)


def lazy_dataset_from_group(
    group: vc.VirtualGroup,
    *,
    registry: vc.ObjectStoreRegistry | None = None,
    chunks: Chunks = None,
    decode_times: bool | None = None,
    **open_options: Any,
) -> xr.Dataset:
    """An ordinary lazy Dataset of one group: dask arrays reading through a `ManifestStore`.

    xarray opens the store as it opens any zarr store (``xr.open_zarr``), so CF
    decoding (masks, packing, times) is xarray's own; in-memory arrays of the group
    (loaded coordinates) are read into numpy at once, as they cost no I/O.

    Parameters
    ----------
    group
        The group to open (its subgroups are ignored).
    registry
        Where the chunks are read; by default `ObjectStoreRegistry.for_urls` of the
        referenced files (local files, and cloud or HTTP URLs with default credentials).
    chunks
        Dask chunks; None (the default) gives the source chunks, as `xr.open_mfdataset` does.
    decode_times
        As in `xarray.open_zarr` (True when None).
    **open_options
        Passed to `xarray.open_zarr` (``mask_and_scale``, ``decode_timedelta``, ...).

    Raises
    ------
    UnregisteredURLError
        If a referenced file is under no prefix of ``registry`` (or, without one,
        no store can be built for it).
    """
    if registry is None:
        registry = _registry_for(group)
    store = vc.ManifestStore(group.evolve(groups={}), registry=registry)
    dataset: xr.Dataset = xr.open_zarr(
        store,
        consolidated=False,
        zarr_format=3,
        chunks={} if chunks is None else dict(chunks) if isinstance(chunks, Mapping) else chunks,
        decode_times=True if decode_times is None else decode_times,
        **open_options,
    )
    in_memory = [
        name
        for name, array in group.arrays.items()
        if isinstance(array, vc.LoadedArray) and name in dataset.variables
    ]
    for name in in_memory:
        dataset.variables[name].load()
    return dataset


def _registry_for(group: vc.VirtualGroup) -> vc.ObjectStoreRegistry:
    try:
        return vc.ObjectStoreRegistry.for_urls(referenced_paths(group))
    except vc.UnregisteredURLError as err:
        raise vc.UnregisteredURLError(f"{err}; pass registry= to say where to read") from err


def _check_names(group: vc.VirtualGroup, names: set[str], option: str) -> None:
    unknown = sorted(names - set(group.arrays))
    if unknown:
        raise vc.VirtualizationError(
            f"{option} names {unknown}, which the file does not have; it has {sorted(group.arrays)}"
        )


def _load(
    group: vc.VirtualGroup,
    names: list[str],
    registry: vc.ObjectStoreRegistry | None,
    decode_times: bool | None,
) -> tuple[dict[Hashable, xr.Variable], set[Hashable]]:
    """Read variables into memory and CF-decode them as `xr.open_dataset` would.

    Returns the decoded variables and the names CF marks as coordinates.
    """
    if not names:
        return {}, set()
    values = read_arrays({name: group.arrays[name] for name in names}, registry)
    raw = {
        name: xr.Variable(
            _dims(name, group.arrays[name]),
            values[name],
            group.arrays[name].metadata.stored_attributes,
        )
        for name in names
    }
    # xarray's own decoder, on the variables (building Datasets around them costs more).
    variables, _, coord_names = xr.conventions.decode_cf_variables(
        raw, {}, decode_times=True if decode_times is None else decode_times
    )
    return dict(variables), set(coord_names)


def group_from_dataset(dataset: xr.Dataset) -> vc.VirtualGroup:
    """A `VirtualGroup` of a dataset: `ManifestArray` variables by reference, others as values.

    In-memory variables are CF-encoded the way xarray writes them (times back to
    numbers with ``units`` and ``calendar``), so the group describes the stored form.
    """
    # CF: non-index coordinates are named in "coordinates" attributes (xarray's encoder).
    variables, attributes = xr.conventions.encode_dataset_coordinates(dataset)
    arrays = {
        str(name): _array_from_variable(str(name), variable) for name, variable in variables.items()
    }
    sources: dict[str, vc.SourceFingerprint] = {}
    for variable in variables.values():
        if isinstance(variable._data, ManifestArray):
            sources.update(variable._data.sources)
    return vc.VirtualGroup(arrays=arrays, attributes=_jsonable(attributes), sources=sources)


def _array_from_variable(name: str, variable: xr.Variable) -> vc.AnyArray:
    data = variable._data  # the duck array itself, never converted
    attrs = _jsonable(variable.attrs)
    if "coordinates" in variable.encoding:
        attrs["coordinates"] = variable.encoding["coordinates"]
    if isinstance(data, ManifestArray):
        # A 0-d array has no dimensions to name: keep "no names" as it was.
        names = variable.dims if variable.dims or data.metadata.dimension_names else None
        metadata = _with_user_encoding(name, data.metadata, variable.encoding)
        try:
            metadata = metadata.evolve(dimension_names=names, attributes=attrs)
        except vc.InvalidMetadataError as err:
            raise vc.InvalidMetadataError(f"variable {name!r}: {err}") from err
        return vc.VirtualArray(metadata, data.manifest)
    # xarray's own encoding for zarr: CF rules, then text as fixed-width UTF-8 bytes.
    encoded = encode_zarr_variable(variable.to_base_variable(), name=name)
    values = np.asarray(encoded.values)
    if values.dtype.kind == "O":
        raise vc.VirtualizationError(
            f"variable {name!r} holds Python objects (dtype object), which zarr cannot store; "
            "convert it to fixed-width strings or numbers first"
        )
    encoded_attrs = _jsonable(encoded.attrs)
    if "coordinates" in variable.encoding:
        encoded_attrs["coordinates"] = variable.encoding["coordinates"]
    fill_value = encoded.encoding.get("_FillValue", encoded_attrs.pop("_FillValue", None))
    native = values.astype(values.dtype.newbyteorder("="), copy=False)
    return vc.LoadedArray.from_numpy(
        native,
        dimension_names=tuple(str(d) for d in variable.dims),
        attributes=encoded_attrs,
        fill_value=None if fill_value is None or _is_nan_like(fill_value, native) else fill_value,
    )


def _with_user_encoding(
    name: str, metadata: vc.ArrayMetadata, encoding: Mapping[str, Any]
) -> vc.ArrayMetadata:
    """The array's CF encoding, with the CF keys a user set in ``.encoding`` taking precedence.

    A key set to None removes it from the encoding.
    """
    seen = {**metadata.encoding, **encoding}
    given = {k: v for k, v in encoding.items() if is_encoding_key(str(k), seen)}
    if not given:
        return metadata
    merged = {k: v for k, v in {**metadata.encoding, **given}.items() if v is not None}
    try:
        return metadata.evolve(encoding=_jsonable(merged))
    except vc.InvalidMetadataError as err:
        raise vc.InvalidMetadataError(f"variable {name!r}: encoding {given}: {err}") from err


def _is_nan_like(fill_value: Any, values: np.ndarray[Any, Any]) -> bool:
    return values.dtype.kind not in "fc" and isinstance(fill_value, float) and np.isnan(fill_value)


def _jsonable(attrs: Mapping[Any, Any]) -> dict[str, Any]:
    result: dict[str, Any] = thaw_json(
        vc.VirtualGroup(attributes={str(k): v for k, v in attrs.items()}).attributes
    )
    return result
