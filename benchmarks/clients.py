"""The two reference clients the benchmark compares hhsync with, both fed by hhsync's own pure
desired state (`hhsync.desired.build_desired`), so all three write exactly the same objects.

- `floor`: bulk POSTs of ~500 objects per request, type by type in dependency order, with the
  ids of parents taken from the previous answers (no reads at all): NetBox's own cost.
- `baseline`: the per-object pattern of the old plugin and most peers: for every object, GET it
  by its natural key, then POST it, or PATCH the fields that differ (nothing if none).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import requests

from hhsync.desired import Desired
from hhsync.model import FABRIC_FIELD, ORDER, TAG, TYPES, Item, ObjectType, Ref, payload
from hhsync.netbox.schema import FIELDS

CHUNK = 500
MESSAGE = "benchmark"
TERMINATIONS = {"a_terminations", "b_terminations"}  # cable ends: never moved, only compared
Raw = dict[str, Any]


class Api:
    """A minimal NetBox REST client on one session; raises on any HTTP error."""

    def __init__(self, url: str, session: requests.Session) -> None:
        self.url = url.rstrip("/") + "/api/"
        self.session = session

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self.session.request(
            method, self.url + path, json=body, params=params or None, timeout=600
        )
        if not response.ok:
            raise RuntimeError(f"{method} {path}: HTTP {response.status_code}: {response.text}")
        return response.json() if response.content else None


def ordered(desired: Desired) -> list[Item]:
    """Desired items in dependency order (types as hhsync's model lists them)."""
    position = {name: i for i, name in enumerate(ORDER)}
    return sorted(desired.items.values(), key=lambda i: (position[i.type], i.ref.natural()))


def body(spec: ObjectType, attrs: Mapping[str, Any], ids: Mapping[Ref, int], late: bool) -> Raw:
    """The REST representation of `attrs` (only the fields that are, or are not, late)."""
    return payload(spec, attrs, ids.__getitem__, late=late)


def create_body(item: Item, ids: Mapping[Ref, int], fabric: str) -> Raw:
    spec = TYPES[item.type]
    out = body(spec, item.attrs, ids, late=False)
    out["tags"] = [{"slug": TAG}]
    out["changelog_message"] = MESSAGE
    if not spec.shared:
        out.setdefault("custom_fields", {})[FABRIC_FIELD] = fabric
    return out


def late_updates(items: list[Item], ids: Mapping[Ref, int]) -> Iterator[tuple[Item, Raw]]:
    """PATCH bodies of the fields that point forward (a device's primary IP)."""
    for item in items:
        fields = body(TYPES[item.type], item.attrs, ids, late=True)
        if any(v is not None for v in fields.values()):
            yield item, {"id": ids[item.ref], **fields}


def setup_schema(api: Api, *, check: bool) -> None:
    """The tag and custom fields the bodies refer to (`check`: GET first, create the missing)."""
    if not check or not api.call("GET", "extras/tags/", slug=TAG)["count"]:
        api.call("POST", "extras/tags/", {"name": TAG, "slug": TAG})
    have: set[str] = set()
    if check:
        found = api.call("GET", "extras/custom-fields/", limit=1000, fields="name")
        have = {f["name"] for f in found["results"]}
    missing = [
        {"name": f.name, "type": f.field.type, "object_types": list(f.object_types)}
        for f in FIELDS
        if f.name not in have
    ]
    if missing:
        api.call("POST", "extras/custom-fields/", missing)


def floor(api: Api, desired: Desired, fabric: str) -> int:
    """Create everything with bulk POSTs; returns the number of objects written."""
    setup_schema(api, check=False)
    items = ordered(desired)
    ids: dict[Ref, int] = {}
    for name in ORDER:
        group = [i for i in items if i.type == name]
        for start in range(0, len(group), CHUNK):
            part = group[start : start + CHUNK]
            answer = api.call(
                "POST", TYPES[name].endpoint, [create_body(i, ids, fabric) for i in part]
            )
            ids.update({i.ref: int(a["id"]) for i, a in zip(part, answer, strict=True)})
    late = list(late_updates(items, ids))
    for start in range(0, len(late), CHUNK):
        patches = late[start : start + CHUNK]
        api.call("PATCH", TYPES[patches[0][0].type].endpoint, [b for _, b in patches])
    return len(items)


# ------------------------------------------------------------------------------------------
# The per-object baseline


def lookup(item: Item, ids: Mapping[Ref, int]) -> dict[str, Any]:
    """Query parameters that find `item` by its natural key (as hhsync's model declares)."""
    spec, a = TYPES[item.type], item.attrs
    if spec.lookup is None:  # a cable: by its first end
        return {"termination_a_type": "dcim.interface", "termination_a_id": ids[a["a_end"]]}
    params = {spec.lookup.by: item.key[-1]}
    if spec.lookup.within:
        params[spec.lookup.within] = ids[item.key[0]]
    if spec.lookup.site:
        params[spec.lookup.site] = ids[a["site"]]
    return params


def current(raw: Raw, key: str) -> Any:
    """A field of a full REST representation in the form `body` produces."""
    value = raw.get(key)
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return sorted(v["id"] for v in value)  # tagged VLANs, route targets
    if isinstance(value, dict):
        return value.get("id", value.get("value"))  # a nested object, or a choice
    if key == "color" and isinstance(value, str):
        return value.lower()
    return value


def differences(item: Item, raw: Raw, ids: Mapping[Ref, int], late: bool) -> Raw:
    """The fields of `item` whose REST value differs from `raw` (cable ends are never moved)."""
    spec = TYPES[item.type]
    want = body(spec, item.attrs, ids, late)
    out: Raw = {}
    for key, value in want.items():
        if key in TERMINATIONS:
            continue
        if key == "custom_fields":
            have = raw.get("custom_fields") or {}
            changed = {k: v for k, v in value.items() if have.get(k) != v}
            if changed:
                out[key] = changed
        elif current(raw, key) != value:
            out[key] = value
    return out


def baseline(
    api: Api, desired: Desired, fabric: str, ids: dict[Ref, int], every: int = 1
) -> tuple[int, int]:
    """GET each object by natural key, then POST or PATCH it; returns (objects written, objects
    visited). `every` > 1 visits only every n-th object (a sample of a re-run); `ids` holds the
    ids already known (the others' parents) and collects the ones seen. Call `setup_schema`
    first."""
    raws: dict[Ref, Raw] = {}
    written: set[Ref] = set()
    items = ordered(desired)[::every]
    for item in items:
        endpoint = TYPES[item.type].endpoint
        found = api.call("GET", endpoint, **lookup(item, ids))["results"]
        if not found:
            raw = api.call("POST", endpoint, create_body(item, ids, fabric))
            written.add(item.ref)
        else:
            raw = found[0]
            if not TYPES[item.type].shared and (patch := differences(item, raw, ids, False)):
                raw = api.call("PATCH", f"{endpoint}{raw['id']}/", patch)
                written.add(item.ref)
        ids[item.ref], raws[item.ref] = int(raw["id"]), raw
    for item in items:  # second pass: fields pointing forward, from what the first pass saw
        if patch := differences(item, raws[item.ref], ids, True):
            api.call("PATCH", f"{TYPES[item.type].endpoint}{ids[item.ref]}/", patch)
            written.add(item.ref)
    return len(written), len(items)
