"""Parsers: each turns one source into a `VirtualGroup`."""

from vzcore.parsers.manifest_parquet import read_manifest_parquet

__all__ = ["read_manifest_parquet"]
