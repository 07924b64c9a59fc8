"""CNI spec versions: which we support and how they compare."""

from __future__ import annotations

from .errors import DECODE_FAILURE, INCOMPATIBLE_VERSION, CniError

#: Versions whose configs we accept and whose result shapes we can print.
SUPPORTED_VERSIONS: tuple[str, ...] = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
CURRENT = "1.1.0"


def parse_version(text: str) -> tuple[int, int, int]:
    """``"1.0.0"`` → ``(1, 0, 0)``.

    Raises:
        CniError: code 6 when the text is not a dotted version.
    """
    parts = text.split(".")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise CniError(DECODE_FAILURE, f"invalid version {text!r}") from None
    if not 1 <= len(nums) <= 3 or any(n < 0 for n in nums):
        raise CniError(DECODE_FAILURE, f"invalid version {text!r}")
    while len(nums) < 3:
        nums.append(0)
    return (nums[0], nums[1], nums[2])


def at_least(version: str, minimum: str) -> bool:
    """True when ``version`` >= ``minimum`` (both dotted versions)."""
    return parse_version(version) >= parse_version(minimum)


def require_supported(version: str, supported: tuple[str, ...] = SUPPORTED_VERSIONS) -> None:
    """Refuse a config version we do not support, as the reference does (exact match).

    Raises:
        CniError: code 1 naming the version and what we support.
    """
    if version not in supported:
        raise CniError(
            INCOMPATIBLE_VERSION,
            "incompatible CNI versions",
            f'config is "{version}", plugin supports {list(supported)}',
        )
