"""The public surface of vzcore is exactly its __all__."""

import vzcore

EXPECTED = {
    "AmbiguousRenameError",
    "AnyArray",
    "ArrayMetadata",
    "BroadcastError",
    "ChunkManifest",
    "ChunkShapeMismatch",
    "CodecMismatch",
    "CodecSpec",
    "DimensionNameMismatch",
    "DtypeMismatch",
    "EncodingMismatch",
    "FillValueMismatch",
    "InvalidManifestError",
    "InvalidMetadataError",
    "LoadedArray",
    "ManifestFormatError",
    "MissingChunkError",
    "PartialChunkError",
    "RegularChunkGrid",
    "ShapeMismatch",
    "ShortReadError",
    "SourceChangedError",
    "SourceCheck",
    "Verification",
    "verify",
    "SourceFingerprint",
    "SourceNotFoundError",
    "SourceReadError",
    "UnsupportedCodecError",
    "VirtualArray",
    "VirtualGroup",
    "VirtualizationError",
    "broadcast_to",
    "concat",
    "expand_dims",
    "rename_paths",
    "stack",
    "validate_compatible",
    "read_manifest_parquet",
    "write_manifest_parquet",
    "select_chunks",
    "read_array",
    "read_arrays",
    "squeeze",
    "ManifestStore",
    "ObjectStoreRegistry",
    "UnregisteredURLError",
    "ChunkDecodeError",
    "ChunkFetchError",
    "WriteError",
    "LimitExceededError",
    "Limits",
    "current_limits",
    "limits",
    "ChunkGrid",
    "RectilinearChunkGrid",
    "RectilinearGridError",
    "regularize",
    "subchunk",
    "select_slices",
    "SubchunkError",
    "MissingDependencyError",
    "plot_chunks",
}

VZXARRAY = {
    "ManifestArray",
    "ManifestStore",
    "ObjectStoreRegistry",
    "VirtualChunkingError",
    "VirtualDataArrayAccessor",
    "VirtualDataTreeAccessor",
    "VirtualDatasetAccessor",
    "VirtualGroup",
    "VirtualValuesError",
    "dataset_from_group",
    "default_loadable_variables",
    "group_from_dataset",
    "open_virtual_dataset",
    "open_virtual_datatree",
    "open_virtual_mfdataset",
    "MultiFileError",
    "WorkerDiedError",
    "lazy_dataset_from_group",
    "open_mfdataset",
}


def test_all_is_pinned() -> None:
    assert set(vzcore.__all__) == EXPECTED


def test_vzxarray_all_is_pinned() -> None:
    import vzxarray

    assert set(vzxarray.__all__) == VZXARRAY


def test_every_name_resolves() -> None:
    for name in vzcore.__all__:
        assert getattr(vzcore, name) is not None


def test_errors_share_one_root() -> None:
    for name in vzcore.__all__:
        obj = getattr(vzcore, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, vzcore.VirtualizationError)
            assert issubclass(obj, ValueError)
