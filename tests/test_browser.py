"""The docs and the notebook views in a real browser: headless Chromium (Debian's package).

Every page of the built docs is opened at 1280x800: none may scroll sideways, every
image must have loaded (the gallery's chunk maps, drawn by the docs build, among
them), and each page is photographed into ``build/screenshots/``. A notebook-style
page holding a `VirtualGroup`'s and an xarray Dataset's HTML views (vz's inline
summary inside xarray's own) is rendered in a light and a dark theme and photographed
too. ``.ci/run`` installs Chromium; elsewhere the tests skip without it, in CI
(``VZ_CI=1``) they fail.
"""

from __future__ import annotations

import functools
import html
import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import xarray as xr

import vzxarray as vx
from vzxarray.demo import GALLERY, make_demo_files

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}


def _unavailable(message: str) -> None:
    if os.environ.get("VZ_CI"):  # .ci/run installs Chromium: missing there is a failure
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        _unavailable("Chromium (Debian's chromium package) is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package (the test extra) is not installed")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


_SOURCE_SUFFIXES = {".md", ".py", ".css", ".svg", ".png", ".yml"}


def _newest_source() -> float:
    """The last change to what the docs are built from (caches such as .pyc not counted)."""
    sources = [ROOT / "mkdocs.yml", *(ROOT / "docs_hooks").glob("*.py")]
    for folder in ("docs", "src"):
        sources += [p for p in (ROOT / folder).rglob("*") if p.suffix in _SOURCE_SUFFIXES]
    return max(p.stat().st_mtime for p in sources)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built docs: ``make docs``'s build/site when newer than every source, else a build."""
    built = ROOT / "build" / "site"
    index = built / "index.html"
    if index.exists() and index.stat().st_mtime > _newest_source():
        return built
    folder = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(folder)],
        cwd=ROOT,
        check=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    return folder


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The site over HTTP on a free loopback port (as a browser reads published docs)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _pages(site: Path) -> list[str]:
    pages = sorted(p.parent.relative_to(site).as_posix() for p in site.rglob("index.html"))
    return ["" if p == "." else f"{p}/" for p in pages]


_PAGE_STATE = """() => {
  const page = document.scrollingElement;
  const images = [...document.querySelectorAll("article img")].map(img => ({
    src: img.getAttribute("src"), loaded: img.complete && img.naturalWidth > 0,
  }));
  return {scrollWidth: page.scrollWidth, clientWidth: page.clientWidth, images};
}"""


def _shot_name(page: str) -> str:
    return (page.strip("/").replace("/", "-") or "index") + ".png"


def test_every_docs_page_fits_1280_pixels_and_its_images_load(
    browser: Any, site: Path, served: str
) -> None:
    pages = _pages(site)
    assert {"", "gallery/", "mapping/", "parsers/", "api/"} <= set(pages)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab = browser.new_page(viewport=VIEWPORT)
    problems = []
    states = {}
    for page in pages:
        tab.goto(f"{served}/{page}", wait_until="load")
        state = tab.evaluate(_PAGE_STATE)
        states[page] = state
        if state["scrollWidth"] > state["clientWidth"]:
            problems.append(f"{page or 'index'}: {state['scrollWidth']} px wide")
        problems += [
            f"{page}: image {i['src']} not loaded" for i in state["images"] if not i["loaded"]
        ]
        full = page in ("", "gallery/", "mapping/")
        tab.screenshot(path=str(SCREENSHOTS / _shot_name(page)), full_page=full)
    tab.close()
    print(f"\nscreenshots of {len(pages)} pages in {SCREENSHOTS}")
    assert not problems, problems
    gallery = {Path(i["src"]).name for i in states["gallery/"]["images"]}
    assert set(GALLERY) <= gallery  # each picture the docs build drew, shown and loaded
    landing = {Path(i["src"]).name for i in states[""]["images"]}
    assert {"flow.svg", "year.png"} <= landing


def test_the_mapping_table_is_readable_at_1280_pixels(browser: Any, served: str) -> None:
    tab = browser.new_page(viewport=VIEWPORT)
    tab.goto(f"{served}/mapping/", wait_until="load")
    box = tab.evaluate(
        """() => {
      const table = document.querySelector("article table");
      const wrap = table.closest(".md-typeset__scrollwrap") || table.parentElement;
      const last = table.querySelector("tr:nth-child(2) td:last-child").getBoundingClientRect();
      return {table: table.scrollWidth, box: wrap.clientWidth, lastRight: last.right,
              view: document.documentElement.clientWidth};
    }"""
    )
    tab.close()
    assert box["table"] <= box["box"]  # the table itself does not even scroll in its box
    assert box["lastRight"] <= box["view"]  # the vz column is on screen


def _notebook_page(theme: str, group_html: str, dataset_html: str) -> str:
    colours = {
        "light": "background:#ffffff;color:#1f1f1f",
        "dark": "background:#111111;color:#d8d8d8",
    }[theme]
    # data-theme is what xarray's stylesheet reads for a dark notebook (as JupyterLab's
    # and VS Code's dark themes set it); vz's view takes the text colour it inherits.
    return (
        f"<!doctype html><html data-theme='{theme}'><head><meta charset='utf-8'>"
        "<title>notebook views</title>"
        f"</head><body style='{colours};font-family:sans-serif;margin:16px'>"
        "<h3>In [1]: group</h3>"
        f"<div class='output'>{group_html}</div>"
        "<h3>In [2]: ds</h3>"
        f"<div class='output'>{dataset_html}</div>"
        "</body></html>"
    )


def test_notebook_views_render_in_light_and_dark(browser: Any, tmp_path: Path) -> None:
    files = make_demo_files(tmp_path)
    hostile = tmp_path / "tas <img src=x onerror=alert(1)>.nc"  # a file name cannot hold "/"
    files[0].rename(hostile)
    ds = vx.open_virtual_mfdataset([str(hostile), *map(str, files[1:])], progress=False)
    ds.attrs["note"] = "<script>alert(2)</script>"
    with xr.set_options(display_expand_data=True):
        dataset_html = ds._repr_html_()
    group_html = ds.vz.to_virtual_group()._repr_html_()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for theme in ("light", "dark"):
        page = tmp_path / f"notebook-{theme}.html"
        page.write_text(_notebook_page(theme, group_html, dataset_html))
        tab = browser.new_page(viewport=VIEWPORT)
        tab.goto(page.as_uri(), wait_until="load")
        # Open vz's folded parts and xarray's data section of tas, as a reader would.
        tab.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
        tab.evaluate(
            "() => document.querySelectorAll('input.xr-var-data-in').forEach(i => i.checked = true)"
        )
        state = tab.evaluate(
            """() => ({
          scripts: document.querySelectorAll("script, img").length,
          scrollWidth: document.scrollingElement.scrollWidth,
          clientWidth: document.scrollingElement.clientWidth,
          preview: [...document.querySelectorAll(".xr-var-preview")].map(e => e.textContent),
          views: document.querySelectorAll(".vz-repr").length,
          text: document.body.innerText,
        })"""
        )
        tab.screenshot(path=str(SCREENSHOTS / f"notebook-{theme}.png"), full_page=True)
        tab.close()
        assert state["scripts"] == 0  # the hostile file name and attribute stayed text
        assert state["scrollWidth"] <= state["clientWidth"]
        assert any(p.startswith("365 refs·12 files·") for p in state["preview"])
        assert state["views"] >= 2  # the group's, and tas's inside xarray's data section
        assert "tas <img src=x onerror=alert(1)>.nc" in state["text"]
        assert "<script>alert(2)</script>" in state["text"]
        assert "365 of 365 chunks" in state["text"]
    assert html.escape("<img src=x onerror=alert(1)>") in dataset_html
