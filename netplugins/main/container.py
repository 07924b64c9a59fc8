"""The ``container`` plugin (joined mode, ``--network container:NAME``).

The joiner runs in the owner's network namespace: the runtime passes the owner's namespace
as CNI_NETNS, and this plugin verifies that it really is the owner's, records the join (so
that a runtime can list who shares a namespace and refuse to tear it down under them), and
returns the owner's interfaces and addresses. DEL removes only the record; the shared
interfaces belong to the owner and are never touched.

Config (besides cniVersion/name/type):
  ``container``: the owner's name or ID (recorded, shown by runtimes);
  ``ownerNetns``: a path to the owner's namespace (``/proc/<pid>/ns/net`` or a bind mount);
  ``dataDir``: where join records live (default ``/run/netctl/joins``).
"""

from __future__ import annotations

import json
import os

from ..cni import errors
from ..cni.errors import CniError, config_error
from ..cni.netconf import NAME_RE, NetConf, check_path, load_netconf
from ..cni.skel import CmdArgs, PluginFuncs
from ..cni.skel import main as skel_main
from ..cni.types import Interface, IPConfig, Result
from ..nl.netns import NetnsGone, entered, ns_id

DEFAULT_DATA_DIR = "/run/netctl/joins"


def _parse(stdin: bytes) -> tuple[NetConf, str, str, str]:
    """Returns (conf, owner, owner_netns, data_dir).

    Raises:
        CniError: code 7 for a missing or invalid key.
    """
    conf = load_netconf(stdin)
    owner = conf.raw.get("container")
    if not isinstance(owner, str) or not NAME_RE.fullmatch(owner):
        raise config_error("invalid config: 'container' must name the container whose namespace is joined")
    owner_netns = check_path(conf.raw.get("ownerNetns"), "ownerNetns")
    # relative: resolved against whatever directory the plugin runs in (code 7)
    data_dir = check_path(conf.raw.get("dataDir", DEFAULT_DATA_DIR), "dataDir")
    return conf, owner, owner_netns, data_dir


def _record_path(data_dir: str, owner: str, args: CmdArgs) -> str:
    return os.path.join(data_dir, owner, f"{args.container_id}-{args.ifname}.json")


def _verify_same(netns: str, owner: str, owner_netns: str) -> None:
    """Raises: CniError 104 unless CNI_NETNS is the owner's namespace."""
    try:
        mine = ns_id(netns)
    except OSError:
        raise CniError(errors.INVALID_NETNS, f"failed to open netns {netns!r}: no such file") from None
    try:
        theirs = ns_id(owner_netns)
    except OSError:
        raise CniError(errors.UNKNOWN_CONTAINER,
                       f"container {owner!r} has no network namespace at {owner_netns!r}") from None
    if mine != theirs:
        raise CniError(errors.INVALID_NETNS,
                       f"netns {netns!r} is not the namespace of container {owner!r}")


def _owner_result(netns: str) -> Result:
    # lazy: plugin start-up (docs/plugin-speed.md); only this command needs it
    from ..nl.links import list_links

    try:
        with entered(netns):
            links = list_links()
    except NetnsGone:
        raise CniError(errors.INVALID_NETNS, f"failed to open netns {netns!r}: no such file") from None
    ifaces: list[Interface] = []
    ips: list[IPConfig] = []
    for link in links:
        ifaces.append(Interface(name=link.name, mac=link.mac, mtu=link.mtu, sandbox=netns))
        for addr in link.addresses:
            if not addr.lower().startswith("fe80:"):
                ips.append(IPConfig(address=addr, interface=len(ifaces) - 1))
    return Result(interfaces=tuple(ifaces), ips=tuple(ips))


def _write_atomic(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.rename(tmp, path)


def cmd_add(args: CmdArgs) -> Result:
    """Verify the namespace, record the join, return the owner's interfaces.

    Raises:
        CniError: 7 bad config, 3 unknown owner, 104 wrong namespace, 106 joined twice.
    """
    conf, owner, owner_netns, data_dir = _parse(args.stdin)
    _verify_same(args.netns, owner, owner_netns)
    path = _record_path(data_dir, owner, args)
    if os.path.exists(path):
        raise CniError(errors.IFACE_EXISTS,
                       f"container {args.container_id!r} ({args.ifname}) already joined {owner!r}")
    result = _owner_result(args.netns)
    record = {"owner": owner, "ownerNetns": owner_netns, "containerID": args.container_id,
              "ifname": args.ifname, "network": conf.name}
    try:
        _write_atomic(path, json.dumps(record).encode())
    except OSError as exc:
        raise CniError(errors.IO_FAILURE, f"failed to record the join in {data_dir!r}", str(exc)) from None
    return result


def cmd_del(args: CmdArgs) -> None:
    """Remove the join record; the shared interfaces are the owner's and stay."""
    _, owner, _, data_dir = _parse(args.stdin)
    path = _record_path(data_dir, owner, args)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise CniError(errors.IO_FAILURE, f"failed to remove join record {path!r}", str(exc)) from None
    try:
        os.rmdir(os.path.dirname(path))
    except OSError:
        pass  # other joiners remain, or already gone


def cmd_check(args: CmdArgs) -> None:
    """Raises: CniError when the join is not recorded or the namespace changed."""
    _, owner, owner_netns, data_dir = _parse(args.stdin)
    if not os.path.exists(_record_path(data_dir, owner, args)):
        raise CniError(errors.UNKNOWN_CONTAINER,
                       f"container {args.container_id!r} has no recorded join of {owner!r}")
    _verify_same(args.netns, owner, owner_netns)


def cmd_gc(args: CmdArgs) -> None:
    """Remove join records of attachments the runtime no longer knows."""
    # lazy: plugin start-up (docs/plugin-speed.md); only this command needs it
    from ..cni.gc import valid_attachments

    _, owner, _, data_dir = _parse(args.stdin)
    valid = valid_attachments(args.stdin)
    owner_dir = os.path.join(data_dir, owner)
    try:
        names = os.listdir(owner_dir)
    except FileNotFoundError:
        return
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(owner_dir, name)) as fh:
                rec = json.load(fh)
            key = (rec["containerID"], rec["ifname"])
        except (OSError, ValueError, KeyError):
            continue
        if key not in valid:
            try:
                os.unlink(os.path.join(owner_dir, name))
            except FileNotFoundError:
                pass


FUNCS = PluginFuncs(add=cmd_add, delete=cmd_del, check=cmd_check, gc=cmd_gc,
                    about="netctl container plugin (joins another container's namespace)")


def main() -> None:
    skel_main(FUNCS)


if __name__ == "__main__":
    main()
