"""The README documents every command the CLI has, and the commands it documents exist."""

import re
from pathlib import Path

import typer

from govreports.flows.cli import app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def commands() -> dict:
    return typer.main.get_command(app).commands


def test_every_command_is_documented():
    documented = set(re.findall(r"^### `govreports ([a-z-]+)", README, flags=re.M))
    assert set(commands()) == documented


def test_every_command_has_help():
    for name, command in commands().items():
        assert command.help and command.short_help, name
        for param in command.params:
            assert param.help, f"{name} {param.name}"


def test_the_two_commands_are_the_makefile_targets():
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text(encoding="utf-8")
    assert "`make demo`" in README and "`make test`" in README
    assert re.search(r"^demo: install$", makefile, flags=re.M) and re.search(r"^test: install$", makefile, flags=re.M)
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.strip().splitlines()[-1] == "make test"
