"""Pid-file staleness and signalling rules of dnsd.control (no dnsd started here)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dnsd import control

# a process that looks like dnsd on its command line: "-m dnsd --dir DIR"
FAKE = "import signal, sys, time; {setup}; sys.stdout.write('ok\\n'); sys.stdout.flush(); time.sleep(30)"


def fake_dnsd(dns_dir: str, *, cwd: str | None = None, hup: bool = False) -> subprocess.Popen[str]:
    setup = "signal.signal(signal.SIGHUP, lambda *a: None)" if hup else "pass"
    proc = subprocess.Popen(
        [sys.executable, "-c", FAKE.format(setup=setup), "-m", "dnsd", "--dir", dns_dir],
        stdout=subprocess.PIPE, text=True, cwd=cwd,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ok\n"
    return proc


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    made: list[subprocess.Popen[str]] = []
    yield made
    for p in made:
        p.kill()
        p.wait()


def test_no_pid_file_garbage_and_dead_pid(tmp_path: Path) -> None:
    d = str(tmp_path)
    assert control.find_running(d) is None
    (tmp_path / control.PID_FILE).write_text("garbage\n")
    assert control.read_pid(d) is None and control.find_running(d) is None
    dead = subprocess.Popen(["true"])
    dead.wait()
    control.write_pid(d, dead.pid)
    assert control.find_running(d) is None


def test_recycled_pid_of_another_program_is_stale(tmp_path: Path, procs: list) -> None:  # type: ignore[type-arg]
    other = subprocess.Popen(["sleep", "30"])
    procs.append(other)
    control.write_pid(str(tmp_path), other.pid)
    assert control.find_running(str(tmp_path)) is None
    assert control.reload(str(tmp_path)) is False  # and it is never signalled
    assert control.stop(str(tmp_path)) is False
    assert other.poll() is None
    assert not (tmp_path / control.PID_FILE).exists()  # stale pid file removed


def test_dnsd_of_another_directory_is_not_ours(tmp_path: Path, procs: list) -> None:  # type: ignore[type-arg]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    p = fake_dnsd(str(tmp_path / "b"))
    procs.append(p)
    control.write_pid(str(tmp_path / "a"), p.pid)
    assert control.find_running(str(tmp_path / "a")) is None
    control.write_pid(str(tmp_path / "b"), p.pid)
    assert control.find_running(str(tmp_path / "b")) == p.pid


def test_relative_dir_is_resolved_against_the_process_cwd(tmp_path: Path, procs: list) -> None:  # type: ignore[type-arg]
    (tmp_path / "dns").mkdir()
    p = fake_dnsd("dns", cwd=str(tmp_path))
    procs.append(p)
    control.write_pid(str(tmp_path / "dns"), p.pid)
    assert control.find_running(str(tmp_path / "dns")) == p.pid


def test_zombie_is_dead(tmp_path: Path) -> None:
    p = fake_dnsd(str(tmp_path))
    control.write_pid(str(tmp_path), p.pid)
    p.kill()
    deadline = time.monotonic() + 5
    while control.find_running(str(tmp_path)) is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert control.find_running(str(tmp_path)) is None  # a zombie until we reap it below
    p.wait()


def test_reload_waits_for_the_hup_handler(tmp_path: Path, procs: list) -> None:  # type: ignore[type-arg]
    d = str(tmp_path)
    starting = fake_dnsd(d, hup=False)  # like a dnsd that has not bound its sockets yet
    procs.append(starting)
    control.write_pid(d, starting.pid)
    assert not control.hup_handled(starting.pid)
    assert control.reload(d) is False
    assert starting.poll() is None  # the default SIGHUP action would have killed it
    ready = fake_dnsd(d, hup=True)
    procs.append(ready)
    control.write_pid(d, ready.pid)
    assert control.hup_handled(ready.pid)
    assert control.reload(d) is True
    assert ready.poll() is None


def test_stop_terminates_and_cleans_up(tmp_path: Path) -> None:
    d = str(tmp_path)
    p = fake_dnsd(d)
    control.write_pid(d, p.pid)
    assert control.stop(d, timeout=5) is True
    assert p.wait(5) == -signal.SIGTERM
    assert not os.path.exists(tmp_path / control.PID_FILE)


def test_console_script_form_is_recognised(tmp_path: Path, procs: list) -> None:  # type: ignore[type-arg]
    script = tmp_path / "bin" / "dnsd"  # what the "dnsd" console script looks like in ps
    script.parent.mkdir()
    script.write_text("import sys, time\nsys.stdout.write('ok\\n'); sys.stdout.flush(); time.sleep(30)\n")
    (tmp_path / "dns").mkdir()
    p = subprocess.Popen([sys.executable, str(script), f"--dir={tmp_path / 'dns'}"],
                         stdout=subprocess.PIPE, text=True)
    procs.append(p)
    assert p.stdout is not None and p.stdout.readline() == "ok\n"
    control.write_pid(str(tmp_path / "dns"), p.pid)
    assert control.find_running(str(tmp_path / "dns")) == p.pid


# --- the supervisor (netctl's agent): serve() leaves starting dnsd to it -------------------

#: a supervisor that, on SIGUSR1, starts a fake dnsd (HUP handled = serving) and records it
SUPERVISOR = """
import signal, subprocess, sys, time
from dnsd import control
d = sys.argv[1]
kids = []
def nudged(*_):
    kids.append(subprocess.Popen([sys.executable, "-c", "import signal, time; "
        "signal.signal(signal.SIGHUP, lambda *a: None); time.sleep(30)", "-m", "dnsd", "--dir", d]))
    time.sleep(0.2)  # as a real dnsd: serving a little after its start
    control.write_pid(d, kids[-1].pid)
signal.signal(control.NUDGE, nudged)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so that "finally" stops the kids
control.claim_supervision(d, __import__("os").getpid())
sys.stdout.write("ok\\n"); sys.stdout.flush()
try:
    time.sleep(30)
finally:
    for k in kids:
        k.kill()
"""


def test_supervisor_record(tmp_path: Path, procs: list) -> None:  # type: ignore[type-arg]
    d = str(tmp_path)
    assert control.find_supervisor(d) is None
    control.claim_supervision(d, os.getpid())
    assert control.find_supervisor(d) == os.getpid()
    control.release_supervision(d, os.getpid() + 1)  # not ours to remove
    assert control.find_supervisor(d) == os.getpid()
    control.release_supervision(d, os.getpid())
    assert control.find_supervisor(d) is None
    # a dead supervisor, and a recycled pid (another start time), are no supervisor
    dead = subprocess.Popen(["true"])
    dead.wait()
    control.claim_supervision(d, dead.pid)
    assert control.find_supervisor(d) is None
    other = subprocess.Popen(["sleep", "30"])
    procs.append(other)
    (tmp_path / control.SUPERVISOR_FILE).write_text(f'{{"pid": {other.pid}, "start": 1}}')
    assert control.find_supervisor(d) is None


def test_serve_lets_the_supervisor_start_dnsd(tmp_path: Path) -> None:
    d = str(tmp_path)
    sup = subprocess.Popen([sys.executable, "-c", SUPERVISOR, d], stdout=subprocess.PIPE, text=True,
                           env=dict(os.environ, PYTHONPATH=str(Path(control.__file__).parents[1])))
    try:
        assert sup.stdout is not None and sup.stdout.readline() == "ok\n"
        pid = control.serve(d, timeout=10)
        # the dnsd is the supervisor's child, not ours
        assert pid != os.getpid() and control.find_running(d) == pid
        with open(f"/proc/{pid}/stat") as fh:
            assert int(fh.read().rsplit(")", 1)[1].split()[1]) == sup.pid
        assert control.serve(d, timeout=10) == pid  # a serving dnsd is reloaded, not replaced
    finally:
        sup.terminate()
        sup.wait(10)


def test_serve_without_a_live_supervisor_starts_dnsd_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # no dnsd is started here: ensure_running is where serve() goes, and that is all we check
    called: list[str] = []
    monkeypatch.setattr(control, "ensure_running", lambda d, timeout: called.append(d) or 4242)
    assert control.serve(str(tmp_path)) == 4242 and called == [str(tmp_path)]
