"""numcodecs codecs of vz's formats, for zarr v2 readers of Kerchunk output.

zarr v2 metadata (what Kerchunk references carry) names its compressor by a numcodecs
id, and zarr-python (and fsspec's ReferenceFileSystem through it) finds the codec class
through the ``numcodecs.codecs`` entry point group, so a process that never imports
vzcore decodes vz's chunks. Decode only: the chunks are the archive's bytes.

- ``vz.grib``: a whole GRIB message (field ``field`` of it) decoded by ecCodes to the
  grid's values, NaN where the bitmap marks a point missing, as ``dtype`` (the array's
  dtype in ``.zarray``, which zarr v2 reads the decoded bytes as), its points as rows
  (``order="rows"``, the default) or as stored (``"stored"``), as the v3 codec.

Example
-------
>>> GRIBNumcodec(field=0, dtype="<f4").get_config()
{'id': 'vz.grib', 'field': 0, 'dtype': '<f4'}
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ndarray_copy

from vzcore.errors import InvalidMetadataError, UnsupportedCodecError
from vzcore.format_codecs import check_grib_order, decode_grib_field

__all__ = ["GRIBNumcodec"]


class GRIBNumcodec(Codec):  # type: ignore[misc]  # numcodecs has no type hints
    """numcodecs ``vz.grib``: the zarr v2 twin of the zarr v3 codec `GRIBCodec`."""

    codec_id = "vz.grib"

    def __init__(self, field: int = 0, dtype: str = "<f4", order: str = "rows") -> None:
        if not isinstance(field, int) or isinstance(field, bool) or field < 0:
            raise InvalidMetadataError(
                f"codec vz.grib: field must be a non-negative integer, not {field!r}"
            )
        check_grib_order(order, "vz.grib")
        try:
            kind = np.dtype(dtype)
        except TypeError as err:
            raise InvalidMetadataError(f"codec vz.grib: dtype {dtype!r} is not a dtype") from err
        if kind.kind != "f":
            raise InvalidMetadataError(f"codec vz.grib decodes to floats, not {dtype!r}")
        self.field = field
        self.dtype = kind.str
        self.order = order

    def decode(self, buf: Any, out: Any = None) -> Any:
        """The message's values as ``dtype`` bytes (into ``out`` when given)."""
        data = memoryview(buf).cast("B").tobytes()
        count = None if out is None else memoryview(out).nbytes // np.dtype(self.dtype).itemsize
        values = decode_grib_field(data, self.field, count, "codec vz.grib", order=self.order)
        decoded = values.astype(self.dtype)
        if out is not None:
            return ndarray_copy(decoded, out)
        return decoded

    def encode(self, buf: Any) -> Any:
        """Refused: vz.grib chunks are existing GRIB messages, never written by zarr."""
        raise UnsupportedCodecError("codec vz.grib decodes GRIB messages; it cannot encode")

    def get_config(self) -> dict[str, Any]:
        """``{"id": "vz.grib", "field": ..., "dtype": ...}`` (and ``order`` unless "rows")."""
        config: dict[str, Any] = {"id": self.codec_id, "field": self.field, "dtype": self.dtype}
        if self.order != "rows":
            config["order"] = self.order
        return config
