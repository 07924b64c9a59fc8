"""Names of the containers of other hosts, for this host's dnsd.

They are written as ordinary dnsd entries (``entries/<net>/<cid>-<ifname>.json``, through
``dnsd.config.write_entry``), so dnsd answers them with the same per-network scoping as
local ones: a container sees a remote name only on a network it shares with it. Which
entries are remote is kept in ``<overlayDir>/dns-remote.json``, so the entries of local
containers (the bridge plugin's) are never touched.
"""

from __future__ import annotations

import json
import logging
import os

from netplugins.overlay.model import EndpointRec

log = logging.getLogger("netctl.syncd")


class DnsFeed:
    def __init__(self, dns_dir: str, overlay_dir: str) -> None:
        self.dns_dir = dns_dir
        self.state = os.path.join(overlay_dir, "dns-remote.json")
        self.written: dict[str, str] = self._load()   # "net/cid-ifname" -> entry JSON

    def _load(self) -> dict[str, str]:
        try:
            with open(self.state) as fh:
                d = json.load(fh)
            return {str(k): str(v) for k, v in d.items()} if isinstance(d, dict) else {}
        except (OSError, ValueError):
            return {}

    def _save(self) -> None:
        os.makedirs(os.path.dirname(self.state), exist_ok=True)
        tmp = f"{self.state}.tmp"
        with open(tmp, "w") as fh:
            json.dump(self.written, fh)
        os.rename(tmp, self.state)

    def sync(self, remote: list[EndpointRec]) -> bool:
        """Write the entries of ``remote`` and remove the remote entries not in it; signal
        dnsd when something changed. True if something did."""
        # lazy: only the sync process of a cluster with DNS needs it
        from dnsd import config as dnsconf
        from dnsd import control

        want = {f"{e.network}/{e.container_id}-{e.ifname}": e for e in remote}
        changed = False
        for key in sorted(set(self.written) - set(want)):
            net, _sep, rest = key.partition("/")
            cid, _sep, ifname = rest.rpartition("-")
            try:
                dnsconf.remove_entry(self.dns_dir, net, cid, ifname)
            except (OSError, ValueError) as exc:
                log.warning("cannot remove DNS entry %s: %s", key, exc)
                continue
            del self.written[key]
            changed = True
        for key, ep in want.items():
            value = ep.to_json()
            if self.written.get(key) == value:
                continue
            try:
                dnsconf.write_entry(self.dns_dir, ep.network, ep.container_id, ep.ifname,
                                    list(ep.names), [ep.ip], [])
            except (OSError, ValueError) as exc:
                log.warning("cannot write DNS entry %s: %s", key, exc)
                continue
            self.written[key] = value
            changed = True
        if changed:
            self._save()
            try:
                control.reload(self.dns_dir)  # inotify would see it too; this is sooner
            except Exception as exc:  # noqa: BLE001
                log.debug("dnsd reload: %s", exc)
        return changed
