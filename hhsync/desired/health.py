"""Agent status -> switch status, versions and heartbeat; LLDP neighbours -> cable status.

Device status: `offline` when the Agent's heartbeat is missing or older than `heartbeat_stale`,
else `failed` when its Applied condition is False for a reason other than ApplyPending, else
`active`. The heartbeat is stored but never compared on its own (a `soft` field), so advancing
heartbeats cause no writes; it rides along with the next real change.

Cables: where a switch's Agent reports interface state, a cable is `connected` when every such
switch end sees the expected peer over LLDP, and `planned` otherwise, with the mismatch in its
description and in the run's list of cabling mismatches. Without Agents, status is left alone.
"""

from __future__ import annotations

from typing import Any

from hhsync.desired import Builder, Mismatch
from hhsync.desired.wiring import SWITCH_ROLES, as_dict, obj_name
from hhsync.model import Ref
from hhsync.syncstate import parse_time


def build(b: Builder) -> None:
    if not b.inventory.complete("Agent"):
        _leave_alone(b)
        return
    agents = {obj_name(a): a for a in b.inventory.items("Agent") if isinstance(a, dict)}
    switches = {
        ref.key[0]: item
        for ref, item in b.items.items()
        if ref.type == "device" and item.attrs["role"].key[0] in SWITCH_ROLES
    }
    for name, item in switches.items():
        status = as_dict(agents.get(name, {}).get("status"))
        if name in agents and not isinstance(agents[name].get("status"), dict | None):
            b.skip("Agent", name, "status", "not a mapping")
        _device(b, item.ref, item.attrs, status)
    profiles = {name: _nos_names(b, item.attrs) for name, item in switches.items()}
    lldp = {name: _lldp(agents.get(name)) for name in switches}
    for ref in [r for r in b.items if r.type == "cable"]:
        _cable(b, ref, lldp, profiles)


def _leave_alone(b: Builder) -> None:
    """Without Agents, what only they give stays as NetBox has it: a switch's serial when its
    Switch object names none, and the LLDP findings in cable descriptions."""
    for ref, item in list(b.items.items()):
        if ref.type == "device" and item.attrs["role"].key[0] in SWITCH_ROLES:
            if not item.attrs.get("serial"):
                b.drop(ref, "serial")
        elif ref.type == "cable":
            b.drop(ref, "description")


def _device(b: Builder, ref: Ref, attrs: Any, status: dict[str, Any]) -> None:
    heartbeat = parse_time(status.get("lastHeartbeat"))
    stale = heartbeat is None or (b.now - heartbeat).total_seconds() >= b.fabric.heartbeat_stale
    failed = any(
        c.get("type") == "Applied"
        and c.get("status") == "False"
        and c.get("reason") != "ApplyPending"
        for c in _list(status.get("conditions"))
        if isinstance(c, dict)
    )
    nos = as_dict(as_dict(status.get("state")).get("nos"))
    serial = attrs["serial"] or _string(nos.get("serialNumber"))[:50]
    generation = status.get("lastAppliedGen")
    b.update(
        ref,
        status="offline" if stale else "failed" if failed else "active",
        serial=serial,
        hhsync_nos_version=_string(nos.get("softwareVersion")) or None,
        hhsync_agent_version=_string(status.get("version")) or None,
        hhsync_applied_generation=generation
        if isinstance(generation, int) and not isinstance(generation, bool)
        else None,
        hhsync_heartbeat=heartbeat.strftime("%Y-%m-%dT%H:%M:%SZ") if heartbeat else None,
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _lldp(agent: Any) -> dict[str, list[dict[str, Any]]] | None:
    """LLDP neighbours by port, or None when the Agent reports no interface state at all."""
    state = as_dict(as_dict(as_dict(agent).get("status")).get("state"))
    interfaces = as_dict(state.get("interfaces"))
    if not interfaces:
        return None
    return {
        port: [n for n in _list(as_dict(info).get("lldpNeighbors")) if isinstance(n, dict)]
        for port, info in interfaces.items()
    }


def _nos_names(b: Builder, attrs: Any) -> dict[str, str]:
    """SwitchProfile port -> NOS name (E1/1 -> Ethernet0): peers may report either."""
    profile = next(
        (p for p in b.inventory.items("SwitchProfile") if obj_name(p) == attrs["hhsync_profile"]),
        None,
    )
    ports = as_dict(as_dict(as_dict(profile).get("spec")).get("ports"))
    return {
        port: str(info["nos"])
        for port, info in ports.items()
        if isinstance(info, dict) and info.get("nos")
    }


def _cable(
    b: Builder,
    ref: Ref,
    lldp: dict[str, dict[str, list[dict[str, Any]]] | None],
    profiles: dict[str, dict[str, str]],
) -> None:
    ends = [(end.key[0].key[0], end.key[1]) for end in ref.key]
    problems = []
    checked = False
    for (device, port), (peer, peer_port) in (ends, ends[::-1]):
        neighbours = lldp.get(device)
        if neighbours is None:
            continue
        checked = True
        names = {peer_port, profiles.get(peer, {}).get(peer_port, peer_port)}
        seen = neighbours.get(port, [])
        if not any(_matches(n, peer, names) for n in seen):
            shown = (
                f"{seen[0].get('sysName', '?')} {seen[0].get('portID', '?')}" if seen else "nothing"
            )
            b.mismatches.append(Mismatch(device, port, f"{peer} {peer_port}", shown))
            problems.append(f"LLDP on {device} {port} sees {shown}")
    if checked:
        b.update(
            ref,
            status="planned" if problems else "connected",
            description="; ".join(problems)[:200],
        )


def _matches(neighbour: dict[str, Any], device: str, ports: set[str]) -> bool:
    name = _string(neighbour.get("sysName")).split(".")[0]
    port = {_string(neighbour.get("portID")), _string(neighbour.get("portDescr"))}
    return name == device and bool(port & ports)
