"""`hhsync sync` mirrors wiring into the real NetBox: exact contents, idempotence, changes,
hand-made objects, faults, and the dry-run."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from tests.integration.conftest import Fabric, golden, shared, state_only
from tests.integration.contents import expected, read
from tests.shared import ROOT


def objects(path: Path) -> list[dict[str, Any]]:
    docs = (
        [
            d
            for p in sorted(path.glob("*.yaml"))
            if path.is_dir()
            for d in yaml.safe_load_all(p.read_text())
        ]
        if path.is_dir()
        else list(yaml.safe_load_all(path.read_text()))
    )
    return [d for d in docs if d and d.get("metadata", {}).get("namespace", "default") == "default"]


def serve(fabric: Fabric, objs: list[dict[str, Any]]) -> None:
    for o in objs:
        fabric.kube.add(copy.deepcopy(o))


def sync_ok(fabric: Fabric, *args: str) -> str:
    """A forced sync (back-to-back runs would find the fabric fresh) that must succeed."""
    result = fabric.cli("sync", "dc1", "--force", *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_mesh_sample_syncs_exactly_and_second_sync_writes_nothing(fabric: Fabric) -> None:
    objs = objects(shared("samples/wiring/mesh-vlab.derived-from-agents.yaml"))
    serve(fabric, objs)
    out = sync_ok(fabric)
    assert out.startswith("dc1: created 115, updated 0, deleted 0, unchanged 1, skipped 0, ")
    assert read(fabric.api()) == expected(objs)
    fabric.proxy.reset_log()
    out = sync_ok(fabric)
    assert out.startswith("dc1: created 0, updated 0, deleted 0, unchanged 116, skipped 0, ")
    assert state_only(fabric)


def test_spine_leaf_sample_with_breakouts_syncs_exactly(fabric: Fabric) -> None:
    objs = [
        o for o in objects(shared("samples/wiring/spine-leaf-docs.yaml")) if o["kind"] != "Gateway"
    ]  # its Gateway is in namespace fab: not a fabric object
    serve(fabric, objs)
    sync_ok(fabric)
    contents = read(fabric.api())
    assert contents == expected(objs)
    assert "E1/1/1" in contents.interfaces["spine-01"]  # breakout lanes are kept


def connection_groups(conns: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The docs' connection examples reuse ports and IPs; split them into groups that do not."""
    groups: list[tuple[set[str], list[dict[str, Any]]]] = []
    for conn in conns:
        ports = {p for p in yaml.safe_dump(conn["spec"]).split() if "/" in p}
        for used, members in groups:
            if not used & ports:
                used |= ports
                members.append(conn)
                break
        else:
            groups.append((ports, [conn]))
    return [members for _, members in groups]


def test_every_connection_type_syncs_exactly(fabric: Fabric) -> None:
    conns = objects(shared("samples/objects/connections.docs.yaml"))
    types = {next(iter(c["spec"])) for c in conns}
    assert len(types) == 11
    devices = []
    for name, role in [
        ("s5248-01", "server-leaf"),
        ("s5248-02", "server-leaf"),
        ("s5248-03", "border-leaf"),
        ("s5248-04", "border-leaf"),
        ("s5232-01", "spine"),
        ("spine-01", "spine"),
    ]:
        devices.append(
            {
                "apiVersion": "wiring.githedgehog.com/v1beta1",
                "kind": "Switch",
                "metadata": {"name": name},
                "spec": {"role": role, "profile": "vs"},
            }
        )
    for name in ("server-1", "server-3", "server-4"):
        devices.append(
            {
                "apiVersion": "wiring.githedgehog.com/v1beta1",
                "kind": "Server",
                "metadata": {"name": name},
                "spec": {},
            }
        )
    serve(fabric, devices)
    seen = set()
    for group in connection_groups(conns):
        for conn in fabric.kube.objects("Connection"):
            fabric.kube.remove("Connection", conn["metadata"]["name"])
        serve(fabric, group)
        out = sync_ok(fabric, "--allow-mass-delete")
        assert " skipped 0, conflicts 0" in out
        assert read(fabric.api()) == expected(devices + group)
        seen |= {next(iter(c["spec"])) for c in group}
    assert seen == types


def test_example_fabric_dry_run_matches_golden_and_writes_nothing(fabric: Fabric) -> None:
    serve(fabric, objects(ROOT / "examples" / "fabric"))
    result = fabric.cli("sync", "dc1", "--dry-run")
    assert result.exit_code == 0, result.output
    *plan, summary = result.stdout.splitlines()
    assert "\n".join(plan) + "\n" == golden("example-dry-run.txt", "\n".join(plan) + "\n")
    assert summary.startswith(
        "dc1: would create 104, updated 0, deleted 0, unchanged 0, skipped 0, conflicts 0 in "
    )
    assert fabric.proxy.writes() == []  # not even the sync state: a dry run writes nothing
    assert read(fabric.api()).devices == {}
