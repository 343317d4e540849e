"""The NetBox object types hhsync writes: identity and compared fields, declared once.

Desired and current state are both sets of `Item`s: an object type, a natural key and normalised
attribute values. References to other objects are `Ref`s (type + natural key), never NetBox ids,
so the diff compares meaning, not bookkeeping. The apply step turns Refs into ids.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TAG = "hhsync"
FABRIC_FIELD = "hhsync_fabric"


@dataclass(frozen=True, order=True)
class Ref:
    """A reference to another object by its natural key."""

    type: str
    key: tuple[Any, ...]

    def natural(self) -> tuple[Any, ...]:
        """A sort key that puts E1/2 before E1/10."""
        return tuple(
            int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(self))
        )

    def __str__(self) -> str:
        if self.type == "cable":
            return " <-> ".join(str(end) for end in self.key)
        return " ".join(str(part) for part in self.key if part is not None)


@dataclass(frozen=True)
class Field:
    """One compared attribute and how NetBox represents it."""

    name: str
    ref: str | None = None  # a foreign key to this object type
    many: bool = False  # a list of foreign keys (tagged VLANs, route targets), compared as a set
    generic: bool = False  # `<name>_type` + `<name>_id` (scope, assigned_object)
    choice: bool = False  # NetBox answers {"value": ..., "label": ...}
    custom: bool = False  # a custom field (custom_fields.<name>)
    late: bool = False  # written after every create: it points forward (device.primary_ip4)
    create_only: bool = False  # set when created, never compared again (cable ends)
    soft: bool = False  # never a reason to write on its own; rides along with a real change


@dataclass(frozen=True)
class ObjectType:
    """A NetBox object type as hhsync sees it."""

    name: str
    endpoint: str
    content_type: str
    key: tuple[str, ...]
    fields: tuple[Field, ...]
    shared: bool = False  # used by every fabric: created when missing, never changed or deleted
    filters: Mapping[str, str] = field(default_factory=dict)  # narrows a shared endpoint

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")


@dataclass(frozen=True)
class Item:
    """One object of desired or current state; `key` is derived from the type's key fields."""

    type: str
    attrs: Mapping[str, Any]

    @property
    def key(self) -> tuple[Any, ...]:
        return tuple(self.attrs[name] for name in TYPES[self.type].key)

    @property
    def ref(self) -> Ref:
        return Ref(self.type, self.key)


def _types(*types: ObjectType) -> dict[str, ObjectType]:
    return {t.name: t for t in types}


F = Field
# Dependency order: an object only refers to types listed before it (late fields excepted).
TYPES = _types(
    ObjectType(
        "site", "dcim/sites/", "dcim.site", ("slug",),
        (F("slug"), F("name"), F("status", choice=True)), shared=True,
    ),
    ObjectType(
        "manufacturer", "dcim/manufacturers/", "dcim.manufacturer", ("slug",),
        (F("slug"), F("name")), shared=True,
    ),
    ObjectType(
        "device_type", "dcim/device-types/", "dcim.devicetype", ("slug",),
        (F("slug"), F("model"), F("manufacturer", ref="manufacturer"), F("u_height")),
        shared=True,
    ),
    ObjectType(
        "platform", "dcim/platforms/", "dcim.platform", ("slug",),
        (F("slug"), F("name")), shared=True,
    ),
    ObjectType(
        "device_role", "dcim/device-roles/", "dcim.devicerole", ("slug",),
        (F("slug"), F("name"), F("color")), shared=True,
    ),
    ObjectType(
        "route_target", "ipam/route-targets/", "ipam.routetarget", ("name",),
        (F("name"), F("description")),
    ),
    ObjectType(
        "vrf", "ipam/vrfs/", "ipam.vrf", ("name",),
        (
            F("name"), F("rd"), F("description"), F("enforce_unique"),
            F("import_targets", ref="route_target", many=True),
            F("export_targets", ref="route_target", many=True),
        ),
    ),
    ObjectType(
        "vlan_group", "ipam/vlan-groups/", "ipam.vlangroup", ("slug",),
        (
            F("slug"), F("name"), F("scope", ref="site", generic=True), F("vid_ranges"),
            F("description"),
        ),
    ),
    ObjectType(
        "vlan", "ipam/vlans/", "ipam.vlan", ("group", "vid"),
        (
            F("group", ref="vlan_group"), F("vid"), F("name"), F("status", choice=True),
            F("description"),
        ),
    ),
    ObjectType(
        "prefix", "ipam/prefixes/", "ipam.prefix", ("vrf", "prefix"),
        (
            F("vrf", ref="vrf"), F("prefix"), F("status", choice=True),
            F("scope", ref="site", generic=True), F("vlan", ref="vlan"), F("description"),
        ),
    ),
    ObjectType(
        "ip_range", "ipam/ip-ranges/", "ipam.iprange", ("vrf", "start_address", "end_address"),
        (
            F("vrf", ref="vrf"), F("start_address"), F("end_address"),
            F("status", choice=True), F("description"),
        ),
    ),
    ObjectType(
        "device", "dcim/devices/", "dcim.device", ("name",),
        (
            F("name"), F("site", ref="site"), F("role", ref="device_role"),
            F("device_type", ref="device_type"), F("platform", ref="platform"),
            F("serial"), F("description"), F("status", choice=True),
            F("hhsync_profile", custom=True), F("hhsync_asn", custom=True),
            F("hhsync_protocol_ip", custom=True), F("hhsync_vtep_ip", custom=True),
            F("hhsync_redundancy", custom=True), F("hhsync_groups", custom=True),
            F("hhsync_nos_version", custom=True), F("hhsync_agent_version", custom=True),
            F("hhsync_applied_generation", custom=True),
            F("hhsync_heartbeat", custom=True, soft=True),
            F("primary_ip4", ref="ip_address", late=True),
            F("primary_ip6", ref="ip_address", late=True),
        ),
    ),
    ObjectType(
        "lag", "dcim/interfaces/", "dcim.interface", ("device", "name"),
        (
            F("device", ref="device"), F("name"), F("type", choice=True), F("description"),
            F("mtu"), F("mode", choice=True), F("untagged_vlan", ref="vlan"),
            F("tagged_vlans", ref="vlan", many=True),
        ),
        filters={"type": "lag"},
    ),
    ObjectType(
        "interface", "dcim/interfaces/", "dcim.interface", ("device", "name"),
        (
            F("device", ref="device"), F("name"), F("type", choice=True), F("description"),
            F("mgmt_only"), F("lag", ref="lag"), F("mtu"), F("mode", choice=True),
            F("untagged_vlan", ref="vlan"), F("tagged_vlans", ref="vlan", many=True),
        ),
        filters={"type__n": "lag"},
    ),
    ObjectType(
        "ip_address", "ipam/ip-addresses/", "ipam.ipaddress", ("vrf", "address"),
        (
            F("vrf", ref="vrf"), F("address"), F("status", choice=True), F("role", choice=True),
            F("assigned_object", ref="interface", generic=True), F("description"),
        ),
    ),
    ObjectType(
        "cable", "dcim/cables/", "dcim.cable", ("a_end", "b_end"),
        (
            F("a_end", ref="interface", create_only=True),
            F("b_end", ref="interface", create_only=True),
            F("label"), F("status", choice=True), F("description"),
        ),
    ),
)  # fmt: skip

ORDER = list(TYPES)
