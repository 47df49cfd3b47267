"""``.. sync-names::``: the names of ``sky_async.sync``, each linked to its documentation.

The blocking twins have the signatures, results and errors of the names they share with
``sky_async``, so the page lists them (from ``sky_async.sync.__all__``) instead of repeating
every docstring.
"""

from __future__ import annotations

from typing import Any

import sky_async.sync
from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective


class SyncNames(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        lines = StringList()
        for name in sky_async.sync.__all__:
            lines.append(f"* ``sky_async.sync.{name}``: :py:obj:`sky_async.{name}`", "<sync-names>")
        container = nodes.container()
        self.state.nested_parse(lines, self.content_offset, container)
        return list(container.children)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("sync-names", SyncNames)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
