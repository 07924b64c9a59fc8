"""A CNI runtime done as libcni does it: our only way of touching container networking.

VERSION negotiation, ADD along the chain with prevResult, results cached in libcni's
layout (``<cache>/results/<net>-<cid>-<ifname>``, kind cniCacheV1), DEL in reverse order
with the cached prevResult and capability arguments, CHECK, GC with the valid
attachments (synthesising DEL for cached attachments that are not valid first), STATUS.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import NetctlError
from .state import write_json

CMD_TIMEOUT = 120


@dataclass(frozen=True)
class RuntimeConf:
    """One attachment as libcni's RuntimeConf."""

    container_id: str
    netns: str
    ifname: str
    args: tuple[tuple[str, str], ...] = ()          # CNI_ARGS pairs
    capability_args: Mapping[str, Any] = field(default_factory=dict)
    cni_args_json: Mapping[str, Any] = field(default_factory=dict)  # injected as "args"


class PluginError(NetctlError):
    """A plugin reported an error (its CNI error object is kept)."""

    def __init__(self, ptype: str, obj: dict[str, Any]) -> None:
        msg = str(obj.get("msg", "failed"))
        details = obj.get("details")
        super().__init__(f"{msg}: {details}" if details else msg)
        self.ptype = ptype
        self.obj = obj


def cache_entries(cache_dir: str) -> list[dict[str, Any]]:
    """Every readable attachment cached under ``cache_dir`` (libcni's layout, also what
    containerd, CRI-O and nerdctl write under /var/lib/cni)."""
    d = os.path.join(cache_dir, "results")
    try:
        names = os.listdir(d)
    except OSError:
        return []
    out = []
    for fname in names:
        try:
            with open(os.path.join(d, fname)) as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("kind") == "cniCacheV1":
            out.append(data)
    return out


def cached_port_mappings(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The ports a cached attachment publishes: its ``capabilityArgs.portMappings`` (what
    libcni and netctl cache) and the ``runtimeConfig.portMappings`` of the cached config's
    plugins (a runtime that wrote them into the config). Malformed parts count as none."""
    found = list((entry.get("capabilityArgs") or {}).get("portMappings") or [])
    try:
        conf = json.loads(base64.b64decode(entry.get("config") or ""))
    except (ValueError, TypeError):
        conf = {}
    plugins = conf.get("plugins", [conf]) if isinstance(conf, dict) else []
    for plugin in plugins if isinstance(plugins, list) else []:
        rc = plugin.get("runtimeConfig") if isinstance(plugin, dict) else None
        if isinstance(rc, dict) and isinstance(rc.get("portMappings"), list):
            found += rc["portMappings"]
    return [m for m in found if isinstance(m, dict)]


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


class CNI:
    """Invoke plugins found on ``plugin_path``; cache results under ``cache_dir``."""

    def __init__(self, plugin_path: Sequence[str], cache_dir: str, env: Mapping[str, str],
                 versions_file: str = "") -> None:
        self.plugin_path = list(plugin_path)
        self.cache_dir = cache_dir
        self.env = dict(env)
        self._versions: dict[str, list[str]] = {}
        #: VERSION answers kept across netctl runs, keyed by executable identity (see
        #: :meth:`supported_versions`); empty: ask every plugin once per process
        self.versions_file = versions_file

    # ---- low level
    def find(self, ptype: str) -> str:
        for d in self.plugin_path:
            exe = os.path.join(d, ptype)
            if os.path.isfile(exe) and os.access(exe, os.X_OK):
                return exe
        raise NetctlError(f"CNI plugin {ptype!r} not found in {':'.join(self.plugin_path)}")

    def exec(self, ptype: str, command: str, stdin: dict[str, Any], rt: RuntimeConf | None,
             notes: list[str] | None = None) -> Any:
        """Run one plugin; its parsed stdout (None when empty). ``notes`` gets the lines a
        successful plugin wrote on stderr, as ``TYPE: line`` (GC has no result: what it did
        is said there, e.g. the bridge plugin's bridges).

        Raises:
            PluginError: the plugin's error object; NetctlError when it could not run.
        """
        exe = self.find(ptype)
        env = dict(self.env)
        env.update({"CNI_COMMAND": command, "CNI_PATH": ":".join(self.plugin_path)})
        if rt is not None:
            env.update({"CNI_CONTAINERID": rt.container_id, "CNI_NETNS": rt.netns,
                        "CNI_IFNAME": rt.ifname})
            if rt.args:
                env["CNI_ARGS"] = ";".join(f"{k}={v}" for k, v in rt.args)
        try:
            proc = subprocess.run([exe], input=json.dumps(stdin).encode(), env=env,
                                  capture_output=True, timeout=CMD_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NetctlError(f"failed to run CNI plugin {ptype}: {exc}") from None
        out = proc.stdout.strip()
        if proc.returncode != 0:
            try:
                obj = json.loads(out)
            except ValueError:
                obj = {"code": 999, "msg": f"plugin {ptype} failed",
                       "details": (proc.stderr or proc.stdout).decode(errors="replace").strip()}
            raise PluginError(ptype, obj if isinstance(obj, dict) else {"msg": str(obj)})
        if notes is not None:
            # the plugin daemon prefixes its relayed log lines with the logger's name
            notes += [f"{ptype}: {line.removeprefix(ptype + ': ')}"
                      for line in proc.stderr.decode(errors="replace").splitlines() if line.strip()]
        return json.loads(out) if out else None

    def supported_versions(self, ptype: str) -> list[str]:
        """The plugin's VERSION answer.

        Each answer costs a process (~20-40 ms), and ``run`` needs two or three; an
        executable answers the same as long as it is the same file, so answers are kept in
        ``versions_file`` under the executable's path, inode, size and mtime: replacing a
        plugin (a new file, renamed into place) asks again.
        """
        if ptype in self._versions:
            return self._versions[ptype]
        exe = self.find(ptype)
        st = os.stat(exe)
        key = f"{exe}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
        known = self._load_versions()
        if isinstance(known.get(key), list):
            self._versions[ptype] = [str(v) for v in known[key]]
            return self._versions[ptype]
        res = self.exec(ptype, "VERSION", {"cniVersion": "1.1.0"}, None)
        self._versions[ptype] = list((res or {}).get("supportedVersions", []))
        if self.versions_file and self._versions[ptype]:
            # read again: another netctl may have added answers meanwhile (last writer wins)
            known = self._load_versions()
            known = {k: v for k, v in known.items() if not k.startswith(f"{exe}:")}
            known[key] = self._versions[ptype]
            try:
                write_json(self.versions_file, known, durable=False)
            except OSError:
                pass  # only a cache
        return self._versions[ptype]

    def _load_versions(self) -> dict[str, Any]:
        if not self.versions_file:
            return {}
        try:
            with open(self.versions_file) as fh:
                data = json.load(fh)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def negotiate(self, conflist: dict[str, Any]) -> str:
        """The highest version the conflist allows that every plugin of its chain supports.

        Raises:
            NetctlError: no common version.
        """
        wanted = conflist.get("cniVersions") or [conflist["cniVersion"]]
        common = set(wanted)
        for plugin in conflist["plugins"]:
            common &= set(self.supported_versions(plugin["type"]))
        if not common:
            raise NetctlError(f"no CNI version of {wanted} is supported by every plugin of {conflist['name']}")
        return max(common, key=_version_tuple)

    @staticmethod
    def build(plugin: dict[str, Any], name: str, version: str, rt: RuntimeConf | None,
              prev: Any = None) -> dict[str, Any]:
        """The stdin of one plugin (SPEC section 3: name, cniVersion, runtimeConfig, prevResult)."""
        conf = dict(plugin)
        conf["name"] = name
        conf["cniVersion"] = version
        if rt is not None:
            caps = plugin.get("capabilities") or {}
            rc = {k: v for k, v in rt.capability_args.items() if caps.get(k)}
            if rc:
                conf["runtimeConfig"] = rc
            if rt.cni_args_json:
                conf["args"] = {"cni": dict(rt.cni_args_json)}
        if prev is not None:
            conf["prevResult"] = prev
        return conf

    # ---- cache (libcni layout)
    def cache_path(self, network: str, rt: RuntimeConf) -> str:
        return os.path.join(self.cache_dir, "results", f"{network}-{rt.container_id}-{rt.ifname}")

    def _cache(self, conflist: dict[str, Any], rt: RuntimeConf, result: Any) -> None:
        # atomic but not synced, as libcni writes it: what it describes dies with a reboot
        write_json(self.cache_path(conflist["name"], rt), {
            "kind": "cniCacheV1", "containerId": rt.container_id,
            "config": base64.b64encode(json.dumps(conflist).encode()).decode(),
            "ifName": rt.ifname, "networkName": conflist["name"], "netns": rt.netns,
            "cniArgs": [list(p) for p in rt.args], "capabilityArgs": dict(rt.capability_args),
            "result": result}, durable=False)

    def cached(self, network: str, container_id: str, ifname: str) -> dict[str, Any] | None:
        path = self.cache_path(network, RuntimeConf(container_id, "", ifname))
        try:
            with open(path) as fh:
                data = json.load(fh)
            return data if isinstance(data, dict) else None
        except (OSError, ValueError):
            return None

    def cached_attachments(self, network: str) -> list[dict[str, Any]]:
        return [e for e in cache_entries(self.cache_dir) if e.get("networkName") == network]

    # ---- verbs
    def add(self, conflist: dict[str, Any], rt: RuntimeConf) -> Any:
        """ADD along the chain; cache and return the final result.

        An ADD that fails part-way leaves nothing: the plugins already run, and the one that
        failed (it may have done part of its work), get a DEL in reverse order with the last
        good result as prevResult -- what containerd does with libcni after a failed
        AddNetworkList, so a bridge that made eth0 and took a lease gives both back.

        Raises:
            PluginError / NetctlError: the first plugin that failed (after the rollback).
        """
        version = self.negotiate(conflist)
        prev = None
        ran: list[dict[str, Any]] = []
        for plugin in conflist["plugins"]:
            ran.append(plugin)
            try:
                prev = self.exec(plugin["type"], "ADD",
                                 self.build(plugin, conflist["name"], version, rt, prev), rt)
            except NetctlError:
                self._rollback(conflist["name"], version, ran, rt, prev)
                raise
        self._cache(conflist, rt, prev)
        return prev

    def _rollback(self, name: str, version: str, ran: list[dict[str, Any]], rt: RuntimeConf,
                  prev: Any) -> None:
        """DEL ``ran`` in reverse order; carry on past failures (the ADD error is the one
        the caller needs to see)."""
        for plugin in reversed(ran):
            try:
                self.exec(plugin["type"], "DEL", self.build(plugin, name, version, rt, prev), rt)
            except NetctlError:
                pass

    def delete(self, conflist: dict[str, Any], rt: RuntimeConf) -> None:
        """DEL in reverse order with the cached prevResult and capability args; every plugin
        is called even when one fails; the cache entry goes last.

        Raises:
            NetctlError: listing the plugins that failed.
        """
        cached = self.cached(conflist["name"], rt.container_id, rt.ifname)
        if cached is not None:
            rt = RuntimeConf(rt.container_id, rt.netns, rt.ifname,
                             tuple((str(k), str(v)) for k, v in cached.get("cniArgs") or []) or rt.args,
                             cached.get("capabilityArgs") or rt.capability_args, rt.cni_args_json)
        prev = cached.get("result") if cached else None
        version = self.negotiate(conflist)
        failures = []
        for plugin in reversed(conflist["plugins"]):
            try:
                self.exec(plugin["type"], "DEL", self.build(plugin, conflist["name"], version, rt, prev), rt)
            except NetctlError as exc:
                failures.append(f"{plugin['type']}: {exc.msg}")
        if failures:
            raise NetctlError(f"failed to detach from {conflist['name']}: " + "; ".join(failures))
        try:
            os.unlink(self.cache_path(conflist["name"], rt))
        except FileNotFoundError:
            pass

    def check(self, conflist: dict[str, Any], rt: RuntimeConf) -> None:
        """CHECK every plugin of the chain with the cached result.

        Raises:
            PluginError / NetctlError: the first failing check.
        """
        if conflist.get("disableCheck"):
            return
        cached = self.cached(conflist["name"], rt.container_id, rt.ifname)
        if cached is None:
            raise NetctlError(f"no cached result for {rt.container_id}/{rt.ifname} on {conflist['name']}")
        rt = RuntimeConf(rt.container_id, rt.netns, rt.ifname,
                         tuple((str(k), str(v)) for k, v in cached.get("cniArgs") or []),
                         cached.get("capabilityArgs") or {}, rt.cni_args_json)
        version = self.negotiate(conflist)
        for plugin in conflist["plugins"]:
            self.exec(plugin["type"], "CHECK",
                      self.build(plugin, conflist["name"], version, rt, cached.get("result")), rt)

    def gc(self, conflist: dict[str, Any], valid: set[tuple[str, str]],
           notes: list[str] | None = None, extra: Mapping[str, Any] | None = None) -> list[str]:
        """libcni GCNetworkList: DEL every cached attachment not in ``valid``, then GC each
        plugin that supports a 1.1 version the conflist allows, with
        cni.dev/valid-attachments (and the keys of ``extra``). Returns what failed (it
        carries on); ``notes`` gets what the plugins said they did (:meth:`exec`)."""
        failures = []
        for att in self.cached_attachments(conflist["name"]):
            key = (att.get("containerId", ""), att.get("ifName", ""))
            if key in valid:
                continue
            rt = RuntimeConf(key[0], att.get("netns", ""), key[1])
            try:
                self.delete(conflist, rt)
            except NetctlError as exc:
                failures.append(exc.msg)
        if conflist.get("disableGC"):
            return failures
        allowed = [v for v in conflist.get("cniVersions") or [conflist["cniVersion"]]
                   if _version_tuple(v) >= (1, 1, 0)]
        attachments = [{"containerID": c, "ifname": i} for c, i in sorted(valid)]
        for plugin in conflist["plugins"] if allowed else []:
            try:
                # per plugin: libcni skips the whole list when one plugin lacks 1.1, but a
                # third-party plugin without GC must not keep ours from collecting (leases,
                # rules, the bridge of a network being removed)
                common = set(allowed) & set(self.supported_versions(plugin["type"]))
                if not common:
                    continue
                conf = self.build(plugin, conflist["name"], max(common, key=_version_tuple), None)
                conf["cni.dev/valid-attachments"] = attachments
                conf["cni.dev/attachments"] = attachments
                conf.update(extra or {})
                self.exec(plugin["type"], "GC", conf, None, notes)
            except NetctlError as exc:
                failures.append(f"{plugin['type']}: {exc.msg}")
        return failures

    def status(self, conflist: dict[str, Any]) -> str:
        """"ready" or the first plugin's STATUS error message."""
        try:
            version = self.negotiate(conflist)
            if _version_tuple(version) < (1, 1, 0):
                return "ready"
            for plugin in conflist["plugins"]:
                self.exec(plugin["type"], "STATUS", self.build(plugin, conflist["name"], version, None), None)
        except NetctlError as exc:
            return f"not ready: {exc.msg}"
        return "ready"
