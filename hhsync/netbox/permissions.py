"""Can the token do what hhsync writes? Answered without writing anything.

NetBox's OPTIONS answer lists `POST` only when the token may add objects of that type, and `PUT`
only when it may change them (also false for a read-only token). Delete rights do not show there;
they are read from the user's own object permissions when it has any (a superuser has none
listed, and needs none).
"""

from __future__ import annotations

from typing import Any

from hhsync.deadline import Deadline
from hhsync.model import TYPES
from hhsync.netbox.client import NetBox

EXTRA = {  # what hhsync writes besides inventory: its tag, custom fields and journal entries
    "extras/tags/": "extras.tag",
    "extras/custom-fields/": "extras.customfield",
    "extras/journal-entries/": "extras.journalentry",
}


def missing_permissions(netbox: NetBox, deadline: Deadline) -> list[str]:
    """Actions the token lacks, like "add dcim.device"; empty when everything is allowed."""
    endpoints = {t.endpoint: t.content_type for t in TYPES.values()} | EXTRA
    missing = []
    for endpoint, content_type in endpoints.items():
        actions = (netbox.call("OPTIONS", endpoint, deadline) or {}).get("actions") or {}
        if "POST" not in actions:
            missing.append(f"add {content_type}")
        if "PUT" not in actions:
            missing.append(f"change {content_type}")
    user = netbox.call("GET", "authentication-check/", deadline)
    granted = _deletable(user.get("permissions") if isinstance(user, dict) else None)
    if granted is not None:
        owned = {t.content_type for t in TYPES.values() if not t.shared}
        missing += [f"delete {ct}" for ct in sorted(owned - granted)]
    return missing


def _deletable(permissions: Any) -> set[str] | None:
    """Content types the user may delete, or None when it has no object permissions listed."""
    if not permissions:
        return None
    types: set[str] = set()
    for permission in permissions:
        if isinstance(permission, dict) and "delete" in (permission.get("actions") or ()):
            types.update(permission.get("object_types") or ())
    return types
