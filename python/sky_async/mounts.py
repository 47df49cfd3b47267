"""SkyPilot's file-mount digest, with the files hashed concurrently.

SkyPilot decides on every launch whether a cluster's file mounts changed with one
SHA-256 over every file of every mount (``_deterministic_cluster_yaml_hash``), walked
and hashed serially. ``sky_async.file_mounts_digest`` feeds byte for byte the same
stream, in the same order, but hashes the files with ``hash_files`` (concurrently, on
either backend) between the walk and the feed.

The stream, after the optional *prefix* (SkyPilot's is the raw SHA-256 of the
normalised cluster YAML): for each mount in sorted destination order, the destination
(UTF-8) and a NUL; for a source that is a regular file after ``~`` expansion and
symlinks, ``file`` and its raw SHA-256; for a directory, ``dir`` and for every
directory of a top-down walk (sorted names; symlinked directories listed but not
descended into), its path and a NUL, each subdirectory name and a NUL, a NUL, each
file name and a NUL followed by the file's raw SHA-256, and a NUL; for anything else
(missing, a cloud URL) nothing; then two NULs. The content of gcloud's credential caches
(``credentials.db``, ``access_tokens.db`` and their ``-journal``, ``-wal``, ``-shm``
files) is not fed, only their names, as in SkyPilot 0.14.1.

Deviations from SkyPilot, all where SkyPilot has no usable result:

- A path below a mount that cannot be hashed -- a broken symlink (SkyPilot aborts with
  FileNotFoundError), a FIFO (SkyPilot hangs), a socket or device, an unreadable file
  or directory (SkyPilot silently skips unreadable directories, so their changes go
  unnoticed) -- is collected, and one :class:`FileMountsError` listing all of them
  is raised after the walk.
- Names that are not valid UTF-8 (SkyPilot raises UnicodeEncodeError) are fed as
  their raw bytes, and all names sort as bytes. For UTF-8 names byte order is
  Python's ``str`` order, so every digest SkyPilot can compute is unchanged.
- SkyPilot drops the cluster YAML's own mount and an empty ``""`` destination before
  hashing; that filtering is the caller's, as the mapping is taken as given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Union

from ._errors import make_os_error

__all__ = ["FileMountsError"]

# What a backend reports for one call: the hex digest, or every path that cannot be hashed
# as (path, errno, message or None), in path order.
MountsItem = Union[str, "list[tuple[bytes, int, str | None]]"]


class FileMountsError(OSError):
    """Paths below the file mounts that cannot be hashed, all of them.

    ``problems`` is a list of ``(path, error)`` pairs in path order, each error an
    OSError with errno, strerror and filename set (a FIFO, socket or device is
    ``EINVAL`` "Not a regular file"). The exception's own errno and filename are the
    first problem's.
    """

    def __init__(self, problems: list[tuple[str, OSError]]) -> None:
        path, first = problems[0]
        count = len(problems)
        noun = "path" if count == 1 else "paths"
        super().__init__(
            first.errno,
            f"{count} file mount {noun} cannot be hashed (first: {first.strerror})",
            path,
        )
        self.problems = problems

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.problems,))


def check_file_mounts(file_mounts: object) -> list[tuple[bytes, bytes]]:
    """(destination, source) pairs as bytes, in SkyPilot's order, or TypeError/ValueError.

    The sources are as given: each backend expands a leading ``~`` itself, as
    ``os.path.expanduser`` does (the native one in C++).
    """
    if not isinstance(file_mounts, Mapping):
        raise TypeError(
            f"file_mounts must be a mapping of destination to source, not {type(file_mounts).__name__}"
        )
    pairs = []
    for destination, source in file_mounts.items():
        if not isinstance(destination, str):
            raise TypeError(f"file mount destinations must be str, not {type(destination).__name__}")
        if isinstance(source, os.PathLike):
            source = os.fspath(source)
        if not isinstance(source, str):
            raise TypeError(
                f"file mount source for {destination!r} must be a str or os.PathLike[str], "
                f"not {type(source).__name__}"
            )
        if "\0" in source:
            raise ValueError(f"file mount source for {destination!r} contains a null byte")
        try:
            encoded = destination.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"file mount destination {destination!r} is not valid Unicode: {exc}") from None
        pairs.append((destination, source, encoded))
    pairs.sort(key=lambda pair: (pair[0], pair[1]))
    return [(encoded, os.fsencode(source)) for _, source, encoded in pairs]


def check_prefix(prefix: object) -> bytes:
    if not isinstance(prefix, (bytes, bytearray, memoryview)):
        raise TypeError(f"prefix must be bytes, not {type(prefix).__name__}")
    return bytes(prefix)


def digest_or_raise(item: MountsItem) -> str:
    """The digest a backend reported, or FileMountsError listing every problem it found."""
    if isinstance(item, str):
        return item
    problems = []
    for path, code, message in item:
        name = os.fsdecode(path)
        problems.append((name, make_os_error(code, message, name)))
    raise FileMountsError(problems)
