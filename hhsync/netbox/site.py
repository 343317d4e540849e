"""The fabric's site in NetBox: its sync state (custom fields), and a journal entry per run
that changed something or failed, so the NetBox UI shows the sync history."""

from __future__ import annotations

from typing import Any

from hhsync.deadline import Deadline
from hhsync.errors import NetboxError
from hhsync.model import TAG
from hhsync.netbox.client import NetBox
from hhsync.syncstate import SyncState

MESSAGE = "hhsync: sync state"


def read_states(
    netbox: NetBox, sites: list[str], deadline: Deadline
) -> dict[str, tuple[int, SyncState]]:
    """Site id and stored state by slug, in one request; sites that do not exist are left out."""
    params = {"slug": sites, "fields": "id,slug,custom_fields"}
    found = netbox.get_all("dcim/sites/", deadline, params)
    return {
        s["slug"]: (int(s["id"]), SyncState.from_custom_fields(s.get("custom_fields") or {}))
        for s in found
    }


def ensure_site(netbox: NetBox, slug: str, deadline: Deadline) -> int:
    """The site's id, creating it (tagged, as a shared object) when it is missing."""
    if found := read_states(netbox, [slug], deadline).get(slug):
        return found[0]
    body = {
        "name": slug,
        "slug": slug,
        "status": "active",
        "tags": [{"slug": TAG}],
        "changelog_message": MESSAGE,
    }
    try:
        [site] = netbox.create("dcim/sites/", [body], deadline)
    except NetboxError:  # a concurrent run may have created it a moment ago: look again
        if found := read_states(netbox, [slug], deadline).get(slug):
            return found[0]
        raise
    return int(site["id"])


def write_state(netbox: NetBox, site: int, fields: dict[str, Any], deadline: Deadline) -> None:
    """One PATCH; NetBox merges custom fields, so the site's other fields stay as they are."""
    body = [{"id": site, "custom_fields": fields, "changelog_message": MESSAGE}]
    netbox.update("dcim/sites/", body, deadline)


def add_journal(netbox: NetBox, site: int, ok: bool, text: str, deadline: Deadline) -> None:
    entry = {
        "assigned_object_type": "dcim.site",
        "assigned_object_id": site,
        "kind": "success" if ok else "danger",
        "comments": text,
    }
    netbox.create("extras/journal-entries/", [entry], deadline)
