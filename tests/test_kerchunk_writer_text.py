"""The JSON writer's text, built column-wise, against a reference built one chunk at a time.

The reference is the old way: a Python dict of every reference, ``json.dumps``-ed. The
written file must be strict JSON (``json.loads``), and equal it as parsed JSON, for
URLs that need escaping (quotes, backslashes, control characters, non-ASCII, spaces),
inline chunks, missing chunks, several arrays in nested groups and grids of any
rank; fsspec's ReferenceFileSystem must find the same references in it.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest

import vzcore as vc
from vzcore.urls import fsspec_url
from vzcore.writers import kerchunk as kerchunk_module
from vzcore.writers import kerchunk_refs, write_kerchunk_json

TRICKY_URLS = [
    's3://bucket/q"uote.nc',
    "file:///data/back\\slash.nc",
    's3://bucket/both\\"of them.nc',
    "s3://bucket/ünï cödé 東京.nc",
    "file:///data/with space.nc",
    "s3://bucket/ctrl\x01tab\t.nc",
    "https://host/x%3Fy.nc?a=1&b=2",
    "s3://bucket/emoji-\U0001f600.nc",
]


def _reference_refs(group: vc.VirtualGroup) -> dict[str, Any]:
    """The references one chunk at a time, in Python: the dict json.dumps used to write."""
    documents = {
        key: value
        for key, value in kerchunk_refs(group)["refs"].items()
        if key.rsplit("/", 1)[-1].startswith(".")
    }
    refs: dict[str, Any] = dict(documents)
    for path, array in group.walk_arrays():
        assert isinstance(array, vc.VirtualArray)
        manifest = array.manifest
        grid = manifest.grid
        paths, offsets, lengths = manifest.to_arrays()
        inline = manifest.inline_mask().reshape(grid)
        inline_rows = np.flatnonzero(manifest.inline_mask())
        inline_data = dict(
            zip(inline_rows.tolist(), manifest.inline_chunks(inline_rows), strict=True)
        )
        for row, index in enumerate(np.ndindex(*grid)):
            key = f"{path}/" + (".".join(map(str, index)) if grid else "0")
            if inline[index]:
                refs[key] = "base64:" + base64.b64encode(inline_data[row]).decode()
            elif paths[index]:
                refs[key] = [
                    fsspec_url(str(paths[index])),
                    int(offsets[index]),
                    int(lengths[index]),
                ]
    return {"version": 1, "refs": refs}


def _array(grid: tuple[int, ...], urls: list[str], *, inline_every: int = 0) -> vc.VirtualArray:
    """A virtual array over ``urls``: every fourth chunk missing, some chunks inline."""
    n = math.prod(grid)
    rows = np.arange(n)
    paths = np.array([urls[i % len(urls)] for i in range(n)], dtype=np.dtypes.StringDType())
    paths[rows % 4 == 3] = ""
    data: list[bytes | None] = [None] * n
    if inline_every:
        for row in rows[(rows % inline_every == 1) & (rows % 4 != 3)]:
            paths[row] = ""
            data[row] = bytes([row % 256]) * (row % 5 + 1)
    offsets = np.where(paths != "", rows * 4096 + 2**35, 0).astype(np.uint64)
    lengths = np.where(paths != "", rows + 11, 0).astype(np.uint64)
    manifest = vc.ChunkManifest.from_arrays(
        paths=paths.reshape(grid),
        offsets=offsets.reshape(grid),
        lengths=lengths.reshape(grid),
        data=np.array(data, dtype=object).reshape(grid) if inline_every else None,
    )
    metadata = vc.ArrayMetadata(
        shape=tuple(3 * g for g in grid), chunk_grid=(3,) * len(grid), dtype="<f4", fill_value=0
    )
    return vc.VirtualArray(metadata, manifest)


def _group() -> vc.VirtualGroup:
    return vc.VirtualGroup(
        arrays={
            "plain": _array((5, 4), TRICKY_URLS),
            "scalar": _array((), TRICKY_URLS[3:4]),
            "line": _array((11,), TRICKY_URLS[:2], inline_every=3),
        },
        groups={
            "sub": vc.VirtualGroup(
                arrays={"deep": _array((2, 3, 4, 5), TRICKY_URLS[::-1], inline_every=7)},
                groups={"ünï": vc.VirtualGroup(arrays={"x": _array((3, 7), TRICKY_URLS[4:])})},
            ),
            "empty": vc.VirtualGroup(),
        },
    )


@pytest.mark.parametrize("batch_rows", [1, 2, 3, 5, 1 << 20])
def test_json_text_equals_the_reference_dict(
    batch_rows: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kerchunk_module, "_BATCH_ROWS", batch_rows)
    group = _group()
    text = write_kerchunk_json(group, tmp_path / "refs.json").read_bytes()
    written = json.loads(text)  # strict JSON: no stray brackets or commas
    expected = json.loads(json.dumps(_reference_refs(group)))
    assert written == expected
    assert written == kerchunk_refs(group)
    # Every key appears once in the text (a dict would hide a duplicate).
    pairs = json.loads(text, object_pairs_hook=lambda items: items)
    keys = [key for key, _ in pairs[1][1]]
    assert len(keys) == len(set(keys)) == len(expected["refs"])


def test_fsspec_finds_the_same_references(tmp_path: Path) -> None:
    group = _group()
    target = write_kerchunk_json(group, tmp_path / "refs.json")
    fs = fsspec.filesystem("reference", fo=str(target))
    expected = _reference_refs(group)["refs"]
    for key, value in expected.items():
        got = fs.references[key]
        if isinstance(value, list):
            assert list(got) == value
        elif value.startswith("base64:"):
            assert fs.cat_file(key) == base64.b64decode(value[len("base64:") :])
        else:
            assert json.loads(fs.cat_file(key)) == json.loads(value)


def test_an_array_whose_chunks_are_all_missing_or_inline_writes_no_bracket(
    tmp_path: Path,
) -> None:
    """No reference row: the closing ``]`` of the last entry is not written either."""
    grid = (4,)
    manifest = vc.ChunkManifest.from_arrays(
        paths=np.array(["", "", "", ""], dtype=np.dtypes.StringDType()),
        offsets=np.zeros(4, np.uint64),
        lengths=np.zeros(4, np.uint64),
        data=np.array([b"ab", None, b"c", None], dtype=object),
    )
    metadata = vc.ArrayMetadata(shape=(8,), chunk_grid=(2,), dtype="<f4", fill_value=0)
    group = vc.VirtualGroup(
        arrays={"a": vc.VirtualArray(metadata, manifest), "b": _array(grid, TRICKY_URLS)}
    )
    text = write_kerchunk_json(group, tmp_path / "refs.json").read_bytes()
    assert json.loads(text) == json.loads(json.dumps(_reference_refs(group)))


@pytest.mark.parametrize(
    ("grid", "rows_per_call"),
    [((3, 4, 5), 1), ((3, 4, 5), 4), ((3, 4, 5), 20), ((3, 4, 5), 60), ((7, 1, 3), 3), ((9,), 2)],
)
def test_chunk_keys_for_any_run_of_axes(grid: tuple[int, ...], rows_per_call: int) -> None:
    """Axes formatted together or per row, the keys are the C-ordered coordinates."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = np.array([0, 1, 5, math.prod(grid) - 1, 7 % math.prod(grid)], dtype=np.int64)
    texts = kerchunk_module._key_texts(grid, "p/", rows_per_call=rows_per_call)(rows)
    joined = pc.binary_join_element_wise(*texts, pa.scalar("", pa.large_string())).to_pylist()
    assert joined == ["p/" + ".".join(map(str, np.unravel_index(r, grid))) for r in rows]
