"""Entries that vanish on cue while scan_tree runs, on either backend.

``with vanishing(backend_name, {path: action}):`` makes every scan started inside it do
*action* to the entry at *path* (as the scan builds it: the root as given joined with the
names below it) once, right after listing it and before it stats or opens it: "remove"
(the entry and everything below it), "file" (replace it by an empty regular file) or
"symlink" (replace it by a symlink to "."). ``{path: (action, other)}`` does it to *other*
instead, when *path* is listed. The native backend does it on its worker
(``_native.set_scan_entry_actions``: workers never take the GIL); the Python backend
through ``_scan_py.entry_hook``, with the same actions written here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Mapping
from typing import Union

from sky_async._scan import python as _scan_py

PathLike = Union[str, bytes, "os.PathLike[str]"]
Action = Union[str, tuple[str, PathLike]]


def apply(action: str, path: bytes) -> None:
    """What the native backend does for an action (a target already gone is no error)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)
    if action == "file":
        with open(path, "xb"):
            pass
    elif action == "symlink":
        os.symlink(b".", path)
    elif action != "remove":
        raise ValueError(f"unknown entry action: {action}")


@contextlib.contextmanager
def vanishing(backend_name: str, actions: Mapping[PathLike, Action]) -> Iterator[None]:
    pending: dict[bytes, tuple[str, bytes]] = {}
    for path, action in actions.items():
        name, target = (action, path) if isinstance(action, str) else action
        pending[os.fsencode(path)] = (name, os.fsencode(target))
    if backend_name == "native":
        from sky_async import _native

        _native.set_scan_entry_actions(pending)
        try:
            yield
        finally:
            _native.set_scan_entry_actions(None)
        return

    def hook(path: bytes) -> None:
        todo = pending.pop(path, None)
        if todo is not None:
            apply(*todo)

    previous, _scan_py.entry_hook = _scan_py.entry_hook, hook
    try:
        yield
    finally:
        _scan_py.entry_hook = previous
