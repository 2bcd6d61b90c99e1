"""Folders microvae owns (a training run, a study): the marker that says so, and the lock a
process holds while it writes in one.

A folder microvae creates for a run gets a marker file, ``.microvae.json``, naming what it is
for. Only a marked folder of the same kind is ever resumed or emptied (``--overwrite``), and
then only of the files its kind writes: anything else in it is the user's and stays. Folders
made by microvae before the marker existed are recognized by a strict rule (:func:`claim`):
their settings file is one microvae wrote, and every entry is a name the run writes; such a
folder is marked on first use. Every other folder is refused, whatever the flags say.

While a process writes in a folder it holds an exclusive lock on the folder's
``.microvae.lock`` (``fcntl.flock``; on Windows ``msvcrt.locking``): a second process that
wants the folder is refused at once instead of interleaving its files with the first one's.
The operating system releases the lock when the process ends, however it ends, so a killed run
leaves no stale lock behind (only the empty file, which the next holder reuses).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

__all__ = ["MARKER", "LOCK", "claim", "owned", "clear", "lock"]

MARKER = ".microvae.json"
LOCK = ".microvae.lock"


def owned(path: str | os.PathLike, kind: str) -> bool:
    """True when ``path`` holds the marker of a ``kind`` folder."""
    try:
        return json.loads((Path(path) / MARKER).read_text()).get("kind") == kind
    except (OSError, ValueError, AttributeError):
        return False


def _write_marker(path, kind):
    """Create the marker, atomically and only if there is none: of two processes claiming one new
    folder, exactly one succeeds."""
    from .records import provenance

    text = json.dumps({"kind": kind, **provenance({})}, indent=2)
    fd = os.open(Path(path) / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def claim(path: str | os.PathLike, kind: str, *, names: Iterable[str], legacy: Callable[[Path], bool],
          what: str) -> bool:
    """Make ``path`` a ``kind`` folder, or check that it is one.

    Parameters
    ----------
    path : str or Path
    kind : str
        What the folder is for ("vae-run", "study").
    names : iterable of str
        The entries a folder of this kind holds (files and subfolders it writes).
    legacy : callable
        ``legacy(path)`` is True when an unmarked folder's settings file is one microvae wrote for
        this kind (the rule for folders made before the marker existed).
    what : str
        What the folder holds, in messages ("training run", "study").

    Returns
    -------
    bool
        True when the folder was new (created, or empty) and is now marked; False when it
        already was a ``kind`` folder (marked now if it was an old one).

    Raises
    ------
    FileExistsError
        ``path`` is a file, a folder of another kind, or a folder with entries microvae did
        not write: never taken over.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a folder; choose another folder for the {what}")
    path.mkdir(parents=True, exist_ok=True)
    if owned(path, kind):
        return False
    entries = sorted(p.name for p in path.iterdir())
    if (path / MARKER).exists():
        raise FileExistsError(f"{path} is a microvae folder of another kind ({MARKER}): it holds no microvae {what}; "
                              "choose another folder")
    if entries:
        foreign = [e for e in entries if e not in set(names) | {LOCK}]
        if foreign or not legacy(path):
            why = f"it holds {foreign[0]!r}, which microvae did not write" if foreign else \
                "its settings file is not one microvae wrote"
            raise FileExistsError(f"{path} exists and is not empty, and holds no microvae {what} ({why}); microvae "
                                  "never writes into or empties a folder it did not make: choose another folder")
    try:
        _write_marker(path, kind)
    except FileExistsError:  # another process claimed it first
        if owned(path, kind):
            return False
        raise
    return not entries


def clear(path: str | os.PathLike, names: Iterable[str]) -> list[str]:
    """Remove the entries of ``path`` named in ``names`` (the files and folders a run writes);
    every other entry, the marker and the lock stay. Returns the names removed."""
    path = Path(path)
    removed = []
    for name in sorted(set(names) - {MARKER, LOCK}):
        p = path / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
        else:
            continue
        removed.append(name)
    return removed


@contextlib.contextmanager
def lock(path: str | os.PathLike, subject: str, *, name: str = LOCK) -> Iterator[None]:
    """Hold the exclusive lock of folder ``path`` for the ``with`` block (its lock file, ``name``
    in the folder, is removed again at the end).

    Parameters
    ----------
    path : str or Path
        An existing folder.
    subject : str
        What the holder writes ("the run in runs/a", "labels.csv"), for the message.
    name : str
        The lock file: :data:`LOCK` for a whole folder, another name for one output in it.

    Raises
    ------
    FileExistsError
        Another process holds it (its process id and host are named when known).
    """
    lock_file = Path(path) / name
    while True:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
        if not _try_lock(fd):
            holder = os.read(fd, 200).decode(errors="replace").strip()
            os.close(fd)
            raise FileExistsError(f"another microvae process{f' ({holder})' if holder else ''} is writing "
                                  f"{subject}; wait for it to end, or choose another output")
        try:  # the file locked must still be the one at that name (its last holder removes it)
            if os.stat(lock_file).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        # Who holds it, for the message of the next process that tries.
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        yield
    finally:
        try:
            os.unlink(lock_file)  # while still locked: a process that opened it meanwhile retries
        except OSError:  # the folder itself was removed (a failed new run)
            pass
        os.close(fd)  # closing the descriptor releases the lock


def _try_lock(fd):
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
