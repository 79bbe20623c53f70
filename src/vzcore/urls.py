"""URLs as vz stores them: every reference is a URL, local files as ``file://`` URLs."""

from __future__ import annotations

import posixpath
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["is_url", "normalize_url"]


def is_url(text: str) -> bool:
    """Whether ``text`` names its scheme (``scheme://...``) rather than being a plain path."""
    return "://" in text


def normalize_url(url: str) -> str:
    """A canonical URL: local paths become ``file://`` URLs, ``..`` and ``.`` resolved.

    >>> normalize_url("/data/a/../b.nc")
    'file:///data/b.nc'
    >>> normalize_url("s3://bucket/x/./y.nc")
    's3://bucket/x/y.nc'
    """
    if "://" not in url:
        return "file://" + posixpath.normpath(str(Path(url).absolute())) if url else url
    parts = urlsplit(url)
    path = unquote(parts.path)
    if path:
        trailing = "/" if path.endswith("/") else ""
        path = posixpath.normpath(path)
        # normpath keeps a leading "//"; one slash is what every store means.
        path = "/" + path.lstrip("/")
        path = path + trailing if path != "/" else path
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}{path}{query}"
