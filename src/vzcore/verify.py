"""Has a source file changed since it was virtualized? `verify` asks every one.

Parsers record what they saw of each file (`SourceFingerprint`: size, last-modified
time, ETag) in ``VirtualGroup.sources``; the manifest-parquet and Icechunk writers
keep them, and a Kerchunk writer keeps them in a sidecar. `verify` asks the stores
for each referenced file's fingerprint now, concurrently, and compares:

- *changed*: the size differs, or both fingerprints have an ETag (or a
  last-modified time) and it differs;
- *missing*: the object is gone;
- *unrecorded*: no fingerprint was recorded (references from elsewhere), so no
  change can be detected;
- *unreadable*: the store failed to answer (the error is given).

`ManifestStore(group, registry=..., check_sources=True)` applies the same rule
before it serves the first chunk of each file, and refuses the chunks of a file
that is not unchanged with `SourceChangedError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import attrs

from vzcore.algebra import referenced_paths
from vzcore.byteranges import DEFAULT_POLICY, ReadPolicy, SourceNotFoundError, source
from vzcore.errors import VirtualizationError
from vzcore.group import SourceFingerprint, VirtualGroup
from vzcore.registry import ObjectStoreRegistry

__all__ = [
    "SourceChangedError",
    "SourceCheck",
    "Verification",
    "change_of",
    "check_source",
    "recorded_sources",
    "verify",
]

Status = Literal["unchanged", "changed", "missing", "unrecorded", "unreadable"]


class SourceChangedError(VirtualizationError):
    """A source file changed (or vanished) since its references were made; ``url`` names it."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


@attrs.frozen
class SourceCheck:
    """What `verify` found for one source file."""

    url: str
    status: Status
    reason: str
    recorded: SourceFingerprint | None = None
    current: SourceFingerprint | None = None

    def __str__(self) -> str:
        return f"{self.status:<10} {self.url}" + (f": {self.reason}" if self.reason else "")


@attrs.frozen
class Verification:
    """Every referenced source file's `SourceCheck`, sorted by URL."""

    checks: tuple[SourceCheck, ...]

    @property
    def ok(self) -> bool:
        """True when every source is unchanged (an unrecorded one cannot be vouched for)."""
        return all(c.status == "unchanged" for c in self.checks)

    def with_status(self, *statuses: Status) -> tuple[SourceCheck, ...]:
        """The checks of these statuses."""
        return tuple(c for c in self.checks if c.status in statuses)

    def __iter__(self) -> Iterator[SourceCheck]:
        return iter(self.checks)

    def __len__(self) -> int:
        return len(self.checks)

    def __str__(self) -> str:
        counts = {s: len(self.with_status(s)) for s in _STATUSES}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        lines = [f"{len(self.checks)} source file(s): {summary or 'none'}"]
        lines += [str(c) for c in self.checks if c.status != "unchanged"]
        return "\n".join(lines)


_STATUSES: tuple[Status, ...] = ("unchanged", "changed", "missing", "unrecorded", "unreadable")


def change_of(recorded: SourceFingerprint, current: SourceFingerprint) -> str | None:
    """How ``current`` differs from ``recorded`` (None when it does not).

    Only what both fingerprints know is compared: size, ETag, last-modified time.

    >>> change_of(SourceFingerprint(size=10), SourceFingerprint(size=12, etag='"a"'))
    'its size was 10 bytes, is 12'
    >>> change_of(SourceFingerprint(size=10, etag='"a"'), SourceFingerprint(size=10)) is None
    True
    """
    if recorded.size is not None and current.size is not None and recorded.size != current.size:
        return f"its size was {recorded.size} bytes, is {current.size}"
    if recorded.etag and current.etag and recorded.etag != current.etag:
        return f"its ETag was {recorded.etag}, is {current.etag}"
    if (
        recorded.last_modified
        and current.last_modified
        and recorded.last_modified != current.last_modified
    ):
        return f"it was last modified at {recorded.last_modified}, now at {current.last_modified}"
    return None


def check_source(
    url: str,
    recorded: SourceFingerprint | None,
    registry: ObjectStoreRegistry,
    *,
    policy: ReadPolicy = DEFAULT_POLICY,
) -> SourceCheck:
    """The `SourceCheck` of one file: its store asked once (a HEAD request where it has one)."""
    if recorded is None:
        return SourceCheck(url, "unrecorded", "no fingerprint was recorded when it was parsed")
    try:
        current = source(registry, url, policy=policy).fingerprint()
    except SourceNotFoundError:
        return SourceCheck(url, "missing", "the object is gone", recorded)
    except VirtualizationError as err:
        return SourceCheck(url, "unreadable", str(err), recorded)
    change = change_of(recorded, current)
    if change is not None:
        return SourceCheck(url, "changed", change, recorded, current)
    return SourceCheck(url, "unchanged", "", recorded, current)


def recorded_sources(group: VirtualGroup) -> dict[str, SourceFingerprint]:
    """The fingerprints recorded in the group and all its subgroups, by URL."""
    found: dict[str, SourceFingerprint] = {}
    for _, node in group.walk_groups():
        found.update(node.sources)
    return found


def verify(
    group: VirtualGroup, registry: ObjectStoreRegistry, *, policy: ReadPolicy = DEFAULT_POLICY
) -> Verification:
    """Check every file the group references against the fingerprint recorded for it.

    The stores are asked concurrently (``policy.concurrency`` at once). A URL the
    registry does not cover raises `UnregisteredURLError` before anything is asked.

    >>> import vzcore as vc
    >>> verify(vc.VirtualGroup(), vc.ObjectStoreRegistry()).ok
    True
    """
    recorded = recorded_sources(group)
    urls = sorted(set(referenced_paths(group)) | set(recorded))
    for url in urls:
        source(registry, url, policy=policy)  # refuse unregistered URLs before any request

    def check(url: str) -> SourceCheck:
        return check_source(url, recorded.get(url), registry, policy=policy)

    if len(urls) <= 1:
        return Verification(tuple(check(url) for url in urls))
    with ThreadPoolExecutor(max_workers=min(policy.concurrency, len(urls))) as pool:
        return Verification(tuple(pool.map(check, urls)))
