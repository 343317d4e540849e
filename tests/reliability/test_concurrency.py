"""Concurrency: `sync --all` of four fabrics on four sites in parallel, on a NetBox holding none
of hhsync's objects yet (so their set-up of the tag, custom fields and shared objects races
too), but hand-made ones beside them; a concurrent `sync dc1` and `status` polled all along.
No update is lost (each fabric's NetBox contents are exact), the lock rules hold, status never
shows a half-written state, and hand-made objects are untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from subprocess import PIPE

import pytest

from tests.harness.netbox import NetBoxInstance
from tests.integration import contents, ipam
from tests.integration.conftest import Fabric
from tests.reliability import scenario as sc
from tests.reliability import unowned

FABRICS = {  # fabric -> its objects: different sizes and shapes, so no two can be mistaken
    "dc1": sc.VARIANTS["a"],
    "dc2": sc.hedgehog("a", servers=1),
    "dc3": sc.hedgehog("b", servers=3),
    "dc4": sc.hedgehog("b", servers=1),
}


@pytest.fixture
def fab(nb: NetBoxInstance, tmp_path: Path) -> Iterator[Fabric]:
    with sc.rig(nb, tmp_path) as f:
        yield f


def write_config(fab: Fabric, path: Path, lock_wait: int) -> Path:
    text = (
        f'[netbox]\nurl = "{fab.proxy.url}"\ntoken_file = "token"\ntimeout = 30\n'
        f'[run]\nstate_dir = "{fab.tmp / "state"}"\nparallel = 4\nlock_wait = {lock_wait}\n'
        "[defaults]\ntimeout = 5\n"
    )
    for name in FABRICS:
        text += (
            f'[fabrics.{name}]\nsite = "{name}"\nkubeconfig = "kubeconfig"\n'
            f'namespace = "ns-{name}"\n'
        )
    path.write_text(text)
    return path


def lock_held(lock: Path) -> bool:
    """Whether some process holds an flock on `lock` (read from /proc/locks, never by trying)."""
    if not lock.exists():
        return False
    inode = f":{lock.stat().st_ino} "
    locks = Path("/proc/locks").read_text().splitlines()
    return any("FLOCK" in line and inode in line for line in locks)


def hhsync(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "hhsync", "--config", str(config), *args]


def test_sync_all_in_parallel_with_a_concurrent_sync_and_status(fab: Fabric) -> None:
    reference = sc.reference(fab, "a")  # dc1 is variant a: its objects must equal its reference
    unowned.seed(fab.api())
    hand_made = unowned.snapshot(fab.netbox, fabric_sites=FABRICS)
    for name, objs in FABRICS.items():
        sc.serve(fab.kube, objs, namespace=f"ns-{name}")
    config = write_config(fab, fab.config, lock_wait=0)
    patient = write_config(fab, fab.tmp / "patient.toml", lock_wait=300)
    slow = fab.proxy.fault("^/api/dcim/devices/$", method="POST", delay=1, times=None)
    env = {k: v for k, v in os.environ.items() if k != "HHSYNC_NETBOX_TOKEN"}
    every = subprocess.Popen(
        hhsync(config, "sync", "--all"), stdout=PIPE, stderr=PIPE, text=True, env=env
    )
    lock = fab.tmp / "state" / "dc1.lock"
    deadline = time.monotonic() + 120
    while not lock_held(lock):
        assert time.monotonic() < deadline and every.poll() is None, "dc1 never took its lock"
        time.sleep(0.02)
    busy = subprocess.run(hhsync(config, "sync", "dc1"), capture_output=True, text=True, env=env)
    assert (busy.returncode, busy.stdout) == (
        3,
        f"dc1: busy: another run of fabric dc1 holds its lock ({lock}); waited 0s\n",
    )
    waiting = subprocess.Popen(
        hhsync(patient, "sync", "dc1"), stdout=PIPE, stderr=PIPE, text=True, env=env
    )
    polls, problems, seen = 0, [], set()
    while every.poll() is None or waiting.poll() is None:
        result = fab.cli("status", "--json")
        assert result.exit_code == 0, result.output
        for row in json.loads(result.stdout)["fabrics"]:
            problems += [f"{row['fabric']}: {p}" for p in sc.consistent(row)]
            seen.add((row["fabric"], row["state"]))
        polls += 1
    out, err = every.communicate()
    assert every.returncode == 0, out + err
    assert sorted(line.split(":")[0] for line in out.splitlines()) == sorted(FABRICS)
    assert all(": created " in line for line in out.splitlines()), out
    out, err = waiting.communicate()
    assert waiting.returncode == 0 and out.startswith("dc1: fresh, next sync due in 4m"), out + err
    assert problems == [] and polls >= 3, (polls, problems)
    # The polls saw fabrics before and after their state was written, while others still ran.
    assert {("dc1", "never_synced"), ("dc1", "in_sync")} <= seen, seen
    print(f"\n{polls} status polls during the runs, states seen: {sorted(seen)}")
    slow.remove()

    api = fab.api()
    for name, objs in FABRICS.items():
        assert contents.read(api, name) == contents.expected(objs), name
        assert ipam.read(api, name) == ipam.expected(objs, name), name
        mine = sc.snapshot(fab.netbox, name)
        sc.check(sc.duplicates(mine) == [], sc.duplicates(mine))
    sc.same({e: reference[e] for e in sc.OWNED}, sc.snapshot(fab.netbox, "dc1"))
    shared = sc.snapshot(fab.netbox)
    sc.check(sc.duplicates({e: shared[e] for e in sc.SHARED}) == [], ["shared duplicates"])
    assert unowned.changes(hand_made, unowned.snapshot(fab.netbox, fabric_sites=FABRICS)) == {}

    again = fab.cli("sync", "--all", "--force", "--full")  # hhsync itself finds nothing to do
    assert again.exit_code == 0, again.output
    for line in again.stdout.splitlines():
        assert ": created 0, updated 0, deleted 0, " in line, again.stdout
    rows = sc.status_rows(fab)
    assert [(r["fabric"], r["state"]) for r in rows] == [(n, "in_sync") for n in FABRICS]
    assert all(sc.consistent(r) == [] for r in rows)
