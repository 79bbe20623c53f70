"""vzxarray: the xarray adapter over vzcore (duck arrays, open_virtual_dataset, the .vz accessor).

The adapter arrives with the ManifestStore; for now it re-exports the core so that
``import vzxarray`` works wherever vzcore and xarray are installed.
"""

import xarray  # noqa: F401  (the adapter's one heavy dependency, imported eagerly on purpose)

from vzcore import ChunkManifest, VirtualArray, VirtualGroup

__all__ = ["ChunkManifest", "VirtualArray", "VirtualGroup"]
