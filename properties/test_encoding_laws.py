"""The CF encoding is a value of the array: laws of `ArrayMetadata.encoding` and `vzcore.cf`.

- Splitting attributes into plain attributes and encoding loses nothing:
  ``stored_attributes`` gives back every attribute given.
- Dropping the attributes keeps the encoding (and so the decoded values).
- Every zarr document vz writes parses back to the same metadata.
- Joining arrays keeps their common encoding, and refuses differing ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from properties.strategies import array_metadata, concat_cases

import vzcore as vc
from vzcore.cf import is_encoding_key, split_attributes
from vzcore.zarr_documents import array_document

PLAIN = st.dictionaries(
    st.sampled_from(["long_name", "standard_name", "comment", "units"]),
    st.text(max_size=8),
    max_size=3,
)


@st.composite
def cf_attributes(draw: st.DrawFn, dtype: np.dtype[Any]) -> dict[str, Any]:
    """Plain attributes and some encoding keys, values fitting ``dtype``."""
    attributes: dict[str, Any] = draw(PLAIN)
    numbers = st.floats(-1e6, 1e6, allow_nan=False, width=32)
    if draw(st.booleans()):
        attributes["scale_factor"] = draw(numbers.filter(lambda x: x != 0))
    if draw(st.booleans()):
        attributes["add_offset"] = draw(numbers)
    if dtype.kind in "iu" and draw(st.booleans()):
        info = np.iinfo(dtype)
        attributes["_FillValue"] = draw(st.integers(int(info.min), int(info.max)))
    if dtype.kind == "f" and draw(st.booleans()):
        attributes["_FillValue"] = draw(st.floats(width=32) | st.just(float("nan")))
    if draw(st.booleans()):
        attributes["units"] = draw(
            st.sampled_from(["days since 2000-01-01", "K", "hours since 1970-01-01"])
        )
        if draw(st.booleans()):
            attributes["calendar"] = draw(st.sampled_from(["noleap", "standard", "360_day"]))
    return attributes


@st.composite
def encoded_metadata(draw: st.DrawFn) -> tuple[vc.ArrayMetadata, dict[str, Any]]:
    metadata = draw(array_metadata(max_ndim=2))
    attributes = draw(cf_attributes(metadata.dtype))
    return metadata.evolve(attributes=attributes), attributes


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return bool(a == b)


@given(encoded_metadata())
def test_splitting_loses_no_attribute(case: tuple[vc.ArrayMetadata, dict[str, Any]]) -> None:
    metadata, given_attributes = case
    stored = metadata.stored_attributes
    assert set(stored) == set(given_attributes)
    assert all(_same(stored[k], v) for k, v in given_attributes.items())
    assert not any(is_encoding_key(k, stored) for k in metadata.attributes)
    plain, encoding = split_attributes(given_attributes)
    assert set(metadata.encoding) == set(encoding)
    assert set(metadata.attributes) == set(plain)


@given(encoded_metadata())
def test_dropping_attributes_keeps_the_encoding(
    case: tuple[vc.ArrayMetadata, dict[str, Any]],
) -> None:
    metadata, _ = case
    dropped = metadata.evolve(attributes={})
    assert dropped.encoding == metadata.encoding
    assert dict(dropped.attributes) == {}


@given(encoded_metadata())
def test_written_documents_parse_back(case: tuple[vc.ArrayMetadata, dict[str, Any]]) -> None:
    """zarr v3 as vz serves and writes it (xarray's base64 ``_FillValue``), and the plain form."""
    metadata, _ = case
    array = vc.VirtualArray(metadata, vc.ChunkManifest.empty(metadata.grid_shape))
    assert vc.ArrayMetadata.from_zarr_v3(array_document(array)) == metadata
    assert vc.ArrayMetadata.from_zarr_v3(metadata.to_zarr_v3()) == metadata


@given(concat_cases(min_size=2, max_size=3), st.data())
def test_joining_keeps_a_common_encoding_and_refuses_others(
    case: tuple[list[vc.VirtualArray], int], data: st.DataObject
) -> None:
    arrays, axis = case
    encoding = data.draw(cf_attributes(arrays[0].dtype).map(lambda a: split_attributes(a)[1]))
    same = [vc.VirtualArray(a.metadata.evolve(encoding=encoding), a.manifest) for a in arrays]
    assert vc.concat(same, axis=axis).metadata.encoding == same[0].metadata.encoding
    odd = data.draw(st.integers(0, len(arrays) - 1))
    other = {**encoding, "scale_factor": encoding.get("scale_factor", 1.0) * 2 + 1}
    same[odd] = vc.VirtualArray(same[odd].metadata.evolve(encoding=other), same[odd].manifest)
    with pytest.raises(vc.EncodingMismatch, match="CF encoding"):
        vc.concat(same, axis=axis)
