"""The peers' side of benchmarks/writers.py: VirtualiZarr 2.8 writing 10M references.

Run by benchmarks/writers.py in the peers' venv; prints JSON.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

import icechunk
import numpy as np
import xarray as xr
from obstore.store import LocalStore
from virtualizarr import open_virtual_dataset
from virtualizarr.manifests import ChunkManifest, ManifestArray
from virtualizarr.manifests.utils import create_v3_array_metadata
from virtualizarr.parsers import KerchunkParquetParser
from virtualizarr.registry import ObjectStoreRegistry

from _workload import CHUNK_SHAPE, N_FILES, SHAPE, file_refs

skip_parse = "--skip-parse" in sys.argv
meta = create_v3_array_metadata(
    shape=SHAPE,
    data_type=np.dtype("float32"),
    chunk_shape=CHUNK_SHAPE,
    dimension_names=("time", "y", "x"),
)
arrays = []
for i in range(N_FILES):
    paths, offsets, lengths = file_refs(i)
    manifest = ChunkManifest.from_arrays(paths=paths, offsets=offsets, lengths=lengths)
    arrays.append(ManifestArray(metadata=meta, chunkmanifest=manifest))
combined = np.concatenate(arrays, axis=0)
del arrays
ds = xr.Dataset({"tas": xr.Variable(("time", "y", "x"), combined)})
folder = tempfile.mkdtemp(prefix="vz-peer-writers-")
out: dict[str, float] = {}

start = time.perf_counter()
ds.vz.to_kerchunk(f"{folder}/refs.parq", format="parquet")
out["parquet_s"] = time.perf_counter() - start

start = time.perf_counter()
ds.vz.to_kerchunk(f"{folder}/refs.json", format="json")
out["json_s"] = time.perf_counter() - start

config = icechunk.RepositoryConfig.default()
config.set_virtual_chunk_container(
    icechunk.VirtualChunkContainer(
        "s3://climate-archive-bucket/", icechunk.s3_store(region="us-east-1")
    )
)
repo = icechunk.Repository.create(icechunk.local_filesystem_storage(f"{folder}/repo"), config)
start = time.perf_counter()
session = repo.writable_session("main")
ds.vz.to_icechunk(session.store)
session.commit("references")
out["icechunk_s"] = time.perf_counter() - start

if not skip_parse:
    registry = ObjectStoreRegistry({f"file://{folder}": LocalStore(folder)})
    start = time.perf_counter()
    open_virtual_dataset(
        f"file://{folder}/refs.parq", registry=registry, parser=KerchunkParquetParser()
    )
    out["parquet_parse_s"] = time.perf_counter() - start
json.dump(out, sys.stdout)
print()
