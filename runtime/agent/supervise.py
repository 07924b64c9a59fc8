"""Keep dnsd alive: restart it when it dies, with back-off when it keeps dying.

Pure bookkeeping (:class:`Backoff`) and a thin driver (:class:`DnsdSupervisor`) that the
agent's loop ticks every ~200 ms, so a dead dnsd is replaced within a second. dnsd itself
stays what it was: one process per configuration directory, recorded in ``dnsd.pid``
(dnsd.control), which the bridge plugin may also start; the supervisor only fills the gap
when no live dnsd is recorded while a DNS-enabled network exists.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

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
        from dnsd import control

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

    def to_dict(self) -> dict[str, object]:
        return {"dir": self.dns_dir, "state": self.state, "pid": self.pid,
                "restarts": self.restarts, "last_error": self.last_error,
                "next_retry_in": max(0.0, round(self.backoff.next_try - time.monotonic(), 1))
                if self.state == "backoff" else 0.0}
