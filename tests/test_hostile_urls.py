"""Hostile URLs and symlinks: no byte from outside the registry, through any path.

Each case builds a registered folder ``data/`` beside an ``outside/`` folder holding
a file with a recognisable marker, then points references at the outside file by
every trick (``?`` and ``#`` folders, percent-escapes, NUL, backslashes, symlinks to
files and folders) and asserts a typed error — and that the marker never comes back
through parsed values, `read_array`, `ManifestStore`, loaded variables, Kerchunk
inlining or a Zarr store.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import threading
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zarr
from obstore.store import LocalStore
from zarr.core.buffer import default_buffer_prototype

import vzcore as vc
import vzxarray as vx
from vzcore.parsers import HDFParser, KerchunkJSONParser, ZarrParser
from vzcore.registry import OutsideRootError
from vzcore.urls import UnsafeURLError, normalize_url
from vzcore.writers import write_kerchunk_json

MARKER = b"OUTSIDE-SECRET-0123456789abcdef!"  # 32 bytes: four float64 values' worth
ZARRAY = {
    "zarr_format": 2,
    "shape": [4],
    "chunks": [4],
    "dtype": "<f8",
    "compressor": None,
    "filters": None,
    "fill_value": None,
    "order": "C",
}


class Folders:
    """``data/`` (registered) and ``outside/secret.bin`` (not), under one temporary folder."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data = base / "data"
        self.outside = base / "outside"
        self.data.mkdir()
        self.outside.mkdir()
        self.secret = self.outside / "secret.bin"
        self.secret.write_bytes(MARKER)
        self.registry = vc.ObjectStoreRegistry({f"file://{self.data}/": LocalStore(self.data)})

    def refs(self, url: str, name: str = "refs.json") -> str:
        """A Kerchunk JSON file in ``data/`` whose one chunk is 32 bytes of ``url``."""
        refs = {
            ".zgroup": json.dumps({"zarr_format": 2}),
            "x/.zarray": json.dumps(ZARRAY),
            "x/.zattrs": json.dumps({"_ARRAY_DIMENSIONS": ["x"]}),
            "x/0": [url, 0, 32],
        }
        path = self.data / name
        path.write_text(json.dumps({"version": 1, "refs": refs}))
        return f"file://{path}"


@pytest.fixture
def folders(tmp_path: Path) -> Folders:
    return Folders(tmp_path)


def _every_read_is_refused(folders: Folders, url: str, error: type[Exception]) -> None:
    """Parse refs pointing at ``url``; every way of reading the chunk raises ``error``."""
    group = KerchunkJSONParser()(folders.refs(url), folders.registry)
    array = group["x"]
    assert isinstance(array, vc.VirtualArray)
    with pytest.raises(error):
        vc.read_array(array, folders.registry)
    try:
        store = vc.ManifestStore(group, registry=folders.registry)
    except error:
        pass  # refused at construction: nothing can be read
    else:
        with pytest.raises(error):
            zarr.open_array(store, path="x", mode="r")[...]
    out = folders.base / "inlined.json"
    with pytest.raises(error):
        write_kerchunk_json(group, out, inline_threshold=1000, registry=folders.registry)
    assert not out.exists()


# ---- URL normalisation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("file:///data/x?/../../etc/passwd", "file:///etc/passwd"),
        ("file:///data/x#/../../etc/passwd", "file:///etc/passwd"),
        ("file:///data/x%3F/%2e%2e/%2E%2E/etc/passwd", "file:///etc/passwd"),
        ("file:///data/%252e%252e/a.nc", "file:///data/%252e%252e/a.nc"),
        ("/data/50%/a?b#c.nc", "file:///data/50%25/a%3Fb%23c.nc"),
        ("FILE:///data//a/./b.nc", "file:///data/a/b.nc"),
        ("s3://bucket/k?versionId=1", "s3://bucket/k%3FversionId=1"),
        ("https://host/a/../b.nc?sig=1/../x", "https://host/b.nc?sig=1/../x"),
    ],
)
def test_urls_are_normalised_completely(given: str, canonical: str) -> None:
    assert normalize_url(given) == canonical
    assert normalize_url(canonical) == canonical  # idempotent


@pytest.mark.parametrize(
    "url",
    [
        "file:///data/a\x00.nc",
        "file:///data/a%00.nc",
        "file:///data/a%0a.nc",
        "file:///data/..\\..\\etc\\passwd",
        "file:///data/..%5C..%5Cetc%5Cpasswd",
        "https://host/a.nc#fragment",
        "s3://buck%2Fet/a.nc",
        "/data/a\x00.nc",
    ],
)
def test_unsafe_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeURLError):
        normalize_url(url)
    with pytest.raises(vc.UnregisteredURLError):  # what every caller already catches
        vc.ObjectStoreRegistry({"file:///data/": LocalStore("/")}).resolve(url)


def test_the_question_mark_folder_does_not_escape(folders: Folders) -> None:
    """``data/x?/../../outside/secret.bin`` is ``outside/secret.bin``: refused."""
    (folders.data / "x?").mkdir()
    (folders.data / "x#").mkdir()
    for trick in ("x?", "x#", "x%3F", "x%23"):
        url = f"file://{folders.data}/{trick}/../../outside/secret.bin"
        _every_read_is_refused(folders, url, vc.UnregisteredURLError)


def test_nul_and_backslash_in_references_are_typed_errors(folders: Folders) -> None:
    for url in (f"file://{folders.data}/a\x00.bin", f"file://{folders.data}/..\\outside"):
        refs = folders.refs(url)
        with pytest.raises(UnsafeURLError) as info:
            KerchunkJSONParser()(refs, folders.registry)
        assert str(info.value).startswith(f"{refs}: array 'x'"), info.value


def test_percent_escapes_in_references_are_literal_as_fsspec_reads_them(
    folders: Folders,
) -> None:
    """``a%00.bin`` in a Kerchunk reference names a file of that name, never a NUL."""
    (folders.data / "a%00.bin").write_bytes(np.arange(8, dtype="<i4").tobytes())
    group = KerchunkJSONParser()(folders.refs(f"file://{folders.data}/a%00.bin"), folders.registry)
    array = group["x"]
    assert isinstance(array, vc.VirtualArray)
    assert array.manifest.paths.to_pylist()[0].endswith("/a%2500.bin")
    values = vc.read_array(array, folders.registry)
    assert values.tobytes() == np.arange(8, dtype="<i4").tobytes()


def test_files_named_with_url_characters_read_back(folders: Folders) -> None:
    """A folder named ``we?ird#50%`` is a folder like any other, through every path."""
    odd = folders.data / "we?ird#50%"
    odd.mkdir()
    values = np.arange(4.0)
    with h5py.File(odd / "f%41.h5", "w") as f:
        f.create_dataset("v", data=values, chunks=(2,))
    url = normalize_url(str(odd / "f%41.h5"))
    assert url.endswith("/we%3Fird%2350%25/f%2541.h5")
    registry = vc.ObjectStoreRegistry.for_urls([str(odd / "f%41.h5")])
    group = HDFParser()(url, registry)
    np.testing.assert_array_equal(vc.read_array(group["v"], registry), values)
    store = vc.ManifestStore(group, registry=registry)
    np.testing.assert_array_equal(zarr.open_array(store, path="v", mode="r")[...], values)
    dataset = vx.open_virtual_dataset(str(odd / "f%41.h5"), registry=registry)
    assert dataset["v"].shape == (4,)


# ---- symlinks ------------------------------------------------------------------------------


def test_a_symlinked_file_leading_outside_is_refused(folders: Folders) -> None:
    (folders.data / "link.bin").symlink_to(folders.secret)
    _every_read_is_refused(folders, f"file://{folders.data}/link.bin", OutsideRootError)


def test_a_symlinked_folder_leading_outside_is_refused(folders: Folders) -> None:
    (folders.data / "linked").symlink_to(folders.outside)
    _every_read_is_refused(folders, f"file://{folders.data}/linked/secret.bin", OutsideRootError)


def test_a_symlink_inside_the_root_is_followed(folders: Folders) -> None:
    (folders.data / "real.bin").write_bytes(np.arange(4.0).tobytes())
    (folders.data / "sub").mkdir()
    (folders.data / "sub" / "alias.bin").symlink_to(folders.data / "real.bin")
    group = KerchunkJSONParser()(
        folders.refs(f"file://{folders.data}/sub/alias.bin"), folders.registry
    )
    np.testing.assert_array_equal(vc.read_array(group["x"], folders.registry), np.arange(4.0))


def test_a_registered_folder_that_is_itself_a_symlink_works(folders: Folders) -> None:
    (folders.data / "real.bin").write_bytes(np.arange(4.0).tobytes())
    alias = folders.base / "alias"
    alias.symlink_to(folders.data)
    registry = vc.ObjectStoreRegistry({f"file://{alias}/": LocalStore(alias)})
    folders.refs(f"file://{alias}/real.bin")
    group = KerchunkJSONParser()(f"file://{alias}/refs.json", registry)
    np.testing.assert_array_equal(vc.read_array(group["x"], registry), np.arange(4.0))


def test_an_hdf5_file_symlinked_from_outside_is_refused(folders: Folders) -> None:
    with h5py.File(folders.outside / "f.h5", "w") as f:
        f.create_dataset("v", data=np.frombuffer(MARKER, np.float64))
        f.attrs["note"] = MARKER.decode()
    (folders.data / "f.h5").symlink_to(folders.outside / "f.h5")
    with pytest.raises(OutsideRootError, match="outside the registered folder"):
        HDFParser()(f"file://{folders.data}/f.h5", folders.registry)
    with pytest.raises(OutsideRootError):
        vx.open_virtual_dataset(
            f"file://{folders.data}/f.h5", registry=folders.registry, loadable_variables=["v"]
        )


def test_a_loaded_variable_never_reads_through_a_symlink(folders: Folders) -> None:
    """The file is inside, its chunk is a symlink's target outside: loading it is refused."""
    url = folders.refs(f"file://{folders.data}/link.bin")
    (folders.data / "link.bin").symlink_to(folders.secret)
    with pytest.raises(OutsideRootError):
        vx.open_virtual_dataset(
            url, registry=folders.registry, parser=KerchunkJSONParser(), loadable_variables=["x"]
        )


def _zarr_store(folder: Path) -> Path:
    store = folder / "store.zarr"
    zarr.create_array(
        str(store), shape=(4,), chunks=(2,), dtype="f8", zarr_format=2, compressors=None
    )[...] = np.arange(4.0)
    return store


def test_a_zarr_chunk_symlinked_outside_is_refused(folders: Folders) -> None:
    store = _zarr_store(folders.data)
    (store / "1").unlink()
    (store / "1").symlink_to(folders.secret)
    url = f"file://{store}"
    with pytest.raises(OutsideRootError, match=r"store\.zarr/1"):
        ZarrParser()(url, folders.registry)


def test_a_zarr_folder_symlinked_outside_is_refused(folders: Folders) -> None:
    store = _zarr_store(folders.outside)
    (folders.data / "store.zarr").symlink_to(store)
    with pytest.raises(OutsideRootError):
        ZarrParser()(f"file://{folders.data}/store.zarr", folders.registry)


def test_listing_walks_a_folder_linked_twice_once(folders: Folders) -> None:
    (folders.data / "a").mkdir()
    (folders.data / "a" / "f.bin").write_bytes(b"x")
    (folders.data / "a" / "loop").symlink_to(folders.data / "a")
    listing = vc.byteranges.source(folders.registry, f"file://{folders.data}/a/").list()
    assert listing.column("path").to_pylist() == ["a/f.bin"]


# ---- one ManifestStore, many event loops ---------------------------------------------------


def test_one_manifest_store_serves_many_event_loops(tmp_path: Path) -> None:
    values = np.arange(64.0)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f.create_dataset("v", data=values, chunks=(8,))
    registry = vc.ObjectStoreRegistry.for_urls([str(tmp_path / "f.h5")])
    store = vc.ManifestStore(HDFParser()(str(tmp_path / "f.h5"), registry), registry=registry)
    prototype = default_buffer_prototype()
    results: dict[int, list[Any]] = {}
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        async def read_all() -> list[Any]:
            return list(await asyncio.gather(*(store.get(f"v/c/{i}", prototype) for i in range(8))))

        try:
            results[worker] = [asyncio.run(read_all()) for _ in range(20)][-1]
        except BaseException as err:  # noqa: BLE001 (reported below)
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a loop waited forever"
    assert not errors, errors
    for buffers in results.values():
        got = np.concatenate([np.frombuffer(b.to_bytes(), "<f8") for b in buffers])
        np.testing.assert_array_equal(got, values)
    copy = pickle.loads(pickle.dumps(store))  # after use, as dask.distributed ships it
    np.testing.assert_array_equal(zarr.open_array(copy, path="v", mode="r")[...], values)


def test_kerchunk_references_name_odd_files_as_fsspec_reads_them(folders: Folders) -> None:
    """fsspec reads a ``file://`` path literally: the references hold the unescaped path."""
    import xarray as xr

    odd = folders.data / "we?ird#50%"
    odd.mkdir()
    with h5py.File(odd / "f%41.h5", "w") as f:
        f.create_dataset("v", data=np.arange(4.0), chunks=(2,))
    registry = vc.ObjectStoreRegistry.for_urls([str(odd / "f%41.h5")])
    dataset = vx.open_virtual_dataset(str(odd / "f%41.h5"), registry=registry)
    out = folders.base / "refs.json"
    dataset.vz.to_kerchunk(out, format="json")
    assert json.loads(out.read_text())["refs"]["v/0"][0] == f"file://{odd}/f%41.h5"
    opened = xr.open_dataset(
        "reference://",
        engine="zarr",
        backend_kwargs={"consolidated": False, "storage_options": {"fo": str(out)}},
    )
    np.testing.assert_array_equal(opened["v"].values, np.arange(4.0))
