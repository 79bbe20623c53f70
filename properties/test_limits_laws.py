"""`json_depth` (the vectorised pre-scan before ``json.loads``) equals the parsed depth."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vzcore.limits import json_depth

# ``import vzcore.limits as m`` would give the function vzcore re-exports under that name.
limits_module = importlib.import_module("vzcore.limits")

# Strings full of what the scan must see through: brackets, quotes, backslash runs.
_TRICKY_TEXT = st.text(alphabet='[]{}"\\ab\u00e9\u4e2d', max_size=12)

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | _TRICKY_TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_TRICKY_TEXT, children, max_size=4)
    ),
    max_leaves=40,
)


def _nesting(value: Any) -> int:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max((_nesting(v) for v in value), default=0)
    return 0


@given(value=JSON_VALUES, ascii_only=st.booleans(), indent=st.sampled_from([None, 1]))
def test_json_depth_is_the_depth_of_the_parsed_value(
    value: Any, ascii_only: bool, indent: int | None
) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, indent=indent).encode()
    assert json_depth(text) == _nesting(value)


@given(value=JSON_VALUES, block=st.integers(1, 16))
def test_json_depth_does_not_depend_on_the_block_size(value: Any, block: int) -> None:
    text = json.dumps(value).encode()
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(limits_module, "_BLOCK", block)
        assert json_depth(text) == _nesting(value)
