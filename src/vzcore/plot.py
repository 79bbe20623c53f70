"""A picture of a chunk map: where each chunk of a virtual array comes from.

`plot_chunks` draws the chunk grid of one variable, each chunk a rectangle with its
true edges (rectilinear grids included), coloured by the file it references.
Colours follow the files' **sorted path order** along a sequential colour map, so
monthly files named in date order make a smooth ramp along time, and files that a
combine put in the wrong order break it; each file's number in that order is also
written on its run of chunks (a strip) or on its chunks (a grid of at most 64).
Missing chunks (no reference: they read as the fill value) are hatched, inline
chunks grey; a legend names the files.

An N-d array is drawn as a 2-D slice: by default its first two axes with more than
one chunk (rows, then columns; a strip along the only such axis, or along axis 0),
every other axis at chunk 0; ``axes`` and ``at`` choose otherwise (the default axes
skip those ``at`` fixes). Needs matplotlib (the ``plot`` extra), imported
only here, on call; figures are plain `matplotlib.figure.Figure` objects (no pyplot
state), saved with the Agg renderer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from vzcore.array import VirtualArray
from vzcore.errors import MissingDependencyError, VirtualizationError
from vzcore.manifest import ChunkManifest

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["MISSING_HATCH", "ChunkMap", "chunk_map", "plot_chunks"]

MISSING_HATCH = "///"
"""The hatch pattern of missing chunks."""
_INLINE_COLOUR = (0.6, 0.6, 0.6, 1.0)
_MISSING_EDGE = (0.85, 0.28, 0.06, 1.0)
_MAX_EDGED = 150  # chunks per axis up to which each chunk gets a visible outline

type Axis = int | str


class ChunkMap:
    """The 2-D slice `plot_chunks` draws, as arrays (also what tests inspect).

    ``codes[i, j]`` is the chunk at row ``i`` (axis ``axes[0]``) and column ``j``
    (axis ``axes[1]``): its file's position in ``files`` (sorted paths), ``-1`` for a
    missing chunk, ``-2`` for an inline one. ``edges`` are the element boundaries of
    the rows and the columns; ``at`` gives the chunk index of every other axis.
    """

    def __init__(
        self,
        *,
        axes: tuple[int | None, int],
        at: dict[int, int],
        codes: npt.NDArray[np.int64],
        edges: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]],
        files: list[str],
        labels: tuple[str, str],
    ) -> None:
        self.axes = axes
        self.at = at
        self.codes = codes
        self.edges = edges
        self.files = files
        self.labels = labels

    @property
    def n_missing(self) -> int:
        """Missing chunks in the slice (hatched in the picture)."""
        return int(np.count_nonzero(self.codes == -1))


def _axis_number(axis: Axis, names: Sequence[str | None], ndim: int, where: str) -> int:
    if isinstance(axis, str):
        if axis not in names:
            raise VirtualizationError(f"{where}: no dimension {axis!r} (dimensions {list(names)})")
        return list(names).index(axis)
    if not -ndim <= axis < ndim:
        raise VirtualizationError(f"{where}: axis {axis} out of range for {ndim} dimensions")
    return axis % ndim


def _chosen_axes(
    grid: tuple[int, ...], axes: Sequence[int] | None, fixed: Mapping[int, int]
) -> list[int]:
    if axes is not None:
        return list(axes)
    free = [i for i in range(len(grid)) if i not in fixed]
    return [i for i in free if grid[i] > 1][:2] or free[:1]


def chunk_map(
    array: VirtualArray | ChunkManifest,
    *,
    axes: Sequence[Axis] | None = None,
    at: Mapping[Axis, int] | None = None,
    name: str | None = None,
) -> ChunkMap:
    """The slice of ``array``'s chunk grid that `plot_chunks` draws (no matplotlib needed).

    Vectorised: the slice's rows are gathered from the manifest's index column by
    strides, the files ranked once.
    """
    manifest = array.manifest if isinstance(array, VirtualArray) else array
    grid = manifest.grid
    ndim = len(grid)
    where = f"variable {name!r}" if name else "chunk map"
    names: list[str | None] = [None] * ndim
    if isinstance(array, VirtualArray) and array.metadata.dimension_names:
        names = list(array.metadata.dimension_names)
    numbers = None if axes is None else [_axis_number(a, names, ndim, where) for a in axes]
    if numbers is not None and (not 1 <= len(numbers) <= 2 or len(set(numbers)) != len(numbers)):
        raise VirtualizationError(f"{where}: axes must be one or two distinct axes, got {axes}")
    fixed = {_axis_number(a, names, ndim, where): int(i) for a, i in (at or {}).items()}
    chosen = _chosen_axes(grid, numbers, fixed) if ndim else []
    if ndim and not chosen:
        raise VirtualizationError(f"{where}: every axis is fixed by at={dict(at or {})}")
    for axis, index in fixed.items():
        if axis in chosen:
            raise VirtualizationError(f"{where}: axis {axis} is drawn, it cannot also be fixed")
        if not 0 <= index < grid[axis]:
            raise VirtualizationError(
                f"{where}: chunk index {index} out of range along axis {axis} ({grid[axis]} chunks)"
            )
    at_all = {axis: fixed.get(axis, 0) for axis in range(ndim) if axis not in chosen}
    if any(grid[axis] == 0 for axis in at_all) or manifest.n_chunks == 0:
        raise VirtualizationError(f"{where}: the chunk grid {grid} holds no chunk to draw")

    strides = [math.prod(grid[k + 1 :]) for k in range(ndim)]
    base = sum(index * strides[axis] for axis, index in at_all.items())
    row_axis: int | None = chosen[0] if len(chosen) == 2 else None
    col_axis = chosen[-1] if chosen else 0
    n_rows = grid[row_axis] if row_axis is not None else 1
    n_cols = grid[col_axis] if chosen else 1
    row_step = strides[row_axis] if row_axis is not None else 0
    col_step = strides[col_axis] if chosen else 0
    rows = (
        base
        + np.arange(n_rows, dtype=np.int64)[:, None] * row_step
        + np.arange(n_cols, dtype=np.int64)[None, :] * col_step
    )
    indices = manifest.to_numpy_columns()[0][rows]
    inline = manifest.inline_mask()[rows]

    dictionary = manifest.dictionary
    used = np.unique(indices[indices >= 0])
    files = pc.take(dictionary, pa.array(used, pa.int32())).to_pylist() if len(used) else []
    order = np.argsort(np.asarray(files, dtype=object), kind="stable") if files else used
    rank = np.full(len(dictionary) + 1, -1, dtype=np.int64)  # the last slot: index -1
    rank[used[order]] = np.arange(len(used))
    codes = rank[indices]
    codes[inline] = -2

    def edges(axis: int | None, count: int) -> npt.NDArray[np.int64]:
        if axis is None or not isinstance(array, VirtualArray):
            return np.arange(count + 1, dtype=np.int64)
        bounds: npt.NDArray[np.int64] = array.metadata.chunk_grid.chunk_boundaries(
            array.shape, axis
        )
        return np.asarray(bounds, dtype=np.int64)

    unit = "element" if isinstance(array, VirtualArray) else "chunk"

    def label(axis: int | None) -> str:
        if axis is None:
            return ""
        return f"{names[axis] or f'axis {axis}'} ({unit} index)"

    return ChunkMap(
        axes=(row_axis, col_axis),
        at=at_all,
        codes=codes,
        edges=(edges(row_axis, n_rows), edges(col_axis if chosen else None, n_cols)),
        files=[str(f) for f in (np.asarray(files, dtype=object)[order] if files else [])],
        labels=(label(row_axis), label(col_axis if chosen else None)),
    )


def _matplotlib() -> Any:
    try:
        import matplotlib
        import matplotlib.figure
        import matplotlib.patches
    except ImportError as err:
        raise MissingDependencyError(
            "drawing a chunk map needs matplotlib, which is not installed: pip install 'vz[plot]'"
        ) from err
    return matplotlib


def _short(path: str, width: int = 48) -> str:
    return path if len(path) <= width else "…" + path[-(width - 1) :]


def plot_chunks(
    array: VirtualArray | ChunkManifest,
    *,
    name: str | None = None,
    axes: Sequence[Axis] | None = None,
    at: Mapping[Axis, int] | None = None,
    ax: Axes | None = None,
    max_legend: int = 12,
) -> Figure:
    """Draw ``array``'s chunk grid coloured by source file; returns the Figure.

    ``axes`` (one or two axis numbers or dimension names) are drawn, rows then
    columns; every other axis is at the chunk index ``at`` gives (default 0). The
    legend lists at most ``max_legend`` files ("…and N more"). ``ax`` draws into
    existing matplotlib Axes. Save with ``fig.savefig("chunks.png")``.

    Raises
    ------
    MissingDependencyError
        Without matplotlib (``pip install 'vz[plot]'``).
    VirtualizationError
        For an axis or chunk index that is not the array's, or an empty grid.
    """
    mpl = _matplotlib()
    cmap = chunk_map(array, axes=axes, at=at, name=name)
    n_files = len(cmap.files)
    ramp = mpl.colormaps["viridis"]
    colours = ramp(np.linspace(0.0, 0.9, n_files)) if n_files > 1 else ramp([0.45] * n_files)
    palette = np.concatenate([colours.reshape(-1, 4), [_INLINE_COLOUR, (0, 0, 0, 0)]])
    # codes -2 (inline) and -1 (missing) pick the two last palette entries.
    rgba = palette[np.where(cmap.codes < 0, len(palette) + cmap.codes, cmap.codes)]

    n_rows, n_cols = cmap.codes.shape
    y_edges, x_edges = cmap.edges
    if ax is None:
        strip = cmap.axes[0] is None or n_rows == 1
        # The plot area (about 6 of the 9 inches) keeps the array's aspect, within bounds.
        aspect = float(y_edges[-1] - y_edges[0]) / max(float(x_edges[-1] - x_edges[0]), 1.0)
        height = 2.6 if strip else min(max(3.0, 6.0 * aspect + 1.0), 7.0)
        figure = mpl.figure.Figure(figsize=(9.0, height + 0.4), layout="constrained")
        ax = figure.add_subplot()
    else:
        figure = ax.figure
    edged = max(n_rows, n_cols) <= _MAX_EDGED
    ax.pcolormesh(
        x_edges,
        y_edges,
        rgba,
        edgecolors="white" if edged else "none",
        linewidth=0.4 if edged else 0.0,
    )
    missing = np.argwhere(cmap.codes == -1)
    if len(missing):
        from matplotlib.collections import PolyCollection

        i, j = missing[:, 0], missing[:, 1]
        x0, x1, y0, y1 = x_edges[j], x_edges[j + 1], y_edges[i], y_edges[i + 1]
        boxes = np.stack([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], axis=0).transpose(2, 0, 1)
        ax.add_collection(
            PolyCollection(
                list(boxes.astype(float)),
                facecolors="none",
                edgecolors=[_MISSING_EDGE],
                hatch=MISSING_HATCH,
                linewidths=0.8,
                label="missing",
            )
        )
    _number_runs(ax, cmap, palette)
    ax.set_xlim(float(x_edges[0]), float(x_edges[-1]))
    ax.set_ylim(float(y_edges[-1]), float(y_edges[0]))  # chunk row 0 at the top
    ax.set_xlabel(cmap.labels[1])
    if cmap.labels[0]:
        ax.set_ylabel(cmap.labels[0])
    else:
        ax.set_yticks([])
    ax.set_title(_title(array, name, cmap), fontsize=10, loc="left")

    prefix = _common_folder(cmap.files)
    handles = _legend_handles(mpl, cmap, colours, max_legend, prefix)
    if handles:
        ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=8,
            frameon=False,
            title=f"{n_files} file(s) in sorted order"
            + (f"\nin {_short(prefix)}" if prefix else ""),
            title_fontsize=8,
        )
    result: Figure = figure
    return result


def _runs(codes: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Starts and ends (exclusive) of the runs of equal codes along a 1-D array."""
    starts = np.flatnonzero(np.diff(codes, prepend=codes[0] - 1))
    return starts, np.append(starts[1:], len(codes))


def _number_runs(ax: Axes, cmap: ChunkMap, palette: npt.NDArray[np.float64]) -> None:
    """Write each file's legend number on its chunks: a strip's runs, or a small grid's chunks.

    The numbers show the order at a glance where neighbouring colours look alike.
    """
    y_edges, x_edges = cmap.edges
    n_rows, n_cols = cmap.codes.shape
    width = float(x_edges[-1] - x_edges[0]) or 1.0
    places: list[tuple[float, float, int]] = []
    if n_rows == 1:
        starts, ends = _runs(cmap.codes[0])
        if len(starts) <= 40:
            places = [
                (
                    (x_edges[s] + x_edges[e]) / 2,
                    (y_edges[0] + y_edges[1]) / 2,
                    int(cmap.codes[0, s]),
                )
                for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
                if (x_edges[e] - x_edges[s]) / width >= 0.02
            ]
    elif n_rows * n_cols <= 64:
        places = [
            ((x_edges[j] + x_edges[j + 1]) / 2, (y_edges[i] + y_edges[i + 1]) / 2, int(code))
            for (i, j), code in np.ndenumerate(cmap.codes)
        ]
    for x, y, code in places:
        if code < 0:
            continue
        r, g, b, _ = palette[code]
        dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
        ax.text(
            float(x),
            float(y),
            str(code + 1),
            ha="center",
            va="center",
            fontsize=8,
            color="white" if dark else "black",
        )


def _title(array: VirtualArray | ChunkManifest, name: str | None, cmap: ChunkMap) -> str:
    manifest = array.manifest if isinstance(array, VirtualArray) else array
    what = name or ("virtual array" if isinstance(array, VirtualArray) else "chunk manifest")
    text = (
        f"{what}: {cmap.codes.size} chunks shown of {manifest.n_chunks}, {cmap.n_missing} missing"
    )
    names: Sequence[str | None] = [None] * manifest.ndim
    if isinstance(array, VirtualArray) and array.metadata.dimension_names:
        names = array.metadata.dimension_names
    # Only the fixed axes that have several chunks make this a slice.
    sliced = [
        f"{names[a] or f'axis {a}'} at chunk {i} of {manifest.grid[a]}"
        for a, i in sorted(cmap.at.items())
        if manifest.grid[a] > 1
    ]
    if sliced:
        text += f"\n(slice: {', '.join(sliced)})"
    return text


def _common_folder(files: Sequence[str]) -> str:
    """The folder (ending in ``/``) that all of several files share, or ``""``."""
    if len(files) < 2:
        return ""
    folders = [f.split("/")[:-1] for f in files]
    shared = 0
    for parts in zip(*folders, strict=False):
        if any(p != parts[0] for p in parts):
            break
        shared += 1
    return "/".join(folders[0][:shared]) + "/" if shared else ""


def _legend_handles(
    mpl: Any, cmap: ChunkMap, colours: Any, max_legend: int, prefix: str
) -> list[Any]:
    patch = mpl.patches.Patch
    files = cmap.files
    shown = files if len(files) <= max_legend else files[: max(max_legend - 1, 0)]
    handles = [
        patch(
            facecolor=colours[k], edgecolor="none", label=f"{k + 1} {_short(path[len(prefix) :])}"
        )
        for k, path in enumerate(shown)
    ]
    if len(shown) < len(files):
        handles.append(
            patch(facecolor="none", edgecolor="none", label=f"…and {len(files) - len(shown)} more")
        )
    if cmap.n_missing:
        handles.append(
            patch(
                facecolor="none",
                edgecolor=_MISSING_EDGE,
                hatch=MISSING_HATCH,
                label="missing (fill value)",
            )
        )
    if np.any(cmap.codes == -2):
        handles.append(patch(facecolor=_INLINE_COLOUR, edgecolor="none", label="inline"))
    return handles
