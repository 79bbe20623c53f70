"""Examples for the manifest parquet layout: `write_manifest_parquet` and `read_manifest_parquet`."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import vzcore as vc
import vzcore.writers.manifest_parquet as writer
from vzcore import ManifestFormatError, SourceFingerprint, VirtualGroup

type Factory = Callable[..., vc.VirtualArray]


@pytest.fixture
def virtual(make_virtual: Factory) -> vc.VirtualArray:
    return make_virtual(
        (4, 6),
        (2, 3),
        paths=["s3://bucket/a.nc", "s3://bucket/b.nc"],
        dtype=">f4",
        missing=[2],
        fill_value=np.nan,
        codecs=["numcodecs.zlib"],
        dimension_names=["y", "x"],
        attributes={"units": "K", "valid_range": [0.0, 400.0]},
    )


@pytest.fixture
def group(virtual: vc.VirtualArray, make_virtual: Factory) -> VirtualGroup:
    return VirtualGroup(
        arrays={
            "tas": virtual,
            "time": vc.LoadedArray.from_numpy(
                np.array(["2000-01-01", "2000-01-02"], dtype="datetime64[s]"),
                dimension_names=("time",),
            ),
        },
        groups={
            "sub": VirtualGroup(
                arrays={
                    "pr": make_virtual((3,), (2,), paths="s3://bucket/c.nc"),
                    "label": vc.LoadedArray.from_numpy(np.array(["north", "south"])),
                },
                groups={"empty": VirtualGroup(attributes={"nested": [1, {"k": None}]})},
                sources={
                    "s3://bucket/c.nc": SourceFingerprint(
                        size=5, last_modified="2024-01-01T00:00:00+00:00", etag='"abc"'
                    )
                },
            )
        },
        attributes={"title": "demo", "version": 3.5},
        sources={"s3://bucket/a.nc": SourceFingerprint(size=100)},
    )


def _leftovers(directory: Path) -> list[str]:
    """Hidden staging folders a write may have left behind."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# ---- round trips ------------------------------------------------------------------------


def test_virtual_array_round_trips(virtual: vc.VirtualArray, tmp_path: Path) -> None:
    written = vc.write_manifest_parquet(virtual, tmp_path / "tas.parquet")
    assert written == tmp_path / "tas.parquet"
    assert vc.read_manifest_parquet(written) == virtual
    assert vc.read_manifest_parquet(str(written)) == virtual
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tas.parquet"]


def test_virtual_array_file_says_what_it_holds(virtual: vc.VirtualArray, tmp_path: Path) -> None:
    written = vc.write_manifest_parquet(virtual, tmp_path / "tas.parquet")
    key_values = pq.read_schema(written).metadata
    assert key_values[b"vz:format"] == b"vz-manifest"
    assert key_values[b"vz:version"] == b"1"
    assert key_values[b"vz:kind"] == b"virtual"
    assert json.loads(key_values[b"vz:grid"]) == [2, 2]
    assert json.loads(key_values[b"zarr.json"]) == virtual.metadata.to_zarr_v3()


def test_virtual_array_file_is_plain_parquet(virtual: vc.VirtualArray, tmp_path: Path) -> None:
    written = vc.write_manifest_parquet(virtual, tmp_path / "tas.parquet")
    table = pq.read_table(written)
    assert table.column_names == ["path", "offset", "length"]
    assert table.column("path").to_pylist() == [
        "s3://bucket/a.nc",
        "s3://bucket/b.nc",
        None,
        "s3://bucket/b.nc",
    ]
    assert table.column("offset").to_pylist() == [0, 100, 0, 300]
    columns = pq.ParquetFile(written).metadata.row_group(0)
    assert "DELTA_BINARY_PACKED" in columns.column(1).encodings
    assert "DELTA_BINARY_PACKED" in columns.column(2).encodings
    assert columns.column(1).compression == "ZSTD"


def test_a_chunked_manifest_round_trips(make_virtual: Factory, tmp_path: Path) -> None:
    joined = vc.concat(
        [
            make_virtual((2, 3), (1, 3), paths="s3://bucket/a.nc"),
            make_virtual((2, 3), (1, 3), paths="s3://bucket/b.nc", missing=[0]),
        ],
        axis=0,
    )
    assert joined.manifest.paths.num_chunks == 2
    written = vc.write_manifest_parquet(joined, tmp_path / "joined.parquet")
    assert vc.read_manifest_parquet(written) == joined


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(np.arange(12, dtype=">i4").reshape(3, 4), id="numeric"),
        pytest.param(np.array([1.5, np.nan, -0.0]), id="float-nan"),
        pytest.param(np.array(["a", "bcd", ""]), id="unicode"),
        pytest.param(np.array(3.25), id="0d"),
    ],
)
def test_loaded_array_round_trips(values: np.ndarray, tmp_path: Path) -> None:
    loaded = vc.LoadedArray.from_numpy(values, attributes={"units": "m"})
    written = vc.write_manifest_parquet(loaded, tmp_path / "loaded.parquet")
    restored = vc.read_manifest_parquet(written)
    assert isinstance(restored, vc.LoadedArray)
    assert restored == loaded
    assert not restored.data.flags.writeable
    key_values = pq.read_schema(written).metadata
    assert key_values[b"vz:kind"] == b"loaded"
    assert b"vz:grid" not in key_values
    assert pq.read_table(written).column_names == ["npy"]


def test_nested_group_round_trips(group: VirtualGroup, tmp_path: Path) -> None:
    written = vc.write_manifest_parquet(group, tmp_path / "store")
    assert written == tmp_path / "store"
    restored = vc.read_manifest_parquet(written)
    assert restored == group
    assert isinstance(restored, VirtualGroup)
    assert restored.groups["sub"].sources == group.groups["sub"].sources
    assert sorted(str(p.relative_to(written)) for p in written.rglob("*")) == [
        "sub",
        "sub/empty",
        "sub/empty/vz-group.json",
        "sub/label.parquet",
        "sub/pr.parquet",
        "sub/vz-group.json",
        "tas.parquet",
        "time.parquet",
        "vz-group.json",
    ]
    assert _leftovers(tmp_path) == []


def test_group_document(group: VirtualGroup, tmp_path: Path) -> None:
    written = vc.write_manifest_parquet(group, tmp_path / "store")
    assert json.loads((written / "vz-group.json").read_text()) == {
        "vz:format": "vz-manifest",
        "vz:version": 1,
        "attributes": {"title": "demo", "version": 3.5},
        "arrays": ["tas", "time"],
        "groups": ["sub"],
        "sources": {"s3://bucket/a.nc": {"size": 100, "last_modified": None, "etag": None}},
    }
    assert json.loads((written / "sub" / "vz-group.json").read_text())["sources"] == {
        "s3://bucket/c.nc": {
            "size": 5,
            "last_modified": "2024-01-01T00:00:00+00:00",
            "etag": '"abc"',
        }
    }


# ---- atomic writes ----------------------------------------------------------------------


def test_overwrite_replaces_a_group(group: VirtualGroup, tmp_path: Path) -> None:
    target = tmp_path / "store"
    vc.write_manifest_parquet(group, target)
    smaller = group.evolve(arrays={"tas": group.arrays["tas"]}, groups={})
    vc.write_manifest_parquet(smaller, target)
    assert vc.read_manifest_parquet(target) == smaller
    assert sorted(p.name for p in target.iterdir()) == ["tas.parquet", "vz-group.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_overwrite_replaces_a_file_by_a_group_and_back(
    virtual: vc.VirtualArray, group: VirtualGroup, tmp_path: Path
) -> None:
    target = tmp_path / "out"
    vc.write_manifest_parquet(virtual, target)
    vc.write_manifest_parquet(group, target)
    assert vc.read_manifest_parquet(target) == group
    vc.write_manifest_parquet(virtual, target)
    assert vc.read_manifest_parquet(target) == virtual
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_write_creates_missing_parent_folders(virtual: vc.VirtualArray, tmp_path: Path) -> None:
    written = vc.write_manifest_parquet(virtual, tmp_path / "a" / "b" / "tas.parquet")
    assert vc.read_manifest_parquet(written) == virtual


def _fail_on_second_array(monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = writer._write_array
    calls: list[Path] = []

    def flaky(array: Any, path: Path) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        real_write(array, path)

    monkeypatch.setattr(writer, "_write_array", flaky)


def test_a_failing_write_leaves_nothing_behind(
    group: VirtualGroup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_on_second_array(monkeypatch)
    with pytest.raises(RuntimeError, match="disk full"):
        vc.write_manifest_parquet(group, tmp_path / "store")
    assert list(tmp_path.iterdir()) == []


def test_a_failing_overwrite_keeps_the_previous_output(
    group: VirtualGroup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "store"
    previous = group.evolve(attributes={"title": "previous"})
    vc.write_manifest_parquet(previous, target)
    _fail_on_second_array(monkeypatch)
    with pytest.raises(RuntimeError, match="disk full"):
        vc.write_manifest_parquet(group, target)
    assert vc.read_manifest_parquet(target) == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_writing_something_else_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="expected an array or a VirtualGroup, got dict"):
        vc.write_manifest_parquet({}, tmp_path / "x.parquet")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


# ---- reading what is not a manifest -----------------------------------------------------


def _rewrite_key_values(source: Path, target: Path, **changes: bytes | None) -> Path:
    table = pq.read_table(source)
    key_values = dict(table.schema.metadata)
    for key, value in changes.items():
        name = key.replace("_", ":", 1).encode() if key.startswith("vz_") else key.encode()
        if value is None:
            key_values.pop(name, None)
        else:
            key_values[name] = value
    pq.write_table(table.replace_schema_metadata(key_values), target)
    return target


def test_reading_garbage_names_the_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not a parquet file at all\n" * 10)
    with pytest.raises(ManifestFormatError) as info:
        vc.read_manifest_parquet(garbage)
    assert str(info.value).startswith(f"{garbage}: cannot read manifest parquet: ")


def test_reading_a_missing_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.parquet"
    with pytest.raises(ManifestFormatError) as info:
        vc.read_manifest_parquet(missing)
    assert str(info.value).startswith(f"{missing}: cannot read manifest parquet")


def test_reading_plain_parquet_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"path": ["a"], "offset": [0], "length": [1]}), plain)
    with pytest.raises(ManifestFormatError) as info:
        vc.read_manifest_parquet(plain)
    assert str(info.value) == f"{plain}: not a vz manifest file (no 'vz:format' key)"


def test_reading_another_layout_version_is_refused(
    virtual: vc.VirtualArray, tmp_path: Path
) -> None:
    written = vc.write_manifest_parquet(virtual, tmp_path / "tas.parquet")
    newer = _rewrite_key_values(written, tmp_path / "newer.parquet", vz_version=b"3")
    with pytest.raises(ManifestFormatError) as info:
        vc.read_manifest_parquet(newer)
    assert str(info.value) == f"{newer}: manifest layout version 3, expected 1 or 2"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"vz_kind": b"sparse"}, "unknown array kind b'sparse'"),
        ({"vz_grid": None}, "malformed manifest file: "),
        ({"vz_grid": b"[3, 3]"}, "malformed manifest file: invalid chunk manifest"),
        ({"zarr.json": b"{not json"}, "malformed manifest file: "),
        ({"zarr.json": b"{}"}, "malformed manifest file: invalid zarr v3 metadata"),
    ],
)
def test_reading_a_malformed_file_names_it(
    virtual: vc.VirtualArray, tmp_path: Path, changes: dict[str, bytes | None], message: str
) -> None:
    written = vc.write_manifest_parquet(virtual, tmp_path / "tas.parquet")
    broken = _rewrite_key_values(written, tmp_path / "broken.parquet", **changes)
    with pytest.raises(ManifestFormatError) as info:
        vc.read_manifest_parquet(broken)
    assert str(info.value).startswith(f"{broken}: {message}")


def test_reading_a_folder_without_a_group_document(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(ManifestFormatError) as info:
        vc.read_manifest_parquet(folder)
    assert str(info.value).startswith(f"{folder / 'vz-group.json'}: cannot read group document")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"vz:format": "other"}, "not a vz manifest group document"),
        ([], "not a vz manifest group document"),
        ({"vz:format": "vz-manifest", "vz:version": 2}, "manifest layout version 2, expected 1"),
        (
            {"vz:format": "vz-manifest", "vz:version": 1, "arrays": {}, "sources": []},
            (
                "'attributes' must be a dict; 'arrays' must be a list; 'groups' must be a list; "
                "'sources' must be a dict"
            ),
        ),
        (
            {
                "vz:format": "vz-manifest",
                "vz:version": 1,
                "attributes": {},
                "arrays": [],
                "groups": [],
                "sources": {"s3://b/x.nc": {"sha": 1}},
            },
            "malformed 'sources': ",
        ),
    ],
)
def test_reading_a_bad_group_document_names_it(
    tmp_path: Path, document: object, message: str
) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    (folder / "vz-group.json").write_text(json.dumps(document))
    with pytest.raises(ManifestFormatError) as info:
        vc.read_manifest_parquet(folder)
    assert str(info.value).startswith(f"{folder / 'vz-group.json'}: {message}")


def test_reading_a_group_whose_array_file_is_gone(group: VirtualGroup, tmp_path: Path) -> None:
    written = vc.write_manifest_parquet(group, tmp_path / "store")
    (written / "tas.parquet").unlink()
    with pytest.raises(ManifestFormatError) as info:
        vc.read_manifest_parquet(written)
    assert str(info.value).startswith(f"{written / 'tas.parquet'}: cannot read manifest parquet")


def test_reading_a_group_whose_subgroup_document_is_gone(
    group: VirtualGroup, tmp_path: Path
) -> None:
    written = vc.write_manifest_parquet(group, tmp_path / "store")
    (written / "sub" / "empty" / "vz-group.json").unlink()
    with pytest.raises(ManifestFormatError) as info:
        vc.read_manifest_parquet(written)
    document = written / "sub" / "empty" / "vz-group.json"
    assert str(info.value).startswith(f"{document}: cannot read group document")


def test_reading_a_subgroup_whose_array_file_is_gone(group: VirtualGroup, tmp_path: Path) -> None:
    written = vc.write_manifest_parquet(group, tmp_path / "store")
    (written / "sub" / "pr.parquet").unlink()
    with pytest.raises(ManifestFormatError) as info:
        vc.read_manifest_parquet(written)
    assert str(info.value).startswith(f"{written / 'sub' / 'pr.parquet'}: ")


# ---- size -------------------------------------------------------------------------------


def test_a_million_references_take_at_most_4_bytes_each(tmp_path: Path) -> None:
    n_files, per_file = 10, 100_000
    rng = np.random.default_rng(20240601)
    lengths = rng.integers(40_000, 65_536, size=(n_files, per_file))
    offsets = np.cumsum(lengths, axis=1) - lengths  # each file's chunks back to back
    paths = np.repeat([f"s3://bucket/run/file_{i:02d}.nc" for i in range(n_files)], per_file)
    manifest = vc.ChunkManifest.from_arrays(
        paths=paths.reshape(1000, 1000),
        offsets=offsets.reshape(1000, 1000),
        lengths=lengths.reshape(1000, 1000),
    )
    meta = vc.ArrayMetadata.create(shape=(1000, 1000), chunk_shape=(1, 1), dtype="f4")
    array = vc.VirtualArray(meta, manifest)
    written = vc.write_manifest_parquet(array, tmp_path / "million.parquet")
    bytes_per_ref = written.stat().st_size / manifest.n_chunks
    print(f"manifest parquet: {bytes_per_ref:.3f} bytes per reference for 1,000,000 references")
    assert bytes_per_ref <= 4
    assert vc.read_manifest_parquet(written) == array
