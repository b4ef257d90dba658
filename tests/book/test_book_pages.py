"""The rendered book, opened in a real headless browser (`make test-book`).

`make test-book` builds the book (`make book`, Sphinx + MyST-NB from the committed notebooks) and makes
sure Chromium is installed (Debian's `chromium` package; `make chromium`), then runs this file. Each page
is served from a local HTTP server and loaded by Chromium through Playwright; requests that leave the
machine are refused, so what is checked is what the book shows offline. For every notebook page: every
figure the committed notebook stores (`image/png` outputs) is on the page and decoded by the browser
(non-zero natural size), and no error or stderr output is shown.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "build" / "book" / "html"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    path = os.environ.get("CRAFT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("no Chromium found: `make chromium` installs Debian's package (or set CRAFT_CHROMIUM)")
    return path


@pytest.fixture(scope="module")
def site():
    if not (HTML / "README.html").is_file():
        pytest.fail(f"{HTML.relative_to(ROOT)} has no README.html: run `make book` first (`make test-book` does)")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(HTML)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def page(site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_FLAGS)
        context = browser.new_context()
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(site)
                      else route.abort())
        pg = context.new_page()
        pg.errors = []
        pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
        yield pg
        browser.close()


def _stored_figures(nb_path: Path) -> int:
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    return sum("image/png" in out.get("data", {}) for cell in nb["cells"] if cell["cell_type"] == "code"
               for out in cell.get("outputs", []))


def _open(page, url: str):
    response = page.goto(url, wait_until="load")
    assert response is not None and response.ok, f"{url}: HTTP {response.status if response else 'no response'}"
    return page


def test_landing_page_is_the_readme_and_lists_every_notebook(page, site):
    _open(page, f"{site}/index.html")
    page.wait_for_url("**/README.html")
    assert page.locator("h1").first.inner_text().startswith("craft")
    nav = page.locator("nav").all_inner_texts()
    for nb in NOTEBOOKS:
        href = f"notebooks/{nb.stem}.html"
        assert page.locator(f'a[href="{href}"]').count() > 0, f"the landing page does not link {href} ({nav[:1]})"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_page_renders_its_figures_and_no_error(page, site, nb_path):
    page.errors.clear()
    _open(page, f"{site}/notebooks/{nb_path.stem}.html")
    expected = _stored_figures(nb_path)
    images = page.locator(".cell_output img")
    sizes = images.evaluate_all("imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
    assert len(sizes) == expected, f"{nb_path.name} stores {expected} figure(s); the page shows {len(sizes)}"
    broken = [i for i, (done, w, h) in enumerate(sizes) if not (done and w > 0 and h > 0)]
    assert not broken, f"{nb_path.name}: figure(s) {broken} did not load in the browser"
    for selector in (".output.traceback", ".output.stderr", ".output.error"):
        assert page.locator(selector).count() == 0, f"{nb_path.name} shows a {selector} output"
    text = page.locator("main").inner_text()
    assert "Traceback (most recent call last)" not in text, f"{nb_path.name} shows a traceback"
    assert not page.errors, f"{nb_path.name}: JavaScript errors {page.errors}"


def test_troubleshooting_page_is_in_the_book(page, site):
    _open(page, f"{site}/docs/troubleshooting.html")
    assert page.locator("h1").first.inner_text().startswith("Troubleshooting")


@pytest.mark.parametrize("page_name, title", [("glossary", "Glossary"), ("misconceptions", "Misconceptions"),
                                              ("instructor-notes", "Instructor notes"), ("course-map", "Course map")])
def test_course_pages_are_in_the_book(page, site, page_name, title):
    page.errors.clear()
    _open(page, f"{site}/docs/{page_name}.html")
    assert page.locator("h1").first.inner_text().startswith(title)
    assert page.locator("main").inner_text().count("\n") > 20, f"docs/{page_name}.md renders nearly empty"
    assert not page.errors, f"docs/{page_name}: JavaScript errors {page.errors}"


def test_course_pages_are_linked_from_the_landing_page(page, site):
    _open(page, f"{site}/README.html")
    for name in ("glossary", "misconceptions", "instructor-notes", "course-map"):
        assert page.locator(f'a[href="docs/{name}.html"]').count() > 0, f"the landing page does not link {name}"


def test_per_token_p_z_view_renders_without_a_kernel(page, site):
    """Notebook 06 colours a completion's tokens by the running p_z: static HTML, so the book shows it."""
    nb = next(p for p in NOTEBOOKS if p.name.startswith("06_"))
    _open(page, f"{site}/notebooks/{nb.stem}.html")
    tokens = page.locator('span[title^="p_z = "]')
    assert tokens.count() >= 50, f"the per-token view shows {tokens.count()} coloured tokens"
    colours = set(tokens.evaluate_all("spans => spans.map(s => getComputedStyle(s).backgroundColor)"))
    assert len(colours) >= 5, f"the tokens are not coloured by their value: {sorted(colours)[:5]}"
    assert tokens.first.is_visible()
