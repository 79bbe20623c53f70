"""Every way a URL enters vz, times every way out of the registry: refused, nothing read.

Issue 20 part 6. The entry points: a Kerchunk JSON reference, a Kerchunk parquet
``path``, a manifest parquet ``path``, a DMR++ ``dmrpp:href``, a Zarr store URL, and
`rename_paths` output. The attacks: ``..`` segments climbing out of the registered
folder, percent-encoded dots, a symlink inside the folder leading out of it, and a
``file://`` URL handed to a registry that serves one S3 bucket only. Each is refused
with `UnregisteredURLError` (`OutsideRootError` for symlinks) and no byte of the
outside file (its marker) comes back.

Percent-escapes are literal in reference paths (fsspec reads ``%2e%2e`` as a folder
of that name, see `tests/test_hostile_urls.py`): such a reference names a file inside
the folder, which does not exist here, and is refused as unreadable instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr
from obstore.store import LocalStore
from tests.dmrpp_maker import make_dmrpp
from tests.s3_server import S3Bucket

import vzcore as vc
from vzcore.parsers import (
    DMRPPParser,
    KerchunkJSONParser,
    KerchunkParquetParser,
    ManifestParquetParser,
    ZarrParser,
)
from vzcore.registry import OutsideRootError
from vzcore.writers import write_kerchunk_parquet

MARKER = np.frombuffer(b"OUTSIDE!" * 4, dtype="<f8")  # four float64 values
INSIDE = np.arange(4.0)
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
ATTACKS = ("dotdot", "percent", "symlink", "s3_only")
ENTRIES = ("kerchunk_json", "kerchunk_parquet", "manifest_parquet", "dmrpp", "zarr", "rename")


class Setting:
    """``data/`` (registered) holding the documents, ``outside/`` (never) holding the marker."""

    def __init__(self, base: Path, attack: str, bucket: S3Bucket | None) -> None:
        self.data, self.outside = base / "data", base / "outside"
        self.data.mkdir()
        self.outside.mkdir()
        (self.outside / "secret.bin").write_bytes(MARKER.tobytes())
        (self.data / "inside.bin").write_bytes(INSIDE.tobytes())
        root = zarr.create_group(self.outside / "store.zarr", zarr_format=2)
        root.create_array("x", shape=(4,), chunks=(4,), dtype="<f8", compressors=None)[:] = MARKER
        zarr.consolidate_metadata(self.outside / "store.zarr", zarr_format=2)
        with h5py.File(self.data / "d.h5", "w") as f:
            f.create_dataset("x", data=INSIDE, chunks=(4,))
        self.attack, self.bucket = attack, bucket
        self.registry = vc.ObjectStoreRegistry({f"file://{self.data}/": LocalStore(self.data)})

    def target(self, name: str) -> str:
        """The URL of ``outside/<name>``, as this attack spells it."""
        if self.attack == "dotdot":
            return f"file://{self.data}/sub/../../outside/{name}"
        if self.attack == "percent":
            return f"file://{self.data}/%2e%2e/outside/{name}"
        if self.attack == "symlink":
            link = self.data / f"link-{name}"
            if not link.exists():
                link.symlink_to(self.outside / name)
            return f"file://{link}"
        return f"file://{self.outside}/{name}"

    def publish(self, name: str) -> tuple[str, vc.ObjectStoreRegistry]:
        """The document ``data/<name>`` as the attack reads it: from S3 alone, or locally."""
        if self.bucket is None:
            return f"file://{self.data}/{name}", self.registry
        base = self.bucket.put_tree("data", self.data)
        return f"{base}/{name}", vc.ObjectStoreRegistry({self.bucket.url: self.bucket.store()})

    def inside_group(self) -> vc.VirtualGroup:
        """A group whose one chunk is ``data/inside.bin`` (to have its path rewritten)."""
        refs = {
            ".zgroup": json.dumps({"zarr_format": 2}),
            "x/.zarray": json.dumps(ZARRAY),
            "x/0": [f"file://{self.data}/inside.bin", 0, 32],
        }
        (self.data / "inside.json").write_text(json.dumps({"version": 1, "refs": refs}))
        return KerchunkJSONParser()(f"file://{self.data}/inside.json", self.registry)


def kerchunk_json(s: Setting) -> None:
    refs = {
        ".zgroup": json.dumps({"zarr_format": 2}),
        "x/.zarray": json.dumps(ZARRAY),
        "x/0": [s.target("secret.bin"), 0, 32],
    }
    (s.data / "refs.json").write_text(json.dumps({"version": 1, "refs": refs}))
    read(KerchunkJSONParser(), *s.publish("refs.json"))


def kerchunk_parquet(s: Setting) -> None:
    moved = vc.rename_paths(s.inside_group(), s.target("secret.bin"))
    write_kerchunk_parquet(moved, s.data / "refs.parq")
    read(KerchunkParquetParser(), *s.publish("refs.parq"))


def manifest_parquet(s: Setting) -> None:
    moved = vc.rename_paths(s.inside_group(), s.target("secret.bin"))
    vc.write_manifest_parquet(moved, s.data / "group.vz")
    read(ManifestParquetParser(), *s.publish("group.vz"))


def dmrpp(s: Setting) -> None:
    (s.outside / "d.h5").write_bytes((s.data / "d.h5").read_bytes().replace(
        INSIDE.tobytes(), MARKER.tobytes()
    ))  # fmt: skip
    document = make_dmrpp(s.data / "d.h5")
    href = s.target("d.h5").encode()
    (s.data / "d.dmrpp").write_bytes(re.sub(rb'dmrpp:href="[^"]*"', b'dmrpp:href="' + href + b'"',
                                            document))  # fmt: skip
    assert href in (s.data / "d.dmrpp").read_bytes()
    read(DMRPPParser(), *s.publish("d.dmrpp"))


def zarr_store(s: Setting) -> None:
    url = s.target("store.zarr")
    _, registry = s.publish("inside.bin")
    read(ZarrParser(), url, registry)


def rename(s: Setting) -> None:
    url, registry = s.publish("inside.json") if s.bucket is None else (None, None)
    group = s.inside_group()
    if s.bucket is not None:
        url, registry = s.publish("inside.json")
        group = KerchunkJSONParser()(url, registry)
    assert registry is not None
    moved = vc.rename_paths(group, s.target("secret.bin"))
    values = vc.read_arrays(dict(moved.walk_arrays()), registry)
    assert not any(MARKER.tobytes() in v.tobytes() for v in values.values())


ENTRY: dict[str, Callable[[Setting], None]] = {
    "kerchunk_json": kerchunk_json,
    "kerchunk_parquet": kerchunk_parquet,
    "manifest_parquet": manifest_parquet,
    "dmrpp": dmrpp,
    "zarr": zarr_store,
    "rename": rename,
}


def read(
    parser: Callable[..., vc.VirtualGroup], url: str, registry: vc.ObjectStoreRegistry
) -> None:
    """Parse ``url`` and read every array; the marker must never come back."""
    group = parser(url, registry)
    values = vc.read_arrays(dict(group.walk_arrays()), registry)
    assert not any(MARKER.tobytes() in v.tobytes() for v in values.values())


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("entry", ENTRIES)
def test_every_url_entry_point_is_confined(
    tmp_path: Path, request: pytest.FixtureRequest, entry: str, attack: str
) -> None:
    bucket = request.getfixturevalue("s3_bucket") if attack == "s3_only" else None
    setting = Setting(tmp_path, attack, bucket)
    with pytest.raises(vc.VirtualizationError) as info:
        ENTRY[entry](setting)
    error = info.value
    if attack == "symlink":
        assert isinstance(error, OutsideRootError), error
    elif attack == "percent" and not isinstance(error, vc.UnregisteredURLError):
        # Kept literal (a folder named %2e%2e inside data/): a file that is not there.
        assert isinstance(error, vc.SourceReadError), error
        assert f"{setting.data}/%252e%252e/outside" in str(error), error
    else:
        assert isinstance(error, vc.UnregisteredURLError), error
