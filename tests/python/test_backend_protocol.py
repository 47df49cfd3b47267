"""Both backends implement the whole Backend protocol of sky_async._api, with its parameter names."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from conftest import BACKENDS, require_native
from sky_async._api import Backend

PROTOCOL_METHODS = sorted(
    name for name, member in vars(Backend).items() if inspect.isfunction(member) and not name.startswith("_")
)


def backend_class(name: str) -> type[Any]:
    if name == "native":
        require_native()
        from sky_async._native_backend import NativeBackend

        return NativeBackend
    from sky_async._python_backend import PythonBackend

    return PythonBackend


def parameter_names(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


# What a backend has beyond the protocol: the native backend's way to await a native call.
ADAPTER_ONLY = {"native": {"call"}, "python": set()}


def test_the_protocol_lists_every_feature_the_api_calls() -> None:
    assert set(PROTOCOL_METHODS) == {
        # hash
        "hash_files",
        "hash_files_blocking",
        # tail
        "tail_files",
        "tail_files_blocking",
        # process
        "is_process_alive",
        "process_start_time",
        "probe_processes",
        "probe_processes_blocking",
        "wait_for_exit",
        "wait_for_exit_blocking",
        # scan
        "scan_tree",
        "scan_tree_blocking",
        # system
        "get_cpu_count",
        "get_mem_size_gb",
        "get_parallel_threads",
        "base36_encode",
        "format_float",
        "truncate_long_string",
        "estimate_fd_for_directory",
        "estimate_fd_for_directory_blocking",
        "max_workers_for_file_mounts",
        "max_workers_for_file_mounts_blocking",
        "find_free_port",
        "find_free_port_blocking",
        # mounts
        "file_mounts_digest",
        "file_mounts_digest_blocking",
        # the backend itself
        "info",
    }
    assert "name" in Backend.__annotations__


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_operation_of_the_backend_is_in_the_protocol(backend: str) -> None:
    cls = backend_class(backend)
    public = {
        name
        for name, member in vars(cls).items()
        if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, staticmethod))
    }
    assert public - ADAPTER_ONLY[backend] == set(PROTOCOL_METHODS)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", PROTOCOL_METHODS)
def test_backend_implements_the_protocol_method(backend: str, method: str) -> None:
    cls = backend_class(backend)
    expected = getattr(Backend, method)
    implemented = inspect.getattr_static(cls, method, None)
    assert implemented is not None, f"{cls.__name__} lacks {method}"
    function = implemented.__func__ if isinstance(implemented, (staticmethod, classmethod)) else implemented
    assert inspect.iscoroutinefunction(function) == inspect.iscoroutinefunction(expected), method
    names = parameter_names(function)
    if not isinstance(implemented, staticmethod):
        names = names[1:]  # self
    assert names == parameter_names(expected)[1:], f"{cls.__name__}.{method}{inspect.signature(function)}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_has_a_name(backend: str) -> None:
    cls = backend_class(backend)
    assert cls.name == backend
