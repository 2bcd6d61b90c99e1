"""Safe writes: nothing the user had is replaced unless asked, and a failed write leaves it as it was.

Every file microvae writes goes through :func:`atomic_write` (a temporary file beside the
target, then a rename), which refuses to replace an existing file unless ``overwrite=True``.
"""
import errno
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "check_overwrite"]


def check_overwrite(*paths: str | os.PathLike, overwrite: bool = False) -> None:
    """Raise ``FileExistsError`` naming the first of ``paths`` that exists, unless ``overwrite``.

    Called before a long computation whose results go to ``paths``, so that it is refused
    before the work rather than after it.
    """
    if overwrite:
        return
    for path in paths:
        if Path(path).exists():
            raise FileExistsError(f"{path} exists; pass overwrite=True (or --overwrite) to replace it")


def _new_temp_file(path):
    """Create an empty, uniquely named temporary file beside ``path``.

    Created with mode 0666 so that the kernel applies the process umask, as for a plain
    ``open()`` (``tempfile.mkstemp`` makes it 0600, and learning the umask means setting it,
    which would race with other threads).
    """
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file beside {path}")


def _move_unless_taken(tmp, path):
    """Rename ``tmp`` to ``path`` only if ``path`` does not exist, in one step: a hard link fails
    if the name is taken, so a file another process wrote meanwhile is never replaced (checking
    first and renaming after would replace it)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"{path} exists (written by another process meanwhile?); pass overwrite=True "
                              "(or --overwrite) to replace it") from None
    except OSError as exc:  # file systems without hard links (FAT, some network shares)
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EXDEV):
            raise
        check_overwrite(path)
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def atomic_write(path: str | os.PathLike, write: Callable[[IO], object], *, overwrite: bool = False,
                 mode: str = "wb") -> Path:
    """Write a file atomically: ``write(fh)`` fills a temporary file that is then renamed.

    An existing file is never replaced unless ``overwrite=True``, not even one another process
    creates while this one writes, and a failed write leaves whatever was at ``path`` untouched.
    """
    path = Path(path)
    check_overwrite(path, overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp_file(path)
    try:
        # Reopened by name: some writers (tifffile) need a file object with a path.
        with open(tmp, mode, newline=None if "b" in mode else "") as fh:
            write(fh)
        if overwrite:
            os.replace(tmp, path)
        else:
            _move_unless_taken(tmp, path)
    except BaseException as exc:
        full = isinstance(exc, Exception) and _disk_full(exc, tmp)  # before the partial file frees its space
        if os.path.exists(tmp):
            os.unlink(tmp)
        if full:
            # Writers say it in their own ways (NumPy: "204800 requested and 102272 written"; torch:
            # "unexpected pos"): say it once, with the file.
            raise OSError(errno.ENOSPC, "no space left on the device; nothing was written there", str(path)) from exc
        raise
    return path


def _disk_full(exc, tmp):
    """Whether a failed write failed for want of space: the error says so, or the device of
    ``tmp`` has (almost) none left."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return True
    try:
        st = os.statvfs(tmp)
    except (AttributeError, OSError):  # Windows; or the folder is gone
        return False
    return st.f_bavail * st.f_frsize < 2**16
