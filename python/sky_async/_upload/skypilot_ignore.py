"""SkyPilot 0.14.1's exclusion lists for an upload (``sky.data.storage_utils``): the
``.skyignore`` listing, the ``.gitignore`` listing (without running git) and the choice
between them, with SkyPilot's names, signatures, results, warnings and errors.

``compat`` re-exports them as drop-ins; ``_pack`` uses them to leave out what SkyPilot's
zip leaves out. They live here, not in ``compat``, so that ``compat`` can build its zip
drop-ins on ``_pack`` without an import cycle.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess

from . import gitignore as _gitignore
from . import skyignore as _skyignore


def get_excluded_files_from_skyignore(src_dir_path: str) -> list[str]:
    """SkyPilot's ``storage_utils.get_excluded_files_from_skyignore``: the paths, relative
    to *src_dir_path*, that its ``.skyignore`` lists; [] (and a logged warning) when there
    is none or it cannot be read. The order is unspecified, as SkyPilot's (a set's)."""
    return _skyignore.skypilot_excluded(src_dir_path)


# SkyPilot's .gitignore listing without running git (sky_async._upload.gitignore). The warnings say
# what SkyPilot's say, in our words.
_SKYIGNORE_HINT = "A .skyignore file there would be used instead of git's rules."
# The logger keeps compat's name: these warnings are the drop-ins' (SkyPilot's) warnings.
_logger = logging.getLogger("sky_async.compat")


def _git_failure(path: str, reason: str) -> subprocess.CalledProcessError:
    """What SkyPilot lets through when its first git command fails for any reason but a
    missing repository or a missing git: git's exit status 128 and its message."""
    return subprocess.CalledProcessError(
        128, ["git", "-C", path, "submodule", "foreach"], output="", stderr=f"fatal: {reason}\n"
    )


def _gitmodules_paths(top: str) -> set[bytes]:
    """The ``path`` of every submodule that the work tree's ``.gitmodules`` names."""
    try:
        with open(os.path.join(top, ".gitmodules"), "rb") as file:
            lines = file.read().splitlines()
    except OSError:
        return set()
    paths = set()
    for line in lines:
        key, eq, value = line.strip().partition(b"=")
        if eq and key.strip().lower() == b"path":
            paths.add(value.strip().strip(b'"'))
    return paths


def get_excluded_files_from_gitignore(src_dir_path: str) -> list[str]:
    """SkyPilot's ``storage_utils.get_excluded_files_from_gitignore``: what ``git ls-files
    --others --ignored --exclude-standard --directory`` lists in *src_dir_path* and in each
    checked-out submodule below it (prefixed with the submodule's path), in git's order,
    without running git. [] with a warning when *src_dir_path* is not in a repository
    (a ``.gitignore`` there is then not applied), when git is not installed (as SkyPilot
    cannot run it), or when git ignores the whole directory. ``CalledProcessError`` where
    SkyPilot's git command fails: a missing directory, a gitlink ``.gitmodules`` does not
    name, or a directory below one git's rules exclude (where git 2.39 fails)."""
    path = os.path.expanduser(src_dir_path)
    gitignore = os.path.join(path, _gitignore.GIT_IGNORE_FILE)
    if shutil.which("git") is None:
        if os.path.exists(gitignore):
            _logger.warning(
                "%s has a .gitignore file, but git is not installed: it is not applied. %s",
                src_dir_path,
                _SKYIGNORE_HINT,
            )
        return []
    if not os.path.isdir(path):
        reason = "Not a directory" if os.path.exists(path) else "No such file or directory"
        raise _git_failure(path, f"cannot change to '{path}': {reason}")
    try:
        ignore = _gitignore.GitIgnore(path)
    except _gitignore.NotAGitRepository:
        if os.path.exists(gitignore):
            _logger.warning(
                "%s has a .gitignore file but is not in a git repository: it is not applied. %s",
                src_dir_path,
                _SKYIGNORE_HINT,
            )
        return []
    # `git submodule foreach`: every gitlink checked out, named by its path relative to
    # src_dir_path; one .gitmodules does not name stops git (and SkyPilot) with an error.
    top = ignore.repository.top
    named = _gitmodules_paths(top)
    submodules = []
    for link in sorted(ignore.gitlinks):
        display = os.path.relpath(os.path.join(top, os.fsdecode(link)), os.path.realpath(path))
        if link not in named:
            raise _git_failure(path, f"No url found for submodule path '{display}' in .gitmodules")
        if _gitignore.git_dir_of(os.path.join(top, os.fsdecode(link))) is not None:
            submodules.append(display)
    try:
        listed = ignore.ignored_paths()
    except _gitignore.GitListingError as exc:
        raise _git_failure(path, str(exc)) from None
    excluded: list[str] = []
    for item in listed:
        if item == "./":
            _logger.warning(
                "git ignores all of %s (it is inside a git repository), so none of git's "
                "exclusions are applied. %s",
                src_dir_path,
                _SKYIGNORE_HINT,
            )
            return []
        excluded.append(item)
    for submodule in submodules:
        if submodule.startswith("../"):
            continue
        excluded.extend(
            os.path.join(submodule, item) for item in _gitignore.ignored_paths(os.path.join(path, submodule))
        )
    return excluded


def get_excluded_files(src_dir_path: str) -> list[str]:
    """SkyPilot's ``storage_utils.get_excluded_files``: the ``.skyignore`` listing when the
    directory has one, else the ``.gitignore`` one; ValueError for a missing directory or
    a file, with SkyPilot's messages."""
    path = os.path.expanduser(src_dir_path)
    if not os.path.exists(path):
        raise ValueError(f"{src_dir_path} does not exist.")
    if os.path.isfile(path):
        raise ValueError(f"{src_dir_path} is a file, not a directory.")
    if uses_skyignore(path):
        return get_excluded_files_from_skyignore(src_dir_path)
    return get_excluded_files_from_gitignore(src_dir_path)


def uses_skyignore(src_dir_path: str) -> bool:
    """SkyPilot's choice in ``get_excluded_files``: the directory's ``.skyignore`` when it
    has one (of any type, even unreadable), else git's rules."""
    path = os.path.expanduser(src_dir_path)
    return os.path.exists(os.path.join(path, _skyignore.SKY_IGNORE_FILE))
