"""A run of one fabric, as a timer starts it: take the fabric's lock, read its state from NetBox,
skip it when fresh, mirror it, and record the result (state on the site, a journal entry,
metrics) whatever happened. Recording has its own time budget and backstop, so a run stopped
by its deadline is still recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from hhsync import metrics, report, syncstate
from hhsync.config import Config, FabricConfig
from hhsync.deadline import RECORD_SECONDS, Deadline, Stuck, backstop, stop_on_signals
from hhsync.errors import BusyError, HhsyncError
from hhsync.kube.source import Source
from hhsync.lock import fabric_lock, state_dir
from hhsync.mirror import DEFAULTS, Options, Outcome, mirror
from hhsync.netbox.client import NetBox
from hhsync.netbox.schema import ensure_schema
from hhsync.netbox.site import add_journal, ensure_site, read_states, write_state


def run_fabric(
    fabric: FabricConfig,
    config: Config,
    open_netbox: Callable[[], NetBox],
    open_source: Callable[[FabricConfig], Source],
    *,
    clock: Callable[[], datetime],
    force: bool = False,
    options: Options = DEFAULTS,
    progress: Callable[[int, int], None] | None = None,
) -> Outcome:
    """One fabric's run; every failure ends up in the returned Outcome, never as an exception."""
    try:
        with fabric_lock(state_dir(config.run.state_dir), fabric.name, config.run.lock_wait):
            netbox = open_netbox()
            try:
                return _locked(fabric, config, netbox, open_source, clock, force, options, progress)
            finally:
                netbox.close()
    except BusyError as e:
        return Outcome(fabric.name, options.dry_run, error=str(e), busy=True)
    except (HhsyncError, Stuck) as e:
        return Outcome(fabric.name, options.dry_run, error=str(e))


def _locked(
    fabric: FabricConfig,
    config: Config,
    netbox: NetBox,
    open_source: Callable[[FabricConfig], Source],
    clock: Callable[[], datetime],
    force: bool,
    options: Options,
    progress: Callable[[int, int], None] | None,
) -> Outcome:
    deadline = Deadline(fabric.deadline)
    stored = None
    with stop_on_signals(deadline):
        try:
            with backstop(deadline):
                deadline.enter("reading the sync state")
                stored = read_states(netbox, [fabric.site], deadline).get(fabric.site)
                previous = stored[1] if stored else syncstate.SyncState()
                due = syncstate.needs_sync(previous, fabric.interval, clock())
                if not (due.needed or force or options.dry_run):
                    return Outcome(fabric.name, fresh=due.reason)
                outcome = _mirror(
                    fabric, netbox, open_source, clock, deadline, options, previous, progress
                )
        except Stuck as e:
            outcome = Outcome(fabric.name, options.dry_run, error=str(e))
        if not options.dry_run:
            site = stored[0] if stored else None
            budget = Deadline(RECORD_SECONDS)
            try:
                with backstop(budget):
                    _record(outcome, fabric, config, netbox, site, clock(), budget)
            except Stuck as e:
                outcome.error = f"{outcome.error or 'sync done'}; recording the state failed: {e}"
    return outcome


def _mirror(
    fabric: FabricConfig,
    netbox: NetBox,
    open_source: Callable[[FabricConfig], Source],
    clock: Callable[[], datetime],
    deadline: Deadline,
    options: Options,
    previous: syncstate.SyncState,
    progress: Callable[[int, int], None] | None,
) -> Outcome:
    """Open the fabric's source and mirror it; the source's errors end up in the Outcome."""
    deadline.enter("loading the kubeconfig" if fabric.kubeconfig else "opening the source")
    try:
        source = open_source(fabric)
    except HhsyncError as e:
        return Outcome(fabric.name, options.dry_run, error=str(e))
    try:
        return mirror(
            fabric,
            netbox,
            source,
            now=clock(),
            deadline=deadline,
            options=replace(options, previous=previous),
            progress=progress,
        )
    finally:
        source.close()


def _record(
    outcome: Outcome,
    fabric: FabricConfig,
    config: Config,
    netbox: NetBox,
    site: int | None,
    now: datetime,
    budget: Deadline,
) -> None:
    """State on the site (one PATCH), a journal entry when something changed or failed, and
    metrics."""
    budget.enter("recording the result")
    counts = outcome.counts()
    message = outcome.error or report.summary(outcome)
    fields = syncstate.record(
        now=now,
        ok=outcome.ok,
        message=message,
        counts=counts,
        mismatches=report.mismatches(outcome),
        interval=fabric.interval,
        fingerprint=outcome.fingerprint,
    )
    if outcome.retirements is not None:
        fields.update(syncstate.retirements_field(outcome.retirements))
    if outcome.branch_known:
        staged = outcome.staged
        fields["hhsync_branch"] = staged.record() if staged and not staged.merged else None
    try:
        if site is None:
            site = outcome.site
        if site is None:  # the run failed before it got to set anything up
            ensure_schema(netbox, budget)
            site = ensure_site(netbox, fabric.site, budget)
        write_state(netbox, site, fields, budget)
        if not outcome.ok or any(counts[k] for k in ("created", "updated", "retired", "deleted")):
            text = f"hhsync sync: {message}{report.retired_list(outcome)}"
            add_journal(netbox, site, outcome.ok, text, budget)
    except HhsyncError as e:
        outcome.error = f"{outcome.error or 'sync done'}; recording the state failed: {e}"
    if config.run.metrics_file is not None:
        lines = metrics.render(
            fabric.name,
            attempt=now,
            success=now if outcome.ok else None,
            ok=outcome.ok,
            seconds=outcome.seconds,
            counts=counts,
        )
        try:
            metrics.write(config.run.metrics_file, fabric.name, lines)
        except HhsyncError as e:
            outcome.warnings.append(str(e))
