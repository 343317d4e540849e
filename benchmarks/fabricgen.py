"""Deterministic Hedgehog fabrics for benchmarks, in the real object shapes (../shared/hedgehog).

- ``generate("S")``: the repo's example fabric (examples/fabric/*.yaml).
- ``generate("M")``: 2 spines, 16 leaves in 8 ESLAG pairs, 128 dual-homed servers, 16 VPCs with
  2 subnets each, an attachment per server, 2 VPC peerings, an External on leaf-01 (~1,500
  NetBox objects).
- ``generate("L")``: 4 spines, 64 leaves, 1,024 servers, 64 VPCs (~12,000 NetBox objects).

Switches use profile ``vs`` without a SwitchProfile object, like wiring files do. Every spine is
linked to every leaf by 2 fabric links (/31 per side); every server has an ESLAG connection to its
leaf pair and is attached to one VPC subnet. ``mutate_one_percent`` changes about 1% of the
objects. ``python benchmarks/fabricgen.py [S,M,L]`` prints what each size maps to in NetBox.
"""

from __future__ import annotations

import copy
import ipaddress
import random
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
WIRING = "wiring.githedgehog.com/v1beta1"
VPC = "vpc.githedgehog.com/v1beta1"
UPLINK_BASE = 49  # leaf uplinks start at E1/49; server ports count up from E1/1
EXTERNAL_PORT = "leaf-01/E1/48"

Obj = dict[str, Any]


@dataclass(frozen=True)
class Shape:
    spines: int
    pairs: int  # ESLAG leaf pairs
    servers: int
    vpcs: int  # 2 subnets each


SIZES = {"M": Shape(2, 8, 128, 16), "L": Shape(4, 32, 1024, 64)}


def obj(api_version: str, kind: str, name: str, spec: Obj) -> Obj:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": spec}


def example_fabric() -> list[Obj]:
    """Size S: the repo's example fabric, objects of the default namespace."""
    docs = [
        d
        for path in sorted((ROOT / "examples" / "fabric").glob("*.yaml"))
        for d in yaml.safe_load_all(path.read_text())
    ]
    return [d for d in docs if d and d.get("metadata", {}).get("namespace", "default") == "default"]


def generate(size: str, *, seed: int = 0) -> list[Obj]:
    """The fabric of `size` (S, M or L); `seed` only changes which subnet each server joins."""
    if size == "S":
        return example_fabric()
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r} (S, M or L)")
    shape = SIZES[size]
    rng = random.Random(seed)
    objects = [
        obj(WIRING, "VLANNamespace", "default", {"ranges": [{"from": 1000, "to": 2999}]}),
        obj(VPC, "IPv4Namespace", "default", {"subnets": ["10.0.0.0/16"]}),
    ]
    objects += _switches(shape)
    objects += _fabric_links(shape)
    connections = _servers(shape, objects)
    objects += _vpcs(shape, connections, rng)
    return objects


def _ip(base: str, offset: int, suffix: str) -> str:
    return f"{ipaddress.ip_address(base) + offset}/{suffix}"


def _switches(shape: Shape) -> list[Obj]:
    out = [obj(WIRING, "SwitchGroup", f"eslag-{p + 1}", {}) for p in range(shape.pairs)]
    leaves = 2 * shape.pairs
    for i in range(shape.spines + leaves):
        spine = i < shape.spines
        name = f"spine-{i + 1:02d}" if spine else f"leaf-{i - shape.spines + 1:02d}"
        spec: Obj = {
            "role": "spine" if spine else "server-leaf",
            "profile": "vs",
            "description": f"bench {name}",
            "boot": {"mac": f"0c:20:12:fe:{i // 256:02x}:{i % 256:02x}"},
            "asn": 65100 if spine else 65100 + i - shape.spines + 1,
            "ip": _ip("172.30.0.10", i, "21"),
            "protocolIP": _ip("172.30.8.0", i, "32"),
            "vlanNamespaces": ["default"],
        }
        if spine:
            spec["redundancy"] = {}
        else:
            group = f"eslag-{(i - shape.spines) // 2 + 1}"
            spec["vtepIP"] = _ip("172.30.12.0", i, "32")
            spec["redundancy"] = {"group": group, "type": "eslag"}
            spec["groups"] = [group]
        out.append(obj(WIRING, "Switch", name, spec))
    return out


def _fabric_links(shape: Shape) -> list[Obj]:
    out, n = [], 0
    for s in range(shape.spines):
        for leaf in range(2 * shape.pairs):
            links = []
            for k in range(2):
                spine_ip, leaf_ip = (
                    _ip("172.30.128.0", 2 * n, "31"),
                    _ip("172.30.128.1", 2 * n, "31"),
                )
                links.append(
                    {
                        "spine": {
                            "port": f"spine-{s + 1:02d}/E1/{2 * leaf + k + 1}",
                            "ip": spine_ip,
                        },
                        "leaf": {
                            "port": f"leaf-{leaf + 1:02d}/E1/{UPLINK_BASE + 2 * s + k}",
                            "ip": leaf_ip,
                        },
                    }
                )
                n += 1
            name = f"spine-{s + 1:02d}--fabric--leaf-{leaf + 1:02d}"
            out.append(obj(WIRING, "Connection", name, {"fabric": {"links": links}}))
    return out


def _servers(shape: Shape, objects: list[Obj]) -> list[str]:
    """Add the servers and their ESLAG connections; returns the connection names."""
    per_pair = shape.servers // shape.pairs
    names = []
    for i in range(shape.servers):
        server = f"server-{i + 1:04d}"
        pair, port = divmod(i, per_pair)
        leaves = [f"leaf-{2 * pair + 1:02d}", f"leaf-{2 * pair + 2:02d}"]
        links = [
            {
                "server": {"port": f"{server}/enp2s{k + 1}"},
                "switch": {"port": f"{leaf}/E1/{port + 1}"},
            }
            for k, leaf in enumerate(leaves)
        ]
        name = f"{server}--eslag--{leaves[0]}--{leaves[1]}"
        names.append(name)
        objects.append(obj(WIRING, "Server", server, {"description": f"bench host {i + 1}"}))
        objects.append(obj(WIRING, "Connection", name, {"eslag": {"links": links, "mtu": 9000}}))
    return names


def _vpcs(shape: Shape, connections: list[str], rng: random.Random) -> list[Obj]:
    out = []
    subnets = []
    for v in range(shape.vpcs):
        vpc = f"vpc-{v + 1:02d}"
        spec: Obj = {"ipv4Namespace": "default", "vlanNamespace": "default", "subnets": {}}
        for s in range(2):
            n = 2 * v + s + 1
            net = f"10.0.{n}"
            spec["subnets"][f"subnet-{s + 1:02d}"] = {
                "subnet": f"{net}.0/24",
                "gateway": f"{net}.1",
                "vlan": 1000 + n,
                "dhcp": {"enable": True, "range": {"start": f"{net}.10", "end": f"{net}.250"}},
            }
            subnets.append(f"{vpc}/subnet-{s + 1:02d}")
        out.append(obj(VPC, "VPC", vpc, spec))
    order = list(range(len(connections)))
    rng.shuffle(order)
    for i, c in enumerate(order):
        subnet = subnets[i % len(subnets)]
        name = f"{connections[c].split('--')[0]}--{subnet.replace('/', '--')}"
        out.append(
            obj(VPC, "VPCAttachment", name, {"connection": connections[c], "subnet": subnet})
        )
    for a, b in (("vpc-01", "vpc-02"), ("vpc-03", "vpc-04")):
        out.append(obj(VPC, "VPCPeering", f"{a}--{b}", {"permit": [{a: {}, b: {}}]}))
    # An External on leaf-01 (real fabrics put them on server leaves too, see the mesh sample).
    ext = {"link": {"switch": {"port": EXTERNAL_PORT}}}
    out.append(obj(WIRING, "Connection", "leaf-01--external--edge", {"external": ext}))
    communities = {"inboundCommunity": "65102:5000", "outboundCommunity": "5000:65102"}
    out.append(obj(VPC, "External", "edge", {"ipv4Namespace": "default", **communities}))
    attach = {
        "connection": "leaf-01--external--edge",
        "external": "edge",
        "neighbor": {"asn": 65102, "ip": "100.100.0.6"},
        "switch": {"ip": "100.100.0.1/24", "vlan": 100},
    }
    out.append(obj(VPC, "ExternalAttachment", "leaf-01--edge", attach))
    permit = {
        "vpc": {"name": "vpc-01", "subnets": ["subnet-01"]},
        "external": {"name": "edge", "prefixes": [{"prefix": "0.0.0.0/0"}]},
    }
    out.append(obj(VPC, "ExternalPeering", "vpc-01--edge", {"permit": permit}))
    return out


# ------------------------------------------------------------------------------------------
# The 1% change


SERVER_CONNECTIONS = ("unbundled", "bundled", "eslag")


def _links(conn: Obj) -> list[Obj]:
    body = next(iter(conn["spec"].values()))
    return list(body.get("links") or [body["link"]])


def _port_names(value: Any) -> list[str]:
    """Every `port` value in a Connection spec."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in ([v] if k == "port" else _port_names(v))]
    if isinstance(value, list):
        return [p for v in value for p in _port_names(v)]
    return []


def _ports(objects: list[Obj]) -> dict[str, set[int]]:
    """Used E1/<n> port numbers per switch."""
    used: dict[str, set[int]] = {}
    for o in objects:
        for text in _port_names(o["spec"]) if o["kind"] == "Connection" else ():
            device, _, port = text.partition("/")
            if m := re.fullmatch(r"E1/(\d+)", port):
                used.setdefault(device, set()).add(int(m[1]))
    return used


def mutate_one_percent(objects: list[Obj], seed: int = 0) -> list[Obj]:
    """About 1% of the objects changed: servers removed with their connections and attachments,
    server links moved to free ports, descriptions changed, and a subnet added to a VPC."""
    rng = random.Random(seed)
    out = copy.deepcopy(objects)
    each = max(1, round(len(out) / 100) // 5)
    conns = [
        o for o in out if o["kind"] == "Connection" and next(iter(o["spec"])) in SERVER_CONNECTIONS
    ]
    picked = rng.sample(conns, min(len(conns), 2 * each))
    removed, moved = picked[:each], picked[each:]
    gone_servers = {_links(c)[0]["server"]["port"].split("/")[0] for c in removed}
    gone_conns = {c["metadata"]["name"] for c in removed}
    out = [
        o
        for o in out
        if not (o["kind"] == "Server" and o["metadata"]["name"] in gone_servers)
        and not (o["kind"] == "Connection" and o["metadata"]["name"] in gone_conns)
        and not (o["kind"] == "VPCAttachment" and o["spec"]["connection"] in gone_conns)
    ]
    used = _ports(out)
    for conn in moved:
        link = _links(conn)[0]["switch"]
        device = link["port"].split("/")[0]
        free = min(set(range(1, 128)) - used[device])
        used[device].add(free)
        link["port"] = f"{device}/E1/{free}"
    devices = [o for o in out if o["kind"] in ("Switch", "Server")]
    for o in rng.sample(devices, each):
        o["spec"]["description"] = f"{o['spec'].get('description', '')} (changed)".strip()
    vpc = next(o for o in out if o["kind"] == "VPC")
    _add_subnet(vpc, out)
    return out


def _add_subnet(vpc: Obj, objects: list[Obj]) -> None:
    subnets = [s for o in objects if o["kind"] == "VPC" for s in o["spec"]["subnets"].values()]
    taken = {ipaddress.ip_network(s["subnet"]) for s in subnets}
    net = next(
        n for n in ipaddress.ip_network("10.0.0.0/16").subnets(new_prefix=24) if n not in taken
    )
    hosts = list(net.hosts())
    vpc["spec"]["subnets"]["added"] = {
        "subnet": str(net),
        "gateway": str(hosts[0]),
        "vlan": max(s["vlan"] for s in subnets) + 1,
        "dhcp": {"enable": True, "range": {"start": str(hosts[9]), "end": str(hosts[99])}},
    }


# ------------------------------------------------------------------------------------------
# Self-check: what each size maps to, measured with hhsync's own pure desired-state builder


def desired_items(objects: list[Obj], fabric: str = "bench") -> Any:
    """hhsync's desired state for `objects` (every kind listed, no Agents or Gateways)."""
    from datetime import UTC, datetime

    from hhsync.config import FabricConfig
    from hhsync.desired import build_desired
    from hhsync.kube.kinds import KINDS
    from hhsync.kube.source import Inventory

    served = {k.kind: "v1beta1" for k in KINDS if not k.optional}
    by_kind: dict[str, list[Obj]] = {k: [] for k in served}
    for o in objects:
        by_kind[o["kind"]].append(o)
    inventory = Inventory({k: tuple(v) for k, v in by_kind.items()}, served)
    return build_desired(inventory, FabricConfig(fabric, fabric), datetime.now(UTC))


def describe(size: str) -> str:
    """What a size maps to in NetBox, and what its 1% change changes."""
    objects = generate(size)
    mutated = mutate_one_percent(objects)
    desired, after = desired_items(objects), desired_items(mutated)
    old, new = dict(desired.items), dict(after.items)
    changed = sum(1 for r in old.keys() & new.keys() if old[r].attrs != new[r].attrs)
    diff = f"+{len(new.keys() - old.keys())} -{len(old.keys() - new.keys())} ~{changed}"
    before = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    later = {(o["kind"], o["metadata"]["name"]): o for o in mutated}
    touched = len(before.keys() ^ later.keys()) + sum(
        1 for k in before.keys() & later.keys() if before[k] != later[k]
    )
    kinds = Counter(o["kind"] for o in objects)
    types = Counter(ref.type for ref in desired.items)
    return (
        f"{size}: {len(objects)} Hedgehog objects -> {len(desired.items)} NetBox objects, "
        f"{len(desired.skipped)} skipped; 1% change: {touched} Hedgehog objects, NetBox {diff}\n"
        f"   kinds: {dict(sorted(kinds.items()))}\n   NetBox: {dict(sorted(types.items()))}"
        + "".join(f"\n   skipped: {s}" for s in desired.skipped)
    )


if __name__ == "__main__":
    for size in (sys.argv[1] if len(sys.argv) > 1 else "S,M,L").split(","):
        print(describe(size))
