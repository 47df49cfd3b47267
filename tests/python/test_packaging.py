"""The package as pip builds it without the native module: SKY_ASYNC_BUILD_NATIVE=0 gives a
pure-Python wheel (no compiler or -dev packages needed) that installs into a fresh virtual
environment, which cannot see this tree or the installed package, and runs there on the
pure-Python backend."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def run(*argv: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600, **kwargs)  # type: ignore[call-overload, no-any-return]


def test_pure_python_wheel_installs_and_runs_on_the_python_backend(tmp_path: Path) -> None:
    env = dict(os.environ, SKY_ASYNC_BUILD_NATIVE="0")
    wheel_command = [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps"]
    built = run(*wheel_command, "-w", tmp_path / "dist", ROOT, env=env)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "sky_async/__init__.py" in names
    assert not [name for name in names if name.endswith(".so")], names

    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", venv).returncode == 0
    python = venv / "bin" / "python"
    installed = run(python, "-m", "pip", "install", "-q", "--no-index", "--no-deps", wheel)
    assert installed.returncode == 0, installed.stderr
    sample = tmp_path / "sample"
    sample.write_bytes(b"sky-async\n" * 1000)
    script = (
        "import sys, sky_async\n"
        "info = sky_async.get_backend_info()\n"
        "print(info['backend'])\n"
        "print(sky_async.sync.hash_files([sys.argv[1]])[0])\n"
        "print(sky_async.__file__)\n"
    )
    # Outside the tree, with nothing of ours on the path: only the wheel's files can load.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "SKY_ASYNC"))}
    ran = run(python, "-c", script, sample, cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr
    backend, digest, location = ran.stdout.split()
    assert backend == "python"
    assert digest == hashlib.sha256(sample.read_bytes()).hexdigest()
    assert Path(location).is_relative_to(venv)
    # The one warning says why, and what would give the native module.
    assert ran.stderr.count("RuntimeWarning") == 1, ran.stderr
    assert "this installation has no native module" in ran.stderr
    assert "SKY_ASYNC_BUILD_NATIVE=0" in ran.stderr


# Loading the native module fails as the dynamic loader makes it fail; sky_async then
# warns once, naming what is missing, and runs on the pure-Python backend.
FAILING_NATIVE = """
import sys, warnings
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name == "sky_async._native":
            raise ImportError(sys.argv[1])
sys.meta_path.insert(0, Refuse())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import sky_async
print(sky_async.get_backend_info()["backend"])
for warning in caught:
    print(warning.category.__name__, warning.message)
"""


@pytest.mark.parametrize(
    ("loader_error", "expected"),
    [
        (
            "liburing.so.2: cannot open shared object file: No such file or directory",
            "the shared library liburing.so.2 it needs is not installed (Debian's package liburing2)",
        ),
        (
            "libcrypto.so.3: cannot open shared object file: No such file or directory",
            "the shared library libcrypto.so.3 it needs is not installed (Debian's package libssl3)",
        ),
        (
            "libfoo.so.1: cannot open shared object file: No such file or directory",
            "the shared library libfoo.so.1 it needs is not installed: libfoo.so.1",
        ),
        (
            "/lib/x86_64-linux-gnu/libstdc++.so.6: version `GLIBCXX_3.4.32' not found",
            "the system's C or C++ runtime is older than the one it was built with",
        ),
    ],
)
def test_the_fallback_warning_names_what_is_missing(loader_error: str, expected: str) -> None:
    env = {key: value for key, value in os.environ.items() if key != "SKY_ASYNC_BACKEND"}
    ran = run(sys.executable, "-c", FAILING_NATIVE, loader_error, env=env)
    assert ran.returncode == 0, ran.stderr
    backend, *warnings = ran.stdout.splitlines()
    assert backend == "python"
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("RuntimeWarning sky_async: the native module could not be loaded ("), (
        warnings
    )
    assert expected in warnings[0]
    assert warnings[0].endswith("; using the pure-Python backend")


# What a manylinux wheel may leave to the system (the manylinux policy's libraries that
# the module can need); everything else must come from the wheel's sky_async.libs.
SYSTEM_LIBRARIES = {"libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1", "libpthread.so.0"}

WHEEL_SCRIPT = """
import sys, sky_async
info = sky_async.get_backend_info()
print(info["backend"], info["io_backend"])
print(sky_async.sync.hash_files([sys.argv[1]])[0])
print(sky_async._native.__file__)
"""


def test_the_manylinux_wheel_is_self_contained_and_runs_natively(tmp_path: Path) -> None:
    wheels = sorted((ROOT / "dist").glob("sky_async-*-manylinux_*.whl"))
    if not wheels:
        pytest.skip("no manylinux wheel in dist/: scripts/wheel builds one (scripts/setup runs it)")
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", venv).returncode == 0
    python = venv / "bin" / "python"
    installed = run(python, "-m", "pip", "install", "-q", "--no-index", "--no-deps", wheels[-1])
    assert installed.returncode == 0, installed.stderr
    sample = tmp_path / "sample"
    sample.write_bytes(b"sky-async\n" * 1000)
    clean = {
        key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "SKY_ASYNC", "LD_"))
    }
    native = None
    for io_backend in ("io_uring", "threads"):
        env = dict(clean, SKY_ASYNC_IO_BACKEND=io_backend)
        ran = run(python, "-W", "error", "-c", WHEEL_SCRIPT, sample, cwd=tmp_path, env=env)
        assert ran.returncode == 0, ran.stderr
        backends, digest, native = ran.stdout.splitlines()
        assert backends == f"native {io_backend}"
        assert digest == hashlib.sha256(sample.read_bytes()).hexdigest()
        assert Path(native).is_relative_to(venv)
    # The dynamic loader finds libcrypto and liburing in the wheel, not in the system.
    assert native is not None
    linked = run("ldd", native)
    assert linked.returncode == 0, linked.stderr
    bundled = venv.glob("lib/python*/site-packages/sky_async.libs")
    (libs,) = list(bundled)
    needed = {}
    for line in linked.stdout.splitlines():
        name, _, target = line.strip().partition(" => ")
        if target:
            needed[name] = target.split(" (")[0]
    outside = {
        name: target
        for name, target in needed.items()
        if name not in SYSTEM_LIBRARIES and not Path(target).resolve().is_relative_to(libs.resolve())
    }
    assert not outside, linked.stdout
    assert any(name.startswith("libcrypto-") for name in needed), linked.stdout
    assert any(name.startswith("liburing-") for name in needed), linked.stdout
