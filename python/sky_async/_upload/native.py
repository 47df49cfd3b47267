"""The native engine of git's ignore listing: ``sky_async._native.gitignore_listing``,
which ``_default`` hands to ``gitignore.use_native_listing`` when the native backend is the
one in use (``gitignore.py`` imports no compiled code)."""

from __future__ import annotations

from .. import _native

gitignore_listing = _native.gitignore_listing
