# The compiled module's interface, for type checkers. Internal: use sky_async.
from typing import Any

__version__: str

class CompletionQueue:
    def __init__(self) -> None: ...
    def fileno(self) -> int: ...
    def drain(self) -> None: ...
    def close(self) -> None: ...

class Operation:
    def cancel(self, waiter: Any) -> None: ...

def hash_files(
    queue: CompletionQueue,
    paths: list[bytes],
    algorithm: str,
    concurrency: int,
    stop_on_error: bool,
    future: Any,
) -> Operation: ...
def hash_files_blocking(
    paths: list[bytes], algorithm: str, concurrency: int, stop_on_error: bool
) -> list[str | tuple[int, str | None] | None]: ...
def scan_tree(
    queue: CompletionQueue,
    root: bytes,
    follow_symlinks: bool,
    max_file_size: int,
    largest: int,
    collect_files: bool,
    max_problems: int,
    future: Any,
) -> Operation: ...
def scan_tree_blocking(
    root: bytes,
    follow_symlinks: bool,
    max_file_size: int,
    largest: int,
    collect_files: bool,
    max_problems: int,
) -> dict[str, Any] | tuple[int, str | None]: ...
def runtime_info() -> dict[str, Any]: ...
def build_info() -> dict[str, str]: ...
def shutdown() -> None: ...
