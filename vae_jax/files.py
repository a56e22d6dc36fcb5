"""Atomic writes: a reader (or a crash) never sees half a file."""

from __future__ import annotations

import json
import os


def write_text_atomic(path: str, text: str) -> None:
    """Write to `path + ".tmp"`, then rename over `path`."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())  # on disk before the rename: a power loss leaves old or new
    os.replace(tmp, path)


def write_json_atomic(path: str, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=2))
