"""URLs as vz stores them: every reference is a URL, local files as ``file://`` URLs.

`normalize_url` is the one function that turns any URL or path into its canonical
form, and the registry checks prefixes only on that form. The rules:

- a plain path becomes a ``file://`` URL of its absolute path;
- percent-escapes are decoded, then ``.`` and ``..`` segments and repeated slashes
  resolved, so ``%2e%2e`` cannot climb past the check;
- the canonical form escapes exactly ``%``, ``?`` and ``#`` in the path (as ``%25``,
  ``%3F``, ``%23``), so normalising twice changes nothing and no character of a
  file's name is read as URL syntax later;
- only ``http(s)://`` URLs have a query (kept as given); elsewhere ``?`` and ``#``
  belong to the path (a folder may be named ``x?``), and a fragment is refused;
- NUL and other control characters and backslashes are refused (`UnsafeURLError`).

`url_path` gives back the decoded path a store is asked for.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from vzcore.errors import VirtualizationError

__all__ = [
    "UnregisteredURLError",
    "UnsafeURLError",
    "from_fsspec_url",
    "fsspec_url",
    "is_url",
    "normalize_url",
    "quote_path",
    "quote_paths",
    "url_path",
]


class UnregisteredURLError(VirtualizationError):
    """A URL lies under no registered prefix (or tries to escape one)."""


class UnsafeURLError(UnregisteredURLError):
    """A URL holds characters no registered source can be named by (NUL, control, backslash)."""


_UNSAFE = re.compile(r"[\x00-\x1f\x7f\\]")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_QUERY_SCHEMES = frozenset({"http", "https"})


def is_url(text: str) -> bool:
    """Whether ``text`` names its scheme (``scheme://...``) rather than being a plain path."""
    return "://" in text


def _refuse_unsafe(text: str, given: str) -> None:
    found = _UNSAFE.search(text)
    if found is not None:
        char = found.group()
        if char == "\\":
            reason = "a backslash; vz reads no source named with one (use '/' as the separator)"
        else:
            reason = f"the control character {char!r}; vz reads no source named with one"
        raise UnsafeURLError(f"URL {given!r} holds {reason}")


_ESCAPES = (("%", "%25"), ("?", "%3F"), ("#", "%23"))


def quote_path(path: str) -> str:
    """``path`` (a file's decoded path or name) as the path part of a canonical URL.

    >>> quote_path("x?/50%.nc")
    'x%3F/50%25.nc'
    """
    for char, escape in _ESCAPES:
        path = path.replace(char, escape)
    return path


def quote_paths(paths: Any) -> Any:
    """`quote_path` of each string of an Arrow array, vectorised."""
    import pyarrow.compute as pc

    for char, escape in _ESCAPES:
        paths = pc.replace_substring(paths, char, escape)
    return paths


def _clean_path(path: str) -> str:
    """``path`` (decoded) with ``.``/``..`` and repeated slashes resolved, rooted at ``/``."""
    trailing = "/" if path.endswith("/") else ""
    cleaned = "/" + posixpath.normpath("/" + path).lstrip("/")
    return cleaned + trailing if cleaned != "/" else cleaned


def normalize_url(url: str) -> str:
    """The canonical URL of ``url`` (a URL or a local path); see the module's rules.

    >>> normalize_url("/data/a/../b.nc")
    'file:///data/b.nc'
    >>> normalize_url("s3://bucket/x/./y.nc")
    's3://bucket/x/y.nc'
    >>> normalize_url("file:///data/x?/../../etc/passwd")  # '?' is part of a file's path
    'file:///etc/passwd'
    >>> normalize_url("/data/50%/a?.nc")
    'file:///data/50%25/a%3F.nc'
    """
    if not url:
        return url
    _refuse_unsafe(url, url)
    found = _SCHEME.match(url)
    if found is None:
        if "://" in url:
            raise UnsafeURLError(f"URL {url!r} has no valid scheme before '://'")
        return "file://" + quote_path(_clean_path(str(Path(url).absolute())))
    scheme = found.group(1).lower()
    rest = url[found.end() :]
    slash = rest.find("/")
    netloc, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    query = ""
    if scheme in _QUERY_SCHEMES:
        path, hashed, _fragment = path.partition("#")
        if not hashed:
            netloc, hashed, _fragment = netloc.partition("#")
        if hashed:
            raise UnsafeURLError(f"URL {url!r} has a fragment ('#...'), which names no object")
        path, asked, query = path.partition("?")
        if not asked:
            netloc, asked, query = netloc.partition("?")
        query = "?" + query if asked else ""
    if any(c in netloc for c in "?#%"):
        raise UnsafeURLError(f"URL {url!r}: the host or bucket name {netloc!r} is not valid")
    decoded = unquote(path)
    _refuse_unsafe(decoded, url)
    cleaned = quote_path(_clean_path(decoded)) if decoded else ""
    return f"{scheme}://{netloc}{cleaned}{query}"


def fsspec_url(url: str) -> str:
    """A canonical URL as fsspec reads it (Kerchunk references): paths are not escaped.

    fsspec reads a ``file://`` or ``s3://`` path literally (``%3F`` is three characters
    of a file's name), so the escapes of the canonical form are undone; ``http(s)://``
    URLs are URLs to fsspec too and stay as they are.

    >>> fsspec_url("file:///data/x%3F/50%25.nc")
    'file:///data/x?/50%.nc'
    """
    found = _SCHEME.match(url)
    if found is None or found.group(1).lower() in _QUERY_SCHEMES:
        return url
    rest = url[found.end() :]
    slash = rest.find("/")
    if slash < 0:
        return url
    return url[: found.end() + slash] + unquote(rest[slash:])


def from_fsspec_url(text: str) -> str:
    """The canonical URL of a URL or path as fsspec means it (`fsspec_url` inverted).

    >>> from_fsspec_url("file:///data/x?/f%41.nc")
    'file:///data/x%3F/f%2541.nc'
    """
    found = _SCHEME.match(text)
    if found is None:
        return normalize_url(text)  # a plain path is literal already
    if found.group(1).lower() in _QUERY_SCHEMES:
        return normalize_url(text)
    rest = text[found.end() :]
    slash = rest.find("/")
    if slash < 0:
        return normalize_url(text)
    return normalize_url(text[: found.end() + slash] + quote_path(rest[slash:]))


def url_path(normalized: str) -> str:
    """The decoded path part (query kept) of a canonical URL's remainder after a prefix.

    >>> url_path("x%3F/a%25.nc")
    'x?/a%.nc'
    """
    path, asked, query = normalized.partition("?")
    return unquote(path) + (asked + query)
