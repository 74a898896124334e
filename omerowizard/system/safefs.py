"""File operations for a process that may be root, in directories other users may write.

The rule (see the README's "Safety" section): root never follows a symbolic link that another
user could have planted, and never trusts a name in a directory another user can write.

Every path is walked from ``/`` one component at a time with directory file descriptors
(``openat`` with ``O_NOFOLLOW``). A symbolic link is followed only when the directory holding
it is *trusted*: owned by root (or by this process's user) and not writable by group or others
(so nobody else could have put the link there, e.g. ``/var/run -> /run``). A link anywhere
else is refused, naming it. Files are created under a random name with ``O_EXCL`` inside the
walked directory, written, ``fchown``/``fchmod``-ed through their descriptor, then renamed into
place relative to the same directory descriptor (a rename replaces a planted link, it never
writes through it). Nothing is ever chmod'ed or chown'ed through a path.
"""

from __future__ import annotations

import errno
import os
import pwd
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from omerowizard.model.errors import WizardError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_LINKS = 40


class UnsafePath(WizardError):
    """A path that root must not follow (a link planted where another user can write)."""


def _trusted(dir_fd: int) -> bool:
    st = os.fstat(dir_fd)
    return st.st_uid in {0, os.geteuid()} and not st.st_mode & 0o022


def _owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _components(path: str) -> list[str]:
    p = PurePosixPath(path)
    if not p.is_absolute():
        raise ValueError(f"not an absolute path: {path!r}")
    parts = [c for c in p.parts[1:] if c not in {"", "."}]
    if ".." in parts:
        raise UnsafePath(f"refusing a path with '..': {path}")
    return parts


def _walk(path: str, create: tuple[int, int] | None = None, create_below: str | None = None) -> int:
    """A descriptor of directory ``path``, walked safely. Missing directories are created when
    ``create`` is given; those below ``create_below`` are given to (uid, gid) ``create``."""
    todo = _components(path)
    fd = os.open("/", _DIR_FLAGS)
    walked = "/"
    hops = 0
    try:
        while todo:
            name = todo.pop(0)
            here = os.path.join(walked, name)
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                if create is None:
                    raise
                os.mkdir(name, 0o755, dir_fd=fd)
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if create_below and (here + "/").startswith(create_below.rstrip("/") + "/") and os.geteuid() == 0:
                    sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
                    try:
                        os.fchown(sub, *create)
                    finally:
                        os.close(sub)
            if stat.S_ISLNK(st.st_mode):
                if not _trusted(fd):
                    raise UnsafePath(f"{here} is a symbolic link in a directory that "
                                     f"{_owner_name(os.fstat(fd).st_uid)} (or others) can write: refusing to follow it")
                hops += 1
                if hops > _MAX_LINKS:
                    raise UnsafePath(f"too many symbolic links resolving {path}")
                target = os.readlink(name, dir_fd=fd)
                rest = _components(target if target.startswith("/") else os.path.join(walked, target))
                os.close(fd)
                fd = os.open("/", _DIR_FLAGS)
                walked = "/"
                todo = rest + todo
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, f"{here} is not a directory")
            nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
            walked = here
        return fd
    except BaseException:
        os.close(fd)
        raise


@contextmanager
def directory(path: str, create: tuple[int, int] | None = None, create_below: str | None = None) -> Iterator[int]:
    fd = _walk(path, create, create_below)
    try:
        yield fd
    finally:
        os.close(fd)


def _split(path: str) -> tuple[str, str]:
    p = PurePosixPath(path)
    if p.name in {"", ".", ".."}:
        raise ValueError(f"not a file path: {path!r}")
    return str(p.parent), p.name


def ids_of(user: str | None) -> tuple[int, int] | None:
    if not user:
        return None
    pw = pwd.getpwnam(user)
    return pw.pw_uid, pw.pw_gid


def lstat(path: str):
    """os.lstat through a safe walk of the parent (None when missing)."""
    parent, name = _split(path)
    try:
        with directory(parent) as d:
            return os.stat(name, dir_fd=d, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None


_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _open_regular_at(d: int, name: str, path: str) -> int:
    """A read descriptor of the regular file ``name`` in directory ``d``: never through a link (ELOOP is
    the caller's), never blocking (O_NONBLOCK: a FIFO opens at once and is then refused), never a device,
    and never a hard link to someone else's file in a directory another user can write."""
    fd = os.open(name, _FILE_FLAGS, dir_fd=d)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePath(f"{path} is not a regular file")
        if st.st_nlink > 1 and not _trusted(d):
            owner = os.fstat(d).st_uid
            if st.st_uid != owner:
                raise UnsafePath(f"{path} is a hard link to a file of {_owner_name(st.st_uid)} in a directory that "
                                 f"{_owner_name(owner)} can write: refusing to read it")
        return fd
    except BaseException:
        os.close(fd)
        raise


def _open_regular(path: str) -> int | None:
    """``_open_regular_at`` from a safe walk of the parent; None when missing. A link is followed only in a
    directory root controls (e.g. Debian's sites-enabled); elsewhere it is refused, naming it."""
    parent, name = _split(path)
    try:
        with directory(parent) as d:
            try:
                return _open_regular_at(d, name, path)
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise
                if _trusted(d):
                    return _open_regular(os.path.join(parent, os.readlink(name, dir_fd=d)))
                raise UnsafePath(f"{path} is a symbolic link in a directory that "
                                 f"{_owner_name(os.fstat(d).st_uid)} can write: refusing to read it") from None
    except (FileNotFoundError, NotADirectoryError):
        return None


def _read_fd(fd: int, path: str, limit: int) -> bytes:
    chunks = []
    size = 0
    while True:
        try:
            chunk = os.read(fd, 1 << 20)
        except BlockingIOError:  # a regular file never says so; be safe anyway
            break
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise UnsafePath(f"{path} is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def read_bytes(path: str, limit: int = 64 * 1024 * 1024) -> bytes | None:
    """The content of a regular file (None when missing). A link or anything but a regular file
    where a file is expected is refused (a FIFO would block, a device would leak)."""
    fd = _open_regular(path)
    if fd is None:
        return None
    try:
        return _read_fd(fd, path, limit)
    finally:
        os.close(fd)


def read_bytes_at(d: int, name: str, path: str, limit: int = 16 * 1024 * 1024) -> bytes | None:
    """The content of the regular file ``name`` in the directory descriptor ``d`` (``path`` names it in
    messages); None when missing. A link there is refused unless ``d`` is a directory root controls."""
    try:
        fd = _open_regular_at(d, name, path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            if _trusted(d):
                return read_bytes(path, limit)
            raise UnsafePath(f"{path} is a symbolic link in a directory that "
                             f"{_owner_name(os.fstat(d).st_uid)} can write: refusing to read it") from None
        raise
    try:
        return _read_fd(fd, path, limit)
    finally:
        os.close(fd)


def size(path: str) -> int:
    """The size of a regular file; 0 when it is missing, a link (not followed) or not a regular file."""
    try:
        fd = _open_regular(path)
    except (OSError, UnsafePath):
        return 0
    if fd is None:
        return 0
    try:
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def read_since(path: str, offset: int, limit: int = 256 * 1024) -> bytes | None:
    """What was appended to a regular file since ``offset`` (all of it when the file is shorter: it was
    rotated), at most its last ``limit`` bytes; None when missing. A link or a FIFO is refused (UnsafePath)."""
    fd = _open_regular(path)
    if fd is None:
        return None
    try:
        end = os.fstat(fd).st_size
        start = offset if 0 <= offset <= end else 0
        start = max(start, end - limit)
        return os.pread(fd, end - start, start) if end > start else b""
    finally:
        os.close(fd)


def tail(path: str, lines: int = 15, limit: int = 256 * 1024) -> list[str] | None:
    """The last ``lines`` lines of a regular file, reading at most its last ``limit`` bytes (never a huge
    file whole); None when missing. A link or a FIFO is refused (UnsafePath)."""
    fd = _open_regular(path)
    if fd is None:
        return None
    try:
        end = os.fstat(fd).st_size
        start = max(0, end - limit)
        data = os.pread(fd, end - start, start) if end > start else b""
    finally:
        os.close(fd)
    found = data.decode("utf-8", "replace").splitlines()
    if start > 0 and found:
        found = found[1:]  # the first line read is cut
    return found[-lines:] if lines > 0 else []


def open_directory_at(d: int, name: str, path: str) -> int:
    """A descriptor of the directory ``name`` in ``d``, never through a link (a link or anything but a
    directory raises UnsafePath naming ``path``; a missing one FileNotFoundError). Close it."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=d)
    except OSError as exc:
        if exc.errno in {errno.ELOOP, errno.ENOTDIR}:
            raise UnsafePath(f"{path} is not a directory (a link or another file): refusing to enter it") from None
        raise


def listdir(path: str) -> list[str] | None:
    """The names in a directory, walked safely (sorted); None when missing."""
    try:
        with directory(path) as d:
            return sorted(os.listdir(d))
    except (FileNotFoundError, NotADirectoryError):
        return None


def read_text(path: str, encoding: str = "utf-8") -> str | None:
    data = read_bytes(path)
    return None if data is None else data.decode(encoding, "replace")


def write_bytes(path: str, data: bytes, mode: int = 0o644, owner: str | None = None,
                create_below: str | None = None, ids: tuple[int, int] | None = None) -> None:
    """Atomically replace ``path`` with ``data``: random O_EXCL temp name in the same (safely walked)
    directory, fsync, fchmod/fchown through the descriptor, rename relative to the directory."""
    parent, name = _split(path)
    if os.geteuid() != 0:
        ids = None
    elif ids is None:
        ids = ids_of(owner)
    with directory(parent, create=ids or (os.geteuid(), os.getegid()), create_below=create_below) as d:
        tmp = f".{name}.omerowizard-{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=d)
        try:
            try:
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                os.fsync(fd)
                if ids:
                    os.fchown(fd, *ids)
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
            existing = _lstat_at(d, name)
            if existing is not None and stat.S_ISDIR(existing.st_mode):
                raise IsADirectoryError(errno.EISDIR, f"{path} is a directory")
            os.rename(tmp, name, src_dir_fd=d, dst_dir_fd=d)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=d)
            except OSError:
                pass
            raise


def _lstat_at(d: int, name: str):
    try:
        return os.stat(name, dir_fd=d, follow_symlinks=False)
    except FileNotFoundError:
        return None


def remove_unused_temps(path: str) -> None:
    """Temporary files a killed run left next to ``path`` (random names of ours only)."""
    parent, name = _split(path)
    try:
        with directory(parent) as d:
            for entry in os.listdir(d):
                if entry.startswith(f".{name}.omerowizard-"):
                    try:
                        os.unlink(entry, dir_fd=d)
                    except OSError:
                        pass
    except (FileNotFoundError, NotADirectoryError, UnsafePath):
        pass


def unlink(path: str) -> bool:
    """Remove a file or a link (never what a link points at). True if something was removed."""
    parent, name = _split(path)
    try:
        with directory(parent) as d:
            st = _lstat_at(d, name)
            if st is None:
                return False
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, f"{path} is a directory")
            os.unlink(name, dir_fd=d)
            return True
    except (FileNotFoundError, NotADirectoryError):
        return False


def readlink(path: str) -> str | None:
    """The target of the link at ``path`` (None when it is not a link or is missing)."""
    parent, name = _split(path)
    try:
        with directory(parent) as d:
            st = _lstat_at(d, name)
            if st is None or not stat.S_ISLNK(st.st_mode):
                return None
            return os.readlink(name, dir_fd=d)
    except (FileNotFoundError, NotADirectoryError):
        return None


def symlink(target: str, path: str) -> None:
    """Make ``path`` a link to ``target``, replacing a file or link there (atomically)."""
    parent, name = _split(path)
    with directory(parent, create=(os.geteuid(), os.getegid())) as d:
        tmp = f".{name}.omerowizard-{secrets.token_hex(8)}"
        os.symlink(target, tmp, dir_fd=d)
        try:
            os.rename(tmp, name, src_dir_fd=d, dst_dir_fd=d)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=d)
            except OSError:
                pass
            raise


def chmod_file(path: str, mode: int, owner: str | None = None) -> bool:
    """fchmod (and fchown) a regular file through an O_NOFOLLOW descriptor. False when missing."""
    parent, name = _split(path)
    try:
        with directory(parent) as d:
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=d)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise UnsafePath(f"{path} is a symbolic link: refusing to change its mode") from None
                raise
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePath(f"{path} is not a regular file")
        ids = ids_of(owner) if owner and os.geteuid() == 0 else None
        if ids:
            os.fchown(fd, *ids)
        os.fchmod(fd, mode)
        return True
    finally:
        os.close(fd)


def makedirs(path: str, owner: str | None = None, create_below: str | None = None) -> None:
    ids = ids_of(owner) if owner and os.geteuid() == 0 else None
    with directory(path, create=ids or (os.geteuid(), os.getegid()), create_below=create_below):
        pass


def trusted_path(path: Path) -> str | None:
    """Why root must not use ``path`` (a file or directory another user could replace), or None.

    Every component is checked without following links: a link or a directory that a user
    other than root can write (without the sticky bit) could redirect what root installs."""
    path = Path(os.path.abspath(path))
    for part in [*reversed(path.parents), path]:
        try:
            st = os.lstat(part)
        except FileNotFoundError:
            return None  # created by root below here
        if stat.S_ISLNK(st.st_mode) and st.st_uid != 0:
            return f"{part} is a symbolic link owned by uid {st.st_uid}"
        if st.st_uid not in (0, os.geteuid()):
            return f"{part} belongs to uid {st.st_uid}"
        writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if writable and not (stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX):
            return f"{part} can be written by other users (mode {stat.S_IMODE(st.st_mode):o})"
    return None
