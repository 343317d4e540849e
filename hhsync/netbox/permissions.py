"""Can the token do what hhsync writes? Answered without writing anything.

NetBox's OPTIONS answer lists `POST` only when the token may add objects of that type, and `PUT`
only when it may change them (also false for a read-only token). Delete rights do not show there;
they are read from the user's own object permissions when it has any (a superuser has none
listed, and needs none).
"""

from __future__ import annotations

from hhsync.deadline import Deadline
from hhsync.model import TYPES
from hhsync.netbox.client import NetBox

BRANCH = "netbox_branching.branch"
BRANCHES = "plugins/branching/branches/"
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
    granted = _granted(netbox, "delete", deadline)
    if granted is not None:
        owned = {t.content_type for t in TYPES.values() if not t.shared}
        missing += [f"delete {ct}" for ct in sorted(owned - granted)]
    return missing


def missing_branch_permissions(netbox: NetBox, deadline: Deadline) -> list[str]:
    """What the token lacks to create, merge and clean up branches (writing in one takes the
    permissions writing in main takes)."""
    missing = []
    actions = (netbox.call("OPTIONS", f"{BRANCHES}", deadline) or {}).get("actions") or {}
    if "POST" not in actions:
        missing.append(f"add {BRANCH}")
    for action in ("merge", "archive", "delete"):
        granted = _granted(netbox, action, deadline)
        if granted is not None and BRANCH not in granted:
            missing.append(f"{action} {BRANCH}")
    return missing


def _granted(netbox: NetBox, action: str, deadline: Deadline) -> set[str] | None:
    """Content types the user may `action`, or None when it has no object permissions listed
    (a superuser needs none)."""
    user = netbox.call("GET", "authentication-check/", deadline)
    permissions = user.get("permissions") if isinstance(user, dict) else None
    if not permissions:
        return None
    types: set[str] = set()
    for permission in permissions:
        if isinstance(permission, dict) and action in (permission.get("actions") or ()):
            types.update(permission.get("object_types") or ())
    return types
