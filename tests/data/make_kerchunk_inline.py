"""Regenerate ``kerchunk_inline.h5`` and ``kerchunk_inline.json`` (the real kerchunk's output).

Run with the peers' interpreter, which has kerchunk (``/tmp/vz-peers/bin/python``;
``bash /work/shared/peers/setup-venv.sh`` makes it)::

    /tmp/vz-peers/bin/python tests/data/make_kerchunk_inline.py [FOLDER]

``FOLDER`` defaults to this file's folder. The HDF5 file has one gzip-compressed
dataset ``x`` (400 float64, chunks of 50) whose chunks 3 and 6 are constant: they
compress to a few dozen bytes, under ``inline_threshold``, while the random chunks
stay references; so kerchunk writes one array mixing inline and referenced chunks.
The references name the data file relatively (``kerchunk_inline.h5``), so they are
read from whichever folder holds both files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np

NAME = "kerchunk_inline"
INLINE_THRESHOLD = 100


def values() -> np.ndarray:
    """The dataset's values: random, except two constant chunks."""
    x = np.random.default_rng(16).normal(size=400)
    x[150:200] = 0.0
    x[300:350] = 7.5
    return x


def make(folder: Path) -> dict[str, object]:
    from kerchunk.hdf import SingleHdf5ToZarr

    data = folder / f"{NAME}.h5"
    with h5py.File(data, "w", track_order=False) as f:
        f.create_dataset("x", data=values(), chunks=(50,), compression="gzip", track_times=False)
        f["x"].attrs["units"] = "m"
    with data.open("rb") as handle:
        refs: dict[str, object] = SingleHdf5ToZarr(
            handle, f"{NAME}.h5", inline_threshold=INLINE_THRESHOLD
        ).translate()
    (folder / f"{NAME}.json").write_text(json.dumps(refs, indent=1, sort_keys=True))
    return refs


if __name__ == "__main__":
    make(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)
