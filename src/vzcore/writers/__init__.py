"""Writers: each saves a `VirtualGroup` (or one array) in a storage format."""

from vzcore.writers.manifest_parquet import write_manifest_parquet

__all__ = ["write_manifest_parquet"]
