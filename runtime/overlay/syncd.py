"""The overlay sync process of one host: ``python -I -m runtime.overlay.syncd``.

::

    python -I -m runtime.overlay.syncd [--root NETCTL_ROOT] [--store URL] [--node NAME]
                                      [--advertise ADDR] [--ttl SECONDS] [-v]

It keeps this node's etcd lease alive (renewed every TTL/3 by a thread of its own), publishes the node
(``nodes/<node>``) and this host's endpoints under that lease, watches the store and
programs the kernel (FDB and neighbour entries of every overlay VXLAN device on this host)
and dnsd (entries of the containers of other hosts, scoped per network), and deletes keys
of this node whose container is gone. It is ready when ``<run>/overlay/node.json`` exists
with its PID (the plugin reads the lease from there). It re-syncs everything when it
(re)starts, when its lease was lost (etcd unreachable longer than the TTL) and every few
seconds; while etcd cannot be reached it changes nothing, so running containers keep
talking. SIGTERM/SIGINT: exit 0, the lease left to expire (a restart re-adopts the keys).
Exit 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time

from netplugins.overlay import node as nodefile
from netplugins.overlay import records
from netplugins.overlay.model import VXLAN_OVERHEAD, EndpointRec, NodeRec, vxlan_name
from netplugins.overlay.store import LeaseGone, Snapshot, Store, StoreError, StoreUnavailable
from netplugins.overlay.vxlan import (
    DataplaneError,
    Vxlan,
    plan_peers,
    underlay_mtu,
    vxlan_devices,
)

from . import config
from .dnsfeed import DnsFeed

log = logging.getLogger("netctl.syncd")

#: a full re-list even without watch events (a watch that broke silently, a kernel entry
#: someone deleted by hand)
RESYNC_EVERY = 5.0
#: a key of this node without a local record is deleted only once it stayed so this long:
#: an ADD writes its record just after its transaction
ORPHAN_GRACE = 3.0


class Syncd:
    def __init__(self, store: Store, node: str, advertise: str, ttl: int, run_dir: str) -> None:
        self.store = store
        self.node = node
        self.advertise = advertise
        self.ttl = ttl
        self.overlay_dir = os.path.join(run_dir, "overlay")
        self.dns = DnsFeed(os.path.join(run_dir, "dnsd"), self.overlay_dir)
        self.mtu = underlay_mtu(advertise) - VXLAN_OVERHEAD
        self.lease: int | None = None
        self.lease_lost = threading.Event()
        self.renewed = 0.0
        self.revision = 0
        self.dirty = threading.Event()
        self.stop = threading.Event()
        self.orphans: dict[str, float] = {}
        self.ready = False
        self.down_since: float | None = None

    # --- lease -----------------------------------------------------------------------------
    def _register(self) -> None:
        """A new lease; the node and every local endpoint under it. Raises: StoreError."""
        lease = self.store.grant(self.ttl)
        self.store.put_node(NodeRec(self.node, self.advertise), lease)
        for rec in records.all_local(self.overlay_dir):
            if not self.store.republish(rec.endpoint, lease):
                log.warning("address %s of container %s on %s is held by another container now",
                            rec.endpoint.ip, rec.endpoint.container_id[:12], rec.endpoint.network)
        self.lease, self.renewed = lease, time.monotonic()
        log.info("registered node %s (%s) with lease %x, ttl %ss", self.node, self.advertise, lease, self.ttl)

    def _keepalive(self) -> None:
        """(Re)register when there is no lease or the renewal thread lost it."""
        if self.lease is None or self.lease_lost.is_set():
            self.lease_lost.clear()
            self.lease = None
            self._register()

    def _renew_loop(self) -> None:
        """Renew the lease every TTL/3 in a thread of its own (with its own connection):
        a long reconcile on a loaded host must never let the node's keys expire."""
        store = Store(self.store.url)
        while not self.stop.wait(self.ttl / 3):
            lease = self.lease
            if lease is None or self.lease_lost.is_set():
                continue
            try:
                store.keepalive(lease)
                self.renewed = time.monotonic()
            except LeaseGone:
                if lease == self.lease:
                    self.lease_lost.set()
                    self.dirty.set()
            except StoreError as exc:
                log.debug("lease renewal failed: %s", exc)

    def _publish_node_file(self) -> None:
        assert self.lease is not None
        nodefile.write(self.overlay_dir, nodefile.NodeInfo(
            store=self.store.url, node=self.node, advertise=self.advertise, mtu=self.mtu,
            lease=self.lease, ttl=self.ttl, pid=os.getpid()))

    # --- reconcile -------------------------------------------------------------------------
    def reconcile(self, snap: Snapshot) -> None:
        """Make this host match the store (kernel, dnsd, our own keys)."""
        assert self.lease is not None
        self._own_keys(snap)
        live = {n.name: n.advertise for n in snap.nodes.values()}
        vnis = {net.vni for net, _rev in snap.networks.values()}
        present = set(vxlan_devices())
        for name, (net, _rev) in snap.networks.items():
            if net.vxlan not in present:
                continue
            try:
                ch = Vxlan(net.vxlan, net.vni).sync(plan_peers(snap.endpoints, name, self.node, live))
                if ch:
                    log.info("%s: +%d/-%d fdb, +%d/-%d neigh", net.vxlan, len(ch.fdb_add), len(ch.fdb_del),
                             len(ch.neigh_add), len(ch.neigh_del))
            except DataplaneError as exc:
                log.warning("cannot program %s: %s", net.vxlan, exc)
        self._stale_devices(vnis)
        remote = [e for e in snap.endpoints if e.node != self.node and e.node in live
                  and e.network in snap.networks]
        self.dns.sync(remote)

    def _own_keys(self, snap: Snapshot) -> None:
        """Republish local endpoints missing from the store; delete keys of this node whose
        record is gone (a DEL while etcd was unreachable), after a grace period."""
        assert self.lease is not None
        local = {r.endpoint.key: r.endpoint for r in records.all_local(self.overlay_dir)}
        stored: dict[str, EndpointRec] = {e.key: e for e in snap.endpoints}
        for key, ep in local.items():
            if key not in stored:
                if not self.store.republish(ep, self.lease):
                    log.warning("cannot republish %s: address taken", key)
        now = time.monotonic()
        for key in [k for k in self.orphans if k not in stored]:
            del self.orphans[key]  # gone meanwhile (a DEL that finished)
        for key, ep in stored.items():
            if ep.node != self.node:
                continue
            if key in local and local[key] == ep:
                self.orphans.pop(key, None)
                continue
            first = self.orphans.setdefault(key, now)
            if now - first >= ORPHAN_GRACE:
                log.info("deleting %s: no such container on this node", key)
                self.store.release(ep)
                self.orphans.pop(key, None)

    def _stale_devices(self, vnis: set[int]) -> None:
        """VXLAN devices of networks removed from the store and without local endpoints."""
        used = {r.vni for r in records.all_local(self.overlay_dir)}
        for name in vxlan_devices():
            if name.startswith("ovvx") and name[4:].isdigit():
                vni = int(name[4:])
                if vni not in vnis and vni not in used:
                    log.info("removing %s: its network is gone", name)
                    Vxlan(vxlan_name(vni), vni).delete()

    # --- loops -----------------------------------------------------------------------------
    def _watch_loop(self) -> None:
        store = Store(self.store.url)  # its own session: requests.Session is not thread-safe
        while not self.stop.is_set():
            if not self.ready:
                time.sleep(0.2)
                continue
            try:
                store.watch(self.revision + 1, self.dirty.set, self.stop)
            except StoreUnavailable:
                time.sleep(1)
            self.dirty.set()  # whatever happened while the watch was down: re-list
            time.sleep(0.2)

    def run(self) -> None:
        threading.Thread(target=self._watch_loop, name="watch", daemon=True).start()
        threading.Thread(target=self._renew_loop, name="renew", daemon=True).start()
        last_sync = 0.0
        while not self.stop.is_set():
            try:
                self._keepalive()
                if self.dirty.is_set() or not self.ready or time.monotonic() - last_sync >= RESYNC_EVERY:
                    self.dirty.clear()
                    snap = self.store.snapshot()
                    self.reconcile(snap)
                    self.revision = snap.revision
                    last_sync = time.monotonic()
                    self._publish_node_file()
                    if not self.ready:
                        self.ready = True
                        log.info("ready: %s", os.path.join(self.overlay_dir, nodefile.FILE))
                if self.down_since is not None:
                    log.info("store %s reachable again after %.1fs", self.store.url, time.monotonic() - self.down_since)
                    self.down_since = None
            except LeaseGone:
                log.warning("lease lost (etcd was unreachable longer than the TTL): registering again")
                self.lease = None
                continue
            except StoreUnavailable as exc:
                if self.down_since is None:
                    self.down_since = time.monotonic()
                    log.warning("%s; keeping the kernel as it is and retrying", exc)
                self.stop.wait(1.0)
                continue
            except StoreError as exc:
                log.error("%s", exc)
            self.dirty.wait(min(1.0, self.ttl / 3))

    def shutdown(self) -> None:
        try:
            with open(os.path.join(self.overlay_dir, nodefile.FILE)) as fh:
                if json.load(fh).get("pid") == os.getpid():
                    os.unlink(os.path.join(self.overlay_dir, nodefile.FILE))
        except (OSError, ValueError):
            pass


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m runtime.overlay.syncd",
                                description="keep this host's overlays in sync with the store")
    p.add_argument("--root", default=None, help="NETCTL_ROOT (default: /var/lib + /run/netctl)")
    p.add_argument("--store", default=None, help="etcd URL (default NETCTL_STORE)")
    p.add_argument("--node", default=None, help="node name (default NETCTL_NODE, else the hostname)")
    p.add_argument("--advertise", default=None, help="underlay address (default NETCTL_ADVERTISE, "
                   "else the source address of the default route)")
    p.add_argument("--ttl", type=int, default=None, help="lease TTL in seconds (default NETCTL_STORE_TTL, else 30)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s syncd %(levelname)s %(message)s", stream=sys.stderr)
    # lazy: only the command-line entry needs it
    from runtime.paths import Paths

    env = dict(os.environ)
    if args.root:
        env["NETCTL_ROOT"] = args.root
    paths = Paths.from_env(env)
    url = config.store_url(args.store)
    if not url:
        print("syncd: no store: give --store or set NETCTL_STORE", file=sys.stderr)
        return 2
    try:
        ttl = config.ttl(args.ttl)
        store = Store(url)
        syncd = Syncd(store, config.node_name(args.node), config.advertise(args.advertise), ttl, paths.run)
    except (ValueError, StoreError, DataplaneError) as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return 2

    def on_signal(_sig: int, _frame: object) -> None:
        syncd.stop.set()
        syncd.dirty.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        syncd.run()
    finally:
        syncd.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
