"""The ``host-local`` IPAM plugin: leases from ``ipam.ranges``, kept in a SQLite database.

Config-compatible with the reference host-local (see :mod:`ipam.config`); the result is the
reference's abbreviated IPAM result (``ips[{address, gateway}]`` without ``interface``,
``routes``, ``dns``), printed by the skeleton in the config's cniVersion.

* ADD: one lease per range set in a single transaction (all or nothing), written *pending*
  and marked complete once the result exists. A second ADD for an attachment that holds a
  completed lease fails with "duplicate allocation"; one whose earlier ADD died before
  completing takes that ADD's leases over (:mod:`ipam.allocator`).
* DEL: releases by container ID and interface through an index; needs no namespace and no
  valid ranges (only the network name and dataDir); succeeds when nothing is held.
* CHECK: every range set holds a completed lease for the attachment and prevResult lists
  exactly those addresses (the reference only checks that *some* lease exists).
* GC: releases every lease whose attachment is not in ``cni.dev/valid-attachments``
  (or ``cni.dev/attachments``). The key must be present: an empty list releases all.
  A GC that leaves no lease also deletes the database (its round-robin cursor with it),
  so a network created again starts at the first address, as Docker's does; unless the
  runtime says it keeps the network (``netctl.dev/keep-network``, netctl's periodic GC),
  where the next container gets the next address, as on Docker.
* STATUS: code 50 when a range set has no free address, or the database is unusable.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ipam.allocator import Allocator
from ipam.config import data_dir_of, load_ipam_config
from ipam.errors import IpamError, LeaseMismatch
from ipam.owner import new_owner, owner_alive
from ipam.ranges import parse_address
from ipam.resolvconf import load_resolv_conf
from ipam.sqlstore import SqliteStore, db_path

from ..cni.errors import INVALID_CONFIG, NOT_AVAILABLE, CniError
from ..cni.gc import keeps_network, valid_attachments
from ..cni.netconf import load_netconf
from ..cni.skel import CmdArgs, PluginFuncs
from ..cni.skel import main as skel_main
from ..cni.types import DNS, IPConfig, Result, Route

#: the CNI_ARGS keys host-local reads (others need IgnoreUnknown=1, as the reference)
KNOWN_ARGS = frozenset({"IP"})
_GC_KEYS = ("cni.dev/valid-attachments", "cni.dev/attachments")


@contextmanager
def _as_cni_error() -> Iterator[None]:
    """IPAM errors carry their CNI code; hand them to the skeleton as CniError."""
    try:
        yield
    except IpamError as err:
        raise CniError(err.code, err.msg, err.details) from None


def cmd_add(args: CmdArgs) -> Result:
    """Lease one address per range set to (CNI_CONTAINERID, CNI_IFNAME).

    Raises:
        CniError: 7 invalid config or requested address, 5 unreadable database or
            resolvConf, 11 database busy or the same ADD running, 105 address held by
            another container, 110 range set exhausted, 111 duplicate allocation.
    """
    conf = load_netconf(args.stdin)
    with _as_cni_error():
        ipam = load_ipam_config(conf.raw, args.args)
        dns = load_resolv_conf(ipam.resolv_conf) if ipam.resolv_conf else None
        owner = new_owner()
        with SqliteStore(db_path(ipam.data_dir, ipam.network)) as store:
            with store.transaction():
                # the round-robin cursor is keyed by the set's subnets, not by its index as
                # in the reference: a prepended ipRanges set does not shift the others' cursors
                allocations = [
                    Allocator(rs, store, rs.subnets(), network=ipam.network, owner=owner)
                    .allocate(args.container_id, args.ifname, ipam.requested[i])
                    for i, rs in enumerate(ipam.range_sets)
                ]
            # second, tiny transaction: from here on this ADD counts as completed, and a
            # repeated ADD for the attachment is a duplicate rather than a crash retry
            with store.transaction():
                store.mark_complete(args.container_id, args.ifname, owner)
    return Result(
        ips=tuple(IPConfig(address=a.cidr, gateway=str(a.gateway)) for a in allocations),
        routes=tuple(Route(dst=r.dst, gw=r.gw) for r in ipam.routes),
        dns=DNS(nameservers=dns.nameservers, domain=dns.domain, search=dns.search,
                options=dns.options) if dns else DNS(),
    )


def cmd_del(args: CmdArgs) -> None:
    """Release the attachment's leases; nothing held (or no database yet) is a success.

    Raises:
        CniError: 7 without an ``ipam`` section, 5 unreadable database, 11 busy.
    """
    conf = load_netconf(args.stdin)
    with _as_cni_error():
        store = SqliteStore.open_existing(db_path(data_dir_of(conf.raw), conf.name))
        if store is None:
            return
        with store, store.transaction():
            store.release(args.container_id, args.ifname)


def cmd_check(args: CmdArgs) -> None:
    """The attachment holds a completed lease in every range set, and prevResult lists
    each of them with the subnet's prefix length.

    Raises:
        CniError: 7 invalid config or no prevResult, 5 unreadable database, 112 a lease is
            missing, unfinished, or differs from prevResult.
    """
    conf = load_netconf(args.stdin)
    if conf.prev_result is None:
        raise CniError(INVALID_CONFIG, "CHECK needs prevResult: the result of the ADD to check")
    with _as_cni_error():
        ipam = load_ipam_config(conf.raw, {})
        who = f"container {args.container_id} interface {args.ifname} on network {ipam.network!r}"
        store = SqliteStore.open_existing(db_path(ipam.data_dir, ipam.network))
        leases = []
        if store is not None:
            with store:
                leases = store.find(args.container_id, args.ifname)
        if not leases:
            raise LeaseMismatch(f"host-local: failed to find address added by {who}")
        prev = {ip.ip: ip.address for ip in conf.prev_result.ips}
        for i, rs in enumerate(ipam.range_sets):
            mine = {str(le.address): le for le in leases if rs.range_for(le.address) is not None}
            if not mine:
                raise LeaseMismatch(f"no lease in range set {i} ({rs.subnets()}) for {who}")
            for le in mine.values():
                rng = rs.range_for(le.address)
                assert rng is not None
                expected = f"{le.address}/{rng.subnet.prefixlen}"
                if le.pending:
                    raise LeaseMismatch(f"lease {expected} of {who} was written by an ADD "
                                        "that did not complete")
                if prev.get(str(le.address)) != expected:
                    listed = ", ".join(sorted(prev.values())) or "no address"
                    raise LeaseMismatch(f"lease {expected} of {who} does not match prevResult",
                                        f"prevResult lists {listed}")
            for ip, text in prev.items():
                in_set = rs.range_for(parse_address(ip, "prevResult address")) is not None
                if in_set and ip not in mine:
                    raise LeaseMismatch(f"prevResult address {text} is not leased to {who}")


def cmd_gc(args: CmdArgs) -> None:
    """Release every lease whose attachment the runtime no longer lists as valid.

    Leases of an ADD still running (pending, owner alive) are kept: that attachment cannot
    be in the runtime's list yet. When no lease is left the database goes (unless the
    runtime keeps the network): ``SqliteStore.drop_if_empty``.

    Raises:
        CniError: 7 when neither attachment key is present (a runtime that forgot it would
            otherwise wipe the network), 5 unreadable database, 11 busy.
    """
    conf = load_netconf(args.stdin)
    if not any(key in conf.raw for key in _GC_KEYS):
        raise CniError(INVALID_CONFIG, "GC needs cni.dev/valid-attachments",
                       "refusing to guess: an empty list releases every lease, a missing one nothing")
    valid = valid_attachments(args.stdin)
    with _as_cni_error():
        store = SqliteStore.open_existing(db_path(data_dir_of(conf.raw), conf.name))
        if store is None:
            return
        with store:
            with store.transaction():
                for le in store.leases():
                    if (le.container_id, le.ifname) in valid:
                        continue
                    if le.pending and owner_alive(le.owner):
                        continue
                    store.release_address(le.address)
            if not keeps_network(conf.raw):
                # re-checked under the lock: an ADD may have come in since the commit
                store.drop_if_empty()


def cmd_status(args: CmdArgs) -> None:
    """Ready unless a range set is full or the database cannot be read.

    Raises:
        CniError: 50 naming the exhausted range set or the database problem, 7 for an
            invalid config.
    """
    conf = load_netconf(args.stdin)
    with _as_cni_error():
        ipam = load_ipam_config(conf.raw, {})
    try:
        store = SqliteStore.open_existing(db_path(ipam.data_dir, ipam.network))
        if store is None:
            return
        with store:
            for i, rs in enumerate(ipam.range_sets):
                leased = sum(store.count_between(r.start, r.end) for r in rs)
                if leased >= rs.capacity():
                    raise CniError(NOT_AVAILABLE,
                                   f"no IP addresses available in range set {i} ({rs}) of "
                                   f"network {ipam.network!r}",
                                   f"{leased} of {rs.capacity()} addresses are leased")
    except IpamError as err:
        raise CniError(NOT_AVAILABLE, err.msg, err.details) from None


FUNCS = PluginFuncs(
    add=cmd_add, delete=cmd_del, check=cmd_check, status=cmd_status, gc=cmd_gc,
    about="netctl host-local IPAM plugin (leases in SQLite, one database per network)",
    known_args=KNOWN_ARGS,
)


def main() -> None:
    skel_main(FUNCS)


if __name__ == "__main__":
    main()
