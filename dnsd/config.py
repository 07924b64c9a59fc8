"""The dnsd configuration directory: writers for the plugin, readers for dnsd.

Layout of ``dns_dir`` (e.g. ``/run/netctl/dnsd``)::

    networks/<network>.json                       one file per DNS-enabled network
    entries/<network>/<containerID>-<ifname>.json one file per container attachment
    config.lock                                   flock: remove_network vs. entry writers
    dnsd.pid, dnsd.lock, dnsd.log                 owned by dnsd.control

Every writer is atomic (write a dot-prefixed temp file in the target directory, then
``os.replace``), so a reader never sees a half-written file and concurrent writers of one
file end with one complete version (last rename wins). Readers skip dot files.

This module is imported by the DNS registration plugin (netplugins/meta/dnsreg.py) on
every container start, so it must stay
cheap: stdlib only (json, os, fcntl, ipaddress, which the interpreter has already loaded
at start-up). dnslib, asyncio and friends are never imported here.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

NETWORKS = "networks"
ENTRIES = "entries"
CONFIG_LOCK = "config.lock"

# Network names, container IDs and interface names become file names: keep them to a
# conservative charset so that nothing can escape the directory ("..", "/") or hide as a
# dot file (which readers skip as temp files).
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")


class ConfigError(ValueError):
    """A configuration value is invalid (bad name, address or type)."""


def _check_name(kind: str, value: object) -> str:
    if not isinstance(value, str) or not _SAFE_NAME.fullmatch(value) or ".." in value:
        raise ConfigError(f"invalid {kind} {value!r}: use letters, digits, '_', '.', '-'")
    return value


def _check_ips(kind: str, values: Iterable[object], version: int | None = None) -> list[str]:
    if isinstance(values, str | bytes):
        raise ConfigError(f"{kind} must be a list of addresses, not a string")
    out = []
    for v in values:
        try:
            ip = ipaddress.ip_address(v)  # type: ignore[arg-type]
        except ValueError:
            raise ConfigError(f"invalid {kind} address {v!r}") from None
        if version is not None and ip.version != version:
            raise ConfigError(f"{kind} address {v!r} is not IPv{version}")
        out.append(str(ip))
    return out


def _check_subnets(values: Iterable[object]) -> list[str]:
    if isinstance(values, str | bytes):
        raise ConfigError("subnets must be a list of CIDRs, not a string")
    out = []
    for v in values:
        try:
            out.append(str(ipaddress.ip_network(v, strict=False)))  # type: ignore[arg-type]
        except ValueError:
            raise ConfigError(f"invalid subnet {v!r}") from None
    return out


def _check_names(values: Iterable[object]) -> list[str]:
    if isinstance(values, str | bytes):
        raise ConfigError("names must be a list of strings, not a string")
    out: list[str] = []
    for v in values:
        if not isinstance(v, str) or not v.strip(". ") or any(c.isspace() for c in v):
            raise ConfigError(f"invalid DNS name {v!r}")
        if v not in out:  # docker deduplicates DNSNames too (buildEndpointDNSNames)
            out.append(v)
    return out


@contextmanager
def _config_lock(dns_dir: str, exclusive: bool) -> Iterator[None]:
    """Serialise remove_network (exclusive) against entry/network writers (shared)."""
    os.makedirs(dns_dir, exist_ok=True)
    fd = os.open(os.path.join(dns_dir, CONFIG_LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _atomic_write_json(path: str, data: dict[str, Any]) -> None:
    """Write JSON to ``path`` via temp file + rename.

    No fsync: the directory lives on /run (tmpfs) and only has to survive as long as
    the processes reading it; atomicity comes from the rename, not from fsync.
    """
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, separators=(",", ":"))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def network_path(dns_dir: str, name: str) -> str:
    """Path of a network's file (the name is validated).

    Raises:
        ConfigError: if ``name`` is not a safe network name.
    """
    return os.path.join(dns_dir, NETWORKS, _check_name("network name", name) + ".json")


def entry_path(dns_dir: str, network: str, container_id: str, ifname: str) -> str:
    """Path of one container attachment's file (all parts validated).

    Raises:
        ConfigError: if a part is not a safe name.
    """
    _check_name("container id", container_id)
    _check_name("interface name", ifname)
    return os.path.join(
        dns_dir, ENTRIES, _check_name("network name", network), f"{container_id}-{ifname}.json"
    )


def write_network(
    dns_dir: str,
    name: str,
    listen: Iterable[str],
    subnets: Iterable[str],
    internal: bool = False,
    upstreams: Iterable[str] = (),
) -> None:
    """Create or replace a DNS-enabled network (idempotent).

    Call it before every ``write_entry`` of an ADD: it is cheap and makes the network
    reappear if a concurrent DEL of the last container just removed it.

    Raises:
        ConfigError: on an invalid name, listen address, subnet or upstream.
        OSError: if the directory cannot be written.
    """
    path = network_path(dns_dir, name)
    data = {
        "name": name,
        "listen": _check_ips("listen", listen),
        "subnets": _check_subnets(subnets),
        "internal": bool(internal),
        "upstreams": _check_ips("upstream", upstreams),
    }
    with _config_lock(dns_dir, exclusive=False):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _atomic_write_json(path, data)


def remove_network(dns_dir: str, name: str) -> None:
    """Remove a network and all its entries (absent = success).

    Raises:
        ConfigError: on an invalid name.
        OSError: if a file cannot be removed.
    """
    path = network_path(dns_dir, name)
    entries = os.path.join(dns_dir, ENTRIES, name)
    with _config_lock(dns_dir, exclusive=True):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        # entries go after the network file, so a reader that lists the network also
        # still finds its entries or finds nothing at all for it
        try:
            names = os.listdir(entries)
        except FileNotFoundError:
            return
        for fname in names:
            try:
                os.unlink(os.path.join(entries, fname))
            except FileNotFoundError:
                pass
        try:
            os.rmdir(entries)
        except FileNotFoundError:
            pass


def write_entry(
    dns_dir: str,
    network: str,
    container_id: str,
    ifname: str,
    names: Iterable[str],
    ipv4: Iterable[str],
    ipv6: Iterable[str],
    upstreams: Iterable[str] = (),
    owner: str = "",
) -> None:
    """Create or replace one container attachment on ``network``.

    ``names`` is ``[name, aliases..., short id, hostname]``; the first one is the
    container name used for PTR answers. Addresses are plain IPs (no prefix length).
    ``owner`` (when given) says who wrote the entry, so that its writer's garbage
    collection can tell its own entries from others' (dnsd ignores it).

    Raises:
        ConfigError: on an invalid name, ID, interface or address.
        OSError: if the directory cannot be written.
    """
    path = entry_path(dns_dir, network, container_id, ifname)
    data = {
        "id": container_id,
        "names": _check_names(names),
        "ipv4": _check_ips("ipv4", ipv4, 4),
        "ipv6": _check_ips("ipv6", ipv6, 6),
        "upstreams": _check_ips("upstream", upstreams),
    }
    if owner:
        data["owner"] = owner
    with _config_lock(dns_dir, exclusive=False):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _atomic_write_json(path, data)


def read_entries(dns_dir: str, network: str) -> dict[str, dict[str, Any]]:
    """The entry files of ``network``: file name -> JSON object (unreadable ones skipped).

    Raises:
        ConfigError: on an invalid name.
    """
    edir = os.path.join(dns_dir, ENTRIES, _check_name("network name", network))
    try:
        names = sorted(f for f in os.listdir(edir) if _is_config_file(f))
    except FileNotFoundError:
        return {}
    out = {}
    for fname in names:
        try:
            with open(os.path.join(edir, fname), "rb") as fh:
                data = json.loads(fh.read())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            out[fname] = data
    return out


def remove_entry_file(dns_dir: str, network: str, fname: str) -> None:
    """Remove the entry file ``fname`` of ``network`` (absent = success).

    Raises:
        ConfigError: on an invalid network or file name.
        OSError: if the file exists but cannot be removed.
    """
    if not fname.endswith(".json"):
        raise ConfigError(f"invalid entry file name {fname!r}")
    _check_name("entry file name", fname)
    path = os.path.join(dns_dir, ENTRIES, _check_name("network name", network), fname)
    with _config_lock(dns_dir, exclusive=False):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def remove_entry(dns_dir: str, network: str, container_id: str, ifname: str) -> None:
    """Remove one container attachment (absent = success).

    Raises:
        ConfigError: on an invalid name.
        OSError: if the file exists but cannot be removed.
    """
    path = entry_path(dns_dir, network, container_id, ifname)
    with _config_lock(dns_dir, exclusive=False):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def network_has_entries(dns_dir: str, network: str) -> bool:
    """True if at least one container attachment is recorded for ``network``.

    Raises:
        ConfigError: on an invalid name.
    """
    _check_name("network name", network)
    try:
        with os.scandir(os.path.join(dns_dir, ENTRIES, network)) as it:
            return any(_is_config_file(e.name) for e in it)
    except FileNotFoundError:
        return False


# --- readers (used by dnsd) -------------------------------------------------------------


def _is_config_file(fname: str) -> bool:
    return fname.endswith(".json") and not fname.startswith(".")


class FileCache:
    """Parsed JSON files keyed by path and validated by (inode, mtime, size).

    Every writer replaces a file by rename, which gives it a new inode, so an unchanged
    stat key means unchanged content: a reload re-reads only what changed (one stat per
    file instead of open + read + parse).
    """

    def __init__(self) -> None:
        self._cache: dict[str, tuple[tuple[int, int, int], dict[str, Any] | None]] = {}
        #: paths whose content was unusable at the last read, with the reason
        self.errors: dict[str, str] = {}

    def read(self, path: str) -> dict[str, Any] | None:
        """Return the JSON object in ``path``; None if it vanished or is not an object."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        hit = self._cache.get(path)
        if hit is not None and hit[0] == key:
            return hit[1]
        data: dict[str, Any] | None
        try:
            with open(path, "rb") as fh:
                raw = json.loads(fh.read())
            data = raw if isinstance(raw, dict) else None
            if data is None:
                self.errors[path] = "not a JSON object"
            else:
                self.errors.pop(path, None)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self.errors[path] = str(exc)
            data = None
        self._cache[path] = (key, data)
        return data

    def prune(self, seen: set[str]) -> None:
        """Forget files that no longer exist."""
        for path in [p for p in self._cache if p not in seen]:
            del self._cache[path]
            self.errors.pop(path, None)


def read_config(
    dns_dir: str, cache: FileCache | None = None
) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Read all network files and their entries as raw JSON objects.

    Returns ``(networks, entries)``: ``networks[name]`` is the network object and
    ``entries[name]`` the list of entry objects of that network, sorted by file name so
    that answers do not depend on directory order. Entries of a network without a
    network file are ignored. Unreadable files are skipped (see ``cache.errors``).
    """
    cache = cache if cache is not None else FileCache()
    seen: set[str] = set()
    networks: dict[str, dict[str, Any]] = {}
    entries: dict[str, list[dict[str, Any]]] = {}
    ndir = os.path.join(dns_dir, NETWORKS)
    try:
        net_files = sorted(f for f in os.listdir(ndir) if _is_config_file(f))
    except FileNotFoundError:
        net_files = []
    for fname in net_files:
        name = fname[: -len(".json")]
        path = os.path.join(ndir, fname)
        seen.add(path)
        data = cache.read(path)
        if data is None:
            continue
        networks[name] = data
        edir = os.path.join(dns_dir, ENTRIES, name)
        try:
            efiles = sorted(f for f in os.listdir(edir) if _is_config_file(f))
        except FileNotFoundError:
            efiles = []
        objs = []
        for efile in efiles:
            epath = os.path.join(edir, efile)
            seen.add(epath)
            entry = cache.read(epath)
            if entry is not None:
                objs.append(entry)
        entries[name] = objs
    cache.prune(seen)
    return networks, entries
