"""File names on a terminal: quoted as GNU ``ls`` quotes them, never raw escape sequences.

The oracle is coreutils 9.1's ``ls``: ``--quoting-style=shell-escape`` for the quoting
function, and plain ``ls`` on a pseudo-terminal (whose default style that is) for what the
subcommands print there. Off a terminal names stay byte-exact, as GNU writes them.
"""

from __future__ import annotations

import hashlib
import locale
import os
import pty
import select
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import sky_async
from conftest import BACKENDS, clean_env, require_native
from hypothesis import given, settings
from hypothesis import strategies as st
from sky_async.cli._names import quotef, shell_quote

pytestmark = pytest.mark.skipif(
    subprocess.run(["ls", "--version"], capture_output=True).stdout[:22] != b"ls (GNU coreutils) 9.1",
    reason="the oracle is GNU coreutils 9.1's ls",
)

PACKAGE_ROOT = str(Path(sky_async.__file__).resolve().parent.parent)
# A name that clears the screen, then one that forges a report line.
CLEAR = b"a\x1b[2J"
FORGED = b"b\nverdict: ready (no problems found)"
LOCALE = "C.UTF-8"


def child_env(**overrides: str) -> dict[str, str]:
    return clean_env(PYTHONPATH=PACKAGE_ROOT, LC_ALL=LOCALE, **overrides)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "native":
        require_native()
    return request.param


def on_terminal(argv: list[str | bytes], cwd: Path, env: dict[str, str]) -> bytes:
    """What *argv* writes to stdout when stdout is a pseudo-terminal (newlines as written)."""
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.DEVNULL
        )
    finally:
        os.close(follower)
    seen = b""
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO once the child has closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        process.wait(timeout=60)
    finally:
        os.close(leader)
        if process.poll() is None:
            process.kill()
            process.wait()
    return seen.replace(b"\r\n", b"\n")  # the terminal's ONLCR


def ls_on_terminal(root: Path, name: bytes) -> bytes:
    return on_terminal(["ls", "-1d", "--", name], root, child_env()).rstrip(b"\n")


def sky_async_command(*args: str | bytes) -> list[str | bytes]:
    return [sys.executable, "-m", "sky_async", *args]


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    for name in (CLEAR, FORGED):
        with open(os.path.join(os.fsencode(tmp_path), name), "wb") as file:
            file.write(b"x\n")
    return tmp_path


# --- the quoting function against ls ---------------------------------------------------------

_QUOTED_BYTES = st.one_of(
    st.sampled_from(
        [b"'", b"\\", b"\n", b"\r", b"\t", b"\x1b", b"\x7f", b"\xff", b"\xc3\xa9", b"\xe2\x80\xae"]
    ),
    st.sampled_from([b" ", b"#", b"~", b"{", b"}", b"!", b"$", b"?", b"*", b"=", b":", b'"', b"a", b"-"]),
    st.binary(min_size=1, max_size=3),
)
QUOTED_NAMES = st.lists(
    st.lists(_QUOTED_BYTES, min_size=1, max_size=6)
    .map(b"".join)
    .filter(lambda name: b"/" not in name and b"\0" not in name and name not in (b".", b"..")),
    min_size=1,
    max_size=20,
    unique=True,
)


@settings(max_examples=40, deadline=None)
@given(names=QUOTED_NAMES)
def test_names_are_quoted_as_ls_quotes_them(names: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as root:
        for name in names:
            open(os.path.join(os.fsencode(root), name), "wb").close()
        # The locale this process classifies characters in, for ls as well.
        env = dict(os.environ, LC_ALL=locale.setlocale(locale.LC_CTYPE))
        listed = subprocess.run(
            ["ls", "-1dU", "--quoting-style=shell-escape", "--", *names],
            cwd=root,
            env=env,
            capture_output=True,
            check=True,
        ).stdout
    assert [shell_quote(name) for name in names] == listed.splitlines()


def test_messages_quote_a_colon_as_coreutils_quotef_does() -> None:
    assert (quotef("a:b"), quotef("ab"), quotef(b"\xff:")) == ("'a:b'", "ab", "''$'\\377'':'")


# --- each subcommand on a terminal and off it ------------------------------------------------


def test_hash_on_a_terminal_quotes_names_as_ls_does(hostile: Path, backend: str) -> None:
    shown = on_terminal(sky_async_command("hash", CLEAR), hostile, child_env(SKY_ASYNC_BACKEND=backend))
    digest = hashlib.sha256(b"x\n").hexdigest().encode()
    assert shown == digest + b"  " + ls_on_terminal(hostile, CLEAR) + b"\n"
    assert b"\x1b" not in shown
    # A name GNU already escapes safely keeps sha256sum's form on a terminal too.
    shown = on_terminal(sky_async_command("hash", FORGED), hostile, child_env(SKY_ASYNC_BACKEND=backend))
    assert shown == b"\\" + digest + b"  " + FORGED.replace(b"\n", b"\\n") + b"\n"


def test_hash_off_a_terminal_writes_names_as_sha256sum_does(hostile: Path, backend: str) -> None:
    ours = subprocess.run(
        sky_async_command("hash", CLEAR, FORGED),
        cwd=hostile,
        env=child_env(SKY_ASYNC_BACKEND=backend),
        capture_output=True,
    )
    assert (
        ours.stdout == subprocess.run(["sha256sum", CLEAR, FORGED], cwd=hostile, capture_output=True).stdout
    )


def test_check_on_a_terminal_quotes_names_as_ls_does(hostile: Path, backend: str) -> None:
    (hostile / "m").write_bytes(
        subprocess.run(["sha256sum", CLEAR, FORGED], cwd=hostile, capture_output=True).stdout
    )
    shown = on_terminal(sky_async_command("hash", "-c", "m"), hostile, child_env(SKY_ASYNC_BACKEND=backend))
    assert shown == ls_on_terminal(hostile, CLEAR) + b": OK\n\\" + FORGED.replace(b"\n", b"\\n") + b": OK\n"


def test_tail_headers_on_a_terminal_quote_names_as_ls_does(hostile: Path, backend: str) -> None:
    shown = on_terminal(sky_async_command("tail", "-v", CLEAR), hostile, child_env(SKY_ASYNC_BACKEND=backend))
    assert shown == b"==> " + ls_on_terminal(hostile, CLEAR) + b" <==\nx\n"


def test_tail_headers_off_a_terminal_are_what_gnu_tail_writes(hostile: Path, backend: str) -> None:
    ours = subprocess.run(
        sky_async_command("tail", CLEAR, FORGED),
        cwd=hostile,
        env=child_env(SKY_ASYNC_BACKEND=backend),
        capture_output=True,
    )
    assert ours.stdout == subprocess.run(["tail", CLEAR, FORGED], cwd=hostile, capture_output=True).stdout


def test_preflight_report_on_a_terminal_cannot_drive_it_or_forge_lines(hostile: Path, backend: str) -> None:
    shown = on_terminal(sky_async_command("preflight", "."), hostile, child_env(SKY_ASYNC_BACKEND=backend))
    assert b"\x1b" not in shown
    assert [line for line in shown.splitlines() if line.startswith(b"verdict:")] == [
        b"verdict: ready (no problems found)"
    ]
    for name in (CLEAR, FORGED):  # in the largest files
        assert b"  " + ls_on_terminal(hostile, b"./" + name) + b"\n" in shown
