"""Sync state in NetBox, needs-sync, status, locking and deadlines against the real NetBox.
Time is controlled by editing the stored state, never slept through."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import Fabric
from tests.integration.test_sync_changes import example
from tests.integration.test_sync_wiring import serve


def site_state(fabric: Fabric, site: str = "dc1") -> dict[str, Any]:
    cf = fabric.api().dcim.sites.get(slug=site).custom_fields
    return {k: v for k, v in cf.items() if k.startswith("hhsync_")}


def set_state(fabric: Fabric, **fields: Any) -> None:
    site = fabric.api().dcim.sites.get(slug="dc1")
    site.custom_fields.update({f"hhsync_{k}": v for k, v in fields.items()})
    site.save()


def minutes_ago(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(fabric: Fabric, *args: str) -> tuple[int, list[dict[str, Any]]]:
    result = fabric.cli("status", "--json", *args)
    return result.exit_code, json.loads(result.stdout)["fabrics"]


def test_fresh_stale_failed_and_forced(fabric: Fabric) -> None:
    serve(fabric, example())
    code, [row] = status(fabric)
    assert (code, row["state"], row["needs_sync"], row["due"]) == (
        0,
        "never_synced",
        True,
        "never synced",
    )
    first = fabric.cli("sync", "dc1")
    assert first.exit_code == 0, first.output
    stored = site_state(fabric)
    assert stored["hhsync_result"] == "ok"
    assert stored["hhsync_last_success"] == stored["hhsync_last_attempt"]
    assert stored["hhsync_counts"]["created"] > 0 and stored["hhsync_interval"] == 300

    fabric.proxy.reset_log()  # fresh: skipped, and nothing at all is written
    fresh = fabric.cli("sync", "dc1")
    assert fresh.exit_code == 0
    assert fresh.stdout.startswith("dc1: fresh, next sync due in 4m5")
    assert fabric.proxy.writes() == []

    set_state(fabric, last_success=minutes_ago(6), last_attempt=minutes_ago(6))
    stale = fabric.cli("sync", "dc1")  # stale: synced, a no-op run writes only its state
    assert stale.stdout.startswith("dc1: created 0, updated 0, deleted 0, unchanged 104")
    assert site_state(fabric)["hhsync_last_success"] > minutes_ago(1)

    set_state(fabric, result="error", message="boom")
    retried = fabric.cli("sync", "dc1")  # a failed fabric is retried at once
    assert (
        retried.stdout.startswith("dc1: created 0,") and site_state(fabric)["hhsync_result"] == "ok"
    )

    set_state(fabric, last_attempt=minutes_ago(1))  # stored times have one-second resolution
    before = site_state(fabric)["hhsync_last_attempt"]
    forced = fabric.cli("sync", "dc1", "--force")
    assert forced.stdout.startswith("dc1: created 0,")
    assert site_state(fabric)["hhsync_last_attempt"] > before


def test_failure_halfway_keeps_last_success_and_status_says_error(fabric: Fabric) -> None:
    serve(fabric, example())
    assert fabric.cli("sync", "dc1").exit_code == 0
    success = site_state(fabric)["hhsync_last_success"]
    set_state(fabric, last_success=minutes_ago(6), last_attempt=minutes_ago(6))
    success = site_state(fabric)["hhsync_last_success"]
    fabric.kube.add(
        {
            "apiVersion": "wiring.githedgehog.com/v1beta1",
            "kind": "Server",
            "metadata": {"name": "late"},
            "spec": {},
        }
    )
    fabric.proxy.fault("/api/dcim/devices/", method="POST", status=500, times=None)
    failed = fabric.cli("sync", "dc1")
    assert failed.exit_code == 1
    stored = site_state(fabric)
    assert stored["hhsync_last_success"] == success
    assert stored["hhsync_last_attempt"] > success and stored["hhsync_result"] == "error"
    assert stored["hhsync_message"].startswith("NetBox rejected part of the plan: create 1 ")
    code, [row] = status(fabric, "--check")
    assert (code, row["state"], row["message"]) == (1, "error", stored["hhsync_message"])
    journal = fabric.api().extras.journal_entries.filter(assigned_object_type="dcim.site")
    assert [(j.kind.value, j.comments[:40]) for j in sorted(journal, key=lambda j: j.id)][-1] == (
        "danger",
        "hhsync sync: NetBox rejected part of the",
    )
    fabric.proxy.clear_faults()
    assert fabric.cli("sync", "dc1").exit_code == 0
    code, [row] = status(fabric, "--check")
    assert (code, row["state"]) == (0, "in_sync")


def test_status_for_every_state(fabric: Fabric) -> None:
    serve(fabric, example())
    fabric.write_config(
        lab='site = "lab"\nsource = "file:missing.yaml"\nenabled = false'.replace(
            "file:missing.yaml", f"file:{fabric.tmp / 'kubeconfig'}"
        )
    )
    assert fabric.cli("sync", "dc1").exit_code == 0
    code, rows = status(fabric, "--check")
    assert code == 0  # lab is disabled and never synced: it does not count
    assert [(r["fabric"], r["state"], r["enabled"]) for r in rows] == [
        ("dc1", "in_sync", True),
        ("lab", "never_synced", False),
    ]
    set_state(fabric, last_success=minutes_ago(11), last_attempt=minutes_ago(11))
    code, [row, _] = status(fabric, "--check")
    assert (code, row["state"], row["needs_sync"]) == (1, "out_of_sync", True)
    assert status(fabric)[0] == 0  # without --check, status only reports
    plain = fabric.cli("status")
    assert plain.stdout.splitlines()[0].split()[:3] == ["fabric", "site", "state"]
    assert plain.stdout.splitlines()[1].split()[:3] == ["dc1", "dc1", "out_of_sync"]


def test_netbox_unreachable_every_row_says_so(fabric: Fabric) -> None:
    fabric.proxy.fault("/api/", drop=True, times=None)
    result = fabric.cli("status")
    assert result.exit_code == 1
    assert result.stdout.startswith("dc1: NetBox unreachable: ")


def test_concurrent_runs_of_one_fabric_and_of_two(fabric: Fabric) -> None:
    serve(fabric, example())
    fabric.write_config(netbox="", dc2='site = "dc2"\nkubeconfig = "kubeconfig"')
    text = fabric.config.read_text().replace("[run]\n", "[run]\nlock_wait = 0\n")
    fabric.config.write_text(text)
    fabric.proxy.fault("/api/dcim/devices/", method="POST", delay=4, times=None)
    argv = [sys.executable, "-m", "hhsync", "--config", str(fabric.config), "sync"]
    first = subprocess.Popen([*argv, "dc1"], stdout=subprocess.PIPE, text=True)
    other = subprocess.Popen([*argv, "dc2"], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60  # both runs are applying (device POSTs take 4 s each)
    while sum(r.method == "POST" and r.path == "/api/dcim/devices/" for r in fabric.proxy.log) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = subprocess.run([*argv, "dc1"], capture_output=True, text=True, timeout=60)
    assert second.returncode == 3
    assert second.stdout == (
        f"dc1: busy: another run of fabric dc1 holds its lock "
        f"({fabric.tmp / 'state' / 'dc1.lock'}); waited 0s\n"
    )
    assert first.wait(120) == 0 and other.wait(120) == 0  # dc1 and dc2 ran side by side
    api = fabric.api()
    assert len(api.dcim.devices.filter(site="dc1")) == len(api.dcim.devices.filter(site="dc2")) == 9


def test_kubernetes_that_never_answers_ends_by_the_deadline(fabric: Fabric) -> None:
    fabric.write_config(fabric='interval = "1m"\ndeadline = "4s"')
    fabric.kube.fault("^/apis$", delay=600)
    started = time.monotonic()
    result = fabric.cli("sync", "dc1")
    assert result.exit_code == 1 and time.monotonic() - started < 15
    assert (
        result.stdout
        == "dc1: error: deadline exceeded after 4s, during discovery (API discovery)\n"
    )
    stored = site_state(fabric)
    assert (stored["hhsync_result"], stored["hhsync_message"]) == (
        "error",
        "deadline exceeded after 4s, during discovery (API discovery)",
    )


def test_sigterm_stops_at_a_safe_point_and_records_it(fabric: Fabric) -> None:
    serve(fabric, example())
    devices = fabric.proxy.fault("/api/dcim/devices/", method="POST", delay=3, times=None)
    run = subprocess.Popen(
        [sys.executable, "-m", "hhsync", "--config", str(fabric.config), "sync", "dc1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert devices.arrived.wait(60)  # inside the device POST, which NetBox answers after 3 s
    run.send_signal(signal.SIGTERM)
    out, _ = run.communicate(timeout=60)
    assert run.returncode == 1
    assert out.startswith("dc1: created 34, updated 0, deleted 0, unchanged 1,")  # what it did
    assert out.rstrip().endswith("error: stopped by SIGTERM during applying (create devices)")
    assert (
        site_state(fabric)["hhsync_message"]
        == "stopped by SIGTERM during applying (create devices)"
    )


def test_metrics_file_parses(fabric: Fabric) -> None:
    serve(fabric, example())
    metrics = fabric.tmp / "metrics" / "hhsync.prom"
    text = fabric.config.read_text().replace("[run]\n", f'[run]\nmetrics_file = "{metrics}"\n')
    fabric.config.write_text(text)
    assert fabric.cli("sync", "dc1").exit_code == 0
    families = {f.name: f for f in text_string_to_metric_families(metrics.read_text())}
    assert sorted(families) == [
        "hhsync_duration_seconds",
        "hhsync_last_attempt_timestamp_seconds",
        "hhsync_last_result",
        "hhsync_last_success_timestamp_seconds",
        "hhsync_objects",
    ]
    objects = {s.labels["action"]: s.value for s in families["hhsync_objects"].samples}
    assert objects["created"] == 103 and families["hhsync_last_result"].samples[0].value == 1
    other = fabric.tmp / "other.prom"  # --metrics-file overrides the config key
    assert fabric.cli("sync", "dc1", "--force", "--metrics-file", str(other)).exit_code == 0
    [family] = [
        f for f in text_string_to_metric_families(other.read_text()) if f.name == "hhsync_objects"
    ]
    assert {s.labels["action"]: s.value for s in family.samples}["unchanged"] == 104
