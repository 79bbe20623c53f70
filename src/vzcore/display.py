"""What a notebook shows of manifests, virtual arrays and groups: summaries and HTML.

Every number comes from whole-column Arrow compute over the manifest table (distinct
paths, sum of lengths, null counts): no per-chunk Python loop, and no chunk is read.
Every string put into HTML (names, paths, attribute values, codec names) goes through
`html.escape`. The HTML is self-contained (one inline ``<style>``, no script) and takes
its colours from the notebook (``currentColor`` and translucent greys), so it reads in
light and dark themes; a group lists at most `MAX_ROWS` arrays, the rest folded away.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs

from vzcore.grid import RectilinearChunkGrid

if TYPE_CHECKING:
    from vzcore.array import AnyArray, VirtualArray
    from vzcore.group import VirtualGroup
    from vzcore.manifest import ChunkManifest
    from vzcore.metadata import ArrayMetadata

__all__ = [
    "MAX_ROWS",
    "ManifestSummary",
    "array_html",
    "format_bytes",
    "grid_text",
    "group_html",
    "manifest_html",
    "n_references",
    "summarize",
]

MAX_ROWS = 100
"""Arrays listed in a group's HTML; the others are counted, not shown."""
MAX_FILES = 5
"""Source files listed per array (the others are counted)."""
MAX_ATTRIBUTES = 20
_MAX_TEXT = 200


@attrs.frozen
class ManifestSummary:
    """Counts over one manifest, computed without a per-chunk loop.

    ``files`` are the first `MAX_FILES` distinct referenced paths in sorted order
    (`vzcore.algebra.referenced_paths`: paths the dictionary still holds but no row
    uses are not counted); ``n_files`` counts them all.
    """

    grid: tuple[int, ...]
    n_chunks: int
    n_references: int
    n_missing: int
    n_inline: int
    n_files: int
    referenced_nbytes: int
    inline_nbytes: int
    files: tuple[str, ...]


def n_references(manifest: ChunkManifest) -> int:
    """Chunks that reference bytes in a file (neither missing nor inline)."""
    unreferenced: int = manifest.paths.null_count
    return manifest.n_chunks - unreferenced


def summarize(manifest: ChunkManifest) -> ManifestSummary:
    """The `ManifestSummary` of ``manifest`` (Arrow compute over its columns)."""
    from vzcore.algebra import referenced_paths  # a cycle at import time

    used = referenced_paths(manifest)
    files = used[:MAX_FILES]
    return ManifestSummary(
        grid=manifest.grid,
        n_chunks=manifest.n_chunks,
        n_references=n_references(manifest),
        n_missing=manifest.n_missing,
        n_inline=manifest.n_inline,
        n_files=len(used),
        referenced_nbytes=manifest.referenced_nbytes,
        inline_nbytes=manifest.inline_nbytes,
        files=tuple(files),
    )


def format_bytes(n: int) -> str:
    """``1536`` -> ``"1.5 kB"`` (decimal units, as file browsers show sizes)."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def _exact_bytes(n: int) -> str:
    short = format_bytes(n)
    return short if n < 1000 else f"{short} ({n} B)"


def _e(value: object) -> str:
    text = str(value)
    if len(text) > _MAX_TEXT:
        text = text[: _MAX_TEXT - 1] + "…"
    return html.escape(text, quote=True)


def grid_text(metadata: ArrayMetadata) -> str:
    """The chunk shape, or per axis a rectilinear grid's chunk edges (long lists cut)."""
    grid = metadata.chunk_grid
    if not isinstance(grid, RectilinearChunkGrid):
        return f"chunks {metadata.chunk_shape}"
    axes = []
    for spec in grid.chunk_lengths:
        if isinstance(spec, int):
            axes.append(str(spec))
        elif len(spec) <= 6:
            axes.append("(" + ", ".join(map(str, spec)) + ")")
        else:
            axes.append(f"({', '.join(map(str, spec[:4]))}, … {len(spec)} chunks)")
    return "rectilinear chunks (" + ", ".join(axes) + ")"


_STYLE = """<style>
.vz-repr{font-family:var(--jp-code-font-family,monospace);font-size:12px;color:inherit;
max-width:100%;overflow-x:auto;line-height:1.45}
.vz-repr .vz-head{font-weight:bold}
.vz-repr .vz-kind{opacity:.65;font-weight:normal}
.vz-repr table{border-collapse:collapse;margin:2px 0;color:inherit;background:transparent}
.vz-repr td,.vz-repr th{padding:1px 8px 1px 0;text-align:left;vertical-align:top;
border:none;background:transparent;color:inherit;white-space:nowrap}
.vz-repr th{opacity:.65;font-weight:normal}
.vz-repr tr.vz-row:nth-child(even){background:rgba(128,128,128,.08)}
.vz-repr .vz-num{text-align:right;font-variant-numeric:tabular-nums}
.vz-repr .vz-miss{color:#d9480f}
.vz-repr details{margin:2px 0 2px 12px}
.vz-repr summary{cursor:pointer}
.vz-repr .vz-path{white-space:normal;word-break:break-all}
</style>"""


def _codecs(metadata: ArrayMetadata) -> str:
    return ", ".join(codec.name for codec in metadata.codecs) or "none"


def _dims(metadata: ArrayMetadata) -> str:
    names = metadata.dimension_names
    if not names:
        return ""
    return "(" + ", ".join("-" if n is None else str(n) for n in names) + ")"


def _summary_rows(summary: ManifestSummary) -> list[tuple[str, str]]:
    inline = (
        f"{summary.n_inline} ({format_bytes(summary.inline_nbytes)})" if summary.n_inline else "0"
    )
    return [
        ("references", f"{summary.n_references} of {summary.n_chunks} chunks"),
        ("missing chunks", str(summary.n_missing)),
        ("inline chunks", inline),
        ("distinct files", str(summary.n_files)),
        ("referenced bytes", _exact_bytes(summary.referenced_nbytes)),
    ]


def _table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _files_html(summary: ManifestSummary) -> str:
    if not summary.n_files:
        return ""
    items = "".join(f"<li class='vz-path'>{_e(path)}</li>" for path in summary.files)
    more = summary.n_files - len(summary.files)
    if more:
        items += f"<li>… and {more} more</li>"
    return f"<details><summary>{summary.n_files} source file(s)</summary><ul>{items}</ul></details>"


def _attributes_html(attributes: Mapping[str, object]) -> str:
    items = list(attributes.items())
    if not items:
        return ""
    rows = [(str(k), json.dumps(v, default=str)) for k, v in items[:MAX_ATTRIBUTES]]
    if len(items) > MAX_ATTRIBUTES:
        rows.append(("…", f"and {len(items) - MAX_ATTRIBUTES} more"))
    return f"<details><summary>{len(items)} attribute(s)</summary>{_table(rows)}</details>"


def manifest_html(manifest: ChunkManifest) -> str:
    """A notebook view of a chunk manifest: grid and reference counts."""
    summary = summarize(manifest)
    head = f"<div class='vz-head'>ChunkManifest <span class='vz-kind'>grid {_e(manifest.grid)}</span></div>"
    body = _table(_summary_rows(summary)) + _files_html(summary)
    return f"{_STYLE}<div class='vz-repr'>{head}{body}</div>"


def array_html(array: VirtualArray, name: str | None = None) -> str:
    """A notebook view of a virtual array: shape, grid, dtype, codecs, references, files."""
    meta = array.metadata
    summary = summarize(array.manifest)
    title = "VirtualArray" + (f" {name}" if name else "")
    head = (
        f"<div class='vz-head'>{_e(title)} <span class='vz-kind'>{_e(meta.dtype)} "
        f"{_e(meta.shape)} {_e(_dims(meta))}</span></div>"
    )
    rows = [
        ("chunk grid", f"{grid_text(meta)}, {summary.n_chunks} chunks in grid {summary.grid}"),
        ("codecs", _codecs(meta)),
        *_summary_rows(summary),
    ]
    body = _table(rows) + _files_html(summary) + _attributes_html(meta.attributes)
    return f"{_STYLE}<div class='vz-repr'>{head}{body}</div>"


def _array_row(path: str, array: AnyArray) -> tuple[str, int, int, int, int]:
    from vzcore.array import LoadedArray

    meta = array.metadata
    cells = [path, str(meta.dtype), str(meta.shape), _dims(meta), grid_text(meta)]
    if isinstance(array, LoadedArray):
        numbers = ["in memory", "", "", format_bytes(array.nbytes)]
        counts = (0, 0, 0, array.nbytes)
    else:
        s = summarize(array.manifest)
        numbers = [
            f"{s.n_references} of {s.n_chunks}",
            str(s.n_missing),
            str(s.n_files),
            format_bytes(s.referenced_nbytes),
        ]
        counts = (s.n_references, s.n_missing, s.n_inline, s.referenced_nbytes)
    missing_class = " vz-miss" if numbers[1] not in ("", "0") else ""
    text = "".join(f"<td>{_e(c)}</td>" for c in cells) + "".join(
        f"<td class='vz-num{missing_class if i == 1 else ''}'>{_e(n)}</td>"
        for i, n in enumerate(numbers)
    )
    return f"<tr class='vz-row'>{text}</tr>", *counts


_GROUP_HEADER = (
    "<tr><th>array</th><th>dtype</th><th>shape</th><th>dims</th><th>chunk grid</th>"
    "<th>references</th><th>missing</th><th>files</th><th>bytes</th></tr>"
)


def group_html(group: VirtualGroup, max_rows: int = MAX_ROWS) -> str:
    """A notebook view of a group: one row per array (at most ``max_rows``) and totals."""
    from vzcore.array import VirtualArray

    shown: list[str] = []
    n_arrays = n_virtual = refs = missing = inline = nbytes = 0
    from vzcore.algebra import referenced_paths

    for path, array in group.walk_arrays():
        n_arrays += 1
        n_virtual += isinstance(array, VirtualArray)
        if len(shown) < max_rows:
            row, r, m, i, b = _array_row(path, array)
            shown.append(row)
        else:
            r, m, i = _counts(array)
            b = array.nbytes
        refs, missing, inline, nbytes = refs + r, missing + m, inline + i, nbytes + b
    n_groups = sum(1 for _ in group.walk_groups()) - 1
    head = (
        f"<div class='vz-head'>VirtualGroup <span class='vz-kind'>{n_arrays} array(s) "
        f"({n_virtual} virtual), {n_groups} subgroup(s)</span></div>"
    )
    totals = _table(
        [
            ("references", str(refs)),
            ("missing chunks", str(missing)),
            ("inline chunks", str(inline)),
            ("distinct files", str(len(referenced_paths(group)))),
            ("bytes (referenced + in memory)", _exact_bytes(nbytes)),
        ]
    )
    table = f"<table>{_GROUP_HEADER}{''.join(shown)}</table>" if shown else ""
    hidden = n_arrays - len(shown)
    if hidden:
        table += f"<div>… and {hidden} more array(s) not listed</div>"
    if table and n_arrays > 10:
        table = f"<details><summary>{n_arrays} arrays</summary>{table}</details>"
    body = totals + table + _attributes_html(group.attributes)
    return f"{_STYLE}<div class='vz-repr'>{head}{body}</div>"


def _counts(array: AnyArray) -> tuple[int, int, int]:
    from vzcore.array import LoadedArray

    if isinstance(array, LoadedArray):
        return 0, 0, 0
    m = array.manifest
    return n_references(m), m.n_missing, m.n_inline
