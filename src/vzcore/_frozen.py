"""Immutable JSON-like containers for attributes and configurations."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any, TypeAlias

import numpy as np

JSON: TypeAlias = Any
"""A JSON-able value: None, bool, int, float, str, list/tuple, dict."""


_NAN = float("nan")


class FrozenDict[K, V](Mapping[K, V]):
    """A read-only, hashable mapping (keys keep their insertion order).

    >>> d = FrozenDict({"a": 1})
    >>> d["a"], len(d), d == {"a": 1}
    (1, 1, True)
    """

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[K, V] | None = None) -> None:
        self._data: dict[K, V] = dict(data) if data is not None else {}
        self._hash: int | None = None

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._data == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenDict({self._data!r})"

    def __reduce__(self) -> tuple[type[FrozenDict[K, V]], tuple[dict[K, V]]]:
        return (type(self), (self._data,))


def freeze_json(value: object) -> JSON:
    """Deep-convert a JSON-like value to immutable containers with plain Python scalars.

    dicts become `FrozenDict`, lists and tuples become tuples, numpy scalars and
    arrays become Python scalars and tuples, bytes become str (UTF-8, replacing
    undecodable bytes).

    >>> freeze_json({"a": [1, {"b": np.float32(2.5)}]})
    FrozenDict({'a': (1, FrozenDict({'b': 2.5}))})
    """
    if isinstance(value, FrozenDict):
        return value
    if isinstance(value, Mapping):
        return FrozenDict({str(k): freeze_json(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze_json(v) for v in value)
    if isinstance(value, np.ndarray):
        return freeze_json(value.tolist()) if value.ndim else freeze_json(value.item())
    if isinstance(value, np.generic):
        return freeze_json(value.item())
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and math.isnan(value):
        return _NAN  # one NaN object, so that equal attributes compare equal
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"not a JSON-like value: {value!r} of type {type(value).__name__}")


def thaw_json(value: JSON) -> JSON:
    """Deep-convert frozen containers back to dicts and lists (fresh, mutable copies)."""
    if isinstance(value, Mapping):
        return {k: thaw_json(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw_json(v) for v in value]
    return value


def canonical_json(value: JSON) -> str:
    """A deterministic JSON text of a value: sorted keys, no spaces, NaN allowed."""
    return json.dumps(thaw_json(value), sort_keys=True, separators=(",", ":"))
