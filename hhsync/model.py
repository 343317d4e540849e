"""The NetBox object types hhsync writes, each declared once, with everything about it.

Desired and current state are both sets of `Item`s: an object type, a natural key and normalised
attribute values. References to other objects are `Ref`s (type + natural key), never NetBox ids,
so the diff compares meaning, not bookkeeping.

An `ObjectType` says where the type lives in NetBox, its natural key, its compared `Field`s and how
unowned objects with a desired key are found (`Lookup`). Each field's `Kind` says how its value is
read back from NetBox (the `fields=` projection and the normalisation) and how it is written (the
payload shape), so the NetBox edge (`netbox/current.py`, `netbox/apply.py`, `netbox/schema.py`)
is generic: adding a type or a field touches this module and the mapping in `desired/` only.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Protocol

TAG = "hhsync"
FABRIC_FIELD = "hhsync_fabric"
RETIRED = "hhsync_retired"  # when hhsync retired an owned object whose source left the fabric
OWNER_GROUP = "hhsync"  # NetBox's own owner group; each fabric is an owner `hhsync/<fabric>`

Raw = dict[str, Any]
Ids = Callable[["Ref"], int]  # the NetBox id of a Ref (raises when it has none yet)


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
        if TYPES[self.type].ends:
            return " <-> ".join(str(end) for end in self.key)
        return " ".join(str(part) for part in self.key if part is not None)


class Resolver(Protocol):
    """What reading needs from the NetBox edge: NetBox ids back to Refs."""

    def ref(self, type_name: str, content_type: str | None, ident: Any) -> Ref | None:
        """The Ref of an object by content type and id (a placeholder when it is not known)."""
        ...

    def nested(self, type_name: str, value: Any) -> Ref | None:
        """The Ref of a nested object (`{"id": ..., "slug": ...}` or a bare id)."""
        ...


# ------------------------------------------------------------------------------------------
# Field kinds: how a value is read back and written.


@dataclass(frozen=True, kw_only=True)
class Kind:
    """A plain value: read as NetBox answers it (then `normalise`d), written as it is (`encode`)."""

    normalise: Callable[[Any], Any] | None = None
    encode: Callable[[Any], Any] | None = None

    def columns(self, name: str) -> tuple[str, ...]:
        """The names this field needs in a `fields=` projection."""
        return (name,)

    def read(self, name: str, raw: Raw, refs: Resolver) -> Any:
        value = raw.get(name)
        return self.normalise(value) if self.normalise and value is not None else value

    def write(self, name: str, value: Any, ids: Ids) -> Raw:
        return {name: self.encode(value) if self.encode and value is not None else value}


@dataclass(frozen=True, kw_only=True)
class Choice(Kind):
    """A choice field: NetBox answers `{"value": ..., "label": ...}` and takes the value."""

    def read(self, name: str, raw: Raw, refs: Resolver) -> Any:
        value = raw.get(name)
        return value.get("value") if isinstance(value, dict) else value


@dataclass(frozen=True, kw_only=True)
class ForeignKey(Kind):
    """A foreign key to `to`, read back from the nested object and written as its id."""

    to: str = ""

    def read(self, name: str, raw: Raw, refs: Resolver) -> Any:
        value = raw.get(name)
        return refs.nested(self.to, value) if value else None

    def write(self, name: str, value: Any, ids: Ids) -> Raw:
        return {name: ids(value) if value else None}


@dataclass(frozen=True, kw_only=True)
class ForeignKeys(ForeignKey):
    """A list of foreign keys (tagged VLANs, route targets), compared as a sorted tuple."""

    def read(self, name: str, raw: Raw, refs: Resolver) -> Any:
        nested = (refs.nested(self.to, v) for v in raw.get(name) or ())
        return tuple(sorted(ref for ref in nested if ref))

    def write(self, name: str, value: Any, ids: Ids) -> Raw:
        return {name: sorted(ids(ref) for ref in value)}


@dataclass(frozen=True, kw_only=True)
class Generic(ForeignKey):
    """A generic foreign key: `<name>_type` (a content type) and `<name>_id` (scope, assigned
    object)."""

    def columns(self, name: str) -> tuple[str, ...]:
        return (f"{name}_type", f"{name}_id")

    def read(self, name: str, raw: Raw, refs: Resolver) -> Any:
        return refs.ref(self.to, raw.get(f"{name}_type"), raw.get(f"{name}_id"))

    def write(self, name: str, value: Any, ids: Ids) -> Raw:
        kind = TYPES[value.type].content_type if value else None
        return {f"{name}_type": kind, f"{name}_id": ids(value) if value else None}


@dataclass(frozen=True, kw_only=True)
class Termination(ForeignKey):
    """One end of a cable, `<a|b>_terminations` in NetBox: hhsync's cables join one interface
    to one interface, so anything else reads as an end that matches nothing desired."""

    column: str = ""

    def columns(self, name: str) -> tuple[str, ...]:
        return (self.column,)

    def read(self, name: str, raw: Raw, refs: Resolver) -> Any:
        ends = raw.get(self.column) or []
        if len(ends) != 1:
            return Ref(self.to, (f"#{raw.get('id')}-{name}",))
        return refs.ref(self.to, ends[0].get("object_type"), ends[0].get("object_id"))

    def write(self, name: str, value: Any, ids: Ids) -> Raw:
        end = {"object_type": TYPES[self.to].content_type, "object_id": ids(value)}
        return {self.column: [end]}


@dataclass(frozen=True, kw_only=True)
class CustomField(Kind):
    """A custom field hhsync defines in NetBox (`custom_fields.<name>`), with its definition."""

    type: str = "text"  # NetBox's custom field type: text, longtext, integer, datetime, json
    label: str = ""
    description: str = ""
    ui_visible: str = "always"  # or "if-set": shown only on objects that have a value

    def columns(self, name: str) -> tuple[str, ...]:
        return ("custom_fields",)

    def read(self, name: str, raw: Raw, refs: Resolver) -> Any:
        return (raw.get("custom_fields") or {}).get(name)

    def write(self, name: str, value: Any, ids: Ids) -> Raw:
        return {"custom_fields": {name: value}}


PLAIN = Kind()
CHOICE = Choice()
ADDRESS = Kind(normalise=lambda v: str(ipaddress.ip_interface(v)))  # "10.0.0.1/31"
NETWORK = Kind(normalise=lambda v: str(ipaddress.ip_network(v, strict=False)))
COLOR = Kind(normalise=lambda v: str(v).lower())
RANGES = Kind(  # VLAN ID ranges: [[1000, 1999]] in NetBox, ((1000, 1999),) here
    normalise=lambda v: tuple(tuple(pair) for pair in v),
    encode=lambda v: [list(pair) for pair in v],
)


def fk(to: str) -> ForeignKey:
    return ForeignKey(to=to)


def fks(to: str) -> ForeignKeys:
    return ForeignKeys(to=to)


def generic(to: str) -> Generic:
    return Generic(to=to)


def cf(type_: str, label: str, description: str) -> CustomField:
    """A custom field hhsync defines (its group is "hhsync"; people cannot edit it in the UI)."""
    return CustomField(type=type_, label=label, description=description)


# ------------------------------------------------------------------------------------------
# Fields and types


@dataclass(frozen=True)
class Field:
    """One compared attribute of a type."""

    name: str
    kind: Kind = PLAIN
    late: bool = False  # written after every create: it points forward (device.primary_ip4)
    create_only: bool = False  # set when created, never compared again (cable ends)
    soft: bool = False  # never a reason to write on its own; rides along with a real change
    cascade: bool = False  # NetBox deletes this object with the one this field points to

    def read(self, raw: Raw, refs: Resolver) -> Any:
        return self.kind.read(self.name, raw, refs)

    def write(self, value: Any, ids: Ids) -> Raw:
        return self.kind.write(self.name, value, ids)

    @property
    def to(self) -> str | None:
        """The type this field refers to, if it is a reference."""
        return self.kind.to if isinstance(self.kind, ForeignKey) else None


@dataclass(frozen=True)
class Lookup:
    """How unowned NetBox objects that may carry desired natural keys are found.

    `by` filters on the key's last value; `within` on the NetBox id of the key's first value (a
    parent object; `null` for none); `site` on the fabric site's id. With `whole_parent`, every
    object of each parent is read at once (a device's interfaces) instead of filtering by value.
    """

    by: str
    within: str | None = None
    site: str | None = None
    whole_parent: bool = False


@dataclass(frozen=True)
class ObjectType:
    """A NetBox object type as hhsync sees it."""

    name: str
    endpoint: str
    content_type: str
    key: tuple[str, ...]
    fields: tuple[Field, ...]
    lookup: Lookup | None = None  # None: keyed by its ends (a cable), found through them
    shared: bool = False  # used by every fabric: created when missing, never changed or deleted
    filters: Mapping[str, str] = field(default_factory=dict)  # narrows a shared endpoint
    # Retiring an object sets these fields to the first value; restoring it, when the fabric
    # does not say otherwise, to the second (NetBox's default).
    retire: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")

    @property
    def ends(self) -> bool:
        """Keyed by its terminations (a cable): NetBox cannot move them, only delete the cable."""
        return all(isinstance(self.field(k).kind, Termination) for k in self.key)

    def projection(self) -> str:
        """The `fields=` projection: what the diff, the key and ownership need, nothing more."""
        names = ["id", "tags", "custom_fields"]
        names += [column for f in self.fields for column in f.kind.columns(f.name)]
        if any(f.to == self.name and isinstance(f.kind, Termination) for f in _all_fields()):
            names.append("cable")  # the cable on a port: how cables in the way are found
        return ",".join(dict.fromkeys(names))

    @cached_property
    def siblings(self) -> tuple[str, ...]:
        """Other types on the same endpoint: one name space (a device's LAGs and interfaces)."""
        return tuple(
            t.name for t in TYPES.values() if t.endpoint == self.endpoint and t.name != self.name
        )


def _all_fields() -> list[Field]:
    return [f for t in TYPES.values() for f in t.fields]


def _types(*types: ObjectType) -> dict[str, ObjectType]:
    """The types by name; every owned type also has its NetBox owner and retirement time."""
    owned = (F("owner", fk("owner")), F(RETIRED, RETIRED_FIELD))
    return {t.name: t if t.shared else replace(t, fields=(*t.fields, *owned)) for t in types}


RETIRED_FIELD = CustomField(
    type="datetime",
    label="Retired by hhsync",
    description="When hhsync retired this object because its source left the fabric; "
    "deleted after retire_after",
    ui_visible="if-set",
)


F = Field
SLUG = Lookup("slug")
NAME = Lookup("name")
# Dependency order: an object only refers to types listed before it (late fields excepted).
TYPES = _types(
    ObjectType(
        "owner_group", "users/owner-groups/", "users.ownergroup", ("name",),
        (F("name"),), NAME, shared=True,
    ),
    ObjectType(
        "owner", "users/owners/", "users.owner", ("name",),
        (F("name"), F("group", fk("owner_group"))), NAME, shared=True,
    ),
    ObjectType(
        "site", "dcim/sites/", "dcim.site", ("slug",),
        (F("slug"), F("name"), F("status", CHOICE)), SLUG, shared=True,
    ),
    ObjectType(
        "manufacturer", "dcim/manufacturers/", "dcim.manufacturer", ("slug",),
        (F("slug"), F("name")), SLUG, shared=True,
    ),
    ObjectType(
        "device_type", "dcim/device-types/", "dcim.devicetype", ("slug",),
        (F("slug"), F("model"), F("manufacturer", fk("manufacturer")), F("u_height")),
        SLUG, shared=True,
    ),
    ObjectType(
        "platform", "dcim/platforms/", "dcim.platform", ("slug",),
        (F("slug"), F("name")), SLUG, shared=True,
    ),
    ObjectType(
        "device_role", "dcim/device-roles/", "dcim.devicerole", ("slug",),
        (F("slug"), F("name"), F("color", COLOR)), SLUG, shared=True,
    ),
    ObjectType(
        "route_target", "ipam/route-targets/", "ipam.routetarget", ("name",),
        (F("name"), F("description")), NAME,
    ),
    ObjectType(
        "vrf", "ipam/vrfs/", "ipam.vrf", ("name",),
        (
            F("name"), F("rd"), F("description"), F("enforce_unique"),
            F("import_targets", fks("route_target")), F("export_targets", fks("route_target")),
        ),
        NAME,
    ),
    ObjectType(
        "vlan_group", "ipam/vlan-groups/", "ipam.vlangroup", ("slug",),
        (
            F("slug"), F("name"), F("scope", generic("site")), F("vid_ranges", RANGES),
            F("description"),
        ),
        SLUG,
    ),
    ObjectType(
        "vlan", "ipam/vlans/", "ipam.vlan", ("group", "vid"),
        (
            F("group", fk("vlan_group")), F("vid"), F("name"), F("status", CHOICE),
            F("description"),
        ),
        Lookup("vid", within="group_id", whole_parent=True),
        retire={"status": ("deprecated", "active")},
    ),
    ObjectType(
        "prefix", "ipam/prefixes/", "ipam.prefix", ("vrf", "prefix"),
        (
            F("vrf", fk("vrf")), F("prefix", NETWORK), F("status", CHOICE),
            F("scope", generic("site")), F("vlan", fk("vlan")), F("description"),
        ),
        Lookup("prefix", within="vrf_id"),
        retire={"status": ("deprecated", "active")},
    ),
    ObjectType(
        "ip_range", "ipam/ip-ranges/", "ipam.iprange", ("vrf", "start_address", "end_address"),
        (
            F("vrf", fk("vrf")), F("start_address", ADDRESS), F("end_address", ADDRESS),
            F("status", CHOICE), F("description"),
        ),
        Lookup("start_address", within="vrf_id"),
        retire={"status": ("deprecated", "active")},
    ),
    ObjectType(
        "device", "dcim/devices/", "dcim.device", ("name",),
        (
            F("name"), F("site", fk("site")), F("role", fk("device_role")),
            F("device_type", fk("device_type")), F("platform", fk("platform")),
            F("serial"), F("description"), F("status", CHOICE),
            F("hhsync_profile", cf("text", "Switch profile", "Hedgehog SwitchProfile name")),
            F("hhsync_asn", cf("integer", "ASN", "BGP AS number of the switch")),
            F("hhsync_protocol_ip", cf("text", "Protocol IP", "BGP router ID (protocolIP)")),
            F("hhsync_vtep_ip", cf("text", "VTEP IP", "VXLAN tunnel endpoint (vtepIP)")),
            F("hhsync_redundancy", cf(
                "text", "Redundancy group", "<type>:<group>, e.g. eslag:eslag-1")),
            F("hhsync_groups", cf(
                "text", "Switch groups", "SwitchGroups the switch belongs to")),
            F("hhsync_nos_version", cf(
                "text", "NOS version", "From the switch Agent's status")),
            F("hhsync_agent_version", cf(
                "text", "Agent version", "From the switch Agent's status")),
            F("hhsync_applied_generation", cf(
                "integer", "Applied generation", "Agent generation the switch last applied")),
            F("hhsync_heartbeat", cf(
                "datetime", "Heartbeat at last change",
                "The Agent's heartbeat when the switch's status or versions last changed",
            ), soft=True),
            F("primary_ip4", fk("ip_address"), late=True),
            F("primary_ip6", fk("ip_address"), late=True),
        ),
        Lookup("name", site="site_id"),
        retire={"status": ("decommissioning", "active")},
    ),
    ObjectType(
        "lag", "dcim/interfaces/", "dcim.interface", ("device", "name"),
        (
            F("device", fk("device")), F("name"), F("type", CHOICE), F("enabled"),
            F("description"), F("mtu"), F("mode", CHOICE), F("untagged_vlan", fk("vlan")),
            F("tagged_vlans", fks("vlan")),
        ),
        Lookup("name", within="device_id", whole_parent=True),
        filters={"type": "lag"},
        retire={"enabled": (False, True)},
    ),
    ObjectType(
        "interface", "dcim/interfaces/", "dcim.interface", ("device", "name"),
        (
            F("device", fk("device")), F("name"), F("type", CHOICE), F("enabled"),
            F("description"), F("mgmt_only"), F("lag", fk("lag")), F("mtu"), F("mode", CHOICE),
            F("untagged_vlan", fk("vlan")), F("tagged_vlans", fks("vlan")),
        ),
        Lookup("name", within="device_id", whole_parent=True),
        filters={"type__n": "lag"},
        retire={"enabled": (False, True)},
    ),
    ObjectType(
        "ip_address", "ipam/ip-addresses/", "ipam.ipaddress", ("vrf", "address"),
        (
            F("vrf", fk("vrf")), F("address", ADDRESS), F("status", CHOICE),
            F("role", CHOICE), F("assigned_object", generic("interface"), cascade=True),
            F("description"),
        ),
        Lookup("address", within="vrf_id"),
        retire={"status": ("deprecated", "active")},
    ),
    ObjectType(
        "cable", "dcim/cables/", "dcim.cable", ("a_end", "b_end"),
        (
            F("a_end", Termination(to="interface", column="a_terminations"), create_only=True),
            F("b_end", Termination(to="interface", column="b_terminations"), create_only=True),
            F("label"), F("status", CHOICE), F("description"),
        ),
        retire={"status": ("decommissioning", "connected")},
    ),
)  # fmt: skip

ORDER = list(TYPES)

# Custom fields that are not compared fields of a type.
OWNER = cf("text", "hhsync fabric", "The Hedgehog fabric whose hhsync sync owns this object")
SITE_STATE = {  # the sync state on the fabric's site (state.py gives them meaning)
    "hhsync_last_success": cf(
        "datetime", "Last sync success", "End of the last sync that applied its whole plan"
    ),
    "hhsync_last_attempt": cf("datetime", "Last sync attempt", "End of the last sync attempt"),
    "hhsync_result": cf("text", "Last sync result", "ok or error"),
    "hhsync_message": cf("longtext", "Last sync message", "The summary, or the error"),
    "hhsync_counts": cf("json", "Last sync counts", "Objects created, updated, deleted, ..."),
    "hhsync_mismatches": cf(
        "json", "Cabling mismatches",
        "Links whose LLDP neighbour is missing or not the expected peer",
    ),
    "hhsync_interval": cf("integer", "Sync interval (s)", "The fabric's configured interval"),
    "hhsync_fingerprint": cf(
        "text", "Fabric fingerprint",
        "Digest of the fabric objects and plan inputs at the last success",
    ),
    "hhsync_branch": cf(
        "json", "Branch awaiting review",
        "The NetBox branch holding the fabric's changes until someone merges it",
    ),
    "hhsync_retirements": cf(
        "json", "Retired objects", "Owned objects retired, by when they will be deleted",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class CustomFieldSpec:
    """A custom field as NetBox defines it: on which object types, and how it looks."""

    name: str
    field: CustomField
    object_types: tuple[str, ...]


def custom_fields() -> list[CustomFieldSpec]:
    """Every custom field hhsync needs, with the object types it applies to."""
    owned = tuple(sorted({t.content_type for t in TYPES.values() if not t.shared}))
    specs = [CustomFieldSpec(FABRIC_FIELD, OWNER, owned)]
    for t in TYPES.values():
        for f in t.fields:
            if isinstance(f.kind, CustomField) and f.name not in (s.name for s in specs):
                types = owned if f.kind is RETIRED_FIELD else (t.content_type,)
                specs.append(CustomFieldSpec(f.name, f.kind, types))
    specs += [CustomFieldSpec(n, cf, ("dcim.site",)) for n, cf in SITE_STATE.items()]
    return specs


def payload(spec: ObjectType, attrs: Mapping[str, Any], ids: Ids, *, late: bool) -> Raw:
    """The REST body of `attrs`: only the fields that are (or are not) written late."""
    out: Raw = {}
    for f in spec.fields:
        if f.name in attrs and f.late == late:
            for key, value in f.write(attrs[f.name], ids).items():
                if key == "custom_fields":
                    out.setdefault(key, {}).update(value)
                else:
                    out[key] = value
    return out


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
