"""Both backends implement the whole Backend protocol of sky_async._api, with its parameter names,
and each feature's part of it in that feature's folder (``_<feature>/native.py`` and
``_<feature>/python.py`` beside the protocol in ``_<feature>/api.py``)."""

from __future__ import annotations

import inspect
from typing import Any, Protocol

import pytest
from conftest import BACKENDS, require_native
from sky_async._api import Backend


def own_functions(cls: type[Any]) -> set[str]:
    """The public functions (and static methods) *cls* itself defines."""
    return {
        name
        for name, member in vars(cls).items()
        if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, staticmethod))
    }


def package_functions(cls: type[Any]) -> set[str]:
    """The public functions *cls* defines or inherits from the package's classes."""
    return {
        name
        for base in cls.__mro__
        if base.__module__.startswith("sky_async")
        for name in own_functions(base)
    }


PROTOCOL_METHODS = sorted(package_functions(Backend))
# One protocol per feature, in its folder: _<feature>/api.py.
FEATURE_PROTOCOLS = [base for base in Backend.__bases__ if base is not Protocol]


def backend_class(name: str) -> type[Any]:
    if name == "native":
        require_native()
        from sky_async._native_backend import NativeBackend

        return NativeBackend
    from sky_async._python_backend import PythonBackend

    return PythonBackend


def parameter_names(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


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
    assert package_functions(backend_class(backend)) == set(PROTOCOL_METHODS)


def test_each_feature_protocol_lives_in_its_feature_folder() -> None:
    folders = [protocol.__module__ for protocol in FEATURE_PROTOCOLS]
    assert folders == [
        f"sky_async._{feature}.api" for feature in ("hash", "tail", "process", "scan", "system", "mounts")
    ]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("protocol", FEATURE_PROTOCOLS, ids=lambda protocol: protocol.__name__)
def test_each_feature_adapter_sits_beside_its_protocol_and_implements_exactly_it(
    backend: str, protocol: type[Any]
) -> None:
    feature = protocol.__name__.removesuffix("Backend")
    prefix, module = ("Native", "native") if backend == "native" else ("Python", "python")
    adapters = [base for base in backend_class(backend).__bases__ if base.__name__ == prefix + feature]
    assert len(adapters) == 1, f"{backend} backend has no {prefix}{feature}"
    (adapter,) = adapters
    assert adapter.__module__ == protocol.__module__.replace(".api", f".{module}")
    assert own_functions(adapter) == own_functions(protocol)


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
