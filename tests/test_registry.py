"""Examples for `vzcore.registry`: URL prefix -> store, and the refusal of everything else."""

from collections.abc import Sequence
from pathlib import Path

import pytest
from obstore.store import LocalStore, MemoryStore, S3Store

import vzcore as vc
from vzcore.registry import ByteRangeReader, ObstoreReader, normalize_url


class EchoReader:
    """A `ByteRangeReader` that is no obstore store: it answers with the path it was asked."""

    async def get_ranges_async(
        self, path: str, *, starts: Sequence[int], ends: Sequence[int]
    ) -> Sequence[bytes]:
        return self.get_ranges(path, starts=starts, ends=ends)

    async def get_async(self, path: str) -> bytes:
        return self.get(path)

    def get_ranges(self, path: str, *, starts: Sequence[int], ends: Sequence[int]) -> list[bytes]:
        return [self.get(path)[start:end] for start, end in zip(starts, ends, strict=True)]

    def get(self, path: str) -> bytes:
        return path.encode()


def _data_registry() -> vc.ObjectStoreRegistry:
    return vc.ObjectStoreRegistry({"file:///data/": EchoReader()})


# ---- resolution ---------------------------------------------------------------------------


def test_resolve_picks_the_longest_matching_prefix() -> None:
    outer, inner = EchoReader(), EchoReader()
    registry = vc.ObjectStoreRegistry({"s3://bucket/": outer, "s3://bucket/deep/er/": inner})
    assert registry.resolve("s3://bucket/deep/er/x.nc") == (inner, "x.nc")
    assert registry.resolve("s3://bucket/deep/x.nc") == (outer, "deep/x.nc")
    assert registry.resolve("s3://bucket/deep/erx.nc") == (outer, "deep/erx.nc")


def test_resolve_gives_the_path_inside_the_store() -> None:
    reader = EchoReader()
    registry = vc.ObjectStoreRegistry({"memory://bucket/a/": reader})
    assert registry.resolve("memory://bucket/a/b/c/0.nc") == (reader, "b/c/0.nc")
    assert registry.resolve("memory://bucket/a/b/./c/../c/0.nc") == (reader, "b/c/0.nc")
    assert registry.resolve("memory://bucket/a/b%20c/0.nc") == (reader, "b c/0.nc")


def test_prefixes_are_normalised_to_a_trailing_slash() -> None:
    with_slash = vc.ObjectStoreRegistry({"file:///data/": EchoReader()})
    without_slash = vc.ObjectStoreRegistry({"file:///data": EchoReader()})
    assert with_slash.prefixes == without_slash.prefixes == ("file:///data/",)
    assert without_slash.resolve("file:///data/x.nc")[1] == "x.nc"
    dotted = vc.ObjectStoreRegistry({"file:///data/sub/..": EchoReader()})
    assert dotted.prefixes == ("file:///data/",)


def test_local_paths_resolve_as_file_urls(tmp_path: Path) -> None:
    reader = EchoReader()
    registry = vc.ObjectStoreRegistry({f"file://{tmp_path}/": reader})
    assert registry.resolve(str(tmp_path / "a" / "b.nc")) == (reader, "a/b.nc")
    assert registry.resolve(f"{tmp_path}/a/../b.nc") == (reader, "b.nc")


def test_normalize_url() -> None:
    assert normalize_url("/data/a/../b.nc") == "file:///data/b.nc"
    assert normalize_url("file:///data//a/./b.nc") == "file:///data/a/b.nc"
    assert normalize_url("s3://bucket/x/") == "s3://bucket/x/"
    assert normalize_url("file:///data/%2e%2e/etc") == "file:///etc"


# ---- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "s3://data/x.nc",  # another scheme
        "file://otherhost/data/x.nc",  # another host
        "https://example.com/data/x.nc",
        "file:///data/../etc/passwd",  # a `..` escape
        "file:///data/a/../../etc/passwd",
        "file:///data/%2e%2e/etc/passwd",  # the same, percent-encoded
        "file:///data/%2E%2E/etc/passwd",
        "file:///data/..%2fetc%2fpasswd",  # an encoded slash
        "file:///database/x.nc",  # a sibling sharing the prefix's letters
        "file:///data",  # the prefix's folder itself is no object under it
        "/etc/passwd",
    ],
)
def test_resolve_refuses_urls_outside_every_prefix(url: str) -> None:
    registry = vc.ObjectStoreRegistry({"file:///data/": EchoReader(), "memory://m/": MemoryStore()})
    with pytest.raises(vc.UnregisteredURLError) as info:
        registry.resolve(url)
    message = str(info.value)
    assert repr(url) in message
    assert "registered: file:///data/, memory://m/" in message


def test_a_double_encoded_escape_stays_a_literal_name_inside_the_prefix() -> None:
    # Decoding happens once: "%252e" is the three characters "%2e", not a dot.
    assert _data_registry().resolve("file:///data/%252e%252e/etc/passwd")[1] == (
        "%2e%2e/etc/passwd"
    )


def test_an_empty_registry_says_so() -> None:
    with pytest.raises(vc.UnregisteredURLError, match=r"registered: \(none\)"):
        vc.ObjectStoreRegistry().resolve("file:///data/x.nc")


def test_prefixes_must_be_urls() -> None:
    with pytest.raises(vc.VirtualizationError, match="registry prefix '/data/' must be a URL"):
        vc.ObjectStoreRegistry({"/data/": EchoReader()})


def test_entries_must_be_stores_or_readers() -> None:
    with pytest.raises(vc.VirtualizationError) as info:
        vc.ObjectStoreRegistry({"file:///data/": "not a store"})
    assert str(info.value) == (
        "registry entry 'file:///data/': str is neither an obstore store nor a ByteRangeReader"
    )


# ---- stores -------------------------------------------------------------------------------


def test_obstore_stores_are_wrapped_and_readers_kept_as_they_are() -> None:
    memory, echo = MemoryStore(), EchoReader()
    registry = vc.ObjectStoreRegistry({"memory://m/": memory, "file:///data/": echo})
    wrapped = registry.resolve("memory://m/x")[0]
    assert isinstance(wrapped, ObstoreReader)
    assert wrapped.store is memory
    assert isinstance(wrapped, ByteRangeReader)
    assert registry.resolve("file:///data/x")[0] is echo
    assert bytes(registry.resolve("file:///data/x")[0].get("x")) == b"x"


def test_register_returns_a_new_registry_and_leaves_the_old_one_unchanged() -> None:
    old = _data_registry()
    new = old.register("memory://m", MemoryStore())
    assert old.prefixes == ("file:///data/",)
    assert new.prefixes == ("file:///data/", "memory://m/")
    assert new.resolve("memory://m/x")[1] == "x"
    with pytest.raises(vc.UnregisteredURLError):
        old.resolve("memory://m/x")


def test_register_can_re_point_a_prefix() -> None:
    first, second = EchoReader(), EchoReader()
    registry = vc.ObjectStoreRegistry({"file:///data/": first}).register("file:///data", second)
    assert registry.prefixes == ("file:///data/",)
    assert registry.resolve("file:///data/x")[0] is second


def test_registries_compare_by_value() -> None:
    echo = EchoReader()
    assert vc.ObjectStoreRegistry({"file:///d": echo}) == vc.ObjectStoreRegistry(
        {"file:///d/": echo}
    )


# ---- for_urls -----------------------------------------------------------------------------


def test_for_urls_gives_one_local_store_per_folder(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    registry = vc.ObjectStoreRegistry.for_urls(
        [
            str(tmp_path / "a" / "x.nc"),
            f"file://{tmp_path}/a/y.nc",
            f"{tmp_path}/b/../b/z.nc",
        ]
    )
    assert registry.prefixes == (f"file://{tmp_path}/a/", f"file://{tmp_path}/b/")
    reader, path = registry.resolve(f"{tmp_path}/a/y.nc")
    assert path == "y.nc"
    assert isinstance(reader, ObstoreReader)
    assert isinstance(reader.store, LocalStore)
    assert reader.local_path(path) == f"{tmp_path}/a/y.nc"
    (tmp_path / "b" / "z.nc").write_bytes(b"0123456789")
    reader_b, path_b = registry.resolve(f"file://{tmp_path}/b/z.nc")
    assert bytes(reader_b.get_ranges(path_b, starts=[2], ends=[5])[0]) == b"234"


def test_for_urls_gives_one_store_per_bucket_without_credentials() -> None:
    registry = vc.ObjectStoreRegistry.for_urls(
        ["s3://bucket-a/x.nc", "s3://bucket-a/deep/y.nc", "s3://bucket-b/z.nc"],
        skip_signature=True,
        region="us-east-1",
    )
    assert registry.prefixes == ("s3://bucket-a/", "s3://bucket-b/")
    reader, path = registry.resolve("s3://bucket-a/deep/y.nc")
    assert path == "deep/y.nc"
    assert isinstance(reader, ObstoreReader)
    assert isinstance(reader.store, S3Store)
    assert reader.store.config["bucket"] == "bucket-a"
    assert reader.local_path(path) is None
    with pytest.raises(vc.UnregisteredURLError):
        registry.resolve("s3://bucket-c/x.nc")


def test_for_urls_refuses_memory_urls() -> None:
    with pytest.raises(vc.UnregisteredURLError) as info:
        vc.ObjectStoreRegistry.for_urls(["memory://bucket/x.nc"])
    assert str(info.value) == (
        "cannot build a store for 'memory://bucket/x.nc': scheme 'memory' needs an explicit "
        "registry entry"
    )


# ---- plain http:// through for_urls -----------------------------------------------------------


def test_for_urls_reads_plain_http(tmp_path: Path) -> None:
    """An http:// store needs allow_http; without it every request is a bare 'builder error'."""
    import numpy as np
    import xarray as xr
    from tests.http_server import serving

    import vzxarray as vx
    from vzcore.parsers import HDFParser, NetCDF3Parser

    data = xr.Dataset({"v": (("x",), np.arange(10.0))}, coords={"x": np.arange(10)})
    data.to_netcdf(tmp_path / "a.nc", engine="netcdf4")
    data.to_netcdf(tmp_path / "b.nc", format="NETCDF3_CLASSIC", engine="scipy")
    (tmp_path / "raw.bin").write_bytes(bytes(range(100)))
    with serving(tmp_path) as base:
        registry = vc.ObjectStoreRegistry.for_urls([base + "a.nc"])
        reader, path = registry.resolve(base + "raw.bin")
        assert [bytes(b) for b in reader.get_ranges(path, starts=[10, 90], ends=[12, 100])] == [
            bytes([10, 11]),
            bytes(range(90, 100)),
        ]
        for name, parser in (("a.nc", HDFParser()), ("b.nc", NetCDF3Parser())):
            ds = vx.open_virtual_dataset(base + name, registry=registry, parser=parser)
            store = vc.ManifestStore(ds.vz.to_virtual_group(), registry=registry)
            with xr.open_zarr(store, consolidated=False) as got:
                xr.testing.assert_identical(got.load(), data)
