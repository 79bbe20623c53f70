"""The ``vz.`` codecs: HDF5 plugin filters, array codecs, and zarr finding them by entry point.

Every codec is proven by reading data back through zarr (a `ManifestStore`, an
Icechunk repository read in a fresh process) and comparing with the values the
format's own library reads (h5py with hdf5plugin) or the values that were encoded.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin
import icechunk
import numpy as np
import numpy.typing as npt
import pytest
import zarr
import zarr.storage
from tests.writer_corpus import local_registry

import vzcore as vc
from vzcore import format_codecs, tiff_codecs
from vzcore.errors import ChunkDecodeError
from vzcore.format_codecs import (
    BitshuffleCodec,
    DeltaCodec,
    SimplePackingCodec,
)
from vzcore.parsers import HDF5UnsupportedError, HDFParser
from vzcore.parsers.hdf5_filters import codecs_for_filters
from vzcore.writers import kerchunk_refs, write_icechunk

ROOT = Path(__file__).resolve().parents[1]


def _values(dtype: str, shape: tuple[int, ...], kind: str, seed: int) -> npt.NDArray[Any]:
    rng = np.random.default_rng(seed)
    count = int(np.prod(shape))
    if kind == "noise":  # incompressible: LZ4 stores such blocks as they are
        raw = rng.integers(0, 256, count * np.dtype(dtype).itemsize, dtype=np.uint8)
        values = raw.view(dtype)
        if values.dtype.kind == "f":
            values = np.nan_to_num(values)
        return values.reshape(shape)
    ramp = np.linspace(-50, 50, count).reshape(shape) + rng.normal(0, 2, shape)
    return ramp.astype(dtype)


# (filter options, dtype, shape, chunks, values kind)
PLUGIN_CASES: dict[str, tuple[Mapping[str, Any], str, tuple[int, ...], tuple[int, ...], str]] = {
    "lz4_i4": (hdf5plugin.LZ4(), "<i4", (25, 40), (10, 16), "smooth"),
    "lz4_blocks_f8": (hdf5plugin.LZ4(nbytes=1000), "<f8", (37, 11), (9, 11), "smooth"),
    "lz4_noise_u2": (hdf5plugin.LZ4(nbytes=512), ">u2", (300,), (128,), "noise"),
    "bitshuffle_none_i2": (hdf5plugin.Bitshuffle(cname="none"), "<i2", (50, 30), (16, 7), "smooth"),
    "bitshuffle_lz4_f4": (hdf5plugin.Bitshuffle(cname="lz4"), "<f4", (40, 50), (16, 32), "smooth"),
    # 9001 items: two blocks of 4096, a last block of 808 and one item stored as it is.
    "bitshuffle_lz4_blocks_i2": (
        hdf5plugin.Bitshuffle(cname="lz4"),
        "<i2",
        (9001,),
        (9001,),
        "noise",
    ),
    "bitshuffle_zstd_u1": (
        hdf5plugin.Bitshuffle(cname="zstd", nelems=256, clevel=5),
        "u1",
        (3, 333),
        (2, 301),
        "noise",
    ),
    "bitshuffle_zstd_f8": (
        hdf5plugin.Bitshuffle(cname="zstd"),
        ">f8",
        (7, 9, 5),
        (3, 4, 5),
        "smooth",
    ),
    "blosc2_1d_f8": (hdf5plugin.Blosc2(), "<f8", (1001,), (100,), "smooth"),
    "blosc2_2d_i4": (hdf5plugin.Blosc2(cname="lz4"), "<i4", (25, 40), (10, 16), "smooth"),
    "blosc2_3d_u2": (
        hdf5plugin.Blosc2(cname="zstd", filters=hdf5plugin.Blosc2.BITSHUFFLE),
        ">u2",
        (5, 7, 9),
        (2, 3, 4),
        "smooth",
    ),
    "blosc2_noshuffle_f4": (
        hdf5plugin.Blosc2(cname="blosclz", filters=hdf5plugin.Blosc2.NOFILTER),
        "<f4",
        (13, 17),
        (5, 17),
        "noise",
    ),
}
EXPECTED_CODEC = {"lz4": "vz.lz4h5", "bitshuffle": "vz.bitshuffle", "blosc2": "vz.blosc2"}


@pytest.fixture(scope="module")
def plugin_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plugin-filters") / "plugins.h5"
    with h5py.File(path, "w") as f:
        for seed, (name, (options, dtype, shape, chunks, kind)) in enumerate(PLUGIN_CASES.items()):
            f.create_dataset(name, data=_values(dtype, shape, kind, seed), chunks=chunks, **options)
    return path


@pytest.fixture(scope="module")
def plugin_group(plugin_file: Path) -> vc.VirtualGroup:
    return HDFParser()(f"file://{plugin_file}", local_registry(plugin_file.parent))


@pytest.mark.parametrize("name", PLUGIN_CASES)
def test_plugin_filters_read_like_h5py(
    plugin_file: Path, plugin_group: vc.VirtualGroup, name: str
) -> None:
    registry = local_registry(plugin_file.parent)
    store = vc.ManifestStore(plugin_group, registry=registry)
    with h5py.File(plugin_file) as f:
        expected = f[name][...]
    got = zarr.open_array(store, path=name, mode="r")[...]
    assert got.dtype == expected.dtype.newbyteorder("=")
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(vc.read_array(plugin_group[name], registry), expected)
    # A selection that crosses partial edge chunks.
    edge = tuple(
        slice(max(n - c - 1, 0), n)
        for n, c in zip(expected.shape, PLUGIN_CASES[name][3], strict=True)
    )
    np.testing.assert_array_equal(zarr.open_array(store, path=name, mode="r")[edge], expected[edge])


@pytest.mark.parametrize("name", PLUGIN_CASES)
def test_plugin_filters_become_vz_codecs(plugin_group: vc.VirtualGroup, name: str) -> None:
    codecs = plugin_group[name].metadata.codecs
    assert [c.name for c in codecs] == ["bytes", EXPECTED_CODEC[name.split("_")[0]]]
    if name.startswith("bitshuffle"):
        config = codecs[1].configuration
        assert config["compression"] == name.split("_")[1]
        assert config["elementsize"] == np.dtype(PLUGIN_CASES[name][1]).itemsize
        assert config["block_size"] == (256 if name == "bitshuffle_zstd_u1" else 0)


def test_plugin_filters_through_xarray(plugin_file: Path, plugin_group: vc.VirtualGroup) -> None:
    import xarray as xr

    store = vc.ManifestStore(plugin_group, registry=local_registry(plugin_file.parent))
    ds = xr.open_zarr(store, consolidated=False)
    with h5py.File(plugin_file) as f:
        for name in ("bitshuffle_lz4_f4", "blosc2_3d_u2", "lz4_blocks_f8"):
            np.testing.assert_array_equal(ds[name].values, f[name][...])


def test_kerchunk_writer_refuses_vz_codecs(plugin_group: vc.VirtualGroup) -> None:
    # numcodecs has no codec for HDF5's LZ4 framing, bitshuffle blocks or Blosc2 frames.
    with pytest.raises(vc.UnsupportedCodecError, match=r"variable 'blosc2_1d_f8'.*vz\.blosc2"):
        kerchunk_refs(vc.VirtualGroup(arrays={"blosc2_1d_f8": plugin_group["blosc2_1d_f8"]}))


def test_bitshuffle_compression_vz_does_not_know_is_refused() -> None:
    filters = [(32008, 1, (0, 4, 4, 0, 7), b"bitshuffle")]
    with pytest.raises(HDF5UnsupportedError, match=r"f\.h5 /v: HDF5 filter 32008 .*compression 7"):
        codecs_for_filters(filters, np.dtype("i4"), where="f.h5 /v")


def test_bitshuffle_refuses_a_corrupt_chunk() -> None:
    codec = BitshuffleCodec(elementsize=4, compression="lz4")
    from zarr.core.array_spec import ArrayConfig, ArraySpec
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.dtype import Int32

    spec = ArraySpec(
        shape=(16,),
        dtype=Int32(),
        fill_value=0,
        config=ArrayConfig.from_dict({}),
        prototype=default_buffer_prototype(),
    )
    with pytest.raises(ChunkDecodeError, match=r"vz\.bitshuffle"):
        codec._decode_bytes(b"\x00\x00", spec)
    header = (64).to_bytes(8, "big") + (3).to_bytes(4, "big")
    with pytest.raises(ChunkDecodeError, match="cannot fill"):
        codec._decode_bytes(header, spec)


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"name": "vz.bitshuffle", "configuration": {"compression": "lzma"}}, "is not 'none'"),
        ({"name": "vz.bitshuffle", "configuration": {"block_size": 12}}, "multiple of 8"),
        ({"name": "vz.simple_packing", "configuration": {"bits_per_value": 40}}, "not in 0..32"),
    ],
)
def test_invalid_configurations_are_refused(config: dict[str, Any], match: str) -> None:
    with pytest.raises(vc.InvalidMetadataError, match=match):
        vc.ArrayMetadata.create(shape=(4,), chunk_shape=(4,), dtype="f4", codecs=[config])


# ---- array codecs through zarr --------------------------------------------------------------


def _delta_encode(values: npt.NDArray[Any], axis: int) -> npt.NDArray[Any]:
    """TIFF predictor 2: differences along ``axis`` in the integer type (wrapping)."""
    encoded = values.copy()
    later = [slice(None)] * values.ndim
    earlier = [slice(None)] * values.ndim
    later[axis], earlier[axis] = slice(1, None), slice(None, -1)
    encoded[tuple(later)] = values[tuple(later)] - values[tuple(earlier)]
    return encoded


def _pack_bits(integers: list[int], bits: int) -> bytes:
    """Integers of ``bits`` bits, most significant bit first, padded to whole bytes."""
    text = "".join(format(x, f"0{bits}b") for x in integers) if bits else ""
    text += "0" * (-len(text) % 8)
    return int(text, 2).to_bytes(len(text) // 8, "big") if text else b""


def _chunks(
    values: npt.NDArray[Any], chunk_shape: tuple[int, ...], fill: Any
) -> list[tuple[tuple[int, ...], npt.NDArray[Any]]]:
    """Each chunk of ``values`` in C order, edge chunks padded with ``fill``."""
    grid = [-(-n // c) for n, c in zip(values.shape, chunk_shape, strict=True)]
    out = []
    for coords in np.ndindex(*grid):
        chunk = np.full(chunk_shape, fill, dtype=values.dtype)
        source = tuple(slice(i * c, (i + 1) * c) for i, c in zip(coords, chunk_shape, strict=True))
        piece = values[source]
        chunk[tuple(slice(0, n) for n in piece.shape)] = piece
        out.append((coords, chunk))
    return out


def _virtual_array(
    path: Path,
    encoded: list[bytes],
    metadata: vc.ArrayMetadata,
) -> vc.VirtualArray:
    """An array whose chunks are ``encoded``, written one after another to ``path``."""
    path.write_bytes(b"".join(encoded))
    lengths = np.array([len(e) for e in encoded], dtype=np.uint64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.uint64)
    grid = metadata.grid_shape
    manifest = vc.ChunkManifest.from_arrays(
        paths=np.full(grid, f"file://{path}", dtype=object),
        offsets=offsets.reshape(grid),
        lengths=lengths.reshape(grid),
    )
    return vc.VirtualArray(metadata=metadata, manifest=manifest)


def delta_array(folder: Path) -> tuple[vc.VirtualArray, npt.NDArray[Any]]:
    """An int16 image with partial edge chunks, stored as differences along its rows."""
    rng = np.random.default_rng(7)
    values = rng.integers(-30000, 30000, (11, 13), dtype=np.int16)  # differences wrap
    chunk_shape = (4, 5)
    encoded = [
        _delta_encode(chunk, axis=1).astype("<i2").tobytes()
        for _, chunk in _chunks(values, chunk_shape, 0)
    ]
    metadata = vc.ArrayMetadata(
        shape=values.shape,
        chunk_grid=chunk_shape,
        dtype="<i2",
        codecs=[
            {"name": "vz.delta", "configuration": {"axis": 1}},
            {"name": "bytes", "configuration": {"endian": "little"}},
        ],
        dimension_names=("y", "x"),
    )
    return _virtual_array(folder / "delta.bin", encoded, metadata), values


PACKING = {
    "reference_value": -1234.5,
    "binary_scale_factor": -3,
    "decimal_scale_factor": 1,
    "bits_per_value": 13,
}


def packed_array(folder: Path) -> tuple[vc.VirtualArray, npt.NDArray[Any]]:
    """A float32 field in GRIB2 simple packing (13 bits a value), each chunk gzipped."""
    ref, scale_2, scale_10, bits = (PACKING[k] for k in PACKING)
    rng = np.random.default_rng(11)
    integers = rng.integers(0, 2**bits, (9, 14))
    chunk_shape = (4, 6)
    encoded = [
        gzip.compress(_pack_bits([int(x) for x in chunk.ravel()], int(bits)))
        for _, chunk in _chunks(integers, chunk_shape, 0)
    ]
    # The values as GRIB decoders compute them, one Python float at a time.
    expected = np.array(
        [(ref + int(x) * 2.0**scale_2) * 10.0**-scale_10 for x in integers.ravel()],
        dtype=np.float32,
    ).reshape(integers.shape)
    metadata = vc.ArrayMetadata.create(
        shape=integers.shape,
        chunk_shape=chunk_shape,
        dtype="f4",
        fill_value=np.nan,
        codecs=[{"name": "vz.simple_packing", "configuration": PACKING}, "gzip"],
        dimension_names=("lat", "lon"),
    )
    return _virtual_array(folder / "packed.bin", encoded, metadata), expected


def test_delta_decodes_through_zarr(tmp_path: Path) -> None:
    array, expected = delta_array(tmp_path)
    assert [c.name for c in array.metadata.codecs] == ["vz.delta", "bytes"]
    group = vc.VirtualGroup(arrays={"image": array})
    registry = local_registry(tmp_path)
    got = zarr.open_array(vc.ManifestStore(group, registry=registry), path="image", mode="r")
    np.testing.assert_array_equal(got[...], expected)
    np.testing.assert_array_equal(got[3:9, 4:11], expected[3:9, 4:11])
    np.testing.assert_array_equal(vc.read_array(array, registry), expected)


def test_simple_packing_decodes_through_zarr(tmp_path: Path) -> None:
    array, expected = packed_array(tmp_path)
    assert [c.name for c in array.metadata.codecs] == ["vz.simple_packing", "gzip"]
    group = vc.VirtualGroup(arrays={"field": array})
    registry = local_registry(tmp_path)
    got = zarr.open_array(vc.ManifestStore(group, registry=registry), path="field", mode="r")
    np.testing.assert_array_equal(got[...], expected)
    np.testing.assert_array_equal(vc.read_array(array, registry), expected)


def test_simple_packing_of_zero_bits_is_the_reference_value(tmp_path: Path) -> None:
    config = {"reference_value": 2.5, "decimal_scale_factor": -1, "bits_per_value": 0}
    metadata = vc.ArrayMetadata.create(
        shape=(3, 4),
        chunk_shape=(3, 4),
        dtype="f8",
        codecs=[{"name": "vz.simple_packing", "configuration": config}],
    )
    # Zero-bit values need no bytes; the chunk holds one (an empty byte range reads nothing).
    array = _virtual_array(tmp_path / "constant.bin", [b"\x00"], metadata)
    np.testing.assert_array_equal(
        vc.read_array(array, local_registry(tmp_path)), np.full((3, 4), 25.0)
    )


def test_a_short_packed_chunk_is_refused(tmp_path: Path) -> None:
    metadata = vc.ArrayMetadata.create(
        shape=(8,),
        chunk_shape=(8,),
        dtype="f4",
        codecs=[{"name": "vz.simple_packing", "configuration": {"bits_per_value": 12}}],
    )
    array = _virtual_array(tmp_path / "short.bin", [b"\x00" * 11], metadata)
    with pytest.raises(ChunkDecodeError, match=r"8 values of 12 bits needs 12 bytes, it has 11"):
        vc.read_array(array, local_registry(tmp_path))


@pytest.mark.parametrize(
    "codecs",
    [
        {"filters": [DeltaCodec(axis=0)]},
        {"serializer": SimplePackingCodec(bits_per_value=12)},
        {"compressors": [BitshuffleCodec(elementsize=4)]},
    ],
    ids=["array-array", "array-bytes", "bytes-bytes"],
)
def test_vz_codecs_refuse_to_encode(codecs: dict[str, Any]) -> None:
    dtype = "f4" if "serializer" in codecs else "i4"
    options = {"compressors": None} | codecs
    array = zarr.create_array(
        zarr.storage.MemoryStore(), shape=(4, 4), chunks=(2, 2), dtype=dtype, **options
    )
    with pytest.raises(vc.UnsupportedCodecError, match="only decodes existing data"):
        array[...] = 1


@pytest.mark.parametrize(
    ("codec", "dtype", "match"),
    [
        (DeltaCodec(axis=0), "f4", "applies to integers, not float32"),
        (DeltaCodec(axis=2), "i4", "axis 2 is not an axis of a 2-d array"),
    ],
)
def test_delta_refuses_arrays_it_cannot_decode(codec: Any, dtype: str, match: str) -> None:
    with pytest.raises(vc.InvalidMetadataError, match=match):
        zarr.create_array(
            zarr.storage.MemoryStore(),
            shape=(4, 4),
            chunks=(2, 2),
            dtype=dtype,
            filters=[codec],
            compressors=None,
        )


def test_simple_packing_refuses_integers() -> None:
    with pytest.raises(vc.InvalidMetadataError, match="decodes to floats, not int32"):
        zarr.create_array(
            zarr.storage.MemoryStore(),
            shape=(4,),
            chunks=(2,),
            dtype="i4",
            serializer=SimplePackingCodec(),
            compressors=None,
        )


# ---- entry points ---------------------------------------------------------------------------


def declared_entry_points() -> dict[str, str]:
    """The ``zarr.codecs`` entry points pyproject.toml declares."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    declared: dict[str, str] = project["entry-points"]["zarr.codecs"]
    return declared


def test_every_vz_codec_has_an_entry_point() -> None:
    declared = declared_entry_points()
    modules = {"vzcore.format_codecs": format_codecs, "vzcore.tiff_codecs": tiff_codecs}
    every = (*format_codecs.FORMAT_CODECS, *tiff_codecs.TIFF_CODECS)
    assert set(declared) == {codec.name for codec in every}
    for name, value in declared.items():
        module, _, attribute = value.partition(":")
        assert module in modules
        assert getattr(modules[module], attribute).name == name


def _installed_entry_points() -> set[str]:
    return {e.name for e in importlib.metadata.entry_points(group="zarr.codecs")}


def _entry_point_path(folder: Path) -> list[str]:
    """sys.path entries that give a fresh process vz's declared entry points.

    When vz is installed with them, its own metadata serves; otherwise a stand-in
    distribution declares exactly the entry points of pyproject.toml.
    """
    declared = declared_entry_points()
    if set(declared) <= _installed_entry_points():
        return []
    info = folder / "vz_codecs_probe-0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vz-codecs-probe\nVersion: 0.0\n")
    lines = ["[zarr.codecs]", *(f"{name} = {value}" for name, value in declared.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return [str(folder)]


READER = textwrap.dedent(
    """
    import json, sys
    import icechunk, numpy as np, xarray as xr, zarr

    folder, repository, expected_path = sys.argv[1:4]
    prefix = f"file://{folder}/"
    config = icechunk.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        icechunk.VirtualChunkContainer(prefix, icechunk.local_filesystem_store(folder))
    )
    credentials = icechunk.containers_credentials(
        {prefix: icechunk.Credentials.LocalFileSystemAccess()}
    )
    repo = icechunk.Repository.open(
        icechunk.local_filesystem_storage(repository),
        config,
        authorize_virtual_chunk_access=credentials,
    )
    store = repo.readonly_session("main").store
    expected = np.load(expected_path)
    report = {"imported_before_reading": "vzcore" in sys.modules, "zarr": {}, "xarray": {}}
    for name in expected.files:
        values = zarr.open_array(store, path=name, mode="r")[...]
        report["zarr"][name] = bool(np.array_equal(values, expected[name], equal_nan=True))
    with xr.open_zarr(store, consolidated=False, mask_and_scale=False) as ds:
        for name in expected.files:
            values = ds[name].values
            report["xarray"][name] = bool(np.array_equal(values, expected[name], equal_nan=True))
    report["codecs"] = sorted(
        c["name"]
        for name in expected.files
        for c in zarr.open_array(store, path=name, mode="r").metadata.to_dict()["codecs"]
    )
    report["imported_after_reading"] = "vzcore" in sys.modules
    print(json.dumps(report))
    """
)


def _hdf5_sources(folder: Path) -> dict[str, npt.NDArray[Any]]:
    """HDF5 variables with lzf, szip and plugin filters; their values as h5py reads them."""
    rng = np.random.default_rng(3)
    # Compressible values: lzf leaves a chunk it cannot shrink unfiltered (filter mask).
    smooth = (np.arange(600).reshape(30, 20) // 7 * 0.25).astype("f4")
    counts = rng.integers(0, 500, (30, 20)).astype("<i4")
    options: dict[str, dict[str, Any]] = {
        "lzf": {"compression": "lzf"},
        "bitshuffle": dict(hdf5plugin.Bitshuffle(cname="lz4")),
        "lz4": dict(hdf5plugin.LZ4(nbytes=256)),
        "blosc2": dict(hdf5plugin.Blosc2(cname="zstd")),
    }
    if h5py.h5z.filter_avail(h5py.h5z.FILTER_SZIP):
        options["szip"] = {"compression": "szip", "compression_opts": ("nn", 8)}
    values = {}
    with h5py.File(folder / "filters.h5", "w") as f:
        for name, opts in options.items():
            data = counts if name == "szip" else smooth
            f.create_dataset(name, data=data, chunks=(7, 8), **opts)
            values[name] = f[name][...]
    return values


def test_a_fresh_process_decodes_vz_codecs_from_icechunk(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    expected = _hdf5_sources(data)
    registry = local_registry(data)
    parsed = HDFParser()(f"file://{data / 'filters.h5'}", registry)
    delta, delta_values = delta_array(data)
    packed, packed_values = packed_array(data)
    arrays = {
        **{name: parsed[name] for name in expected},
        "delta": delta,
        "packed": packed,
    }
    expected |= {"delta": delta_values, "packed": packed_values}
    # xarray names axes from dimension_names; the HDF5 variables have none of their own.
    arrays = {
        name: vc.VirtualArray(
            metadata=array.metadata.evolve(dimension_names=(f"{name}_y", f"{name}_x")),
            manifest=array.manifest,
        )
        for name, array in arrays.items()
    }

    prefix = f"file://{data}/"
    config = icechunk.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        icechunk.VirtualChunkContainer(prefix, icechunk.local_filesystem_store(str(data)))
    )
    repository = icechunk.Repository.create(
        icechunk.local_filesystem_storage(str(tmp_path / "repository")),
        config,
        authorize_virtual_chunk_access=icechunk.containers_credentials(
            {prefix: icechunk.Credentials.LocalFileSystemAccess()}
        ),
    )
    session = repository.writable_session("main")
    write_icechunk(vc.VirtualGroup(arrays=arrays), session.store)
    session.commit("vz codecs")
    np.savez(tmp_path / "expected.npz", **expected)

    package_root = Path(vc.__file__).resolve().parents[1]
    path = [*_entry_point_path(tmp_path / "entry-points"), str(package_root)]
    env = os.environ | {"PYTHONPATH": os.pathsep.join([*path, os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            READER,
            str(data),
            str(tmp_path / "repository"),
            str(tmp_path / "expected.npz"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["imported_before_reading"] is False
    assert report["zarr"] == dict.fromkeys(expected, True)
    assert report["xarray"] == dict.fromkeys(expected, True)
    used = {"vz.lzf", "vz.bitshuffle", "vz.lz4h5", "vz.blosc2", "vz.delta", "vz.simple_packing"}
    if "szip" in expected:
        used.add("vz.szip")
    assert used <= set(report["codecs"])
    # The codecs live in vzcore.format_codecs: the entry point imported it, not the reader.
    assert report["imported_after_reading"] is True


def test_stacked_array_codecs_follow_their_axes(tmp_path: Path) -> None:
    delta, delta_values = delta_array(tmp_path)
    packed, packed_values = packed_array(tmp_path)
    registry = local_registry(tmp_path)
    stacked = vc.stack([delta, delta], axis=0)
    assert stacked.metadata.codecs[0].configuration == {"axis": 2}
    np.testing.assert_array_equal(vc.read_array(stacked, registry), np.stack([delta_values] * 2))
    moved = vc.expand_dims(delta, axis=2)
    assert moved.metadata.codecs[0].configuration == {"axis": 1}
    np.testing.assert_array_equal(vc.read_array(moved, registry), delta_values[:, :, None])
    np.testing.assert_array_equal(
        vc.read_array(vc.stack([packed, packed], axis=1), registry),
        np.stack([packed_values] * 2, axis=1),
    )


def test_dropping_the_delta_axis_is_refused(tmp_path: Path) -> None:
    rows = vc.VirtualArray(
        metadata=vc.ArrayMetadata(
            shape=(1, 4),
            chunk_grid=(1, 4),
            dtype="i2",
            codecs=[{"name": "vz.delta", "configuration": {"axis": 0}}, "bytes"],
        ),
        manifest=vc.ChunkManifest.empty((1, 1)),
    )
    with pytest.raises(vc.UnsupportedCodecError, match=r"works along axis 0, which is dropped"):
        vc.squeeze(rows, axis=0)
