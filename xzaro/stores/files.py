"""Local file I/O: positional reads of regular files, and files that appear whole.

Reads open only regular files (a FIFO would block the reader forever, a device would never end)
and never memory-map them: a mapped file that another program truncates kills the reader with
``SIGBUS``, so reads are positional reads into memory of the reader's own. Writes go to a
temporary file beside the final path, which is renamed into place once complete
(:class:`TempFile`), so a reader never sees half an object; :func:`create_file` writes new
files in place, for writers that tell readers of a file only once it is complete.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from xzaro.buffers import pooled_bytes, thread_bytes
from xzaro.concurrency import concurrent_map, default_workers
from xzaro.stores.base import Parts

#: Suffix of the temporary files written before they are renamed into place; listings skip them.
TMP_SUFFIX = ".xzaro-tmp"
#: Objects of many parts at least this large are written by several threads at once.
PARALLEL_WRITE_BYTES = 64 * 2**20
#: Whole objects at least this large are read into pooled buffers (:func:`read_pooled`).
POOLED_BYTES = 1 << 20
#: Opening never blocks: a FIFO opens at once (and is then refused), a regular file reads as ever.
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL
_SPECIAL_FILES = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


# --- reads -------------------------------------------------------------------------------------


def check_regular(mode: int, path: str) -> None:
    """Raise ``OSError`` unless ``mode`` (from ``stat``) is a regular file's."""
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(21, "Is a directory", path)
    kind = next((name for test, name in _SPECIAL_FILES if test(mode)), "a special file")
    raise OSError(f"{path} is {kind}, not a regular file; only regular files are read")


@dataclass(frozen=True)
class OpenFile:
    """A regular file open for positional reads (:func:`open_regular`)."""

    fd: int
    #: Its size when it was opened.
    size: int

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` (fewer at the end of the file)."""
        return read_at(self.fd, length, offset)


@contextlib.contextmanager
def open_regular(path: str) -> Iterator[OpenFile | None]:
    """Open a regular file for reading, or ``None`` if it does not exist.

    Anything else (a directory, a FIFO, a device) raises ``OSError``.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        # ENOTDIR: a parent of the key is a file, so the key cannot exist
        yield None
        return
    try:
        st = os.fstat(fd)
        check_regular(st.st_mode, path)
        yield OpenFile(fd, st.st_size)
    finally:
        os.close(fd)


def read_at(fd: int, size: int, offset: int) -> bytes:
    """``size`` bytes at ``offset`` (fewer at the end of the file), finishing short reads."""
    data = os.pread(fd, size, offset)
    if len(data) == size or not data:
        return data
    parts = [data]
    done = len(data)
    while done < size:
        chunk = os.pread(fd, size - done, offset + done)
        if not chunk:
            break
        parts.append(chunk)
        done += len(chunk)
    return b"".join(parts)


def read_into(fd: int, view: memoryview, offset: int = 0) -> int:
    """Fill ``view`` from ``offset`` in the file; the bytes read (fewer if the file was cut
    short meanwhile)."""
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], offset + done)
        if n == 0:
            break
        done += n
    return done


def read_range(path: str, offset: int, length: int | None) -> bytes | None:
    """A file or a byte range of it (see :data:`~xzaro.stores.base.RangeRequest`); ``None``
    if it does not exist."""
    with open_regular(path) as opened:
        if opened is None:
            return None
        fd, size = opened.fd, opened.size
        if offset < 0:
            start, stop = max(0, size + offset), size
        else:
            start = min(offset, size)
            stop = size if length is None else min(size, offset + length)
        return read_at(fd, stop - start, start)


def read_transient(path: str) -> memoryview | None:
    """A whole file in this thread's reusable buffer (:func:`~xzaro.buffers.thread_bytes`);
    ``None`` if it is missing. Valid until the thread's next call.

    A file costs four system calls (open, fstat, read, close): this is the path that reads
    hundreds of thousands of tiny chunks.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            check_regular(st.st_mode, path)
        view = thread_bytes(st.st_size)
        done = os.readv(fd, [view])  # the whole file at once, as a rule
        if done < len(view):
            done += read_into(fd, view[done:], done)
        return view[:done]
    finally:
        os.close(fd)


def read_pooled(path: str) -> memoryview | bytes | None:
    """A whole file in memory of its own; ``None`` if it is missing.

    Large files go into a pooled buffer (:func:`~xzaro.buffers.pooled_bytes`), which returns to
    the pool only when no view of it is left; smaller ones into ``bytes``.
    """
    with open_regular(path) as opened:
        if opened is None:
            return None
        fd, size = opened.fd, opened.size
        if size < POOLED_BYTES:
            return read_at(fd, size, 0)
        view = memoryview(pooled_bytes(size))
        return view[: read_into(fd, view)]


# --- writes ------------------------------------------------------------------------------------


def as_byte_view(value: Any) -> memoryview:
    """A flat ``B``-format view of any contiguous buffer."""
    view = memoryview(value)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


class TempFile:
    """A file written beside its final ``path`` and renamed into place when complete.

    The temporary file is created at once (with the missing parent directories), named
    ``.<name>.<random>`` + :data:`TMP_SUFFIX` so that no two writers share one; ``fd`` is open
    for writing. :meth:`commit` makes the whole file appear at ``path`` (replacing what was
    there), :meth:`discard` removes it.

    Parameters
    ----------
    path
        Where the file is to appear.
    """

    def __init__(self, path: str) -> None:
        directory, name = os.path.split(path)
        self.path = path
        self.tmp = os.path.join(directory, f".{name}.{os.urandom(8).hex()}{TMP_SUFFIX}")
        try:
            self.fd = os.open(self.tmp, _CREATE_FLAGS, 0o666)
        except FileNotFoundError:
            os.makedirs(directory, exist_ok=True)
            self.fd = os.open(self.tmp, _CREATE_FLAGS, 0o666)

    def commit(self) -> None:
        """Close the file and rename it into place; on failure it is removed and the error
        raised."""
        try:
            os.close(self.fd)
            os.replace(self.tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(self.tmp)
            raise

    def discard(self) -> None:
        """Close and remove the file (errors are ignored: it may be gone already)."""
        with contextlib.suppress(OSError):
            os.close(self.fd)
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


def write_file(path: str, value: memoryview | Parts) -> None:
    """Write ``value`` to ``path`` so that the file appears whole (see :class:`TempFile`)."""
    temp = TempFile(path)
    try:
        _write_all(temp.fd, value)
    except BaseException:
        temp.discard()
        raise
    temp.commit()


def create_file(path: str, value: memoryview | Parts) -> None:
    """Write ``value`` to a new file at ``path``, in place: no temporary file and no rename,
    so about a tenth less work per file than :func:`write_file`, but a reader opening ``path``
    meanwhile may see part of it. Only for files no reader is told of before this returns
    (a stream's objects, which its metadata covers only once they are written). A file
    already at ``path`` is replaced as :func:`write_file` replaces it; after a failure no
    file is left at ``path``.
    """
    directory = os.path.dirname(path)
    try:
        try:
            fd = os.open(path, _CREATE_FLAGS, 0o666)
        except FileNotFoundError:
            os.makedirs(directory, exist_ok=True)
            fd = os.open(path, _CREATE_FLAGS, 0o666)
    except FileExistsError:
        write_file(path, value)
        return
    try:
        _write_all(fd, value)
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    os.close(fd)


def _write_all(fd: int, value: memoryview | Parts) -> None:
    if not isinstance(value, Parts):
        done = 0
        while done < len(value):
            done += os.write(fd, value[done:])
        return
    views = [as_byte_view(p) for p in value]
    total = sum(v.nbytes for v in views)
    if total >= PARALLEL_WRITE_BYTES and len(views) > 1:
        # Copying into the page cache is CPU-bound: large shards go out on all threads.
        groups, start = [], 0
        for group in _balanced(views, default_workers()):
            groups.append((group, start))
            start += sum(v.nbytes for v in group)
        concurrent_map(lambda g: _pwrite_all(fd, *g), groups)
        return
    _pwrite_all(fd, views, 0)


def _pwrite_all(fd: int, views: list[memoryview], offset: int) -> None:
    """Write ``views`` back to back at ``offset``, finishing short writes."""
    done = os.pwritev(fd, views, offset) if views else 0
    total = sum(v.nbytes for v in views)
    if done == total:
        return
    rest = memoryview(b"".join(views))
    while done < total:  # a short write: finish the rest plainly
        done += os.pwrite(fd, rest[done:], offset + done)


def _balanced(views: list[memoryview], n: int) -> list[list[memoryview]]:
    """``views`` cut into at most ``n`` consecutive groups of about equal size."""
    total = sum(v.nbytes for v in views)
    groups: list[list[memoryview]] = [[]]
    size = 0
    for view in views:
        if groups[-1] and size >= total * len(groups) / n and len(groups) < n:
            groups.append([])
        groups[-1].append(view)
        size += view.nbytes
    return groups


# --- listing -----------------------------------------------------------------------------------


def find_files(path: str) -> list[str]:
    """Every file at or below ``path`` (a file gives itself), sorted; ``[]`` if it is missing.

    Everything that is not a directory counts as a file (links are not followed); directories
    that cannot be read are passed over, and temporary files (:data:`TMP_SUFFIX`) left out.
    """
    found: list[str] = []
    todo = [path]
    while todo:
        directory = todo.pop()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        todo.append(entry.path)
                    elif not entry.name.endswith(TMP_SUFFIX):
                        found.append(entry.path)
        except NotADirectoryError:
            if directory == path and os.path.isfile(path) and not path.endswith(TMP_SUFFIX):
                found.append(path)
        except OSError:
            continue
    return sorted(found)


def list_names(path: str) -> list[str]:
    """The names directly below the directory ``path`` (a file gives its own name), sorted;
    ``[]`` if it is missing. Temporary files (:data:`TMP_SUFFIX`) are left out.

    Raises
    ------
    OSError
        The directory cannot be read.
    """
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return []
    if not stat.S_ISDIR(st.st_mode):
        names = {path.rstrip("/").rsplit("/", 1)[-1]}
    else:
        with os.scandir(path) as entries:
            names = {entry.name for entry in entries}
    return sorted(n for n in names if n and not n.endswith(TMP_SUFFIX))
