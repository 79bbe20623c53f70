"""The contract every parser keeps, as one test class to subclass once per format.

A subclass says how to make a sample source (a file or a directory store, and
whatever it references, all inside one folder), which parser reads it and how
the format's own library reads its values::

    class TestMyFormat(ParserContract):
        parser = MyParser()
        source_name = "sample.myf"

        def make_sample(self, folder: Path) -> None: ...      # writes folder / source_name
        def reference(self, source: Path) -> dict[str, np.ndarray]: ...

The class then checks: the same source in a local folder, an in-memory store and
S3 parses to the same group (up to its URLs) and reads back the same values; those
values equal the reference library's; a URL under no registered prefix is refused;
a file of another format is a typed error naming the URL; every referenced file
has a fingerprint (size, and last-modified time); ``can_open`` says yes to its own
sample and no to every other contract's; `detect_parser` picks the parser.

Known gaps of one parser are marked in its subclass by overriding the test with
``@pytest.mark.xfail(strict=True, reason=...)``, so the gap shows and its fix is noticed.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import obstore
import pytest
import zarr
from obstore.store import LocalStore, MemoryStore
from tests.s3_server import S3Bucket

import vzcore as vc
from vzcore.algebra import referenced_paths
from vzcore.parsers import Parser, Probe, detect_parser

MEMORY_PREFIX = "memory://contract/"

type Values = dict[str, np.ndarray[Any, Any]]


def files_under(folder: Path) -> Iterator[tuple[str, Path]]:
    """Every file under ``folder``, with its key relative to it (``/``-separated)."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            yield path.relative_to(folder).as_posix(), path


def local_registry(folder: Path) -> vc.ObjectStoreRegistry:
    """A registry serving ``folder`` at ``file://<folder>/``."""
    return vc.ObjectStoreRegistry({f"file://{folder}/": LocalStore(folder)})


def memory_copy(folder: Path) -> MemoryStore:
    """A MemoryStore holding every file of ``folder`` at its relative key."""
    store = MemoryStore()
    for key, path in files_under(folder):
        obstore.put(store, key, path.read_bytes())
    return store


def read_back(group: vc.VirtualGroup, registry: vc.ObjectStoreRegistry, path: str) -> Any:
    """One array's values, read by zarr through a `ManifestStore` over ``group``."""
    store = vc.ManifestStore(group, registry=registry)
    return zarr.open_array(store, path=path, mode="r")[...]


class ParserContract(abc.ABC):
    """The tests every parser passes; subclass it once per format (see the module doc).

    Class attributes
    ----------------
    parser
        The parser instance under test.
    source_name
        The sample's name inside its folder (a file, or a directory store).
    """

    parser: ClassVar[Parser]
    source_name: ClassVar[str]
    contracts: ClassVar[list[type[ParserContract]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        ParserContract.contracts.append(cls)

    # ---- what a subclass provides --------------------------------------------------------

    @abc.abstractmethod
    def make_sample(self, folder: Path) -> None:
        """Write the sample at ``folder / source_name`` (and what it references, in ``folder``)."""

    @abc.abstractmethod
    def reference(self, source: Path) -> Values:
        """The sample's arrays (by path in the group) as the format's own library reads them."""

    def make_wrong_format(self, folder: Path) -> str:
        """Write a source this parser must refuse; returns its name inside ``folder``."""
        (folder / "wrong.bin").write_bytes(b"this is no format any parser reads\n" * 20)
        return "wrong.bin"

    # ---- fixtures ------------------------------------------------------------------------

    @pytest.fixture(scope="class")
    @classmethod
    def sample(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        """The folder holding the sample."""
        folder = tmp_path_factory.mktemp(cls.__name__)
        cls().make_sample(folder)
        assert (folder / cls.source_name).exists()
        return folder

    @pytest.fixture(scope="class")
    @classmethod
    def other_samples(cls, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
        """The sample of every other contract whose parser is of another class."""
        samples = {}
        for contract in ParserContract.contracts:
            if type(contract.parser) is type(cls.parser):
                continue
            folder = tmp_path_factory.mktemp(f"other-{contract.__name__}")
            contract().make_sample(folder)
            samples[contract.__name__] = folder / contract.source_name
        return samples

    def local_url(self, folder: Path) -> str:
        return f"file://{folder}/{self.source_name}"

    def parse_local(self, folder: Path) -> vc.VirtualGroup:
        return self.parser(self.local_url(folder), local_registry(folder))

    # ---- the contract --------------------------------------------------------------------

    def test_local_memory_and_s3_agree(self, sample: Path, s3_bucket: S3Bucket) -> None:
        local = self.parse_local(sample)
        local_base = f"file://{sample}/"
        s3_base = s3_bucket.put_tree("sample", sample) + "/"
        # Sources may reference local files by absolute URL: those stay readable.
        stores = {
            MEMORY_PREFIX: (local_registry(sample).register(MEMORY_PREFIX, memory_copy(sample))),
            s3_base: local_registry(sample).register(s3_bucket.url, s3_bucket.store()),
        }
        expected = self.reference(sample / self.source_name)
        for base, registry in stores.items():
            group = self.parser(base + self.source_name, registry)
            moved = vc.rename_paths(group, lambda p, base=base: p.replace(base, local_base))
            assert moved.evolve(sources={}) == local.evolve(sources={}), base
            for path, values in expected.items():
                np.testing.assert_array_equal(read_back(group, registry, path), values, path)

    def test_values_equal_the_reference_library(self, sample: Path) -> None:
        group = self.parse_local(sample)
        expected = self.reference(sample / self.source_name)
        assert expected, "the reference reader found no arrays"
        assert {path for path, _ in group.walk_arrays()} >= set(expected)
        for path, values in expected.items():
            got = read_back(group, local_registry(sample), path)
            # The type, not its byte order (netCDF3 is big-endian; zarr may hand out native).
            assert got.dtype.newbyteorder("=") == values.dtype.newbyteorder("="), path
            np.testing.assert_array_equal(got, values, path)

    def test_an_unregistered_url_is_refused(self, sample: Path) -> None:
        registry = vc.ObjectStoreRegistry({MEMORY_PREFIX: memory_copy(sample)})
        for url in (self.local_url(sample), f"memory://elsewhere/{self.source_name}"):
            with pytest.raises(vc.UnregisteredURLError, match="under no registered prefix"):
                self.parser(url, registry)

    def test_a_wrong_format_is_a_typed_error_naming_the_url(self, tmp_path: Path) -> None:
        name = self.make_wrong_format(tmp_path)
        for url, registry in (
            (f"file://{tmp_path}/{name}", local_registry(tmp_path)),
            (MEMORY_PREFIX + name, vc.ObjectStoreRegistry({MEMORY_PREFIX: memory_copy(tmp_path)})),
        ):
            with pytest.raises(vc.VirtualizationError) as info:
                self.parser(url, registry)
            assert url in str(info.value)

    def test_every_referenced_file_has_a_fingerprint(self, sample: Path) -> None:
        group = self.parse_local(sample)
        referenced = referenced_paths(group)
        assert referenced, "the sample references no file"
        missing = sorted(set(referenced) - set(group.sources))
        assert not missing, f"no fingerprint for {missing}"
        for url in referenced:
            path = url.removeprefix("file://")
            assert group.sources[url].size == os.path.getsize(path), url

    def test_fingerprints_have_a_last_modified_time(
        self, sample: Path, s3_bucket: S3Bucket
    ) -> None:
        s3_base = s3_bucket.put_tree("sample", sample) + "/"
        registry = local_registry(sample).register(s3_bucket.url, s3_bucket.store())
        for group in (self.parse_local(sample), self.parser(s3_base + self.source_name, registry)):
            assert group.sources, "no fingerprint recorded"
            undated = [url for url, f in group.sources.items() if f.last_modified is None]
            assert not undated, f"no last_modified for {undated}"

    def test_can_open_its_own_sample(self, sample: Path) -> None:
        memory = vc.ObjectStoreRegistry({MEMORY_PREFIX: memory_copy(sample)})
        assert type(self.parser).can_open(Probe(self.local_url(sample), local_registry(sample)))
        assert type(self.parser).can_open(Probe(MEMORY_PREFIX + self.source_name, memory))

    def test_can_open_refuses_the_other_formats(self, other_samples: dict[str, Path]) -> None:
        assert other_samples
        claimed = [
            name
            for name, source in other_samples.items()
            if type(self.parser).can_open(Probe(str(source), local_registry(source.parent)))
        ]
        assert not claimed, f"{type(self.parser).__name__} claims the samples of {claimed}"

    def test_detect_parser_picks_it(self, sample: Path) -> None:
        memory = vc.ObjectStoreRegistry({MEMORY_PREFIX: memory_copy(sample)})
        for url, registry in (
            (self.local_url(sample), local_registry(sample)),
            (MEMORY_PREFIX + self.source_name, memory),
            (str(sample / self.source_name), local_registry(sample)),
        ):
            assert type(detect_parser(url, registry)) is type(self.parser), url
