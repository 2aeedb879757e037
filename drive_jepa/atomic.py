"""Atomic file writes: readers see the old file or the new one, never a partial one, and a crash leaves no
half-written result (the one home for temp-file-and-rename in the project).

The temporary file lives next to the target (same filesystem, so the rename is atomic), is created with the
process umask like an ordinary file, is flushed and fsync'ed before `os.replace`, and is removed again if
writing fails."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_file(
    path: Path | str, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None
) -> Iterator[IO[Any]]:
    """Open a temporary file for writing (`mode` "w" or "wb"; `encoding` / `newline` as `open` for text) that
    replaces `path` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        binary = "b" in mode
        with open(
            tmp, mode.replace("w", "x"), encoding=None if binary else encoding, newline=None if binary else newline
        ) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path | str, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_file(path) as f:
        f.write(text)
    return Path(path)


def write_json_atomic(path: Path | str, data: Any, indent: int | None = 4) -> Path:
    """Write `data` as JSON to `path` atomically."""
    with atomic_file(path) as f:
        json.dump(data, f, indent=indent)
    return Path(path)
