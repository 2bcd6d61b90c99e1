"""Safe writes: nothing the user had is replaced unless asked, and a failed write leaves it as it was.

Every file microvae writes goes through :func:`atomic_write` (a temporary file beside the
target, then a rename), which refuses to replace an existing file unless ``overwrite=True``.
"""
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


def atomic_write(path: str | os.PathLike, write: Callable[[IO], object], *, overwrite: bool = False,
                 mode: str = "wb") -> Path:
    """Write a file atomically: ``write(fh)`` fills a temporary file that is then renamed.

    An existing file is never replaced unless ``overwrite=True``, and a failed write leaves
    whatever was at ``path`` untouched.
    """
    path = Path(path)
    check_overwrite(path, overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp_file(path)
    try:
        # Reopened by name: some writers (tifffile) need a file object with a path.
        with open(tmp, mode, **({} if "b" in mode else {"newline": ""})) as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
