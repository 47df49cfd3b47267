"""Running out of file descriptors in the pure-Python backend, by the native engines' rule.

As ``src/core/fd_budget.hpp`` says: every close of a descriptor this backend opened is counted;
an open refused with EMFILE/ENFILE is tried again at once when one of ours was closed since
it was tried, and otherwise waits for the next close (trying again every few milliseconds
meanwhile: a file closed elsewhere is not counted). The refusals of one shortage share one
deadline, SHORTAGE_GRACE without any close of ours: then every open refused in it fails,
the first after waiting and the ones after it at once, until a close of ours (or a pause in
the refusals) starts a new shortage. So with no descriptor free a batch fails each file
within about the grace in all, not per file.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from typing import Callable

SHORTAGE_GRACE = 2.0
RETRY_POLL = 0.010
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE)


class _State:
    def __init__(self) -> None:
        self.changed = threading.Condition(threading.Lock())
        self.releases = 0  # descriptors of ours closed so far
        self.shortage_releases = -1  # `releases` when the current shortage began
        self.shortage_began = 0.0
        self.last_refusal = 0.0


_state = _State()


def _fresh_state_in_child() -> None:
    # The parent's condition may be held by a thread that does not exist in the child.
    global _state
    _state = _State()


os.register_at_fork(after_in_child=_fresh_state_in_child)


def close(fd: int) -> None:
    """os.close of a descriptor this backend opened: it may let a waiting open through."""
    os.close(fd)
    state = _state
    with state.changed:
        state.releases += 1
        state.changed.notify_all()


def _retry_at(state: _State, seen: int) -> float | None:
    """When to try a refused open again (None: give up), with the condition held."""
    now = time.monotonic()
    if state.releases != seen:
        return now  # one of ours closed since the attempt
    if state.releases != state.shortage_releases or now - state.last_refusal > SHORTAGE_GRACE:
        state.shortage_releases = state.releases
        state.shortage_began = now
    state.last_refusal = now
    deadline = state.shortage_began + SHORTAGE_GRACE
    if now >= deadline:
        return None
    backoff = min(max((now - state.shortage_began) / 8, 0.001), RETRY_POLL)
    return min(now + backoff, deadline)


def open_file(path: bytes, flags: int, stopping: Callable[[], bool]) -> int | None:
    """os.open, waiting through a shortage of descriptors as above; None once stopping()."""
    while True:
        state = _state
        seen = state.releases
        try:
            return os.open(path, flags)
        except OSError as exc:
            if exc.errno not in _OUT_OF_DESCRIPTORS:
                raise
            with state.changed:
                retry_at = _retry_at(state, seen)
                if retry_at is None:
                    raise
                if stopping():
                    return None
                timeout = retry_at - time.monotonic()
                if state.releases == seen and timeout > 0:
                    # A close notifies; a wakeup without one only tries again early.
                    state.changed.wait(timeout)
