"""The tag and custom fields hhsync relies on, created or extended when missing (idempotently)."""

from __future__ import annotations

from hhsync.deadline import Deadline
from hhsync.errors import NetboxError
from hhsync.model import TAG, CustomFieldSpec, custom_fields
from hhsync.netbox.client import NetBox

MESSAGE = "hhsync: set up its tag and custom fields"
ATTEMPTS = 3  # the tag and the custom fields can each race with another run once
FIELDS = custom_fields()


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


def _body(spec: CustomFieldSpec) -> dict[str, object]:
    return {
        "name": spec.name,
        "label": spec.field.label,
        "type": spec.field.type,
        "object_types": list(spec.object_types),
        "description": spec.field.description,
        "group_name": "hhsync",
        "filter_logic": "exact",
        "ui_editable": "no",
        "ui_visible": spec.field.ui_visible,
        "changelog_message": MESSAGE,
    }
