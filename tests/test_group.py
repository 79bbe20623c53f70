"""Examples for `vzcore.group.VirtualGroup`: names, lookup, walking, sizes."""

import pickle
from collections.abc import Callable

import attrs
import numpy as np
import pytest

import vzcore as vc
from vzcore import SourceFingerprint, VirtualGroup, VirtualizationError
from vzcore._frozen import FrozenDict

type Factory = Callable[..., vc.VirtualArray]


@pytest.fixture
def tree(make_virtual: Factory) -> VirtualGroup:
    """``/v``, ``/l``, ``/sub/w``, ``/sub/deep/z``, with attributes and sources."""
    return VirtualGroup(
        arrays={
            "v": make_virtual((4, 6), (2, 3), chunk_nbytes=10, missing=[3]),
            "l": vc.LoadedArray.from_numpy(np.arange(6, dtype="f4")),
        },
        groups={
            "sub": VirtualGroup(
                arrays={"w": make_virtual((4,), (2,), chunk_nbytes=7)},
                groups={
                    "deep": VirtualGroup(
                        arrays={"z": vc.LoadedArray.from_numpy(np.arange(5, dtype="i8"))}
                    )
                },
            )
        },
        attributes={"title": "demo", "levels": [1, 2]},
        sources={"file:///data.nc": SourceFingerprint(size=1000, etag="abc")},
    )


BAD_NAMES = ["", "a/b", "/", ".", "..", "a\\b", "a\x00b", "%2e%2e", "x%2Fy"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_array_names_are_validated(make_virtual: Factory, name: str) -> None:
    with pytest.raises(VirtualizationError) as info:
        VirtualGroup(arrays={name: make_virtual((2,), (2,))})
    assert str(info.value).startswith(f"invalid array name {name!r}")
    assert str(info.value).endswith("a name must be one path segment, not '', '.' or '..'")


@pytest.mark.parametrize("name", BAD_NAMES)
def test_group_names_are_validated(name: str) -> None:
    with pytest.raises(VirtualizationError) as info:
        VirtualGroup(groups={name: VirtualGroup()})
    assert str(info.value).startswith(f"invalid group name {name!r}")
    assert str(info.value).endswith("a name must be one path segment, not '', '.' or '..'")


def test_names_must_be_strings() -> None:
    with pytest.raises(VirtualizationError, match=r"^invalid group name 3"):
        VirtualGroup(groups={3: VirtualGroup()})  # type: ignore[dict-item]


def test_members_must_have_the_right_type() -> None:
    with pytest.raises(VirtualizationError) as info:
        VirtualGroup(arrays={"x": np.zeros(3)})  # type: ignore[dict-item]
    assert str(info.value) == "array 'x' must be a VirtualArray or LoadedArray, got ndarray"
    with pytest.raises(VirtualizationError) as info:
        VirtualGroup(groups={"g": {}})  # type: ignore[dict-item]
    assert str(info.value) == "group 'g' must be a VirtualGroup, got dict"


def test_an_array_and_a_group_cannot_share_a_name(make_virtual: Factory) -> None:
    with pytest.raises(VirtualizationError) as info:
        VirtualGroup(
            arrays={"x": make_virtual((2,), (2,)), "y": make_virtual((2,), (2,))},
            groups={"y": VirtualGroup(), "x": VirtualGroup()},
        )
    assert str(info.value) == "names used by both an array and a group: ['x', 'y']"


def test_getitem_follows_slash_separated_paths(tree: VirtualGroup) -> None:
    sub = tree.groups["sub"]
    assert tree["v"] is tree.arrays["v"]
    assert tree["sub"] is sub
    assert tree["sub/w"] is sub.arrays["w"]
    assert tree["/sub/deep/z"] is sub.groups["deep"].arrays["z"]
    assert tree["sub//deep/"] is sub.groups["deep"]
    assert tree[""] is tree
    assert tree["/"] is tree


@pytest.mark.parametrize("path", ["nope", "sub/nope", "v/x", "sub/w/anything", "sub/deep/z/q"])
def test_getitem_raises_key_error_for_missing_paths(tree: VirtualGroup, path: str) -> None:
    with pytest.raises(KeyError) as info:
        tree[path]
    assert info.value.args == (path,)


def test_walk_arrays_is_depth_first_with_paths(tree: VirtualGroup) -> None:
    walked = list(tree.walk_arrays())
    assert [path for path, _ in walked] == ["v", "l", "sub/w", "sub/deep/z"]
    assert all(tree[path] is array for path, array in walked)


def test_walk_groups_starts_at_the_root(tree: VirtualGroup) -> None:
    assert [path for path, _ in tree.walk_groups()] == ["", "sub", "sub/deep"]


def test_nbytes_adds_referenced_and_in_memory_bytes(tree: VirtualGroup) -> None:
    virtual = 3 * 10 + 2 * 7
    loaded = 6 * 4 + 5 * 8
    assert tree.nbytes == virtual + loaded
    assert VirtualGroup().nbytes == 0


def test_attributes_and_sources_are_frozen(tree: VirtualGroup) -> None:
    assert isinstance(tree.attributes, FrozenDict)
    assert tree.attributes == {"title": "demo", "levels": (1, 2)}
    assert isinstance(tree.sources, FrozenDict)
    assert tree.sources["file:///data.nc"] == SourceFingerprint(size=1000, etag="abc")
    with pytest.raises(TypeError):
        tree.arrays["new"] = tree.arrays["v"]  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        tree.attributes = FrozenDict()  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        tree.sources["file:///data.nc"].size = 1  # type: ignore[misc]


def test_groups_compare_by_value_and_pickle(tree: VirtualGroup) -> None:
    restored = pickle.loads(pickle.dumps(tree))
    assert restored == tree
    assert restored != tree.evolve(attributes={"title": "other"})


def test_evolve_leaves_the_original_alone(tree: VirtualGroup) -> None:
    smaller = tree.evolve(arrays={"v": tree.arrays["v"]})
    assert list(smaller.arrays) == ["v"]
    assert list(tree.arrays) == ["v", "l"]


def test_evolve_validates_again(tree: VirtualGroup) -> None:
    with pytest.raises(VirtualizationError, match="names used by both"):
        tree.evolve(groups={"v": VirtualGroup()})
