"""NetBox contents of a site as plain sets, and the same sets computed straight from YAML.

The expectation is written independently of hhsync's mapping: it walks each Connection's links
generically (every mapping with a `port` is an end) instead of using hhsync's per-type tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pynetbox

LAG_TYPES = {"bundled", "eslag", "mclag"}


@dataclass
class Contents:
    devices: dict[str, str] = field(default_factory=dict)  # name -> role slug
    interfaces: dict[str, set[str]] = field(default_factory=dict)  # device -> names
    lags: dict[str, set[str]] = field(default_factory=dict)  # "dev:lag" -> member "dev:port"
    cables: dict[frozenset[str], str] = field(default_factory=dict)  # {"dev:port", ..} -> label
    ips: dict[str, str | None] = field(default_factory=dict)  # address -> "dev:port"
    primary: dict[str, str] = field(default_factory=dict)  # device -> primary IPv4


def read(api: pynetbox.api, site: str = "dc1") -> Contents:
    c = Contents()
    if api.dcim.sites.get(slug=site) is None:
        return c
    for d in api.dcim.devices.filter(site=site):
        c.devices[d.name] = d.role.slug
        c.interfaces[d.name] = set()
        if d.primary_ip4:
            c.primary[d.name] = d.primary_ip4.address
    for i in api.dcim.interfaces.filter(site=site):
        c.interfaces[i.device.name].add(i.name)
        if i.type.value == "lag":
            c.lags.setdefault(f"{i.device.name}:{i.name}", set())
        if i.lag:
            c.lags.setdefault(f"{i.device.name}:{i.lag.name}", set()).add(
                f"{i.device.name}:{i.name}"
            )
    for cable in api.dcim.cables.filter(site=site):
        ends = [f"{t.object.device.name}:{t.object.name}" for t in cable.a_terminations] + [
            f"{t.object.device.name}:{t.object.name}" for t in cable.b_terminations
        ]
        c.cables[frozenset(ends)] = cable.label
    names = set(c.devices)
    vrf = api.ipam.vrfs.get(name=site)  # the fabric's underlay VRF (fabric and site share names)
    for ip in api.ipam.ip_addresses.filter(vrf_id=vrf.id) if vrf else ():
        on = ip.assigned_object
        if on is None or (getattr(on, "device", None) and on.device.name in names):
            c.ips[ip.address] = f"{on.device.name}:{on.name}" if on else None
    return c


def expected(objects: list[dict[str, Any]]) -> Contents:
    """What NetBox should hold for these Hedgehog objects (wiring only)."""
    c = Contents()
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for o in objects:
        by_kind.setdefault(o["kind"], []).append(o)
    for sw in by_kind.get("Switch", []):
        name, spec = sw["metadata"]["name"], sw.get("spec") or {}
        c.devices[name] = spec["role"]
        c.interfaces[name] = set()
        if spec.get("ip"):
            c.interfaces[name].add("M1")
            c.ips[spec["ip"]] = f"{name}:M1"
            c.primary[name] = spec["ip"]
    for kind, role in (("Server", "server"), ("Gateway", "gateway")):
        for o in by_kind.get(kind, []):
            c.devices[o["metadata"]["name"]] = role
            c.interfaces[o["metadata"]["name"]] = set()
    for conn in by_kind.get("Connection", []):
        name = conn["metadata"]["name"]
        [(kind, body)] = conn["spec"].items()
        links = (
            [body["link"]]
            if "link" in body
            else [
                link for key in ("links", "peerLinks", "sessionLinks") for link in body.get(key, [])
            ]
        )
        for link in links:
            ends = [end for end in link.values() if isinstance(end, dict) and "port" in end]
            known = []
            for end in ends:
                device, port = end["port"].split("/", 1)
                if device not in c.devices:
                    continue
                c.interfaces[device].add(port)
                known.append(f"{device}:{port}")
                if end.get("ip"):
                    c.ips[end["ip"]] = f"{device}:{port}"
                if kind in LAG_TYPES and c.devices[device] == "server":
                    c.interfaces[device].add(name)
                    c.lags.setdefault(f"{device}:{name}", set()).add(f"{device}:{port}")
            if len(known) == 2:
                c.cables[frozenset(known)] = name
    return c
