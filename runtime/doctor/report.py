"""Hops, causes and the verdict of a diagnosis, and how they are printed (pure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .facts import ProbeResult

Status = Literal["ok", "fail", "info"]
MARKS = {"ok": "✔", "fail": "✘", "info": "–"}
#: causes about names only: the address may still be reachable
DNS_CODES = frozenset({"no-dns-default-bridge", "dns-disabled", "dns-other-network", "dnsd-down",
                       "dnsd-no-listener", "dns-failed", "dns-timeout", "dns-wrong"})


@dataclass(frozen=True)
class Hop:
    """One step of the path and what was found there."""

    name: str
    status: Status
    summary: str
    #: what was read from the kernel or state to decide
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cause:
    """A reason the path is broken; the lowest ``rank`` is the most fundamental."""

    code: str
    rank: int
    message: str
    fix: str
    hop: str


@dataclass(frozen=True)
class Verdict:
    ok: bool
    summary: str
    fix: str | None = None
    #: the code of the cause the verdict names
    cause: str | None = None


@dataclass(frozen=True)
class Report:
    source: str
    target: str
    proto: str
    port: int | None
    hops: tuple[Hop, ...]
    verdict: Verdict
    causes: tuple[Cause, ...] = ()
    probe: ProbeResult | None = None

    def to_json(self) -> dict[str, Any]:
        """The report as plain data (``--json``; tuples are JSON arrays)."""
        return asdict(self)


@dataclass
class Findings:
    """Hops and causes collected while walking the path (``walk.Walk`` is one)."""

    hops: list[Hop] = field(default_factory=list)
    causes: list[Cause] = field(default_factory=list)

    def ok(self, hop: str, summary: str, *evidence: str) -> None:
        self.hops.append(Hop(hop, "ok", summary, tuple(e for e in evidence if e)))

    def info(self, hop: str, summary: str, *evidence: str) -> None:
        self.hops.append(Hop(hop, "info", summary, tuple(e for e in evidence if e)))

    def fail(self, hop: str, summary: str, *evidence: str, code: str = "", rank: int = 0, fix: str = "",
             why: str = "") -> None:
        """A ✘ hop; with ``code`` also the cause it names (``why``: its message, the
        summary when not given; ``rank``: lower is more fundamental)."""
        self.hops.append(Hop(hop, "fail", summary, tuple(e for e in evidence if e)))
        if code and all(c.code != code for c in self.causes):
            self.causes.append(Cause(code, rank, why or summary, fix, hop))

    def failed(self, hop: str) -> bool:
        return any(h.name == hop and h.status == "fail" for h in self.hops)

    def ranked(self) -> list[Cause]:
        return sorted(self.causes, key=lambda c: c.rank)


def render_text(report: Report) -> str:
    """The report for a terminal: one line per hop, evidence indented, verdict and fix."""
    what = report.proto if report.port is None else f"{report.proto}/{report.port}"
    lines = [f"netctl doctor: {report.source} → {report.target} ({what})"]
    width = max((len(h.name) for h in report.hops), default=0)
    for h in report.hops:
        lines.append(f"  {MARKS[h.status]} {h.name.ljust(width)}  {h.summary}")
        for ev in h.evidence:
            lines.append(f"  {' ' * (width + 4)}· {ev}")
    v = report.verdict
    lines.append(f"verdict: {'✔' if v.ok else '✘'} {v.summary}")
    if v.fix:
        lines.append(f"fix: {v.fix}")
    return "\n".join(lines)
