"""Laws of the byte-range layer: coalescing never changes the bytes a caller gets."""

import io
import itertools
from collections.abc import Sequence

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import vzcore as vc
from vzcore.byteranges import RangeFile, ReadPolicy, coalesced, source

DATA = bytes(np.random.default_rng(7).integers(0, 256, 5000, dtype=np.uint8))


class MemoryReader:
    """Serves ``DATA``; records the requests."""

    def __init__(self) -> None:
        self.requests: list[tuple[int, int]] = []

    def get_ranges(self, path: str, *, starts: Sequence[int], ends: Sequence[int]) -> list[bytes]:
        self.requests += zip(starts, ends, strict=True)
        return [DATA[s:e] for s, e in zip(starts, ends, strict=True)]

    async def get_ranges_async(
        self, path: str, *, starts: Sequence[int], ends: Sequence[int]
    ) -> list[bytes]:
        return self.get_ranges(path, starts=starts, ends=ends)

    def get(self, path: str) -> bytes:
        return DATA

    async def get_async(self, path: str) -> bytes:
        return DATA

    def size(self, path: str) -> int:
        return len(DATA)


ranges = st.lists(
    st.tuples(st.integers(0, len(DATA)), st.integers(0, 600)).map(
        lambda t: (t[0], min(t[0] + t[1], len(DATA)))
    ),
    max_size=30,
)
policies = st.builds(
    ReadPolicy,
    coalesce=st.integers(0, 2000),
    max_request=st.integers(1, 6000),
    concurrency=st.integers(1, 8),
)


@given(ranges, policies)
def test_every_range_reads_its_own_bytes_whatever_the_policy(
    wanted: list[tuple[int, int]], policy: ReadPolicy
) -> None:
    reader = MemoryReader()
    file = source(vc.ObjectStoreRegistry({"memory://m/": reader}), "memory://m/f", policy=policy)
    starts, ends = [s for s, _ in wanted], [e for _, e in wanted]
    got = file.read_ranges(starts, ends)
    assert [bytes(b) for b in got] == [DATA[s:e] for s, e in wanted]
    # No more requests than ranges, and none of them overlap.
    spans = sorted(reader.requests)
    assert len(spans) <= len(wanted)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


@given(ranges, policies)
def test_requests_cover_their_ranges_and_respect_the_gap(
    wanted: list[tuple[int, int]], policy: ReadPolicy
) -> None:
    starts = np.array([s for s, _ in wanted], dtype=np.int64)
    ends = np.array([e for _, e in wanted], dtype=np.int64)
    request_starts, request_ends, owner = coalesced(starts, ends, policy)
    assert np.all(request_starts[owner] <= starts)
    assert np.all(ends <= request_ends[owner])
    # Requests never overlap, and there are never more requests than ranges.
    assert np.all(request_starts[1:] >= request_ends[:-1])
    assert len(request_starts) <= len(wanted)
    if policy.max_request >= len(DATA):  # no size cap: gaps wider than the policy's only
        assert np.all(request_starts[1:] - request_ends[:-1] > policy.coalesce)


@given(
    st.lists(st.tuples(st.integers(-100, 5100), st.integers(0, 1500)), max_size=40),
    st.integers(1, 2048),
    st.integers(1, 4),
)
def test_the_file_view_reads_like_bytes_io(
    steps: list[tuple[int, int]], block_size: int, cache_blocks: int
) -> None:
    view = RangeFile(
        source(vc.ObjectStoreRegistry({"memory://m/": MemoryReader()}), "memory://m/f"),
        block_size=block_size,
        cache_blocks=cache_blocks,
        whole_below=0,
    )
    plain = io.BytesIO(DATA)
    for where, count in steps:
        assert view.seek(max(where, 0)) == plain.seek(max(where, 0))
        assert view.read(count) == plain.read(count)
        assert view.tell() == plain.tell()
