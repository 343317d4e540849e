"""NetBox faults during a sync that has deletes, creates and updates to make: NetBox stopped,
killed at several points of the apply, answering 500, 502/503 with Retry-After, too slowly, 403
(token revoked) or HTML. Each time the run exits 1 with a clear message, nothing owned is lost or
duplicated, the stored state never claims a success it did not have, and the next healthy,
unforced run converges to exactly what an undisturbed sync leaves."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.harness.netbox import NetBoxInstance
from tests.integration.conftest import Fabric
from tests.reliability import scenario as sc


@pytest.fixture
def base(
    netbox: NetBoxInstance, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> sc.Base:
    return sc.shared_base(netbox, tmp_path_factory, pytestconfig)


def begin(base: sc.Base) -> tuple[Fabric, str, str, sc.Obj]:
    """NetBox holds one variant, its state is old enough that a timer would sync it, and the
    API serves the other variant."""
    fab, here, there = base.flip()
    sc.age(fab)
    row = sc.status_row(fab)
    assert (row["state"], row["needs_sync"]) == ("out_of_sync", True)
    return fab, here, there, row


def not_recorded(fab: Fabric, before: sc.Obj) -> None:
    """NetBox was unusable at the end of the run: the stored state is still the previous one,
    which says the fabric is out of sync and due, never in sync."""
    row = sc.status_row(fab)
    assert (row["last_attempt"], row["last_success"]) == (
        before["last_attempt"],
        before["last_success"],
    )
    assert (row["state"], row["needs_sync"], sc.consistent(row)) == ("out_of_sync", True, [])


def recorded(fab: Fabric, before: sc.Obj, message: str) -> None:
    row = sc.status_row(fab)
    assert (row["state"], row["result"], row["message"]) == ("error", "error", message)
    assert row["last_success"] == before["last_success"] and row["needs_sync"]
    assert sc.consistent(row) == []


def recovers(base: sc.Base, variant: str) -> None:
    """The next run, as a timer starts it (no --force), syncs and converges exactly."""
    base.begin()
    result = base.fab.cli("sync", "dc1")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("dc1: created "), result.stdout
    base.converged(variant)
    row = base.fab.cli("status", "--json")
    assert '"state": "in_sync"' in row.stdout


def kept(fab: Fabric, here: str) -> None:
    """NetBox still holds exactly what the last sync left: nothing was written."""
    sc.same(sc.REFERENCES.snaps[here], sc.snapshot(fab.netbox))


def partial(fab: Fabric, here: str, there: str) -> sc.Snapshot:
    """A partly applied plan: no duplicates, and every object is one of `here` or `there`."""
    now = sc.snapshot(fab.netbox)
    sc.check(sc.duplicates(now) == [], sc.duplicates(now))
    old, new = sc.REFERENCES.snaps[here], sc.REFERENCES.snaps[there]
    strays = [
        f"{e} {k}" for e, objs in now.items() for k in objs if k not in old[e] and k not in new[e]
    ]
    sc.check(strays == [], strays)
    return now


def hold(fab: Fabric, method: str, path: str = sc.INVENTORY, **kw: Any) -> Any:
    """Hold the first matching request in the proxy (it reaches NetBox 3 s later, if at all)."""
    return fab.proxy.fault(path, method=method, delay=3, times=1, **kw)


def test_netbox_killed_after_the_reads_before_the_first_write(base: sc.Base) -> None:
    fab, here, there, before = begin(base)
    first = [hold(fab, method) for method in ("POST", "PATCH", "DELETE")]
    try:
        with sc.when(lambda: any(f.hits for f in first), fab.netbox.kill) as killed:
            result = fab.cli("sync", "dc1")
        assert killed.is_set() and result.exit_code == 1
        assert "error: " in result.stdout and "recording the state failed" in result.stdout
        assert f"NetBox at {fab.proxy.url} answered" in result.stdout
    finally:
        fab.netbox.start()
    kept(fab, here)  # the held write reached a dead NetBox: not one object was written
    not_recorded(fab, before)
    recovers(base, there)


def test_netbox_killed_between_create_chunks(
    base: sc.Base, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first sync in chunks of 3: NetBox dies while the third interface chunk is on its
    way; the two before it stay, and the next run creates the rest, no duplicates."""
    monkeypatch.setattr("hhsync.netbox.client.MAX_CHUNK", 3)
    fab = base.empty("a")
    third = hold(fab, "POST", "^/api/dcim/interfaces/$", after=2)
    try:
        with sc.when(lambda: third.hits > 0, fab.netbox.kill) as killed:
            result = fab.cli("sync", "dc1")
        assert killed.is_set() and result.exit_code == 1
        assert "recording the state failed" in result.stdout
    finally:
        fab.netbox.start()
    posts = [r for r in fab.proxy.log if r.path == "/api/dcim/interfaces/" and r.method == "POST"]
    assert [r.status for r in posts[:2]] == [201, 201]
    now = partial(fab, "a", "a")
    ref = sc.REFERENCES.snaps["a"]
    assert 0 < len(now["dcim/interfaces/"]) < len(ref["dcim/interfaces/"])
    assert len(now["dcim/cables/"]) == 0  # cables come after every interface
    row = sc.status_row(fab)  # the site exists now, its state was never written
    assert (row["state"], row["last_attempt"], sc.consistent(row)) == ("never_synced", None, [])
    recovers(base, "a")


def test_netbox_killed_between_the_deletes_and_the_creates_and_still_down_for_the_next_run(
    base: sc.Base,
) -> None:
    fab, here, there, before = begin(base)
    nb = fab.netbox
    creates = [hold(fab, "POST"), hold(fab, "PATCH")]  # deletes go first, then creates/updates
    try:
        with sc.when(lambda: any(f.hits for f in creates), nb.kill) as killed:
            result = fab.cli("sync", "dc1")
        assert killed.is_set() and result.exit_code == 1
        assert "recording the state failed" in result.stdout
        # The next timer run finds NetBox stopped (here without the proxy in between).
        sc.write_config(fab, netbox_url=nb.url)
        result = fab.cli("sync", "dc1")
        assert (result.exit_code, result.stdout) == (
            1,
            f"dc1: error: cannot connect to NetBox at {nb.url} (Failed to establish a new "
            "connection: [Errno 111] Connection refused): is it running, and is [netbox] url "
            "right?\n",
        )
        status = fab.cli("status", "--json")
        assert status.exit_code == 1 and '"state": "unknown"' in status.stdout
    finally:
        nb.start()
    deletes = [r for r in fab.proxy.log if r.method == "DELETE"]
    assert deletes and all(r.status == 204 for r in deletes)
    now = partial(fab, here, there)
    old, new = sc.REFERENCES.snaps[here], sc.REFERENCES.snaps[there]
    for endpoint, objs in now.items():  # every delete done, not one create: only the common part
        assert set(objs) == set(old[endpoint]) & set(new[endpoint]), endpoint
    not_recorded(fab, before)
    recovers(base, there)


def test_http_500_on_a_read(base: sc.Base) -> None:
    fab, here, there, before = begin(base)
    fault = fab.proxy.fault("^/api/dcim/cables/$", method="GET", status=500, times=None)
    result = fab.cli("sync", "dc1")
    message = "NetBox answered GET /api/dcim/cables/ with HTTP 500: Internal Server Error"
    assert (result.exit_code, result.stdout) == (1, f"dc1: error: {message}\n")
    assert fault.hits == 1  # a 500 is not retried
    kept(fab, here)
    recorded(fab, before, message)
    recovers(base, there)


def test_502_and_503_with_retry_after_on_reads_are_retried(base: sc.Base) -> None:
    fab, _here, there, _before = begin(base)
    retry = {"Retry-After": "2"}
    a = fab.proxy.fault("^/api/dcim/interfaces/$", method="GET", status=503, headers=retry)
    b = fab.proxy.fault("^/api/ipam/vlans/$", method="GET", status=502, headers=retry)
    with sc.timeline(fab.proxy) as seen:
        result = fab.cli("sync", "dc1")
    assert result.exit_code == 0, result.output
    assert (a.hits, b.hits) == (1, 1)
    # Each was sent again once NetBox's Retry-After had passed (not after the 0.5 s backoff).
    assert sc.retried_after(seen, "GET", "/api/dcim/interfaces/") >= 1.9
    assert sc.retried_after(seen, "GET", "/api/ipam/vlans/") >= 1.9
    recovers_now(base, there)


def recovers_now(base: sc.Base, variant: str) -> None:
    """The faulted run itself was the healthy one: it converged and says so."""
    base.converged(variant)
    row = sc.status_row(base.fab)
    assert (row["state"], row["result"], sc.consistent(row)) == ("in_sync", "ok", [])


def test_500_502_and_503_with_retry_after_on_writes_are_not_retried(base: sc.Base) -> None:
    """Each failed chunk is reported and not sent again (a write may have landed); the rest of
    the plan goes on, and the next run makes up for the failed chunks."""
    fab, here, there, before = begin(base)
    retry = {"Retry-After": "1"}
    addresses = fab.proxy.fault("^/api/ipam/ip-addresses/$", method="POST", status=500)
    devices = fab.proxy.fault("^/api/dcim/devices/$", method="POST", status=503, headers=retry)
    vrfs = fab.proxy.fault("^/api/ipam/vrfs/$", method="PATCH", status=502, headers=retry)
    result = fab.cli("sync", "dc1")
    assert result.exit_code == 1
    for fault in (addresses, devices, vrfs):
        assert (fault.hits, fault.seen) == (1, 1)  # sent once, never again
    message = result.stdout.split("; error: ", 1)[1].rstrip("\n")
    assert message.startswith("NetBox rejected part of the plan: ")
    for failed in (
        "NetBox answered POST /api/ipam/ip-addresses/ with HTTP 500: Internal Server Error",
        "NetBox answered POST /api/dcim/devices/ with HTTP 503: Service Unavailable",
        "NetBox answered PATCH /api/ipam/vrfs/ with HTTP 502: Bad Gateway",
    ):
        assert failed in result.stderr
    now = partial(fab, here, there)
    new = sc.REFERENCES.snaps[there]
    assert set(now["ipam/prefixes/"]) == set(new["ipam/prefixes/"])  # the rest was applied
    recorded(fab, before, message)
    recovers(base, there)


def test_slow_reads_past_the_timeout(base: sc.Base) -> None:
    fab, here, there, before = begin(base)
    sc.write_config(fab, netbox_timeout=1)
    fault = fab.proxy.fault("^/api/ipam/prefixes/$", method="GET", delay=4, times=None)
    started = time.monotonic()
    result = fab.cli("sync", "dc1")
    assert time.monotonic() - started < 20
    message = f"NetBox at {fab.proxy.url} did not answer GET /api/ipam/prefixes/ within 1s"
    assert (result.exit_code, result.stdout) == (1, f"dc1: error: {message}\n")
    assert fault.seen == 2  # one retry of a read that timed out
    kept(fab, here)
    recorded(fab, before, message)
    recovers(base, there)


def test_slow_write_past_the_timeout_lands_later_without_a_duplicate(base: sc.Base) -> None:
    """NetBox commits a create after hhsync gave up waiting for it: the next run finds the
    object (it carries the tag and fabric) instead of creating it twice."""
    fab, here, there, before = begin(base)
    sc.write_config(fab, netbox_timeout=1)
    slow = fab.proxy.fault("^/api/dcim/devices/$", method="POST", delay=4, times=1)
    result = fab.cli("sync", "dc1")
    assert result.exit_code == 1 and slow.hits == 1
    assert "did not answer POST /api/dcim/devices/ within 1.25s" in result.stdout
    deadline = time.monotonic() + 30
    while not any(r.faulted and r.method == "POST" for r in fab.proxy.log):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    [landed] = [r for r in fab.proxy.log if r.faulted]
    assert landed.status == 201  # NetBox created it, after all
    partial(fab, here, there)
    row = sc.status_row(fab)
    assert (row["state"], row["last_success"]) == ("error", before["last_success"])
    recovers(base, there)


INVALID_TOKEN = b'{"detail":"Invalid v2 token"}'
LOGIN_PAGE = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>SSO</body></html>"


def after_writes(fab: Fabric, n: int, **fault: Any) -> Any:
    """From the n-th inventory write on, every request gets `fault`."""
    return sc.when(
        lambda: sc.inventory_writes(fab) >= n, lambda: fab.proxy.fault("^/", times=None, **fault)
    )


def test_token_revoked_mid_run(base: sc.Base) -> None:
    fab, here, there, before = begin(base)
    with after_writes(fab, 3, status=403, body=INVALID_TOKEN) as revoked:
        result = fab.cli("sync", "dc1")
    assert revoked.is_set() and result.exit_code == 1
    fab.proxy.clear_faults()
    rejected = (
        "token rejected by NetBox (HTTP 403: Invalid v2 token): check [netbox] token_file or "
        "HHSYNC_NETBOX_TOKEN"
    )
    assert result.stdout.rstrip().endswith(f"; recording the state failed: {rejected}")
    assert "NetBox rejected part of the plan: " in result.stdout
    partial(fab, here, there)
    not_recorded(fab, before)
    recovers(base, there)


def test_html_instead_of_json_mid_run(base: sc.Base) -> None:
    fab, here, there, before = begin(base)
    with after_writes(fab, 3, status=200, body=LOGIN_PAGE, content_type="text/html") as html:
        result = fab.cli("sync", "dc1")
    assert html.is_set() and result.exit_code == 1
    fab.proxy.clear_faults()
    assert (
        f"NetBox at {fab.proxy.url} answered PATCH /api/dcim/sites/ with HTTP 200 and text/html "
        "instead of JSON: is [netbox] url the NetBox address (not a proxy or login page), and is "
        "NetBox healthy?"
    ) in result.stdout
    partial(fab, here, there)
    not_recorded(fab, before)
    recovers(base, there)
