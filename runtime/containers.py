"""Container verbs: run, exec, stop, rm, connect, disconnect; all networking through CNI."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import subprocess
import sys
import threading
from typing import Any

from . import caps, etcfiles, netns, process
from . import conflist as cl
from .cnirun import RuntimeConf, cache_entries, cached_port_mappings
from .context import Context
from .errors import Conflict, NetctlError
from .models import Container, Endpoint, Network, PortMapping
from .networks import (
    attach,
    detach,
    ensure_builtin,
    load_conflist,
    next_ifname,
    now,
    owns_ports,
    runtime_conf,
    validate_static_ip,
)
from .process import alive

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
LOOPBACK_IF = "lo"
EPHEMERAL_PORTS = (49153, 60999)  # -P picks from here (Docker's range), skipping ones in use


def parse_publish(spec: str) -> list[PortMapping]:
    """``[IP:]HOST:CONTAINER[/proto]`` or ``CONTAINER[/proto]`` (host port 0 = pick one);
    ranges ``8000-8010:80-90`` expand to one mapping per port.

    Raises:
        NetctlError: for a malformed spec.
    """
    proto = "tcp"
    if "/" in spec:
        spec, proto = spec.rsplit("/", 1)
        proto = proto.lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise NetctlError(f"invalid protocol {proto!r} in port spec: use tcp, udp or sctp")
    host_ip = ""
    parts = spec.rsplit(":", 2) if not spec.startswith("[") else None
    if parts is None:  # [v6]:host:ctr
        m = re.match(r"^\[([0-9a-fA-F:.]+)\]:(.*)$", spec)
        if not m:
            raise NetctlError(f"invalid port spec {spec!r}")
        host_ip, rest = m.group(1), m.group(2)
        parts = rest.split(":")
        host_part, ctr_part = (parts + [""])[:2] if len(parts) == 2 else ("", parts[0])
    elif len(parts) == 3:
        host_ip, host_part, ctr_part = parts
    elif len(parts) == 2:
        host_part, ctr_part = parts
    else:
        host_part, ctr_part = "", parts[0]
    if host_ip:
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise NetctlError(f"invalid IP address {host_ip!r} in port spec") from None

    def rng(text: str) -> list[int]:
        try:
            if "-" in text:
                a, b = (int(x) for x in text.split("-", 1))
            else:
                a = b = int(text)
        except ValueError:
            raise NetctlError(f"invalid port {text!r}") from None
        if not (0 < a <= b <= 65535):
            raise NetctlError(f"invalid port range {text!r}")
        return list(range(a, b + 1))

    cports = rng(ctr_part)
    hports = rng(host_part) if host_part else [0] * len(cports)
    if len(hports) != len(cports):
        raise NetctlError(f"port ranges in {spec!r} differ in length")
    return [PortMapping(h, c, proto, host_ip) for h, c in zip(hports, cports, strict=True)]


#: other CNI runtimes' result caches (libcni's default), read for the ports they publish;
#: NETCTL_CNI_CACHE_DIRS (colon-separated) replaces the list
OTHER_CNI_CACHES = "/var/lib/cni"


def _pick_free_ports(ctx: Context, c: Container) -> None:
    """Give mappings with host port 0 a free port from EPHEMERAL_PORTS (Docker's -P range).

    Free means: no container of netctl has it (explicit ports of this container included),
    no cached CNI attachment publishes it (netctl's cache: a container whose DEL never
    ran; other libcni runtimes' caches: their containers), and no socket of the host takes
    it (portmap refuses such a port, so a picked port is never refused by the plugin).

    Raises:
        NetctlError: the range is exhausted.
    """
    wanted = [p for p in c.ports if not p.host_port]
    if not wanted:
        return
    used = {(p.host_port, p.protocol) for other in ctx.state.containers() for p in other.ports}
    used |= {(p.host_port, p.protocol) for p in c.ports if p.host_port}
    used |= published_in_caches([ctx.cni.cache_dir] + [
        d for d in os.environ.get("NETCTL_CNI_CACHE_DIRS", OTHER_CNI_CACHES).split(":") if d])
    # a host fact, read from /proc/net with the parser portmap's own check uses (so the two
    # cannot disagree about what is taken); no plugin state is read
    from netplugins.meta.hostsockets import read_sockets

    used |= {(s.port, s.protocol) for s in read_sockets({p.protocol for p in wanted})}
    port = EPHEMERAL_PORTS[0]
    for p in wanted:
        while (port, p.protocol) in used:
            port += 1
            if port > EPHEMERAL_PORTS[1]:
                raise NetctlError(f"no free host port left in {EPHEMERAL_PORTS[0]}-"
                                  f"{EPHEMERAL_PORTS[1]} for {p.container_port}/{p.protocol}")
        p.host_port = port
        used.add((port, p.protocol))


def published_in_caches(cache_dirs: list[str]) -> set[tuple[int, str]]:
    """(host port, protocol) of every port mapping of every attachment cached under
    ``cache_dirs`` (runtime.cnirun: libcni's layout)."""
    out = set()
    for d in dict.fromkeys(cache_dirs):
        for entry in cache_entries(d):
            for m in cached_port_mappings(entry):
                try:
                    out.add((int(m.get("hostPort", 0)), str(m.get("protocol") or "tcp").lower()))
                except (TypeError, ValueError):
                    continue
    return out


def _etc_dir(ctx: Context, c: Container) -> str:
    return ctx.paths.container_dir(c.id)


def _host_resolv() -> etcfiles.HostResolv:
    try:
        with open(os.environ.get("NETCTL_HOST_RESOLV_CONF", "/etc/resolv.conf")) as fh:
            return etcfiles.parse_resolv_conf(fh.read())
    except OSError:
        return etcfiles.HostResolv()


def refresh_etc(ctx: Context, c: Container) -> None:
    """(Re)write hosts / resolv.conf / hostname in place (they are bind-mounted)."""
    d = _etc_dir(ctx, c)
    os.makedirs(d, exist_ok=True)
    addrs: list[str] = []
    dns: list[str] = []
    for ep in c.endpoints:
        for ip in (ep.result or {}).get("ips", []):
            addrs.append(ip["address"].split("/")[0])
        for server in ((ep.result or {}).get("dns") or {}).get("nameservers", []):
            if server not in dns:
                dns.append(server)
    etcfiles.write_in_place(os.path.join(d, "hosts"), etcfiles.render_hosts(c.hostname, c.name, addrs))
    etcfiles.write_in_place(os.path.join(d, "resolv.conf"), etcfiles.render_resolv_conf(dns, _host_resolv()))
    etcfiles.write_in_place(os.path.join(d, "hostname"), c.hostname + "\n")


def _resolve_mode(ctx: Context, network: str) -> tuple[str, Network | None, Container | None]:
    if network.startswith("container:"):
        owner = ctx.state.container(network.split(":", 1)[1])
        if not alive(owner):
            raise NetctlError(f"cannot join the network namespace of {owner.name}: it is not running")
        if owner.network_mode.startswith("container:"):
            raise NetctlError(f"{owner.name} itself shares another container's namespace: join that one")
        return "container", None, owner
    net = ctx.state.network(network)
    return net.driver, net, None


def run(ctx: Context, cmd: list[str], *, name: str = "", network: str = "bridge", ip: str = "",
        aliases: list[str] | None = None, hostname: str = "", publish: list[str] | None = None,
        publish_all: bool = False, detach_: bool = True, remove: bool = False,
        cap_add: list[str] | None = None, cap_drop: list[str] | None = None,
        privileged: bool = False) -> Container:
    """Create and start a container; the process runs in its own net, UTS, mount, PID namespaces,
    with Docker's default capabilities changed by ``cap_add`` / ``cap_drop`` / ``privileged``
    (see runtime/caps.py).

    Raises:
        NetctlError: any failure (an unknown capability before anything is made), after
            undoing what was done.
    """
    if not cmd:
        raise NetctlError("no command given: netctl run [OPTIONS] -- COMMAND...")
    adds = caps.normalize(cap_add or [], "--cap-add")
    drops = caps.normalize(cap_drop or [], "--cap-drop")
    process.check_command(cmd[0])
    with ctx.state.locked():
        ensure_builtin(ctx)
        cid = secrets.token_hex(32)
        if name:
            if not NAME_RE.fullmatch(name):
                raise NetctlError(f"invalid container name {name!r}: it needs two or more of [a-zA-Z0-9_.-], starting with a letter or digit")
            if ctx.state.find_container(name) is not None:
                raise Conflict(f"the container name {name!r} is already in use")
        else:
            name = f"ctr-{cid[:8]}"
        kind, net, owner = _resolve_mode(ctx, network)
        ports = [m for spec in publish or [] for m in parse_publish(spec)]
        if kind in ("container", "host", "null"):
            if ip or aliases or ports or publish_all:
                raise NetctlError(f"--ip, --alias and publishing ports do not apply to --network {network}")
        if kind == "container" and hostname:
            raise NetctlError("conflicting options: hostname and the network mode container:")
        if net is not None and ip:
            validate_static_ip(net, ip)
        if net is not None and net.internal and (ports or publish_all):
            # its firewall drops DNAT'ed traffic too: a published port would never answer
            raise NetctlError(f"cannot publish ports on the internal network {net.name}: "
                              "nothing from outside it can reach them")
        c = Container(id=cid, name=name, created=now(), command=list(cmd), hostname=hostname or cid[:12],
                      network_mode=network if kind != "container" else f"container:{owner.id}",  # type: ignore[union-attr]
                      ports=ports, publish_all=publish_all, cap_add=adds, cap_drop=drops,
                      privileged=privileged)
        if publish_all and not ports:
            raise NetctlError("-P needs the ports to publish: give them with -p CONTAINER_PORT")
        _pick_free_ports(ctx, c)
        os.makedirs(_etc_dir(ctx, c), exist_ok=True)
        starting = process.hold_start_lock(_etc_dir(ctx, c))
        try:
            _setup_networking(ctx, c, kind, net, owner, ip, aliases or [])
            ctx.state.save_container(c)
        except BaseException:
            _teardown_networking(ctx, c, quiet=True)
            ctx.state.delete_container(c.id)
            process.release_start_lock(starting)
            raise
    try:
        proc = _start(ctx, c, kind, detach_, starting)
    except BaseException:
        with ctx.state.locked():
            _teardown_networking(ctx, c, quiet=True)
            ctx.state.delete_container(c.id)
        raise
    finally:
        process.release_start_lock(starting)
    if detach_ and remove:
        _watch_for_removal(c)
    if not detach_:
        code = process.wait_foreground(proc)
        with ctx.state.locked():
            c = ctx.state.container(c.id)
            c.state = "exited"
            c.exit_code = code
            _teardown_networking(ctx, c, quiet=True)
            if remove:
                ctx.state.delete_container(c.id)
            else:
                ctx.state.save_container(c)
    return c


def _watch_for_removal(c: Container) -> None:
    """``run -d --rm``: a detached watcher in the host's namespaces removes the container
    when its process exits (the launcher itself lives in the container's namespaces, where
    it could not run the plugins)."""
    # lazy: ~3-5 ms of netctl start-up; only this call needs it
    import subprocess

    # -I and cwd /: a long-lived root process never imports a module planted in the
    # directory netctl was started from
    subprocess.Popen([sys.executable, "-I", "-m", "runtime.cli", "_remove-on-exit", c.id, str(c.pid),
                      str(c.pid_start)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True, cwd="/")


def remove_on_exit(ctx: Context, cid: str, pid: int, pid_start: int) -> None:
    """Wait for ``pid`` (the container's first process) to exit, then remove the container."""
    # lazy: ~3-5 ms of netctl start-up; only this call needs it
    import select

    try:
        fd = os.pidfd_open(pid)
    except OSError:
        fd = -1  # already gone
    if fd >= 0:
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            while not poller.poll(60_000):
                pass
        finally:
            os.close(fd)
    c = ctx.state.find_container(cid)
    if c is not None and c.pid == pid and c.pid_start == pid_start:
        remove(ctx, cid, force=True)


def _setup_networking(ctx: Context, c: Container, kind: str, net: Network | None,
                      owner: Container | None, ip: str, aliases: list[str]) -> None:
    if kind == "host":
        # the host plugin verifies that CNI_NETNS is the namespace it runs in; /proc/self
        # resolves to the plugin's own (or its daemon worker's, which entered ours)
        c.netns = "/proc/self/ns/net"
        conf = load_conflist(ctx, net)  # type: ignore[arg-type]
        ep = Endpoint(network="host", ifname="host")

        ep.result = ctx.cni.add(conf, RuntimeConf(c.id, c.netns, "host")) or {}
        c.endpoints.append(ep)
        refresh_etc(ctx, c)
        return
    if kind == "container":
        assert owner is not None
        c.netns = owner.netns

        conf = _joined_conflist(ctx, owner)
        ep = Endpoint(network=f"container:{owner.name}", ifname="joined")
        ep.result = ctx.cni.add(conf, RuntimeConf(c.id, owner.netns, "joined")) or {}
        c.endpoints.append(ep)
        return
    c.netns = os.path.join(ctx.paths.netns, c.id)
    netns.create(c.netns)

    lo = RuntimeConf(c.id, c.netns, LOOPBACK_IF)
    ctx.cni.add(cl.loopback(), lo)
    if kind == "null":
        c.endpoints.append(Endpoint(network="none", ifname=LOOPBACK_IF))
        refresh_etc(ctx, c)
        return
    assert net is not None
    ep = Endpoint(network=net.name, ifname=next_ifname(c), aliases=list(aliases), ip=ip)
    c.endpoints.append(ep)
    attach(ctx, c, net, ep)
    refresh_etc(ctx, c)


def _joined_conflist(ctx: Context, owner: Container) -> dict[str, Any]:
    return {"cniVersion": "1.1.0", "name": f"join-{owner.id[:12]}",
            "plugins": [{"type": "container", "container": owner.id, "ownerNetns": owner.netns,
                         "dataDir": ctx.paths.joins}]}


def _teardown_networking(ctx: Context, c: Container, quiet: bool = False) -> list[str]:
    """DEL every attachment (reverse order), then drop the namespace. Carries on."""
    failures: list[str] = []
    for ep in reversed(c.endpoints):
        try:
            if ep.network == "host":
                conf = load_conflist(ctx, ctx.state.network("host"))
                ctx.cni.delete(conf, RuntimeConf(c.id, "/proc/self/ns/net", "host"))
            elif ep.network.startswith("container:"):
                owner_id = c.network_mode.split(":", 1)[1]
                owner = ctx.state.find_container(owner_id)
                conf = {"cniVersion": "1.1.0", "name": f"join-{owner_id[:12]}",
                        "plugins": [{"type": "container", "container": owner_id,
                                     "ownerNetns": owner.netns if owner else "/nonexistent",
                                     "dataDir": ctx.paths.joins}]}
                ctx.cni.delete(conf, RuntimeConf(c.id, c.netns, "joined"))
            elif ep.network != "none":
                detach(ctx, c, ctx.state.find_network(ep.network), ep)
        except NetctlError as exc:
            failures.append(exc.msg)
    if c.netns.startswith(ctx.paths.netns):
        try:
            ctx.cni.delete(cl.loopback(), RuntimeConf(c.id, c.netns, LOOPBACK_IF))
        except NetctlError as exc:
            failures.append(exc.msg)
        netns.remove(c.netns)
        if not failures:
            c.netns = ""  # gone: a second teardown (rm after stop) has nothing to DEL
    c.endpoints = [] if not failures else c.endpoints
    if failures and not quiet:
        raise NetctlError("; ".join(failures))
    return failures


def _start(ctx: Context, c: Container, kind: str, detach_: bool,
           lock_fd: int) -> subprocess.Popen[bytes]:
    """Launch the container's process and record it as running; the launcher process.

    Raises:
        NetctlError: the command could not be started.
    """
    d = _etc_dir(ctx, c)
    etc = ctx.paths.container_dir(c.network_mode.split(":", 1)[1]) if kind == "container" else d
    hide = process.hidden_dirs([ctx.paths.lib, ctx.paths.run])
    proc, c.pid = process.launch(process.launch_argv(c, kind, d, etc, lock_fd, hide), d, detach_, lock_fd)
    c.pid_start = process.start_time(c.pid)
    c.state = "running"
    with ctx.state.locked():
        # no fsync: a PID means nothing after a reboot, and gc settles a record that
        # still says "created" (see gc._settle)
        ctx.state.save_container(c, durable=False)
    return proc


def exec_in(ctx: Context, ref: str, cmd: list[str], interactive: bool = False) -> int:
    """Run a command inside a running container's namespaces; its exit status.

    Raises:
        NetctlError: unknown or stopped container, or no command.
    """
    c = ctx.state.container(ref)
    if not alive(c):
        raise NetctlError(f"container {c.name} is not running")
    if not cmd:
        raise NetctlError("no command given: netctl exec CONTAINER -- COMMAND...")
    # a clear error instead of nsenter's
    process.check_command(cmd[0])
    # the launcher rather than nsenter: the command gets the container's capabilities
    return subprocess.run(process.exec_argv(c, cmd)).returncode


#: seconds of a stop's grace period after which it says what it waits for
WAIT_NOTICE_AFTER = 1.0


def stop(ctx: Context, ref: str, timeout: float = 10.0) -> Container:
    """Stop the process (SIGTERM, then SIGKILL) and detach its networks, as Docker does."""
    with ctx.state.locked():
        c = ctx.state.container(ref)
        joiners = [o for o in ctx.state.containers()
                   if o.network_mode == f"container:{c.id}" and alive(o)]
        if joiners:
            raise NetctlError(f"cannot stop {c.name}: {', '.join(o.name for o in joiners)} share its network namespace")
    process.adopt(c, _etc_dir(ctx, c))
    # a grace period is silent for a moment, then says what it waits for: a plain `sleep`
    # as PID 1 ignores SIGTERM, and ten quiet seconds look like a hang
    waiting = threading.Timer(WAIT_NOTICE_AFTER, lambda: print(
        f"waiting up to {timeout:g}s for {c.name} to exit after SIGTERM "
        f"(then SIGKILL; -t sets the grace period)", file=sys.stderr, flush=True))
    waiting.daemon = True
    if timeout > WAIT_NOTICE_AFTER:
        waiting.start()
    try:
        process.terminate(c, timeout)
    finally:
        waiting.cancel()
    with ctx.state.locked():
        c = ctx.state.container(c.id)
        c.state = "exited"
        failures = _teardown_networking(ctx, c, quiet=True)
        ctx.state.save_container(c)
    if failures:
        raise NetctlError(f"{c.name} stopped, but detaching reported: {'; '.join(failures)}")
    return c


def remove(ctx: Context, ref: str, force: bool = False) -> str:
    """Remove a container (its networks are detached first).

    Raises:
        NotFound: unknown container; Conflict: it runs and ``force`` is not set.
    """
    c = ctx.state.container(ref)
    if process.adopt(c, _etc_dir(ctx, c)):
        if not force:
            raise Conflict(f"cannot remove container {c.name}: it is running (stop it first or use -f)")
        # docker rm -f: SIGKILL straight away, no grace period
        stop(ctx, c.id, timeout=0)
    with ctx.state.locked():
        c = ctx.state.container(c.id)
        _teardown_networking(ctx, c, quiet=True)
        ctx.state.delete_container(c.id)
    return c.name


def connect(ctx: Context, net_ref: str, ctr_ref: str, ip: str = "", aliases: list[str] | None = None) -> None:
    """Add an interface on ``net_ref`` to a running container.

    Raises:
        NetctlError: Docker's refusals (joined/host/none containers, already connected, ...).
    """
    with ctx.state.locked():
        ensure_builtin(ctx)
        net = ctx.state.network(net_ref)
        c = ctx.state.container(ctr_ref)
        if c.network_mode.startswith("container:"):
            raise NetctlError("container sharing network namespace with another container or host "
                              "cannot be connected to any other network")
        if c.network_mode in ("host", "none") or net.driver not in ("bridge", "overlay"):
            raise NetctlError("container cannot be disconnected from host network or connected to "
                              "host network" if "host" in (c.network_mode, net.name)
                              else f"cannot connect {c.name} ({c.network_mode}) to {net.name}")
        if not alive(c):
            raise NetctlError(f"container {c.name} is not running")
        if c.endpoint(net.name) is not None:
            raise Conflict(f"endpoint with name {c.name} already exists in network {net.name}")
        if ip:
            validate_static_ip(net, ip)
        ep = Endpoint(network=net.name, ifname=next_ifname(c), aliases=list(aliases or []), ip=ip)
        attach(ctx, c, net, ep)
        c.endpoints.append(ep)
        ctx.state.save_container(c)
        refresh_etc(ctx, c)


def disconnect(ctx: Context, net_ref: str, ctr_ref: str, force: bool = False) -> None:
    with ctx.state.locked():
        net = ctx.state.find_network(net_ref)
        c = ctx.state.container(ctr_ref)
        name = net.name if net else net_ref
        ep = c.endpoint(name)
        if ep is None:
            raise NetctlError(f"container {c.name} is not connected to network {name}")
        if ep.network in ("host", "none"):
            raise NetctlError(f"container cannot be disconnected from the {ep.network} network")
        try:
            detach(ctx, c, net, ep)
        except NetctlError:
            if not force:
                raise
        c.endpoints.remove(ep)
        ctx.state.save_container(c)
        refresh_etc(ctx, c)


def check(ctx: Context, ref: str) -> list[str]:
    """CNI CHECK of every attachment; the problems found (empty = healthy)."""
    c = ctx.state.container(ref)
    problems = []
    for ep in c.endpoints:
        net = ctx.state.find_network(ep.network)
        if net is None or net.driver not in ("bridge", "overlay"):
            continue
        try:
            ctx.cni.check(load_conflist(ctx, net), runtime_conf(c, net, ep, ports=owns_ports(c, ep)))
        except NetctlError as exc:
            problems.append(f"{net.name}: {exc.msg}")
    return problems
