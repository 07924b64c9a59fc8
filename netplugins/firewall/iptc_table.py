"""The libiptc side of the iptables driver: read, edit and commit legacy tables.

Imported by the iptables drivers (``iptables_driver``, ``ports_ipt_driver``, ``ports_iptc``);
python-iptables itself is imported inside the functions here because it costs
~150-350 ms, and teardown on a host without legacy tables must not pay that.
The driver runs every per-family function through ``run_forked`` (see why there) and
holds the xtables lock around those that commit.
"""

from __future__ import annotations

import ipaddress
import os
import pickle
import sys
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, cast

from .errors import FirewallError
from .iptables import (
    FORWARD_CHAIN,
    GROUPS,
    SKELETON,
    IptablesPlan,
    IptRule,
    dispatch_group,
    is_guard,
    skeleton_rules,
)
from .plan import network_hash, network_owner

TABLES = ("filter", "nat")
T = TypeVar("T")


def loaded_families() -> set[int]:
    """Families whose filter or nat legacy table exists in this namespace (read from /proc)."""
    found = set()
    for fam, path in ((4, "/proc/net/ip_tables_names"), (6, "/proc/net/ip6_tables_names")):
        try:
            with open(path) as fh:
                names = set(fh.read().split())
        except OSError:
            continue
        if names & set(TABLES):
            found.add(fam)
    return found


def iptc_module() -> Any:
    if "iptc" in sys.modules:
        return sys.modules["iptc"]
    # python-iptables imports distutils.sysconfig for a fallback path. Through setuptools'
    # distutils shim (a sys.meta_path finder installed at startup) that alone costs ~160 ms
    # of every plugin call; the standard library's copy costs ~10 ms. So the shim is
    # stepped around for this one import (Python 3.12+ has no stdlib distutils: the
    # binding then catches ModuleNotFoundError and uses sysconfig).
    shims = [f for f in sys.meta_path if type(f).__module__ == "_distutils_hack"]
    for finder in shims:
        sys.meta_path.remove(finder)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import iptc  # type: ignore[import-untyped]
    except Exception as exc:  # the binding raises plain Exceptions when libxtables is missing
        raise FirewallError("iptables driver: python-iptables cannot be loaded", str(exc)) from None
    finally:
        sys.meta_path[0:0] = shims
    return iptc


def preload() -> None:
    """Import python-iptables now (e.g. in the warm plugin daemon before it forks workers).

    Only the import: no table is opened and no extension loaded, so forked children keep
    loading extensions for one family each (see ``run_forked``).

    Raises:
        FirewallError: python-iptables cannot be loaded.
    """
    iptc_module()


def open_table(fam: int, name: str) -> Any:
    iptc = iptc_module()
    cls = iptc.Table if fam == 4 else iptc.Table6
    try:
        table = cls(name, autocommit=False)
        table.refresh()  # the binding caches tables; always start from the kernel's state
    except iptc.IPTCError as exc:
        raise FirewallError(f"iptables: cannot open the IPv{fam} {name} table", str(exc)) from None
    return table


def _norm_addr(value: str | None, fam: int) -> str | None:
    """``10.0.0.0/255.255.255.0`` (libiptc) -> ``10.0.0.0/24``; any address -> ``None``."""
    if not value:
        return None
    neg = value.startswith("!")
    addr, _, mask = value.lstrip("!").partition("/")
    if mask and not mask.isdigit():
        mask = str(bin(int(ipaddress.ip_address(mask))).count("1"))
    prefix = int(mask) if mask else (32 if fam == 4 else 128)
    if prefix == 0:
        return None
    return ("!" if neg else "") + f"{addr}/{prefix}"


def from_iptc(rule: Any, fam: int, table: str, chain: str) -> IptRule:
    """A live libiptc rule in the normalised form of ``IptRule``."""
    matches = []
    for m in rule.matches:
        params = m.get_all_parameters()
        matches.append((m.name, tuple((k, " ".join(v)) for k, v in params.items())))
    return IptRule(
        fam,
        table,
        chain,
        src=_norm_addr(rule.src, fam),
        dst=_norm_addr(rule.dst, fam),
        in_if=rule.in_interface or None,
        out_if=rule.out_interface or None,
        # python-iptables reports "any protocol" as "ip"
        proto=None if (rule.protocol or "ip") in ("ip", "all", "0") else rule.protocol,
        matches=tuple(matches),
        target=rule.target.name if rule.target else "",
        target_opts=_target_opts(rule),
    )


def _target_opts(rule: Any) -> tuple[tuple[str, str], ...]:
    """A rule's target options (``DNAT --to-destination``); none for jumps and verdicts."""
    if not rule.target:
        return ()
    try:
        params = rule.target.get_all_parameters()
    except Exception:  # the binding cannot describe standard targets on every version
        return ()
    return tuple((k, " ".join(v)) for k, v in params.items())


def to_iptc(r: IptRule) -> Any:
    """An ``IptRule`` as a python-iptables rule object."""
    iptc = iptc_module()
    rule = iptc.Rule() if r.family == 4 else iptc.Rule6()
    if r.src:
        rule.src = r.src
    if r.dst:
        rule.dst = r.dst
    if r.in_if:
        rule.in_interface = r.in_if
    if r.out_if:
        rule.out_interface = r.out_if
    if r.proto:
        rule.protocol = r.proto
    for name, opts in r.matches:
        m = rule.create_match(name)
        for key, val in opts:
            setattr(m, key.replace("-", "_"), val)
    target = rule.create_target(r.target)
    for key, val in r.target_opts:
        setattr(target, key.replace("-", "_"), val)
    return rule


def live_rules(table: Any, fam: int) -> dict[str, list[tuple[IptRule, Any]]]:
    """Chain name -> [(normalised rule, libiptc rule)] for every chain of ``table``."""
    return {
        ch.name: [(from_iptc(r, fam, table.name, ch.name), r) for r in ch.rules]
        for ch in table.chains
    }


def _remove_owned(table: Any, live: dict[str, list[tuple[IptRule, Any]]], network: str) -> bool:
    """Delete the network's tagged rules and chains from ``table`` (uncommitted)."""

    def mine(r: IptRule) -> bool:
        return network_owner(r.comment) == network

    h = network_hash(network)
    doomed = {f"NETCTL-{g}-{h}" for g in GROUPS} & set(live)
    for name, rules in live.items():
        # a chain holding only the network's rules is its own, whatever naming made it
        if (
            name not in SKELETON
            and not table.builtin_chain(name)
            and rules
            and all(mine(r) for r, _ in rules)
        ):
            doomed.add(name)
    iptc = iptc_module()
    changed = False
    for name, rules in live.items():
        if name in doomed:
            continue
        for norm, raw in rules:
            if mine(norm):
                iptc.Chain(table, name).delete_rule(raw)
                changed = True
    # flush all first: one doomed chain may jump to another
    for name in sorted(doomed):
        table.flush_entries(name)
    for name in sorted(doomed):
        table.delete_chain(name)
    return changed or bool(doomed)


def _prune_skeleton(table: Any, fam: int) -> bool:
    """Drop NETCTL-FORWARD/NETCTL-POSTROUTING and their jumps once they are empty (the
    forwarding guard alone does not count: it goes with the last network)."""
    changed = False
    for chain, (tname, builtin, _first) in SKELETON.items():
        if tname != table.name or not table.is_chain(chain):
            continue
        iptc = iptc_module()
        if any(not is_guard(from_iptc(r, fam, tname, chain)) for r in iptc.Chain(table, chain).rules):
            continue
        base = iptc.Chain(table, builtin)
        for r in base.rules:
            if r.target and r.target.name == chain:
                base.delete_rule(r)
        table.flush_entries(chain)
        table.delete_chain(chain)
        changed = True
    return changed


def _add_plan(table: Any, plan: IptablesPlan, fam: int) -> None:
    """Create the plan's chains and rules for one family and table (uncommitted)."""
    iptc = iptc_module()
    for f, tname, name in plan.chains:
        if f == fam and tname == table.name:
            table.create_chain(name)
    for skel in skeleton_rules(plan):
        if skel.family != fam or skel.table != table.name:
            continue
        if not table.is_chain(skel.target):
            table.create_chain(skel.target)
        builtin = iptc.Chain(table, skel.chain)
        if not any(r.target and r.target.name == skel.target for r in builtin.rules):
            if SKELETON[skel.target][2]:
                builtin.insert_rule(to_iptc(skel), 0)
            else:
                builtin.append_rule(to_iptc(skel))
    for r in plan.rules:
        if r.family != fam or r.table != table.name:
            continue
        chain = iptc.Chain(table, r.chain)
        if is_guard(r) and any(is_guard(from_iptc(x, fam, table.name, r.chain)) for x in chain.rules):
            continue  # shared by the networks that need it: once is enough
        if r.chain == FORWARD_CHAIN:
            # keep the guard / in / out groups in order (plan.py: why the order matters)
            group = dispatch_group(r.target)
            pos = sum(1 for x in chain.rules if x.target and dispatch_group(x.target.name) <= group)
            chain.insert_rule(to_iptc(r), pos)
        else:
            chain.append_rule(to_iptc(r))


def sync_family(fam: int, network: str, plan: IptablesPlan | None) -> None:
    """Make one family's filter and nat tables hold exactly ``plan`` for ``network``.

    ``plan=None`` removes the network. Each table is one libiptc commit, skipped when
    nothing changed. The caller holds the xtables lock.

    Raises:
        FirewallError: libiptc refused an edit or the commit.
    """
    iptc = iptc_module()
    for tname in TABLES:
        wanted = plan is not None and any(r.family == fam and r.table == tname for r in plan.rules)
        table = open_table(fam, tname)
        try:
            changed = _remove_owned(table, live_rules(table, fam), network)
            if wanted:
                assert plan is not None
                _add_plan(table, plan, fam)
                changed = True
            changed = _prune_skeleton(table, fam) or changed
            if changed:
                table.commit()
        except iptc.IPTCError as exc:
            raise FirewallError(
                f"iptables: cannot update the IPv{fam} {tname} table for network {network!r}",
                str(exc),
            ) from None
        finally:
            table.refresh()  # drop anything uncommitted from the cached handle


def check_family(plan: IptablesPlan, network: str, fam: int) -> list[str]:
    """Differences between one family's live tables and ``plan`` (``[]`` = in sync)."""
    problems: list[str] = []
    want_chains = {(f, t, c) for f, t, c in plan.chains}
    for tname in TABLES:
        live = live_rules(open_table(fam, tname), fam)
        where = f"IPv{fam} {tname}"
        want = [
            r
            for r in skeleton_rules(plan) + list(plan.rules)
            if r.family == fam and r.table == tname
        ]
        problems += [
            f"{where}: chain {c} is missing"
            for f, t, c in sorted(want_chains)
            if (f, t) == (fam, tname) and c not in live
        ]
        by_chain: dict[str, list[str]] = {}
        for r in want:
            by_chain.setdefault(r.chain, []).append(r.save_line())
        for chain, lines in by_chain.items():
            got = [n.save_line() for n, _ in live.get(chain, [])]
            problems += [f"{where}: rule missing: {line}" for line in lines if line not in got]
            if (fam, tname, chain) in want_chains:
                # a per-network chain must hold exactly its rules, in order
                problems += [f"{where}: unexpected rule: {g}" for g in got if g not in lines]
                if sorted(got) == sorted(lines) and got != lines:
                    problems.append(f"{where}: rules of chain {chain} are out of order")
        groups = [dispatch_group(n.target) for n, _ in live.get(FORWARD_CHAIN, [])]
        if groups != sorted(groups):
            problems.append(f"{where}: jumps in {FORWARD_CHAIN} are not in guard/in/out order")
        for chain, rules in live.items():
            if (fam, tname, chain) in want_chains:
                continue
            for norm, _ in rules:
                if network_owner(
                    norm.comment
                ) == network and norm.save_line() not in by_chain.get(chain, []):
                    problems.append(f"{where}: stale rule: {norm.save_line()}")
    return problems


def list_family(fam: int) -> set[str]:
    """Network names in the owner tags of one family's filter/nat rules."""
    names: set[str] = set()
    for tname in TABLES:
        for rules in live_rules(open_table(fam, tname), fam).values():
            for norm, _ in rules:
                net = network_owner(norm.comment)
                if net is not None:
                    names.add(net)
    return names


def run_forked(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` in a forked child and return its result (or raise its error).

    Why: libxtables registers an extension only for the IP family that is current when
    the extension's library is loaded, so a process that used MASQUERADE for IPv4 can
    never build an IPv6 MASQUERADE rule ("can't find target MASQUERADE"), and libxtables
    calls exit() on some errors. Each family therefore gets its own short-lived child
    (~5 ms): python-iptables is imported once in the parent, extensions load in children.
    The caller must be single-threaded (plugin processes are).

    Raises:
        FirewallError: the child raised it, failed otherwise, or died.
    """
    iptc_module()  # import once here (the expensive part) so that every child inherits it
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(rfd)
        os.dup2(2, 1)  # libxtables may print; a plugin's stdout carries its result JSON
        try:
            result: tuple[Any, ...] = ("ok", fn(*args))
        except FirewallError as exc:
            result = ("err", exc.msg, exc.details)
        except BaseException as exc:  # report everything: the parent must not hang or guess
            result = ("err", f"iptables worker failed: {type(exc).__name__}", str(exc))
        try:
            with os.fdopen(wfd, "wb") as out:
                pickle.dump(result, out)
        finally:
            os._exit(0)  # no atexit handlers, no second flush of the parent's buffers
    os.close(wfd)
    with os.fdopen(rfd, "rb") as inp:
        data = inp.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise FirewallError("iptables worker died", f"wait status {status}")
    result = pickle.loads(data)
    if result[0] == "err":
        raise FirewallError(result[1], result[2])
    return cast(T, result[1])
