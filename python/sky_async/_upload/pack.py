"""The upload archive SkyPilot 0.14.1 sends for a launch, and its blob id, in one pass.

SkyPilot's client zips the workdir and local file mounts with
``storage_utils.zip_files_and_folders`` and then reads the whole zip back for
``client.common._compute_zip_blob_id`` (SHA-256 of every entry's content, the
``(name, digest)`` pairs sorted by name, one SHA-256 over them). ``pack`` writes the same
zip, byte for byte, and computes the blob id from the same read of each file, so the zip
is never read back.

Byte for byte means: the entries are written through :mod:`zipfile` with the
``ZipInfo`` values SkyPilot's calls produce (``ZipInfo.from_file`` for files and
directories, a bare ``ZipInfo`` with ``external_attr`` 0xA1ED0000 and the target,
made relative when absolute, for symbolic links), in the order of SkyPilot's
``os.walk``; only the copy of a file's data is ours (bounded chunks, hashed as they
pass). Where SkyPilot has no usable result, this module differs:

- a file whose size changes while it is read is an ``OSError`` (SkyPilot's zipfile
  writes whatever it read, or fails on a zip64 limit);
- a FIFO or a device below a source is an ``OSError`` (SkyPilot blocks on the FIFO, or
  reads the device until it ends);
- an output path inside a source directory (or equal to a source file) is a
  ``ValueError`` (SkyPilot would zip its own partial output);
- a name (or a symbolic link's target) that is not valid UTF-8 is SkyPilot's
  ``UnicodeEncodeError``, with a reason that names the path (SkyPilot's names none);
- the archive is written to a temporary file beside *output* and renamed over it at the
  end, so an error or a cancellation leaves nothing half-written at *output* (SkyPilot
  leaves the partial zip), and a missing source is reported before anything is written.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import copy
import errno
import functools
import hashlib
import os
import stat
import struct
import sys
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO

from .._batch import usable_cpus
from .._checks import check_concurrency, require_str_path
from .._dirs import list_dir
from . import skypilot_ignore as _skypilot_ignore

# Bounded memory: a file is read, compressed and hashed this much at a time.
CHUNK_SIZE = 1 << 20
# What SkyPilot's _store_symlink marks a link with: S_IFLNK | 0o755 in the high 16 bits.
SYMLINK_ATTR = 0xA1ED0000
IGNORE_CHOICES = ("skypilot", None)

_EMPTY_DIGEST = hashlib.sha256(b"").digest()
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
# Non-blocking so a FIFO cannot hang the open; it is refused right after by fstat.
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True)
class PackResult:
    """What ``pack_mounts`` wrote: entry counts, sizes, what was left out, the blob id."""

    files: int
    """Regular files stored (with their data)."""
    directories: int
    """Directory entries stored (symbolic links to directories count as symlinks)."""
    symlinks: int
    """Symbolic links stored as links."""
    bytes: int
    """The files' data, uncompressed."""
    archive_bytes: int
    """The size of the archive written."""
    excluded: list[str] = field(default_factory=list)
    """Each path the ignore rules left out, as the walk named it (a directory once, not
    descended)."""
    blob_id: str = ""
    """SkyPilot's ``_compute_zip_blob_id`` of the archive: its dedup key for the upload."""


class PackCancelled(Exception):
    """Raised in the packing thread when its stop event is set; nothing is left at output."""


ExclusionsOf = Callable[[str], "list[str]"]


def exclusions_for(ignore: object) -> ExclusionsOf | None:
    """The exclusion list a source directory gets under *ignore*; ValueError naming the
    accepted values."""
    if ignore == "skypilot" and isinstance(ignore, str):
        return _skypilot_ignore.get_excluded_files
    if ignore is None:
        return None
    choices = ", ".join(repr(choice) for choice in IGNORE_CHOICES)
    raise ValueError(f"ignore must be one of {choices}, not {ignore!r}")


def check_output_outside(items: Sequence[str], output: str) -> None:
    """ValueError when *output* would land inside a source directory or on a source file."""
    target = os.path.join(os.path.realpath(os.path.dirname(output) or "."), os.path.basename(output))
    for item in items:
        real = os.path.realpath(item)
        if os.path.isdir(item):
            if os.path.commonpath([target, real]) == real:
                raise ValueError(
                    f"output {output!r} is inside the source directory {item!r}, which it would archive"
                )
        elif target == real:
            raise ValueError(f"output {output!r} is the source file {item!r}")


# Files up to this size are read, compressed and hashed by a pool of threads (zlib,
# hashlib and os.read release the GIL) while the archive is written in order; larger ones
# stream through zipfile on the writing thread. What the pool holds at once, compressed
# and waiting for its turn, stays under _POOL_BUDGET bytes, and the entries waiting for
# their turn under _QUEUE_MAX: memory is bounded whatever the tree.
_POOLED_MAX = 8 << 20
# Files up to this size are read at their turn on the writing thread instead.
_INLINE_MAX = 4 << 10
_POOL_BUDGET = 64 << 20
_QUEUE_MAX = 4096


@dataclass
class _Deflated:
    """A file as a pool thread read it: its compressed bytes, CRC-32, SHA-256 and size."""

    chunks: list[bytes]
    crc: int
    digest: bytes
    size: int


def _open_regular(path: str, expected: int) -> int:
    """*path* opened for reading; OSError if it is no regular file or not *expected* bytes."""
    fd = os.open(path, _READ_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "Not a regular file (a FIFO or a device cannot be archived)", path)
        if st.st_size != expected:
            raise _changed(path, expected, st.st_size)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_deflated(path: str, expected: int, level: int, stopped: Callable[[], bool]) -> _Deflated:
    """On a pool thread: what zipfile's deflate writer computes for *path*, in one read."""
    fd = _open_regular(path, expected)
    try:
        # zipfile's own compressor for ZIP_DEFLATED: the same stream, whatever the chunking.
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
        digest = hashlib.sha256()
        chunks: list[bytes] = []
        crc = 0
        for chunk in _read_exactly(fd, path, expected, stopped):
            crc = zlib.crc32(chunk, crc)
            digest.update(chunk)
            chunks.append(compressor.compress(chunk))
        chunks.append(compressor.flush())
    finally:
        os.close(fd)
    return _Deflated(chunks, crc, digest.digest(), expected)


def _read_exactly(fd: int, path: str, expected: int, stopped: Callable[[], bool]) -> Iterator[bytes]:
    """*fd*'s bytes, a chunk at a time, *stopped* asked before each read; OSError when the
    file turns out not to be *expected* bytes long."""
    read = 0
    while True:
        if stopped():
            raise PackCancelled
        chunk = os.read(fd, CHUNK_SIZE)
        if not chunk:
            break
        read += len(chunk)
        if read > expected:
            raise _changed(path, expected, read)
        yield chunk
    if read != expected:
        raise _changed(path, expected, read)


def _pool_threads() -> int:
    return min(usable_cpus(), 8)


class _Packer:
    """One archive being written: the zip, the running blob-id pairs and the counts.

    The walk hands entries over in archive order (``file``, ``directory``, ``symlink``);
    each is written when its turn comes (``write_pending``), a pooled file once a pool
    thread has read it. An error is raised at its entry's turn, so the one raised is the
    first in archive order, as when writing entry by entry."""

    def __init__(self, zipf: zipfile.ZipFile, stop: threading.Event | None, threads: int) -> None:
        """*threads* read pooled files, each holding one open; the writing thread holds one
        more while it streams a large file. 0: no pool, every file streamed in turn."""
        self.zipf = zipf
        self.stop = stop
        self.pairs: list[tuple[str, bytes]] = []
        self.files = 0
        self.directories = 0
        self.symlinks = 0
        self.bytes = 0
        self.excluded: list[str] = []
        self._pending: collections.deque[tuple[Callable[[], None], int]] = collections.deque()
        self._pooled_bytes = 0
        self._abort = threading.Event()  # the archive failed: pool threads stop reading
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        if threads > 0 and zipf.compression == zipfile.ZIP_DEFLATED:
            self._pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="sky-async-pack")
        level = zipf.compresslevel
        self._level = zlib.Z_DEFAULT_COMPRESSION if level is None else level

    def check_stop(self) -> None:
        if self._cancelled():
            raise PackCancelled

    def _cancelled(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _stopped(self) -> bool:
        """What pool threads ask: cancelled, or the archive failed."""
        return self._abort.is_set() or self._cancelled()

    def close(self) -> None:
        """Stops the pool; returns once no pool thread holds a file open."""
        self._abort.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    # --- the walk's side: entries in archive order ---

    def symlink(self, path: str, archive_name: str, is_dir: bool) -> None:
        self._add(functools.partial(self._write_symlink, path, archive_name, is_dir))

    def directory(self, path: str, archive_name: str) -> None:
        self._add(functools.partial(self._write_directory, path, archive_name))

    def file(self, path: str, archive_name: str) -> None:
        """A file the walk found (a socket is left out, as SkyPilot leaves it out)."""
        try:
            # The one stat of the file before its turn: it also tells a socket apart.
            info = zipfile.ZipInfo.from_file(path, archive_name, strict_timestamps=True)
        except Exception as exc:  # raised at its turn, after the entries before it
            self._add(functools.partial(_reraise, exc))
            return
        if stat.S_ISSOCK(info.external_attr >> 16):
            return
        if self._pool is None or info.is_dir() or info.file_size > _POOLED_MAX:
            self._add(functools.partial(self._write_file, path, archive_name))
            return
        size = info.file_size
        if size <= _INLINE_MAX:
            # Handing a tiny file to a pool thread costs more than reading it at its turn.
            self._add(functools.partial(self._write_inline, path, info))
            return
        while self._pending and self._pooled_bytes + size > _POOL_BUDGET:
            self._write_next()
        future = self._pool.submit(_read_deflated, path, size, self._level, self._stopped)
        self._pooled_bytes += size
        self._add(functools.partial(self._write_pooled, path, info, future), size)

    def _add(self, write: Callable[[], None], pooled_bytes: int = 0) -> None:
        self._pending.append((write, pooled_bytes))
        if self._pool is None or len(self._pending) > _QUEUE_MAX:
            self._write_next()

    def write_pending(self) -> None:
        while self._pending:
            self._write_next()

    def _write_next(self) -> None:
        write, pooled_bytes = self._pending.popleft()
        try:
            write()
        finally:
            self._pooled_bytes -= pooled_bytes

    # --- the writing side ---

    def _claim(self, name: str, path: str) -> None:
        # A zip stores names as UTF-8; os.walk gives a name that is not UTF-8 with surrogate
        # escapes, which zipfile cannot encode. SkyPilot fails there with a bare
        # UnicodeEncodeError (and leaves its partial zip); the same error type, naming the
        # path, before anything of the entry is written.
        _require_utf8(name, path, "its name")
        # Overlapping sources store a name twice, as SkyPilot's zip does; SkyPilot silences
        # zipfile's "Duplicate name" warning with a (process-wide, thread-unsafe) warnings
        # filter. Forgetting the earlier entry by name first avoids the warning and leaves
        # zipfile's state as the overwrite would.
        self.zipf.NameToInfo.pop(name, None)

    def _write_symlink(self, path: str, archive_name: str, is_dir: bool) -> None:
        target = os.readlink(path)
        # Relative, as SkyPilot stores it: an absolute target cannot resolve on the server.
        if os.path.isabs(target):
            target = os.path.relpath(target, os.path.dirname(path))
        info = zipfile.ZipInfo(archive_name + "/" if is_dir else archive_name)
        info.external_attr = SYMLINK_ATTR
        self._claim(info.filename, path)
        data = _require_utf8(target, path, "its target")
        self.zipf.writestr(info, data)
        self.pairs.append((info.filename, hashlib.sha256(data).digest()))
        self.symlinks += 1

    def _write_directory(self, path: str, archive_name: str) -> None:
        info = zipfile.ZipInfo.from_file(path, archive_name, strict_timestamps=True)
        if not info.is_dir():  # replaced by a file since the walk listed it
            self._write_file(path, archive_name)
            return
        info.compress_size = 0
        info.CRC = 0
        self._claim(info.filename, path)
        if sys.version_info >= (3, 11):
            self.zipf.mkdir(info)  # what ZipFile.write does with a directory's ZipInfo
        else:  # no ZipFile.mkdir yet: write stats the directory again and writes the same entry
            self.zipf.write(path, archive_name)
        self.pairs.append((info.filename, _EMPTY_DIGEST))
        self.directories += 1

    def _write_file(self, path: str, archive_name: str) -> None:
        """A file read, compressed and hashed here, through zipfile's own writer."""
        info = zipfile.ZipInfo.from_file(path, archive_name, strict_timestamps=True)
        if info.is_dir():  # replaced by a directory since the walk listed it
            self._write_directory(path, archive_name)
            return
        info.compress_type = self.zipf.compression
        info._compresslevel = self.zipf.compresslevel  # type: ignore[attr-defined]  # as ZipFile.write sets it
        expected = info.file_size
        fd = _open_regular(path, expected)
        try:
            digest = hashlib.sha256()
            self._claim(info.filename, path)
            with self.zipf.open(info, "w") as dest:
                for chunk in _read_exactly(fd, path, expected, self._cancelled):
                    digest.update(chunk)
                    dest.write(chunk)
        finally:
            os.close(fd)
        self._count_file(info.filename, digest.digest(), expected)

    def _write_pooled(
        self, path: str, info: zipfile.ZipInfo, read: concurrent.futures.Future[_Deflated]
    ) -> None:
        """A file a pool thread has read."""
        self._write_read(path, info, read.result())

    def _write_inline(self, path: str, info: zipfile.ZipInfo) -> None:
        """A tiny file, read here at its turn."""
        self._write_read(path, info, _read_deflated(path, info.file_size, self._level, self._cancelled))

    def _write_read(self, path: str, info: zipfile.ZipInfo, data: _Deflated) -> None:
        """A file read, compressed and hashed: the entry zipfile's writer would make of it."""
        self._claim(info.filename, path)
        zipf = self.zipf
        # What ZipFile.open(info, "w") sets and then writes, on a seekable output, once its
        # writer is closed: the header with the CRC and sizes, the data after it. A pooled
        # file is far below zip64's limits.
        info.compress_type = zipfile.ZIP_DEFLATED
        info._compresslevel = zipf.compresslevel  # type: ignore[attr-defined]  # as ZipFile.write sets it
        info.flag_bits = 0
        info.CRC = data.crc
        info.compress_size = sum(len(chunk) for chunk in data.chunks)
        zipf._writecheck(info)  # type: ignore[attr-defined]
        zipf._didModify = True  # type: ignore[attr-defined]
        raw = zipf.fp
        assert raw is not None
        # Already there unless another kind of entry was written last: a seek would flush
        # the output's buffer for every entry.
        if raw.tell() != zipf.start_dir:
            raw.seek(zipf.start_dir)
        info.header_offset = zipf.start_dir
        raw.write(info.FileHeader(False))
        raw.writelines(data.chunks)
        zipf.start_dir = raw.tell()
        zipf.filelist.append(info)
        zipf.NameToInfo[info.filename] = info
        self._count_file(info.filename, data.digest, data.size)

    def _count_file(self, name: str, digest: bytes, size: int) -> None:
        self.pairs.append((name, digest))
        self.files += 1
        self.bytes += size


def _reraise(exc: BaseException) -> None:
    raise exc


def blob_id_of(pairs: Sequence[tuple[str, bytes]]) -> str:
    """``_compute_zip_blob_id`` from each entry's (name, SHA-256 digest), in archive order."""
    # Entries sorted by name (a stable sort, so duplicates keep their archive order), then
    # the name's UTF-8 and the entry's raw digest, in turn.
    total = hashlib.sha256()
    for name, digest in sorted(pairs, key=lambda pair: pair[0]):
        total.update(name.encode("utf-8"))
        total.update(digest)
    return total.hexdigest()


def _require_utf8(text: str, path: str, what: str) -> bytes:
    """*text* in UTF-8, or SkyPilot's UnicodeEncodeError with a reason that names *path*."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        reason = (
            f"{exc.reason}: {what} is not valid UTF-8, which a zip cannot store: {path!r}"
            " (rename it, or exclude it in .skyignore)"
        )
        raise UnicodeEncodeError(exc.encoding, exc.object, exc.start, exc.end, reason) from None


def _changed(path: str, expected: int, now: int) -> OSError:
    return OSError(
        errno.EIO,
        f"file changed size while being archived ({expected} bytes when listed, {now} when read)",
        path,
    )


def _archive_name(file_path: str, item_path: str, relative_to_items: bool) -> str:
    if relative_to_items:
        return os.path.relpath(file_path, os.path.dirname(item_path))
    return file_path


def _add_item(
    packer: _Packer, item: str, exclusions_of: ExclusionsOf | None, relative_to_items: bool
) -> None:
    """One source, in SkyPilot's order: a file as itself (even if ignored), a directory as
    its own entry then its walk, excluded entries pruned."""
    packer.check_stop()
    if os.path.isfile(item):
        packer.file(item, _archive_name(item, item, relative_to_items))
        return
    name = _archive_name(item, item, relative_to_items)
    if os.path.islink(item):
        packer.symlink(item, name, is_dir=True)
    else:
        packer.directory(item, name)
    listed = exclusions_of(item) if exclusions_of is not None else []
    excluded = {os.path.join(item, path.rstrip("/")) for path in listed}
    for root, dirs, files, links in _walk(item):
        packer.check_stop()
        kept = []
        for d in dirs:
            path = os.path.join(root, d)
            if path in excluded:
                packer.excluded.append(path)
            else:
                kept.append(d)
        dirs[:] = kept
        for d in dirs:
            path = os.path.join(root, d)
            if d in links:
                packer.symlink(path, _archive_name(path, item, relative_to_items), is_dir=True)
            else:
                packer.directory(path, _archive_name(path, item, relative_to_items))
        for f in files:
            packer.check_stop()
            path = os.path.join(root, f)
            if path in excluded:
                packer.excluded.append(path)
                continue
            if f in links:
                packer.symlink(path, _archive_name(path, item, relative_to_items), is_dir=False)
                continue
            packer.file(path, _archive_name(path, item, relative_to_items))


def _walk(top: str) -> Iterator[tuple[str, list[str], list[str], set[str]]]:
    """``os.walk(top, followlinks=False)``, top-down, as SkyPilot's zip walks (the caller
    may prune *dirs* in place), with the names that are symlinks, known from the listing
    rather than from an lstat of every entry. A directory that cannot be listed yields
    nothing, as os.walk skips it."""
    pending = [top]
    while pending:
        root = pending.pop()
        try:
            listing = list_dir(root)
        except OSError:
            continue
        dirs = [name for name, is_dir, _ in listing if is_dir]
        files = [name for name, is_dir, _ in listing if not is_dir]
        links = {name for name, _, is_link in listing if is_link}
        yield root, dirs, files, links
        pending.extend(os.path.join(root, name) for name in reversed(dirs) if name not in links)


def _open_temp(output: str) -> tuple[int, str]:
    """A new file beside *output*, created with the mode a plain open() would give it."""
    directory, base = os.path.split(output)
    for _ in range(100):
        temp = os.path.join(directory, f".{base}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(temp, _TEMP_FLAGS, 0o666), temp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", os.path.join(directory, f".{base}.*.tmp"))


@contextlib.contextmanager
def _replacing(output: str) -> Iterator[BinaryIO]:
    """A temporary file beside *output* that becomes *output* only if the block completes."""
    fd, temp = _open_temp(output)
    try:
        with os.fdopen(fd, "w+b") as raw:
            yield raw
        os.replace(temp, output)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def pack(
    items: Sequence[str],
    output: str,
    *,
    exclusions_of: ExclusionsOf | None,
    log_file: TextIO | None = None,
    relative_to_items: bool = False,
    compression: int = zipfile.ZIP_DEFLATED,
    compresslevel: int | None = None,
    stop: threading.Event | None = None,
    pairs: list[tuple[str, bytes]] | None = None,
    concurrency: int = 0,
) -> PackResult:
    """Write SkyPilot's zip of *items* to *output* and return what it holds and its blob id.

    *items* are paths (``~`` is expanded); *exclusions_of(directory)* lists the paths, relative
    to the directory, to leave out of it (SkyPilot's ``get_excluded_files``), or is None to
    keep everything. ValueError for a missing source (SkyPilot's message) or an output
    inside a source; OSError for a file that changes size while read, a FIFO or device, or
    what the file system reports; PackCancelled when *stop* is set. Nothing is left at
    *output* unless the whole archive was written. *pairs*, if given, gets each entry's
    (name, SHA-256 digest) in archive order (for ``blob_id_of`` over several archives).
    At most *concurrency* files are open at once (0: one per CPU, at most 8, plus one).
    """
    expanded = [os.path.expanduser(item) for item in items]
    for item in expanded:
        if not os.path.isfile(item) and not os.path.isdir(item):
            raise ValueError(f"{item} does not exist.")
    check_output_outside(expanded, output)
    with _replacing(output) as raw:
        with zipfile.ZipFile(raw, "w", compression=compression, compresslevel=compresslevel) as zipf:
            packer = _Packer(zipf, stop, concurrency - 1 if concurrency else _pool_threads())
            try:
                for item in expanded:
                    try:
                        _add_item(packer, item, exclusions_of, relative_to_items)
                    except Exception:
                        packer.write_pending()  # an entry before this failure may have failed first
                        raise
                    packer.write_pending()
                    if log_file is not None:
                        log_file.write(f"Zipped {item}\n")
            finally:
                packer.close()
        packer.check_stop()
        archive_bytes = raw.tell()
    if pairs is not None:
        pairs.extend(packer.pairs)
    return PackResult(
        files=packer.files,
        directories=packer.directories,
        symlinks=packer.symlinks,
        bytes=packer.bytes,
        archive_bytes=archive_bytes,
        excluded=packer.excluded,
        blob_id=blob_id_of(packer.pairs),
    )


# --- several sources' archives as one, without compressing again ---

_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # signature ... file name length, extra field length
_ZIP64_EXTRA_ID = 1


def _without_zip64_extra(extra: bytes) -> bytes:
    """*extra* less its zip64 field, which a written central directory entry adds by itself."""
    kept = bytearray()
    offset = 0
    while offset + 4 <= len(extra):
        field_id, size = struct.unpack_from("<HH", extra, offset)
        if field_id != _ZIP64_EXTRA_ID:
            kept += extra[offset : offset + 4 + size]
        offset += 4 + size
    return bytes(kept)


def concatenate(archives: Sequence[str], output: str) -> int:
    """Write to *output* the archive ``pack`` writes for all the sources of *archives*
    (each made by ``pack`` of its own sources), in turn: each entry's local header and
    compressed bytes are copied as they are, and the central directory is written anew
    with the entries' new offsets. Returns the archive's size.

    For archives that needed no zip64 fields of their own (under 2 GiB and 65,535 entries
    each; ValueError otherwise, so that the caller packs again), the result is byte for
    byte what ``pack`` of all the sources writes: zipfile decides a local header from the
    entry alone, and the central directory from the entries and their offsets.
    """
    with _replacing(output) as raw:
        with zipfile.ZipFile(raw, "w") as out:
            for archive in archives:
                with open(archive, "rb") as source, zipfile.ZipFile(source) as part:
                    if source.seek(0, os.SEEK_END) >= zipfile.ZIP64_LIMIT:
                        raise ValueError(f"{archive}: 2 GiB or more, zip64: pack again")
                    entries = part.infolist()
                    if len(entries) >= zipfile.ZIP_FILECOUNT_LIMIT:
                        raise ValueError(f"{archive}: 65,535 entries or more, zip64: pack again")
                    for info in entries:
                        if info.flag_bits & 0x08:  # a data descriptor: not what pack writes
                            raise ValueError(f"{archive}: {info.filename} has a data descriptor")
                        source.seek(info.header_offset)
                        header = source.read(_LOCAL_HEADER.size)
                        name_length, extra_length = _LOCAL_HEADER.unpack(header)[-2:]
                        remaining = name_length + extra_length + info.compress_size
                        entry = copy.copy(info)
                        entry.header_offset = raw.tell()
                        entry.extra = _without_zip64_extra(info.extra)
                        raw.write(header)
                        while remaining:
                            chunk = source.read(min(remaining, CHUNK_SIZE))
                            if not chunk:
                                raise ValueError(f"{archive}: truncated at {info.filename}")
                            raw.write(chunk)
                            remaining -= len(chunk)
                        out.filelist.append(entry)
                        out.NameToInfo[entry.filename] = entry
            out.start_dir = raw.tell()
            out._didModify = True  # type: ignore[attr-defined]  # what writing an entry sets
        archive_bytes = raw.tell()
    return archive_bytes


# --- the public call: argument checks, and the work off the event loop ---


def check_sources(sources: object) -> list[str]:
    """*sources* as a list of str paths; TypeError for a lone path or a non-path."""
    if isinstance(sources, (str, bytes, os.PathLike)):
        raise TypeError("sources must be a sequence of paths (wrap a single path in a list)")
    if not isinstance(sources, Sequence):
        raise TypeError(f"sources must be a sequence of paths, not {type(sources).__name__}")
    return [require_str_path(source, "each source") for source in sources]


def pack_blocking(sources: object, output: object, ignore: object, concurrency: object = None) -> PackResult:
    items = check_sources(sources)
    path = require_str_path(output, "output")
    return pack(items, path, exclusions_of=exclusions_for(ignore), concurrency=check_concurrency(concurrency))


async def pack_async(
    sources: object, output: object, ignore: object, concurrency: object = None
) -> PackResult:
    """``pack`` in a thread. Cancelling stops it between chunks and waits for it to remove
    its temporary file and close its descriptors before the CancelledError propagates."""
    items = check_sources(sources)
    path = require_str_path(output, "output")
    exclusions_of = exclusions_for(ignore)
    limit = check_concurrency(concurrency)
    stop = threading.Event()
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(
        None, functools.partial(pack, items, path, exclusions_of=exclusions_of, stop=stop, concurrency=limit)
    )
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        stop.set()
        while not future.done():
            try:
                await asyncio.wait([future])
            except asyncio.CancelledError:
                continue
        if not future.cancelled() and future.exception() is None:
            # It finished before it saw the stop: a cancelled call still leaves no output.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        raise
