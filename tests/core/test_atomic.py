"""drive_jepa.atomic: the new content or the old, never a partial file, no temp file left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drive_jepa.atomic import atomic_file, write_json_atomic, write_text_atomic


def test_writes_replace_and_leave_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "a.json"
    write_json_atomic(path, {"x": 1})
    write_json_atomic(path, {"x": 2}, indent=None)
    assert json.loads(path.read_text()) == {"x": 2}
    write_text_atomic(tmp_path / "b.txt", "héllo\n")
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo\n"
    with atomic_file(tmp_path / "c.bin", "wb") as f:
        f.write(b"\x00\x01")
    assert (tmp_path / "c.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.json", "b.txt", "c.bin"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    write_json_atomic(path, {"old": True})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"bad": object()})  # not JSON-serialisable: fails mid-write
    assert json.loads(path.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_file_mode_follows_the_umask_like_a_plain_write(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    write_text_atomic(tmp_path / "atomic.txt", "x")
    assert (tmp_path / "atomic.txt").stat().st_mode == plain.stat().st_mode
