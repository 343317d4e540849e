"""Wiring kinds -> sites, device types, devices, interfaces, LAGs, cables and link IPs.

Port references are `<device>/<port>`, split on the first `/` (`spine-01/E1/1/1` is port `E1/1/1`
of `spine-01`). A Connection is mapped whole or not at all: a bad port, an unknown switch or a port
already used by another connection skips it with a warning naming the field.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hhsync.desired import Batch, Builder
from hhsync.model import Ref

NAME_MAX = 64  # NetBox's limit for device and interface names
LABEL_MAX = 100  # cable labels
DESCRIPTION_MAX = 200

SWITCH_ROLES = {  # slug -> (name, colour)
    "spine": ("Spine", "3f51b5"),
    "server-leaf": ("Server leaf", "4caf50"),
    "border-leaf": ("Border leaf", "ff9800"),
    "mixed-leaf": ("Mixed leaf", "009688"),
    "virtual-edge": ("Virtual edge", "9c27b0"),
}
OTHER_ROLES = {"server": ("Server", "9e9e9e"), "gateway": ("Gateway", "795548")}
GENERIC_TYPES = {  # device type slug -> model, for devices without a SwitchProfile
    "hedgehog-switch": "Hedgehog switch",
    "hedgehog-server": "Hedgehog server",
    "hedgehog-gateway": "Hedgehog gateway",
}
SPEED_TYPES = {
    "1G": "1000base-x-sfp",
    "10G": "10gbase-x-sfpp",
    "25G": "25gbase-x-sfp28",
    "40G": "40gbase-x-qsfpp",
    "50G": "50gbase-x-sfp56",
    "100G": "100gbase-x-qsfp28",
    "200G": "200gbase-x-qsfp56",
    "400G": "400gbase-x-qsfpdd",
    "800G": "800gbase-x-qsfpdd",
}
# spec key of each Connection type -> the label Hedgehog gives it
CONNECTION_TYPES = {
    "unbundled": "unbundled",
    "bundled": "bundled",
    "eslag": "eslag",
    "mclag": "mclag",
    "mclagDomain": "mclag-domain",
    "fabric": "fabric",
    "mesh": "mesh",
    "gateway": "gateway",
    "vpcLoopback": "vpc-loopback",
    "external": "external",
    "staticExternal": "static-external",
}


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Malformed(Exception):
    """A field of a Hedgehog object that cannot be mapped: (field, reason)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def build(b: Builder) -> None:
    site = b.add("site", slug=b.fabric.site, name=b.fabric.site, status="active")
    b.add(
        "vrf",
        name=b.fabric.name,
        rd=None,
        description=f"Hedgehog fabric {b.fabric.name}: underlay and management",
        enforce_unique=False,
        import_targets=(),
        export_targets=(),
    )
    profiles = {obj_name(p): p for p in b.inventory.items("SwitchProfile")}
    for obj in sorted(b.inventory.items("Switch"), key=obj_name):
        map_object(b, "Switch", obj, lambda o: _switch(b, o, site, profiles))
    for obj in sorted(b.inventory.items("Server"), key=obj_name):
        map_object(b, "Server", obj, lambda o: _plain_device(b, o, site, "server"))
    for obj in sorted(b.inventory.items("Gateway"), key=obj_name):
        map_object(b, "Gateway", obj, lambda o: _plain_device(b, o, site, "gateway"))
    ports = _PortTypes(b, profiles)
    for obj in sorted(b.inventory.items("Connection"), key=obj_name):
        map_object(b, "Connection", obj, lambda o: _connection(b, o, ports))


def obj_name(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) else ""


def map_object(b: Builder, kind: str, obj: Any, mapper: Any) -> None:
    name = obj_name(obj) if isinstance(obj, dict) else ""
    try:
        check_name(name, "metadata.name")
        batch = mapper(obj)
    except Malformed as e:
        b.skip(kind, name or "?", e.field, e.reason)
        return
    if batch is not None:
        b.commit(batch)


def spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec")
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise Malformed("spec", "not a mapping")
    return spec


def text(value: Any, field: str, *, required: bool = False, limit: int = DESCRIPTION_MAX) -> str:
    """A string field as NetBox will keep it: stripped (its API trims surrounding spaces, so an
    unstripped value would never compare equal), without control characters."""
    if value is not None and not isinstance(value, str):
        raise Malformed(field, f"expected a string, got {type(value).__name__}")
    stripped: str = (value or "").strip()
    if not stripped:
        if required:
            raise Malformed(field, "missing")
        return ""
    if _CONTROL.search(stripped):
        raise Malformed(field, "contains a control character")
    if len(stripped) > limit:
        raise Malformed(field, f"longer than {limit} characters")
    return stripped


def check_name(name: Any, field: str) -> str:
    """An object or subnet name: NetBox names are built from it, so it must be clean as is."""
    if not isinstance(name, str) or not name:
        raise Malformed(field, "missing")
    if name != name.strip() or _CONTROL.search(name):
        raise Malformed(field, f"has surrounding spaces or control characters: {name!r}")
    return name


def as_dict(value: Any) -> dict[str, Any]:
    """`value` when it is a mapping, else empty: for optional, best-effort fields."""
    return value if isinstance(value, dict) else {}


def mapping(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Malformed(field, "not a mapping")
    return value


def listing(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(field, "not a list")
    return value


def interface_address(value: Any, field: str) -> str | None:
    """An address with its prefix length, normalised ("10.0.0.1/31"); None when absent."""
    if value is None or value == "":
        return None
    try:
        if "/" not in text(value, field):
            raise ValueError("no prefix length")
        address = ipaddress.ip_interface(value)
    except ValueError:
        raise Malformed(field, f"not an IP address with prefix length: {value!r}") from None
    network = address.network
    if network.prefixlen == 0:
        raise Malformed(field, f"a /0 prefix length is not an address: {value!r}")
    if (
        address.version == 4
        and network.prefixlen < 31
        and address.ip in (network.network_address, network.broadcast_address)
    ):  # NetBox refuses these on an interface
        raise Malformed(field, f"{address.ip} is the network or broadcast address of {network}")
    return str(address)


def fit(name: str, limit: int) -> str:
    """`name`, or when it is too long a prefix and a digest: stays unique and stable."""
    if len(name) <= limit:
        return name
    return f"{name[: limit - 9]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _device_name(name: str) -> str:
    if len(name) > NAME_MAX:
        raise Malformed("metadata.name", f"longer than {NAME_MAX} characters (NetBox's limit)")
    return name


# Shared objects are added to the device's batch: a skipped device leaves none behind.


def _role(batch: Batch, slug: str) -> Ref:
    name, color = {**SWITCH_ROLES, **OTHER_ROLES}[slug]
    return batch.add("device_role", slug=slug, name=name, color=color)


def _generic_type(batch: Batch, slug: str) -> Ref:
    maker = batch.add("manufacturer", slug="hedgehog", name="Hedgehog")
    return batch.add(
        "device_type", slug=slug, model=GENERIC_TYPES[slug], manufacturer=maker, u_height=1
    )


def _switch(b: Builder, obj: dict[str, Any], site: Ref, profiles: dict[str, Any]) -> Batch:
    name = _device_name(obj_name(obj))
    spec = spec_of(obj)
    role = text(spec.get("role"), "spec.role", required=True)
    if role not in SWITCH_ROLES:
        raise Malformed("spec.role", f"unknown role {role!r} (one of {', '.join(SWITCH_ROLES)})")
    profile = text(spec.get("profile"), "spec.profile", limit=NAME_MAX)
    redundancy = mapping(spec.get("redundancy"), "spec.redundancy")
    group = text(redundancy.get("group"), "spec.redundancy.group")
    kind = text(redundancy.get("type"), "spec.redundancy.type")
    groups = [text(g, "spec.groups") for g in listing(spec.get("groups"), "spec.groups")]
    asn = spec.get("asn")
    if asn is not None and (isinstance(asn, bool) or not isinstance(asn, int) or asn < 0):
        raise Malformed("spec.asn", f"not an AS number: {asn!r}")
    boot = mapping(spec.get("boot"), "spec.boot")
    address = interface_address(spec.get("ip"), "spec.ip")
    batch = Batch("Switch", name)
    device_type, platform = _profile_type(batch, profiles.get(profile) if profile else None)
    device = Ref("device", (name,))
    primary = None
    if address:
        m1 = batch.add(
            "interface",
            "spec.ip",
            **interface(device, "M1", "1000base-t", "management", mgmt_only=True),
        )
        primary = batch.add("ip_address", "spec.ip", **ip_address(b, address, m1, "management"))
    batch.add(
        "device",
        name=name,
        site=site,
        role=_role(batch, role),
        device_type=device_type,
        platform=platform,
        serial=text(boot.get("serial"), "spec.boot.serial", limit=50),
        description=text(spec.get("description"), "spec.description"),
        hhsync_profile=profile or None,
        hhsync_asn=asn,
        hhsync_protocol_ip=interface_address(spec.get("protocolIP"), "spec.protocolIP"),
        hhsync_vtep_ip=interface_address(spec.get("vtepIP"), "spec.vtepIP"),
        hhsync_redundancy=f"{kind or 'eslag'}:{group}" if group else None,
        hhsync_groups=",".join(sorted(groups)) or None,
        primary_ip4=primary if address and ":" not in address else None,
        primary_ip6=primary if address and ":" in address else None,
    )
    return batch


def _profile_type(batch: Batch, profile: Any) -> tuple[Ref, Ref | None]:
    """Device type and platform from a SwitchProfile object, or the generic switch type."""
    name = obj_name(profile) if isinstance(profile, dict) else ""
    if not name:
        return _generic_type(batch, "hedgehog-switch"), None
    spec = as_dict(profile.get("spec"))
    display = spec.get("displayName")
    display = display.strip() if isinstance(display, str) and display.strip() else name
    maker_name = fit(display.split()[0], 100)
    maker = batch.add("manufacturer", slug=slug(maker_name), name=maker_name)
    device_type = batch.add(
        "device_type", slug=slug(name), model=fit(display, 100), manufacturer=maker, u_height=1
    )
    nos = spec.get("nosType")
    if not isinstance(nos, str) or not nos.strip():
        return device_type, None
    return device_type, batch.add("platform", slug=slug(nos), name=fit(nos.strip(), 100))


def slug(value: str, *, unique: bool = False) -> str:
    """A NetBox slug for `value` ("Dell S5248F" -> "dell-s5248f"). With `unique`, a value that
    had to change gets a digest, so two names never share a slug."""
    clean = re.sub(r"[^a-z0-9_-]+", "-", value.lower()).strip("-")
    if unique and clean != value:
        clean = f"{clean[:90]}-{hashlib.sha256(value.encode()).hexdigest()[:8]}".lstrip("-")
    return fit(clean, 100) or "unknown"


def _plain_device(b: Builder, obj: dict[str, Any], site: Ref, role: str) -> Batch:
    name = _device_name(obj_name(obj))
    spec = spec_of(obj)
    batch = Batch(obj.get("kind", role), name)
    batch.add(
        "device",
        name=name,
        site=site,
        role=_role(batch, role),
        device_type=_generic_type(batch, f"hedgehog-{role}"),
        platform=None,
        serial="",
        description=text(spec.get("description"), "spec.description"),
        hhsync_profile=None,
        hhsync_asn=None,
        hhsync_protocol_ip=None,
        hhsync_vtep_ip=None,
        hhsync_redundancy=None,
        hhsync_groups=None,
        primary_ip4=None,
        primary_ip6=None,
    )
    return batch


def interface(
    device: Ref,
    name: str,
    kind: str,
    description: str,
    *,
    mgmt_only: bool = False,
    lag: Ref | None = None,
    mtu: int | None = None,
) -> dict[str, Any]:
    """Every compared field of an interface, so a hand edit of any of them is repaired."""
    return {
        "device": device,
        "name": name,
        "type": kind,
        "enabled": True,
        "description": description[:DESCRIPTION_MAX],
        "mgmt_only": mgmt_only,
        "lag": lag,
        "mtu": mtu,
        "mode": None,
        "untagged_vlan": None,
        "tagged_vlans": (),
    }


def ip_address(b: Builder, address: str, assigned: Ref | None, description: str) -> dict[str, Any]:
    return {
        "vrf": Ref("vrf", (b.fabric.name,)),
        "address": address,
        "status": "active",
        "role": None,
        "assigned_object": assigned,
        "description": description[:DESCRIPTION_MAX],
    }


@dataclass(frozen=True)
class End:
    """One end of a link: a port on a device of a role class, with its link IP if any."""

    device: str
    port: str
    field: str
    role: str  # "switch", "server" or "gateway"
    ip: str | None = None


@dataclass(frozen=True)
class Link:
    a: End
    b: End | None  # None: the far end is outside the fabric (external)
    lag: bool = False  # the a end is a server port in a LAG


class _PortTypes:
    """NetBox interface types of switch ports, from SwitchProfile port profiles when known."""

    def __init__(self, b: Builder, profiles: dict[str, Any]) -> None:
        self.switch_profiles: dict[str, Any] = {}
        self.breakouts: dict[str, dict[str, Any]] = {}
        for ref, item in b.items.items():
            if ref.type == "device" and item.attrs.get("hhsync_profile"):
                self.switch_profiles[item.attrs["name"]] = profiles.get(
                    item.attrs["hhsync_profile"]
                )
        for obj in b.inventory.items("Switch"):
            spec = as_dict(obj.get("spec"))
            self.breakouts[obj_name(obj)] = as_dict(spec.get("portBreakouts"))

    def type_of(self, switch: str, port: str) -> str:
        spec = as_dict(as_dict(self.switch_profiles.get(switch)).get("spec"))
        parts = port.split(".", 1)[0].split("/")  # E1/55/1.100 -> E1, 55, 1
        base, lane = "/".join(parts[:2]), parts[2] if len(parts) > 2 else None
        info = as_dict(as_dict(spec.get("ports")).get(base))
        if info.get("management"):
            return "1000base-t"
        port_profile = as_dict(as_dict(spec.get("portProfiles")).get(str(info.get("profile"))))
        if not port_profile:
            return "other"
        if lane:  # a breakout lane: its speed is the breakout mode's ("4x25G" -> 25G)
            mode = self.breakouts.get(switch, {}).get(base) or _default(port_profile, "breakout")
            speed = str(mode).partition("x")[2] if mode else ""
        else:
            speed = str(_default(port_profile, "speed") or "")
        return SPEED_TYPES.get(speed, "other")


def _default(profile: dict[str, Any], key: str) -> Any:
    value = profile.get(key)
    return value.get("default") if isinstance(value, dict) else None


def _connection(b: Builder, obj: dict[str, Any], ports: _PortTypes) -> Batch:
    name = obj_name(obj)
    spec = spec_of(obj)
    kinds = [k for k in CONNECTION_TYPES if spec.get(k) is not None]
    if len(kinds) != 1:
        found = ", ".join(kinds) or "none"
        raise Malformed("spec", f"expected exactly one connection type, found {found}")
    key = kinds[0]
    body = mapping(spec[key], f"spec.{key}")
    links = list(_links(key, body))
    if not links:
        field = "peerLinks" if key == "mclagDomain" else SHAPES[key][4] or "link"
        raise Malformed(f"spec.{key}.{field}", "no links")
    mtu = body.get("mtu")
    if mtu is not None and (
        isinstance(mtu, bool) or not isinstance(mtu, int) or not 1 <= mtu <= 65536
    ):
        raise Malformed(f"spec.{key}.mtu", f"not an MTU: {mtu!r}")
    batch = Batch("Connection", name)
    lag = None
    for link in links:
        if link.lag and lag is None:
            lag = batch.add("lag", f"spec.{key}", **_lag(_device(b, link.a), name))
        elif link.lag and lag is not None and lag.key[0] != Ref("device", (link.a.device,)):
            raise Malformed(
                link.a.field,
                f"all links of a {key} connection must be on one "
                f"server, not {lag.key[0]} and {link.a.device}",
            )
        a = _end(
            b, batch, link.a, name, ports, None if link.lag else mtu, lag if link.lag else None
        )
        if link.b is None:
            continue
        if link.b.role == "gateway" and not b.has(Ref("device", (link.b.device,))):
            continue  # no Gateway object: the switch side stands alone, without a cable
        far = _end(b, batch, link.b, name, ports, mtu)
        ends = sorted((a, far))
        batch.add(
            "cable",
            link.b.field,
            a_end=ends[0],
            b_end=ends[1],
            label=name[:LABEL_MAX],
            description="",
        )
    return batch


def _lag(device: Ref, connection: str) -> dict[str, Any]:
    attrs = interface(device, fit(connection, NAME_MAX), "lag", connection)
    del attrs["mgmt_only"], attrs["lag"]
    return attrs


def _device(b: Builder, end: End) -> Ref:
    """The device an end names, which must exist with a role of the end's class."""
    device = Ref("device", (end.device,))
    if not b.has(device):
        raise Malformed(end.field, f"unknown {end.role} {end.device!r}")
    role = b.get(device).attrs["role"].key[0]
    actual = "switch" if role in SWITCH_ROLES else role
    if actual != end.role:
        raise Malformed(end.field, f"{end.device!r} is a {actual}, not a {end.role}")
    return device


def _end(
    b: Builder,
    batch: Batch,
    end: End,
    connection: str,
    ports: _PortTypes,
    mtu: int | None,
    lag: Ref | None = None,
) -> Ref:
    device = _device(b, end)
    is_switch = end.role == "switch"
    kind = ports.type_of(end.device, end.port) if is_switch else "other"
    ref = Ref("interface", (device, end.port))
    if ref in batch.items:
        raise Malformed(end.field, f"port {end.device}/{end.port} is used twice")
    batch.add(
        "interface",
        end.field,
        **interface(device, end.port, kind, connection, lag=lag, mtu=mtu if is_switch else None),
    )
    if end.ip:
        batch.add(
            "ip_address",
            end.field.removesuffix(".port") + ".ip",
            **ip_address(b, end.ip, ref, connection),
        )
    return ref


# spec key -> (a side, its role, b side, its role, field holding the links or None for `link`)
SHAPES: dict[str, tuple[str, str, str, str, str | None]] = {
    "unbundled": ("server", "server", "switch", "switch", None),
    "bundled": ("server", "server", "switch", "switch", "links"),
    "eslag": ("server", "server", "switch", "switch", "links"),
    "mclag": ("server", "server", "switch", "switch", "links"),
    "fabric": ("spine", "switch", "leaf", "switch", "links"),
    "mesh": ("leaf1", "switch", "leaf2", "switch", "links"),
    "gateway": ("switch", "switch", "gateway", "gateway", "links"),
    "vpcLoopback": ("switch1", "switch", "switch2", "switch", "links"),
    "external": ("switch", "switch", "", "", None),
    "staticExternal": ("switch", "switch", "", "", None),
}
WITH_IPS = {"fabric", "mesh", "gateway", "staticExternal"}


def _links(key: str, body: dict[str, Any]) -> Iterator[Link]:
    """The links of one Connection spec, each end parsed and checked."""
    if key == "mclagDomain":
        for group in ("peerLinks", "sessionLinks"):
            for i, link in enumerate(listing(body.get(group), f"spec.{key}.{group}")):
                where = f"spec.{key}.{group}[{i}]"
                yield Link(
                    _port(link, "switch1", "switch", where), _port(link, "switch2", "switch", where)
                )
        return
    a_side, a_role, b_side, b_role, many = SHAPES[key]
    raw = listing(body.get(many), f"spec.{key}.{many}") if many else [body.get("link")]
    for i, link in enumerate(raw):
        where = f"spec.{key}.{many}[{i}]" if many else f"spec.{key}.link"
        a = _port(link, a_side, a_role, where, with_ip=key in WITH_IPS)
        far = _port(link, b_side, b_role, where, with_ip=key in WITH_IPS) if b_side else None
        yield Link(a, far, lag=key in {"bundled", "eslag", "mclag"})


def _port(link: Any, side: str, role: str, where: str, *, with_ip: bool = False) -> End:
    field = f"{where}.{side}.port"
    end = mapping(mapping(link, where).get(side), f"{where}.{side}")
    ref = text(end.get("port"), field, required=True, limit=2 * NAME_MAX + 1)
    device, slash, port = ref.partition("/")
    if not slash or not device or not port:
        raise Malformed(field, f"expected <device>/<port>, got {ref!r}")
    if len(port) > NAME_MAX:
        raise Malformed(field, f"port name longer than {NAME_MAX} characters")
    ip = interface_address(end.get("ip"), f"{where}.{side}.ip") if with_ip else None
    return End(device, port, field, role, ip)
