"""``netctl gc``: collect what dead containers, a killed netctl or stale state left behind."""

from __future__ import annotations

import os
import shutil

from netplugins.cni.gc import KEEP_NETWORK

from . import conflist as cl
from . import netns, process
from .containers import _teardown_networking
from .context import Context
from .models import Container
from .networks import ensure_builtin, load_conflist


def _settle(ctx: Context, c: Container) -> str:
    """Bring one container's record in line with its process; what was done ("" = nothing).

    A "created" container whose start lock is free lost its netctl mid-``run``: if the
    launcher got the command running it is adopted, otherwise its networks are detached.
    A "running" one whose process is gone is detached (``docker``'s exited state).
    """
    d = ctx.paths.container_dir(c.id)
    if c.state == "created" and process.start_abandoned(d):
        if process.adopt(c, d):
            c.state = "running"
            ctx.state.save_container(c)
            return f"adopted container {c.name} (its netctl died while starting it)"
        fails = _teardown_networking(ctx, c, quiet=True)
        c.state = "exited"
        ctx.state.save_container(c)
        return f"detached container {c.name} that never started" + (f" ({'; '.join(fails)})" if fails else "")
    if c.state == "running" and not process.alive(c) and c.endpoints:
        fails = _teardown_networking(ctx, c, quiet=True)
        c.state = "exited"
        ctx.state.save_container(c)
        return f"detached exited container {c.name}" + (f" ({'; '.join(fails)})" if fails else "")
    return ""


def _orphan_dirs(ctx: Context, known: set[str]) -> list[str]:
    """Container directories without a record: a netctl killed before it saved one (the
    global lock, held by the caller, rules out a ``run`` in progress)."""
    try:
        names = os.listdir(ctx.paths.containers)
    except FileNotFoundError:
        return []
    return [n for n in names if n not in known]


def collect(ctx: Context) -> list[str]:
    """Detach dead containers, GC every network with the live attachments (the bridge
    plugin then removes bridges nothing uses), drop orphan namespaces, cache entries and
    container directories. Returns what it did (and what
    failed), one line each."""
    report: list[str] = []
    with ctx.state.locked():
        for c in ctx.state.containers():
            line = _settle(ctx, c)
            if line:
                report.append(line)
        containers = ctx.state.containers()
        valid = {(c.id, ep.ifname) for c in containers for ep in c.endpoints}
        # the default bridge network is always there to GC: through it the bridge plugin
        # also collects marked bridges of networks that are gone (bridge_gc.py)
        ensure_builtin(ctx)
        for net in ctx.state.networks():
            if net.driver not in ("bridge", "overlay"):
                continue
            said: list[str] = []
            # the network stays: host-local keeps its round-robin position even when no
            # lease is left (the next container gets the next address, as on Docker);
            # only ``network rm`` lets it start over (networks.remove_network)
            for failure in ctx.cni.gc(load_conflist(ctx, net), valid, said, {KEEP_NETWORK: True}):
                report.append(f"{net.name}: {failure}")
            report += said

        own_ns = {(c.id, "lo") for c in containers if c.endpoints and c.netns.startswith(ctx.paths.netns)}
        for failure in ctx.cni.gc(cl.loopback(), own_ns):
            report.append(f"loopback: {failure}")
        known = {c.netns for c in containers if c.endpoints}
        try:
            names = os.listdir(ctx.paths.netns)
        except FileNotFoundError:
            names = []
        for name in names:
            path = os.path.join(ctx.paths.netns, name)
            if path not in known:
                netns.remove(path)
                report.append(f"removed orphan network namespace {name}")
        for name in _orphan_dirs(ctx, {c.id for c in containers}):
            shutil.rmtree(ctx.paths.container_dir(name), ignore_errors=True)
            report.append(f"removed the directory of unfinished container {name[:12]}")
    return report
