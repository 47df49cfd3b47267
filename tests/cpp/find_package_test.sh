#!/usr/bin/env bash
# Installs a built sky_async to a temporary prefix, builds examples/cpp against it
# with find_package(sky_async CONFIG), and checks the program's output against
# sha256sum on the same files, then its report of a missing file.
#
#   find_package_test.sh CMAKE BUILD_DIR EXAMPLE_SOURCE_DIR [CXX_COMPILER]
set -euo pipefail

cmake=$1
build_dir=$2
example_dir=$3
cxx=${4:-}

work=$(mktemp -d "${TMPDIR:-/tmp}/sky-async-find-package-XXXXXX")
trap 'rm -rf "$work"' EXIT

# Runs a step quietly, showing its output only when it fails.
step() {
  if ! "$@" >"$work/log" 2>&1; then
    echo "FAILED: $*" >&2
    cat "$work/log" >&2
    exit 1
  fi
}

step "$cmake" --install "$build_dir" --prefix "$work/prefix"

generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi
compiler=()
if [ -n "$cxx" ]; then compiler=(-DCMAKE_CXX_COMPILER="$cxx"); fi
step "$cmake" -S "$example_dir" -B "$work/build" "${generator[@]}" "${compiler[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix"
step "$cmake" --build "$work/build"

program=$work/build/hash_files

# Two files, one of them empty and one larger than a read, given in the order b, a.
head -c 300000 /dev/urandom >"$work/a file"
: >"$work/b"
cd "$work"
"$program" b "a file" >actual
sha256sum b "a file" >expected
diff -u expected actual

# A failure: reported on stderr, the other file still printed, exit status 1.
status=0
"$program" b missing >actual 2>errors || status=$?
[ "$status" -eq 1 ] || { echo "exit status $status, want 1" >&2; exit 1; }
sha256sum b >expected
diff -u expected actual
grep -qx 'hash_files: missing: No such file or directory' errors ||
  { echo "unexpected stderr:" >&2; cat errors >&2; exit 1; }

echo "find_package consumer OK"
