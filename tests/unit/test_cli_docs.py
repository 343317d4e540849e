"""Docs that cannot drift: every command has help and a README entry; usage errors exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from hhsync import __version__
from hhsync.cli import app

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
COMMANDS = typer.main.get_command(app).commands  # type: ignore[attr-defined]


def test_the_five_commands() -> None:
    assert sorted(COMMANDS) == ["apply", "bootstrap-timers", "check", "status", "sync"]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help_and_a_readme_entry(name: str) -> None:
    assert COMMANDS[name].help
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    assert f"`hhsync {name}" in README


def test_version_and_usage_errors() -> None:
    assert CliRunner().invoke(app, ["--version"]).output == f"hhsync {__version__}\n"
    result = CliRunner().invoke(app, ["sync", "--config-typo"])
    assert result.exit_code == 2
    result = CliRunner().invoke(app, ["--config", "/nonexistent.toml", "sync", "--all"])
    assert result.exit_code == 2
    assert result.stderr == (
        "hhsync: error: /nonexistent.toml: cannot read the configuration file: "
        "No such file or directory\n"
    )


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("name", ["", *sorted(COMMANDS)])
def test_help_texts_are_shown_as_written(name: str) -> None:
    """No markup language eats part of a help text ("[run] metrics_file" once lost "[run]")."""
    command = COMMANDS[name] if name else typer.main.get_command(app)
    result = CliRunner().invoke(app, [*([name] if name else []), "--help"], env={"COLUMNS": "400"})
    shown = _words(result.output)
    texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
    assert [t for t in texts if _words(t) not in shown] == []
