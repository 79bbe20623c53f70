"""The peers' side of benchmarks/mfdataset.py: VirtualiZarr 2.8 and kerchunk on the same files.

Run by benchmarks/mfdataset.py in the peers' venv (../shared/peers/setup-venv.sh) with the
folder the files were written to; prints one line of JSON. With ``--open-mfdataset``, only
times ``xr.open_mfdataset`` of the files (for a vz venv without dask).

    python peer_mfdataset.py FOLDER [--open-mfdataset]
"""

from __future__ import annotations

import json
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import xarray as xr
from kerchunk.combine import MultiZarrToZarr
from kerchunk.hdf import SingleHdf5ToZarr
from obstore.store import LocalStore
from virtualizarr import open_virtual_mfdataset
from virtualizarr.parsers import HDFParser

from _mfworkload import N_FILES, SHAPE, file_paths, warm_best

with warnings.catch_warnings():
    # VirtualiZarr 2.8 re-exports obspec_utils' registry under a deprecation warning.
    warnings.simplefilter("ignore", DeprecationWarning)
    from virtualizarr.registry import ObjectStoreRegistry


def vzr_combine(urls: list[str], registry: ObjectStoreRegistry, parallel: Any) -> xr.Dataset:
    """With VirtualiZarr's default combine options (vz's "override"/"minimal" were no faster)."""
    ds: xr.Dataset = open_virtual_mfdataset(
        urls, registry=registry, parser=HDFParser(), parallel=parallel
    )
    assert ds["tas"].shape == (N_FILES * SHAPE[0], *SHAPE[1:]), ds["tas"].shape
    return ds


def kerchunk_combine(paths: list[str]) -> dict[str, Any]:
    singles = [SingleHdf5ToZarr(p, inline_threshold=300).translate() for p in paths]
    combined: dict[str, Any] = MultiZarrToZarr(
        singles, concat_dims=["time"], identical_dims=["lat", "lon"]
    ).translate()
    assert f"tas/{N_FILES * SHAPE[0] - 1}.0.0" in combined["refs"]
    return combined


def open_originals(paths: list[Path]) -> None:
    ds = xr.open_mfdataset([str(p) for p in paths], combine="by_coords")
    assert ds["tas"].shape == (N_FILES * SHAPE[0], *SHAPE[1:]), ds["tas"].shape
    ds.close()


def main() -> None:
    folder = Path(sys.argv[1])
    paths = file_paths(folder)
    if "--open-mfdataset" in sys.argv[2:]:
        json.dump({"open_mfdataset_s": warm_best(lambda: open_originals(paths))}, sys.stdout)
        print()
        return
    urls = [f"file://{p}" for p in paths]
    registry = ObjectStoreRegistry({f"file://{folder}/": LocalStore(folder)})
    with ThreadPoolExecutor() as pool:
        out: dict[str, float] = {
            "vzr_serial_s": warm_best(lambda: vzr_combine(urls, registry, False)),
            "vzr_threads_s": warm_best(lambda: vzr_combine(urls, registry, pool)),
        }
    out["kerchunk_s"] = warm_best(lambda: kerchunk_combine([str(p) for p in paths]))
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
