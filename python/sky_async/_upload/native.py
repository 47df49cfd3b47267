"""The native engine of git's ignore rules (``gitignore.NativeEngine``): this module is the
engine that ``_default`` hands to ``gitignore.use_native_engine`` when the native backend is
the one in use (``gitignore.py`` imports no compiled code)."""

from __future__ import annotations

from .. import _native

listing = _native.gitignore_listing
gitlinks = _native.gitignore_gitlinks
