"""VPCs, namespaces, peerings, externals and attachments into the real NetBox, exactly."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.integration import ipam
from tests.integration.conftest import Fabric, shared, state_only
from tests.integration.test_sync_wiring import objects, serve, sync_ok

W = "wiring.githedgehog.com/v1beta1"


def test_mesh_sample_vpcs_sync_exactly(fabric: Fabric) -> None:
    objs = objects(shared("samples/wiring/mesh-vlab.derived-from-agents.yaml"))
    serve(fabric, objs)
    assert "skipped 0, conflicts 0" in sync_ok(fabric)
    got = ipam.read(fabric.api())
    assert got == ipam.expected(objs)
    assert got.ports["leaf-01:E1/1"] == ("tagged", None, (1001,))
    assert got.vrfs["dc1/vpc-03"] == ({"dc1:ext.ext-bgp-01"}, {"dc1:vpc-03"})
    api = fabric.api()
    external_ip = api.ipam.ip_addresses.get(address="100.1.10.1/24")
    assert (external_ip.vrf.name, external_ip.assigned_object.name) == (
        "dc1/ext.ext-bgp-01",
        "E1/1",
    )
    assert external_ip.description == (
        "ExternalAttachment leaf-03--ext-bgp-01: neighbor AS64102 100.1.10.6, VLAN 10"
    )
    fabric.proxy.reset_log()
    assert "created 0, updated 0, deleted 0" in sync_ok(fabric)
    assert state_only(fabric)


def docs_fabric() -> list[dict[str, Any]]:
    """The VPC examples of the docs, plus the devices and connections they refer to."""
    docs = objects(shared("samples/objects/vpcs.docs.yaml"))
    seen, vpcs = set(), []
    for o in docs:  # the docs show several variants of one peering name; keep the first
        if (o["kind"], o["metadata"]["name"]) not in seen:
            seen.add((o["kind"], o["metadata"]["name"]))
            vpcs.append(o)
    wiring: list[dict[str, Any]] = (
        [
            {
                "apiVersion": W,
                "kind": "Switch",
                "metadata": {"name": n},
                "spec": {"role": "server-leaf", "profile": "vs"},
            }
            for n in ("leaf-01", "s5248-01", "s5248-02")
        ]
        + [
            {"apiVersion": W, "kind": "Server", "metadata": {"name": n}, "spec": {}}
            for n in ("server-01", "server-02", "server-1")
        ]
        + [
            {
                "apiVersion": W,
                "kind": "Connection",
                "metadata": {"name": f"server-0{i}--unbundled--leaf-01"},
                "spec": {
                    "unbundled": {
                        "link": {
                            "server": {"port": f"server-0{i}/eth1"},
                            "switch": {"port": f"leaf-01/E1/{i}"},
                        }
                    }
                },
            }
            for i in (1, 2)
        ]
        + [
            {
                "apiVersion": W,
                "kind": "Connection",
                "metadata": {"name": "server-1--eslag--s5248-01--s5248-02"},
                "spec": {
                    "eslag": {
                        "links": [
                            {
                                "server": {"port": "server-1/eth1"},
                                "switch": {"port": "s5248-01/E1/1"},
                            },
                            {
                                "server": {"port": "server-1/eth2"},
                                "switch": {"port": "s5248-02/E1/1"},
                            },
                        ]
                    }
                },
            }
        ]
    )
    return wiring + vpcs


@pytest.mark.parametrize("variant", ["vpc-1", "vpc-01"])
def test_docs_vpc_examples_sync_exactly(fabric: Fabric, variant: str) -> None:
    # The docs' examples are two fabrics (both use VLAN 1001): vpc-1 with every subnet option,
    # and vpc-01/vpc-02 with DHCP relay and a peering.
    names = {
        "vpc-1": {"vpc-1", "vpc-1-server-1--eslag--s5248-01--s5248-02", "vpc-1--vpc-2"},
        "vpc-01": {"vpc-01", "vpc-02", "server-01--vpc-01", "server-02--vpc-02", "vpc-01--vpc-02"},
    }[variant]
    vpc_kinds = ("VPC", "VPCAttachment", "VPCPeering")
    objs = [
        o for o in docs_fabric() if o["kind"] not in vpc_kinds or o["metadata"]["name"] in names
    ]
    serve(fabric, objs)
    result = fabric.cli("sync", "dc1", "--force")
    assert result.exit_code == 0, result.output
    usable = objs
    if variant == "vpc-1":  # its peering names a vpc-2 the examples never define
        assert result.stderr == (
            "hhsync: warning: dc1: skipped VPCPeering vpc-1--vpc-2: spec.permit[0]: expected two "
            "known VPCs, got ['vpc-1', 'vpc-2']\n"
        )
        usable = [o for o in objs if o["metadata"]["name"] != "vpc-1--vpc-2"]
    else:
        assert result.stderr == ""
    got = ipam.read(fabric.api())
    assert got == ipam.expected(usable)
    assert sorted(o["metadata"]["name"] for o in usable if o["kind"] == "VPC") == (
        ["vpc-1"] if variant == "vpc-1" else ["vpc-01", "vpc-02"]
    )


def test_deleting_a_vpc_or_an_attachment_removes_exactly_its_objects(fabric: Fabric) -> None:
    objs = objects(shared("samples/wiring/mesh-vlab.derived-from-agents.yaml"))
    serve(fabric, objs)
    sync_ok(fabric)
    fabric.kube.remove("VPCAttachment", "server-05--unbundled--leaf-03--vpc-03--subnet-01")
    fabric.kube.remove("VPCAttachment", "server-03--unbundled--leaf-01--vpc-02--subnet-01")
    fabric.kube.remove("VPCAttachment", "server-04--bundled--leaf-02--vpc-02--subnet-01")
    fabric.kube.remove("VPCPeering", "vpc-01--vpc-02")
    fabric.kube.remove("VPC", "vpc-02")
    dry = fabric.cli("sync", "dc1", "--dry-run")
    rows = [" ".join(line.split()) for line in dry.stdout.splitlines()[1:-1]]
    assert rows == [
        "delete ip address dc1/vpc-02 10.0.2.1/24",
        "delete ip range dc1/vpc-02 10.0.2.2/24 10.0.2.255/24",
        "delete prefix dc1/vpc-02 10.0.2.0/24",
        "delete vlan dc1-default 1002",
        "delete vrf dc1/vpc-02",
        "delete route target dc1:vpc-02",
        "update vrf dc1/vpc-01 import_targets: [dc1:vpc-02] -> []",
        "update interface leaf-01 E1/3 mode: tagged -> -; tagged_vlans: [dc1-default 1002] -> []",
        "update interface leaf-02 E1/3 mode: tagged -> -; tagged_vlans: [dc1-default 1002] -> []",
        "update interface leaf-02 E1/4 mode: tagged -> -; tagged_vlans: [dc1-default 1002] -> []",
        "update interface leaf-03 E1/2 mode: tagged -> -; tagged_vlans: [dc1-default 1003] -> []",
    ]
    sync_ok(fabric)
    remaining = [
        o
        for o in objs
        if o["metadata"]["name"]
        not in {
            "server-05--unbundled--leaf-03--vpc-03--subnet-01",
            "vpc-01--vpc-02",
            "vpc-02",
            "server-03--unbundled--leaf-01--vpc-02--subnet-01",
            "server-04--bundled--leaf-02--vpc-02--subnet-01",
        }
    ]
    assert ipam.read(fabric.api()) == ipam.expected(remaining)
    assert "created 0, updated 0, deleted 0" in sync_ok(fabric)


def test_attachments_not_listed_leave_interface_vlans_alone(fabric: Fabric) -> None:
    objs = objects(shared("samples/wiring/mesh-vlab.derived-from-agents.yaml"))
    serve(fabric, copy.deepcopy(objs))
    sync_ok(fabric)
    fabric.kube.remove_crd("vpc.githedgehog.com", "vpcattachments")
    result = fabric.cli("sync", "dc1", "--force")
    assert result.exit_code == 1  # a required kind is missing
    assert ipam.read(fabric.api()) == ipam.expected(objs)
