"""The peers' side of benchmarks/algebra.py: VirtualiZarr 2.8 on the same workload.

Run by benchmarks/algebra.py in the peers' venv (../shared/peers/setup-venv.sh); prints JSON.
"""

from __future__ import annotations

import gc
import json
import sys
from functools import partial

import numpy as np
import xarray as xr
from virtualizarr.manifests import ChunkManifest, ManifestArray
from virtualizarr.manifests.utils import create_v3_array_metadata

from _workload import CHUNK_SHAPE, N_FILES, SHAPE, best_of, file_refs, rss_bytes

meta = create_v3_array_metadata(shape=SHAPE, data_type=np.dtype("float32"), chunk_shape=CHUNK_SHAPE)

gc.collect()
base = rss_bytes()
arrays = []
for i in range(N_FILES):
    paths, offsets, lengths = file_refs(i)
    manifest = ChunkManifest.from_arrays(paths=paths, offsets=offsets, lengths=lengths)
    arrays.append(ManifestArray(metadata=meta, chunkmanifest=manifest))

out: dict[str, float] = {}
out["concat_axis0_s"], result = best_of(partial(np.concatenate, arrays, axis=0))
out["concat_axis2_s"], _ = best_of(partial(np.concatenate, arrays, axis=2), repeat=1)
variables = [xr.Variable(("t", "y", "x"), a) for a in arrays]
out["xr_concat_axis0_s"], _ = best_of(partial(xr.Variable.concat, variables, dim="t"), repeat=1)
datasets = [xr.Dataset({"tas": v}) for v in variables]
out["xr_concat_datasets_s"], _ = best_of(partial(xr.concat, datasets, dim="t"))
del datasets
del variables, arrays, _
gc.collect()
n_refs = int(np.prod(result.manifest.shape_chunk_grid))
out["n_refs"] = n_refs
out["bytes_per_ref_rss"] = (rss_bytes() - base) / n_refs
out["rename_s"], _ = best_of(lambda: result.rename_paths(lambda p: p.replace("s3://", "gs://")))
json.dump(out, sys.stdout)
print()
