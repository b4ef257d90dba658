"""Sphinx configuration of the rendered book (`make book`).

The book is built from the repository root with this folder as the configuration directory
(`sphinx-build -c book . build/book/html`): the README is the landing page, then the executed
notebooks as committed (MyST-NB, never re-executed), then the pages under docs/. The README stays plain
GitHub Markdown; the book's table of contents is appended to it while Sphinx reads it (``_add_toc``).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.relative_to(ROOT).with_suffix("").as_posix() for p in ROOT.glob("notebooks/[0-9][0-9]_*.ipynb"))
PAGES = sorted(p.relative_to(ROOT).with_suffix("").as_posix() for p in ROOT.glob("docs/*.md"))

project = "craft: CRAFT, reproducible"
author = "the craft authors"
root_doc = "README"
extensions = ["myst_nb"]
include_patterns = ["README.md", "notebooks/[0-9][0-9]_*.ipynb", "docs/*.md"]
exclude_patterns = ["build", "runs", ".venv", "**/.ipynb_checkpoints"]

nb_execution_mode = "off"          # the committed outputs are the book's: never re-execute
nb_output_stderr = "show"          # so the browser test sees any stderr a notebook stored
myst_enable_extensions = ["dollarmath", "amsmath", "html_image"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

html_theme = "sphinx_book_theme"
html_title = project
html_theme_options = {"show_toc_level": 2, "use_download_button": True}
html_show_sourcelink = False


def _add_toc(app, docname, source):
    """Append the book's hidden table of contents to the README (only in the book)."""
    if docname != root_doc:
        return
    toc = "\n".join(["", "```{toctree}", ":hidden:", ":caption: Notebooks", "", *NOTEBOOKS, "```", "",
                     "```{toctree}", ":hidden:", ":caption: Guides", "", *PAGES, "```", ""])
    source[0] += toc


def _index_redirect(app, exception):
    """A static host serves index.html: point it at the landing page."""
    if exception is None and app.builder.format == "html":
        (Path(app.outdir) / "index.html").write_text(
            '<!doctype html><meta charset="utf-8"><title>craft</title>'
            '<meta http-equiv="refresh" content="0; url=README.html"><a href="README.html">craft</a>\n')


def setup(app):
    app.connect("source-read", _add_toc)
    app.connect("build-finished", _index_redirect)
