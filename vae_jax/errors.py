"""Errors whose one-line messages name the problem and the fix; the CLIs print them and exit 2.

`machine_failure(e)` turns what the machine raises (a full disk, a read-only folder, a device
out of memory) into such a line, whatever library raised it.
"""

import errno
import re


class RunError(RuntimeError):
    """A problem a run cannot go on with; the message names it and the fix."""


class ConfigError(ValueError):
    """A config value that cannot work. The message names field, value and allowed values."""


def fail(field: str, value, allowed: str):
    raise ConfigError(f"config.{field}={value!r} is invalid: {allowed}")


def check_positive_int(section, name: str, prefix: str, allow_zero: bool = False) -> None:
    value = section[name]
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        kind = "non-negative" if allow_zero else "positive"
        fail(f"{prefix}.{name}", value, f"must be a {kind} integer")


def check_positive_ints(section, name: str, prefix: str, allow_empty: bool = False) -> None:
    value = tuple(section[name])
    if (not value and not allow_empty) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
    ):
        fail(f"{prefix}.{name}", section[name], "must be a tuple of positive integers")


def check_choice(section, name: str, prefix: str, options) -> None:
    if section[name] not in options:
        fail(f"{prefix}.{name}", section[name], f"choose one of {sorted(options)}")


class WorkdirError(RunError):
    """The workdir cannot be used (a file, read-only, held by another run, full disk)."""


class CheckpointError(RunError):
    """No checkpoint of a run restores, or one cannot be written; names the folder and the fix."""


class NonFiniteLossError(RunError):
    """Training skipped too many non-finite steps; the message names the steps and the
    last finite checkpoint."""


# What the command lines print as one line (DataError, vae_jax.data's, is a RunError).
USER_ERRORS = (ConfigError, RunError)


class Interrupted(BaseException):
    """A run stopped by a signal; `signum` gives the exit code. A BaseException, like
    KeyboardInterrupt, so that no library's `except Exception` swallows it."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum


def describe_os_error(e: OSError, what: str) -> str:
    """One line for an OSError of the machine: what failed, on which path, and the fix."""
    where = e.filename or ""
    if e.errno == errno.ENOSPC:
        return f"{what}: the disk is full ({where}); free space there or use another --workdir"
    if e.errno == errno.EDQUOT:
        return f"{what}: disk quota exceeded ({where}); free space or use another --workdir"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        kind = "read-only file system" if e.errno == errno.EROFS else "permission denied"
        return f"{what}: {kind} ({where}); use a writable --workdir"
    if e.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"{what}: a file stands where a folder is needed ({where}); pass a folder path"
    if e.errno == errno.EIO:
        return f"{what}: input/output error ({where}): the disk or network file system failed"
    return f"{what}: {e.strerror or e} ({where})"


# The OSErrors that are the machine's (a full disk, no permission, a failed device); any
# other (a file our code expected and did not find, ...) is a bug and keeps its traceback.
MACHINE_ERRNOS = (
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.EIO,
    errno.ENOTDIR,
)


def machine_failure(e: BaseException) -> str | None:
    """One line (what failed, the path or size, the fix) for a failure of the machine found
    anywhere in `e`'s chain of causes, or None when `e` is not one (a bug: let it show)."""
    seen = []
    while e is not None and e not in seen:
        seen.append(e)
        if isinstance(e, OSError) and e.errno in MACHINE_ERRNOS:
            return describe_os_error(e, "a file of the run could not be written or read")
        text = " ".join(str(e).split())
        if "No space left on device" in text or "ENOSPC" in text:
            return (
                "the disk is full (" + _path_in(text) + "); free space there or use another "
                "--workdir, then run the same command again to resume"
            )
        if re.search(r"out of memory", text, re.I) or (
            "RESOURCE_EXHAUSTED" in text and re.search(r"memory|allocat", text, re.I)
        ):
            return (
                f"the device ran out of memory ({_size_in(text)}): lower data.batch_size, "
                "eval.batch_size, eval.loglik_batch_size or eval.loglik_chunk, or use a "
                "smaller model"
            )
        e = e.__cause__ or e.__context__
    return None


def _path_in(text: str) -> str:
    found = re.findall(r"[\"'](/[^\"']+)[\"']", text) or re.findall(
        r"(?<![\w.])(/[^\s'\",:;]+)", text
    )
    return found[0] if found else "path not reported"


def _size_in(text: str) -> str:
    tpu = re.search(r"Used ([\d.]+[KMGT]) of ([\d.]+[KMGT]) hbm", text)
    if tpu:
        return f"{tpu.group(1)} needed, {tpu.group(2)} of HBM"
    found = re.search(r"allocat\w* (\d+) bytes", text) or re.search(
        r"(\d+(?:\.\d+)?\s*[KMGT]i?B)", text
    )
    if not found:
        return "size not reported"
    size = found.group(1)
    return f"{int(size) / 2**30:.1f} GiB requested" if size.isdigit() else f"{size} requested"
