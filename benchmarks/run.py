"""hhsync against NetBox's own floor and the per-object baseline, on one real NetBox.

    .venv/bin/python benchmarks/run.py [--size S,M] [--out BENCHMARKS.md] [--keep] [--seed 0]

For each size, on a fresh database each: *floor* (bulk POSTs prepared from hhsync's desired
state), *baseline* (GET by natural key, then POST/PATCH one object at a time: initial and a
re-run), *hhsync* (the real CLI as a subprocess against a fake Kubernetes API: initial sync,
no-op re-sync, a 1% change, a re-sync after hand edits in NetBox). Every NetBox request goes
through a counting proxy. Prints a table and writes BENCHMARKS.md with the issue's targets.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import clients, fabricgen  # noqa: E402
from hhsync import __version__  # noqa: E402
from hhsync.kube.kinds import KINDS  # noqa: E402
from hhsync.model import TAG, TYPES, Item, Ref  # noqa: E402
from hhsync.plan import Record, make_plan  # noqa: E402
from tests.harness.fakekube import FakeKube  # noqa: E402
from tests.harness.netbox import NetBoxInstance, ensure_netbox_env, start_netbox  # noqa: E402
from tests.harness.proxy import FaultProxy  # noqa: E402

FABRIC = "bench"
# Writes that are not inventory: set-up, the site, its sync state and journal (as in the tests).
BOOKKEEPING = {
    ("POST", "/api/extras/tags/"),
    ("POST", "/api/extras/custom-fields/"),
    ("POST", "/api/dcim/sites/"),
    ("PATCH", "/api/dcim/sites/"),
    ("POST", "/api/extras/journal-entries/"),
}
WRITES = ("POST", "PATCH", "PUT", "DELETE")
CLIENTS = ("floor", "baseline", "hhsync")
LIST_PATH = re.compile(r"^/apis/[^/]+/[^/]+/(namespaces/[^/]+/)?[^/]+$")


@dataclass
class Done:
    """What one scenario's client reports: objects written, and its own CPU/RSS if measured."""

    objects: int
    note: str = ""
    ok: bool = True
    cpu: float | None = None
    rss_mb: float | None = None
    scale: float = 1.0  # a sample: the figures are multiplied by this


@dataclass
class Row:
    size: str
    client: str
    scenario: str
    wall: float
    requests: Counter[str]
    inventory_writes: int
    objects: int
    cpu: float | None
    rss_mb: float | None
    netbox_cpu: float
    in_requests: float  # seconds spent waiting on NetBox answers (summed)
    kube: int = 0
    kube_lists: int = 0
    ok: bool = True
    note: str = ""
    load: float = 0.0  # 1-minute load average when the scenario ended
    pattern: list[tuple[str, int, float]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.requests.values())


def netbox_cpu(pgid: int | None) -> float:
    """CPU seconds used so far by the gunicorn process group (master and workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if pgid is not None and int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def source_digest() -> str:
    """A digest of hhsync's code: others may edit it while a benchmark runs."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "hhsync").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@dataclass
class Bench:
    nb: NetBoxInstance
    proxy: FaultProxy
    tmp: Path
    seed: int
    sample: int = 1  # the baseline re-run visits every n-th object
    measured: tuple[str, ...] = CLIENTS  # which clients to measure
    rows: list[Row] = field(default_factory=list)
    load_start: float = 0.0
    startup: float = 0.0  # seconds to start Python and import hhsync: part of every run
    code: str = field(default_factory=source_digest)  # hhsync's code when the benchmark started

    def fresh(self) -> None:
        """An empty database, and a few reads so every gunicorn worker has reconnected."""
        self.nb.reset()
        api = self.direct()
        for _ in range(8):
            api.call("GET", "dcim/devices/", limit=1)

    def api(self) -> clients.Api:
        """Through the counting proxy."""
        return clients.Api(self.proxy.url, self.nb.session())

    def direct(self) -> clients.Api:
        """Straight to NetBox: set-up and checks that are not part of any measurement."""
        return clients.Api(self.nb.url, self.nb.session())

    def measure(
        self, size: str, client: str, scenario: str, work: Callable[[], Done], kube: FakeKube | None
    ) -> Row:
        self.proxy.reset_log()
        kube_before = len(kube.requests) if kube else 0
        server = netbox_cpu(self.nb.pid)
        thread, start = time.thread_time(), time.perf_counter()
        done = work()
        wall, cpu = time.perf_counter() - start, time.thread_time() - thread
        log = list(self.proxy.log)
        k = done.scale
        if k != 1:
            done.note += (
                f"measured {wall:.1f}s and {len(log)} requests on a sample, scaled x{k:.2f}"
            )
        kube_requests = kube.requests[kube_before:] if kube else []
        pattern: dict[str, list[float]] = {}
        for r in log:
            path = re.sub(r"/\d+/$", "/<id>/", r.path)
            pattern.setdefault(f"{r.method} {path}", []).append(r.duration)
        row = Row(
            size,
            client,
            scenario,
            wall * k,
            Counter({m: round(n * k) for m, n in Counter(r.method for r in log).items()}),
            sum(1 for r in log if r.method in WRITES and (r.method, r.path) not in BOOKKEEPING),
            done.objects,
            done.cpu if done.cpu is not None else cpu * k,
            done.rss_mb,
            (netbox_cpu(self.nb.pid) - server) * k,
            sum(r.duration for r in log) * k,
            len(kube_requests),
            sum(1 for r in kube_requests if LIST_PATH.match(r.path)),
            done.ok,
            done.note,
            os.getloadavg()[0],
            sorted(((e, len(d), sum(d)) for e, d in pattern.items()), key=lambda p: -p[2]),
        )
        self.rows.append(row)
        print(line(row), flush=True)
        return row


# ------------------------------------------------------------------------------------------
# hhsync as its own process


def write_config(tmp: Path, kube: FakeKube, proxy: FaultProxy, token: str) -> Path:
    kube.write_kubeconfig(tmp / "kubeconfig")
    (tmp / "token").write_text(token + "\n")
    (tmp / "token").chmod(0o600)
    config = tmp / "config.toml"
    config.write_text(
        f'[netbox]\nurl = "{proxy.url}"\ntoken_file = "{tmp / "token"}"\ntimeout = 600\n'
        f'[run]\nstate_dir = "{tmp / "state"}"\n'
        '[defaults]\ninterval = "2h"\ndeadline = "110m"\n'
        f'[fabrics.{FABRIC}]\nsite = "{FABRIC}"\nkubeconfig = "{tmp / "kubeconfig"}"\n'
    )
    return config


def hhsync(config: Path, code: str) -> Done:
    """`hhsync sync` in a child process; its CPU time and peak RSS come from wait4(). `code`:
    the digest of hhsync's code when the benchmark started."""
    env = {k: v for k, v in os.environ.items() if k not in ("HHSYNC_NETBOX_TOKEN", "HHSYNC_CONFIG")}
    env["CREDENTIALS_DIRECTORY"] = ""
    cmd = [sys.executable, "-m", "hhsync", "--config", str(config)]
    cmd += ["sync", FABRIC, "--force", "--json"]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    cpu, rss = usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024
    try:
        [report] = json.loads(stdout)["fabrics"]
    except (ValueError, KeyError):
        return Done(0, f"exit {proc.returncode}: {stderr.strip()[-300:]}", False, cpu, rss)
    c = report["counts"]
    note = f"created {c['created']}, updated {c['updated']}, deleted {c['deleted']}"
    if (now := source_digest()) != code:
        note += f"; **hhsync's code changed during the benchmark** ({code} -> {now})"
    if not report["ok"]:
        note += f"; error: {report['error']}"
    objects = c["created"] + c["updated"] + c["deleted"]
    return Done(objects, note, bool(report["ok"]), cpu, rss)


def startup_seconds() -> float:
    """The best of 3 Python starts importing what `hhsync sync` imports."""
    code = "import hhsync.cli, hhsync.run, hhsync.kube.client, hhsync.netbox.client"
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)


def serve_changes(kube: FakeKube, before: list[dict[str, Any]], after: list[dict[str, Any]]) -> int:
    """Make the fake API hold `after` instead of `before`; returns the objects touched."""

    def key(o: dict[str, Any]) -> tuple[str, str]:
        return (o["kind"], o["metadata"]["name"])

    old, new = {key(o): o for o in before}, {key(o): o for o in after}
    for kind, name in old.keys() - new.keys():
        kube.remove(kind, name)
    for k in new.keys() - old.keys():
        kube.add(new[k])
    changed = [k for k in old.keys() & new.keys() if old[k]["spec"] != new[k]["spec"]]
    for k in changed:
        current = next(o for o in kube.objects(k[0]) if o["metadata"]["name"] == k[1])
        kube.replace({**current, "spec": new[k]["spec"]})
    return len(old.keys() ^ new.keys()) + len(changed)


def expected_changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> Counter[str]:
    """What the pure planner says a change from `before` to `after` must write."""
    old = fabricgen.desired_items(before)
    current = {
        ref: Record(i, Item(item.type, item.attrs), owned=not TYPES[ref.type].shared)
        for i, (ref, item) in enumerate(old.items.items())
    }
    plan = make_plan(fabricgen.desired_items(after), current)
    return Counter({k: v for k, v in plan.summary().items() if k != "unchanged"})


def hand_edit(api: clients.Api) -> dict[str, Any]:
    """Edit 5 owned interfaces (description, MTU) and delete 1 owned cable, one at a time."""
    found = api.call("GET", "dcim/interfaces/", tag=TAG, cabled="true", ordering="id", limit=5)
    originals = {i["id"]: (i["description"], i["mtu"]) for i in found["results"]}
    for ident in originals:
        api.call("PATCH", f"dcim/interfaces/{ident}/", {"description": "by hand", "mtu": 1234})
    cable = api.call("GET", "dcim/cables/", tag=TAG, ordering="id", limit=1)["results"][0]
    api.call("DELETE", f"dcim/cables/{cable['id']}/")
    end = cable["a_terminations"][0]["object_id"]
    return {"interfaces": originals, "cable_end": end, "label": cable["label"]}


def repaired(api: clients.Api, edits: dict[str, Any]) -> str:
    """'' when every hand edit was undone, else what was not."""
    wrong = []
    for ident, original in edits["interfaces"].items():
        now = api.call("GET", f"dcim/interfaces/{ident}/")
        if (now["description"], now["mtu"]) != original:
            wrong.append(f"interface {ident} is {now['description']!r}/{now['mtu']}")
    end = api.call("GET", f"dcim/interfaces/{edits['cable_end']}/")
    if not end["cable"]:
        wrong.append(f"the deleted cable {edits['label']!r} is still missing")
    return "; ".join(wrong)


def inventory(api: clients.Api) -> dict[str, int]:
    """Objects per hhsync type now in NetBox (checks that all clients wrote the same)."""
    return {
        name: api.call("GET", spec.endpoint, limit=1, brief="true", **spec.filters)["count"]
        for name, spec in TYPES.items()
    }


def kube_list_floor(objects: list[dict[str, Any]]) -> int:
    """The target: one list request per kind per 500 objects."""
    counts = Counter(o["kind"] for o in objects)
    return sum(max(1, math.ceil(counts[k.kind] / 500)) for k in KINDS)


# ------------------------------------------------------------------------------------------
# One size


def bench_size(bench: Bench, size: str) -> dict[str, Any]:
    objects = fabricgen.generate(size, seed=bench.seed)
    desired = fabricgen.desired_items(objects)
    info: dict[str, Any] = {"objects": len(desired.items), "hedgehog": len(objects)}
    print(f"== size {size}: {len(objects)} Hedgehog objects -> {len(desired.items)} NetBox objects")

    written: dict[str, dict[str, int]] = {}  # objects per type each client left in NetBox
    info["written"] = written
    if "floor" in bench.measured:
        bench.fresh()
        floor = lambda: Done(clients.floor(bench.api(), desired, FABRIC))  # noqa: E731
        bench.measure(size, "floor", "initial", floor, None)
        written["floor"] = inventory(bench.direct())

    if "baseline" in bench.measured:
        bench.fresh()
        ids: dict[Ref, int] = {}  # the re-run finds the parents of objects left out of its sample

        def per_object(every: int) -> Done:
            if every == 1:  # the re-run samples objects: its scaled figures leave this out
                clients.setup_schema(bench.api(), check=True)
            count, visited = clients.baseline(bench.api(), desired, FABRIC, ids, every)
            note = f"visited every {every}th object ({visited}); " if every > 1 else ""
            return Done(count, note, scale=len(desired.items) / visited)

        bench.measure(size, "baseline", "initial", lambda: per_object(1), None)
        bench.measure(size, "baseline", "re-run", lambda: per_object(bench.sample), None)
        written["baseline"] = inventory(bench.direct())

    if "hhsync" in bench.measured:
        hhsync_runs(bench, size, objects, info)
    return info


def hhsync_runs(
    bench: Bench, size: str, objects: list[dict[str, Any]], info: dict[str, Any]
) -> None:
    """Initial sync, no-op re-sync, a 1% change and hand edits, one after the other."""
    bench.fresh()
    with FakeKube() as kube:
        kube.install_hedgehog_crds()
        for o in objects:
            kube.add(o)
        config = write_config(bench.tmp, kube, bench.proxy, bench.nb.token)
        bench.measure(size, "hhsync", "initial", lambda: hhsync(config, bench.code), kube)
        info["written"]["hhsync"] = inventory(bench.direct())
        bench.measure(size, "hhsync", "no-op re-sync", lambda: hhsync(config, bench.code), kube)

        changed = fabricgen.mutate_one_percent(objects, seed=bench.seed)
        touched = serve_changes(kube, objects, changed)
        expect = expected_changes(objects, changed)
        row = bench.measure(size, "hhsync", "1% change", lambda: hhsync(config, bench.code), kube)
        row.note += f" ({touched} Hedgehog objects changed; pure plan: " + ", ".join(
            f"{k} {v}" for k, v in expect.items()
        )
        row.note += ")"
        info["expected_1pct"] = sum(expect.values()) - expect["conflicts"]

        edits = hand_edit(bench.direct())
        row = bench.measure(size, "hhsync", "hand edit", lambda: hhsync(config, bench.code), kube)
        problem = repaired(bench.direct(), edits)
        row.note += "; repaired" if not problem else f"; NOT repaired: {problem}"
        info["repaired"] = not problem
        info["kube_list_floor"] = kube_list_floor(changed)


# ------------------------------------------------------------------------------------------
# Report


def line(r: Row) -> str:
    req = " ".join(f"{m}={r.requests[m]}" for m in ("GET", *WRITES) if r.requests[m])
    cpu = f"cpu {r.cpu:.1f}s" if r.cpu is not None else ""
    rss = f"rss {r.rss_mb:.0f}MB" if r.rss_mb is not None else ""
    return (
        f"{r.size} {r.client:8} {r.scenario:14} {r.wall:8.1f}s  {req}  {cpu} {rss} "
        f"netbox-cpu {r.netbox_cpu:.1f}s  k8s {r.kube}  {r.note}"
    )


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(rows: list[Row]) -> list[str]:
    out = [
        "| size | client | scenario | wall s | NetBox request time s | NetBox requests "
        "(GET/POST/PATCH/DELETE) | total | inventory writes | objects written | "
        "k8s requests (lists) | client CPU s | CPU % of wall | peak RSS MB | NetBox CPU s | "
        "load | notes |",
        "|---|---|---|--:|--:|---|--:|--:|--:|---|--:|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        methods = "/".join(str(r.requests[m]) for m in ("GET", "POST", "PATCH", "DELETE"))
        kube = f"{r.kube} ({r.kube_lists})" if r.client == "hhsync" else "-"
        share = 100 * r.cpu / r.wall if r.cpu is not None and r.wall else None
        out.append(
            f"| {r.size} | {r.client} | {r.scenario} | {r.wall:.1f} | {r.in_requests:.1f} | "
            f"{methods} | {r.total} | "
            f"{r.inventory_writes} | {r.objects} | {kube} | {fmt(r.cpu)} | {fmt(share, 0)} | "
            f"{fmt(r.rss_mb, 0)} | {r.netbox_cpu:.1f} | {r.load:.1f} | {r.note.strip()} |"
        )
    return out


def find(rows: list[Row], size: str, client: str, scenario: str) -> Row | None:
    return next(
        (r for r in rows if (r.size, r.client, r.scenario) == (size, client, scenario)), None
    )


def ratios(rows: list[Row], sizes: list[str]) -> list[str]:
    out = [
        "| size | hhsync / floor (initial wall) | baseline / hhsync (initial wall) | "
        "baseline / hhsync (re-run wall) | baseline / hhsync (initial requests) | "
        "baseline / hhsync (re-run requests) |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for size in sizes:
        fl, bi, br = (
            find(rows, size, c, s)
            for c, s in (("floor", "initial"), ("baseline", "initial"), ("baseline", "re-run"))
        )
        hi, hn = find(rows, size, "hhsync", "initial"), find(rows, size, "hhsync", "no-op re-sync")
        if not (fl and bi and br and hi and hn):
            continue
        out.append(
            f"| {size} | {hi.wall / fl.wall:.2f} | {bi.wall / hi.wall:.2f} | "
            f"{br.wall / hn.wall:.1f} | {bi.total / hi.total:.1f} | {br.total / hn.total:.1f} |"
        )
    return out


def targets(rows: list[Row], infos: dict[str, dict[str, Any]]) -> list[str]:
    size = "M"
    fl, bi, br = (
        find(rows, size, c, s)
        for c, s in (("floor", "initial"), ("baseline", "initial"), ("baseline", "re-run"))
    )
    hi, hn, hc, he = (
        find(rows, size, "hhsync", s)
        for s in ("initial", "no-op re-sync", "1% change", "hand edit")
    )
    out = ["| target | measured | result |", "|---|---|---|"]

    def add(target: str, measured: str, ok: bool) -> None:
        out.append(f"| {target} | {measured} | {'PASS' if ok else '**FAIL**'} |")

    if not (fl and bi and br and hi and hn and hc and he):
        return ["Size M was not run: no target verdicts (run with `--size M`)."]
    info = infos[size]
    add(
        "M initial: wall <= 1.25 x floor",
        f"{hi.wall:.1f}s = {hi.wall / fl.wall:.2f} x floor {fl.wall:.1f}s",
        hi.ok and hi.wall <= 1.25 * fl.wall,
    )
    add(
        "M initial: >= 2 x faster than baseline",
        f"baseline {bi.wall:.1f}s = {bi.wall / hi.wall:.2f} x hhsync",
        bi.wall >= 2 * hi.wall,
    )
    add(
        "M initial: NetBox requests <= 1/20 of baseline's",
        f"{hi.total} vs {bi.total} (1/{bi.total / max(hi.total, 1):.1f})",
        20 * hi.total <= bi.total,
    )
    add(
        "M no-op: 0 inventory writes (sync-state PATCH aside)",
        f"{hn.inventory_writes} "
        f"inventory writes, writes {sum(hn.requests[m] for m in WRITES)} in all",
        hn.ok and hn.inventory_writes == 0,
    )
    add("M no-op: <= 10 NetBox requests", f"{hn.total}", hn.total <= 10)
    add(
        "M no-op: >= 30 x faster than baseline re-run",
        f"{hn.wall:.1f}s vs {br.wall:.1f}s ({br.wall / hn.wall:.1f} x)",
        br.wall >= 30 * hn.wall,
    )
    add(
        "M 1% change: writes only the changed objects",
        f"{hc.objects} objects written, pure plan {info['expected_1pct']}",
        hc.ok and hc.objects == info["expected_1pct"],
    )
    add(
        "M 1% change: wall <= 10% of initial",
        f"{hc.wall:.1f}s = {100 * hc.wall / hi.wall:.0f}%",
        hc.wall <= 0.10 * hi.wall,
    )
    add("M hand edit: repaired", "yes" if info["repaired"] else "no", info["repaired"] and he.ok)
    add(
        "M hand edit: wall <= 25% of initial",
        f"{he.wall:.1f}s = {100 * he.wall / hi.wall:.0f}%",
        he.wall <= 0.25 * hi.wall,
    )
    cpu = hi.cpu or 0.0
    add(
        "M initial: hhsync CPU <= 15% of its wall",
        f"{cpu:.1f}s of {hi.wall:.1f}s = {100 * cpu / hi.wall:.1f}%",
        cpu <= 0.15 * hi.wall,
    )
    rss = max((r.rss_mb or 0.0) for r in rows if r.size == size and r.client == "hhsync")
    add("M: peak RSS <= 150 MB", f"{rss:.0f} MB", rss <= 150)
    per_object = [
        (s, row.wall / i["objects"])
        for s, i in infos.items()
        if (row := find(rows, s, "hhsync", "initial"))
    ]
    steps = list(itertools.pairwise(per_object))
    add(
        "S -> M -> L: growth close to linear (ms/object at most 1.25 x the smaller size's)",
        ", ".join(f"{s} {1000 * t:.0f} ms/object" for s, t in per_object),
        all(b[1] <= 1.25 * a[1] for a, b in steps),
    )
    lists = max(r.kube_lists for r in (hi, hn, hc, he))
    add(
        "Kubernetes: one list request per kind per 500 objects",
        f"{lists} lists per run (target {info['kube_list_floor']})",
        lists <= info["kube_list_floor"],
    )
    return out


def growth(rows: list[Row], infos: dict[str, dict[str, Any]]) -> list[str]:
    out = [
        "| size | NetBox objects | floor ms/object | baseline initial ms/object | "
        "hhsync initial ms/object | hhsync no-op s | hhsync 1% change s |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]

    def wall(size: str, client: str, scenario: str, objects: int = 0) -> str:
        row = find(rows, size, client, scenario)
        if row is None:
            return "-"
        return f"{1000 * row.wall / objects:.0f}" if objects else f"{row.wall:.1f}"

    for size, info in infos.items():
        n = info["objects"]
        out.append(
            f"| {size} | {n} | {wall(size, 'floor', 'initial', n)} "
            f"| {wall(size, 'baseline', 'initial', n)} | {wall(size, 'hhsync', 'initial', n)} "
            f"| {wall(size, 'hhsync', 'no-op re-sync')} | {wall(size, 'hhsync', '1% change')} |"
        )
    return out


PATTERNS = (
    ("floor", "initial"),
    ("hhsync", "initial"),
    ("hhsync", "no-op re-sync"),
    ("hhsync", "1% change"),
    ("hhsync", "hand edit"),
)


def patterns(rows: list[Row], size: str) -> list[str]:
    """Where the time went: requests by endpoint, slowest first."""
    out = []
    for client, scenario in PATTERNS:
        row = find(rows, size, client, scenario)
        if row is not None:
            out += [f"{client} {scenario} ({size}), {row.total} requests:", "", "```"]
            out += [f"{n:5} x {name:45} {t:7.1f}s" for name, n, t in row.pattern[:8]]
            out += ["```", ""]
    return out


def machine(bench: Bench) -> list[str]:
    nb = bench.nb
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        "unknown",
    )
    mem = next(
        ln.split()[1]
        for ln in Path("/proc/meminfo").read_text().splitlines()
        if ln.startswith("MemTotal")
    )
    status = clients.Api(nb.url, nb.session()).call("GET", "status/")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        text=True,
        capture_output=True,
        check=False,
    ).stdout.strip()
    return [
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}; hhsync {__version__} (commit {commit}, "
        f"working tree as it was: code digest {bench.code})",
        f"- machine: {os.cpu_count()} CPUs ({cpu}), {int(mem) / 1024 / 1024:.1f} GB RAM, "
        f"1-minute load average {bench.load_start:.2f} at the start (other work on the machine "
        "slows everything down: see the load column)",
        f"- Python {platform.python_version()} (hhsync and the benchmark), NetBox "
        f"{status['netbox-version']} (Python {status['python-version']}), gunicorn "
        f"{nb.workers} workers x 4 threads, PostgreSQL and Redis on the same machine",
        f"- starting Python and importing hhsync takes {bench.startup:.1f}s of every hhsync wall "
        "time below",
    ]


METHOD = [
    "How it measures:",
    "",
    "- Each client starts on a fresh NetBox database; every request goes through a counting "
    "proxy. *NetBox request time* sums the answers' durations (hhsync reads side by side, so "
    "it can exceed the wall time).",
    "- *floor*: bulk POSTs of 500 objects built from hhsync's desired state, type by type, the "
    "parents' ids taken from the answers, no reads.",
    "- *baseline*: the tag and custom fields checked (2 GETs) and created, then per object, GET "
    "by natural key (full representation), then POST, or PATCH what differs. Its re-run visits "
    "every n-th object in dependency order (`--rerun-sample`, parents' ids from the initial run) "
    "and scales its figures to all objects (measured figures in its notes): every visit is the "
    "same GET and compare, and sampling keeps `make bench` under 20 minutes.",
    "- *hhsync*: `hhsync sync bench --force --json` as a child process against a fake Kubernetes "
    "API; its CPU time and peak RSS are the child's own (wait4). The no-op, 1% change and hand "
    "edit runs follow the initial sync on the same database; the hand edit changes the "
    "description and MTU of 5 owned interfaces and deletes 1 owned cable, and is checked undone.",
    "- Client CPU of floor and baseline is the benchmark thread's. NetBox CPU is gunicorn's "
    "(master and workers; PostgreSQL is not counted).",
]


def report(bench: Bench, infos: dict[str, dict[str, Any]], seconds: float, sizes: str) -> str:
    rows = bench.rows
    same = all(len({str(w) for w in i["written"].values()}) <= 1 for i in infos.values())
    print(f"objects per type the same for floor, baseline and hhsync: {same}")
    parts = [
        "# Benchmarks",
        "",
        "Written by `benchmarks/run.py` (`make bench`, sizes S and M by default; "
        "`make bench BENCH_ARGS='--size L'` for L). Do not edit by hand: run it again.",
        "",
        *machine(bench),
        f"- this run (sizes {sizes}) took {seconds / 60:.1f} min, NetBox start included",
        "",
        "Fabrics (`benchmarks/fabricgen.py`): "
        + "; ".join(
            f"{s}: {i['hedgehog']} Hedgehog -> {i['objects']} NetBox objects"
            for s, i in infos.items()
        )
        + ".",
        "",
        *METHOD,
        f"- The clients left the same objects per type in NetBox: {'yes' if same else '**no**'}.",
        "",
        "## Results",
        "",
        *table(rows),
        "",
        "## Ratios",
        "",
        *ratios(rows, list(infos)),
        "",
        "## Targets (issue 7, size M)",
        "",
        *targets(rows, infos),
        "",
        "## Growth",
        "",
        *growth(rows, infos),
        "",
        "## Request pattern",
        "",
        *patterns(rows, "M" if "M" in infos else list(infos)[-1]),
    ]
    if not same:
        parts += ["## Objects per type", ""]
        parts += [f"- {s} {c}: {w}" for s, i in infos.items() for c, w in i["written"].items()]
    return "\n".join(parts).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", default="S,M", help="comma-separated sizes: S, M, L")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--keep", action="store_true", help="leave NetBox running at the end")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--clients",
        default=",".join(CLIENTS),
        help="comma-separated clients to measure (default: floor,baseline,hhsync)",
    )
    parser.add_argument(
        "--rerun-sample",
        type=int,
        default=8,
        metavar="N",
        help="the baseline re-run visits every N-th object and scales its figures (default 8; "
        "1: every object)",
    )
    args = parser.parse_args(argv)
    sizes = [s.strip().upper() for s in args.size.split(",") if s.strip()]
    start, load = time.perf_counter(), os.getloadavg()[0]
    nb = start_netbox(ensure_netbox_env(), name="bench", redis_db=6)
    try:
        with FaultProxy(nb.url) as proxy, tempfile.TemporaryDirectory() as tmp:
            chosen = tuple(c for c in CLIENTS if c in args.clients.split(","))
            bench = Bench(
                nb, proxy, Path(tmp), args.seed, args.rerun_sample, chosen, load_start=load
            )
            bench.startup = startup_seconds()
            infos = {size: bench_size(bench, size) for size in sizes}
            seconds = time.perf_counter() - start
            text = report(bench, infos, seconds, ",".join(sizes))
    finally:
        if args.keep:
            print(f"NetBox left running at {nb.url} (token {nb.token})")
        else:
            nb.kill()
            nb.stop()
    args.out.write_text(text)
    print("\n".join(table(bench.rows)))
    print(f"\nwrote {args.out} in {seconds / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
