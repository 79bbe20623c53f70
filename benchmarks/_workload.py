"""Workloads shared by vz's benchmarks and the peers' side (numpy only, so both can import it)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

N_FILES = 1_000
GRID = (1, 100, 100)  # chunk grid of one file's array: 10,000 references
CHUNK_SHAPE = (1, 10, 10)
SHAPE = tuple(g * c for g, c in zip(GRID, CHUNK_SHAPE, strict=True))


def file_url(i: int) -> str:
    """A 72-character URL, the size of a real archive path."""
    return f"s3://climate-archive-bucket/cmip6/model-output/day/tas_day_{i:04d}_v2026.nc"


def file_refs(i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(paths, offsets, lengths) of one file: compressed chunks of 40-64 KiB, back to back."""
    rng = np.random.default_rng(i)
    n = int(np.prod(GRID))
    lengths = rng.integers(40_000, 65_536, size=n, dtype=np.uint64)
    offsets = np.uint64(4096) + np.concatenate([[0], np.cumsum(lengths[:-1])]).astype(np.uint64)
    paths = np.full(GRID, file_url(i), dtype=np.dtypes.StringDType())
    return paths, offsets.reshape(GRID), lengths.reshape(GRID)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def best_of(fn: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    """Smallest wall time of ``repeat`` runs, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


@contextmanager
def timer() -> Iterator[list[float]]:
    box: list[float] = []
    start = time.perf_counter()
    yield box
    box.append(time.perf_counter() - start)
