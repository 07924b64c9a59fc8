"""Keep dnsd (and the overlay sync process) alive: restart them when they die, with
back-off when they keep dying.

Pure bookkeeping (:class:`Backoff`) and a thin driver (:class:`DnsdSupervisor`) that the
agent's loop ticks every ~200 ms, so a dead dnsd is replaced within a second. dnsd itself
stays what it was: one process per configuration directory, recorded in ``dnsd.pid``
(dnsd.control). The supervisor records itself in the directory (``dnsd.supervisor``), so
the DNS registration plugin leaves starting dnsd to it and nudges it with SIGUSR1 instead
(dnsd.control.serve); it starts dnsd when no live one is recorded while a DNS-enabled
network exists.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field

from dnsd import control
from netplugins.daemon import fork_child

log = logging.getLogger("netctl.agent")

#: a dnsd that ran at least this long before dying was healthy: restart it at once
STABLE_AFTER = 2.0
#: quick deaths in a row that are still restarted at once (a kill is not a crash loop)
FREE_RESTARTS = 3
FIRST_DELAY = 0.5
MAX_DELAY = 30.0


@dataclass
class Backoff:
    """When to try the next restart (pure: times are passed in)."""

    delay: float = 0.0
    next_try: float = 0.0
    #: consecutive quick deaths
    streak: int = 0

    def died(self, now: float, ran_for: float | None) -> None:
        """Note a death after ``ran_for`` seconds (None: unknown, e.g. found dead at start)."""
        if ran_for is not None and ran_for >= STABLE_AFTER:
            self.streak, self.delay = 0, 0.0
        else:
            self.streak += 1
            # a few quick deaths restart at once; then 0.5 s, 1 s, 2 s ... up to 30 s
            over = self.streak - FREE_RESTARTS
            self.delay = 0.0 if over <= 0 else min(MAX_DELAY, FIRST_DELAY * 2 ** (over - 1))
        self.next_try = now + self.delay

    def may_try(self, now: float) -> bool:
        return now >= self.next_try


@dataclass
class DnsdSupervisor:
    """Supervision state of the dnsd of one configuration directory."""

    dns_dir: str
    state: str = "idle"
    pid: int | None = None
    since: float = 0.0
    restarts: int = 0
    last_error: str = ""
    backoff: Backoff = field(default_factory=Backoff)

    def tick(self, now: float | None = None) -> str | None:
        """Look once; restart if needed. Returns a log line when something happened."""
        now = time.monotonic() if now is None else now
        pid = control.find_running(self.dns_dir)
        if pid is not None:
            if pid != self.pid or self.state != "running":
                if pid != self.pid:
                    self.pid, self.since = pid, now
                self.state = "running"
                return f"dnsd running (pid {pid})"
            return None
        if not control.wanted(self.dns_dir):
            changed = self.state != "idle"
            self.state, self.pid = "idle", None
            return "no DNS-enabled network: dnsd not needed" if changed else None
        event = None
        if self.pid is not None:
            # the dnsd we saw is gone (crashed, killed, or exited on its own)
            ran_for = now - self.since
            self.backoff.died(now, ran_for)
            event = f"dnsd (pid {self.pid}) is gone after {ran_for:.1f}s"
            self.pid = None
        if not self.backoff.may_try(now):
            self.state = "backoff"
            return event
        try:
            started = control.start_if_down(self.dns_dir)
        except (OSError, control.DnsdError) as exc:
            self.last_error = str(exc)
            self.backoff.died(now, None)
            self.state = "failed"
            return f"cannot start dnsd: {exc}"
        if started is not None:
            self.restarts += 1
            self.pid, self.since, self.state = started, now, "starting"
            msg = f"dnsd started (pid {started}, restart {self.restarts})"
            return f"{event}; {msg}" if event else msg
        return event

    def claim(self, pid: int) -> None:
        """Tell the DNS plugin that ``pid`` (the agent) starts dnsd for this directory."""
        try:
            control.claim_supervision(self.dns_dir, pid)
        except OSError as exc:  # the plugin then starts dnsd itself, as without an agent
            log.warning("cannot record the agent as dnsd's supervisor: %s", exc)

    def release(self, pid: int) -> None:
        try:
            control.release_supervision(self.dns_dir, pid)
        except OSError as exc:
            log.warning("cannot remove dnsd's supervisor record: %s", exc)

    def to_dict(self) -> dict[str, object]:
        return {"dir": self.dns_dir, "state": self.state, "pid": self.pid,
                "restarts": self.restarts, "last_error": self.last_error,
                "next_retry_in": max(0.0, round(self.backoff.next_try - time.monotonic(), 1))
                if self.state == "backoff" else 0.0}


#: a child that exits with this status was started wrongly (bad usage): no restart loop
USAGE_ERROR = 2


@dataclass
class ChildSupervisor:
    """A long-running child of the agent (the overlay sync process): started at once,
    restarted with the same back-off as dnsd when it exits, stopped with the agent.

    The agent reaps every child itself (``waitpid(-1)``) and hands the exit to
    :meth:`exited`; the child is forked from the agent and exec'd with cwd ``/`` and
    ``python -I``, and gets SIGTERM if the agent dies.
    """

    name: str
    argv: list[str]
    log_path: str
    pid: int | None = None
    state: str = "stopped"
    starts: int = 0
    last_exit: int | None = None
    since: float = 0.0
    backoff: Backoff = field(default_factory=Backoff)

    def tick(self, now: float | None = None) -> str | None:
        """Start the child when it is not running and may be (re)started."""
        now = time.monotonic() if now is None else now
        if self.pid is not None or self.state == "failed" or not self.backoff.may_try(now):
            return None
        pid = _spawn_exec(self.argv, self.log_path)
        if pid < 0:
            self.backoff.died(now, None)
            self.state = "backoff"
            return f"cannot fork {self.name}"
        self.pid, self.since, self.state = pid, now, "running"
        self.starts += 1
        return f"{self.name} started (pid {pid})"

    def exited(self, pid: int, status: int, now: float | None = None) -> str | None:
        """Note the exit of ``pid`` if it is our child; a log line, or None."""
        if pid != self.pid:
            return None
        now = time.monotonic() if now is None else now
        code = os.waitstatus_to_exitcode(status)
        self.pid, self.last_exit = None, code
        if code == USAGE_ERROR:
            self.state = "failed"
            return (f"{self.name} refused its arguments (exit {code}): not restarted "
                    f"(see {self.log_path})")
        self.backoff.died(now, now - self.since)
        self.state = "backoff" if self.backoff.delay else "restarting"
        return f"{self.name} exited ({code}) after {now - self.since:.1f}s"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the child and wait for it (SIGKILL after ``timeout``)."""
        if self.pid is None:
            return
        pid, self.pid, self.state = self.pid, None, "stopped"
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return
            if done:
                return
            time.sleep(0.02)
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "state": self.state, "pid": self.pid, "starts": self.starts,
                "last_exit": self.last_exit, "log": self.log_path}


def _spawn_exec(argv: list[str], log_path: str) -> int:
    """Fork and exec ``argv`` with cwd ``/``, stdin from /dev/null, output to ``log_path``."""
    pid = fork_child(death_signal=signal.SIGTERM)
    if pid != 0:
        return pid
    try:
        os.chdir("/")
        null = os.open(os.devnull, os.O_RDONLY)
        log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.execv(argv[0], argv)
    except BaseException:  # noqa: BLE001 - the forked child must never return
        pass
    os._exit(127)


def overlay_argv(store: str, root_lib: str, root_run: str) -> list[str]:
    """The overlay sync process for ``store``, on the state directories of the agent."""
    argv = [sys.executable, "-I", "-m", "runtime.overlay.syncd", "--store", store]
    if os.path.dirname(root_lib) == os.path.dirname(root_run) and root_lib.endswith("/lib") \
            and root_run.endswith("/run"):
        argv += ["--root", os.path.dirname(root_lib)]  # a NETCTL_ROOT (tests, sandboxes)
    return argv
