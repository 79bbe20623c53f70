"""The peers' side of benchmarks/parsers.py: VirtualiZarr 2.8 and kerchunk on the same files.

Run by benchmarks/parsers.py in the peers' venv (../shared/peers/setup-venv.sh) with the
folder the files were written to; prints one line of JSON.

    python peer_parsers.py FOLDER
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from kerchunk.hdf import SingleHdf5ToZarr
from obstore.store import LocalStore
from virtualizarr import open_virtual_dataset
from virtualizarr.parsers import HDFParser, NetCDF3Parser

from _workload import best_of

with warnings.catch_warnings():
    # VirtualiZarr 2.8 re-exports obspec_utils' registry under a deprecation warning.
    warnings.simplefilter("ignore", DeprecationWarning)
    from virtualizarr.registry import ObjectStoreRegistry


def warm_best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` runs after one untimed run."""
    fn()
    seconds, _ = best_of(fn, repeat=repeat)
    return seconds


def per_file(fn: Callable[[Path], object], paths: list[Path]) -> float:
    """Best time of one pass over ``paths``, divided by the number of files."""
    return warm_best_of(lambda: [fn(path) for path in paths]) / len(paths)


def netcdf3_figures(records: Path, registry: ObjectStoreRegistry) -> dict[str, float]:
    """VirtualiZarr's and kerchunk's netCDF3 parse times (both need scipy; none without)."""
    try:
        from kerchunk.netCDF3 import NetCDF3ToZarr

        NetCDF3ToZarr(str(records))
    except ImportError as err:
        print(f"netCDF3 peers skipped: {err}", file=sys.stderr)
        return {}
    return {
        "netcdf3_parse_s": warm_best_of(
            lambda: open_virtual_dataset(
                f"file://{records}",
                registry=registry,
                parser=NetCDF3Parser(),
                loadable_variables=[],
            )
        ),
        "netcdf3_kerchunk_s": warm_best_of(lambda: NetCDF3ToZarr(str(records)).translate()),
    }


def tiff_figures(cog: Path, registry: ObjectStoreRegistry) -> dict[str, float]:
    """virtual-tiff 0.5 (VirtualiZarr's TIFF parser, full resolution only) and kerchunk."""
    out: dict[str, float] = {}
    try:
        from virtual_tiff import VirtualTIFF
    except ImportError as err:
        print(f"TIFF peers: virtual-tiff skipped: {err}", file=sys.stderr)
    else:
        url = f"file://{cog}"
        out["tiff_vt_s"] = warm_best_of(
            lambda: open_virtual_dataset(url, registry=registry, parser=VirtualTIFF(ifd=0)),
            repeat=30,
        )
    try:
        from kerchunk.tiff import tiff_to_zarr
    except ImportError as err:
        print(f"TIFF peers: kerchunk.tiff skipped: {err}", file=sys.stderr)
    else:
        out["tiff_kerchunk_s"] = warm_best_of(lambda: tiff_to_zarr(str(cog)), repeat=30)
    return out


def main() -> None:
    folder = Path(sys.argv[1])
    registry = ObjectStoreRegistry({f"file://{folder}/": LocalStore(folder)})
    small = sorted((folder / "small").glob("*.nc"))
    small_registry = ObjectStoreRegistry({f"file://{folder}/small/": LocalStore(folder / "small")})
    big = folder / "big.nc"
    records = folder / "records.nc"

    def vzr_open(path: Path, reg: ObjectStoreRegistry, **options: object) -> object:
        return open_virtual_dataset(f"file://{path}", registry=reg, parser=HDFParser(), **options)

    out: dict[str, float] = {
        "big_parse_s": warm_best_of(lambda: vzr_open(big, registry, loadable_variables=[])),
        "big_kerchunk_s": warm_best_of(
            lambda: SingleHdf5ToZarr(str(big), inline_threshold=300).translate()
        ),
        "small_parse_s": per_file(
            lambda p: vzr_open(p, small_registry, loadable_variables=[]), small
        ),
        "small_open_s": per_file(lambda p: vzr_open(p, small_registry), small),
        "small_kerchunk_s": per_file(
            lambda p: SingleHdf5ToZarr(str(p), inline_threshold=300).translate(), small
        ),
    }
    out.update(netcdf3_figures(records, registry))
    if (folder / "cog.tif").exists():
        out.update(tiff_figures(folder / "cog.tif", registry))
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
