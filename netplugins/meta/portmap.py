"""The ``portmap`` plugin: published ports (chained after ``bridge``), reference-compatible.

ADD reads ``runtimeConfig.portMappings`` and the container's first IPv4/IPv6 address on
CNI_IFNAME from ``prevResult``, refuses host ports that another container publishes or a
host process holds (code 107), then writes an attachment record and publishes the ports
in one firewall transaction (``firewall/ports*.py``), enables ``route_localnet`` on the
bridge when 127.0.0.1 must answer (``localnet.py``) and forgets stale UDP flows
(``conntrack.py``). prevResult passes through unchanged.

Without mappings ADD returns at once: no firewall, no lock, no record (plugins#510).
DEL removes the attachment's entries by owner tag with both drivers (needing neither
runtimeConfig nor the namespace) when a record or mappings say there is something to
remove, and is otherwise the same fast no-op. CHECK verifies every entry; GC removes the
entries and records of attachments that are not valid.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from ..cni import errors
from ..cni.errors import CniError, ErrorList
from ..cni.rollback import Rollback
from ..cni.skel import CmdArgs, PluginFuncs
from ..cni.skel import main as skel_main
from ..cni.types import Result
from ..firewall.errors import FirewallError, PortConflict
from ..main.attachments import Attachments
from .portmap_conf import PortmapConf, container_addresses, parse_mappings, parse_portmap_conf

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..firewall.driver import PortDriver
    from ..firewall.ports import Forward, PortsPlan
    from .hostsockets import HostSocket
    from .portmap_host import PortmapHost

# The planners (firewall.ports: ipaddress, hashlib) and the drivers are imported inside
# the functions that need them: a container without published ports must cost no more
# than parsing stdin (every plugin call is a fresh process).

log = logging.getLogger("netplugins.portmap")
KNOWN_ARGS = frozenset({"K8S_POD_NAME", "K8S_POD_NAMESPACE", "K8S_POD_INFRA_CONTAINER_ID",
                        "K8S_POD_UID"})
#: records live in ``<stateDir>/_portmap/<network>/``; a leading "_" is not a valid network
#: name, so this never meets the bridge's ``<stateDir>/<network>/``
RECORDS = "_portmap"


class SystemHost:
    """The real host (the interface is ``portmap_host.PortmapHost``): the current namespace.

    Each method imports its module on first use, as the commands did before they took a
    ``host``: the no-mappings path still loads none of them.
    """

    def port_driver(self, name: str | None) -> PortDriver:
        # lazy: plugin start-up; only the commands that need it load it
        from ..firewall.driver import get_port_driver

        return get_port_driver(name)

    def all_port_drivers(self) -> list[PortDriver]:
        # lazy: plugin start-up; only the commands that need it load it
        from ..firewall.driver import all_port_drivers

        return all_port_drivers()

    def host_sockets(self, protocols: set[str]) -> list[HostSocket]:
        # lazy: plugin start-up; only the commands that need it load it
        from .hostsockets import read_sockets

        return read_sockets(protocols)

    def socket_owner(self, inode: int) -> str:
        # lazy: plugin start-up; only the commands that need it load it
        from .hostsockets import socket_owner

        return socket_owner(inode)

    def is_local_address(self, address: str) -> bool:
        # lazy: plugin start-up; only the commands that need it load it
        from .hostsockets import is_local_address

        return is_local_address(address)

    def route_dev(self, address: str) -> str | None:
        # lazy: plugin start-up; only the commands that need it load it
        from .localnet import route_dev

        return route_dev(address)

    def enable_localnet(self, state_dir: str, network: str, dev: str) -> None:
        # lazy: plugin start-up; only the commands that need it load it
        from .localnet import enable

        enable(state_dir, network, dev)

    def restore_localnet(self, state_dir: str, network: str) -> None:
        # lazy: plugin start-up; only the commands that need it load it
        from .localnet import restore

        restore(state_dir, network)

    def localnet_enabled(self, dev: str) -> bool:
        # lazy: plugin start-up; only the commands that need it load it
        from .localnet import is_enabled

        return is_enabled(dev)

    def flush_udp(self, forwards: Iterable[Forward]) -> int:
        # lazy: plugin start-up; only the commands that need it load it
        from .conntrack import flush_udp

        return flush_udp(forwards)


#: the host every command acts on unless given another (unit tests pass a fake)
SYSTEM: PortmapHost = SystemHost()


def _records(conf: PortmapConf) -> Attachments:
    return Attachments(os.path.join(conf.state_dir, RECORDS), conf.name)


def _fw_error(exc: FirewallError) -> CniError:
    return CniError(errors.FIREWALL_FAILURE, exc.msg, exc.details)


def _plan(conf: PortmapConf, args: CmdArgs, prev: Result) -> PortsPlan:
    # lazy: plugin start-up; only the commands that need it load it
    from ..firewall.ports import plan_ports

    addresses = container_addresses(prev, args.ifname)
    if not addresses:
        raise CniError(errors.INVALID_CONFIG, f"portmap: prevResult has no address of interface "
                       f"{args.ifname!r} in the container (is portmap chained after bridge?)")
    try:
        return plan_ports(conf.name, args.container_id, args.ifname, conf.mappings, addresses,
                          snat=conf.snat)
    except FirewallError as exc:
        raise CniError(errors.INVALID_CONFIG, f"portmap: {exc.msg}", exc.details) from None


def _driver(host: PortmapHost, name: str | None) -> PortDriver:
    try:
        return host.port_driver(name)
    except FirewallError as exc:
        raise _fw_error(exc) from None


# --- conflicts ----------------------------------------------------------------------------

def _owner_name(conf: PortmapConf, tag: str | None) -> str:
    """``container NAME`` for a tag, from the records of every network; else its ID."""
    if tag is None:
        return "an entry netctl did not make"
    base = os.path.join(conf.state_dir, RECORDS)
    try:
        networks = [n for n in os.listdir(base) if os.path.isdir(os.path.join(base, n))]
    except OSError:
        networks = []
    for net in networks:
        for rec in Attachments(base, net).all():
            if rec.get("tag") == tag:
                return f"container {rec.get('name') or rec.get('containerID')}"
    cid = next((w[4:] for w in tag.split() if w.startswith("cid=")), tag)
    return f"container {cid}"


def _conflict_error(conf: PortmapConf, args: CmdArgs, exc: PortConflict) -> CniError:
    # lazy: plugin start-up; only the commands that need it load it
    from ..firewall.plan import parse_owner

    fwd, pub = exc.conflicts[0]
    details = "; ".join(f"{f.describe()} -> {p.target} ({p.tag or 'untagged'})"
                        for f, p in exc.conflicts)
    owner = parse_owner(pub.tag)
    if owner is not None and owner.cid is not None and (
            owner.cid == args.container_id
            or ("~" in owner.cid and args.container_id.startswith(owner.cid.split("~")[0]))):
        # the runtime asked for the same ports on a second network of the container
        return CniError(errors.PORT_CONFLICT,
                        f"port {fwd.describe()} is already published by this container through "
                        f"its interface {owner.ifname} on network {owner.network}: a host port "
                        "can lead to one attachment only", details)
    return CniError(errors.PORT_CONFLICT,
                    f"port {fwd.describe()} is already allocated by {_owner_name(conf, pub.tag)}",
                    details)


def _refuse_conflicts(plan: PortsPlan, host: PortmapHost) -> None:
    """The checks that need no firewall: ports asked twice, host sockets, foreign addresses.

    Raises:
        CniError: 107 for a port asked twice or held on the host, 7 for a non-local hostIP.
    """
    # lazy: plugin start-up; only the commands that need it load it
    from ..firewall.ports import duplicate_forwards
    from .hostsockets import socket_conflicts

    dups = duplicate_forwards(plan)
    if dups:
        raise CniError(errors.PORT_CONFLICT, f"port {dups[0][0].describe()} is requested twice",
                       f"{dups[0][0]} and {dups[0][1]}")
    for fwd in plan.forwards:
        if fwd.host_ip is not None and not host.is_local_address(fwd.host_ip):
            raise CniError(errors.INVALID_CONFIG, f"cannot publish {fwd.describe()}: "
                           f"{fwd.host_ip} is not an address of this host")
    busy = socket_conflicts(plan.forwards, host.host_sockets({f.protocol for f in plan.forwards}))
    if busy:
        fwd, sock = busy[0]
        owner = host.socket_owner(sock.inode) or "a process"
        raise CniError(errors.PORT_CONFLICT, f"port {fwd.describe()} is already in use on the host",
                       f"{sock.describe()} is held by {owner}")


# --- ADD ----------------------------------------------------------------------------------

def cmd_add(args: CmdArgs, host: PortmapHost = SYSTEM) -> Result:
    """Publish the ports of ``runtimeConfig.portMappings``; return prevResult unchanged.

    Raises:
        CniError: 7 bad config or no prevResult, 107 port conflict, 102 firewall, 5 state
            I/O; nothing is left behind.
    """
    conf = parse_portmap_conf(args.stdin)
    prev = conf.prev_result
    if prev is None:
        raise CniError(errors.INVALID_CONFIG, "portmap must be called as a chained plugin: "
                       "prevResult is missing")
    if not conf.mappings:
        return prev  # nothing to publish: touch nothing, lock nothing (plugins#510)
    plan = _plan(conf, args, prev)
    _refuse_conflicts(plan, host)
    driver = _driver(host, conf.driver)
    recs = _records(conf)
    try:
        with recs.locked():
            _add_locked(conf, args, plan, driver, recs, host)
    except OSError as exc:
        raise CniError(errors.IO_FAILURE, f"portmap: cannot write its record in {recs.dir!r}",
                       str(exc)) from None
    return prev


def _add_locked(conf: PortmapConf, args: CmdArgs, plan: PortsPlan, driver: PortDriver,
                recs: Attachments, host: PortmapHost) -> None:
    cid, ifname = args.container_id, args.ifname
    old = recs.get(cid, ifname)
    ip4 = next((f.container_ip for f in plan.forwards if f.family == 4), None)
    dev = (host.route_dev(ip4) if ip4 else None) if plan.localnet else None
    if plan.localnet and dev is None:
        log.warning("no on-link route to %s: its ports will not answer on 127.0.0.1", ip4)
    # the record first: if we die after the rules went in, DEL still knows to look
    recs.put(cid, ifname, {
        "containerID": cid, "ifname": ifname, "network": conf.name, "tag": plan.tag,
        "name": args.args.get("K8S_POD_NAME", ""), "driver": driver.name,
        "mappings": [str(m) for m in conf.mappings], "localnet": bool(dev), "dev": dev or "",
        # what the agent needs to publish the ports again after a firewall flush
        "portMappings": [mapping_record(m) for m in conf.mappings],
        "addresses": container_addresses(prev_of(conf), ifname), "snat": conf.snat})

    def undo_record() -> None:
        if old is not None:
            recs.put(cid, ifname, old)
        else:
            recs.remove(cid, ifname)

    # undo steps that fail are logged and named in the error (Rollback), never swallowed
    with Rollback() as undo:
        undo.undo("restore the attachment record", undo_record)
        try:
            driver.setup_ports(plan)
        except PortConflict as exc:
            raise _conflict_error(conf, args, exc) from None
        except FirewallError as exc:
            raise _fw_error(exc) from None
        undo.undo("remove the published ports", driver.teardown_ports, {plan.tag})
        try:
            if dev:
                host.enable_localnet(recs.state_dir, conf.name, dev)
            host.flush_udp(plan.forwards)
        except OSError as exc:
            raise CniError(errors.IO_FAILURE, f"portmap: cannot enable route_localnet on {dev}",
                           str(exc)) from None
        undo.pop_all()


def prev_of(conf: PortmapConf) -> Result:
    """prevResult of an ADD (checked present before any change)."""
    prev = conf.prev_result
    assert prev is not None
    return prev


def mapping_record(m: Any) -> dict[str, Any]:
    """A validated mapping as the ``portMappings`` entry it came from."""
    return {"hostPort": m.host_port, "containerPort": m.container_port, "protocol": m.protocol,
            "hostIP": m.host_ip}


def desired_ports(state_dir: str) -> tuple[list[tuple[PortsPlan, str, str]], list[str]]:
    """Every attachment's published ports as recorded by ADD: (plan, driver, localnet dev),
    and a message per record that cannot be turned into a plan (for the reconciler).

    Records written before they carried addresses and mappings cannot be rebuilt: they
    are reported, and their rules are still removed by DEL and GC as before.
    """
    # lazy: plugin start-up; only the commands that need it load it
    from ..firewall.ports import plan_ports

    base = os.path.join(state_dir, RECORDS)
    try:
        networks = sorted(n for n in os.listdir(base) if os.path.isdir(os.path.join(base, n)))
    except FileNotFoundError:
        return [], []
    out: list[tuple[PortsPlan, str, str]] = []
    bad: list[str] = []
    for network in networks:
        for rec in Attachments(base, network).all():
            cid, ifname = str(rec.get("containerID", "")), str(rec.get("ifname", ""))
            if "portMappings" not in rec or "addresses" not in rec:
                bad.append(f"{network}/{cid}/{ifname}: record from an older version, "
                           "ports cannot be restored")
                continue
            try:
                plan = plan_ports(network, cid, ifname, parse_mappings(rec["portMappings"]),
                                  list(rec["addresses"]), snat=bool(rec.get("snat", True)))
            except (CniError, FirewallError, TypeError) as exc:
                bad.append(f"{network}/{cid}/{ifname}: {exc}")
                continue
            out.append((plan, str(rec.get("driver") or ""), str(rec.get("dev") or "")))
    return out, bad


# --- DEL ----------------------------------------------------------------------------------

def cmd_del(args: CmdArgs, host: PortmapHost = SYSTEM) -> None:
    """Remove the attachment's published ports by owner tag (both drivers), its record, and
    route_localnet when the network publishes nothing on 127.0.0.1 any more.

    Raises:
        CniError: listing what could not be removed (after trying everything).
    """
    conf = parse_portmap_conf(args.stdin, teardown=True)
    recs = _records(conf)
    if recs.get(args.container_id, args.ifname) is None and not conf.mappings:
        return  # nothing was published: no lock, no firewall (plugins#510)
    # lazy: plugin start-up; only the commands that need it load it
    from ..firewall.ports import attachment_tag

    try:
        tag = attachment_tag(conf.name, args.container_id, args.ifname)
    except FirewallError as exc:
        raise CniError(errors.INVALID_CONFIG, f"portmap: {exc.msg}") from None

    errs = ErrorList()
    try:
        with recs.locked():
            for drv in host.all_port_drivers():
                try:
                    drv.teardown_ports({tag})
                except FirewallError as exc:
                    errs.collect(_fw_error(exc))
            if not errs.errors:  # keep the record while rules may remain: a retry finds them
                recs.remove(args.container_id, args.ifname)
            _restore_localnet(conf, recs, errs, host)
            recs.cleanup_dir()
    except OSError as exc:
        errs.collect(CniError(errors.IO_FAILURE, f"portmap: cannot update {recs.dir!r}", str(exc)))
    errs.raise_if_any()


def _restore_localnet(conf: PortmapConf, recs: Attachments, errs: ErrorList,
                      host: PortmapHost) -> None:
    """route_localnet off once no record of the network needs it (call with the lock)."""
    if any(r.get("localnet") for r in recs.all()):
        return
    try:
        host.restore_localnet(recs.state_dir, conf.name)
    except OSError as exc:
        errs.collect(CniError(errors.IO_FAILURE, "portmap: cannot turn route_localnet off", str(exc)))


# --- CHECK --------------------------------------------------------------------------------

def cmd_check(args: CmdArgs, host: PortmapHost = SYSTEM) -> None:
    """Every mapping must be published as ADD left it (IPv4-only containers included).

    Raises:
        CniError: 7 without prevResult, 102 naming the first difference (all in details).
    """
    conf = parse_portmap_conf(args.stdin)
    prev = conf.prev_result
    if prev is None:
        raise CniError(errors.INVALID_CONFIG, "portmap must be called as a chained plugin: "
                       "prevResult is missing")
    if not conf.mappings:
        return
    plan = _plan(conf, args, prev)
    rec = _records(conf).get(args.container_id, args.ifname)
    driver = _driver(host, rec.get("driver") if rec else conf.driver)
    try:
        problems = driver.check_ports(plan)
    except FirewallError as exc:
        problems = [f"published ports cannot be read: {exc}"]
    if rec is None:
        problems.append(f"no record of the published ports of {args.container_id}/{args.ifname}")
    elif rec.get("localnet") and not host.localnet_enabled(str(rec.get("dev"))):
        problems.append(f"route_localnet is off on {rec.get('dev')}: 127.0.0.1 does not answer")
    if problems:
        raise CniError(errors.FIREWALL_FAILURE, problems[0], "; ".join(problems[1:]))


# --- GC -----------------------------------------------------------------------------------

def cmd_gc(args: CmdArgs, host: PortmapHost = SYSTEM) -> None:
    """Remove published ports and records of this network's attachments that are not valid.

    Raises:
        CniError: listing what could not be collected (after trying everything).
    """
    # lazy: plugin start-up; only the commands that need it load it
    from ..cni.gc import valid_attachments
    from ..firewall.ports import attachment_tag

    conf = parse_portmap_conf(args.stdin, teardown=True)
    valid = valid_attachments(args.stdin)
    keep = set()
    for cid, ifname in valid:
        try:
            keep.add(attachment_tag(conf.name, cid, ifname))
        except FirewallError:
            continue  # a name no ADD could have tagged
    recs = _records(conf)
    errs = ErrorList()
    try:
        with recs.locked():  # no ADD of this network between reading and removing
            for drv in host.all_port_drivers():
                try:
                    drv.gc_ports(conf.name, keep)
                except FirewallError as exc:
                    errs.collect(_fw_error(exc))
            for rec in recs.all():
                key = (str(rec.get("containerID")), str(rec.get("ifname")))
                if key not in valid and not errs.errors:
                    recs.remove(*key)
            _restore_localnet(conf, recs, errs, host)
            recs.cleanup_dir()
    except OSError as exc:
        errs.collect(CniError(errors.IO_FAILURE, f"portmap: cannot update {recs.dir!r}", str(exc)))
    errs.raise_if_any()


FUNCS = PluginFuncs(add=cmd_add, delete=cmd_del, check=cmd_check, gc=cmd_gc,
                    about="netctl portmap plugin (published ports)", known_args=KNOWN_ARGS)


def main() -> None:
    skel_main(FUNCS)


if __name__ == "__main__":
    main()
