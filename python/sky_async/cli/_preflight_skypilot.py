"""``sky-async preflight --skypilot``: what a SkyPilot 0.14.1 launch would upload.

SkyPilot's client (``sky.client.common.upload_mounts_to_api_server``) zips the workdir and
the local file-mount sources, by absolute path, into one archive with
``storage_utils.zip_files_and_folders`` (each directory's exclusions from
``get_excluded_files``: its ``.skyignore``, else git's rules) and names it by
``_compute_zip_blob_id``. ``pack_mounts`` writes that zip byte for byte; this module
runs it on each source (into a temporary file that is deleted, or ``--pack FILE``), says
which rule left out each excluded path, and repeats the warnings SkyPilot would print:

- the ones ``get_excluded_files`` logs (a ``.gitignore`` that is not applied, a repository
  that ignores the whole directory, an unreadable ``.skyignore``);
- the backend's "is a symlink" warning for a source that is a symbolic link;
- the backend's size warning for a source of 256 MiB or more. SkyPilot measures that with
  ``rsync --dry-run`` and rsync's own filters; here the uploaded bytes are used, which is
  what the filters approximate.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from .. import compat, sync

# The one private module used: a launch of several sources is one archive, made here from
# each source's own archive (entries copied, not compressed again) with its blob id from the
# entries' digests, which the public pack_mounts does not offer.
from .._upload import pack as _pack
from ._common import describe

# SkyPilot's _PATH_SIZE_MEGABYTES_WARN_THRESHOLD, in path_size_megabytes' units (MiB, rounded down).
WARN_MEGABYTES = 256
# How many excluded paths the report names (the biggest).
EXCLUDED_SHOWN = 10


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _captured_warnings() -> Iterator[list[str]]:
    """The warnings the exclusion listing logs (SkyPilot's, in our words), kept off stderr."""
    logger = logging.getLogger("sky_async.compat")
    handler = _Capture()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        return f"git failed (exit status {exc.returncode}): {str(exc.stderr).strip()}"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return where + describe(exc)
    return str(exc)


def tree_size(path: str) -> int:
    """The bytes of the regular files at or below *path*, symbolic links not followed."""
    if os.path.islink(path) or not os.path.isdir(path):
        try:
            st = os.lstat(path)
        except OSError:
            return 0
        return st.st_size if stat.S_ISREG(st.st_mode) else 0
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


def _rules_of(root: str) -> tuple[str, dict[str, str | None]]:
    """SkyPilot's choice of rules for *root* (``.skyignore`` when the directory has one, else
    ``git``) and, per top-most excluded path (``node_modules/``, ``debug.log``), the rule that
    excludes it (``.gitignore:1``, ``src/.gitignore:2``, ``.skyignore:3``), from ``scan_tree``'s
    engines: ``sky-async preflight --ignore`` names the same rules."""
    # As SkyPilot's get_excluded_files chooses: os.path.exists (a dangling link is no .skyignore).
    kind = ".skyignore" if os.path.exists(os.path.join(root, ".skyignore")) else "git"
    try:
        scan = sync.scan_tree(root, largest=0, max_problems=0, ignore="skypilot")
    except (OSError, ValueError, RuntimeError):  # rules SkyPilot's listing reported already
        return kind, {}
    return kind, {excluded.relative: excluded.rule for excluded in scan.excluded or ()}


def _temp_output() -> tuple[str, Callable[[], None]]:
    directory = tempfile.mkdtemp(prefix="sky-async-preflight-")
    return os.path.join(directory, "upload.zip"), lambda: shutil.rmtree(directory, ignore_errors=True)


def _pack_to(
    sources: list[str],
    output: str | None,
    exclusions: dict[str, list[str]],
    pairs: list[tuple[str, bytes]] | None = None,
) -> _pack.PackResult:
    """Pack *sources* into *output* (None: a temporary file, deleted)."""

    def exclusions_of(item: str) -> list[str]:
        found = exclusions.get(item)
        return found if found is not None else compat.get_excluded_files(item)

    if output is not None:
        return _pack.pack(sources, output, exclusions_of=exclusions_of, pairs=pairs)
    temp, cleanup = _temp_output()
    try:
        return _pack.pack(sources, temp, exclusions_of=exclusions_of, pairs=pairs)
    finally:
        cleanup()


class _Parts:
    """With several sources: each one's own archive, kept until the launch archive is made
    from them (their entries copied, not compressed again), with its entries' digests."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="sky-async-preflight-")
        self.archives: list[str] = []
        self.pairs: list[tuple[str, bytes]] = []

    def next_output(self) -> str:
        self.archives.append(os.path.join(self.directory, f"{len(self.archives)}.zip"))
        return self.archives[-1]

    def join(self, output: str | None, results: list[_pack.PackResult]) -> dict[str, Any]:
        """The launch archive's fields: the parts' archives concatenated into *output* (None:
        only measured)."""
        joined = output if output is not None else os.path.join(self.directory, "upload.zip")
        fields = _result_fields(
            _pack.PackResult(
                files=sum(r.files for r in results),
                directories=sum(r.directories for r in results),
                symlinks=sum(r.symlinks for r in results),
                bytes=sum(r.bytes for r in results),
                archive_bytes=_pack.concatenate(self.archives, joined),
                blob_id=_pack.blob_id_of(self.pairs),
            )
        )
        return fields

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _result_fields(result: _pack.PackResult) -> dict[str, Any]:
    return {
        "files": result.files,
        "directories": result.directories,
        "symlinks": result.symlinks,
        "bytes": result.bytes,
        "archive_bytes": result.archive_bytes,
        "blob_id": result.blob_id,
    }


def analyze_source(
    path: str,
    exclusions: dict[str, list[str]],
    pack_file: str | None = None,
    *,
    label: str = "source",
    parts: _Parts | None = None,
    results: list[_pack.PackResult] | None = None,
) -> dict[str, Any]:
    """The ``skypilot`` object of one source (see docs/preflight.md); *exclusions* caches each
    directory's listing. With *parts* its archive is kept there (and its result appended to
    *results*) for the launch archive of several sources."""
    source = os.path.abspath(os.path.expanduser(path))
    info: dict[str, Any] = {
        "source": source,
        "ignore": None,
        "files": 0,
        "directories": 0,
        "symlinks": 0,
        "bytes": 0,
        "archive_bytes": 0,
        "blob_id": None,
        "pack": pack_file,
        "excluded_count": 0,
        "excluded_bytes": 0,
        "excluded": [],
        "warnings": [],
        "error": None,
    }
    warnings: list[str] = info["warnings"]
    if os.path.islink(source):
        warnings.append(f"{label} {path!r} is a symlink. Symlink contents are not uploaded.")
    rules: dict[str, str | None] = {}
    if os.path.isdir(source):
        with _captured_warnings() as logged:
            try:
                exclusions[source] = compat.get_excluded_files(source)
            except (OSError, ValueError, UnicodeDecodeError, subprocess.CalledProcessError) as exc:
                info["error"] = f"SkyPilot cannot list the exclusions: {_error_text(exc)}"
        warnings.extend(logged)
        if info["error"] is not None:
            return info
        if exclusions[source]:
            info["ignore"], rules = _rules_of(source)
    try:
        if parts is not None:
            result = _pack_to([source], parts.next_output(), exclusions, parts.pairs)
            assert results is not None
            results.append(result)
        else:
            result = _pack_to([source], pack_file, exclusions)
    except (OSError, ValueError) as exc:
        info["error"] = f"the upload archive cannot be written: {_error_text(exc)}"
        return info
    info.update(_result_fields(result))
    excluded: list[dict[str, Any]] = []
    for full in result.excluded:
        rel = os.path.relpath(full, source)
        is_dir = os.path.isdir(full) and not os.path.islink(full)
        shown = rel + "/" if is_dir else rel
        excluded.append({"path": shown, "size": tree_size(full), "rule": rules.get(shown)})
    excluded.sort(key=lambda item: (-item["size"], item["path"]))
    info["excluded_count"] = len(excluded)
    info["excluded_bytes"] = sum(item["size"] for item in excluded)
    info["excluded"] = excluded[:EXCLUDED_SHOWN]
    megabytes = result.bytes // (1024**2)
    if megabytes >= WARN_MEGABYTES:
        warnings.append(
            f"The size of {label} {path!r} is {megabytes} MB. Try to keep {label} small or use"
            " .skyignore to exclude large files, as large sizes will slow down rsync."
        )
    return info


def analyze(
    roots: list[str], workdir: str | None, pack_file: str | None
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Each root's ``skypilot`` object, and the launch archive of all of them together (one
    zip, in SkyPilot's order: the roots as given). Blocking: run it in a thread."""
    exclusions: dict[str, list[str]] = {}
    per_root: dict[str, dict[str, Any]] = {}
    single = len(roots) == 1
    sources = [os.path.abspath(os.path.expanduser(root)) for root in roots]
    upload: dict[str, Any] = {"sources": sources, "pack": pack_file, "error": None}
    if single:
        first = per_root[roots[0]] = analyze_source(
            roots[0], exclusions, pack_file, label=_label(roots[0], workdir)
        )
        upload.update({key: first[key] for key in _UPLOAD_KEYS})
        upload["error"] = first["error"]
        return per_root, upload
    # The launch archive holds every root in turn, a root named twice twice: each root is
    # packed once, and the launch archive made of those parts.
    parts = _Parts()
    try:
        results: list[_pack.PackResult] = []
        for root in roots:
            info = analyze_source(root, exclusions, label=_label(root, workdir), parts=parts, results=results)
            per_root.setdefault(root, info)
        upload.update(dict.fromkeys(_UPLOAD_KEYS, 0))
        upload["blob_id"] = None
        if any(info["error"] for info in per_root.values()):
            upload["error"] = "a source cannot be archived (see its error)"
            return per_root, upload
        try:
            try:
                fields = parts.join(pack_file, results)
            except ValueError:  # a part needed zip64 fields of its own: pack everything again
                fields = _result_fields(_pack_to(sources, pack_file, exclusions))
            upload.update(fields)
        except (OSError, ValueError, subprocess.CalledProcessError) as exc:
            upload["error"] = f"the upload archive cannot be written: {_error_text(exc)}"
    finally:
        parts.remove()
    return per_root, upload


def _label(root: str, workdir: str | None) -> str:
    return "workdir" if workdir is not None and root == workdir else "source"


_UPLOAD_KEYS = ("files", "directories", "symlinks", "bytes", "archive_bytes", "blob_id")
