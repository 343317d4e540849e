"""Review before write: runs that stage the fabric in a NetBox branch (the real netbox-branching
plugin, its jobs run by NetBox's rqworker), against the real NetBox."""

from __future__ import annotations

import copy
import json
import re
import signal
import subprocess
import sys
import time
from typing import Any

import pynetbox
import pytest

from tests.integration.conftest import Fabric, inventory_writes
from tests.integration.contents import Contents, expected, read
from tests.integration.test_sync_changes import example, find
from tests.integration.test_sync_wiring import serve, sync_ok
from tests.reliability import scenario as sc

BRANCHES = "/api/plugins/branching/branches/"
NAME = re.compile(r"hhsync/dc1/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def in_branch(fabric: Fabric, schema_id: str) -> pynetbox.api:
    """A reader of NetBox that sees the branch's contents."""
    api = fabric.api()
    api.http_session.headers["X-NetBox-Branch"] = schema_id
    return api


def branches(fabric: Fabric) -> list[dict[str, Any]]:
    session = fabric.netbox.session()
    answer = session.get(f"{fabric.netbox.url}{BRANCHES}?limit=100", timeout=30)
    answer.raise_for_status()
    return sorted(answer.json()["results"], key=lambda b: b["id"])


def merge_by_hand(fabric: Fabric, branch: dict[str, Any]) -> None:
    """What a person does in NetBox's UI: merge the branch, and wait for the job."""
    session = fabric.netbox.session()
    url = f"{fabric.netbox.url}{BRANCHES}{branch['id']}/merge/"
    job = session.post(url, json={"commit": True}, timeout=30).json()
    for _ in range(240):
        state = session.get(f"{fabric.netbox.url}/api/core/jobs/{job['id']}/", timeout=30).json()
        if state["status"]["value"] in ("completed", "errored", "failed"):
            assert state["status"]["value"] == "completed", state
            return
        time.sleep(0.25)
    raise AssertionError("the merge job did not end within 60 s")


def diffs(fabric: Fabric, branch: dict[str, Any]) -> int:
    """The objects a branch changes, as NetBox counts them for a reviewer."""
    session = fabric.netbox.session()
    url = f"{fabric.netbox.url}/api/plugins/branching/changes/?branch_id={branch['id']}&limit=1"
    return int(session.get(url, timeout=30).json()["count"])


def report(fabric: Fabric, *args: str) -> tuple[int, dict[str, Any]]:
    result = fabric.cli("sync", "dc1", "--force", "--json", *args)
    [found] = json.loads(result.stdout)["fabrics"]
    return result.exit_code, found


def status_row(fabric: Fabric) -> dict[str, Any]:
    [row] = json.loads(fabric.cli("status", "--json").stdout)["fabrics"]
    return dict(row)


def test_review_branch_is_kept_current_merged_by_a_person_then_main_is_in_sync(
    branched: Fabric,
) -> None:
    fabric, objs = branched, example()
    fabric.write_config(fabric='branch = "review"')
    serve(fabric, objs)
    code, first = report(fabric)
    assert code == 0, first
    branch = first["branch"]
    assert NAME.fullmatch(branch["name"]) and branch["status"] == "ready"
    assert branch["mode"] == "review"
    assert branch["changes"] == diffs(fabric, branch) > first["counts"]["created"]  # + cable ends
    assert branch["provisioning_seconds"] > 0
    assert first["summary"].endswith(
        f"; branch {branch['name']} awaits review ({branch['changes']} changes, provisioned in "
        f"{branch['provisioning_seconds']:.1f}s): {fabric.proxy.url}"
        f"/plugins/branching/branches/{branch['id']}/"
    )
    assert read(fabric.api()) == Contents()  # main: not a device, port or cable
    assert read(in_branch(fabric, branch["schema_id"])) == expected(objs)
    row = status_row(fabric)
    assert (row["state"], row["branch"]["name"], row["branch"]["changes"]) == (
        "awaiting_review", branch["name"], branch["changes"],
    )  # fmt: skip
    [listed] = branches(fabric)
    assert listed["description"].startswith("hhsync: fabric dc1 into site dc1: created ")

    changed = copy.deepcopy(objs)  # the fabric moves on while the branch waits for review
    changed.remove(find(changed, "Server", "server-04"))
    changed.remove(find(changed, "Connection", "server-04--unbundled--leaf-03"))
    fabric.kube.remove("Server", "server-04")
    fabric.kube.remove("Connection", "server-04--unbundled--leaf-03")
    code, second = report(fabric, "--allow-mass-delete")
    assert code == 0, second
    assert second["branch"]["id"] == branch["id"] and second["counts"]["deleted"] == 4
    assert second["branch"]["provisioning_seconds"] is None  # the same branch, not a new one
    assert [b["id"] for b in branches(fabric)] == [branch["id"]]
    assert read(in_branch(fabric, branch["schema_id"])) == expected(changed)
    assert read(fabric.api()) == Contents()

    merge_by_hand(fabric, branch)
    assert read(fabric.api()) == expected(changed)
    fabric.proxy.reset_log()
    code, third = report(fabric)
    assert code == 0, third
    assert (third["counts"]["created"], third["counts"]["updated"], third["counts"]["deleted"]) == (
        0, 0, 0,
    )  # fmt: skip
    assert third["branch"] is None and inventory_writes(fabric) == []
    assert [b["id"] for b in branches(fabric)] == [branch["id"]]  # no second branch
    assert status_row(fabric)["state"] == "in_sync"


def test_merge_mode_leaves_main_exactly_as_a_direct_sync_does(branched: Fabric) -> None:
    fabric, objs = branched, example()
    serve(fabric, objs)
    sync_ok(fabric)  # a direct sync, for reference
    direct = sc.snapshot(fabric.netbox)
    fabric.netbox.reset()
    fabric.write_config(fabric='branch = "merge"')
    code, merged = report(fabric)
    assert code == 0, (merged["error"], merged["branch"])
    assert merged["branch"]["status"] == "merged"
    assert merged["summary"].startswith("dc1: created ")
    assert f"; merged branch {merged['branch']['name']} (" in merged["summary"]
    assert sc.diff(direct, sc.snapshot(fabric.netbox)) == []
    [branch] = branches(fabric)
    assert (branch["status"]["value"], branch["name"]) == ("archived", merged["branch"]["name"])
    assert status_row(fabric)["state"] == "in_sync"
    code, again = report(fabric)  # nothing to change: no branch at all
    assert code == 0 and again["branch"] is None and len(branches(fabric)) == 1


def test_sigkill_during_a_merge_run_leaves_main_as_it_was(branched: Fabric) -> None:
    """Killed while it writes into its branch (at several points), a merge run leaves main
    exactly as it was; the next run finds the branch the killed one opened, and merges."""
    fabric, objs = branched, example()
    serve(fabric, objs)
    sync_ok(fabric)
    fabric.kube.remove("Server", "server-04")
    fabric.kube.remove("Connection", "server-04--unbundled--leaf-03")
    leaf = copy.deepcopy(find(objs, "Switch", "leaf-01"))
    leaf["spec"]["description"] = "renamed in the fabric"
    fabric.kube.replace(leaf)
    fabric.write_config(fabric='branch = "merge"\nmax_delete_fraction = 1.0')
    before = sc.snapshot(fabric.netbox)
    points = (("POST", "^/api/plugins/branching/branches/$"), ("DELETE", "^/api/dcim/cables/$"),
              ("PATCH", "^/api/dcim/devices/$"))  # fmt: skip
    for n, (method, pattern) in enumerate(points):
        held = fabric.proxy.fault(pattern, method=method, delay=8, times=1)
        run = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hhsync",
                "--config",
                str(fabric.config),
                "sync",
                "dc1",
                "--force",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert held.arrived.wait(60), f"point {n}: {pattern} was never requested"
        run.send_signal(signal.SIGKILL)
        run.communicate(timeout=30)
        fabric.proxy.clear_faults()
        fabric.proxy.wait_idle()
        assert sc.diff(before, sc.snapshot(fabric.netbox)) == [], f"point {n}: {pattern}"
    code, done = report(fabric)
    assert code == 0, done["error"]
    assert done["branch"]["status"] == "merged"
    assert len([b for b in branches(fabric) if b["status"]["value"] != "archived"]) == 0
    objs = [o for o in objs if o["metadata"]["name"] not in {"server-04",
            "server-04--unbundled--leaf-03"}]  # fmt: skip
    assert read(fabric.api()).devices == expected(objs).devices
    assert fabric.api().dcim.devices.get(name="leaf-01").description == "renamed in the fabric"


def test_a_merge_that_conflicts_with_a_hand_edit_leaves_the_branch_open(
    branched: Fabric,
) -> None:
    fabric, objs = branched, example()
    serve(fabric, objs)
    sync_ok(fabric)
    leaf = copy.deepcopy(find(objs, "Switch", "leaf-01"))
    leaf["spec"]["description"] = "from the fabric"
    fabric.kube.replace(leaf)
    code, staged = report(fabric, "--branch", "review")
    assert code == 0, staged
    device = fabric.api().dcim.devices.get(name="leaf-01")
    device.description = "edited by hand in main"
    device.save()
    code, failed = report(fabric, "--branch", "merge")
    assert code == 1
    name, url = staged["branch"]["name"], staged["branch"]["url"]
    assert failed["error"] == (
        f"branch {name} was not merged: it conflicts with changes made in main since "
        f"(dcim.device leaf-01 (description)); it stays open at {url}"
    )
    [branch] = branches(fabric)
    assert branch["status"]["value"] == "ready"  # open, as it was
    assert fabric.api().dcim.devices.get(name="leaf-01").description == "edited by hand in main"
    row = status_row(fabric)
    assert (row["state"], row["branch"]["name"]) == ("error", name)
    assert row["message"] == failed["error"]


def test_branch_modes_without_the_plugin_are_a_config_error(fabric: Fabric) -> None:
    serve(fabric, example())
    fabric.write_config(fabric='branch = "review"')
    result = fabric.cli("sync", "dc1")
    assert result.exit_code == 2
    assert result.stderr == (
        f'hhsync: error: {fabric.config}: [fabrics.dc1] branch = "review": NetBox at '
        f"{fabric.proxy.url} does not run the netbox-branching plugin; install it, or set "
        'branch = "off" to write to main\n'
    )
    fabric.write_config()
    result = fabric.cli("sync", "dc1", "--branch", "merge")
    assert result.exit_code == 2
    assert result.stderr.startswith("hhsync: error: --branch merge: NetBox at ")
    assert fabric.proxy.writes() == []  # never a silent fall back to main
    check = json.loads(fabric.cli("check", "--json").stdout)["checks"]
    assert "branching" not in [c["name"] for c in check]  # nothing to check with branch = off
    fabric.write_config(fabric='branch = "review"')
    result = fabric.cli("check", "--json")
    assert result.exit_code == 1
    [found] = [c for c in json.loads(result.stdout)["checks"] if c["name"] == "branching"]
    assert found == {
        "name": "branching",
        "target": fabric.proxy.url,
        "ok": False,
        "detail": "the netbox-branching plugin is not installed, and fabric(s) dc1 write into "
        "branches (branch = review or merge)",
    }


def test_check_says_the_plugin_is_there_and_the_token_may_use_it(branched: Fabric) -> None:
    branched.write_config(fabric='branch = "review"')
    result = branched.cli("check", "--json")
    [found] = [c for c in json.loads(result.stdout)["checks"] if c["name"] == "branching"]
    assert found["ok"] is True
    assert found["detail"] == (
        "netbox-branching 1.2.2; the token may create, write and merge branches (used by dc1)"
    )


@pytest.mark.parametrize("mode", ["review", "merge"])
def test_an_unchanged_fabric_opens_no_branch(branched: Fabric, mode: str) -> None:
    serve(branched, example())
    sync_ok(branched)
    code, found = report(branched, "--branch", mode)
    assert code == 0 and found["branch"] is None and branches(branched) == []
