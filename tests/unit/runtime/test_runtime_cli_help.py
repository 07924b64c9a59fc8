"""Every verb and every option of netctl has a help line; completion scripts cover them."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

import pytest

from runtime.cli import build_parser


def walk(parser: argparse.ArgumentParser, path: str = "netctl") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if not name.startswith("_"):  # internal helpers netctl starts itself
                    yield from walk(sub, f"{path} {name}")


def test_every_verb_and_option_has_a_help_line() -> None:
    missing = []
    for path, parser in walk(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                helped = {c.dest for c in action._choices_actions if c.help}
                missing += [f"{path} {n}" for n in action.choices if not n.startswith("_") and n not in helped]
                continue
            if not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def complete(shell_script: str, words: list[str]) -> list[str]:
    """What bash offers after ``words`` (the last one being completed)."""
    script = (shell_script + "\n"
              f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
              f"COMP_CWORD={len(words) - 1}\n"
              "_netctl\n"
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    proc = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True,
                          timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    return sorted(w for w in proc.stdout.split("\n") if w)


def test_bash_completion_offers_verbs_and_options() -> None:
    from runtime.completion import bash

    script = bash(build_parser())
    assert complete(script, ["netctl", "comp"]) == ["completion"]
    assert complete(script, ["netctl", "net"]) == ["network"]
    assert complete(script, ["netctl", "network", "cr"]) == ["create"]
    assert "--subnet" in complete(script, ["netctl", "network", "create", "--"])
    assert complete(script, ["netctl", "container", "in"]) == ["inspect"]
    # an option's value is not taken for a verb
    assert "--publish" in complete(script, ["netctl", "run", "--name", "x", "--pu"])
    assert complete(script, ["netctl", "run", "--", "sle"]) == []


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_verb_prints_a_script(shell: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "runtime.cli", "completion", shell],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "complete -F _netctl netctl" in proc.stdout
    if shell == "zsh":
        assert "bashcompinit" in proc.stdout
    check = subprocess.run(["bash", "-n"], input=proc.stdout, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
