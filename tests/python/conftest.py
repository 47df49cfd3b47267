"""Fixtures shared by the suite: every test that takes ``api`` runs against both backends.

The native backend is not optional: if its module cannot be imported, every native
test fails with the import error, unless ``SKY_ASYNC_TEST_ALLOW_NO_NATIVE=1`` is set
(for working on the Python side before the extension is built), which skips them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Awaitable, Iterator
from importlib.metadata import version
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import pytest

with warnings.catch_warnings():
    # Without the native module the package warns on import that it falls back to the
    # Python backend; the native fixture below reports that failure itself.
    warnings.filterwarnings("ignore", "sky_async: the native module could not be loaded", RuntimeWarning)
    import sky_async  # noqa: F401

from sky_async._api import Api
from sky_async._python_backend import PythonBackend

try:
    from sky_async._native_backend import NativeBackend
except ImportError as exc:  # reported by the fixture, not here
    NativeBackend = None  # type: ignore[assignment,misc]
    NATIVE_IMPORT_ERROR: ImportError | None = exc
else:
    NATIVE_IMPORT_ERROR = None

ALLOW_NO_NATIVE = os.environ.get("SKY_ASYNC_TEST_ALLOW_NO_NATIVE") == "1"
BACKENDS = ("native", "python")
KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
# Sizes around the chunk boundaries of both backends (128 KiB and 256 KiB), and some MiB.
SIZES = (0, 1, 128 * KiB - 1, 128 * KiB, 128 * KiB + 1, 256 * KiB - 1, 256 * KiB, 256 * KiB + 1, 5 * MiB + 3)


def require_native() -> None:
    """Fail (or, when allowed, skip) a test that needs the native module when it is missing."""
    if NATIVE_IMPORT_ERROR is None:
        return
    message = f"the native module sky_async._native could not be imported: {NATIVE_IMPORT_ERROR!r}"
    if ALLOW_NO_NATIVE:
        pytest.skip(f"{message} (allowed by SKY_ASYNC_TEST_ALLOW_NO_NATIVE=1)")
    pytest.fail(f"{message}; set SKY_ASYNC_TEST_ALLOW_NO_NATIVE=1 to skip the native tests", pytrace=False)


_backends: dict[str, Any] = {}


def make_backend(name: str) -> Any:
    """One backend instance per name for the whole session (a backend registers fork hooks)."""
    if name == "native":
        require_native()
    backend = _backends.get(name)
    if backend is None:
        backend = NativeBackend() if name == "native" else PythonBackend()
        _backends[name] = backend
    return backend


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def api(backend_name: str) -> Api:
    return Api(make_backend(backend_name))


class Caller:
    """A public call through its coroutine (``async``) or through its blocking twin
    (``sync``): ``await call.hash_files(paths)`` or ``await call("hash_files", paths)``, so
    that one test covers both."""

    def __init__(self, api: Api, mode: str) -> None:
        self.api = api
        self.mode = mode

    async def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.mode == "sync":
            return getattr(self.api.sync, name)(*args, **kwargs)
        return await getattr(self.api, name)(*args, **kwargs)

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        if name.startswith("_"):
            raise AttributeError(name)

        async def bound(*args: Any, **kwargs: Any) -> Any:
            return await self(name, *args, **kwargs)

        return bound


@pytest.fixture(params=["async", "sync"])
def call(api: Api, request: pytest.FixtureRequest) -> Caller:
    return Caller(api, request.param)


# --- event loops ---------------------------------------------------------------------------------

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a test dependency
    uvloop = None  # type: ignore[assignment]


def loop_factories() -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
    if uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    return factories


def _has_loop_factories_hook() -> bool:
    major, minor = (int(part) for part in version("pytest-asyncio").split(".")[:2])
    return (major, minor) >= (1, 4)


if _has_loop_factories_hook():
    # Every async test runs once on asyncio's loop and once on uvloop's.
    def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
        factories = loop_factories()
        if item.get_closest_marker("single_loop"):
            # A long stress case: the loop is not what it tests, so asyncio's alone.
            return {"asyncio": factories["asyncio"]}
        return factories


# --- files ---------------------------------------------------------------------------------------


def hashlib_digest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """The oracle: Python reading the file to EOF."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(MiB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_random(path: Path, size: int, seed: int) -> Path:
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


@pytest.fixture(scope="session")
def sized_files(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Random content of each size in SIZES."""
    root = tmp_path_factory.mktemp("sized")
    return {size: write_random(root / f"{size}.bin", size, seed=size) for size in SIZES}


@pytest.fixture(scope="session")
def huge_sparse_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 GiB of zeros (a hole on disk): seconds to hash, so a test can cancel it midway."""
    path = tmp_path_factory.mktemp("huge") / "huge.bin"
    with open(path, "wb") as file:
        file.truncate(4 * GiB)
    return path


def fds_open_on(paths: Any) -> list[str]:
    """The targets of this process's file descriptors that are among *paths* or below a dir in it."""
    targets = [os.path.realpath(path) for path in paths]
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # closed meanwhile (the listing's own fd, for one)
            continue
        if any(target == t or target.startswith(t + os.sep) for t in targets):
            found.append(target)
    return found


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


async def wait_until_open(path: os.PathLike[str] | str, timeout: float = 20.0) -> None:
    """Return once this process has *path* open (the hash is under way), or fail."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not fds_open_on([path]):
        if loop.time() > deadline:
            pytest.fail(f"{path} was never opened")
        await asyncio.sleep(0.002)


# --- subprocesses --------------------------------------------------------------------------------

# Builds ``api`` for the backend named by argv[1] in a child interpreter.
API_PRELUDE = textwrap.dedent(
    """
    import sys, warnings
    warnings.simplefilter("ignore", RuntimeWarning)
    from sky_async._api import Api
    if sys.argv[1] == "native":
        from sky_async._native_backend import NativeBackend as Backend
    else:
        from sky_async._python_backend import PythonBackend as Backend
    api = Api(Backend())
    """
)


def clean_env(**overrides: str) -> dict[str, str]:
    """This environment without any SKY_ASYNC_* setting, plus *overrides*."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SKY_ASYNC_")}
    env.update(overrides)
    return env


def run_python(
    code: str, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=clean_env() if env is None else env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def assert_closing_from_another_task_ends_its_wait(stream: Any, timeout: float) -> None:
    """For follow and stream_log: a task waits on *stream*, another task closes it. The
    waiting task must end at once (StopAsyncIteration), and its wait's cleanup must not
    unregister a reader that the loop registered meanwhile for the closed descriptor's
    number (a pipe opened right after the close likely reuses it)."""
    loop = asyncio.get_running_loop()
    waiting = asyncio.ensure_future(stream.__anext__())
    for _ in range(10):  # let it reach its wait
        await asyncio.sleep(0)
    assert not waiting.done()
    await stream.aclose()
    read_end, write_end = os.pipe()
    readable: asyncio.Future[None] = loop.create_future()
    loop.add_reader(read_end, lambda: readable.done() or readable.set_result(None))
    try:
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(waiting, timeout)
        os.write(write_end, b"x")
        await asyncio.wait_for(readable, timeout)
    finally:
        loop.remove_reader(read_end)
        os.close(read_end)
        os.close(write_end)


# Execs its arguments with SIGINT at its default disposition and unblocked. A child that a test
# interrupts must not inherit the runner's: a background job (`cmd &` in a script) starts with
# SIGINT ignored, an ignored signal stays ignored across exec, and a Python started so never
# raises KeyboardInterrupt.
_SIGINT_DEFAULT_EXEC = (
    "import os, signal, sys; "
    "signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT]); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)


@contextlib.contextmanager
def interruptible_child(argv: list[str], **popen_kwargs: Any) -> Iterator[subprocess.Popen[bytes]]:
    """``Popen(argv)`` with SIGINT at its default in the child, killed and reaped on every way out."""
    process = subprocess.Popen([sys.executable, "-c", _SIGINT_DEFAULT_EXEC, *argv], **popen_kwargs)
    with process:  # closes the pipes and waits
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()


def wait_child(pid: int, timeout: float = 60) -> int:
    """The exit code of the forked child *pid*; kills, reaps and fails the test if it hangs."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        time.sleep(0.01)


# --- SkyPilot, the specification -----------------------------------------------------------------

SKYPILOT_VERSION = "0.14.1"


def import_skypilot(*submodules: str) -> tuple[ModuleType, ...]:
    """``sky`` followed by ``sky.<name>`` for each of *submodules*, for the differential tests.

    Without SkyPilot installed the calling test module is skipped, except under scripts/test,
    which sets SKY_ASYNC_REQUIRE_SKYPILOT=1 so that CI cannot pass without comparing. SkyPilot
    and its dependencies warn on import (SQLAlchemy 2.1's MovedIn20Warning, for one), which
    pytest's filterwarnings=error would turn into a collection error; that is not what the
    suite checks, so those warnings are silenced.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if os.environ.get("SKY_ASYNC_REQUIRE_SKYPILOT") == "1":
            sky = importlib.import_module("sky")
        else:
            sky = pytest.importorskip(
                "sky", reason="skypilot is not installed (pip install -e '.[skypilot]')"
            )
        return (sky, *(importlib.import_module(f"sky.{name}") for name in submodules))
