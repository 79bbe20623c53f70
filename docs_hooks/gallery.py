"""MkDocs hook: the gallery's chunk maps, drawn by `vzxarray.demo.make_gallery` at build time.

The pictures are added to the build as generated files (``gallery/*.png``): nothing is
written into ``docs/``. vz is imported from this checkout's ``src``, the code the
docs describe (as mkdocstrings reads it).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

_SRC = Path(__file__).resolve().parents[1] / "src"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Draw the gallery and add each PNG to the site's files."""
    if str(_SRC) not in sys.path:
        sys.path.insert(0, str(_SRC))
    from vzxarray.demo import make_gallery

    with tempfile.TemporaryDirectory(prefix="vz-docs-gallery-") as folder:
        for path in make_gallery(Path(folder)):
            files.append(File.generated(config, f"gallery/{path.name}", content=path.read_bytes()))
    return files
