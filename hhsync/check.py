"""`hhsync check`: is the configuration usable, right now, end to end?"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from hhsync.config import Config, FabricConfig, load_token
from hhsync.deadline import unlimited
from hhsync.errors import HhsyncError
from hhsync.kube.kinds import KINDS
from hhsync.kube.source import Source
from hhsync.netbox import branches
from hhsync.netbox.client import NetBox, display_url
from hhsync.netbox.permissions import missing_branch_permissions, missing_permissions

MIN_NETBOX = (4, 7)  # the oldest NetBox hhsync is tested with (`make test` runs TESTED_NETBOX)
TESTED_NETBOX = "4.7.3"


@dataclass(frozen=True)
class Check:
    name: str
    target: str
    ok: bool
    detail: str


def run_checks(
    config: Config,
    fabrics: list[FabricConfig],
    open_netbox: Callable[[], NetBox],
    open_source: Callable[[FabricConfig], Source],
) -> list[Check]:
    checks = [Check("config", str(config.path), True, _config_detail(config))]
    checks.append(_netbox(config, open_netbox))
    needed = sorted(f.name for f in config.fabrics.values() if f.branch != "off")
    if needed:
        checks.append(_branching(config, open_netbox, needed))
    checks.extend(_fabric(fabric, open_source) for fabric in fabrics)
    return checks


def _config_detail(config: Config) -> str:
    count = len(config.fabrics)
    enabled = sum(f.enabled for f in config.fabrics.values())
    text = f"{count} fabric{'s' * (count != 1)} ({enabled} enabled)"
    return "; ".join([text, *config.warnings])


def _netbox(config: Config, open_netbox: Callable[[], NetBox]) -> Check:
    target = display_url(config.netbox.url)
    try:
        load_token(config.netbox, config.path)
        netbox = open_netbox()
        try:
            deadline = unlimited()
            status = netbox.status(deadline)
            version = str(status["netbox-version"])
            if _version(version) < MIN_NETBOX:
                need = ".".join(map(str, MIN_NETBOX))
                return Check(
                    "netbox",
                    target,
                    False,
                    f"NetBox {version} is older than {need}, the oldest version hhsync supports "
                    f"(it is tested with {TESTED_NETBOX}): upgrade NetBox",
                )
            user = netbox.call("GET", "authentication-check/", deadline)
            missing = missing_permissions(netbox, deadline)
        finally:
            netbox.close()
    except HhsyncError as e:
        return Check("netbox", target, False, str(e))
    name = user.get("username", "?") if isinstance(user, dict) else "?"
    if missing:
        return Check(
            "netbox",
            target,
            False,
            f"NetBox {version}, token of user {name} valid, but it may not: " + ", ".join(missing),
        )
    return Check("netbox", target, True, f"NetBox {version}, token valid (user {name})")


def _branching(config: Config, open_netbox: Callable[[], NetBox], needed: list[str]) -> Check:
    """The netbox-branching plugin, checked only when a fabric writes into branches."""
    target = display_url(config.netbox.url)
    try:
        netbox = open_netbox()
        try:
            version = branches.plugin_version(netbox, unlimited())
            missing = missing_branch_permissions(netbox, unlimited()) if version else []
        finally:
            netbox.close()
    except HhsyncError as e:
        return Check("branching", target, False, str(e))
    users = ", ".join(needed)
    if version is None:
        return Check(
            "branching",
            target,
            False,
            f"the netbox-branching plugin is not installed, and fabric(s) {users} "
            "write into branches (branch = review or merge)",
        )
    if missing:
        return Check(
            "branching",
            target,
            False,
            f"netbox-branching {version}, but the token may not: {', '.join(missing)}",
        )
    return Check(
        "branching",
        target,
        True,
        f"netbox-branching {version}; the token may create, write and merge branches "
        f"(used by {users})",
    )


def _fabric(fabric: FabricConfig, open_source: Callable[[FabricConfig], Source]) -> Check:
    name = f"fabric {fabric.name}"
    try:
        source = open_source(fabric)
        try:
            served = source.served(unlimited())
            if fabric.source is not None:  # files: say what they hold, not just what parses
                counts = {
                    k.kind: len(source.list(k, served[k.kind], unlimited()))
                    for k in KINDS
                    if k.kind in served
                }
        finally:
            source.close()
    except HhsyncError as e:
        return Check(name, _where(fabric), False, str(e))
    if fabric.source is not None:
        held = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
        return Check(name, _where(fabric), True, f"files parse; they hold {held or 'no objects'}")
    if not served:
        return Check(
            name,
            _where(fabric),
            False,
            "reachable, but no Hedgehog kinds are served: is this the fabric's control node?",
        )
    versions = sorted(set(served.values()))
    detail = f"serves {len(served)} Hedgehog kinds ({', '.join(versions)})"
    missing = [k.kind for k in KINDS if not k.optional and k.kind not in served]
    if missing:
        return Check(
            name,
            _where(fabric),
            False,
            f"{detail}, but not {', '.join(missing)}: "
            "is the Hedgehog fabric complete and at v1beta1 (fabric v0.52+)?",
        )
    absent = [k.kind for k in KINDS if k.kind not in served]
    if absent:
        detail += f"; optional kinds not served: {', '.join(absent)}"
    return Check(name, _where(fabric), True, detail)


def _where(fabric: FabricConfig) -> str:
    if fabric.source is not None:
        return f"file:{fabric.source}"
    context = f" ({fabric.context})" if fabric.context else ""
    return f"{fabric.kubeconfig}{context}"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text)[:2])
