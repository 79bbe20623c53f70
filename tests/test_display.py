"""Notebook views: the summaries behind the HTML reprs, escaping, and a bounded group view."""

from __future__ import annotations

import numpy as np
import xarray as xr
from tests.conftest import virtual_array

import vzcore as vc
from vzcore.display import ManifestSummary, format_bytes, group_html, summarize
from vzxarray.manifest_array import ManifestArray

HOSTILE = "file:///data/<script>alert(1)</script>.nc"


def test_summary_counts_references_missing_inline_files_and_bytes() -> None:
    manifest = vc.ChunkManifest.from_entries(
        {
            "0.0": {"path": "file:///b.nc", "offset": 0, "length": 10},
            "0.1": {"path": "file:///a.nc", "offset": 0, "length": 20},
            "1.0": {"data": b"12345"},
            "1.2": {"path": "file:///b.nc", "offset": 10, "length": 30},
        },
        grid=(2, 3),
    )
    assert summarize(manifest) == ManifestSummary(
        grid=(2, 3),
        n_chunks=6,
        n_references=3,
        n_missing=2,
        n_inline=1,
        n_files=2,
        referenced_nbytes=60,
        inline_nbytes=5,
        files=("file:///a.nc", "file:///b.nc"),  # sorted
    )


def test_files_no_row_uses_any_more_are_not_counted() -> None:
    array = virtual_array((8,), (2,), paths=["file:///a.nc", "file:///b.nc"])
    kept = vc.select_chunks(array, (slice(0, 2),))  # chunk 0 only: a.nc
    assert len(kept.manifest.dictionary) == 2  # the dictionary is shared, not pruned
    assert summarize(kept.manifest).n_files == 1


def test_every_string_is_escaped() -> None:
    array = virtual_array(
        (4,),
        (2,),
        paths=HOSTILE,
        attributes={"<b>key</b>": "<script>alert(2)</script>"},
        dimension_names=("<i>t</i>",),
    )
    group = vc.VirtualGroup(
        arrays={"<img src=x onerror=alert(3)>": array},
        attributes={"title": "<script>alert(4)</script>"},
    )
    for text in (
        array._repr_html_(),
        array.manifest._repr_html_(),
        group._repr_html_(),
        xr.Dataset({"v": ("t", ManifestArray(array))})._repr_html_(),
    ):
        assert "<script" not in text
        assert "<img" not in text
        assert "<b>key" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in array._repr_html_()
    assert "&lt;script&gt;alert(2)" in array._repr_html_()
    assert "&lt;i&gt;t&lt;/i&gt;" in array._repr_html_()
    assert "&lt;img src=x onerror=alert(3)&gt;" in group._repr_html_()
    assert "alert(4)" in group._repr_html_()


def test_an_array_view_shows_grid_codecs_and_counts() -> None:
    meta = vc.ArrayMetadata(
        shape=(59, 3),
        chunk_grid=vc.RectilinearChunkGrid(((31, 28), 3)),
        dtype="f4",
        codecs=[{"name": "bytes", "configuration": {"endian": "little"}}, "zstd"],
    )
    manifest = vc.ChunkManifest.from_arrays(
        paths=np.array([["file:///jan.nc"], [""]], dtype=object),
        offsets=np.zeros((2, 1), np.int64),
        lengths=np.full((2, 1), 1500, np.int64),
    )
    text = vc.VirtualArray(meta, manifest)._repr_html_()
    for expected in (
        "rectilinear chunks ((31, 28), 3)",
        "bytes, zstd",
        "1 of 2 chunks",
        "<th>missing chunks</th><td>1</td>",
        "<th>distinct files</th><td>1</td>",
        "1.5 kB (1500 B)",
        "file:///jan.nc",
    ):
        assert expected in text
    assert "<script" not in text  # self-contained: style, no script


def test_a_group_of_a_thousand_arrays_stays_small() -> None:
    arrays = {
        f"v{i:04d}": virtual_array((4,), (2,), paths=f"file:///f{i % 7}.nc", missing=[1])
        for i in range(1000)
    }
    group = vc.VirtualGroup(arrays=arrays)
    text = group_html(group)
    assert len(text) < 60_000
    assert text.count("<tr class='vz-row'>") == 100
    assert "… and 900 more array(s) not listed" in text
    assert "<details><summary>1000 arrays</summary>" in text
    # The totals count every array, listed or not.
    assert "<th>references</th><td>1000</td>" in text
    assert "<th>missing chunks</th><td>1000</td>" in text
    assert "<th>distinct files</th><td>7</td>" in text


def test_xarray_shows_the_inline_summary_and_loads_nothing() -> None:
    array = virtual_array((6, 4), (2, 2), paths=["file:///a.nc", "file:///b.nc"], missing=[0])
    dataset = xr.Dataset({"tas": (("t", "x"), ManifestArray(array))})
    text = dataset._repr_html_()
    assert "<div class='xr-var-preview xr-preview'>5 refs·2 files·1 missing·500 B</div>" in text
    # The variable's expandable data section is vz's own view.
    assert "<th>references</th><td>5 of 6 chunks</td>" in text


def test_format_bytes() -> None:
    assert [format_bytes(n) for n in (0, 999, 1000, 1_536_000, 2 * 10**12, 5 * 10**15)] == [
        "0 B",
        "999 B",
        "1.0 kB",
        "1.5 MB",
        "2.0 TB",
        "5000.0 TB",
    ]
