"""Writing outputs whole or not at all."""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["replace_path"]


def replace_path(built: Path, target: Path) -> None:
    """Move a fully built file or folder onto ``target``, replacing what was there.

    The old output is moved aside first, so a crash between the renames loses nothing.
    """
    if not target.exists():
        built.rename(target)
        return
    old = built.with_name(built.name + ".old")
    target.rename(old)
    built.rename(target)
    if old.is_dir():
        shutil.rmtree(old)
    else:
        old.unlink()
