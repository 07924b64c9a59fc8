"""scripts/setup: it waits for another apt/dpkg instead of failing, and a second run with
nothing changed reinstalls nothing and prints nothing (no packaging warnings either)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "scripts"))

import aptlock  # noqa: E402


def test_aptlock_finds_a_lock_held_by_another_process(tmp_path: Path) -> None:
    free, held = tmp_path / "free", tmp_path / "held"
    free.write_text("")
    held.write_text("")
    assert aptlock.holder((str(free), str(held), str(tmp_path / "absent"))) is None
    # a child holds the lock the way dpkg does (fcntl); our probe must see it
    child = subprocess.Popen([sys.executable, "-c",
                              "import fcntl, os, sys, time\n"
                              f"fd = os.open({str(held)!r}, os.O_RDWR)\n"
                              "fcntl.lockf(fd, fcntl.LOCK_EX)\n"
                              "print('locked', flush=True)\n"
                              "sys.stdin.read()\n"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "locked\n"
        assert aptlock.holder((str(free), str(held))) == str(held)
        # and the probe did not take it away from the holder
        fd = os.open(held, os.O_RDWR)
        try:
            with pytest.raises(OSError):
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)
    assert aptlock.holder((str(free), str(held))) is None


@pytest.mark.skipif(os.geteuid() != 0 or not (ROOT / ".venv" / ".netctl-setup").exists(),
                    reason="needs root and a finished scripts/setup")
def test_setup_again_changes_nothing_and_says_nothing() -> None:
    stamp = ROOT / ".venv" / ".netctl-setup"
    before = stamp.stat().st_mtime_ns
    proc = subprocess.run([str(ROOT / "scripts" / "setup")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""
    assert stamp.stat().st_mtime_ns == before  # pip did not run
