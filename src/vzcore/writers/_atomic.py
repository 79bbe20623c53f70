"""Writing outputs whole or not at all: the previous output stays until the new one is complete.

A writer builds its output under a temporary name beside the target
(``.<name>.vz-tmp-<random>``: the same filesystem, so the final rename is atomic, and a
name no earlier crashed run can have left behind), flushes every file and folder of it
to disk, and renames it into place. A file replaces a file in one ``os.replace``; a
folder (or a change between file and folder) moves the previous output aside under
``.<name>.vz-old-<random>`` first and moves it back if the second rename fails.

Local paths and ``file://`` URLs are written so. An output that is one object
(Kerchunk JSON, the manifest parquet file of one array) may also be written to an
object-store URL (``s3://...``) whose store the caller's registry holds: it is built
in a local temporary folder and uploaded in one ``put`` (`staged_upload`), which an
object store applies whole or not at all, so a reader sees the previous object or the
new one and a failed upload leaves the previous one.

An output of several objects (a folder: Kerchunk parquet, a manifest parquet group)
goes to an object store in a manifest-last layout (`staged_folder_upload`): every
file is put before the one whose presence makes the prefix a store (``.zmetadata``,
``vz-group.json``), so a reader finds no store until it is whole. No sequence of puts
replaces a set of objects at once, so a prefix that already holds objects is refused
before anything is put; if a put fails (after the store's retries), the objects this
write put are deleted, the marker first. Icechunk repositories on object stores are
made atomic by Icechunk's own commit, which publishes a snapshot only after all its
chunks and manifests exist.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import attrs

from vzcore.errors import WriteError
from vzcore.urls import UnregisteredURLError, is_url, normalize_url

if TYPE_CHECKING:
    from vzcore.registry import ObjectStoreRegistry

__all__ = [
    "ObjectTarget",
    "failure_reason",
    "local_target",
    "object_target",
    "replace_path",
    "staged_folder_upload",
    "staged_output",
    "staged_upload",
    "temporary_sibling",
]

# Room for the prefix and suffix within a file name's 255-byte limit.
_NAME_KEPT = 200


def local_target(path: str | os.PathLike[str]) -> Path:
    """The local path a writer writes ``path`` to: a path, or a ``file://`` URL.

    Raises
    ------
    WriteError
        ``path`` is a URL of another scheme.
    """
    text = os.fspath(path)
    if not is_url(text):
        return Path(text)
    parts = urlsplit(text)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise WriteError(
            text,
            "this output is written to a local path or a file:// URL only",
        )
    return Path(unquote(parts.path))


def is_object_store_url(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a URL of a scheme other than ``file://`` (an object store)."""
    text = os.fspath(path)
    return is_url(text) and urlsplit(text).scheme != "file"


@attrs.frozen
class ObjectTarget:
    """Where an output object goes: its URL, and the obstore store and key that hold it."""

    url: str
    store: Any
    key: str


def object_target(
    path: str | os.PathLike[str], registry: ObjectStoreRegistry | None
) -> ObjectTarget:
    """The store and key of the object-store URL ``path``, from ``registry``.

    Raises
    ------
    WriteError
        No registry was given, none of its prefixes covers the URL, or its store
        there is not an obstore store (a reader of your own cannot be written to).
    """
    from vzcore.registry import ObstoreReader

    url = normalize_url(os.fspath(path))
    if registry is None:
        raise WriteError(url, "an object-store output needs registry= holding a store for its URL")
    try:
        reader, key = registry.resolve(url)
    except UnregisteredURLError as err:
        raise WriteError(url, str(err)) from err
    if not isinstance(reader, ObstoreReader) or reader.root is not None:
        raise WriteError(
            url, f"the registry's store for it ({type(reader).__name__}) is not an object store"
        )
    return ObjectTarget(url, reader.store, key)


@contextlib.contextmanager
def staged_upload(target: ObjectTarget) -> Iterator[Path]:
    """A local path to build the object at; when the block ends cleanly it is put at
    ``target`` in one request, which the store applies whole or not at all.

    On a failure, nothing is uploaded and the previous object is unchanged; an
    ``OSError`` of the local build and any error of the upload become a `WriteError`
    naming the URL.
    """
    import obstore

    with tempfile.TemporaryDirectory(prefix="vz-upload-") as folder:
        built = Path(folder) / "object"
        try:
            yield built
        except OSError as err:
            raise WriteError(target.url, failure_reason(err)) from err
        if not built.is_file():
            raise WriteError(target.url, "an object-store output must be one file, not a folder")
        try:
            obstore.put(target.store, target.key, built)
        except Exception as err:
            raise WriteError(
                target.url,
                f"the upload failed ({failure_reason(err)}); the previous object is kept",
            ) from err


@contextlib.contextmanager
def staged_folder_upload(target: ObjectTarget, marker: str) -> Iterator[Path]:
    """A local path to build a folder at; when the block ends cleanly its files are put
    under ``target``, each file named ``marker`` after all others (deepest first, the
    top one last), so the prefix reads as a store only once it is whole.

    Raises
    ------
    WriteError
        The prefix already holds objects (an existing folder store cannot be replaced
        atomically; nothing is put), the local build failed (``OSError``), or a put
        failed: then the objects this write put are deleted (best effort; the message
        names any that could not be) and the prefix holds no store.
    """
    import obstore

    prefix = target.key.rstrip("/")
    try:
        first = next(iter(obstore.list(target.store, prefix or None, chunk_size=1)), [])
    except Exception as err:
        raise WriteError(target.url, f"cannot list the prefix: {failure_reason(err)}") from err
    if first:
        raise WriteError(
            target.url,
            "it already holds objects, and an existing folder store on an object store "
            "cannot be replaced atomically; delete it first or write to a new URL",
        )
    with tempfile.TemporaryDirectory(prefix="vz-upload-") as folder:
        built = Path(folder) / "folder"
        try:
            yield built
        except OSError as err:
            raise WriteError(target.url, failure_reason(err)) from err
        if not _is_folder(built):
            raise WriteError(target.url, "a folder output was not built as a folder")
        put: list[str] = []
        for name in _upload_order(built, marker):
            key = f"{prefix}/{name}" if prefix else name
            put.append(key)  # a failed put may still have been stored
            try:
                obstore.put(target.store, key, built / name)
            except Exception as err:
                kept = _delete_objects(target.store, reversed(put))
                left = f"; could not delete {kept}" if kept else "; the objects put were deleted"
                raise WriteError(
                    target.url, f"the upload of {name} failed ({failure_reason(err)}){left}"
                ) from err


def _upload_order(folder: Path, marker: str) -> list[str]:
    """The files under ``folder`` (POSIX paths relative to it): every ``marker`` after
    the other files, deepest first, so that each marker follows what it describes."""
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    data = [n for n in names if n.rsplit("/", 1)[-1] != marker]
    markers = [n for n in names if n.rsplit("/", 1)[-1] == marker]
    return data + sorted(markers, key=lambda n: (-n.count("/"), n))


def _delete_objects(store: Any, keys: Iterable[str]) -> list[str]:
    """Delete ``keys`` one by one, ignoring missing ones; the keys that failed."""
    import obstore

    failed = []
    for key in keys:
        try:
            obstore.delete(store, key)
        except FileNotFoundError:
            pass
        except Exception:  # noqa: BLE001 (best effort: the caller reports the keys left)
            failed.append(key)
    return failed


def temporary_sibling(target: Path, kind: str = "tmp") -> Path:
    """A fresh hidden name in ``target``'s folder: ``.<name>.vz-<kind>-<random>``."""
    return target.with_name(f".{target.name[:_NAME_KEPT]}.vz-{kind}-{secrets.token_hex(6)}")


@contextlib.contextmanager
def staged_output(target: Path) -> Iterator[Path]:
    """The path to build ``target`` at; when the block ends cleanly, it replaces ``target``.

    The caller creates a file or a folder at the yielded path. On a failure anywhere,
    the temporary output and any parent folders made for it are removed and ``target``
    is left as it was; an ``OSError`` (a full disk, no permission) becomes a
    `WriteError` naming ``target``, other exceptions pass through unchanged.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out.txt"
    >>> with staged_output(target) as built:
    ...     _ = built.write_text("whole")
    >>> target.read_text()
    'whole'
    """
    made = _make_parents(target)
    built = temporary_sibling(target)
    try:
        yield built
        _sync_tree(built)
        replace_path(built, target)
    except OSError as err:
        _remove(built)
        _remove_empty(made)
        raise WriteError(target, failure_reason(err)) from err
    except BaseException:
        _remove(built)
        _remove_empty(made)
        raise


def replace_path(built: Path, target: Path) -> None:
    """Move a fully built file or folder onto ``target``, replacing what was there.

    If the move fails, ``target`` holds the previous output again (or still nothing).

    Raises
    ------
    WriteError
        A rename failed; the message says the previous output was kept, or where it
        is if it could not be moved back.
    """
    if not _is_folder(target) and not _is_folder(built):
        # One atomic step: a reader sees the old file or the new one.
        _rename(built, target, replace=True)
    elif not os.path.lexists(target):
        _rename(built, target, replace=False)
    else:
        aside = temporary_sibling(target, "old")
        _rename(target, aside, replace=False, attempt=f"move {target} aside")
        try:
            os.rename(built, target)
        except BaseException as err:
            _restore(aside, target, err)
            if isinstance(err, Exception):
                raise WriteError(
                    target, f"{failure_reason(err)}; the previous output is kept"
                ) from err
            raise
        _remove(aside)
    _sync_folder(target.parent)


def _rename(source: Path, target: Path, *, replace: bool, attempt: str = "") -> None:
    try:
        (os.replace if replace else os.rename)(source, target)
    except Exception as err:
        reason = failure_reason(err)
        raise WriteError(target, f"cannot {attempt}: {reason}" if attempt else reason) from err


def _restore(aside: Path, target: Path, cause: BaseException) -> None:
    """Put the previous output back at ``target`` after a failed replace."""
    try:
        os.rename(aside, target)
    except OSError as second:
        raise WriteError(
            target,
            f"{failure_reason(cause)}; the previous output could not be moved back "
            f"({failure_reason(second)}) and is at {aside}",
        ) from cause


def _is_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def failure_reason(err: BaseException) -> str:
    """What went wrong, in one line: an OSError's text and file, else the first line."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror if err.filename is None else f"{err.strerror}: {err.filename}"
    # Icechunk's messages carry a multi-line Rust context after the first line.
    lines = str(err).strip().splitlines()
    return lines[0].strip() if lines else type(err).__name__


def _make_parents(target: Path) -> list[Path]:
    """Create ``target``'s missing parent folders; the ones made, deepest first."""
    missing = [p for p in target.parents if not p.exists()]
    existing = next((p for p in target.parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise WriteError(target, f"{existing} is a file, not a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        _remove_empty(missing)
        raise WriteError(target, failure_reason(err)) from err
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _remove(path: Path) -> None:
    if _is_folder(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _sync_tree(path: Path) -> None:
    """Flush every file and folder under ``path`` to disk, so a crash keeps it whole."""
    if not _is_folder(path):
        _sync_file(path)
        return
    for folder, _, files in os.walk(path):
        for name in files:
            _sync_file(Path(folder, name))
        _sync_folder(Path(folder))


def _sync_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sync_folder(path: Path) -> None:
    # A folder's entries (the renamed names) are durable only once the folder is
    # synced; some systems cannot open a folder for that, and then skip it.
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(descriptor)
    finally:
        os.close(descriptor)
