"""The JSON network configuration a plugin reads on stdin (spec section 1 and 3)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from .errors import DECODE_FAILURE, INVALID_CONFIG, CniError
from .types import Result
from .version import parse_version

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every plugin process ~3 ms; annotations are strings here
    from typing import Any

#: Container IDs and network names share this pattern (pkg/utils/utils.go). Always
#: matched with ``fullmatch``: with ``match`` and ``$`` a trailing newline passes.
NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.\-]*")


@dataclass(frozen=True)
class NetConf:
    """Keys every plugin config has; plugin-specific keys stay in ``raw``."""

    cni_version: str
    name: str
    type: str
    prev_result: Result | None = None
    #: capability arguments the runtime inserted (portMappings, ips, mac, aliases, ...)
    runtime_config: dict[str, Any] = field(default_factory=dict)
    #: the ``args`` key (``args.cni.ips`` and the like)
    args: dict[str, Any] = field(default_factory=dict)
    #: the whole object as decoded, for plugin-specific keys and for delegation
    raw: dict[str, Any] = field(default_factory=dict)

    def get_bool(self, key: str, default: bool = False) -> bool:
        """A boolean plugin key.

        Raises:
            CniError: code 7 when the key holds something other than a boolean.
        """
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise CniError(INVALID_CONFIG, f"invalid config: {key} must be true or false", repr(value))
        return value

    def cni_args(self) -> dict[str, Any]:
        """``args.cni`` (ips, mac, labels ...), or an empty dict."""
        cni = self.args.get("cni") if isinstance(self.args, dict) else None
        return cni if isinstance(cni, dict) else {}


def decode_json(stdin: bytes) -> dict[str, Any]:
    """Decode stdin as a JSON object.

    Raises:
        CniError: code 6 when it is not JSON or not an object.
    """
    try:
        obj = json.loads(stdin)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CniError(DECODE_FAILURE, "failed to decode network configuration", str(exc)) from None
    except RecursionError:
        # the C decoder recurses once per nesting level: thousands of '[' exhaust the stack
        raise CniError(DECODE_FAILURE, "failed to decode network configuration",
                       "JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise CniError(DECODE_FAILURE, "network configuration is not a JSON object")
    return obj


def check_path(value: object, key: str) -> str:
    """A filesystem path from the config: a string, absolute, without NUL, valid UTF-8.

    A relative path would be resolved against whatever directory the plugin process (or
    the daemon's worker) runs in: two runs of one network could use two lease databases.

    Raises:
        CniError: code 7 naming ``key``.
    """
    if not isinstance(value, str) or not value:
        raise CniError(INVALID_CONFIG, f"invalid config: {key} must be a path", repr(value))
    if not value.startswith("/"):
        raise CniError(INVALID_CONFIG, f"invalid config: {key} must be an absolute path", repr(value))
    if "\0" in value or not _encodable(value):
        raise CniError(INVALID_CONFIG, f"invalid config: {key} is not a valid path", repr(value))
    return value


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON \udcxx escape
        return False
    return True


def load_netconf(stdin: bytes, *, require_name: bool = True) -> NetConf:
    """Parse and validate the common keys of a plugin config.

    A stray ``capabilities`` key is tolerated (libcni does not strip it), as are unknown keys.

    Raises:
        CniError: code 6 for undecodable input, 7 for an invalid config.
    """
    raw = decode_json(stdin)
    version = raw.get("cniVersion", "")
    if not isinstance(version, str) or not version:
        raise CniError(INVALID_CONFIG, "invalid config: cniVersion is missing")
    parse_version(version)
    name = raw.get("name", "")
    if require_name:
        if not isinstance(name, str) or not name:
            raise CniError(INVALID_CONFIG, "invalid config: the network name is missing")
        if not NAME_RE.fullmatch(name):
            raise CniError(INVALID_CONFIG, f"invalid config: invalid network name {name!r}",
                           "it must match [a-zA-Z0-9][a-zA-Z0-9_.-]*")
    ptype = raw.get("type", "")
    if not isinstance(ptype, str) or "/" in ptype:
        raise CniError(INVALID_CONFIG, f"invalid config: invalid plugin type {ptype!r}")
    prev = raw.get("prevResult")
    prev_result = Result.from_dict(prev) if prev is not None else None
    runtime_config = raw.get("runtimeConfig")
    runtime_config = {} if runtime_config is None else runtime_config
    if not isinstance(runtime_config, dict):
        raise CniError(INVALID_CONFIG, "invalid config: runtimeConfig must be an object")
    args = raw.get("args")
    args = {} if args is None else args
    if not isinstance(args, dict):
        raise CniError(INVALID_CONFIG, "invalid config: args must be an object")
    return NetConf(
        cni_version=version,
        name=str(name),
        type=ptype,
        prev_result=prev_result,
        runtime_config=runtime_config,
        args=args,
        raw=raw,
    )
