"""`detect_parser`: the built-ins' ``can_open``, formats named but not parsed, plug-ins.

Plug-ins are tested as a user would install one: a folder on ``sys.path`` holding a
module and its ``*.dist-info`` with ``entry_points.txt``, found by
`importlib.metadata` like any installed distribution.
"""

from __future__ import annotations

import importlib
import struct
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import obstore
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from obstore.store import LocalStore, MemoryStore
from tests.parser_contract import ParserContract, local_registry
from tests.s3_server import S3Bucket
from tests.test_parser_contract import read_hdf5

import vzcore as vc
import vzxarray as vx
from vzcore.parsers import (
    BUILTIN_PARSERS,
    ENTRY_POINT_GROUP,
    HEAD_BYTES,
    DMRPPParser,
    HDFParser,
    KerchunkJSONParser,
    KerchunkParquetParser,
    ManifestParquetParser,
    NetCDF3Parser,
    ParserPluginWarning,
    Probe,
    UnknownFormatError,
    ZarrParser,
    detect_parser,
    parser_plugins,
)

REPO = Path(__file__).resolve().parents[1]


def detected(folder: Path, name: str) -> type:
    """The class of the parser `detect_parser` picks for ``folder / name``."""
    return type(detect_parser(f"file://{folder}/{name}", local_registry(folder)))


def refusal(folder: Path, name: str) -> str:
    """The message of the `UnknownFormatError` that ``folder / name`` gets."""
    with pytest.raises(UnknownFormatError) as info:
        detect_parser(f"file://{folder}/{name}", local_registry(folder))
    return str(info.value)


# ---- HDF5 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("userblock", [0, 512, 1024, 2048, 4096, 16384])
def test_hdf5_with_a_user_block_is_detected_and_parsed(tmp_path: Path, userblock: int) -> None:
    import h5py

    path = tmp_path / "blocked.h5"
    with h5py.File(path, "w", userblock_size=userblock) as handle:
        handle.create_dataset("t", data=np.arange(60.0).reshape(6, 10), chunks=(4, 4))
        handle.create_dataset("n", data=np.arange(7, dtype="i2"))
        handle.create_dataset("z", data=np.arange(12, dtype="i4"), chunks=(5,), compression="gzip")
    with open(path, "r+b") as file:  # a user block holds whatever its owner wrote
        file.write(b"user block text; not HDF5"[:userblock])
    expected = read_hdf5(path)
    memory = MemoryStore()
    obstore.put(memory, "blocked.h5", path.read_bytes())
    for url, registry in (
        (f"file://{path}", local_registry(tmp_path)),
        # Not a local file: h5py reads through the registry's ranged reads.
        ("memory://m/blocked.h5", vc.ObjectStoreRegistry({"memory://m/": memory})),
    ):
        parser = detect_parser(url, registry)
        assert isinstance(parser, HDFParser), url
        group = parser(url, registry)
        for name, values in expected.items():
            np.testing.assert_array_equal(vc.read_array(group[name], registry), values)
            store = vc.ManifestStore(group, registry=registry)
            import zarr

            np.testing.assert_array_equal(zarr.open_array(store, path=name, mode="r")[...], values)


def test_an_hdf5_signature_off_the_user_block_grid_is_not_hdf5() -> None:
    signature = b"\x89HDF\r\n\x1a\n"
    assert HDFParser.can_open(Probe.from_bytes(b"\0" * 512 + signature + b"\0" * 600))
    assert not HDFParser.can_open(Probe.from_bytes(b"\0" * 300 + signature + b"\0" * 600))
    assert not HDFParser.can_open(Probe.from_bytes(b"\0" * 8000 + signature + b"\0" * 100))
    assert not HDFParser.can_open(Probe.from_bytes(None, members={"x": signature}))


# ---- netCDF3 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("netcdf_format", "magic"),
    [
        ("NETCDF3_CLASSIC", b"CDF\x01"),
        ("NETCDF3_64BIT_OFFSET", b"CDF\x02"),
        ("NETCDF3_64BIT_DATA", b"CDF\x05"),
    ],
)
def test_netcdf3_magics(tmp_path: Path, netcdf_format: str, magic: bytes) -> None:
    import netCDF4

    path = tmp_path / "c.nc"
    with netCDF4.Dataset(path, "w", format=netcdf_format) as ds:
        ds.createDimension("x", 5)
        ds.createVariable("v", "i4", ("x",))[:] = np.arange(5) * 3
    assert path.read_bytes()[:4] == magic
    registry = local_registry(tmp_path)
    parser = detect_parser(str(path), registry)
    assert isinstance(parser, NetCDF3Parser)
    np.testing.assert_array_equal(
        vc.read_array(parser(str(path), registry)["v"], registry), np.arange(5) * 3
    )


def test_other_cdf_versions_are_not_netcdf3() -> None:
    assert NetCDF3Parser.can_open(Probe.from_bytes(b"CDF\x05" + b"\0" * 4))
    for head in (b"CDF\x03\0\0\0\0", b"CDF", b"CDF\x01"[:3], b""):
        assert not NetCDF3Parser.can_open(Probe.from_bytes(head)), head


# ---- Kerchunk JSON ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        b'{"version": 1, "refs": {".zgroup": "{\\"zarr_format\\": 2}"}}',
        b'\n\n   \t{\n  "version": 1,\n  "refs": {}\n}',
        b'\xef\xbb\xbf{"refs": {}, "version": 1}',
        b'{"templates": {"u": "s3://b/f.nc"}, "gen": [], "version": 1, "refs": {}}',
        b'{".zgroup": "{\\"zarr_format\\": 2}", "v/.zarray": "{}"}',  # version 0
        b'{"v/.zarray": "{}", "v/0": ["s3://b/f.nc", 0, 10]}',
    ],
)
def test_kerchunk_json_forms_are_detected(text: bytes) -> None:
    assert KerchunkJSONParser.can_open(Probe.from_bytes(text))


@pytest.mark.parametrize(
    "text",
    [b'{"type": "FeatureCollection", "features": []}', b"[1, 2, 3]", b'"refs"', b"{}"],
)
def test_other_json_is_not_kerchunk(tmp_path: Path, text: bytes) -> None:
    assert not KerchunkJSONParser.can_open(Probe.from_bytes(text))
    (tmp_path / "other.json").write_bytes(text)
    assert "unrecognised format" in refusal(tmp_path, "other.json")


# ---- parquet: Kerchunk folders, vz manifests, and neither -------------------------------------


@pytest.fixture(scope="module")
def parquet_forms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder with Kerchunk parquet refs, a vz group, a vz array file and plain parquet."""
    from tests.test_parser_contract import netcdf4_group

    from vzcore.writers import write_kerchunk_parquet

    folder = tmp_path_factory.mktemp("parquet")
    group = netcdf4_group(folder)
    write_kerchunk_parquet(group, folder / "refs.parq")
    vc.write_manifest_parquet(group, folder / "group.vz")
    vc.write_manifest_parquet(group["temp"], folder / "temp.parquet")
    pq.write_table(pa.table({"path": ["a"], "offset": [0], "size": [1]}), folder / "plain.parquet")
    return folder


def test_kerchunk_parquet_and_vz_manifests_are_told_apart(parquet_forms: Path) -> None:
    assert detected(parquet_forms, "refs.parq") is KerchunkParquetParser
    assert detected(parquet_forms, "refs.parq/") is KerchunkParquetParser
    assert detected(parquet_forms, "group.vz") is ManifestParquetParser
    assert detected(parquet_forms, "group.vz/") is ManifestParquetParser
    assert detected(parquet_forms, "temp.parquet") is ManifestParquetParser
    registry = local_registry(parquet_forms)
    url = f"file://{parquet_forms}/temp.parquet"
    np.testing.assert_array_equal(
        vc.read_array(detect_parser(url, registry)(url, registry)["temp"], registry),
        read_hdf5(parquet_forms / "a.nc")["temp"],
    )


def test_plain_parquet_is_refused_saying_so(parquet_forms: Path) -> None:
    message = refusal(parquet_forms, "plain.parquet")
    assert message.startswith(f"file://{parquet_forms}/plain.parquet: looks like a parquet file")
    assert "not a vz manifest" in message
    # One record file of Kerchunk's refs is parquet too, but not a source on its own.
    assert "not a vz manifest" in refusal(parquet_forms, "refs.parq/temp/refs.0.parq")


def test_a_truncated_parquet_file_is_not_a_manifest(parquet_forms: Path) -> None:
    data = (parquet_forms / "temp.parquet").read_bytes()
    for broken in (data[:-1], data[:20], b"PAR1", b"PAR1" + b"\xff" * 4 + b"PAR1"):
        assert not ManifestParquetParser.can_open(Probe.from_bytes(broken))


def test_a_zarr_consolidated_store_is_not_kerchunk_parquet(tmp_path: Path) -> None:
    import zarr

    root = zarr.create_group(tmp_path / "c.zarr", zarr_format=2)
    root.create_array("v", shape=(4,), chunks=(2,), dtype="i4")[:] = np.arange(4)
    zarr.consolidate_metadata(tmp_path / "c.zarr", zarr_format=2)
    (tmp_path / "c.zarr" / ".zgroup").unlink()  # only .zmetadata names it a zarr store now
    assert detected(tmp_path, "c.zarr") is ZarrParser
    kerchunk_like = Probe.from_bytes(
        None, members={".zmetadata": b'{"metadata": {}, "record_size": 9}'}
    )
    assert KerchunkParquetParser.can_open(kerchunk_like)
    assert not ZarrParser.can_open(kerchunk_like)


# ---- Zarr -------------------------------------------------------------------------------------


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("what", ["group", "array"])
def test_zarr_stores_are_detected(tmp_path: Path, zarr_format: int, what: str) -> None:
    import zarr

    if what == "group":
        zarr.create_group(tmp_path / "s.zarr", zarr_format=zarr_format).create_array(
            "v", shape=(4,), chunks=(2,), dtype="i4"
        )[:] = np.arange(4)
    else:
        zarr.create_array(
            tmp_path / "s.zarr",
            shape=(4,),
            chunks=(2,),
            dtype="i4",
            zarr_format=zarr_format,
        )[:] = np.arange(4)
    assert detected(tmp_path, "s.zarr") is ZarrParser
    assert detected(tmp_path, "s.zarr/") is ZarrParser


# ---- formats named, not parsed --------------------------------------------------------------

DMRPP = (
    b'<?xml version="1.0" encoding="ISO-8859-1"?>\n'
    b'<Dataset xmlns="http://xml.opendap.org/ns/DAP/4.0#" '
    b'xmlns:dmrpp="http://xml.opendap.org/dap/dmrpp/1.0.0#" dapVersion="4.0" '
    b'dmrVersion="1.0" name="sample.h5" dmrpp:href="s3://bucket/sample.h5">\n'
    b'  <Float32 name="t"><Dim size="4"/><dmrpp:chunks><dmrpp:chunk offset="96" nBytes="16"/>'
    b"</dmrpp:chunks></Float32>\n</Dataset>\n"
)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("XML", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>'),
    ],
)
def test_known_formats_without_a_parser_are_named(tmp_path: Path, name: str, data: bytes) -> None:
    (tmp_path / "sample.bin").write_bytes(data)
    message = refusal(tmp_path, "sample.bin")
    assert message.startswith(f"file://{tmp_path}/sample.bin: looks like {name}")
    assert message.endswith("no parser installed for it")


def test_xml_that_is_not_dmrpp(tmp_path: Path) -> None:
    (tmp_path / "a.xml").write_bytes(
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>'
    )
    assert "looks like XML; no parser installed" in refusal(tmp_path, "a.xml")


def test_unrecognised_bytes_are_shown(tmp_path: Path) -> None:
    (tmp_path / "junk.dat").write_bytes(b"\x01\x02junk" * 100)
    assert refusal(tmp_path, "junk.dat").endswith(
        "unrecognised format (first bytes b'\\x01\\x02junk\\x01\\x02junk\\x01\\x02ju')"
    )
    (tmp_path / "empty.dat").write_bytes(b"")
    assert refusal(tmp_path, "empty.dat").endswith("unrecognised format (first bytes b'')")


# ---- missing sources, empty folders, unregistered URLs ---------------------------------------


def test_a_missing_file_names_the_url(tmp_path: Path) -> None:
    message = refusal(tmp_path, "missing.nc")
    assert message.startswith(f"file://{tmp_path}/missing.nc: no such file")
    assert "zarr.json" in message
    assert "vz-group.json" in message
    assert ".zmetadata" in message


def test_a_folder_with_nothing_recognisable(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("hello")
    for name in ("folder", "folder/"):
        assert "not a store any installed parser recognises" in refusal(tmp_path, name)
    memory = vc.ObjectStoreRegistry({"memory://m/": MemoryStore()})
    with pytest.raises(UnknownFormatError, match=r"^memory://m/: no such file"):
        detect_parser("memory://m/", memory)


def test_an_unregistered_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(vc.UnregisteredURLError, match=r"s3://elsewhere/a\.nc"):
        detect_parser("s3://elsewhere/a.nc", local_registry(tmp_path))


def test_a_store_that_fails_is_a_probe_error() -> None:
    from vzcore.parsers import ProbeError

    class Failing:
        def get_ranges(self, path: str, *, starts: object, ends: object) -> list[bytes]:
            raise PermissionError("access denied")

        def get(self, path: str) -> bytes:
            raise PermissionError("access denied")

        async def get_ranges_async(self, path: str, *, starts: object, ends: object) -> object:
            raise PermissionError("access denied")

        async def get_async(self, path: str) -> object:
            raise PermissionError("access denied")

    registry = vc.ObjectStoreRegistry({"memory://f/": Failing()})
    with pytest.raises(ProbeError, match=r"^memory://f/a\.nc: cannot read its first bytes"):
        detect_parser("memory://f/a.nc", registry)


# ---- Probe -------------------------------------------------------------------------------------


def test_probe_reads_lazily_and_clips() -> None:
    data = bytes(range(256)) * 40  # longer than the head
    probe = Probe.from_bytes(data)
    assert probe.head == data[:HEAD_BYTES]
    assert probe.size == len(data)
    assert probe.read_range(10, 20) == data[10:20]
    assert probe.read_range(HEAD_BYTES - 2, HEAD_BYTES + 3) == data[HEAD_BYTES - 2 : HEAD_BYTES + 3]
    assert probe.read_range(len(data) - 4, len(data) + 100) == data[-4:]
    assert probe.read_range(len(data) + 5, len(data) + 9) == b""
    short = Probe.from_bytes(b"abc")
    assert (short.head, short.size, short.read_range(1, 99)) == (b"abc", 3, b"bc")


def test_probe_of_a_folder() -> None:
    probe = Probe.from_bytes(None, members={"zarr.json": b"{}", "sub/x": b"1", "bad": b"{"})
    assert probe.member_json("sub/x") == 1
    assert probe.member_json("bad") is None
    assert (probe.head, probe.size, probe.read_range(0, 4)) == (None, None, b"")
    assert probe.exists("zarr.json")
    assert not probe.exists(".zgroup")
    assert probe.member("zarr.json") == b"{}"
    assert probe.member(".zmetadata") is None
    assert probe.asked == ("sub/x", "bad", "zarr.json", ".zgroup", ".zmetadata")


# ---- every sample, detected on S3 --------------------------------------------------------------


def test_every_contract_sample_is_detected_on_s3(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    registry = s3_bucket.registry()
    for contract in ParserContract.contracts:
        folder = tmp_path / contract.__name__
        folder.mkdir()
        contract().make_sample(folder)
        base = s3_bucket.put_tree(contract.__name__, folder)
        url = f"{base}/{contract.source_name}"
        assert type(detect_parser(url, registry)) is type(contract.parser), url


# ---- entry points ------------------------------------------------------------------------------


def test_pyproject_declares_every_builtin_parser() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    declared = project["project"]["entry-points"][ENTRY_POINT_GROUP]
    assert declared == BUILTIN_PARSERS
    for target in declared.values():
        module, _, name = target.partition(":")
        parser = getattr(importlib.import_module(module), name)
        assert callable(parser.can_open)
        assert isinstance(parser(), vc.parsers.Parser)


def test_builtins_are_asked_most_specific_first() -> None:
    builtins = [p for p in parser_plugins() if p.target in BUILTIN_PARSERS.values()]
    assert [p.name for p in builtins] == [
        "vz_manifest",
        "icechunk",
        "kerchunk_parquet",
        "zarr",
        "fits",
        "grib",
        "tiff",
        "hdf4",
        "netcdf3",
        "dmrpp",
        "kerchunk_json",
        "hdf5",
    ]
    assert all(p.priority < 0 and p.error is None for p in builtins)


FAKE_MODULE = '''
"""A third-party vz parser: b"VZFAKE01" then little-endian float64 values."""

import attrs
import numpy as np

import vzcore as vc
from vzcore.byteranges import source

MAGIC = b"VZFAKE01"


@attrs.frozen
class FakeParser:
    @classmethod
    def can_open(cls, probe):
        return probe.head is not None and probe.head.startswith(MAGIC)

    def __call__(self, url, registry):
        file = source(registry, url)
        url, seen = file.url, file.fingerprint()
        count = (seen.size - len(MAGIC)) // 8
        metadata = vc.ArrayMetadata.create(
            shape=(count,), chunk_shape=(count,), dtype="<f8", dimension_names=("x",)
        )
        manifest = vc.ChunkManifest.from_arrays(
            paths=np.array([url], dtype=object),
            offsets=np.array([len(MAGIC)]),
            lengths=np.array([count * 8]),
        )
        return vc.VirtualGroup(
            arrays={"values": vc.VirtualArray(metadata, manifest)},
            sources={url: seen},
        )


@attrs.frozen
class FakeDMRPPParser:
    @classmethod
    def can_open(cls, probe):
        return probe.head is not None and b"dmrpp" in probe.head

    def __call__(self, url, registry):
        return vc.VirtualGroup(attributes={"parsed_by": "fake dmrpp"})


@attrs.frozen
class GreedyNetCDF3Parser:
    """Claims netCDF3 files; asked after the built-ins, so it never gets one."""

    priority = -1000

    @classmethod
    def can_open(cls, probe):
        return probe.head is not None and probe.head.startswith(b"CDF")

    def __call__(self, url, registry):
        raise AssertionError("never asked")


class BrokenCanOpen:
    @classmethod
    def can_open(cls, probe):
        raise RuntimeError("a bug in a plug-in")

    def __call__(self, url, registry):
        raise AssertionError("never asked")
'''


@pytest.fixture
def install_plugin(tmp_path: Path) -> Iterator[Callable[[str, dict[str, str]], None]]:
    """Install a distribution (module source + ``vz.parsers`` entry points) on ``sys.path``."""
    added: list[str] = []
    modules: list[str] = []

    def install(module: str, entry_points: dict[str, str], source: str = FAKE_MODULE) -> None:
        site = tmp_path / f"site-{module}"
        info = site / f"{module}-0.1.dist-info"
        info.mkdir(parents=True)
        (site / f"{module}.py").write_text(source)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
        lines = [f"{name} = {target}" for name, target in entry_points.items()]
        (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n" + "\n".join(lines) + "\n")
        sys.path.insert(0, str(site))
        added.append(str(site))
        modules.append(module)
        importlib.invalidate_caches()
        parser_plugins.cache_clear()

    yield install
    for site in added:
        sys.path.remove(site)
    for module in modules:
        sys.modules.pop(module, None)
    importlib.invalidate_caches()
    parser_plugins.cache_clear()


def fake_file(folder: Path, values: np.ndarray) -> Path:
    path = folder / "values.fake"
    path.write_bytes(b"VZFAKE01" + values.astype("<f8").tobytes())
    return path


def test_a_plugin_is_found_by_its_entry_point(
    tmp_path: Path, install_plugin: Callable[[str, dict[str, str]], None]
) -> None:
    path = fake_file(tmp_path, np.linspace(0.0, 1.0, 9))
    registry = local_registry(tmp_path)
    with pytest.raises(UnknownFormatError):
        detect_parser(str(path), registry)
    install_plugin("vz_fake_format", {"fake": "vz_fake_format:FakeParser"})
    parser = detect_parser(str(path), registry)
    assert type(parser).__name__ == "FakeParser"
    assert type(parser).__module__ == "vz_fake_format"
    assert next(p.name for p in parser_plugins()) == "fake"  # priority 0: before the built-ins
    dataset = vx.open_virtual_dataset(f"file://{path}", registry=registry)
    assert isinstance(dataset["values"].data, vx.ManifestArray)
    np.testing.assert_array_equal(
        vc.read_array(dataset.vz.to_virtual_group()["values"], registry), np.linspace(0.0, 1.0, 9)
    )
    # Built-in formats are still detected.
    assert detected(*_netcdf3(tmp_path)) is NetCDF3Parser


def _netcdf3(folder: Path) -> tuple[Path, str]:
    from scipy.io import netcdf_file

    with netcdf_file(folder / "c.nc", "w") as ds:
        ds.createDimension("x", 2)
        ds.createVariable("v", "i4", ("x",))[:] = [1, 2]
    return folder, "c.nc"


def test_a_plugin_claims_dmrpp(
    tmp_path: Path, install_plugin: Callable[[str, dict[str, str]], None]
) -> None:
    """A plug-in (priority 0) is asked before the built-in DMR++ parser, so it can replace it."""
    (tmp_path / "s.dmrpp").write_bytes(DMRPP)
    for data in (DMRPP, b"\n  " + DMRPP.replace(b"ISO-8859-1", b"UTF-8")):
        (tmp_path / "b.dmrpp").write_bytes(data)
        assert detected(tmp_path, "b.dmrpp") is DMRPPParser
    install_plugin("vz_fake_format", {"dmrpp": "vz_fake_format:FakeDMRPPParser"})
    registry = local_registry(tmp_path)
    url = f"file://{tmp_path}/s.dmrpp"
    assert detect_parser(url, registry)(url, registry).attributes == {"parsed_by": "fake dmrpp"}
    assert vx.open_virtual_dataset(url, registry=registry).attrs == {"parsed_by": "fake dmrpp"}


def test_a_negative_priority_lets_the_builtins_go_first(
    tmp_path: Path, install_plugin: Callable[[str, dict[str, str]], None]
) -> None:
    install_plugin("vz_fake_format", {"greedy": "vz_fake_format:GreedyNetCDF3Parser"})
    assert [p.name for p in parser_plugins()][-1] == "greedy"
    assert detected(*_netcdf3(tmp_path)) is NetCDF3Parser


def test_a_builtin_declared_again_is_listed_once(
    install_plugin: Callable[[str, dict[str, str]], None],
) -> None:
    # What the vz distribution itself declares once installed: the same classes.
    install_plugin("vz_fake_format", {"hdf5": "vzcore.parsers.hdf5:HDFParser"})
    assert [p.target for p in parser_plugins()].count("vzcore.parsers.hdf5:HDFParser") == 1


def test_a_broken_entry_point_does_not_break_detection(
    tmp_path: Path, install_plugin: Callable[[str, dict[str, str]], None]
) -> None:
    install_plugin(
        "vz_fake_format",
        {
            "missing": "vz_no_such_module:Parser",
            "not_a_parser": "vz_fake_format:MAGIC",
            "buggy": "vz_fake_format:BrokenCanOpen",
        },
    )
    with pytest.warns(ParserPluginWarning) as caught:
        plugins = parser_plugins()
    messages = [str(w.message) for w in caught]
    assert any("missing (vz_no_such_module:Parser) cannot be loaded" in m for m in messages)
    assert any("not_a_parser (vz_fake_format:MAGIC) is not a parser class" in m for m in messages)
    assert {p.name for p in plugins if p.error} == {"missing", "not_a_parser"}
    with pytest.warns(ParserPluginWarning, match="buggy .*can_open failed: RuntimeError"):
        assert detected(*_netcdf3(tmp_path)) is NetCDF3Parser
    (tmp_path / "x.xml").write_bytes(b'<?xml version="1.0"?><svg/>')
    with pytest.warns(ParserPluginWarning, match="buggy"):
        message = refusal(tmp_path, "x.xml")
    assert "looks like XML; no parser installed for it" in message
    assert (
        "entry points that failed: missing (vz_no_such_module:Parser) cannot be loaded" in message
    )


def test_detection_reads_little(tmp_path: Path) -> None:
    """A netCDF3 file is recognised from one ranged read of its head."""
    path = _netcdf3(tmp_path)[0] / "c.nc"

    calls: list[tuple[int, int]] = []

    class Counting:
        def __init__(self) -> None:
            self.store = LocalStore(tmp_path)

        def get_ranges(self, p: str, *, starts: list[int], ends: list[int]) -> list[bytes]:
            calls.extend(zip(starts, ends, strict=True))
            return [bytes(b) for b in obstore.get_ranges(self.store, p, starts=starts, ends=ends)]

        def get(self, p: str) -> bytes:
            raise AssertionError("no whole-object read")

        async def get_ranges_async(self, p: str, *, starts: object, ends: object) -> object:
            raise AssertionError("sync only")

        async def get_async(self, p: str) -> object:
            raise AssertionError("sync only")

    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": Counting()})
    assert isinstance(detect_parser(str(path), registry), NetCDF3Parser)
    assert calls == [(0, HEAD_BYTES)]


def test_struct_of_a_cdf5_head() -> None:
    head = b"CDF\x05" + struct.pack(">Q", 0)
    assert NetCDF3Parser.can_open(Probe.from_bytes(head))
