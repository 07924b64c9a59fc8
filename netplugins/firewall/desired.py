"""What the firewall must hold, written down by the plugins so that it can be restored.

The bridge plugin installs a network's rules at its first attachment and removes them at
its last; portmap publishes an attachment's ports. Both also write here what they asked
for, under the same per-network lock, so that the agent (runtime.agent) and
``netctl firewall reload`` can put it back after something else (``nft flush ruleset``,
``firewall-cmd --reload``) removed it, without asking the plugins again:

    <stateDir>/_policy/<network>.json          NetworkPolicy fields + the driver used
    <stateDir>/_portmap/<network>/<cid>-<if>.json   portmap's attachment record (ports)

A leading "_" is not a valid network name, so these never meet the bridge's
``<stateDir>/<network>/`` records. Files are written to a temporary name and renamed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any

from .errors import FirewallError
from .plan import NetworkPolicy

POLICY_DIR = "_policy"


@dataclass(frozen=True)
class DesiredNetwork:
    """One network's rules as its first attachment installed them."""

    policy: NetworkPolicy
    #: the firewall driver the plugin used ("nftables", "iptables", "none")
    driver: str


def _policy_path(state_dir: str, network: str) -> str:
    return os.path.join(state_dir, POLICY_DIR, f"{network}.json")


def save_policy(state_dir: str, policy: NetworkPolicy, driver: str) -> None:
    """Record ``policy`` (call with the network's attachment lock held).

    Raises:
        OSError: when the record cannot be written.
    """
    directory = os.path.join(state_dir, POLICY_DIR)
    path = _policy_path(state_dir, policy.name)
    data = dataclasses.asdict(policy)
    data["driver"] = driver
    text = json.dumps(data)
    try:
        with open(path) as fh:
            if fh.read() == text:
                return  # every ADD of the network records the same policy: keep the file
    except OSError:
        pass
    os.makedirs(directory, mode=0o700, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.rename(tmp, path)


def remove_policy(state_dir: str, network: str) -> None:
    """Forget a network's rules (call with its attachment lock held); absent is success."""
    try:
        os.unlink(_policy_path(state_dir, network))
    except FileNotFoundError:
        pass


def policy_from_record(data: dict[str, Any]) -> DesiredNetwork:
    """Rebuild a record written by :func:`save_policy` (pure).

    Fields the record lacks take their defaults, fields this version does not know are
    ignored, so records of an older or newer netctl still load.

    Raises:
        FirewallError: the record does not describe a valid policy.
    """
    names = {f.name for f in dataclasses.fields(NetworkPolicy)}
    # JSON has lists where the policy has tuples (subnets, guarded families)
    kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                              for k, v in data.items() if k in names}
    try:
        policy = NetworkPolicy(**kwargs)
    except TypeError as exc:
        raise FirewallError("incomplete firewall policy record", str(exc)) from None
    driver = data.get("driver")
    if driver not in ("nftables", "iptables", "none"):
        raise FirewallError(f"unknown firewall driver {driver!r} in the policy of {policy.name!r}")
    return DesiredNetwork(policy, str(driver))


def load_policies(state_dir: str) -> tuple[list[DesiredNetwork], list[str]]:
    """Every recorded network policy, and a message per record that could not be read."""
    directory = os.path.join(state_dir, POLICY_DIR)
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".json"))
    except FileNotFoundError:
        return [], []
    out: list[DesiredNetwork] = []
    bad: list[str] = []
    for name in names:
        path = os.path.join(directory, name)
        try:
            with open(path) as fh:
                data = json.load(fh)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            out.append(policy_from_record(data))
        except FileNotFoundError:
            continue  # removed by a DEL since we listed the directory
        except (OSError, ValueError, FirewallError) as exc:
            bad.append(f"{path}: {exc}")
    return out, bad
