"""NetBox branches (the netbox-branching plugin, 1.2 on NetBox 4.7): a fabric's changes staged in a
branch for review, or merged into main in one step.

The plugin provisions and merges branches as background jobs (NetBox's rqworker runs them);
every wait here is a bounded poll against the run's deadline. A branch is addressed by its
`schema_id` in the `X-NetBox-Branch` header (see `NetBox.branch`). Branch-management calls
themselves always go to main.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from hhsync.deadline import Deadline
from hhsync.errors import HhsyncError, NetboxError
from hhsync.netbox.client import NetBox

PLUGIN = "netbox_branching"
API = "plugins/branching/"
POLL = 0.5  # seconds between looks at a branch or job in progress
OPEN = ("new", "provisioning", "ready", "syncing", "merging", "migrating", "pending-migrations")
DONE_JOB = ("completed", "errored", "failed")


@dataclass(frozen=True)
class Branch:
    """A branch as NetBox describes it."""

    id: int
    name: str
    schema_id: str
    status: str
    url: str  # its page in NetBox's UI
    created: str | None = None
    merged: bool = False  # merged into main (also when archived since)

    @property
    def open(self) -> bool:
        return self.status in OPEN


def plugin_version(netbox: NetBox, deadline: Deadline) -> str | None:
    """The netbox-branching version NetBox runs, None without the plugin."""
    plugins = netbox.status(deadline).get("plugins") or {}
    version = plugins.get(PLUGIN) if isinstance(plugins, dict) else None
    return str(version) if version else None


def get(netbox: NetBox, ident: int, deadline: Deadline) -> Branch | None:
    """The branch with NetBox id `ident`, None when it was deleted."""
    try:
        return _branch(netbox, netbox.call("GET", f"{API}branches/{ident}/", deadline))
    except NetboxError as e:
        if e.status == 404:
            return None
        raise


def find_open(netbox: NetBox, prefix: str, deadline: Deadline) -> Branch | None:
    """The newest open branch whose name starts with `prefix`."""
    params = {"q": prefix, "status": list(OPEN)}
    found = [_branch(netbox, raw) for raw in netbox.get_all(f"{API}branches/", deadline, params)]
    mine = [b for b in found if b.name.startswith(prefix) and b.open]
    return max(mine, key=lambda b: b.id, default=None)


def create(netbox: NetBox, name: str, description: str, deadline: Deadline) -> Branch:
    body = {"name": name, "description": description[:200]}
    return _branch(netbox, netbox.call("POST", f"{API}branches/", deadline, body=body))


def describe(netbox: NetBox, branch: Branch, description: str, deadline: Deadline) -> None:
    body = {"description": description[:200]}
    netbox.call("PATCH", f"{API}branches/{branch.id}/", deadline, body=body)


def wait_ready(netbox: NetBox, branch: Branch, deadline: Deadline) -> Branch:
    """Wait until NetBox has provisioned the branch (a job of its rqworker)."""
    while branch.status in ("new", "provisioning"):
        deadline.check()
        time.sleep(min(POLL, max(0.0, deadline.remaining())))
        found = get(netbox, branch.id, deadline)
        if found is None:
            raise HhsyncError(f"branch {branch.name} was deleted while NetBox provisioned it")
        branch = found
    if branch.status != "ready":
        raise HhsyncError(
            f"branch {branch.name} is {branch.status}, not ready: see it in NetBox at {branch.url}"
        )
    return branch


def changes(netbox: NetBox, branch: Branch, deadline: Deadline) -> int:
    """How many objects the branch changes (what a reviewer sees in its diff)."""
    page = netbox.call(
        "GET", f"{API}changes/", deadline, params={"branch_id": branch.id, "limit": 1}
    )
    return int(page.get("count", 0)) if isinstance(page, dict) else 0


def merge(netbox: NetBox, branch: Branch, deadline: Deadline) -> Branch:
    """Merge the branch into main and wait for it; a conflict with a change made in main since,
    or a merge NetBox fails, leaves the branch open and raises, naming the objects."""
    url = f"{API}branches/{branch.id}/merge/"
    try:
        job = netbox.call("POST", url, deadline, body={"commit": True})
    except NetboxError as e:
        if e.status != 409:
            raise
        if not _counters_only(e.data):
            raise HhsyncError(
                f"branch {branch.name} was not merged: it conflicts with changes made in main "
                f"since ({_conflicts(e.data)}); it stays open at {branch.url}"
            ) from None
        # Only counters NetBox keeps itself differ (a device's interface_count, after its
        # interfaces were deleted in the branch): nobody's edit is overwritten.
        job = netbox.call(
            "POST", url, deadline, body={"commit": True, "acknowledge_conflicts": True}
        )
    done = _wait_job(netbox, job, deadline)
    merged = get(netbox, branch.id, deadline)
    if done.get("status", {}).get("value") != "completed" or merged is None or not merged.merged:
        error = done.get("error") or "the merge job ended without merging"
        raise HhsyncError(
            f"branch {branch.name} was not merged: NetBox's merge job failed ({error}); "
            f"it stays open at {branch.url}"
        )
    return merged


def archive(netbox: NetBox, branch: Branch, deadline: Deadline) -> None:
    """Archive a merged branch: its schema goes, its record and change history stay."""
    netbox.call("POST", f"{API}branches/{branch.id}/archive/", deadline, body={})


def delete(netbox: NetBox, branch: Branch, deadline: Deadline) -> None:
    netbox.call("DELETE", f"{API}branches/{branch.id}/", deadline)


def _wait_job(netbox: NetBox, job: Any, deadline: Deadline) -> dict[str, Any]:
    """Poll a NetBox job until it has ended."""
    url = f"core/jobs/{int(job['id'])}/"
    while True:
        state = netbox.call("GET", url, deadline)
        if not isinstance(state, dict):
            raise NetboxError(f"NetBox answered GET /api/{url} with something that is not a job")
        if (state.get("status") or {}).get("value") in DONE_JOB:
            return state
        deadline.check()
        time.sleep(min(POLL, max(0.0, deadline.remaining())))


def _branch(netbox: NetBox, raw: Any) -> Branch:
    if not isinstance(raw, dict) or "schema_id" not in raw:
        raise NetboxError("NetBox answered with something that is not a branch")
    status = raw.get("status")
    value = status.get("value") if isinstance(status, dict) else str(status)
    return Branch(
        int(raw["id"]),
        str(raw["name"]),
        str(raw["schema_id"]),
        str(value),
        f"{netbox.url}/plugins/branching/branches/{int(raw['id'])}/",
        raw.get("created"),
        bool(raw.get("merged_time")),
    )


def _counters_only(data: Any) -> bool:
    """Whether a merge's conflicts are all in fields NetBox counts itself (`*_count`)."""
    found = data.get("conflicts") if isinstance(data, dict) else None
    if not isinstance(found, list) or not found:
        return False
    return all(
        isinstance(c, dict) and all(str(f).endswith("_count") for f in c.get("conflicts") or ("",))
        for c in found
    )


def _conflicts(data: Any) -> str:
    found = data.get("conflicts") if isinstance(data, dict) else None
    if not isinstance(found, list) or not found:
        return "NetBox names none"
    names = [
        f"{c.get('object_type')} {c.get('object_repr')} ({', '.join(c.get('conflicts') or ())})"
        for c in found[:5]
        if isinstance(c, dict)
    ]
    return "; ".join(names) + (f"; and {len(found) - 5} more" if len(found) > 5 else "")
