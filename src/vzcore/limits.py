"""Bounds on the work one reference document may ask of vz, and their checks.

Reference formats declare sizes the parser would otherwise trust: a chunk grid of
2**62 chunks, a Kerchunk ``gen`` of 10**12 keys, a template that renders a gigabyte,
a parquet file that decompresses to 150 million rows, JSON nested 100 000 deep.
Every parser checks what it is about to build against the current `Limits`
*before* allocating it (the sizes are computed arithmetically from what the input
declares), and refuses with a `LimitExceededError` naming the file, the variable or
key, the limit and how to raise it.

The limits are a context variable: blocks nest, asyncio tasks and functions run
with `contextvars.copy_context` inherit them, and each thread starts with its own
(the defaults). To carry them into a pool's workers (threads or processes), hand
the workers `current_limits()`, a small picklable value, and let each run inside
``with limits(that_value):``.

>>> import vzcore as vc
>>> with vc.limits(max_chunks=10):
...     vc.current_limits().max_chunks
10
>>> vc.current_limits().max_chunks == Limits().max_chunks
True
"""

from __future__ import annotations

import contextvars
import json
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from vzcore.errors import LimitExceededError, VirtualizationError

if TYPE_CHECKING:
    import pyarrow.parquet as pq

    from vzcore.byteranges import Source

__all__ = [
    "LimitExceededError",
    "Limits",
    "check_count",
    "check_limit",
    "check_parquet_size",
    "current_limits",
    "json_depth",
    "limits",
    "load_json",
    "read_document",
]


def _positive(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise VirtualizationError(
            f"limit {attribute.name} must be a positive integer, got {value!r}"
        )


def _limit(default: int, doc: str) -> Any:
    return attrs.field(default=default, validator=_positive, metadata={"doc": doc})


@attrs.frozen(kw_only=True)
class Limits:
    """The bounds parsers enforce on what reference documents declare.

    Attributes
    ----------
    max_chunks
        Chunks in the grid of one array (the rows of its manifest, about 20 bytes
        each in memory), and rows of one stored manifest table. Default 10**8.
    max_document_bytes
        Bytes of one JSON document read whole (Kerchunk JSON, ``.zmetadata``,
        ``zarr.json``, ``vz-group.json``), of the references a Kerchunk ``gen`` and
        its templates expand to, and of one stored manifest table once
        decompressed. Default 2 GiB.
    max_json_depth
        Nesting of arrays and objects in a JSON document. Default 512.
    max_generated_keys
        References one Kerchunk ``gen`` entry expands to. Default 10**7.
    max_template_bytes
        Characters of one rendered Kerchunk template or one value computed by a
        ``gen`` expression. Default 64 KiB.
    max_inline_bytes
        Decoded bytes of an array vz builds in memory from inline data (Kerchunk
        inline chunks, a loaded array of a manifest parquet file), and the bytes of
        the inline chunks one manifest holds together. Default 256 MiB.
    max_reference_files
        Parquet reference files (``refs.K.parq``) one array of Kerchunk parquet
        references may need. Default 10**5.
    max_group_depth
        Levels of nested groups (the ``/``-separated segments of an array's path).
        Default 128.
    """

    max_chunks: int = _limit(10**8, "chunks of one array")
    max_document_bytes: int = _limit(2 << 30, "bytes of one JSON document")
    max_json_depth: int = _limit(512, "nesting of one JSON document")
    max_generated_keys: int = _limit(10**7, "keys of one Kerchunk gen entry")
    max_template_bytes: int = _limit(64 << 10, "characters of one rendered template")
    max_inline_bytes: int = _limit(256 << 20, "decoded bytes of an inline array")
    max_reference_files: int = _limit(10**5, "parquet reference files of one array")
    max_group_depth: int = _limit(128, "levels of nested groups")


# Limits is frozen: a shared default cannot be changed in place.
_CURRENT: contextvars.ContextVar[Limits] = contextvars.ContextVar(
    "vz_limits",
    default=Limits(),  # noqa: B039
)


def current_limits() -> Limits:
    """The limits in force here (the defaults outside any ``with limits(...)``)."""
    return _CURRENT.get()


@contextmanager
def limits(base: Limits | None = None, /, **overrides: int) -> Iterator[Limits]:
    """Change some limits inside a ``with`` block (nestable; restored on exit).

    ``base`` replaces all of them (e.g. the limits a pool's submitter had); the
    keyword arguments change single ones.

    >>> import vzcore as vc
    >>> with vc.limits(max_chunks=2**31) as raised:
    ...     raised.max_chunks
    2147483648

    Raises
    ------
    VirtualizationError
        If a name is not a limit or a value is not a positive integer.
    """
    unknown = sorted(set(overrides) - set(attrs.fields_dict(Limits)))
    if unknown:
        raise VirtualizationError(
            f"unknown limits {unknown}; the limits are {sorted(attrs.fields_dict(Limits))}"
        )
    if base is not None and not isinstance(base, Limits):
        raise VirtualizationError(f"limits() takes a Limits value, got {type(base).__name__}")
    changed = attrs.evolve(base or _CURRENT.get(), **overrides)
    token = _CURRENT.set(changed)
    try:
        yield changed
    finally:
        _CURRENT.reset(token)


def check_limit(name: str, needed: int, where: str, what: str) -> None:
    """Refuse ``needed`` (a Python int, never overflowing) above the current limit ``name``.

    ``where`` names the file and the variable or key; ``what`` says what is counted.
    """
    limit: int = getattr(_CURRENT.get(), name)
    if needed > limit:
        raise LimitExceededError(
            f"{where}: {what} is {needed}, above the limit {name}={limit} "
            f"(raise it with vzcore.limits({name}=...) if the input is trusted)",
            limit=name,
            value=limit,
            needed=needed,
        )


def check_count(name: str, factors: Iterable[int], where: str, what: str) -> int:
    """The product of ``factors`` (Python ints), refused above the limit ``name``."""
    product = math.prod(factors)
    check_limit(name, product, where, what)
    return product


# ---- JSON -------------------------------------------------------------------------------

_BLOCK = 1 << 23
_SPECIAL = np.zeros(256, dtype=bool)
_SPECIAL[[ord(c) for c in '"\\[]{}']] = True
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_STEP = np.zeros(256, dtype=np.int64)
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1


def json_depth(data: bytes | memoryview, *, stop_above: int | None = None) -> int:
    """The deepest nesting of arrays and objects in a JSON text (brackets in strings excluded).

    Vectorised over blocks of the bytes; stops early once ``stop_above`` is passed.

    >>> json_depth(b'{"a": [1, {"b": "]]"}]}')
    3
    """
    text = np.frombuffer(data, dtype=np.uint8)
    depth = deepest = 0
    in_string = False
    start = 0
    while start < len(text):
        end = _block_end(text, start)
        block = text[start:end]
        positions = np.flatnonzero(_SPECIAL[block])
        chars = block[positions]
        escaped = _escaped(positions, chars)
        toggles = (chars == _QUOTE) & ~escaped
        # A bracket counts when an even number of unescaped quotes came before it.
        inside = (np.cumsum(toggles) - toggles) % 2 == 1
        if in_string:
            inside = ~inside
        steps = np.where(inside | toggles, 0, _STEP[chars])
        levels = depth + np.cumsum(steps)
        if len(levels):
            deepest = max(deepest, int(levels.max()))
            depth = int(levels[-1])
        in_string ^= bool(toggles.sum() % 2)
        if stop_above is not None and deepest > stop_above:
            break
        start = end
    return deepest


def _block_end(text: np.ndarray, start: int) -> int:
    """The end of the block from ``start``: never just after a backslash (it escapes on)."""
    end = min(start + _BLOCK, len(text))
    while end < len(text) and text[end - 1] == _BACKSLASH:
        following = np.flatnonzero(text[end : end + _BLOCK] != _BACKSLASH)
        end = end + int(following[0]) + 1 if len(following) else min(end + _BLOCK, len(text))
    return end


def _escaped(positions: np.ndarray, chars: np.ndarray) -> np.ndarray:
    """Which special characters follow an odd run of backslashes (in one block)."""
    is_backslash = chars == _BACKSLASH
    if not is_backslash.any():
        return np.zeros(len(chars), dtype=bool)
    index = np.arange(len(chars))
    adjacent = np.zeros(len(chars), dtype=bool)
    adjacent[1:] = (positions[1:] == positions[:-1] + 1) & is_backslash[:-1]
    # Length of the backslash run ending at each backslash.
    run_start = np.maximum.accumulate(np.where(is_backslash & ~adjacent, index, 0))
    run_length = np.where(is_backslash, index - run_start + 1, 0)
    escaped = np.zeros(len(chars), dtype=bool)
    escaped[1:] = adjacent[1:] & (run_length[:-1] % 2 == 1)
    return escaped


def load_json(
    data: bytes | memoryview | str,
    *,
    where: str,
    what: str = "the document",
    error: type[VirtualizationError] = VirtualizationError,
) -> Any:
    """Parse a JSON document within the limits: size and depth checked before parsing.

    ``where`` names the file, ``what`` the document in it (a key, for documents
    embedded in others).

    Raises
    ------
    LimitExceededError
        If the document is larger than ``max_document_bytes`` or nested deeper
        than ``max_json_depth``.
    VirtualizationError
        Of class ``error``, if it is not valid JSON (naming ``where`` and the reason).
    """
    raw = data.encode(errors="surrogatepass") if isinstance(data, str) else data
    bounds = _CURRENT.get()
    check_limit("max_document_bytes", len(raw), where, f"the size of {what} in bytes")
    depth = json_depth(raw, stop_above=bounds.max_json_depth)
    check_limit("max_json_depth", depth, where, f"the nesting depth of {what}")
    try:
        return json.loads(bytes(raw) if isinstance(raw, memoryview) else raw)
    except RecursionError as err:  # a depth below the limit but above the interpreter's
        raise LimitExceededError(
            f"{where}: {what} is nested too deeply for the interpreter",
            limit="max_json_depth",
            value=bounds.max_json_depth,
            needed=depth,
        ) from err
    except ValueError as err:
        raise error(f"{where}: {what} is not valid JSON: {err}") from err


def read_document(file: Source, *, where: str, what: str = "the document") -> memoryview:
    """The whole of ``file``, its size checked against ``max_document_bytes`` first.

    One HEAD request (where the store has them) before the read, so that a huge
    object is refused before its bytes are fetched.
    """
    check_limit("max_document_bytes", file.size(), where, f"the size of {what} in bytes")
    return file.read()


def check_parquet_size(footer: pq.FileMetaData, where: str) -> None:
    """Refuse a parquet file whose footer declares more than the limits allow, unread.

    Its rows against ``max_chunks`` and its decompressed size against
    ``max_document_bytes``: a few megabytes of zeros can decompress to 150 million rows.
    """
    check_limit("max_chunks", footer.num_rows, where, "the number of rows of the parquet file")
    decoded = sum(footer.row_group(i).total_byte_size for i in range(footer.num_row_groups))
    check_limit(
        "max_document_bytes", decoded, where, "the decompressed size of the parquet file in bytes"
    )
