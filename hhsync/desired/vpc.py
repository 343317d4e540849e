"""VPC kinds -> VLAN groups, VLANs, VRFs, route targets, prefixes, IP ranges, interface VLANs.

- VLANNamespace -> VLAN group `<fabric>/<ns>` scoped to the fabric's site, with its ranges.
- IPv4Namespace -> a container prefix per subnet, in the fabric's VRF.
- VPC -> VRF `<fabric>/<vpc>` exporting its own route target; each subnet -> a VLAN in the
  namespace's group, a prefix with that VLAN, the gateway as an anycast IP and the DHCP range
  as an IP range.
- External -> VRF `<fabric>/ext.<name>` with its route target; ExternalAttachment -> the switch
  IP on the external link's interface, in that VRF.
- VPCPeering / ExternalPeering -> each side imports the other's route target.
- VPCAttachment -> the connection's switch ports carry the subnet's VLAN (tagged, or untagged
  for nativeVLAN) with the interface mode set.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, TypeGuard

from hhsync.desired import Batch, Builder
from hhsync.desired.wiring import (
    DESCRIPTION_MAX,
    Malformed,
    as_dict,
    check_name,
    fit,
    interface_address,
    listing,
    map_object,
    mapping,
    obj_name,
    slug,
    spec_of,
    text,
)
from hhsync.model import Ref

RT_MAX = 21  # NetBox's limit for a route target's name
SERVER_CONNECTIONS = ("unbundled", "bundled", "eslag", "mclag")
VLAN_FIELDS = ("mode", "untagged_vlan", "tagged_vlans")


@dataclass
class _Vpcs:
    """What later kinds need from earlier ones: groups, VRFs, subnet VLANs."""

    groups: dict[str, Ref] = field(default_factory=dict)  # VLANNamespace -> VLAN group
    vrfs: dict[str, Ref] = field(default_factory=dict)  # VPC or "ext.<name>" -> VRF
    targets: dict[str, Ref] = field(default_factory=dict)  # same keys -> route target
    subnets: dict[str, Ref] = field(default_factory=dict)  # "<vpc>/<subnet>" -> VLAN
    ranges: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # VLAN IDs by ns
    imports: dict[str, set[Ref]] = field(default_factory=dict)

    def forget_skipped(self, b: Builder) -> None:
        """Drop what skipped objects would have added: nothing may refer to them."""
        for table in (self.groups, self.vrfs, self.targets, self.subnets):
            for key in [k for k, ref in table.items() if not b.has(ref)]:
                del table[key]


def build(b: Builder) -> None:
    v = _Vpcs()
    for obj in sorted(b.inventory.items("VLANNamespace"), key=obj_name):
        map_object(b, "VLANNamespace", obj, lambda o: _vlan_namespace(b, o, v))
    v.forget_skipped(b)
    for obj in sorted(b.inventory.items("IPv4Namespace"), key=obj_name):
        map_object(b, "IPv4Namespace", obj, lambda o: _ipv4_namespace(b, o))
    for obj in sorted(b.inventory.items("VPC"), key=obj_name):
        map_object(b, "VPC", obj, lambda o: _vpc(b, o, v))
    for obj in sorted(b.inventory.items("External"), key=obj_name):
        map_object(b, "External", obj, lambda o: _external(b, o, v))
    v.forget_skipped(b)
    for obj in sorted(b.inventory.items("ExternalAttachment"), key=obj_name):
        map_object(b, "ExternalAttachment", obj, lambda o: _external_attachment(b, o, v))
    for obj in sorted(b.inventory.items("VPCPeering"), key=obj_name):
        map_object(b, "VPCPeering", obj, lambda o: _vpc_peering(o, v))
    for obj in sorted(b.inventory.items("ExternalPeering"), key=obj_name):
        map_object(b, "ExternalPeering", obj, lambda o: _external_peering(o, v))
    peerings_listed = b.inventory.complete("VPCPeering") and b.inventory.complete("ExternalPeering")
    for key, vrf in v.vrfs.items():
        if peerings_listed:
            b.update(vrf, import_targets=tuple(sorted(v.imports.get(key, ()))))
        else:  # without the peerings, imports are left as they are in NetBox
            b.drop(vrf, "import_targets")
    _attachments(b, v)


def route_target(b: Builder | Batch, fabric: str, name: str, kind: str) -> Ref:
    """A route target per VRF, `<fabric>:<name>` when it fits NetBox's 21 characters."""
    value = f"{fabric}:{name}"
    if len(value) > RT_MAX:
        value = "hh:" + hashlib.blake2b(f"{fabric}/{name}".encode(), digest_size=9).hexdigest()
    description = f"Hedgehog {kind} {fabric}/{name}"[:DESCRIPTION_MAX]
    return b.add("route_target", name=value, description=description)


def _vlan_namespace(b: Builder, obj: dict[str, Any], v: _Vpcs) -> Batch:
    name = obj_name(obj)
    ranges = []
    for i, r in enumerate(listing(spec_of(obj).get("ranges"), "spec.ranges")):
        where = f"spec.ranges[{i}]"
        low, high = mapping(r, where).get("from"), as_dict(r).get("to")
        if not _vid(low) or not _vid(high) or low > high:
            raise Malformed(where, f"not a VLAN range (1-4094): {r!r}")
        ranges.append((low, high))
    if not ranges:
        raise Malformed("spec.ranges", "no VLAN ranges")
    ranges.sort()
    for (_, high), (low, _) in pairwise(ranges):
        if low <= high:
            raise Malformed("spec.ranges", f"ranges overlap at VLAN {low}")
    batch = Batch("VLANNamespace", name)
    v.groups[name] = batch.add(
        "vlan_group",
        slug=slug(f"{b.fabric.name}-{name}", unique=True),
        name=fit(f"{b.fabric.name}/{name}", 100),
        scope=Ref("site", (b.fabric.site,)),
        vid_ranges=tuple(ranges),
        description=f"Hedgehog VLANNamespace {name} of fabric {b.fabric.name}"[:DESCRIPTION_MAX],
    )
    v.ranges[name] = ranges
    return batch


def _vid(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 4094


def _network(value: Any, where: str) -> str:
    try:
        return str(ipaddress.ip_network(text(value, where, required=True)))
    except ValueError:
        raise Malformed(where, f"not a network in CIDR form: {value!r}") from None


def _ipv4_namespace(b: Builder, obj: dict[str, Any]) -> Batch:
    name = obj_name(obj)
    batch = Batch("IPv4Namespace", name)
    for i, subnet in enumerate(listing(spec_of(obj).get("subnets"), "spec.subnets")):
        batch.add(
            "prefix",
            f"spec.subnets[{i}]",
            vrf=Ref("vrf", (b.fabric.name,)),
            prefix=_network(subnet, f"spec.subnets[{i}]"),
            status="container",
            scope=Ref("site", (b.fabric.site,)),
            vlan=None,
            description=f"Hedgehog IPv4Namespace {name}"[:DESCRIPTION_MAX],
        )
    return batch


def _vrf(batch: Batch, b: Builder, key: str, kind: str, description: str) -> tuple[Ref, Ref]:
    target = route_target(batch, b.fabric.name, key, kind)
    vrf = batch.add(
        "vrf",
        name=fit(f"{b.fabric.name}/{key}", 100),
        rd=None,
        description=description[:DESCRIPTION_MAX],
        enforce_unique=True,
        import_targets=(),
        export_targets=(target,),
    )
    return vrf, target


def _vpc(b: Builder, obj: dict[str, Any], v: _Vpcs) -> Batch:
    name = obj_name(obj)
    spec = spec_of(obj)
    namespace = text(spec.get("vlanNamespace"), "spec.vlanNamespace") or "default"
    group = v.groups.get(namespace)
    if group is None:
        raise Malformed("spec.vlanNamespace", f"unknown VLANNamespace {namespace!r}")
    mode = text(spec.get("mode"), "spec.mode") or "l2vni"
    batch = Batch("VPC", name)
    vrf, target = _vrf(
        batch, b, name, "VPC", f"Hedgehog VPC {name} ({mode}) of fabric {b.fabric.name}"
    )
    subnets = {}
    for subnet_name, subnet in mapping(spec.get("subnets"), "spec.subnets").items():
        where = f"spec.subnets.{subnet_name}"
        check_name(subnet_name, where)
        subnets[f"{name}/{subnet_name}"] = _subnet(
            b,
            batch,
            vrf,
            group,
            v.ranges[namespace],
            name,
            subnet_name,
            mapping(subnet, where),
            where,
        )
    v.vrfs[name], v.targets[name] = vrf, target
    v.subnets.update(subnets)
    return batch


def _subnet(
    b: Builder,
    batch: Batch,
    vrf: Ref,
    group: Ref,
    ranges: list[tuple[int, int]],
    vpc: str,
    name: str,
    spec: dict[str, Any],
    where: str,
) -> Ref:
    """VLAN, prefix, gateway and DHCP range of one VPC subnet; returns the VLAN."""
    network = ipaddress.ip_network(_network(spec.get("subnet"), f"{where}.subnet"))
    vid = spec.get("vlan")
    if not _vid(vid):
        raise Malformed(f"{where}.vlan", f"not a VLAN ID (1-4094): {vid!r}")
    if not any(low <= vid <= high for low, high in ranges):
        raise Malformed(f"{where}.vlan", f"VLAN {vid} is outside its VLANNamespace's ranges")
    label = f"{vpc}/{name}"
    vlan = batch.add(
        "vlan",
        f"{where}.vlan",
        group=group,
        vid=vid,
        name=fit(label, 64),
        status="active",
        description=f"Hedgehog VPC subnet {label}"[:DESCRIPTION_MAX],
    )
    dhcp = mapping(spec.get("dhcp"), f"{where}.dhcp")
    relay = text(dhcp.get("relay"), f"{where}.dhcp.relay")
    batch.add(
        "prefix",
        f"{where}.subnet",
        vrf=vrf,
        prefix=str(network),
        status="active",
        scope=Ref("site", (b.fabric.site,)),
        vlan=vlan,
        description=(f"Hedgehog VPC subnet {label}" + (f", DHCP relay {relay}" if relay else ""))[
            :DESCRIPTION_MAX
        ],
    )
    first, last = _hosts(network)
    gateway = _host(spec.get("gateway"), network, f"{where}.gateway") or first
    batch.add(
        "ip_address",
        f"{where}.gateway",
        vrf=vrf,
        address=f"{gateway}/{network.prefixlen}",
        status="active",
        role="anycast",
        assigned_object=None,
        description=f"Gateway of VPC subnet {label}"[:DESCRIPTION_MAX],
    )
    dhcp_range = mapping(dhcp.get("range"), f"{where}.dhcp.range")
    if dhcp.get("enable") is True:
        start = _host(dhcp_range.get("start"), network, f"{where}.dhcp.range.start") or first
        end = _host(dhcp_range.get("end"), network, f"{where}.dhcp.range.end") or last
        if start > end:
            raise Malformed(f"{where}.dhcp.range", f"start {start} is after end {end}")
        batch.add(
            "ip_range",
            f"{where}.dhcp",
            vrf=vrf,
            start_address=f"{start}/{network.prefixlen}",
            end_address=f"{end}/{network.prefixlen}",
            status="active",
            description=f"DHCP range of VPC subnet {label}"[:DESCRIPTION_MAX],
        )
    return vlan


def _hosts(network: Any) -> tuple[Any, Any]:
    """First and last usable address, by arithmetic (a /8 has 16 M hosts: never list them)."""
    if network.num_addresses <= 2:
        return network.network_address, network.broadcast_address
    return network.network_address + 1, network.broadcast_address - 1


def _host(value: Any, network: Any, where: str) -> Any:
    if value in (None, ""):
        return None
    try:
        address = ipaddress.ip_address(text(value, where))
    except ValueError:
        raise Malformed(where, f"not an IP address: {value!r}") from None
    if address not in network:
        raise Malformed(where, f"{address} is outside {network}")
    return address


def _external(b: Builder, obj: dict[str, Any], v: _Vpcs) -> Batch:
    name = obj_name(obj)
    spec = spec_of(obj)
    static = mapping(spec.get("static"), "spec.static")
    if static:
        where = "spec.static.prefixes"
        prefixes = [text(p, where) for p in listing(static.get("prefixes"), where)]
        detail = f"static, prefixes {', '.join(prefixes) or 'none'}"
    else:
        inbound = text(spec.get("inboundCommunity"), "spec.inboundCommunity")
        outbound = text(spec.get("outboundCommunity"), "spec.outboundCommunity")
        detail = f"BGP, inbound community {inbound or '-'}, outbound community {outbound or '-'}"
    batch = Batch("External", name)
    key = f"ext.{name}"
    v.vrfs[key], v.targets[key] = _vrf(
        batch, b, key, "External", f"Hedgehog External {name} ({detail})"
    )
    return batch


def _external_attachment(b: Builder, obj: dict[str, Any], v: _Vpcs) -> Batch | None:
    name = obj_name(obj)
    spec = spec_of(obj)
    external = text(spec.get("external"), "spec.external", required=True)
    vrf = v.vrfs.get(f"ext.{external}")
    if vrf is None:
        raise Malformed("spec.external", f"unknown External {external!r}")
    connection = text(spec.get("connection"), "spec.connection", required=True)
    ports = _switch_ports(b, connection, ("external",), "spec.connection")
    if "static" in spec:
        static = mapping(spec["static"], "spec.static")
        address = interface_address(static.get("ip"), "spec.static.ip")
        peer = f"static, remote {text(static.get('remoteIP'), 'spec.static.remoteIP') or '-'}"
        vlan = static.get("vlan")
    else:
        switch = mapping(spec.get("switch"), "spec.switch")
        neighbor = mapping(spec.get("neighbor"), "spec.neighbor")
        address = interface_address(switch.get("ip"), "spec.switch.ip")
        peer = f"neighbor AS{neighbor.get('asn', '?')} {neighbor.get('ip', '?')}"
        vlan = switch.get("vlan")
    if not address:
        return None
    batch = Batch("ExternalAttachment", name)
    batch.add(
        "ip_address",
        "spec.switch.ip",
        vrf=vrf,
        address=address,
        status="active",
        role=None,
        assigned_object=ports[0],
        description=f"ExternalAttachment {name}: {peer}, VLAN {vlan or 'none'}"[:DESCRIPTION_MAX],
    )
    return batch


def _vpc_peering(obj: dict[str, Any], v: _Vpcs) -> None:
    pairs = []
    for i, permit in enumerate(listing(spec_of(obj).get("permit"), "spec.permit")):
        vpcs = list(mapping(permit, f"spec.permit[{i}]"))
        unknown = [name for name in vpcs if name not in v.targets]
        if len(vpcs) != 2 or unknown:
            raise Malformed(f"spec.permit[{i}]", f"expected two known VPCs, got {vpcs!r}")
        pairs.append(vpcs)
    for a, b in pairs:  # only once every permit is good: never half a peering
        _peer(v, a, b)


def _external_peering(obj: dict[str, Any], v: _Vpcs) -> None:
    permit = mapping(spec_of(obj).get("permit"), "spec.permit")
    vpc = text(mapping(permit.get("vpc"), "spec.permit.vpc").get("name"), "spec.permit.vpc.name")
    external = text(
        mapping(permit.get("external"), "spec.permit.external").get("name"),
        "spec.permit.external.name",
    )
    if vpc not in v.targets:
        raise Malformed("spec.permit.vpc.name", f"unknown VPC {vpc!r}")
    if f"ext.{external}" not in v.targets:
        raise Malformed("spec.permit.external.name", f"unknown External {external!r}")
    _peer(v, vpc, f"ext.{external}")


def _peer(v: _Vpcs, a: str, b: str) -> None:
    v.imports.setdefault(a, set()).add(v.targets[b])
    v.imports.setdefault(b, set()).add(v.targets[a])


def _switch_ports(b: Builder, connection: str, kinds: tuple[str, ...], where: str) -> list[Ref]:
    """Switch-side interfaces of a Connection of one of `kinds`, as the wiring mapped them."""
    obj = next((c for c in b.inventory.items("Connection") if obj_name(c) == connection), None)
    spec = as_dict(as_dict(obj).get("spec"))
    kind = next((k for k in kinds if k in spec), None)
    if obj is None or kind is None:
        raise Malformed(where, f"no {' or '.join(kinds)} Connection {connection!r}")
    not_synced = Malformed(where, f"Connection {connection!r} was not synced (see its warning)")
    try:
        body = mapping(spec[kind], kind)
        links = [body.get("link")] if "link" in body else listing(body.get("links"), "links")
        ports = [
            mapping(mapping(link, "link").get("switch"), "switch").get("port") for link in links
        ]
    except Malformed:
        raise not_synced from None
    refs = [
        Ref("interface", (Ref("device", (str(p).partition("/")[0],)), str(p).partition("/")[2]))
        for p in ports
    ]
    if not refs or not all(b.has(ref) for ref in refs):
        raise not_synced
    return refs


def _attachments(b: Builder, v: _Vpcs) -> None:
    if not (b.inventory.complete("VPCAttachment") and b.inventory.complete("VPC")):
        # Unknown attachments, or unknown subnets they attach: leave VLANs as NetBox has them.
        for ref in [r for r in b.items if r.type in ("interface", "lag")]:
            b.drop(ref, *VLAN_FIELDS)
        return
    native: dict[Ref, Ref] = {}
    tagged: dict[Ref, set[Ref]] = {}
    for obj in sorted(b.inventory.items("VPCAttachment"), key=obj_name):
        map_object(b, "VPCAttachment", obj, lambda o: _attachment(b, o, v, native, tagged))
    for port in native.keys() | tagged.keys():
        mode = "tagged" if tagged.get(port) else "access"
        b.update(
            port,
            mode=mode,
            untagged_vlan=native.get(port),
            tagged_vlans=tuple(sorted(tagged.get(port, ()))),
        )


def _attachment(
    b: Builder, obj: dict[str, Any], v: _Vpcs, native: dict[Ref, Ref], tagged: dict[Ref, set[Ref]]
) -> None:
    spec = spec_of(obj)
    subnet = text(spec.get("subnet"), "spec.subnet", required=True)
    vlan = v.subnets.get(subnet if "/" in subnet else f"{subnet}/default")
    if vlan is None:
        raise Malformed("spec.subnet", f"unknown VPC subnet {subnet!r}")
    connection = text(spec.get("connection"), "spec.connection", required=True)
    ports = _switch_ports(b, connection, SERVER_CONNECTIONS, "spec.connection")
    if spec.get("nativeVLAN") is True:
        taken = [p for p in ports if native.get(p, vlan) != vlan]
        if taken:
            raise Malformed("spec.nativeVLAN", f"{taken[0]} already has a native VLAN")
        native.update(dict.fromkeys(ports, vlan))
    else:
        for port in ports:
            tagged.setdefault(port, set()).add(vlan)
