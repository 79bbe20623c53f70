"""The ``.vz`` accessor on `xarray.Dataset` and `xarray.DataTree`: each method a line or two."""

from __future__ import annotations

import abc
import datetime
import os
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import xarray as xr

import vzcore as vc
from vzcore.algebra import PathMap, PathRenamer, referenced_paths, single_path_renamer
from vzcore.plot import Axis
from vzcore.writers import (
    kerchunk_refs,
    write_icechunk,
    write_kerchunk_json,
    write_kerchunk_parquet,
)
from vzcore.writers.icechunk import IcechunkMode
from vzxarray.dataset import Chunks, group_from_dataset, lazy_dataset_from_group
from vzxarray.manifest_array import ManifestArray

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["VirtualDataArrayAccessor", "VirtualDataTreeAccessor", "VirtualDatasetAccessor"]


def _virtual_paths(datasets: Iterable[xr.Dataset]) -> list[str]:
    """Every file path the virtual variables of ``datasets`` reference."""
    paths: list[str] = []
    for dataset in datasets:
        for variable in dataset.variables.values():
            data = variable._data
            if isinstance(data, ManifestArray):
                paths += referenced_paths(data.virtual)
    return paths


def _rename_variables(dataset: xr.Dataset, new: PathMap) -> xr.Dataset:
    def rename(name: Hashable, variable: xr.Variable, data: ManifestArray) -> ManifestArray:
        # The fingerprints follow their files to the new names (the core's rule).
        sources = vc.rename_paths(vc.VirtualGroup(sources=data.sources), new).sources
        return ManifestArray(vc.rename_paths(data.virtual, new), name=data.name, sources=sources)

    return _map_virtual_variables(dataset, rename)


def _subchunk_variables(dataset: xr.Dataset, lengths: Mapping[Hashable, int]) -> xr.Dataset:
    """Every virtual variable having a dimension of ``lengths`` split along it (`vc.subchunk`)."""
    unknown = [dim for dim in lengths if dim not in dataset.dims]
    if unknown:
        raise vc.SubchunkError(
            f"cannot subchunk along {unknown}: not dimensions of the dataset "
            f"(it has {list(dataset.dims)})"
        )

    def split(name: Hashable, variable: xr.Variable, data: ManifestArray) -> ManifestArray:
        axes = {variable.get_axis_num(d): n for d, n in lengths.items() if d in variable.dims}
        if not axes:
            return data
        try:
            return data.with_virtual(vc.subchunk(data.virtual, axes))
        except vc.SubchunkError as err:
            problems = [f"variable {name!r}: {p}" for p in err.problems]
            raise vc.SubchunkError(f"variable {name!r}: {err}", problems=problems) from err

    return _map_virtual_variables(dataset, split)


VariableMap = Callable[[Hashable, xr.Variable, ManifestArray], ManifestArray]


def _map_virtual_variables(dataset: xr.Dataset, new_data: VariableMap) -> xr.Dataset:
    """``dataset`` with the data of each virtual variable replaced by ``new_data(...)``."""
    replaced: dict[Hashable, xr.Variable] = {}
    for name, variable in dataset.variables.items():
        data = variable._data
        if isinstance(data, ManifestArray):
            result = new_data(name, variable, data)
            if result is not data:
                replaced[name] = variable.copy(data=result)
    coords = {name: v for name, v in replaced.items() if name in dataset.coords}
    data_vars = {name: v for name, v in replaced.items() if name not in coords}
    # A virtual coordinate has no index (an index needs values): it is replaced as a
    # coordinate without one, where `assign` would build an index for a dimension name.
    if coords:
        dataset = dataset.assign_coords(xr.Coordinates(coords, indexes={}))
    return dataset.assign(data_vars) if data_vars else dataset


def _either(
    lengths: Mapping[Hashable, int] | None, keywords: Mapping[str, int]
) -> Mapping[Hashable, int]:
    if lengths is not None and keywords:
        raise vc.SubchunkError("subchunk takes a mapping or keyword arguments, not both")
    if lengths is not None:
        return lengths
    by_name: dict[Hashable, int] = {}
    by_name.update(keywords)
    return by_name


class _SavingMixin(abc.ABC):
    """The writers, shared by both accessors: each saves `to_virtual_group()`."""

    @abc.abstractmethod
    def to_virtual_group(self) -> vc.VirtualGroup:
        """The accessor's object as a core `VirtualGroup`."""

    @property
    def nbytes(self) -> int:
        """Referenced bytes of the virtual variables plus bytes of the loaded ones."""
        return self.to_virtual_group().nbytes

    def to_manifest_parquet(self, path: str | os.PathLike[str]) -> Path:
        """Save in vz's native manifest parquet layout (a directory)."""
        return vc.write_manifest_parquet(self.to_virtual_group(), path)

    def to_icechunk(
        self,
        store: Any,
        *,
        group: str | None = None,
        append_dim: str | None = None,
        mode: IcechunkMode | None = None,
        last_updated_at: datetime.datetime | None = None,
        validate_containers: bool = True,
    ) -> None:
        """Write into an Icechunk session's store (``session.store``); the caller commits.

        See `vzcore.writers.write_icechunk` for ``append_dim``, ``mode``,
        ``last_updated_at`` and ``validate_containers``.
        """
        write_icechunk(
            self.to_virtual_group(),
            store,
            group_path=group,
            append_dim=append_dim,
            mode=mode,
            last_updated_at=last_updated_at,
            validate_containers=validate_containers,
        )

    def to_kerchunk(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        format: KerchunkFormat = "dict",
        record_size: int = 100_000,
        inline_threshold: int = 0,
        registry: vc.ObjectStoreRegistry | None = None,
    ) -> dict[str, Any] | Path | str:
        """Kerchunk references: a dict (``format="dict"`` or no path), JSON or parquet."""
        return to_kerchunk(
            self.to_virtual_group(),
            path,
            format=format,
            record_size=record_size,
            inline_threshold=inline_threshold,
            registry=registry,
        )


@xr.register_dataset_accessor("vz")  # type: ignore[no-untyped-call]
class VirtualDatasetAccessor(_SavingMixin):
    """``ds.vz``: virtual-dataset operations."""

    def __init__(self, dataset: xr.Dataset) -> None:
        self._ds = dataset

    def to_virtual_group(self) -> vc.VirtualGroup:
        """The dataset as a core `VirtualGroup` (virtual and loaded variables)."""
        return group_from_dataset(self._ds)

    def to_dataset(
        self,
        *,
        registry: vc.ObjectStoreRegistry | None = None,
        chunks: Chunks = None,
        decode_times: bool | None = None,
        **open_options: Any,
    ) -> xr.Dataset:
        """An ordinary lazy Dataset (dask arrays) reading this virtual dataset's chunks.

        Nothing is written: xarray opens a `ManifestStore` of `to_virtual_group()`,
        so values are decoded as `xr.open_dataset` decodes the files. This, not
        ``ds.chunk()``, is how to compute on a virtual dataset. ``registry`` says
        where the files are read (by default built for the referenced URLs);
        ``chunks`` are dask chunks (by default the source chunks); see
        `vzxarray.lazy_dataset_from_group`.
        """
        return lazy_dataset_from_group(
            self.to_virtual_group(),
            registry=registry,
            chunks=chunks,
            decode_times=decode_times,
            **open_options,
        )

    def subchunk(
        self, lengths: Mapping[Hashable, int] | None = None, **lengths_kwargs: int
    ) -> xr.Dataset:
        """A new dataset whose virtual variables have their raw chunks split (`vzcore.subchunk`).

        ``ds.vz.subchunk(time=1)`` splits every virtual variable having a ``time``
        dimension into pieces one step long; loaded variables are untouched. This,
        not ``ds.chunk()``, makes a virtual dataset's chunks smaller.

        Raises
        ------
        vzcore.SubchunkError
            If a dimension is not the dataset's, or a variable's chunks cannot be split
            (encoded, or the pieces would not be contiguous); the variable is named.
        """
        return _subchunk_variables(self._ds, _either(lengths, lengths_kwargs))

    def plot_chunks(
        self,
        variable: Hashable,
        *,
        axes: Sequence[Axis] | None = None,
        at: Mapping[Axis, int] | None = None,
        ax: Axes | None = None,
        max_legend: int = 12,
    ) -> Figure:
        """Draw ``variable``'s chunk map, each chunk coloured by its file (`vzcore.plot_chunks`).

        A 2-D slice of an N-d variable: ``axes`` (dimension names or numbers) chooses
        which, ``at`` the chunk index of the other dimensions (default 0); missing
        chunks are hatched. Returns the matplotlib Figure (``fig.savefig(...)``).

        Raises
        ------
        vzcore.MissingDependencyError
            Without matplotlib (``pip install 'vz[plot]'``).
        vzcore.VirtualizationError
            If the variable is not in the dataset or not virtual (loaded in memory).
        """
        if variable not in self._ds.variables:
            raise vc.VirtualizationError(
                f"no variable {variable!r} in the dataset (it has {list(self._ds.variables)})"
            )
        data = self._ds.variables[variable]._data
        if not isinstance(data, ManifestArray):
            raise vc.VirtualizationError(
                f"variable {variable!r} is loaded in memory, not virtual: it has no chunk "
                "references to draw"
            )
        return vc.plot_chunks(
            data.virtual, name=str(variable), axes=axes, at=at, ax=ax, max_legend=max_legend
        )

    def rename_paths(self, new: PathRenamer) -> xr.Dataset:
        """A new dataset whose chunk references point at renamed files.

        ``new`` is a callable ``old_path -> new_path``, a mapping, or one path for
        a dataset whose references all point to a single file (see
        `vzcore.rename_paths`; `AmbiguousRenameError` names the files otherwise).
        """
        if isinstance(new, str):
            new = single_path_renamer(_virtual_paths([self._ds]), new)
        return _rename_variables(self._ds, new)


@xr.register_dataarray_accessor("vz")  # type: ignore[no-untyped-call]
class VirtualDataArrayAccessor:
    """``da.vz``: virtual-variable operations on a DataArray."""

    def __init__(self, array: xr.DataArray) -> None:
        self._da = array

    def subchunk(
        self, lengths: Mapping[Hashable, int] | None = None, **lengths_kwargs: int
    ) -> xr.DataArray:
        """The array (and its virtual coordinates) with raw chunks split; see the dataset's."""
        dataset = self._da._to_temp_dataset()
        split = _subchunk_variables(dataset, _either(lengths, lengths_kwargs))
        return self._da._from_temp_dataset(split)


@xr.register_datatree_accessor("vz")  # type: ignore[no-untyped-call]
class VirtualDataTreeAccessor(_SavingMixin):
    """``dt.vz``: virtual-datatree operations (groups nest in every writer)."""

    def __init__(self, tree: xr.DataTree) -> None:
        self._tree = tree

    def to_virtual_group(self) -> vc.VirtualGroup:
        """The whole tree as nested `VirtualGroup` values."""
        return _group_of_node(self._tree)

    def rename_paths(self, new: PathRenamer) -> xr.DataTree:
        """A new tree whose chunk references point at renamed files (one path: see the
        dataset accessor; the single file is counted over the whole tree)."""
        if isinstance(new, str):
            datasets = [node.to_dataset(inherit=False) for node in self._tree.subtree]
            new = single_path_renamer(_virtual_paths(datasets), new)
        renamer = new
        return self._tree.map_over_datasets(lambda ds: _rename_variables(ds, renamer))


KerchunkFormat = Literal["dict", "json", "parquet"]


def to_kerchunk(
    group: vc.VirtualGroup,
    path: str | os.PathLike[str] | None,
    *,
    format: KerchunkFormat,
    record_size: int,
    inline_threshold: int,
    registry: vc.ObjectStoreRegistry | None,
) -> dict[str, Any] | Path | str:
    """Dispatch to the Kerchunk writer of ``format``."""
    if format == "dict" or path is None:
        if format != "dict":
            raise vc.VirtualizationError(f"format={format!r} needs a path to write to")
        return kerchunk_refs(group, inline_threshold=inline_threshold, registry=registry)
    if format == "json":
        return write_kerchunk_json(
            group, path, inline_threshold=inline_threshold, registry=registry
        )
    if format == "parquet":
        return write_kerchunk_parquet(
            group,
            path,
            record_size=record_size,
            inline_threshold=inline_threshold,
            registry=registry,
        )
    raise vc.VirtualizationError(f"unknown Kerchunk format {format!r}: use dict, json or parquet")


def _group_of_node(node: xr.DataTree) -> vc.VirtualGroup:
    local = group_from_dataset(node.to_dataset(inherit=False))
    return local.evolve(
        groups={name: _group_of_node(child) for name, child in node.children.items()}
    )
