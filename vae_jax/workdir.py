"""One writer per workdir: a lock file held for a run's life.

    with workdir.hold("runs/x"):   # creates the folder, or says in one line why it cannot
        ...                        # train, evaluate, write

The lock is `workdir/.lock`, an `fcntl.flock` on a file that records the holder's PID, host
and start time. The kernel drops a flock when its process dies (kill -9 included), so a
lock left behind by a dead run is free and is taken over, with a warning naming the old
holder; a live holder makes the second process stop at once with WorkdirError naming its
PID and host. Holding is re-entrant within a process (the training loop and the
experiment around it both hold the same workdir). On a file system without flock the run
warns and goes on unchecked.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time

from vae_jax.distributed import is_writer
from vae_jax.errors import WorkdirError, describe_os_error

LOCK = ".lock"
_held: dict[str, tuple[int, int]] = {}  # realpath -> (fd, depth)


def prepare(workdir: str) -> str:
    """Create `workdir` (and its parents) or raise WorkdirError naming the path and the fix.
    Returns its absolute path."""
    path = os.path.abspath(workdir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise WorkdirError(f"--workdir={workdir} is a file, not a folder: pass a folder path")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise WorkdirError(describe_os_error(e, f"cannot create the workdir {path}")) from e
    return path


def _holder(path: str) -> dict:
    try:
        with open(path) as f:
            return json.loads(f.read() or "{}")
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    if not holder:
        return "an unknown process"
    return f"PID {holder.get('pid')} on host {holder.get('host')} (since {holder.get('started')})"


def acquire(workdir: str) -> str:
    """Take the workdir's lock (see the module docstring); returns the key for `release`."""
    path = prepare(workdir)
    real = os.path.realpath(path)
    if real in _held:
        fd, depth = _held[real]
        _held[real] = (fd, depth + 1)
        return real
    lock_path = os.path.join(real, LOCK)
    for _ in range(3):  # the lock file replaced under us: lock the new one
        fd = _open_and_lock(path, lock_path)
        try:
            same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    else:
        raise WorkdirError(f"the lock file {lock_path} keeps being replaced: is another run on it?")
    stale = _holder(lock_path)
    if stale:
        print(
            f"warning: taking over the lock of {path} from {_describe(stale)}, which is gone",
            file=sys.stderr,
            flush=True,
        )
    me = json.dumps(
        {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    ).encode()
    try:  # the record first, then cut to its length: a reader never finds it empty
        os.pwrite(fd, me, 0)
        os.ftruncate(fd, len(me))
    except OSError as e:
        os.close(fd)
        raise WorkdirError(describe_os_error(e, f"cannot write to the workdir {path}")) from e
    _held[real] = (fd, 1)
    return real


# flock is not offered by every file system (Lustre mounted without flock, some FUSE)
_NO_FLOCK = (errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK)


def _open_and_lock(path: str, lock_path: str) -> int:
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise WorkdirError(describe_os_error(e, f"cannot write to the workdir {path}")) from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in _NO_FLOCK:
            print(
                f"warning: the file system of {path} does not support locks; running without "
                "the one-writer check (start one run per workdir)",
                file=sys.stderr,
                flush=True,
            )
            return fd
        os.close(fd)
        if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise WorkdirError(describe_os_error(e, f"cannot lock the workdir {path}")) from e
        raise WorkdirError(
            f"the workdir {path} is in use by {_describe(_holder(lock_path))}: wait for that "
            "run to end, stop it, or use another --workdir"
        ) from None
    return fd


def release(key: str) -> None:
    """Release a lock taken by `acquire` (its returned key)."""
    fd, depth = _held[key]
    if depth > 1:
        _held[key] = (fd, depth - 1)
        return
    del _held[key]
    with contextlib.suppress(OSError):  # empty: the next holder finds no stale record
        os.ftruncate(fd, 0)
    os.close(fd)


@contextlib.contextmanager
def hold(workdir: str):
    if not is_writer():  # the other processes of a multi-host run write nothing
        yield
        return
    key = acquire(workdir)
    try:
        yield
    finally:
        release(key)
