"""Examples for `vzxarray`: opening virtual datasets, combining them with xarray, the accessor."""

import json
import os
import pickle
import random
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr
import zarr.storage
from obstore.store import LocalStore
from tests.data_factories import TIME_UNITS, Sample, local_sample, tile_values, write_tile
from zarr.codecs import GzipCodec

import vzcore as vc
import vzxarray as vx
from vzcore.parsers import HDFParser, ManifestParquetParser, Parser, Probe, ZarrParser

COMBINE: dict[str, Any] = {"coords": "minimal", "compat": "override", "combine_attrs": "override"}


@dataclass(frozen=True)
class DictParser:
    """A parser that answers with prebuilt groups, after checking the URL is registered."""

    groups: Mapping[str, vc.VirtualGroup]

    @classmethod
    def can_open(cls, probe: Probe) -> bool:
        """Never: this parser is only ever passed explicitly (``parser=``)."""
        return False

    def __call__(self, url: str, registry: vc.ObjectStoreRegistry) -> vc.VirtualGroup:
        registry.resolve(url)
        return self.groups[url]


@dataclass(frozen=True)
class Files:
    """Tiles of one field in one folder: ``tiles[t, l]`` covers times 4t.. and longitudes 4l.."""

    folder: Path
    tiles: Mapping[tuple[int, int], Sample]
    others: Mapping[str, Sample]
    registry: vc.ObjectStoreRegistry
    parser: DictParser

    def open(self, sample: Sample, **options: Any) -> xr.Dataset:
        return vx.open_virtual_dataset(
            sample.url,
            registry=self.registry,
            parser=self.parser,
            **options,
        )

    def open_tile(self, t: int, lon: int) -> xr.Dataset:
        return self.open(self.tiles[t, lon])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    folder = tmp_path_factory.mktemp("tiles")
    tiles = {
        (t, lon): write_tile(folder, f"t{t}l{lon}.zarr", time_start=4 * t, lon_start=4 * lon)
        for t in range(2)
        for lon in range(2)
    }
    others = {
        "pr": write_tile(folder, "pr.zarr", variables=("pr",)),
        "two": write_tile(folder, "two.zarr", variables=("a", "b")),
        "copy": write_tile(folder, "copy.zarr"),
        "chunks": write_tile(folder, "chunks.zarr", time_start=4, chunks=(2, 3, 1)),
        "codecs": write_tile(folder, "codecs.zarr", time_start=4, compressors=GzipCodec()),
        "dtype": write_tile(folder, "dtype.zarr", time_start=4, dtype="f8"),
        "short": write_tile(folder, "short.zarr", n_time=3),
        "sample": local_sample(folder),
    }
    groups = {s.url: s.group for s in [*tiles.values(), *others.values()]}
    registry = vc.ObjectStoreRegistry({f"file://{folder}/": LocalStore(folder)})
    return Files(folder, tiles, others, registry, DictParser(groups))


def virtual_of(ds: xr.Dataset, name: str) -> vc.VirtualArray:
    data = ds[name].variable._data
    assert isinstance(data, vx.ManifestArray), f"{name} is {type(data).__name__}"
    return data.virtual


def source_array(sample: Sample, name: str) -> vc.VirtualArray:
    array = sample.group.arrays[name]
    assert isinstance(array, vc.VirtualArray)
    return array


def read_back(ds: xr.Dataset, registry: vc.ObjectStoreRegistry) -> xr.Dataset:
    """The dataset's virtual group served by a ManifestStore, opened and loaded by xarray."""
    store = vc.ManifestStore(ds.vz.to_virtual_group(), registry=registry)
    with xr.open_zarr(store, consolidated=False, chunks=None) as opened:
        return opened.load()


def open_direct(sample: Sample) -> xr.Dataset:
    """The same file opened by xarray from zarr, without vz."""
    with xr.open_zarr(sample.zarr_store, consolidated=False, chunks=None) as opened:
        return opened.load()


def test_the_test_parser_is_a_parser(files: Files) -> None:
    assert isinstance(files.parser, Parser)


# ---- opening ------------------------------------------------------------------------------


def test_dimension_coordinates_are_loaded_and_decoded(files: Files) -> None:
    tile = files.tiles[0, 1]
    ds = files.open(tile)
    assert set(ds.coords) == {"time", "lat", "lon"}
    assert ds["time"].dtype == np.dtype("datetime64[ns]")
    np.testing.assert_array_equal(
        ds["time"].values, np.datetime64("2000-01-01", "ns") + np.arange(4) * np.timedelta64(1, "D")
    )
    assert ds["time"].encoding["units"] == TIME_UNITS
    np.testing.assert_array_equal(ds["lon"].values, [4.0, 5.0, 6.0, 7.0])
    assert ds["lon"].attrs == {"units": "degrees_east"}
    for name in ("time", "lat", "lon"):
        assert isinstance(ds[name].values, np.ndarray)
    assert list(ds.data_vars) == ["tas"]
    assert virtual_of(ds, "tas") == source_array(tile, "tas")
    assert ds["tas"].dims == ("time", "lat", "lon")
    assert ds["tas"].attrs == {"units": "K"}
    assert ds["tas"].dtype == np.dtype("f4")


def test_decode_times_false_keeps_the_stored_numbers(files: Files) -> None:
    ds = files.open(files.tiles[1, 0], decode_times=False)
    assert ds["time"].dtype == np.dtype("i8")
    np.testing.assert_array_equal(ds["time"].values, [4, 5, 6, 7])
    assert ds["time"].attrs == {"units": TIME_UNITS, "calendar": "standard"}


def test_loadable_variables_are_read_into_memory(files: Files) -> None:
    tile = files.tiles[1, 1]
    ds = files.open(tile, loadable_variables=["time", "lat", "lon", "tas"])
    assert isinstance(ds["tas"].variable._data, np.ndarray)
    np.testing.assert_array_equal(ds["tas"].values, tile.expected["tas"])
    xr.testing.assert_identical(ds, open_direct(tile))


@pytest.mark.parametrize("loadable", [["tas"], []])
def test_dimension_coordinates_can_stay_virtual(files: Files, loadable: list[str]) -> None:
    tile = files.tiles[0, 0]
    ds = files.open(tile, loadable_variables=loadable)
    assert virtual_of(ds, "time") == source_array(tile, "time")
    assert "time" in ds.coords


def test_drop_variables(files: Files) -> None:
    ds = files.open(files.tiles[0, 0], drop_variables=["lat"])
    assert "lat" not in ds.variables
    assert ds["tas"].dims == ("time", "lat", "lon")
    ds = files.open(files.tiles[0, 0], drop_variables=["tas", "lon"])
    assert set(ds.variables) == {"time", "lat"}


@pytest.mark.parametrize("option", ["loadable_variables", "drop_variables"])
def test_unknown_variable_names_are_refused(files: Files, option: str) -> None:
    with pytest.raises(vc.VirtualizationError) as info:
        files.open(files.tiles[0, 0], **{option: ["tas", "nope", "also_not"]})
    assert str(info.value) == (
        f"{option} names ['also_not', 'nope'], which the file does not have; "
        "it has ['lat', 'lon', 'tas', 'time']"
    )


def test_a_dropped_variable_cannot_be_loaded(files: Files) -> None:
    with pytest.raises(vc.VirtualizationError, match=r"loadable_variables names \['lat'\]"):
        files.open(files.tiles[0, 0], drop_variables=["lat"], loadable_variables=["lat"])


def _with_height(tile: Sample) -> vc.VirtualGroup:
    """The tile with a 0-d ``height`` coordinate named by ``tas``'s "coordinates" attribute."""
    tas = source_array(tile, "tas")
    lat = source_array(tile, "lat")
    height_meta = vc.ArrayMetadata.create(
        shape=(), chunk_shape=(), dtype="f8", dimension_names=(), attributes={"units": "m"}
    )
    height = vc.VirtualArray(height_meta, vc.select_chunks(lat, [slice(0, 3)]).manifest.reshape(()))
    tas = vc.VirtualArray(
        tas.metadata.evolve(attributes={"units": "K", "coordinates": "height"}), tas.manifest
    )
    return tile.group.evolve(arrays={**tile.group.arrays, "tas": tas, "height": height})


def test_the_coordinates_attribute_makes_coordinates(files: Files) -> None:
    tile = files.tiles[0, 0]
    group = _with_height(tile)
    parser = DictParser({tile.url: group})
    ds = vx.open_virtual_dataset(tile.url, registry=files.registry, parser=parser)
    assert "height" in ds.coords
    assert list(ds.data_vars) == ["tas"]
    assert ds["tas"].attrs == {"units": "K"}
    assert ds["tas"].encoding["coordinates"] == "height"
    assert virtual_of(ds, "height") == group.arrays["height"]
    # ... and the attribute is written back.
    back = ds.vz.to_virtual_group().arrays["tas"]
    assert back.metadata.attributes["coordinates"] == "height"
    assert back == group.arrays["tas"]


def test_the_coordinates_attribute_of_a_loaded_variable(files: Files) -> None:
    tile = files.tiles[0, 0]
    parser = DictParser({tile.url: _with_height(tile)})
    ds = vx.open_virtual_dataset(
        tile.url,
        registry=files.registry,
        parser=parser,
        loadable_variables=["time", "lat", "lon", "tas"],
    )
    assert "height" in ds.coords
    assert isinstance(ds["tas"].variable._data, np.ndarray)
    assert isinstance(ds["height"].variable._data, vx.ManifestArray)


def test_open_virtual_datatree(files: Files) -> None:
    sample = files.others["sample"]
    tree = vx.open_virtual_datatree(sample.url, registry=files.registry, parser=files.parser)
    assert sorted(node.path for node in tree.subtree) == ["/", "/sub", "/sub/deeper"]
    assert tree["time"].dtype == np.dtype("datetime64[ns]")
    assert virtual_of(tree["sub"].to_dataset(), "depth") == sample.group["sub/depth"]
    assert virtual_of(tree["sub/deeper"].to_dataset(), "flag") == sample.group["sub/deeper/flag"]
    assert tree["sub"].attrs == {"title": "a subgroup"}
    assert tree.attrs == {"title": "vz sample", "Conventions": "CF-1.8"}


def test_open_virtual_datatree_options_apply_per_group(files: Files) -> None:
    sample = files.others["sample"]
    tree = vx.open_virtual_datatree(
        sample.url,
        registry=files.registry,
        parser=files.parser,
        loadable_variables=["time", "depth"],
        drop_variables=["flag", "mask"],
    )
    np.testing.assert_array_equal(tree["sub"]["depth"].values, sample.expected["sub/depth"])
    assert "flag" not in tree["sub/deeper"].to_dataset().variables
    assert "mask" not in tree.to_dataset().variables


@pytest.mark.parametrize("group", ["/sub", "sub", "sub/"])
def test_a_group_is_selected_by_path(files: Files, group: str) -> None:
    sample = files.others["sample"]
    ds = files.open(sample, group=group)
    assert list(ds.variables) == ["depth"]
    assert ds.attrs == {"title": "a subgroup"}
    tree = vx.open_virtual_datatree(
        sample.url, registry=files.registry, parser=files.parser, group=group
    )
    assert sorted(node.path for node in tree.subtree) == ["/", "/deeper"]


@pytest.mark.parametrize("group", ["/nope", "/tas", "sub/nope"])
def test_a_missing_group_is_refused(files: Files, group: str) -> None:
    sample = files.others["sample"]
    with pytest.raises(vc.VirtualizationError) as info:
        files.open(sample, group=group)
    assert str(info.value) == f"{sample.url}: no group {group!r}"


def test_an_unregistered_url_is_refused_before_parsing(files: Files) -> None:
    with pytest.raises(vc.UnregisteredURLError):
        vx.open_virtual_dataset(
            files.tiles[0, 0].url, registry=vc.ObjectStoreRegistry(), parser=files.parser
        )


# ---- combining with xarray ----------------------------------------------------------------


def test_concat_along_time(files: Files) -> None:
    datasets = [files.open_tile(0, 0), files.open_tile(1, 0)]
    combined = xr.concat(datasets, dim="time", **COMBINE)
    assert virtual_of(combined, "tas") == vc.concat(
        [source_array(files.tiles[t, 0], "tas") for t in range(2)], axis=0
    )
    expected = xr.concat([open_direct(files.tiles[t, 0]) for t in range(2)], dim="time", **COMBINE)
    xr.testing.assert_identical(read_back(combined, files.registry), expected)


def test_concat_along_a_new_dimension_stacks(files: Files) -> None:
    samples = [files.tiles[0, 0], files.others["copy"]]
    combined = xr.concat([files.open(s) for s in samples], dim="member", **COMBINE)
    assert combined["tas"].dims == ("member", "time", "lat", "lon")
    assert virtual_of(combined, "tas") == vc.stack(
        [source_array(s, "tas") for s in samples], axis=0
    )
    expected = xr.concat([open_direct(s) for s in samples], dim="member", **COMBINE)
    xr.testing.assert_identical(read_back(combined, files.registry), expected)


def test_merge_of_datasets_with_different_variables(files: Files) -> None:
    tas, pr = files.tiles[0, 0], files.others["pr"]
    merged = xr.merge([files.open(tas), files.open(pr)], compat="override", join="exact")
    assert sorted(merged.data_vars) == ["pr", "tas"]
    assert virtual_of(merged, "tas") == source_array(tas, "tas")
    assert virtual_of(merged, "pr") == source_array(pr, "pr")
    expected = xr.merge([open_direct(tas), open_direct(pr)], compat="override", join="exact")
    xr.testing.assert_identical(read_back(merged, files.registry), expected)


def _tiled_virtual(files: Files) -> vc.VirtualArray:
    rows = [
        vc.concat([source_array(files.tiles[t, lon], "tas") for lon in range(2)], axis=2)
        for t in range(2)
    ]
    return vc.concat(rows, axis=0)


def test_combine_nested_over_two_dimensions(files: Files) -> None:
    grid = [[files.open_tile(t, lon) for lon in range(2)] for t in range(2)]
    combined = xr.combine_nested(grid, concat_dim=["time", "lon"], **COMBINE)
    assert combined.sizes == {"time": 8, "lat": 3, "lon": 8}
    assert virtual_of(combined, "tas") == _tiled_virtual(files)
    direct = [[open_direct(files.tiles[t, lon]) for lon in range(2)] for t in range(2)]
    expected = xr.combine_nested(direct, concat_dim=["time", "lon"], **COMBINE)
    back = read_back(combined, files.registry)
    xr.testing.assert_identical(back, expected)
    time, lat, lon = (back[n].values for n in ("time", "lat", "lon"))
    days = (time - np.datetime64("2000-01-01")) // np.timedelta64(1, "D")
    np.testing.assert_array_equal(back["tas"].values, tile_values(days, lat, lon))


def test_combine_by_coords_orders_shuffled_files(files: Files) -> None:
    keys = list(files.tiles)
    random.Random(7).shuffle(keys)
    assert keys != sorted(keys)
    combined = xr.combine_by_coords(
        [files.open_tile(*key) for key in keys],
        join="exact",
        data_vars="all",
        **COMBINE,
    )
    assert isinstance(combined, xr.Dataset)
    assert virtual_of(combined, "tas") == _tiled_virtual(files)
    direct = [[open_direct(files.tiles[t, lon]) for lon in range(2)] for t in range(2)]
    expected = xr.combine_nested(direct, concat_dim=["time", "lon"], **COMBINE)
    xr.testing.assert_identical(read_back(combined, files.registry), expected)


@pytest.mark.parametrize(
    ("other", "error", "pieces"),
    [
        (
            "chunks",
            vc.ChunkShapeMismatch,
            [
                "cannot concatenate: array 1 (",
                "has chunk shape (2, 3, 1), array 0 (",
                "has (2, 3, 2)",
            ],
        ),
        (
            "codecs",
            vc.CodecMismatch,
            [
                'has codecs [bytes{"endian":"little"}, gzip{"level":5}], array 0 (',
                'has [bytes{"endian":"little"}, zstd{"checksum":false,"level":0}]',
            ],
        ),
        (
            "dtype",
            vc.DtypeMismatch,
            [
                "cannot cast variable 'tas' (dtype float32, in ",
                ") to float64: the chunks on disk decode to their own dtype",
                "loadable_variables=",
            ],
        ),
    ],
)
def test_incompatible_files_raise_the_core_errors_through_xarray(
    files: Files, other: str, error: type[vc.VirtualizationError], pieces: list[str]
) -> None:
    """The message names the variable, the files on both sides and both values."""
    datasets = [files.open_tile(0, 0), files.open(files.others[other])]
    with pytest.raises(error) as info:
        xr.concat(datasets, dim="time", **COMBINE)
    message = str(info.value)
    assert message.startswith(("variable 'tas': ", "cannot cast variable 'tas'"))
    for piece in pieces:
        assert piece in message
    first = virtual_of(datasets[0], "tas").manifest.dictionary[0].as_py()
    assert first in message
    if other != "dtype":  # a cast sees one side only
        assert virtual_of(datasets[1], "tas").manifest.dictionary[0].as_py() in message


def test_a_partial_chunk_inside_a_concatenation_is_refused(files: Files) -> None:
    datasets = [files.open(files.others["short"]), files.open_tile(1, 0)]
    with pytest.raises(vc.PartialChunkError) as info:
        xr.concat(datasets, dim="time", **COMBINE)
    assert str(info.value).startswith("variable 'tas': cannot concatenate: array 0 (file://")
    assert "has length 3 along axis 0, not a " in str(info.value)


# ---- xarray's equality checks on virtual variables ----------------------------------------

DEFAULT_COMPAT = "ignore:In a future version of xarray the default value for compat:FutureWarning"


def _all_virtual(files: Files, sample: Sample) -> xr.Dataset:
    ds = files.open(sample, loadable_variables=[])
    for name in ds.variables:
        virtual_of(ds, str(name))  # every variable, the float coordinate lat included
    assert not ds.indexes
    return ds


def test_equals_and_identical_compare_references(files: Files) -> None:
    """Opened twice: other ManifestArray objects, the same references, so equal."""
    first, second = (_all_virtual(files, files.others["two"]) for _ in range(2))
    assert first["lat"].variable._data is not second["lat"].variable._data
    assert first.equals(second)
    assert first.identical(second)
    assert first["a"].equals(second["a"])
    assert first["lat"].identical(second["lat"])
    xr.testing.assert_equal(first, second)
    xr.testing.assert_identical(first, second)
    xr.testing.assert_identical(first["lat"], second["lat"])
    second["a"].attrs["units"] = "mK"
    assert first.equals(second)
    assert not first.identical(second)


def test_other_files_are_not_known_equal(files: Files) -> None:
    """The same values in another file: vz does not read them, so it does not claim equal."""
    tile, copy = _all_virtual(files, files.tiles[0, 0]), _all_virtual(files, files.others["copy"])
    xr.testing.assert_identical(read_back(tile, files.registry), read_back(copy, files.registry))
    assert not tile.equals(copy)
    assert not tile.identical(copy)
    assert not tile["lat"].equals(copy["lat"])
    with pytest.raises(AssertionError, match="not equal"):
        xr.testing.assert_equal(tile, copy)
    with pytest.raises(xr.MergeError, match="conflicting values for variable 'lat'"):
        xr.merge([tile[["tas", "lat"]], copy[["lat"]]], compat="no_conflicts")


@pytest.mark.filterwarnings(DEFAULT_COMPAT)
@pytest.mark.parametrize(
    "compat", [None, "no_conflicts", "equals", "broadcast_equals", "identical", "override"]
)
def test_merge_of_subsets_sharing_a_virtual_coordinate(files: Files, compat: str | None) -> None:
    sample = files.others["two"]
    first, second = (_all_virtual(files, sample) for _ in range(2))
    parts = [first[["a", "lat"]], second[["b", "lat"]]]
    merged = xr.merge(parts) if compat is None else xr.merge(parts, compat=compat)
    assert sorted(merged.data_vars) == ["a", "b"]
    for name in ("a", "b", "lat", "lon", "time"):
        assert virtual_of(merged, name) == source_array(sample, name), name
    same_open = xr.merge([first[["a", "lat"]], first[["b", "lat"]]])
    assert virtual_of(same_open, "lat") == source_array(sample, "lat")
    xr.testing.assert_identical(
        read_back(merged, files.registry), read_back(first, files.registry)[["a", "b"]]
    )


def _string_files(folder: Path, words: list[list[bytes]], dtype: str = "S4") -> list[str]:
    """Zarr v3 stores, one per list of words: a fixed-width bytes variable ``code(x)``."""
    urls = []
    for i, values in enumerate(words):
        root = zarr.open_group(zarr.storage.LocalStore(folder / f"{i}.zarr"), mode="w")
        code = root.create_array(
            "code",
            shape=(len(values),),
            chunks=(1,),
            dtype=dtype,
            fill_value=b"",
            dimension_names=["x"],
        )
        code[...] = np.array(values, dtype=dtype)
        x = root.create_array("x", shape=(len(values),), dtype="i8", dimension_names=["x"])
        x[...] = np.arange(len(values)) + 10 * i
        urls.append(f"file://{folder}/{i}.zarr")
    return urls


def test_concat_of_virtual_fixed_width_strings(tmp_path: Path) -> None:
    """xarray casts the string variables it joins to ``"S"``: a no-op, as in numpy."""
    words = [[b"ab", b"cdef", b""], [b"xyz", b"q"]]
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    datasets = [
        vx.open_virtual_dataset(url, registry=registry, parser=ZarrParser())
        for url in _string_files(tmp_path, words)
    ]
    assert datasets[0]["code"].dtype == np.dtype("S4")
    assert isinstance(datasets[0]["code"].variable._data, vx.ManifestArray)
    combined = xr.concat(datasets, dim="x", **COMBINE)
    assert combined["code"].dtype == np.dtype("S4")
    assert virtual_of(combined, "code") == vc.concat(
        [virtual_of(ds, "code") for ds in datasets], axis=0
    )
    back = read_back(combined, registry)
    assert back["code"].dtype == np.dtype("S4")
    assert back["code"].values.tolist() == [w for file in words for w in file]


def test_concat_of_virtual_strings_of_other_widths_is_refused(tmp_path: Path) -> None:
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": LocalStore(tmp_path)})
    urls = _string_files(tmp_path / "a", [[b"ab"]], "S4") + _string_files(
        tmp_path / "b", [[b"abcde"]], "S5"
    )
    datasets = [
        vx.open_virtual_dataset(url, registry=registry, parser=ZarrParser()) for url in urls
    ]
    with pytest.raises(
        vc.DtypeMismatch,
        match=r"variable .code.: cannot concatenate: array 1 \(\S+\) has dtype \|S5, array 0 \(\S+\) has \|S4",
    ):
        xr.concat(datasets, dim="x", **COMBINE)


# ---- xarray operations on virtual variables -----------------------------------------------


def test_selections_on_chunk_boundaries_stay_virtual(files: Files) -> None:
    ds = files.open_tile(0, 0)
    tas = source_array(files.tiles[0, 0], "tas")
    part = ds.isel(time=slice(2, 4), lon=slice(2, None))
    assert virtual_of(part, "tas") == vc.select_chunks(tas, [slice(2, 4), slice(None), slice(2, 4)])
    by_label = ds.sel(time=slice("2000-01-03", "2000-01-04"))
    assert virtual_of(by_label, "tas") == vc.select_chunks(tas, [slice(2, 4), *[slice(None)] * 2])
    with pytest.raises(vc.PartialChunkError):
        ds.isel(lon=slice(0, 3))
    with pytest.raises(vc.PartialChunkError):
        ds.isel(time=0)


def test_fancy_selections_through_xarray_need_values(files: Files) -> None:
    with pytest.raises(vx.VirtualValuesError):
        files.open_tile(0, 0).isel(time=[2, 3])


def test_xarray_operations_that_need_values_refuse(files: Files) -> None:
    ds = files.open_tile(0, 0)
    with pytest.raises(vx.VirtualValuesError, match="loadable_variables"):
        _ = ds["tas"].values
    with pytest.raises(vx.VirtualValuesError, match="loadable_variables"):
        ds["tas"].mean()
    with pytest.raises(vx.VirtualValuesError, match="loadable_variables"):
        ds["tas"].where(ds["tas"] > 0)
    with pytest.raises(vx.VirtualValuesError, match="cannot transpose"):
        ds.transpose("lon", "lat", "time")


def test_virtual_datasets_copy_and_pickle(files: Files) -> None:
    ds = files.open_tile(0, 0)
    for other in (ds.copy(deep=True), pickle.loads(pickle.dumps(ds))):
        assert virtual_of(other, "tas") == virtual_of(ds, "tas")
        xr.testing.assert_identical(other.drop_vars("tas"), ds.drop_vars("tas"))
    assert ds.expand_dims("member")["tas"].shape == (1, 4, 3, 4)


# ---- the accessor -------------------------------------------------------------------------


def test_nbytes_counts_references_and_loaded_values(files: Files) -> None:
    tile = files.tiles[0, 0]
    ds = files.open(tile)
    loaded = sum(tile.expected[name].nbytes for name in ("time", "lat", "lon"))
    assert ds.vz.nbytes == source_array(tile, "tas").nbytes + loaded


@pytest.mark.parametrize("kind", ["callable", "mapping"])
def test_rename_paths(files: Files, kind: str) -> None:
    ds = files.open_tile(0, 0)
    old = virtual_of(ds, "tas").manifest.dictionary.to_pylist()
    moved = {path: path.replace("file://", "s3://bucket") for path in old}
    renamer = moved if kind == "mapping" else (lambda p: p.replace("file://", "s3://bucket"))
    renamed = ds.vz.rename_paths(renamer)
    assert virtual_of(renamed, "tas") == vc.rename_paths(virtual_of(ds, "tas"), moved)
    assert virtual_of(renamed, "tas").manifest.dictionary.to_pylist() == [moved[p] for p in old]
    assert virtual_of(ds, "tas").manifest.dictionary.to_pylist() == old  # the input is unchanged
    np.testing.assert_array_equal(renamed["lon"].values, ds["lon"].values)


def test_rename_paths_of_virtual_dimension_coordinates(files: Files) -> None:
    """Virtual index-less coordinates are renamed in place and stay index-less coordinates."""
    ds = files.open(files.tiles[0, 0], loadable_variables=[])
    assert not ds.xindexes
    renamed = ds.vz.rename_paths(lambda p: p.replace("file://", "s3://bucket"))
    assert list(renamed.variables) == list(ds.variables)
    assert list(renamed.coords) == list(ds.coords)
    assert sorted(map(str, renamed.coords)) == ["lat", "lon", "time"]
    assert not renamed.xindexes
    for name in ("time", "lat", "lon", "tas"):
        paths = virtual_of(renamed, name).manifest.dictionary.to_pylist()
        assert paths, name
        assert all(p.startswith("s3://bucket/") for p in paths), name
        assert renamed[name].attrs == ds[name].attrs, name
    assert renamed.vz.to_virtual_group() == vc.rename_paths(
        ds.vz.to_virtual_group(), lambda p: p.replace("file://", "s3://bucket")
    )


def test_to_virtual_group_round_trips(files: Files) -> None:
    tile = files.tiles[1, 1]
    group = files.open(tile).vz.to_virtual_group()
    assert group.arrays["tas"] == source_array(tile, "tas")
    time = group.arrays["time"]
    assert isinstance(time, vc.LoadedArray)  # the stored form: numbers with CF attributes
    np.testing.assert_array_equal(time.data, tile.expected["time"])
    assert dict(time.metadata.encoding) == {"units": TIME_UNITS, "calendar": "standard"}
    assert dict(time.metadata.attributes) == {}
    again = vx.dataset_from_group(group, registry=files.registry)
    assert again.vz.to_virtual_group() == group
    xr.testing.assert_identical(again.drop_vars("tas"), files.open(tile).drop_vars("tas"))


def test_group_round_trip_of_virtual_variables_without_coordinates(files: Files) -> None:
    sample = files.others["sample"]
    arrays = {n: sample.group.arrays[n] for n in ("tas", "level", "mask")}
    group = vc.VirtualGroup(arrays=arrays, attributes={"title": "t"})
    ds = vx.dataset_from_group(group, registry=files.registry)
    assert ds.vz.to_virtual_group() == group


def test_non_index_coordinates_survive_the_group_round_trip(files: Files) -> None:
    ds = files.open_tile(0, 0).assign_coords(label=("lon", np.array(["a", "b", "c", "d"])))
    assert "label" in ds.coords
    again = vx.dataset_from_group(ds.vz.to_virtual_group(), registry=files.registry)
    assert "label" in again.coords
    assert "label" in read_back(ds, files.registry).coords


def test_group_round_trip_of_a_zero_d_variable(files: Files) -> None:
    scale = files.others["sample"].group.arrays["scale"]
    assert scale.metadata.dimension_names is None
    group = vc.VirtualGroup(arrays={"scale": scale})
    assert vx.dataset_from_group(group).vz.to_virtual_group() == group


def test_manifest_parquet_round_trip(files: Files) -> None:
    grid = [[files.open_tile(t, lon) for lon in range(2)] for t in range(2)]
    combined = xr.combine_nested(grid, concat_dim=["time", "lon"], **COMBINE)
    written = combined.vz.to_manifest_parquet(files.folder / "combined.vz")
    assert written == files.folder / "combined.vz"
    reopened = vx.open_virtual_dataset(
        f"file://{written}", registry=files.registry, parser=ManifestParquetParser()
    )
    assert virtual_of(reopened, "tas") == virtual_of(combined, "tas")
    xr.testing.assert_identical(reopened.drop_vars("tas"), combined.drop_vars("tas"))
    assert reopened.vz.to_virtual_group() == combined.vz.to_virtual_group()
    xr.testing.assert_identical(
        read_back(reopened, files.registry), read_back(combined, files.registry)
    )


def test_datatree_accessor(files: Files) -> None:
    sample = files.others["sample"]
    tree = vx.open_virtual_datatree(sample.url, registry=files.registry, parser=files.parser)
    group = tree.vz.to_virtual_group()
    assert sorted(path for path, _ in group.walk_groups()) == ["", "sub", "sub/deeper"]
    for path in ("tas", "level", "mask", "sub/depth", "sub/deeper/flag"):
        assert group[path] == sample.group[path], path
    assert isinstance(group["time"], vc.LoadedArray)
    assert group.groups["sub"].attributes == {"title": "a subgroup"}
    assert tree.vz.nbytes == group.nbytes
    renamed = tree.vz.rename_paths(lambda p: p.replace("file://", "s3://b"))
    flag = renamed.vz.to_virtual_group()["sub/deeper/flag"]
    assert isinstance(flag, vc.VirtualArray)
    assert flag.manifest.dictionary.to_pylist()[0].startswith("s3://b/")
    written = tree.vz.to_manifest_parquet(files.folder / "tree.vz")
    assert vc.read_manifest_parquet(written) == group


def test_import_vzxarray_in_a_fresh_interpreter() -> None:
    code = (
        "import xarray as xr, vzxarray; "
        "assert hasattr(xr.Dataset, 'vz') and hasattr(xr.DataTree, 'vz'); "
        "print(sorted(vzxarray.__all__)[0])"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ManifestArray"


# ---- order is the file's, whatever PYTHONHASHSEED ---------------------------------------------

_ORDER_SCRIPT = """
import json, sys
import vzcore as vc, vzxarray as vx
from vzcore.parsers import HDFParser
paths = sys.argv[1:]
registry = vc.ObjectStoreRegistry.for_urls([vc.registry.normalize_url(p) for p in paths])
seen = {}
for loadable in (None, []):
    ds = vx.open_virtual_dataset(
        vc.registry.normalize_url(paths[0]), registry=registry, parser=HDFParser(),
        loadable_variables=loadable,
    )
    mf = vx.open_virtual_mfdataset(
        paths, combine="nested", concat_dim="time", loadable_variables=loadable,
        parser=HDFParser(), progress=False,
    )
    for label, x in (("one", ds), ("many", mf)):
        seen[f"{label}-{loadable}"] = {
            "variables": list(map(str, x.variables)),
            "coords": list(map(str, x.coords)),
            "group": list(x.vz.to_virtual_group().arrays),
        }
print(json.dumps(seen))
"""
FILE_COORDS = ["time", "z", "y", "x", "lon2", "lat2", "alt", "area", "mask"]
FILE_DATA_VARS = ["zeta", "alpha", "tas", "pr", "beta"]


def _many_coordinates(path: Path, time_start: int) -> None:
    """A netCDF4 file of many coordinates (index, CF "coordinates", global), not sorted."""
    import netCDF4

    with netCDF4.Dataset(path, "w") as f:
        for name, length in [("time", 3), ("z", 2), ("y", 2), ("x", 4)]:
            f.createDimension(name, length)
            f.createVariable(name, "f8", (name,))[:] = np.arange(length) + (
                time_start if name == "time" else 0
            )
        for name in FILE_COORDS[4:]:
            f.createVariable(name, "f4", ("y", "x"))[:] = 1
        for name in FILE_DATA_VARS:
            variable = f.createVariable(name, "f4", ("time", "y", "x"))
            variable[:] = 1
            variable.coordinates = "lon2 lat2 alt area"
        f.coordinates = "mask"


def test_variable_and_coordinate_order_is_the_files_whatever_the_hash_seed(
    tmp_path: Path,
) -> None:
    paths = [tmp_path / "a.nc", tmp_path / "b.nc"]
    for index, path in enumerate(paths):
        _many_coordinates(path, time_start=3 * index)
    runs = []
    for seed in ("0", "1", "2"):
        result = subprocess.run(
            [sys.executable, "-c", _ORDER_SCRIPT, *map(str, paths)],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert result.returncode == 0, result.stderr
        runs.append(json.loads(result.stdout))
    assert all(run == runs[0] for run in runs[1:])
    with xr.open_dataset(paths[0]) as expected:
        expected_variables = list(map(str, expected.variables))
    assert expected_variables == FILE_DATA_VARS + FILE_COORDS
    for label, seen in runs[0].items():
        assert seen["variables"] == expected_variables, label
        assert seen["coords"] == FILE_COORDS, label
        assert seen["group"] == expected_variables, label


# ---- rename_paths with one path --------------------------------------------------------------


@pytest.mark.parametrize("loadable", [None, []], ids=["coords-loaded", "all-virtual"])
def test_rename_paths_with_one_path_for_a_single_file(
    tmp_path: Path, loadable: list[str] | None
) -> None:
    _many_coordinates(tmp_path / "one.nc", time_start=0)
    url = f"file://{tmp_path}/one.nc"
    registry = vc.ObjectStoreRegistry.for_urls([url])
    ds = vx.open_virtual_dataset(
        url, registry=registry, parser=HDFParser(), loadable_variables=loadable
    )
    renamed = ds.vz.rename_paths("s3://b/new.nc")
    assert list(renamed.variables) == list(ds.variables)
    assert vc.rename_paths(ds.vz.to_virtual_group(), "s3://b/new.nc") == (
        renamed.vz.to_virtual_group()
    )
    for name, variable in renamed.variables.items():
        if isinstance(variable._data, vx.ManifestArray):
            paths = variable._data.manifest.dictionary.to_pylist()
            assert paths == ["s3://b/new.nc"], name
    tree = vx.open_virtual_datatree(url, registry=registry, parser=HDFParser())
    moved = tree.vz.rename_paths("s3://b/new.nc").vz.to_virtual_group()
    assert moved == vc.rename_paths(tree.vz.to_virtual_group(), "s3://b/new.nc")


def test_rename_paths_with_one_path_refuses_several_files(tmp_path: Path, files: Files) -> None:
    urls = []
    for index in range(2):
        _many_coordinates(tmp_path / f"f{index}.nc", time_start=3 * index)
        urls.append(f"file://{tmp_path}/f{index}.nc")
    registry = vc.ObjectStoreRegistry.for_urls(urls)
    datasets = [vx.open_virtual_dataset(u, registry=registry, parser=HDFParser()) for u in urls]
    combined = xr.concat(datasets, dim="time", **COMBINE)
    with pytest.raises(vc.AmbiguousRenameError) as info:
        combined.vz.rename_paths("s3://b/new.nc")
    message = str(info.value)
    assert "they reference 2 files" in message
    assert all(u in message for u in urls)
    assert "pass a callable or a mapping" in message
    # A zarr store references one object per chunk: many files, in a dataset or a tree.
    with pytest.raises(vc.AmbiguousRenameError, match=r"they reference \d+ files"):
        files.open_tile(0, 0).vz.rename_paths("s3://b/new.nc")
    sample = files.others["sample"]
    tree = vx.open_virtual_datatree(sample.url, registry=files.registry, parser=files.parser)
    with pytest.raises(vc.AmbiguousRenameError):
        tree.vz.rename_paths("s3://b/new.nc")
