"""The tag and custom fields hhsync relies on, created or extended when missing (idempotently)."""

from __future__ import annotations

from dataclasses import dataclass

from hhsync.deadline import Deadline
from hhsync.errors import NetboxError
from hhsync.model import FABRIC_FIELD, TAG, TYPES
from hhsync.netbox.client import NetBox

MESSAGE = "hhsync: set up its tag and custom fields"
ATTEMPTS = 3  # the tag and the custom fields can each race with another run once
OWNED_TYPES = tuple(sorted({t.content_type for t in TYPES.values() if not t.shared}))


@dataclass(frozen=True)
class CustomField:
    name: str
    type: str
    object_types: tuple[str, ...]
    label: str
    description: str


def _device(name: str, kind: str, label: str, description: str) -> CustomField:
    return CustomField(name, kind, ("dcim.device",), label, description)


def _site(name: str, kind: str, label: str, description: str) -> CustomField:
    return CustomField(name, kind, ("dcim.site",), label, description)


FIELDS = (
    CustomField(
        FABRIC_FIELD,
        "text",
        OWNED_TYPES,
        "hhsync fabric",
        "The Hedgehog fabric whose hhsync sync owns this object",
    ),
    _device("hhsync_profile", "text", "Switch profile", "Hedgehog SwitchProfile name"),
    _device("hhsync_asn", "integer", "ASN", "BGP AS number of the switch"),
    _device("hhsync_protocol_ip", "text", "Protocol IP", "BGP router ID (protocolIP)"),
    _device("hhsync_vtep_ip", "text", "VTEP IP", "VXLAN tunnel endpoint (vtepIP)"),
    _device("hhsync_redundancy", "text", "Redundancy group", "<type>:<group>, e.g. eslag:eslag-1"),
    _device("hhsync_groups", "text", "Switch groups", "SwitchGroups the switch belongs to"),
    _device("hhsync_nos_version", "text", "NOS version", "From the switch Agent's status"),
    _device("hhsync_agent_version", "text", "Agent version", "From the switch Agent's status"),
    _device(
        "hhsync_applied_generation",
        "integer",
        "Applied generation",
        "Agent generation the switch last applied",
    ),
    _device(
        "hhsync_heartbeat",
        "datetime",
        "Heartbeat at last change",
        "The Agent's heartbeat when the switch's status or versions last changed",
    ),
    _site(
        "hhsync_last_success",
        "datetime",
        "Last sync success",
        "End of the last sync that applied its whole plan",
    ),
    _site("hhsync_last_attempt", "datetime", "Last sync attempt", "End of the last sync attempt"),
    _site("hhsync_result", "text", "Last sync result", "ok or error"),
    _site("hhsync_message", "longtext", "Last sync message", "The summary, or the error"),
    _site("hhsync_counts", "json", "Last sync counts", "Objects created, updated, deleted, ..."),
    _site(
        "hhsync_mismatches",
        "json",
        "Cabling mismatches",
        "Links whose LLDP neighbour is missing or not the expected peer",
    ),
    _site("hhsync_interval", "integer", "Sync interval (s)", "The fabric's configured interval"),
    _site(
        "hhsync_fingerprint",
        "text",
        "Fabric fingerprint",
        "Digest of the fabric objects and plan inputs at the last success",
    ),
)


def tag_exists(netbox: NetBox, deadline: Deadline) -> bool:
    return bool(netbox.get_all("extras/tags/", deadline, {"slug": TAG, "fields": "id"}))


def ensure_schema(netbox: NetBox, deadline: Deadline) -> int:
    """Create the tag and any missing custom field; returns the number of objects written.
    Another try covers another fabric's run setting up the same things at the same moment."""
    deadline.enter("setting up NetBox (tag, custom fields)")
    for _ in range(ATTEMPTS - 1):
        try:
            return _ensure(netbox, deadline)
        except NetboxError:  # NetBox answers such a race with HTTP 500 (IntegrityError)
            continue
    return _ensure(netbox, deadline)


def _ensure(netbox: NetBox, deadline: Deadline) -> int:
    writes = 0
    if not tag_exists(netbox, deadline):
        netbox.create(
            "extras/tags/",
            [
                {
                    "name": TAG,
                    "slug": TAG,
                    "color": "2196f3",
                    "description": "Created and kept in sync by hhsync from a Hedgehog fabric",
                    "changelog_message": MESSAGE,
                }
            ],
            deadline,
        )
        writes += 1
    params = {"name": [f.name for f in FIELDS], "fields": "id,name,object_types"}
    existing = {f["name"]: f for f in netbox.get_all("extras/custom-fields/", deadline, params)}
    create = [_body(f) for f in FIELDS if f.name not in existing]
    extend = [
        {
            "id": existing[f.name]["id"],
            "object_types": sorted(have | set(f.object_types)),
            "changelog_message": MESSAGE,
        }
        for f in FIELDS
        if f.name in existing
        and not set(f.object_types) <= (have := set(existing[f.name]["object_types"] or ()))
    ]
    if create:
        netbox.create("extras/custom-fields/", create, deadline)
    if extend:
        netbox.update("extras/custom-fields/", extend, deadline)
    return writes + len(create) + len(extend)


def _body(field: CustomField) -> dict[str, object]:
    return {
        "name": field.name,
        "label": field.label,
        "type": field.type,
        "object_types": list(field.object_types),
        "description": field.description,
        "group_name": "hhsync",
        "filter_logic": "exact",
        "ui_editable": "no",
        "changelog_message": MESSAGE,
    }
