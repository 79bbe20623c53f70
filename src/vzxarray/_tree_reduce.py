"""Tree-reduce combine on dask.distributed: per-file datasets stay on the workers.

Workers open the files; partial combines of up to `FAN_IN` neighbours run on the
workers, level by level, and the client receives one dataset. The result equals
xarray's serial ``combine_nested`` / ``combine_by_coords`` of the same datasets:

- every partial combine is xarray's own ``combine_nested`` along one dimension,
  which is associative (a concat or a merge of neighbours, in order);
- for ``combine_by_coords`` the client decides the order first, from a few facts
  per file (each dimension coordinate's first value, direction, size and whether
  it equals the group's first file's), with the rules of xarray's
  ``_infer_concat_order_from_coords``; then the hypercube is combined one
  dimension at a time as xarray's ``_combine_nd`` does, and each group of files
  with the same data variables is merged at the end as ``combine_by_coords`` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import pandas as pd  # type: ignore[import-untyped]
import xarray as xr

import vzcore as vc

if TYPE_CHECKING:
    from distributed import Client, Future

__all__ = ["FAN_IN", "TreeResult", "tree_combine"]

FAN_IN = 8
"""How many neighbouring partial results one combine task joins."""

TileId = tuple[int, ...]


@attrs.frozen
class TreeResult:
    """The combined dataset (None when failures stopped the combine) and the failures."""

    combined: xr.Dataset | None
    failures: tuple[Any, ...]


@attrs.frozen
class _DimFacts:
    """What ordering by coordinates needs of one file's dimension coordinate."""

    dim: str
    has_index: bool
    equals_first: bool = False
    increasing: bool = False
    decreasing: bool = False
    size: int = 0
    first_item: Any = None


def tree_combine(
    client: Client,
    task: Any,
    urls: Sequence[str],
    *,
    combine: str,
    concat_dim: str | Sequence[str | None] | None,
    options: Mapping[str, Any],
    stop_on_failure: bool,
) -> TreeResult:
    """Open ``urls`` with ``task`` on the workers and combine them there in a tree.

    ``task(url)`` returns a Dataset or a failure value (anything else); failures
    come back to the client, and when ``stop_on_failure`` (or nothing opened)
    nothing is combined.

    Raises
    ------
    VirtualizationError
        If the files cannot be ordered by their coordinates (the reasons
        ``xr.combine_by_coords`` gives), or ``concat_dim`` is not one dimension.
    """
    opened = client.map(task, list(urls), pure=False)
    var_keys: list[tuple[str, ...] | None] = _gather(
        client, client.map(_data_var_names, opened, pure=False)
    )
    failed = [f for f, key in zip(opened, var_keys, strict=True) if key is None]
    failures = tuple(_gather(client, failed)) if failed else ()
    kept = [
        (url, future, key)
        for url, future, key in zip(urls, opened, var_keys, strict=True)
        if key is not None
    ]
    if not kept or (failures and stop_on_failure):
        return TreeResult(None, failures)
    if combine == "nested":
        dim = _one_concat_dim(concat_dim)
        result = _reduce_line(client, [f for _, f, _ in kept], dim, options)
    else:
        groups: dict[tuple[str, ...], list[tuple[str, Future[Any]]]] = {}
        for url, future, key in kept:
            groups.setdefault(key, []).append((url, future))
        combined = [_combine_by_coords(client, group, options) for group in groups.values()]
        merge_options = {k: options[k] for k in ("compat", "join", "combine_attrs")}
        result = client.submit(_merge, combined, merge_options, pure=False)
    dataset: xr.Dataset = result.result()
    return TreeResult(dataset, failures)


def _gather(client: Client, futures: list[Future[Any]]) -> list[Any]:
    """The futures' results, fetched together (distributed's ``gather`` is untyped)."""
    results: list[Any] = client.gather(futures)  # type: ignore[no-untyped-call]
    return results


def _one_concat_dim(concat_dim: str | Sequence[str | None] | None) -> str | None:
    if concat_dim is None or isinstance(concat_dim, str):
        return concat_dim
    dims = list(concat_dim)
    if len(dims) != 1:
        raise vc.VirtualizationError(
            f"concat_dim={dims!r}: a list of files combines along one dimension "
            '(combine="nested" with reduce="tree")'
        )
    return dims[0]


def _combine_by_coords(
    client: Client, group: list[tuple[str, Future[Any]]], options: Mapping[str, Any]
) -> Future[Any]:
    """One group of files with the same data variables, combined along its hypercube."""
    futures = [f for _, f in group]
    facts: list[list[_DimFacts]] = _gather(
        client, client.map(_dim_facts, futures, first=futures[0], pure=False)
    )
    tile_ids, concat_dims = _concat_order(facts, [url for url, _ in group])
    # As xarray: files starting at the same coordinates take one place (the last wins).
    tiles: dict[TileId, Future[Any]] = dict(zip(tile_ids, futures, strict=True))
    for dim in concat_dims:
        lines: dict[TileId, list[tuple[TileId, Future[Any]]]] = {}
        for tile_id, future in tiles.items():
            lines.setdefault(tile_id[1:], []).append((tile_id, future))
        tiles = {
            rest: _reduce_line(client, [f for _, f in sorted(line, key=_tile_of)], dim, options)
            for rest, line in lines.items()
        }
    (combined,) = tiles.values()
    if not concat_dims:
        return combined
    checked: Future[Any] = client.submit(_check_monotonic, combined, concat_dims, pure=False)
    return checked


def _tile_of(item: tuple[TileId, Future[Any]]) -> TileId:
    return item[0]


def _reduce_line(
    client: Client, futures: list[Future[Any]], dim: str | None, options: Mapping[str, Any]
) -> Future[Any]:
    """Neighbours combined along ``dim`` `FAN_IN` at a time, level by level, to one.

    A line of one file is still combined once, as xarray combines it (a concat
    along a new dimension adds that dimension).
    """
    while True:
        futures = [
            client.submit(_combine_part, futures[i : i + FAN_IN], dim, options, pure=False)
            for i in range(0, len(futures), FAN_IN)
        ]
        if len(futures) == 1:
            return futures[0]


def _concat_order(
    facts: Sequence[Sequence[_DimFacts]], urls: Sequence[str]
) -> tuple[list[TileId], list[str]]:
    """Each file's place along each concatenated dimension (xarray's ordering rules)."""
    tile_ids: list[TileId] = [() for _ in facts]
    concat_dims: list[str] = []
    for position, first in enumerate(facts[0]):
        dim = first.dim
        column = [f[position] for f in facts]
        missing = [url for url, f in zip(urls, column, strict=True) if not f.has_index]
        if missing:
            raise vc.VirtualizationError(
                f"cannot order the files by their coordinates: dimension {dim!r} has no "
                f"1-d coordinate with an index in {_some(missing)}"
            )
        if all(f.equals_first for f in column[1:]):
            continue  # the same values everywhere: not a dimension to concatenate along
        concat_dims.append(dim)
        ascending = _direction(dim, column, urls)
        empty = [url for url, f in zip(urls, column, strict=True) if f.size == 0]
        if empty:
            raise vc.VirtualizationError(
                f"cannot order the files along {dim!r}: it has size 0 in {_some(empty)}"
            )
        series = pd.Index([f.first_item for f in column]).to_series()
        try:
            rank = series.rank(method="dense", ascending=ascending, numeric_only=False)
        except TypeError as err:
            raise vc.VirtualizationError(
                f"cannot order the files along {dim!r}: their first values do not compare ({err})"
            ) from err
        order = (rank.astype(int).to_numpy() - 1).tolist()
        tile_ids = [(*tile, place) for tile, place in zip(tile_ids, order, strict=True)]
    if len(facts) > 1 and not concat_dims:
        raise vc.VirtualizationError(
            "could not find any dimension coordinates to order the files by "
            f"(every file has the same ones): {_some(urls)}"
        )
    return tile_ids, concat_dims


def _direction(dim: str, column: Sequence[_DimFacts], urls: Sequence[str]) -> bool:
    if all(f.increasing for f in column):
        return True
    if all(f.decreasing for f in column):
        return False
    neither = [url for url, f in zip(urls, column, strict=True) if not f.increasing]
    raise vc.VirtualizationError(
        f"coordinate {dim!r} is neither monotonically increasing nor monotonically "
        f"decreasing in every file (not increasing in {_some(neither)})"
    )


def _some(urls: Sequence[str]) -> str:
    shown = ", ".join(repr(u) for u in urls[:3])
    return shown + (f" and {len(urls) - 3} more" if len(urls) > 3 else "")


# ---- the tasks the workers run --------------------------------------------------------------


def _data_var_names(result: Any) -> tuple[str, ...] | None:
    """xarray's grouping key (the sorted data variable names); None for a failure."""
    if not isinstance(result, xr.Dataset):
        return None
    return tuple(sorted(str(name) for name in result.data_vars))


def _dim_facts(dataset: xr.Dataset, first: xr.Dataset) -> list[_DimFacts]:
    facts = []
    for dim in first.dims:
        if dim not in first.variables:
            continue
        index = dataset.indexes.get(dim)
        if index is None:
            facts.append(_DimFacts(str(dim), has_index=False))
            continue
        facts.append(
            _DimFacts(
                str(dim),
                has_index=True,
                equals_first=bool(index.equals(first.indexes[dim])),
                increasing=bool(index.is_monotonic_increasing),
                decreasing=bool(index.is_monotonic_decreasing),
                size=int(index.size),
                first_item=index[0] if index.size else None,
            )
        )
    return facts


def _combine_part(
    datasets: list[xr.Dataset], dim: str | None, options: Mapping[str, Any]
) -> xr.Dataset:
    combined = xr.combine_nested(datasets, concat_dim=dim, **options)
    assert isinstance(combined, xr.Dataset)
    return combined


def _check_monotonic(dataset: xr.Dataset, concat_dims: Sequence[str]) -> xr.Dataset:
    for dim in concat_dims:
        index = dataset.indexes[dim]
        if not (index.is_monotonic_increasing or index.is_monotonic_decreasing):
            raise vc.VirtualizationError(
                f"the combined dataset's {dim!r} coordinate is not monotonic: the files' "
                f"{dim!r} ranges overlap"
            )
    return dataset


def _merge(datasets: list[xr.Dataset], options: Mapping[str, Any]) -> xr.Dataset:
    return xr.merge(datasets, **options)
