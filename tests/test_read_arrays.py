"""`read_arrays`: several arrays' values in one batch, equal to `read_array` of each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import xarray as xr

import vzcore as vc
from vzcore.parsers import HDFParser


def _file(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    ds = xr.Dataset(
        {
            "tas": (("time", "lat"), rng.normal(size=(6, 5)).astype("f4")),
            "flag": (("lat",), np.arange(5, dtype="i2")),
        },
        coords={"time": np.arange(6.0) + 10 * seed, "lat": np.linspace(-60, 60, 5)},
    )
    encoding = {"tas": {"zlib": True, "chunksizes": (2, 5)}, "flag": {"contiguous": True}}
    ds.to_netcdf(path, engine="netcdf4", encoding=encoding)
    return path


def _first_chunk_inline(array: vc.VirtualArray, path: Path) -> vc.VirtualArray:
    """The array with its first chunk's bytes held in the manifest instead of referenced."""
    indices, offsets, lengths = (c.copy() for c in array.manifest.to_numpy_columns())
    start, stop = int(offsets[0]), int(offsets[0] + lengths[0])
    data = pa.array([path.read_bytes()[start:stop]] + [None] * (len(indices) - 1), pa.binary())
    indices[0], offsets[0], lengths[0] = -1, 0, 0
    manifest = vc.ChunkManifest.from_numpy_columns(
        array.manifest.grid, dictionary=array.manifest.dictionary, indices=indices,
        offsets=offsets, lengths=lengths, data=data,
    )  # fmt: skip
    assert manifest.n_inline == 1
    return vc.VirtualArray(array.metadata, manifest)


def test_arrays_of_several_files_read_in_one_batch_equal_each_read_alone(tmp_path: Path) -> None:
    paths = [_file(tmp_path / f"f{i}.nc", i) for i in range(2)]
    registry = vc.ObjectStoreRegistry.for_urls([str(p) for p in paths])
    groups = [HDFParser()(str(p), registry) for p in paths]
    arrays: dict[str, vc.AnyArray] = {}
    for i, group in enumerate(groups):
        for name, array in group.arrays.items():
            arrays[f"{name}{i}"] = array
    arrays["inline"] = _first_chunk_inline(groups[0]["tas"], paths[0])  # type: ignore[arg-type]
    arrays["loaded"] = vc.LoadedArray.from_numpy(np.arange(3.0))
    got = vc.read_arrays(arrays, registry)
    assert list(got) == list(arrays)
    for name, array in arrays.items():
        np.testing.assert_array_equal(got[name], vc.read_array(array, registry))
    for i, path in enumerate(paths):
        with xr.open_dataset(path, decode_times=False) as ref:
            for name in ("tas", "flag", "time", "lat"):
                np.testing.assert_array_equal(got[f"{name}{i}"], ref[name].values)
    np.testing.assert_array_equal(got["inline"], got["tas0"])


def test_a_missing_file_in_the_batch_is_a_typed_error_naming_it(tmp_path: Path) -> None:
    paths = [_file(tmp_path / f"f{i}.nc", i) for i in range(2)]
    registry = vc.ObjectStoreRegistry.for_urls([str(p) for p in paths])
    groups = [HDFParser()(str(p), registry) for p in paths]
    paths[1].unlink()
    with pytest.raises(vc.SourceReadError, match=r"f1\.nc"):
        vc.read_arrays({"a": groups[0]["tas"], "b": groups[1]["tas"]}, registry)
