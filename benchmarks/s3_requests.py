"""How many S3 requests, and how many bytes, vz needs to virtualize a netCDF4 file on S3.

Starts moto's S3 server on loopback (``tests/s3_server.py``), uploads one netCDF4
file written with netCDF4-python (10 compressed variables, 320 chunks, CF
coordinates) and prints, counted at the server:

- GETs and bytes for `HDFParser` to parse it, and for ``open_virtual_dataset``
  (which also loads the coordinate variables);
- GETs and bytes to read every value back through `ManifestStore` (checked equal to
  netCDF4's reading of the local file);
- the same parse figures for kerchunk's ``SingleHdf5ToZarr``, run in the peers' venv
  (``VZ_PEER_PYTHON`` or /tmp/vz-peers) by benchmarks/peer_s3_requests.py when
  kerchunk does not import here.

    python benchmarks/s3_requests.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import netCDF4
import numpy as np
import zarr

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests.s3_server lives in the repository, not in vz

from tests.s3_server import MotoS3Server, S3Bucket, running_server

import vzcore as vc
import vzxarray as vx
from vzcore.parsers import HDFParser

DEFAULT_PEER_PYTHON = Path(tempfile.gettempdir()) / "vz-peers" / "bin" / "python"
SHAPE = (48, 90, 180)  # time, lat, lon
CHUNKS = (12, 45, 45)  # 4 x 2 x 4 = 32 chunks per variable
N_VARIABLES = 10
KEY = "data/ten_variables.nc"


def write_file(path: Path) -> Path:
    """10 float32 variables, zlib + shuffle, 32 chunks each; CF time/lat/lon coordinates."""
    rng = np.random.default_rng(0)
    nt, ny, nx = SHAPE
    lat, lon = np.linspace(-89.0, 89.0, ny), np.linspace(0.0, 358.0, nx)
    field = np.cos(np.deg2rad(lat))[:, None] * np.sin(np.deg2rad(lon))[None, :]
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.title = "s3 request benchmark"
        ds.createDimension("time", None)
        ds.createDimension("lat", ny)
        ds.createDimension("lon", nx)
        time_var = ds.createVariable("time", "f8", ("time",))
        time_var.units = "hours since 2000-01-01"
        time_var[:] = np.arange(nt) * 6.0
        ds.createVariable("lat", "f8", ("lat",))[:] = lat
        ds.createVariable("lon", "f8", ("lon",))[:] = lon
        for index in range(N_VARIABLES):
            var = ds.createVariable(
                f"var{index}",
                "f4",
                ("time", "lat", "lon"),
                zlib=True,
                shuffle=True,
                chunksizes=CHUNKS,
                least_significant_digit=2,
            )
            var.units = "1"
            noise = rng.standard_normal(SHAPE) * 0.1
            var[:] = (index + field[None] * np.arange(1, nt + 1)[:, None, None] + noise).astype(
                "f4"
            )
    return path


@dataclass(frozen=True)
class Requests:
    """What the server saw during one action."""

    gets: int
    heads: int
    sent: int  # GET response body bytes
    seconds: float

    def line(self, label: str) -> str:
        return (
            f"  {label:<46} {self.gets:>5} GETs {self.heads:>3} HEADs "
            f"{self.sent / 1e6:>8.2f} MB  ({self.seconds:.2f} s)"
        )


def counted[T](bucket: S3Bucket, action: Callable[[], T]) -> tuple[T, Requests]:
    """``action()``, and the requests the server received for it."""
    gets, heads, sent = bucket.get_count(), bucket.request_count("HEAD"), bucket.bytes_sent()
    start = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - start
    return result, Requests(
        gets=bucket.get_count() - gets,
        heads=bucket.request_count("HEAD") - heads,
        sent=bucket.bytes_sent() - sent,
        seconds=seconds,
    )


def read_all(group: vc.VirtualGroup, registry: vc.ObjectStoreRegistry, local: Path) -> bool:
    """Read every variable through a ManifestStore; True if all equal netCDF4's values."""
    store = vc.ManifestStore(group, registry=registry)
    equal = True
    with netCDF4.Dataset(local) as ds:
        ds.set_auto_maskandscale(False)
        for name, variable in ds.variables.items():
            values = zarr.open_array(store, path=name, mode="r")[...]
            equal &= bool(np.array_equal(values, variable[...]))
    return equal


def kerchunk_figures(server: MotoS3Server, local: Path) -> str:
    """kerchunk's parse, here if it imports, else in the peers' venv; one printed line."""
    bucket = server.create_bucket()
    try:
        url = bucket.put_file(KEY, local)
        try:
            from kerchunk.hdf import SingleHdf5ToZarr  # noqa: F401
        except ImportError:
            python = Path(os.environ.get("VZ_PEER_PYTHON", DEFAULT_PEER_PYTHON))
            if not python.exists():
                return "  kerchunk: not installed"
        else:
            python = Path(sys.executable)
        arguments = [bucket.endpoint, bucket.name, KEY, bucket.access_key_id]
        proc, requests = counted(
            bucket,
            lambda: subprocess.run(
                [str(python), str(HERE / "peer_s3_requests.py"), *arguments],
                input=bucket.secret_access_key,
                capture_output=True,
                text=True,
                check=False,
            ),
        )
        if proc.returncode != 0:
            return f"  kerchunk: failed: {proc.stderr.strip().splitlines()[-1:]}"
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        label = "kerchunk SingleHdf5ToZarr: parse"
        note = (
            f"\n    {result['chunk_refs']} chunk references for {url}; read through "
            f"{result['reader']}; {result['seconds']:.2f} s inside the subprocess"
        )
        return requests.line(label) + note
    finally:
        server.delete_bucket(bucket.name)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder, running_server() as server:
        local = write_file(Path(folder) / "ten_variables.nc")
        bucket = server.create_bucket()
        url = bucket.put_file(KEY, local)
        registry = bucket.registry()
        n_chunks = N_VARIABLES * int(np.prod(np.ceil(np.divide(SHAPE, CHUNKS))))
        print(
            f"{url}: {local.stat().st_size / 1e6:.2f} MB, {N_VARIABLES} variables, "
            f"{n_chunks} compressed chunks (moto S3 server at {bucket.endpoint})"
        )
        group, requests = counted(bucket, lambda: HDFParser()(url, registry))
        print(requests.line("vz HDFParser: parse"))
        _, requests = counted(
            bucket, lambda: vx.open_virtual_dataset(url, registry=registry, parser=HDFParser())
        )
        print(requests.line("vz open_virtual_dataset (loads coordinates)"))
        equal, requests = counted(bucket, lambda: read_all(group, registry, local))
        print(requests.line("vz ManifestStore: read every value"))
        print(f"    values equal netCDF4's: {equal}")
        print(kerchunk_figures(server, local))


if __name__ == "__main__":
    main()
