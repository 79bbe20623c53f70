"""Parse time of a netCDF classic file with 100,000 records x 5 record variables.

The parser reads the header with one ranged read and builds the 500,000 chunk
references with numpy (goal: <= 0.3 s, best of 3).

    python benchmarks/netcdf3.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import netCDF4
import numpy as np
from obstore.store import LocalStore

import vzcore as vc
from _workload import best_of
from vzcore.parsers import NetCDF3Parser

N_RECORDS = 100_000
RECORD_VARIABLES = {"tas": "f4", "pr": "f8", "flag": "i1", "count": "i2", "index": "i4"}


def make_file(path: Path) -> None:
    """Five record variables of a few values per record, plus a time coordinate."""
    with netCDF4.Dataset(path, "w", format="NETCDF3_64BIT_OFFSET") as ds:
        ds.createDimension("time", None)
        ds.createDimension("station", 3)
        ds.createVariable("station", "i4", ("station",))[:] = np.arange(3)
        for name, dtype in RECORD_VARIABLES.items():
            var = ds.createVariable(name, dtype, ("time", "station"))
            var[:N_RECORDS] = np.ones((N_RECORDS, 3), dtype=dtype)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "records.nc"
        make_file(path)
        registry = vc.ObjectStoreRegistry({f"file://{folder}/": LocalStore(folder)})
        parser = NetCDF3Parser()
        seconds, group = best_of(lambda: parser(f"file://{path}", registry))
        assert isinstance(group, vc.VirtualGroup)
        n_refs = sum(
            a.manifest.n_chunks for _, a in group.walk_arrays() if isinstance(a, vc.VirtualArray)
        )
        size_mib = path.stat().st_size / 2**20
        print(
            f"netCDF3 parse: {N_RECORDS:,} records x {len(RECORD_VARIABLES)} record variables "
            f"({size_mib:.1f} MiB, {n_refs:,} chunk references): {seconds:.3f} s "
            f"(best of 3; goal <= 0.3 s)"
        )


if __name__ == "__main__":
    main()
