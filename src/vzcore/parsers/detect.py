"""Pick the parser for a URL: ask every parser of the ``vz.parsers`` entry point group.

Parsers are found through the entry point group `ENTRY_POINT_GROUP`, so a
third-party package adds a format by declaring one in its ``pyproject.toml``::

    [project.entry-points."vz.parsers"]
    fits = "vz_fits:FITSParser"

vz's own parsers are declared there too, and are known even without installed
package metadata (a source checkout on ``sys.path``).

The order parsers are asked in is deterministic: descending ``priority`` (a
class attribute; 0 when a parser does not set one), then entry point name. vz's
built-ins have negative priorities, most specific test first (a vz manifest,
then an Icechunk repository's ``repo`` object, before a Kerchunk parquet directory
before a Zarr store; netCDF3's magic before Kerchunk JSON's brace; HDF5 last,
because looking for a user block past the first `HEAD_BYTES` costs reads), so a plug-in is asked first unless it sets a negative
priority itself.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import warnings
from collections.abc import Callable
from typing import Any

import attrs

from vzcore.errors import VirtualizationError
from vzcore.parsers.dmrpp import XML_START
from vzcore.parsers.protocol import Parser, Probe
from vzcore.registry import ObjectStoreRegistry

__all__ = [
    "BUILTIN_PARSERS",
    "ENTRY_POINT_GROUP",
    "ParserPlugin",
    "ParserPluginWarning",
    "UnknownFormatError",
    "detect_parser",
    "parser_plugins",
]

ENTRY_POINT_GROUP = "vz.parsers"

BUILTIN_PARSERS: dict[str, str] = {
    "dmrpp": "vzcore.parsers.dmrpp:DMRPPParser",
    "fits": "vzcore.parsers.fits:FITSParser",
    "grib": "vzcore.parsers.grib:GRIBParser",
    "hdf4": "vzcore.parsers.hdf4:HDF4Parser",
    "hdf5": "vzcore.parsers.hdf5:HDFParser",
    "icechunk": "vzcore.parsers.icechunk:IcechunkParser",
    "kerchunk_json": "vzcore.parsers.kerchunk:KerchunkJSONParser",
    "kerchunk_parquet": "vzcore.parsers.kerchunk:KerchunkParquetParser",
    "netcdf3": "vzcore.parsers.netcdf3:NetCDF3Parser",
    "tiff": "vzcore.parsers.tiff:TIFFParser",
    "vz_manifest": "vzcore.parsers.manifest_parquet:ManifestParquetParser",
    "zarr": "vzcore.parsers.zarr:ZarrParser",
}
"""vz's parsers, as declared in its ``pyproject.toml`` (entry point name -> target)."""


class UnknownFormatError(VirtualizationError):
    """No parser recognises the source."""


class ParserPluginWarning(UserWarning):
    """A ``vz.parsers`` entry point could not be loaded, or its ``can_open`` failed."""


@attrs.frozen
class ParserPlugin:
    """One entry of the ``vz.parsers`` group: its name, target, and the loaded class or why not."""

    name: str
    target: str
    """``module:attribute``, as the entry point names it."""
    factory: Any = attrs.field(default=None, eq=False)
    """The loaded parser class (None if loading failed)."""
    error: str | None = None

    @property
    def priority(self) -> int:
        return int(getattr(self.factory, "priority", 0))

    def describe(self) -> str:
        return f"{self.name} ({self.target})"


def _load(name: str, target: str, load: Callable[[], Any]) -> ParserPlugin:
    try:
        factory = load()
    except Exception as err:  # noqa: BLE001 (a broken plug-in must not break the others)
        return ParserPlugin(name, target, error=f"cannot be loaded: {type(err).__name__}: {err}")
    if not callable(getattr(factory, "can_open", None)) or not callable(factory):
        return ParserPlugin(name, target, error="is not a parser class (no can_open)")
    if not isinstance(getattr(factory, "priority", 0), int):
        return ParserPlugin(name, target, error="has a 'priority' that is not an int")
    return ParserPlugin(name, target, factory=factory)


def _import_target(target: str) -> Any:
    module, _, attribute = target.partition(":")
    value: Any = importlib.import_module(module)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


@functools.cache
def parser_plugins() -> tuple[ParserPlugin, ...]:
    """Every parser vz knows, in the order `detect_parser` asks them (cached per process).

    The built-ins plus each ``vz.parsers`` entry point; an entry point naming a
    class already listed is listed once. One that fails to load is kept (with
    ``factory=None`` and its ``error``) and reported by a `ParserPluginWarning`.
    Call ``parser_plugins.cache_clear()`` after installing a plug-in at run time.
    """
    plugins = [
        _load(name, target, functools.partial(_import_target, target))
        for name, target in BUILTIN_PARSERS.items()
    ]
    seen = {id(p.factory) for p in plugins if p.factory is not None}
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        plugin = _load(entry.name, entry.value, entry.load)
        if plugin.factory is not None and id(plugin.factory) in seen:
            continue
        if plugin.factory is None and entry.value in BUILTIN_PARSERS.values():
            continue  # a stale declaration of a built-in, already reported above
        seen.add(id(plugin.factory))
        plugins.append(plugin)
    for plugin in plugins:
        if plugin.error is not None:
            warnings.warn(
                f"vz.parsers entry point {plugin.describe()} {plugin.error}",
                ParserPluginWarning,
                stacklevel=2,
            )
    return tuple(sorted(plugins, key=lambda p: (-p.priority, p.name, p.target)))


def detect_parser(url: str, registry: ObjectStoreRegistry) -> Parser:
    """The parser for ``url``: the first of `parser_plugins` whose ``can_open`` says yes.

    Parameters
    ----------
    url
        A file's URL or path, or a directory-like store (Zarr, Kerchunk parquet,
        vz manifest group).
    registry
        Where ``url`` is read from.

    Returns
    -------
    Parser
        A new instance of the parser class, built with no arguments.

    Raises
    ------
    UnknownFormatError
        If no parser claims the source; the message names the URL, what the source
        looks like (FITS, XML, plain parquet, ... when no parser
        for it is installed) and any entry point that failed to load.
    UnregisteredURLError
        If ``url`` lies under no registered prefix.
    ProbeError
        If the source cannot be read.
    """
    probe = Probe(url, registry)
    plugins = parser_plugins()
    for plugin in plugins:
        if plugin.factory is None or not _claims(plugin, probe):
            continue
        try:
            parser: Parser = plugin.factory()
        except Exception as err:
            raise UnknownFormatError(
                f"{probe.url}: parser {plugin.describe()} claims it but cannot be built: {err}"
            ) from err
        return parser
    raise UnknownFormatError(_unknown_message(probe, plugins))


def _claims(plugin: ParserPlugin, probe: Probe) -> bool:
    try:
        return bool(plugin.factory.can_open(probe))
    except VirtualizationError:
        raise  # the source itself could not be read: no other parser can do better
    except Exception as err:  # noqa: BLE001 (one plug-in's bug must not hide the others)
        warnings.warn(
            f"{probe.url}: vz.parsers entry point {plugin.describe()}: can_open failed: "
            f"{type(err).__name__}: {err}",
            ParserPluginWarning,
            stacklevel=3,
        )
        return False


def _unknown_message(probe: Probe, plugins: tuple[ParserPlugin, ...]) -> str:
    head = probe.head
    if head is None:
        looked_for = ", ".join(probe.asked) or "nothing"
        message = (
            f"{probe.url}: no such file, and not a store any installed parser recognises "
            f"(looked for: {looked_for})"
        )
    else:
        name = _looks_like(probe)
        message = (
            f"{probe.url}: looks like {name}; no parser installed for it"
            if name is not None
            else f"{probe.url}: unrecognised format (first bytes {head[:16]!r})"
        )
    broken = [f"{p.describe()} {p.error}" for p in plugins if p.error is not None]
    if broken:
        message += "; entry points that failed: " + "; ".join(broken)
    return message


def _looks_like(probe: Probe) -> str | None:
    """A name for a format vz knows by its magic bytes but has no parser installed for."""
    head = probe.head or b""
    for name, matches in _SIGNATURES:
        if matches(head):
            return name
    if head.startswith(b"PAR1"):
        return (
            "a parquet file, but not a vz manifest (no 'vz:format' key in its metadata; "
            "Kerchunk parquet references are opened by their folder)"
        )
    return None


_SIGNATURES: tuple[tuple[str, Callable[[bytes], bool]], ...] = (
    ("FITS", lambda head: head.startswith(b"SIMPLE  =")),
    ("XML", lambda head: XML_START.match(head) is not None),
)
