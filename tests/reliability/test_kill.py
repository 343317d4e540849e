"""Process faults: an hhsync process SIGKILLed (OOM killer, a host reset, `systemctl kill -s
KILL`) at 20 seeded random points of a sync that deletes, creates and updates, each followed by
a normal timer run; and SIGTERM (systemd stopping the unit) during discovery.

A killed run records nothing, so the stored state must still be the previous one (which the
timer found due, so never "in_sync"), unless the run had finished and recorded its success, in
which case NetBox must already be exact. The next unforced run must converge to exactly what an
undisturbed sync leaves: no duplicates, no orphaned interfaces or cables, nothing lost.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass

import pytest

from tests.harness.netbox import NetBoxInstance
from tests.integration.conftest import Fabric
from tests.reliability import scenario as sc

# A failure names its seed and point; HHSYNC_KILL_SEED and HHSYNC_KILL_POINTS explore others.
SEED = int(os.environ.get("HHSYNC_KILL_SEED", "20261128"))
POINTS = int(os.environ.get("HHSYNC_KILL_POINTS", "20"))


@pytest.fixture
def base(
    netbox: NetBoxInstance, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> sc.Base:
    return sc.shared_base(netbox, tmp_path_factory, pytestconfig)


def start(fab: Fabric) -> subprocess.Popen[str]:
    """`hhsync sync dc1` as the timer's service runs it: its own process, no --force."""
    command = [sys.executable, "-m", "hhsync", "--config", str(fab.config), "sync", "dc1"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@dataclass
class Run:
    """An undisturbed run from one variant to the other: how long, and which writes."""

    seconds: float
    writes: list[tuple[str, str]]


def undisturbed(base: sc.Base) -> tuple[tuple[str, str], Run]:
    fab, here, there = base.flip()
    sc.age(fab)
    started = time.monotonic()
    process = start(fab)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, out + err
    seconds = time.monotonic() - started
    writes = [(r.method, r.path) for r in fab.proxy.writes() if not sc.BOOKKEEPING.search(r.path)]
    base.converged(there)
    return (here, there), Run(seconds, writes)


def test_sigkill_at_seeded_random_points_then_a_normal_run_converges(base: sc.Base) -> None:
    rng = random.Random(SEED)
    runs = dict([undisturbed(base), undisturbed(base)])  # both directions, for the kill points
    outcomes: Counter[str] = Counter()
    for point in range(POINTS):
        kill_point(base, runs, rng, point, outcomes)
    assert sum(v for k, v in outcomes.items() if k.startswith("killed")) >= POINTS * 3 // 4
    print(f"\n{POINTS} SIGKILL points (seed {SEED}): {dict(outcomes)}")


def kill_point(
    base: sc.Base,
    runs: dict[tuple[str, str], Run],
    rng: random.Random,
    point: int,
    outcomes: Counter[str],
) -> None:
    fab, here, there = base.flip()
    sc.age(fab)
    before = sc.status_row(fab)
    run = runs[(here, there)]
    mode = rng.choice(("after a delay", "after write", "during write"))
    n = rng.randint(1, len(run.writes))
    delay = rng.uniform(0.2, run.seconds)
    where = f"seed {SEED} point {point} ({here}->{there}): killed {mode} "
    where += f"{delay:.2f}s" if mode == "after a delay" else f"{n} of {len(run.writes)}"
    held = None
    if mode == "during write":  # held in the proxy; it reaches NetBox after the kill
        method, path = run.writes[n - 1]
        after = run.writes[: n - 1].count((method, path))
        held = fab.proxy.fault(f"^{re.escape(path)}$", method=method, after=after, delay=1)
    process = start(fab)
    started = time.monotonic()

    def due() -> bool:
        if mode == "after a delay":
            return time.monotonic() - started >= delay
        if mode == "after write":
            return sc.inventory_writes(fab) >= n
        return held is not None and held.hits > 0

    with sc.when(lambda: due() or process.poll() is not None, process.kill):
        out, err = process.communicate(timeout=120)
    if process.returncode == -signal.SIGKILL:
        outcomes[f"killed {mode}"] += 1
    else:
        assert process.returncode == 0, f"{where}: {out}{err}"
        outcomes["finished before the kill"] += 1
    # The request the process was waiting for still reaches NetBox, as it would without a proxy
    # in between; the next timer run comes minutes later, long after it landed.
    fab.proxy.wait_idle()
    assert held is None or not held.hits or any(r.faulted for r in fab.proxy.log), where
    row = sc.status_row(fab)
    assert sc.consistent(row) == [], where
    if row["last_attempt"] != before["last_attempt"]:  # it applied all and recorded it
        assert row["result"] == "ok", where
        outcomes["recorded its success"] += 1
        sc.same(sc.REFERENCES.snaps[there], sc.snapshot(fab.netbox))
    else:
        assert (row["state"], row["needs_sync"]) == ("out_of_sync", True), where
    result = fab.cli("sync", "dc1")  # the next timer run
    assert result.exit_code == 0, f"{where}: {result.output}"
    try:
        base.converged(there)
    except AssertionError as e:
        raise AssertionError(f"{where}: {e}") from None
    row = sc.status_row(fab)
    assert (row["state"], sc.consistent(row)) == ("in_sync", []), where


def test_sigterm_during_discovery_stops_there_and_records_it(base: sc.Base) -> None:
    fab, here, there = base.flip()
    sc.age(fab)
    before = sc.status_row(fab)
    listing = fab.kube.fault("/connections$", delay=3, times=1)
    process = start(fab)
    with sc.when(lambda: listing.hits > 0, lambda: process.send_signal(signal.SIGTERM)) as sent:
        out, err = process.communicate(timeout=60)
    assert sent.is_set()
    message = "stopped by SIGTERM during discovery (listing connections)"
    assert (process.returncode, out) == (1, f"dc1: error: {message}\n"), err
    assert sc.inventory_writes(fab) == 0
    sc.same(sc.REFERENCES.snaps[here], sc.snapshot(fab.netbox))
    row = sc.status_row(fab)
    assert (row["state"], row["message"], sc.consistent(row)) == ("error", message, [])
    assert row["last_success"] == before["last_success"]
    result = fab.cli("sync", "dc1")
    assert result.exit_code == 0, result.output
    base.converged(there)
