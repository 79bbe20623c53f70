"""Parsers for existing Kerchunk references: JSON (version 0 and 1) and fsspec's parquet layout.

Both produce the `VirtualGroup` the references describe: zarr v2 metadata becomes
`ArrayMetadata`, ``[url, offset, length]`` entries become manifest rows, ``[url]``
whole-file entries get the file's size from the store, and arrays whose chunks are
all inline data become `LoadedArray` values. An array mixing inline and referenced
chunks becomes one `VirtualArray` whose manifest holds the inline chunks' bytes.
"""

from __future__ import annotations

import ast
import base64
import binascii
import functools
import itertools
import math
import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vzcore.algebra import referenced_paths
from vzcore.array import AnyArray, LoadedArray, VirtualArray
from vzcore.byteranges import SourceNotFoundError, SourceReadError, fingerprints, source
from vzcore.cf import attributes_from_zarr_v2
from vzcore.errors import LimitExceededError, VirtualizationError
from vzcore.group import SourceFingerprint, VirtualGroup, check_node_path, nest_arrays
from vzcore.limits import (
    check_count,
    check_limit,
    check_parquet_size,
    current_limits,
    load_json,
    read_document,
)
from vzcore.manifest import ChunkManifest
from vzcore.metadata import ArrayMetadata, check_in_memory_size, checked_grid
from vzcore.parsers.protocol import Probe
from vzcore.read import encode_fill_chunk
from vzcore.registry import ObjectStoreRegistry, UnregisteredURLError, normalize_url
from vzcore.urls import from_fsspec_url, quote_path
from vzcore.writers.icechunk import SOURCES_METADATA_KEY
from vzcore.writers.kerchunk import sources_sidecar

__all__ = ["KerchunkFormatError", "KerchunkJSONParser", "KerchunkParquetParser"]

# No brace inside, so a failed match backtracks only over the text up to the next
# brace: linear in the string (a lazy ``\s*(.+?)\s*`` is cubic on ``"{{ " + spaces``).
_TEMPLATE = re.compile(r"{{([^{}]+)}}")
# Top-level keys of version 1 references, or metadata keys of version 0 ones.
_KERCHUNK_KEY = re.compile(
    rb'"(version|refs|templates|gen|\.zgroup|\.zattrs|[^"]*\.zarray|[^"]*zarr\.json)"\s*:'
)


class KerchunkFormatError(VirtualizationError):
    """Kerchunk references that are malformed or inconsistent."""


# ---- shared: metadata, URLs, inline data ------------------------------------------------


def _as_document(value: Any, key: str, where: str) -> dict[str, Any]:
    if isinstance(value, str | bytes):
        value = load_json(value, where=where, what=key, error=KerchunkFormatError)
    if not isinstance(value, dict):
        raise KerchunkFormatError(
            f"{where}: {key} must be a JSON object, got {type(value).__name__}"
        )
    return value


def _array_metadata(zarray: dict[str, Any], zattrs: dict[str, Any], where: str) -> ArrayMetadata:
    attributes = attributes_from_zarr_v2(zarray, zattrs)
    try:
        metadata = ArrayMetadata.from_zarr_v2(zarray, attributes)
    except VirtualizationError as err:
        raise KerchunkFormatError(f"{where}: {err}") from err
    if "_FillValue" in metadata.encoding:
        cf_fill = metadata.fill_value.item() if metadata.dtype.kind in "iufcb" else None
        if cf_fill is not None and isinstance(metadata.encoding["_FillValue"], str):
            metadata = metadata.evolve(encoding={**metadata.encoding, "_FillValue": cf_fill})
    return metadata


def _resolve_url(url: str, base: str, where: str) -> str:
    """Absolute URL of a reference: a relative one is relative to ``base``'s folder.

    ``base`` is the references file, or ``fs_root`` as a folder (ending in ``/``), as
    a canonical URL; ``url`` is literal, as fsspec reads it (``%41`` names the three
    characters). ``.`` and ``..`` are resolved in URLs, where object stores would
    take them literally. ``where`` (the references file and array) prefixes a refusal.
    """
    try:
        return _resolved(url, base)
    except UnregisteredURLError as err:  # an unsafe URL: a NUL, a backslash
        raise type(err)(f"{where}: {err}") from err


@functools.lru_cache(maxsize=4096)
def _resolved(url: str, base: str) -> str:
    if "://" in url or url.startswith("/"):
        return from_fsspec_url(url)
    joined = posixpath.join(posixpath.dirname(base), quote_path(url))
    return normalize_url(joined) if "://" in joined else joined


def _to_fs_root(value: str | None) -> str | None:
    """``fs_root`` as a folder URL ending in ``/`` (a local path becomes ``file://``)."""
    if value is None:
        return None
    if "://" not in value and not value.startswith("/"):
        raise VirtualizationError(
            f"fs_root={value!r} must be an absolute URL or path, e.g. 's3://bucket/refs/' "
            "or 'file:///data/'"
        )
    return normalize_url(value).rstrip("/") + "/"


def _to_names(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        raise VirtualizationError(
            f"skip_variables={value!r} must be a collection of names, not one string"
        )
    return frozenset(value)


def _is_skipped(path: str, skip: frozenset[str]) -> bool:
    """Whether an array at ``path`` (``"sub/x"``) is skipped by its path or by its name."""
    return path in skip or path.rsplit("/", 1)[-1] in skip


def _inline_bytes(value: str | bytes, chunk_key: str, where: str) -> bytes:
    check_limit("max_inline_bytes", len(value), f"{where}: chunk {chunk_key!r}", "inline data")
    if isinstance(value, bytes):
        return value
    if value.startswith("base64:"):
        try:
            return base64.b64decode(value[len("base64:") :])
        except (binascii.Error, ValueError) as err:
            raise KerchunkFormatError(
                f"{where}: chunk {chunk_key!r} is not valid base64: {err}"
            ) from err
    try:
        return value.encode()
    except UnicodeEncodeError as err:  # a lone surrogate from a \ud800 escape
        raise KerchunkFormatError(f"{where}: chunk {chunk_key!r} is not text: {err}") from err


def _decode_inline(
    metadata: ArrayMetadata, chunks: Mapping[tuple[int, ...], bytes], where: str
) -> LoadedArray:
    """Values of an array whose chunks are all inline bytes (decoded with numcodecs)."""
    from vzcore.read import decode_chunks

    try:
        values = decode_chunks(metadata, chunks)
    except (ValueError, TypeError, RuntimeError, VirtualizationError) as err:
        raise KerchunkFormatError(f"{where}: inline data does not decode: {err}") from err
    return LoadedArray(metadata, values)


def _whole_file_lengths(
    urls: list[str], registry: ObjectStoreRegistry, where: str
) -> dict[str, int]:
    sizes = {}
    for url in urls:
        try:
            sizes[url] = source(registry, url).size()
        except SourceReadError as err:
            raise err.about(f"{where}: cannot size the referenced file {url!r}") from err
        except UnregisteredURLError as err:  # outside the registry, or an unsafe URL
            raise type(err)(f"{where}: {err}") from err
    return sizes


# ---- JSON -----------------------------------------------------------------------------


@attrs.frozen
class KerchunkJSONParser:
    """Parser for Kerchunk JSON references (version 0 and 1, templates, ``gen``).

    Attributes
    ----------
    fs_root
        Root URL (or absolute path) against which relative reference paths such
        as ``"data/a.nc"`` resolve: with ``fs_root="s3://bucket/"`` that chunk is
        read from ``s3://bucket/data/a.nc``. It names a folder (a trailing ``/``
        is implied). Without it, relative paths are relative to the folder of the
        references file. Absolute paths and URLs are kept as they are.
    skip_variables
        Variables left out of the group without being parsed (so one vz cannot
        represent can be skipped): a name skips that array in every group, a
        path (``"sub/x"``) only that one.
    fingerprint_sources
        Ask the store about every referenced file (one HEAD each, concurrently)
        and record its size, last-modified time and ETag in ``sources``: Kerchunk
        references carry no fingerprints of their own.

    Examples
    --------
    >>> KerchunkJSONParser(fs_root="s3://bucket", skip_variables=["crs"]).fs_root
    's3://bucket/'
    """

    fs_root: str | None = attrs.field(default=None, converter=_to_fs_root)
    skip_variables: frozenset[str] = attrs.field(default=(), converter=_to_names)
    fingerprint_sources: bool = False

    priority = -50  # a brace and a key name: the least specific test of the built-ins

    @classmethod
    def can_open(cls, probe: Probe) -> bool:
        """A JSON object whose first keys are Kerchunk's (``version``, ``refs``, ``.zgroup``, ...)."""
        head = probe.head
        if head is None:
            return False
        text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
        return text.startswith(b"{") and _KERCHUNK_KEY.search(text) is not None

    def __call__(self, url: str, registry: ObjectStoreRegistry) -> VirtualGroup:
        text = read_document(source(registry, url), where=url)
        document = load_json(text, where=url, error=KerchunkFormatError)
        refs = _references(document, url)
        group = _group_from_refs(
            refs, registry, url, base=self.fs_root or url, skip=self.skip_variables
        )
        if self.fingerprint_sources:
            return _fingerprinted(group, registry)
        return _with_sidecar(group, registry, sources_sidecar(url, folder=False))


def _with_sidecar(group: VirtualGroup, registry: ObjectStoreRegistry, sidecar: str) -> VirtualGroup:
    """``group`` with the fingerprints vz's writer kept in the sidecar, if there is one."""
    try:
        text = read_document(source(registry, sidecar), where=sidecar)
    except (SourceNotFoundError, UnregisteredURLError):
        return group  # references from elsewhere (or vz's without recorded sources)
    document = load_json(text, where=sidecar, error=KerchunkFormatError)
    kept = document.get(SOURCES_METADATA_KEY) if isinstance(document, dict) else None
    if not isinstance(kept, dict):
        raise KerchunkFormatError(f"{sidecar}: no {SOURCES_METADATA_KEY!r} object")
    try:
        recorded = {
            u: SourceFingerprint.from_json(fp, where=f"{sidecar}: {u}") for u, fp in kept.items()
        }
    except VirtualizationError as err:
        raise KerchunkFormatError(str(err)) from err
    referenced = referenced_paths(group)
    return group.evolve(sources={u: fp for u, fp in recorded.items() if u in referenced})


def _fingerprinted(group: VirtualGroup, registry: ObjectStoreRegistry) -> VirtualGroup:
    """``group`` with the fingerprint of every file its references point to."""
    urls = sorted(
        {
            url
            for _, array in group.walk_arrays()
            if isinstance(array, VirtualArray)
            for url in array.manifest.dictionary.to_pylist()
        }
    )
    return group.evolve(sources=fingerprints(registry, urls))


def _references(document: Any, where: str) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise KerchunkFormatError(f"{where}: references must be a JSON object")
    if "version" not in document:
        return document  # version 0: the refs themselves
    version = document["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version != 1:
        raise KerchunkFormatError(f"{where}: unsupported references version {version!r}")
    refs = document.get("refs", {})
    if not isinstance(refs, dict):
        raise KerchunkFormatError(f"{where}: 'refs' must be a JSON object")
    templates = _templates(document.get("templates"), where)
    generators = document.get("gen") or []
    if not isinstance(generators, list):
        raise KerchunkFormatError(f"{where}: 'gen' must be a list of objects")
    budget = _Budget(where)
    refs = dict[str, Any](refs)
    for generator in generators:
        refs.update(_expand_generator(generator, templates, budget))
    if templates:
        refs = _apply_templates(refs, templates, budget)
    return refs


def _templates(value: Any, where: str) -> dict[str, str]:
    """The ``templates`` object, checked: names to strings (numbers become their text)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise KerchunkFormatError(
            f"{where}: 'templates' must be an object of names to strings, "
            f"got {type(value).__name__}"
        )
    wrong = [
        name
        for name, text in value.items()
        if not isinstance(text, str | int | float) or isinstance(text, bool)
    ]
    if wrong:
        raise KerchunkFormatError(
            f"{where}: template {wrong[0]!r} must be a string, got {type(value[wrong[0]]).__name__}"
        )
    return {name: str(text) for name, text in value.items()}


class _Budget:
    """Counts what templates and ``gen`` render, against the limits (one references file)."""

    def __init__(self, where: str, rendered: list[int] | None = None) -> None:
        self.where = where
        self.limits = current_limits()
        self._rendered = [0] if rendered is None else rendered

    def about(self, where: str) -> _Budget:
        """The same budget, naming ``where`` (a ``gen`` entry) in its refusals."""
        return _Budget(where, self._rendered)

    def string(self, size: int, what: str) -> None:
        """Refuse a string of ``size`` characters above ``max_template_bytes``, unbuilt."""
        if size > self.limits.max_template_bytes:
            check_limit("max_template_bytes", size, self.where, what)

    def text(self, value: str, what: str) -> str:
        """``value``, counted; refused if one string or all of them grow past the limits."""
        self.string(len(value), what)
        self._rendered[0] += len(value)
        if self._rendered[0] > self.limits.max_document_bytes:
            check_limit(
                "max_document_bytes",
                self._rendered[0],
                self.where,
                "the characters the templates and 'gen' entries render",
            )
        return value


def _apply_templates(
    refs: dict[str, Any], templates: Mapping[str, str], budget: _Budget
) -> dict[str, Any]:
    """``refs`` with ``{{name}}`` in reference URLs replaced (each distinct URL rendered once)."""

    def substitute(match: re.Match[str]) -> str:
        return templates.get(match.group(1).strip(), match.group(0))

    rendered: dict[str, str] = {}
    result = {}
    for key, value in refs.items():
        if isinstance(value, list) and value and isinstance(value[0], str) and "{{" in value[0]:
            url = rendered.get(value[0])
            if url is None:
                url = rendered[value[0]] = budget.text(
                    _TEMPLATE.sub(substitute, value[0]), f"the URL of {key!r} once rendered"
                )
            value = [url, *value[1:]]
        result[key] = value
    return result


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_MAX_INTEGER_BITS = 128  # offsets and lengths are 64-bit: anything far beyond is nonsense


def _arithmetic(op: ast.operator, left: Any, right: Any, budget: _Budget) -> Any:
    """One operation of a template expression, refused before it could build a huge value."""
    if _is_int(left) and _is_int(right):
        if isinstance(op, ast.Add):
            value = left + right
        elif isinstance(op, ast.Sub):
            value = left - right
        elif isinstance(op, ast.Mult):
            value = left * right
        elif isinstance(op, ast.FloorDiv):
            value = left // right
        else:
            value = left % right
        if value.bit_length() > _MAX_INTEGER_BITS:
            raise KerchunkFormatError(f"an integer above 2**{_MAX_INTEGER_BITS}")
        return value
    if isinstance(op, ast.Add) and isinstance(left, str) and isinstance(right, str):
        size = len(left) + len(right)
    elif isinstance(op, ast.Mult) and {type(left), type(right)} == {str, int}:
        text, count = (left, right) if isinstance(left, str) else (right, left)
        size = len(text) * max(count, 0)
    else:
        raise KerchunkFormatError(
            f"{type(op).__name__} of {type(left).__name__} and {type(right).__name__}"
        )
    budget.string(size, "the length of a string a template expression builds")
    return left + right if isinstance(op, ast.Add) else left * right


_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod)


def _evaluate(expression: str, names: Mapping[str, Any], budget: _Budget) -> Any:
    """Integer arithmetic on template variables (``i * 1000 + 8``), nothing else.

    Strings may be joined (``+``) and repeated (``*``) up to ``max_template_bytes``.
    """
    budget.string(len(expression), "the length of a template expression")

    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, int | str)
            and not isinstance(node.value, bool)
        ):
            return node.value
        if isinstance(node, ast.Name) and node.id in names:
            return names[node.id]
        if isinstance(node, ast.BinOp) and isinstance(node.op, _OPERATORS):
            return _arithmetic(node.op, walk(node.left), walk(node.right), budget)
        raise KerchunkFormatError(f"unsupported template expression {expression!r}")

    try:
        return walk(ast.parse(expression, mode="eval"))
    except RecursionError as err:
        raise KerchunkFormatError(f"template expression nested too deeply: {err}") from err


def _render(template: Any, names: Mapping[str, Any], budget: _Budget) -> Any:
    if not isinstance(template, str):
        return template
    whole = _TEMPLATE.fullmatch(template.strip())
    if whole:
        return _evaluate(whole.group(1).strip(), names, budget)
    return _TEMPLATE.sub(lambda m: str(_evaluate(m.group(1).strip(), names, budget)), template)


def _axis_values(name: Any, spec: Any, where: str) -> range | list[Any]:
    """The values of one ``gen`` dimension: a ``{start, stop, step}`` range or a list."""
    if isinstance(spec, list):
        bad = [v for v in spec if not isinstance(v, int | str) or isinstance(v, bool)]
        if bad:
            raise KerchunkFormatError(
                f"{where}: dimension {name!r} lists {bad[0]!r}; values must be integers or strings"
            )
        return spec
    if not isinstance(spec, dict):
        raise KerchunkFormatError(
            f"{where}: dimension {name!r} must be a list of values or an object with "
            f"'start', 'stop' and 'step', got {type(spec).__name__}"
        )
    if "stop" not in spec:
        raise KerchunkFormatError(f"{where}: dimension {name!r} has no 'stop'")
    start, stop, step = spec.get("start", 0), spec["stop"], spec.get("step", 1)
    wrong = [k for k, v in (("start", start), ("stop", stop), ("step", step)) if not _is_int(v)]
    if wrong:
        raise KerchunkFormatError(
            f"{where}: dimension {name!r}: {wrong[0]!r} must be an integer, "
            f"got {spec.get(wrong[0], 1)!r}"
        )
    if step <= 0:
        raise KerchunkFormatError(
            f"{where}: dimension {name!r}: 'step' must be positive, got {step}"
        )
    # len(range) overflows for more than sys.maxsize values: count arithmetically.
    check_limit(
        "max_generated_keys",
        max(-(-(stop - start) // step), 0),
        where,
        f"the number of values of dimension {name!r}",
    )
    return range(start, stop, step)


def _expand_generator(
    generator: Any, templates: Mapping[str, str], budget: _Budget
) -> dict[str, Any]:
    where = budget.where
    if not isinstance(generator, dict) or not {"key", "url", "dimensions"} <= set(generator):
        raise KerchunkFormatError(f"{where}: a 'gen' entry needs 'key', 'url' and 'dimensions'")
    place = f"{where}: 'gen' entry {generator['key']!r}"
    if not isinstance(generator["key"], str) or not isinstance(generator["url"], str):
        raise KerchunkFormatError(f"{place}: 'key' and 'url' must be strings")
    for field in ("offset", "length"):
        if field in generator and not isinstance(generator[field], str | int):
            raise KerchunkFormatError(f"{place}: {field!r} must be a string or an integer")
    dimensions = generator["dimensions"]
    if not isinstance(dimensions, dict):
        raise KerchunkFormatError(f"{place}: 'dimensions' must be an object of names to ranges")
    axes = [(name, _axis_values(name, spec, place)) for name, spec in dimensions.items()]
    check_count(
        "max_generated_keys",
        (len(values) for _, values in axes),
        place,
        "the number of references it generates",
    )
    try:
        return _generated_refs(generator, axes, templates, budget.about(place))
    except LimitExceededError:
        raise
    except (KerchunkFormatError, SyntaxError, TypeError, ValueError, ZeroDivisionError) as err:
        raise KerchunkFormatError(f"{where}: bad 'gen' entry {generator['key']!r}: {err}") from err


def _generated_refs(
    generator: dict[str, Any],
    axes: list[tuple[str, range | list[Any]]],
    templates: Mapping[str, str],
    budget: _Budget,
) -> dict[str, Any]:
    refs = {}
    for combination in itertools.product(*(values for _, values in axes)):
        # Templates first, so that a dimension of the same name wins (as in fsspec).
        names = {**templates, **dict(zip((name for name, _ in axes), combination, strict=True))}
        url = budget.text(str(_render(generator["url"], names, budget)), "a generated URL")
        key = budget.text(str(_render(generator["key"], names, budget)), "a generated key")
        if "offset" in generator or "length" in generator:
            refs[key] = [
                url,
                _integer(_render(generator.get("offset", 0), names, budget), "offset"),
                _integer(_render(generator.get("length", 0), names, budget), "length"),
            ]
        else:
            refs[key] = [url]
    return refs


def _integer(value: Any, field: str) -> int:
    """A rendered ``offset`` or ``length``: an integer, or the text of one."""
    if _is_int(value):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,20}", value.strip()):
        return int(value)
    raise KerchunkFormatError(f"{field} {str(value)[:40]!r} is not an integer")


def _group_from_refs(
    refs: Mapping[str, Any],
    registry: ObjectStoreRegistry,
    where: str,
    *,
    base: str,
    skip: frozenset[str],
) -> VirtualGroup:
    """Build the group tree from a flat refs mapping (metadata keys and chunk keys).

    Relative paths resolve against ``base``'s folder; arrays ``skip`` names are
    left out (their chunk keys still belong to them, so they are not orphans).
    """
    array_paths = [k[: -len("/.zarray")] for k in refs if k.endswith("/.zarray")]
    if ".zarray" in refs:
        raise KerchunkFormatError(f"{where}: a root array (no group) is not supported")
    _check_paths(array_paths, where)
    chunk_refs: dict[str, list[tuple[str, Any]]] = {p: [] for p in array_paths}
    for key, value in refs.items():
        if key.rsplit("/", 1)[-1].startswith(".z"):
            continue
        array_path, chunk_key = _split_chunk_key(key, chunk_refs)
        if array_path is None:
            raise KerchunkFormatError(
                f"{where}: reference {key!r} belongs to no array (no .zarray)"
            )
        chunk_refs[array_path].append((chunk_key, value))
    arrays = {
        path: _array_from_refs(path, refs, chunk_refs[path], registry, where, base)
        for path in array_paths
        if not _is_skipped(path, skip)
    }
    return _nest(arrays, refs, where)


def _check_paths(array_paths: Iterable[str], where: str) -> None:
    """Refuse array paths with a segment that is no name (``..``, empty, ``%2e%2e``...).

    Before anything is read: the parquet layout reads ``<root>/<path>/refs.K.parq``.
    """
    for path in array_paths:
        check_node_path(path, where=where, error=KerchunkFormatError)


def _split_chunk_key(key: str, arrays: Mapping[str, Any]) -> tuple[str | None, str]:
    head, _, tail = key.rpartition("/")
    if head in arrays:
        return head, tail
    # "/"-separated chunk keys: walk up until an array path matches.
    parts = key.split("/")
    for cut in range(len(parts) - 1, 0, -1):
        candidate = "/".join(parts[:cut])
        if candidate in arrays:
            return candidate, ".".join(parts[cut:])
    return None, key


def _array_from_refs(
    path: str,
    refs: Mapping[str, Any],
    entries: list[tuple[str, Any]],
    registry: ObjectStoreRegistry,
    where: str,
    base: str,
) -> AnyArray:
    place = f"{where}: array {path!r}"
    zarray = _as_document(refs[f"{path}/.zarray"], f"{path}/.zarray", where)
    zattrs = _as_document(refs.get(f"{path}/.zattrs", "{}"), f"{path}/.zattrs", where)
    metadata = _array_metadata(zarray, zattrs, place)
    grid = checked_grid(metadata, place)
    inline: dict[tuple[int, ...], bytes] = {}
    inline_keys: list[str] = []
    keys, urls, offsets, lengths = [], [], [], []
    for chunk_key, value in entries:
        if isinstance(value, str | bytes):
            inline[_coords(chunk_key, grid, place)] = _inline_bytes(value, chunk_key, place)
            inline_keys.append(chunk_key)
            continue
        if not isinstance(value, list) or len(value) not in (1, 3) or not isinstance(value[0], str):
            raise KerchunkFormatError(
                f"{place}: chunk {chunk_key!r} has a malformed reference {value!r}"
            )
        keys.append(chunk_key)
        urls.append(_resolve_url(value[0], base, place))
        offsets.append(value[1] if len(value) == 3 else 0)
        lengths.append(value[2] if len(value) == 3 else -1)
    if inline and keys:
        complete = len(keys) + len(inline) == math.prod(grid)
        fill = _missing_chunks_fill(metadata, zarray, set(inline.values()), complete, place)
        if fill is not None:
            return VirtualArray(
                fill, _manifest(keys, urls, offsets, lengths, grid, registry, place)
            )
        _check_inline_total(sum(len(v) for v in inline.values()), place)
        manifest = _manifest(
            keys, urls, offsets, lengths, grid, registry, place, inline_keys, list(inline.values())
        )
        return VirtualArray(metadata, manifest)
    if inline:
        check_in_memory_size(metadata, place)
        return _decode_inline(metadata, inline, place)
    return VirtualArray(metadata, _manifest(keys, urls, offsets, lengths, grid, registry, place))


def _check_inline_total(total: int, where: str) -> None:
    check_limit("max_inline_bytes", total, where, "the total size of its inline chunks in bytes")


def _missing_chunks_fill(
    metadata: ArrayMetadata,
    zarray: Mapping[str, Any],
    inline: set[bytes],
    complete: bool,
    where: str,
) -> ArrayMetadata | None:
    """The metadata that reads vz's stand-ins for missing chunks as missing, or None.

    vz's Kerchunk writer materialises the missing chunks of an array without a CF
    ``_FillValue`` as inline chunks of one value, with a null ``fill_value`` (zarr
    v2's ``fill_value`` would make xarray mask them) and no chunk left out
    (``complete``): the array's fill value is that value and the chunks are missing
    again, which reads the same values. Any other mix of inline and referenced
    chunks (None here) is kept as inline chunks in the manifest.
    """
    if not complete or len(inline) != 1 or zarray.get("fill_value") is not None:
        return None
    if "_FillValue" in metadata.encoding:
        return None
    one_chunk = metadata.evolve(shape=metadata.chunk_shape)
    try:
        check_in_memory_size(one_chunk, where)
        values = _decode_inline(one_chunk, {(0,) * metadata.ndim: next(iter(inline))}, where).data
    except VirtualizationError:
        return None
    flat = np.ascontiguousarray(values).reshape(-1)
    items = flat.view(np.uint8).reshape(flat.size, -1)
    if flat.size == 0 or bool((items != items[0]).any()):
        return None
    filled = metadata.evolve(fill_value=flat[0])
    # Exactly the bytes the writer makes for that value, or a chunk of the file's own
    # (a raw chunk of the wrong length decodes too, and must stay what it is).
    try:
        stand_in = encode_fill_chunk(filled)
    except VirtualizationError:
        return None
    return filled if stand_in == next(iter(inline)) else None


_CHUNK_KEY = re.compile(r"[0-9]{1,19}(?:\.[0-9]{1,19})*")


def _coords(chunk_key: str, grid: tuple[int, ...], where: str) -> tuple[int, ...]:
    """The grid coordinates of an inline chunk's key, checked against the grid."""
    if not _CHUNK_KEY.fullmatch(chunk_key):
        raise KerchunkFormatError(f"{where}: bad chunk key {chunk_key[:60]!r}")
    coords = tuple(int(c) for c in chunk_key.split("."))
    if not grid:
        if coords != (0,):
            raise KerchunkFormatError(f"{where}: a 0-d array has one chunk, '0', not {chunk_key!r}")
        return ()
    if len(coords) != len(grid) or any(c >= g for c, g in zip(coords, grid, strict=True)):
        raise KerchunkFormatError(
            f"{where}: chunk key {chunk_key[:60]!r} lies outside the chunk grid {grid}"
        )
    return coords


def _manifest(
    keys: list[str],
    urls: list[str],
    offsets: list[Any],
    lengths: list[Any],
    grid: tuple[int, ...],
    registry: ObjectStoreRegistry,
    where: str,
    inline_keys: Iterable[str] = (),
    inline_data: Iterable[bytes] = (),
) -> ChunkManifest:
    wrong = [v for v in (*offsets, *lengths) if not isinstance(v, int) or isinstance(v, bool)]
    if wrong:
        raise KerchunkFormatError(
            f"{where}: offsets and lengths must be integers, found {wrong[0]!r}"
        )
    try:
        offset_array = np.asarray(offsets, dtype=np.int64)
        length_array = np.asarray(lengths, dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as err:
        raise KerchunkFormatError(f"{where}: offsets and lengths must be integers: {err}") from err
    if (offset_array < 0).any() or (length_array < -1).any():
        raise KerchunkFormatError(f"{where}: negative offset or length in the references")
    whole = np.flatnonzero(length_array == -1)
    if len(whole):
        sizes = _whole_file_lengths(sorted({urls[i] for i in whole}), registry, where)
        length_array[whole] = [sizes[urls[i]] for i in whole]
    entries: dict[str, dict[str, Any]] = {
        k: {"path": u, "offset": o, "length": n}
        for k, u, o, n in zip(keys, urls, offset_array.tolist(), length_array.tolist(), strict=True)
    }
    entries.update((k, {"data": d}) for k, d in zip(inline_keys, inline_data, strict=True))
    try:
        return ChunkManifest.from_entries(entries, grid=grid)
    except VirtualizationError as err:
        raise KerchunkFormatError(f"{where}: {err}") from err


def _nest(arrays: Mapping[str, AnyArray], metadata: Mapping[str, Any], where: str) -> VirtualGroup:
    """Arrays at ``a/b/name`` paths into nested groups, with each group's .zattrs."""

    def attributes_of(prefix: str) -> dict[str, Any]:
        key = f"{prefix}/.zattrs" if prefix else ".zattrs"
        return _as_document(metadata.get(key, "{}"), key, where)

    empty_groups = [k[: -len("/.zgroup")] for k in metadata if k.endswith("/.zgroup")]
    _check_paths(empty_groups, where)
    return nest_arrays(arrays, attributes_of, group_paths=empty_groups)


# ---- parquet ----------------------------------------------------------------------------


@attrs.frozen
class KerchunkParquetParser:
    """Parser for references in fsspec's parquet layout (``.zmetadata`` + ``refs.K.parq``).

    Attributes
    ----------
    fs_root
        Root URL (or absolute path) against which relative reference paths such
        as ``"data/a.nc"`` resolve: with ``fs_root="s3://bucket/"`` that chunk is
        read from ``s3://bucket/data/a.nc``. It names a folder (a trailing ``/``
        is implied). Without it, relative paths are relative to the references
        folder itself (fsspec's convention). Absolute paths and URLs are kept as they are.
    skip_variables
        Variables left out of the group without being parsed (so one vz cannot
        represent can be skipped): a name skips that array in every group, a
        path (``"sub/x"``) only that one.
    fingerprint_sources
        As for `KerchunkJSONParser`: record each referenced file's fingerprint.
    """

    fs_root: str | None = attrs.field(default=None, converter=_to_fs_root)
    skip_variables: frozenset[str] = attrs.field(default=(), converter=_to_names)
    fingerprint_sources: bool = False

    priority = -20

    @classmethod
    def can_open(cls, probe: Probe) -> bool:
        """A folder whose ``.zmetadata`` has fsspec's ``record_size`` and ``metadata`` keys."""
        if probe.head is not None:
            return False
        zmetadata = probe.member_json(".zmetadata")
        return (
            isinstance(zmetadata, dict)
            and isinstance(zmetadata.get("metadata"), dict)
            and isinstance(zmetadata.get("record_size"), int)
        )

    def __call__(self, url: str, registry: ObjectStoreRegistry) -> VirtualGroup:
        root = url.rstrip("/")
        where = f"{root}/.zmetadata"
        document = read_document(source(registry, where), where=where)
        try:
            zmetadata = load_json(document, where=where, error=KerchunkFormatError)
        except KerchunkFormatError as err:
            raise KerchunkFormatError(f"{url}: malformed .zmetadata: {err}") from err
        metadata = zmetadata.get("metadata") if isinstance(zmetadata, dict) else None
        record_size = zmetadata.get("record_size") if isinstance(zmetadata, dict) else None
        if not isinstance(metadata, dict):
            raise KerchunkFormatError(f"{where}: malformed .zmetadata: no 'metadata' object")
        if not isinstance(record_size, int) or isinstance(record_size, bool) or record_size < 1:
            raise KerchunkFormatError(
                f"{where}: malformed .zmetadata: 'record_size' must be a positive integer, "
                f"got {record_size!r}"
            )
        array_paths = [
            k[: -len("/.zarray")]
            for k in metadata
            if k.endswith("/.zarray")
            and not _is_skipped(k[: -len("/.zarray")], self.skip_variables)
        ]
        _check_paths(array_paths, where)
        arrays = {p: self._array(root, p, metadata, record_size, registry) for p in array_paths}
        group = _nest(arrays, metadata, url)
        if self.fingerprint_sources:
            return _fingerprinted(group, registry)
        return _with_sidecar(group, registry, sources_sidecar(url, folder=True))

    def _array(
        self,
        root: str,
        path: str,
        metadata: Mapping[str, Any],
        record_size: int,
        registry: ObjectStoreRegistry,
    ) -> AnyArray:
        place = f"{root}: array {path!r}"
        zarray = _as_document(metadata[f"{path}/.zarray"], f"{path}/.zarray", root)
        zattrs = _as_document(metadata.get(f"{path}/.zattrs", {}), f"{path}/.zattrs", root)
        array_metadata = _array_metadata(zarray, zattrs, place)
        grid = checked_grid(array_metadata, place)
        n_chunks = math.prod(grid)
        n_files = -(-n_chunks // record_size)
        check_limit(
            "max_reference_files",
            n_files,
            place,
            f"the number of parquet reference files ({n_chunks} chunks, {record_size} per file)",
        )
        tables = [self._record(root, path, k, record_size, registry, place) for k in range(n_files)]
        if not tables:
            return VirtualArray(array_metadata, ChunkManifest.empty(grid))
        table = pa.concat_tables(tables, promote_options="permissive").slice(0, n_chunks)
        if table.num_rows != n_chunks:
            raise KerchunkFormatError(f"{place}: {table.num_rows} references for {n_chunks} chunks")
        base = self.fs_root or root + "/"
        return _array_from_table(array_metadata, zarray, table, registry, base, place)

    @staticmethod
    def _record(
        root: str, path: str, k: int, record_size: int, registry: ObjectStoreRegistry, place: str
    ) -> pa.Table:
        url = f"{root}/{path}/refs.{k}.parq"
        try:
            data = source(registry, url).read()
        except SourceReadError as err:
            raise err.about(f"{place}: cannot read {url}") from err
        try:
            footer = pq.ParquetFile(pa.BufferReader(data)).metadata
            # What the footer declares, before anything is decompressed.
            if footer.num_rows > record_size:
                raise KerchunkFormatError(
                    f"{place}: {url} has {footer.num_rows} rows, more than the record size "
                    f"{record_size}"
                )
            check_parquet_size(footer, url)
            table = pq.read_table(pa.BufferReader(data), read_dictionary=["path"])
            table.validate(full=True)  # UTF-8 of the paths, indices of their dictionary
        except (OSError, pa.ArrowException, UnicodeDecodeError) as err:  # names not UTF-8
            raise KerchunkFormatError(f"{place}: cannot read {url}: {err}") from err
        missing = {"path", "offset", "size"} - set(table.column_names)
        if missing:
            raise KerchunkFormatError(f"{place}: {url} lacks columns {sorted(missing)}")
        try:
            return _record_columns(table)
        except pa.ArrowException as err:
            raise KerchunkFormatError(f"{place}: {url} has malformed columns: {err}") from err


def _record_columns(table: pa.Table) -> pa.Table:
    # Paths stay dictionary-encoded: decoding them would copy every URL once per chunk.
    path_column = table.column("path")
    value_type = (
        path_column.type.value_type
        if pa.types.is_dictionary(path_column.type)
        else path_column.type
    )
    if not (
        pa.types.is_string(value_type)
        or pa.types.is_large_string(value_type)
        or pa.types.is_null(value_type)
    ):
        # Numbers would become relative paths ("1") that look like references.
        raise pa.ArrowInvalid(f"column 'path' must hold strings, not {path_column.type}")
    if not pa.types.is_dictionary(path_column.type):
        path_column = path_column.cast(pa.string()).dictionary_encode()
    columns = {
        "path": path_column.cast(pa.dictionary(pa.int32(), pa.string())),
        "offset": table.column("offset").cast(pa.int64()),
        "size": table.column("size").cast(pa.int64()),
        "raw": table.column("raw").cast(pa.binary())
        if "raw" in table.column_names
        else pa.nulls(table.num_rows, pa.binary()),
    }
    return pa.table(columns)


def _array_from_table(
    metadata: ArrayMetadata,
    zarray: Mapping[str, Any],
    table: pa.Table,
    registry: ObjectStoreRegistry,
    base: str,
    place: str,
) -> AnyArray:
    raw = table.column("raw")
    inline: pa.ChunkedArray | None = None
    if raw.null_count < len(raw):
        has_path = pc.is_valid(table.column("path"))
        if pc.any(pc.and_(has_path, pc.is_valid(raw))).as_py():
            raise KerchunkFormatError(f"{place}: a chunk has both a path and inline bytes")
        if pc.any(has_path).as_py():
            complete = (pc.sum(pc.or_(has_path, pc.is_valid(raw))).as_py() or 0) == len(raw)
            fill = _missing_chunks_fill(
                metadata, zarray, set(pc.unique(raw.drop_null()).to_pylist()), complete, place
            )
            if fill is not None:
                table = table.set_column(
                    table.schema.get_field_index("raw"), "raw", pa.nulls(len(raw), pa.binary())
                )
                return _array_from_table(fill, zarray, table, registry, base, place)
            _check_inline_total(int(pc.sum(pc.binary_length(raw)).as_py() or 0), place)
            inline = raw
        else:
            return _all_inline(metadata, raw, place)
    paths = table.column("path")
    offsets = table.column("offset")
    sizes = table.column("size")
    if pc.any(pc.less(offsets, 0)).as_py() or pc.any(pc.less(sizes, 0)).as_py():
        raise KerchunkFormatError(f"{place}: negative offset or size in the references")
    if inline is not None:
        # Inline rows have no path; their offset and size are not references.
        has_path = pc.is_valid(paths)
        offsets = pc.if_else(has_path, offsets, pa.scalar(0, pa.int64()))
        sizes = pc.if_else(has_path, sizes, pa.scalar(0, pa.int64()))
    whole = pc.and_(pc.is_valid(paths), pc.and_(pc.equal(offsets, 0), pc.equal(sizes, 0)))
    if pc.any(whole).as_py():
        distinct = pc.unique(pc.filter(paths, whole)).to_pylist()
        lengths = _whole_file_lengths(
            [_resolve_url(u, base, place) for u in distinct], registry, place
        )
        size_of = pa.array([lengths[_resolve_url(u, base, place)] for u in distinct], pa.int64())
        looked_up = pc.take(size_of, pc.index_in(paths, pa.array(distinct)))
        sizes = pc.if_else(whole, looked_up, sizes)
    columns = {"path": _absolute_paths(paths, base, place), "offset": offsets, "length": sizes}
    if inline is not None:
        columns["data"] = inline
    try:
        manifest = ChunkManifest.from_arrow(pa.table(columns), grid=metadata.grid_shape)
    except VirtualizationError as err:
        raise KerchunkFormatError(f"{place}: {err}") from err
    return VirtualArray(metadata, manifest)


def _all_inline(metadata: ArrayMetadata, raw: pa.ChunkedArray, place: str) -> LoadedArray:
    """An array whose chunks are all inline bytes, decoded into memory."""
    check_in_memory_size(metadata, place)
    rows = np.flatnonzero(pc.is_valid(raw).to_numpy(zero_copy_only=False))
    grid = metadata.grid_shape
    chunks = {
        tuple(int(c) for c in np.unravel_index(r, grid)) if grid else (): raw[int(r)].as_py()
        for r in rows
    }
    return _decode_inline(metadata, chunks, place)


def _absolute_paths(paths: pa.ChunkedArray, base: str, where: str) -> pa.ChunkedArray:
    """The dictionary-encoded ``path`` column with relative paths resolved against ``base``.

    Before the manifest is built, which would take a relative path as a local one.
    """
    chunks = []
    for chunk in paths.chunks:
        resolved = pa.array(
            [_resolve_url(u, base, where) for u in chunk.dictionary.to_pylist()], pa.string()
        ).dictionary_encode()
        chunks.append(
            pa.DictionaryArray.from_arrays(
                pc.take(resolved.indices, chunk.indices), resolved.dictionary
            )
        )
    return pa.chunked_array(chunks, type=paths.type)
