# Sourced by the other scripts (from the repository's root): puts the project's virtual
# environment, .venv/ (made by scripts/setup), first in PATH, so that `python3`, `pip`,
# `ruff`, `clang-format` and `sky-async` are the ones installed there. A virtual
# environment because Debian's own python3 refuses `pip install` outside one (PEP 668),
# and so that nothing is installed into the system's Python.
if [ ! -x .venv/bin/python3 ]; then
  echo "$(basename "$0"): no virtual environment in $PWD/.venv: run 'bash scripts/setup' first" >&2
  exit 1
fi
export VIRTUAL_ENV=$PWD/.venv
export PATH=$VIRTUAL_ENV/bin:$PATH
unset PYTHONHOME
hash -r
