"""`validate_compatible` fails exactly when the inputs really differ, and says which one."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import Phase, assume, given, settings
from hypothesis import strategies as st
from properties.strategies import (
    ConcatCase,
    PerturbedCase,
    concat_cases,
    noncanonical_nans,
    perturbed_concat_cases,
)

import vzcore as vc

# A known bug's test stops at its first failing example instead of shrinking it.
_NO_SHRINKING = (Phase.explicit, Phase.reuse, Phase.generate)

EXPECTED_ERROR: dict[str, type[vc.VirtualizationError]] = {
    "dtype": vc.DtypeMismatch,
    "chunk_shape": vc.ChunkShapeMismatch,
    "codecs": vc.CodecMismatch,
    "fill_value": vc.FillValueMismatch,
    "other_axis_length": vc.ShapeMismatch,
    "partial_chunk": vc.PartialChunkError,
    "dimension_names": vc.DimensionNameMismatch,
}


@given(concat_cases())
def test_compatible_arrays_always_pass(case: ConcatCase) -> None:
    arrays, axis = case
    vc.validate_compatible(arrays, axis=axis)
    vc.validate_compatible(arrays, axis=axis, operation="stack")


@given(perturbed_concat_cases())
def test_validation_fails_iff_one_array_really_differs(case: PerturbedCase) -> None:
    arrays, axis, index, field = case
    if field is None:
        vc.validate_compatible(arrays, axis=axis)
        return
    with pytest.raises(vc.VirtualizationError) as caught:
        vc.validate_compatible(arrays, axis=axis)
    error = caught.value
    assert type(error) is EXPECTED_ERROR[field], (field, str(error))
    assert str(error).startswith("cannot concatenate: ")
    # The changed array is named; when it is array 0, the others are the odd ones out
    # and array 0 is named as the reference ("arrays 1-3 have ..., array 0 has ...").
    assert _names(index, str(error)), str(error)
    assert error.problems
    assert all(problem in str(error) for problem in error.problems)


@given(perturbed_concat_cases())
def test_concat_refuses_what_validation_refuses(case: PerturbedCase) -> None:
    arrays, axis, _, field = case
    if field is None:
        assert vc.concat(arrays, axis=axis).ndim == arrays[0].ndim
        return
    with pytest.raises(EXPECTED_ERROR[field]):
        vc.concat(arrays, axis=axis)


@given(concat_cases(min_size=3, max_size=4), st.data())
def test_every_problem_is_reported_at_once(case: ConcatCase, data: st.DataObject) -> None:
    arrays, axis = case
    first, second = data.draw(
        st.lists(st.integers(0, len(arrays) - 1), min_size=2, max_size=2, unique=True)
    )
    meta = arrays[first].metadata
    retyped = meta.evolve(dtype="i1" if meta.dtype != np.int8 else "u1", fill_value=None)
    arrays[first] = vc.VirtualArray(retyped, arrays[first].manifest)
    meta = arrays[second].metadata
    # Another axis than the concat axis: along it chunk lengths may differ.
    other = (axis % meta.ndim + 1) % meta.ndim
    assume(other != axis % meta.ndim)
    rechunked = meta.evolve(
        chunk_grid=meta.chunk_grid.replace_axis(other, meta.chunk_shape[other] + 1)
    )
    arrays[second] = vc.VirtualArray(rechunked, vc.ChunkManifest.empty(rechunked.grid_shape))
    with pytest.raises(vc.DtypeMismatch) as caught:
        vc.validate_compatible(arrays, axis=axis)
    problems = caught.value.problems
    assert any(" dtype " in p and _names(first, p) for p in problems)
    assert any(" chunk shape " in p and _names(second, p) for p in problems)


def _names(index: int, message: str) -> bool:
    """Whether ``message`` names input ``index`` alone (its files may follow in parentheses)."""
    return re.search(rf"\barray {index}( \([^)]*\))? has", message) is not None


@given(concat_cases(min_size=2, max_size=2).filter(lambda c: c[0][0].ndim > 0))
def test_axis_out_of_range_is_a_shape_mismatch(case: ConcatCase) -> None:
    arrays, _ = case
    ndim = arrays[0].ndim
    for axis in (ndim, -ndim - 1):
        with pytest.raises(vc.ShapeMismatch, match="out of range"):
            vc.validate_compatible(arrays, axis=axis)


@settings(phases=_NO_SHRINKING)
@given(concat_cases(min_size=2, max_size=2), st.data())
def test_every_nan_fill_value_is_the_same_fill_value(case: ConcatCase, data: st.DataObject) -> None:
    (a, b), axis = case
    dtype = data.draw(st.sampled_from(["<f2", "<f4", "<f8"]).map(np.dtype))
    a = vc.VirtualArray(a.metadata.evolve(dtype=dtype, fill_value=float("nan")), a.manifest)
    nan = data.draw(noncanonical_nans(dtype))
    b = vc.VirtualArray(b.metadata.evolve(dtype=dtype, fill_value=nan), b.manifest)
    vc.validate_compatible([a, b], axis=axis)
