"""The peers' side of benchmarks/writers.py: VirtualiZarr 2.8 writing 10M references.

Run by benchmarks/writers.py in the peers' venv, once per writer so that each peak
RSS is that writer's: ``peer_writers.py {parquet,json,icechunk,parse} FOLDER`` (parse
reads the parquet store an earlier parquet run left in FOLDER); prints JSON.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np
import xarray as xr
from virtualizarr.manifests import ChunkManifest, ManifestArray
from virtualizarr.manifests.utils import create_v3_array_metadata

from _workload import CHUNK_SHAPE, N_FILES, SHAPE, file_refs


def dataset() -> xr.Dataset:
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
    return xr.Dataset({"tas": xr.Variable(("time", "y", "x"), combined)})


def main(name: str, folder: str) -> dict[str, float]:
    out: dict[str, float] = {}
    if name == "parse":
        from obstore.store import LocalStore
        from virtualizarr import open_virtual_dataset
        from virtualizarr.parsers import KerchunkParquetParser
        from virtualizarr.registry import ObjectStoreRegistry

        registry = ObjectStoreRegistry({f"file://{folder}": LocalStore(folder)})
        start = time.perf_counter()
        open_virtual_dataset(
            f"file://{folder}/refs.parq", registry=registry, parser=KerchunkParquetParser()
        )
    else:
        ds = dataset()
        start = time.perf_counter()
        if name == "parquet":
            ds.vz.to_kerchunk(f"{folder}/refs.parq", format="parquet")
        elif name == "json":
            ds.vz.to_kerchunk(f"{folder}/refs.json", format="json")
        else:
            import icechunk

            config = icechunk.RepositoryConfig.default()
            config.set_virtual_chunk_container(
                icechunk.VirtualChunkContainer(
                    "s3://climate-archive-bucket/", icechunk.s3_store(region="us-east-1")
                )
            )
            storage = icechunk.local_filesystem_storage(f"{folder}/repo")
            repo = icechunk.Repository.create(storage, config)
            start = time.perf_counter()
            session = repo.writable_session("main")
            ds.vz.to_icechunk(session.store)
            session.commit("references")
    out[f"{name}_s"] = time.perf_counter() - start
    out[f"{name}_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return out


if __name__ == "__main__":
    json.dump(main(sys.argv[1], sys.argv[2]), sys.stdout)
    print()
