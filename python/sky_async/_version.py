import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def _source_tree_version() -> str:
    """The version in a source checkout (PYTHONPATH=python), where no distribution is
    installed: read from where the build reads it, include/sky_async/version.hpp, with a
    local label saying it is not an installed release."""
    header = Path(__file__).resolve().parents[2] / "include" / "sky_async" / "version.hpp"
    try:
        found = re.search(r'version = "([0-9.]+)"', header.read_text(encoding="utf-8"))
    except OSError:
        found = None
    return f"{found.group(1)}+source" if found else "0.0.0+unknown"


try:
    __version__ = version("sky-async")
except PackageNotFoundError:  # running from a source tree
    __version__ = _source_tree_version()
