"""The public names of sky_async and sky_async.sync, written out: a change to them shows here.

Both modules are built from the table in ``sky_async._public``; this checks the result.
"""

from __future__ import annotations

import ast
import inspect
import types
from pathlib import Path
from typing import Any

import sky_async
from sky_async import _public, sync

PACKAGE_NAMES = [
    "FileMountsError",
    "Follow",
    "PackResult",
    "SUPPORTED_ALGORITHMS",
    "ScanProblem",
    "TreeScan",
    "__version__",
    "base36_encode",
    "estimate_fd_for_directory",
    "file_mounts_digest",
    "find_free_port",
    "follow",
    "format_float",
    "get_backend_info",
    "get_cpu_count",
    "get_max_workers_for_file_mounts",
    "get_mem_size_gb",
    "get_parallel_threads",
    "hash_file",
    "hash_files",
    "is_process_alive",
    "pack_mounts",
    "probe_processes",
    "process_start_time",
    "read_last_n_lines",
    "scan",
    "scan_tree",
    "stream_log",
    "sync",
    "tail_files",
    "truncate_long_string",
    "wait_for_exit",
]

SYNC_NAMES = [
    "estimate_fd_for_directory",
    "file_mounts_digest",
    "find_free_port",
    "follow",
    "get_cpu_count",
    "get_max_workers_for_file_mounts",
    "get_mem_size_gb",
    "get_parallel_threads",
    "hash_file",
    "hash_files",
    "is_process_alive",
    "pack_mounts",
    "probe_processes",
    "process_start_time",
    "read_last_n_lines",
    "scan_tree",
    "stream_log",
    "tail_files",
    "wait_for_exit",
]


def is_async(obj: object) -> bool:
    return inspect.iscoroutinefunction(obj) or inspect.isasyncgenfunction(obj)


def test_the_package_exports_exactly_these_names() -> None:
    assert sorted(sky_async.__all__) == PACKAGE_NAMES
    assert len(set(sky_async.__all__)) == len(sky_async.__all__)
    for name in PACKAGE_NAMES:
        assert hasattr(sky_async, name), name


def test_sync_exports_exactly_these_names() -> None:
    assert sorted(sync.__all__) == SYNC_NAMES
    assert len(set(sync.__all__)) == len(sync.__all__)
    for name in SYNC_NAMES:
        assert hasattr(sync, name), name


def test_every_async_function_has_its_blocking_twin_in_sync() -> None:
    async_names = [name for name in sky_async.__all__ if is_async(getattr(sky_async, name))]
    assert async_names  # the check below must have something to check
    for name in async_names:
        assert name in sync.__all__, f"sky_async.{name} has no blocking twin in sky_async.sync"
        twin = getattr(sync, name)
        assert callable(twin) and not is_async(twin), f"sync.{name} is not blocking"
        assert list(inspect.signature(twin).parameters) == list(
            inspect.signature(getattr(sky_async, name)).parameters
        ), name


def test_sync_has_nothing_that_is_not_in_the_package() -> None:
    assert set(sync.__all__) <= set(sky_async.__all__)
    for name in sync.__all__:
        assert not is_async(getattr(sync, name)), name


def test_each_kind_in_the_table_matches_its_object() -> None:
    for row in _public.PUBLIC:
        obj = getattr(sky_async, row.name)
        if row.kind == _public.COROUTINE:
            assert inspect.iscoroutinefunction(obj), row.name
        elif row.kind == _public.ASYNC_ITERATOR:
            assert callable(obj) and not inspect.iscoroutinefunction(obj), row.name
            assert row.in_sync, row.name
        elif row.kind == _public.FUNCTION:
            assert callable(obj) and not is_async(obj), row.name
        elif row.kind == _public.MODULE:
            assert isinstance(obj, types.ModuleType), row.name
        else:
            assert row.kind == _public.VALUE, row.name
            assert not row.in_sync, row.name
        if row.kind == _public.COROUTINE:
            assert row.in_sync, f"{row.name}: a coroutine needs its blocking twin in sync"


def _bound_when_type_checking(module: Any) -> set[str]:
    """The names the module's ``if TYPE_CHECKING:`` block binds (assignments and imports)."""
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.Assign):
                    names.update(target.id for target in statement.targets if isinstance(target, ast.Name))
                elif isinstance(statement, ast.ImportFrom):
                    names.update(alias.asname or alias.name for alias in statement.names)
    return {name for name in names if not name.startswith("_") or name == "__version__"}


def test_what_type_checkers_see_is_the_table() -> None:
    # globals().update() is invisible to mypy and IDEs; the written-out bindings must
    # name exactly the table's rows (the public submodules are imported as modules).
    modules = {row.name for row in _public.PUBLIC if row.kind == _public.MODULE}
    assert _bound_when_type_checking(sky_async) == set(_public.package_all()) - modules
    assert _bound_when_type_checking(sky_async.sync) == set(_public.sync_all())
