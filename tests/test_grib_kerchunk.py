"""GRIB through Kerchunk: the ``vz.grib`` numcodecs codec, read by fsspec and zarr v2.

Kerchunk references carry zarr v2 metadata, where a GRIB message is the array's
compressor ``{"id": "vz.grib", "field": k, "dtype": ...}``; zarr finds the codec
through the ``numcodecs.codecs`` entry point, so a process that never imports vzcore
decodes it (the entry point imports vz's codec). Values are compared with cfgrib / ecCodes on xarray's ``example.grib``
(ECMWF's), on a cube with a hole (a missing message reads NaN) and on multi-field
messages; the references also parse back into the same manifests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from tests.test_grib import EXAMPLE, _opened, _virtual, holes_file
from tests.writer_corpus import PyarrowReferenceMapper, reference_dataset

import vzcore as vc
from vzcore.errors import UnsupportedCodecError
from vzcore.numcodecs_codecs import GRIBNumcodec
from vzcore.parsers import KerchunkJSONParser, KerchunkParquetParser
from vzcore.writers import write_kerchunk_json, write_kerchunk_parquet

FRESH_READER = textwrap.dedent(
    """
    import json, sys
    import numpy as np, xarray as xr

    refs, expected = sys.argv[1:3]
    assert "vzcore" not in sys.modules  # only numcodecs' entry point brings the codec
    ds = xr.open_dataset(
        "reference://", engine="zarr", decode_timedelta=True,
        backend_kwargs={"consolidated": False,
                        "storage_options": {"fo": refs, "remote_protocol": "file"}},
    )
    wanted = np.load(expected)
    for name in wanted.files:
        np.testing.assert_array_equal(ds[name].values, wanted[name])
    print(json.dumps(sorted(wanted.files)))
    """
)


def _fresh_read(refs: Path, expected: dict[str, np.ndarray], tmp_path: Path) -> list[str]:
    np.savez(tmp_path / "expected.npz", **expected)
    run = subprocess.run(
        [sys.executable, "-c", FRESH_READER, str(refs), str(tmp_path / "expected.npz")],
        env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    names: list[str] = json.loads(run.stdout)
    return names


def test_a_fresh_process_reads_kerchunk_json_of_example_grib(tmp_path: Path) -> None:
    group, _ = _virtual(EXAMPLE)
    refs = write_kerchunk_json(group, tmp_path / "example.json")
    zarray = json.loads(json.loads(refs.read_text())["refs"]["t/.zarray"])
    assert zarray["compressor"] == {"id": "vz.grib", "field": 0, "dtype": "<f4"}
    with xr.open_dataset(EXAMPLE, engine="cfgrib", indexpath="") as ref:
        expected = {name: ref[name].values.astype("f4") for name in ("t", "z")}
    # cfgrib's dataset drops the singleton axes vz keeps (number, step): same values.
    shapes = {name: group[name].shape for name in expected}
    expected = {name: values.reshape(shapes[name]) for name, values in expected.items()}
    assert _fresh_read(refs, expected, tmp_path) == ["t", "z"]


def test_a_missing_message_reads_nan_through_kerchunk_json_and_parquet(tmp_path: Path) -> None:
    path = holes_file(tmp_path)
    group, registry = _virtual(path)
    assert group["t2m"].manifest.n_missing == 1  # type: ignore[union-attr]
    direct = _opened(group, registry)
    expected = {"t2m": direct["t2m"].values}
    assert np.isnan(expected["t2m"][1, 1]).all()
    assert np.isnan(expected["t2m"]).sum() == expected["t2m"][1, 1].size

    refs = write_kerchunk_json(group, tmp_path / "holes.json")
    zarray = json.loads(json.loads(refs.read_text())["refs"]["t2m/.zarray"])
    assert zarray["fill_value"] == "NaN"  # the hole: fill_value says it
    assert _fresh_read(refs, expected, tmp_path) == ["t2m"]

    parquet = write_kerchunk_parquet(group, tmp_path / "holes.parq")
    with reference_dataset(PyarrowReferenceMapper(parquet)) as ds:
        for name, values in expected.items():
            np.testing.assert_array_equal(ds[name].values, values)

    for again in (
        KerchunkJSONParser()(f"file://{refs}", registry),
        KerchunkParquetParser()(f"file://{parquet}", registry),
    ):
        for name in expected:
            assert again[name].metadata.codecs == group[name].metadata.codecs
            assert again[name].manifest == group[name].manifest  # type: ignore[union-attr]
        reread = _opened(again, registry)
        for name, values in expected.items():
            np.testing.assert_array_equal(reread[name].values, values)


def test_multi_field_messages_through_kerchunk_and_icechunk(tmp_path: Path) -> None:
    """u10 and v10 as fields 0 and 1 of each message: both writers keep the field."""
    import zarr
    from tests.cf_corpus import icechunk_repository
    from tests.test_grib_multifield import _check_against_eccodes, _multi_message, _values

    from vzcore.writers import write_icechunk

    steps = (0, 6, 12)
    path = tmp_path / "uv.grib2"
    path.write_bytes(
        b"".join(
            _multi_message([("10u", _values(s)), ("10v", _values(s + 100))], s, 3) for s in steps
        )
    )
    group = _check_against_eccodes(path, steps)  # vz through ManifestStore equals ecCodes
    registry = vc.ObjectStoreRegistry.for_urls([str(path)])
    expected = {name: _opened(group, registry)[name].values for name in ("u10", "v10")}
    refs = write_kerchunk_json(group, tmp_path / "uv.json")
    documents = json.loads(refs.read_text())["refs"]
    for name, field in (("u10", 0), ("v10", 1)):
        assert json.loads(documents[f"{name}/.zarray"])["compressor"]["field"] == field
    assert _fresh_read(refs, expected, tmp_path) == ["u10", "v10"]

    repository = icechunk_repository(tmp_path)
    session = repository.writable_session("main")
    write_icechunk(group, session.store)
    session.commit("multi-field GRIB")
    root = zarr.open_group(repository.readonly_session("main").store, mode="r")
    for name, values in expected.items():
        np.testing.assert_array_equal(root[name][...], values)


def test_the_numcodecs_codec_checks_its_configuration() -> None:
    with pytest.raises(vc.InvalidMetadataError, match="field"):
        GRIBNumcodec(field=-1)
    with pytest.raises(vc.InvalidMetadataError, match="floats"):
        GRIBNumcodec(dtype="<i4")
    with pytest.raises(UnsupportedCodecError, match="cannot encode"):
        GRIBNumcodec().encode(b"")
    with pytest.raises(vc.ChunkDecodeError, match=r"vz\.grib"):
        GRIBNumcodec().decode(b"not a GRIB message")
    message = EXAMPLE.read_bytes()[: int.from_bytes(EXAMPLE.read_bytes()[8:16], "big")]
    values = np.frombuffer(GRIBNumcodec(dtype="<f8").decode(message), "<f8")
    out = np.empty(values.size, "<f4")
    GRIBNumcodec().decode(message, out=out)
    np.testing.assert_array_equal(out, values.astype("f4"))
    with pytest.raises(vc.ChunkDecodeError, match="values"):
        GRIBNumcodec().decode(message, out=np.empty(values.size + 1, "<f4"))
