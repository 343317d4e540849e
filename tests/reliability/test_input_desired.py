"""Bad input to the pure mapping `build_desired`: hypothesis-generated malformed Hedgehog objects.

Three generators feed it, all mixed with a valid fabric (`base()`, every kind at least once):

- `malformed`: objects of every mapped kind, each built like a real one (ports on real switches,
  real VPCs and subnets) and then broken in exactly one place from a catalogue of defects the
  README says are skipped: a missing or wrong-typed field at any level, `spec` itself of the wrong
  type, unicode and overlong names, ports on unknown switches or without "/", a port used twice,
  bad addresses, VLAN IDs and ranges. Every one must be skipped, reported once with its kind,
  name, field and reason, and change nothing else: the items equal those of the valid fabric alone.
- `chaos`: the valid objects and more, mutated at random paths into None, wrong types, unicode
  and overlong strings, plus Agents and SwitchProfiles with junk status; names collide across
  kinds and links reuse ports. Whatever is accepted, every item must be valid for NetBox
  (`problems`), a skipped object must contribute nothing (building without it gives the same
  items), and an object that maps to nothing must be in `skipped`.
- Explicit cases with exact expected skips, huge lists, and pinned regressions for each bug found.

Examples are derandomized (same examples every run); `HHSYNC_FUZZ=explore` switches to random
examples and ten times as many. Each property test prints how many examples it tried.
"""

from __future__ import annotations

import copy
import ipaddress
import itertools
import os
import re
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from hhsync.config import FabricConfig
from hhsync.desired import Desired, build_desired
from hhsync.desired.wiring import SHAPES, SWITCH_ROLES
from hhsync.kube.kinds import KINDS
from hhsync.kube.source import Inventory
from hhsync.model import TYPES, Item, Ref

FABRIC = FabricConfig(name="dc1", site="dc1", source=Path("."))
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
W = "wiring.githedgehog.com/v1beta1"
V = "vpc.githedgehog.com/v1beta1"
A = "agent.githedgehog.com/v1beta1"
G = "gateway.githedgehog.com/v1alpha1"
API = {
    "Switch": W,
    "Server": W,
    "Connection": W,
    "SwitchProfile": W,
    "SwitchGroup": W,
    "VLANNamespace": W,
    "IPv4Namespace": V,
    "VPC": V,
    "VPCAttachment": V,
    "VPCPeering": V,
    "External": V,
    "ExternalAttachment": V,
    "ExternalPeering": V,
    "Agent": A,
    "Gateway": G,
}
# Kinds whose objects are mapped one by one and skipped whole when malformed.
MAPPED = (
    "Switch",
    "Server",
    "Gateway",
    "Connection",
    "VLANNamespace",
    "IPv4Namespace",
    "VPC",
    "External",
    "ExternalAttachment",
    "VPCPeering",
    "ExternalPeering",
    "VPCAttachment",
)

settings.register_profile(
    "hhsync-ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    # No shrinking in CI: a failure prints its example at once (the pinned tests below give
    # each known bug a small one); `HHSYNC_FUZZ=explore` shrinks.
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "hhsync-explore",
    derandomize=False,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EXPLORE = os.environ.get("HHSYNC_FUZZ") == "explore"
PROFILE = settings.get_profile("hhsync-explore" if EXPLORE else "hhsync-ci")
SCALE = 10 if EXPLORE else 1


def examples(n: int) -> settings:
    return settings(PROFILE, max_examples=n * SCALE)


# -- the valid fabric ------------------------------------------------------------------------------


def obj(kind: str, name: Any, spec: Any, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": API[kind],
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
        **extra,
    }


def link(a_side: str, a: str, b_side: str, b: str, **ips: str) -> dict[str, Any]:
    ends: dict[str, Any] = {a_side: {"port": a}, b_side: {"port": b}}
    for side, ip in ips.items():
        ends[side]["ip"] = ip
    return ends


def base() -> list[dict[str, Any]]:
    """A small valid fabric with every mapped kind; building it skips nothing."""
    profile = {
        "displayName": "Dell S5248F-ON",
        "nosType": "sonic-bcm-base",
        "ports": {
            "E1/1": {"nos": "Ethernet0", "profile": "SFP28-25G"},
            "E1/49": {"nos": "Ethernet192", "profile": "QSFP28-100G"},
        },
        "portProfiles": {
            "SFP28-25G": {"speed": {"default": "25G"}},
            "QSFP28-100G": {"speed": {"default": "100G"}},
        },
    }

    def switch(name: str, role: str, n: int, **spec: Any) -> dict[str, Any]:
        return obj(
            "Switch",
            name,
            {
                "role": role,
                "profile": "ds",
                "description": f"{role} {name}",
                "asn": 65100 + n,
                "ip": f"172.30.0.{10 + n}/21",
                "protocolIP": f"172.30.8.{n}/32",
                "boot": {"serial": f"SN{n}"},
                **spec,
            },
        )

    heartbeat = (NOW - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        obj("SwitchProfile", "ds", profile),
        obj("SwitchGroup", "eslag-1", {}),
        switch("spine-01", "spine", 0),
        switch(
            "leaf-01",
            "server-leaf",
            1,
            vtepIP="172.30.12.1/32",
            redundancy={"group": "eslag-1", "type": "eslag"},
            groups=["eslag-1"],
        ),
        switch(
            "leaf-02",
            "server-leaf",
            2,
            vtepIP="172.30.12.2/32",
            redundancy={"group": "eslag-1", "type": "eslag"},
            groups=["eslag-1"],
        ),
        switch("leaf-03", "border-leaf", 3, vtepIP="172.30.12.3/32"),
        obj("Server", "server-01", {"description": "host 1"}),
        obj("Server", "server-02", {}),
        obj("Server", "server-03", None),
        obj(
            "Connection",
            "server-01--eslag--leaf-01--leaf-02",
            {
                "eslag": {
                    "links": [
                        link("server", "server-01/enp2s1", "switch", "leaf-01/E1/1"),
                        link("server", "server-01/enp2s2", "switch", "leaf-02/E1/1"),
                    ]
                }
            },
        ),
        obj(
            "Connection",
            "server-02--bundled--leaf-01",
            {
                "bundled": {
                    "mtu": 9036,
                    "links": [
                        link("server", "server-02/enp2s1", "switch", "leaf-01/E1/2"),
                        link("server", "server-02/enp2s2", "switch", "leaf-01/E1/3"),
                    ],
                }
            },
        ),
        obj(
            "Connection",
            "server-03--unbundled--leaf-03",
            {"unbundled": {"link": link("server", "server-03/enp2s1", "switch", "leaf-03/E1/1")}},
        ),
        obj(
            "Connection",
            "spine-01--fabric--leaf-01",
            {
                "fabric": {
                    "links": [
                        link(
                            "spine",
                            "spine-01/E1/1",
                            "leaf",
                            "leaf-01/E1/49",
                            spine="172.30.128.0/31",
                            leaf="172.30.128.1/31",
                        )
                    ]
                }
            },
        ),
        obj(
            "Connection",
            "spine-01--fabric--leaf-03",
            {
                "fabric": {
                    "links": [
                        link(
                            "spine",
                            "spine-01/E1/2",
                            "leaf",
                            "leaf-03/E1/49",
                            spine="172.30.128.2/31",
                            leaf="172.30.128.3/31",
                        )
                    ]
                }
            },
        ),
        obj(
            "Connection",
            "leaf-03--external--edge",
            {"external": {"link": {"switch": {"port": "leaf-03/E1/5"}}}},
        ),
        obj("VLANNamespace", "default", {"ranges": [{"from": 1000, "to": 2999}]}),
        obj("IPv4Namespace", "default", {"subnets": ["10.0.0.0/16"]}),
        obj(
            "VPC",
            "vpc-1",
            {
                "vlanNamespace": "default",
                "subnets": {
                    "default": {
                        "subnet": "10.0.1.0/24",
                        "gateway": "10.0.1.1",
                        "vlan": 1001,
                        "dhcp": {
                            "enable": True,
                            "range": {"start": "10.0.1.10", "end": "10.0.1.99"},
                        },
                    }
                },
            },
        ),
        obj(
            "VPC",
            "vpc-2",
            {
                "subnets": {
                    "default": {"subnet": "10.0.2.0/24", "vlan": 1002},
                    "storage": {"subnet": "10.0.3.0/24", "vlan": 1003},
                }
            },
        ),
        obj(
            "VPCAttachment",
            "server-01--vpc-1",
            {"connection": "server-01--eslag--leaf-01--leaf-02", "subnet": "vpc-1/default"},
        ),
        obj(
            "VPCAttachment",
            "server-02--vpc-2-storage",
            {"connection": "server-02--bundled--leaf-01", "subnet": "vpc-2/storage"},
        ),
        obj(
            "VPCAttachment",
            "server-03--vpc-2",
            {
                "connection": "server-03--unbundled--leaf-03",
                "subnet": "vpc-2",
                "nativeVLAN": True,
            },
        ),
        obj("VPCPeering", "vpc-1--vpc-2", {"permit": [{"vpc-1": {}, "vpc-2": {}}]}),
        obj("External", "edge", {"inboundCommunity": "65102:5000", "outboundCommunity": "5000:1"}),
        obj(
            "ExternalAttachment",
            "leaf-03--edge",
            {
                "connection": "leaf-03--external--edge",
                "external": "edge",
                "neighbor": {"asn": 65102, "ip": "100.100.0.6"},
                "switch": {"ip": "100.100.0.1/24", "vlan": 100},
            },
        ),
        obj(
            "ExternalPeering",
            "vpc-1--edge",
            {
                "permit": {
                    "vpc": {"name": "vpc-1", "subnets": ["default"]},
                    "external": {"name": "edge"},
                }
            },
        ),
        obj(
            "Agent",
            "spine-01",
            None,
            status={
                "lastHeartbeat": heartbeat,
                "lastAppliedGen": 3,
                "version": "v0.87.0",
                "conditions": [{"type": "Applied", "status": "True", "reason": "ApplySucceeded"}],
                "state": {"nos": {"softwareVersion": "4.5.0"}},
            },
        ),
    ]


BASE = base()
BASE_NAMES = {(o["kind"], o["metadata"]["name"]) for o in BASE}
DEVICES = {o["metadata"]["name"]: o["kind"] for o in BASE if o["kind"] in ("Switch", "Server")}
SWITCHES = [n for n, k in DEVICES.items() if k == "Switch"]
SERVERS = [n for n, k in DEVICES.items() if k == "Server"]


def build(objects: list[dict[str, Any]], served: tuple[str, ...] | None = None) -> Desired:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for o in objects:
        by_kind.setdefault(o["kind"], []).append(o)
    kinds = served if served is not None else tuple(k.kind for k in KINDS)
    inventory = Inventory(
        {k: tuple(by_kind.get(k, ())) for k in kinds}, dict.fromkeys(kinds, "v1beta1")
    )
    return build_desired(inventory, FABRIC, NOW)


def name_of(o: dict[str, Any]) -> str:
    """The name a Skip gives an object: its metadata.name, or "?" when it has none."""
    meta = o.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) and name else "?"


# -- what NetBox accepts ---------------------------------------------------------------------------

SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
HEARTBEAT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
NAME_LIMITS = {  # field -> NetBox max_length, per type
    "site": {"name": 100, "slug": 100},
    "manufacturer": {"name": 100, "slug": 100},
    "device_type": {"model": 100, "slug": 100},
    "platform": {"name": 100, "slug": 100},
    "device_role": {"name": 100, "slug": 100},
    "route_target": {"name": 21},
    "vrf": {"name": 100, "rd": 21},
    "vlan_group": {"name": 100, "slug": 100},
    "vlan": {"name": 64},
    "device": {"name": 64, "serial": 50},
    "lag": {"name": 64},
    "interface": {"name": 64},
    "cable": {"label": 100},
}
REQUIRED_NAMES = {  # fields NetBox requires to be non-blank
    "site": ("name", "slug"),
    "manufacturer": ("name", "slug"),
    "device_type": ("model", "slug"),
    "platform": ("name", "slug"),
    "device_role": ("name", "slug"),
    "route_target": ("name",),
    "vrf": ("name",),
    "vlan_group": ("name", "slug"),
    "vlan": ("name",),
    "device": ("name",),
    "lag": ("name",),
    "interface": ("name",),
}
INTEGER_FIELDS = ("hhsync_asn", "hhsync_applied_generation")
TRIMMED = ("name", "description", "label", "serial", "model", "rd")  # DRF trim_whitespace


def refs_in(value: Any) -> Iterator[Ref]:
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, tuple):
        for v in value:
            yield from refs_in(v)


def _address(value: Any) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
    if not isinstance(value, str) or "/" not in value or "%" in value:
        return None
    try:
        return ipaddress.ip_interface(value)
    except ValueError:
        return None


def problems(d: Desired) -> list[str]:
    """Everything NetBox 4.7 would refuse in these items (its model and API validation)."""
    out: list[str] = []
    items = d.items
    cabled: Counter[Ref] = Counter()
    vlan_names: Counter[tuple[Ref, str]] = Counter()
    port_names: Counter[tuple[Ref, str]] = Counter()
    ranges: dict[Any, list[tuple[Any, Any, Ref]]] = {}
    unique_ips: dict[tuple[Ref, Any], list[tuple[Ref, Any]]] = {}

    def bad(ref: Ref, problem: str) -> None:
        out.append(f"{ref.type} {ref}: {problem}")

    for ref, item in items.items():
        spec = TYPES[ref.type]
        a = item.attrs
        if item.ref != ref:
            bad(ref, f"stored under another key {item.ref}")
        unknown = set(a) - {f.name for f in spec.fields}
        if unknown:
            bad(ref, f"fields NetBox does not have: {sorted(unknown)}")
        for name, value in a.items():
            for target in refs_in(value):
                if target not in items:
                    bad(ref, f"{name} refers to {target.type} {target}, which is not desired")
        for field, limit in NAME_LIMITS.get(ref.type, {}).items():
            value = a.get(field)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                bad(ref, f"{field} is not a string of at most {limit} characters: {value!r}")
        for field in REQUIRED_NAMES.get(ref.type, ()):
            if not isinstance(a.get(field), str) or not a[field].strip():
                bad(ref, f"{field} is blank")
        for field, value in a.items():
            if isinstance(value, str) and "\x00" in value:
                bad(ref, f"{field} holds a NUL character (NetBox and PostgreSQL refuse it)")
        for field in TRIMMED:
            value = a.get(field)
            if isinstance(value, str) and value != value.strip():
                # NetBox's API trims these: the value never matches, an update every run.
                bad(ref, f"{field} {value!r} has surrounding whitespace NetBox strips")
        if "slug" in a and not (isinstance(a["slug"], str) and SLUG.match(a["slug"])):
            bad(ref, f"slug {a['slug']!r} is not a NetBox slug")
        description = a.get("description")
        if description is not None and (not isinstance(description, str) or len(description) > 200):
            bad(ref, f"description longer than 200 characters ({len(str(description))})")
        if ref.type == "device_role" and not re.fullmatch(r"[0-9a-f]{6}", str(a.get("color"))):
            bad(ref, f"color {a.get('color')!r}")
        if ref.type == "device":
            for field in INTEGER_FIELDS:
                value = a.get(field)
                if value is not None and type(value) is not int:
                    bad(ref, f"{field} {value!r} is not an integer (NetBox checks type(v) is int)")
            heartbeat = a.get("hhsync_heartbeat")
            if heartbeat is not None and not HEARTBEAT.match(str(heartbeat)):
                bad(ref, f"hhsync_heartbeat {heartbeat!r}")
            for field in ("hhsync_profile", "hhsync_protocol_ip", "hhsync_vtep_ip"):
                if a.get(field) is not None and not isinstance(a.get(field), str):
                    bad(ref, f"{field} is not text")
            primary = a.get("primary_ip4")
            if primary is not None:
                ip = items.get(primary)
                address = _address(ip.attrs.get("address")) if ip else None
                port = ip.attrs.get("assigned_object") if ip else None
                if address is None or address.version != 4:
                    bad(ref, f"primary_ip4 {primary} is not an IPv4 address")
                if not isinstance(port, Ref) or port.key[0] != ref:
                    bad(ref, f"primary_ip4 {primary} is not on an interface of this device")
        if ref.type in ("lag", "interface"):
            port_names[(a["device"], a["name"])] += 1
            mtu = a.get("mtu")
            if mtu is not None and (type(mtu) is not int or not 1 <= mtu <= 65536):
                bad(ref, f"mtu {mtu!r}")
            if (a.get("untagged_vlan") or a.get("tagged_vlans")) and not a.get("mode"):
                bad(ref, "VLANs without a mode")
            lag = a.get("lag")
            if lag is not None and lag.key[0] != a["device"]:
                bad(ref, f"LAG {lag} is on another device")
        if ref.type == "vlan_group":
            vids = a.get("vid_ranges")
            if not vids:
                bad(ref, "no VLAN ID ranges")
            spans = sorted(vids or ())
            for low, high in spans:
                if not (type(low) is int and type(high) is int and 1 <= low <= high <= 4094):
                    bad(ref, f"VLAN ID range {low}-{high}")
            if any(spans[i][1] >= spans[i + 1][0] for i in range(len(spans) - 1)):
                bad(ref, f"overlapping VLAN ID ranges {spans}")
        if ref.type == "vlan":
            vid = a.get("vid")
            if type(vid) is not int or not 1 <= vid <= 4094:
                bad(ref, f"VLAN ID {vid!r}")
            group = items.get(a["group"])
            spans = group.attrs.get("vid_ranges") if group else ()
            if type(vid) is int and not any(lo <= vid <= hi for lo, hi in spans or ()):
                bad(ref, f"VLAN ID {vid} is outside its group's ranges {spans}")
            vlan_names[(a["group"], a.get("name"))] += 1
        if ref.type == "prefix":
            try:
                network = ipaddress.ip_network(a["prefix"])
            except (ValueError, TypeError):
                bad(ref, f"prefix {a['prefix']!r}")
            else:
                if network.prefixlen == 0:
                    bad(ref, "a /0 prefix")
        if ref.type == "ip_address":
            address = _address(a.get("address"))
            if address is None:
                bad(ref, f"address {a.get('address')!r}")
            else:
                net = address.network
                if address.network.prefixlen == 0:
                    bad(ref, "a /0 address")
                elif a.get("assigned_object") is not None:
                    host, length = address.ip, net.prefixlen
                    open_net = length not in ((31, 32) if address.version == 4 else (127, 128))
                    if open_net and host == net.network_address:
                        bad(ref, f"{host} is a network ID assigned to an interface")
                    if address.version == 4 and open_net and host == net.broadcast_address:
                        bad(ref, f"{host} is a broadcast address assigned to an interface")
                vrf = items.get(a["vrf"])
                if vrf is not None and vrf.attrs.get("enforce_unique"):
                    unique_ips.setdefault((a["vrf"], address.ip), []).append((ref, a.get("role")))
        if ref.type == "ip_range":
            start, end = _address(a.get("start_address")), _address(a.get("end_address"))
            if start is None or end is None:
                bad(ref, "start or end address does not parse")
            else:
                if start.network.prefixlen != end.network.prefixlen or start.version != end.version:
                    bad(ref, "start and end masks differ")
                if end.ip < start.ip:
                    bad(ref, "end before start")
                elif int(end.ip) - int(start.ip) + 1 > 2**32 - 1:
                    bad(ref, "larger than NetBox's maximum range size")
                ranges.setdefault(a["vrf"], []).append((start.ip, end.ip, ref))
        if ref.type == "cable":
            ends = (a["a_end"], a["b_end"])
            if ends[0] == ends[1]:
                bad(ref, "both ends on one interface")
            for end in ends:
                if end.type != "interface":
                    bad(ref, f"end {end} is not an interface")
                cabled[end] += 1
            if len(str(a.get("label"))) > 100:
                bad(ref, "label longer than 100")
    for end, n in cabled.items():
        if n > 1:
            out.append(f"interface {end}: in {n} cables")
    for (group, name), n in vlan_names.items():
        if n > 1:
            out.append(f"vlan group {group}: {n} VLANs named {name!r}")
    for (device, name), n in port_names.items():
        if n > 1:
            out.append(f"device {device}: {n} interfaces or LAGs named {name!r}")
    for (vrf, host), owners in unique_ips.items():
        if len(owners) > 1 and any(role != "anycast" for _, role in owners):
            out.append(f"vrf {vrf}: {host} appears {len(owners)} times (enforce_unique)")
    for vrf, spans in ranges.items():
        spans.sort(key=lambda s: int(s[0]))
        for (_, end, ref), (start, _, other) in itertools.pairwise(spans):
            if int(start) <= int(end):
                out.append(f"vrf {vrf}: IP ranges {ref} and {other} overlap")
    return out


# -- generators ------------------------------------------------------------------------------------

ASCII = "abcdefghijklmnopqrstuvwxyz0123456789-"
UNICODE = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12
)  # names no Kubernetes would accept, but a file source may carry
SHORT = st.text(ASCII, min_size=1, max_size=10).map(lambda s: "j" + s)


@st.composite
def long_name(draw: st.DrawFn, shortest: int = 63) -> str:
    """Overlong names, often sharing a long prefix so truncations collide: 63-300 characters."""
    stem = draw(st.sampled_from(["x", "long-name-", "vpc-", "server-01--bundled--"]))
    lengths = [63, 64, 65, 96, 100, 101, 190, 200, 201, 253, 300]
    length = draw(st.sampled_from([n for n in lengths if n >= shortest]))
    tail = draw(st.text(ASCII, min_size=1, max_size=4))
    return (stem * 300)[: max(1, length - len(tail))] + tail


NAMES = st.one_of(SHORT, SHORT, SHORT, long_name(), UNICODE, st.sampled_from(sorted(DEVICES)))
NOT_STR = st.one_of(
    st.integers(-5, 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.lists(st.text(max_size=3), min_size=1, max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2),
)
NOT_MAP = st.one_of(  # never None: that is "missing", often legal
    st.integers(),
    st.booleans(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.floats(allow_nan=False),
)
NOT_LIST = st.one_of(  # never None either
    st.integers(),
    st.booleans(),
    st.text(max_size=5),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
BAD_ADDRESS = st.one_of(
    NOT_STR,
    st.sampled_from(["10.0.0.1", "x/y", "1.2.3.4/33", "fd00::1/129", "10.0.0.1/", "/24", "-"]),
)
BAD_VID = st.one_of(
    st.sampled_from([0, -1, 4095, 5000, 2**40, True, False, 1.5, "100", None]),
    st.text(max_size=3),
)
ANY = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | UNICODE
    | long_name(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def set_path(o: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        o = o[key]
    o[path[-1]] = value


def paths(o: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into an object (dict keys and list indexes)."""
    if isinstance(o, dict):
        for k, v in o.items():
            yield (*prefix, k)
            yield from paths(v, (*prefix, k))
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield (*prefix, i)
            yield from paths(v, (*prefix, i))


# A template per kind: a realistic object on the valid fabric, valid until a defect breaks it.


@st.composite
def port(draw: st.DrawFn, role: str) -> str:
    device = draw(st.sampled_from(SWITCHES if role == "switch" else SERVERS))
    number = draw(st.integers(10, 47))
    return f"{device}/E1/{number}" if role == "switch" else f"{device}/eth{number}"


@st.composite
def connection_spec(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    kind = draw(st.sampled_from([*SHAPES, "mclagDomain"]))
    if kind == "mclagDomain":
        pair = {
            "switch1": {"port": draw(port("switch"))},
            "switch2": {"port": draw(port("switch"))},
        }
        return kind, {"peerLinks": [pair], "sessionLinks": []}
    a_side, a_role, b_side, b_role, many = SHAPES[kind]
    links = []
    for _ in range(draw(st.integers(1, 3)) if many else 1):
        one: dict[str, Any] = {a_side: {"port": draw(port(a_role))}}
        if b_side:
            far = (
                f"gw-{draw(st.integers(1, 3))}/E1/1" if b_role == "gateway" else draw(port(b_role))
            )
            one[b_side] = {"port": far}
        links.append(one)
    body: dict[str, Any] = {"links": links} if many else {"link": links[0]}
    if draw(st.booleans()):
        body["mtu"] = draw(st.integers(1280, 9216))
    return kind, body


@st.composite
def template(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    n = draw(st.integers(1, 200))
    if kind == "Switch":
        spec: Any = {
            "role": draw(st.sampled_from(sorted(SWITCH_ROLES))),
            "profile": draw(st.sampled_from(["ds", "vs", ""])),
            "description": draw(st.text(max_size=20)),
            "asn": draw(st.integers(0, 2**32 - 1)),
            "ip": f"172.31.{n}.{draw(st.integers(1, 254))}/24",
            "protocolIP": f"172.31.200.{n}/32",
            "boot": {"serial": draw(st.text(ASCII, max_size=10))},
            "redundancy": {"group": "eslag-1", "type": "eslag"},
            "groups": ["eslag-1"],
        }
    elif kind in ("Server", "Gateway"):
        spec = {"description": draw(st.text(max_size=20))}
    elif kind == "Connection":
        key, body = draw(connection_spec())
        spec = {key: body}
    elif kind == "VLANNamespace":
        low = draw(st.integers(1, 4000))
        spec = {"ranges": [{"from": low, "to": draw(st.integers(low, 4094))}]}
    elif kind == "IPv4Namespace":
        spec = {"subnets": [f"10.{100 + n % 100}.0.0/16"]}
    elif kind == "VPC":
        spec = {
            "vlanNamespace": "default",
            "subnets": {
                "default": {
                    "subnet": f"10.1.{n}.0/24",
                    "vlan": 1100 + n,
                    "dhcp": {"enable": True, "range": {"start": f"10.1.{n}.10"}},
                }
            },
        }
    elif kind == "External":
        spec = (
            {"static": {"prefixes": ["0.0.0.0/0"]}}
            if draw(st.booleans())
            else {"inboundCommunity": "65102:1"}
        )
    elif kind == "ExternalAttachment":
        spec = {
            "connection": "leaf-03--external--edge",
            "external": "edge",
            "neighbor": {"asn": 65102, "ip": "100.100.0.6"},
            "switch": {"ip": f"100.100.{n}.1/24", "vlan": n},
        }
    elif kind == "VPCPeering":
        spec = {"permit": [{"vpc-1": {}, "vpc-2": {}}]}
    elif kind == "ExternalPeering":
        spec = {"permit": {"vpc": {"name": "vpc-2"}, "external": {"name": "edge"}}}
    elif kind == "VPCAttachment":
        spec = {
            "connection": draw(
                st.sampled_from(
                    ["server-02--bundled--leaf-01", "server-01--eslag--leaf-01--leaf-02"]
                )
            ),
            "subnet": draw(st.sampled_from(["vpc-1/default", "vpc-2/default", "vpc-2"])),
        }
    else:
        raise AssertionError(kind)
    return obj(kind, draw(NAMES), spec)


Defect = Callable[[st.DrawFn, dict[str, Any]], None]


def _spec(o: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = o["spec"]
    return spec


def spec_not_a_mapping(draw: st.DrawFn, o: dict[str, Any]) -> None:
    o["spec"] = draw(NOT_MAP)


def no_name(draw: st.DrawFn, o: dict[str, Any]) -> None:
    o["metadata"] = draw(
        st.sampled_from([{}, None, [], {"name": None}, {"name": ""}, {"name": 7}, {"name": ["x"]}])
    )


def device_name_too_long(draw: st.DrawFn, o: dict[str, Any]) -> None:
    o["metadata"]["name"] = draw(long_name(65))


def field(path: tuple[Any, ...], values: st.SearchStrategy[Any]) -> Defect:
    def defect(draw: st.DrawFn, o: dict[str, Any]) -> None:
        set_path(o["spec"], path, draw(values))

    defect.__name__ = f"spec.{'.'.join(map(str, path))}"
    return defect


MISSING = st.sampled_from([None, ""])
TOO_LONG_200 = st.text(min_size=201, max_size=260)


def bgp_community_not_text(draw: st.DrawFn, o: dict[str, Any]) -> None:
    _spec(o).pop("static", None)
    _spec(o)[draw(st.sampled_from(["inboundCommunity", "outboundCommunity"]))] = draw(NOT_STR)


def unknown_role(draw: st.DrawFn, o: dict[str, Any]) -> None:
    _spec(o)["role"] = draw(
        st.one_of(MISSING, NOT_STR, UNICODE.map(lambda r: r + "ü"), st.just("leaf"))
    )


def connection_defect(draw: st.DrawFn, o: dict[str, Any]) -> None:
    """Break a Connection in one place that makes it unusable whole."""
    spec = _spec(o)
    [(key, body)] = spec.items()
    many = "peerLinks" if key == "mclagDomain" else SHAPES[key][4]
    links = body["peerLinks"] if key == "mclagDomain" else body[many] if many else [body["link"]]
    first = links[0]
    sides = [s for s in first if isinstance(first[s], dict)]
    side = draw(st.sampled_from(sides))
    role = (
        "switch"
        if key == "mclagDomain"
        else dict(
            zip((SHAPES[key][0], SHAPES[key][2]), (SHAPES[key][1], SHAPES[key][3]), strict=True)
        )[side]
    )
    choice = draw(st.integers(0, 12))
    if choice == 0:
        spec.clear()
        spec.update(draw(st.sampled_from([{}, {"bogus": {}}, {key: None}])))
    elif choice == 1:
        other = draw(st.sampled_from([k for k in SHAPES if k != key]))
        spec[other] = {}
    elif choice == 2:
        spec[key] = draw(NOT_MAP)
    elif choice == 3 and key == "mclagDomain":
        body["peerLinks"] = draw(st.one_of(NOT_LIST, st.just([])))
    elif choice == 3 and many:
        body[many] = draw(st.one_of(NOT_LIST, st.just([])))
    elif choice == 4:
        links[0] = draw(st.one_of(st.none(), NOT_MAP))
        if not many and key != "mclagDomain":
            body["link"] = links[0]
    elif choice == 5:
        first[side]["port"] = draw(st.one_of(MISSING, NOT_STR))
    elif choice == 6:
        first[side]["port"] = (
            draw(
                st.sampled_from(["noslash", "leaf-01/", "/E1/1", "", "leaf-01"]) | UNICODE
            ).replace("/", "")
            or "x"
        )
    elif choice == 7 and role != "gateway":
        first[side]["port"] = f"nosuch-{draw(SHORT)}/E1/1"
    elif choice == 8 and role in ("switch", "server"):
        wrong = SERVERS if role == "switch" else SWITCHES
        first[side]["port"] = f"{draw(st.sampled_from(wrong))}/E1/9"
    elif choice == 9:
        device = first[side]["port"].split("/")[0]
        first[side]["port"] = f"{device}/{'p' * draw(st.integers(65, 70))}"
    elif choice == 10:
        body["mtu"] = draw(
            st.one_of(
                st.sampled_from([0, -1, 65537, 10**9, True, 1.5, "9000"]),
                st.text(max_size=3),
                st.lists(st.integers(), min_size=1, max_size=2),
            )
        )
    elif choice == 11 and key in ("fabric", "mesh", "gateway", "staticExternal"):
        first[side]["ip"] = draw(BAD_ADDRESS)
    elif choice == 12 and many and key != "mclagDomain":
        links.append(copy.deepcopy(first))  # the same ports again: each used twice
    else:
        first[side]["port"] = draw(MISSING)


DEFECTS: dict[str, list[Defect]] = {
    "Switch": [
        spec_not_a_mapping,
        unknown_role,
        field(("profile",), st.one_of(NOT_STR, st.text(ASCII, min_size=65, max_size=80))),
        field(("description",), st.one_of(NOT_STR, TOO_LONG_200)),
        field(("asn",), st.sampled_from([-1, True, False, 1.5, "65000", [65000]])),
        field(("ip",), BAD_ADDRESS),
        field(("protocolIP",), BAD_ADDRESS),
        field(("vtepIP",), BAD_ADDRESS),
        field(("boot",), NOT_MAP),
        field(("boot", "serial"), st.one_of(NOT_STR, st.text(ASCII, min_size=51, max_size=60))),
        field(("redundancy",), NOT_MAP),
        field(("redundancy", "group"), NOT_STR),
        field(("redundancy", "type"), NOT_STR),
        field(("groups",), NOT_LIST),
        field(("groups",), st.lists(NOT_STR, min_size=1, max_size=2)),
        device_name_too_long,
        no_name,
    ],
    "Server": [
        spec_not_a_mapping,
        field(("description",), st.one_of(NOT_STR, TOO_LONG_200)),
        device_name_too_long,
        no_name,
    ],
    "Connection": [spec_not_a_mapping, connection_defect, connection_defect, no_name],
    "VLANNamespace": [
        spec_not_a_mapping,
        field(("ranges",), NOT_LIST),
        field(("ranges", 0), st.one_of(st.none(), NOT_MAP)),
        field(("ranges", 0, "from"), BAD_VID),
        field(("ranges", 0, "to"), BAD_VID),
        field(("ranges", 0), st.just({"from": 3000, "to": 2000})),
        no_name,
    ],
    "IPv4Namespace": [
        spec_not_a_mapping,
        field(("subnets",), NOT_LIST),
        field(
            ("subnets", 0),
            st.one_of(MISSING, NOT_STR, st.sampled_from(["10.0.0.1/16", "10.0.0.0/33", "x"])),
        ),
        no_name,
    ],
    "VPC": [
        spec_not_a_mapping,
        field(("vlanNamespace",), st.one_of(NOT_STR, st.just("nosuch"))),
        field(("subnets",), NOT_MAP),
        field(("subnets", "default"), st.one_of(st.none(), NOT_MAP)),
        field(
            ("subnets", "default", "subnet"),
            st.one_of(MISSING, NOT_STR, st.sampled_from(["10.1.0.1/24", "10.1.0.0/40", "x"])),
        ),
        field(("subnets", "default", "vlan"), BAD_VID),
        field(
            ("subnets", "default", "gateway"),
            st.one_of(NOT_STR, st.sampled_from(["10.250.0.1", "x", "10.1.0.0/24"])),
        ),
        field(("subnets", "default", "dhcp"), NOT_MAP),
        field(("subnets", "default", "dhcp", "relay"), st.one_of(NOT_STR, TOO_LONG_200)),
        field(("subnets", "default", "dhcp", "range"), NOT_MAP),
        field(
            ("subnets", "default", "dhcp", "range", "start"), st.sampled_from(["10.250.0.1", "x"])
        ),
        field(("subnets", "default", "dhcp", "range", "end"), st.sampled_from(["10.1.0.0", "x"])),
        field(("mode",), NOT_STR),
        no_name,
    ],
    "External": [
        spec_not_a_mapping,
        field(("static",), NOT_MAP),
        field(("static",), st.builds(lambda v: {"prefixes": v}, NOT_LIST)),
        field(("static",), st.builds(lambda v: {"prefixes": [v]}, NOT_STR)),
        bgp_community_not_text,
        no_name,
    ],
    "ExternalAttachment": [
        spec_not_a_mapping,
        field(("external",), st.one_of(MISSING, NOT_STR, st.just("nosuch"))),
        field(
            ("connection",),
            st.one_of(MISSING, NOT_STR, st.sampled_from(["nosuch", "spine-01--fabric--leaf-01"])),
        ),
        field(("switch",), NOT_MAP),
        field(("switch", "ip"), BAD_ADDRESS),
        field(("neighbor",), NOT_MAP),
        field(("static",), NOT_MAP),
        no_name,
    ],
    "VPCPeering": [
        spec_not_a_mapping,
        field(("permit",), NOT_LIST),
        field(("permit", 0), st.one_of(NOT_MAP, st.just({"vpc-1": {}}))),
        field(("permit", 0), st.just({"vpc-1": {}, "vpc-2": {}, "nosuch": {}})),
        field(("permit", 0), st.just({"vpc-1": {}, "nosuch": {}})),
        field(("permit",), st.just([{"vpc-1": {}, "vpc-2": {}}, {"vpc-2": {}, "nosuch": {}}])),
        no_name,
    ],
    "ExternalPeering": [
        spec_not_a_mapping,
        field(("permit",), NOT_MAP),
        field(("permit", "vpc"), NOT_MAP),
        field(("permit", "vpc", "name"), st.one_of(MISSING, NOT_STR, st.just("nosuch"))),
        field(("permit", "external", "name"), st.one_of(MISSING, NOT_STR, st.just("nosuch"))),
        no_name,
    ],
    "VPCAttachment": [
        spec_not_a_mapping,
        field(("subnet",), st.one_of(MISSING, NOT_STR, st.sampled_from(["nosuch", "vpc-1/x"]))),
        field(
            ("connection",),
            st.one_of(MISSING, NOT_STR, st.sampled_from(["nosuch", "spine-01--fabric--leaf-01"])),
        ),
        no_name,
    ],
}
DEFECTS["Gateway"] = DEFECTS["Server"]


@st.composite
def malformed(draw: st.DrawFn, kind: str | None = None) -> dict[str, Any]:
    """One object of a mapped kind, broken in one place (the defect's name is in `_defect`)."""
    kind = kind or draw(st.sampled_from(MAPPED))
    o = draw(template(kind))
    defect = draw(st.sampled_from(DEFECTS[kind]))
    defect(draw, o)
    return o


def unique(objects: list[dict[str, Any]], taken: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """Drop objects whose (kind, name) is already taken: one kind never holds a name twice."""
    out = []
    for o in objects:
        key = (o["kind"], name_of(o))
        if key[1] != "?" and key in taken:
            continue
        taken.add(key)
        out.append(o)
    return out


JUNK = st.lists(malformed(), min_size=1, max_size=25).map(lambda js: unique(js, set(BASE_NAMES)))


# -- properties ------------------------------------------------------------------------------------

TRIED: Counter[str] = Counter()


@pytest.fixture
def tally(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Print how many examples (and objects) a property tried, for RELIABILITY.md."""
    TRIED.clear()
    start = time.monotonic()
    try:
        yield
    finally:
        parts = ", ".join(f"{n} {what}" for what, n in sorted(TRIED.items()))
        seconds = time.monotonic() - start
        with capsys.disabled():
            print(f"\n[hypothesis] {request.node.name}: {parts} in {seconds:.1f}s")


def test_the_valid_fabric_maps_without_skips_or_problems() -> None:
    d = build(BASE)
    assert d.skipped == ()
    assert problems(d) == []
    counts = Counter(ref.type for ref in d.items)
    assert counts == {
        "owner_group": 1,
        "owner": 1,
        "site": 1,
        "manufacturer": 2,
        "device_type": 2,
        "platform": 1,
        "device_role": 4,
        "route_target": 3,
        "vrf": 4,
        "vlan_group": 1,
        "vlan": 3,
        "prefix": 4,
        "ip_range": 1,
        "device": 7,
        "lag": 2,
        "interface": 19,
        "ip_address": 12,
        "cable": 7,
    }


@examples(150)
@given(junk=JUNK)
def _malformed_objects_are_skipped_whole_and_change_nothing(junk: list[dict[str, Any]]) -> None:
    TRIED["examples"] += 1
    TRIED["malformed objects"] += len(junk)
    clean = build(BASE)
    d = build(BASE + junk)
    assert problems(d) == []
    # Shared objects (roles, device types) a skipped device leaves behind: see
    # test_fixed_skipped_switch_leaves_shared_objects_behind.
    assert owned_items(d) == owned_items(clean)
    assert d.mismatches == clean.mismatches
    assert Counter((s.kind, s.name) for s in d.skipped) == Counter(
        (o["kind"], name_of(o)) for o in junk
    )
    for s in d.skipped:
        assert s.field.split(".")[0].split("[")[0] in {"metadata", "spec"}, s
        assert s.reason, s


def test_malformed_objects_are_skipped_whole_and_change_nothing(tally: None) -> None:
    _malformed_objects_are_skipped_whole_and_change_nothing()


@st.composite
def chaos(draw: st.DrawFn) -> list[dict[str, Any]]:
    """The valid fabric plus templates and junk objects, mutated at random paths."""
    objects = copy.deepcopy(BASE)
    objects += [draw(template(k)) for k in draw(st.lists(st.sampled_from(MAPPED), max_size=12))]
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from([*MAPPED, "Agent", "SwitchProfile"]))
        junk = {"apiVersion": API[kind], "kind": kind, "metadata": {"name": draw(NAMES)}}
        junk.update(draw(st.dictionaries(st.sampled_from(["spec", "status"]), ANY, max_size=2)))
        objects.append(junk)
    for _ in range(draw(st.integers(1, 8))):
        target = draw(st.sampled_from(objects))
        where = [p for p in paths(target) if p[0] not in ("kind", "apiVersion")]
        if where:
            set_path(target, draw(st.sampled_from(where)), draw(ANY))
    return unique(objects, set())


def represented(o: dict[str, Any], d: Desired) -> bool:
    """Whether an object that was not skipped shows up in the items (for kinds where it must)."""
    kind, name = o["kind"], name_of(o)
    items = d.items
    spec = o.get("spec") if isinstance(o.get("spec"), dict) else {}
    if kind in ("Switch", "Server", "Gateway"):
        device = items.get(Ref("device", (name,)))
        role = device.attrs["role"].key[0] if device else None
        return role in SWITCH_ROLES if kind == "Switch" else role == kind.lower()
    if kind == "Connection":
        return any(
            ref.type in ("interface", "lag") and item.attrs["description"] == name[:200]
            for ref, item in items.items()
        )
    if kind == "VLANNamespace":
        text = f"Hedgehog VLANNamespace {name} of fabric dc1"[:200]
        return any(
            ref.type == "vlan_group" and item.attrs["description"] == text
            for ref, item in items.items()
        )
    if kind in ("VPC", "External"):
        text = f"Hedgehog {kind} {name} ("[:200]
        return any(
            ref.type == "vrf" and item.attrs["description"].startswith(text)
            for ref, item in items.items()
        )
    if kind == "IPv4Namespace":
        subnets = spec.get("subnets") or []
        return all(
            Ref("prefix", (Ref("vrf", ("dc1",)), str(ipaddress.ip_network(s)))) in items
            for s in subnets
        )
    if kind == "ExternalAttachment":
        place = spec.get("static") if "static" in spec else spec.get("switch")
        if not (isinstance(place, dict) and place.get("ip")):
            return True  # nothing to map
        return any(
            ref.type == "ip_address"
            and item.attrs["description"].startswith(f"ExternalAttachment {name}: "[:200])
            for ref, item in items.items()
        )
    return True  # peerings and attachments only change other objects


def without(objects: list[dict[str, Any]], d: Desired) -> list[dict[str, Any]]:
    gone = {(s.kind, s.name) for s in d.skipped}
    return [o for o in objects if (o["kind"], name_of(o)) not in gone]


def owned_items(d: Desired) -> dict[Ref, Item]:
    return {ref: item for ref, item in d.items.items() if not TYPES[ref.type].shared}


@examples(200)
@given(objects=chaos())
def _chaos_never_raises_and_never_yields_an_invalid_item(objects: list[dict[str, Any]]) -> None:
    TRIED["examples"] += 1
    TRIED["objects"] += len(objects)
    d = build(objects)
    TRIED["skips"] += len(d.skipped)
    assert problems(d) == []
    names = Counter((o["kind"], name_of(o)) for o in objects)
    for s in d.skipped:
        assert (s.kind, s.name) in names, s
        assert s.field and s.reason, s
        assert s.field.split(".")[0].split("[")[0] in {"metadata", "spec", "status"}, s
    once = Counter((s.kind, s.name) for s in d.skipped if s.name != "?")
    assert [k for k, n in once.items() if n > 1] == []
    skipped = {(s.kind, s.name) for s in d.skipped}
    silent = [
        (o["kind"], name_of(o))
        for o in objects
        if o["kind"] in MAPPED and (o["kind"], name_of(o)) not in skipped and not represented(o, d)
    ]
    assert silent == []
    # A skipped object contributes nothing: the fabric without it maps to the same items.
    assert owned_items(build(without(objects, d))) == owned_items(d)


def test_chaos_never_raises_and_never_yields_an_invalid_item(tally: None) -> None:
    _chaos_never_raises_and_never_yields_an_invalid_item()


# -- exact skips -----------------------------------------------------------------------------------


def conn(name: str, spec: Any) -> dict[str, Any]:
    return obj("Connection", name, spec)


def unbundled(server: str, switch: str) -> dict[str, Any]:
    return {"unbundled": {"link": link("server", server, "switch", switch)}}


LONG = "n" * 65
CASES: list[tuple[str, list[dict[str, Any]], list[str]]] = [
    (
        "port on an unknown switch",
        [conn("c", unbundled("server-01/eth9", "leaf-09/E1/9"))],
        ["Connection c: spec.unbundled.link.switch.port: unknown switch 'leaf-09'"],
    ),
    (
        "port without a slash",
        [conn("c", unbundled("server-01/eth9", "leaf-01E19"))],
        [
            "Connection c: spec.unbundled.link.switch.port: "
            "expected <device>/<port>, got 'leaf-01E19'"
        ],
    ),
    (
        "duplicate names across kinds: a Server named like a Switch",
        [obj("Server", "leaf-01", {})],
        ["Server leaf-01: spec: device leaf-01 is already defined by another object"],
    ),
    (
        "duplicate names across kinds: a Gateway named like a Server",
        [obj("Gateway", "server-01", {})],
        ["Gateway server-01: spec: device server-01 is already defined by another object"],
    ),
    (
        "the same port in two connections (the later name is skipped)",
        [conn("zz-second", unbundled("server-02/eth9", "leaf-01/E1/2"))],
        [
            "Connection zz-second: spec.unbundled.link.switch.port: "
            "interface leaf-01 E1/2 is already defined by another object"
        ],
    ),
    (
        "spec of the wrong type",
        [obj("Switch", "s", ["role", "spine"]), obj("VPC", "v", "x"), obj("External", "e", 3)],
        [
            "Switch s: spec: not a mapping",
            "VPC v: spec: not a mapping",
            "External e: spec: not a mapping",
        ],
    ),
    (
        "None everywhere: a Switch with spec None has no role",
        [obj("Switch", "s", None), obj("VPCAttachment", "a", None), obj("VPCPeering", "p", None)],
        ["Switch s: spec.role: missing", "VPCAttachment a: spec.subnet: missing"],
    ),
    (
        "overlong device name",
        [obj("Server", LONG, {})],
        [f"Server {LONG}: metadata.name: longer than 64 characters (NetBox's limit)"],
    ),
    (
        "a missing name",
        [{"apiVersion": W, "kind": "Server", "metadata": {}, "spec": {}}],
        ["Server ?: metadata.name: missing"],
    ),
]


@pytest.mark.parametrize(("objects", "skips"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_exact_skips(objects: list[dict[str, Any]], skips: list[str]) -> None:
    clean = build(BASE)
    d = build(BASE + objects)
    assert [str(s) for s in d.skipped] == skips
    assert owned_items(d) == owned_items(clean)


def test_unicode_and_long_names_are_mapped_within_netbox_limits() -> None:
    name = "c" * 250 + "-ü"
    objects = [
        obj("Server", "сервер-ü", {}),
        conn(
            name,
            {
                "bundled": {
                    "links": [
                        link("server", "сервер-ü/eth0", "switch", "leaf-02/E1/20"),
                        link("server", "сервер-ü/eth1", "switch", "leaf-02/E1/21"),
                    ]
                }
            },
        ),
    ]
    d = build(BASE + objects)
    assert d.skipped == ()
    assert problems(d) == []
    lag = next(item for ref, item in d.items.items() if ref.type == "lag" and "сервер" in str(ref))
    assert len(lag.attrs["name"]) == 64
    assert lag.attrs["description"] == name[:200]
    cables = [i for r, i in d.items.items() if r.type == "cable" and i.attrs["label"] == name[:100]]
    assert len(cables) == 2


# -- huge lists ------------------------------------------------------------------------------------


def test_thousands_of_links_map_exactly_and_fast() -> None:
    servers = [obj("Server", f"srv-{i:04}", {}) for i in range(1500)]
    conns = [
        conn(
            f"srv-{i:04}--unbundled--leaf-02",
            unbundled(f"srv-{i:04}/eth0", f"leaf-02/E1/{i + 100}"),
        )
        for i in range(1500)
    ]
    bundle = conn(
        "srv-0000--bundled--leaf-03",
        {
            "bundled": {
                "links": [
                    link("server", f"srv-0000/p{i}", "switch", f"leaf-03/E2/{i}")
                    for i in range(2000)
                ]
            }
        },
    )
    ranges = [{"from": 3000 + i, "to": 3000 + i} for i in range(1000)]
    started = time.monotonic()
    d = build([*BASE, *servers, *conns, bundle, obj("VLANNamespace", "many", {"ranges": ranges})])
    seconds = time.monotonic() - started
    clean = build(BASE)
    added = Counter(r.type for r in d.items) - Counter(r.type for r in clean.items)
    assert d.skipped == ()
    assert added == {
        "device": 1500,
        "interface": 1500 * 2 + 2000 * 2,
        "cable": 1500 + 2000,
        "lag": 1,
        "vlan_group": 1,
    }
    assert problems(d) == []
    assert seconds < 15, f"{seconds:.1f}s for 5,000 links"


# -- bugs found by the properties, pinned ----------------------------------------------------------


def skips_of(*objects: dict[str, Any]) -> list[str]:
    return [str(s) for s in build(BASE + list(objects)).skipped]


def test_fixed_external_attachment_on_an_external_connection_without_links_crashes() -> None:
    """A Connection `external: {}` is skipped (no link); an ExternalAttachment on it then hit
    `ports[0]` of an empty list: IndexError out of build_desired, so the whole sync crashed."""
    objects = [
        conn("ext-empty", {"external": {}}),
        obj(
            "ExternalAttachment",
            "att",
            {"connection": "ext-empty", "external": "edge", "switch": {"ip": "100.100.9.1/24"}},
        ),
    ]
    assert skips_of(*objects) == [
        "Connection ext-empty: spec.external.link.switch.port: missing",
        "ExternalAttachment att: spec.connection: "
        "Connection 'ext-empty' was not synced (see its warning)",
    ]


@pytest.mark.parametrize(
    "status",
    [
        {"conditions": 5},
        {"state": {"interfaces": {"E1/1": {"lldpNeighbors": 5}}}},
    ],
    ids=["conditions-not-a-list", "lldpNeighbors-not-a-list"],
)
def test_fixed_agent_status_with_a_number_for_a_list_crashes(status: dict[str, Any]) -> None:
    """`status.get("conditions") or ()` iterates an int: TypeError out of build_desired."""
    d = build([*BASE, obj("Agent", "leaf-01", None, status=status)])
    assert problems(d) == []
    leaf = d.items[Ref("device", ("leaf-01",))]
    assert leaf.attrs["status"] == "offline"  # no heartbeat


def test_fixed_vlan_namespace_range_null_crashes() -> None:
    """`ranges: [null]`: `mapping(r)` gives {} but `r.get("to")` is then called on None."""
    [skip] = build([*BASE, obj("VLANNamespace", "n", {"ranges": [None]})]).skipped
    assert (skip.kind, skip.name, skip.field) == ("VLANNamespace", "n", "spec.ranges[0]")
    assert skip.reason.startswith("not a VLAN range (1-4094): ")


def test_fixed_peering_of_a_vpc_whose_truncated_vrf_name_collides_crashes() -> None:
    """Two VPCs whose `<fabric>/<name>` agree in their first 100 characters: the second one's
    VRF name collided with the first's when cut to 100, it was skipped but stayed in the VRF
    table without its route target, and a VPCPeering naming it raised KeyError. Either both map
    (distinct names) and peer, or the second is skipped and so is the peering."""
    stem = "v" * 120
    vpcs = [
        obj("VPC", stem + "1", {"subnets": {"s": {"subnet": "10.9.1.0/24", "vlan": 2001}}}),
        obj("VPC", stem + "2", {"subnets": {"s": {"subnet": "10.9.2.0/24", "vlan": 2002}}}),
        obj("VPCPeering", "p", {"permit": [{stem + "2": {}, "vpc-1": {}}]}),
    ]
    d = build(BASE + vpcs)
    assert problems(d) == []
    skipped = {(s.kind, s.name) for s in d.skipped}
    if ("VPC", stem + "2") in skipped:
        assert skipped == {("VPC", stem + "2"), ("VPCPeering", "p")}
    else:
        assert skipped == set()
        vrfs = [i for r, i in d.items.items() if r.type == "vrf" and stem in i.attrs["description"]]
        assert len(vrfs) == 2
        assert len({v.attrs["name"] for v in vrfs}) == 2
        peered = next(v for v in vrfs if v.attrs["description"].startswith(f"Hedgehog VPC {stem}2"))
        assert Ref("route_target", ("dc1:vpc-1",)) in peered.attrs["import_targets"]


def test_fixed_a_peering_skipped_for_its_second_permit_still_peers_the_first() -> None:
    """Half an object: permit[0] was applied to the VRFs before permit[1] failed."""
    clean = build(BASE)
    d = build([*BASE, obj("VPCPeering", "p2", {"permit": [{"vpc-2": {}, "vpc-1": {}}, 5]})])
    assert [str(s) for s in d.skipped] == ["VPCPeering p2: spec.permit[1]: not a mapping"]
    assert dict(d.items) == dict(clean.items)


def test_fixed_a_switch_without_profile_and_a_profile_without_name_crashes() -> None:
    """`profiles.get("")` finds a SwitchProfile whose name is "" (a file source allows it); its
    display name is then "" and `"".split()[0]` raised IndexError out of build_desired."""
    d = build(
        [
            *BASE,
            obj("SwitchProfile", "", {"nosType": "x"}),
            obj("Switch", "s9", {"role": "spine"}),
        ]
    )
    assert problems(d) == []
    assert d.items[Ref("device", ("s9",))].attrs["device_type"] == Ref(
        "device_type", ("hedgehog-switch",)
    )


def test_fixed_skipped_switch_leaves_shared_objects_behind() -> None:
    """A Switch skipped for a bad field still added its device role / device type (shared objects
    hhsync then creates in NetBox) for a device it never creates."""
    clean = build(BASE)
    d = build(
        [*BASE, obj("Switch", "s9", {"role": "mixed-leaf", "profile": "nosuch", "ip": "bad"})]
    )
    assert [str(s) for s in d.skipped] == [
        "Switch s9: spec.ip: not an IP address with prefix length: 'bad'"
    ]
    assert set(d.items) - set(clean.items) == set()


INVALID_CASES: list[tuple[str, list[dict[str, Any]]]] = [
    (
        "VLAN ID outside the namespace's ranges (NetBox: VID not in group's ranges)",
        [obj("VPC", "v", {"subnets": {"s": {"subnet": "10.9.0.0/24", "vlan": 100}}})],
    ),
    (
        "overlapping VLANNamespace ranges (NetBox: ranges cannot overlap)",
        [obj("VLANNamespace", "n", {"ranges": [{"from": 10, "to": 20}, {"from": 15, "to": 30}]})],
    ),
    ("VLANNamespace without ranges (a VLAN group needs one)", [obj("VLANNamespace", "n", {})]),
    (
        "VLANNamespace name that is no slug (dots are legal in Kubernetes names)",
        [obj("VLANNamespace", "my.ns", {"ranges": [{"from": 10, "to": 20}]})],
    ),
    (
        "a network ID as a management address (NetBox refuses it on an interface)",
        [obj("Switch", "s9", {"role": "spine", "ip": "10.9.0.0/24"})],
    ),
    (
        "an IPv6 management address becomes primary_ip4",
        [obj("Switch", "s9", {"role": "spine", "ip": "fd00::9/64"})],
    ),
    (
        "a /0 address (NetBox: cannot create IP address with /0 mask)",
        [obj("Switch", "s9", {"role": "spine", "ip": "10.9.0.9/0"})],
    ),
    (
        "descriptions over 200 characters from long names",
        [
            obj("VLANNamespace", "n" * 190, {"ranges": [{"from": 10, "to": 20}]}),
            obj("IPv4Namespace", "i" * 190, {"subnets": ["10.200.0.0/16"]}),
            obj(
                "VPC",
                "v" * 190,
                {"subnets": {"s" * 10: {"subnet": "10.9.0.0/24", "vlan": 1500}}},
            ),
        ],
    ),
    (
        "two VPC subnets whose 64-character VLAN names agree (NetBox: unique per group)",
        [
            obj(
                "VPC",
                "w" * 70,
                {
                    "subnets": {
                        "a": {"subnet": "10.9.0.0/24", "vlan": 1501},
                        "b": {"subnet": "10.9.1.0/24", "vlan": 1502},
                    }
                },
            )
        ],
    ),
    (
        "an Agent's lastAppliedGen true (NetBox integer fields refuse booleans)",
        [obj("Agent", "spine-01", None, status={"lastAppliedGen": True})],
    ),
    (
        "a platform name from nosType over 100 characters, or empty",
        [
            obj("SwitchProfile", "p1", {"displayName": "Acme X", "nosType": "n" * 101}),
            obj("SwitchProfile", "p2", {"displayName": "Acme Y", "nosType": ""}),
            obj("Switch", "s8", {"role": "spine", "profile": "p1"}),
            obj("Switch", "s9", {"role": "spine", "profile": "p2"}),
        ],
    ),
    (
        "a bundled Connection whose links are on two servers (LAG member on another device)",
        [
            conn(
                "two-servers",
                {
                    "bundled": {
                        "links": [
                            link("server", "server-01/eth7", "switch", "leaf-01/E1/30"),
                            link("server", "server-02/eth7", "switch", "leaf-01/E1/31"),
                        ]
                    }
                },
            )
        ],
    ),
    (
        "a LAG named like one of its own member ports",
        [
            conn(
                "eth5",
                {
                    "bundled": {
                        "links": [link("server", "server-03/eth5", "switch", "leaf-03/E1/40")]
                    }
                },
            )
        ],
    ),
]


@pytest.mark.parametrize(
    "objects", [c[1] for c in INVALID_CASES], ids=[c[0] for c in INVALID_CASES]
)
def test_fixed_input_hhsync_maps_into_objects_netbox_refuses(objects: list[dict[str, Any]]) -> None:
    """Each of these is accepted by hhsync but refused by NetBox (model validation), so the
    sync fails with "NetBox rejected part of the plan" instead of skipping the object."""
    d = build(BASE + objects)
    assert problems(d) == [], [str(s) for s in d.skipped]


@pytest.mark.parametrize(
    "objects",
    [
        [obj("Switch", "s9", {"role": "spine", "description": "  rack 1  "})],
        [obj("Server", "s9", {"description": "host\n"})],
        [obj("Server", " ", {})],
        [obj("Server", "s9", {"description": "a\x00b"})],
        [obj("Server", "s9 ", {})],
        [
            conn(
                "c9 ",
                {
                    "unbundled": {
                        "link": link("server", "server-01/eth9 ", "switch", "leaf-01/E1/9")
                    }
                },
            )
        ],
    ],
    ids=[
        "description",
        "description-newline",
        "blank name",
        "NUL in a description",
        "name",
        "connection and port",
    ],
)
def test_fixed_text_with_surrounding_whitespace_never_converges(
    objects: list[dict[str, Any]],
) -> None:
    """NetBox's API strips surrounding whitespace from names, labels and descriptions. hhsync
    sent them as they were, so the value read back never matched: a Switch with description
    "  rack 1  " was updated on every run (seen on the real NetBox: "updated 1" each time), and
    a name of " " is blank to NetBox. Either strip them (a name that is then blank is skipped)
    or skip the object. A NUL character is refused outright (by NetBox and PostgreSQL)."""
    d = build(BASE + objects)
    assert problems(d) == []


DHCP_PROBE = textwrap.dedent(
    """
    import resource, sys, time
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    sys.path.insert(0, {root!r})
    from tests.reliability.test_input_desired import BASE, build, obj
    subnet = sys.argv[1]
    vpc = obj("VPC", "big", {{"subnets": {{"s": {{"subnet": subnet, "vlan": 2500,
                                                "dhcp": {{"enable": True}}}}}}}})
    started = time.monotonic()
    d = build(BASE + [vpc])
    print(f"{{time.monotonic() - started:.1f}}s", [str(s) for s in d.skipped])
    """
)


@pytest.mark.parametrize("subnet", ["10.0.0.0/8", "fd00:1::/64"])
def test_fixed_dhcp_on_a_big_subnet_exhausts_memory(subnet: str) -> None:
    """`list(network.hosts())` for the default DHCP range: 16 M addresses for a /8, 2^64 for an
    IPv6 /64, so the sync runs out of memory or hangs until the deadline backstop."""
    root = str(Path(__file__).resolve().parents[2])
    try:
        done = subprocess.run(
            [sys.executable, "-c", DHCP_PROBE.format(root=root), subnet],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"build_desired with a DHCP-enabled {subnet} ran for over 20s")
    assert done.returncode == 0, done.stderr[-600:]
    seconds = float(done.stdout.split("s", 1)[0])
    assert seconds < 2, done.stdout
