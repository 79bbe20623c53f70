"""HDF5 datatypes: which become zarr data types, which load into memory, which are refused.

A dataset's elements are referenced in place when their bytes are a zarr data
type's bytes: numbers, enums (their base integers), packed compounds (zarr's
``struct``) and HDF5 array types (their base type, with the array's axes added
after the dataspace's). Variable-length strings and object references have no
bytes zarr can decode: they are read into memory when the caller asks to load
them. Everything else is refused with the reason.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
import numpy as np
from numpy.lib.recfunctions import repack_fields

from vzcore.array import LoadedArray
from vzcore.byteranges import reraise_source_error
from vzcore.errors import InvalidMetadataError
from vzcore.metadata import ArrayMetadata
from vzcore.parsers.hdf5_filters import HDF5UnsupportedError

__all__ = [
    "ElementType",
    "element_type",
    "load_references",
    "load_strings",
    "load_values",
    "loadable_dtype",
]

Loader = Literal["strings", "fixed_strings", "references"]

_TYPE_CLASS_NAMES = {
    0: "integer",
    1: "float",
    2: "time (H5T_TIME)",
    3: "string",
    4: "bitfield",
    5: "opaque",
    6: "compound",
    7: "reference",
    8: "enum",
    9: "variable-length",
    10: "array",
}


@attrs.frozen
class ElementType:
    """What a dataset's elements become.

    Attributes
    ----------
    dtype
        The element type of the zarr array, in the file's byte order.
    extra_shape
        The axes of an HDF5 array datatype, appended to the dataspace's axes.
    loader
        How values zarr cannot reference are read into memory: fixed-length
        strings always, the others only when the caller asks to load them.
    refusal
        Why the values cannot be referenced, for a loader used only on request.
    """

    dtype: np.dtype[Any]
    extra_shape: tuple[int, ...] = ()
    loader: Loader | None = None
    refusal: str | None = None


def element_type(dataset: Any, where: str) -> ElementType:
    """Classify a dataset's datatype, or refuse a type that can be neither referenced nor loaded.

    Raises
    ------
    HDF5UnsupportedError
        For types with no numpy equivalent (H5T_TIME, and compounds or sequences of
        it), variable-length sequences, region references and opaque types.
    """
    import h5py

    try:
        dtype: np.dtype[Any] = dataset.dtype
    except (TypeError, ValueError) as err:
        name = _type_class_name(dataset)
        raise HDF5UnsupportedError(
            f"{where}: HDF5 {name} datatype has no numpy or zarr equivalent ({err}); "
            "drop it (drop_variables=)"
        ) from err
    if dtype.kind == "S":
        return ElementType(dtype, loader="fixed_strings")
    if h5py.check_string_dtype(dtype) is not None:
        return ElementType(
            dtype, loader="strings", refusal="variable-length strings cannot be referenced"
        )
    reference = h5py.check_ref_dtype(dtype)
    if reference is h5py.Reference:
        return ElementType(
            dtype,
            loader="references",
            refusal="object references cannot be referenced (loaded, they become the "
            "names of the objects they point to)",
        )
    if reference is not None or h5py.check_vlen_dtype(dtype) is not None or dtype.kind == "O":
        kind = "region reference" if reference is not None else "variable-length sequence"
        raise HDF5UnsupportedError(
            f"{where}: HDF5 {kind} type cannot be virtualized or loaded as an array; "
            "drop it (drop_variables=)"
        )
    base, extra_shape = dtype.subdtype if dtype.subdtype is not None else (dtype, ())
    if base.kind == "V" and base.names is None:
        raise HDF5UnsupportedError(
            f"{where}: HDF5 opaque type {base} has no zarr data type; drop it (drop_variables=)"
        )
    return ElementType(base, tuple(extra_shape))


def _type_class_name(dataset: Any) -> str:
    try:
        type_class = int(dataset.id.get_type().get_class())
    except (OSError, TypeError, ValueError):
        return "unknown"
    return _TYPE_CLASS_NAMES.get(type_class, f"class {type_class}")


def loadable_dtype(dtype: np.dtype[Any]) -> bool:
    """Whether values of ``dtype`` can be held in memory (repacked, in native byte order)."""
    try:
        ArrayMetadata(shape=(), chunk_grid=(), dtype=_in_memory(dtype))
    except InvalidMetadataError:
        return False
    return True


def _in_memory(dtype: np.dtype[Any]) -> np.dtype[Any]:
    if dtype.names is None:
        return dtype
    packed: np.dtype[Any] = repack_fields(dtype.newbyteorder("="), recurse=True)
    return packed


def load_values(
    dataset: Any,
    dims: tuple[str, ...],
    attributes: dict[str, Any],
    fill_value: object,
) -> LoadedArray:
    """All values of a dataset of numbers or compounds (compounds repacked field by field)."""
    values = np.asarray(dataset[()])
    in_memory = _in_memory(values.dtype)
    if in_memory != values.dtype:
        values = repack_fields(values.astype(values.dtype.newbyteorder("=")), recurse=True)
        if fill_value is not None:
            fill_value = np.asarray(fill_value, dtype=dataset.dtype).astype(in_memory)[()]
    return LoadedArray.from_numpy(
        values.astype(values.dtype.newbyteorder("="), copy=False),
        dimension_names=dims,
        attributes=attributes,
        fill_value=fill_value,
    )


def load_strings(
    dataset: Any, dims: tuple[str, ...], attributes: dict[str, Any], where: str
) -> LoadedArray:
    """Fixed-length bytes stay bytes (xarray joins netCDF char arrays); others become str."""
    import h5py

    try:
        if dataset.dtype.kind == "S":
            values = np.asarray(dataset[()])
        else:
            info = h5py.check_string_dtype(dataset.dtype)
            raw = np.asarray(dataset.asstr()[()] if info is not None else dataset[()], dtype=object)
            values = np.asarray(raw.tolist(), dtype=str).reshape(raw.shape)
    except (OSError, ValueError, TypeError, UnicodeDecodeError) as err:
        reraise_source_error(err)
        raise HDF5UnsupportedError(f"{where}: cannot read string values: {err}") from err
    attributes.pop("_FillValue", None)
    return LoadedArray.from_numpy(values, dimension_names=dims, attributes=attributes)


def load_references(
    dataset: Any, dims: tuple[str, ...], attributes: dict[str, Any], where: str
) -> LoadedArray:
    """Object references as the paths of the objects they point to ("" for a null reference)."""
    import h5py

    try:
        references = np.asarray(dataset[()], dtype=object)
        names = [
            h5py.h5r.get_name(ref, dataset.file.id).decode("utf-8", "replace") if ref else ""
            for ref in references.ravel().tolist()
        ]
    except (OSError, ValueError, TypeError) as err:
        reraise_source_error(err)
        raise HDF5UnsupportedError(f"{where}: cannot resolve object references: {err}") from err
    attributes.pop("_FillValue", None)
    values = np.asarray(names, dtype=str).reshape(references.shape)
    return LoadedArray.from_numpy(values, dimension_names=dims, attributes=attributes)
