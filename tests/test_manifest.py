"""Examples for `vzcore.manifest.ChunkManifest`: constructors, views, equality, freezing."""

import pickle
import re
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest

from vzcore import ChunkManifest, InvalidManifestError
from vzcore.manifest import MANIFEST_SCHEMA

A_NC = "s3://bucket/a.nc"
B_NC = "s3://bucket/b.nc"


def _arrays(manifest: ChunkManifest) -> tuple[list[str], list[int], list[int]]:
    """The manifest's flat (paths, offsets, lengths) as Python lists."""
    paths, offsets, lengths = manifest.to_arrays()
    return paths.ravel().tolist(), offsets.ravel().tolist(), lengths.ravel().tolist()


# ---- from_arrays ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "paths",
    [
        pytest.param(np.array([[A_NC, ""], ["", B_NC]]), id="unicode"),
        pytest.param(np.array([[A_NC, None], ["", B_NC]], dtype=object), id="object"),
        pytest.param(
            np.array([[A_NC, ""], ["", B_NC]], dtype=np.dtypes.StringDType()), id="stringdtype"
        ),
        pytest.param(
            np.array([[A_NC, None], ["", B_NC]], dtype=np.dtypes.StringDType(na_object=None)),
            id="stringdtype-na-none",
        ),
    ],
)
def test_from_arrays_accepts_every_string_dtype(paths: npt.NDArray[Any]) -> None:
    manifest = ChunkManifest.from_arrays(
        paths=paths, offsets=np.array([[8, 0], [0, 40]]), lengths=np.array([[16, 0], [0, 32]])
    )
    assert manifest.grid == (2, 2)
    assert manifest.n_chunks == 4
    assert manifest.n_missing == 2
    assert manifest.dictionary.to_pylist() == [A_NC, B_NC]
    assert _arrays(manifest) == ([A_NC, "", "", B_NC], [8, 0, 0, 40], [16, 0, 0, 32])
    assert manifest.table.schema.equals(MANIFEST_SCHEMA)


def test_from_arrays_zeroes_offsets_and_lengths_of_missing_chunks() -> None:
    manifest = ChunkManifest.from_arrays(
        paths=np.array([A_NC, "", None], dtype=object),
        offsets=np.array([1, 500, 600]),
        lengths=np.array([2, 70, 80]),
    )
    assert _arrays(manifest) == ([A_NC, "", ""], [1, 0, 0], [2, 0, 0])
    assert manifest.referenced_nbytes == 2


def test_from_arrays_accepts_object_integers_and_large_unsigned() -> None:
    big = 2**63 + 5  # beyond int64: only uint64 holds it
    manifest = ChunkManifest.from_arrays(
        paths=np.array([A_NC, A_NC]),
        offsets=np.array([big, 3], dtype=np.uint64),
        lengths=np.array([4, 5], dtype=object),
    )
    assert _arrays(manifest) == ([A_NC, A_NC], [big, 3], [4, 5])


def test_from_arrays_of_a_0d_grid() -> None:
    manifest = ChunkManifest.from_arrays(
        paths=np.array(A_NC), offsets=np.array(3), lengths=np.array(4)
    )
    assert manifest.grid == ()
    assert manifest.n_chunks == 1
    assert manifest.to_entries() == {"0": {"path": A_NC, "offset": 3, "length": 4}}


def test_from_arrays_refuses_shapes_that_differ() -> None:
    with pytest.raises(InvalidManifestError) as info:
        ChunkManifest.from_arrays(
            paths=np.array([A_NC, B_NC]), offsets=np.array([1, 2, 3]), lengths=np.array([1, 2])
        )
    assert str(info.value) == "paths, offsets and lengths differ in shape: (2,), (3,), (2,)"


@pytest.mark.parametrize(
    ("offsets", "lengths", "message"),
    [
        ([-1, 0], [1, 1], "offsets must be non-negative, found -1"),
        ([0, 1], [1, -7], "lengths must be non-negative, found -7"),
        (np.array([-2, 5], dtype=object), [1, 1], "offsets must be non-negative, found -2"),
    ],
)
def test_from_arrays_refuses_negative_values(
    offsets: npt.ArrayLike, lengths: npt.ArrayLike, message: str
) -> None:
    with pytest.raises(InvalidManifestError) as info:
        ChunkManifest.from_arrays(paths=np.array([A_NC, B_NC]), offsets=offsets, lengths=lengths)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("offsets", "message"),
    [
        (np.array([1.0, 2.5]), "offsets must be integers, got dtype float64"),
        (np.array([True, False]), "offsets must be integers, got dtype bool"),
        (np.array(["1", "2"]), "offsets must be integers, got dtype <U1"),
        (np.array(["x", 1], dtype=object), "offsets must be integers: "),
        (np.array([None, 1], dtype=object), "offsets must be integers: "),
    ],
)
def test_from_arrays_refuses_non_integers(offsets: npt.NDArray[Any], message: str) -> None:
    with pytest.raises(InvalidManifestError, match="^" + re.escape(message)):
        ChunkManifest.from_arrays(paths=np.array([A_NC, B_NC]), offsets=offsets, lengths=[1, 1])


def test_from_arrays_refuses_non_string_paths() -> None:
    with pytest.raises(InvalidManifestError, match=r"^paths must be strings, got dtype int64$"):
        ChunkManifest.from_arrays(paths=np.array([1, 2]), offsets=[0, 0], lengths=[1, 1])


# ---- from_entries -----------------------------------------------------------------------


def test_from_entries_reads_dot_and_slash_keys_alike() -> None:
    dotted = ChunkManifest.from_entries(
        {
            "0.1": {"path": A_NC, "offset": 10, "length": 5},
            "1.0": {"path": B_NC, "offset": 20, "length": 6},
        }
    )
    slashed = ChunkManifest.from_entries(
        {
            "0/1": {"path": A_NC, "offset": 10, "length": 5},
            "1/0": {"path": B_NC, "offset": 20, "length": 6},
        }
    )
    assert dotted == slashed
    assert dotted.grid == (2, 2)  # one past the largest key along each axis
    assert _arrays(dotted) == (["", A_NC, B_NC, ""], [0, 10, 20, 0], [0, 5, 6, 0])


def test_from_entries_with_an_explicit_grid_marks_the_rest_missing() -> None:
    manifest = ChunkManifest.from_entries(
        {"1.2": {"path": A_NC, "offset": 7, "length": 3}}, grid=(3, 4)
    )
    assert manifest.grid == (3, 4)
    assert manifest.n_missing == 11
    assert manifest.to_entries() == {"1.2": {"path": A_NC, "offset": 7, "length": 3}}


def test_from_entries_of_a_0d_array_uses_key_0() -> None:
    manifest = ChunkManifest.from_entries({"0": {"path": A_NC, "offset": 1, "length": 2}}, grid=())
    assert manifest.grid == ()
    assert manifest.n_chunks == 1
    assert manifest.to_entries() == {"0": {"path": A_NC, "offset": 1, "length": 2}}


def test_from_entries_infers_a_1d_grid_from_key_0() -> None:
    manifest = ChunkManifest.from_entries({"0": {"path": A_NC, "offset": 1, "length": 2}})
    assert manifest.grid == (1,)


@pytest.mark.parametrize(
    ("key", "grid"),
    [("2", (2,)), ("-1", (2,)), ("0.3", (1, 3)), ("5.0", (2, 2))],
)
def test_from_entries_refuses_keys_outside_the_grid(key: str, grid: tuple[int, ...]) -> None:
    with pytest.raises(InvalidManifestError) as info:
        ChunkManifest.from_entries({key: {"path": A_NC, "offset": 0, "length": 1}}, grid=grid)
    assert str(info.value) == f"a chunk key lies outside the grid {grid}"


def test_from_entries_refuses_key_1_for_a_0d_grid() -> None:
    with pytest.raises(InvalidManifestError):
        ChunkManifest.from_entries({"1": {"path": A_NC, "offset": 0, "length": 1}}, grid=())


def test_from_entries_refuses_keys_with_the_wrong_number_of_axes() -> None:
    with pytest.raises(InvalidManifestError):
        ChunkManifest.from_entries({"0.1": {"path": A_NC, "offset": 0, "length": 1}}, grid=(2,))


def test_from_entries_refuses_duplicate_keys() -> None:
    entry = {"path": A_NC, "offset": 0, "length": 1}
    with pytest.raises(InvalidManifestError, match=r"^two chunk keys name the same chunk$"):
        ChunkManifest.from_entries({"0.1": entry, "0/1": entry})


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (["x"], r"^chunk keys must be integers joined by '\.'"),
        (["0.a"], r"^chunk keys must be integers joined by '\.'"),
        (["0.1", "1"], r"^chunk keys have different numbers of axes$"),
    ],
    ids=["letter", "letter-axis", "mixed-ndim"],
)
def test_from_entries_refuses_malformed_keys(keys: list[str], message: str) -> None:
    entry = {"path": A_NC, "offset": 0, "length": 1}
    with pytest.raises(InvalidManifestError, match=message):
        ChunkManifest.from_entries(dict.fromkeys(keys, entry))


@pytest.mark.parametrize("field", ["path", "offset", "length"])
def test_from_entries_refuses_an_entry_without_a_field(field: str) -> None:
    entry = {"path": A_NC, "offset": 0, "length": 1}
    del entry[field]
    with pytest.raises(InvalidManifestError) as info:
        ChunkManifest.from_entries({"0": entry})
    assert str(info.value) == (
        f"each entry needs 'path', 'offset' and 'length' (or 'data'): missing '{field}'"
    )


def test_from_entries_refuses_an_entry_that_is_not_a_mapping() -> None:
    with pytest.raises(InvalidManifestError, match=r"^each entry needs 'path', 'offset'"):
        ChunkManifest.from_entries({"0": [A_NC, 0, 1]})  # type: ignore[dict-item]


def test_from_entries_without_entries_needs_a_grid() -> None:
    with pytest.raises(InvalidManifestError) as info:
        ChunkManifest.from_entries({})
    assert str(info.value) == "cannot infer the grid of an empty manifest: pass grid="


def test_from_entries_without_entries_and_a_grid_is_all_missing() -> None:
    assert ChunkManifest.from_entries({}, grid=(2, 3)) == ChunkManifest.empty((2, 3))


# ---- from_arrow -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path_column",
    [
        pytest.param(pa.array([A_NC, "", B_NC]), id="string"),
        pytest.param(pa.array([A_NC, "", B_NC], pa.large_string()), id="large_string"),
        pytest.param(pa.array([A_NC, None, B_NC]), id="string-null"),
        pytest.param(
            pa.DictionaryArray.from_arrays(
                pa.array([1, None, 0], pa.int8()), pa.array([B_NC, A_NC])
            ),
            id="dictionary-int8",
        ),
        pytest.param(
            pa.DictionaryArray.from_arrays(
                pa.array([2, 0, 1], pa.int64()), pa.array(["", B_NC, A_NC], pa.large_string())
            ),
            id="dictionary-with-empty-string",
        ),
    ],
)
def test_from_arrow_normalises_every_path_column(path_column: pa.Array) -> None:
    table = pa.table(
        {
            "path": path_column,
            "offset": pa.array([1, 99, 3], pa.int32()),
            "length": pa.array([4, 99, 6], pa.int8()),
        }
    )
    manifest = ChunkManifest.from_arrow(table, grid=(3,))
    assert manifest.table.schema.equals(MANIFEST_SCHEMA)
    assert _arrays(manifest) == ([A_NC, "", B_NC], [1, 0, 3], [4, 0, 6])
    assert manifest.n_missing == 1
    assert sorted(manifest.dictionary.to_pylist()) == [A_NC, B_NC]


def test_from_arrow_unifies_the_dictionaries_of_its_chunks() -> None:
    first = pa.record_batch(
        {
            "path": pa.DictionaryArray.from_arrays(pa.array([0, 1], pa.int32()), ["", A_NC]),
            "offset": pa.array([5, 6], pa.uint64()),
            "length": pa.array([5, 6], pa.uint64()),
        }
    )
    second = pa.record_batch(
        {
            "path": pa.DictionaryArray.from_arrays(pa.array([0, 1], pa.int32()), [B_NC, ""]),
            "offset": pa.array([7, 8], pa.uint64()),
            "length": pa.array([7, 8], pa.uint64()),
        }
    )
    manifest = ChunkManifest.from_arrow(pa.Table.from_batches([first, second]), grid=(2, 2))
    paths = manifest.paths
    assert all(chunk.dictionary.equals(manifest.dictionary) for chunk in paths.chunks)
    assert manifest.dictionary.to_pylist() == [A_NC, B_NC]
    assert _arrays(manifest) == (["", A_NC, B_NC, ""], [0, 6, 7, 0], [0, 6, 7, 0])


def test_from_arrow_casts_signed_and_narrow_integers_to_uint64() -> None:
    table = pa.table(
        {
            "path": [A_NC, A_NC],
            "offset": pa.array([0, 2**40], pa.int64()),
            "length": pa.array([7, 8], pa.uint16()),
        }
    )
    manifest = ChunkManifest.from_arrow(table, grid=(2,))
    assert manifest.table.column("offset").type == pa.uint64()
    assert manifest.table.column("length").type == pa.uint64()
    assert _arrays(manifest) == ([A_NC, A_NC], [0, 2**40], [7, 8])


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (
            {"path": [A_NC], "offset": [-3], "length": [1]},
            "column 'offset' has a negative value (-3)",
        ),
        (
            {"path": [A_NC], "offset": [0], "length": pa.array([-1], pa.int8())},
            "column 'length' has a negative value (-1)",
        ),
        ({"path": [A_NC], "offset": [0]}, "table lacks columns ['length']"),
        ({"path": [A_NC]}, "table lacks columns ['length', 'offset']"),
        (
            {"path": [A_NC], "offset": [0.0], "length": [1]},
            "column 'offset' must be integers, got double",
        ),
        (
            {"path": [A_NC], "offset": pa.array([None], pa.int64()), "length": [1]},
            "column 'offset' has 1 nulls",
        ),
        ({"path": [1], "offset": [0], "length": [1]}, "column 'path' must hold strings, got int64"),
        (
            {"path": [A_NC, B_NC], "offset": [0, 1], "length": [1, 1]},
            "invalid chunk manifest: table has 2 rows, grid (1,) has 1 chunks",
        ),
    ],
)
def test_from_arrow_refuses_bad_tables(columns: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidManifestError) as info:
        ChunkManifest.from_arrow(pa.table(columns), grid=(1,))
    assert str(info.value) == message


def test_from_arrow_ignores_extra_columns() -> None:
    table = pa.table({"path": [A_NC], "offset": [0], "length": [1], "checksum": ["abc"]})
    manifest = ChunkManifest.from_arrow(table, grid=(1,))
    assert manifest.table.column_names == ["path", "offset", "length"]


# ---- the constructor and empty ----------------------------------------------------------


def test_constructor_reports_every_problem() -> None:
    table = pa.table({"path": [A_NC, B_NC], "offset": [0, 1], "length": [1, 1]})
    with pytest.raises(InvalidManifestError) as info:
        ChunkManifest((3,), table)
    assert len(info.value.problems) == 2
    assert info.value.problems[0].startswith("table schema is path: string")
    assert info.value.problems[1] == "table has 2 rows, grid (3,) has 3 chunks"


def test_empty_manifest_has_every_chunk_missing() -> None:
    manifest = ChunkManifest.empty((2, 3))
    assert manifest.grid == (2, 3)
    assert (manifest.n_chunks, manifest.n_missing) == (6, 6)
    assert manifest.dictionary.to_pylist() == []
    assert manifest.to_entries() == {}
    assert manifest.referenced_nbytes == 0
    assert _arrays(manifest) == ([""] * 6, [0] * 6, [0] * 6)
    assert manifest.table.schema.equals(MANIFEST_SCHEMA)


def test_empty_manifest_of_a_0d_grid_has_one_chunk() -> None:
    manifest = ChunkManifest.empty(())
    assert (manifest.n_chunks, manifest.n_missing, manifest.ndim) == (1, 1, 0)


def test_reshape_keeps_the_table() -> None:
    manifest = ChunkManifest.empty((2, 3))
    reshaped = manifest.reshape((3, 2))
    assert reshaped.grid == (3, 2)
    assert reshaped.table is manifest.table


# ---- views ------------------------------------------------------------------------------


@pytest.fixture
def manifest() -> ChunkManifest:
    return ChunkManifest.from_arrays(
        paths=np.array([[A_NC, ""], [B_NC, A_NC]]),
        offsets=np.array([[0, 0], [100, 50]]),
        lengths=np.array([[50, 0], [25, 30]]),
    )


def test_to_arrays_returns_read_only_arrays_in_grid_shape(manifest: ChunkManifest) -> None:
    paths, offsets, lengths = manifest.to_arrays()
    assert paths.dtype == np.dtypes.StringDType()
    assert offsets.dtype == lengths.dtype == np.uint64
    assert paths.shape == offsets.shape == lengths.shape == (2, 2)
    for array in (paths, offsets, lengths):
        assert not array.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        offsets[0, 0] = 1
    with pytest.raises(ValueError, match="read-only"):
        paths[0, 1] = "file:///evil"


def test_to_entries_lists_present_chunks_with_python_ints(manifest: ChunkManifest) -> None:
    entries = manifest.to_entries()
    assert entries == {
        "0.0": {"path": A_NC, "offset": 0, "length": 50},
        "1.0": {"path": B_NC, "offset": 100, "length": 25},
        "1.1": {"path": A_NC, "offset": 50, "length": 30},
    }
    assert all(type(e["offset"]) is int and type(e["length"]) is int for e in entries.values())
    assert ChunkManifest.from_entries(entries, grid=manifest.grid) == manifest


def test_counts_and_referenced_nbytes(manifest: ChunkManifest) -> None:
    assert (manifest.ndim, manifest.n_chunks, manifest.n_missing) == (2, 4, 1)
    assert manifest.referenced_nbytes == 50 + 25 + 30


def test_nbytes_is_about_20_bytes_per_reference_for_one_file() -> None:
    n_refs = 100_000
    manifest = ChunkManifest.from_arrays(
        paths=np.full(n_refs, "s3://bucket/a/rather/long/path/to/the/one/file.nc"),
        offsets=np.arange(n_refs) * 4096,
        lengths=np.full(n_refs, 4096),
    )
    # 8 (offset) + 8 (length) + 4 (dictionary index) per reference; the path once.
    assert 20 * n_refs <= manifest.nbytes < 24 * n_refs


def test_nbytes_counts_shared_buffers_once(manifest: ChunkManifest) -> None:
    doubled = ChunkManifest(
        (8,), pa.concat_tables([manifest.table, manifest.table])
    )  # both chunks are the very same Arrow arrays
    assert doubled.nbytes == manifest.nbytes


def test_repr_summarises(manifest: ChunkManifest) -> None:
    assert repr(manifest) == "ChunkManifest(grid=(2, 2), n_chunks=4, n_missing=1, n_files=2)"


# ---- equality, hashing, pickling, freezing ----------------------------------------------


def test_equality_ignores_how_the_table_is_chunked() -> None:
    table = pa.table(
        {
            "path": [A_NC, B_NC, A_NC, "", B_NC, "file:///c.nc"],
            "offset": [1, 2, 3, 4, 5, 6],
            "length": [6, 5, 4, 3, 2, 1],
        }
    )
    whole = ChunkManifest.from_arrow(table, grid=(2, 3))
    halves = ChunkManifest.from_arrow(
        pa.concat_tables([table.slice(0, 3), table.slice(3)]), grid=(2, 3)
    )
    assert halves.table.column("path").num_chunks == 2
    assert whole == halves
    assert hash(whole) == hash(halves)


def test_equality_ignores_the_order_of_the_dictionary() -> None:
    def manifest(indices: list[int], dictionary: list[str]) -> ChunkManifest:
        path = pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), dictionary)
        table = pa.table({"path": path, "offset": [1, 2, 3], "length": [1, 1, 1]})
        return ChunkManifest.from_arrow(table, grid=(3,))

    ab = manifest([0, 1, 0], ["a", "b"])
    ba = manifest([1, 0, 1], ["b", "a"])
    assert ab == ba
    assert ab != manifest([0, 1, 1], ["a", "b"])


def test_equality_ignores_unused_dictionary_entries() -> None:
    path = pa.DictionaryArray.from_arrays(pa.array([0, 0], pa.int32()), [A_NC, B_NC])
    padded = ChunkManifest.from_arrow(
        pa.table({"path": path, "offset": [0, 9], "length": [9, 9]}), grid=(2,)
    )
    plain = ChunkManifest.from_arrow(
        pa.table({"path": [A_NC, A_NC], "offset": [0, 9], "length": [9, 9]}), grid=(2,)
    )
    assert padded == plain


@pytest.mark.parametrize(
    "other",
    [
        pytest.param({"grid": (4,)}, id="grid"),
        pytest.param({"offsets": np.array([[0, 0], [100, 51]])}, id="offset"),
        pytest.param({"lengths": np.array([[50, 0], [25, 31]])}, id="length"),
        pytest.param({"paths": np.array([[A_NC, ""], [A_NC, A_NC]])}, id="path"),
    ],
)
def test_manifests_that_differ_are_unequal(manifest: ChunkManifest, other: dict[str, Any]) -> None:
    if "grid" in other:
        changed = manifest.reshape(other["grid"])
    else:
        paths, offsets, lengths = manifest.to_arrays()
        columns = {"paths": paths, "offsets": offsets, "lengths": lengths, **other}
        changed = ChunkManifest.from_arrays(**columns)
    assert changed != manifest


def test_a_manifest_is_not_equal_to_other_types(manifest: ChunkManifest) -> None:
    assert manifest != manifest.to_entries()
    assert manifest.__eq__(object()) is NotImplemented


def test_pickle_round_trip(manifest: ChunkManifest) -> None:
    restored = pickle.loads(pickle.dumps(manifest))
    assert restored == manifest
    assert restored.grid == manifest.grid
    assert restored.table.schema.equals(MANIFEST_SCHEMA)


@pytest.mark.parametrize("name", ["grid", "table"])
def test_manifest_is_frozen(manifest: ChunkManifest, name: str) -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(manifest, name, getattr(manifest, name))
