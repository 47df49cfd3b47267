"""Exit 1 naming each public name of ``sky_async`` or ``sky_async.sync`` that public_async.py
or public_sync.py never uses: a new public function comes with its type test.

Run by ``scripts/lint``. The names are read from the table in ``sky_async/_public.py``
without importing the package (no backend is loaded).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TABLE = HERE.parent.parent / "python" / "sky_async" / "_public.py"


def public_rows() -> list[tuple[str, str, bool]]:
    """(name, kind, in_sync) of every ``PublicName(...)`` row of the table."""
    rows: list[tuple[str, str, bool]] = []
    for node in ast.walk(ast.parse(TABLE.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "PublicName":
            name, kind, in_sync = node.args
            assert isinstance(name, ast.Constant) and isinstance(in_sync, ast.Constant), ast.dump(node)
            assert isinstance(kind, ast.Name), ast.dump(node)
            rows.append((str(name.value), kind.id, bool(in_sync.value)))
    return rows


def used(file: str, prefix: str) -> set[str]:
    return set(re.findall(rf"\b{prefix}\.(\w+)", (HERE / file).read_text(encoding="utf-8")))


def main() -> int:
    rows = [row for row in public_rows() if row[1] != "MODULE"]
    in_async, in_sync = used("public_async.py", "sky_async"), used("public_sync.py", "sync")
    missing = [f"sky_async.{name} (public_async.py)" for name, _, _ in rows if name not in in_async]
    missing += [
        f"sky_async.sync.{name} (public_sync.py)" for name, _, sync in rows if sync and name not in in_sync
    ]
    for name in missing:
        print(f"tests/typing: no type test of {name}", file=sys.stderr)
    return 1 if missing or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
