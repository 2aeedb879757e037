"""The documentation stays true: every `drive-jepa …` command in a fenced shell block of README.md and docs/*.md
names a real command whose arguments that command accepts. Config commands (train, pretrain, cache-data,
agent-config, eval) compose their config with `--cfg` (unknown keys, bad values and missing group options fail);
the others parse their arguments with their own parser and stop before doing any work. Placeholders (SCENES_DIR,
$OPENSCENE_DATA_ROOT) are fine: only the command line's shape is checked here; what the commands do is tested in
their own tests."""

from __future__ import annotations

import argparse
import re
import shlex

import pytest

from drive_jepa import cli
from tests.conftest import REPO_ROOT

CONFIG_COMMANDS = {"train", "pretrain", "cache-data", "agent-config", "eval"}
DOC_FILES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


def documented_commands() -> list[tuple[str, list[str]]]:
    """(where, argv after `drive-jepa`) for every documented command line."""
    out = []
    for path in DOC_FILES:
        text = path.read_text(encoding="utf-8")
        for block in re.findall(r"```(?:bash|sh|shell|console)?\n(.*?)```", text, re.S):
            joined = re.sub(r"\\\n\s*", " ", block)
            for line in joined.splitlines():
                for part in re.split(r"&&|;|\|", line):
                    part = part.strip()
                    m = re.search(r"(?:^|\s)(?:uv run |\.venv/bin/)?drive-jepa\s+(.*)$", part)
                    if not m or part.startswith("#"):
                        continue
                    argv = shlex.split(m.group(1), comments=True)
                    argv = [a for a in argv if not a.startswith(">")]
                    out.append((f"{path.relative_to(REPO_ROOT)}: drive-jepa {m.group(1)[:80]}", argv))
    return out


COMMANDS = documented_commands()


class _Parsed(Exception):
    """Raised instead of running the command once its arguments parsed."""


def test_the_docs_hold_commands():
    assert len(COMMANDS) >= 30  # the extraction works (README + docs hold ~40)


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_documented_command_is_accepted(where: str, argv: list[str], monkeypatch, capsys) -> None:
    assert argv and argv[0] in cli.COMMANDS, f"{where}: no command {argv[:1]}"
    command, args = argv[0], argv[1:]
    if "--help" in args or "-h" in args:
        return
    if command in CONFIG_COMMANDS:
        rc = cli.main([command, *[a for a in args if a != "--cfg"], "--cfg"])
        assert rc == 0, f"{where}: {capsys.readouterr().err.strip()}"
        return

    depth = [0]  # only the outermost parse stops the command (sub-parsers parse inside it)

    for name in ("parse_args", "parse_intermixed_args", "parse_known_args"):
        original = getattr(argparse.ArgumentParser, name)

        def patched(self, *a, _original=original, **k):  # type: ignore[no-untyped-def]
            depth[0] += 1
            try:
                result = _original(self, *a, **k)
            finally:
                depth[0] -= 1
            if depth[0] == 0:
                raise _Parsed
            return result

        monkeypatch.setattr(argparse.ArgumentParser, name, patched)
    try:
        cli.main(argv)
    except _Parsed:
        return
    except SystemExit as exc:
        pytest.fail(f"{where}: rejected ({exc.code}): {capsys.readouterr().err.strip()[-300:]}")
    pytest.fail(f"{where}: the command ran without parsing arguments through argparse")


@pytest.mark.parametrize("argv", [["lite", "--no-such-flag"], ["train", "stepz=3"], ["report", "--mode", "nope"]])
def test_the_check_rejects_what_the_commands_reject(argv: list[str], monkeypatch, capsys) -> None:
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        test_documented_command_is_accepted("test", argv, monkeypatch, capsys)
