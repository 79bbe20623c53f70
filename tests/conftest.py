"""Factories shared by the example tests: virtual arrays with predictable references."""

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pytest
from tests.s3_server import MotoS3Server, S3Bucket, running_server

import vzcore as vc

type VirtualArrayFactory = Callable[..., vc.VirtualArray]


def virtual_array(
    shape: Sequence[int],
    chunk_shape: Sequence[int],
    *,
    paths: str | Sequence[str] = "file:///data.nc",
    dtype: str = "f4",
    first_offset: int = 0,
    chunk_nbytes: int = 100,
    missing: Sequence[int] = (),
    **metadata: Any,
) -> vc.VirtualArray:
    """A virtual array whose chunk ``i`` (C order) is ``chunk_nbytes`` bytes at
    ``first_offset + i * chunk_nbytes`` in ``paths[i % len(paths)]``.

    Chunks whose row is listed in ``missing`` have no reference; ``metadata`` goes to
    `ArrayMetadata.create` (fill_value, codecs, dimension_names, attributes).
    """
    meta = vc.ArrayMetadata.create(shape=shape, chunk_shape=chunk_shape, dtype=dtype, **metadata)
    grid = meta.grid_shape
    n_chunks = math.prod(grid)
    files = [paths] if isinstance(paths, str) else list(paths)
    row_paths = np.array([files[i % len(files)] for i in range(n_chunks)], dtype=object)
    row_paths[list(missing)] = ""
    offsets = first_offset + np.arange(n_chunks, dtype=np.int64) * chunk_nbytes
    lengths = np.full(n_chunks, chunk_nbytes, dtype=np.int64)
    manifest = vc.ChunkManifest.from_arrays(
        paths=row_paths.reshape(grid), offsets=offsets.reshape(grid), lengths=lengths.reshape(grid)
    )
    return vc.VirtualArray(meta, manifest)


@pytest.fixture
def make_virtual() -> VirtualArrayFactory:
    """`virtual_array`, as a fixture so that every test module can build arrays."""
    return virtual_array


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoS3Server]:
    """moto's S3 server on a free loopback port, for the whole session."""
    with running_server() as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: MotoS3Server) -> Iterator[S3Bucket]:
    """A fresh, empty bucket on `s3_server`, deleted after the test."""
    bucket = s3_server.create_bucket()
    yield bucket
    s3_server.delete_bucket(bucket.name)
