"""The ``bridge`` plugin: veth pair into a Linux bridge, gateway, per-network firewall.

ADD builds in order and registers an undo after every step (Rollback): bridge, IPAM,
gateway address, veth pair, container interface, forwarding, attachment record with the
network's firewall rules on the first attachment. Any failure undoes what was
done for the container (the bridge and its gateway address stay, as in the reference:
other containers may use them). Checks that need no change (CNI_IFNAME free, IPAM plugin
found) come before the first change. DEL runs every teardown step, carries on past
errors and reports them at the end; it needs neither the namespace nor the interface (its
records and the derived host veth name are enough). The last DEL of a network removes
the network's rules.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable

from ..cni import errors
from ..cni.errors import CniError, ErrorList
from ..cni.invoke import delegate, delegate_add, find_in_path
from ..cni.rollback import Rollback, notes
from ..cni.skel import CmdArgs, PluginFuncs
from ..cni.skel import main as skel_main
from ..cni.types import IPConfig, Result

# stdlib only (the rtnetlink client is ours): cheap enough to import up front, and then
# the plugin daemon has them loaded before it forks a worker
from ..nl.bridge import (
    Rtnl,
    bridge_mark,
    configure_container_iface,
    create_veth,
    delete_link,
    enable_ipv6,
    ensure_bridge,
    ensure_bridge_room,
    ensure_gateway,
    iface_index,
    setup_host_port,
)
from ..nl.netns import NetnsGone, entered, open_netns
from .attachments import Attachments
from .bridge_conf import BridgeConf, parse_bridge_conf
from .bridge_plan import (
    host_veth_name,
    plan_gateways,
    plan_result,
    plan_routes,
    random_mac,
    route_gateway,
)
from .forwarding import Forwarding

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every plugin process ~3 ms; annotations are strings here
    from typing import Any

KNOWN_ARGS = frozenset({"IP", "MAC", "K8S_POD_NAME", "K8S_POD_NAMESPACE",
                        "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID"})


# --- firewall -----------------------------------------------------------------------------

def _policy(conf: BridgeConf, subnets: list[str], guard: tuple[int, ...] = ()) -> Any:
    """The network's firewall policy; ``guard``: the families whose forwarding netctl turned
    on (forwarding.py), whose other forwarded traffic the firewall drops."""
    # lazy: plugin start-up (docs/plugin-speed.md); only this command needs it
    from ..firewall.plan import NetworkPolicy

    return NetworkPolicy(name=conf.name, bridge=conf.bridge, subnets=tuple(subnets),
                         masquerade=conf.ip_masq, internal=conf.internal, isolate=conf.isolate,
                         icc=conf.icc, guard_forwarding=guard)


def _firewall_error(exc: Exception) -> CniError:
    return CniError(errors.FIREWALL_FAILURE, "firewall rules could not be changed", str(exc))


def _setup_firewall(conf: BridgeConf, subnets: list[str], guard: tuple[int, ...]) -> None:
    """Install the network's rules and record them for the agent's reconciler (call with
    the network's attachment lock held)."""
    # lazy: plugin start-up (docs/plugin-speed.md); only this command needs it
    from ..firewall.desired import remove_policy, save_policy
    from ..firewall.driver import get_driver
    from ..firewall.errors import FirewallError

    try:
        driver = get_driver(conf.firewall_driver)
        policy = _policy(conf, subnets, guard)
        # recorded first: if the plugin dies after the rules went in, they can be found
        save_policy(conf.state_dir, policy, driver.name)
        try:
            driver.setup_network(policy)
        except FirewallError:
            remove_policy(conf.state_dir, conf.name)
            raise
    except FirewallError as exc:
        raise _firewall_error(exc) from None
    except OSError as exc:
        raise CniError(errors.IO_FAILURE, f"failed to record the firewall policy in "
                       f"{conf.state_dir!r}", str(exc)) from None


def _teardown_firewall(conf: BridgeConf) -> None:
    """Both real drivers: an earlier version may have used the other one. The record goes
    only once the rules are gone, so a failed teardown is still known to the reconciler."""
    # lazy: plugin start-up (docs/plugin-speed.md); only this command needs it
    from ..firewall.desired import remove_policy
    from ..firewall.driver import teardown_network_everywhere
    from ..firewall.errors import FirewallError

    try:
        teardown_network_everywhere(conf.name)
    except FirewallError as exc:
        raise _firewall_error(exc) from None
    remove_policy(conf.state_dir, conf.name)


def _subnets(ips: list[str]) -> list[str]:
    return sorted({str(ipaddress.ip_interface(a).network) for a in ips})


# --- ADD ----------------------------------------------------------------------------------

def _ipam_add(conf: BridgeConf, args: CmdArgs, stack: Rollback) -> Result:
    if not conf.ipam_type:
        return Result()
    result = delegate_add(conf.ipam_type, args.stdin, args.env, args.path)
    stack.undo(f"release the {conf.ipam_type} lease", delegate, conf.ipam_type, "DEL", args.stdin,
               args.env, args.path)
    if not result.ips:
        raise CniError(errors.INVALID_CONFIG, f"IPAM plugin {conf.ipam_type!r} returned no IP configuration")
    return result


#: an in-process address source instead of a delegated IPAM plugin (the overlay plugin's
#: cluster-wide leases): it registers its own undo on the rollback and returns the IPAM
#: result plus the container MAC to use ("" = random)
IpamFn = Callable[[Rollback], tuple[Result, str]]


def cmd_add(args: CmdArgs, ipam_fn: IpamFn | None = None) -> Result:
    """Attach the container to the bridge.

    Raises:
        CniError: 7 bad config, 104 bad namespace, 106 CNI_IFNAME exists, 103 IPAM not found,
            101 netlink, 102 firewall, 5 state I/O; nothing is left behind.
    """
    conf = parse_bridge_conf(args.stdin, args.args)
    if conf.ipam_type:
        find_in_path(conf.ipam_type, args.path)  # a missing IPAM plugin must change nothing
    try:
        cfd = open_netns(args.netns)
    except NetnsGone:
        raise CniError(errors.INVALID_NETNS, f"failed to open netns {args.netns!r}: no such file") from None
    try:
        with entered(args.netns):
            # the spec: an existing CNI_IFNAME in the container is an error, before any change
            if iface_index(args.ifname) is not None:
                raise CniError(errors.IFACE_EXISTS,
                               f"interface {args.ifname!r} already exists in netns {args.netns!r}")
            # a netlink socket stays in the namespace it was made in: one for the container
            # serves the whole ADD without re-entering for every request
            cnl = Rtnl()
        # closed after the rollback has unwound: the undo steps still need the sockets
        with cnl, Rtnl() as nl, Rollback() as stack:
            result = _add(conf, args, cfd, nl, cnl, stack, ipam_fn)
            stack.pop_all()
            return result
    except NetnsGone as exc:
        # removed while the ADD ran (after the undo steps ran, whose failures are noted)
        raise CniError(errors.INVALID_NETNS, f"netns {args.netns!r} disappeared during ADD",
                       notes(exc)) from None
    finally:
        os.close(cfd)


def _add(conf: BridgeConf, args: CmdArgs, cfd: int, nl: Rtnl, cnl: Rtnl, stack: Rollback,
         ipam_fn: IpamFn | None = None) -> Result:
    """The ADD steps; each registers its undo on ``stack``."""
    br_index, br_mac = ensure_bridge(nl, conf.bridge, conf.mtu, conf.promisc, random_mac(),
                                     mark=bridge_mark(conf.name))
    # before IPAM and the veth: a full bridge gets a clear error and nothing is made
    ensure_bridge_room(nl, conf.bridge, br_index, Attachments(conf.state_dir, conf.name).count())
    ipam_mac = ""
    if ipam_fn is not None:
        ipam, ipam_mac = ipam_fn(stack)
    else:
        ipam = _ipam_add(conf, args, stack)
    ips, gateways = plan_gateways(conf, ipam.ips)
    routes = plan_routes(conf, ips, ipam.routes)
    # the gateway before the veth: a bridge that carries another address fails the ADD
    # before anything was made for the container
    for gw in gateways:
        ensure_gateway(nl, conf.bridge, br_index, gw.cidr, conf.force_address)
    host_name = host_veth_name(args.container_id, args.ifname)
    host_mac, cont_mac = random_mac(), conf.mac or ipam_mac or random_mac()
    create_veth(nl, host_name, host_mac, args.ifname, cont_mac, cfd, conf.mtu, br_index, conf.bridge)
    stack.undo(f"delete the veth {host_name}", delete_link, nl, host_name)
    setup_host_port(nl, host_name, conf.hairpin, isolated=not conf.icc)
    if any(ip.family == 6 for ip in ips):
        with entered(args.netns):
            enable_ipv6(args.ifname)
    mtu = configure_container_iface(cnl, args.ifname, [(ip.address, ip.gateway) for ip in ips],
                                    [(r.dst, route_gateway(r, ips)) for r in routes])
    addrs = [ip.address for ip in ips]
    subnets = _subnets(addrs)
    record = {"containerID": args.container_id, "ifname": args.ifname, "netns": args.netns,
              "bridge": conf.bridge, "hostVeth": host_name, "ips": addrs}
    att = Attachments(conf.state_dir, conf.name)
    fwd = Forwarding(conf.state_dir)
    try:
        # one lock from forwarding on to the record: a concurrent last DEL elsewhere must
        # see this attachment before it turns forwarding off (forwarding.py)
        with fwd.locked():
            guard = fwd.recorded()
            if gateways:
                try:
                    guard = fwd.enable({g.family for g in gateways})
                except OSError as exc:
                    raise CniError(errors.IO_FAILURE, "failed to enable IP forwarding", str(exc)) from None
                stack.undo("turn IP forwarding off again", _release_forwarding, fwd)
            with att.locked():
                first = att.empty()
                att.put(args.container_id, args.ifname, record)
                stack.undo("remove the attachment record", _undo_record, conf, att, args)
                if first and subnets:
                    _setup_firewall(conf, subnets, guard)
    except OSError as exc:
        raise CniError(errors.IO_FAILURE, f"failed to record the attachment in {conf.state_dir!r}",
                       str(exc)) from None
    return plan_result(conf, br_mac, host_name, host_mac, args.ifname, cont_mac, args.netns,
                       ips, routes, ipam.dns, mtu)


def _undo_record(conf: BridgeConf, att: Attachments, args: CmdArgs) -> None:
    """Rollback of the record step: drop the record and, if it was the last, the rules.

    Raises:
        CniError: 102 when the rules could not be removed (the directory is cleaned anyway).
    """
    with Forwarding(conf.state_dir).locked(), att.locked():
        att.remove(args.container_id, args.ifname)
        if att.empty():
            try:
                _teardown_firewall(conf)
            finally:
                att.cleanup_dir()


def _release_forwarding(fwd: Forwarding) -> None:
    """Turn off the forwarding netctl turned on, if no attachment is left (forwarding.py)."""
    with fwd.locked():
        fwd.release_if_idle()


def _forget(conf: BridgeConf, att: Attachments, gone: list[tuple[str, str]]) -> None:
    """Drop records (DEL, GC); after the network's last one its rules, after the last of
    every network the forwarding netctl turned on.

    Raises:
        CniError / OSError: the firewall or the records could not be changed.
    """
    fwd = Forwarding(conf.state_dir)
    with fwd.locked():
        with att.locked():
            for cid, ifname in gone:
                att.remove(cid, ifname)
            if att.empty():
                _teardown_firewall(conf)
                att.cleanup_dir()
        fwd.release_if_idle()


# --- DEL ----------------------------------------------------------------------------------

def cmd_del(args: CmdArgs) -> None:
    """Detach: the veth pair, IPAM lease, record, and the network's rules after
    its last attachment. Carries on past failures.

    Neither the namespace nor CNI_NETNS is needed: deleting the host end (its name derives
    from the attachment) deletes the container end with it. The container's CNI_IFNAME is
    never deleted by name: after an ADD refused because that interface already existed,
    the runtime's DEL must leave the container's own interface alone.

    Raises:
        CniError: listing every step that failed (after all were tried).
    """
    conf = parse_bridge_conf(args.stdin, args.args, teardown=True)
    errs = ErrorList()
    try:
        with Rtnl() as nl:
            delete_link(nl, host_veth_name(args.container_id, args.ifname))
    except Exception as exc:  # noqa: BLE001
        errs.collect(exc)
    if conf.ipam_type:
        try:
            delegate(conf.ipam_type, "DEL", args.stdin, args.env, args.path)
        except CniError as err:
            errs.collect(err)
    try:
        _forget(conf, Attachments(conf.state_dir, conf.name), [(args.container_id, args.ifname)])
    except Exception as exc:  # noqa: BLE001
        errs.collect(exc)
    errs.raise_if_any()


# --- CHECK --------------------------------------------------------------------------------

def cmd_check(args: CmdArgs) -> None:
    """Verify what ADD built: IPAM, links, addresses, routes, bridge port, forwarding, rules.

    Raises:
        CniError: naming the first thing that is not as ADD left it.
    """
    conf = parse_bridge_conf(args.stdin, args.args)
    prev = conf.net.prev_result
    if prev is None:
        raise CniError(errors.INVALID_CONFIG, "CHECK needs prevResult")
    if conf.ipam_type:
        delegate(conf.ipam_type, "CHECK", args.stdin, args.env, args.path)
    # lazy: plugin start-up (docs/plugin-speed.md); only this command needs it
    from .bridge_check import check_attachment

    problems = check_attachment(conf, args, prev)
    subnets = _subnets([ip.address for ip in prev.ips])
    # ADD sets rules up only for a network with addresses (an L2-only network has none)
    if subnets and (conf.ip_masq or conf.isolate or conf.internal or not conf.icc):
        # lazy: plugin start-up (docs/plugin-speed.md); only this command needs it
        from ..firewall.driver import get_driver
        from ..firewall.errors import FirewallError

        try:
            policy = _policy(conf, subnets, Forwarding(conf.state_dir).recorded())
            problems += get_driver(conf.firewall_driver).check_network(policy)
        except FirewallError as exc:
            problems.append(f"firewall rules cannot be read: {exc}")
    if Attachments(conf.state_dir, conf.name).get(args.container_id, args.ifname) is None:
        problems.append(f"no attachment record for {args.container_id}/{args.ifname}")
    if problems:
        raise CniError(errors.NETLINK_FAILURE, problems[0], "; ".join(problems[1:]))


# --- STATUS / GC --------------------------------------------------------------------------

def cmd_status(args: CmdArgs) -> None:
    """Ready when IPAM is (spec: STATUS is forwarded to the delegated IPAM)."""
    conf = parse_bridge_conf(args.stdin, args.args, teardown=True)
    if conf.ipam_type:
        delegate(conf.ipam_type, "STATUS", args.stdin, args.env, args.path)


def cmd_gc(args: CmdArgs) -> None:
    """Release what belongs to attachments the runtime no longer knows: IPAM leases (by
    forwarding GC), host veths, records, the network's rules if none remain, and then
    bridges nothing uses any more (bridge_gc.py).

    Raises:
        CniError: listing what could not be collected (after trying everything).
    """
    # lazy: plugin start-up (docs/plugin-speed.md); only this command needs it
    from ..cni.gc import valid_attachments

    # lazy: plugin start-up (docs/plugin-speed.md); only this command needs it
    from .bridge_gc import collect_bridges, collect_ipam

    conf = parse_bridge_conf(args.stdin, args.args, teardown=True)
    valid = valid_attachments(args.stdin)
    errs = ErrorList()
    if conf.ipam_type:
        try:
            collect_ipam(conf.ipam_type, args)
        except CniError as err:
            errs.collect(err)
    att = Attachments(conf.state_dir, conf.name)
    stale = [r for r in att.all() if (r.get("containerID"), r.get("ifname")) not in valid]
    for rec in stale:
        cid, ifname = str(rec.get("containerID")), str(rec.get("ifname"))
        try:
            with Rtnl() as nl:
                delete_link(nl, host_veth_name(cid, ifname))
            with att.locked():
                att.remove(cid, ifname)
        except Exception as exc:  # noqa: BLE001
            errs.collect(exc)
    try:
        _forget(conf, att, [])
    except Exception as exc:  # noqa: BLE001
        errs.collect(exc)
    try:
        collect_bridges(conf)  # the bridge itself, once nothing uses it (bridge_gc.py)
    except Exception as exc:  # noqa: BLE001
        errs.collect(exc)
    errs.raise_if_any()


FUNCS = PluginFuncs(add=cmd_add, delete=cmd_del, check=cmd_check, status=cmd_status, gc=cmd_gc,
                    about="netctl bridge plugin", known_args=KNOWN_ARGS)


def main() -> None:
    skel_main(FUNCS)


if __name__ == "__main__":
    main()


__all__ = ["FUNCS", "IPConfig", "cmd_add", "cmd_check", "cmd_del", "cmd_gc", "cmd_status", "main"]
