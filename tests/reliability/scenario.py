"""Shared pieces of the reliability scenarios: small generated fabrics, a rig (fake Kubernetes +
real NetBox behind the fault proxy), a full snapshot of NetBox compared by natural key, cached
reference snapshots of undisturbed syncs, and the sync state as `hhsync status --json` shows it.

The snapshot is independent of hhsync's own model: it reads every object of every NetBox type
hhsync writes (full representations, not hhsync's field lists), replaces ids with the natural
names of what they point at, and keys each object by its natural key, so two NetBox databases
holding the same fabric compare equal and a duplicate shows up as a key with two objects.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.harness.fakekube import FakeKube
from tests.harness.netbox import NetBoxInstance
from tests.harness.proxy import FaultProxy, ProxyRequest
from tests.integration import contents, ipam
from tests.integration.conftest import Fabric, open_fabric
from tests.reliability import unowned

Obj = dict[str, Any]
STATES = {"never_synced", "in_sync", "out_of_sync", "error"}

# -- fabrics -------------------------------------------------------------------------------------

WIRING = "wiring.githedgehog.com/v1beta1"
VPC = "vpc.githedgehog.com/v1beta1"


def _obj(api: str, kind: str, name: str, spec: Obj) -> Obj:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name}, "spec": spec}


def _switch(name: str, role: str, n: int, **extra: Any) -> Obj:
    spec = {
        "role": role,
        "profile": "vs",
        "description": f"{role} {name}",
        "boot": {"mac": f"0c:20:12:fe:0{n}:00"},
        "asn": 65100 + n,
        "ip": f"172.30.0.{10 + n}/21",
        "protocolIP": f"172.30.8.{n}/32",
        **extra,
    }
    return _obj(WIRING, "Switch", name, spec)


def hedgehog(variant: str = "a", servers: int = 2) -> list[Obj]:
    """A small fabric touching every NetBox type hhsync writes: a spine and an ESLAG leaf pair
    (devices, management interfaces and primary IPs), fabric links with IPs, servers on eslag,
    bundled and unbundled connections (LAGs, members, cables), a VLAN and an IPv4 namespace,
    VPCs (VRFs, route targets, VLANs, prefixes, gateways, a DHCP range), a peering and
    attachments (interface VLANs).

    Variant "b" differs from "a" in every direction: the last server and its connection are
    gone (deletes), a new server, connection and VPC appear (creates), and a description, a
    fabric link's addresses and the peering change (updates).
    """
    b = variant == "b"
    eslag = {"redundancy": {"group": "eslag-1", "type": "eslag"}, "groups": ["eslag-1"]}
    objs = [
        _obj(WIRING, "VLANNamespace", "default", {"ranges": [{"from": 1000, "to": 2999}]}),
        _obj(VPC, "IPv4Namespace", "default", {"subnets": ["10.0.0.0/16"]}),
        _obj(WIRING, "SwitchGroup", "eslag-1", {}),
        _switch("spine-01", "spine", 0, redundancy={}),
        _switch("leaf-01", "server-leaf", 1, vtepIP="172.30.12.1/32", **eslag),
        _switch("leaf-02", "server-leaf", 2, vtepIP="172.30.12.2/32", **eslag),
    ]
    if b:
        objs[3]["spec"]["description"] = "spine-01, renamed rack"
    for i, leaf in enumerate(("leaf-01", "leaf-02")):
        base = 4 * i + (16 if b and i == 1 else 0)
        link = {
            "spine": {"port": f"spine-01/E1/{i + 1}", "ip": f"172.30.128.{base}/31"},
            "leaf": {"port": f"{leaf}/E1/9", "ip": f"172.30.128.{base + 1}/31"},
        }
        objs.append(_obj(WIRING, "Connection", f"spine-01--fabric--{leaf}", {"fabric": {
            "links": [link]}}))  # fmt: skip
    names = [f"server-{n:02d}" for n in range(1, servers + 1)]
    if b:
        names = [*names[:-1], "server-99"]
    shapes = ["eslag", "bundled", "unbundled"]
    for n, name in enumerate(names):
        objs.append(_obj(WIRING, "Server", name, {"description": f"host {name}"}))
        shape = "unbundled" if name == "server-99" else shapes[n % 3]
        port = 10 + n if name != "server-99" else 40
        if shape == "eslag":
            links = [
                {"server": {"port": f"{name}/enp2s{k}"}, "switch": {"port": f"{leaf}/E1/{port}"}}
                for k, leaf in ((1, "leaf-01"), (2, "leaf-02"))
            ]
            spec: Obj = {"eslag": {"links": links, "mtu": 9000}}
        elif shape == "bundled":
            links = [
                {"server": {"port": f"{name}/enp2s{k}"}, "switch": {"port": f"leaf-02/E1/{p}"}}
                for k, p in ((1, port), (2, port + 20))
            ]
            spec = {"bundled": {"links": links}}
        else:
            leaf = "leaf-02" if name == "server-99" else "leaf-01"
            spec = {"unbundled": {"link": {"server": {"port": f"{name}/enp2s1"},
                                           "switch": {"port": f"{leaf}/E1/{port}"}}}}  # fmt: skip
        objs.append(_obj(WIRING, "Connection", f"{name}--{shape}", spec))
    vpcs = {"vpc-1": (1, True), "vpc-2": (2, False)} | ({"vpc-3": (3, False)} if b else {})
    for vpc, (n, dhcp) in vpcs.items():
        subnet: Obj = {"subnet": f"10.0.{n}.0/24", "gateway": f"10.0.{n}.1", "vlan": 1000 + n}
        if dhcp:
            subnet["dhcp"] = {"enable": True, "range": {"start": f"10.0.{n}.10",
                                                        "end": f"10.0.{n}.99"}}  # fmt: skip
        objs.append(_obj(VPC, "VPC", vpc, {"ipv4Namespace": "default",
                                           "vlanNamespace": "default",
                                           "subnets": {"default": subnet}}))  # fmt: skip
    peer = ("vpc-1", "vpc-3") if b else ("vpc-1", "vpc-2")
    objs.append(_obj(VPC, "VPCPeering", "--".join(peer), {"permit": [{p: {} for p in peer}]}))
    attach = {names[0]: ("vpc-1", False), names[1]: ("vpc-2", True)} if len(names) > 1 else {}
    for server, (vpc, native) in attach.items():
        conn = next(o for o in objs if o["kind"] == "Connection" and o["metadata"]["name"]
                    .startswith(f"{server}--"))["metadata"]["name"]  # fmt: skip
        spec = {"connection": conn, "subnet": f"{vpc}/default"} | (
            {"nativeVLAN": True} if native else {}
        )
        objs.append(_obj(VPC, "VPCAttachment", f"{server}--{vpc}", spec))
    return objs


def serve(kube: FakeKube, objs: list[Obj], namespace: str = "default") -> None:
    for o in objs:
        o = copy.deepcopy(o)
        o["metadata"]["namespace"] = namespace
        kube.add(o)


def _name(o: Obj) -> tuple[str, str]:
    return (o["kind"], o["metadata"]["name"])


def replace_objects(kube: FakeKube, old: list[Obj], new: list[Obj]) -> None:
    """Make the fake API serve `new` instead of `old` (namespace default): objects only in
    `old` are deleted, objects in both replaced, new ones added."""
    now = {_name(o): o for o in new}
    for o in old:
        if _name(o) not in now:
            kube.remove(*_name(o))
    before = {_name(o) for o in old}
    for key, o in now.items():
        (kube.replace if key in before else kube.add)(copy.deepcopy(o))


# -- the rig -------------------------------------------------------------------------------------

VARIANTS = {"a": hedgehog("a"), "b": hedgehog("b")}


def write_config(
    fab: Fabric,
    *,
    netbox_timeout: float = 20,
    kube_timeout: float = 5,
    kubeconfig: str = "kubeconfig",
    fabric: str = "",
    run: str = "",
    netbox_url: str | None = None,
) -> Path:
    """config.toml for fabric dc1 on site dc1 (NetBox through the proxy unless `netbox_url`);
    `fabric` and `run` add keys to those sections."""
    url = netbox_url or fab.proxy.url
    fab.config.write_text(
        f'[netbox]\nurl = "{url}"\ntoken_file = "token"\ntimeout = {netbox_timeout}\n'
        f'[run]\nstate_dir = "{fab.tmp / "state"}"\n{run}\n'
        f"[defaults]\ntimeout = {kube_timeout}\n"
        f'[fabrics.dc1]\nsite = "dc1"\nkubeconfig = "{kubeconfig}"\n{fabric}\n'
    )
    return fab.config


def _open(nb: NetBoxInstance, tmp: Path, kube: FakeKube, proxy: FaultProxy) -> Fabric:
    fab = open_fabric(nb, tmp, kube, proxy)
    write_config(fab)
    return fab


@contextmanager
def rig(nb: NetBoxInstance, tmp: Path, *, tls: bool = False) -> Iterator[Fabric]:
    """The integration tests' Fabric: fabric dc1 on site dc1, a fake API with the Hedgehog
    CRDs, the real NetBox behind the fault proxy."""
    with FakeKube(tls=tls) as kube, FaultProxy(nb.url) as proxy:
        try:
            yield _open(nb, tmp, kube, proxy)
        finally:
            if not nb.running:  # leave the session's NetBox running for the next test
                nb.start()


class Base:
    """A rig kept for a whole test module over the session's NetBox, and what it holds.

    Syncing a fabric from scratch costs far more than a fault scenario, so tests start from the
    state the previous one converged to (`variant`), moving to the variant they need by a
    plain sync or, when the state is unknown (a test failed), from an empty NetBox. A test
    proves convergence at its end with `converged`, which also records the new state.
    """

    def __init__(self, fab: Fabric) -> None:
        self.fab = fab
        self.served: list[Obj] = []
        self.variant: str | None = None  # NetBox and the API hold this variant, synced
        self.mark: tuple[int, str] | None = None  # the site's id and last update, then
        self.unowned: unowned.Snapshot = {}  # the hand-made objects no scenario may change

    def fresh(self) -> None:
        """An empty NetBox, but for hand-made objects that every scenario must leave alone."""
        self.fab.netbox.reset()
        unowned.seed(self.fab.api())
        self.unowned = unowned.snapshot(self.fab.netbox)

    def _mark(self) -> tuple[int, str] | None:
        """Cheap evidence that NetBox is still the database we left: the site's id and last
        update (another test resetting NetBox or syncing dc1 changes them)."""
        nb = self.fab.netbox
        with nb.session() as session:
            params = {"slug": "dc1", "fields": "id,last_updated"}
            answer = session.get(f"{nb.url}/api/dcim/sites/", params=params, timeout=60)
        found = answer.json()["results"]
        return (int(found[0]["id"]), str(found[0]["last_updated"])) if found else None

    def _holds(self, variant: str) -> None:
        self.variant, self.mark = variant, self._mark()

    def begin(self) -> Fabric:
        """No faults, the default config, NetBox running, the proxy log empty."""
        fab = self.fab
        fab.proxy.clear_faults()
        fab.kube.clear_faults()
        write_config(fab)
        if not fab.netbox.running:
            fab.netbox.start()
            self.variant = None
        if self.variant is not None and self._mark() != self.mark:
            self.variant = None
        fab.kube.install_hedgehog_crds()  # idempotent; brings back CRDs a test removed
        kinds = {o["kind"] for o in self.served}
        present = {_name(o) for kind in kinds for o in fab.kube.objects(kind)}
        gone = [o for o in self.served if _name(o) not in present]  # removed with their CRD
        serve(fab.kube, gone)
        return fab

    def serve(self, variant: str) -> list[Obj]:
        """Make the fake API serve `variant` (whatever it served before)."""
        objs = VARIANTS[variant]
        for o in self.served:
            with suppress(KeyError):
                self.fab.kube.remove(*_name(o))
        serve(self.fab.kube, objs)
        self.served = objs
        return objs

    def reference(self, variant: str) -> Snapshot:
        """The snapshot of an undisturbed sync of `variant` from an empty NetBox, taken once per
        session (taking it leaves NetBox at `variant`)."""
        if variant not in REFERENCES.snaps:
            fab = self.begin()
            self.fresh()
            objs = self.serve(variant)
            sync(fab)
            REFERENCES.take(fab, variant, objs)
            self._holds(variant)
        return REFERENCES.snaps[variant]

    def at(self, variant: str, *, then: str | None = None) -> Fabric:
        """Start a test with NetBox holding `variant`, synced, and the API serving it (and the
        reference of `then`, the variant the test moves to, known)."""
        for needed in (then, variant):
            if needed is not None:
                self.reference(needed)
        fab = self.begin()
        if self.variant != variant:
            if self.variant is None:
                self.fresh()
            self.serve(variant)
            sync(fab)
            assert_converged(fab, variant)
            self._holds(variant)
        self.variant = None  # until the test proves convergence again
        fab.proxy.reset_log()
        fab.kube.requests.clear()
        return fab

    def flip(self) -> tuple[Fabric, str, str]:
        """Start a test at the variant NetBox holds (a when unknown) with the API already serving
        the other one: the next run has deletes, creates and updates to make."""
        here = self.variant or "a"
        there = "b" if here == "a" else "a"
        fab = self.at(here, then=there)
        self.serve(there)
        return fab, here, there

    def empty(self, variant: str) -> Fabric:
        """Start a test with an empty NetBox (its reference known) and the API serving it."""
        self.reference(variant)
        fab = self.begin()
        self.fresh()
        self.serve(variant)
        self.variant = None
        fab.proxy.reset_log()
        fab.kube.requests.clear()
        return fab

    def converged(self, variant: str) -> Snapshot:
        """NetBox holds exactly the reference of `variant` (see `assert_converged`), and the
        hand-made objects exactly as they were made."""
        snap = assert_converged(self.fab, variant)
        changed = unowned.changes(self.unowned, unowned.snapshot(self.fab.netbox))
        check(changed == {}, [f"{how}: {o}" for how, objs in changed.items() for o in objs])
        self._holds(variant)
        return snap


_SHARED: list[Base] = []


def shared_base(
    netbox: NetBoxInstance, tmp_path_factory: pytest.TempPathFactory, config: pytest.Config
) -> Base:
    """One Base for the whole session: a module starts where the previous one left NetBox,
    unless something else emptied or changed it since (then it starts from scratch)."""
    if not _SHARED:
        kube, proxy = FakeKube().start(), FaultProxy(netbox.url).start()
        config.add_cleanup(kube.stop)
        config.add_cleanup(proxy.stop)
        _SHARED.append(Base(_open(netbox, tmp_path_factory.mktemp("base"), kube, proxy)))
    base = _SHARED[0]
    if not netbox.running:
        netbox.start()
    return base


def sync(fab: Fabric, *args: str, fabric: str = "dc1") -> Any:
    """An in-process forced sync that must succeed; returns the CLI result."""
    result = fab.cli("sync", fabric, "--force", *args)
    assert result.exit_code == 0, result.output
    return result


# -- snapshots -----------------------------------------------------------------------------------

SHARED = ("dcim/manufacturers/", "dcim/device-types/", "dcim/platforms/", "dcim/device-roles/")
OWNED = (
    "ipam/route-targets/",
    "ipam/vrfs/",
    "ipam/vlan-groups/",
    "ipam/vlans/",
    "ipam/prefixes/",
    "ipam/ip-ranges/",
    "dcim/devices/",
    "dcim/interfaces/",
    "ipam/ip-addresses/",
    "dcim/cables/",
)
KEYS: dict[str, tuple[str, ...]] = {
    "ipam/route-targets/": ("name",),
    "ipam/vrfs/": ("name",),
    "ipam/vlan-groups/": ("slug",),
    "ipam/vlans/": ("group", "vid"),
    "ipam/prefixes/": ("vrf", "prefix"),
    "ipam/ip-ranges/": ("vrf", "start_address", "end_address"),
    "dcim/devices/": ("site", "name"),
    "dcim/interfaces/": ("device", "name"),
    "ipam/ip-addresses/": ("vrf", "address"),
    "dcim/cables/": ("label", "a_terminations", "b_terminations"),
}
DROPPED = {"id", "url", "display_url", "created", "last_updated"}
Snapshot = dict[str, dict[str, list[Obj]]]  # endpoint -> natural key -> objects with that key


def _ref(value: Obj) -> str:
    """A nested object by its natural name (ids differ between two databases)."""
    device = value.get("device")
    if isinstance(device, dict):
        return f"{_ref(device)}:{value.get('name') or value['display']}"
    return str(value.get("display") or value.get("name") or value.get("slug"))


def normalise(value: Any, top: bool = False) -> Any:
    if isinstance(value, dict):
        if not top and "id" in value and ("url" in value or "display" in value):
            return _ref(value)
        if set(value) == {"value", "label"}:  # a choice
            return value["value"]
        if "object_type" in value and "object" in value:  # a cable termination
            return f"{value['object_type']}:{_ref(value['object'])}"
        return {
            k: normalise(v)
            for k, v in value.items()
            if k not in DROPPED and not (k.endswith("_id") and not isinstance(v, dict | list))
        }
    if isinstance(value, list):
        items = [normalise(v) for v in value]
        return sorted(items) if all(isinstance(i, str) for i in items) else items
    return value


def _key(endpoint: str, obj: Obj) -> str:
    parts = KEYS.get(endpoint, ("slug",))
    return " | ".join(json.dumps(obj.get(p), sort_keys=True) for p in parts)


def snapshot(nb: NetBoxInstance, fabric: str | None = None) -> Snapshot:
    """Every object of every type hhsync writes (all of NetBox, or one fabric's owned objects),
    normalised and keyed by natural key. Read straight from NetBox, not through the proxy."""
    snap: Snapshot = {}
    endpoints = OWNED if fabric else (*SHARED, *OWNED)
    params = {"cf_hhsync_fabric": fabric} if fabric else {}
    with nb.session() as session:
        lists = unowned.read_all(session, [f"{nb.url}/api/{e}" for e in endpoints], params)
    for endpoint, objects in zip(endpoints, lists, strict=True):
        by_key: dict[str, list[Obj]] = {}
        for raw in objects:
            if unowned.HAND_MADE in {t["slug"] for t in raw.get("tags") or ()}:
                continue  # watched by `unowned` instead
            obj = normalise(raw, top=True)
            by_key.setdefault(_key(endpoint, obj), []).append(obj)
        snap[endpoint] = by_key
    return snap


def duplicates(snap: Snapshot) -> list[str]:
    return [f"{e} {k} x{len(v)}" for e, objs in snap.items() for k, v in objs.items() if len(v) > 1]


def count(snap: Snapshot) -> int:
    return sum(len(v) for objs in snap.values() for v in objs.values())


def diff(want: Snapshot, got: Snapshot) -> list[str]:
    """Readable differences: missing, unexpected and changed objects (by natural key)."""
    out = []
    for endpoint in sorted(want.keys() | got.keys()):
        a, b = want.get(endpoint, {}), got.get(endpoint, {})
        for key in sorted(a.keys() - b.keys()):
            out.append(f"missing {endpoint} {key}")
        for key in sorted(b.keys() - a.keys()):
            out.append(f"unexpected {endpoint} {key}")
        for key in sorted(a.keys() & b.keys()):
            if a[key] != b[key]:
                fields = sorted(
                    f
                    for x, y in zip(a[key], b[key], strict=False)
                    for f in x.keys() | y.keys()
                    if x.get(f) != y.get(f)
                )
                out.append(f"changed {endpoint} {key}: {fields or 'count'}")
    return out


def lost(want: Snapshot, got: Snapshot) -> int:
    """Objects of the reference that are missing or altered."""
    return sum(
        len(objs) if got.get(e, {}).get(k) != objs else 0
        for e, by_key in want.items()
        for k, objs in by_key.items()
    )


class References:
    """Snapshots of undisturbed syncs, one per fabric variant, computed once per session.

    `take` records the current NetBox as the reference of a variant, after checking it against
    the independent YAML expectations (tests/integration/contents.py and ipam.py), or checks
    it against the one recorded earlier.
    """

    def __init__(self) -> None:
        self.snaps: dict[str, Snapshot] = {}

    def take(self, fab: Fabric, variant: str, objs: list[Obj]) -> Snapshot:
        snap = snapshot(fab.netbox)
        check(duplicates(snap) == [], duplicates(snap))
        assert contents.read(fab.api()) == contents.expected(objs), variant
        assert ipam.read(fab.api()) == ipam.expected(objs), variant
        if variant in self.snaps:
            check(diff(self.snaps[variant], snap) == [], diff(self.snaps[variant], snap))
        self.snaps.setdefault(variant, snap)
        return snap


REFERENCES = References()


def reference(fab: Fabric, variant: str) -> Snapshot:
    """The reference of `variant`, computed (on a test's still empty NetBox: serve it in
    namespace default, sync, snapshot, empty NetBox again) when no test took it yet."""
    if variant not in REFERENCES.snaps:
        objs = VARIANTS[variant]
        serve(fab.kube, objs)
        sync(fab)
        REFERENCES.take(fab, variant, objs)
        for o in objs:
            fab.kube.remove(*_name(o))
        fab.netbox.reset()
        fab.proxy.reset_log()
    return REFERENCES.snaps[variant]


def assert_converged(fab: Fabric, variant: str) -> Snapshot:
    """NetBox holds exactly what an undisturbed sync of the variant left (whose reference was
    checked against the YAML expectations when it was taken), with no duplicates."""
    snap = snapshot(fab.netbox)
    check(duplicates(snap) == [], duplicates(snap))
    check(diff(REFERENCES.snaps[variant], snap) == [], diff(REFERENCES.snaps[variant], snap))
    return snap


def same(want: Snapshot, got: Snapshot) -> None:
    """`got` holds exactly the objects of `want`; the message lists every difference."""
    found = diff(want, got)
    check(found == [], found)


def check(ok: bool, problems: list[str]) -> None:
    """An assertion that shows its findings (this module is not assertion-rewritten)."""
    assert ok, "\n".join(problems)


# -- faults --------------------------------------------------------------------------------------


@contextmanager
def _watching(watch: Callable[[threading.Event], None]) -> Iterator[None]:
    """Run `watch(done)` in a thread for the length of the block; `done` is set at its end."""
    done = threading.Event()
    watcher = threading.Thread(target=watch, args=(done,), daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


@contextmanager
def when(
    condition: Callable[[], bool], action: Callable[[], Any], timeout: float = 120
) -> Iterator[threading.Event]:
    """Run `action` once, from a watcher thread, as soon as `condition` holds; the event yielded
    is set when it ran."""
    fired = threading.Event()

    def watch(done: threading.Event) -> None:
        deadline = time.monotonic() + timeout
        while not done.is_set() and time.monotonic() < deadline:
            if condition():
                action()
                fired.set()
                return
            time.sleep(0.005)

    with _watching(watch):
        yield fired


@contextmanager
def arrivals(*faults: Any) -> Iterator[list[list[float]]]:
    """When the requests each fault matched arrived (polled every 5 ms from a thread)."""
    times: list[list[float]] = [[] for _ in faults]

    def watch(done: threading.Event) -> None:
        while not done.is_set():
            for fault, seen in zip(faults, times, strict=True):
                while fault.seen > len(seen):
                    seen.append(time.monotonic())
            time.sleep(0.005)

    with _watching(watch):
        yield times


@contextmanager
def timeline(proxy: FaultProxy) -> Iterator[list[tuple[float, ProxyRequest]]]:
    """Every request the proxy answers, with (about) when it arrived: the proxy logs a request
    as it answers, so arrival = when the log entry appeared - how long the answer took."""
    seen: list[tuple[float, ProxyRequest]] = []

    def watch(done: threading.Event) -> None:
        while True:
            stop = done.is_set()
            now = time.monotonic()
            seen.extend((now - r.duration, r) for r in proxy.log[len(seen) :])
            if stop:
                return
            time.sleep(0.005)

    with _watching(watch):
        yield seen


def retried_after(seen: list[tuple[float, ProxyRequest]], method: str, path: str) -> float:
    """Seconds between a faulted request and the next one with the same method, path and
    query (its retry)."""
    first = next(i for i, (_, r) in enumerate(seen) if r.faulted and (r.method, r.path) == (
        method, path))  # fmt: skip
    when, request = seen[first]
    again = next(t for t, r in seen[first + 1 :] if (r.method, r.path, r.query) == (
        request.method, request.path, request.query))  # fmt: skip
    return again - when


def inventory_writes(fab: Fabric) -> int:
    """Writes the proxy answered, other than set-up and the sync state/journal."""
    return sum(1 for r in fab.proxy.writes() if not BOOKKEEPING.search(r.path))


BOOKKEEPING = re.compile(r"^/api/(extras/|dcim/sites/)")
INVENTORY = r"^/api/(?!extras/|dcim/sites/)"  # a fault path regex for inventory requests


def age(fab: Fabric, minutes: float = 11) -> None:
    """Make the stored sync state `minutes` old (the way a timer finds a fabric it is due to
    sync): with the default interval of 5m, 11 minutes is out of sync and due."""
    then = (datetime.now(UTC) - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
    site = fab.api().dcim.sites.get(slug="dc1")
    fields = {"hhsync_last_attempt": then}
    if site.custom_fields.get("hhsync_last_success"):
        fields["hhsync_last_success"] = then
    site.custom_fields.update(fields)
    site.save()


# -- sync state ----------------------------------------------------------------------------------


def status_rows(fab: Fabric, *fabrics: str) -> list[Obj]:
    result = fab.cli("status", "--json", *fabrics)
    doc = json.loads(result.stdout)
    return list(doc["fabrics"])


def status_row(fab: Fabric, fabric: str = "dc1") -> Obj:
    [row] = status_rows(fab, fabric)
    return row


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


SUMMARY = re.compile(
    r"^created (\d+), updated (\d+), deleted (\d+), unchanged (\d+), skipped (\d+), "
    r"conflicts (\d+)"
)


def consistent(row: Obj) -> list[str]:
    """What is wrong with one status row (empty when it is a state one run wrote whole)."""
    problems = []
    state, result = row.get("state"), row.get("result")
    success, attempt = _time(row.get("last_success")), _time(row.get("last_attempt"))
    if state not in STATES:
        problems.append(f"state {state!r}")
    if (attempt is None) != (state == "never_synced"):
        problems.append(f"state {state} with last_attempt {attempt}")
    if result == "ok":
        if success != attempt:
            problems.append(f"result ok but last_success {success} != last_attempt {attempt}")
        m = SUMMARY.match(row.get("message") or "")
        counts = row.get("counts") or {}
        keys = ("created", "updated", "deleted", "unchanged", "skipped", "conflicts")
        if not m or [int(g) for g in m.groups()] != [counts.get(k) for k in keys]:
            problems.append(f"message {row.get('message')!r} does not match counts {counts}")
        if state not in ("in_sync", "out_of_sync"):
            problems.append(f"result ok but state {state}")
    elif result == "error":
        if success is not None and attempt is not None and success > attempt:
            problems.append(f"result error but last_success {success} > last_attempt {attempt}")
        if state != "error":
            problems.append(f"result error but state {state}")
        if not row.get("message"):
            problems.append("result error without a message")
    elif state != "never_synced":
        problems.append(f"state {state} without a result")
    return problems
