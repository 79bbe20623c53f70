"""Writers: each saves a `VirtualGroup` (or one array) in a storage format."""

from vzcore.errors import WriteError
from vzcore.writers._atomic import (
    failure_reason,
    is_object_store_url,
    local_target,
    object_target,
    staged_folder_upload,
    staged_output,
)
from vzcore.writers.icechunk import icechunk_commit_metadata, write_icechunk
from vzcore.writers.kerchunk import kerchunk_refs, write_kerchunk_json, write_kerchunk_parquet
from vzcore.writers.manifest_parquet import write_manifest_parquet

__all__ = [
    "WriteError",
    "failure_reason",
    "icechunk_commit_metadata",
    "is_object_store_url",
    "kerchunk_refs",
    "local_target",
    "object_target",
    "staged_folder_upload",
    "staged_output",
    "write_icechunk",
    "write_kerchunk_json",
    "write_kerchunk_parquet",
    "write_manifest_parquet",
]
