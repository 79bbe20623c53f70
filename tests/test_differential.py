"""Combined and written virtual datasets decode exactly like ``xr.open_mfdataset``.

The files of tests/cf_corpus.py (CF packing with ``_FillValue`` and ``missing_value``,
never-written chunks, an HDF5 fill value without ``_FillValue``, times in three
calendars, char arrays, a subgroup) are opened virtually, combined with every
combine path xarray and vz offer, saved with every vz writer, reopened with plain
xarray, and compared — dtypes, values, attributes — with ``xr.open_mfdataset`` of
the same files combined the same way. The virtual side never reads a data value
before writing: the decoding must come out of what was written.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr
import zarr.storage
from tests.cf_corpus import (
    CALENDARS,
    SERIES_STEPS,
    WRITERS,
    Corpus,
    PackedSpec,
    assert_decodes_like,
    counts_values,
    open_icechunk,
    reopen,
    reopen_tree,
    write,
    write_corpus,
    write_packed_series,
)

import vzcore as vc
import vzxarray as vx
from vzcore.parsers import HDFParser
from vzxarray.cli import main

# What open_virtual_mfdataset does by default, spelled out for xarray.
MINIMAL: dict[str, Any] = {"data_vars": "minimal", "coords": "minimal", "compat": "override"}

PACKED = ("packed", "packed_mv", "sparse")
"""The variables of the first dataset of the merge; the second holds the others."""


@dataclass
class Files:
    corpus: Corpus
    registry: vc.ObjectStoreRegistry

    @property
    def folder(self) -> Path:
        return self.corpus.folder

    def open(self, path: Path, **options: Any) -> xr.Dataset:
        return vx.open_virtual_dataset(
            f"file://{path}", registry=self.registry, parser=HDFParser(), **options
        )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    folder = tmp_path_factory.mktemp("cf-corpus")
    return Files(write_corpus(folder), vc.ObjectStoreRegistry.for_urls([f"file://{folder}/x"]))


@contextmanager
def old_combine_defaults() -> Iterator[None]:
    """xarray warns that the defaults of its combine functions will change; keep the old ones."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*default value.*")
        yield


def open_mf(paths: Any, **options: Any) -> xr.Dataset:
    """The reference: ``xr.open_mfdataset`` of the files, loaded."""
    with old_combine_defaults(), xr.open_mfdataset(paths, **options) as ds:
        return ds.load()


# ---- the combine paths: (virtual dataset, the same files through xr.open_mfdataset) --------

type Case = tuple[xr.Dataset, xr.Dataset]


def concat_case(files: Files, calendar: str = "standard", drop: tuple[str, ...] = ()) -> Case:
    paths = files.corpus.series[calendar]
    virtual = xr.concat(
        [files.open(p, drop_variables=drop) for p in paths],
        dim="time",
        coords="minimal",
        compat="override",
        data_vars="minimal",
    )
    expected = open_mf(paths, combine="nested", concat_dim="time", **MINIMAL)
    return virtual, expected.drop_vars(drop)


NOT_STRINGS = ("station_code",)
"""Left out where strings are not the subject (they are in the combine-path matrix)."""


def merge_case(files: Files) -> Case:
    """Two datasets of the same files holding different variables, concatenated, merged."""
    paths = files.corpus.series["standard"]
    with xr.open_dataset(paths[0]) as first:
        others = [str(n) for n in first.data_vars if n not in PACKED]

    def series(drop: list[str] | tuple[str, ...]) -> xr.Dataset:
        datasets = [files.open(p, drop_variables=drop) for p in paths]
        return xr.concat(datasets, dim="time", **MINIMAL)

    virtual = xr.merge([series(others), series(PACKED)], compat="override", join="outer")
    expected = open_mf(paths, combine="nested", concat_dim="time", **MINIMAL)
    return virtual, expected


def combine_nested_case(files: Files) -> Case:
    """2 x 2 tiles with xarray's defaults: combine_attrs="drop" drops every attribute."""
    tiles = files.corpus.tiles
    with old_combine_defaults():
        virtual = xr.combine_nested(
            [[files.open(p) for p in row] for row in tiles], concat_dim=["time", "x"]
        )
    expected = open_mf(tiles, combine="nested", concat_dim=["time", "x"], combine_attrs="drop")
    return virtual, expected


def combine_by_coords_case(files: Files) -> Case:
    tiles = [p for row in files.corpus.tiles for p in row]
    shuffled = random.Random(3).sample(tiles, len(tiles))
    options = {**MINIMAL, "combine_attrs": "drop_conflicts"}
    virtual = xr.combine_by_coords([files.open(p) for p in shuffled], **options)
    assert isinstance(virtual, xr.Dataset)
    expected = open_mf(shuffled, combine="by_coords", **options)
    return virtual, expected


def mfdataset_nested_case(files: Files) -> Case:
    paths = files.corpus.series["standard"]
    virtual = vx.open_virtual_mfdataset(
        [str(p) for p in paths], combine="nested", concat_dim="time", progress=False
    )
    expected = open_mf(
        paths, combine="nested", concat_dim="time", combine_attrs="override", **MINIMAL
    )
    return virtual, expected


def mfdataset_by_coords_case(files: Files) -> Case:
    tiles = [str(p) for row in reversed(files.corpus.tiles) for p in row]
    virtual = vx.open_virtual_mfdataset(tiles, parallel="threads", progress=False)
    expected = open_mf(tiles, combine="by_coords", combine_attrs="override", **MINIMAL)
    return virtual, expected


CASES: dict[str, Callable[[Files], Case]] = {
    "concat": concat_case,
    "merge": merge_case,
    "combine_nested_2d": combine_nested_case,
    "combine_by_coords_2d": combine_by_coords_case,
    "open_virtual_mfdataset_nested": mfdataset_nested_case,
    "open_virtual_mfdataset_by_coords": mfdataset_by_coords_case,
}


def _written(files: Files, virtual: xr.Dataset, writer: str, out: Path) -> xr.Dataset:
    return reopen(writer, write(virtual, writer, out, files.folder, files.registry), files.registry)


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("case", CASES)
def test_written_store_decodes_like_open_mfdataset(
    files: Files, case: str, writer: str, tmp_path: Path
) -> None:
    virtual, expected = CASES[case](files)
    assert isinstance(virtual["packed"].data, vx.ManifestArray)  # nothing was loaded
    assert_decodes_like(_written(files, virtual, writer, tmp_path), expected)


# ---- the command line --------------------------------------------------------------------

CLI_FORMATS = tuple(w for w in WRITERS if w != "manifest-store")


@pytest.mark.parametrize("how", ["concat-dim", "by-coords"])
@pytest.mark.parametrize("fmt", CLI_FORMATS)
def test_vz_virtualize_decodes_like_open_mfdataset(
    files: Files, fmt: str, how: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"out.{fmt}"
    if how == "concat-dim":
        paths = files.corpus.series["standard"]
        args = [*map(str, paths), "--concat-dim", "time"]
        expected = open_mf(paths, combine="nested", concat_dim="time", **MINIMAL)
    else:
        paths = [p for row in files.corpus.tiles for p in row]
        args = [*map(str, paths), "--by-coords"]
        expected = open_mf(paths, combine="by_coords", **MINIMAL)
    status = main(["virtualize", *args, "--out", str(out), "--format", fmt])
    assert status == 0, capsys.readouterr().err
    written = open_icechunk(out, files.folder) if fmt == "icechunk" else out
    assert_decodes_like(reopen(fmt, written, files.registry), expected)


# ---- calendars of the loaded time coordinate ----------------------------------------------


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("combine", ["concat", "by_coords"])
@pytest.mark.parametrize("calendar", CALENDARS)
def test_every_calendar_decodes_like_open_mfdataset(
    files: Files, calendar: str, combine: str, writer: str, tmp_path: Path
) -> None:
    if combine == "concat":
        virtual, expected = concat_case(files, calendar, drop=NOT_STRINGS)
    else:
        paths = list(reversed(files.corpus.series[calendar]))
        options = {**MINIMAL, "combine_attrs": "override"}
        combined = xr.combine_by_coords(
            [files.open(p, drop_variables=NOT_STRINGS) for p in paths], **options
        )
        assert isinstance(combined, xr.Dataset)
        virtual = combined
        expected = open_mf(paths, combine="by_coords", **options).drop_vars(NOT_STRINGS)
    if calendar != "standard":
        assert virtual["time"].dtype == object  # cftime dates, loaded
    assert_decodes_like(_written(files, virtual, writer, tmp_path), expected)


# ---- groups ------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", WRITERS)
def test_a_subgroup_decodes_like_open_mfdataset(files: Files, writer: str, tmp_path: Path) -> None:
    paths = files.corpus.series["standard"]
    virtual = xr.concat([files.open(p, group="obs") for p in paths], dim="time", **MINIMAL)
    expected = open_mf(paths, group="obs", combine="nested", concat_dim="time", **MINIMAL)
    assert_decodes_like(_written(files, virtual, writer, tmp_path), expected)


@pytest.mark.parametrize("writer", WRITERS)
def test_a_datatree_decodes_like_open_mfdataset(files: Files, writer: str, tmp_path: Path) -> None:
    paths = files.corpus.series["standard"]
    trees = [
        vx.open_virtual_datatree(f"file://{p}", registry=files.registry, parser=HDFParser())
        for p in paths
    ]
    combined = xr.DataTree.from_dict(
        {
            node: xr.concat(
                [tree[node].to_dataset(inherit=False) for tree in trees], dim="time", **MINIMAL
            )
            for node in ("/", "/obs")
        }
    )
    got = reopen_tree(
        writer, write(combined, writer, tmp_path, files.folder, files.registry), files.registry
    )
    assert sorted(got.groups) == ["/", "/obs"]
    for node, group in (("/", None), ("/obs", "obs")):
        expected = open_mf(paths, group=group, combine="nested", concat_dim="time", **MINIMAL)
        assert_decodes_like(got[node].to_dataset(inherit=False), expected)


# ---- users editing attributes and encodings before writing --------------------------------


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("how", ["drop_attrs", "clear_variable_attrs"])
def test_dropped_attributes_still_decode(
    files: Files, how: str, writer: str, tmp_path: Path
) -> None:
    """The CF encoding is not a user attribute: clearing attributes keeps the decoding."""
    virtual, expected = concat_case(files, drop=NOT_STRINGS)
    if how == "drop_attrs":
        virtual, expected = virtual.drop_attrs(), expected.drop_attrs()
    else:
        for name in (*PACKED, "nofill", "valid_time", "model_time", "station_name"):
            virtual[name].attrs = {}
            expected[name].attrs = {}
        assert virtual["packed"].attrs == {}
    assert_decodes_like(_written(files, virtual, writer, tmp_path), expected)


def _raw_counts() -> np.ndarray[Any, Any]:
    starts = np.cumsum([0, *SERIES_STEPS[:-1]])
    return np.concatenate(
        [counts_values(s, n, 0, 4) for s, n in zip(starts, SERIES_STEPS, strict=True)]
    )


@pytest.mark.parametrize("writer", WRITERS)
def test_a_scale_factor_set_in_the_encoding_is_applied(
    files: Files, writer: str, tmp_path: Path
) -> None:
    """A virtual variable without packing, given ``encoding={"scale_factor": 2.0}``."""
    virtual, _ = concat_case(files, drop=NOT_STRINGS)
    virtual["counts"].encoding = {"scale_factor": 2.0}
    got = _written(files, virtual, writer, tmp_path)["counts"]
    np.testing.assert_array_equal(got.values, _raw_counts() * 2.0)
    assert got.dtype == np.float64
    assert got.attrs == {"long_name": "raw counts"}
    assert got.encoding["scale_factor"] == 2.0


def test_the_raw_counts_are_what_the_files_hold(files: Files) -> None:
    """The premise of the test above: ``counts`` has no CF encoding at all."""
    expected = open_mf(
        files.corpus.series["standard"], combine="nested", concat_dim="time", **MINIMAL
    )
    np.testing.assert_array_equal(expected["counts"].values, _raw_counts())
    assert expected["counts"].dtype == np.int16


# ---- float32 packing attributes ------------------------------------------------------------

F32_RAW = (np.arange(32, dtype="i2").reshape(8, 4) * 97 - 1500).astype("i2")
F32_RAW[[0, 3, 6], [1, 2, 3]] = -32767
F32_SPEC = PackedSpec(
    dtype="i2",
    scale_factor=0.01,
    add_offset=273.15,
    attribute_dtype="f4",
    fill_value=-32767,
    chunk_x=2,
)


@pytest.fixture(scope="module")
def float32_packed(files: Files) -> list[Path]:
    folder = files.folder / "float32-packing"
    folder.mkdir()
    return write_packed_series(folder, F32_SPEC, F32_RAW, (3, 5))


def xarrays_own_zarr_copy(dataset: xr.Dataset) -> xr.Dataset:
    """``dataset`` written by xarray itself to an in-memory Zarr store, and reopened."""
    store = zarr.storage.MemoryStore()
    dataset.to_zarr(store, consolidated=False, zarr_format=3)
    with xr.open_dataset(store, engine="zarr", chunks=None, consolidated=False) as ds:
        return ds.load()


@pytest.mark.parametrize("writer", WRITERS)
def test_float32_packing_decodes_like_xarrays_own_zarr_copy(
    files: Files, float32_packed: list[Path], writer: str, tmp_path: Path
) -> None:
    """``scale_factor``/``add_offset`` stored as float32 in the files.

    xarray decodes them to float32 from netCDF, but no Zarr store can say that an
    attribute is float32 (JSON numbers), so xarray's own ``to_zarr`` copy of the files
    decodes to float64: that copy is the reference here, exactly.
    """
    virtual = xr.concat([files.open(p) for p in float32_packed], dim="time", **MINIMAL)
    expected = open_mf(float32_packed, combine="nested", concat_dim="time", **MINIMAL)
    assert expected["v"].dtype == np.float32  # the premise: netCDF keeps the float32 type
    assert_decodes_like(_written(files, virtual, writer, tmp_path), xarrays_own_zarr_copy(expected))


# ---- before writing --------------------------------------------------------------------------


def test_virtual_variables_show_the_attributes_xarray_shows(files: Files) -> None:
    """xarray moves the CF encoding (packing, masks, time units) out of ``attrs``.

    So ``combine_attrs``, ``drop_attrs`` and the user see and drop only what they
    would see and drop on ``xr.open_dataset`` of the file.
    """
    path = files.corpus.series["noleap"][0]
    virtual = files.open(path, drop_variables=NOT_STRINGS)
    with xr.open_dataset(path, drop_variables=NOT_STRINGS) as expected:
        shown = {str(n): v.attrs for n, v in expected.variables.items()}
    assert {str(n): v.attrs for n, v in virtual.variables.items()} == shown
