"""`HDFParser` against h5py on every HDF5 file that installed packages ship.

PyTables' test files (compounds of every layout, H5T_TIME, enums, long doubles, vlen
arrays, undefined fill values, lzo and blosc2 filters, links), h5py's (vlen strings,
compound with complex members), xarray's and others'. For every dataset the only
outcomes allowed are: its values read back through a `ManifestStore` equal h5py's bit
for bit (virtualized, or loaded when its type cannot be referenced), or a typed
`VirtualizationError` that names the file and the variable.
"""

from __future__ import annotations

import collections
import re
import site
from functools import cache
from pathlib import Path
from typing import Any

import attrs
import h5py
import hdf5plugin  # noqa: F401  (h5py reads the blosc2, bitshuffle and lz4 files as the reference)
import numpy as np
import pytest
import zarr
from obstore.store import LocalStore
from tests.hdf5_corpus import real_sample_files
from tests.test_hdf5_types import same_bits

import vzcore as vc
from vzcore.parsers import HDFParser

SITE_PACKAGES = [Path(p) for p in site.getsitepackages()]
SAMPLES = real_sample_files(SITE_PACKAGES)
NETCDF_DIMENSION_ONLY = b"This is a netCDF dimension but not a netCDF variable"
# A refusal names the variable, or the link that vz does not follow.
_VARIABLE = re.compile(r"(?:variable|link) '([^']*)'")


@attrs.frozen
class Outcome:
    """What vz made of one file: its group, the variables loaded on request, the refusals."""

    group: vc.VirtualGroup
    registry: vc.ObjectStoreRegistry
    loaded_on_request: tuple[str, ...]
    refusals: dict[str, str]


@cache
def outcome(path: Path) -> Outcome:
    """Parse, loading what vz says must be loaded and dropping what it refuses, one at a time."""
    url = f"file://{path}"
    registry = vc.ObjectStoreRegistry({f"file://{path.parent}/": LocalStore(path.parent)})
    loaded: list[str] = []
    refusals: dict[str, str] = {}
    while True:
        try:
            group = HDFParser(drop_variables=tuple(refusals), loadable_variables=loaded)(
                url, registry
            )
        except vc.VirtualizationError as err:
            message = str(err)
            assert url in message, message
            named = _VARIABLE.search(message)
            assert named is not None, f"the error names no variable: {message}"
            variable = named.group(1)
            assert variable not in refusals, message
            if "loadable_variables=" in message and variable not in loaded:
                loaded.append(variable)
            else:
                refusals[variable] = message
            continue
        return Outcome(group, registry, tuple(loaded), refusals)


def _datasets(f: h5py.File) -> list[str]:
    """Every dataset reachable from the root, through links inside the file, as the parser
    walks them (never through an external link: vz does not leave the file)."""
    found: list[str] = []

    def walk(group: h5py.Group, prefix: str) -> None:
        for name in group:
            if group.id.links.get_info(name.encode()).type == h5py.h5l.TYPE_EXTERNAL:
                continue
            node = group.get(name)
            if isinstance(node, h5py.Group):
                walk(node, f"{prefix}{name}/")
            elif isinstance(node, h5py.Dataset):
                label = node.attrs.get("NAME", b"")
                if not (isinstance(label, bytes) and label.startswith(NETCDF_DIMENSION_ONLY)):
                    found.append(f"{prefix}{name}")

    walk(f, "")
    return sorted(found)


def _h5py_values(f: h5py.File, dataset: h5py.Dataset) -> np.ndarray[Any, Any]:
    """h5py's values, as vz's contract has them: fixed-length strings bytes, others text."""
    if dataset.dtype.kind != "S" and h5py.check_string_dtype(dataset.dtype) is not None:
        raw = np.asarray(dataset.asstr()[()], dtype=object)
        return np.asarray(raw.tolist(), dtype=str).reshape(raw.shape)
    if h5py.check_ref_dtype(dataset.dtype) is h5py.Reference:
        refs = np.asarray(dataset[()], dtype=object)
        names = [f[r].name if r else "" for r in refs.ravel().tolist()]
        return np.asarray(names, dtype=str).reshape(refs.shape)
    return np.asarray(dataset[()])


def _compare(ours: np.ndarray[Any, Any], theirs: np.ndarray[Any, Any], where: str) -> None:
    if theirs.dtype.kind in "SU" and theirs.dtype.names is None:
        np.testing.assert_array_equal(ours, theirs, err_msg=where)
        assert ours.dtype.kind == theirs.dtype.kind, where
    else:
        same_bits(ours, theirs, where=where)


def _params() -> list[Any]:
    if not SAMPLES:
        return [pytest.param(None, marks=pytest.mark.skip(reason="no HDF5 files installed"))]
    return [pytest.param(p, id=_label(p)) for p in SAMPLES]


def _label(path: Path) -> str:
    for root in SITE_PACKAGES:
        if path.is_relative_to(root):
            return str(path.relative_to(root))
    return path.name


@pytest.mark.parametrize("path", _params())
def test_every_dataset_reads_like_h5py_or_is_refused_by_name(path: Path) -> None:
    result = outcome(path)
    store = vc.ManifestStore(result.group, registry=result.registry)
    root = zarr.open_group(store, mode="r")
    ours = dict(result.group.walk_arrays())
    with h5py.File(path, "r") as f:
        expected = [p for p in _datasets(f) if "/" + p not in result.refusals]
        assert sorted(ours) == expected
        for variable in expected:
            array = root[variable]
            assert isinstance(array, zarr.Array)
            where = f"{_label(path)}:{variable}"
            _compare(np.asarray(array[...]), _h5py_values(f, f[variable]), where)
        for variable in result.loaded_on_request:
            assert isinstance(ours[variable.lstrip("/")], vc.LoadedArray), variable


def _tally() -> dict[str, collections.Counter[str]]:
    counts: dict[str, collections.Counter[str]] = {
        "virtual": collections.Counter(),
        "loaded": collections.Counter(),
        "refused": collections.Counter(),
    }
    for path in SAMPLES:
        result = outcome(path)
        for _, array in result.group.walk_arrays():
            kind = "virtual" if isinstance(array, vc.VirtualArray) else "loaded"
            counts[kind]["compound" if array.dtype.names else array.dtype.kind] += 1
        for message in result.refusals.values():
            reason = message.split("': ", 1)[-1].split(";")[0]
            counts["refused"][re.sub(r" [\[{(].*", "", reason)] += 1
    return counts


@pytest.mark.skipif(not SAMPLES, reason="no HDF5 files installed")
def test_the_samples_exercise_structs_array_types_and_loading() -> None:
    counts = _tally()
    print({kind: dict(counter) for kind, counter in counts.items()})
    assert counts["virtual"]["compound"] > 0
    assert sum(counts["loaded"].values()) > 0
