"""Wiring kinds -> desired NetBox items, built purely from plain objects."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hhsync.config import FabricConfig
from hhsync.desired import Desired, Root, build_desired
from hhsync.kube.source import Inventory
from hhsync.model import Ref

FABRIC = FabricConfig(name="dc1", site="dc1", source=Path("."))
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
W = "wiring.githedgehog.com/v1beta1"
WIRING_KINDS = ("Switch", "Server", "Connection", "SwitchProfile", "SwitchGroup", "VLANNamespace")


def obj(kind: str, name: str, spec: Any) -> dict[str, Any]:
    return {"apiVersion": W, "kind": kind, "metadata": {"name": name}, "spec": spec}


def switch(name: str, role: str = "server-leaf", **spec: Any) -> dict[str, Any]:
    return obj("Switch", name, {"role": role, "profile": "vs", **spec})


def link(server: str, sw: str) -> dict[str, Any]:
    return {"server": {"port": server}, "switch": {"port": sw}}


def build(*objects: dict[str, Any]) -> Desired:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for o in objects:
        by_kind.setdefault(o["kind"], []).append(o)
    served = dict.fromkeys(WIRING_KINDS, W)
    return build_desired(Inventory({k: tuple(v) for k, v in by_kind.items()}, served), FABRIC, NOW)


def dev(name: str) -> Ref:
    return Ref("device", (name,))


def iface(device: str, name: str, kind: str = "interface") -> Ref:
    return Ref(kind, (dev(device), name))


def of_type(d: Desired, type_name: str) -> dict[Ref, dict[str, Any]]:
    """The items of a type; their NetBox owner, the same on all, is tested on its own."""
    return {
        ref: {k: v for k, v in item.attrs.items() if k != "owner"}
        for ref, item in d.items.items()
        if ref.type == type_name
    }


def test_every_owned_object_has_the_fabric_as_its_netbox_owner() -> None:
    d = build(switch("leaf-01", ip="172.30.0.7/21"), *SERVERS)
    owner = Ref("owner", ("hhsync/dc1",))
    assert d.items[owner].attrs == {"name": "hhsync/dc1", "group": Ref("owner_group", ("hhsync",))}
    assert d.items[Ref("owner_group", ("hhsync",))].attrs == {"name": "hhsync"}
    owners = {ref.type: item.attrs.get("owner") for ref, item in d.items.items()}
    assert owners == {
        "owner_group": None,
        "owner": None,
        "site": None,
        "vrf": owner,
        "manufacturer": None,
        "device_type": None,
        "device_role": None,
        "device": owner,
        "interface": owner,
        "ip_address": owner,
    }


SERVERS = [obj("Server", "srv-1", {"description": "host 1"})]


def test_switch_device_management_ip_and_custom_fields() -> None:
    d = build(
        switch(
            "leaf-01",
            asn=65101,
            ip="172.30.0.7/21",
            protocolIP="172.30.8.0/32",
            vtepIP="172.30.12.0/32",
            description="VS-01",
            boot={"serial": "SN1"},
            redundancy={"group": "eslag-1", "type": "eslag"},
            groups=["b", "a"],
        )
    )
    fabric_vrf = Ref("vrf", ("dc1",))
    mgmt_ip = Ref("ip_address", (fabric_vrf, "172.30.0.7/21"))
    assert of_type(d, "device") == {
        dev("leaf-01"): {
            "name": "leaf-01",
            "site": Ref("site", ("dc1",)),
            "role": Ref("device_role", ("server-leaf",)),
            "device_type": Ref("device_type", ("hedgehog-switch",)),
            "platform": None,
            "serial": "SN1",
            "description": "VS-01",
            "hhsync_profile": "vs",
            "hhsync_asn": 65101,
            "hhsync_protocol_ip": "172.30.8.0/32",
            "hhsync_vtep_ip": "172.30.12.0/32",
            "hhsync_redundancy": "eslag:eslag-1",
            "hhsync_groups": "a,b",
            "primary_ip4": mgmt_ip,
            "primary_ip6": None,
        }
    }
    assert of_type(d, "interface")[iface("leaf-01", "M1")]["mgmt_only"] is True
    assert of_type(d, "ip_address") == {
        mgmt_ip: {
            "vrf": fabric_vrf,
            "address": "172.30.0.7/21",
            "status": "active",
            "role": None,
            "assigned_object": iface("leaf-01", "M1"),
            "description": "management",
        }
    }
    assert d.skipped == ()


def test_eslag_makes_a_server_lag_with_members_and_one_cable_per_link() -> None:
    conn = obj(
        "Connection",
        "srv-1--eslag--leaf-01--leaf-02",
        {
            "eslag": {
                "mtu": 9000,
                "links": [
                    link("srv-1/enp2s1", "leaf-01/E1/1"),
                    link("srv-1/enp2s2", "leaf-02/E1/1"),
                ],
            }
        },
    )
    d = build(switch("leaf-01"), switch("leaf-02"), *SERVERS, conn)
    lag = iface("srv-1", "srv-1--eslag--leaf-01--leaf-02", "lag")
    interfaces = of_type(d, "interface")
    assert {str(r): a["lag"] for r, a in interfaces.items()} == {
        "srv-1 enp2s1": lag,
        "srv-1 enp2s2": lag,
        "leaf-01 E1/1": None,
        "leaf-02 E1/1": None,
    }
    assert {str(r): a["mtu"] for r, a in interfaces.items()} == {
        "srv-1 enp2s1": None,
        "srv-1 enp2s2": None,
        "leaf-01 E1/1": 9000,
        "leaf-02 E1/1": 9000,
    }
    assert list(of_type(d, "lag")) == [lag]
    assert {str(r): a["label"] for r, a in of_type(d, "cable").items()} == {
        "leaf-01 E1/1 <-> srv-1 enp2s1": "srv-1--eslag--leaf-01--leaf-02",
        "leaf-02 E1/1 <-> srv-1 enp2s2": "srv-1--eslag--leaf-01--leaf-02",
    }


def test_fabric_link_ips_and_breakout_ports() -> None:
    conn = obj(
        "Connection",
        "spine-01--fabric--leaf-01",
        {
            "fabric": {
                "links": [
                    {
                        "spine": {"port": "spine-01/E1/1/2", "ip": "172.30.30.0/31"},
                        "leaf": {"port": "leaf-01/E1/18", "ip": "172.30.30.1/31"},
                    }
                ]
            }
        },
    )
    d = build(switch("spine-01", "spine"), switch("leaf-01"), conn)
    ips = of_type(d, "ip_address")
    assert {a["address"]: str(a["assigned_object"]) for a in ips.values()} == {
        "172.30.30.0/31": "spine-01 E1/1/2",
        "172.30.30.1/31": "leaf-01 E1/18",
    }
    assert [str(r) for r in of_type(d, "cable")] == ["leaf-01 E1/18 <-> spine-01 E1/1/2"]


def test_gateway_without_gateway_object_and_external_get_no_cable() -> None:
    gw = obj(
        "Connection",
        "leaf-01--gateway--gw-1",
        {
            "gateway": {
                "links": [
                    {
                        "switch": {"port": "leaf-01/E1/8", "ip": "10.9.0.0/31"},
                        "gateway": {"port": "gw-1/enp2s1", "ip": "10.9.0.1/31"},
                    }
                ]
            }
        },
    )
    ext = obj(
        "Connection",
        "leaf-01--external",
        {"external": {"link": {"switch": {"port": "leaf-01/E1/9"}}}},
    )
    d = build(switch("leaf-01"), gw, ext)
    assert of_type(d, "cable") == {}
    assert {str(r): a["description"] for r, a in of_type(d, "interface").items()} == {
        "leaf-01 E1/8": "leaf-01--gateway--gw-1",
        "leaf-01 E1/9": "leaf-01--external",
    }
    assert [a["address"] for a in of_type(d, "ip_address").values()] == ["10.9.0.0/31"]


def test_switch_profile_gives_type_platform_and_port_types() -> None:
    profile = obj(
        "SwitchProfile",
        "dell-s5248f-on",
        {
            "displayName": "Dell S5248F-ON",
            "nosType": "sonic-bcm-base",
            "ports": {"E1/1": {"profile": "SFP28-25G"}, "E1/55": {"profile": "QSFP28-100G"}},
            "portProfiles": {
                "SFP28-25G": {"speed": {"default": "25G"}},
                "QSFP28-100G": {"breakout": {"default": "1x100G"}},
            },
        },
    )
    sw = switch("leaf-01", profile="dell-s5248f-on", portBreakouts={"E1/55": "4x25G"})
    conn = obj("Connection", "c", {"unbundled": {"link": link("srv-1/eth0", "leaf-01/E1/1")}})
    conn2 = obj("Connection", "d", {"unbundled": {"link": link("srv-1/eth1", "leaf-01/E1/55/2")}})
    d = build(profile, sw, *SERVERS, conn, conn2)
    leaf = of_type(d, "device")[dev("leaf-01")]
    assert (leaf["device_type"], leaf["platform"]) == (
        Ref("device_type", ("dell-s5248f-on",)),
        Ref("platform", ("sonic-bcm-base",)),
    )
    assert of_type(d, "device_type")[leaf["device_type"]]["manufacturer"] == Ref(
        "manufacturer", ("dell",)
    )
    types = {str(r): a["type"] for r, a in of_type(d, "interface").items()}
    assert types == {
        "leaf-01 E1/1": "25gbase-x-sfp28",
        "leaf-01 E1/55/2": "25gbase-x-sfp28",
        "srv-1 eth0": "other",
        "srv-1 eth1": "other",
    }


@pytest.mark.parametrize(
    ("connection", "message"),
    [
        (
            {"unbundled": {"link": link("srv-1/enp2s1", "nope/E1/1")}},
            "Connection c: spec.unbundled.link.switch.port: unknown switch 'nope'",
        ),
        (
            {"unbundled": {"link": link("srv-1", "leaf-01/E1/1")}},
            "Connection c: spec.unbundled.link.server.port: expected <device>/<port>, got 'srv-1'",
        ),
        (
            {"unbundled": {"link": link("leaf-01/E1/2", "leaf-01/E1/1")}},
            "Connection c: spec.unbundled.link.server.port: 'leaf-01' is a switch, not a server",
        ),
        (
            {
                "bundled": {
                    "links": [link("srv-1/a", "leaf-01/E1/1"), link("srv-1/b", "leaf-01/E1/1")]
                }
            },
            "Connection c: spec.bundled.links[1].switch.port: port leaf-01/E1/1 is used twice",
        ),
        (
            {"unbundled": {}, "bundled": {}},
            "Connection c: spec: expected exactly one connection type, found unbundled, bundled",
        ),
        ({"fabric": {"links": "x"}}, "Connection c: spec.fabric.links: not a list"),
        (
            {
                "fabric": {
                    "links": [
                        {
                            "spine": {"port": "leaf-01/E1/5", "ip": "300.1.1.1/31"},
                            "leaf": {"port": "leaf-01/E1/6"},
                        }
                    ]
                }
            },
            "Connection c: spec.fabric.links[0].spine.ip: not an IP address with prefix length: "
            "'300.1.1.1/31'",
        ),
        ({"eslag": {"links": [], "mtu": "big"}}, "Connection c: spec.eslag.links: no links"),
    ],
)
def test_malformed_connections_are_skipped_whole(connection: Any, message: str) -> None:
    d = build(switch("leaf-01"), *SERVERS, obj("Connection", "c", connection))
    assert [str(s) for s in d.skipped] == [message]
    assert set(of_type(d, "interface")) == set()  # nothing half-made
    assert of_type(d, "cable") == {} and of_type(d, "lag") == {}


def test_second_connection_on_a_used_port_is_skipped() -> None:
    a = obj("Connection", "a", {"unbundled": {"link": link("srv-1/eth0", "leaf-01/E1/1")}})
    b = obj("Connection", "b", {"unbundled": {"link": link("srv-1/eth1", "leaf-01/E1/1")}})
    d = build(switch("leaf-01"), *SERVERS, a, b)
    assert [str(s) for s in d.skipped] == [
        "Connection b: spec.unbundled.link.switch.port: interface leaf-01 E1/1 is already "
        "defined by another object"
    ]
    assert [str(r) for r in of_type(d, "cable")] == ["leaf-01 E1/1 <-> srv-1 eth0"]


@pytest.mark.parametrize(
    ("sw", "message"),
    [
        (
            switch("leaf-01", "router"),
            "Switch leaf-01: spec.role: unknown role 'router' (one of "
            "spine, server-leaf, border-leaf, mixed-leaf, virtual-edge)",
        ),
        (obj("Switch", "leaf-01", "x"), "Switch leaf-01: spec: not a mapping"),
        (
            switch("x" * 65),
            f"Switch {'x' * 65}: metadata.name: longer than 64 characters (NetBox's limit)",
        ),
        (switch("leaf-01", asn=True), "Switch leaf-01: spec.asn: not an AS number: True"),
        (
            switch("leaf-01", ip="10.0.0.1"),
            "Switch leaf-01: spec.ip: not an IP address with prefix length: '10.0.0.1'",
        ),
    ],
)
def test_malformed_switches_are_skipped(sw: dict[str, Any], message: str) -> None:
    d = build(sw)
    assert [str(s) for s in d.skipped] == [message]
    assert of_type(d, "device") == {}


def test_deletes_are_blocked_for_types_whose_kinds_were_not_listed() -> None:
    inventory = Inventory({"Switch": (switch("leaf-01"),)}, {"Switch": W, "Server": W})
    d = build_desired(inventory, FABRIC, NOW)
    assert {"interface", "cable", "lag"} <= d.kept_types and "device" not in d.kept_types
    assert d.kept_roots == (Root("device", "role", Ref("device_role", ("gateway",))),)
