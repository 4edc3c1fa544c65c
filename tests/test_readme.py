"""The README documents every command the CLI has, and the commands it documents exist."""

import re
from pathlib import Path

from govreports.flows.cli import build_parser

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def commands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)


def test_every_command_is_documented():
    documented = set(re.findall(r"^### `govreports ([a-z-]+)", README, flags=re.M))
    assert commands() == documented


def test_every_command_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        assert command.description, name
        for action in command._actions:
            if action.dest != "help":
                assert action.help, f"{name} {action.dest}"


def test_the_two_commands_are_the_makefile_targets():
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text(encoding="utf-8")
    assert "`make demo`" in README and "`make test`" in README
    assert re.search(r"^demo: install$", makefile, flags=re.M) and re.search(r"^test: install$", makefile, flags=re.M)
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.strip().splitlines()[-1] == "make test"
