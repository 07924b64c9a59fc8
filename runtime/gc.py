"""``netctl gc``: collect what dead containers, a killed netctl or stale state left behind."""

from __future__ import annotations

import os

from . import netns
from .containers import _teardown_networking, alive
from .context import Context
from .networks import load_conflist


def collect(ctx: Context) -> list[str]:
    """Detach dead containers, GC every network with the live attachments, drop orphan
    namespaces and cache entries. Returns what it did (and what failed), one line each."""
    report: list[str] = []
    with ctx.state.locked():
        containers = ctx.state.containers()
        for c in containers:
            if c.state == "running" and not alive(c) and c.endpoints:
                fails = _teardown_networking(ctx, c, quiet=True)
                c.state = "exited"
                ctx.state.save_container(c)
                report.append(f"detached exited container {c.name}" + (f" ({'; '.join(fails)})" if fails else ""))
        valid = {(c.id, ep.ifname) for c in ctx.state.containers() for ep in c.endpoints}
        for net in ctx.state.networks():
            if net.driver != "bridge":
                continue
            for failure in ctx.cni.gc(load_conflist(ctx, net), valid):
                report.append(f"{net.name}: {failure}")
        from . import conflist as cl

        own_ns = {(c.id, "lo") for c in ctx.state.containers()
                  if c.endpoints and c.netns.startswith(ctx.paths.netns)}
        for failure in ctx.cni.gc(cl.loopback(), own_ns):
            report.append(f"loopback: {failure}")
        known = {c.netns for c in ctx.state.containers() if c.endpoints}
        try:
            names = os.listdir(ctx.paths.netns)
        except FileNotFoundError:
            names = []
        for name in names:
            path = os.path.join(ctx.paths.netns, name)
            if path not in known:
                netns.remove(path)
                report.append(f"removed orphan network namespace {name}")
    return report
