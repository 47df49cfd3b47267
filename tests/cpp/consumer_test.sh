#!/usr/bin/env bash
# sky-async as a consumer meets it, each way checked by building examples/cpp/hash_files
# and comparing its output with sha256sum's (then its report of a missing file):
#   1. this build (static) installed to a prefix: find_package(sky_async) and
#      `pkg-config --static`;
#   2. a shared library (BUILD_SHARED_LIBS=ON) built inside a consumer project with
#      add_subdirectory, where the tests must not be built by default; then installed, and
#      found again with find_package and with pkg-config; its SONAME, its NEEDED entry in
#      the program, and that it exports sky_async's symbols only;
#   3. a top-level configure without GoogleTest: the tests are skipped, with a message;
#   4. one without OpenSSL and Boost: an error naming both packages and the pure-Python way.
#
#   consumer_test.sh CMAKE BUILD_DIR SOURCE_DIR [CXX_COMPILER]
set -euo pipefail

cmake=$1
build_dir=$2
source_dir=$3
cxx=${4:-c++}

work=$(mktemp -d "${TMPDIR:-/tmp}/sky-async-consumer-XXXXXX")
trap 'rm -rf "$work"' EXIT

# Runs a step quietly, showing its output only when it fails.
step() {
  if ! "$@" >"$work/log" 2>&1; then
    echo "FAILED: $*" >&2
    cat "$work/log" >&2
    exit 1
  fi
}
fail() {
  echo "FAILED: $*" >&2
  exit 1
}

generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi
configure=("$cmake" "${generator[@]}" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release)

# Two files, one of them empty and one larger than a read, given in the order b, a.
head -c 300000 /dev/urandom >"$work/a file"
: >"$work/b"

check_program() {
  local program=$1 how=$2
  (
    cd "$work"
    "$program" b "a file" >actual
    sha256sum b "a file" >expected
    diff -u expected actual || fail "$how: wrong digests"
    # A failure: reported on stderr, the other file still printed, exit status 1.
    local status=0
    "$program" b missing >actual 2>errors || status=$?
    [ "$status" -eq 1 ] || fail "$how: exit status $status, want 1"
    sha256sum b >expected
    diff -u expected actual || fail "$how: wrong digests with a missing file"
    grep -qx 'hash_files: missing: No such file or directory' errors ||
      { cat errors >&2; fail "$how: unexpected stderr"; }
  )
  echo "ok: $how"
}

# The .pc file's directory under an installed prefix (lib/ or lib/<multiarch>/).
pc_dir() {
  dirname "$(find "$1" -name sky_async.pc | head -n 1)"
}

pkg_config_build() {
  local prefix=$1 output=$2
  shift 2
  # shellcheck disable=SC2046  # pkg-config's output is a list of flags
  step "$cxx" -std=c++20 -O1 -o "$output" "$source_dir/examples/cpp/hash_files.cpp" \
    $(PKG_CONFIG_PATH=$(pc_dir "$prefix") pkg-config "$@" --cflags --libs sky_async)
}

# 1. This build, static, installed.
step "$cmake" --install "$build_dir" --prefix "$work/static"
step "${configure[@]}" -S "$source_dir/examples/cpp" -B "$work/static-find" -DCMAKE_PREFIX_PATH="$work/static"
step "$cmake" --build "$work/static-find"
check_program "$work/static-find/hash_files" "static, find_package"
pkg_config_build "$work/static" "$work/static-pc" --static
check_program "$work/static-pc" "static, pkg-config --static"

# 2. Shared, as a subdirectory of a consumer, then installed.
step "${configure[@]}" -S "$source_dir/tests/cpp/consumer" -B "$work/sub" -DSKY_ASYNC_SOURCE_DIR="$source_dir" \
  -DBUILD_SHARED_LIBS=ON -DSKY_ASYNC_INSTALL=ON
grep -q '^SKY_ASYNC_BUILD_TESTS:BOOL=OFF$' "$work/sub/CMakeCache.txt" ||
  fail "subdirectory: the tests are built by default"
step "$cmake" --build "$work/sub"
check_program "$work/sub/hash_files" "shared, add_subdirectory"
library=$(find "$work/sub" -name 'libsky_async.so.*.*.*' | head -n 1)
[ -n "$library" ] || fail "shared: no versioned libsky_async.so.X.Y.Z"
soname=$(readelf -d "$library" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname =~ ^libsky_async\.so\.[0-9]+\.[0-9]+$ ]] || fail "shared: SONAME is '$soname'"
readelf -d "$work/sub/hash_files" | grep -q "(NEEDED).*\[$soname\]" || fail "shared: the program does not need $soname"
# Exported: the API; not exported: what the library only uses inside.
exports=$(nm -D --defined-only -C "$library")
grep -q 'sky_async::runtime::global()' <<<"$exports" || fail "shared: sky_async::runtime::global() is not exported"
if grep -E ' (boost|std|io_uring)' <<<"$exports" | grep -v 'sky_async' | head -n 3 | grep -q .; then
  grep -E ' (boost|std|io_uring)' <<<"$exports" | grep -v 'sky_async' | head -n 5 >&2
  fail "shared: symbols other than sky_async's are exported"
fi
step "$cmake" --install "$work/sub" --prefix "$work/shared"
step "${configure[@]}" -S "$source_dir/examples/cpp" -B "$work/shared-find" -DCMAKE_PREFIX_PATH="$work/shared"
step "$cmake" --build "$work/shared-find"
check_program "$work/shared-find/hash_files" "shared, installed, find_package"
libdir=$(dirname "$(find "$work/shared" -name "$soname" | head -n 1)")
pkg_config_build "$work/shared" "$work/shared-pc"
LD_LIBRARY_PATH=$libdir check_program "$work/shared-pc" "shared, installed, pkg-config"

# 3. No GoogleTest at the top level: no tests, and a message that says why.
step "${configure[@]}" -S "$source_dir" -B "$work/no-gtest" -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON
grep -q "GoogleTest not found, so the tests are not built" "$work/log" || fail "no GoogleTest: no message"
grep -q '^SKY_ASYNC_BUILD_TESTS:BOOL=OFF$' "$work/no-gtest/CMakeCache.txt" || fail "no GoogleTest: tests still on"
echo "ok: without GoogleTest, tests off with a message"

# 4. Missing dependencies: one error that names them with their Debian packages, and (under
#    pip, where scikit-build-core sets SKBUILD) the way to the pure-Python backend.
if "${configure[@]}" -S "$source_dir" -B "$work/no-deps" -DSKBUILD=ON -DSKY_ASYNC_BUILD_TESTS=OFF \
  -DCMAKE_DISABLE_FIND_PACKAGE_OpenSSL=ON -DCMAKE_DISABLE_FIND_PACKAGE_Boost=ON >"$work/log" 2>&1; then
  fail "missing dependencies: the configure succeeded"
fi
for wanted in "libssl-dev" "libboost1.81-dev" "SKY_ASYNC_BUILD_NATIVE=0 pip install sky-async"; do
  grep -q -- "$wanted" "$work/log" || { cat "$work/log" >&2; fail "missing dependencies: no mention of $wanted"; }
done
echo "ok: missing dependencies named, with the pure-Python way out"

echo "consumers OK"
