"""Mutated real files of every format: a typed error naming the file, or a correct read.

The fast profile of issue 20's fuzz harness (`properties.fuzz`): each format's
contract sample, mutated (bit flips, truncation at structure boundaries, fields set
to huge values or to offsets past the end or back into the file, wrong types and
huge numbers in JSON, XML and parquet documents), parsed and read by vz in a
worker process under a time and a memory limit. The long profile is
``benchmarks/fuzz_long.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from properties import fuzz


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, fuzz.Seed]:
    return fuzz.make_seeds(tmp_path_factory.mktemp("fuzz-seeds"))


@pytest.fixture(scope="module")
def pool(
    seeds: dict[str, fuzz.Seed], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[fuzz.WorkerPool]:
    with fuzz.WorkerPool(seeds, Path(tmp_path_factory.mktemp("fuzz-work"))) as workers:
        yield workers


@pytest.mark.parametrize("fmt", fuzz.FORMATS)
def test_the_unmutated_sample_reads_equal_to_its_library(pool: fuzz.WorkerPool, fmt: str) -> None:
    assert pool.run(fmt, []) == ("equal", "")


@pytest.mark.parametrize("fmt", fuzz.FORMATS)
@settings(max_examples=max(settings().max_examples // 2, 10))
@given(data=st.data())
def test_a_mutated_file_is_a_typed_error_or_reads_like_its_library(
    pool: fuzz.WorkerPool, seeds: dict[str, fuzz.Seed], fmt: str, data: st.DataObject
) -> None:
    def draw(low: int, high: int) -> int:
        return data.draw(st.integers(low, high))

    ops = fuzz.draw_ops(draw, seeds[fmt])
    outcome, detail = pool.run(fmt, ops)
    assert outcome in fuzz.OUTCOMES
    assert outcome not in fuzz.FAILURES, f"{outcome}: {fuzz.describe(seeds[fmt], ops)}\n{detail}"
