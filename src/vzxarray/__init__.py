"""vzxarray: the xarray adapter over vzcore.

``ManifestArray`` duck arrays, ``open_virtual_dataset`` / ``open_virtual_datatree`` /
``open_virtual_mfdataset``, ``open_mfdataset`` (an ordinary lazy Dataset reading through
a ``ManifestStore``) and the ``.vz`` accessor on Dataset, DataArray and DataTree (registered on import).
"""

from vzcore import ManifestStore, ObjectStoreRegistry, VirtualGroup
from vzxarray.accessor import (
    VirtualDataArrayAccessor,
    VirtualDatasetAccessor,
    VirtualDataTreeAccessor,
)
from vzxarray.dataset import (
    dataset_from_group,
    default_loadable_variables,
    group_from_dataset,
    lazy_dataset_from_group,
)
from vzxarray.manifest_array import ManifestArray, VirtualChunkingError, VirtualValuesError
from vzxarray.mfdataset import (
    MultiFileError,
    WorkerDiedError,
    open_mfdataset,
    open_virtual_mfdataset,
)
from vzxarray.open import open_virtual_dataset, open_virtual_datatree

__all__ = [
    "ManifestArray",
    "ManifestStore",
    "MultiFileError",
    "ObjectStoreRegistry",
    "VirtualChunkingError",
    "VirtualDataArrayAccessor",
    "VirtualDataTreeAccessor",
    "VirtualDatasetAccessor",
    "VirtualGroup",
    "VirtualValuesError",
    "WorkerDiedError",
    "dataset_from_group",
    "default_loadable_variables",
    "group_from_dataset",
    "lazy_dataset_from_group",
    "open_mfdataset",
    "open_virtual_dataset",
    "open_virtual_datatree",
    "open_virtual_mfdataset",
]
