"""Sphinx configuration of the API reference (``bash scripts/docs`` builds it into build/docs).

The Python reference is autodoc over the installed ``sky_async`` (``scripts/setup`` installs it
into .venv from this tree), the C++ reference breathe over Doxygen's XML of
``include/sky_async`` (``scripts/docs`` runs Doxygen first), and the command-line reference is
generated from the argument parser by ``_ext/cli_reference.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))

import sky_async  # noqa: E402

project = "sky-async"
author = "the sky-async authors"
copyright = "the sky-async authors"
release = version = sky_async.__version__

extensions = [
    "sphinx.ext.autodoc",
    "myst_parser",
    "breathe",
    "cli_reference",
    "sync_names",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext"]
# The Markdown pages' headings get anchors, so that `file.md#heading` links resolve.
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# Not autodoc_preserve_defaults: the public functions are bound methods of the package's Api
# object, and with it autodoc drops their first parameter as if it were self.

breathe_projects = {"sky_async": str(ROOT / "build" / "doxygen" / "xml")}
breathe_default_project = "sky_async"
breathe_default_members = ("members",)
breathe_show_include = True
# breathe declares the namespace sky_async again for each header it renders (docs/cpp.rst has a
# section per header). This also hides any other duplicate C++ declaration; the pages declare
# nothing C++ by hand.
suppress_warnings = ["duplicate_declaration.cpp"]

html_theme = "alabaster"
html_title = f"sky-async {release}"
html_static_path: list[str] = []
