"""The fuzz harness: real sample files, mutated, parsed and read by vz in a bounded worker.

Seeds are the samples of the parser contracts (`tests.parser_contract`): one small
file or store per format, with the format's own library as reference reader. A
case is a seed and a list of mutations (`Op`): bit flips, bytes set to huge values
or to offsets past the end, truncation, an offset copied into a field (cycles:
an IFD chain or a B-tree link pointing back), and for JSON, XML and parquet
documents a node, attribute or cell replaced by a wrong type, a huge or negative
number, a path leaving the folder, a deep nest. Mutations land on structure
boundaries found cheaply per format (`boundaries`) or anywhere.

Cases run in a `WorkerPool`: persistent worker processes under an address-space
limit, each case under a time limit (a worker that hangs or dies is replaced and
the case reported). The outcome of a case is one of `OUTCOMES`; `FAILURES` are the
ones that are bugs: an error that is not a `VirtualizationError` or does not name
the file, a hang, a dead worker, or values that differ from what the reference
library reads from the same mutated file.

Drawing is through a `Draw` (an ``integers(lo, hi)`` callable), so hypothesis
(`properties/test_fuzz.py`, shrinking) and a plain `random.Random`
(``benchmarks/fuzz_long.py``, many cases) make the same kinds of cases.
"""

from __future__ import annotations

import copy
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import re
import shutil
import struct
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

type Op = tuple[Any, ...]
type Draw = Callable[[int, int], int]

# The formats of issue 20 and the contract classes whose samples and readers they use.
CONTRACTS: dict[str, tuple[str, str]] = {
    "hdf5": ("tests.test_parser_contract", "TestHDF5Contract"),
    "netcdf3": ("tests.test_parser_contract", "TestNetCDF3Contract"),
    "tiff": ("tests.test_parser_contract", "TestTIFFContract"),
    "fits": ("tests.test_fits", "TestFITSContract"),
    "grib": ("tests.test_parser_contract", "TestGRIBContract"),
    "hdf4": ("tests.test_parser_contract", "TestHDF4Contract"),
    "dmrpp": ("tests.test_parser_contract", "TestDMRPPContract"),
    "kerchunk_json": ("tests.test_parser_contract", "TestKerchunkJSONContract"),
    "kerchunk_parquet": ("tests.test_parser_contract", "TestKerchunkParquetContract"),
    "zarr_v2": ("tests.test_parser_contract", "TestZarrV2Contract"),
    "zarr_v3": ("tests.test_parser_contract", "TestZarrV3Contract"),
    "manifest_parquet": ("tests.test_parser_contract", "TestManifestParquetContract"),
}
FORMATS = tuple(CONTRACTS)

# Reference documents: their reference values are the data file's, which is never
# mutated; a mutated document may rightly point at other bytes ("doc_changed").
DOCUMENT_FORMATS = frozenset({"dmrpp", "kerchunk_json", "kerchunk_parquet", "manifest_parquet"})

OUTCOMES = (
    "typed_error",  # a VirtualizationError naming the file
    "equal",  # values equal the reference library's read of the mutated file
    "equal_original",  # the reference library fails; vz's values equal the unmutated ones
    "ref_fails_differs",  # the reference library fails; vz read values that differ
    "doc_changed",  # a mutated reference document points at other bytes; vz read them
    "too_large",  # parsed; the arrays declare more than READ_CAP bytes, so are not read
    "ref_hang",  # vz finished; the reference library hung or died on the mutated file
    "unnamed_error",  # a VirtualizationError that does not name the file
    "crash",  # any other exception
    "wrong",  # values differ from the reference library's read of the mutated file
    "store_differs",  # read through zarr on a ManifestStore, values differ from read_arrays'
    "hang",  # vz took longer than the time limit
    "died",  # the worker process died (a segfault, an abort, the kernel's OOM killer)
)
FAILURES = frozenset({"unnamed_error", "crash", "wrong", "store_differs", "hang", "died"})

READ_CAP = 64 << 20  # bytes of values a case reads back; more is "too_large"
MEMORY_LIMIT = 6 << 30  # address space of a worker (its libraries reserve almost 3 GiB)
RECYCLE = 4000  # cases a worker runs before it is replaced (its caches grow slowly)
TIME_LIMIT = 30.0  # seconds of one case's vz part (and, separately, its reference read)
MAX_BOUNDARIES = 4000

# ---- seeds -------------------------------------------------------------------------------


def _contract(fmt: str) -> Any:
    import importlib

    module, name = CONTRACTS[fmt]
    return getattr(importlib.import_module(module), name)()


def make_seeds(root: Path, formats: Sequence[str] = FORMATS) -> dict[str, Seed]:
    """Write each format's contract sample under ``root/<format>`` and index its files."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seeds = {}
        for fmt in formats:
            folder = root / fmt
            folder.mkdir(parents=True, exist_ok=True)
            contract = _contract(fmt)
            contract.make_sample(folder)
            seeds[fmt] = Seed.index(fmt, folder, contract.source_name)
        return seeds


class Seed:
    """One format's sample folder: the files mutations may touch, their kinds and boundaries."""

    def __init__(
        self,
        fmt: str,
        folder: Path,
        source_name: str,
        files: list[tuple[str, str, list[int], int]],
    ) -> None:
        self.fmt = fmt
        self.folder = folder
        self.source_name = source_name
        self.files = files  # (relative path, kind, boundaries, size)

    @classmethod
    def index(cls, fmt: str, folder: Path, source_name: str) -> Seed:
        source = folder / source_name
        paths = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
        files = []
        for path in paths:
            kind = _kind(path)
            found = sorted(set(boundaries(fmt, kind, path)))[:MAX_BOUNDARIES]
            files.append((path.relative_to(folder).as_posix(), kind, found, path.stat().st_size))
        return cls(fmt, folder, source_name, files)


def _kind(path: Path) -> str:
    data = path.read_bytes()
    if data[:4] == b"PAR1":
        return "parquet"
    if path.suffix == ".dmrpp":
        return "xml"
    if path.name in {".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json"} or (
        path.suffix == ".json"
    ):
        return "json"
    return "binary"


# ---- structure boundaries ------------------------------------------------------------------


def boundaries(fmt: str, kind: str, path: Path) -> list[int]:
    """Offsets of structures and their fields in one file, found cheaply (never complete)."""
    data = path.read_bytes()
    found = [0, len(data), max(len(data) - 8, 0), max(len(data) - 4, 0)]
    if kind in {"json", "xml"}:
        found += [m.start() for m in re.finditer(rb'[{}\[\]:,"<>=]', data)]
    elif kind == "parquet":
        (footer,) = struct.unpack("<i", data[-8:-4])
        found += [4, len(data) - 8 - footer, *range(len(data) - 8 - footer, len(data), 7)]
    elif fmt in {"hdf5"}:
        found += _hdf5_boundaries(path, data)
    elif fmt == "tiff":
        found += _tiff_boundaries(path)
    elif fmt == "fits":
        found += [p for start in range(0, len(data), 80) for p in (start, start + 10)]
    elif fmt == "grib":
        found += _grib_boundaries(data)
    elif fmt == "netcdf3":
        found += list(range(0, min(len(data), 1024), 4))
    elif fmt == "hdf4":
        found += _hdf4_boundaries(data)
    else:  # a chunk or shard of a Zarr store: codec headers are at its start
        found += list(range(0, min(len(data), 64), 4))
    return [p for p in found if 0 <= p <= len(data)]


_HDF5_SIGNATURES = (
    b"\x89HDF",
    b"OHDR",
    b"OCHK",
    b"TREE",
    b"HEAP",
    b"GCOL",
    b"SNOD",
    b"BTHD",
    b"BTIN",
    b"BTLF",
    b"FRHP",
    b"FHDB",
    b"FHIB",
    b"FSHD",
    b"FSSE",
)


def _hdf5_boundaries(path: Path, data: bytes) -> list[int]:
    import h5py

    found: list[int] = []
    for signature in _HDF5_SIGNATURES:
        for match in re.finditer(re.escape(signature), data):
            found += range(match.start(), match.start() + 48, 4)
    addresses: list[int] = []
    with h5py.File(path, "r") as handle:

        def visit(name: str, node: Any) -> None:
            addresses.append(h5py.h5o.get_info(node.id).addr)
            if isinstance(node, h5py.Dataset):
                offset = node.id.get_offset()
                if offset is not None:
                    addresses.append(offset)
                if node.chunks is not None:
                    chunks = range(node.id.get_num_chunks())
                    addresses.extend(node.id.get_chunk_info(i).byte_offset for i in chunks)

        addresses.append(h5py.h5o.get_info(handle.id).addr)
        handle.visititems(visit)
    for address in addresses:
        found += range(address, address + 32, 2)
    return found


def _tiff_boundaries(path: Path) -> list[int]:
    import tifffile

    found: list[int] = [4]
    with tifffile.TiffFile(path) as tif:
        for page in tif.pages:
            offset = page.offset
            count = len(page.tags)
            found += [offset, offset + 2 + 12 * count]
            for i in range(count):
                entry = offset + 2 + 12 * i
                found += [entry, entry + 2, entry + 4, entry + 8]
            found += list(page.dataoffsets)
    return found


def _grib_boundaries(data: bytes) -> list[int]:
    found: list[int] = []
    for match in re.finditer(b"GRIB", data):
        start = match.start()
        found += range(start, start + 16)
        if data[start + 7] != 2:
            continue
        position = start + 16
        while position + 5 <= len(data) and data[position : position + 4] != b"7777":
            (length,) = struct.unpack(">I", data[position : position + 4])
            found += range(position, position + 16)
            if length < 5:
                break
            position += length
        found.append(position)
    return found


def _hdf4_boundaries(data: bytes) -> list[int]:
    found: list[int] = []
    block, seen = 4, set()
    while 0 < block < len(data) - 6 and block not in seen:
        seen.add(block)
        ndd, following = struct.unpack(">HI", data[block : block + 6])
        found += [block, block + 2]
        for i in range(ndd):
            entry = block + 6 + 12 * i
            if entry + 12 > len(data):
                break
            found += [entry, entry + 2, entry + 4, entry + 8]
            offset, _ = struct.unpack(">II", data[entry + 4 : entry + 12])
            found += [offset, offset + 2, offset + 4, offset + 8]
        block = following
    return found


# ---- mutations ----------------------------------------------------------------------------

_WIDTHS = (1, 2, 4, 8)
_JSON_KINDS = 18
_XML_VALUES = (
    "-1",
    "0",
    "18446744073709551616",
    "99999999999999999999999",
    "4294967295",
    "",
    "x",
    "[0,0,0,0,0]",
    "[99999999999]",
    "../../outside.h5",
    "file:///etc/passwd",
    "1e400",
    "NaN",
    "%2e%2e/%2e%2e/outside",
)
_CELL_KINDS = 9


def draw_ops(draw: Draw, seed: Seed) -> list[Op]:
    """A list of one to three mutations of ``seed``'s files."""
    ops = []
    for _ in range(draw(1, 3)):
        index = draw(0, len(seed.files) - 1)
        _, kind, found, size = seed.files[index]
        choices = ["flip", "huge", "truncate", "pointer", "bytes"]
        if kind == "json":
            choices += ["json"] * 6
        elif kind == "xml":
            choices += ["xml"] * 6
        elif kind == "parquet":
            choices += ["cell"] * 4
        op = choices[draw(0, len(choices) - 1)]

        def where(found: list[int] = found, size: int = size) -> int:
            if found and draw(0, 3):
                return found[draw(0, len(found) - 1)]
            return draw(0, max(size - 1, 0))

        if op == "flip":
            ops.append(("flip", index, draw(0, max(size - 1, 0)), draw(0, 7)))
        elif op == "bytes":
            ops.append(("bytes", index, where(), draw(0, 255), draw(1, 4)))
        elif op == "huge":
            ops.append(("huge", index, where(), _WIDTHS[draw(0, 3)], draw(0, 4), draw(0, 1)))
        elif op == "truncate":
            ops.append(("truncate", index, where()))
        elif op == "pointer":
            target = found[draw(0, len(found) - 1)] if found else 0
            ops.append(("pointer", index, where(), target, _WIDTHS[draw(1, 3)], draw(0, 1)))
        elif op == "json":
            ops.append(("json", index, draw(0, 10**6), draw(0, _JSON_KINDS - 1)))
        elif op == "xml":
            ops.append(("xml", index, draw(0, 10**6), draw(0, len(_XML_VALUES) - 1)))
        else:
            ops.append(("cell", index, draw(0, 10**3), draw(0, 10**6), draw(0, _CELL_KINDS - 1)))
    return ops


def _huge_value(pattern: int, width: int, size: int) -> int:
    top = (1 << (8 * width)) - 1
    return [top, top >> 1, 1 << (8 * width - 1), min(size + 1, top), min(size + 4096, top)][pattern]


def apply_ops(files: dict[str, bytes], seed: Seed, ops: Sequence[Op]) -> dict[str, bytes]:
    """The mutated bytes of each file ``ops`` touch (``files``: the originals, by path)."""
    out: dict[str, bytearray] = {}
    for op in ops:
        name = seed.files[op[1]][0]
        data = out.setdefault(name, bytearray(files[name]))
        if not data:
            continue
        kind = op[0]
        if kind == "flip":
            data[op[2] % len(data)] ^= 1 << op[3]
        elif kind == "bytes":
            position = min(op[2], len(data) - 1)
            data[position : position + op[4]] = bytes([op[3]]) * op[4]
        elif kind == "huge":
            _, _, position, width, pattern, big = op
            value = _huge_value(pattern, width, len(files[name]))
            _put(data, position, value, width, big)
        elif kind == "pointer":
            _, _, position, target, width, big = op
            _put(data, position, min(target, (1 << (8 * width)) - 1), width, big)
        elif kind == "truncate":
            del data[op[2] :]
        elif kind == "json":
            data[:] = _mutate_json(bytes(data), op[2], op[3])
        elif kind == "xml":
            data[:] = _mutate_xml(bytes(data), op[2], op[3])
        elif kind == "cell":
            data[:] = _mutate_parquet(bytes(data), op[2], op[3], op[4])
    return {name: bytes(data) for name, data in out.items()}


def _put(data: bytearray, position: int, value: int, width: int, big: int) -> None:
    position = min(position, max(len(data) - width, 0))
    data[position : position + width] = value.to_bytes(width, "big" if big else "little")


class _Embedded:
    """A JSON document held as a string inside another (Kerchunk's ``.zarray`` values)."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _embed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _embed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_embed(v) for v in value]
    if isinstance(value, str) and value[:1] in "{[" and len(value) < 1 << 16:
        try:
            return _Embedded(_embed(json.loads(value)))
        except ValueError:
            return value
    return value


def _unembed(value: Any) -> Any:
    if isinstance(value, _Embedded):
        return json.dumps(_unembed(value.value))
    if isinstance(value, dict):
        return {k: _unembed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unembed(v) for v in value]
    return value


def _nodes(value: Any, parent: Any, key: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key) whose value may be replaced, depth first."""
    if parent is not None:
        yield parent, key
    if isinstance(value, _Embedded):
        yield from _nodes(value.value, value, "value")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _nodes(v, value, k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _nodes(v, value, i)


def _replacement(kind: int, old: Any, root: Any) -> Any:
    deep: Any = 0
    for _ in range(60):
        deep = [deep]
    return [
        None,
        True,
        "x",
        "",
        -1,
        0,
        2**63,
        2**64 + 1,
        10**30,
        1.5e308,
        [],
        {},
        deep,
        copy.deepcopy(root),  # a subtree standing for one of its ancestors
        "../../outside.nc",
        "file:///etc/passwd",
        [old, old] if not isinstance(old, list) else old * 3,
        str(old),
    ][kind]


def _mutate_json(data: bytes, node: int, kind: int) -> bytes:
    try:
        root = _embed(json.loads(data))
    except ValueError:
        return data
    nodes = list(_nodes(root, None, None))
    if not nodes:
        return data
    parent, key = nodes[node % len(nodes)]
    old = parent.value if isinstance(parent, _Embedded) else parent[key]
    if kind == _JSON_KINDS - 1 and isinstance(parent, dict):
        del parent[key]  # the last kind: the key is missing
    elif isinstance(parent, _Embedded):
        parent.value = _replacement(kind, old, _unembed(root))
    else:
        parent[key] = _replacement(kind, old, _unembed(root))
    return json.dumps(_unembed(root)).encode()


_XML_ATTRIBUTE = re.compile(rb'="([^"]*)"')


def _mutate_xml(data: bytes, attribute: int, kind: int) -> bytes:
    matches = list(_XML_ATTRIBUTE.finditer(data))
    if not matches:
        return data
    match = matches[attribute % len(matches)]
    return data[: match.start(1)] + _XML_VALUES[kind].encode() + data[match.end(1) :]


def _mutate_parquet(data: bytes, column: int, row: int, kind: int) -> bytes:
    try:
        return _mutated_parquet(data, column, row, kind)
    except Exception:  # noqa: BLE001 (pyarrow cannot read what earlier mutations left)
        return data


def _mutated_parquet(data: bytes, column: int, row: int, kind: int) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception:  # noqa: BLE001 (an earlier mutation broke it: leave it broken)
        return data
    if not table.num_columns or not table.num_rows:
        return data
    index = column % table.num_columns
    field = table.schema.field(index)
    values = table.column(index).combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    pylist = values.to_pylist()
    at = row % len(pylist)
    new_type = values.type
    if kind == 0:
        pylist[at] = None
    elif pa.types.is_integer(values.type):
        limits = {0: None, 1: -1, 2: 2**62, 3: 2**31, 4: -(2**40), 5: 0}
        info = np.iinfo(values.type.to_pandas_dtype())
        choice = limits.get(kind, info.max if kind % 2 else info.min)
        pylist[at] = None if choice is None else max(info.min, min(info.max, choice))
    elif pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        pylist[at] = ["", "../../outside.nc", "s3://elsewhere/x.nc", "%2e%2e/x", "x" * 5000,
                      "file:///etc/passwd", "a/../../b", "\x00"][kind - 1]  # fmt: skip
    elif pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type):
        pylist[at] = [b"", b"\xff" * 9, b"x" * 70000, b"\x00", os.urandom(16), b"{", b"[]", b"1"][
            kind - 1
        ]
    else:
        pylist = [str(v) for v in pylist]  # a wrong type for the whole column
        new_type = pa.string()
    try:
        replaced = pa.array(pylist, type=new_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return data
    table = table.set_column(index, pa.field(field.name, new_type), replaced)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


# ---- running one case (in a worker) -------------------------------------------------------


def _nbytes(array: Any) -> int:
    return math.prod(int(s) for s in array.metadata.shape) * array.metadata.dtype.itemsize


def _cf_decoded(array: Any, values: Any) -> Any:
    """Values with the CF packing applied, as the reference readers return them (FITS BZERO)."""
    attributes = {**(array.metadata.attributes or {}), **(array.metadata.encoding or {})}
    if "scale_factor" not in attributes and "add_offset" not in attributes:
        return values
    decoded = values * float(attributes.get("scale_factor", 1.0)) + float(
        attributes.get("add_offset", 0.0)
    )
    if "_FillValue" in attributes:
        decoded[values == attributes["_FillValue"]] = np.nan
    return _Packed(decoded)


class _Packed(np.ndarray):  # type: ignore[type-arg]
    """Values decoded from CF packing: compared approximately, whatever the float type."""

    def __new__(cls, values: Any) -> Self:
        return np.asarray(values, dtype=np.float64).view(cls)


def _same(got: Any, expected: Any) -> bool:
    if isinstance(got, _Packed):
        expected = np.asarray(expected, dtype=np.float64)
        plain = np.asarray(got).view(np.ndarray)
        return plain.shape == expected.shape and bool(
            np.allclose(plain, expected, rtol=1e-6, equal_nan=True)
        )
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape:
        return False
    if got.dtype.newbyteorder("=") != expected.dtype.newbyteorder("="):
        return False
    try:
        return bool(np.array_equal(got, expected, equal_nan=got.dtype.kind in "fc"))
    except (TypeError, ValueError):
        return bool(np.array_equal(got, expected))


def _differing(values: dict[str, Any], reference: dict[str, Any]) -> list[str]:
    return sorted(p for p in set(values) & set(reference) if not _same(values[p], reference[p]))


class Runner:
    """Runs cases of every format in one process, its seeds copied to a private folder."""

    def __init__(self, seeds: dict[str, Seed], workdir: Path) -> None:
        self.seeds = seeds
        self.workdir = workdir
        self.originals: dict[str, dict[str, bytes]] = {}
        self.baselines: dict[str, dict[str, Any]] = {}
        self.references = 0
        self.contracts = {fmt: _contract(fmt) for fmt in seeds}
        for fmt, seed in seeds.items():
            shutil.copytree(seed.folder, workdir / fmt, dirs_exist_ok=True)
            self.originals[fmt] = {n: (seed.folder / n).read_bytes() for n, *_ in seed.files}
            self.baselines[fmt] = self.contracts[fmt].reference(workdir / fmt / seed.source_name)

    def run(
        self, fmt: str, ops: Sequence[Op], report: Callable[[str, str], None] | None = None
    ) -> tuple[str, str]:
        """The outcome of one case and its detail (a traceback, or the paths that differ)."""
        seed = self.seeds[fmt]
        folder = self.workdir / fmt
        mutated = apply_ops(self.originals[fmt], seed, ops)
        for name, data in mutated.items():
            (folder / name).write_bytes(data)
        try:
            outcome, detail, values = self._vz(fmt, folder, set(mutated))
            if values is None:
                return outcome, detail
            if report is not None:
                report(outcome, detail)
            return self._compare(fmt, folder, values)
        finally:
            for name in mutated:
                (folder / name).write_bytes(self.originals[fmt][name])

    def _vz(self, fmt: str, folder: Path, names: set[str]) -> tuple[str, str, Any]:
        import vzcore as vc

        seed = self.seeds[fmt]
        url = f"file://{folder}/{seed.source_name}"
        # The seed folder too: a manifest's references name its data file there.
        stores = {f"file://{d}/": _local_store(d) for d in (folder, seed.folder)}
        registry = vc.ObjectStoreRegistry(stores)
        try:
            group = self.contracts[fmt].parser(url, registry)
            arrays = dict(group.walk_arrays())
            total = sum(_nbytes(a) for a in arrays.values())
            if total > READ_CAP:
                return "too_large", f"{total} bytes declared", None
            raw = vc.read_arrays(arrays, registry)
            values = {p: _cf_decoded(arrays[p], v) for p, v in raw.items()}
        except vc.VirtualizationError as err:
            message = str(err)
            # An inline chunk has no file but the document the array no longer knows.
            inline = isinstance(err, vc.ChunkDecodeError) and "inline chunk" in message
            if (
                inline
                or any(str(d) in message for d in (folder, seed.folder))
                or any(n in message for n in names)
            ):
                return "typed_error", f"{type(err).__name__}: {message[:300]}", None
            return "unnamed_error", traceback.format_exc(), None
        except Exception:  # noqa: BLE001 (the outcome this harness looks for)
            return "crash", traceback.format_exc(), None
        try:
            differing = _store_differs(group, registry, raw)
        except Exception:  # noqa: BLE001 (read_arrays read it: the store must too)
            return "store_differs", f"ManifestStore + zarr: {traceback.format_exc()}", None
        if differing:
            return "store_differs", f"ManifestStore + zarr read otherwise: {differing}", None
        return "read", "", values

    def _compare(self, fmt: str, folder: Path, values: dict[str, Any]) -> tuple[str, str]:
        baseline = self.baselines[fmt]
        if fmt in DOCUMENT_FORMATS:
            differing = _differing(values, baseline)
            return ("doc_changed", repr(differing)) if differing else ("equal", "")
        # A fresh name each time: a library that caches files by path (HDF4) reads anew.
        self.references += 1
        source = folder / self.seeds[fmt].source_name
        fresh = source
        if source.is_file():
            fresh = source.with_name(f"ref{self.references}-{source.name}")
            shutil.copyfile(source, fresh)
        try:
            reference = self.contracts[fmt].reference(fresh)
        except Exception as err:  # noqa: BLE001 (the reference library refuses the file)
            differing = _differing(values, baseline)
            if differing:
                return "ref_fails_differs", f"{type(err).__name__}: {err}; differ: {differing}"
            return "equal_original", ""
        finally:
            if fresh != source:
                fresh.unlink()
        differing = _differing(values, reference)
        return ("wrong", f"differ from the reference: {differing}") if differing else ("equal", "")


def _store_differs(group: Any, registry: Any, raw: dict[str, Any]) -> list[str]:
    """The arrays whose values, read as users read them (zarr on a `ManifestStore`),
    differ from `read_arrays`' (the batch reader the comparison with the library uses)."""
    import zarr

    import vzcore as vc

    # A corrupt TIFF's strips can make a rectilinear grid: read as docs/reading.md says.
    with zarr.config.set({"array.rectilinear_chunks": True}):
        root = zarr.open_group(vc.ManifestStore(group, registry=registry), mode="r")
        return sorted(p for p, v in raw.items() if not _same_read(root[p][...], v))


def _same_read(got: Any, expected: Any) -> bool:
    got, expected = np.asarray(got), np.asarray(expected)
    if expected.dtype.kind == "S" and got.dtype.kind in "OTU":  # zarr's strings
        return got.shape == expected.shape and all(
            (g if isinstance(g, bytes) else str(g).encode()) == e
            for g, e in zip(got.ravel().tolist(), expected.ravel().tolist(), strict=True)
        )
    return _same(got, expected)


def _local_store(folder: Path) -> Any:
    from obstore.store import LocalStore

    return LocalStore(folder)


# ---- the worker pool ----------------------------------------------------------------------


def _worker(connection: Any, seeds: dict[str, Seed], workdir: str) -> None:
    import resource

    warnings.simplefilter("ignore")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    runner = Runner(seeds, Path(workdir))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    connection.send(("ready",))
    while True:
        message = connection.recv()
        if message is None:
            return
        fmt, ops = message
        result = runner.run(fmt, ops, report=lambda o, d: connection.send(("vz", o, d)))
        connection.send(("done", *result))


class _Worker:
    def __init__(self, pool: WorkerPool, number: int) -> None:
        self.pool = pool
        self.number = number
        self.incarnation = 0
        self.cases = 0
        self.start()

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.incarnation += 1
        workdir = self.pool.root / f"w{self.number}-{self.incarnation}"
        workdir.mkdir(parents=True)
        self.connection, child = context.Pipe()
        self.process = context.Process(
            target=_worker, args=(child, self.pool.seeds, str(workdir)), daemon=True
        )
        self.process.start()
        child.close()
        if not self.connection.poll(300) or self.connection.recv() != ("ready",):
            raise RuntimeError("a fuzz worker did not start")

    def restart(self) -> None:
        self.process.kill()
        self.process.join()
        self.connection.close()
        self.start()

    def stop(self) -> None:
        try:
            self.connection.send(None)
            self.process.join(10)
        except (BrokenPipeError, OSError):
            pass
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()


class WorkerPool:
    """Worker processes running cases under `MEMORY_LIMIT` and `TIME_LIMIT`; a context manager."""

    def __init__(self, seeds: dict[str, Seed], root: Path, workers: int = 1) -> None:
        self.seeds = seeds
        self.root = root
        self.workers = [_Worker(self, n) for n in range(workers)]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        for worker in self.workers:
            worker.stop()

    def run(self, fmt: str, ops: Sequence[Op]) -> tuple[str, str]:
        """One case's outcome, on the first worker."""
        return next(iter(self.map([(fmt, list(ops))])))[1]

    def map(
        self, cases: Iterator[tuple[str, list[Op]]] | list[tuple[str, list[Op]]]
    ) -> Iterator[tuple[tuple[str, list[Op]], tuple[str, str]]]:
        """Each case with its outcome, in completion order, the cases spread over the workers."""
        pending = iter(cases)
        busy: dict[Any, tuple[_Worker, tuple[str, list[Op]], float, str]] = {}

        def feed(worker: _Worker) -> None:
            case = next(pending, None)
            if case is not None:
                worker.cases += 1
                if worker.cases > RECYCLE:
                    worker.stop()
                    worker.start()
                    worker.cases = 1
                worker.connection.send(case)
                busy[worker.connection] = (worker, case, time.monotonic(), "vz")

        for worker in self.workers:
            feed(worker)
        while busy:
            ready = multiprocessing.connection.wait(list(busy), timeout=1.0)
            now = time.monotonic()
            for connection in ready:
                worker, case, started, phase = busy.pop(connection)
                try:
                    message = connection.recv()
                except (EOFError, OSError):
                    code = worker.process.exitcode
                    worker.restart()
                    outcome = "died" if phase == "vz" else "ref_hang"
                    yield case, (outcome, f"worker exit code {code} in phase {phase}")
                    feed(worker)
                    continue
                if message[0] == "vz":
                    busy[connection] = (worker, case, time.monotonic(), "reference")
                    continue
                yield case, (message[1], message[2])
                feed(worker)
            for connection, (worker, case, started, phase) in list(busy.items()):
                if now - started > TIME_LIMIT:
                    del busy[connection]
                    worker.restart()
                    outcome = "hang" if phase == "vz" else "ref_hang"
                    yield case, (outcome, f"over {TIME_LIMIT} s in phase {phase}")
                    feed(worker)


def describe(seed: Seed, ops: Sequence[Op]) -> str:
    """A case in words: the format and each mutation with the file it touches."""
    parts = [f"{op[0]}({seed.files[op[1]][0]}, {', '.join(map(str, op[2:]))})" for op in ops]
    return f"{seed.fmt}: " + "; ".join(parts)
