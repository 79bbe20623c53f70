"""Laws of `rename_paths` on manifests, arrays and groups: identity, composition, merges."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st
from properties.strategies import (
    MISSING,
    RENAME_TARGETS,
    URLS,
    PathRenamer,
    apply_renamer,
    chunk_manifests,
    loaded_arrays,
    path_renamers,
    virtual_arrays,
    virtual_groups,
)

import vzcore as vc

# A known bug's test stops at its first failing example instead of shrinking it.
_NO_SHRINKING = (Phase.explicit, Phase.reuse, Phase.generate)

Renamable = vc.ChunkManifest | vc.VirtualArray | vc.VirtualGroup

renamables: st.SearchStrategy[Renamable] = st.one_of(
    chunk_manifests(), virtual_arrays(), virtual_groups(max_depth=1)
)


def _identity(path: str) -> str:
    return path


def _composed(first: PathRenamer, then: PathRenamer) -> PathRenamer:
    return lambda path: apply_renamer(then, apply_renamer(first, path))


def _present_paths(manifest: vc.ChunkManifest) -> set[str]:
    paths = manifest.to_arrays()[0]
    return set(paths[paths != MISSING].tolist())


def _data_buffers(column: pa.ChunkedArray) -> list[tuple[int, int] | None]:
    """Where each chunk's values live: equal lists mean the very same memory."""
    return [
        None if (b := chunk.buffers()[1]) is None else (b.address, b.size)
        for chunk in column.chunks
    ]


# ---- identity ----------------------------------------------------------------------------


@given(renamables)
def test_identity_function_changes_nothing(x: Renamable) -> None:
    assert vc.rename_paths(x, _identity) == x


@given(renamables)
def test_empty_mapping_changes_nothing(x: Renamable) -> None:
    assert vc.rename_paths(x, {}) == x


@given(loaded_arrays(), path_renamers())
def test_loaded_arrays_have_no_paths_to_rename(array: vc.LoadedArray, renamer: PathRenamer) -> None:
    assert vc.rename_paths(array, renamer) is array


# ---- composition -------------------------------------------------------------------------


@given(st.one_of(chunk_manifests(), virtual_arrays()), path_renamers(), path_renamers())
def test_renames_compose(
    x: vc.ChunkManifest | vc.VirtualArray, first: PathRenamer, then: PathRenamer
) -> None:
    two_steps = vc.rename_paths(vc.rename_paths(x, first), then)
    assert two_steps == vc.rename_paths(x, _composed(first, then))


@given(virtual_groups(max_depth=1), path_renamers(injective=True), path_renamers())
def test_renames_compose_on_groups(
    group: vc.VirtualGroup, first: PathRenamer, then: PathRenamer
) -> None:
    # `first` never merges two URLs, so no two source fingerprints compete for one name.
    # Merging sources with different fingerprints is refused; the law is that both
    # ways agree: both refuse, or both give the same group.
    try:
        two_steps = vc.rename_paths(vc.rename_paths(group, first), then)
    except vc.VirtualizationError:
        with pytest.raises(vc.VirtualizationError):
            vc.rename_paths(group, _composed(first, then))
        return
    assert two_steps == vc.rename_paths(group, _composed(first, then))


_FP_A = vc.SourceFingerprint(size=1)
_FP_B = vc.SourceFingerprint(size=2)
_FP_C = vc.SourceFingerprint(size=3)


@settings(phases=_NO_SHRINKING)
@given(virtual_groups(max_depth=1), path_renamers(), path_renamers())
@example(
    group=vc.VirtualGroup(sources={URLS[0]: _FP_A, URLS[1]: _FP_B, URLS[2]: _FP_C}),
    first={URLS[0]: URLS[3], URLS[2]: URLS[3]},
    then={URLS[3]: RENAME_TARGETS[-1], URLS[1]: RENAME_TARGETS[-1]},
)
def test_many_to_one_renames_compose_on_group_sources(
    group: vc.VirtualGroup, first: PathRenamer, then: PathRenamer
) -> None:
    # Merging sources with different fingerprints is refused; the law is that both
    # ways agree: both refuse, or both give the same group.
    try:
        two_steps = vc.rename_paths(vc.rename_paths(group, first), then)
    except vc.VirtualizationError:
        with pytest.raises(vc.VirtualizationError):
            vc.rename_paths(group, _composed(first, then))
        return
    assert two_steps == vc.rename_paths(group, _composed(first, then))


# ---- merges (many-to-one) ----------------------------------------------------------------


@given(chunk_manifests(), path_renamers())
def test_rename_keeps_one_dictionary_entry_per_distinct_new_path(
    manifest: vc.ChunkManifest, renamer: PathRenamer
) -> None:
    result = vc.rename_paths(manifest, renamer)
    new_dictionary = result.dictionary.to_pylist()
    assert len(new_dictionary) == len(set(new_dictionary))
    assert set(new_dictionary) == {
        apply_renamer(renamer, p) for p in manifest.dictionary.to_pylist()
    }
    assert _present_paths(result) == {apply_renamer(renamer, p) for p in _present_paths(manifest)}


@given(chunk_manifests(), st.sampled_from(RENAME_TARGETS))
def test_renaming_every_file_to_one_leaves_one_file(
    manifest: vc.ChunkManifest, target: str
) -> None:
    result = vc.rename_paths(manifest, lambda _: target)
    paths, offsets, lengths = result.to_arrays()
    old_paths, old_offsets, old_lengths = manifest.to_arrays()
    assert ((paths == target) == (old_paths != MISSING)).all()
    assert (offsets == old_offsets).all()
    assert (lengths == old_lengths).all()
    assert result.n_missing == manifest.n_missing
    assert result.dictionary.to_pylist() == ([target] if len(manifest.dictionary) else [])


@given(chunk_manifests(), path_renamers())
def test_rename_never_touches_the_rows(manifest: vc.ChunkManifest, renamer: PathRenamer) -> None:
    result = vc.rename_paths(manifest, renamer)
    for name in ("offset", "length"):
        assert _data_buffers(result.table.column(name)) == _data_buffers(
            manifest.table.column(name)
        )
    assert result.n_missing == manifest.n_missing
    assert result.grid == manifest.grid


@given(chunk_manifests(), path_renamers())
def test_mapping_and_function_renames_agree(
    manifest: vc.ChunkManifest, renamer: PathRenamer
) -> None:
    as_function = vc.rename_paths(manifest, lambda p: apply_renamer(renamer, p))
    assert vc.rename_paths(manifest, renamer) == as_function


@given(chunk_manifests())
def test_renaming_to_an_empty_path_is_refused(manifest: vc.ChunkManifest) -> None:
    if len(manifest.dictionary) == 0:
        assert vc.rename_paths(manifest, lambda _: MISSING) == manifest
        return
    with pytest.raises(vc.InvalidManifestError, match="expected a non-empty string"):
        vc.rename_paths(manifest, lambda _: MISSING)


# ---- arrays and groups -------------------------------------------------------------------


@given(virtual_arrays(), path_renamers())
def test_array_rename_is_manifest_rename(array: vc.VirtualArray, renamer: PathRenamer) -> None:
    result = vc.rename_paths(array, renamer)
    assert result.metadata == array.metadata
    assert result.manifest == vc.rename_paths(array.manifest, renamer)


@given(virtual_groups(), path_renamers(injective=True))
def test_group_rename_renames_every_array_and_source(
    group: vc.VirtualGroup, renamer: PathRenamer
) -> None:
    result = vc.rename_paths(group, renamer)
    before = dict(group.walk_arrays())
    after = dict(result.walk_arrays())
    assert after.keys() == before.keys()
    for name, array in before.items():
        assert after[name] == vc.rename_paths(array, renamer)
    for (path, old), (new_path, new) in zip(group.walk_groups(), result.walk_groups(), strict=True):
        assert path == new_path
        assert new.attributes == old.attributes
        assert new.sources == {apply_renamer(renamer, url): fp for url, fp in old.sources.items()}


def test_rename_paths_refuses_other_values() -> None:
    with pytest.raises(TypeError, match="expects a manifest, array or group"):
        vc.rename_paths(pa.table({"path": ["x"]}), _identity)  # type: ignore[call-overload]
