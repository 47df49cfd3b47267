"""The public API, written once over either backend.

A backend does the work on already-validated input (paths as bytes, a normalised
algorithm name) and reports each file as a hex digest, an ``(errno, message)``
pair, or ``None`` for a file it did not get to. Everything users see -- argument
checks, exception types, ordering, ``return_exceptions`` -- lives here, so both
backends behave the same by construction.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol, overload

from . import _batch, _pack, _process, _system, mounts
from . import scan as _scan
from ._checks import (
    StrOrBytesPath,
    as_path_list,
    check_concurrency,
    encode_path,
    encode_paths,
    require_int,
)
from ._errors import Item, make_os_error
from ._tail import TailItem, TailRequest, require_encoding

SUPPORTED_ALGORITHMS: tuple[str, ...] = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")


class Backend(Protocol):
    """What a backend implements: the work on validated input, nothing users see directly.

    Every method gets arguments already checked by Api/SyncApi (paths as bytes, normalised
    names, clamped counts) and reports per item a value, ``(errno, message or None)``, or
    None for an item it never got to; the Api maps those to results and exceptions. Each
    awaitable method has a ``_blocking`` twin for SyncApi. Cancelling an awaitable method
    must stop its work and return only once the files it opened are closed.
    ``tests/python/test_backend_protocol.py`` checks both backends against this.
    """

    name: str

    async def hash_files(
        self, paths: list[bytes], algorithm: str, concurrency: int, stop_on_error: bool
    ) -> list[Item]: ...

    def hash_files_blocking(
        self, paths: list[bytes], algorithm: str, concurrency: int, stop_on_error: bool
    ) -> list[Item]: ...

    # --- tail: read_last_n_lines, tail_files, follow ---

    # Per path a TailItem (sky_async._tail): (lines, final_newline) with lines decoded as
    # read_last_n_lines returns them, or raw bytes pieces when *encoding* is None; the
    # exception decoding raised; (errno, message or None); or None if never reached.
    async def tail_files(
        self, paths: list[bytes], n: int, chunk_size: int, concurrency: int, encoding: str | None, errors: str
    ) -> list[TailItem]: ...

    def tail_files_blocking(
        self, paths: list[bytes], n: int, chunk_size: int, concurrency: int, encoding: str | None, errors: str
    ) -> list[TailItem]: ...

    # --- process: is_process_alive, probe_processes, wait_for_exit ---

    # *pid* is an int (any size); *pids* a list or tuple whose elements the backend checks
    # (TypeError naming the index); *timeout* seconds or None for none.
    def is_process_alive(self, pid: int) -> bool: ...

    def process_start_time(self, pid: int) -> int | None: ...

    async def probe_processes(
        self, pids: Sequence[Any], start_times: list[int | None] | None
    ) -> list[bool]: ...

    def probe_processes_blocking(
        self, pids: Sequence[Any], start_times: list[int | None] | None
    ) -> list[bool]: ...

    async def wait_for_exit(self, pid: int, timeout: float | None) -> bool: ...

    def wait_for_exit_blocking(self, pid: int, timeout: float | None) -> bool: ...

    # --- scan: scan_tree ---

    # *options* checked by sky_async.scan.check_scan_options (max_file_size 0: no limit;
    # excluded: the entries to leave out, by their paths relative to the root).
    # The item: the raw result dict (see sky_async.scan.finish_scan), (errno, message or
    # None) when *root* cannot be scanned, or None when the walk was stopped at exit.
    async def scan_tree(self, root: bytes, options: _scan.ScanOptions) -> Any: ...

    def scan_tree_blocking(self, root: bytes, options: _scan.ScanOptions) -> Any: ...

    # --- system: cpu, memory, threads, fd estimates, ports ---

    # The synchronous ones return SkyPilot's values and raise its errors. The others report
    # an int, or (errno, message or None) for the path or port search that failed, and for
    # file mounts (errno, message or None, index of the failed source).
    def get_cpu_count(self) -> int: ...

    def get_mem_size_gb(self) -> float: ...

    def get_parallel_threads(self, cloud: str | None) -> int: ...

    def base36_encode(self, hex_str: str) -> str: ...

    def format_float(self, num: float | int, precision: int) -> str: ...

    def truncate_long_string(self, s: str, max_length: int, truncate_middle: bool) -> str: ...

    async def estimate_fd_for_directory(self, path: bytes) -> Any: ...

    def estimate_fd_for_directory_blocking(self, path: bytes) -> Any: ...

    async def max_workers_for_file_mounts(self, sources: list[bytes], cloud: str | None) -> Any: ...

    def max_workers_for_file_mounts_blocking(self, sources: list[bytes], cloud: str | None) -> Any: ...

    async def find_free_port(self, start_port: int) -> Any: ...

    def find_free_port_blocking(self, start_port: int) -> Any: ...

    # --- mounts: file_mounts_digest ---

    # *file_mounts* as sky_async.mounts.check_file_mounts returns them: (destination,
    # source) bytes pairs, sorted, the sources not yet ``~``-expanded. The item: the hex
    # digest, or every path that cannot be hashed as (path, errno, message or None), in
    # path order (sky_async.mounts.MountsItem).
    async def file_mounts_digest(
        self, file_mounts: list[tuple[bytes, bytes]], prefix: bytes, concurrency: int
    ) -> mounts.MountsItem: ...

    def file_mounts_digest_blocking(
        self, file_mounts: list[tuple[bytes, bytes]], prefix: bytes, concurrency: int
    ) -> mounts.MountsItem: ...

    # --- the backend itself ---

    def info(self) -> dict[str, Any]: ...


def check_algorithm(algorithm: object) -> str:
    if not isinstance(algorithm, str):
        raise TypeError(f"algorithm must be a str, not {type(algorithm).__name__}")
    name = algorithm.lower()
    if name not in SUPPORTED_ALGORITHMS:
        raise ValueError(
            f"unsupported hash algorithm {algorithm!r}; supported: {', '.join(SUPPORTED_ALGORITHMS)}"
        )
    return name


class _Request:
    """Validated input of one batch call, and the mapping of backend items back to results."""

    __slots__ = ("algorithm", "concurrency", "encoded", "originals", "positions", "results")

    def __init__(self, paths: object, algorithm: object, concurrency: object) -> None:
        self.algorithm = check_algorithm(algorithm)
        self.concurrency = check_concurrency(concurrency)
        self.originals = as_path_list(paths)
        self.encoded, self.positions, self.results = encode_paths(self.originals)

    def finish(self, items: list[Item], return_exceptions: bool) -> list[Any]:
        results = self.results
        for index, item in zip(self.positions, items):
            if item is None or isinstance(item, str):
                results[index] = item
            else:
                code, message = item
                results[index] = make_os_error(code, message, self.originals[index])
        if not return_exceptions:
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        return results


class Api:
    """``hash_file``/``hash_files`` and friends bound to one backend."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self.sync = SyncApi(backend)

    @property
    def backend_name(self) -> str:
        return self._backend.name

    async def hash_file(self, path: StrOrBytesPath, algorithm: str = "sha256") -> str:
        """Return the lower-case hex digest of the file at *path*.

        Raises FileNotFoundError, IsADirectoryError, PermissionError (errno and
        filename set), OSError(EINVAL) for FIFOs, sockets and devices, and
        ValueError for an unsupported *algorithm*.
        """
        name = check_algorithm(algorithm)
        encoded = encode_path(path)
        (item,) = await self._backend.hash_files([encoded], name, 1, False)
        return _single(item, path)

    @overload
    async def hash_files(
        self,
        paths: Iterable[StrOrBytesPath],
        algorithm: str = "sha256",
        *,
        concurrency: int | None = None,
        return_exceptions: Literal[False] = False,
    ) -> list[str]: ...
    @overload
    async def hash_files(
        self,
        paths: Iterable[StrOrBytesPath],
        algorithm: str = "sha256",
        *,
        concurrency: int | None = None,
        return_exceptions: Literal[True],
    ) -> list[str | BaseException]: ...
    @overload
    async def hash_files(
        self,
        paths: Iterable[StrOrBytesPath],
        algorithm: str = "sha256",
        *,
        concurrency: int | None = None,
        return_exceptions: bool = False,
    ) -> list[str] | list[str | BaseException]: ...
    async def hash_files(
        self,
        paths: Iterable[StrOrBytesPath],
        algorithm: str = "sha256",
        *,
        concurrency: int | None = None,
        return_exceptions: bool = False,
    ) -> list[str] | list[str | BaseException]:
        """Hash many files concurrently; one result per path, in input order.

        Without *return_exceptions* the first failure (in input order) is raised
        and the files not yet started are skipped; with it, a failed file's slot
        holds its exception and every other file still gets its digest.
        *concurrency* bounds the files open at once (default: chosen by the
        backend), which also bounds memory.
        """
        request = _Request(paths, algorithm, concurrency)
        items = []
        if request.encoded:
            items = await self._backend.hash_files(
                request.encoded, request.algorithm, request.concurrency, not return_exceptions
            )
        return request.finish(items, return_exceptions)

    # --- tail: read_last_n_lines, tail_files, follow ---

    async def read_last_n_lines(
        self,
        path: StrOrBytesPath,
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: str = "utf-8",
        errors: str = "replace",
    ) -> list[str]:
        """The last *n* lines of the file at *path*, exactly as SkyPilot's read_last_n_lines.

        Lines are split on LF only and decoded one by one with (*encoding*, *errors*);
        trailing CRs are stripped; every line but the last ends with ``'\\n'``; a final
        LF does not start an empty line. The file is read backwards in *chunk_size*
        blocks and only until the lines are found.

        Errors are the standard ones rather than SkyPilot's asserts: ValueError for a
        negative *n* or a non-positive *chunk_size*, TypeError for a non-int,
        FileNotFoundError, IsADirectoryError, PermissionError (errno and filename set),
        OSError(EINVAL) at once for FIFOs, sockets and devices (where SkyPilot blocks),
        LookupError for an unknown *encoding*, UnicodeDecodeError with ``errors='strict'``.
        """
        require_encoding(encoding)
        (result,) = await self.tail_files(
            [path], n, chunk_size=chunk_size, encoding=encoding, errors=errors, concurrency=1
        )
        return result

    @overload
    async def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: str = "utf-8",
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: Literal[False] = False,
    ) -> list[list[str]]: ...
    @overload
    async def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: str = "utf-8",
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: Literal[True],
    ) -> list[list[str] | BaseException]: ...
    @overload
    async def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: None,
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: Literal[False] = False,
    ) -> list[list[bytes]]: ...
    @overload
    async def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: None,
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: Literal[True],
    ) -> list[list[bytes] | BaseException]: ...
    @overload
    async def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: str = "utf-8",
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: bool = False,
    ) -> list[list[str]] | list[list[str] | BaseException]: ...
    @overload
    async def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: None,
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: bool,
    ) -> list[list[bytes]] | list[list[bytes] | BaseException]: ...
    async def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: str | None = "utf-8",
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: bool = False,
    ) -> list[Any]:
        """read_last_n_lines for many files concurrently; one result per path, in input order.

        Without *return_exceptions* the first failure (in input order) is raised; with
        it, a failed file's slot holds its exception and every other file still gets
        its lines. *concurrency* bounds the files open at once.

        With ``encoding=None`` the lines are not decoded: each is the file's bytes as they
        are, CRs kept, with the LF that ends it (the last line only if the file ends with
        one), so that ``b"".join(lines)`` is what ``tail -n`` prints. *errors* is then
        ignored. For ``a\\nb\\nc`` and ``n=2``: ``[b"b\\n", b"c"]``, where the default gives
        ``["b\\n", "c"]``; for ``a\\nb\\n``: ``[b"a\\n", b"b\\n"]``.
        """
        request = TailRequest(as_path_list(paths), n, chunk_size, encoding, errors, concurrency)
        items = []
        if request.encoded:
            items = await self._backend.tail_files(
                request.encoded,
                request.n,
                request.chunk_size,
                request.concurrency,
                request.encoding,
                request.errors,
            )
        return request.finish(items, return_exceptions)

    # --- process: is_process_alive, probe_processes, wait_for_exit ---

    async def is_process_alive(self, pid: int) -> bool:
        """Whether a process with this pid exists and has not exited.

        A zombie (exited, not yet reaped) is not alive; someone else's process (EPERM) is.
        A pid <= 0 or above ``/proc/sys/kernel/pid_max`` (a huge int included) is not
        alive and is never passed to ``kill(2)``. TypeError for anything but an int; a
        bool is rejected too (``True`` is not a pid). The probe is one ``kill(2)`` and one
        ``/proc`` read, done inline: cheaper than a hop to a worker thread.
        """
        return self._backend.is_process_alive(_process.check_pid(pid))

    async def probe_processes(
        self, pids: Iterable[int], *, start_times: Iterable[int | None] | None = None
    ) -> list[bool]:
        """``is_process_alive`` for many pids at once, on worker threads; one bool per pid, in order.

        *start_times*, if given, has one entry per pid: an int from ``process_start_time``
        taken when the process was known to be the right one, or None to skip the check.
        A process found at the pid with another start time is a reuse of the pid: False.
        A non-int pid is a bug in the caller: TypeError naming its index, and nothing is
        returned for the others.
        """
        sequence = _process.pid_sequence(pids)
        times = _process.check_start_times(start_times, len(sequence))
        if not sequence:
            return []
        return await self._backend.probe_processes(sequence, times)

    async def wait_for_exit(self, pid: int, timeout: float | None = None) -> bool:
        """Wait until the process *pid* exits: True once it has, False if *timeout* seconds pass first.

        Works for any process, not only children, through a pidfd (no polling); where
        ``pidfd_open`` is unavailable it polls, every 1 ms at first backing off to 50 ms. A
        zombie counts as exited; a pid with no process (or not a valid pid) returns True
        at once. ValueError for a negative or NaN *timeout*. Cancelling the awaiting task
        closes the pidfd.
        """
        return await self._backend.wait_for_exit(_process.check_pid(pid), _process.check_timeout(timeout))

    def process_start_time(self, pid: int) -> int | None:
        """When the process started, in clock ticks since boot (field 22 of ``/proc/<pid>/stat``).

        None when there is no such process or pid. Keep it with a pid and pass it to
        ``probe_processes(start_times=...)`` to tell the process from a later one that got
        the same pid. Synchronous: one ``/proc`` read.
        """
        return self._backend.process_start_time(_process.check_pid(pid))

    # --- scan: scan_tree ---

    @overload
    async def scan_tree(
        self,
        path: str | os.PathLike[str],
        *,
        follow_symlinks: bool = False,
        max_file_size: int | None = None,
        largest: int = 10,
        collect_files: bool = False,
        max_problems: int = 1000,
        ignore: _scan.IgnoreMode | None = None,
    ) -> _scan.TreeScan[str]: ...
    @overload
    async def scan_tree(
        self,
        path: bytes | os.PathLike[bytes],
        *,
        follow_symlinks: bool = False,
        max_file_size: int | None = None,
        largest: int = 10,
        collect_files: bool = False,
        max_problems: int = 1000,
        ignore: _scan.IgnoreMode | None = None,
    ) -> _scan.TreeScan[bytes]: ...
    async def scan_tree(
        self,
        path: StrOrBytesPath,
        *,
        follow_symlinks: bool = False,
        max_file_size: int | None = None,
        largest: int = 10,
        collect_files: bool = False,
        max_problems: int = 1000,
        ignore: _scan.IgnoreMode | None = None,
    ) -> _scan.TreeScan[str] | _scan.TreeScan[bytes]:
        """Walk the tree at *path* concurrently; return its counts, sizes and problems.

        Counts files, directories, symlinks and special files below *path* (not *path*
        itself; a symlink as *path* is followed), sums the regular files' sizes, keeps
        the *largest* biggest files and up to *max_problems* problems (unreadable
        files and directories, broken symlinks, symlink loops, special files, names
        that are not UTF-8, files over *max_file_size* bytes) while counting them all,
        and with *collect_files* lists every regular file. Symlinked directories are
        only descended with *follow_symlinks*. With *ignore* (``"skypilot"``, ``"git"``,
        ``"skyignore"`` or ``"rsync"``) the paths those rules exclude are left out and
        not descended, and ``TreeScan.excluded`` lists them with their rules. See
        ``sky_async.scan`` for the rules.

        Raises FileNotFoundError (and the other OSErrors, with errno and filename)
        when *path* itself cannot be scanned, TypeError/ValueError for bad arguments
        (and, with *ignore*, the rule set's own errors: see ``sky_async.scan``).
        """
        options = _scan.check_scan_options(
            follow_symlinks, max_file_size, largest, collect_files, max_problems
        )
        mode = _scan.check_ignore(ignore)
        root = encode_path(path)
        if mode is None:
            return _scan.finish_scan(await self._backend.scan_tree(root, options), path, options)
        # The rules' engines read the tree: on the pool, off the event loop.
        exclusions = await _batch.run_stoppable(lambda _stop: _scan.find_exclusions(root, mode))
        options = _scan.with_exclusions(options, exclusions)
        return _scan.finish_scan(await self._backend.scan_tree(root, options), path, options, exclusions)

    # --- system: cpu, memory, threads, fd estimates, ports ---

    def get_cpu_count(self) -> int:
        """CPUs this process may use, as SkyPilot computes it: ``SKYPILOT_POD_CPU_CORE_LIMIT``
        when set (float syntax, truncated toward zero), else the online CPUs narrowed by the
        affinity mask and the cgroup CPU quota (truncated: a 0.5-core quota gives 0).

        Raises ValueError for an unparseable variable and OverflowError for an infinite or
        out-of-range one. A cgroup quota or period that is not a positive finite number
        means no limit (SkyPilot raises ZeroDivisionError for a v2 period of 0).
        """
        return self._backend.get_cpu_count()

    def get_mem_size_gb(self) -> float:
        """Memory in GiB (SkyPilot's "GB"): ``SKYPILOT_POD_MEMORY_GB_LIMIT``, else
        ``SKYPILOT_POD_MEMORY_BYTES_LIMIT`` / 2**30, else total RAM capped by the cgroup
        memory limit. Raises ValueError for an unparseable variable."""
        return self._backend.get_mem_size_gb()

    def get_parallel_threads(self, cloud_str: str | None = None) -> int:
        """Threads for per-node work: ``max(4, os.cpu_count() - 1)``, times 4 when
        *cloud_str* is "kubernetes" in any case. TypeError unless *cloud_str* is a str or None."""
        return self._backend.get_parallel_threads(Api._check_cloud(cloud_str))

    def base36_encode(self, hex_str: str) -> str:
        """``int(hex_str, 16)`` re-encoded in lower-case base 36 (SkyPilot's result); ValueError
        for an invalid literal or a negative value (SkyPilot would loop forever)."""
        return self._backend.base36_encode(hex_str)

    def format_float(self, num: float | int, precision: int = 1) -> str:
        """SkyPilot's format_float: ``str()`` of an int, an integral float without decimals,
        else fixed-point with *precision* decimals, correctly rounded, never an exponent."""
        return self._backend.format_float(num, precision)

    def truncate_long_string(self, s: str, max_length: int = 35, truncate_middle: bool = False) -> str:
        """SkyPilot's truncate_long_string: *s* cut to about *max_length* code points with
        ``'...'`` (at a word boundary when that keeps enough, or in the middle)."""
        return self._backend.truncate_long_string(s, max_length, truncate_middle)

    async def estimate_fd_for_directory(self, path: StrOrBytesPath) -> int:
        """Descriptors one rsync of *path* is budgeted: 5 per top-level entry of a directory
        (symlinks followed, hidden entries counted), at least 5; 5 for anything that is not
        a directory. The listing runs off the event loop. Raises the listing's OSError
        (errno and filename set), TypeError/ValueError for a bad path."""
        encoded = encode_path(path)
        return Api._path_result(await self._backend.estimate_fd_for_directory(encoded), path)

    async def get_max_workers_for_file_mounts(
        self, common_file_mounts: Mapping[str, StrOrBytesPath], cloud_str: str | None = None
    ) -> int:
        """Workers for syncing file mounts (SkyPilot's formula): the soft RLIMIT_NOFILE less
        100, floor-divided by the largest estimate_fd_for_directory() of the values of the
        mapping *common_file_mounts* (destination -> local source; cloud URLs count as
        non-directories), between 1 and get_parallel_threads(cloud_str). Logs SkyPilot's
        warning once when the limit is below 1024. Raises the OSError of the first source
        that cannot be listed; TypeError for a non-mapping or a source that is not a path."""
        sources, encoded, cloud = Api._check_mounts(common_file_mounts, cloud_str)
        item = await self._backend.max_workers_for_file_mounts(encoded, cloud)
        return Api._mounts_result(item, sources)

    async def find_free_port(self, start_port: int) -> int:
        """The first TCP port from *start_port* up to 65534 that binds on every IPv4
        interface without SO_REUSEADDR (released again before returning; 0 returns 0).
        Raises OSError(EADDRINUSE) when none is free, ValueError for a negative
        *start_port*, TypeError for a non-int."""
        start = Api._check_start_port(start_port)
        return Api._port_result(await self._backend.find_free_port(start), start_port)

    @staticmethod
    def _check_cloud(cloud_str: object) -> str | None:
        if cloud_str is not None and not isinstance(cloud_str, str):
            raise TypeError(f"cloud_str must be a str or None, not {type(cloud_str).__name__}")
        return cloud_str

    @staticmethod
    def _check_mounts(
        common_file_mounts: object, cloud_str: object
    ) -> tuple[list[Any], list[bytes], str | None]:
        if not isinstance(common_file_mounts, Mapping):
            kind = type(common_file_mounts).__name__
            raise TypeError(f"common_file_mounts must be a mapping of destination to source, not {kind}")
        cloud = Api._check_cloud(cloud_str)
        sources = list(common_file_mounts.values())
        encoded = []
        for destination, source in zip(common_file_mounts, sources):
            try:
                encoded.append(encode_path(source))
            except (TypeError, ValueError) as exc:
                raise type(exc)(
                    f"file mount {destination!r}: the source {source!r} is not a path: {exc}"
                ) from exc
        _system.warn_if_low_fd_limit(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        return sources, encoded, cloud

    @staticmethod
    def _check_start_port(start_port: object) -> int:
        port = require_int(start_port, "start_port")
        if port < 0:
            raise ValueError(f"start_port must be 0 or more, got {port}")
        return min(port, _system.PORT_LIMIT)

    @staticmethod
    def _path_result(item: Any, path: object) -> int:
        if isinstance(item, int):
            return item
        code, message = item
        raise make_os_error(code, message, path)

    @staticmethod
    def _mounts_result(item: Any, sources: list[Any]) -> int:
        if isinstance(item, int):
            logging.getLogger("sky_async.system").debug(f"Using {item} workers for file mounts.")
            return item
        code, message, index = item
        raise make_os_error(code, message, sources[index])

    @staticmethod
    def _port_result(item: Any, start_port: int) -> int:
        if isinstance(item, int):
            return item
        code, message = item
        if code == errno.EADDRINUSE:
            message = f"No free ports available from {start_port} to {_system.PORT_LIMIT - 1}"
        raise OSError(code, message or os.strerror(code))

    # --- mounts: file_mounts_digest ---

    async def file_mounts_digest(
        self, file_mounts: Mapping[str, str], *, prefix: bytes = b"", concurrency: int | None = None
    ) -> str:
        """SkyPilot's file-mount digest (hex SHA-256), with the files hashed concurrently.

        Feeds *prefix*, then byte for byte the stream of SkyPilot's
        ``_deterministic_cluster_yaml_hash`` for *file_mounts* (remote destination ->
        local source; see ``sky_async.mounts``). Raises ``sky_async.FileMountsError``
        listing every path that cannot be hashed (broken symlinks, FIFOs, sockets,
        devices, unreadable files and directories) instead of hanging or aborting on
        the first; TypeError/ValueError for malformed arguments.
        """
        pairs = mounts.check_file_mounts(file_mounts)
        head = mounts.check_prefix(prefix)
        limit = check_concurrency(concurrency)
        return mounts.digest_or_raise(await self._backend.file_mounts_digest(pairs, head, limit))

    # --- pack: pack_mounts (Python only for now: no backend operation) ---

    async def pack_mounts(
        self,
        sources: Sequence[str | os.PathLike[str]],
        output: str | os.PathLike[str],
        *,
        ignore: Literal["skypilot"] | None = "skypilot",
        concurrency: int | None = None,
    ) -> _pack.PackResult:
        """Write the upload archive SkyPilot 0.14.1's ``zip_files_and_folders`` writes for
        *sources* to *output*, byte for byte, and return its counts, sizes, the excluded
        paths and SkyPilot's blob id of it (computed while the files are read, not by
        reading the zip back).

        ``ignore="skypilot"`` leaves out what SkyPilot does (a source directory's root
        ``.skyignore`` if it has one, else git's rules); ``None`` keeps everything. Runs in
        a thread; a cancelled call leaves nothing at *output* and no open descriptor.
        ValueError for a missing source, an output inside a source or an unknown
        *ignore*; OSError for a file that changes size while read, a FIFO or a device.

        Files of up to 8 MiB are read, hashed and compressed by a pool of threads and
        written in archive order; at most *concurrency* files are open at once (None: one
        per CPU, at most 8, plus one), and the files read and not yet written hold at most
        64 MiB. The first failure in archive order is the one raised.
        """
        return await _pack.pack_async(sources, output, ignore, concurrency)

    def get_backend_info(self) -> dict[str, object]:
        """Which backend serves the calls, and with what (versions, threads, I/O backend)."""
        return self._backend.info()


class SyncApi:
    """Blocking twins of the coroutines, for code without an event loop."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def hash_file(self, path: StrOrBytesPath, algorithm: str = "sha256") -> str:
        name = check_algorithm(algorithm)
        encoded = encode_path(path)
        (item,) = self._backend.hash_files_blocking([encoded], name, 1, False)
        return _single(item, path)

    @overload
    def hash_files(
        self,
        paths: Iterable[StrOrBytesPath],
        algorithm: str = "sha256",
        *,
        concurrency: int | None = None,
        return_exceptions: Literal[False] = False,
    ) -> list[str]: ...
    @overload
    def hash_files(
        self,
        paths: Iterable[StrOrBytesPath],
        algorithm: str = "sha256",
        *,
        concurrency: int | None = None,
        return_exceptions: Literal[True],
    ) -> list[str | BaseException]: ...
    @overload
    def hash_files(
        self,
        paths: Iterable[StrOrBytesPath],
        algorithm: str = "sha256",
        *,
        concurrency: int | None = None,
        return_exceptions: bool = False,
    ) -> list[str] | list[str | BaseException]: ...
    def hash_files(
        self,
        paths: Iterable[StrOrBytesPath],
        algorithm: str = "sha256",
        *,
        concurrency: int | None = None,
        return_exceptions: bool = False,
    ) -> list[str] | list[str | BaseException]:
        request = _Request(paths, algorithm, concurrency)
        items = []
        if request.encoded:
            items = self._backend.hash_files_blocking(
                request.encoded, request.algorithm, request.concurrency, not return_exceptions
            )
        return request.finish(items, return_exceptions)

    # --- tail: read_last_n_lines, tail_files, follow ---

    def read_last_n_lines(
        self,
        path: StrOrBytesPath,
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: str = "utf-8",
        errors: str = "replace",
    ) -> list[str]:
        require_encoding(encoding)
        (result,) = self.tail_files(
            [path], n, chunk_size=chunk_size, encoding=encoding, errors=errors, concurrency=1
        )
        return result

    @overload
    def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: str = "utf-8",
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: Literal[False] = False,
    ) -> list[list[str]]: ...
    @overload
    def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: str = "utf-8",
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: Literal[True],
    ) -> list[list[str] | BaseException]: ...
    @overload
    def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: None,
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: Literal[False] = False,
    ) -> list[list[bytes]]: ...
    @overload
    def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: None,
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: Literal[True],
    ) -> list[list[bytes] | BaseException]: ...
    @overload
    def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: str = "utf-8",
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: bool = False,
    ) -> list[list[str]] | list[list[str] | BaseException]: ...
    @overload
    def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: None,
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: bool,
    ) -> list[list[bytes]] | list[list[bytes] | BaseException]: ...
    def tail_files(
        self,
        paths: Iterable[StrOrBytesPath],
        n: int,
        *,
        chunk_size: int = 8192,
        encoding: str | None = "utf-8",
        errors: str = "replace",
        concurrency: int | None = None,
        return_exceptions: bool = False,
    ) -> list[Any]:
        request = TailRequest(as_path_list(paths), n, chunk_size, encoding, errors, concurrency)
        items = []
        if request.encoded:
            items = self._backend.tail_files_blocking(
                request.encoded,
                request.n,
                request.chunk_size,
                request.concurrency,
                request.encoding,
                request.errors,
            )
        return request.finish(items, return_exceptions)

    # --- process: is_process_alive, probe_processes, wait_for_exit ---

    def is_process_alive(self, pid: int) -> bool:
        return self._backend.is_process_alive(_process.check_pid(pid))

    def probe_processes(
        self, pids: Iterable[int], *, start_times: Iterable[int | None] | None = None
    ) -> list[bool]:
        sequence = _process.pid_sequence(pids)
        times = _process.check_start_times(start_times, len(sequence))
        if not sequence:
            return []
        return self._backend.probe_processes_blocking(sequence, times)

    def wait_for_exit(self, pid: int, timeout: float | None = None) -> bool:
        return self._backend.wait_for_exit_blocking(_process.check_pid(pid), _process.check_timeout(timeout))

    def process_start_time(self, pid: int) -> int | None:
        return self._backend.process_start_time(_process.check_pid(pid))

    # --- scan: scan_tree ---

    @overload
    def scan_tree(
        self,
        path: str | os.PathLike[str],
        *,
        follow_symlinks: bool = False,
        max_file_size: int | None = None,
        largest: int = 10,
        collect_files: bool = False,
        max_problems: int = 1000,
        ignore: _scan.IgnoreMode | None = None,
    ) -> _scan.TreeScan[str]: ...
    @overload
    def scan_tree(
        self,
        path: bytes | os.PathLike[bytes],
        *,
        follow_symlinks: bool = False,
        max_file_size: int | None = None,
        largest: int = 10,
        collect_files: bool = False,
        max_problems: int = 1000,
        ignore: _scan.IgnoreMode | None = None,
    ) -> _scan.TreeScan[bytes]: ...
    def scan_tree(
        self,
        path: StrOrBytesPath,
        *,
        follow_symlinks: bool = False,
        max_file_size: int | None = None,
        largest: int = 10,
        collect_files: bool = False,
        max_problems: int = 1000,
        ignore: _scan.IgnoreMode | None = None,
    ) -> _scan.TreeScan[str] | _scan.TreeScan[bytes]:
        options = _scan.check_scan_options(
            follow_symlinks, max_file_size, largest, collect_files, max_problems
        )
        mode = _scan.check_ignore(ignore)
        root = encode_path(path)
        if mode is None:
            return _scan.finish_scan(self._backend.scan_tree_blocking(root, options), path, options)
        exclusions = _scan.find_exclusions(root, mode)
        options = _scan.with_exclusions(options, exclusions)
        return _scan.finish_scan(self._backend.scan_tree_blocking(root, options), path, options, exclusions)

    # --- system: cpu, memory, threads, fd estimates, ports ---

    def estimate_fd_for_directory(self, path: StrOrBytesPath) -> int:
        encoded = encode_path(path)
        return Api._path_result(self._backend.estimate_fd_for_directory_blocking(encoded), path)

    def get_max_workers_for_file_mounts(
        self, common_file_mounts: Mapping[str, StrOrBytesPath], cloud_str: str | None = None
    ) -> int:
        sources, encoded, cloud = Api._check_mounts(common_file_mounts, cloud_str)
        item = self._backend.max_workers_for_file_mounts_blocking(encoded, cloud)
        return Api._mounts_result(item, sources)

    def find_free_port(self, start_port: int) -> int:
        start = Api._check_start_port(start_port)
        return Api._port_result(self._backend.find_free_port_blocking(start), start_port)

    # --- mounts: file_mounts_digest ---

    def file_mounts_digest(
        self, file_mounts: Mapping[str, str], *, prefix: bytes = b"", concurrency: int | None = None
    ) -> str:
        pairs = mounts.check_file_mounts(file_mounts)
        head = mounts.check_prefix(prefix)
        limit = check_concurrency(concurrency)
        return mounts.digest_or_raise(self._backend.file_mounts_digest_blocking(pairs, head, limit))

    # --- pack: pack_mounts ---

    def pack_mounts(
        self,
        sources: Sequence[str | os.PathLike[str]],
        output: str | os.PathLike[str],
        *,
        ignore: Literal["skypilot"] | None = "skypilot",
        concurrency: int | None = None,
    ) -> _pack.PackResult:
        return _pack.pack_blocking(sources, output, ignore, concurrency)


def _single(item: Item, path: object) -> str:
    if isinstance(item, str):
        return item
    if item is None:  # pragma: no cover - a one-file call always reaches its file
        raise RuntimeError("internal error: the backend skipped the only file")
    code, message = item
    raise make_os_error(code, message, path)
