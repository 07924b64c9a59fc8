"""The README's walkthrough, command by command, inside ``netctl sandbox`` as it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.netns

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def walkthrough() -> list[str]:
    """The commands of the README's sandbox block, without the sandbox line, the comments
    and the final exit."""
    block = next(b for b in re.findall(r"```sh\n(.*?)```", README, re.S) if "netctl sandbox" in b)
    cmds = [re.sub(r"\s{2,}#.*$", "", line).strip() for line in block.splitlines()]
    assert cmds[0].endswith("netctl sandbox") and cmds[-1] == "exit"
    return cmds[1:-1]


def test_readme_walkthrough_runs_in_a_sandbox() -> None:
    cmds = walkthrough()
    # one line may fail on purpose: the README says so ("fails: networks are isolated")
    script = "\n".join(f"{c} || echo FAILED={i}" for i, c in enumerate(cmds))
    proc = subprocess.run([sys.executable, "-m", "runtime.cli", "sandbox", "--", "bash", "-c", script],
                          capture_output=True, text=True, timeout=300, cwd="/")
    assert proc.returncode == 0, proc.stderr
    failed = [cmds[int(i)] for i in re.findall(r"^FAILED=(\d+)$", proc.stdout, re.M)]
    assert failed == ["netctl exec other -- ping -c1 -W1 172.22.16.2"], proc.stdout + proc.stderr
    assert "172.22.16.3\n" in proc.stdout              # web2's address by index
    assert "verdict: ✔ healthy" in proc.stdout         # doctor after connect
