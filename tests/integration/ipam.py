"""NetBox IPAM contents of a fabric as plain sets, and the same computed straight from YAML
(independently of hhsync's mapping)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import pynetbox


@dataclass
class Ipam:
    vrfs: dict[str, tuple[set[str], set[str]]] = field(default_factory=dict)  # imports, exports
    vlan_group: tuple[str, list[list[int]]] | None = None
    vlans: dict[int, str] = field(default_factory=dict)  # vid -> name
    prefixes: dict[tuple[str, str], tuple[str, int | None]] = field(default_factory=dict)
    gateways: set[tuple[str, str]] = field(default_factory=set)  # (vrf, address)
    ranges: set[tuple[str, str, str]] = field(default_factory=set)
    ports: dict[str, tuple[str | None, int | None, tuple[int, ...]]] = field(default_factory=dict)


def read(api: pynetbox.api, fabric: str = "dc1") -> Ipam:
    ipam = Ipam()
    names = {}
    for vrf in api.ipam.vrfs.filter(cf_hhsync_fabric=fabric):
        names[vrf.id] = vrf.name
        ipam.vrfs[vrf.name] = (
            {t.name for t in vrf.import_targets},
            {t.name for t in vrf.export_targets},
        )
    for group in api.ipam.vlan_groups.filter(cf_hhsync_fabric=fabric):
        ipam.vlan_group = (group.name, [list(r) for r in group.vid_ranges])
        for vlan in api.ipam.vlans.filter(group_id=group.id):
            ipam.vlans[vlan.vid] = vlan.name
    for p in api.ipam.prefixes.filter(cf_hhsync_fabric=fabric):
        ipam.prefixes[(p.vrf.name, p.prefix)] = (p.status.value, p.vlan.vid if p.vlan else None)
    for ip in api.ipam.ip_addresses.filter(cf_hhsync_fabric=fabric, role="anycast"):
        ipam.gateways.add((ip.vrf.name, ip.address))
    for r in api.ipam.ip_ranges.filter(cf_hhsync_fabric=fabric):
        ipam.ranges.add((r.vrf.name, r.start_address, r.end_address))
    for i in api.dcim.interfaces.filter(cf_hhsync_fabric=fabric):
        if i.mode:
            untagged = i.untagged_vlan.vid if i.untagged_vlan else None
            tagged = tuple(sorted(v.vid for v in i.tagged_vlans))
            ipam.ports[f"{i.device.name}:{i.name}"] = (i.mode.value, untagged, tagged)
    return ipam


def expected(objects: list[dict[str, Any]], fabric: str = "dc1") -> Ipam:
    ipam = Ipam()
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for o in objects:
        by_kind.setdefault(o["kind"], []).append(o)
    name = {"vpc": lambda v: f"{fabric}/{v}", "ext": lambda e: f"{fabric}/ext.{e}"}
    rt = {"vpc": lambda v: f"{fabric}:{v}", "ext": lambda e: f"{fabric}:ext.{e}"}
    ipam.vrfs[fabric] = (set(), set())
    for ns in by_kind.get("VLANNamespace", []):
        ranges = sorted([r["from"], r["to"]] for r in ns["spec"]["ranges"])
        ipam.vlan_group = (f"{fabric}/{ns['metadata']['name']}", ranges)
    for ns in by_kind.get("IPv4Namespace", []):
        for subnet in ns["spec"]["subnets"]:
            ipam.prefixes[(fabric, subnet)] = ("container", None)
    for vpc in by_kind.get("VPC", []):
        v = vpc["metadata"]["name"]
        ipam.vrfs[name["vpc"](v)] = (set(), {rt["vpc"](v)})
        for s, subnet in vpc["spec"]["subnets"].items():
            net = ipaddress.ip_network(subnet["subnet"])
            ipam.vlans[subnet["vlan"]] = f"{v}/{s}"
            ipam.prefixes[(name["vpc"](v), str(net))] = ("active", subnet["vlan"])
            gateway = subnet.get("gateway") or str(net.network_address + 1)
            ipam.gateways.add((name["vpc"](v), f"{gateway}/{net.prefixlen}"))
            dhcp = subnet.get("dhcp") or {}
            if dhcp.get("enable"):
                r = dhcp.get("range") or {}
                start = r.get("start") or str(net.network_address + 1)
                end = r.get("end") or str(net.broadcast_address - 1)
                ipam.ranges.add(
                    (name["vpc"](v), f"{start}/{net.prefixlen}", f"{end}/{net.prefixlen}")
                )
    for ext in by_kind.get("External", []):
        ipam.vrfs[name["ext"](ext["metadata"]["name"])] = (
            set(),
            {rt["ext"](ext["metadata"]["name"])},
        )
    for peering in by_kind.get("VPCPeering", []):
        for permit in peering["spec"]["permit"]:
            a, b = list(permit)
            ipam.vrfs[name["vpc"](a)][0].add(rt["vpc"](b))
            ipam.vrfs[name["vpc"](b)][0].add(rt["vpc"](a))
    for peering in by_kind.get("ExternalPeering", []):
        vpc = peering["spec"]["permit"]["vpc"]["name"]
        ext = peering["spec"]["permit"]["external"]["name"]
        ipam.vrfs[name["vpc"](vpc)][0].add(rt["ext"](ext))
        ipam.vrfs[name["ext"](ext)][0].add(rt["vpc"](vpc))
    connections = {c["metadata"]["name"]: c["spec"] for c in by_kind.get("Connection", [])}
    tagged: dict[str, set[int]] = {}
    native: dict[str, int] = {}
    for att in by_kind.get("VPCAttachment", []):
        vpc, _, subnet = att["spec"]["subnet"].partition("/")
        vlan = next(o for o in by_kind["VPC"] if o["metadata"]["name"] == vpc)["spec"]["subnets"][
            subnet or "default"
        ]["vlan"]
        [(_, body)] = connections[att["spec"]["connection"]].items()
        links = [body["link"]] if "link" in body else body["links"]
        for link in links:
            port = link["switch"]["port"].replace("/", ":", 1)
            if att["spec"].get("nativeVLAN"):
                native[port] = vlan
            else:
                tagged.setdefault(port, set()).add(vlan)
    for port in native.keys() | tagged.keys():
        ipam.ports[port] = (
            "tagged" if tagged.get(port) else "access",
            native.get(port),
            tuple(sorted(tagged.get(port, ()))),
        )
    return ipam
