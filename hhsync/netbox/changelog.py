"""NetBox's change log as a cheap "did anything change?" check for the fast path.

Changes are ObjectChange rows with increasing ids. A run stores the newest id it has seen (the
marker) with its fingerprint; the next run asks for changes after it to any type hhsync
manages. The site is left out: every run writes its sync state there.
"""

from __future__ import annotations

from hhsync.deadline import Deadline
from hhsync.model import TYPES
from hhsync.netbox.client import NetBox

WATCHED = sorted(
    {t.content_type for t in TYPES.values()} - {"dcim.site"}
    | {"dcim.cabletermination", "extras.customfield", "extras.tag"}
)


def latest_change(netbox: NetBox, deadline: Deadline) -> int:
    """The newest change id (0 on a NetBox without changes)."""
    page = netbox.call(
        "GET",
        "core/object-changes/",
        deadline,
        params={"ordering": "-id", "limit": 1, "fields": "id"},
    )
    results = page.get("results") if isinstance(page, dict) else None
    return int(results[0]["id"]) if results else 0


def changes_since(
    netbox: NetBox, marker: int, deadline: Deadline, *, except_user: int | None = None
) -> int:
    """How many changes to managed types came after `marker` (by anyone but `except_user`)."""
    params: dict[str, object] = {
        "id__gt": marker,
        "changed_object_type": WATCHED,
        "limit": 1,
        "fields": "id",
    }
    if except_user is not None:
        params["user_id__n"] = except_user
    page = netbox.call("GET", "core/object-changes/", deadline, params=params)
    return int(page.get("count", 1)) if isinstance(page, dict) else 1


def user_id(netbox: NetBox, deadline: Deadline) -> int | None:
    """The token's user, whose own changes a run leaves out of the check after applying."""
    me = netbox.call("GET", "authentication-check/", deadline)
    return int(me["id"]) if isinstance(me, dict) and isinstance(me.get("id"), int) else None
