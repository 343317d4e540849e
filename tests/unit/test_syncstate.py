"""Sync state, needs-sync, computed state, status rows, metrics and locks: pure or local."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hhsync import metrics
from hhsync.config import FabricConfig
from hhsync.errors import BusyError
from hhsync.lock import fabric_lock, state_dir
from hhsync.status import in_sync, rows
from hhsync.syncstate import SyncState, computed_state, needs_sync, record
from hhsync.systemd import parse_timers

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def ok(success: float, attempt: float | None = None) -> SyncState:
    return SyncState(last_success=ago(success), last_attempt=ago(attempt or success), result="ok")


@pytest.mark.parametrize(
    ("state", "needed", "reason", "computed"),
    [
        (SyncState(), True, "never synced", "never_synced"),
        (ok(130), False, "fresh, next sync due in 2m50s", "in_sync"),
        (ok(300), True, "last success 5m ago", "in_sync"),
        (ok(599), True, "last success 9m59s ago", "in_sync"),
        (ok(600), True, "last success 10m ago", "out_of_sync"),
        (
            SyncState(last_success=ago(10), last_attempt=ago(5), result="error"),
            True,
            "the last attempt failed",
            "error",
        ),
        (SyncState(last_attempt=ago(5), result="error"), True, "the last attempt failed", "error"),
    ],
)
def test_needs_sync_and_state(state: SyncState, needed: bool, reason: str, computed: str) -> None:
    due = needs_sync(state, 300, NOW)
    assert (due.needed, due.reason) == (needed, reason)
    assert computed_state(state, 300, NOW) == computed


def test_record_writes_last_success_only_when_ok() -> None:
    counts = {"created": 1}
    good = record(now=NOW, ok=True, message="m", counts=counts, mismatches=[], interval=300)
    bad = record(now=NOW, ok=False, message="boom", counts=counts, mismatches=["x"], interval=300)
    assert good == {
        "hhsync_last_attempt": "2026-11-28T12:00:00Z",
        "hhsync_result": "ok",
        "hhsync_message": "m",
        "hhsync_counts": counts,
        "hhsync_mismatches": [],
        "hhsync_interval": 300,
        "hhsync_last_success": "2026-11-28T12:00:00Z",
        "hhsync_fingerprint": None,
    }
    assert "hhsync_last_success" not in bad and bad["hhsync_result"] == "error"
    assert SyncState.from_custom_fields(good) == SyncState(
        NOW, NOW, "ok", "m", counts, (), 300, None
    )


def test_state_from_netbox_ignores_junk() -> None:
    junk = {
        "hhsync_last_success": "yesterday",
        "hhsync_result": "maybe",
        "hhsync_counts": [1],
        "hhsync_interval": "300",
        "hhsync_mismatches": "x",
    }
    assert SyncState.from_custom_fields(junk) == SyncState()


def test_status_rows_and_check() -> None:
    a = FabricConfig(name="a", site="a", interval=300)
    b = FabricConfig(name="b", site="b", interval=300, enabled=False)
    states = {
        "a": SyncState(
            ago(60),
            ago(60),
            "ok",
            "fine",
            {"created": 2, "unchanged": 5},
            ("leaf-01 E1/1: expected x, LLDP sees nothing",),
            300,
        )
    }
    got = rows([a, b], states, NOW, {"a": NOW + timedelta(minutes=4)})
    assert got[0].cells() == (
        "a",
        "a",
        "in_sync",
        "1m ago (2026-11-28T11:59:00Z)",
        "1m ago (2026-11-28T11:59:00Z)",
        "5m",
        "no",
        "2026-11-28T12:04:00Z",
        "7 (+2 ~0 -0)",
        "1",
        "-",
        "-",
        "-",
    )
    assert got[1].cells()[2:4] == ("never_synced (disabled)", "never")
    assert in_sync(got)  # the disabled fabric does not count
    assert got[0].as_json()["mismatches"] == ["leaf-01 E1/1: expected x, LLDP sees nothing"]


def test_a_fabric_with_a_branch_awaiting_review_and_retired_objects() -> None:
    a = FabricConfig(name="a", site="a", interval=300)
    branch = {"id": 7, "name": "hhsync/a/2026-11-28T11:00:00Z", "changes": 12,
              "created": "2026-11-28T11:00:00Z", "url": "http://nb/b/7/"}  # fmt: skip
    batches = ((NOW + timedelta(hours=3), 4), (NOW + timedelta(hours=5), 1))
    state = SyncState(ago(60), ago(60), "ok", "", {}, (), 300, None, branch, batches)
    [row] = rows([a], {"a": state}, NOW, {})
    assert row.computed == "awaiting_review" and not in_sync([row])
    assert row.cells()[2] == "awaiting_review"
    assert row.cells()[-3:-1] == (
        "hhsync/a/2026-11-28T11:00:00Z (12 changes, 1h ago)",
        "5 (deleted from 2026-11-28T15:00:00Z)",
    )
    assert row.as_json()["retirements"] == [
        {"due": "2026-11-28T15:00:00Z", "count": 4},
        {"due": "2026-11-28T17:00:00Z", "count": 1},
    ]
    assert row.as_json()["branch"] == branch


def test_metrics_merge_keeps_other_fabrics_and_parses(tmp_path: Path) -> None:
    path = tmp_path / "hhsync.prom"
    for fabric, created in (("a", 1), ("b", 2), ("a", 3)):
        lines = metrics.render(
            fabric,
            attempt=NOW,
            success=NOW if fabric == "a" else None,
            ok=fabric == "a",
            seconds=1.5,
            counts={"created": created},
        )
        metrics.write(path, fabric, lines)
    families = {f.name: f for f in text_string_to_metric_families(path.read_text())}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    assert samples == {
        ("hhsync_last_attempt_timestamp_seconds", (("fabric", "a"),)): NOW.timestamp(),
        ("hhsync_last_attempt_timestamp_seconds", (("fabric", "b"),)): NOW.timestamp(),
        ("hhsync_last_success_timestamp_seconds", (("fabric", "a"),)): NOW.timestamp(),
        ("hhsync_last_result", (("fabric", "a"),)): 1.0,
        ("hhsync_last_result", (("fabric", "b"),)): 0.0,
        ("hhsync_duration_seconds", (("fabric", "a"),)): 1.5,
        ("hhsync_duration_seconds", (("fabric", "b"),)): 1.5,
        ("hhsync_objects", (("action", "created"), ("fabric", "a"))): 3.0,
        ("hhsync_objects", (("action", "created"), ("fabric", "b"))): 2.0,
    }
    assert [p.name for p in tmp_path.iterdir()] != [] and not list(tmp_path.glob(".hhsync*"))


def _hold(directory: str, held: Any) -> None:
    with fabric_lock(Path(directory), "dc1", 0):
        held.set()
        threading.Event().wait(60)  # until killed


def test_lock_busy_then_free_after_a_kill(tmp_path: Path) -> None:
    fork = multiprocessing.get_context("fork")
    held = fork.Event()
    holder = fork.Process(target=_hold, args=(str(tmp_path), held))
    holder.start()
    assert held.wait(30)
    started = time.monotonic()
    with pytest.raises(BusyError) as e, fabric_lock(tmp_path, "dc1", 0.5):
        pass
    assert 0.5 <= time.monotonic() - started < 2
    assert str(e.value) == (
        f"another run of fabric dc1 holds its lock ({tmp_path}/dc1.lock); waited 0.5s"
    )
    with fabric_lock(tmp_path, "dc2", 0):  # other fabrics are not blocked
        pass
    assert holder.pid is not None
    os.kill(holder.pid, signal.SIGKILL)  # a killed holder leaves the file, never the lock
    holder.join()
    with fabric_lock(tmp_path, "dc1", 0):
        pass


def test_state_dir_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "systemd"))
    assert state_dir(tmp_path / "configured") == tmp_path / "configured"
    assert state_dir(None) == tmp_path / "systemd"


def test_parse_timers() -> None:
    text = (
        '[{"next": 1795867200000000, "left": 1, "last": null, "passed": null,'
        ' "unit": "hhsync-sync@dc1.timer", "activates": "hhsync-sync@dc1.service"},'
        ' {"next": 0, "unit": "hhsync-sync@lab.timer"}, {"next": 5, "unit": "other.timer"}]'
    )
    assert parse_timers(text) == {"dc1": datetime(2026, 11, 28, 12, 0, tzinfo=UTC)}
    assert parse_timers("not json") == {}
