"""Chunk-map pictures: ``ds.vz.plot_chunks`` and ``vz info --plot`` draw what the manifest says.

The figures are inspected, not just saved: the colour of every chunk (the QuadMesh's
RGBA array), the hatched boxes of missing chunks, the legend's entries, the edges.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from matplotlib.collections import PolyCollection, QuadMesh
from matplotlib.figure import Figure
from PIL import Image
from tests.conftest import virtual_array

import vzcore as vc
import vzxarray as vx
from vzcore.plot import MISSING_HATCH, chunk_map, plot_chunks
from vzcore.writers import write_kerchunk_json
from vzxarray.cli import main
from vzxarray.demo import make_demo_files

DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
JUNE = slice(sum(DAYS[:5]), sum(DAYS[:6]))  # days 151-180


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The demo's 12 monthly files of daily chunks."""
    return make_demo_files(tmp_path_factory.mktemp("plot-year"))


@pytest.fixture(scope="module")
def virtual_year(year: list[Path]) -> xr.Dataset:
    return vx.open_virtual_mfdataset([str(p) for p in year], combine="nested", concat_dim="time")


def _without_june(tas: vc.VirtualArray) -> vc.VirtualArray:
    """The year with June's 30 chunks unreferenced (its file left out of the references)."""
    june = vc.select_chunks(tas, (JUNE, slice(None), slice(None)))
    gap = vc.VirtualArray(june.metadata, vc.ChunkManifest.empty(june.manifest.grid))
    before = vc.select_chunks(tas, (slice(0, JUNE.start), slice(None), slice(None)))
    after = vc.select_chunks(tas, (slice(JUNE.stop, 365), slice(None), slice(None)))
    return vc.concat([before, gap, after], axis=0)


def _mesh(figure: Figure) -> QuadMesh:
    (mesh,) = [c for c in figure.axes[0].collections if isinstance(c, QuadMesh)]
    return mesh


def _colours(figure: Figure) -> np.ndarray:
    """The RGBA of every drawn chunk, shape (rows, columns, 4)."""
    return np.asarray(_mesh(figure).get_array())


def _hatched(figure: Figure) -> list[PolyCollection]:
    return [
        c
        for c in figure.axes[0].collections
        if isinstance(c, PolyCollection) and c.get_hatch() == MISSING_HATCH
    ]


def _legend(figure: Figure) -> list[str]:
    legend = figure.axes[0].get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


def _numbers(figure: Figure) -> list[str]:
    """The file numbers written on the chunks, left to right."""
    texts = sorted(figure.axes[0].texts, key=lambda t: t.get_position()[0])
    return [t.get_text() for t in texts]


def _distinct_runs(colours: np.ndarray) -> list[tuple[tuple[float, ...], int]]:
    """Consecutive runs of one colour along a strip: (colour, length)."""
    runs: list[tuple[tuple[float, ...], int]] = []
    for rgba in map(tuple, colours.reshape(-1, 4).tolist()):
        if runs and runs[-1][0] == rgba:
            runs[-1] = (rgba, runs[-1][1] + 1)
        else:
            runs.append((rgba, 1))
    return runs


def test_twelve_monthly_files_make_twelve_colours_in_file_order(
    virtual_year: xr.Dataset,
) -> None:
    figure = virtual_year.vz.plot_chunks("tas")
    colours = _colours(figure)
    assert colours.shape == (1, 365, 4)  # a strip along time, the only chunked axis
    runs = _distinct_runs(colours)
    assert [n for _, n in runs] == list(DAYS)  # one colour per month, each month's days long
    assert len({c for c, _ in runs}) == 12
    # File order is the ramp's order: the colours are the colour map sampled in order.
    import matplotlib

    ramp = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.9, 12))
    np.testing.assert_allclose([c for c, _ in runs], ramp)
    assert _legend(figure) == [f"{m} tas_2001{m:02d}.nc" for m in range(1, 13)]
    assert _numbers(figure) == [str(m) for m in range(1, 13)]
    assert not _hatched(figure)
    assert figure.axes[0].get_xlabel() == "time (element index)"


def test_a_missing_month_is_a_hatched_gap_where_june_was(virtual_year: xr.Dataset) -> None:
    tas = _without_june(virtual_year["tas"].data.virtual)
    figure = plot_chunks(tas, name="tas")
    colours = _colours(figure)[0]
    assert (colours[JUNE, 3] == 0).all()  # transparent: nothing referenced there
    assert (colours[: JUNE.start, 3] == 1).all()
    assert (colours[JUNE.stop :, 3] == 1).all()
    assert len(_distinct_runs(colours)) == 12  # 11 months and the gap
    (hatched,) = _hatched(figure)
    boxes = [p.vertices for p in hatched.get_paths()]
    assert len(boxes) == 30
    assert min(b[:, 0].min() for b in boxes) == JUNE.start
    assert max(b[:, 0].max() for b in boxes) == JUNE.stop
    legend = _legend(figure)
    assert not any(entry.endswith("tas_200106.nc") for entry in legend)
    assert "6 tas_200107.nc" in legend
    assert legend[-1] == "missing (fill value)"
    assert "30 missing" in figure.axes[0].get_title(loc="left")


def test_files_in_the_wrong_order_break_the_ramp(virtual_year: xr.Dataset) -> None:
    tas = virtual_year["tas"].data.virtual
    months = [
        vc.select_chunks(tas, (slice(sum(DAYS[:m]), sum(DAYS[: m + 1])), slice(None), slice(None)))
        for m in range(12)
    ]
    swapped = vc.concat([months[1], months[0], *months[2:]], axis=0)
    codes = chunk_map(swapped).codes[0]
    # Colours stay tied to the files (sorted paths): February's come first now.
    assert codes[:28].tolist() == [1] * 28
    assert codes[28:59].tolist() == [0] * 31
    assert not np.all(np.diff(codes) >= 0)
    assert _numbers(plot_chunks(swapped))[:3] == ["2", "1", "3"]


def test_rectilinear_grids_draw_their_true_edges() -> None:
    meta = vc.ArrayMetadata(shape=(365,), chunk_grid=vc.RectilinearChunkGrid((DAYS,)), dtype="f4")
    paths = np.array([f"file:///m/{m:02d}.nc" for m in range(12)], dtype=object)
    manifest = vc.ChunkManifest.from_arrays(
        paths=paths, offsets=np.zeros(12, np.int64), lengths=np.full(12, 8, np.int64)
    )
    figure = plot_chunks(vc.VirtualArray(meta, manifest))
    x_edges = _mesh(figure).get_coordinates()[0, :, 0]
    assert x_edges.tolist() == np.concatenate([[0], np.cumsum(DAYS)]).tolist()
    assert len(_distinct_runs(_colours(figure))) == 12


def test_a_slice_of_an_nd_array_and_its_choice() -> None:
    array = virtual_array(
        (4, 6, 8),
        (2, 2, 2),
        paths=[f"file:///f{i:02d}.nc" for i in range(48)],
        dimension_names=("z", "y", "x"),
    )
    default = chunk_map(array)
    assert default.axes == (0, 1)
    assert default.at == {2: 0}
    # chunk (i, j, 0) is row i*12 + j*4, which references file f{row:02d}
    rows = np.arange(2)[:, None] * 12 + np.arange(3)[None, :] * 4
    assert [default.files[c] for c in default.codes.ravel()] == [
        f"file:///f{r:02d}.nc" for r in rows.ravel()
    ]
    chosen = chunk_map(array, axes=("y", "x"), at={"z": 1})
    assert chosen.axes == (1, 2)
    assert chosen.codes.shape == (3, 4)
    assert chosen.files[chosen.codes[0, 0]] == "file:///f12.nc"
    assert chosen.edges[0].tolist() == [0, 2, 4, 6]
    figure = plot_chunks(array, axes=("y", "x"), at={"z": 1})
    assert "z at chunk 1 of 2" in figure.axes[0].get_title(loc="left")
    with pytest.raises(vc.VirtualizationError, match="no dimension 't'"):
        chunk_map(array, axes=("t",))
    assert chunk_map(array, at={"z": 1}).axes == (1, 2)  # the default skips fixed axes
    with pytest.raises(vc.VirtualizationError, match="out of range along axis 2"):
        chunk_map(array, at={"x": 4})
    with pytest.raises(vc.VirtualizationError, match="cannot also be fixed"):
        chunk_map(array, axes=("z", "y"), at={"z": 0})


def test_a_long_file_list_is_cut_in_the_legend() -> None:
    array = virtual_array((30,), (1,), paths=[f"file:///d/f{i:02d}.nc" for i in range(30)])
    legend = _legend(plot_chunks(array, max_legend=12))
    assert legend[:11] == [f"{i + 1} f{i:02d}.nc" for i in range(11)]
    assert legend[11:] == ["…and 19 more"]


def test_inline_chunks_are_grey_and_manifests_plot_in_chunk_units() -> None:
    manifest = vc.ChunkManifest.from_entries(
        {
            "0": {"path": "file:///a.nc", "offset": 0, "length": 4},
            "1": {"data": b"abcd"},
            "2": {"path": "file:///a.nc", "offset": 4, "length": 4},
        },
        grid=(4,),
    )
    cmap = chunk_map(manifest)
    assert cmap.codes.tolist() == [[0, -2, 0, -1]]
    figure = plot_chunks(manifest)
    assert figure.axes[0].get_xlabel() == "axis 0 (chunk index)"
    assert _legend(figure) == ["1 file:///a.nc", "missing (fill value)", "inline"]


def test_plotting_without_matplotlib_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(vc.MissingDependencyError, match=r"pip install 'vz\[plot\]'"):
        plot_chunks(virtual_array((4,), (2,)))


def test_the_accessor_refuses_loaded_and_unknown_variables(virtual_year: xr.Dataset) -> None:
    with pytest.raises(vc.VirtualizationError, match="'lat' is loaded in memory"):
        virtual_year.vz.plot_chunks("lat")
    with pytest.raises(vc.VirtualizationError, match="no variable 'pr'"):
        virtual_year.vz.plot_chunks("pr")


def _png(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        size: tuple[int, int] = image.size
        return size


def test_vz_info_plot_draws_the_store_and_a_gap(
    year: list[Path], virtual_year: xr.Dataset, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "year.json"
    glob = str(year[0].parent / "tas_*.nc")
    assert main(["virtualize", glob, "--concat-dim", "time", "--out", str(store),
                 "--format", "kerchunk-json"]) == 0  # fmt: skip
    out = tmp_path / "year.png"
    assert main(["info", str(store), "--plot", str(out)]) == 0
    assert f"chunk map of tas written to {out}" in capsys.readouterr().out
    assert _png(out) == (1080, 360)
    # The picture is the figure plot_chunks draws of the store's own tas.
    group, _ = _store_group(store)
    expected = tmp_path / "expected.png"
    plot_chunks(group["tas"], name="tas").savefig(expected, dpi=120)  # type: ignore[arg-type]
    assert out.read_bytes() == expected.read_bytes()

    gap_store = tmp_path / "gap.json"
    group = virtual_year.vz.to_virtual_group()
    gap = group.evolve(arrays={**group.arrays, "tas": _without_june(group["tas"])})  # type: ignore[arg-type]
    write_kerchunk_json(gap, gap_store)
    gap_png = tmp_path / "gap.png"
    assert main(["info", str(gap_store), "--plot", str(gap_png), "--variable", "tas"]) == 0
    reread, _ = _store_group(gap_store)
    cmap = chunk_map(reread["tas"])  # type: ignore[arg-type]
    assert np.flatnonzero(cmap.codes[0] == -1).tolist() == list(range(JUNE.start, JUNE.stop))
    assert len(cmap.files) == 11
    assert _png(gap_png) == (1080, 360)

    assert main(["info", str(store), "--plot", str(out), "--variable", "lat"]) == 1
    assert "no virtual array 'lat' to draw" in capsys.readouterr().err


def _store_group(store: Path) -> tuple[vc.VirtualGroup, str]:
    from vzxarray.cli import _open_store

    return _open_store(str(store), None, None, None)
