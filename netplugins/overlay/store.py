"""The cluster store: etcd v3 through its JSON gateway (etcd3gw), with our transactions.

Every method raises ``StoreUnavailable`` (naming the store URL) when etcd cannot be
reached or answers with an error, so callers can turn it into CNI code 11 ("try again
later") or keep the kernel state as it is (the sync process).
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from .lighthttp import Client, HttpError
from .model import (
    ENDPOINTS,
    NETWORKS,
    NODES,
    PREFIX,
    EndpointRec,
    NodeRec,
    OverlayNet,
    RecordError,
    endpoints_prefix,
    network_key,
    node_key,
)

log = logging.getLogger(__name__)

#: etcd answers in a few ms; a store that takes longer is treated as unreachable, so an
#: ADD fails quickly instead of hanging the runtime
DEFAULT_TIMEOUT = 3.0


class StoreError(Exception):
    """Base class: something about the store."""


class StoreUnavailable(StoreError):
    """etcd could not be reached or refused the request."""


class LeaseGone(StoreError):
    """The node's etcd lease expired or is unknown (the sync process must grant a new one)."""


def _port_ok(parsed: Any) -> bool:
    try:
        return parsed.port is None or 0 < parsed.port < 65536
    except ValueError:
        return False


def _short(exc: Exception) -> str:
    """The useful end of a requests error ("Connection refused", "timed out")."""
    text = str(getattr(exc, "detail_text", "") or exc)
    for marker in ("Connection refused", "timed out", "No route to host", "Network is unreachable"):
        if marker in text:
            return marker
    return text[-200:]


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def _unb64(s: str) -> bytes:
    return base64.b64decode(s)


def _prefix_end(prefix: str) -> str:
    """The range end that selects every key starting with ``prefix``."""
    b = prefix.encode()
    return (b[:-1] + bytes([b[-1] + 1])).decode()


@dataclass(frozen=True)
class Snapshot:
    """Everything of the cluster at one etcd revision."""

    revision: int
    networks: dict[str, tuple[OverlayNet, int]]   # name -> (network, create_revision)
    nodes: dict[str, NodeRec]
    endpoints: list[EndpointRec]


class Store:
    """One etcd endpoint (``http://host:2379``).

    ``light=True`` (the plugin) posts through ``lighthttp`` (stdlib) instead of etcd3gw; it
    cannot watch.
    """

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT, light: bool = False) -> None:
        """Raises: StoreError for a URL that is not http(s)://host:port."""
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or not _port_ok(parsed):
            raise StoreError(f"invalid store URL {url!r}: use http://HOST:PORT")
        self.url = url
        self.light: Any = None
        self.client: Any = None
        if light:
            self.light = Client(url, timeout)
        else:
            # lazy: etcd3gw and requests cost ~180 ms; only the sync process uses them
            from etcd3gw.client import Etcd3Client

            self.client = Etcd3Client(host=parsed.hostname, port=parsed.port or 2379,
                                      protocol=parsed.scheme, timeout=timeout, api_path="/v3/")

    # --- low level ------------------------------------------------------------------------
    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        if self.light is not None:
            return self._post_light(path, payload)
        # lazy: etcd3gw and requests cost ~180 ms; only the sync process uses them
        import requests
        from etcd3gw.exceptions import ConnectionFailedError, ConnectionTimeoutError, Etcd3Exception

        try:
            out: dict[str, Any] = self.client.post(self.client.get_url(path), json=payload)
            return out
        except (ConnectionFailedError, ConnectionTimeoutError) as exc:
            raise StoreUnavailable(f"etcd store {self.url} is unreachable: {_short(exc)}") from None
        except Etcd3Exception as exc:
            detail = str(getattr(exc, "detail_text", "") or exc)
            if "lease not found" in detail:
                raise LeaseGone(f"etcd store {self.url}: the node's lease is gone") from None
            raise StoreUnavailable(f"etcd store {self.url} refused the request: {detail}") from None
        except (requests.RequestException, OSError, ValueError) as exc:
            raise StoreUnavailable(f"etcd store {self.url} is unreachable: {exc}") from None

    def _post_light(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.light.post("/v3/" + path.lstrip("/"), payload)  # type: ignore[no-any-return]
        except HttpError as exc:
            if "lease not found" in exc.body:
                raise LeaseGone(f"etcd store {self.url}: the node's lease is gone") from None
            raise StoreUnavailable(f"etcd store {self.url} refused the request: {exc}") from None
        except (OSError, ValueError) as exc:
            raise StoreUnavailable(f"etcd store {self.url} is unreachable: {_short(exc)}") from None

    def _range(self, prefix: str) -> tuple[int, list[dict[str, Any]]]:
        out = self._post("/kv/range", {"key": _b64(prefix), "range_end": _b64(_prefix_end(prefix))})
        return int(out.get("header", {}).get("revision", 0)), list(out.get("kvs", []))

    def _txn(self, compare: list[dict[str, Any]], success: list[dict[str, Any]]) -> bool:
        out = self._post("/kv/txn", {"compare": compare, "success": success, "failure": []})
        return bool(out.get("succeeded", False))

    # --- reading --------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """Networks, nodes and endpoints, read at one revision (one range over the prefix).

        Raises: StoreUnavailable.
        """
        rev, kvs = self._range(PREFIX)
        nets: dict[str, tuple[OverlayNet, int]] = {}
        nodes: dict[str, NodeRec] = {}
        eps: list[EndpointRec] = []
        for kv in kvs:
            key = _unb64(kv["key"]).decode()
            value = _unb64(kv.get("value", ""))
            try:
                if key.startswith(NETWORKS):
                    net = OverlayNet.from_json(value)
                    nets[net.name] = (net, int(kv.get("create_revision", 0)))
                elif key.startswith(NODES):
                    node = NodeRec.from_json(value)
                    nodes[node.name] = node
                elif key.startswith(ENDPOINTS):
                    eps.append(EndpointRec.from_json(value))
            except RecordError as exc:
                log.warning("ignoring %s: %s", key, exc)
        return Snapshot(revision=rev, networks=nets, nodes=nodes, endpoints=eps)

    def network(self, name: str) -> tuple[OverlayNet, int] | None:
        """The network and its create revision, or None. Raises: StoreUnavailable."""
        out = self._post("/kv/range", {"key": _b64(network_key(name))})
        kvs = out.get("kvs", [])
        if not kvs:
            return None
        try:
            return OverlayNet.from_json(_unb64(kvs[0].get("value", ""))), int(kvs[0]["create_revision"])
        except RecordError as exc:
            raise StoreUnavailable(f"etcd store {self.url}: network {name!r}: {exc}") from None

    def networks(self) -> tuple[int, list[OverlayNet]]:
        """(revision, networks). Raises: StoreUnavailable."""
        rev, kvs = self._range(NETWORKS)
        out = []
        for kv in kvs:
            try:
                out.append(OverlayNet.from_json(_unb64(kv.get("value", ""))))
            except RecordError as exc:
                log.warning("ignoring a network record: %s", exc)
        return rev, out

    def endpoints(self, network: str) -> list[EndpointRec]:
        """Raises: StoreUnavailable."""
        _rev, kvs = self._range(endpoints_prefix(network))
        out = []
        for kv in kvs:
            try:
                out.append(EndpointRec.from_json(_unb64(kv.get("value", ""))))
            except RecordError as exc:
                log.warning("ignoring an endpoint record: %s", exc)
        return out

    # --- networks -------------------------------------------------------------------------
    def create_network(self, net: OverlayNet, read_revision: int) -> bool:
        """Store ``net`` if its name is free and no network changed since ``read_revision``
        (the revision the caller chose the VNI and subnet at): two hosts creating networks
        at once cannot both get one VNI or overlapping subnets; the loser retries.

        Raises: StoreUnavailable.
        """
        compare = [
            {"key": _b64(network_key(net.name)), "target": "CREATE", "result": "EQUAL", "create_revision": 0},
            {"key": _b64(NETWORKS), "range_end": _b64(_prefix_end(NETWORKS)), "target": "MOD",
             "result": "LESS", "mod_revision": read_revision + 1},
        ]
        put = [{"request_put": {"key": _b64(network_key(net.name)), "value": _b64(net.to_json())}}]
        return self._txn(compare, put)

    def delete_network(self, name: str) -> bool:
        """Delete the network if no host has an endpoint on it (one transaction: a
        concurrent ADD either lands first and blocks the removal, or fails on the missing
        network). False when endpoints exist.

        Raises: StoreUnavailable.
        """
        prefix = endpoints_prefix(name)
        compare = [{"key": _b64(prefix), "range_end": _b64(_prefix_end(prefix)), "target": "CREATE",
                    "result": "EQUAL", "create_revision": 0}]
        return self._txn(compare, [{"request_delete_range": {"key": _b64(network_key(name))}}])

    # --- nodes and leases -----------------------------------------------------------------
    def grant(self, ttl: int) -> int:
        """A new lease; its ID. Raises: StoreUnavailable."""
        out = self._post("/lease/grant", {"TTL": ttl, "ID": 0})
        return int(out["ID"])

    def keepalive(self, lease: int) -> int:
        """Renew ``lease``; its remaining TTL. Raises: LeaseGone, StoreUnavailable."""
        out = self._post("/lease/keepalive", {"ID": lease})
        ttl = int(out.get("result", {}).get("TTL", 0))
        if ttl <= 0:
            raise LeaseGone(f"etcd store {self.url}: lease {lease:x} expired")
        return ttl

    def revoke(self, lease: int) -> None:
        """Raises: StoreUnavailable."""
        try:
            self._post("/lease/revoke", {"ID": lease})
        except LeaseGone:
            pass

    def put_node(self, node: NodeRec, lease: int) -> None:
        """Raises: LeaseGone, StoreUnavailable."""
        self._post("/kv/put", {"key": _b64(node_key(node.name)), "value": _b64(node.to_json()),
                               "lease": lease})

    # --- endpoints ------------------------------------------------------------------------
    def claim(self, ep: EndpointRec, lease: int, net_create_revision: int) -> bool:
        """Create the endpoint key if the address is free and the network is still the one
        the caller read (one write). False when the address is taken or the network is gone.

        Raises: LeaseGone, StoreUnavailable.
        """
        compare = [
            {"key": _b64(network_key(ep.network)), "target": "CREATE", "result": "EQUAL",
             "create_revision": net_create_revision},
            {"key": _b64(ep.key), "target": "CREATE", "result": "EQUAL", "create_revision": 0},
        ]
        put = [{"request_put": {"key": _b64(ep.key), "value": _b64(ep.to_json()), "lease": lease}}]
        return self._txn(compare, put)

    def republish(self, ep: EndpointRec, lease: int) -> bool:
        """Put the endpoint under ``lease`` if its address is free or already ours (same
        value): a restarted sync process moves its containers to its new lease. False when
        another container holds the address now.

        Raises: LeaseGone, StoreUnavailable.
        """
        key, value = _b64(ep.key), _b64(ep.to_json())
        put = [{"request_put": {"key": key, "value": value, "lease": lease}}]
        if self._txn([{"key": key, "target": "CREATE", "result": "EQUAL", "create_revision": 0}], put):
            return True
        return self._txn([{"key": key, "target": "VALUE", "result": "EQUAL", "value": value}], put)

    def release(self, ep: EndpointRec) -> None:
        """Delete the endpoint if it still is this one (never another container's lease
        on a reused address). Raises: StoreUnavailable."""
        key = _b64(ep.key)
        self._txn([{"key": key, "target": "VALUE", "result": "EQUAL", "value": _b64(ep.to_json())}],
                  [{"request_delete_range": {"key": key}}])

    # --- watch ----------------------------------------------------------------------------
    def watch(self, start_revision: int, on_event: Callable[[], None],
              stop: threading.Event) -> None:
        """Call ``on_event`` for every change under our prefix after ``start_revision``,
        until ``stop`` is set or the stream breaks (then return; the caller re-lists).

        Raises: StoreUnavailable when the watch cannot be opened.
        """
        # lazy: etcd3gw and requests cost ~180 ms; only the sync process uses them
        import requests

        if self.client is None:
            raise StoreError("watch needs the etcd3gw client (Store(light=False))")
        payload = {"create_request": {"key": _b64(PREFIX), "range_end": _b64(_prefix_end(PREFIX)),
                                      "start_revision": start_revision, "progress_notify": True}}
        try:
            resp = self.client.session.post(self.client.get_url("/watch"), json=payload, stream=True,
                                            timeout=(DEFAULT_TIMEOUT, 15))
        except (requests.RequestException, OSError) as exc:
            raise StoreUnavailable(f"etcd store {self.url} is unreachable: {exc}") from None
        try:
            for _chunk in _lines(resp, stop):
                on_event()
        except (requests.RequestException, OSError, ValueError) as exc:
            log.info("watch on %s ended: %s", self.url, exc)
        finally:
            resp.close()


def _lines(resp: Any, stop: threading.Event) -> Iterator[dict[str, Any]]:
    """Watch responses that carry events (progress notifications keep the stream alive
    and let us see ``stop`` at least every few seconds)."""
    # lazy: etcd3gw and requests cost ~180 ms; only the sync process uses them
    import json

    for line in resp.iter_lines():
        if stop.is_set():
            return
        if not line:
            continue
        msg = json.loads(line)
        result = msg.get("result", {})
        if result.get("events"):
            yield result
        if result.get("canceled"):
            return
