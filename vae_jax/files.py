"""Atomic writes: a reader (or a crash) never sees half a file."""

from __future__ import annotations

import json
import os

from vae_jax.distributed import is_writer


def write_text_atomic(path: str, text: str) -> None:
    """Write to `path + ".tmp"`, then rename over `path`. Only process 0 of a multi-host
    run writes (vae_jax.distributed); the others return."""
    if not is_writer():
        return
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())  # on disk before the rename: a power loss leaves old or new
    os.replace(tmp, path)


def write_json_atomic(path: str, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=2))


def append_line(path: str, record: dict) -> None:
    """Append one whole line with one write (a killed process cannot leave half of it;
    a short write, on a full disk, is continued or raises). Process 0 only."""
    if not is_writer():
        return
    data = (json.dumps(record) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)
