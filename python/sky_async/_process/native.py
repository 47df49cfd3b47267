"""The process probes and exit waits on the native backend: the C++ engine through ``_native``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import _native
from .._bridge import call


class NativeProcess:
    def is_process_alive(self, pid: int) -> bool:
        return _native.is_process_alive(pid)

    def process_start_time(self, pid: int) -> int | None:
        return _native.process_start_time(pid)

    async def probe_processes(self, pids: Sequence[Any], start_times: list[int | None] | None) -> list[bool]:
        alive: list[bool] = await call(_native.probe_processes, pids, start_times)
        return alive

    def probe_processes_blocking(
        self, pids: Sequence[Any], start_times: list[int | None] | None
    ) -> list[bool]:
        return _native.probe_processes_blocking(pids, start_times)

    async def wait_for_exit(self, pid: int, timeout: float | None) -> bool:
        exited: bool = await call(_native.wait_for_exit, pid, timeout)
        return exited

    def wait_for_exit_blocking(self, pid: int, timeout: float | None) -> bool:
        return _native.wait_for_exit_blocking(pid, timeout)
