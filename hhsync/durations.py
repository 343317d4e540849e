"""Durations as operators write them ("5m", "300s", 300) and as hhsync prints them ("2m10s")."""

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+)([smhd])")


def parse_duration(value: object) -> int | None:
    """Seconds for 300, "300", "300s", "5m", "1h30m"; None when `value` is not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    if text.isdigit():
        return int(text)
    if not text or not re.fullmatch(r"(\d+[smhd])+", text):
        return None
    return sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(text))


def format_duration(seconds: float) -> str:
    """Compact, exact to the second: 130 -> "2m10s", 3600 -> "1h", 0 -> "0s"."""
    total = max(0, int(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def format_age(seconds: float) -> str:
    """Coarse, for humans: "45s ago", "3m ago", "2h ago", "5d ago"."""
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"
