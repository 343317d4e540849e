"""Every NetBox object hhsync does not own, snapshotted before and after a scenario.

hhsync may change or delete only objects carrying both its tag and `hhsync_fabric`; everything
else must come out of any scenario exactly as it went in. `snapshot(nb)` reads every object of
every type hhsync touches straight from NetBox (not through hhsync or the fault proxy) and keeps,
per unowned object, its id, `last_updated` and a hash of its full JSON; `changes(before, after)`
lists the unowned objects that changed or disappeared. Objects that appear are not reported:
hhsync creates shared objects (device types, roles, ...) when missing, and those carry no
ownership.

Three kinds of change are not edits and are left out of the comparison: counters NetBox derives
from other objects (`device_count`, `_depth`, a prefix's `children`, ...), which move whenever
hhsync adds devices of a shared device type; hhsync's custom fields appearing, empty, on every
object once hhsync creates them; and the sync state hhsync keeps on its fabric's site (the
`hhsync_*` custom fields, by design written every run).

    before = unowned.snapshot(nb)
    ...scenario...
    assert unowned.changes(before, unowned.snapshot(nb)) == {}

`seed(api)` creates hand-made objects of every type hhsync writes, beside the fabric and in
its way (a device named like a fabric switch, an IP equal to a switch's), for that check to
watch; they carry the tag `hand-made`, so reference snapshots can leave them out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests

from tests.harness.netbox import NetBoxInstance

TAG = "hhsync"
HAND_MADE = "hand-made"
FABRIC_FIELD = "hhsync_fabric"
# Every endpoint hhsync reads or writes, shared types and hhsync's own set-up included.
ENDPOINTS = (
    "dcim/sites",
    "dcim/manufacturers",
    "dcim/device-types",
    "dcim/platforms",
    "dcim/device-roles",
    "ipam/route-targets",
    "ipam/vrfs",
    "ipam/vlan-groups",
    "ipam/vlans",
    "ipam/prefixes",
    "ipam/ip-ranges",
    "dcim/devices",
    "dcim/interfaces",
    "ipam/ip-addresses",
    "dcim/cables",
    "extras/tags",
    "extras/custom-fields",
    "extras/journal-entries",
)
# Values NetBox computes from other objects; they change without the object being edited.
DERIVED = {"_depth", "children", "utilization", "_occupied"}


@dataclass(frozen=True)
class Seen:
    """One unowned object: what identifies it and a digest of everything else."""

    endpoint: str
    id: int
    display: str
    last_updated: str | None
    digest: str
    data: dict[str, Any]


Snapshot = dict[tuple[str, int], Seen]


def _session(nb: NetBoxInstance | requests.Session) -> requests.Session:
    return nb if isinstance(nb, requests.Session) else nb.session()


def _base_url(nb: NetBoxInstance | requests.Session, url: str | None) -> str:
    if url is not None:
        return url
    if isinstance(nb, NetBoxInstance):
        return nb.url
    raise ValueError("pass url= with a bare session")


def owned(obj: dict[str, Any]) -> bool:
    """hhsync's own rule: its tag and a non-empty `hhsync_fabric` custom field."""
    tags = {t.get("slug") for t in obj.get("tags") or ()}
    return TAG in tags and bool((obj.get("custom_fields") or {}).get(FABRIC_FIELD))


def _hhsync_setup(endpoint: str, obj: dict[str, Any]) -> bool:
    """hhsync's own tag and custom fields: created and extended by hhsync by design."""
    if endpoint == "extras/tags":
        return obj.get("slug") == TAG
    if endpoint == "extras/custom-fields":
        return str(obj.get("name", "")).startswith("hhsync_")
    return False


def _without_empty_hhsync_fields(value: Any) -> Any:
    """hhsync creates its custom fields on first use; every object (and every object nested in
    another's representation) then shows them, empty."""
    if isinstance(value, list):
        return [_without_empty_hhsync_fields(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _without_empty_hhsync_fields(v) for k, v in value.items()}
    if isinstance(value.get("custom_fields"), dict):
        out["custom_fields"] = {
            k: v
            for k, v in value["custom_fields"].items()
            if not (k.startswith("hhsync_") and v is None)
        }
    return out


def _comparable(endpoint: str, obj: dict[str, Any], fabric_sites: Iterable[str]) -> Any:
    data = {k: v for k, v in obj.items() if k not in DERIVED and not k.endswith("_count")}
    fields = data.get("custom_fields") or {}
    data = _without_empty_hhsync_fields(data)
    if endpoint == "dcim/sites" and obj.get("slug") in set(fabric_sites):
        # The fabric's site carries its sync state, written on every run: compare the rest.
        data.pop("last_updated", None)
        data["custom_fields"] = {k: v for k, v in fields.items() if not k.startswith("hhsync_")}
    return data


def snapshot(
    nb: NetBoxInstance | requests.Session,
    *,
    url: str | None = None,
    fabric_sites: Iterable[str] = ("dc1",),
) -> Snapshot:
    """Every unowned object of every endpoint hhsync touches, read directly from NetBox."""
    sites = tuple(fabric_sites)
    found: Snapshot = {}
    lists = read_all(_session(nb), [f"{_base_url(nb, url)}/api/{e}/" for e in ENDPOINTS])
    for endpoint, objects in zip(ENDPOINTS, lists, strict=True):
        for obj in objects:
            if owned(obj) or _hhsync_setup(endpoint, obj):
                continue
            data = _comparable(endpoint, obj, sites)
            text = json.dumps(data, sort_keys=True, default=str)
            found[(endpoint, int(obj["id"]))] = Seen(
                endpoint,
                int(obj["id"]),
                str(obj.get("display") or obj.get("name") or obj["id"]),
                data.get("last_updated"),
                hashlib.sha256(text.encode()).hexdigest(),
                data,
            )
    return found


def read_all(
    session: requests.Session, urls: Sequence[str], params: dict[str, Any] | None = None
) -> list[list[dict[str, Any]]]:
    """Every object of each list URL, all pages; four lists at a time (NetBox serves them in
    parallel, and a snapshot is read after every scenario)."""

    def objects(url: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        next_url: str | None = url
        query: dict[str, Any] | None = {**(params or {}), "limit": 1000}
        for _ in range(1000):
            answer = session.get(next_url, params=query, timeout=60)
            answer.raise_for_status()
            page = answer.json()
            out += page["results"]
            next_url, query = page.get("next"), None
            if not next_url:
                return out
        raise AssertionError(f"{url}: more than 1,000 pages")

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(objects, urls))


def changes(before: Snapshot, after: Snapshot) -> dict[str, list[str]]:
    """Unowned objects that changed or vanished: '<endpoint> #<id> <display>' by kind of change,
    each changed one with the top-level keys that differ. Empty when nothing unowned changed."""
    out: dict[str, list[str]] = {}
    for key, old in sorted(before.items()):
        new = after.get(key)
        if new is None:
            out.setdefault("deleted", []).append(f"{old.endpoint} #{old.id} {old.display}")
        elif new.digest != old.digest:
            keys = sorted(
                k for k in old.data.keys() | new.data.keys() if old.data.get(k) != new.data.get(k)
            )
            out.setdefault("changed", []).append(
                f"{old.endpoint} #{old.id} {old.display}: {', '.join(keys)}"
            )
    return out


def count(snap: Snapshot) -> int:
    return len(snap)


def seed(api: Any) -> dict[str, int]:
    """Unowned objects (pynetbox `api`) of every type hhsync writes: another site with a device
    named like a fabric switch, its interfaces, a cable and an IP equal to a switch's; a VRF, a
    route target, prefixes, an IP range, a VLAN group and a VLAN. Tagged `hand-made`."""
    tag = api.extras.tags.create(name=HAND_MADE, slug=HAND_MADE)
    tags = [tag.id]
    site = api.dcim.sites.create(name="Elsewhere", slug="elsewhere", tags=tags)
    maker = api.dcim.manufacturers.create(name="Acme", slug="acme", tags=tags)
    kind = api.dcim.device_types.create(manufacturer=maker.id, model="Box", slug="box", tags=tags)
    role = api.dcim.device_roles.create(name="Manual", slug="manual", color="000000", tags=tags)
    box = api.dcim.devices.create(
        name="leaf-01", site=site.id, role=role.id, device_type=kind.id, tags=tags
    )
    eth0, eth1 = (
        api.dcim.interfaces.create(device=box.id, name=name, type="1000base-t", tags=tags)
        for name in ("eth0", "eth1")
    )
    api.dcim.cables.create(
        a_terminations=[{"object_type": "dcim.interface", "object_id": eth0.id}],
        b_terminations=[{"object_type": "dcim.interface", "object_id": eth1.id}],
        tags=tags,
    )
    target = api.ipam.route_targets.create(name="65000:1", tags=tags)
    vrf = api.ipam.vrfs.create(name="dc1/manual", import_targets=[target.id], tags=tags)
    api.ipam.prefixes.create(prefix="10.0.0.0/8", vrf=vrf.id, tags=tags)
    api.ipam.prefixes.create(prefix="10.0.1.0/24", tags=tags)
    api.ipam.ip_ranges.create(start_address="10.0.1.10/24", end_address="10.0.1.20/24", tags=tags)
    api.ipam.ip_addresses.create(
        address="172.30.0.11/21",
        assigned_object_type="dcim.interface",
        assigned_object_id=eth0.id,
        tags=tags,
    )
    group = api.ipam.vlan_groups.create(name="Manual", slug="manual", tags=tags)
    api.ipam.vlans.create(name="manual-1000", vid=1000, group=group.id, tags=tags)
    return {"site": site.id, "box": box.id}
