"""The directory listing the pure-Python walks share (the file mounts walk, the
``.skyignore`` expansion and rsync's filter): one place that decides what an entry whose
type cannot be read counts as. A leaf: it imports no other module of the package."""

from __future__ import annotations

import os
from typing import AnyStr


def list_dir(path: AnyStr, *, follow_symlinks: bool = True) -> list[tuple[AnyStr, bool, bool]]:
    """(name, is a directory, is a symlink) of each entry of *path*, in the order the
    directory lists them. An entry whose type cannot be read (it vanished, or a link's
    target cannot be stat'ed) counts as not a directory, as ``os.walk`` and ``glob``
    count it. Both answers come from the listing's entry types where the file system gives
    them (no stat per entry). The listing is read whole, so its descriptor is closed when
    this returns.

    Raises OSError when *path* cannot be listed."""
    listing: list[tuple[AnyStr, bool, bool]] = []
    with os.scandir(path) as it:
        for entry in it:
            try:
                is_dir = entry.is_dir(follow_symlinks=follow_symlinks)
            except OSError:  # a link to itself (ELOOP), a target we may not search...
                is_dir = False
            try:
                is_link = entry.is_symlink()
            except OSError:
                is_link = False
            listing.append((entry.name, is_dir, is_link))
    return listing
