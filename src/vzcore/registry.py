"""`ObjectStoreRegistry`: URL prefix -> object store. The one place a URL becomes bytes.

A URL is read only if it lies under a registered prefix, after normalisation
(`vzcore.urls.normalize_url`: percent-escapes decoded, ``..`` segments resolved,
unsafe characters refused), and a local file only if its real path (symlinks
resolved) lies inside the registered folder, so a reference file can never make vz
read something the user did not register.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import attrs

from vzcore._frozen import FrozenDict
from vzcore.errors import VirtualizationError
from vzcore.urls import UnregisteredURLError, normalize_url, url_path

_log = logging.getLogger(__name__)

__all__ = [
    "ByteRangeReader",
    "ObjectStoreRegistry",
    "OutsideRootError",
    "UnregisteredURLError",
    "normalize_url",
]


@runtime_checkable
class ByteRangeReader(Protocol):
    """What the registry needs of a store: ranged reads, batched, and whole-object reads.

    obstore stores are adapted automatically; anything else implementing this
    protocol (a counting wrapper in tests, a cache) can be registered as is.
    """

    async def get_ranges_async(
        self, path: str, *, starts: Sequence[int], ends: Sequence[int]
    ) -> Sequence[bytes | memoryview]: ...

    async def get_async(self, path: str) -> bytes | memoryview: ...

    def get_ranges(
        self, path: str, *, starts: Sequence[int], ends: Sequence[int]
    ) -> Sequence[bytes | memoryview]: ...

    def get(self, path: str) -> bytes | memoryview: ...


class OutsideRootError(UnregisteredURLError):
    """A local path leads outside its registered folder (through a symlink)."""


def _local_root(store: Any) -> str | None:
    from obstore.store import LocalStore

    if isinstance(store, LocalStore):
        # A LocalStore without a prefix takes its paths from the filesystem root.
        return os.path.realpath(str(store.prefix or "/"))
    return None


@attrs.frozen
class ObstoreReader:
    """Adapts an obstore store to `ByteRangeReader` (coalescing neighbouring ranges).

    For a `LocalStore` every path is first resolved to its real path (symlinks
    followed) and refused with `OutsideRootError` unless it lies inside the store's
    real folder; the store is then asked for the resolved path, so a symlink inside a
    registered folder can never lead a read outside it.
    """

    store: Any
    coalesce: int = 1024 * 1024
    root: str | None = attrs.field(
        init=False, default=attrs.Factory(lambda self: _local_root(self.store), takes_self=True)
    )

    def _confined(self, path: str) -> tuple[str, str]:
        """(path to ask the store for, filesystem path) of ``path``; for local stores only."""
        root = self.root
        assert root is not None
        real = os.path.realpath(os.path.join(root, path))
        if real != root and not real.startswith(root.rstrip("/") + "/"):
            raise OutsideRootError(
                f"{os.path.join(root, path)!r} resolves to {real!r}, outside the registered "
                f"folder {root!r}; vz reads no file outside a registered folder"
            )
        return os.path.relpath(real, root) if real != root else "", real

    def _path(self, path: str) -> str:
        return path if self.root is None else self._confined(path)[0]

    async def get_ranges_async(
        self, path: str, *, starts: Sequence[int], ends: Sequence[int]
    ) -> Sequence[bytes | memoryview]:
        import obstore

        buffers = await obstore.get_ranges_async(
            self.store,
            self._path(path),
            starts=list(starts),
            ends=list(ends),
            coalesce=self.coalesce,
        )
        return [memoryview(b) for b in buffers]

    async def get_async(self, path: str) -> bytes | memoryview:
        import obstore

        result = await obstore.get_async(self.store, self._path(path))
        return memoryview(await result.bytes_async())

    def get_ranges(
        self, path: str, *, starts: Sequence[int], ends: Sequence[int]
    ) -> Sequence[bytes | memoryview]:
        import obstore

        if self.root is not None:
            confined, local = self._confined(path)
            if len(starts) <= 8:
                # A few small reads of a local file: the OS directly, without a hop
                # through obstore's I/O threads (which costs more than the read itself).
                return _read_local(local, starts, ends)
            path = confined
        buffers = obstore.get_ranges(
            self.store, path, starts=list(starts), ends=list(ends), coalesce=self.coalesce
        )
        return [memoryview(b) for b in buffers]

    def get(self, path: str) -> bytes | memoryview:
        import obstore

        return memoryview(obstore.get(self.store, self._path(path)).bytes())

    def size(self, path: str) -> int:
        """The object's size in bytes (one HEAD request)."""
        return int(self.head(path)["size"])

    def head(self, path: str) -> dict[str, Any]:
        """The object's metadata: ``size``, ``last_modified`` (datetime), ``e_tag``."""
        import obstore

        return dict(obstore.head(self.store, self._path(path)))

    def list_objects(self, prefix: str) -> Any:
        """An Arrow table (``path``, ``size``) of the objects under ``prefix``, sorted by path.

        In a local folder, a symlink leading outside the registered folder is refused.
        """
        import obstore
        import pyarrow as pa

        paths: list[str] = []
        sizes: list[int] = []
        if self.root is not None:
            paths, sizes = self._list_local(prefix)
        else:
            for batch in obstore.list(self.store, prefix=prefix, chunk_size=10_000):
                paths.extend(item["path"] for item in batch)
                sizes.extend(item["size"] for item in batch)
        table = pa.table(
            {"path": pa.array(paths, pa.string()), "size": pa.array(sizes, pa.uint64())}
        )
        return table.sort_by("path")

    def _list_local(self, prefix: str) -> tuple[list[str], list[int]]:
        """The files under ``prefix`` of a local folder: a walk that checks every symlink."""
        base = prefix.strip("/")
        top = self._confined(base)[1]
        paths: list[str] = []
        sizes: list[int] = []
        seen = {top}
        stack = [(top, base)]
        while stack:
            folder, relative = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                name = f"{relative}/{entry.name}" if relative else entry.name
                if entry.is_symlink():
                    real = self._confined(name)[1]
                    if os.path.isdir(real):
                        if real not in seen:  # a folder linked twice is walked once
                            seen.add(real)
                            stack.append((real, name))
                    elif os.path.isfile(real):
                        paths.append(name)
                        sizes.append(os.stat(real).st_size)
                elif entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, name))
                elif entry.is_file(follow_symlinks=False):
                    paths.append(name)
                    sizes.append(entry.stat(follow_symlinks=False).st_size)
        return paths, sizes

    def local_path(self, path: str) -> str | None:
        """The real filesystem path of ``path`` when the store is a local folder, else None.

        Raises `OutsideRootError` if it lies outside the folder.
        """
        return None if self.root is None else self._confined(path)[1]


def _read_local(path: str, starts: Sequence[int], ends: Sequence[int]) -> list[bytes]:
    try:
        with open(path, "rb") as file:
            descriptor = file.fileno()
            return [
                os.pread(descriptor, end - start, start)
                for start, end in zip(starts, ends, strict=True)
            ]
    except IsADirectoryError as err:  # as obstore says it: a directory is no object
        raise FileNotFoundError(f"{path} is a directory") from err


_CLOUD_SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "azure")
_SAFE_CONFIG = ("bucket", "container_name", "account_name", "region", "endpoint", "skip_signature")


def _options_for(
    scheme: str,
    options: Mapping[str, Any],
    *,
    anonymous: bool,
    region: str | None,
    endpoint: str | None,
    retries: int | None = None,
    timeout: str | timedelta | None = None,
) -> dict[str, Any]:
    """obstore options for a store of ``scheme`` built by `ObjectStoreRegistry.for_urls`.

    ``anonymous`` skips request signing (public buckets); ``region`` and ``endpoint``
    go to S3 (an S3-compatible server such as MinIO or moto); a plain ``http://``
    URL or endpoint needs obstore's ``allow_http`` (without it every request fails
    with a bare "builder error"). ``retries`` is obstore's
    ``retry_config["max_retries"]``, ``timeout`` its ``client_options["timeout"]``.
    """
    built = dict(options)
    if retries is not None:
        retry = dict(built.get("retry_config") or {})
        if "max_retries" in retry:
            raise VirtualizationError(
                "give retries= or retry_config={'max_retries': ...}, not both"
            )
        if retries < 0:
            raise VirtualizationError(f"retries={retries}: give 0 (no retry) or more")
        built["retry_config"] = {**retry, "max_retries": retries}
    if timeout is not None:
        client = dict(built.get("client_options") or {})
        if "timeout" in client:
            raise VirtualizationError("give timeout= or client_options={'timeout': ...}, not both")
        built["client_options"] = {**client, "timeout": timeout}
    if scheme in _CLOUD_SCHEMES and anonymous:
        built.setdefault("skip_signature", True)
    if scheme in ("s3", "s3a"):
        if region is not None:
            built.setdefault("region", region)
        if endpoint is not None:
            built.setdefault("endpoint", endpoint)
    elif (region is not None or endpoint is not None) and scheme in _CLOUD_SCHEMES:
        raise UnregisteredURLError(f"region= and endpoint= apply to s3:// URLs, not {scheme}://")
    plain_http = scheme == "http" or str(built.get("endpoint", "")).startswith("http://")
    if plain_http:
        client_options = {"allow_http": True, **dict(built.get("client_options") or {})}
        built["client_options"] = client_options
    return built


def describe_store(store: Any) -> str:
    """A one-line account of a store: its class and the settings that say where it reads.

    Credentials are never shown.
    """
    inner = getattr(store, "store", store)  # an ObstoreReader's store
    name = type(inner).__name__
    if name == "LocalStore":
        return f"LocalStore({str(inner.prefix or '/')!r})"
    if name == "HTTPStore":
        return repr(inner)
    config = getattr(inner, "config", None)
    if isinstance(config, Mapping):
        shown = [f"{key}={config[key]!r}" for key in _SAFE_CONFIG if key in config]
        client = getattr(inner, "client_options", None) or {}
        if client.get("allow_http") in (True, "true"):
            shown.append("allow_http=True")
        if client.get("timeout") is not None:
            shown.append(f"timeout={str(client['timeout'])!r}")
        retry = getattr(inner, "retry_config", None) or {}
        if retry.get("max_retries") is not None:
            shown.append(f"retries={retry['max_retries']}")
        prefix = getattr(inner, "prefix", None)
        if prefix:
            shown.append(f"prefix={str(prefix)!r}")
        return f"{name}({', '.join(shown)})"
    return name


def _to_stores(value: Mapping[str, Any] | None) -> FrozenDict[str, Any]:
    stores: dict[str, Any] = {}
    for prefix, store in (value or {}).items():
        if "://" not in prefix:
            raise VirtualizationError(f"registry prefix {prefix!r} must be a URL (scheme://...)")
        normalized = normalize_url(prefix)
        # "file://" and "s3://bucket" name the root of their store: "file:///", "s3://bucket/".
        if not normalized.endswith("/") or not urlsplit(normalized).path:
            normalized += "/"
        stores[normalized] = _as_reader(store, prefix)
    return FrozenDict(stores)


def _as_reader(store: Any, prefix: str) -> ByteRangeReader:
    from obstore import store as obstore_stores

    # obstore's own stores have methods named like the protocol's but return other
    # types, so they are recognised by class before the protocol is consulted.
    obstore_classes = tuple(
        getattr(obstore_stores, name)
        for name in ("LocalStore", "MemoryStore", "S3Store", "GCSStore", "AzureStore", "HTTPStore")
        if hasattr(obstore_stores, name)
    )
    if isinstance(store, obstore_classes):
        return ObstoreReader(store)
    if isinstance(store, ByteRangeReader):
        return store
    raise VirtualizationError(
        f"registry entry {prefix!r}: {type(store).__name__} is neither an obstore store nor a "
        "ByteRangeReader"
    )


@attrs.frozen
class ObjectStoreRegistry:
    """URL prefixes mapped to stores; `resolve` picks the longest matching prefix.

    A store registered at prefix ``P`` serves the URL ``P + rest`` at its path ``rest``.

    >>> from obstore.store import MemoryStore
    >>> registry = ObjectStoreRegistry({"memory://a/": MemoryStore(), "memory://a/b/": MemoryStore()})
    >>> registry.resolve("memory://a/b/c.nc")[1]
    'c.nc'
    """

    stores: FrozenDict[str, ByteRangeReader] = attrs.field(factory=FrozenDict, converter=_to_stores)

    def register(self, prefix: str, store: Any) -> ObjectStoreRegistry:
        """A new registry with one more prefix (or a prefix re-pointed)."""
        return ObjectStoreRegistry({**self.stores, prefix: store})

    @property
    def prefixes(self) -> tuple[str, ...]:
        return tuple(self.stores)

    def resolve(self, url: str) -> tuple[ByteRangeReader, str]:
        """The store for ``url`` and the path inside it.

        Raises
        ------
        UnregisteredURLError
            If no registered prefix contains the normalised URL.
        """
        normalized = normalize_url(url)
        best = ""
        for prefix in self.stores:
            if normalized.startswith(prefix) and len(prefix) > len(best):
                best = prefix
        if not best:
            registered = ", ".join(self.prefixes) or "(none)"
            raise UnregisteredURLError(
                f"URL {url!r} is under no registered prefix; registered: {registered}"
            )
        return self.stores[best], url_path(normalized[len(best) :])

    def describe(self) -> str:
        """What each prefix reads from, one line per prefix (credentials never shown).

        >>> from obstore.store import MemoryStore
        >>> print(ObjectStoreRegistry({"memory://a/": MemoryStore()}).describe())
        memory://a/ -> MemoryStore
        """
        return "\n".join(f"{p} -> {describe_store(s)}" for p, s in self.stores.items())

    @classmethod
    def for_urls(
        cls,
        urls: Iterable[str | os.PathLike[str]],
        *,
        anonymous: bool = False,
        region: str | None = None,
        endpoint: str | None = None,
        retries: int | None = None,
        timeout: str | timedelta | None = None,
        **store_options: Any,
    ) -> ObjectStoreRegistry:
        """A registry covering ``urls``: one store per bucket or host, local folders by path.

        Local paths and ``file://`` URLs get a `LocalStore` rooted at their folder;
        ``s3://``, ``gs://``, ``az://``, ``http(s)://`` URLs one store per bucket,
        container or host, built with `obstore.store.from_url` and ``store_options``;
        ``memory://`` URLs are refused (register a MemoryStore yourself).
        ``anonymous=True`` reads public buckets without credentials; ``region`` and
        ``endpoint`` configure S3 (``endpoint`` for S3-compatible servers).
        ``retries`` is how often a failed request (a 5xx answer, a dropped or reset
        connection, a timeout, a body cut short) is retried, with exponential backoff
        (obstore's default: 10, within 3 minutes); ``timeout`` bounds each request
        (``"30s"`` by default, or a `datetime.timedelta`). Finer settings are
        obstore's ``retry_config=`` and ``client_options=``, passed on. The registry
        is logged (logger ``vzcore.registry``, level INFO) and `describe` says what
        was built.

        >>> registry = ObjectStoreRegistry.for_urls(["s3://bucket/a.nc"], anonymous=True,
        ...                                         region="us-west-2")
        >>> print(registry.describe())
        s3://bucket/ -> S3Store(bucket='bucket', region='us-west-2', skip_signature='true')
        """
        from obstore.store import LocalStore, from_url

        stores: dict[str, Any] = {}
        for given in urls:
            url = os.fspath(given)
            normalized = normalize_url(url)
            parts = urlsplit(normalized)
            if parts.scheme == "file":
                folder = posixpath.dirname(url_path(parts.path))
                prefix = normalized[: normalized.rfind("/") + 1]
                if prefix not in stores:
                    stores[prefix] = LocalStore(folder or "/")
            elif parts.scheme in (*_CLOUD_SCHEMES, "http", "https"):
                prefix = f"{parts.scheme}://{parts.netloc}/"
                if prefix not in stores:
                    options = _options_for(
                        parts.scheme,
                        store_options,
                        anonymous=anonymous,
                        region=region,
                        endpoint=endpoint,
                        retries=retries,
                        timeout=timeout,
                    )
                    try:
                        stores[prefix] = from_url(prefix, **options)
                    except Exception as err:  # obstore's configuration errors, typed
                        raise UnregisteredURLError(
                            f"cannot build a store for {url!r}: {str(err).splitlines()[0]}"
                        ) from err
            else:
                raise UnregisteredURLError(
                    f"cannot build a store for {url!r}: scheme {parts.scheme!r} needs an explicit "
                    "registry entry"
                )
        registry = cls(stores)
        _log.info("ObjectStoreRegistry.for_urls built:\n%s", registry.describe())
        return registry
