"""The 200 files of benchmarks/mfdataset.py on moto S3, 20 ms away: requests and wall times.

Uploads the 200 netCDF4 files (``benchmarks/_mfworkload.py``, 0.4 MB each, metadata
at the start) to moto's S3 server on loopback (``tests/s3_server.py``) and reads
them through a proxy adding ``--latency`` seconds to every request
(``tests/latency_proxy.py``), as an S3 client in the bucket's region sees S3. Prints,
counted at the proxy:

- GETs and HEADs per file for ``open_virtual_mfdataset`` (format detection, parse,
  coordinates loaded), serial and with ``--threads`` threads;
- the wall time of each, and the ratio;
- whether a few chunks read back through vz's `ManifestStore` equal
  ``xr.open_mfdataset`` of the local files.

    python benchmarks/s3_latency.py [--folder DIR] [--latency 0.02] [--threads 16]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # tests.s3_server lives in the repository, not in vz

from tests.latency_proxy import LatencyProxy
from tests.s3_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoS3Server, S3Bucket

import vzcore as vc
import vzxarray as vx
from _mfworkload import ensure_files, file_paths

CHECKED_STEPS = (0, 1, 2400, 4799)  # time steps compared with xarray: first, second, middle, last


class Servers:
    """moto's server and the latency proxy in a child process, so that their Python
    (moto answers each request in Python) does not share this process's GIL with vz's
    work being timed. The proxy's counts are asked through a pipe."""

    def __init__(self, latency: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, latency), daemon=True)
        self._process.start()
        self.moto_endpoint, self.proxy_endpoint = self._conn.recv()

    def ask(self, command: str) -> Any:
        self._conn.send(command)
        return self._conn.recv()

    def stop(self) -> None:
        self.ask("stop")
        self._process.join(timeout=10)

    def bucket(self, name: str) -> S3Bucket:
        """A new bucket (created with boto3 on moto directly, not through the proxy)."""
        bucket = S3Bucket(name, self.moto_endpoint, REGION, ACCESS_KEY_ID, SECRET_ACCESS_KEY)
        boto3_client(bucket).create_bucket(Bucket=name)
        return bucket


def _serve(conn: Connection, latency: float) -> None:
    with MotoS3Server() as server, LatencyProxy(server.endpoint, delay=latency) as proxy:
        conn.send((server.endpoint, proxy.endpoint))
        while True:
            command = conn.recv()
            if command == "stop":
                conn.send(None)
                return
            if command == "reset":
                proxy.reset()
                conn.send(None)
            elif command == "counts":
                conn.send((proxy.requests("GET"), proxy.requests("HEAD")))


def boto3_client(bucket: S3Bucket) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=bucket.endpoint,
        region_name=bucket.region,
        aws_access_key_id=bucket.access_key_id,
        aws_secret_access_key=bucket.secret_access_key,
        config=Config(s3={"addressing_style": "path"}),
    )


def upload(bucket: S3Bucket, paths: list[Path]) -> list[str]:
    """The files put straight to moto (not through the proxy); their s3:// URLs."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda p: bucket.put_file(f"mf/{p.name}", p), paths))


def registry_for(urls: list[str], bucket: S3Bucket, endpoint: str) -> vc.ObjectStoreRegistry:
    """``for_urls`` with the proxy as the S3 endpoint and the bucket's keys (as tests/s3_server)."""
    return vc.ObjectStoreRegistry.for_urls(
        urls,
        endpoint=endpoint,
        region=bucket.region,
        access_key_id=bucket.access_key_id,
        secret_access_key=bucket.secret_access_key,
        virtual_hosted_style_request=False,
        client_options={"allow_http": True, "timeout": "30s", "connect_timeout": "5s"},
    )


def timed_open(
    servers: Servers, urls: list[str], registry: vc.ObjectStoreRegistry, parallel: Any
) -> tuple[xr.Dataset, float, int, int]:
    """``open_virtual_mfdataset``: the dataset, seconds, GETs and HEADs it sent."""
    servers.ask("reset")
    start = time.perf_counter()
    combined = vx.open_virtual_mfdataset(urls, registry=registry, parallel=parallel)
    seconds = time.perf_counter() - start
    gets, heads = servers.ask("counts")
    return combined, seconds, gets, heads


def values_equal(combined: xr.Dataset, registry: vc.ObjectStoreRegistry, paths: list[Path]) -> bool:
    """A few time steps of ``tas`` through vz's ManifestStore against xr.open_mfdataset."""
    store = vc.ManifestStore(vx.group_from_dataset(combined), registry=registry)
    ours = zarr.open_array(store, path="tas", mode="r")
    with xr.open_mfdataset(paths, combine="by_coords") as expected:
        equal = all(
            np.array_equal(ours[step], expected["tas"][step].values) for step in CHECKED_STEPS
        )
        equal &= bool(np.array_equal(combined["lat"].values, expected["lat"].values))
        equal &= bool(np.array_equal(combined["time"].values, expected["time"].values))
    return equal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, help="keep the 200 files here for the next run")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per request")
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.folder or Path(scratch)
        written, seconds = ensure_files(folder, small=False)
        if written:
            print(f"wrote {written} files in {seconds:.1f} s")
        paths = file_paths(folder)
        servers = Servers(args.latency)
        try:
            bucket = servers.bucket("vz-latency")
            urls = upload(bucket, paths)
            registry = registry_for(urls, bucket, servers.proxy_endpoint)
            n = len(urls)
            size = sum(p.stat().st_size for p in paths) / n
            print(
                f"{n} netCDF4 files of {size / 1e6:.2f} MB on moto S3 (another process), "
                f"{args.latency * 1e3:.0f} ms a request (loopback proxy); "
                f"load: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
            )
            cpu = time.process_time()
            _, serial, gets, heads = timed_open(servers, urls, registry, None)
            cpu = time.process_time() - cpu
            print(
                f"  serial:      {serial:6.2f} s  {gets / n:.2f} GETs, {heads / n:.2f} HEADs "
                f"a file ({serial / n * 1e3:.0f} ms a file, {cpu / n * 1e3:.0f} ms of CPU here)"
            )
            with ThreadPoolExecutor(max_workers=args.threads) as pool:
                combined, threaded, gets, heads = timed_open(servers, urls, registry, pool)
            print(
                f"  {args.threads} threads: {threaded:6.2f} s  {gets / n:.2f} GETs, "
                f"{heads / n:.2f} HEADs a file"
            )
            print(f"  serial / {args.threads} threads: {serial / threaded:.1f}x")
            print(
                f"  time steps {list(CHECKED_STEPS)} of tas, lat and time equal "
                f"xr.open_mfdataset's: {values_equal(combined, registry, paths)}"
            )
        finally:
            servers.stop()


if __name__ == "__main__":
    main()
