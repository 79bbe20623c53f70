"""vzcore stays xarray-free: the algebra and the parquet layout run without importing it."""

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys

    import numpy as np

    import vzcore as vc

    out = sys.argv[1]
    meta = vc.ArrayMetadata.create(shape=(4, 6), chunk_shape=(2, 3), dtype="<f4")

    def virtual(url):
        return vc.VirtualArray(meta, vc.ChunkManifest.from_arrays(
            paths=np.full((2, 2), url), offsets=np.arange(4).reshape(2, 2) * 96,
            lengths=np.full((2, 2), 96)))

    a, b = virtual("file:///a.nc"), virtual("file:///b.nc")
    down = vc.concat([a, b], axis=0)
    across = vc.concat([a, b], axis=1)
    stacked = vc.stack([a, b], axis=0)
    renamed = vc.rename_paths(stacked, lambda p: p.replace("file:///", "s3://bucket/"))
    group = vc.VirtualGroup(
        arrays={"down": down, "across": across, "stacked": renamed,
                "x": vc.LoadedArray.from_numpy(np.arange(6))},
        attributes={"title": "no xarray"})
    written = vc.write_manifest_parquet(group, out)
    assert vc.read_manifest_parquet(written) == group
    assert renamed.manifest.dictionary.to_pylist() == ["s3://bucket/a.nc", "s3://bucket/b.nc"]
    assert "xarray" not in sys.modules, sorted(m for m in sys.modules if "xarray" in m)
    assert "vzxarray" not in sys.modules
    print("xarray-free")
    """
)


def test_vzcore_runs_without_importing_xarray(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "store")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "xarray-free"
