"""How the HDF5 walk meets links: it follows those inside the file and never leaves it.

HDF5 resolves an external link by opening the named file from the local disk, whatever
store the parent file came from, and a virtual dataset (VDS) or external raw storage
(``H5D_EXTERNAL``) reads its values from other files the same way. vz reads only the
sources of its registry, so none of these is ever dereferenced: a group's links are
read with ``H5Lget_info``/``H5Lget_val`` (which do not traverse them), hard links are
opened with ``H5Oopen``, and soft links are resolved here one path component at a
time, so that a soft link passing through an external link is caught too. As a
second line of defence every open uses a link access property list whose external
link file access reads an empty buffer: should HDF5 ever traverse an external link
for vz, the target file's bytes are not read.

Soft and hard links inside the file are followed as netCDF-C and h5netcdf follow
them: a dataset or group linked under two names appears under both. A link back to
an ancestor group (a cycle) is refused with `LinkCycleError`; a soft link that
resolves to nothing (dangling, or a loop of soft links) is left out with a
`SkippedLinkWarning`, as h5py leaves it out of a group's members.
"""

from __future__ import annotations

import io
import posixpath
from collections.abc import Callable, Sequence
from typing import Any, Literal

import attrs

from vzcore.parsers.hdf5_filters import HDF5UnsupportedError

__all__ = [
    "MAX_GROUP_DEPTH",
    "MAX_MEMBERS",
    "ExternalLinkError",
    "ExternalLinks",
    "ExternalStorageError",
    "HDF5LimitError",
    "LinkCycleError",
    "Member",
    "OutsideStorageError",
    "SkippedLinkWarning",
    "VirtualDatasetError",
    "Walker",
    "object_address",
    "outside_storage",
    "refuse_storage",
]

ExternalLinks = Literal["error", "skip"]

MAX_GROUP_DEPTH = 256
"""Groups nested deeper than this under the parsed group are refused (`HDF5LimitError`)."""
MAX_MEMBERS = 1 << 20
"""A group tree with more arrays and groups than this (counting every name a shared
group is linked under) is refused (`HDF5LimitError`)."""
# HDF5's own bound on soft links followed in a row (H5L_NUM_LINKS).
_MAX_SOFT_HOPS = 16


class ExternalLinkError(HDF5UnsupportedError):
    """A link leads to another file (an HDF5 external link), which vz never opens.

    ``link`` is the link's path in the file; ``target_file`` and ``target_path`` name
    where it points.
    """

    def __init__(
        self, message: str, *, url: str, link: str, target_file: str, target_path: str
    ) -> None:
        super().__init__(message)
        self.url, self.link = url, link
        self.target_file, self.target_path = target_file, target_path


class VirtualDatasetError(HDF5UnsupportedError):
    """A virtual dataset (VDS) maps regions of other datasets; vz cannot reference it.

    ``source_files`` lists the files its mappings name (``"."`` is the file itself).
    """

    def __init__(
        self, message: str, *, url: str, variable: str, source_files: Sequence[str]
    ) -> None:
        super().__init__(message)
        self.url, self.variable = url, variable
        self.source_files: tuple[str, ...] = tuple(source_files)


class ExternalStorageError(HDF5UnsupportedError):
    """A dataset's values are stored in external raw files (``H5D_EXTERNAL``)."""

    def __init__(self, message: str, *, url: str, variable: str, files: Sequence[str]) -> None:
        super().__init__(message)
        self.url, self.variable = url, variable
        self.files: tuple[str, ...] = tuple(files)


OutsideStorageError = VirtualDatasetError | ExternalStorageError


class LinkCycleError(HDF5UnsupportedError):
    """A link leads back to a group that contains it, so the group tree would be infinite."""

    def __init__(self, message: str, *, url: str, link: str, target: str) -> None:
        super().__init__(message)
        self.url, self.link, self.target = url, link, target


class HDF5LimitError(HDF5UnsupportedError):
    """The file's group tree is deeper (`MAX_GROUP_DEPTH`) or larger (`MAX_MEMBERS`) than vz reads."""

    def __init__(self, message: str, *, url: str, path: str, limit: int) -> None:
        super().__init__(message)
        self.url, self.path, self.limit = url, path, limit


class SkippedLinkWarning(UserWarning):
    """A member was left out: a dangling soft link, or (with ``external_links="skip"``)
    an external link, a virtual dataset or a dataset in external raw files."""

    def __init__(self, message: str, *, url: str, link: str) -> None:
        super().__init__(message)
        self.url, self.link = url, link


@attrs.frozen
class Member:
    """A group member the walk follows: its name, its path in the file, the h5py object.

    ``address``: where its object header is, when a hard link names it (else None).
    """

    name: str
    path: str
    node: Any
    address: int | None = None


class _Unresolved(Exception):
    """A soft link leads nowhere in the file."""


class _External(Exception):
    """A path passes through a link to another file (or of a kind HDF5 cannot follow here)."""

    def __init__(self, link: str, target_file: str, target_path: str) -> None:
        super().__init__(link)
        self.link, self.target_file, self.target_path = link, target_file, target_path


_NEVER_OPENED = (
    "vz reads only the sources of its registry, and HDF5 would open that file itself "
    "(from the local disk)"
)
_HINT = "drop it (drop_variables=) or leave such members out (HDFParser(external_links='skip'))"


def _warn(message: str, *, url: str, link: str) -> None:
    import warnings

    import vzcore

    # Attributed to the first caller outside vz, however deep in the walk the member was.
    outside = (posixpath.dirname(vzcore.__file__),)
    warnings.warn(
        SkippedLinkWarning(message, url=url, link=link), stacklevel=2, skip_file_prefixes=outside
    )


class Walker:
    """Opens a file's group members without ever leaving the file (one per parse).

    Holds the link access property list every open uses, and the file's root group,
    which absolute soft links start from.
    """

    def __init__(self, handle: Any, url: str, external_links: ExternalLinks) -> None:
        import h5py

        self.url = url
        self.external_links = external_links
        # Kept referenced: the file access list points at it for as long as it lives.
        self._empty = io.BytesIO()
        fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
        fapl.set_fileobj_driver(h5py.h5fd.fileobj_driver, self._empty)
        self.lapl = h5py.h5p.create(h5py.h5p.LINK_ACCESS)
        self.lapl.set_elink_fapl(fapl)
        self._root = h5py.h5o.open(handle.id, b"/", lapl=self.lapl)

    def open_path(self, path: str) -> tuple[str, Any]:
        """The object at ``path`` (from the root) and the path as given, normalised.

        Raises
        ------
        ExternalLinkError
            If the path passes through a link to another file.
        KeyError
            If nothing lives at ``path`` in the file.
        """
        normal = "/" + "/".join(p for p in path.split("/") if p not in ("", "."))
        try:
            object_id, _ = self._follow(self._root, "/", normal, 0)
        except _Unresolved as err:
            raise KeyError(path) from err
        except _External as err:
            raise self._external_error(
                f"{self.url}: group {path!r} passes through the external link {err.link!r} "
                f"to {err.target_file!r}:{err.target_path!r}; {_NEVER_OPENED}",
                normal,
                err,
            ) from None
        return normal, _high_level(object_id)

    def members(self, group: Any, path: str, wanted: Callable[[str, str], bool]) -> list[Member]:
        """The members of ``group`` (at ``path``) that the walk follows, in name order.

        Links for which ``wanted(name, path)`` is false are not even resolved. A
        dangling soft link is left out with a `SkippedLinkWarning`; an external link
        raises `ExternalLinkError`, or is left out with a warning under
        ``external_links="skip"``. A name that is not UTF-8 raises `UnicodeDecodeError`.
        """
        import h5py

        members: list[Member] = []
        for encoded in group.id:
            name = encoded.decode("utf-8")
            link_path = posixpath.join(path, name)
            if not wanted(name, link_path):
                continue
            address = None
            try:
                info = group.id.links.get_info(encoded, lapl=self.lapl)
                if info.type == h5py.h5l.TYPE_HARD:
                    object_id = h5py.h5o.open(group.id, encoded, lapl=self.lapl)
                    address = int(info.u)
                elif info.type == h5py.h5l.TYPE_SOFT:
                    target = group.id.links.get_val(encoded, lapl=self.lapl)
                    object_id = self._soft(group.id, path, link_path, target)
                    if object_id is None:
                        continue
                else:
                    raise _External(link_path, *_external_target(group.id, encoded, info))
            except _External as err:
                if err.link == link_path:
                    what = (
                        f"link {link_path!r} is an external link to "
                        f"{err.target_file!r}:{err.target_path!r}"
                    )
                else:
                    what = (
                        f"link {link_path!r} is a soft link through the external link {err.link!r} "
                        f"to {err.target_file!r}:{err.target_path!r}"
                    )
                self.refuse_external(f"{self.url}: {what}", link_path, err)
                continue
            members.append(
                Member(name=name, path=link_path, node=_high_level(object_id), address=address)
            )
        return members

    def refuse_external(self, what: str, link: str, err: _External) -> None:
        """Raise `ExternalLinkError` for ``what``, or warn under ``external_links="skip"``."""
        if self.external_links == "skip":
            _warn(f"{what}; left out (external_links='skip')", url=self.url, link=link)
            return
        raise self._external_error(f"{what}; {_NEVER_OPENED}; {_HINT}", link, err)

    def _external_error(self, message: str, link: str, err: _External) -> ExternalLinkError:
        return ExternalLinkError(
            message,
            url=self.url,
            link=link,
            target_file=err.target_file,
            target_path=err.target_path,
        )

    def _soft(self, group_id: Any, path: str, link_path: str, target: bytes) -> Any | None:
        text = target.decode("utf-8", "replace")
        try:
            object_id, _ = self._follow(group_id, path, text, 1)
        except _Unresolved as err:
            _warn(
                f"{self.url}: soft link {link_path!r} -> {text!r} resolves to nothing in the "
                f"file ({err}); left out",
                url=self.url,
                link=link_path,
            )
            return None
        return object_id

    def _follow(self, start: Any, start_path: str, target: str, hops: int) -> tuple[Any, str]:
        """The object a soft link's ``target`` names, from the group ``start``, and its path."""
        import h5py

        if hops > _MAX_SOFT_HOPS:
            raise _Unresolved(f"more than {_MAX_SOFT_HOPS} soft links in a row: a loop?")
        current, where = (self._root, "/") if target.startswith("/") else (start, start_path)
        for part in target.split("/"):
            if part in ("", "."):
                continue
            here = posixpath.join(where, part)
            encoded = part.encode("utf-8")
            if not isinstance(current, h5py.h5g.GroupID):
                raise _Unresolved(f"{where!r} is not a group")
            if not current.links.exists(encoded, lapl=self.lapl):
                raise _Unresolved(f"no {here!r}")
            info = current.links.get_info(encoded, lapl=self.lapl)
            if info.type == h5py.h5l.TYPE_HARD:
                current = h5py.h5o.open(current, encoded, lapl=self.lapl)
            elif info.type == h5py.h5l.TYPE_SOFT:
                value = current.links.get_val(encoded, lapl=self.lapl)
                current, here = self._follow(
                    current, where, value.decode("utf-8", "replace"), hops + 1
                )
            else:
                raise _External(here, *_external_target(current, encoded, info))
            where = here
        return current, where


def outside_storage(dataset: Any, url: str, path: str) -> OutsideStorageError | None:
    """Why a dataset's values live outside the file (VDS, external raw storage), or None."""
    import h5py

    plist = dataset.id.get_create_plist()
    where = f"{url}: variable {path!r}"
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        files = sorted({plist.get_virtual_filename(i) for i in range(plist.get_virtual_count())})
        return VirtualDatasetError(
            f"{where} is an HDF5 virtual dataset mapping regions of {files} "
            "('.' is this file); vz cannot reference it, nor loads it (that reads other files)",
            url=url,
            variable=path,
            source_files=files,
        )
    count = plist.get_external_count()
    if count:
        names = [plist.get_external(i)[0].decode("utf-8", "replace") for i in range(count)]
        return ExternalStorageError(
            f"{where} stores its values in the external raw files {names}; {_NEVER_OPENED}",
            url=url,
            variable=path,
            files=names,
        )
    return None


def refuse_storage(error: OutsideStorageError, external_links: ExternalLinks) -> None:
    """Raise ``error`` (from `outside_storage`), or warn under ``external_links="skip"``."""
    if external_links == "error":
        raise error
    _warn(f"{error}; left out (external_links='skip')", url=error.url, link=error.variable)


def object_address(node: Any) -> int:
    """Where an object lives in its file: the same for every link to it."""
    import h5py

    address: int = h5py.h5o.get_info(node.id).addr
    return address


def _high_level(object_id: Any) -> Any:
    """The h5py Group, Dataset or Datatype of a low-level object."""
    import h5py

    if isinstance(object_id, h5py.h5g.GroupID):
        return h5py.Group(object_id)
    if isinstance(object_id, h5py.h5d.DatasetID):
        return h5py.Dataset(object_id)
    return h5py.Datatype(object_id)


def _external_target(group_id: Any, encoded: bytes, info: Any) -> tuple[str, str]:
    """The (file, object path) an external link names; a user-defined link's class."""
    import h5py

    if info.type != h5py.h5l.TYPE_EXTERNAL:
        return f"<user-defined link class {info.type}>", ""
    target_file, target_path = group_id.links.get_val(encoded)
    return target_file.decode("utf-8", "replace"), target_path.decode("utf-8", "replace")
