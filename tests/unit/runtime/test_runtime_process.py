"""A container's first process (runtime/process.py): command checks, liveness by PID and
start time, adoption from the pidfile, the start lock (no root needed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from runtime import process
from runtime.errors import NetctlError
from runtime.models import Container


def ctr(pid: int = 0, pid_start: int = 0, state: str = "running") -> Container:
    return Container(id="c" * 64, name="c1", created="2026-01-01T00:00:00Z", command=["sleep", "1"],
                     hostname="h", network_mode="none", pid=pid, pid_start=pid_start, state=state)


def test_check_command(tmp_path: Path) -> None:
    process.check_command("sh")
    process.check_command("/bin/sh")
    with pytest.raises(NetctlError) as exc:
        process.check_command("no-such-command-here")
    assert exc.value.code == 127 and "executable file not found in $PATH" in exc.value.msg
    with pytest.raises(NetctlError) as exc:
        process.check_command(str(tmp_path / "absent"))
    assert exc.value.code == 127 and "no such file or directory" in exc.value.msg
    plain = tmp_path / "plain"
    plain.write_text("#!/bin/sh\n")
    plain.chmod(0o644)
    if os.geteuid() != 0 or not os.access(plain, os.X_OK):
        with pytest.raises(NetctlError) as exc:
            process.check_command(str(plain))
        assert exc.value.code == 126 and "permission denied" in exc.value.msg
    with pytest.raises(NetctlError) as exc:
        process.check_command(str(tmp_path))
    assert exc.value.code == 126


def test_alive_checks_the_start_time() -> None:
    me = os.getpid()
    started = process.start_time(me)
    assert started > 0
    assert process.alive(ctr(me, started))
    assert process.alive(ctr(me, 0))             # records from before start times were kept
    assert not process.alive(ctr(me, started + 1))   # the PID now belongs to another process
    assert not process.alive(ctr(0))
    assert process.start_time(2**22 + 12345) == 0


def test_a_zombie_is_not_alive() -> None:
    proc = subprocess.Popen(["true"])
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)   # exited, not reaped yet
    try:
        assert not process.alive(ctr(proc.pid))
    finally:
        proc.wait()


def test_adopt_reads_the_pidfile_of_an_interrupted_start(tmp_path: Path) -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / process.PIDFILE).write_text(f"{proc.pid}\n")
        c = ctr(state="created")
        assert process.adopt(c, str(tmp_path))
        assert c.pid == proc.pid and c.pid_start == process.start_time(proc.pid)
        # a container that started normally keeps its own PID
        other = ctr(pid=os.getpid(), state="running")
        process.adopt(other, str(tmp_path))
        assert other.pid == os.getpid()
    finally:
        proc.kill()
        proc.wait()
    assert not process.adopt(ctr(state="created"), str(tmp_path / "nowhere"))


def test_start_lock(tmp_path: Path) -> None:
    assert process.start_abandoned(str(tmp_path))           # no lock file: nobody starts it
    fd = process.hold_start_lock(str(tmp_path))
    try:
        assert not process.start_abandoned(str(tmp_path))
        # a child that inherited the lock (the launcher) keeps it held after we let go
        child = subprocess.Popen(["sleep", "30"], pass_fds=(fd,))
        process.release_start_lock(fd)
        assert not process.start_abandoned(str(tmp_path))
        child.kill()
        child.wait()
        assert process.start_abandoned(str(tmp_path))
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
