"""`VirtualGroup`: named arrays, subgroups and attributes, like a zarr group."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote

import attrs

from vzcore._frozen import JSON, FrozenDict, freeze_json
from vzcore.array import AnyArray, LoadedArray, VirtualArray
from vzcore.display import group_html
from vzcore.errors import InvalidMetadataError, VirtualizationError
from vzcore.limits import check_limit
from vzcore.urls import is_url, normalize_url

__all__ = ["SourceFingerprint", "VirtualGroup", "check_node_path", "name_problem", "nest_arrays"]


@attrs.frozen(kw_only=True)
class SourceFingerprint:
    """What a parser saw of a source file, so a changed source can be detected later."""

    size: int | None = None
    last_modified: str | None = None
    """ISO 8601 timestamp with time zone."""
    etag: str | None = None

    def to_json(self) -> dict[str, JSON]:
        """The fingerprint as a JSON object (how manifest parquet and Icechunk keep it)."""
        return {"size": self.size, "last_modified": self.last_modified, "etag": self.etag}

    @classmethod
    def from_json(cls, value: object, *, where: str) -> SourceFingerprint:
        """A fingerprint from `to_json`'s form; `InvalidMetadataError` naming ``where`` else."""
        if not isinstance(value, Mapping) or not set(value) <= {"size", "last_modified", "etag"}:
            raise InvalidMetadataError(f"{where}: malformed source fingerprint {value!r}")
        size, modified, etag = (value.get(k) for k in ("size", "last_modified", "etag"))
        if not (
            (size is None or (isinstance(size, int) and not isinstance(size, bool) and size >= 0))
            and (modified is None or isinstance(modified, str))
            and (etag is None or isinstance(etag, str))
        ):
            raise InvalidMetadataError(f"{where}: malformed source fingerprint {value!r}")
        return cls(size=size, last_modified=modified, etag=etag)


def _to_arrays(value: Mapping[str, AnyArray] | None) -> FrozenDict[str, AnyArray]:
    arrays = FrozenDict(dict(value or {}))
    for name, array in arrays.items():
        _check_name(name, "array")
        if not isinstance(array, VirtualArray | LoadedArray):
            raise VirtualizationError(
                f"array {name!r} must be a VirtualArray or LoadedArray, got {type(array).__name__}"
            )
    return arrays


def _to_groups(value: Mapping[str, VirtualGroup] | None) -> FrozenDict[str, VirtualGroup]:
    groups = FrozenDict(dict(value or {}))
    for name, group in groups.items():
        _check_name(name, "group")
        if not isinstance(group, VirtualGroup):
            raise VirtualizationError(
                f"group {name!r} must be a VirtualGroup, got {type(group).__name__}"
            )
    return groups


def _to_sources(
    value: Mapping[str, SourceFingerprint] | None,
) -> FrozenDict[str, SourceFingerprint]:
    # Keyed by URL, as the manifests' paths are (plain paths become file:// URLs).
    return FrozenDict(
        {url if is_url(url) else normalize_url(url): f for url, f in (value or {}).items()}
    )


def _to_attributes(value: Mapping[str, Any] | None) -> FrozenDict[str, JSON]:
    frozen: FrozenDict[str, JSON] = freeze_json(value or {})
    return frozen


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot name an array or a group, or None if it can.

    A name is one path segment, as it is once a writer or a store makes it part of
    a path or URL: not empty, not ``.`` or ``..``, without ``/``, ``\\`` or NUL, also
    once percent-decoded (``%2e%2e`` is ``..`` to a URL).

    >>> name_problem("temperature") is None
    True
    >>> name_problem("%2E%2E")
    "'%2E%2E' (percent-decoded '..'): a name must be one path segment, not '', '.' or '..'"
    """
    if not isinstance(name, str):
        return f"{name!r} is not a string but {type(name).__name__}: a name must be a string"
    decoded = unquote(name)
    for form in dict.fromkeys((name, decoded)):
        said = repr(name) + ("" if form == name else f" (percent-decoded {form!r})")
        bad = sorted({c for c in "/\\\x00" if c in form})
        if form in ("", ".", "..") or bad:
            holds = f" holds {', '.join(map(repr, bad))}" if bad else ""
            return f"{said}{holds}: a name must be one path segment, not '', '.' or '..'"
    return None


def check_node_path(
    path: str, *, where: str, error: type[VirtualizationError] = VirtualizationError
) -> None:
    """Refuse a ``/``-separated array or group path a parser found, before reading by it.

    Every segment must be a name (`name_problem`) and the path at most
    ``max_group_depth`` deep.

    Raises
    ------
    VirtualizationError
        Of class ``error``, naming ``where`` and the path, for a segment that is no name.
    LimitExceededError
        For a path deeper than the current ``max_group_depth``.
    """
    segments = path.split("/")
    check_limit("max_group_depth", len(segments), where, f"the depth of the path {path[:80]!r}")
    for segment in segments:
        problem = name_problem(segment)
        if problem is not None:
            raise error(f"{where}: path {path!r}: {problem}")


def _check_name(name: str, kind: str) -> None:
    problem = name_problem(name)
    if problem is not None:
        raise VirtualizationError(f"invalid {kind} name {problem}")


@attrs.frozen(kw_only=True)
class VirtualGroup:
    """A tree of arrays: virtual or loaded arrays, subgroups, attributes.

    ``sources`` records a fingerprint per source file URL where a parser knew one.

    >>> VirtualGroup(attributes={"title": "demo"}).attributes["title"]
    'demo'
    """

    arrays: FrozenDict[str, AnyArray] = attrs.field(factory=FrozenDict, converter=_to_arrays)
    groups: FrozenDict[str, VirtualGroup] = attrs.field(factory=FrozenDict, converter=_to_groups)
    attributes: FrozenDict[str, JSON] = attrs.field(factory=FrozenDict, converter=_to_attributes)
    sources: FrozenDict[str, SourceFingerprint] = attrs.field(
        factory=FrozenDict, converter=_to_sources
    )

    def __attrs_post_init__(self) -> None:
        clash = sorted(set(self.arrays) & set(self.groups))
        if clash:
            raise VirtualizationError(f"names used by both an array and a group: {clash}")

    def __getitem__(self, path: str) -> AnyArray | VirtualGroup:
        """The array or group at a ``/``-separated path.

        Raises
        ------
        KeyError
            If nothing lives at ``path`` (a lookup, as in a mapping).
        """
        node: AnyArray | VirtualGroup = self
        for part in path.strip("/").split("/"):
            if not part:
                continue
            if not isinstance(node, VirtualGroup):
                raise KeyError(path)
            if part in node.arrays:
                node = node.arrays[part]
            elif part in node.groups:
                node = node.groups[part]
            else:
                raise KeyError(path)
        return node

    def walk_arrays(self, prefix: str = "") -> Iterator[tuple[str, AnyArray]]:
        """Every array of the tree with its path (``"a/b/var"``), depth first."""
        for name, array in self.arrays.items():
            yield prefix + name, array
        for name, group in self.groups.items():
            yield from group.walk_arrays(f"{prefix}{name}/")

    def walk_groups(self, prefix: str = "") -> Iterator[tuple[str, VirtualGroup]]:
        """This group (path ``""``) and every subgroup with its path."""
        yield prefix.rstrip("/"), self
        for name, group in self.groups.items():
            yield from group.walk_groups(f"{prefix}{name}/")

    def evolve(self, **changes: Any) -> VirtualGroup:
        """A copy with some fields replaced (the original is untouched)."""
        return attrs.evolve(self, **changes)

    def _repr_html_(self) -> str:
        return group_html(self)

    @property
    def nbytes(self) -> int:
        """Referenced bytes of virtual arrays plus in-memory bytes of loaded ones."""
        return sum(array.nbytes for _, array in self.walk_arrays())


def nest_arrays(
    arrays: Mapping[str, AnyArray],
    attributes_of: Callable[[str], Mapping[str, Any]],
    *,
    group_paths: Iterable[str] = (),
) -> VirtualGroup:
    """A group tree from arrays at ``a/b/name`` paths.

    ``attributes_of(group_path)`` gives each group's attributes (``""`` is the root);
    ``group_paths`` adds groups that hold no array.
    """
    paths = {""} | set(group_paths)
    for path in arrays:
        parts = path.split("/")[:-1]
        paths |= {"/".join(parts[:i]) for i in range(1, len(parts) + 1)}

    def children_of(base: str) -> Iterator[str]:
        return (p for p in paths if p and p.startswith(base) and "/" not in p[len(base) :])

    def build(prefix: str) -> VirtualGroup:
        base = f"{prefix}/" if prefix else ""
        own = {
            p[len(base) :]: a
            for p, a in arrays.items()
            if p.startswith(base) and "/" not in p[len(base) :]
        }
        return VirtualGroup(
            arrays=own,
            groups={c[len(base) :]: build(c) for c in sorted(children_of(base))},
            attributes=attributes_of(prefix),
        )

    return build("")
