"""Codec specs: zarr v3 codecs as frozen, normalised values, and their zarr v2 forms."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from vzcore._frozen import JSON, canonical_json
from vzcore.errors import InvalidMetadataError, UnsupportedCodecError

__all__ = ["CodecSpec", "normalize_codec", "v2_codec_to_v3", "v3_codec_to_v2"]

_BLOSC_SHUFFLE_V2 = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}
_BLOSC_SHUFFLE_V3 = {v: k for k, v in _BLOSC_SHUFFLE_V2.items()}
# v2 compressor ids that zarr 3 implements natively under the same name.
_NATIVE_V3 = frozenset({"gzip", "zstd", "blosc"})


@attrs.frozen
class CodecSpec:
    """One zarr v3 codec: a name and its configuration (kept as canonical JSON text).

    >>> CodecSpec.from_dict({"name": "gzip", "configuration": {"level": 4}}).configuration
    {'level': 4}
    """

    name: str
    configuration_json: str = "{}"

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any] | str) -> CodecSpec:
        """Build from ``{"name": ..., "configuration": {...}}`` or a bare name."""
        if isinstance(spec, str):
            return cls(spec)
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
            raise InvalidMetadataError(f"a codec must be a mapping with a 'name', got {spec!r}")
        config = spec.get("configuration") or {}
        if not isinstance(config, Mapping):
            raise InvalidMetadataError(f"codec {spec['name']!r}: configuration must be a mapping")
        return cls(spec["name"], canonical_json(config))

    @property
    def configuration(self) -> dict[str, JSON]:
        """A fresh copy of the configuration."""
        config: dict[str, JSON] = json.loads(self.configuration_json)
        return config

    def to_dict(self) -> dict[str, JSON]:
        # Always with "configuration": zarr's numcodecs wrappers require the key.
        return {"name": self.name, "configuration": self.configuration}

    def __str__(self) -> str:
        return (
            self.name
            if self.configuration_json == "{}"
            else f"{self.name}{self.configuration_json}"
        )


def normalize_codec(spec: CodecSpec | Mapping[str, Any] | str) -> CodecSpec:
    """Fill in defaults so that equal pipelines compare equal (cached per distinct codec)."""
    codec = spec if isinstance(spec, CodecSpec) else CodecSpec.from_dict(spec)
    return _normalize_cached(codec)


@functools.lru_cache(maxsize=1024)
def _normalize_cached(codec: CodecSpec) -> CodecSpec:
    # Codecs zarr knows are round-tripped through zarr's own classes; numcodecs.* codecs
    # through numcodecs (which knows their defaults); unknown codecs are kept as given,
    # with their configuration in canonical order.
    if codec.name.startswith("numcodecs."):
        return _normalize_numcodecs(codec)
    from zarr.errors import UnknownCodecError
    from zarr.registry import get_codec_class

    try:
        cls = get_codec_class(codec.name)
    except (UnknownCodecError, KeyError):
        return codec
    try:
        parsed = cls.from_dict({"name": codec.name, "configuration": codec.configuration})
        return CodecSpec.from_dict(parsed.to_dict())
    except (TypeError, ValueError) as err:
        raise InvalidMetadataError(f"invalid configuration for codec {codec}: {err}") from err


def _normalize_numcodecs(codec: CodecSpec) -> CodecSpec:
    import numcodecs

    codec_id = codec.name.removeprefix("numcodecs.")
    try:
        config = numcodecs.get_codec({"id": codec_id, **codec.configuration}).get_config()
    except (KeyError, ValueError, TypeError):
        return codec
    config.pop("id", None)
    return CodecSpec(codec.name, canonical_json(config))


def v3_codec_to_v2(codec: CodecSpec) -> dict[str, JSON]:
    """The numcodecs config (``{"id": ...}``) of a bytes-to-bytes or array-to-array codec.

    Raises
    ------
    UnsupportedCodecError
        When zarr v2 has no codec for it (e.g. ``crc32c``, ``sharding_indexed``).
    """
    config = codec.configuration
    if codec.name in ("gzip", "zstd"):
        return {"id": codec.name, **config}
    if codec.name == "blosc":
        shuffle = config.get("shuffle", "noshuffle")
        return {
            "id": "blosc",
            "cname": config.get("cname", "zstd"),
            "clevel": config.get("clevel", 5),
            "shuffle": _BLOSC_SHUFFLE_V2.get(shuffle, shuffle),
            "blocksize": config.get("blocksize", 0),
        }
    if codec.name.startswith("numcodecs."):
        return {"id": codec.name.removeprefix("numcodecs."), **config}
    raise UnsupportedCodecError(f"codec {codec} has no zarr v2 (numcodecs) equivalent")


def v2_codec_to_v3(config: Mapping[str, Any], *, itemsize: int) -> CodecSpec:
    """The zarr v3 codec for a numcodecs config (``{"id": ..., ...}``)."""
    if not isinstance(config, Mapping) or not isinstance(config.get("id"), str):
        raise InvalidMetadataError(
            f"a zarr v2 codec must be a mapping with an 'id', got {config!r}"
        )
    params = {k: v for k, v in config.items() if k != "id"}
    codec_id: str = config["id"]
    if codec_id == "blosc":
        shuffle = params.get("shuffle", 1)
        if shuffle == -1:  # AUTOSHUFFLE: bit shuffle for 1-byte items, byte shuffle otherwise
            shuffle = 2 if itemsize == 1 else 1
        params = {
            "cname": params.get("cname", "lz4"),
            "clevel": params.get("clevel", 5),
            "shuffle": _BLOSC_SHUFFLE_V3.get(shuffle, "shuffle"),
            "typesize": itemsize,
            "blocksize": params.get("blocksize", 0),
        }
    name = codec_id if codec_id in _NATIVE_V3 else f"numcodecs.{codec_id}"
    return normalize_codec(CodecSpec(name, canonical_json(params)))


def codec_names(codecs: Sequence[CodecSpec]) -> str:
    """A short human description of a pipeline, for error messages."""
    return "[" + ", ".join(str(c) for c in codecs) + "]"
