"""A tile-compressed FITS file through Kerchunk parquet and Icechunk, read back equal to astropy.

The Icechunk repository is read by a fresh process that never imports vzcore: the
``vz.`` FITS codecs are found through zarr's ``zarr.codecs`` entry points.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import icechunk
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits
from tests.test_format_codecs import READER, _entry_point_path
from tests.writer_corpus import PyarrowReferenceMapper, local_registry, reference_dataset

import vzcore as vc
from vzcore.errors import UnsupportedCodecError
from vzcore.parsers import FITSParser
from vzcore.writers import kerchunk_refs, write_icechunk, write_kerchunk_parquet


@pytest.fixture(autouse=True)
def _quiet_astropy() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _values(shape: tuple[int, ...], dtype: str) -> Any:
    return (np.arange(np.prod(shape)).reshape(shape) * 7 % 1009).astype(dtype)


def write_sample(folder: Path) -> dict[str, Any]:
    """A FITS file whose tiles divide the image (a regular grid, which Kerchunk needs)."""
    path = folder / "tiles.fits"
    gzip2 = fits.CompImageHDU(
        _values((40, 30), "i4"), compression_type="GZIP_2", tile_shape=(10, 30), name="GZ2"
    )
    gzip1 = fits.CompImageHDU(
        _values((20, 16), "i2"), compression_type="GZIP_1", tile_shape=(5, 8), name="GZ1"
    )
    plain = fits.ImageHDU(_values((6, 4), "f4") / 3, name="PLAIN")
    rice = fits.CompImageHDU(
        _values((20, 16), "i2"), compression_type="RICE_1", tile_shape=(5, 16), name="RICE"
    )
    unsigned = fits.CompImageHDU(
        _values((20, 16), "u2") + 30000,
        compression_type="HCOMPRESS_1",
        tile_shape=(5, 16),
        name="HCOMP",
    )
    fits.HDUList([fits.PrimaryHDU(), gzip2, gzip1, plain, rice, unsigned]).writeto(path)
    with fits.open(path) as hdul:
        return {h.name: np.array(h.data) for h in hdul[1:]}


def test_kerchunk_parquet_round_trip(tmp_path: Path) -> None:
    expected = write_sample(tmp_path)
    group = FITSParser()(f"file://{tmp_path / 'tiles.fits'}", local_registry(tmp_path))
    kept = group.evolve(arrays={k: group[k] for k in ("GZ2", "GZ1", "PLAIN")})
    root = write_kerchunk_parquet(kept, tmp_path / "refs.parq")
    with reference_dataset(PyarrowReferenceMapper(root)) as ds:
        for name in ("GZ2", "GZ1", "PLAIN"):
            np.testing.assert_array_equal(ds[name].values, expected[name], name)
    # The cfitsio codecs have no numcodecs equivalent: a typed error names them.
    for name, codec in (("RICE", "vz.fits_tile"), ("HCOMP", "vz.sign_flip")):
        with pytest.raises(UnsupportedCodecError, match=codec):
            kerchunk_refs(group.evolve(arrays={name: group[name]}))


def test_icechunk_round_trip_read_without_vzcore(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    expected = write_sample(data)
    group = FITSParser()(f"file://{data / 'tiles.fits'}", local_registry(data))
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
    write_icechunk(group, session.store)
    session.commit("fits tiles")
    np.savez(tmp_path / "expected.npz", **{k: _stored(k, v, group) for k, v in expected.items()})
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
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)
    assert report["imported_before_reading"] is False
    assert report["zarr"] == dict.fromkeys(expected, True)
    assert report["xarray"] == dict.fromkeys(expected, True)
    assert {"vz.fits_tile", "vz.sign_flip", "gzip", "numcodecs.shuffle"} <= set(report["codecs"])


def _stored(name: str, values: Any, group: vc.VirtualGroup) -> Any:
    """What zarr reads without CF decoding: astropy's values, which need none here."""
    assert not group[name].metadata.encoding, name
    return values


def test_xarray_reads_the_icechunk_fits_like_astropy(tmp_path: Path) -> None:
    expected = write_sample(tmp_path)
    group = FITSParser()(f"file://{tmp_path / 'tiles.fits'}", local_registry(tmp_path))
    store = vc.ManifestStore(group, registry=local_registry(tmp_path))
    with xr.open_zarr(store, consolidated=False) as ds:
        for name, values in expected.items():
            np.testing.assert_array_equal(ds[name].values, values, name)
