"""The ``netctl-dns`` plugin: register a container's names with dnsd (chained).

Chained after the plugin that gives the container its addresses (our ``bridge`` or
``overlay``, the reference ``bridge``, ``macvlan``, ``ptp`` ...), before ``portmap``.
ADD reads the container's addresses and their gateways from ``prevResult``, writes the
network's file and the container's entry into dnsd's directory (dnsd/config.py), makes
dnsd serve them (through netctl's agent when it supervises that directory, else started
here: dnsd.control.serve) and prints ``prevResult`` with the gateways first in
``dns.nameservers``. Any failure removes what ADD wrote. DEL removes the entry (and the
network's file with its last entry) and never needs the namespace or ``prevResult``.
CHECK verifies the entry and that dnsd answers on the gateways; GC removes the entries
of attachments the runtime no longer knows; STATUS says whether dnsd is available.

Config keys: dnsreg_plan.py. Errors: 7 bad config or no ``prevResult`` on ADD/CHECK,
5 dnsd's directory cannot be written or dnsd cannot be started (nothing left behind),
101 CHECK found the entry or dnsd missing, 50/51 STATUS.
"""

from __future__ import annotations

import os

from dnsd import config as dnsconf
from dnsd import control

from ..cni import errors
from ..cni.errors import CniError, ErrorList
from ..cni.rollback import Rollback
from ..cni.skel import CmdArgs, PluginFuncs
from ..cni.skel import main as skel_main
from ..cni.types import Result
from .dnsreg_plan import (
    OWNER,
    DnsRegConf,
    Registration,
    parse_conf,
    plan_gc,
    plan_registration,
    plan_result,
)

#: CNI_ARGS keys of the chain (the main plugin's too: they reach every plugin of the chain)
KNOWN_ARGS = frozenset({"IP", "MAC", "K8S_POD_NAME", "K8S_POD_NAMESPACE",
                        "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID"})
#: seconds CHECK waits for dnsd's answer on each listen address
CHECK_TIMEOUT = 1.0


class Dnsd:
    """dnsd as this plugin sees it: the one seam unit tests replace (with a fake that
    records calls and can fail), so that no test without a namespace starts a dnsd."""

    def serve(self, dns_dir: str) -> None:
        """Make dnsd serve ``dns_dir`` now. Raises: control.DnsdError, OSError."""
        control.serve(dns_dir)

    def reload(self, dns_dir: str) -> None:
        """Tell a running dnsd to re-read ``dns_dir``; never starts one."""
        control.reload(dns_dir)

    def running(self, dns_dir: str) -> bool:
        return control.find_running(dns_dir) is not None

    def supervised(self, dns_dir: str) -> bool:
        """Whether a live supervisor (netctl's agent) restarts dnsd for ``dns_dir``."""
        return control.find_supervisor(dns_dir) is not None

    def answers(self, dns_dir: str, server: str, name: str) -> bool:
        """Whether dnsd answers a query for ``name`` on ``server`` (its port from dnsd.args)."""
        return dnsd_answers(server, name, _dnsd_port(dns_dir))


REAL = Dnsd()


def _io_error(what: str, exc: Exception) -> CniError:
    return CniError(errors.IO_FAILURE, what, str(exc))


def _prev(conf: DnsRegConf, command: str) -> Result:
    if conf.net.prev_result is None:
        raise errors.config_error(f"{command} needs prevResult: chain {conf.net.type or 'netctl-dns'} "
                                  "after the plugin that gives the container its addresses")
    return conf.net.prev_result


def _drop_network_if_empty(conf: DnsRegConf) -> None:
    """Remove the network's file once no entry is left (dnsd stops listening there)."""
    if not dnsconf.network_has_entries(conf.dir, conf.name):
        dnsconf.remove_network(conf.dir, conf.name)


def _register(conf: DnsRegConf, args: CmdArgs, reg: Registration, stack: Rollback, dnsd: Dnsd) -> None:
    """Write the network and the entry, then make dnsd serve them; undo steps on ``stack``.

    Raises:
        CniError: 5 (the files cannot be written, dnsd cannot be started), 7 (a value
            dnsd's files refuse, such as an invalid network name).
    """
    # registered first, so it runs last: after the files are gone, a dnsd that already
    # read them forgets the names of the rolled-back ADD at once
    stack.undo("reload dnsd", dnsd.reload, conf.dir)
    try:
        # written on every ADD: cheap, and it brings the network back if a concurrent DEL
        # of its last container just removed it (dnsd/config.py)
        dnsconf.write_network(conf.dir, conf.name, reg.listen, reg.subnets, internal=conf.internal,
                              upstreams=conf.upstreams)
        stack.undo("remove the DNS network", _drop_network_if_empty, conf)
        dnsconf.write_entry(conf.dir, conf.name, args.container_id, args.ifname, reg.names,
                            reg.ipv4, reg.ipv6, owner=OWNER)
        stack.undo("remove the DNS names", dnsconf.remove_entry, conf.dir, conf.name,
                   args.container_id, args.ifname)
    except dnsconf.ConfigError as exc:
        raise errors.config_error(f"invalid DNS registration for network {conf.name!r}", str(exc)) from None
    except OSError as exc:
        raise _io_error(f"failed to write dnsd's configuration in {conf.dir!r}", exc) from None
    try:
        dnsd.serve(conf.dir)
    except (OSError, control.DnsdError) as exc:
        raise _io_error("failed to make dnsd serve the names", exc) from None


# --- ADD ----------------------------------------------------------------------------------

def cmd_add(args: CmdArgs, dnsd: Dnsd = REAL) -> Result:
    """Register the container's names; print prevResult with dnsd as its nameserver.

    Raises:
        CniError: 7 bad config or no prevResult, 5 dnsd's files or dnsd itself failed;
            nothing is left behind.
    """
    conf = parse_conf(args.stdin)
    prev = _prev(conf, "ADD")
    reg = plan_registration(conf, args.container_id, args.ifname, args.args, prev)
    if reg is None:
        return prev  # no address or nowhere to listen: nothing for dnsd to serve
    with Rollback() as stack:
        _register(conf, args, reg, stack, dnsd)
        stack.pop_all()
    return plan_result(prev, reg)


# --- DEL ----------------------------------------------------------------------------------

def cmd_del(args: CmdArgs, dnsd: Dnsd = REAL) -> None:
    """Remove the container's entry (and the network's file after its last one), then
    let a running dnsd reload. Needs neither prevResult nor the namespace; idempotent.

    Raises:
        CniError: 7 bad config; 5 listing the files that could not be removed.
    """
    conf = parse_conf(args.stdin)
    errs = ErrorList()
    try:
        dnsconf.remove_entry(conf.dir, conf.name, args.container_id, args.ifname)
    except dnsconf.ConfigError as exc:
        errs.collect(errors.config_error("invalid DNS entry name", str(exc)))
    except OSError as exc:
        errs.collect(_io_error("failed to remove the DNS entry", exc))
    _finish_teardown(conf, errs, dnsd)


def _finish_teardown(conf: DnsRegConf, errs: ErrorList, dnsd: Dnsd) -> None:
    """Drop the network's file if it has no entry left, reload dnsd, report errors."""
    try:
        _drop_network_if_empty(conf)
    except dnsconf.ConfigError as exc:
        errs.collect(errors.config_error("invalid DNS network name", str(exc)))
    except OSError as exc:
        errs.collect(_io_error("failed to remove the DNS network", exc))
    dnsd.reload(conf.dir)  # no dnsd running: nothing to tell (never starts one)
    errs.raise_if_any(errors.IO_FAILURE)


# --- CHECK --------------------------------------------------------------------------------

def _query(name: str) -> tuple[int, bytes]:
    """A DNS query for ``name`` A (id, packet): hand-built, no DNS library on this path."""
    # lazy: plugin start-up; only the commands that need it load it
    import struct

    qid = int.from_bytes(os.urandom(2), "big")
    labels = b"".join(len(p).to_bytes(1, "big") + p for p in name.encode("idna").split(b".") if p)
    return qid, struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", 1, 1)


def dnsd_answers(server: str, name: str, port: int = 53, timeout: float = CHECK_TIMEOUT) -> bool:
    """Whether a DNS server answers on ``server:port`` (any response to our query counts:
    dnsd scopes names by the asker's address, and the host is no container)."""
    # lazy: plugin start-up; only the commands that need it load it
    import socket

    qid, packet = _query(name)
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(packet, (server, port))
            while True:
                data = sock.recv(4096)
                if len(data) >= 12 and int.from_bytes(data[:2], "big") == qid:
                    return True
        except OSError:  # time-out, unreachable, refused
            return False


def _dnsd_port(dns_dir: str) -> int:
    """The port dnsd was started with (dnsd.args), 53 by default."""
    # lazy: plugin start-up; only the commands that need it load it
    import json

    try:
        with open(os.path.join(dns_dir, control.ARGS_FILE)) as fh:
            port = json.load(fh).get("port")
    except (OSError, ValueError, AttributeError):
        return 53
    return port if isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536 else 53


def cmd_check(args: CmdArgs, dnsd: Dnsd = REAL) -> None:
    """Verify the entry (names and addresses as ADD wrote them), the network's listen
    addresses, and that dnsd runs and answers on each of them.

    Raises:
        CniError: 7 bad config or no prevResult; 101 naming the first problem.
    """
    # lazy: plugin start-up; only the commands that need it load it
    import json

    conf = parse_conf(args.stdin)
    prev = _prev(conf, "CHECK")
    reg = plan_registration(conf, args.container_id, args.ifname, args.args, prev)
    if reg is None:
        return  # ADD registered nothing
    problems = []
    try:
        with open(dnsconf.entry_path(conf.dir, conf.name, args.container_id, args.ifname)) as fh:
            entry = json.load(fh)
        if sorted(entry.get("ipv4", []) + entry.get("ipv6", [])) != sorted(reg.ipv4 + reg.ipv6):
            problems.append(f"the DNS entry of {args.container_id}/{args.ifname} holds other addresses")
        if list(entry.get("names", [])) != list(reg.names):
            problems.append(f"the DNS entry of {args.container_id}/{args.ifname} holds other names")
    except (OSError, ValueError, AttributeError, dnsconf.ConfigError):
        problems.append(f"no DNS entry for {args.container_id}/{args.ifname} on network {conf.name!r}")
    try:
        with open(dnsconf.network_path(conf.dir, conf.name)) as fh:
            listen = json.load(fh).get("listen", [])
        missing = [a for a in reg.listen if a not in listen]
        if missing:
            problems.append(f"dnsd is not configured to listen on {', '.join(missing)}")
    except (OSError, ValueError, AttributeError, dnsconf.ConfigError):
        problems.append(f"network {conf.name!r} is not configured in {conf.dir}")
    if not dnsd.running(conf.dir):
        problems.append(f"embedded DNS of network {conf.name!r} is down: no dnsd serves {conf.dir} "
                        "(the agent restarts it; see 'netctl agent status')")
    else:
        for addr in reg.listen:
            if not dnsd.answers(conf.dir, addr, reg.names[0]):
                problems.append(f"dnsd does not answer on {addr}")
    if problems:
        raise CniError(errors.NETLINK_FAILURE, problems[0], "; ".join(problems[1:]))


# --- STATUS / GC --------------------------------------------------------------------------

def cmd_status(args: CmdArgs, dnsd: Dnsd = REAL) -> None:
    """Ready when dnsd's directory is usable; 51 when DNS-enabled networks exist but no
    dnsd serves them (names do not resolve until the agent or the next ADD starts it).

    Raises:
        CniError: 50 the directory cannot be used, 51 dnsd is down.
    """
    conf = parse_conf(args.stdin)
    if os.path.exists(conf.dir) and not (os.path.isdir(conf.dir) and os.access(conf.dir, os.W_OK)):
        raise CniError(errors.NOT_AVAILABLE, f"dnsd's directory {conf.dir} is not a writable directory")
    if control.wanted(conf.dir) and not dnsd.running(conf.dir):
        who = "the agent is restarting it" if dnsd.supervised(conf.dir) else "the next ADD starts it"
        raise CniError(errors.LIMITED_CONNECTIVITY, f"dnsd is not running: container names do not "
                       f"resolve ({who})")


def cmd_gc(args: CmdArgs, dnsd: Dnsd = REAL) -> None:
    """Remove this network's entries (written by this plugin) of attachments not in
    ``cni.dev/valid-attachments``, then the network's file if none is left.

    Raises:
        CniError: 7 bad config or valid-attachments; 5 listing what could not be removed.
    """
    # lazy: plugin start-up; only the commands that need it load it
    from ..cni.gc import valid_attachments

    conf = parse_conf(args.stdin)
    valid = valid_attachments(args.stdin)
    errs = ErrorList()
    try:
        stale = plan_gc(dnsconf.read_entries(conf.dir, conf.name), valid)
    except dnsconf.ConfigError as exc:
        raise errors.config_error("invalid DNS network name", str(exc)) from None
    for fname in stale:
        try:
            dnsconf.remove_entry_file(conf.dir, conf.name, fname)
        except (OSError, dnsconf.ConfigError) as exc:
            errs.collect(_io_error(f"failed to remove the DNS entry {fname}", exc))
    _finish_teardown(conf, errs, dnsd)


FUNCS = PluginFuncs(add=cmd_add, delete=cmd_del, check=cmd_check, status=cmd_status, gc=cmd_gc,
                    about="netctl DNS registration plugin (names for dnsd)", known_args=KNOWN_ARGS)


def main() -> None:
    skel_main(FUNCS)


if __name__ == "__main__":
    main()


__all__ = ["FUNCS", "cmd_add", "cmd_check", "cmd_del", "cmd_gc", "cmd_status", "main"]
