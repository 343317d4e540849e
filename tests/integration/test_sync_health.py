"""Agent status -> switch status and versions; LLDP neighbours -> cable status and mismatches.
The fabric is the one the three real Agent samples describe; the status is made by the test."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from tests.integration.conftest import Fabric, shared, state_only
from tests.integration.test_sync_wiring import serve, sync_ok

W = "wiring.githedgehog.com/v1beta1"
AGENTS = ("reg-leaf-3", "reg-leaf-4", "reg-spine-1")


def agent_fabric() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Wiring objects rebuilt from the Agents' own specs, and the Agents (status emptied)."""
    agents = [yaml.safe_load(shared(f"samples/agents/{a}.agent.yaml").read_text()) for a in AGENTS]
    switches: dict[str, Any] = {}
    connections: dict[str, Any] = {}
    for agent in agents:
        switches.update(agent["spec"]["switches"])
        connections.update(agent["spec"]["connections"])
        profile = agent["spec"]["switchProfile"]
    servers = sorted(
        {
            link["server"]["port"].split("/")[0]
            for c in connections.values()
            for body in c.values()
            for link in body.get("links", [body.get("link")])
            if link and "server" in link
        }
    )
    objs = [{"apiVersion": W, "kind": "SwitchProfile", "metadata": {"name": "vs"}, "spec": profile}]
    objs += [
        {"apiVersion": W, "kind": "Switch", "metadata": {"name": n}, "spec": s}
        for n, s in switches.items()
    ]
    objs += [
        {"apiVersion": W, "kind": "Server", "metadata": {"name": n}, "spec": {}} for n in servers
    ]
    objs += [
        {"apiVersion": W, "kind": "Connection", "metadata": {"name": n}, "spec": s}
        for n, s in connections.items()
    ]
    for agent in agents:
        agent["status"] = {}
    return objs, agents


def links(objs: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """Every link as (device, port, peer device, peer port), both directions."""
    out = []
    for c in objs:
        if c["kind"] != "Connection":
            continue
        for body in c["spec"].values():
            for link in body.get("links", [body.get("link")]):
                ends = [e["port"].split("/", 1) for e in link.values() if "port" in e]
                if len(ends) == 2:
                    out += [(*ends[0], *ends[1]), (*ends[1], *ends[0])]
    return out


def status(
    agent: dict[str, Any], objs: list[dict[str, Any]], age: float = 20, applied: str = "True"
) -> dict[str, Any]:
    """A healthy Agent status: fresh heartbeat, versions, and the LLDP the wiring predicts."""
    name = agent["metadata"]["name"]
    nos = {p: i["nos"] for p, i in agent["spec"]["switchProfile"]["ports"].items()}
    switches = {o["metadata"]["name"] for o in objs if o["kind"] == "Switch"}
    interfaces: dict[str, Any] = {}
    for device, port, peer, peer_port in links(objs):
        if device == name:
            seen = nos.get(peer_port, peer_port) if peer in switches else peer_port
            interfaces[port] = {
                "oper": "up",
                "lldpNeighbors": [{"sysName": peer, "portID": seen, "portDescr": ""}],
            }
    beat = datetime.now(UTC) - timedelta(seconds=age)
    return {
        "lastHeartbeat": beat.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "version": "v0.96.2",
        "lastAppliedGen": agent["metadata"]["generation"],
        "conditions": [
            {
                "type": "Applied",
                "status": applied,
                "reason": "ApplySucceeded" if applied == "True" else "ApplyFailed",
                "message": "",
                "lastTransitionTime": beat.isoformat(),
            }
        ],
        "state": {
            "nos": {"softwareVersion": "4.5.0-Enterprise_Base", "serialNumber": f"SN-{name}"},
            "interfaces": interfaces,
        },
    }


def set_status(fabric: Fabric, agent: dict[str, Any], new: dict[str, Any]) -> None:
    agent = copy.deepcopy(agent)
    agent["status"] = new
    fabric.kube.replace(agent)


def devices(fabric: Fabric) -> dict[str, tuple[str, Any, Any, Any]]:
    return {
        d.name: (
            d.status.value,
            d.serial,
            d.custom_fields["hhsync_nos_version"],
            d.custom_fields["hhsync_agent_version"],
        )
        for d in fabric.api().dcim.devices.filter(site="dc1", role="spine")
    } | {
        d.name: (
            d.status.value,
            d.serial,
            d.custom_fields["hhsync_nos_version"],
            d.custom_fields["hhsync_agent_version"],
        )
        for d in fabric.api().dcim.devices.filter(site="dc1", role="server-leaf")
    }


def test_agent_status_heartbeats_and_lldp(fabric: Fabric) -> None:
    objs, agents = agent_fabric()
    serve(fabric, objs + agents)
    for agent in agents:
        set_status(fabric, agent, status(agent, objs))
    out = sync_ok(fabric)
    assert "skipped 0, conflicts 0" in out
    healthy = ("active", "", "4.5.0-Enterprise_Base", "v0.96.2")
    missing = ("offline", "", None, None)
    assert devices(fabric) == {
        "leaf-01": missing,
        "leaf-02": missing,
        "leaf-05": missing,
        "spine-02": missing,
        "leaf-03": ("active", "SN-leaf-03", *healthy[2:]),
        "leaf-04": ("active", "SN-leaf-04", *healthy[2:]),
        "spine-01": ("active", "SN-spine-01", *healthy[2:]),
    }
    cables = {c.label: c.status.value for c in fabric.api().dcim.cables.filter(site="dc1")}
    assert cables["server-07--unbundled--leaf-03"] == "connected"
    assert cables["spine-01--fabric--leaf-03"] == "connected"

    # Only the heartbeats advance: nothing is written.
    for agent in agents:
        set_status(fabric, agent, status(agent, objs, age=1))
    fabric.proxy.reset_log()
    assert "created 0, updated 0, deleted 0" in sync_ok(fabric)
    assert state_only(fabric)

    # A stale heartbeat flips the switch offline; a fresh one back to active.
    leaf3 = agents[0]
    set_status(fabric, leaf3, status(leaf3, objs, age=600))
    assert "updated 1," in sync_ok(fabric)
    assert devices(fabric)["leaf-03"][0] == "offline"
    set_status(fabric, leaf3, status(leaf3, objs, age=5))
    assert "updated 1," in sync_ok(fabric)
    assert devices(fabric)["leaf-03"][0] == "active"
    set_status(fabric, leaf3, status(leaf3, objs, applied="False"))
    sync_ok(fabric)
    assert devices(fabric)["leaf-03"][0] == "failed"

    # A mis-cabled link: leaf-03 sees server-05 where the wiring says server-07.
    bad = status(leaf3, objs)
    port = next(p for d, p, peer, _ in links(objs) if d == "leaf-03" and peer == "server-07")
    bad["state"]["interfaces"][port]["lldpNeighbors"] = [
        {"sysName": "server-05", "portID": "enp2s9", "portDescr": ""}
    ]
    set_status(fabric, leaf3, bad)
    result = fabric.cli("sync", "dc1", "--force", "--json")
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)["fabrics"]
    assert report["mismatches"] == [
        f"leaf-03 {port}: expected server-07 enp2s1, LLDP sees server-05 enp2s9"
    ]
    assert report["counts"]["mismatches"] == 1
    cable = next(
        c
        for c in fabric.api().dcim.cables.filter(site="dc1")
        if c.label == "server-07--unbundled--leaf-03"
    )
    assert (cable.status.value, cable.description) == (
        "planned",
        f"LLDP on leaf-03 {port} sees server-05 enp2s9",
    )
